/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "test" backend: a simulated hypervisor and host, deterministic and needing no root. */
#include "drivers/driver.h"

static int test_open(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr) {
        return 0;
}

const VbDriverOps vb_test_driver_ops = {
        .name = "test",
        .open = test_open,
};
