/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pools: the registry, the pools' lifecycle and persistence (def-store.c). Volumes are in
 * storage-vol.c, finding them on disk and loading at start-up in storage-load.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/storage-internal.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/worker.h"

StorageVol *storage_vol_free(StorageVol *v) {
        if (!v)
                return NULL;
        if (v->job)
                storage_job_abandon(v->job); /* only at shutdown: a busy volume is never removed */
        free(v->creator);
        free(v->job_caller);
        free(v->name);
        free(v->path);
        free(v);
        return NULL;
}

static void pool_drop_volumes(StorageRegistry *r, StoragePool *p) {
        for (size_t i = 0; i < p->n_vols; i++) {
                if (r->events.vol_removed)
                        r->events.vol_removed(r->events.userdata, p->vols[i]);
                storage_vol_free(p->vols[i]);
        }
        p->n_vols = 0;
}

static StoragePool *pool_free(StoragePool *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_vols; i++)
                storage_vol_free(p->vols[i]);
        free(p->vols);
        if (p->fd >= 0)
                close(p->fd);
        storage_pool_def_free(p->def);
        free(p->name);
        free(p);
        return NULL;
}

int storage_registry_new(const char *config_dir, const char *runtime_dir, const char *driver, StorageRegistry **ret,
                         VbError *reterr) {
        _cleanup_(storage_registry_freep) StorageRegistry *r = new0(StorageRegistry, 1);

        if (!r || asprintf(&r->dir, "%s/storage", config_dir) < 0 ||
            asprintf(&r->status_dir, "%s/storage", runtime_dir) < 0)
                return -ENOMEM;
        if (streq_ptr(driver, "test") && asprintf(&r->test_pool_dir, "%s/%s", runtime_dir, STORAGE_TEST_POOL_NAME) < 0)
                return -ENOMEM;
        r->by_uuid = hashmap_new();
        r->by_name = hashmap_new();
        if (!r->by_uuid || !r->by_name)
                return -ENOMEM;
        if (mkdir_p(r->dir, 0755) < 0 || mkdir_p(r->status_dir, 0755) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s' or '%s'.", r->dir,
                                    r->status_dir);
        *ret = TAKE_PTR(r);
        return 0;
}

StorageRegistry *storage_registry_free(StorageRegistry *r) {
        if (!r)
                return NULL;
        r->worker = worker_free(r->worker); /* a Build running ends first; its caller is answered */
        for (size_t i = 0; i < r->n_pools; i++)
                pool_free(r->pools[i]);
        free(r->pools);
        hashmap_free(r->by_uuid);
        hashmap_free(r->by_name);
        free(r->dir);
        free(r->status_dir);
        free(r->test_pool_dir);
        free(r);
        return NULL;
}

void storage_registry_set_events(StorageRegistry *r, const StorageEvents *events) {
        r->events = *events;
}

StoragePool *storage_pool_by_uuid(const StorageRegistry *r, const char *uuid) {
        return hashmap_get(r->by_uuid, uuid);
}

StoragePool *storage_pool_by_name(const StorageRegistry *r, const char *name) {
        return hashmap_get(r->by_name, name);
}

bool storage_pool_is_active(const StoragePool *p) {
        return p->fd >= 0;
}

StorageVol *storage_vol_by_name(const StoragePool *p, const char *name) {
        for (size_t i = 0; i < p->n_vols; i++)
                if (streq(p->vols[i]->name, name))
                        return p->vols[i];
        return NULL;
}

StorageVol *storage_vol_by_path(const StorageRegistry *r, const char *path) {
        for (size_t i = 0; i < r->n_pools; i++)
                for (size_t j = 0; j < r->pools[i]->n_vols; j++)
                        if (streq(r->pools[i]->vols[j]->path, path))
                                return r->pools[i]->vols[j];
        return NULL;
}

const char *storage_vol_type_name(const StorageVol *v) {
        return storage_vol_type_to_string(STORAGE_VOL_FILE);
}

/* Pools ----------------------------------------------------------------------------------------- */

static int status_path(StorageRegistry *r, const char *uuid, char **ret) {
        return def_store_path(r->status_dir, uuid, ret);
}

