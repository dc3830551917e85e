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
#include "util/loop-watch.h"
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

/* The last volume of p goes (vol_removed, then freed). */
static void pool_drop_last(StorageRegistry *r, StoragePool *p) {
        StorageVol *v = p->vols[p->n_vols - 1];

        if (r->events.vol_removed)
                r->events.vol_removed(r->events.userdata, v);
        hashmap_remove(p->vols_by_name, v->name);
        p->n_vols--;
        storage_vol_free(v);
}

static void pool_drop_volumes(StorageRegistry *r, StoragePool *p) {
        while (p->n_vols > 0)
                pool_drop_last(r, p);
}

static StoragePool *pool_free(StoragePool *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_vols; i++)
                storage_vol_free(p->vols[i]);
        free(p->vols);
        hashmap_free(p->vols_by_name);
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

static void pool_jobs_end_steps(StorageRegistry *r);

StorageRegistry *storage_registry_free(StorageRegistry *r) {
        if (!r)
                return NULL;
        r->freeing = true;
        pool_jobs_end_steps(r);
        if (r->worker && worker_running(r->worker)) {
                /* Still running after virtbusd's stop waited for it (hung in the kernel): virtbusd exits
                 * without it rather than wait forever (its caller was answered: storage_registry_abandon).
                 * The thread keeps what it uses: its job reaches the registry and the pools' definitions,
                 * which stay as they are until the process ends. */
                log_warning("Work of a storage pool is still running: virtbusd exits without it.");
                worker_cancel_queued(r->worker);
                return NULL;
        }
        r->worker = worker_free(r->worker); /* work just finished is delivered; its caller is answered */
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
        return p->fd >= 0 || p->busy == STORAGE_POOL_STOPPING;
}

