/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disk-only (external) snapshots: each disk the snapshot keeps gets a new qcow2 overlay over its image.
 *  - In a worker thread: the overlay is created with the rights of whoever the definition says opens it
 *    (host/user-open.h, O_CREAT|O_EXCL: the kernel decides whether that user may make that file there,
 *    and nothing existing is touched), then qemu-img writes the qcow2 header into the descriptor, naming
 *    the old image as its backing file without opening it (-u; the size read from the old image opened
 *    with its user's rights).
 *  - Stopped domain: that is all (core switches the definition's disks to the overlays).
 *  - Running domain: the overlays go to QEMU as descriptors (add-fd), are opened as new block nodes with
 *    no backing (blockdev-add), and one transaction of blockdev-snapshot puts each over its disk's image:
 *    every disk or none. On failure the nodes and descriptor sets go again and the overlays are removed.
 * QEMU never opens a path for any of it. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-paths.h"
#include "conf/snapshot-conf.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-sequence.h"
#include "drivers/storage-backend.h"
#include "host/process.h"
#include "host/user-open.h"
#include "util/log.h"
#include "util/worker.h"

#define OVERLAY_CREATE_TIMEOUT_MS (60 * 1000)

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

typedef struct Overlay {
        char *target, *path;          /* the disk, its new overlay */
        char *backing, *backing_fmt;  /* the image it goes over */
        uint32_t uid, backing_uid;    /* whose rights create the overlay, open the image */
        char *alias, *top_node, *prefix; /* running: the disk's id, its image's node, the overlay's node names */
        int fd, ro_fd;
        bool created;
        int fdset;                    /* running: QEMU's set for it, -1 before add-fd */
} Overlay;

struct QemuDiskSnapJob {
        QemuDriver *q;
        char uuid[37];
        char *name;
        bool running;
        bool remove;      /* the worker's task: remove what was created (a failed live step) */
        bool dropped;     /* the driver is closing: nobody is told */
        Overlay *v;
        size_t n;
        int r;
        VbError e;
        VbDriverOpDone done;
        void *userdata;
        struct QemuDiskSnapJob *next;
};

static void overlay_done(Overlay *o) {
        if (o->fd >= 0)
                close(o->fd);
        if (o->ro_fd >= 0)
                close(o->ro_fd);
        free(o->target);
        free(o->path);
        free(o->backing);
        free(o->backing_fmt);
        free(o->alias);
        free(o->top_node);
        free(o->prefix);
}

static void job_free(QemuDiskSnapJob *j) {
        QemuDiskSnapJob **i;

        for (i = &j->q->disk_snap_jobs; *i && *i != j; i = &(*i)->next)
                ;
        if (*i)
                *i = j->next;
        for (size_t k = 0; k < j->n; k++)
                overlay_done(&j->v[k]);
        free(j->v);
        free(j->name);
        vb_error_free(&j->e);
        free(j);
}

static void job_finish(QemuDiskSnapJob *j) {
        if (!j->dropped) {
                if (j->r < 0 && j->e.code == VB_ERROR_NONE)
                        vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Failed to take disk-only snapshot '%s': %s",
                                     j->name, strerror(-j->r));
                log_debug("Domain %s: disk-only snapshot '%s' %s.", j->uuid, j->name, j->r < 0 ? "failed" : "taken");
                j->done(j->r, j->r < 0 ? &j->e : NULL, j->userdata);
        }
        job_free(j);
}

/* In the worker ----------------------------------------------------------------------------------- */

static uint64_t be64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* What the guest sees of the image open at fd: a qcow2 header's size, or the file's or device's. */
static int image_size(int fd, const char *format, uint64_t *ret) {
        uint8_t h[32];
        struct stat st;

        if (streq(format, "qcow2")) {
                if (pread(fd, h, sizeof h, 0) != (ssize_t) sizeof h || memcmp(h, "QFI\xfb", 4) != 0)
                        return -EBADMSG;
                *ret = be64(h + 24);
                return 0;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISBLK(st.st_mode))
                return ioctl(fd, BLKGETSIZE64, ret) < 0 ? -errno : 0;
        *ret = (uint64_t) st.st_size;
        return 0;
}

static int run_qemu_img(const Overlay *o, uint64_t size, VbError *e) {
        char file[32], sz[32];
        const char *argv[] = { storage_qemu_img_path(), "create", "-q", "-u", "-f", "qcow2", "-b", o->backing, "-F",
                               o->backing_fmt, file, sz, NULL };
        int keep[] = { o->fd }, status = 0, r;
        pid_t pid;

        snprintf(file, sizeof file, "/dev/fd/%d", o->fd);
        snprintf(sz, sizeof sz, "%" PRIu64, size);
        r = host_process_spawn(argv, -1, keep, 1, &pid);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        r = host_process_wait_timeout(pid, OVERLAY_CREATE_TIMEOUT_MS, &status);
        if (r == -ETIMEDOUT)
                return vb_error_set(e, VB_ERROR_TIMEOUT, "qemu-img create of overlay '%s' took over %d s", o->path,
                                    OVERLAY_CREATE_TIMEOUT_MS / 1000);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s", strerror(-r));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "qemu-img failed to write overlay '%s' of disk '%s' "
                                    "(status %d)", o->path, o->target, status);
        return 0;
}

