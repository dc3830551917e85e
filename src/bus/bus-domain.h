/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-server.h"

#define VB_DOMAIN_INTERFACE "org.virtbus1.Domain"
#define VB_DOMAIN_PREFIX "/org/virtbus1/domain"

/* Registers the org.virtbus1.Domain objects (a fallback vtable below VB_DOMAIN_PREFIX). */
int bus_domain_register(BusServer *s);

/* /org/virtbus1/domain/<the UUID's 32 lowercase hex digits>; caller frees. */
char *bus_domain_path(const Domain *d);
#define BUS_DOMAIN_PATH_MAX (sizeof(VB_DOMAIN_PREFIX "/") + 32)
const char *bus_domain_path_buf(const Domain *d, char buf[static BUS_DOMAIN_PATH_MAX]);
/* The domain at path, or NULL. */
Domain *bus_domain_from_path(BusServer *s, const char *path);
/* Properties.Set of the domain's Autostart (authorized already): answers later. 1 or < 0 (error set). */
int bus_domain_set_autostart(BusServer *s, sd_bus_message *m, sd_bus_error *error);

/* Whose rights open the host paths of def (or of dev alone) for the caller of m: its own; paths it may
 * not use itself need org.virtbus1.domain.host-files (details: domain, path), asked one by one, and
 * are then recorded as the service's (uid 0). Returns 1 with *ret filled, 0 while polkit is asked (the
 * message comes back), < 0 with error (AccessDenied naming the path). */
int bus_domain_authorize_paths(BusServer *s, sd_bus_message *m, const char *domain, const DomainDef *def,
                               const DeviceDef *dev, DomainAccess *ret, sd_bus_error *error);

/* CreateDomain's first steps (the definition parsed off the event loop, polkit, its host paths), for
 * RestoreDomain too: 1 with *ret (to free), *ret_flags and *ret_access; 0 later; < 0 with error. */
int bus_domain_parse_create(BusServer *s, sd_bus_message *m, DomainDef **ret, uint64_t *ret_flags,
                            DomainAccess *ret_access, sd_bus_error *error);

/* Manager methods that deal with domains (bus-manager.c puts them in its vtable). */
int bus_manager_method_define_domain(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_create_domain(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_list_domains(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_domain_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_domain_by_uuid(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* For writable Domain properties, checked by the property gate: the polkit details of the object. */
int bus_domain_polkit_details(BusServer *s, const char *path, const char **ret_name);

/* A DomainWaitDone that answers the message in userdata (and drops its reference): an empty reply, or
 * the error. */
void bus_domain_reply_later(Domain *d, int r, const VbError *e, void *userdata);

/* ManagerEvents for domains: InterfacesAdded/Removed and PropertiesChanged. */
void bus_domain_on_added(void *userdata, Domain *d);
void bus_domain_on_removed(void *userdata, Domain *d);
void bus_domain_on_changed(void *userdata, Domain *d, const char * const *properties);