StorageVol *storage_vol_by_name(const StoragePool *p, const char *name) {
        return p->vols_by_name ? hashmap_get(p->vols_by_name, name) : NULL;
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

static const char * const busy_table[_STORAGE_POOL_BUSY_MAX] = {
        [STORAGE_POOL_BUILDING] = "being built",
        [STORAGE_POOL_STARTING] = "being started",
        [STORAGE_POOL_STOPPING] = "being stopped",
        [STORAGE_POOL_REFRESHING] = "being refreshed",
};

static int busy_error(const StoragePool *p, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Pool '%s' is busy: it is %s.", p->name, busy_table[p->busy]);
}

/* DeviceBusy while work of the pool's runs in the worker. */
static int check_idle(const StoragePool *p, VbError *reterr) {
        return p->busy == STORAGE_POOL_IDLE ? 0 : busy_error(p, reterr);
}

int storage_pool_check_ready(const StoragePool *p, bool changes, VbError *reterr) {
        if (p->busy == STORAGE_POOL_STARTING || p->busy == STORAGE_POOL_STOPPING ||
            (changes && p->busy == STORAGE_POOL_REFRESHING))
                return busy_error(p, reterr);
        if (p->fd < 0 || !storage_backend_find(p->def->type))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        return 0;
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
                k = check_idle(p, reterr);
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

/* A new transient pool from def (taken), once nothing stands in its way; not started. */
static int pool_add_transient(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *d = def;
        int k;

        k = storage_pool_check_conflicts(r, d, NULL, reterr);
        if (k < 0)
                return k;
        if (!storage_backend_find(d->type))
                return not_supported(d, reterr);
        return storage_pool_add(r, TAKE_PTR(d), false, ret);
}

int storage_pool_create(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr) {
        StoragePool *p;
        int k;

        k = pool_add_transient(r, def, &p, reterr);
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

        k = check_idle(p, reterr);
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

/* Work of a pool's in the registry's worker ------------------------------------------------------- */

typedef struct PoolJob PoolJob;
struct PoolJob {
        PoolJob *next; /* in the registry's jobs */
        StorageRegistry *registry;
        char uuid[37];
        StoragePoolBusy kind;
        const VbStorageBackendOps *ops;
        const StoragePoolDef *def; /* the pool's: it does not change while the pool is busy */
        int fd;         /* Start: the one opened; Stop: the pool's, closed there (and a new one if it failed) */
        PoolScan *scan; /* Start, Refresh: what the pool holds */
        bool create;    /* CreateStoragePool: the pool goes again if its start fails */
        unsigned tries; /* Refresh: scans read again because volumes changed meanwhile */
        int result;
        VbError error;
        StoragePoolDoneFunc done;
        void *userdata;
        sd_event_source *step; /* its result being applied on the loop, a step per turn */
};

#define POOL_JOB_THREADS 4 /* a pool on a hung file system holds one; the others go on */
#define POOL_JOB_QUEUE_MAX 64
#define POOL_SCAN_TRIES 3

static PoolJob *pool_job_free(PoolJob *j) {
        sd_event_source_disable_unref(j->step);
        if (j->fd >= 0)
                close(j->fd);
        storage_pool_scan_free(j->scan);
        vb_error_free(&j->error);
        free(j);
        return NULL;
}

/* In the worker: the host only (the backend, the scan's reading), nothing of the registry. */
static void pool_job_work(void *userdata) {
        PoolJob *j = userdata;
        int k;

        /* Not begun when virtbusd began to stop: nothing is done (pool_job_done answers). */
        if (__atomic_load_n(&j->registry->stopping, __ATOMIC_ACQUIRE)) {
                j->result = -ECANCELED;
                return;
        }
        if (j->kind != STORAGE_POOL_BUILDING)
                storage_test_hold();
        switch (j->kind) {
        case STORAGE_POOL_BUILDING:
                j->result = j->ops->build(j->def, &j->error);
                break;
        case STORAGE_POOL_STARTING:
                j->result = j->ops->start(j->def, &j->fd, &j->error);
                if (j->result >= 0) {
                        storage_pool_scan_set_fd(j->scan, j->fd);
                        (void) storage_pool_scan_read(j->scan);
                }
                break;
        case STORAGE_POOL_STOPPING:
                close(j->fd);
                j->fd = -1;
                j->result = 0;
                if (j->ops->stop && (k = j->ops->stop(j->def, &j->error)) < 0) {
                        /* Still mounted (busy): the pool stays active. */
                        if (j->ops->start(j->def, &j->fd, NULL) < 0)
                                log_warning("Pool '%s' could not be stopped nor opened again.", j->def->name);
                        j->result = k;
                }
                break;
        case STORAGE_POOL_REFRESHING:
                k = storage_pool_scan_read(j->scan);
                j->result = k < 0 ? vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "Failed to read pool '%s': %s",
                                                 j->def->name, strerror(-k))
                                  : 0;
                break;
        default:
                j->result = -EINVAL;
        }
}

static const char * const job_verb[_STORAGE_POOL_BUSY_MAX] = {
        [STORAGE_POOL_BUILDING] = "build",
        [STORAGE_POOL_STARTING] = "start",
        [STORAGE_POOL_STOPPING] = "stop",
        [STORAGE_POOL_REFRESHING] = "refresh",
};

/* Work that virtbusd's stop kept from beginning, or cut short (its helper killed): its caller is told so. */
static void pool_job_stopped_error(PoolJob *j, const char *name) {
        _cleanup_free_ char *why = NULL;

        if (j->result >= 0 || !j->registry->stopping)
                return;
        why = TAKE_PTR(j->error.message);
        vb_error_free(&j->error);
        if (j->result == -ECANCELED)
                j->result = vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "The %s of pool '%s' was not begun: "
                                         "virtbusd is stopping.", job_verb[j->kind], name);
        else
                j->result = vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "The %s of pool '%s' was cut short: "
                                         "virtbusd is stopping (%s)", job_verb[j->kind], name, why ?: strerror(-j->result));
}

/* A stop's end, once the pool's volumes are gone: a transient pool goes too (*pp NULL). */
static void pool_stopped(StorageRegistry *r, StoragePool **pp) {
        StoragePool *p = *pp;

        log_info("Stopped storage pool '%s'.", p->name);
        if (!p->persistent) {
                pool_remove(r, p);
                *pp = NULL;
                return;
        }
        p->info = (StoragePoolInfo) {};
        CHANGED(r, p, "Active", "Capacity", "Allocation", "Available");
}

static int pool_job_submit(StorageRegistry *r, StoragePool *p, PoolJob *j, VbError *reterr);

/* One step of what the registry follows after the work: the scan's volumes announced or removed (Start,
 * Refresh), a stopped pool's volumes removed. 1 when more is left. */
