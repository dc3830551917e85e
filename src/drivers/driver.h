/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "util/error.h"

/* A hypervisor backend. Every backend (the simulated "test" one, "qemu") implements the same ops
 * table; core/ only ever calls through it. The table grows with the domain, device, network and
 * node device work. */
typedef struct VbDriver VbDriver;

typedef struct VbDriverConfig {
        const char *state_dir;
        const char *runtime_dir;
        const char *sysfs_root;
} VbDriverConfig;

typedef struct VbDriverOps {
        const char *name;
        size_t priv_size;
        /* Prepare the backend; fails with a sentence when the host can't run it. */
        int (*open)(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr);
        void (*close)(VbDriver *drv);
} VbDriverOps;

struct VbDriver {
        const VbDriverOps *ops;
        void *priv;
};

const VbDriverOps *vb_driver_ops_find(const char *name);
/* The names of all backends, NULL-terminated, for --help and error messages. */
const char * const *vb_driver_names(void);

int vb_driver_open(const char *name, const VbDriverConfig *cfg, VbDriver **ret, VbError *reterr);
VbDriver *vb_driver_close(VbDriver *drv);
const char *vb_driver_name(const VbDriver *drv);

extern const VbDriverOps vb_test_driver_ops;
extern const VbDriverOps vb_qemu_driver_ops;
