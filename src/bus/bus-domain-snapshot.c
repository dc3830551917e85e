/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.DomainSnapshot on /org/virtbus1/domain/<uuid hex>/snapshot/<encoded name>, and the
 * Domain's CreateSnapshot, ListSnapshots and CurrentSnapshot. */
#include <stdio.h>

#include "bus/bus-authz.h"
#include "bus/bus-domain-snapshot.h"
#include "bus/bus-domain.h"
#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "core/manager.h"
#include "util/log.h"

/* A snapshot description is small (a nested <domain> is refused anyway: the service fills it in). */
#define SNAPSHOT_XML_MAX (64U * 1024U)
#define SNAPSHOT_SEGMENT "/snapshot"

#define CREATE_FLAGS (SNAPSHOT_CREATE_DISK_ONLY | SNAPSHOT_CREATE_QUIESCE | SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_ATOMIC)
#define DELETE_FLAGS (SNAPSHOT_DELETE_CHILDREN | SNAPSHOT_DELETE_CHILDREN_ONLY | SNAPSHOT_DELETE_METADATA_ONLY)

char *bus_domain_snapshot_path(const DomainSnapshot *s) {
        char buf[BUS_DOMAIN_PATH_MAX + sizeof SNAPSHOT_SEGMENT];
        char *path = NULL;

        bus_domain_path_buf(s->domain, buf);
        strcat(buf, SNAPSHOT_SEGMENT);
        return sd_bus_path_encode(buf, s->name, &path) < 0 ? NULL : path;
}

DomainSnapshot *bus_domain_snapshot_from_path(BusServer *s, const char *path) {
        char prefix[BUS_DOMAIN_PATH_MAX + sizeof SNAPSHOT_SEGMENT];
        size_t n = BUS_DOMAIN_PATH_MAX - 1;
        _cleanup_free_ char *name = NULL;
        Domain *d;

        if (!path || strlen(path) <= n + strlen(SNAPSHOT_SEGMENT "/") ||
            strncmp(path + n, SNAPSHOT_SEGMENT "/", strlen(SNAPSHOT_SEGMENT "/")) != 0)
                return NULL;
        memcpy(prefix, path, n);
        prefix[n] = 0;
        d = bus_domain_from_path(s, prefix);
        if (!d)
                return NULL;
        strcat(prefix, SNAPSHOT_SEGMENT);
        if (sd_bus_path_decode(path, prefix, &name) <= 0)
                return NULL;
        return domain_snapshot_by_name(d, name);
}

static int find_snapshot(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                         sd_bus_error *error) {
        return bus_object_found(bus_domain_snapshot_from_path(userdata, path), found);
}

static char *path_of(const void *s) {
        return bus_domain_snapshot_path(s);
}

static int enumerate_snapshots(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = ((BusServer *) userdata)->manager;
        _cleanup_free_ const void **all = NULL;
        size_t n = 0, k = 0;

        for (size_t i = 0; i < m->n_domains; i++)
                n += m->domains[i]->n_snapshots;
        all = new0(const void *, n + 1);
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_domains; i++)
                for (size_t j = 0; j < m->domains[i]->n_snapshots; j++)
                        all[k++] = m->domains[i]->snapshots[j];
        return bus_object_enumerate(all, n, path_of, nodes);
}

static BusServer *server_of(const Domain *d) {
        return d->manager->events.userdata;
}

/* Domain.CreateSnapshot, ListSnapshots, CurrentSnapshot ----------------------------------------- */

static int parse_snapshot(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        SnapshotDef *def = NULL;
        int r;

        r = snapshot_def_parse_string(xml, &def, reterr);
        if (r >= 0)
                *ret = def;
        return r;
}

static void free_snapshot(void *def) {
        snapshot_def_free(def);
}

static const char *snapshot_name(const void *def) {
        return ((const SnapshotDef *) def)->name ?: "";
}

static const char *domain_name(void *userdata) {
        return ((Domain *) userdata)->name;
}

/* Polkit is asked with details domain and snapshot (the name read ahead, then the parsed one). */
static const BusParseSpec snapshot_spec = {
        .what = "snapshot description",
        .max = SNAPSHOT_XML_MAX,
        .allowed_flags = CREATE_FLAGS,
        .parse = parse_snapshot,
        .free = free_snapshot,
        .action = BUS_ACTION_DOMAIN_MANAGE,
        .detail_key = "snapshot",
        .name = snapshot_name,
        .context_key = "domain",
        .context = domain_name,
};

/* The snapshot operations answer when the backend is done; the message is kept until then. */
static void on_created(int r, DomainSnapshot *s, const VbError *e, void *userdata) {
        BusLater *l = userdata;

        if (r < 0)
                bus_later_reply(l, r, e);
        else /* once its metadata is on disk */
                bus_later_reply_path(l, bus_domain_snapshot_path(s));
}

static void on_done(int r, DomainSnapshot *s, const VbError *e, void *userdata) {
        bus_later_reply(userdata, r, e); /* once the metadata's changes are on disk */
}

/* Hands the kept call to the operation started by the caller (r: what starting it returned). */
static int started(BusLater *l, int r, VbError *e, sd_bus_error *error) {
        if (r < 0) {
                bus_later_free(l);
                return bus_reply_vb_error(error, e, r);
        }
        return 1;
}

static BusLater *later(const Domain *d, sd_bus_message *m) {
        return bus_later_new(server_of(d), m);
}