static int pool_job_step(PoolJob *j, StoragePool *p, StorageStep *st) {
        StorageRegistry *r = j->registry;

        if (j->kind == STORAGE_POOL_STOPPING) {
                while (p->n_vols > 0) {
                        pool_drop_last(r, p);
                        if (!storage_step_more(st, true))
                                return p->n_vols > 0;
                }
                return 0;
        }
        return storage_pool_scan_apply_step(r, p, j->scan, st) > 0;
}

/* The last step done: the pool's new state, announced after its volumes. */
static void pool_job_end(PoolJob *j, StoragePool **pp) {
        StorageRegistry *r = j->registry;
        StoragePool *p = *pp;

        p->busy = STORAGE_POOL_IDLE;
        switch (j->kind) {
        case STORAGE_POOL_STARTING:
                p->fd = TAKE_FD(j->fd);
                log_info("Started storage pool '%s'.", p->name);
                CHANGED(r, p, "Active", "Capacity", "Allocation", "Available");
                break;
        case STORAGE_POOL_STOPPING:
                pool_stopped(r, pp);
                break;
        case STORAGE_POOL_REFRESHING:
                CHANGED(r, p, "Capacity", "Allocation", "Available");
                break;
        default:
                break;
        }
}

/* The caller is answered, the job forgotten. */
static void pool_job_finish(PoolJob *j, StoragePool *p) {
        StorageRegistry *r = j->registry;

        for (PoolJob **i = &r->jobs; *i; i = &(*i)->next)
                if (*i == j) {
                        *i = j->next;
                        break;
                }
        r->n_jobs--;
        j->done(p, j->result, &j->error, j->userdata);
        pool_job_free(j);
}

static int on_pool_step(sd_event_source *source, void *userdata) {
        PoolJob *j = userdata;
        StoragePool *p = storage_pool_by_uuid(j->registry, j->uuid);
        StorageStep st;

        loop_watch_note("a step of the volumes of storage pool '%s' (its %s)", p ? p->name : j->uuid,
                        job_verb[j->kind]);
        storage_step_init(&st);
        if (p && pool_job_step(j, p, &st) > 0)
                return 0; /* the source stays on: the next step after the loop's other work */
        if (p)
                pool_job_end(j, &p);
        pool_job_finish(j, p);
        return 0;
}

/* On the loop: the registry begins to follow what was done. 1 when it goes on later (in steps, or the
 * work submitted again), 0 when done (the caller is to be answered). */
static int pool_job_apply(PoolJob *j, StoragePool **pp) {
        StorageRegistry *r = j->registry;
        StoragePool *p = *pp;
        _cleanup_free_ char *status = NULL;
        StorageStep all = { .left = SIZE_MAX, .until = UINT64_MAX };

        p->busy = STORAGE_POOL_IDLE;
        switch (j->kind) {
        case STORAGE_POOL_BUILDING:
                if (j->result >= 0)
                        log_notice("Built storage pool '%s' at '%s'.", p->name, strempty(p->def->target_path));
                else
                        log_warning("Failed to build storage pool '%s': %s", p->name, strempty(j->error.message));
                return 0;
        case STORAGE_POOL_STARTING:
                if (j->result < 0) {
                        if (j->create) {
                                pool_remove(r, p);
                                *pp = NULL;
                        }
                        return 0;
                }
                (void) save_status(r, p); /* started on the host: a restart takes it up */
                break;
        case STORAGE_POOL_STOPPING:
                if (j->result < 0) {
                        if ((p->fd = TAKE_FD(j->fd)) < 0) /* not stopped, and not open again either */
                                CHANGED(r, p, "Active");
                        return 0;
                }
                if (status_path(r, p->uuid, &status) >= 0)
                        (void) unlink(status);
                break;
        case STORAGE_POOL_REFRESHING:
                if (j->result >= 0 && storage_pool_scan_stale(p, j->scan) && j->tries < POOL_SCAN_TRIES) {
                        PoolScan *again = NULL;

                        /* A volume came or went while the scan read: read again. */
                        j->tries++;
                        if (storage_pool_scan_new(r, p, &again) >= 0) {
                                storage_pool_scan_free(j->scan);
                                j->scan = again;
                                if (pool_job_submit(r, p, j, NULL) >= 0)
                                        return 1;
                        }
                }
                if (j->result < 0)
                        return 0;
                break;
        default:
                return 0;
        }
        /* The volumes in steps, the pool busy meanwhile; all at once if the loop cannot take a source. */
        p->busy = j->kind;
        if (sd_event_add_defer(r->event, &j->step, on_pool_step, j) >= 0 &&
            sd_event_source_set_enabled(j->step, SD_EVENT_ON) >= 0)
                return 1;
        j->step = sd_event_source_disable_unref(j->step);
        while (pool_job_step(j, p, &all) > 0)
                ;
        pool_job_end(j, pp);
        return 0;
}

