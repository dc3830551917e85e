/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

/* org.virtbus1.Domain's device methods and signals (bus-domain.c puts them in its vtable). */
int bus_domain_method_attach_device(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_detach_device(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_update_device(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* ManagerEvents for devices: the DeviceAdded, DeviceRemoved and DeviceRemovalFailed signals. */
void bus_domain_on_device_added(void *userdata, Domain *d, const char *alias);
void bus_domain_on_device_removed(void *userdata, Domain *d, const char *alias);
void bus_domain_on_device_removal_failed(void *userdata, Domain *d, const char *alias, const char *reason);
