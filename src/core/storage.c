/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pools and volumes: registry, lifecycle, persistence (def-store.c), volumes through the backend. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/storage.h"
#include "util/fileio.h"
#include "util/log.h"

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)
#define TAKE_FD(fd)                     \
        ({                              \
                int _fd_ = (fd);        \
                (fd) = -EBADF;          \
                _fd_;                   \
        })

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

#define CHANGED(r, p, ...)                                                                          \
        do {                                                                                        \
                if ((r)->events.pool_changed)                                                       \
                        (r)->events.pool_changed((r)->events.userdata, p,                           \
                                                 (const char * const[]) { __VA_ARGS__, NULL });     \
        } while (0)

static StorageVol *vol_free(StorageVol *v) {
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
                vol_free(p->vols[i]);
        }
        p->n_vols = 0;
}

static StoragePool *pool_free(StoragePool *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_vols; i++)
                vol_free(p->vols[i]);
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

/* Volumes --------------------------------------------------------------------------------------- */

/* DeviceBusy while a job runs on v or a clone is made from it. */
static int vol_check_idle(const StorageVol *v, VbError *reterr) {
        if (v->job) {
                const char *kind = storage_job_kind_to_string(storage_job_kind(v->job));

                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Volume '%s' of pool '%s' is busy with %s %s.", v->name,
                                    v->pool->name, strchr("aeiou", kind[0]) ? "an" : "a", kind);
        }
        if (v->n_readers > 0)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Volume '%s' of pool '%s' is being cloned.", v->name,
                                    v->pool->name);
        return 0;
}

int storage_vol_check_owner(const StorageVol *v, uid_t uid, VbError *reterr) {
        if (uid == 0 || v->info.owner == uid)
                return 0;
        return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                            "The volume '%s' of pool '%s' belongs to %s (uid %u): only its creator and root may use it.",
                            v->name, v->pool->name, v->info.owner == 0 ? "root" : "another user", (unsigned) v->info.owner);
}

int storage_vol_check_read(const StorageVol *v, uid_t uid, VbError *reterr) {
        if (uid == 0 || v->info.owner == uid || v->info.owner == 0)
                return 0;
        return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                            "The volume '%s' of pool '%s' belongs to another user (uid %u): only its creator and root "
                            "may read it.", v->name, v->pool->name, (unsigned) v->info.owner);
}

static int vol_add(StorageRegistry *r, StoragePool *p, const char *name, const StorageVolInfo *info, StorageVol **ret) {
        StorageVol *v = new0(StorageVol, 1);

        if (!v || !(v->name = strdup(name)) || asprintf(&v->path, "%s/%s", p->def->target_path, name) < 0 ||
            !GREEDY_REALLOC(p->vols, p->n_vols_allocated, p->n_vols + 1)) {
                vol_free(v);
                return -ENOMEM;
        }
        v->pool = p;
        v->info = *info;
        p->vols[p->n_vols++] = v;
        if (r->events.vol_added)
                r->events.vol_added(r->events.userdata, v);
        if (ret)
                *ret = v;
        return 0;
}

static void vol_remove(StorageRegistry *r, StorageVol *v) {
        StoragePool *p = v->pool;

        for (size_t i = 0; i < p->n_vols; i++)
                if (p->vols[i] == v) {
                        memmove(p->vols + i, p->vols + i + 1, (p->n_vols - i - 1) * sizeof(StorageVol *));
                        p->n_vols--;
                        break;
                }
        if (r->events.vol_removed)
                r->events.vol_removed(r->events.userdata, v);
        vol_free(v);
}

