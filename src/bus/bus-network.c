/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Network on /org/virtbus1/network/<uuid hex>, and the Manager's network methods. */
#include "bus/bus-authz.h"
#include "bus/bus-error.h"
#include "bus/bus-network.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "conf/conf-util.h"
#include "core/manager.h"
#include "util/log.h"

/* Larger definitions are refused before parsing. */
#define NETWORK_XML_MAX (1024U * 1024U)

#define XML_INACTIVE UINT64_C(1)

#define ACTION_MANAGE BUS_ACTION_NETWORK_MANAGE
#define ACTION_HOST_FILES BUS_ACTION_NETWORK_HOST_FILES

char *bus_network_path(const Network *n) {
        char buf[BUS_UUID_PATH_MAX(VB_NETWORK_PREFIX)];

        return strdup(bus_uuid_path(VB_NETWORK_PREFIX, n->uuid, buf));
}

Network *bus_network_from_path(BusServer *s, const char *path) {
        char uuid[37];

        if (bus_uuid_from_path(VB_NETWORK_PREFIX, path, uuid) < 0)
                return NULL;
        return network_registry_by_uuid(s->manager->networks, uuid);
}

static NetworkRegistry *registry_of(BusServer *s) {
        return s->manager->networks;
}

static BusServer *server_of(Network *n) {
        return n->registry->events.userdata;
}

static int find_network(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error) {
        return bus_object_found(bus_network_from_path(userdata, path), found);
}

static char *path_of(const void *n) {
        return bus_network_path(n);
}

static int enumerate_networks(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        NetworkRegistry *r = registry_of(userdata);

        return bus_object_enumerate((const void * const *) r->networks, r->n_networks, path_of, nodes);
}

/* In a parse worker (bus-parse.h): pure. */
static int parse_definition(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        NetworkDef *def = NULL;
        int r;

        r = network_def_parse_string(xml, flags, &def, reterr);
        if (r >= 0)
                *ret = def;
        return r;
}

static void free_definition(void *def) {
        network_def_free(def);
}

static const char *definition_name(const void *def) {
        return ((const NetworkDef *) def)->name;
}

/* Once the caller may manage networks: what the definition asks of the host (core/network-access.c).
 * userdata: the NetworkCaller, filled for core. A TFTP root the caller cannot read themselves is the one
 * refusal polkit can lift (org.virtbus1.network.host-files, with the path as detail). */
static int authorize_host(BusServer *s, sd_bus_message *m, const void *parsed, void *userdata, sd_bus_error *error) {
        /* The check also records the caller's uid in the definition (core does it again when it saves). */
        NetworkDef *def = (NetworkDef *) parsed;
        NetworkCaller *caller = userdata;
        VbError e = VB_ERROR_NULL;
        int r;

        r = bus_polkit_sender_uid(s->polkit, m, &caller->uid);
        if (r < 0)
                return r;
        caller->host_files = false;
        r = network_access_check(registry_of(s), def, caller, &e);
        if (r == -EACCES && caller->denied_path) {
                _cleanup_free_ char *path = TAKE_PTR(caller->denied_path);
                const char *details[] = { "network", strempty(def->name), "path", path, NULL };

                r = bus_polkit_check(s->polkit, m, ACTION_HOST_FILES, details, error);
                if (r == 0) {
                        vb_error_free(&e);
                        return 0;
                }
                if (r < 0) {
                        /* Core's answer names the path and why; polkit's would only name the action. */
                        sd_bus_error_free(error);
                        return bus_reply_vb_error(error, &e, -EACCES);
                }
                vb_error_free(&e);
                caller->host_files = true;
                r = network_access_check(registry_of(s), def, caller, &e);
        }
        free(caller->denied_path);
        caller->denied_path = NULL;
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return 1;
}

/* "st": the definition and flags, parsed off the event loop; polkit with the network's name as detail;
 * then what it asks of the host. */
static const BusParseSpec definition_spec = {
        .what = "definition",
        .max = NETWORK_XML_MAX,
        .parse = parse_definition,
        .free = free_definition,
        .action = ACTION_MANAGE,
        .detail_key = "network",
        .name = definition_name,
        .authorize_more = authorize_host,
};

static void on_created(Network *n, int r, const VbError *e, void *userdata) {
        if (r < 0)
                bus_later_reply(userdata, r, e);
        else
                bus_later_reply_path(userdata, bus_network_path(n));
}

/* DefineNetwork (create false) and CreateNetwork: reply with the network's path (CreateNetwork's once a
 * thread has started it). */