int bus_domain_method_create_snapshot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusLater *l;
        VbError e = VB_ERROR_NULL;
        void *def = NULL;
        uint64_t flags;
        int r;

        r = bus_parse_document(server_of(d), m, &snapshot_spec, 0, d, &def, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = later(d, m);
        if (!l) {
                snapshot_def_free(def);
                return -ENOMEM;
        }
        r = manager_snapshot_create(d->manager, d, def, flags, on_created, l, &e);
        return started(l, r, &e, error);
}

static int reply_list(sd_bus_message *m, DomainSnapshot **list, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_reply_list_begin(m, &reply);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = bus_reply_list_add(reply, bus_domain_snapshot_path(list[i]));
        if (r < 0)
                return r;
        return bus_reply_list_end(reply);
}

int bus_domain_method_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        return reply_list(m, d->snapshots, d->n_snapshots);
}

int bus_domain_property_get_current_snapshot(sd_bus *bus, const char *path, const char *interface,
                                             const char *property, sd_bus_message *reply, void *userdata,
                                             sd_bus_error *error) {
        Domain *d = userdata;
        _cleanup_free_ char *p = d->current_snapshot ? bus_domain_snapshot_path(d->current_snapshot) : strdup("/");

        return p ? sd_bus_message_append(reply, "o", p) : -ENOMEM;
}

/* The snapshot's own members -------------------------------------------------------------------- */

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *xml = NULL;
        DomainSnapshot *s = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = manager_snapshot_get_xml(s, &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static int begin_manage(DomainSnapshot *s, sd_bus_message *m, uint64_t allowed, uint64_t *ret_flags,
                        sd_bus_error *error) {
        const char *details[] = { "domain", s->domain->name, "snapshot", s->name, NULL };

        return bus_begin_flags_call(server_of(s->domain), m, allowed, BUS_ACTION_DOMAIN_MANAGE, details, ret_flags,
                                    error);
}

static int method_revert(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DomainSnapshot *s = userdata;
        BusLater *l;
        VbError e = VB_ERROR_NULL;
        int r;

        r = begin_manage(s, m, 0, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = later(s->domain, m);
        if (!l)
                return -ENOMEM;
        r = manager_snapshot_revert(s->domain->manager, s, 0, on_done, l, &e);
        return started(l, r, &e, error);
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DomainSnapshot *s = userdata;
        BusLater *l;
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = begin_manage(s, m, DELETE_FLAGS, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if ((flags & SNAPSHOT_DELETE_CHILDREN) && (flags & SNAPSHOT_DELETE_CHILDREN_ONLY))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Flags 1 (with children) and 2 (children only) exclude each other");
        l = later(s->domain, m);
        if (!l)
                return -ENOMEM;
        r = manager_snapshot_delete(s->domain->manager, s, flags, on_done, l, &e);
        return started(l, r, &e, error);
}

static int method_list_children(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        DomainSnapshot *s = userdata, **list = NULL;
        uint64_t flags;
        size_t n;
        int r;

        r = bus_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = domain_snapshot_children(s->domain, s, &list, &n);
        if (r < 0)
                return r;
        r = reply_list(m, list, n);
        free(list);
        return r;
}

static int property_get_parent(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        DomainSnapshot *parent = domain_snapshot_parent(userdata);
        _cleanup_free_ char *p = parent ? bus_domain_snapshot_path(parent) : strdup("/");

        return p ? sd_bus_message_append(reply, "o", p) : -ENOMEM;
}

static int property_get_domain(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *p = bus_domain_path(((DomainSnapshot *) userdata)->domain);

        return p ? sd_bus_message_append(reply, "o", p) : -ENOMEM;
}

#define SNAP_PROPERTY_GETTER(fn, sig, expr) BUS_PROPERTY_GETTER(fn, DomainSnapshot, s, sig, expr)

SNAP_PROPERTY_GETTER(property_get_name, "s", s->name);
SNAP_PROPERTY_GETTER(property_get_creation_time, "t", s->def->creation_time);
SNAP_PROPERTY_GETTER(property_get_state, "s", snapshot_state_to_string(s->def->state));
SNAP_PROPERTY_GETTER(property_get_kind, "s", snapshot_kind_to_string(snapshot_def_kind(s->def)));
SNAP_PROPERTY_GETTER(property_get_is_current, "b", domain_snapshot_is_current(s));

static const sd_bus_vtable snapshot_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Domain", "o", property_get_domain, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Parent", "o", property_get_parent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreationTime", "t", property_get_creation_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", property_get_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("IsCurrent", "b", property_get_is_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Revert", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_revert,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Delete", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_delete,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListChildren", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", snapshots),
                                method_list_children, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_domain_snapshot_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_DOMAIN_PREFIX, VB_DOMAIN_SNAPSHOT_INTERFACE, snapshot_vtable,
                                       find_snapshot, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the DomainSnapshot objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_DOMAIN_PREFIX, enumerate_snapshots, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the DomainSnapshot enumerator: %m");
        return 0;
}

void bus_domain_snapshot_on_added(void *userdata, DomainSnapshot *s) {
        bus_object_emit_added(userdata, bus_domain_snapshot_path(s), VB_DOMAIN_SNAPSHOT_INTERFACE);
}

void bus_domain_snapshot_on_removed(void *userdata, DomainSnapshot *s) {
        bus_object_emit_removed(userdata, bus_domain_snapshot_path(s), VB_DOMAIN_SNAPSHOT_INTERFACE);
}

void bus_domain_snapshot_on_changed(void *userdata, DomainSnapshot *s, const char * const *properties) {
        bus_object_emit_changed(userdata, bus_domain_snapshot_path(s), VB_DOMAIN_SNAPSHOT_INTERFACE, properties);
}
