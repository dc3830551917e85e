/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/storage-conf.h"
#include "util/error.h"

/* What a storage pool does on the host, behind one ops table per pool type (as network-backend.h is for
 * networks). Core (core/storage.c) keeps the registry and calls these; a backend never sees D-Bus.
 *
 * Every file operation of the dir backend goes through the pool directory's descriptor with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink planted in a pool never leads outside it. */

typedef struct StorageVolInfo {
        StorageVolFormat format;
        uint64_t capacity;   /* what a guest sees */
        uint64_t allocation; /* what the file takes on disk */
        uid_t owner;         /* who created it (the file's owner): 0 for root's and for files found in the pool */
} StorageVolInfo;

typedef struct StoragePoolInfo {
        uint64_t capacity, allocation, available;
} StoragePoolInfo;

typedef struct VbStorageBackendOps {
        StoragePoolType type;
        /* Build: makes the target (flags: none yet). Delete: removes it (it must be empty). */
        int (*build)(const StoragePoolDef *def, VbError *reterr);
        int (*remove)(const StoragePoolDef *def, VbError *reterr);
        /* Start: a descriptor of the pool (its directory, O_PATH), kept while the pool is active. Stop
         * (optional): undoes what Start did on the host, after core closed the descriptor. */
        int (*start)(const StoragePoolDef *def, int *ret_fd, VbError *reterr);
        int (*stop)(const StoragePoolDef *def, VbError *reterr);
        int (*pool_info)(int pool_fd, StoragePoolInfo *ret);
        /* The names of the volumes (regular files, no symlinks, no hidden names), sorted; to free. */
        int (*list_volumes)(int pool_fd, char ***ret_names, size_t *ret_n);
        int (*vol_info)(int pool_fd, const char *name, StorageVolInfo *ret, VbError *reterr);
        /* Creates the volume def->name (a checked plain name), the file owned by owner: a raw volume
         * whole (sparse; returns 0); an image format (qcow2, or a qcow2 overlay when def has a backing
         * store) as an empty file that vol_format makes the image later, off the event loop (returns 1).
         * Nothing stays behind on failure. */
        int (*vol_create)(int pool_fd, const StorageVolDef *def, uid_t owner, VbError *reterr);
        /* Writes the empty image of format into the file behind fd (qemu-img create on /dev/fd/N):
         * capacity bytes, over backing (a file of backing_format, checked by core; qemu-img never opens
         * it) when not NULL. Slow (a child process): run in a job's thread. */
        int (*vol_format)(int fd, const char *name, StorageVolFormat format, uint64_t capacity, const char *backing,
                          StorageVolFormat backing_format, VbError *reterr);
        /* The image's own backing file as its header names it (qcow2), or NULL; ret_format NONE when the
         * image does not say. */
        int (*vol_backing)(int pool_fd, const char *name, char **ret_path, StorageVolFormat *ret_format);
        int (*vol_delete)(int pool_fd, const char *name, VbError *reterr);
        /* The volume's file opened with flags (O_RDONLY or O_RDWR), confined to the pool: a descriptor or
         * -errno. */
        int (*vol_open)(int pool_fd, const char *name, int flags, VbError *reterr);
        /* Capacity to what a guest sees: raw by ftruncate, qcow2 by qemu-img resize (shrink: allowed to
         * get smaller). */
        int (*vol_resize)(int pool_fd, const char *name, uint64_t capacity, bool shrink, VbError *reterr);
        /* An empty image of the same format and capacity in place of the volume's (Wipe of a qcow2). */
        int (*vol_reformat)(int pool_fd, const char *name, VbError *reterr);
} VbStorageBackendOps;

/* The backend of a pool type, or NULL: then storage_backend_missing() says what virtbus lacks for it
 * (NotSupported at Start). */
const VbStorageBackendOps *storage_backend_find(StoragePoolType type);
const char *storage_backend_missing(StoragePoolType type);

/* A whole image copied into another of the same capacity by qemu-img convert (qcow2 on either side), in
 * the calling thread (a job's): in_fd and out_fd are passed as /dev/fd/N, the target was created empty
 * (it is not created again). *done follows qemu-img's progress as a share of total; cancel_fd (an
 * eventfd) readable ends qemu-img with -ECANCELED. */
int storage_image_convert(int in_fd, StorageVolFormat in_format, int out_fd, StorageVolFormat out_format,
                          uint64_t total, uint64_t *done, int cancel_fd, VbError *reterr);
/* The backing file a qcow2 header names (or NULL) and the format its extension gives (NONE if none). */
int storage_image_read_backing(int fd, char **ret_path, StorageVolFormat *ret_format);

/* openat2(dir_fd, name, flags, mode) confined to dir_fd: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS. Returns the descriptor or -errno (ELOOP for a symlink, EXDEV for a way out). */
int storage_open_beneath(int dir_fd, const char *name, int flags, mode_t mode);

/* Internal to the backends: the 'dir' table, and the 'fs' one built over it. */
extern const VbStorageBackendOps storage_backend_dir;
const VbStorageBackendOps *storage_backend_fs_ops(void);

/* Where qemu-img is (VIRTBUS_QEMU_IMG overrides /usr/bin/qemu-img, for tests). */
const char *storage_qemu_img_path(void);