/* Reads the pool's sizes and volumes again: new files appear, vanished ones go. */
static int pool_scan(StorageRegistry *r, StoragePool *p) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        char **names = NULL;
        size_t n = 0;
        int k;

        if (!ops || p->fd < 0)
                return 0;
        (void) ops->pool_info(p->fd, &p->info);
        k = ops->list_volumes(p->fd, &names, &n);
        if (k < 0)
                return k;
        for (size_t i = p->n_vols; i > 0; i--) {
                bool found = false;

                for (size_t j = 0; j < n && !found; j++)
                        found = streq(names[j], p->vols[i - 1]->name);
                /* A volume a job works on, or a clone reads, stays until that ends. */
                if (!found && !p->vols[i - 1]->job && p->vols[i - 1]->n_readers == 0)
                        vol_remove(r, p->vols[i - 1]);
        }
        for (size_t j = 0; j < n; j++) {
                StorageVolInfo info;
                StorageVol *v = storage_vol_by_name(p, names[j]);

                if (ops->vol_info(p->fd, names[j], &info, NULL) >= 0) {
                        if (v)
                                v->info = info;
                        else
                                (void) vol_add(r, p, names[j], &info, NULL);
                }
                free(names[j]);
        }
        free(names);
        return 0;
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

static int pool_add(StorageRegistry *r, StoragePoolDef *def, bool persistent, StoragePool **ret) {
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

/* A new definition must not take another pool's name or UUID, nor its directory. */
static int check_conflicts(StorageRegistry *r, const StoragePoolDef *def, StoragePool *self, VbError *reterr) {
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
        k = check_conflicts(r, d, p, reterr);
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
        k = pool_add(r, TAKE_PTR(d), true, &p);
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

static int pool_activate(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        if (!ops)
                return not_supported(p->def, reterr);
        k = ops->start(p->def, &p->fd, reterr);
        if (k < 0)
                return k;
        (void) save_status(r, p);
        (void) pool_scan(r, p);
        return 0;
}

int storage_pool_create(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *d = def;
        StoragePool *p;
        int k;

        k = check_conflicts(r, d, NULL, reterr);
        if (k < 0)
                return k;
        if (!storage_backend_find(d->type))
                return not_supported(d, reterr);
        k = pool_add(r, TAKE_PTR(d), false, &p);
        if (k < 0)
                return k;
        k = pool_activate(r, p, reterr);
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

        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is already active.", p->name);
        k = pool_activate(r, p, reterr);
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
                k = vol_check_idle(p->vols[i], reterr);
                if (k < 0)
                        return k;
        }
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

int storage_pool_build(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);

        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is active (Build is for a stopped pool).",
                                    p->name);
        if (!ops)
                return not_supported(p->def, reterr);
        log_notice("Building storage pool '%s' at '%s'.", p->name, p->def->target_path);
        return ops->build(p->def, reterr);
}

int storage_pool_delete(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);

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
        k = pool_scan(r, p);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read pool '%s': %s", p->name,
                                    strerror(-k));
        CHANGED(r, p, "Capacity", "Allocation", "Available");
        return 0;
}

int storage_pool_undefine(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        int k;

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

/* An overlay's backing store must be a volume of an active pool that owner may use: qemu-img records
 * its name, QEMU opens it later; its format and, unless given, the capacity come from it. */
static int vol_check_backing(StorageRegistry *r, StorageVolDef *d, uid_t owner, VbError *reterr) {
        StorageVol *b = storage_vol_by_path(r, d->backing_path);
        int k;

        if (!b)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Volume '%s': <backingStore><path> '%s' is not a volume of an active pool "
                                    "(an overlay is made over a volume).", d->name, d->backing_path);
        k = storage_vol_check_owner(b, owner, reterr);
        if (k < 0)
                return k;
        if (d->backing_format_given && d->backing_format != b->info.format)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Volume '%s': <backingStore> says format '%s', but '%s' is '%s'.", d->name,
                                    storage_vol_format_to_string(d->backing_format), b->name,
                                    storage_vol_format_to_string(b->info.format));
        d->backing_format = b->info.format;
        d->backing_format_given = true;
        if (!d->format_given) {
                d->format = STORAGE_VOL_FORMAT_QCOW2;
                d->format_given = true;
        }
        if (!d->capacity.given)
                d->capacity = (StorageSize) { .given = true, .bytes = b->info.capacity };
        return 0;
}

/* The checks CreateVolume and CreateVolumeFrom share: an active pool, a plain new name. */
static int vol_check_new(StoragePool *p, const StorageVolDef *d, VbError *reterr) {
        int k;

        if (!storage_pool_is_active(p) || !storage_backend_find(p->def->type))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        k = storage_vol_name_check(d->name, reterr);
        if (k < 0)
                return k;
        if (storage_vol_by_name(p, d->name))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Volume '%s' already exists in pool '%s'.", d->name,
                                    p->name);
        return 0;
}

