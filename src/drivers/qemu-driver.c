/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "qemu" backend: each domain is a QEMU process driven over QMP. */
#include <unistd.h>

#include "drivers/driver.h"
#include "util/log.h"

static int qemu_open(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr) {
        static const char * const candidates[] = {
                "/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64",
        };

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], X_OK) == 0) {
                        log_info("qemu driver: using %s, KVM %s.", candidates[i],
                                 access("/dev/kvm", R_OK | W_OK) == 0 ? "available" : "unavailable");
                        return 0;
                }
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                            "The qemu driver needs qemu-system-x86_64, which is not installed");
}

const VbDriverOps vb_qemu_driver_ops = {
        .name = "qemu",
        .open = qemu_open,
};