static int overlay_create(Overlay *o, VbError *e) {
        _cleanup_close_ int img = -EBADF;
        char self[64];
        uint64_t size = 0;
        int r;

        r = host_open_one_as(o->backing_uid, o->backing, HOST_OPEN_READ, &img);
        if (r >= 0)
                r = image_size(img, o->backing_fmt, &size);
        if (r < 0)
                return vb_error_set(e, r == -EACCES || r == -EPERM ? VB_ERROR_ACCESS_DENIED : VB_ERROR_OPERATION_FAILED,
                                    "Cannot read the size of disk '%s' ('%s', %s) for its overlay: %s", o->target,
                                    o->backing, o->backing_fmt, r == -EBADMSG ? "not a qcow2 image" : strerror(-r));
        r = host_open_one_as(o->uid, o->path, HOST_OPEN_CREATE, &o->fd);
        if (r < 0) {
                char whose[48] = "";

                if (o->uid != 0)
                        snprintf(whose, sizeof whose, " with the rights of uid %u", o->uid);
                return vb_error_set(e, r == -EEXIST ? VB_ERROR_ALREADY_EXISTS :
                                    r == -EACCES || r == -EPERM || r == -ELOOP ? VB_ERROR_ACCESS_DENIED :
                                    VB_ERROR_OPERATION_FAILED, "Cannot create the overlay '%s' of disk '%s'%s: %s",
                                    o->path, o->target, whose, r == -EEXIST ? "the file exists already" : strerror(-r));
        }
        o->created = true;
        r = run_qemu_img(o, size, e);
        if (r < 0)
                return r;
        /* The same file read-only: QEMU's block layer reopens it so once it is a backing image. */
        snprintf(self, sizeof self, "/proc/self/fd/%d", o->fd);
        o->ro_fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (o->ro_fd < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to reopen '%s' read-only: %m", o->path);
        return 0;
}

/* Removes an overlay we created: through its directory opened with its creator's rights, and only if the
 * name still is the file we made. */
static void overlay_remove(Overlay *o) {
        _cleanup_close_ int dfd = -EBADF;
        const char *base;
        int r;

        if (!o->created || o->fd < 0 || host_open_parent_as(o->uid, o->path, &dfd, &base) < 0)
                return;
        r = host_unlinkat_if_same(dfd, base, o->fd);
        if (r == -ESTALE)
                return;
        if (r < 0)
                log_warning_errno(r, "Failed to remove overlay '%s', ignoring: %m", o->path);
        o->created = false;
}

static void work(void *userdata) {
        QemuDiskSnapJob *j = userdata;
        int r = 0;

        if (j->remove) {
                for (size_t k = 0; k < j->n; k++)
                        overlay_remove(&j->v[k]);
                return;
        }
        for (size_t k = 0; k < j->n && r >= 0; k++)
                r = overlay_create(&j->v[k], &j->e);
        if (r < 0)
                for (size_t k = 0; k < j->n; k++)
                        overlay_remove(&j->v[k]);
        j->r = r;
}

/* On the event loop: the live part ------------------------------------------------------------------ */

static void live_start(QemuDiskSnapJob *j);

static void after_remove(void *userdata, bool cancelled) {
        job_finish(userdata);
}

/* A live step failed (j->r, j->e): the overlays go again, then the caller hears it. */
static void fail_and_remove(QemuDiskSnapJob *j) {
        if (j->q->snap_worker && worker_submit(j->q->snap_worker, work, after_remove, j) >= 0) {
                j->remove = true;
                return;
        }
        job_finish(j);
}

static void on_created(void *userdata, bool cancelled) {
        QemuDiskSnapJob *j = userdata;

        if (cancelled && j->r >= 0)
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Snapshot '%s' was not taken: the service is "
                                    "stopping", j->name);
        if (j->r < 0 || !j->running || j->dropped) {
                job_finish(j);
                return;
        }
        live_start(j);
}

