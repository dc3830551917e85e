/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/bus-authz.h"
#include <systemd/sd-bus.h>

#include "bus/bus-server.h"
#include "core/storage.h"

#define VB_STORAGE_POOL_INTERFACE "org.virtbus1.StoragePool"
#define VB_STORAGE_POOL_PREFIX "/org/virtbus1/storagepool"
#define VB_STORAGE_VOL_INTERFACE "org.virtbus1.StorageVol"
#define VB_STORAGE_VOL_PREFIX "/org/virtbus1/storagevol"

/* The one action for pools and volumes, with details pool (and volume where there is one). */
#define VB_STORAGE_ACTION_MANAGE BUS_ACTION_STORAGE_MANAGE

/* /org/virtbus1/storagepool/<uuid hex> and /org/virtbus1/storagevol/<pool uuid hex>/<encoded name>. */
char *bus_storage_pool_path(const StoragePool *p);
char *bus_storage_vol_path(const StorageVol *v);
StoragePool *bus_storage_pool_from_path(BusServer *s, const char *path);
StorageVol *bus_storage_vol_from_path(BusServer *s, const char *path);

/* Registers both interfaces (fallback vtables, enumerators, gates) and follows the registry's events. */
int bus_storage_pool_register(BusServer *s);
int bus_storage_vol_register(BusServer *s);

int bus_manager_method_define_storage_pool(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_create_storage_pool(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_list_storage_pools(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_storage_pool_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_manager_method_get_storage_vol_by_path(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* bus-storage-vol.c: the handlers of StoragePool.CreateVolume and CreateVolumeFrom. */
int bus_storage_pool_method_create_volume(sd_bus_message *m, void *userdata, sd_bus_error *error);
int bus_storage_pool_method_create_volume_from(sd_bus_message *m, void *userdata, sd_bus_error *error);