static void pool_job_done(void *userdata, bool cancelled) {
        PoolJob *j = userdata;
        StorageRegistry *r = j->registry;
        StoragePool *p = storage_pool_by_uuid(r, j->uuid);

        if (cancelled) /* never ran */
                j->result = -ECANCELED;
        pool_job_stopped_error(j, p ? p->name : j->uuid);
        if (p && r->freeing) {
                /* virtbusd is going: the registry stays as it is; a pool started meanwhile is recorded so that
                 * the next start-up takes it up. The caller is answered. */
                if (j->kind == STORAGE_POOL_STARTING && j->result >= 0)
                        (void) save_status(r, p);
                p = NULL;
        } else if (p && pool_job_apply(j, &p) > 0)
                return;
        pool_job_finish(j, p);
}

static int pool_job_submit(StorageRegistry *r, StoragePool *p, PoolJob *j, VbError *reterr) {
        int k;

        if (r->stopping)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Pool '%s' cannot be changed now: virtbusd is "
                                    "stopping.", p->name);
        if (!r->worker && (k = worker_new(r->event, POOL_JOB_THREADS, POOL_JOB_QUEUE_MAX, 0, &r->worker)) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Cannot start the threads for storage pools: %s",
                                    strerror(-k));
        k = worker_submit(r->worker, pool_job_work, pool_job_done, j);
        if (k < 0)
                return vb_error_set(reterr, k == -EAGAIN ? VB_ERROR_LIMITS_EXCEEDED : VB_ERROR_OPERATION_FAILED,
                                    "Cannot %s pool '%s' now: %s", job_verb[j->kind], p->name, strerror(-k));
        p->busy = j->kind;
        return 0;
}

/* The pool's work begins in the worker: 0, or < 0 with nothing changed. */
static int pool_job_begin(StorageRegistry *r, StoragePool *p, StoragePoolBusy kind, bool create,
                          StoragePoolDoneFunc done, void *userdata, VbError *reterr) {
        PoolJob *j;
        int k;

        j = new0(PoolJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (PoolJob) { .registry = r, .kind = kind, .ops = storage_backend_find(p->def->type), .def = p->def,
                         .fd = -1, .create = create, .done = done, .userdata = userdata, .error = VB_ERROR_NULL };
        memcpy(j->uuid, p->uuid, sizeof j->uuid);
        if ((kind == STORAGE_POOL_STARTING || kind == STORAGE_POOL_REFRESHING) &&
            (k = storage_pool_scan_new(r, p, &j->scan)) < 0) {
                pool_job_free(j);
                return k;
        }
        if (kind == STORAGE_POOL_STOPPING)
                j->fd = p->fd;
        k = pool_job_submit(r, p, j, reterr);
        if (k < 0) {
                j->fd = -1;
                pool_job_free(j);
                return k;
        }
        if (kind == STORAGE_POOL_STOPPING)
                p->fd = -1; /* the worker's now; the pool stays active until it is done */
        j->next = r->jobs;
        r->jobs = j;
        r->n_jobs++;
        return 0;
}

static void answered_already(StoragePool *p, int r, const VbError *e, void *userdata) {
}

/* At exit: results still being applied on the loop stop where they are (the caller is answered, the pool
 * recorded as the host has it: a restart reads it again). */
static void pool_jobs_end_steps(StorageRegistry *r) {
        for (PoolJob *j = r->jobs, *next; j; j = next) {
                VbError e = VB_ERROR_NULL;
                int k;

                next = j->next;
                if (!j->step)
                        continue;
                j->step = sd_event_source_disable_unref(j->step);
                if (j->done != answered_already) {
                        k = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "The %s of pool '%s' was done, but virtbusd "
                                         "stopped before it showed all its volumes.", job_verb[j->kind], j->def->name);
                        j->done(NULL, k, &e, j->userdata);
                        vb_error_free(&e);
                        j->done = answered_already;
                }
                pool_job_finish(j, NULL);
        }
}

