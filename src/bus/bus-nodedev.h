/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

#define VB_NODEDEV_INTERFACE "org.virtbus1.NodeDevice"
#define VB_NODEDEV_PREFIX "/org/virtbus1/nodedev"

/* Registers the org.virtbus1.NodeDevice objects (a fallback vtable below VB_NODEDEV_PREFIX). */
int bus_nodedev_register(BusServer *s);

/* /org/virtbus1/nodedev/<name encoded by sd_bus_path_encode>; caller frees. */
char *bus_nodedev_path(const NodeDevice *d);
NodeDevice *bus_nodedev_from_path(BusServer *s, const char *path);

/* Manager methods for node devices (bus-manager.c puts them in its vtable). */
int bus_manager_method_list_node_devices(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_node_device_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* ManagerEvents for node devices: InterfacesAdded/Removed and PropertiesChanged. */
void bus_nodedev_on_added(void *userdata, NodeDevice *d);
void bus_nodedev_on_removed(void *userdata, NodeDevice *d);
void bus_nodedev_on_changed(void *userdata, NodeDevice *d, const char * const *properties);
