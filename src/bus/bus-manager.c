/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Manager on /org/virtbus1. */
#include "bus/bus-authz.h"
#include "bus/bus-capabilities.h"
#include "bus/bus-domain-stats.h"
#include "bus/bus-domain-snapshot.h"
#include "bus/bus-domain-save.h"
#include "bus/bus-domain.h"
#include "bus/bus-manager.h"
#include "bus/bus-network.h"
#include "bus/bus-nodedev.h"
#include "bus/bus-storage.h"
#include "config.h"
#include "util/log.h"

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_driver(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        return sd_bus_message_append(reply, "s", manager_driver_name(s->manager));
}

static int property_get_log_level(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_level_to_string(log_get_max_level()));
}

static int property_set_log_level(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        const char *s;
        int level, r;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        level = log_level_from_string(s);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid log level '%s' (expected emerg, alert, crit, err, warning, "
                                         "notice, info or debug)", s);
        if (level != log_get_max_level()) {
                log_set_max_level(level);
                log_info("Log level set to '%s'.", s);
                (void) sd_bus_emit_properties_changed(bus, path, interface, "LogLevel", NULL);
        }
        return 1;
}

static bool startswith_path(const char *path, const char *prefix) {
        size_t n = strlen(prefix);
        return path && strncmp(path, prefix, n) == 0 && (path[n] == '/' || path[n] == 0);
}

int bus_property_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *interface, *property, *name = NULL, *details[] = { "domain", NULL, NULL };
        const BusAuthzRule *rule;
        int r;

        /* A call to an object that went away: say so plainly, rather than sd-bus' "Unknown method". */
        if (startswith_path(sd_bus_message_get_path(m), VB_DOMAIN_PREFIX) && strstr(sd_bus_message_get_path(m), "/snapshot/") &&
            !bus_domain_snapshot_from_path(s, sd_bus_message_get_path(m)) &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Introspectable", NULL))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No snapshot at %s",
                                         sd_bus_message_get_path(m));
        if (startswith_path(sd_bus_message_get_path(m), VB_DOMAIN_PREFIX) && !strstr(sd_bus_message_get_path(m), "/snapshot") &&
            !bus_domain_from_path(s, sd_bus_message_get_path(m)) &&
            !streq(sd_bus_message_get_path(m), VB_DOMAIN_PREFIX) &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Introspectable", NULL))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No domain at %s",
                                         sd_bus_message_get_path(m));

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set"))
                return 0;
        r = sd_bus_message_read(m, "ss", &interface, &property);
        if (r < 0)
                return 0; /* Let sd-bus answer the malformed call itself. */
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;

        rule = bus_authz_find(interface, property, BUS_AUTHZ_PROPERTY_WRITE);
        if (!rule || (!streq(interface, VB_MANAGER_INTERFACE) && !streq(interface, VB_DOMAIN_INTERFACE)))
                return 0; /* Read-only (sd-bus says so), or another gate's (bus-network.c). */
        if (streq(interface, VB_DOMAIN_INTERFACE)) {
                if (bus_domain_polkit_details(s, sd_bus_message_get_path(m), &name) < 0)
                        return 0; /* No such object: sd-bus says so. */
                details[1] = name;
        }
        r = bus_polkit_check(s->polkit, m, rule->action, name ? details : NULL, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* Wait for polkit; the call comes back here with the answer. */
        if (streq(interface, VB_DOMAIN_INTERFACE) && streq(property, "Autostart"))
                return bus_domain_set_autostart(s, m, error); /* answered once durable */
        return 0;         /* Authorized: sd-bus runs the setter. */
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Driver", "s", property_get_driver, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get_log_level, property_set_log_level, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DefineDomain", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", domain),
                                bus_manager_method_define_domain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateDomain", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", domain),
                                bus_manager_method_create_domain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RestoreDomain", SD_BUS_ARGS("h", fd, "s", xml, "t", flags), SD_BUS_RESULT("o", domain),
                                bus_manager_method_restore_domain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDomains", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", domains),
                                bus_manager_method_list_domains, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDomainByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", domain),
                                bus_manager_method_get_domain_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDomainByUUID", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("o", domain),
                                bus_manager_method_get_domain_by_uuid, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetAllDomainStats", SD_BUS_ARGS("t", groups, "t", flags),
                                SD_BUS_RESULT("a(oa{sv})", stats), bus_manager_method_get_all_domain_stats,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListNodeDevices", SD_BUS_ARGS("s", capability, "t", flags),
                                SD_BUS_RESULT("ao", devices), bus_manager_method_list_node_devices,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNodeDeviceByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", device),
                                bus_manager_method_get_node_device_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DefineNetwork", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", network),
                                bus_manager_method_define_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateNetwork", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", network),
                                bus_manager_method_create_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListNetworks", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", networks),
                                bus_manager_method_list_networks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetNetworkByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", network),
                                bus_manager_method_get_network_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DefineStoragePool", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", pool),
                                bus_manager_method_define_storage_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateStoragePool", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", pool),
                                bus_manager_method_create_storage_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListStoragePools", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", pools),
                                bus_manager_method_list_storage_pools, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStoragePoolByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", pool),
                                bus_manager_method_get_storage_pool_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStorageVolByPath", SD_BUS_ARGS("s", path), SD_BUS_RESULT("o", volume),
                                bus_manager_method_get_storage_vol_by_path, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDomainCapabilities",
                                SD_BUS_ARGS("s", emulator, "s", arch, "s", machine, "s", virttype, "t", flags),
                                SD_BUS_RESULT("s", xml), bus_manager_method_get_domain_capabilities,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCapabilities", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", xml),
                                bus_manager_method_get_capabilities, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
