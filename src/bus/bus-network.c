/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Network on /org/virtbus1/network/<uuid hex>, and the Manager's network methods. */
#include <ctype.h>
#include <stdio.h>

#include "bus/bus-error.h"
#include "bus/bus-network.h"
#include "conf/conf-util.h"
#include "core/manager.h"
#include "util/log.h"

/* Larger definitions are refused before parsing. */
#define NETWORK_XML_MAX (1024U * 1024U)

#define LIST_ACTIVE UINT64_C(1)
#define LIST_INACTIVE UINT64_C(2)
#define XML_INACTIVE UINT64_C(1)

#define ACTION_MANAGE "org.virtbus1.network.manage"

char *bus_network_path(const Network *n) {
        char hex[33], *p = hex, *path;

        for (const char *u = n->uuid; *u && p < hex + 32; u++)
                if (*u != '-')
                        *p++ = (char) tolower((unsigned char) *u);
        *p = 0;
        return asprintf(&path, VB_NETWORK_PREFIX "/%s", hex) < 0 ? NULL : path;
}

Network *bus_network_from_path(BusServer *s, const char *path) {
        const char *hex;
        char uuid[37];

        if (strncmp(path, VB_NETWORK_PREFIX "/", strlen(VB_NETWORK_PREFIX "/")) != 0)
                return NULL;
        hex = path + strlen(VB_NETWORK_PREFIX "/");
        if (strlen(hex) != 32)
                return NULL;
        for (const char *c = hex; *c; c++)
                if (!isxdigit((unsigned char) *c) || isupper((unsigned char) *c))
                        return NULL;
        snprintf(uuid, sizeof uuid, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
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
        Network *n = bus_network_from_path(userdata, path);

        if (!n)
                return 0;
        *found = n;
        return 1;
}

static int enumerate_networks(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        NetworkRegistry *r = registry_of(userdata);
        char **l = new0(char *, r->n_networks + 1);

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_networks; i++) {
                l[i] = bus_network_path(r->networks[i]);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 1;
}

static int reply_error(sd_bus_error *error, VbError *e, int r) {
        r = bus_error_from_vb(error, e, r);
        vb_error_free(e);
        return r;
}

static int reply_path(sd_bus_message *m, const Network *n) {
        _cleanup_free_ char *path = bus_network_path(n);

        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "o", path);
}

/* "st": the definition and flags, checked. Then polkit, with the network's name as detail. Returns 1 to
 * go on, 0 when polkit's answer is pending, < 0 on error. */
static int begin_xml_call(BusServer *s, sd_bus_message *m, const char **ret_xml, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        const char *xml, *details[] = { "network", NULL, NULL };
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "st", &xml, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (strlen(xml) > NETWORK_XML_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The definition is larger than %u bytes",
                                         NETWORK_XML_MAX);
        if (isempty(xml))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The definition is empty");
        name = network_def_peek_name(xml);
        details[1] = name ?: "";
        r = bus_polkit_check(s->polkit, m, ACTION_MANAGE, details, error);
        if (r <= 0)
                return r;
        *ret_xml = xml;
        return 1;
}

int bus_manager_method_define_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        const char *xml;
        Network *n;
        int r;

        r = begin_xml_call(s, m, &xml, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = network_define(registry_of(s), xml, &n, NULL, &e);
        if (r < 0)
                return reply_error(error, &e, r);
        return reply_path(m, n);
}

int bus_manager_method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        const char *xml;
        Network *n;
        int r;

        r = begin_xml_call(s, m, &xml, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = network_create(registry_of(s), xml, &n, &e);
        if (r < 0)
                return reply_error(error, &e, r);
        return reply_path(m, n);
}

int bus_manager_method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        NetworkRegistry *reg = registry_of(userdata);
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, LIST_ACTIVE | LIST_INACTIVE, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (size_t i = 0; i < reg->n_networks; i++) {
                bool active = network_is_active(reg->networks[i]);
                _cleanup_free_ char *path = NULL;

                if (((flags & LIST_ACTIVE) && !(flags & LIST_INACTIVE) && !active) ||
                    ((flags & LIST_INACTIVE) && !(flags & LIST_ACTIVE) && active))
                        continue;
                path = bus_network_path(reg->networks[i]);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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
        return reply_path(m, n);
}

typedef int (*NetworkOp)(NetworkRegistry *r, Network *n, VbError *reterr);

/* Start, Stop, Undefine: flags (none yet), polkit, the registry. */
static int run_manage(sd_bus_message *m, Network *n, sd_bus_error *error, NetworkOp op) {
        BusServer *s = server_of(n);
        const char *details[] = { "network", n->name, NULL };
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(s->polkit, m, ACTION_MANAGE, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* The network may go away in op (a transient one stopped): reply first-thing after. */
        r = op(n->registry, n, &e);
        if (r < 0)
                return reply_error(error, &e, r);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage(m, userdata, error, network_start);
}

static int method_stop(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_manage(m, userdata, error, network_stop);
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

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, XML_INACTIVE, error);
        if (r < 0)
                return r;
        r = network_get_xml(n->registry, n, (flags & XML_INACTIVE) ? NETWORK_XML_INACTIVE : 0, &xml, &e);
        if (r < 0)
                return reply_error(error, &e, r);
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
                return reply_error(error, &e, r);
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

#define NETWORK_PROPERTY_GETTER(fn, sig, expr)                                                             \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,         \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {                       \
                Network *n = userdata;                                                                     \
                return sd_bus_message_append(reply, sig, expr);                                            \
        }

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
                return reply_error(error, &e, r);
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
static int network_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *path = sd_bus_message_get_path(m), *interface, *property;
        Network *n = bus_network_from_path(s, path);
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
        if (!streq(interface, VB_NETWORK_INTERFACE) || !streq(property, "Autostart"))
                return 0;
        r = bus_polkit_check(s->polkit, m, ACTION_MANAGE, (const char *[]) { "network", n->name, NULL }, error);
        if (r < 0)
                return r;
        return r == 0 ? 1 : 0;
}

static void on_added(void *userdata, Network *n) {
        BusServer *s = userdata;
        _cleanup_free_ char *path = bus_network_path(n);

        if (path)
                (void) sd_bus_emit_interfaces_added(s->bus, path, VB_NETWORK_INTERFACE, NULL);
}

static void on_removed(void *userdata, Network *n) {
        BusServer *s = userdata;
        _cleanup_free_ char *path = bus_network_path(n);

        if (path)
                (void) sd_bus_emit_interfaces_removed(s->bus, path, VB_NETWORK_INTERFACE, NULL);
}

static void on_changed(void *userdata, Network *n, const char * const *properties) {
        BusServer *s = userdata;
        _cleanup_free_ char *path = bus_network_path(n);

        if (path)
                (void) sd_bus_emit_properties_changed_strv(s->bus, path, VB_NETWORK_INTERFACE, (char **) properties);
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
