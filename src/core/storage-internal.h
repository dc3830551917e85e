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

/* The volumes of p whose clone virtbusd did not live to finish go (storage-vol.c). */
void storage_pool_sweep_fills(StorageRegistry *r, StoragePool *p);
/* Tests only (VIRTBUS_TEST_STORAGE_HOLD): waits while the file it names exists. */
void storage_test_hold(void);
/* Reads the pool's sizes and volumes again: new files appear, vanished ones go. */
int storage_pool_scan(StorageRegistry *r, StoragePool *p);
int storage_pool_add(StorageRegistry *r, StoragePoolDef *def, bool persistent, StoragePool **ret);
int storage_pool_check_conflicts(StorageRegistry *r, const StoragePoolDef *def, StoragePool *self, VbError *reterr);
int storage_pool_activate(StorageRegistry *r, StoragePool *p, VbError *reterr);
