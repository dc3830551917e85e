/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage volumes: owners, create, delete, their jobs (Upload, Download, Wipe, clones; storage-job.c),
 * resize, and the one way a domain's disk reaches a volume (storage_vol_resolve). */
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/storage-internal.h"
#include "util/fileio.h"
#include "util/log.h"

/* Volumes --------------------------------------------------------------------------------------- */

/* DeviceBusy while a job runs on v or a clone is made from it. */
int storage_vol_check_idle(const StorageVol *v, VbError *reterr) {
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

int storage_vol_add(StorageRegistry *r, StoragePool *p, const char *name, const StorageVolInfo *info, StorageVol **ret) {
        StorageVol *v = new0(StorageVol, 1);
        int k;

        if (!v || !(v->name = strdup(name)) || asprintf(&v->path, "%s/%s", p->def->target_path, name) < 0 ||
            !GREEDY_REALLOC(p->vols, p->n_vols_allocated, p->n_vols + 1)) {
                storage_vol_free(v);
                return -ENOMEM;
        }
        if (!p->vols_by_name && !(p->vols_by_name = hashmap_new())) {
                storage_vol_free(v);
                return -ENOMEM;
        }
        k = hashmap_put(p->vols_by_name, v->name, v);
        if (k < 0) {
                storage_vol_free(v);
                return k;
        }
        v->pool = p;
        v->info = *info;
        p->vols[p->n_vols++] = v;
        p->vol_changes++;
        if (r->events.vol_added)
                r->events.vol_added(r->events.userdata, v);
        if (ret)
                *ret = v;
        return 0;
}

void storage_vol_remove(StorageRegistry *r, StorageVol *v) {
        StoragePool *p = v->pool;

        hashmap_remove(p->vols_by_name, v->name);
        for (size_t i = p->n_vols; i-- > 0;) /* from the end: where a scan's removals are */
                if (p->vols[i] == v) {
                        memmove(p->vols + i, p->vols + i + 1, (p->n_vols - i - 1) * sizeof(StorageVol *));
                        p->n_vols--;
                        break;
                }
        p->vol_changes++;
        if (r->events.vol_removed)
                r->events.vol_removed(r->events.userdata, v);
        storage_vol_free(v);
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

        k = storage_pool_check_ready(p, true, reterr);
        if (k < 0)
                return k;
        k = storage_vol_name_check(d->name, reterr);
        if (k < 0)
                return k;
        if (storage_vol_by_name(p, d->name))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Volume '%s' already exists in pool '%s'.", d->name,
                                    p->name);
        return 0;
}

/* Clones cut short ------------------------------------------------------------------------------- */

/* A clone's volume is on the bus while it fills. So that a virtbusd killed meanwhile does not leave it
 * half-copied, to be found again at start-up as a volume like any other, the clone is recorded in
 * <config>/storage/filling/<pool UUID>/<name> from before its file is made until its copy ends; the record
 * names the file (device and inode) once it exists. A pool's scan (start-up, Start, Refresh) removes the
 * volume of every record that no job is working on, if the file is still the one recorded (or none was
 * recorded yet: the name was free when the record was made). Written without fsync, as the runtime state
 * is: it is a crash of virtbusd that this survives. */
static int fill_record_path(StorageRegistry *r, StoragePool *p, const char *name, char **ret) {
        return asprintf(ret, "%s/filling/%s%s%s", r->dir, p->uuid, name ? "/" : "", strempty(name)) < 0 ? -ENOMEM : 0;
}

static int fill_record(StorageRegistry *r, StoragePool *p, const char *name, int vol_fd) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        char id[64] = "";
        struct stat st;
        int k;

        k = fill_record_path(r, p, NULL, &dir);
        if (k >= 0)
                k = mkdir_p(dir, 0700);
        if (k >= 0)
                k = fill_record_path(r, p, name, &path);
        if (k < 0)
                return k;
        if (vol_fd >= 0) {
                if (fstat(vol_fd, &st) < 0)
                        return -errno;
                (void) snprintf(id, sizeof id, "%llu %llu\n", (unsigned long long) st.st_dev,
                                (unsigned long long) st.st_ino);
        }
        return write_file_replace(path, id, strlen(id), 0600);
}

