/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "core/manager.h"

/* Saved state on the bus (core/domain-save.h): Domain.Save, ManagedSave, ManagedSaveRemove, HasManagedSave,
 * the Progress signal, Start of a domain with a managed save, Undefine with its flags, and
 * Manager.RestoreDomain. The long ones answer when the backend is done. */

/* Domain.Undefine flags. */
#define UNDEFINE_MANAGED_SAVE UINT64_C(1)
#define UNDEFINE_SNAPSHOTS_METADATA UINT64_C(2)

int bus_domain_method_save(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_managed_save(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_managed_save_remove(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_method_undefine(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_domain_property_get_has_managed_save(sd_bus *bus, const char *path, const char *interface,
                                             const char *property, sd_bus_message *reply, void *userdata,
                                             sd_bus_error *error);
int bus_manager_method_restore_domain(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Start (authorized already) of a domain that has a managed save. */
int bus_domain_start_saved(sd_bus_message *m, Domain *d, bool paused, sd_bus_error *error);
/* ManagerEvents.domain_progress: the Progress signal. */
void bus_domain_save_on_progress(void *userdata, Domain *d, uint64_t done, uint64_t total);
