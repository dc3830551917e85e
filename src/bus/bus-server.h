/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus-polkit.h"
#include "core/manager.h"

#define VB_BUS_NAME "org.virtbus1"
#define VB_MANAGER_PATH "/org/virtbus1"
#define VB_MANAGER_INTERFACE "org.virtbus1.Manager"

/* Everything the D-Bus side needs: the connection, the core it exposes, and polkit. */
typedef struct BusServer {
        sd_bus *bus;
        Manager *manager;
        BusPolkit *polkit;
        struct BusParse *parse;  /* documents parsed off the event loop (bus-parse.h) */
        sd_bus_slot *manager_slot;
        sd_bus_slot *manager_gate_slot;
        sd_bus_slot *domain_gate_slot;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *user_filter_slot;
        sd_bus_slot *watch_filter_slot;
} BusServer;

/* Registers all objects on bus (not yet the name). */
int bus_server_new(sd_bus *bus, Manager *manager, BusServer **ret);
BusServer *bus_server_free(BusServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusServer *, bus_server_free);

/* Rejects flag bits outside of allowed with InvalidArgs. */
int bus_check_flags(uint64_t flags, uint64_t allowed, sd_bus_error *error);