/* The directories of the records go when they are empty. */
static void fill_records_tidy(StorageRegistry *r, StoragePool *p) {
        _cleanup_free_ char *dir = NULL;

        if (fill_record_path(r, p, NULL, &dir) >= 0 && rmdir(dir) >= 0)
                (void) rmdir(dirname(dir));
}

static void fill_unrecord(StorageRegistry *r, StoragePool *p, const char *name) {
        _cleanup_free_ char *path = NULL;

        if (fill_record_path(r, p, name, &path) >= 0 && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Failed to remove '%s', ignoring: %m", path);
        fill_records_tidy(r, p);
}

int storage_fill_dir(StorageRegistry *r, StoragePool *p, char **ret) {
        return fill_record_path(r, p, NULL, ret);
}

/* Any thread (a scan's): the files of the records in dir whose clone no job works on (none of skip) go, if
 * the file is still the one recorded; their names are added to *swept. */
void storage_fill_sweep(const VbStorageBackendOps *ops, int pool_fd, const char *dir, const char * const *skip,
                        size_t n_skip, char ***swept, size_t *n_swept) {
        _cleanup_(closedirp) DIR *d = NULL;
        size_t allocated = *n_swept;
        struct dirent *de;

        if (!ops || pool_fd < 0 || !(d = opendir(dir)))
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *id = NULL;
                _cleanup_close_ int fd = -EBADF;
                unsigned long long dev, ino;
                bool same, busy = false;
                struct stat st;

                for (size_t i = 0; i < n_skip && !busy; i++)
                        busy = streq(skip[i], de->d_name);
                if (de->d_name[0] == '.' || busy)
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0 || read_full_file(path, 256, &id, NULL) < 0)
                        continue;
                fd = ops->vol_open(pool_fd, de->d_name, O_RDONLY, NULL);
                same = fd >= 0 && (isempty(id) || (sscanf(id, "%llu %llu", &dev, &ino) == 2 && fstat(fd, &st) >= 0 &&
                                                   st.st_dev == dev && st.st_ino == ino));
                if (same) {
                        log_notice("Removing volume '%s': the clone filling it was cut short.", de->d_name);
                        (void) ops->vol_delete(pool_fd, de->d_name, NULL);
                        if (GREEDY_REALLOC(*swept, allocated, *n_swept + 1) && ((*swept)[*n_swept] = strdup(de->d_name)))
                                (*n_swept)++;
                }
                (void) unlink(path);
        }
        /* The directories of the records go when they are empty. */
        if (rmdir(dir) >= 0) {
                _cleanup_free_ char *copy = strdup(dir);

                if (copy)
                        (void) rmdir(dirname(copy));
        }
}

/* The backend makes the file, and the registry gets the volume: 0, or 1 when its image is still to be written
 * (the backend's vol_format, off the event loop). */
static int vol_make(StorageRegistry *r, StoragePool *p, const StorageVolDef *d, uid_t owner, StorageVol **ret,
                    VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        StorageVolInfo info;
        int k, image;

        image = k = ops->vol_create(p->fd, d, owner, reterr);
        if (k < 0)
                return k;
        log_notice("Created volume '%s' (%s, %" PRIu64 " bytes%s%s) in storage pool '%s' for uid %u.", d->name,
                   storage_vol_format_to_string(d->format_given ? d->format : STORAGE_VOL_FORMAT_RAW), d->capacity.bytes,
                   d->backing_path ? ", over " : "", strempty(d->backing_path), p->name, (unsigned) owner);
        k = ops->vol_info(p->fd, d->name, &info, reterr);
        if (k >= 0)
                k = storage_vol_add(r, p, d->name, &info, ret);
        if (k < 0) {
                (void) ops->vol_delete(p->fd, d->name, NULL);
                return k;
        }
        (void) ops->pool_info(p->fd, &p->info);
        CHANGED(r, p, "Allocation", "Available");
        return image;
}

static int vol_launch_job(StorageRegistry *r, StorageVol *v, const StorageCopy *c, const char *caller,
                          const StorageVolJobCallbacks *cb, void *userdata, VbError *reterr);