/* The backend makes the file, and the registry gets the volume. */
static int vol_make(StorageRegistry *r, StoragePool *p, const StorageVolDef *d, uid_t owner, StorageVol **ret,
                    VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        StorageVolInfo info;
        int k;

        k = ops->vol_create(p->fd, d, owner, reterr);
        if (k < 0)
                return k;
        log_notice("Created volume '%s' (%s, %" PRIu64 " bytes%s%s) in storage pool '%s' for uid %u.", d->name,
                   storage_vol_format_to_string(d->format_given ? d->format : STORAGE_VOL_FORMAT_RAW), d->capacity.bytes,
                   d->backing_path ? ", over " : "", strempty(d->backing_path), p->name, (unsigned) owner);
        k = ops->vol_info(p->fd, d->name, &info, reterr);
        if (k >= 0)
                k = vol_add(r, p, d->name, &info, ret);
        if (k < 0) {
                (void) ops->vol_delete(p->fd, d->name, NULL);
                return k;
        }
        (void) ops->pool_info(p->fd, &p->info);
        CHANGED(r, p, "Allocation", "Available");
        return 0;
}

int storage_vol_create(StorageRegistry *r, StoragePool *p, StorageVolDef *def, uid_t owner, StorageVol **ret,
                       VbError *reterr) {
        _cleanup_(storage_vol_def_freep) StorageVolDef *d = def;
        int k;

        k = vol_check_new(p, d, reterr);
        if (k < 0)
                return k;
        if (d->backing_path && (k = vol_check_backing(r, d, owner, reterr)) < 0)
                return k;
        if (!d->capacity.given)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Volume '%s' needs a <capacity>.", d->name);
        return vol_make(r, p, d, owner, ret, reterr);
}

int storage_vol_delete(StorageRegistry *r, StorageVol *v, VbError *reterr) {
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        if (!storage_pool_is_active(p) || !ops)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        k = vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        k = ops->vol_delete(p->fd, v->name, reterr);
        if (k < 0 && k != -ENOENT)
                return k;
        log_notice("Deleted volume '%s' of storage pool '%s'.", v->name, p->name);
        vol_remove(r, v);
        (void) ops->pool_info(p->fd, &p->info);
        CHANGED(r, p, "Allocation", "Available");
        return 0;
}

int storage_vol_get_xml(StorageVol *v, char **ret, VbError *reterr) {
        _cleanup_(storage_vol_def_freep) StorageVolDef *def = new0(StorageVolDef, 1);
        const VbStorageBackendOps *ops = storage_backend_find(v->pool->def->type);

        if (!def || !(def->name = strdup(v->name)) || !(def->key = strdup(v->path)) ||
            !(def->target_path = strdup(v->path)))
                return -ENOMEM;
        def->type_given = true;
        def->type = STORAGE_VOL_FILE;
        def->capacity = (StorageSize) { .given = true, .bytes = v->info.capacity };
        def->allocation = (StorageSize) { .given = true, .bytes = v->info.allocation };
        def->format_given = true;
        def->format = v->info.format;
        /* The image's backing file as its header names it (read again each time: cheap, and a file
         * uploaded later may have one). */
        if (ops && ops->vol_backing && storage_pool_is_active(v->pool) &&
            ops->vol_backing(v->pool->fd, v->name, &def->backing_path, &def->backing_format) > 0)
                def->backing_format_given = def->backing_format != STORAGE_VOL_FORMAT_NONE;
        return storage_vol_def_format(def, ret);
}

/* Jobs: Upload, Download, Wipe; Resize ------------------------------------------------------------ */

int storage_vol_set_creator(StorageVol *v, const char *caller) {
        return free_and_strdup(&v->creator, caller);
}

typedef struct VolJob {
        StorageRegistry *registry;
        StorageVol *vol;
        StorageJobKind kind;
        StorageVolJobCallbacks cb;
        void *userdata;
} VolJob;

