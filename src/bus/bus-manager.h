/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

extern const sd_bus_vtable bus_manager_vtable[];

/* Registered as an object callback on /org/virtbus1 and below: gates writes of writable properties
 * behind polkit before sd-bus runs the setter. */
int bus_property_gate(sd_bus_message *m, void *userdata, sd_bus_error *error);