/* Runtime state in <runtime>/storage (a tmpfs, normally): replaced atomically, not synced (a crash of
 * the host ends the mounts too). */
static int save_status(StorageRegistry *r, StoragePool *p) {
        _cleanup_free_ char *xml = NULL, *path = NULL;
        int k;

        k = storage_pool_def_format(p->def, &xml);
        if (k >= 0)
                k = status_path(r, p->uuid, &path);
        if (k >= 0)
                k = write_file_replace(path, xml, strlen(xml), 0600);
        if (k < 0)
                log_warning_errno(k, "Failed to record pool '%s' as active, ignoring: %m", p->name);
        return 0;
}

int storage_pool_add(StorageRegistry *r, StoragePoolDef *def, bool persistent, StoragePool **ret) {
        StoragePool *p = new0(StoragePool, 1);
        int k;

        if (!p) {
                storage_pool_def_free(def);
                return -ENOMEM;
        }
        p->fd = -1;
        p->def = def;
        p->registry = r;
        p->persistent = persistent;
        storage_pool_def_get_uuid_string(def, p->uuid);
        if (!(p->name = strdup(def->name)) || !GREEDY_REALLOC(r->pools, r->n_pools_allocated, r->n_pools + 1)) {
                pool_free(p);
                return -ENOMEM;
        }
        k = hashmap_put(r->by_uuid, p->uuid, p);
        if (k >= 0 && (k = hashmap_put(r->by_name, p->name, p)) < 0)
                hashmap_remove(r->by_uuid, p->uuid);
        if (k < 0) {
                pool_free(p);
                return k;
        }
        r->pools[r->n_pools++] = p;
        if (r->events.pool_added)
                r->events.pool_added(r->events.userdata, p);
        *ret = p;
        return 0;
}

static void pool_remove(StorageRegistry *r, StoragePool *p) {
        pool_drop_volumes(r, p);
        if (r->events.pool_removed)
                r->events.pool_removed(r->events.userdata, p);
        hashmap_remove(r->by_uuid, p->uuid);
        hashmap_remove(r->by_name, p->name);
        for (size_t i = 0; i < r->n_pools; i++)
                if (r->pools[i] == p) {
                        memmove(r->pools + i, r->pools + i + 1, (r->n_pools - i - 1) * sizeof(StoragePool *));
                        r->n_pools--;
                        break;
                }
        pool_free(p);
}

/* DeviceBusy while Build runs. */
static int check_not_building(const StoragePool *p, VbError *reterr) {
        if (!p->building)
                return 0;
        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Pool '%s' is busy: it is being built.", p->name);
}

/* A new definition must not take another pool's name or UUID, nor its directory. */
int storage_pool_check_conflicts(StorageRegistry *r, const StoragePoolDef *def, StoragePool *self, VbError *reterr) {
        StoragePool *other = storage_pool_by_name(r, def->name);
        char uuid[37];

        storage_pool_def_get_uuid_string(def, uuid);
        if (other && other != self)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "A pool named '%s' already exists (UUID %s).",
                                    def->name, other->uuid);
        other = storage_pool_by_uuid(r, uuid);
        if (other && other != self)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Pool '%s' already has UUID %s.", other->name, uuid);
        for (size_t i = 0; i < r->n_pools; i++)
                if (r->pools[i] != self && def->target_path && streq_ptr(r->pools[i]->def->target_path, def->target_path))
                        return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Pool '%s' already uses '%s'.",
                                            r->pools[i]->name, def->target_path);
        return 0;
}

int storage_pool_define(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *d = def;
        _cleanup_free_ char *xml = NULL;
        StoragePool *p;
        char uuid[37];
        int k;

        storage_pool_def_get_uuid_string(d, uuid);
        p = storage_pool_by_uuid(r, uuid);
        k = storage_pool_check_conflicts(r, d, p, reterr);
        if (k >= 0 && p)
                k = check_not_building(p, reterr);
        if (k < 0)
                return k;
        if (p && storage_pool_is_active(p) && !streq_ptr(p->def->target_path, d->target_path))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "Pool '%s' is active: its target path cannot change (stop it first).", p->name);
        k = storage_pool_def_format(d, &xml);
        if (k < 0)
                return k;
        k = def_store_save(r->durable, r->dir, uuid, xml, reterr);
        if (k < 0)
                return k;
        if (p) {
                bool was = p->persistent;

                storage_pool_def_free(p->def);
                p->def = TAKE_PTR(d);
                p->persistent = true;
                if (!was)
                        CHANGED(r, p, "Persistent");
                *ret = p;
                return 0;
        }
        k = storage_pool_add(r, TAKE_PTR(d), true, &p);
        if (k < 0)
                return k;
        log_info("Defined storage pool '%s' (%s).", p->name, p->uuid);
        *ret = p;
        return 0;
}

