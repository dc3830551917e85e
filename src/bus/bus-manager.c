/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Manager on /org/virtbus1. */
#include "bus/bus-manager.h"
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
        log_set_max_level(level);
        log_info("Log level set to '%s'.", s);
        return 1;
}

/* Which polkit action guards a write to which property of this object. */
static const struct {
        const char *interface;
        const char *property;
        const char *action;
} writable_properties[] = {
        { VB_MANAGER_INTERFACE, "LogLevel", "org.virtbus1.manage" },
};

int bus_manager_property_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *interface, *property;
        int r;

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Set"))
                return 0;
        r = sd_bus_message_read(m, "ss", &interface, &property);
        if (r < 0)
                return 0; /* Let sd-bus answer the malformed call itself. */
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(writable_properties); i++) {
                if (!streq(interface, writable_properties[i].interface) ||
                    !streq(property, writable_properties[i].property))
                        continue;
                r = bus_polkit_check(s->polkit, m, writable_properties[i].action, NULL, error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 1; /* Wait for polkit; the call comes back here with the answer. */
                return 0;         /* Authorized: sd-bus runs the setter. */
        }
        return 0;
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Driver", "s", property_get_driver, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get_log_level, property_set_log_level, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};
