/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between the network files of src/core. */
#include "core/network.h"
#include "util/durable.h"

int network_store_save(Durable *durable, const char *dir, const NetworkDef *def, VbError *reterr);
int network_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr);
int network_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart, VbError *reterr);
bool network_store_get_autostart(const char *dir, const char *uuid);
/* Calls cb for each definition that parses (cb owns def); broken files are logged and kept. */
typedef int (*NetworkStoreLoadFunc)(NetworkDef *def, void *userdata);
int network_store_load_all(const char *dir, NetworkStoreLoadFunc cb, void *userdata);

/* A network named after def (no definition yet), not in the registry. */
Network *network_new(NetworkRegistry *r, const NetworkDef *def);
Network *network_free(Network *n);
/* Into the registry's maps and list; announce: tell the events (not while loading). */
int network_registry_insert(NetworkRegistry *r, Network *n, bool announce);

/* Whether no host link has this name (for bridge names the service picks). */
bool network_bridge_name_free(NetworkRegistry *r, const char *name);

/* The device pool of def: its forward devices, PCI functions, or the VFs of its <pf> (from sysfs). */
int network_build_pool(const NetworkDef *def, NetworkPool **ret, VbError *reterr);