static int define_or_create(sd_bus_message *m, BusServer *s, bool create, sd_bus_error *error) {
        NetworkCaller caller = {};
        VbError e = VB_ERROR_NULL;
        void *def = NULL;
        uint64_t flags, mark = bus_durable_mark(s);
        Network *n;
        int r;

        r = bus_parse_document(s, m, &definition_spec, 0, &caller, &def, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (create) {
                BusLater *l = bus_later_new(s, m);

                if (!l) {
                        (void) network_def_free(def);
                        return -ENOMEM;
                }
                r = network_create_def(registry_of(s), def, &caller, on_created, l, &e);
                return bus_later_end(l, r == 0, r, &e, error);
        }
        r = network_define_def(registry_of(s), def, &caller, &n, NULL, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return bus_reply_path_durable(s, m, mark, bus_network_path(n)); /* once the definition is on disk */
}

int bus_manager_method_define_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return define_or_create(m, userdata, false, error);
}

int bus_manager_method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return define_or_create(m, userdata, true, error);
}

int bus_manager_method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        NetworkRegistry *reg = registry_of(userdata);
        uint64_t flags;
        int r;

        r = bus_read_flags(m, BUS_LIST_ACTIVE | BUS_LIST_INACTIVE, &flags, error);
        if (r < 0)
                return r;
        r = bus_reply_list_begin(m, &reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < reg->n_networks; i++) {
                if (!bus_list_wants(flags, network_is_active(reg->networks[i])))
                        continue;
                r = bus_reply_list_add(reply, bus_network_path(reg->networks[i]));
                if (r < 0)
                        return r;
        }
        return bus_reply_list_end(reply);
}

int bus_manager_method_get_network_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *name;
        Network *n;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        n = network_registry_by_name(registry_of(s), name);
        if (!n)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchNetwork", "No network named '%s'", name);
        return bus_reply_path(m, bus_network_path(n));
}

typedef int (*NetworkOp)(NetworkRegistry *r, Network *n, VbError *reterr);

