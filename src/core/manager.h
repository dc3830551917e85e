/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "drivers/driver.h"
#include "util/error.h"

typedef enum ManagerMode {
        MANAGER_SYSTEM,
        MANAGER_USER,
} ManagerMode;

typedef struct ManagerConfig {
        ManagerMode mode;
        const char *driver;
        const char *config_dir;
        const char *state_dir;
        const char *runtime_dir;
        const char *sysfs_root;
} ManagerConfig;

/* The service's state, independent of D-Bus: the driver and (later) the registries of domains,
 * networks and node devices. src/bus exposes it; it never sees a bus message. */
typedef struct Manager {
        ManagerMode mode;
        char *config_dir;
        char *state_dir;
        char *runtime_dir;
        char *sysfs_root;
        VbDriver *driver;
} Manager;

int manager_new(const ManagerConfig *cfg, Manager **ret, VbError *reterr);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

const char *manager_driver_name(const Manager *m);
