/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/domain-access.h"
#include "drivers/driver.h"
#include "util/hashmap.h"
#include "util/log.h"

static const char * const domain_state_table[_DOMAIN_STATE_MAX] = {
        [DOMAIN_SHUTOFF] = "shutoff",
        [DOMAIN_RUNNING] = "running",
        [DOMAIN_PAUSED] = "paused",
        [DOMAIN_SHUTDOWN] = "shutdown",
        [DOMAIN_CRASHED] = "crashed",
};
DEFINE_STRING_TABLE_LOOKUP(domain_state, DomainState);

static const char * const domain_stop_reason_table[_DOMAIN_STOP_REASON_MAX] = {
        [DOMAIN_STOP_SHUTDOWN] = "shutdown",
        [DOMAIN_STOP_DESTROYED] = "destroyed",
        [DOMAIN_STOP_CRASHED] = "crashed",
        [DOMAIN_STOP_FAILED] = "failed",
};
DEFINE_STRING_TABLE_LOOKUP(domain_stop_reason, DomainStopReason);

int vb_driver_not_supported(const VbDriver *drv, const char *what, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The '%s' driver does not support %s yet",
                            drv->ops->name, what);
}

int vb_driver_domain_info_set(VbDriverDomainInfo *info, const char *uuid, unsigned id, DomainState state,
                              const DomainDef *live) {
        int r = domain_def_copy(live, &info->live);
        if (r < 0)
                return r;
        snprintf(info->uuid, sizeof info->uuid, "%s", uuid);
        info->id = id;
        info->state = state;
        return 0;
}

int vb_driver_list_running_from(Hashmap *domains, int (*describe)(void *domain, VbDriverDomainInfo *ret),
                                VbDriverDomainInfo **ret, size_t *ret_n) {
        VbDriverDomainInfo *infos;
        void *domain;
        size_t n = 0;

        infos = new0(VbDriverDomainInfo, hashmap_size(domains));
        if (!infos)
                return -ENOMEM;
        for (size_t i = 0; hashmap_iterate(domains, &i, &domain, NULL);) {
                int r = describe(domain, &infos[n]);
                if (r == 0)
                        continue; /* not running (yet) */
                if (r < 0) {
                        for (size_t j = 0; j < n; j++)
                                vb_driver_domain_info_done(&infos[j]);
                        free(infos);
                        return r;
                }
                n++;
        }
        *ret = infos;
        *ret_n = n;
        return 0;
}

void vb_driver_domain_info_done(VbDriverDomainInfo *info) {
        if (info)
                info->live = domain_def_free(info->live);
}

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
        drv->cfg = *cfg;
        if (free_and_strdup(&drv->state_dir, cfg->state_dir) < 0 ||
            free_and_strdup(&drv->runtime_dir, cfg->runtime_dir) < 0) {
                free(drv->state_dir);
                free(drv);
                return -ENOMEM;
        }
        drv->cfg.state_dir = drv->state_dir;
        drv->cfg.runtime_dir = drv->runtime_dir;
        drv->cfg.sysfs_root = NULL;
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
                free(drv->state_dir);
                free(drv->runtime_dir);
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
        free(drv->state_dir);
        free(drv->runtime_dir);
        free(drv);
        return NULL;
}

const char *vb_driver_name(const VbDriver *drv) {
        return drv->ops->name;
}

void domain_if_addresses_free(DomainIfAddresses *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].name);
                for (size_t j = 0; j < l[i].n_addrs; j++)
                        free(l[i].addrs[j].address);
                free(l[i].addrs);
        }
        free(l);
}

int domain_if_addresses_add(DomainIfAddresses *iface, uint8_t family, const char *address, unsigned prefix) {
        DomainIpAddress *a = reallocarray(iface->addrs, iface->n_addrs + 1, sizeof *a);

        if (!a)
                return -ENOMEM;
        iface->addrs = a;
        a[iface->n_addrs] = (DomainIpAddress) { .family = family, .address = strdup(address), .prefix = prefix };
        if (!a[iface->n_addrs].address)
                return -ENOMEM;
        iface->n_addrs++;
        return 0;
}