static void vol_job_progress(StorageJob *j, uint64_t done, uint64_t total, void *userdata) {
        VolJob *vj = userdata;

        if (vj->cb.progress)
                vj->cb.progress(vj->vol, done, total, vj->userdata);
}

static void vol_job_done(StorageJob *j, int64_t result, const VbError *e, void *userdata) {
        VolJob *vj = userdata;
        StorageVol *v = vj->vol;
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        bool fresh = vj->kind == STORAGE_JOB_CLONE || (v->creator && streq_ptr(v->creator, v->job_caller));

        v->job = NULL;
        if (v->source) {
                v->source->n_readers--;
                v->source = NULL;
        }
        log_notice("%s of volume '%s' in pool '%s' for %s: %s.", storage_job_kind_to_string(vj->kind), v->name, p->name,
                   strna(v->job_caller), result >= 0 ? "done" : e->message);
        v->job_caller = mfree(v->job_caller);
        if (result < 0 && (vj->kind == STORAGE_JOB_UPLOAD || vj->kind == STORAGE_JOB_CLONE) && fresh) {
                /* A volume made for this upload or clone that never got its data goes again. */
                log_notice("Removing volume '%s' of pool '%s': its %s did not complete.", v->name, p->name,
                           vj->kind == STORAGE_JOB_CLONE ? "clone" : "first upload");
                (void) ops->vol_delete(p->fd, v->name, NULL);
                vol_remove(vj->registry, v);
                v = NULL;
        } else {
                if (result >= 0 && vj->kind != STORAGE_JOB_DOWNLOAD)
                        v->creator = mfree(v->creator);
                (void) ops->vol_info(p->fd, v->name, &v->info, NULL);
        }
        (void) ops->pool_info(p->fd, &p->info);
        vj->cb.done(v, result, e, vj->userdata);
        CHANGED(vj->registry, p, "Allocation", "Available");
        free(vj);
}

/* [offset, offset + *length) within the file's size; *length 0 becomes the rest. */
static int check_range(StorageVol *v, uint64_t size, uint64_t offset, uint64_t *length, VbError *reterr) {
        if (offset > size)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Offset %" PRIu64 " is past the end of volume '%s' (%" PRIu64 " bytes).", offset,
                                    v->name, size);
        if (*length == 0)
                *length = size - offset;
        else if (*length > size - offset)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "%" PRIu64 " bytes from offset %" PRIu64 " go past the end of volume '%s' (%" PRIu64
                                    " bytes).", *length, offset, v->name, size);
        return 0;
}

/* The thread for c (whose descriptors it takes) on v, reporting to cb. */
static int vol_launch_job(StorageRegistry *r, StorageVol *v, const StorageCopy *c, const char *caller,
                          const StorageVolJobCallbacks *cb, void *userdata, VbError *reterr) {
        VolJob *vj = new0(VolJob, 1);
        int k;

        if (!vj || free_and_strdup(&v->job_caller, caller) < 0) {
                free(vj);
                if (c->fd >= 0)
                        close(c->fd);
                close(c->vol_fd);
                return -ENOMEM;
        }
        *vj = (VolJob) { .registry = r, .vol = v, .kind = c->kind, .cb = *cb, .userdata = userdata };
        k = storage_job_start(r->event, c, c->length,
                              &(StorageJobCallbacks) { .progress = vol_job_progress, .done = vol_job_done }, vj, &v->job);
        if (k < 0) {
                free(vj);
                v->job_caller = mfree(v->job_caller);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start the %s: %s",
                                    storage_job_kind_to_string(c->kind), strerror(-k));
        }
        log_notice("%s of volume '%s' in pool '%s' for %s: %" PRIu64 " bytes from offset %" PRIu64 ".",
                   storage_job_kind_to_string(c->kind), v->name, v->pool->name, strna(caller), c->length, c->offset);
        return 1;
}