/* A pool type without a backend is kept as written; what it would need is said when it is used. */
static int not_supported(const StoragePoolDef *def, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                            "Pool '%s' of type '%s' cannot be used: %s (virtbus manages 'dir' and 'fs' pools).",
                            def->name, storage_pool_type_to_string(def->type), storage_backend_missing(def->type));
}

int storage_pool_activate(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        if (!ops)
                return not_supported(p->def, reterr);
        k = ops->start(p->def, &p->fd, reterr);
        if (k < 0)
                return k;
        (void) save_status(r, p);
        (void) storage_pool_scan(r, p);
        return 0;
}

int storage_pool_create(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *d = def;
        StoragePool *p;
        int k;

        k = storage_pool_check_conflicts(r, d, NULL, reterr);
        if (k < 0)
                return k;
        if (!storage_backend_find(d->type))
                return not_supported(d, reterr);
        k = storage_pool_add(r, TAKE_PTR(d), false, &p);
        if (k < 0)
                return k;
        k = storage_pool_activate(r, p, reterr);
        if (k < 0) {
                pool_remove(r, p);
                return k;
        }
        CHANGED(r, p, "Active", "Capacity", "Allocation", "Available");
        *ret = p;
        return 0;
}

int storage_pool_start(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        int k;

        k = check_not_building(p, reterr);
        if (k < 0)
                return k;
        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is already active.", p->name);
        k = storage_pool_activate(r, p, reterr);
        if (k < 0)
                return k;
        log_info("Started storage pool '%s'.", p->name);
        CHANGED(r, p, "Active", "Capacity", "Allocation", "Available");
        return 0;
}