/* What the backend's vol_format needs in a job's thread, copied out of the definition (one allocation:
 * the job frees it). */
typedef struct VolImageWork {
        const VbStorageBackendOps *ops;
        StorageVolFormat format, backing_format;
        uint64_t capacity;
        const char *backing; /* in text[], or NULL */
        char text[];         /* the name, then the backing path */
} VolImageWork;

static int vol_work_image(int vol_fd, void *arg, VbError *reterr) {
        VolImageWork *w = arg;

        return w->ops->vol_format(vol_fd, w->text, w->format, w->capacity, w->backing, w->backing_format, reterr);
}

static VolImageWork *vol_image_work(const VbStorageBackendOps *ops, const StorageVolDef *d) {
        size_t n = strlen(d->name) + 1, b = d->backing_path ? strlen(d->backing_path) + 1 : 0;
        VolImageWork *w = malloc(offsetof(VolImageWork, text) + n + b);

        if (!w)
                return NULL;
        *w = (VolImageWork) { .ops = ops, .format = d->format, .backing_format = d->backing_format,
                              .capacity = d->capacity.bytes };
        memcpy(w->text, d->name, n);
        if (b) {
                memcpy(w->text + n, d->backing_path, b);
                w->backing = w->text + n;
        }
        return w;
}

/* The new volume d for a job to fill (a clone) or to make its image (a qcow2): recorded (see "Clones cut
 * short") until the job ends, made, and opened for writing into c->vol_fd; c->prepare writes the image
 * first when the format needs one. On failure nothing is left. */
static int vol_begin_fill(StorageRegistry *r, StoragePool *p, const StorageVolDef *d, uid_t owner, StorageCopy *c,
                          StorageVol **ret, VbError *reterr) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        StorageVol *v = NULL;
        int k, image;

        k = fill_record(r, p, d->name, -EBADF);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Cannot record the new volume '%s' of pool '%s': %s",
                                    d->name, p->name, strerror(-k));
        image = vol_make(r, p, d, owner, &v, reterr);
        if (image < 0) {
                fill_unrecord(r, p, d->name);
                return image;
        }
        c->vol_fd = ops->vol_open(p->fd, v->name, O_RDWR, reterr);
        k = c->vol_fd;
        if (k >= 0)
                (void) fill_record(r, p, v->name, c->vol_fd); /* the name alone is recorded already */
        if (k >= 0 && image > 0) {
                c->prepare = vol_work_image;
                c->prepare_arg = vol_image_work(ops, d);
                if (!c->prepare_arg)
                        k = -ENOMEM;
        }
        if (k < 0) {
                (void) ops->vol_delete(p->fd, v->name, NULL);
                fill_unrecord(r, p, v->name);
                storage_vol_remove(r, v);
                return k;
        }
        *ret = v;
        return 0;
}

/* The volume made by vol_begin_fill goes again (its job could not start). */
static void vol_abort_fill(StorageRegistry *r, StorageVol *v) {
        StoragePool *p = v->pool;

        (void) storage_backend_find(p->def->type)->vol_delete(p->fd, v->name, NULL);
        fill_unrecord(r, p, v->name);
        storage_vol_remove(r, v);
}

int storage_vol_create(StorageRegistry *r, StoragePool *p, StorageVolDef *def, uid_t owner, const char *caller,
                       const StorageVolJobCallbacks *cb, void *userdata, StorageVol **ret, VbError *reterr) {
        _cleanup_(storage_vol_def_freep) StorageVolDef *d = def;
        StorageCopy c = { .kind = STORAGE_JOB_CREATE, .fd = -EBADF, .vol_fd = -EBADF };
        StorageVol *v;
        int k;

        k = vol_check_new(p, d, reterr);
        if (k < 0)
                return k;
        if (d->backing_path && (k = vol_check_backing(r, d, owner, reterr)) < 0)
                return k;
        if (!d->capacity.given)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Volume '%s' needs a <capacity>.", d->name);
        if (!d->format_given || d->format == STORAGE_VOL_FORMAT_RAW)
                return vol_make(r, p, d, owner, ret, reterr); /* whole at once: 0 */
        /* An image: qemu-img writes it in the job's thread, the caller answered when it is done. */
        k = vol_begin_fill(r, p, d, owner, &c, &v, reterr);
        if (k < 0)
                return k;
        k = vol_launch_job(r, v, &c, caller, cb, userdata, reterr);
        if (k < 0) {
                vol_abort_fill(r, v);
                return k;
        }
        *ret = v;
        return 1;
}

