/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between the storage files of src/core: storage.c (registry, pools), storage-vol.c (volumes),
 * storage-load.c (scans and start-up). */
#include <unistd.h>

#include "core/storage.h"
#include "drivers/storage-backend.h"

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

StorageVol *storage_vol_free(StorageVol *v);
/* A volume found or made in p (vol_added follows); vol_remove: vol_removed, then freed. */
int storage_vol_add(StorageRegistry *r, StoragePool *p, const char *name, const StorageVolInfo *info, StorageVol **ret);
void storage_vol_remove(StorageRegistry *r, StorageVol *v);
/* DeviceBusy while a job runs on v or a clone is made from it. */
int storage_vol_check_idle(const StorageVol *v, VbError *reterr);

/* Where the records of p's clones being filled are (storage-vol.c), and, in any thread, the volumes whose
 * clone virtbusd did not live to finish removed from the pool (their names added to *swept). */
int storage_fill_dir(StorageRegistry *r, StoragePool *p, char **ret);
void storage_fill_sweep(const VbStorageBackendOps *ops, int pool_fd, const char *dir, const char * const *skip,
                        size_t n_skip, char ***swept, size_t *n_swept);
/* Tests only (VIRTBUS_TEST_STORAGE_HOLD): waits while the file it names exists. */
void storage_test_hold(void);

/* A pool's scan (storage-load.c): new, read from the host in any thread (returns its result), then
 * applied on the loop in steps (new files appear, vanished ones go; stale: volumes were added or removed
 * since it began, it is better read again). storage_pool_scan does all three at once (start-up). */
typedef struct PoolScan PoolScan;
int storage_pool_scan_new(StorageRegistry *r, StoragePool *p, PoolScan **ret);
void storage_pool_scan_set_fd(PoolScan *s, int pool_fd);
int storage_pool_scan_read(PoolScan *s);
bool storage_pool_scan_stale(const StoragePool *p, const PoolScan *s);
/* Applying a scan (and dropping a stopped pool's volumes) goes in steps, so that thousands of volumes and
 * their signals do not hold the loop: a step announces or removes at most STORAGE_STEP_VOLS volumes and
 * lasts at most about STORAGE_STEP_USEC; then the loop serves others before the next step. */
#define STORAGE_STEP_VOLS 256
#define STORAGE_STEP_USEC (5ULL * 1000ULL)
typedef struct StorageStep {
        size_t left;    /* volumes this step may still announce or remove */
        uint64_t until; /* CLOCK_MONOTONIC µs when it ends (UINT64_MAX: never, at start-up) */
        unsigned n;     /* volumes looked at, the clock read every 16th */
} StorageStep;
void storage_step_init(StorageStep *st);
/* After one volume (announced: added or removed, with its signal): whether the step goes on. */
bool storage_step_more(StorageStep *st, bool announced);
/* One step: 1 when more is left for the next, 0 when the registry follows the scan, < 0 on failure. */
int storage_pool_scan_apply_step(StorageRegistry *r, StoragePool *p, PoolScan *s, StorageStep *st);
PoolScan *storage_pool_scan_free(PoolScan *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PoolScan *, storage_pool_scan_free);
int storage_pool_scan(StorageRegistry *r, StoragePool *p);
/* DeviceBusy while the pool's Start or Stop runs, or its Refresh when changes (a volume made or deleted
 * would make its scan wrong); InvalidState when it is not active. */
int storage_pool_check_ready(const StoragePool *p, bool changes, VbError *reterr);
int storage_pool_add(StorageRegistry *r, StoragePoolDef *def, bool persistent, StoragePool **ret);
int storage_pool_check_conflicts(StorageRegistry *r, const StoragePoolDef *def, StoragePool *self, VbError *reterr);
int storage_pool_activate(StorageRegistry *r, StoragePool *p, VbError *reterr);
