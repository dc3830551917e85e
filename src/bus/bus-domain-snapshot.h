/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus-server.h"
#include "core/snapshot.h"

#define VB_DOMAIN_SNAPSHOT_INTERFACE "org.virtbus1.DomainSnapshot"

/* /org/virtbus1/domain/<uuid hex>/snapshot/<encoded name> (caller frees), and back. */
char *bus_domain_snapshot_path(const DomainSnapshot *s);
DomainSnapshot *bus_domain_snapshot_from_path(BusServer *s, const char *path);

/* Registers org.virtbus1.DomainSnapshot (a fallback vtable and enumerator below the domains). */
int bus_domain_snapshot_register(BusServer *s);

/* Domain members (bus-domain.c puts them in its vtable). */
int bus_domain_method_create_snapshot(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_property_get_current_snapshot(sd_bus *bus, const char *path, const char *interface,
                                             const char *property, sd_bus_message *reply, void *userdata,
                                             sd_bus_error *error);

/* ManagerEvents for snapshots: InterfacesAdded/Removed and PropertiesChanged. */
void bus_domain_snapshot_on_added(void *userdata, DomainSnapshot *s);
void bus_domain_snapshot_on_removed(void *userdata, DomainSnapshot *s);
void bus_domain_snapshot_on_changed(void *userdata, DomainSnapshot *s, const char * const *properties);