int storage_pool_stop(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        _cleanup_free_ char *status = NULL;
        int k;

        if (!storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        for (size_t i = 0; i < p->n_vols; i++) {
                k = storage_vol_check_idle(p->vols[i], reterr);
                if (k < 0)
                        return k;
        }
        storage_test_hold();
        close(p->fd);
        p->fd = -1;
        if (ops && ops->stop && (k = ops->stop(p->def, reterr)) < 0) {
                /* Still mounted (busy): the pool stays active. */
                if (ops->start(p->def, &p->fd, NULL) < 0)
                        log_warning("Pool '%s' could not be stopped nor opened again.", p->name);
                return k;
        }
        if (status_path(r, p->uuid, &status) >= 0)
                (void) unlink(status);
        pool_drop_volumes(r, p);
        log_info("Stopped storage pool '%s'.", p->name);
        if (!p->persistent) {
                pool_remove(r, p);
                return 0;
        }
        p->info = (StoragePoolInfo) {};
        CHANGED(r, p, "Active", "Capacity", "Allocation", "Available");
        return 0;
}

typedef struct PoolBuild {
        StorageRegistry *registry;
        char uuid[37];
        const VbStorageBackendOps *ops;
        const StoragePoolDef *def; /* the pool's: it does not change while p->building */
        int result;
        VbError error;
        StoragePoolDoneFunc done;
        void *userdata;
} PoolBuild;

static void pool_build_work(void *userdata) {
        PoolBuild *b = userdata;

        b->result = b->ops->build(b->def, &b->error);
}

static void pool_build_done(void *userdata, bool cancelled) {
        PoolBuild *b = userdata;
        StoragePool *p = storage_pool_by_uuid(b->registry, b->uuid);

        if (cancelled && b->result >= 0)
                b->result = vb_error_set(&b->error, VB_ERROR_OPERATION_FAILED, "The build of pool '%s' was cut short: "
                                         "virtbusd is stopping.", p ? p->name : b->uuid);
        if (p) {
                p->building = false;
                if (b->result >= 0)
                        log_notice("Built storage pool '%s' at '%s'.", p->name, strempty(p->def->target_path));
                else
                        log_warning("Failed to build storage pool '%s': %s", p->name, strempty(b->error.message));
        }
        b->done(p, b->result, &b->error, b->userdata);
        vb_error_free(&b->error);
        free(b);
}

int storage_pool_build(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        PoolBuild *b;
        int k;

        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is active (Build is for a stopped pool).",
                                    p->name);
        k = check_not_building(p, reterr);
        if (k < 0)
                return k;
        if (!ops)
                return not_supported(p->def, reterr);
        if (!r->worker && (k = worker_new(r->event, 1, 16, 0, &r->worker)) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Cannot start the thread for Build: %s", strerror(-k));
        b = new0(PoolBuild, 1);
        if (!b)
                return -ENOMEM;
        *b = (PoolBuild) { .registry = r, .ops = ops, .def = p->def, .done = done, .userdata = userdata,
                           .error = VB_ERROR_NULL };
        memcpy(b->uuid, p->uuid, sizeof b->uuid);
        /* mkfs (or a mkdir) in the worker: the loop goes on. */
        k = worker_submit(r->worker, pool_build_work, pool_build_done, b);
        if (k < 0) {
                free(b);
                return vb_error_set(reterr, k == -EAGAIN ? VB_ERROR_LIMITS_EXCEEDED : VB_ERROR_OPERATION_FAILED,
                                    "Cannot build pool '%s' now: %s", p->name, strerror(-k));
        }
        p->building = true;
        log_notice("Building storage pool '%s' at '%s'.", p->name, strempty(p->def->target_path));
        return 0;
}

int storage_pool_delete(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        k = check_not_building(p, reterr);
        if (k < 0)
                return k;
        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is active (stop it before Delete).", p->name);
        if (!ops)
                return not_supported(p->def, reterr);
        log_notice("Deleting the directory of storage pool '%s' at '%s'.", p->name, p->def->target_path);
        return ops->remove(p->def, reterr);
}

int storage_pool_refresh(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        int k;

        if (!storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        k = storage_pool_scan(r, p);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read pool '%s': %s", p->name,
                                    strerror(-k));
        CHANGED(r, p, "Capacity", "Allocation", "Available");
        return 0;
}

int storage_pool_undefine(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        int k;

        k = check_not_building(p, reterr);
        if (k < 0)
                return k;
        if (!p->persistent)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is transient: nothing to undefine.",
                                    p->name);
        k = def_store_remove(r->durable, r->dir, p->uuid, reterr); /* the autostart link too */
        if (k < 0)
                return k;
        log_info("Undefined storage pool '%s'.", p->name);
        if (!storage_pool_is_active(p)) {
                pool_remove(r, p);
                return 0;
        }
        p->persistent = false;
        p->autostart = false;
        CHANGED(r, p, "Persistent", "Autostart");
        return 0;
}

int storage_pool_set_autostart(StorageRegistry *r, StoragePool *p, bool autostart, VbError *reterr) {
        int k;

        if (!p->persistent)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is transient: it cannot autostart.",
                                    p->name);
        if (p->autostart == autostart)
                return 0;
        k = def_store_set_autostart(r->durable, r->dir, p->uuid, autostart, reterr);
        if (k < 0)
                return k;
        p->autostart = autostart;
        CHANGED(r, p, "Autostart");
        return 0;
}

int storage_pool_get_xml(StoragePool *p, unsigned flags, char **ret, VbError *reterr) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *copy = NULL;
        int k;

        k = storage_pool_def_copy(p->def, &copy);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to copy the definition: %s", strerror(-k));
        if (!(flags & STORAGE_XML_INACTIVE)) {
                copy->capacity = (StorageSize) { .given = true, .bytes = p->info.capacity };
                copy->allocation = (StorageSize) { .given = true, .bytes = p->info.allocation };
                copy->available = (StorageSize) { .given = true, .bytes = p->info.available };
        }
        return storage_pool_def_format(copy, ret);
}