/* Undoes what QEMU was given (best effort, nobody waits for it). */
static void live_undo(QemuDiskSnapJob *j, QemuVm *vm) {
        QemuSeq *seq;
        struct json_object *args;

        if (!vm || !vm->mon || !(seq = qemu_seq_new(vm)))
                return;
        for (size_t k = 0; k < j->n; k++) {
                for (size_t s = 0; s < 2; s++) {
                        _cleanup_free_ char *node = NULL;

                        if (asprintf(&node, "%s-%s", j->v[k].prefix, s == 0 ? "format" : "storage") < 0)
                                continue;
                        args = json_object_new_object();
                        json_object_object_add(args, "node-name", json_object_new_string(node));
                        qemu_seq_add_optional(seq, "blockdev-del", args);
                }
                if (j->v[k].fdset >= 0) {
                        args = json_object_new_object();
                        json_object_object_add(args, "fdset-id", json_object_new_int(j->v[k].fdset));
                        qemu_seq_add_optional(seq, "remove-fd", args);
                }
        }
        (void) qemu_seq_run(seq, qemu_vm_command_timeout(vm), NULL, NULL, NULL);
}

/* The overlays are the disks' images now: so in QEMU's live definition (written for a restart of ours). */
static int live_adopt(QemuDiskSnapJob *j, QemuVm *vm) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        int r;

        r = domain_def_copy(vm->live, &copy);
        if (r < 0)
                return r;
        for (size_t k = 0; k < j->n; k++)
                for (size_t i = 0; i < copy->n_devices; i++)
                        if (copy->devices[i]->kind == DEVICE_DISK &&
                            streq_ptr(device_disk_get_target(copy->devices[i]), j->v[k].target)) {
                                r = device_disk_push_overlay(copy->devices[i], j->v[k].path, "qcow2");
                                if (r < 0)
                                        return r;
                        }
        copy->serial = domain_def_new_serial();
        domain_def_free(vm->live);
        vm->live = TAKE_PTR(copy);
        r = qemu_vm_save(vm);
        if (r < 0)
                log_warning_errno(r, "Domain %s: failed to write its live definition after snapshot '%s', ignoring: %m",
                                  vm->uuid, j->name);
        return 0;
}

static void on_live_done(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuDiskSnapJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        if (r >= 0 && !vm)
                r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Domain %s stopped during snapshot '%s'", j->uuid,
                                 j->name);
        /* Once the transaction went through, QEMU writes to the overlays: nothing is undone after that. */
        if (r >= 0 && live_adopt(j, vm) < 0)
                log_warning("Domain %s: out of memory recording the overlays of snapshot '%s' in its live definition.",
                            j->uuid, j->name);
        if (r < 0) {
                if (j->e.code == VB_ERROR_NONE && e)
                        vb_error_set(&j->e, e->code, "%s", strempty(e->message));
                j->r = r;
                live_undo(j, vm);
                fail_and_remove(j);
                return;
        }
        log_info("Domain %s: disk-only snapshot '%s' taken, %zu overlay(s) active.", j->uuid, j->name, j->n);
        job_finish(j);
}

/* blockdev-add of the overlay's nodes: its file on the descriptor set, its qcow2 over that with no backing
 * (JSON null: QEMU opens no path the header names; blockdev-snapshot gives it its backing node). */
