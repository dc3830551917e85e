/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

/* Domain.GetStats and Manager.GetAllDomainStats: open reads, like GetXMLDesc (bus-domain.c and
 * bus-manager.c put them in their vtables). */
int bus_domain_method_get_stats(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_all_domain_stats(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Domain.InterfaceAddresses: an open read too. */
int bus_domain_method_interface_addresses(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Domain.GetGuestInfo: needs domain.manage (it runs code in the guest's agent). */
int bus_domain_method_get_guest_info(sd_bus_message *m, void *userdata, sd_bus_error *error);
