/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <sys/stat.h>

#include "core/manager.h"
#include "host/host.h"
#include "util/fileio.h"
#include "util/log.h"

static int make_dir(const char *path, mode_t mode, VbError *reterr) {
        int r = mkdir_p(path, mode);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create directory '%s': %s",
                                    path, strerror(-r));
        return 0;
}

int manager_new(const ManagerConfig *cfg, Manager **ret, VbError *reterr) {
        _cleanup_(manager_freep) Manager *m = NULL;
        VbDriverConfig dcfg;
        int r;

        m = new0(Manager, 1);
        if (!m)
                return -ENOMEM;
        m->mode = cfg->mode;
        if (free_and_strdup(&m->config_dir, cfg->config_dir) < 0 ||
            free_and_strdup(&m->state_dir, cfg->state_dir) < 0 ||
            free_and_strdup(&m->runtime_dir, cfg->runtime_dir) < 0 ||
            free_and_strdup(&m->sysfs_root, cfg->sysfs_root ?: "/sys") < 0)
                return -ENOMEM;

        r = host_set_sysfs_root(m->sysfs_root);
        if (r < 0)
                return r;

        r = make_dir(m->config_dir, 0755, reterr);
        if (r < 0)
                return r;
        r = make_dir(m->state_dir, 0700, reterr);
        if (r < 0)
                return r;
        r = make_dir(m->runtime_dir, 0755, reterr);
        if (r < 0)
                return r;

        dcfg = (VbDriverConfig) {
                .state_dir = m->state_dir,
                .runtime_dir = m->runtime_dir,
                .sysfs_root = m->sysfs_root,
        };
        r = vb_driver_open(cfg->driver, &dcfg, &m->driver, reterr);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        vb_driver_close(m->driver);
        free(m->config_dir);
        free(m->state_dir);
        free(m->runtime_dir);
        free(m->sysfs_root);
        free(m);
        return NULL;
}

const char *manager_driver_name(const Manager *m) {
        return vb_driver_name(m->driver);
}