int storage_vol_start_job(StorageRegistry *r, StorageVol *v, StorageJobKind kind, int fd, uint64_t offset,
                          uint64_t length, const char *caller, const StorageVolJobCallbacks *cb, void *userdata,
                          VbError *reterr) {
        _cleanup_close_ int caller_fd = fd, vol_fd = -EBADF;
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        StorageCopy c = { .kind = kind, .offset = offset };
        struct stat st;
        int k;

        if (!storage_pool_is_active(p) || !ops)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        k = kind == STORAGE_JOB_DOWNLOAD && !v->job ? 0 : vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        if (kind == STORAGE_JOB_CLONE)
                return -EINVAL; /* storage_vol_clone */
        if (kind == STORAGE_JOB_WIPE && v->info.format != STORAGE_VOL_FORMAT_RAW) {
                /* An image format is wiped by making it empty again (qemu-img, bounded). */
                k = ops->vol_reformat(p->fd, v->name, reterr);
                if (k < 0)
                        return k;
                v->creator = mfree(v->creator);
                (void) ops->vol_info(p->fd, v->name, &v->info, NULL);
                return 0;
        }
        vol_fd = ops->vol_open(p->fd, v->name, kind == STORAGE_JOB_DOWNLOAD ? O_RDONLY : O_RDWR, reterr);
        if (vol_fd < 0)
                return vol_fd;
        if (fstat(vol_fd, &st) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Cannot read volume '%s': %s", v->name,
                                    strerror(errno));
        c.until_eof = kind == STORAGE_JOB_UPLOAD && length == 0;
        k = check_range(v, (uint64_t) st.st_size, offset, &length, reterr);
        if (k < 0)
                return k;
        c.length = length;
        c.fd = TAKE_FD(caller_fd);
        c.vol_fd = TAKE_FD(vol_fd);
        return vol_launch_job(r, v, &c, caller, cb, userdata, reterr);
}

/* Every image below v (its backing chain, as the headers name them) must be a volume uid may use: qemu-img
 * convert opens them by name, as root. */
static int vol_check_chain(StorageRegistry *r, StorageVol *v, uid_t uid, VbError *reterr) {
        for (unsigned depth = 0; v; depth++) {
                const VbStorageBackendOps *ops = storage_backend_find(v->pool->def->type);
                _cleanup_free_ char *backing = NULL;
                StorageVolFormat fmt;
                StorageVol *b;
                int k;

                k = storage_vol_check_owner(v, uid, reterr);
                if (k < 0)
                        return k;
                if (!ops || !ops->vol_backing || ops->vol_backing(v->pool->fd, v->name, &backing, &fmt) <= 0)
                        return 0;
                b = storage_vol_by_path(r, backing);
                if (!b || depth >= 16)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Volume '%s' is an overlay of '%s', which is not a volume of an active pool%s: "
                                            "it cannot be cloned.", v->name, backing, depth >= 16 ? " (or the chain is too long)" : "");
                v = b;
        }
        return 0;
}

