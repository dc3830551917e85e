/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/storage-conf.h"
#include "core/storage-job.h"
#include "drivers/storage-backend.h"
#include "util/error.h"
#include "util/hashmap.h"

/* The registry of storage pools and their volumes. Persistent pools are saved as
 * <config>/storage/<uuid>.xml (def-store.c, autostart links in <config>/storage/autostart/); an active
 * pool also leaves <runtime>/storage/<uuid>.xml, so that a restarted virtbusd starts it again (transient
 * ones included). What a pool does on the host is its backend's (drivers/storage-backend.h); a pool type
 * without one is kept, and refused at Start with NotSupported.
 *
 * The volumes of an active pool are what its backend lists (Refresh reads them again); a volume is
 * named by a plain file name and keyed by its path. */

typedef struct StorageRegistry StorageRegistry;
typedef struct StoragePool StoragePool;

typedef struct StorageVol StorageVol;

struct StorageVol {
        StoragePool *pool;
        char *name;
        char *path; /* also its key */
        StorageVolInfo info;
        StorageJob *job;   /* the Upload, Download, Wipe or clone filling it, running on it, if any */
        unsigned n_readers; /* clones being made from it: it does not change or go meanwhile */
        StorageVol *source; /* while a clone fills this volume: the one it copies */
        char *creator;     /* who made it with CreateVolume, until something was written into it */
        char *job_caller;  /* the bus name the running job is for */
};

/* What the registry's worker does for a pool (the host part of Build, Start, Stop, Refresh): the pool
 * answers DeviceBusy to what would conflict until it is done. While it stops, a pool is still active. */
typedef enum StoragePoolBusy {
        STORAGE_POOL_IDLE,
        STORAGE_POOL_BUILDING,
        STORAGE_POOL_STARTING,
        STORAGE_POOL_STOPPING,
        STORAGE_POOL_REFRESHING,
        _STORAGE_POOL_BUSY_MAX,
} StoragePoolBusy;

struct StoragePool {
        StorageRegistry *registry;
        char uuid[37];
        char *name;
        StoragePoolDef *def; /* the definition (saved when persistent) */
        bool persistent;
        bool autostart;
        int fd; /* the backend's handle while active, else -1 */
        StoragePoolInfo info;
        StorageVol **vols;
        size_t n_vols, n_vols_allocated;
        Hashmap *vols_by_name; /* the same volumes by name (keys: their names) */
        StoragePoolBusy busy; /* work of the pool's in the registry's worker: its definition stays meanwhile */
        unsigned vol_changes; /* counts volumes added and removed (a scan begun before is stale) */
};

typedef struct StorageEvents {
        void (*pool_added)(void *userdata, StoragePool *p);
        void (*pool_removed)(void *userdata, StoragePool *p); /* before it is freed */
        /* properties: NULL-terminated names of org.virtbus1.StoragePool properties that changed */
        void (*pool_changed)(void *userdata, StoragePool *p, const char * const *properties);
        void (*vol_added)(void *userdata, StorageVol *v);
        void (*vol_removed)(void *userdata, StorageVol *v); /* before it is freed */
        void *userdata;
} StorageEvents;

struct StorageRegistry {
        sd_event *event;  /* where jobs report (storage-job.h) */
        char *dir;        /* <config>/storage */
        char *status_dir; /* <runtime>/storage */
        char *test_pool_dir; /* the test driver's simulated pool 'default-pool' (NULL otherwise) */
        struct Durable *durable; /* the saved definitions' changes (util/durable.h; NULL: synced at once) */
        StorageEvents events;
        Hashmap *by_uuid, *by_name;
        StoragePool **pools; /* in order of definition */
        size_t n_pools, n_pools_allocated;
        struct Worker *worker; /* the pools' host work (mkfs, mount, scans), made when first needed */
        unsigned n_jobs;       /* pools' work submitted, not yet answered (also while applied in steps) */
        struct PoolJob *jobs;  /* that work, to answer it at exit when a thread is still held in the kernel */
        bool stopping;         /* virtbusd is stopping: no new pool work; work not begun is answered so */
        bool freeing;
};

#define STORAGE_TEST_POOL_NAME "default-pool"

int storage_registry_new(const char *config_dir, const char *runtime_dir, const char *driver, StorageRegistry **ret,
                         VbError *reterr);
