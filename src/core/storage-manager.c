/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's side of storage: domains' volume disks (resolved to the volumes' files at start and
 * hot-plug through storage_vol_resolve, the one way in), volumes in use by running domains, and the qemu
 * driver's pool 'default'. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/domain-devices.h"
#include "core/domain.h"
#include "core/manager.h"
#include "util/durable.h"
#include "util/fileio.h"
#include "util/log.h"

/* dev (a volume disk) becomes a file disk in resolved, a copy of dev; a volume of another user than the
 * domain's owner is refused (a guest reaches only what its owner may). */
static int resolve_one(Manager *m, const DeviceDef *dev, uid_t owner, DeviceDef *resolved, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        StorageVolFormat format;
        const char *pool, *volume;
        int r;

        if (!device_disk_get_volume(dev, &pool, &volume))
                return 0;
        r = storage_vol_resolve(m->storage, pool, volume, true, owner, device_disk_is_readonly(dev), &path, &format,
                                reterr);
        if (r < 0)
                return r;
        return device_disk_set_volume_file(resolved, path, storage_vol_format_to_string(format));
}

int manager_domain_volumes_resolve(Manager *m, const DomainDef *def, uid_t owner, DomainDef **ret, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        DeviceDef *const *devices;
        size_t n = domain_def_get_devices(def, &devices);
        const char *pool, *volume;
        int r;

        *ret = NULL;
        for (size_t i = 0; i < n; i++) {
                DeviceDef *const *cdev;

                if (!device_disk_get_volume(devices[i], &pool, &volume))
                        continue;
                if (!copy && (r = domain_def_copy(def, &copy)) < 0)
                        return r;
                (void) domain_def_get_devices(copy, &cdev);
                r = resolve_one(m, devices[i], owner, cdev[i], reterr);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(copy);
        return 0;
}

int manager_domain_volume_resolve_device(Manager *m, const DeviceDef *dev, uid_t owner, DeviceDef **ret,
                                         VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *copy = NULL;
        const char *pool, *volume;
        int r;

        *ret = NULL;
        if (!device_disk_get_volume(dev, &pool, &volume))
                return 0;
        r = device_def_copy(dev, &copy);
        if (r < 0)
                return r;
        r = resolve_one(m, dev, owner, copy, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(copy);
        return 1;
}

const char *manager_storage_vol_user(Manager *m, const StorageVol *v) {
        for (size_t i = 0; i < m->n_domains; i++) {
                Domain *d = m->domains[i];
                DeviceDef *const *devices;
                size_t n;

                if (!domain_is_active(d) || !d->live)
                        continue;
                n = domain_def_get_devices(d->live, &devices);
                for (size_t j = 0; j < n; j++)
                        if (devices[j]->kind == DEVICE_DISK && streq_ptr(device_disk_get_source(devices[j]), v->path))
                                return d->name;
        }
        return NULL;
}

int manager_storage_vol_delete(Manager *m, StorageVol *v, VbError *reterr) {
        const char *user = manager_storage_vol_user(m, v);

        if (user)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Volume '%s' of pool '%s' is a disk of running domain '%s'.",
                                    v->name, v->pool->name, user);
        return storage_vol_delete(m->storage, v, reterr);
}

int manager_storage_default_pool(Manager *m) {
        _cleanup_free_ char *xml = NULL, *dir = NULL, *marker = NULL;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p;
        int r;

        if (!streq_ptr(manager_driver_name(m), "qemu"))
                return 0;
        /* On the first start-up only: an administrator who undefines it later does not get it back. */
        if (asprintf(&marker, "%s/qemu-storage-seeded", m->state_dir) < 0 ||
            asprintf(&dir, "%s/images", m->state_dir) < 0)
                return -ENOMEM;
        if (access(marker, F_OK) == 0)
                return 0;
        if (!storage_pool_by_name(m->storage, "default")) {
                if (asprintf(&xml, "<pool type='dir'><name>default</name><target><path>%s</path></target></pool>", dir) < 0)
                        return -ENOMEM;
                r = mkdir_p(dir, 0711) < 0 ? vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Cannot create it: %s",
                                                          strerror(errno))
                                           : storage_pool_def_parse_string(xml, 0, &def, &e);
                if (r >= 0)
                        r = storage_pool_define(m->storage, def, &p, &e);
                if (r >= 0)
                        r = storage_pool_set_autostart(m->storage, p, true, &e);
                if (r >= 0 && !storage_pool_is_active(p))
                        r = storage_pool_start(m->storage, p, &e);
                if (r < 0) {
                        log_warning("Failed to set up storage pool 'default' at '%s', ignoring: %s", dir,
                                    e.message ?: strerror(-r));
                        vb_error_free(&e);
                        return 0; /* tried again at the next start-up */
                }
                log_info("Defined and started storage pool 'default' at '%s'.", dir);
        }
        durable_flush(m->storage->durable); /* the pool first: the marker says it exists */
        if (write_file_atomic(marker, "", 0, 0644) < 0)
                log_warning("Failed to write '%s', ignoring.", marker);
        return 0;
}
