/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

/* GetDomainCapabilities and GetCapabilities on org.virtbus1.Manager (bus-capabilities.c). */
int bus_manager_method_get_domain_capabilities(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_capabilities(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Drops the calls still waiting for a probe (at shutdown). */
void bus_capabilities_drop_pending(BusServer *s);