/* Start, Stop, Undefine: flags (none yet), polkit, the registry. */
static int run_manage(sd_bus_message *m, Network *n, sd_bus_error *error, NetworkOp op) {
        BusServer *s = server_of(n);
        const char *details[] = { "network", n->name, NULL };
        VbError e = VB_ERROR_NULL;
        uint64_t mark = bus_durable_mark(s);
        int r;

        r = bus_begin_flags_call(s, m, 0, ACTION_MANAGE, details, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* The network may go away in op (a transient one stopped): reply first-thing after (Undefine:
         * once the definition's removal is on disk). */
        r = op(n->registry, n, &e);
        return bus_reply_done_durable(s, m, mark, r, &e, error);
}

typedef int (*NetworkAsyncOp)(NetworkRegistry *r, Network *n, NetworkDone done, void *userdata, VbError *reterr);

/* Start, Stop: as run_manage(), answered once a thread has done the host's steps (bridge, nftables,
 * dnsmasq); the network is busy meanwhile. */
static int run_manage_later(sd_bus_message *m, Network *n, sd_bus_error *error, NetworkAsyncOp op) {
        BusServer *s = server_of(n);
        const char *details[] = { "network", n->name, NULL };
        VbError e = VB_ERROR_NULL;
        BusLater *l;
        int r;

        r = bus_begin_flags_call(s, m, 0, ACTION_MANAGE, details, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = op(n->registry, n, bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_later(m, userdata, error, network_start_async);
}

static int method_stop(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage_later(m, userdata, error, network_stop_async);
}

static int method_undefine(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage(m, userdata, error, network_undefine);
}

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Network *n = userdata;
        VbError e = VB_ERROR_NULL;
        _cleanup_free_ char *xml = NULL;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, XML_INACTIVE, &flags, error);
        if (r < 0)
                return r;
        r = network_get_xml(n->registry, n, (flags & XML_INACTIVE) ? NETWORK_XML_INACTIVE : 0, &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static int method_get_dhcp_leases(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Network *n = userdata;
        const NetworkIpDef *ip;
        VbError e = VB_ERROR_NULL;
        HostDhcpLease *leases = NULL;
        size_t n_leases = 0;
        const char *mac;
        uint8_t parsed[6];
        int r;

        r = sd_bus_message_read(m, "s", &mac);
        if (r < 0)
                return r;
        if (!isempty(mac) && conf_mac_parse(mac, parsed) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' is not a MAC address (expected six hex bytes as 52:54:00:12:34:56, or '' for all)", mac);
        r = network_get_leases(n->registry, n, mac, &leases, &n_leases, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        ip = network_def_ipv4(n->live);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(stssuss)");
        for (size_t i = 0; r >= 0 && i < n_leases; i++)
                r = sd_bus_message_append(reply, "(stssuss)", strempty(n->live->bridge), leases[i].expiry, leases[i].mac,
                                          leases[i].ip, ip ? ip->prefix : 0u, strempty(leases[i].hostname),
                                          strempty(leases[i].client_id));
        host_dhcp_leases_free(leases, n_leases);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

#define NETWORK_PROPERTY_GETTER(fn, sig, expr) BUS_PROPERTY_GETTER(fn, Network, n, sig, expr)

NETWORK_PROPERTY_GETTER(property_get_name, "s", n->name);
NETWORK_PROPERTY_GETTER(property_get_uuid, "s", n->uuid);
NETWORK_PROPERTY_GETTER(property_get_active, "b", (int) network_is_active(n));
NETWORK_PROPERTY_GETTER(property_get_persistent, "b", (int) network_is_persistent(n));
NETWORK_PROPERTY_GETTER(property_get_autostart, "b", (int) n->autostart);
NETWORK_PROPERTY_GETTER(property_get_bridge, "s", strempty(network_current_def(n)->bridge));
NETWORK_PROPERTY_GETTER(property_get_forward_mode, "s", network_forward_mode_name(n));

static int property_set_autostart(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        Network *n = userdata;
        VbError e = VB_ERROR_NULL;
        int b, r;

        r = sd_bus_message_read(value, "b", &b);
        if (r < 0)
                return r;
        r = network_set_autostart(n->registry, n, b, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return 1;
}

static const sd_bus_vtable network_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UUID", "s", property_get_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Active", "b", property_get_active, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_persistent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("Autostart", "b", property_get_autostart, property_set_autostart, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Bridge", "s", property_get_bridge, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ForwardMode", "s", property_get_forward_mode, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_start,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stop", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_stop,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Undefine", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_undefine,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDHCPLeases", SD_BUS_ARGS("s", mac), SD_BUS_RESULT("a(stssuss)", leases),
                                method_get_dhcp_leases, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Before sd-bus looks at the vtable: calls to networks that went away get a plain answer, and writes of
 * Autostart ask polkit (org.virtbus1.network.manage) before the setter runs. */
static int set_autostart(BusServer *s, sd_bus_message *m, Network *n, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        uint64_t mark = bus_durable_mark(s);
        int b, r;

        r = bus_read_property_set_bool(m, &b, error);
        if (r < 0)
                return r;
        r = network_set_autostart(n->registry, n, b, &e);
        return bus_reply_done_durable(s, m, mark, r, &e, error);
}

static int network_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *path = sd_bus_message_get_path(m), *interface, *property;
        Network *n = bus_network_from_path(s, path);
        const BusAuthzRule *rule;
        int r;

        if (!n && !streq(path, VB_NETWORK_PREFIX) &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Introspectable", NULL))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No network at %s", path);
        if (!n || !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set"))
                return 0;
        r = sd_bus_message_read(m, "ss", &interface, &property);
        if (r < 0)
                return 0;
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        rule = bus_authz_find(interface, property, BUS_AUTHZ_PROPERTY_WRITE);
        if (!streq(interface, VB_NETWORK_INTERFACE) || !rule)
                return 0;
        r = bus_polkit_check(s->polkit, m, rule->action, (const char *[]) { "network", n->name, NULL }, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (!streq(property, "Autostart"))
                return 0;
        return set_autostart(s, m, n, error); /* answered once the link is on disk */
}

static void on_added(void *userdata, Network *n) {
        bus_object_emit_added(userdata, bus_network_path(n), VB_NETWORK_INTERFACE);
}

static void on_removed(void *userdata, Network *n) {
        bus_object_emit_removed(userdata, bus_network_path(n), VB_NETWORK_INTERFACE);
}

static void on_changed(void *userdata, Network *n, const char * const *properties) {
        bus_object_emit_changed(userdata, bus_network_path(n), VB_NETWORK_INTERFACE, properties);
}

int bus_network_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback(s->bus, NULL, VB_NETWORK_PREFIX, network_gate, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the network gate: %m");
        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_NETWORK_PREFIX, VB_NETWORK_INTERFACE, network_vtable,
                                       find_network, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Network objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_NETWORK_PREFIX, enumerate_networks, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Network enumerator: %m");
        network_registry_set_events(s->manager->networks, &(NetworkEvents) {
                .added = on_added,
                .removed = on_removed,
                .changed = on_changed,
                .userdata = s,
        });
        return 0;
}
