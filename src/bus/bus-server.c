/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <unistd.h>

#include "bus/bus-domain-migrate.h"
#include "bus/bus-domain-save.h"
#include "bus/bus-domain-snapshot.h"
#include "bus/bus-capabilities.h"
#include "bus/bus-domain-device.h"
#include "bus/bus-domain.h"
#include "bus/bus-error.h"
#include "bus/bus-manager.h"
#include "bus/bus-network.h"
#include "bus/bus-parse.h"
#include "bus/bus-nodedev.h"
#include "bus/bus-server.h"
#include "bus/bus-storage.h"
#include "util/log.h"
#include "util/loop-watch.h"

int bus_check_flags(uint64_t flags, uint64_t allowed, sd_bus_error *error) {
        if (flags & ~allowed)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown flags 0x%" PRIx64 " (allowed: 0x%" PRIx64 ")",
                                         flags & ~allowed, allowed);
        return 0;
}

/* --user: the service serves its own user only, reads included. */
static int user_mode_filter(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        uid_t uid;
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;
        r = bus_polkit_sender_uid(s->polkit, m, &uid);
        if (r >= 0 && uid == geteuid())
                return 0;
        r = sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
                                       "This per-user service only serves its own user");
        return r < 0 ? r : 1;
}

/* Names each message for the slow-dispatch warning of the loop it is processed in. */
static int watch_filter(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint8_t type = 0;

        (void) sd_bus_message_get_type(m, &type);
        loop_watch_note("the D-Bus %s %s.%s on %s from %s",
                        type == SD_BUS_MESSAGE_METHOD_CALL ? "call" :
                        type == SD_BUS_MESSAGE_SIGNAL ? "signal" : "reply",
                        strna(sd_bus_message_get_interface(m)), strna(sd_bus_message_get_member(m)),
                        strna(sd_bus_message_get_path(m)), strna(sd_bus_message_get_sender(m)));
        return 0;
}

int bus_server_new(sd_bus *bus, Manager *manager, BusServer **ret) {
        _cleanup_(bus_server_freep) BusServer *s = NULL;
        int r;

        s = new0(BusServer, 1);
        if (!s)
                return -ENOMEM;
        s->bus = sd_bus_ref(bus);
        s->manager = manager;

        r = bus_polkit_new(manager->mode == MANAGER_USER, &s->polkit);
        if (r < 0)
                return r;
        r = bus_parse_new(s, &s->parse);
        if (r < 0)
                return r;
        r = bus_polkit_attach(s->polkit, bus);
        if (r < 0)
                log_warning_errno(r, "Failed to follow disconnects, callers' uids won't be cached: %m");
        r = sd_bus_add_filter(bus, &s->watch_filter_slot, watch_filter, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the message filter: %m");
        if (manager->mode == MANAGER_USER) {
                r = sd_bus_add_filter(bus, &s->user_filter_slot, user_mode_filter, s);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the per-user filter: %m");
        }
        /* Node callbacks run before sd-bus looks at vtables: the gate sees property writes first. */
        r = sd_bus_add_object(bus, &s->manager_gate_slot, VB_MANAGER_PATH, bus_property_gate, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the property gate: %m");
        r = sd_bus_add_fallback(bus, &s->domain_gate_slot, VB_DOMAIN_PREFIX, bus_property_gate, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the property gate: %m");
        r = sd_bus_add_object_vtable(bus, &s->manager_slot, VB_MANAGER_PATH, VB_MANAGER_INTERFACE,
                                     bus_manager_vtable, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Manager object: %m");
        r = sd_bus_add_object_manager(bus, &s->object_manager_slot, VB_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to add the object manager: %m");
        r = bus_domain_register(s);
        if (r < 0)
                return r;
        r = bus_domain_migrate_register(s);
        if (r < 0)
                return r;
        r = bus_nodedev_register(s);
        if (r < 0)
                return r;
        r = bus_network_register(s);
        if (r < 0)
                return r;
        r = bus_storage_pool_register(s);
        if (r < 0)
                return r;
        r = bus_storage_vol_register(s);
        if (r < 0)
                return r;
        r = bus_domain_snapshot_register(s);
        if (r < 0)
                return r;

        manager_set_events(manager, &(ManagerEvents) {
                .domain_added = bus_domain_on_added,
                .domain_removed = bus_domain_on_removed,
                .domain_changed = bus_domain_on_changed,
                .nodedev_added = bus_nodedev_on_added,
                .nodedev_removed = bus_nodedev_on_removed,
                .nodedev_changed = bus_nodedev_on_changed,
                .domain_device_added = bus_domain_on_device_added,
                .domain_device_removed = bus_domain_on_device_removed,
                .domain_device_removal_failed = bus_domain_on_device_removal_failed,
                .snapshot_added = bus_domain_snapshot_on_added,
                .snapshot_removed = bus_domain_snapshot_on_removed,
                .snapshot_changed = bus_domain_snapshot_on_changed,
                .domain_progress = bus_domain_save_on_progress,
                .userdata = s,
        });

        *ret = TAKE_PTR(s);
        return 0;
}

BusServer *bus_server_free(BusServer *s) {
        if (!s)
                return NULL;
        manager_cancel_queued(s->manager); /* their answers go out while the bus is still ours */
        sd_bus_slot_unref(s->object_manager_slot);
        sd_bus_slot_unref(s->user_filter_slot);
        sd_bus_slot_unref(s->watch_filter_slot);
        sd_bus_slot_unref(s->manager_slot);
        sd_bus_slot_unref(s->manager_gate_slot);
        sd_bus_slot_unref(s->domain_gate_slot);
        manager_set_events(s->manager, &(ManagerEvents) {});
        /* Storage work still running answers its callers when the registry goes; no signals then. */
        storage_registry_set_events(s->manager->storage, &(StorageEvents) {});
        bus_capabilities_drop_pending(s);
        bus_parse_free(s->parse);
        bus_polkit_free(s->polkit);
        sd_bus_unref(s->bus);
        free(s);
        return NULL;
}