void storage_registry_abandon(StorageRegistry *r) {
        for (PoolJob *j = r->jobs; j; j = j->next) {
                VbError e = VB_ERROR_NULL;
                int k;

                if (j->done == answered_already || j->step)
                        continue;
                k = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "virtbusd is stopping: the %s of pool '%s' was still "
                                 "running in the kernel, and may complete without virtbusd.", job_verb[j->kind],
                                 j->def->name);
                log_warning("The %s of storage pool '%s' is still running while virtbusd exits.", job_verb[j->kind],
                            j->def->name);
                j->done(NULL, k, &e, j->userdata);
                vb_error_free(&e);
                /* The thread does not read these; the job stays its own until it ends. */
                j->done = answered_already;
                j->userdata = NULL;
        }
}

void storage_registry_stop(StorageRegistry *r) {
        __atomic_store_n(&r->stopping, true, __ATOMIC_RELEASE);
        worker_cancel_queued(r->worker); /* answered now, also behind work that hangs */
}

unsigned storage_registry_jobs(const StorageRegistry *r) {
        return r->n_jobs;
}

int storage_pool_start_async(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                             VbError *reterr) {
        int k;

        k = check_idle(p, reterr);
        if (k < 0)
                return k;
        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is already active.", p->name);
        if (!storage_backend_find(p->def->type))
                return not_supported(p->def, reterr);
        return pool_job_begin(r, p, STORAGE_POOL_STARTING, false, done, userdata, reterr);
}

int storage_pool_create_async(StorageRegistry *r, StoragePoolDef *def, StoragePoolDoneFunc done, void *userdata,
                              VbError *reterr) {
        StoragePool *p;
        int k;

        k = pool_add_transient(r, def, &p, reterr);
        if (k < 0)
                return k;
        k = pool_job_begin(r, p, STORAGE_POOL_STARTING, true, done, userdata, reterr);
        if (k < 0)
                pool_remove(r, p);
        return k;
}

int storage_pool_stop(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata, VbError *reterr) {
        int k;

        k = check_idle(p, reterr);
        if (k < 0)
                return k;
        if (!storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        for (size_t i = 0; i < p->n_vols; i++) {
                k = storage_vol_check_idle(p->vols[i], reterr);
                if (k < 0)
                        return k;
        }
        if (!storage_backend_find(p->def->type))
                return not_supported(p->def, reterr);
        return pool_job_begin(r, p, STORAGE_POOL_STOPPING, false, done, userdata, reterr);
}

int storage_pool_refresh(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                         VbError *reterr) {
        int k;

        k = check_idle(p, reterr);
        if (k < 0)
                return k;
        if (!storage_pool_is_active(p) || !storage_backend_find(p->def->type))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is not active.", p->name);
        return pool_job_begin(r, p, STORAGE_POOL_REFRESHING, false, done, userdata, reterr);
}

int storage_pool_build(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata, VbError *reterr) {
        int k;

        k = check_idle(p, reterr);
        if (k < 0)
                return k;
        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is active (Build is for a stopped pool).",
                                    p->name);
        if (!storage_backend_find(p->def->type))
                return not_supported(p->def, reterr);
        k = pool_job_begin(r, p, STORAGE_POOL_BUILDING, false, done, userdata, reterr);
        if (k >= 0)
                log_notice("Building storage pool '%s' at '%s'.", p->name, strempty(p->def->target_path));
        return k;
}

int storage_pool_delete(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        k = check_idle(p, reterr);
        if (k < 0)
                return k;
        if (storage_pool_is_active(p))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Pool '%s' is active (stop it before Delete).", p->name);
        if (!ops)
                return not_supported(p->def, reterr);
        log_notice("Deleting the directory of storage pool '%s' at '%s'.", p->name, p->def->target_path);
        return ops->remove(p->def, reterr);
}

int storage_pool_undefine(StorageRegistry *r, StoragePool *p, VbError *reterr) {
        int k;

        k = check_idle(p, reterr);
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