static struct json_object *node_args(const Overlay *o, bool format) {
        struct json_object *a = json_object_new_object();
        _cleanup_free_ char *name = NULL, *file = NULL;

        if (asprintf(&name, "%s-%s", o->prefix, format ? "format" : "storage") < 0 ||
            (format ? asprintf(&file, "%s-storage", o->prefix) : asprintf(&file, "/dev/fdset/%d", o->fdset)) < 0) {
                json_object_put(a);
                return NULL;
        }
        json_object_object_add(a, "driver", json_object_new_string(format ? "qcow2" : "file"));
        json_object_object_add(a, "node-name", json_object_new_string(name));
        if (format) {
                json_object_object_add(a, "file", json_object_new_string(file));
                json_object_object_add(a, "backing", NULL);
        } else {
                json_object_object_add(a, "filename", json_object_new_string(file));
                json_object_object_add(a, "auto-read-only", json_object_new_boolean(true));
        }
        return a;
}

/* The sets QEMU chose hold the read-write descriptors: the read-only twins join them, the nodes open, and
 * one transaction puts every overlay over its disk. */
static void on_fds_added(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuDiskSnapJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        struct json_object *actions, *args;
        QemuSeq *next;

        for (size_t k = 0; k < j->n; k++) {
                struct json_object *ret = qemu_seq_reply(seq, k);

                if (ret && qemu_json_get(ret, "fdset-id"))
                        j->v[k].fdset = json_object_get_int(qemu_json_get(ret, "fdset-id"));
                if (vm && vm->next_fdset > 0 && j->v[k].fdset >= 0 && (unsigned) j->v[k].fdset >= vm->next_fdset)
                        vm->next_fdset = (unsigned) j->v[k].fdset + 1;
        }
        if (r >= 0 && !vm)
                r = -ESRCH;
        if (r < 0 || !(next = qemu_seq_new(vm))) {
                j->r = r < 0 ? r : -ENOMEM;
                if (e)
                        vb_error_set(&j->e, e->code, "%s", strempty(e->message));
                live_undo(j, vm);
                fail_and_remove(j);
                return;
        }
        actions = json_object_new_array();
        for (size_t k = 0; k < j->n; k++) {
                struct json_object *data = json_object_new_object(), *action = json_object_new_object();
                _cleanup_free_ char *overlay = NULL;

                args = json_object_new_object();
                json_object_object_add(args, "fdset-id", json_object_new_int(j->v[k].fdset));
                json_object_object_add(args, "opaque", json_object_new_string(j->v[k].alias));
                qemu_seq_add_fd(next, "hand the overlay to QEMU", "add-fd", args, j->v[k].ro_fd);
                qemu_seq_add(next, "open the overlay", "blockdev-add", node_args(&j->v[k], false));
                qemu_seq_add(next, "open the overlay's qcow2", "blockdev-add", node_args(&j->v[k], true));
                if (asprintf(&overlay, "%s-format", j->v[k].prefix) < 0)
                        overlay = NULL;
                json_object_object_add(data, "node", json_object_new_string(j->v[k].top_node));
                json_object_object_add(data, "overlay", json_object_new_string(strempty(overlay)));
                json_object_object_add(action, "type", json_object_new_string("blockdev-snapshot"));
                json_object_object_add(action, "data", data);
                json_object_array_add(actions, action);
        }
        args = json_object_new_object();
        json_object_object_add(args, "actions", actions);
        qemu_seq_add(next, "put the overlays over the disks", "transaction", args);
        r = qemu_seq_run(next, qemu_vm_command_timeout(vm), on_live_done, j, &j->e);
        if (r < 0) {
                j->r = r;
                live_undo(j, vm);
                fail_and_remove(j);
        }
}

