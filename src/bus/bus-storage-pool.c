/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.StoragePool on /org/virtbus1/storagepool/<uuid hex>, and the Manager's pool methods. */
#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "bus/bus-storage.h"
#include "util/log.h"

/* Larger definitions are refused before parsing. */
#define POOL_XML_MAX (256U * 1024U)

#define XML_INACTIVE UINT64_C(1)

char *bus_storage_pool_path(const StoragePool *p) {
        char buf[BUS_UUID_PATH_MAX(VB_STORAGE_POOL_PREFIX)];

        return strdup(bus_uuid_path(VB_STORAGE_POOL_PREFIX, p->uuid, buf));
}

StoragePool *bus_storage_pool_from_path(BusServer *s, const char *path) {
        char uuid[37];

        if (bus_uuid_from_path(VB_STORAGE_POOL_PREFIX, path, uuid) < 0)
                return NULL;
        return storage_pool_by_uuid(s->manager->storage, uuid);
}

static StorageRegistry *registry_of(BusServer *s) {
        return s->manager->storage;
}

static BusServer *server_of(StoragePool *p) {
        return p->registry->events.userdata;
}

static int find_pool(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                     sd_bus_error *error) {
        return bus_object_found(bus_storage_pool_from_path(userdata, path), found);
}

static char *path_of(const void *p) {
        return bus_storage_pool_path(p);
}

static int enumerate_pools(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        StorageRegistry *r = registry_of(userdata);

        return bus_object_enumerate((const void * const *) r->pools, r->n_pools, path_of, nodes);
}

/* In a parse worker (bus-parse.h): pure. */
static int parse_definition(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        StoragePoolDef *def = NULL;
        int r;

        r = storage_pool_def_parse_string(xml, flags, &def, reterr);
        if (r >= 0)
                *ret = def;
        return r;
}

static void free_definition(void *def) {
        storage_pool_def_free(def);
}

static const char *definition_name(const void *def) {
        return ((const StoragePoolDef *) def)->name;
}

/* "st": the definition and flags, parsed off the event loop; polkit with the pool's name as detail. */
static const BusParseSpec definition_spec = {
        .what = "definition",
        .max = POOL_XML_MAX,
        .parse = parse_definition,
        .free = free_definition,
        .action = VB_STORAGE_ACTION_MANAGE,
        .detail_key = "pool",
        .name = definition_name,
};

static void on_created(StoragePool *p, int r, const VbError *e, void *userdata) {
        sd_bus_message *m = userdata;

        if (r >= 0 && p)
                (void) bus_reply_path(m, bus_storage_pool_path(p));
        else
                bus_reply_later(m, r < 0 ? r : -ESRCH, e);
        sd_bus_message_unref(m);
}

