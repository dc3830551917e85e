/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/storage-conf.h"
#include "util/error.h"
#include "util/string-table.h"

/* Long work on one volume (Upload, Download, Wipe, filling a clone, Resize), in a thread of its own so that neither the event
 * loop nor the parse workers wait for it. The copy is the kernel's: splice for pipes, copy_file_range
 * for files (holes found with SEEK_DATA/SEEK_HOLE stay holes), sendfile for other descriptors; the
 * thread never reads the data itself.
 *
 * Core (storage.c) starts a job and is told on the event loop: progress (at most STORAGE_JOB_PROGRESS_HZ
 * times a second, while bytes move) and done (once, with the result; -ECANCELED when cancelled). */

typedef enum StorageJobKind {
        STORAGE_JOB_UPLOAD,   /* from the caller's descriptor into the volume */
        STORAGE_JOB_DOWNLOAD, /* from the volume into the caller's descriptor */
        STORAGE_JOB_WIPE,     /* zeroes over the volume */
        STORAGE_JOB_CLONE,    /* another volume's image into this new one (CreateVolumeFrom) */
        STORAGE_JOB_RESIZE,   /* a new capacity (qemu-img resize for an image format) */
        STORAGE_JOB_CREATE,   /* a new volume's empty image written (qemu-img create; CreateVolume) */
        _STORAGE_JOB_KIND_MAX,
        _STORAGE_JOB_KIND_INVALID = -EINVAL,
} StorageJobKind;

DECLARE_STRING_TABLE_LOOKUP(storage_job_kind, StorageJobKind);

#define STORAGE_JOB_PROGRESS_HZ 4

/* What one job moves: fd is the caller's descriptor (-1 for Wipe; the source volume's for a clone),
 * vol_fd the volume's; the job owns both. Bytes [offset, offset + length) of the volume; for an Upload
 * that may end early (until_eof), length is the most it takes. A clone copies the whole image: raw to
 * raw by the kernel (copy_file_range, holes kept), anything with qcow2 by qemu-img convert from
 * from_format to to_format (storage_image_convert).
 *
 * Work that is no copy (Resize; Wipe of an image format, made empty again by qemu-img) sets run instead:
 * run(fd, arg) in the thread, which ignores cancel (the work is bounded) and must touch nothing but fd
 * (then a copy of the pool directory's descriptor) and arg (freed by free() with the job). */
typedef struct StorageCopy {
        StorageJobKind kind;
        int fd, vol_fd;
        uint64_t offset, length;
        bool until_eof;
        StorageVolFormat from_format, to_format;
        int (*run)(int fd, void *arg, VbError *reterr);
        void *arg;
        /* Run first, on vol_fd (a new volume's image written before a clone fills it, or all that a
         * CREATE does); prepare_arg is freed with the job. */
        int (*prepare)(int vol_fd, void *arg, VbError *reterr);
        void *prepare_arg;
} StorageCopy;

/* Runs a copy to its end in the calling thread (the job thread; also used by unit tests). done is
 * updated as bytes move; cancel_fd (an eventfd, or -1) becoming readable, or *cancelled, stops it with
 * -ECANCELED. Returns bytes moved or -errno, with reterr saying what failed. */
int64_t storage_copy_run(const StorageCopy *c, uint64_t *done, int cancel_fd, VbError *reterr);

/* A job: the thread, its cancel eventfd, and the event sources that report back. */
typedef struct StorageJob StorageJob;
typedef struct sd_event sd_event;
typedef struct StorageJobCallbacks {
        void (*progress)(StorageJob *j, uint64_t done, uint64_t total, void *userdata);
        /* r: bytes moved or -errno (e set); the job is freed after this returns. */
        void (*done)(StorageJob *j, int64_t r, const VbError *e, void *userdata);
} StorageJobCallbacks;

/* Takes c's descriptors (also on failure). total is what Progress reports as the whole. */
int storage_job_start(sd_event *event, const StorageCopy *c, uint64_t total, const StorageJobCallbacks *cb,
                      void *userdata, StorageJob **ret);
/* Asks the thread to stop; done follows with -ECANCELED (or the result, if it was finishing). */
void storage_job_cancel(StorageJob *j);
/* At shutdown: cancels, waits for the thread, and frees without calling back. */
void storage_job_abandon(StorageJob *j);
StorageJobKind storage_job_kind(const StorageJob *j);
