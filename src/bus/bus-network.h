/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

#define VB_NETWORK_INTERFACE "org.virtbus1.Network"
#define VB_NETWORK_PREFIX "/org/virtbus1/network"

/* Registers the org.virtbus1.Network objects (a fallback vtable below VB_NETWORK_PREFIX, with its own
 * property gate for Autostart) and subscribes to the registry's events. */
int bus_network_register(BusServer *s);

/* /org/virtbus1/network/<the UUID's 32 lowercase hex digits>; caller frees. */
char *bus_network_path(const Network *n);
Network *bus_network_from_path(BusServer *s, const char *path);

/* Manager methods that deal with networks (bus-manager.c puts them in its vtable). */
int bus_manager_method_define_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_network_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error);