int storage_vol_clone(StorageRegistry *r, StoragePool *p, StorageVolDef *def, StorageVol *source, uid_t owner,
                      const char *caller, const StorageVolJobCallbacks *cb, void *userdata, StorageVol **ret,
                      VbError *reterr) {
        _cleanup_(storage_vol_def_freep) StorageVolDef *d = def;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type), *sops;
        _cleanup_close_ int src_fd = -EBADF, vol_fd = -EBADF;
        StorageCopy c = { .kind = STORAGE_JOB_CLONE };
        StorageVol *v = NULL;
        int k;

        k = vol_check_new(p, d, reterr);
        if (k < 0)
                return k;
        if (!storage_pool_is_active(source->pool))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' of volume '%s' is not active.",
                                    source->pool->name, source->name);
        if (source->job && storage_job_kind(source->job) != STORAGE_JOB_DOWNLOAD)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Volume '%s' is busy: its %s is running.", source->name,
                                    storage_job_kind_to_string(storage_job_kind(source->job)));
        k = vol_check_chain(r, source, owner, reterr);
        if (k < 0)
                return k;
        if (d->backing_path)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Volume '%s': a clone copies its source whole, it takes no <backingStore>.", d->name);
        if (!d->format_given) {
                d->format = source->info.format;
                d->format_given = true;
        }
        if (!d->capacity.given || d->capacity.bytes < source->info.capacity)
                d->capacity = (StorageSize) { .given = true, .bytes = source->info.capacity };
        c.from_format = source->info.format;
        c.to_format = d->format;
        c.length = source->info.capacity;
        sops = storage_backend_find(source->pool->def->type);
        src_fd = sops->vol_open(source->pool->fd, source->name, O_RDONLY, reterr);
        if (src_fd < 0)
                return src_fd;
        /* The empty volume, then its filling in a thread; it goes again if that fails or is cancelled. */
        k = vol_make(r, p, d, owner, &v, reterr);
        if (k < 0)
                return k;
        vol_fd = ops->vol_open(p->fd, v->name, O_RDWR, reterr);
        if (vol_fd < 0) {
                (void) ops->vol_delete(p->fd, v->name, NULL);
                vol_remove(r, v);
                return vol_fd;
        }
        c.fd = TAKE_FD(src_fd);
        c.vol_fd = TAKE_FD(vol_fd);
        k = vol_launch_job(r, v, &c, caller, cb, userdata, reterr);
        if (k < 0) {
                (void) ops->vol_delete(p->fd, v->name, NULL);
                vol_remove(r, v);
                return k;
        }
        v->source = source;
        source->n_readers++;
        log_notice("Cloning volume '%s' of pool '%s' into '%s' of pool '%s' (%s to %s) for uid %u.", source->name,
                   source->pool->name, v->name, p->name, storage_vol_format_to_string(c.from_format),
                   storage_vol_format_to_string(c.to_format), (unsigned) owner);
        *ret = v;
        return 1;
}

void storage_vol_cancel_job(StorageVol *v, const char *caller) {
        if (v->job && (!caller || streq_ptr(caller, v->job_caller)))
                storage_job_cancel(v->job);
}

int storage_vol_resize(StorageRegistry *r, StorageVol *v, uint64_t capacity, bool shrink, VbError *reterr) {
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        if (!storage_pool_is_active(p) || !ops)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        k = vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        k = ops->vol_resize(p->fd, v->name, capacity, shrink, reterr);
        if (k < 0)
                return k;
        log_notice("Resized volume '%s' of storage pool '%s' to %" PRIu64 " bytes.", v->name, p->name, capacity);
        v->creator = mfree(v->creator);
        (void) ops->vol_info(p->fd, v->name, &v->info, NULL);
        (void) ops->pool_info(p->fd, &p->info);
        CHANGED(r, p, "Allocation", "Available");
        return 0;
}

int storage_vol_resolve(StorageRegistry *r, const char *pool, const char *volume, bool active, uid_t owner,
                        bool readonly, char **ret_path, StorageVolFormat *ret_format, VbError *reterr) {
        StoragePool *p = storage_pool_by_name(r, pool);
        StorageVol *v;
        char *path = NULL;
        int k;

        if (!p)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_STORAGE_POOL, "No storage pool is named '%s'.", pool);
        k = storage_vol_name_check(volume, reterr);
        if (k < 0)
                return k;
        v = storage_pool_is_active(p) ? storage_vol_by_name(p, volume) : NULL;
        if (v && readonly && v->info.owner == 0 && owner != 0)
                log_debug("Volume '%s' of pool '%s' (root's) is read by a domain of uid %u.", volume, pool,
                          (unsigned) owner);
        if (v && (k = readonly ? storage_vol_check_read(v, owner, reterr) : storage_vol_check_owner(v, owner, reterr)) < 0) {
                if (readonly || v->info.owner != 0)
                        return k;
                /* Root's volume, used writable: say how it can be used. */
                vb_error_free(reterr);
                return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                                    "The volume '%s' of pool '%s' belongs to root: a domain of uid %u can use it only "
                                    "read-only (<readonly/>, or a cdrom or floppy).", volume, pool, (unsigned) owner);
        }
        if (!active) {
                if (!p->def->target_path || asprintf(&path, "%s/%s", p->def->target_path, volume) < 0)
                        return -ENOMEM;
                *ret_path = path;
                if (ret_format)
                        *ret_format = STORAGE_VOL_FORMAT_RAW;
                return 0;
        }
        if (!storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Storage pool '%s' is not active.", pool);
        if (!v)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_STORAGE_VOL, "Storage pool '%s' has no volume '%s'.", pool,
                                    volume);
        path = strdup(v->path);
        if (!path)
                return -ENOMEM;
        *ret_path = path;
        if (ret_format)
                *ret_format = v->info.format;
        return 0;
}