int storage_vol_delete(StorageRegistry *r, StorageVol *v, VbError *reterr) {
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        k = storage_pool_check_ready(p, true, reterr);
        if (k < 0)
                return k;
        k = storage_vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        k = ops->vol_delete(p->fd, v->name, reterr);
        if (k < 0 && k != -ENOENT)
                return k;
        log_notice("Deleted volume '%s' of storage pool '%s'.", v->name, p->name);
        storage_vol_remove(r, v);
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
        if (ops && ops->vol_backing && v->pool->fd >= 0 &&
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
        bool made = vj->kind == STORAGE_JOB_CLONE || vj->kind == STORAGE_JOB_CREATE,
             fresh = made || (v->creator && streq_ptr(v->creator, v->job_caller));

        v->job = NULL;
        if (v->source) {
                v->source->n_readers--;
                v->source = NULL;
        }
        log_notice("%s of volume '%s' in pool '%s' for %s: %s.", storage_job_kind_to_string(vj->kind), v->name, p->name,
                   strna(v->job_caller), result >= 0 ? "done" : e->message);
        v->job_caller = mfree(v->job_caller);
        if (result < 0 && (vj->kind == STORAGE_JOB_UPLOAD || made) && fresh) {
                /* A volume made for this upload, clone or image that never got its data goes again. */
                log_notice("Removing volume '%s' of pool '%s': its %s did not complete.", v->name, p->name,
                           vj->kind == STORAGE_JOB_UPLOAD ? "first upload" : storage_job_kind_to_string(vj->kind));
                (void) ops->vol_delete(p->fd, v->name, NULL);
                if (made)
                        fill_unrecord(vj->registry, p, v->name);
                storage_vol_remove(vj->registry, v);
                v = NULL;
        } else {
                if (made)
                        fill_unrecord(vj->registry, p, v->name); /* whole now */
                /* A new volume stays its creator's until written into (see Upload). */
                if (result >= 0 && vj->kind != STORAGE_JOB_DOWNLOAD && vj->kind != STORAGE_JOB_CREATE)
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
                if (c->vol_fd >= 0)
                        close(c->vol_fd);
                free(c->arg);
                free(c->prepare_arg);
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
        if (c->run || c->kind == STORAGE_JOB_CREATE)
                log_notice("%s of volume '%s' in pool '%s' for %s.", storage_job_kind_to_string(c->kind), v->name,
                           v->pool->name, strna(caller));
        else
                log_notice("%s of volume '%s' in pool '%s' for %s: %" PRIu64 " bytes from offset %" PRIu64 ".",
                           storage_job_kind_to_string(c->kind), v->name, v->pool->name, strna(caller), c->length,
                           c->offset);
        return 1;
}

/* Work of the backend that runs qemu-img (bounded, but up to QEMU_IMG_TIMEOUT_MS): in the job's thread, on
 * a copy of the pool directory's descriptor, so that the pool may stop meanwhile without the thread
 * seeing another directory. */
typedef struct VolBackendWork {
        const VbStorageBackendOps *ops;
        uint64_t capacity;
        bool shrink;
        char name[];
} VolBackendWork;

static int vol_work_reformat(int pool_fd, void *arg, VbError *reterr) {
        VolBackendWork *w = arg;

        return w->ops->vol_reformat(pool_fd, w->name, reterr);
}

static int vol_work_resize(int pool_fd, void *arg, VbError *reterr) {
        VolBackendWork *w = arg;

        return w->ops->vol_resize(pool_fd, w->name, w->capacity, w->shrink, reterr);
}

static int vol_launch_backend_work(StorageRegistry *r, StorageVol *v, StorageJobKind kind,
                                   int (*run)(int fd, void *arg, VbError *reterr), uint64_t capacity, bool shrink,
                                   const char *caller, const StorageVolJobCallbacks *cb, void *userdata,
                                   VbError *reterr) {
        size_t len = strlen(v->name) + 1;
        VolBackendWork *w = malloc(offsetof(VolBackendWork, name) + len);
        StorageCopy c = { .kind = kind, .vol_fd = -EBADF, .run = run, .arg = w };

        if (!w)
                return -ENOMEM;
        *w = (VolBackendWork) { .ops = storage_backend_find(v->pool->def->type), .capacity = capacity, .shrink = shrink };
        memcpy(w->name, v->name, len);
        c.fd = fcntl(v->pool->fd, F_DUPFD_CLOEXEC, 3);
        if (c.fd < 0) {
                int err = errno;

                free(w);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Cannot open pool '%s': %s", v->pool->name,
                                    strerror(err));
        }
        return vol_launch_job(r, v, &c, caller, cb, userdata, reterr);
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

        k = storage_pool_check_ready(p, false, reterr);
        if (k < 0)
                return k;
        k = kind == STORAGE_JOB_DOWNLOAD && !v->job ? 0 : storage_vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        if (kind == STORAGE_JOB_CLONE)
                return -EINVAL; /* storage_vol_clone */
        if (kind == STORAGE_JOB_WIPE && v->info.format != STORAGE_VOL_FORMAT_RAW) {
                /* An image format is wiped by making it empty again (qemu-img, bounded, in the job's thread). */
                return vol_launch_backend_work(r, v, kind, vol_work_reformat, 0, false, caller, cb, userdata, reterr);
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

/* v and every image below it (its backing chain, as the headers name them) must be a volume uid may read:
 * its own or root's (storage_vol_check_read: what Download and a read-only disk allow; polkit said yes to
 * the source before). qemu-img convert opens them by name, as root; the copy belongs to uid. */
static int vol_check_chain(StorageRegistry *r, StorageVol *v, uid_t uid, VbError *reterr) {
        for (unsigned depth = 0; v; depth++) {
                const VbStorageBackendOps *ops = storage_backend_find(v->pool->def->type);
                _cleanup_free_ char *backing = NULL;
                StorageVolFormat fmt;
                StorageVol *b;
                int k;

                k = storage_vol_check_read(v, uid, reterr);
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
        const VbStorageBackendOps *sops;
        _cleanup_close_ int src_fd = -EBADF;
        StorageCopy c = { .kind = STORAGE_JOB_CLONE, .fd = -EBADF, .vol_fd = -EBADF };
        StorageVol *v = NULL;
        int k;

        k = vol_check_new(p, d, reterr);
        if (k < 0)
                return k;
        k = storage_pool_check_ready(source->pool, false, reterr);
        if (k < 0)
                return k;
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
        /* The empty volume (its image written first when it has a format), then its filling in a thread; it
         * goes again if that fails or is cancelled, or at the next scan if virtbusd ends meanwhile. */
        k = vol_begin_fill(r, p, d, owner, &c, &v, reterr);
        if (k < 0)
                return k;
        c.fd = TAKE_FD(src_fd);
        k = vol_launch_job(r, v, &c, caller, cb, userdata, reterr);
        if (k < 0) {
                vol_abort_fill(r, v);
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

int storage_vol_resize(StorageRegistry *r, StorageVol *v, uint64_t capacity, bool shrink, const char *caller,
                       const StorageVolJobCallbacks *cb, void *userdata, VbError *reterr) {
        StoragePool *p = v->pool;
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        int k;

        k = storage_pool_check_ready(p, false, reterr);
        if (k < 0)
                return k;
        k = storage_vol_check_idle(v, reterr);
        if (k < 0)
                return k;
        if (v->info.format != STORAGE_VOL_FORMAT_RAW)
                /* qemu-img resize: in the job's thread, the volume busy meanwhile. */
                return vol_launch_backend_work(r, v, STORAGE_JOB_RESIZE, vol_work_resize, capacity, shrink, caller, cb,
                                               userdata, reterr);
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
        /* Not while it is started or stopped (DeviceBusy): its volumes are still being read, or are about
         * to go with it (a file system pool unmounted). */
        k = storage_pool_check_ready(p, false, reterr);
        if (k < 0)
                return k;
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