static void live_start(QemuDiskSnapJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        QemuSeq *seq;
        int r;

        if (!vm || !vm->mon || !(seq = qemu_seq_new(vm))) {
                j->r = vm ? -ENOMEM : vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Domain %s stopped during "
                                                   "snapshot '%s'", j->uuid, j->name);
                fail_and_remove(j);
                return;
        }
        /* Sets of QEMU's choosing (no number of ours to collide with hot-plug's), named after the disk. */
        for (size_t k = 0; k < j->n; k++) {
                struct json_object *args = json_object_new_object();

                json_object_object_add(args, "opaque", json_object_new_string(j->v[k].alias));
                qemu_seq_add_fd(seq, "hand the overlay to QEMU", "add-fd", args, j->v[k].fd);
        }
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_fds_added, j, &j->e);
        if (r < 0) {
                j->r = r;
                fail_and_remove(j);
        }
}

/* The op ------------------------------------------------------------------------------------------- */

static int overlay_fill(Overlay *o, const SnapshotDiskDef *k, const DeviceDef *dev, bool running,
                        const DomainAccess *access, VbError *reterr) {
        const char *format = device_disk_get_format(dev) ?: "raw";
        int depth;

        if (!device_disk_is_writable_image(dev))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s' cannot have an overlay", k->name);
        if (!streq(format, "raw") && !streq(format, "qcow2"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is '%s': overlays go over 'raw' or "
                                    "'qcow2' images", k->name, format);
        if (!(o->target = strdup(k->name)) || !(o->path = strdup(k->source_file)) ||
            !(o->backing = strdup(device_disk_get_source(dev))) || !(o->backing_fmt = strdup(format)))
                return -ENOMEM;
        o->uid = domain_access_uid_for(access, o->path);
        o->backing_uid = domain_access_uid_for(access, o->backing);
        if (!running)
                return 0;
        if (!dev->alias)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Disk '%s' has no id in QEMU", k->name);
        depth = qemu_disk_depth(dev);
        if (depth < 0 || !(o->alias = strdup(dev->alias)) || qemu_disk_top_node(dev, dev->alias, &o->top_node) < 0 ||
            qemu_disk_node_prefix(dev->alias, (size_t) depth + 1, &o->prefix) < 0)
                return -ENOMEM;
        return 0;
}

int qemu_snapshot_disk_only(QemuDriver *q, const DomainDef *def, bool running, const SnapshotDef *snap,
                            const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDiskSnapJob *j;
        char uuid[37];
        int r = 0;

        domain_def_get_uuid_string(def, uuid);
        if (running && !qemu_driver_find_vm(q, uuid, reterr))
                return -ESRCH;
        r = qemu_snap_worker_start(q);
        if (r < 0)
                return r;
        j = new0(QemuDiskSnapJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (QemuDiskSnapJob) { .q = q, .running = running, .done = done, .userdata = userdata, .e = VB_ERROR_NULL,
                                 .next = q->disk_snap_jobs };
        q->disk_snap_jobs = j;
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->name = strdup(snap->name);
        j->v = new0(Overlay, snap->n_disks + 1);
        if (!j->name || !j->v)
                r = -ENOMEM;
        for (size_t i = 0; i < snap->n_disks && r >= 0; i++) {
                const SnapshotDiskDef *k = &snap->disks[i];
                const DeviceDef *dev;

                if (k->mode != SNAPSHOT_MODE_EXTERNAL)
                        continue;
                dev = domain_def_find_disk(def, k->name);
                if (!dev || !k->source_file) {
                        r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s' of snapshot '%s' is not a disk "
                                         "of the domain, or has no overlay", k->name, snap->name);
                        break;
                }
                j->v[j->n] = (Overlay) { .fd = -1, .ro_fd = -1, .fdset = -1 };
                r = overlay_fill(&j->v[j->n++], k, dev, running, access, reterr);
        }
        if (r >= 0 && j->n == 0)
                r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Snapshot '%s' keeps no disk", snap->name);
        if (r >= 0)
                r = worker_submit(q->snap_worker, work, on_created, j);
        if (r < 0) {
                if (r == -EAGAIN)
                        r = vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many snapshot operations wait already");
                job_free(j);
                return r;
        }
        log_debug("Domain %s: disk-only snapshot '%s' of %zu disk(s) started.", j->uuid, j->name, j->n);
        return 0;
}

void qemu_snapshot_disk_close(QemuDriver *q) {
        for (QemuDiskSnapJob *j = q->disk_snap_jobs; j; j = j->next)
                j->dropped = true;
}
