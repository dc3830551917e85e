/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "drivers/driver.h"
#include "util/log.h"

static const VbDriverOps * const driver_table[] = {
        &vb_test_driver_ops,
        &vb_qemu_driver_ops,
};

static const char * const driver_name_list[] = { "test", "qemu", NULL };

const char * const *vb_driver_names(void) {
        return driver_name_list;
}

const VbDriverOps *vb_driver_ops_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(driver_table); i++)
                if (streq(driver_table[i]->name, name))
                        return driver_table[i];
        return NULL;
}

int vb_driver_open(const char *name, const VbDriverConfig *cfg, VbDriver **ret, VbError *reterr) {
        const VbDriverOps *ops = vb_driver_ops_find(name);
        VbDriver *drv;
        int r;

        if (!ops)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Unknown driver '%s' (expected 'test' or 'qemu')", name);
        drv = new0(VbDriver, 1);
        if (!drv)
                return -ENOMEM;
        drv->ops = ops;
        if (ops->priv_size > 0) {
                drv->priv = calloc(1, ops->priv_size);
                if (!drv->priv) {
                        free(drv);
                        return -ENOMEM;
                }
        }
        r = ops->open ? ops->open(drv, cfg, reterr) : 0;
        if (r < 0) {
                free(drv->priv);
                free(drv);
                return r;
        }
        log_debug("Driver '%s' opened.", name);
        *ret = drv;
        return 0;
}

VbDriver *vb_driver_close(VbDriver *drv) {
        if (!drv)
                return NULL;
        if (drv->ops->close)
                drv->ops->close(drv);
        free(drv->priv);
        free(drv);
        return NULL;
}

const char *vb_driver_name(const VbDriver *drv) {
        return drv->ops->name;
}