StorageRegistry *storage_registry_free(StorageRegistry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(StorageRegistry *, storage_registry_free);
void storage_registry_set_events(StorageRegistry *r, const StorageEvents *events);
/* Saved pools, then the ones that were active; autostart ones start; the test driver's default-pool. */
int storage_registry_load(StorageRegistry *r);

StoragePool *storage_pool_by_uuid(const StorageRegistry *r, const char *uuid);
StoragePool *storage_pool_by_name(const StorageRegistry *r, const char *name);
StorageVol *storage_vol_by_name(const StoragePool *p, const char *name);
StorageVol *storage_vol_by_path(const StorageRegistry *r, const char *path);
bool storage_pool_is_active(const StoragePool *p);

/* Define / Create take def (also on failure). storage_pool_create and storage_pool_start work at once
 * (start-up: the loop serves nobody yet); the others below run in the registry's worker. */
int storage_pool_define(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr);
int storage_pool_create(StorageRegistry *r, StoragePoolDef *def, StoragePool **ret, VbError *reterr);
int storage_pool_start(StorageRegistry *r, StoragePool *p, VbError *reterr);
/* The host part of Build (the target: a directory; a file system with mkfs for 'fs'), Start (mount, open,
 * the volumes read), Stop (unmount) and Refresh (the volumes read again) runs in the registry's worker
 * threads, the pool busy meanwhile (DeviceBusy to the pool's other changes, and to its volumes' changes
 * as storage_pool_check_ready says); done(p, r, e, userdata) on the loop when it ended, after the
 * registry's events (p NULL: the pool went, a transient one stopped or not started). Each returns 0 once
 * begun, or < 0 (reterr) at once. */
typedef void (*StoragePoolDoneFunc)(StoragePool *p, int r, const VbError *e, void *userdata);
int storage_pool_build(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                       VbError *reterr); /* inactive only */
int storage_pool_start_async(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                             VbError *reterr);
/* CreateStoragePool: def (taken) joins the registry (announced) and starts; if that fails it goes again. */
int storage_pool_create_async(StorageRegistry *r, StoragePoolDef *def, StoragePoolDoneFunc done, void *userdata,
                              VbError *reterr);
int storage_pool_stop(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                      VbError *reterr); /* a transient one goes away */
int storage_pool_refresh(StorageRegistry *r, StoragePool *p, StoragePoolDoneFunc done, void *userdata,
                         VbError *reterr); /* active only */
int storage_pool_delete(StorageRegistry *r, StoragePool *p, VbError *reterr);  /* inactive only */
/* SIGTERM: no new pool work; work not begun is answered "virtbusd is stopping" (its helper processes, mkfs,
 * are killed by host_children_cancel). storage_registry_jobs: work not yet answered (also work whose
 * volumes are still being announced on the loop, in steps). */
void storage_registry_stop(StorageRegistry *r);
unsigned storage_registry_jobs(const StorageRegistry *r);
/* At exit, after the stop's bounded wait: work still held in the kernel (a mount that never returns) is
 * answered "still running in the kernel, and may complete without virtbusd"; the thread is left to it. */
void storage_registry_abandon(StorageRegistry *r);
int storage_pool_undefine(StorageRegistry *r, StoragePool *p, VbError *reterr);
int storage_pool_set_autostart(StorageRegistry *r, StoragePool *p, bool autostart, VbError *reterr);
#define STORAGE_XML_INACTIVE (1u << 0)
int storage_pool_get_xml(StoragePool *p, unsigned flags, char **ret, VbError *reterr);

/* How a volume's job (below) reports: progress, and its end (v NULL when the volume was removed). */
typedef struct StorageVolJobCallbacks {
        void (*progress)(StorageVol *v, uint64_t done, uint64_t total, void *userdata);
        void (*done)(StorageVol *v, int64_t r, const VbError *e, void *userdata);
} StorageVolJobCallbacks;

/* CreateVolume: def (taken) names a volume that must not exist; its name is checked
 * (storage_vol_name_check) and capacity is required, except for an overlay (<backingStore>: a qcow2 over
 * another volume, which owner must be allowed to use: storage_vol_check_owner). The file belongs to owner
 * (the caller's uid). Returns 0 when the volume is whole (raw), or 1 when a job for caller writes its image
 * (qcow2: qemu-img, off the event loop; the volume is busy meanwhile, cb->done says how it ended, and a
 * failure removes it again). */
int storage_vol_create(StorageRegistry *r, StoragePool *p, StorageVolDef *def, uid_t owner, const char *caller,
                       const StorageVolJobCallbacks *cb, void *userdata, StorageVol **ret, VbError *reterr);
/* Whether uid may use v: root may use any volume, anyone else only those they created (AccessDenied
 * naming the volume otherwise). */
int storage_vol_check_owner(const StorageVol *v, uid_t uid, VbError *reterr);
/* Whether uid may read v without changing it (Download; a read-only disk, cdrom or floppy of uid's
 * domain): the volumes it may use, and root's volumes too (the administrator's, such as an installer ISO
 * in pool 'default'), which polkit then limits (org.virtbus1.storage.manage, details pool and volume).
 * Another user's volume stays refused. A guest so reaches only what its owner may read through the
 * service itself (docs/storage.md). */
int storage_vol_check_read(const StorageVol *v, uid_t uid, VbError *reterr);
/* The volume is freed (after vol_removed). */
int storage_vol_delete(StorageRegistry *r, StorageVol *v, VbError *reterr);
int storage_vol_get_xml(StorageVol *v, char **ret, VbError *reterr);
const char *storage_vol_type_name(const StorageVol *v);

/* Marks v as just created by caller (a unique bus name): an Upload by that caller that fails or is
 * cancelled before anything else was written into v removes v (nothing half-made stays). */
int storage_vol_set_creator(StorageVol *v, const char *caller);

/* Upload, Download, Wipe. fd (taken, also on failure; -1 for Wipe) is the caller's descriptor; offset and
 * length are checked against the volume's file (length 0: to its end, or for an Upload until the
 * descriptor's EOF). One job per volume at a time (DeviceBusy). cb->done gets v, or NULL when a fresh
 * volume was removed after its Upload failed. */
int storage_vol_start_job(StorageRegistry *r, StorageVol *v, StorageJobKind kind, int fd, uint64_t offset,
                          uint64_t length, const char *caller, const StorageVolJobCallbacks *cb, void *userdata,
                          VbError *reterr);
/* CreateVolumeFrom: a new volume in p as def (taken) says, filled from source by a job like the above
 * (the format and capacity default to the source's; raw to raw by the kernel, qcow2 by qemu-img
 * convert), owned by owner, who must be allowed to use source and every image below it. cb->done gets the
 * new volume, or NULL when the clone failed or was cancelled and the partial volume was removed. *ret is
 * the new volume while the job runs. */
int storage_vol_clone(StorageRegistry *r, StoragePool *p, StorageVolDef *def, StorageVol *source, uid_t owner,
                      const char *caller, const StorageVolJobCallbacks *cb, void *userdata, StorageVol **ret,
                      VbError *reterr);
/* The running job of v, if it is for caller (NULL: any), stops; its done callback follows. */
void storage_vol_cancel_job(StorageVol *v, const char *caller);
/* shrink: the capacity may get smaller. A raw volume is resized here (returns 0); an image format by
 * qemu-img in a job like the above (returns 1, cb->done follows; the volume busy meanwhile). */
int storage_vol_resize(StorageRegistry *r, StorageVol *v, uint64_t capacity, bool shrink, const char *caller,
                       const StorageVolJobCallbacks *cb, void *userdata, VbError *reterr);

/* The one way a domain's disk reaches a volume (<disk type='volume'><source pool= volume=/>): the path of
 * the volume's file (to free) and its format. active: the pool must be active and hold the volume (a
 * start, a hot-plug); otherwise the pool must only exist, and the path is where the volume is or will be
 * (a grant at Define). owner is the domain's owner: a volume that exists must be one owner may use
 * (storage_vol_check_owner), or, for a disk the guest only reads (readonly), one owner may read
 * (storage_vol_check_read), so that a guest reaches only what its owner may. NoSuchStoragePool,
 * InvalidState, DeviceBusy (active, and the pool is being started or stopped), NoSuchStorageVol,
 * InvalidArgs for a bad name, AccessDenied. */
int storage_vol_resolve(StorageRegistry *r, const char *pool, const char *volume, bool active, uid_t owner,
                        bool readonly, char **ret_path, StorageVolFormat *ret_format, VbError *reterr);