static int define_or_create(sd_bus_message *m, BusServer *s, bool create, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        void *def = NULL;
        StoragePool *p;
        uint64_t flags, mark = bus_durable_mark(s);
        int r;

        r = bus_parse_document(s, m, &definition_spec, 0, NULL, &def, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (create) {
                /* Started in core's worker (a mount, the volumes read): answered with the path when done. */
                r = storage_pool_create_async(registry_of(s), def, on_created, sd_bus_message_ref(m), &e);
                if (r < 0) {
                        sd_bus_message_unref(m);
                        return bus_reply_vb_error(error, &e, r);
                }
                return 1;
        }
        r = storage_pool_define(registry_of(s), def, &p, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return bus_reply_path_durable(s, m, mark, bus_storage_pool_path(p)); /* once the definition is on disk */
}

int bus_manager_method_define_storage_pool(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return define_or_create(m, userdata, false, error);
}

int bus_manager_method_create_storage_pool(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return define_or_create(m, userdata, true, error);
}

int bus_manager_method_list_storage_pools(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StorageRegistry *reg = registry_of(userdata);
        uint64_t flags;
        int r;

        r = bus_read_flags(m, BUS_LIST_ACTIVE | BUS_LIST_INACTIVE, &flags, error);
        if (r < 0)
                return r;
        r = bus_reply_list_begin(m, &reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < reg->n_pools; i++) {
                if (!bus_list_wants(flags, storage_pool_is_active(reg->pools[i])))
                        continue;
                r = bus_reply_list_add(reply, bus_storage_pool_path(reg->pools[i]));
                if (r < 0)
                        return r;
        }
        return bus_reply_list_end(reply);
}

int bus_manager_method_get_storage_pool_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        StoragePool *p;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        p = storage_pool_by_name(registry_of(userdata), name);
        if (!p)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchStoragePool", "No storage pool named '%s'", name);
        return bus_reply_path(m, bus_storage_pool_path(p));
}

int bus_manager_method_get_storage_vol_by_path(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *path;
        StorageVol *v;
        int r;

        r = sd_bus_message_read(m, "s", &path);
        if (r < 0)
                return r;
        v = storage_vol_by_path(registry_of(userdata), path);
        if (!v)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchStorageVol", "No volume at '%s'", path);
        return bus_reply_path(m, bus_storage_vol_path(v));
}

typedef int (*PoolOp)(StorageRegistry *r, StoragePool *p, VbError *reterr);
typedef int (*PoolAsyncOp)(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                           VbError *reterr);

/* Delete, Undefine: flags (none yet), polkit with the pool as detail, core. */
static int run_manage(sd_bus_message *m, StoragePool *p, sd_bus_error *error, PoolOp op) {
        BusServer *s = server_of(p);
        const char *details[] = { "pool", p->name, NULL };
        VbError e = VB_ERROR_NULL;
        uint64_t mark = bus_durable_mark(s);
        int r;

        r = bus_begin_flags_call(s, m, 0, VB_STORAGE_ACTION_MANAGE, details, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* The pool may go away in op (an inactive one undefined): reply first-thing after (Undefine: once
         * the definition's removal is on disk). */
        r = op(p->registry, p, &e);
        return bus_reply_done_durable(s, m, mark, r, &e, error);
}

static void on_pool_done(StoragePool *p, int r, const VbError *e, void *userdata) {
        sd_bus_message *m = userdata;

        bus_reply_later(m, r, e);
        sd_bus_message_unref(m);
}

/* Start, Stop, Build, Refresh: the host part runs in core's worker (mkfs, a mount, a directory scan can
 * take long): answered when it is done, the pool busy meanwhile. flags: none yet (Refresh has none). */
static int run_manage_async(sd_bus_message *m, StoragePool *p, bool has_flags, sd_bus_error *error, PoolAsyncOp op) {
        const char *details[] = { "pool", p->name, NULL };
        VbError e = VB_ERROR_NULL;
        int r;

        if (has_flags)
                r = bus_begin_flags_call(server_of(p), m, 0, VB_STORAGE_ACTION_MANAGE, details, NULL, error);
        else
                r = bus_polkit_check(server_of(p)->polkit, m, VB_STORAGE_ACTION_MANAGE, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = op(p->registry, p, on_pool_done, sd_bus_message_ref(m), &e);
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_async(m, userdata, true, error, storage_pool_start_async);
}

static int method_stop(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_async(m, userdata, true, error, storage_pool_stop);
}

static int method_build(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_async(m, userdata, true, error, storage_pool_build);
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage(m, userdata, error, storage_pool_delete);
}

static int method_undefine(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage(m, userdata, error, storage_pool_undefine);
}

static int method_refresh(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_async(m, userdata, false, error, storage_pool_refresh);
}

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *xml = NULL;
        StoragePool *p = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, XML_INACTIVE, &flags, error);
        if (r < 0)
                return r;
        r = storage_pool_get_xml(p, (flags & XML_INACTIVE) ? STORAGE_XML_INACTIVE : 0, &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static int method_list_volumes(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint64_t flags;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StoragePool *p = userdata;
        int r;

        r = bus_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = bus_reply_list_begin(m, &reply);
        for (size_t i = 0; r >= 0 && i < p->n_vols; i++)
                r = bus_reply_list_add(reply, bus_storage_vol_path(p->vols[i]));
        if (r < 0)
                return r;
        return bus_reply_list_end(reply);
}

static int method_get_volume_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        StoragePool *p = userdata;
        const char *name;
        StorageVol *v;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        v = storage_vol_by_name(p, name);
        if (!v)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchStorageVol", "No volume named '%s' in pool '%s'",
                                         name, p->name);
        return bus_reply_path(m, bus_storage_vol_path(v));
}

#define POOL_PROPERTY_GETTER(fn, sig, expr) BUS_PROPERTY_GETTER(fn, StoragePool, p, sig, expr)

POOL_PROPERTY_GETTER(property_get_name, "s", p->name);
POOL_PROPERTY_GETTER(property_get_uuid, "s", p->uuid);
POOL_PROPERTY_GETTER(property_get_type, "s", storage_pool_type_to_string(p->def->type));
POOL_PROPERTY_GETTER(property_get_active, "b", (int) storage_pool_is_active(p));
POOL_PROPERTY_GETTER(property_get_persistent, "b", (int) p->persistent);
POOL_PROPERTY_GETTER(property_get_autostart, "b", (int) p->autostart);
POOL_PROPERTY_GETTER(property_get_capacity, "t", p->info.capacity);
POOL_PROPERTY_GETTER(property_get_allocation, "t", p->info.allocation);
POOL_PROPERTY_GETTER(property_get_available, "t", p->info.available);
POOL_PROPERTY_GETTER(property_get_path, "s", strempty(p->def->target_path));

static int property_set_autostart(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        StoragePool *p = userdata;
        VbError e = VB_ERROR_NULL;
        int b, r;

        r = sd_bus_message_read(value, "b", &b);
        if (r < 0)
                return r;
        r = storage_pool_set_autostart(p->registry, p, b, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return 1;
}

#define FLAGS_METHOD(name, handler) \
        SD_BUS_METHOD_WITH_ARGS(name, SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, handler, SD_BUS_VTABLE_UNPRIVILEGED)

static const sd_bus_vtable pool_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UUID", "s", property_get_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Type", "s", property_get_type, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Active", "b", property_get_active, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_persistent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("Autostart", "b", property_get_autostart, property_set_autostart, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Capacity", "t", property_get_capacity, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Allocation", "t", property_get_allocation, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Available", "t", property_get_available, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Path", "s", property_get_path, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        FLAGS_METHOD("Start", method_start),
        FLAGS_METHOD("Stop", method_stop),
        FLAGS_METHOD("Build", method_build),
        FLAGS_METHOD("Delete", method_delete),
        SD_BUS_METHOD_WITH_ARGS("Refresh", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_refresh,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        FLAGS_METHOD("Undefine", method_undefine),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVolumes", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", volumes),
                                method_list_volumes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetVolumeByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", volume),
                                method_get_volume_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateVolume", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", volume),
                                bus_storage_pool_method_create_volume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateVolumeFrom", SD_BUS_ARGS("s", xml, "o", source, "t", flags),
                                SD_BUS_RESULT("o", volume), bus_storage_pool_method_create_volume_from,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Before sd-bus looks at the vtable: calls to pools that went away get a plain answer, and writes of
 * Autostart ask polkit before the setter runs. */
static int set_autostart(BusServer *s, sd_bus_message *m, StoragePool *p, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        uint64_t mark = bus_durable_mark(s);
        int b, r;

        r = bus_read_property_set_bool(m, &b, error);
        if (r < 0)
                return r;
        r = storage_pool_set_autostart(p->registry, p, b, &e);
        return bus_reply_done_durable(s, m, mark, r, &e, error);
}

static int pool_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *path = sd_bus_message_get_path(m), *interface, *property;
        StoragePool *p = bus_storage_pool_from_path(s, path);
        int r;

        if (!p && !streq(path, VB_STORAGE_POOL_PREFIX) &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Introspectable", NULL))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No storage pool at %s", path);
        if (!p || !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set"))
                return 0;
        r = sd_bus_message_read(m, "ss", &interface, &property);
        if (r < 0)
                return 0;
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        if (!streq(interface, VB_STORAGE_POOL_INTERFACE) || !streq(property, "Autostart"))
                return 0;
        r = bus_polkit_check(s->polkit, m, VB_STORAGE_ACTION_MANAGE, (const char *[]) { "pool", p->name, NULL }, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        return set_autostart(s, m, p, error); /* answered once the link is on disk */
}

static void on_added(void *userdata, StoragePool *p) {
        bus_object_emit_added(userdata, bus_storage_pool_path(p), VB_STORAGE_POOL_INTERFACE);
}

static void on_removed(void *userdata, StoragePool *p) {
        bus_object_emit_removed(userdata, bus_storage_pool_path(p), VB_STORAGE_POOL_INTERFACE);
}

static void on_changed(void *userdata, StoragePool *p, const char * const *properties) {
        bus_object_emit_changed(userdata, bus_storage_pool_path(p), VB_STORAGE_POOL_INTERFACE, properties);
}

static void on_vol_added(void *userdata, StorageVol *v) {
        bus_object_emit_added(userdata, bus_storage_vol_path(v), VB_STORAGE_VOL_INTERFACE);
}

static void on_vol_removed(void *userdata, StorageVol *v) {
        bus_object_emit_removed(userdata, bus_storage_vol_path(v), VB_STORAGE_VOL_INTERFACE);
}

int bus_storage_pool_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback(s->bus, NULL, VB_STORAGE_POOL_PREFIX, pool_gate, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the storage pool gate: %m");
        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_STORAGE_POOL_PREFIX, VB_STORAGE_POOL_INTERFACE, pool_vtable,
                                       find_pool, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the StoragePool objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_STORAGE_POOL_PREFIX, enumerate_pools, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the StoragePool enumerator: %m");
        storage_registry_set_events(s->manager->storage, &(StorageEvents) {
                .pool_added = on_added,
                .pool_removed = on_removed,
                .pool_changed = on_changed,
                .vol_added = on_vol_added,
                .vol_removed = on_vol_removed,
                .userdata = s,
        });
        return 0;
}