/* Loading --------------------------------------------------------------------------------------- */

static int load_saved(const char *path, const char *uuid, const char *xml, void *userdata) {
        StorageRegistry *r = userdata;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p;
        char got[37];
        int k;

        k = storage_pool_def_parse_string(xml, 0, &def, &e);
        if (k < 0) {
                log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path, e.message ?: strerror(-k));
                vb_error_free(&e);
                return 0;
        }
        storage_pool_def_get_uuid_string(def, got);
        if (!streq(got, uuid) || check_conflicts(r, def, NULL, NULL) < 0) {
                log_warning("'%s' holds pool %s, not the one its name says, or one that is already there; ignoring.",
                            path, got);
                storage_pool_def_free(def);
                return 0;
        }
        k = pool_add(r, def, true, &p);
        if (k >= 0)
                p->autostart = def_store_get_autostart(r->dir, uuid);
        return k < 0 ? k : 0;
}

/* Pools that were active when virtbusd stopped: saved ones start again, transient ones come back. */
static int load_status(const char *path, const char *uuid, const char *xml, void *userdata) {
        StorageRegistry *r = userdata;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p = storage_pool_by_uuid(r, uuid);
        int k;

        if (p) {
                if (!storage_pool_is_active(p) && pool_activate(r, p, &e) < 0)
                        log_warning("Failed to start pool '%s' again, ignoring: %s", p->name, strempty(e.message));
                vb_error_free(&e);
                return 0;
        }
        if (storage_pool_def_parse_string(xml, 0, &def, &e) < 0) {
                log_warning("Failed to read '%s', ignoring: %s", path, strempty(e.message));
                vb_error_free(&e);
                (void) unlink(path);
                return 0;
        }
        k = storage_pool_create(r, def, &p, &e);
        if (k < 0) {
                log_warning("Failed to bring back transient pool from '%s', ignoring: %s", path, strempty(e.message));
                (void) unlink(path);
        }
        vb_error_free(&e);
        return 0;
}

static int setup_test_pool(StorageRegistry *r) {
        _cleanup_free_ char *xml = NULL;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p;
        int k;

        if (!r->test_pool_dir || storage_pool_by_name(r, STORAGE_TEST_POOL_NAME))
                return 0;
        if (mkdir_p(r->test_pool_dir, 0711) < 0)
                return log_warning_errno(errno, "Failed to create '%s', ignoring: %m", r->test_pool_dir);
        if (asprintf(&xml, "<pool type='dir'><name>" STORAGE_TEST_POOL_NAME "</name><target><path>%s</path></target></pool>",
                     r->test_pool_dir) < 0)
                return -ENOMEM;
        k = storage_pool_def_parse_string(xml, STORAGE_PARSE_STABLE_DEFAULTS, &def, &e);
        if (k >= 0)
                k = storage_pool_create(r, def, &p, &e);
        if (k < 0)
                log_warning("Failed to set up the test pool, ignoring: %s", e.message ?: strerror(-k));
        vb_error_free(&e);
        return 0;
}

int storage_registry_load(StorageRegistry *r) {
        int k;

        k = def_store_load_all(r->dir, load_saved, r);
        if (k < 0)
                log_warning_errno(k, "Failed to load saved storage pools, ignoring: %m");
        k = def_store_load_all(r->status_dir, load_status, r);
        if (k < 0)
                log_warning_errno(k, "Failed to find active storage pools, ignoring: %m");
        for (size_t i = 0; i < r->n_pools; i++) {
                StoragePool *p = r->pools[i];
                VbError e = VB_ERROR_NULL;

                if (p->autostart && !storage_pool_is_active(p) && storage_pool_start(r, p, &e) < 0)
                        log_warning("Failed to autostart storage pool '%s', ignoring: %s", p->name, strempty(e.message));
                vb_error_free(&e);
        }
        return setup_test_pool(r);
}
