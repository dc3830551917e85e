/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal snapshots of a domain's qcow2 disks.
 *  - Stopped: qemu-img snapshot -c/-a/-d on each disk, opened with the rights of whoever the definition
 *    says opens it (host/user-open.h) and given to qemu-img as /dev/fd/N, so that the service never acts on
 *    a user's path with its own rights. Images with a backing file or an external data file are refused
 *    (qemu-img would open those paths itself). qemu-img runs in a worker thread (util/worker.h); the answer
 *    comes on the event loop.
 *  - Running: QMP's snapshot-save / snapshot-load / snapshot-delete jobs on the disks' format nodes (the
 *    guest's memory and device state go into the first disk), followed by their JOB_STATUS_CHANGE events;
 *    when one concludes, query-jobs tells how it ended and job-dismiss clears it. QEMU stops the guest for
 *    the time of the job and lets it go on afterwards. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/domain-paths.h"
#include "conf/snapshot-conf.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/storage-backend.h"
#include "host/process.h"
#include "host/user-open.h"
#include "util/log.h"
#include "util/worker.h"

#define QEMU_IMG_SNAPSHOT_TIMEOUT_MS (60 * 1000)
/* How often a running snapshot job's progress is asked for (one query in flight at a time). */
#define SNAPSHOT_POLL_USEC (250U * 1000U)

typedef struct SnapDisk {
        char *target, *path;
        int fd;
} SnapDisk;

static int run_qemu_img(const char *op, const char *name, const SnapDisk *disk, VbError *reterr) {
        char file[160];
        const char *argv[] = { storage_qemu_img_path(), "snapshot", "-q", op, name, file, NULL };
        int keep[] = { disk->fd }, status = 0, pidfd, r;
        pid_t pid;

        /* The image alone, by its descriptor: an internal snapshot lives in it, and a backing file its header
         * names is not opened (it would be a path opened with the service's rights). */
        snprintf(file, sizeof file, "json:{\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
                 "\"filename\": \"/dev/fd/%d\"}, \"backing\": null}", disk->fd);
        r = host_process_spawn(argv, -1, keep, 1, &pid);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        pidfd = host_process_open_fd(pid);
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                r = poll(&p, 1, QEMU_IMG_SNAPSHOT_TIMEOUT_MS);
                if (r == 0) {
                        (void) host_process_terminate(pid, pidfd, 1000000);
                        close(pidfd);
                        return vb_error_set(reterr, VB_ERROR_TIMEOUT, "qemu-img snapshot %s on disk '%s' took over %d s",
                                            op, disk->target, QEMU_IMG_SNAPSHOT_TIMEOUT_MS / 1000);
                }
                close(pidfd);
        }
        if (waitpid(pid, &status, 0) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "qemu-img snapshot %s '%s' failed on disk '%s' ('%s', status %d)", op, name,
                                    disk->target, disk->path, status);
        return 0;
}

static uint64_t be64_at(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* A qcow2 image without an external data file: qemu-img then opens nothing but the descriptor (the data
 * file would be a path it opened itself, with the service's rights; a backing file it is told not to open). */
static int check_image(const SnapDisk *disk, VbError *reterr) {
        uint8_t h[80] = {};
        ssize_t n = pread(disk->fd, h, sizeof h, 0);
        uint32_t version = (uint32_t) h[4] << 24 | (uint32_t) h[5] << 16 | (uint32_t) h[6] << 8 | h[7];

        if (n < 72 || memcmp(h, "QFI\xfb", 4) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Disk '%s' ('%s') is not a qcow2 image",
                                    disk->target, disk->path);
        /* Incompatible feature bit 2: the data lives in an external file. */
        if (version >= 3 && (n < 80 || (be64_at(h + 72) & UINT64_C(4))))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' ('%s') keeps its data in an external "
                                    "file: not supported", disk->target, disk->path);
        return 0;
}

static void disks_close(SnapDisk *disks, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (disks[i].fd >= 0)
                        close(disks[i].fd);
                free(disks[i].target);
                free(disks[i].path);
        }
}

/* The disks the snapshot covers, opened read-write as their owner and checked. */
static int disks_open(const DomainDef *def, const SnapshotDef *snap, const DomainAccess *owner, SnapDisk **ret,
                      size_t *ret_n, VbError *reterr) {
        DeviceDef *const *devs;
        size_t n_devs = domain_def_get_devices(def, &devs), n = 0;
        _cleanup_free_ SnapDisk *disks = new0(SnapDisk, n_devs + 1);
        int r = 0;

        if (!disks)
                return -ENOMEM;
        for (size_t i = 0; i < n_devs && r >= 0; i++) {
                const char *target = device_disk_get_target(devs[i]), *path = device_disk_get_source(devs[i]);
                const char *format = device_disk_get_format(devs[i]);
                HostOpenRequest req = { .path = path, .mode = HOST_OPEN_READ_WRITE, .fd = -1 };

                if (devs[i]->kind != DEVICE_DISK || !path || !target ||
                    snapshot_def_disk_mode(snap, target, SNAPSHOT_MODE_INTERNAL) == SNAPSHOT_MODE_NO)
                        continue;
                if (!streq_ptr(format, "qcow2")) {
                        r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is '%s': internal snapshots need qcow2 "
                                         "(or <disk name='%s' snapshot='no'/> in the snapshot)", target,
                                         format ?: "raw", target);
                        break;
                }
                r = host_open_as(domain_access_uid_for(owner, path), &req, 1);
                if (r >= 0 && req.error < 0)
                        r = req.error;
                if (r < 0) {
                        r = vb_error_set(reterr, VB_ERROR_ACCESS_DENIED, "Cannot open disk '%s' ('%s') for its "
                                         "snapshot: %s", target, path, strerror(-r));
                        break;
                }
                disks[n++] = (SnapDisk) { .target = strdup(target), .path = strdup(path), .fd = req.fd };
                if (!disks[n - 1].target || !disks[n - 1].path)
                        r = -ENOMEM;
                else
                        r = check_image(&disks[n - 1], reterr);
        }
        if (r < 0) {
                disks_close(disks, n);
                return r;
        }
        *ret = TAKE_PTR(disks);
        *ret_n = n;
        return 0;
}

/* One snapshot operation in flight: qemu-img in a worker thread, or a QMP job. */
struct QemuSnapJob {
        QemuDriver *q;
        char uuid[37];
        char job_id[48];
        const char *what;  /* "take", "revert to", "delete" */
        const char *op;    /* qemu-img: -c, -a, -d */
        char *name;
        SnapDisk *disks;   /* qemu-img */
        size_t n_disks;
        bool paused_by_job; /* QMP: QEMU stops the running guest for the job (its STOP is no pause) */
        sd_event_source *poll;   /* QMP: the next query-jobs for its progress */
        uint64_t poll_id;        /* the query in flight (0: none), cancelled if the job ends first */
        uint64_t last_done, last_total; /* the progress told last */
        bool dropped;      /* the driver is closing: nobody is told */
        int r;
        VbError e;
        VbDriverOpDone done;
        void *userdata;
        struct QemuSnapJob *next;
};

static QemuSnapJob *job_new(QemuDriver *q, const char *uuid, const char *what, const char *name,
                            VbDriverOpDone done, void *userdata) {
        QemuSnapJob *j = new0(QemuSnapJob, 1);

        if (!j)
                return NULL;
        *j = (QemuSnapJob) { .q = q, .what = what, .done = done, .userdata = userdata, .e = VB_ERROR_NULL };
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->name = strdup(name);
        if (!j->name) {
                free(j);
                return NULL;
        }
        j->next = q->snap_jobs;
        q->snap_jobs = j;
        return j;
}

static void poll_stop(QemuSnapJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        j->poll = sd_event_source_disable_unref(j->poll);
        if (j->poll_id && vm && vm->mon)
                qemu_monitor_cancel(vm->mon, j->poll_id);
        j->poll_id = 0;
}

static void job_free(QemuSnapJob *j) {
        QemuSnapJob **i;

        poll_stop(j);

        for (i = &j->q->snap_jobs; *i && *i != j; i = &(*i)->next)
                ;
        if (*i)
                *i = j->next;
        disks_close(j->disks, j->n_disks);
        free(j->disks);
        free(j->name);
        vb_error_free(&j->e);
        free(j);
}

/* Tells the caller (unless dropped) and ends the job. */
static void job_finish(QemuSnapJob *j) {
        if (!j->dropped) {
                if (j->r < 0 && j->e.code == VB_ERROR_NONE)
                        vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Failed to %s snapshot '%s': %s", j->what,
                                     j->name, strerror(-j->r));
                j->done(j->r, j->r < 0 ? &j->e : NULL, j->userdata);
        }
        job_free(j);
}

/* Stopped domains: qemu-img in a worker thread ------------------------------------------------- */

static void img_work(void *userdata) {
        QemuSnapJob *j = userdata;
        int r = 0;

        for (size_t i = 0; i < j->n_disks && r >= 0; i++) {
                r = run_qemu_img(j->op, j->name, &j->disks[i], &j->e);
                /* Taking is all or nothing: the disks done already drop it again. */
                for (size_t k = 0; r < 0 && streq(j->op, "-c") && k < i; k++)
                        (void) run_qemu_img("-d", j->name, &j->disks[k], NULL);
        }
        j->r = r;
}

static void img_done(void *userdata, bool cancelled) {
        QemuSnapJob *j = userdata;

        if (cancelled && j->r >= 0)
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Snapshot '%s' was not done: the service is "
                                    "stopping", j->name);
        job_finish(j);
}

int qemu_snap_worker_start(QemuDriver *q) {
        if (q->snap_worker)
                return 0;
        return worker_new(q->drv->cfg.event, 1, 64, 0, &q->snap_worker);
}

static int img_start(QemuDriver *q, const DomainDef *def, const SnapshotDef *snap, const DomainAccess *owner,
                     const char *what, const char *op, bool need_disk, VbDriverOpDone done, void *userdata,
                     VbError *reterr) {
        char uuid[37];
        QemuSnapJob *j;
        int r;

        domain_def_get_uuid_string(def, uuid);
        r = qemu_snap_worker_start(q);
        if (r < 0)
                return r;
        j = job_new(q, uuid, what, snap->name, done, userdata);
        if (!j)
                return -ENOMEM;
        j->op = op;
        r = disks_open(def, snap, owner, &j->disks, &j->n_disks, reterr);
        if (r >= 0 && need_disk && j->n_disks == 0)
                r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No qcow2 disk to take snapshot '%s' of",
                                 snap->name);
        if (r >= 0)
                r = worker_submit(q->snap_worker, img_work, img_done, j);
        if (r < 0) {
                if (r == -EAGAIN)
                        r = vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many snapshot operations wait already");
                j->dropped = true;
                job_free(j);
                return r;
        }
        return 0;
}

/* Running domains: QMP jobs --------------------------------------------------------------------- */

/* The format nodes of the disks' own images the snapshot covers (qemu_disk_top_node), as a
 * JSON array; *ret_vmstate: the one that keeps the guest's state. */
static int job_devices(QemuVm *vm, const SnapshotDef *snap, struct json_object **ret, char **ret_vmstate,
                       VbError *reterr) {
        _cleanup_(json_object_putp) struct json_object *list = json_object_new_array();
        _cleanup_free_ char *vmstate = NULL;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                const DeviceDef *dev = vm->live->devices[i];
                const char *target = device_disk_get_target(dev), *format = device_disk_get_format(dev);
                char *node;

                if (dev->kind != DEVICE_DISK || !device_disk_get_source(dev) || !target || !dev->alias ||
                    snapshot_def_disk_mode(snap, target, SNAPSHOT_MODE_INTERNAL) == SNAPSHOT_MODE_NO)
                        continue;
                if (!streq_ptr(format, "qcow2"))
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is '%s': internal snapshots "
                                            "need qcow2 (or <disk name='%s' snapshot='no'/> in the snapshot)", target,
                                            format ?: "raw", target);
                if (qemu_disk_top_node(dev, dev->alias, &node) < 0)
                        return -ENOMEM;
                if (!vmstate && !(vmstate = strdup(node))) {
                        free(node);
                        return -ENOMEM;
                }
                json_object_array_add(list, json_object_new_string(node));
                free(node);
        }
        if (!vmstate)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Domain '%s' has no qcow2 disk to keep the "
                                    "running guest's state in", domain_def_get_name(vm->live));
        *ret = TAKE_PTR(list);
        *ret_vmstate = TAKE_PTR(vmstate);
        return 0;
}

static void job_end_pause(QemuSnapJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        if (vm && j->paused_by_job)
                vm->restarting = false;
}

/* Our job in a query-jobs answer, or NULL. */
static struct json_object *find_job(struct json_object *jobs, const char *id) {
        size_t n = jobs && json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;

        for (size_t i = 0; i < n; i++)
                if (streq_ptr(qemu_json_string(json_object_array_get_idx(jobs, i), "id"), id))
                        return json_object_array_get_idx(jobs, i);
        return NULL;
}

/* Progress(done, total) on the domain when the job's counters moved (QEMU 7.2's snapshot jobs count one
 * unit, done when the state is written: the save itself runs on QEMU's main loop, which answers no query
 * meanwhile). */
static void tell_progress(QemuSnapJob *j, struct json_object *job) {
        const VbDriverEvents *ev = &j->q->drv->cfg.events;
        struct json_object *cur = qemu_json_get(job, "current-progress"), *tot = qemu_json_get(job, "total-progress");
        uint64_t done, total;

        if (!cur || !tot)
                return;
        done = (uint64_t) json_object_get_int64(cur);
        total = (uint64_t) json_object_get_int64(tot);
        if (total == 0 || done > total || (done == j->last_done && total == j->last_total))
                return;
        j->last_done = done;
        j->last_total = total;
        if (ev->domain_progress)
                ev->domain_progress(ev->userdata, j->uuid, done, total);
}

static int poll_arm(QemuSnapJob *j);

static void on_poll(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSnapJob *j = userdata;

        j->poll_id = 0;
        if (!error)
                tell_progress(j, find_job(ret, j->job_id));
        (void) poll_arm(j);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuSnapJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        j->poll = sd_event_source_disable_unref(j->poll);
        if (vm && vm->mon && qemu_monitor_call_fd(vm->mon, "query-jobs", NULL, -1, on_poll, j, &j->poll_id) < 0)
                j->poll_id = 0;
        return 0;
}

static int poll_arm(QemuSnapJob *j) {
        if (j->poll || j->poll_id || j->dropped)
                return 0;
        /* Accuracy 1 µs: sd-event's default (0) lets a timer slip by up to 250 ms. */
        return sd_event_add_time_relative(j->q->drv->cfg.event, &j->poll, CLOCK_MONOTONIC, SNAPSHOT_POLL_USEC, 1,
                                          on_poll_timer, j);
}

static void on_query_jobs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSnapJob *j = userdata;
        const char *failure = NULL;
        struct json_object *args, *job = find_job(ret, j->job_id);

        if (job)
                failure = qemu_json_string(job, "error");
        /* The last word: done of total (1 of 1 for QEMU's snapshot jobs). */
        if (job && !failure && !error)
                tell_progress(j, job);
        if (error)
                failure = error;
        if (failure)
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "QEMU failed to %s snapshot '%s': %s", j->what,
                                    j->name, failure);
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(j->job_id));
        (void) qemu_monitor_call(mon, "job-dismiss", args, NULL, NULL);
        job_end_pause(j);
        log_debug("Domain %s: snapshot job '%s' concluded%s%s.", j->uuid, j->job_id, failure ? ": " : "",
                  strempty(failure));
        job_finish(j);
}

static void on_job_reply(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSnapJob *j = userdata;

        /* Accepted: JOB_STATUS_CHANGE tells the rest. */
        if (!error)
                return;
        j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "QEMU refused to %s snapshot '%s': %s", j->what, j->name,
                            error);
        job_end_pause(j);
        job_finish(j);
}

void qemu_snapshot_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data) {
        const char *id = qemu_json_string(data, "id"), *status = qemu_json_string(data, "status");

        if (!id || !streq_ptr(status, "concluded"))
                return;
        for (QemuSnapJob *j = q->snap_jobs; j; j = j->next)
                if (streq(j->uuid, vm->uuid) && streq(j->job_id, id)) {
                        /* A poll in flight is answered first (QMP answers in order); none after. */
                        j->poll = sd_event_source_disable_unref(j->poll);
                        (void) qemu_monitor_call(vm->mon, "query-jobs", NULL, on_query_jobs, j);
                        return;
                }
}

static int qmp_start(QemuDriver *q, const char *uuid, const SnapshotDef *snap, const char *what,
                     const char *command, VbDriverOpDone done, void *userdata, VbError *reterr) {
        static unsigned serial = 0;
        _cleanup_(json_object_putp) struct json_object *devices = NULL;
        _cleanup_free_ char *vmstate = NULL;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        struct json_object *args;
        QemuSnapJob *j;
        int r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        r = job_devices(vm, snap, &devices, &vmstate, reterr);
        if (r < 0)
                return r;
        j = job_new(q, uuid, what, snap->name, done, userdata);
        if (!j)
                return -ENOMEM;
        snprintf(j->job_id, sizeof j->job_id, "virtbus-snapshot-%u", ++serial);
        args = json_object_new_object();
        json_object_object_add(args, "job-id", json_object_new_string(j->job_id));
        json_object_object_add(args, "tag", json_object_new_string(snap->name));
        if (!streq(command, "snapshot-delete"))
                json_object_object_add(args, "vmstate", json_object_new_string(vmstate));
        json_object_object_add(args, "devices", TAKE_PTR(devices));
        r = qemu_monitor_call(vm->mon, command, args, on_job_reply, j);
        if (r < 0) {
                j->dropped = true;
                job_free(j);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to ask QEMU to %s snapshot '%s': %s",
                                    what, snap->name, strerror(-r));
        }
        if (vm->state == DOMAIN_RUNNING && !streq(command, "snapshot-delete")) {
                vm->restarting = true;
                j->paused_by_job = true;
        }
        if (!streq(command, "snapshot-delete") && poll_arm(j) < 0)
                log_debug("Domain %s: the progress of snapshot job '%s' is not followed.", uuid, j->job_id);
        log_debug("Domain %s: %s job '%s' for snapshot '%s'.", uuid, command, j->job_id, snap->name);
        return 0;
}

void qemu_snapshots_abort(QemuDriver *q, const char *uuid) {
        for (QemuSnapJob *j = q->snap_jobs, *next; j; j = next) {
                next = j->next;
                /* Jobs in the worker belong to stopped domains: only QMP jobs end with their QEMU. */
                if (!streq(j->uuid, uuid) || j->op)
                        continue;
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Snapshot '%s' was not done: the domain "
                                    "stopped meanwhile", j->name);
                job_finish(j);
        }
}

void qemu_snapshots_close(QemuDriver *q) {
        qemu_snapshot_disk_close(q);
        qemu_snapshot_merge_close(q);
        for (QemuSnapJob *j = q->snap_jobs; j; j = j->next)
                j->dropped = true;
        q->snap_worker = worker_free(q->snap_worker);
        while (q->snap_jobs)
                job_free(q->snap_jobs);
}

/* The ops ------------------------------------------------------------------------------------------ */

int qemu_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr) {
        char uuid[37];

        if (snapshot_def_kind(snap) == SNAPSHOT_KIND_DISK_ONLY)
                return qemu_snapshot_disk_only(drv->priv, def, running, snap, owner, done, userdata, reterr);
        if (running) {
                domain_def_get_uuid_string(def, uuid);
                return qmp_start(drv->priv, uuid, snap, "take", "snapshot-save", done, userdata, reterr);
        }
        return img_start(drv->priv, def, snap, owner, "take", "-c", true, done, userdata, reterr);
}

int qemu_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr) {
        char uuid[37];

        if (running) {
                if (snap->state != SNAPSHOT_STATE_RUNNING && snap->state != SNAPSHOT_STATE_PAUSED)
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Snapshot '%s' was taken of a stopped "
                                            "domain: it is reverted to with the domain stopped", snap->name);
                domain_def_get_uuid_string(def, uuid);
                return qmp_start(drv->priv, uuid, snap, "revert to", "snapshot-load", done, userdata, reterr);
        }
        /* The snapshot lives in the images the disks had when it was taken (a disk-only snapshot since may
         * have put an overlay over them). */
        return img_start(drv->priv, snap->domain ?: def, snap, owner, "revert to", "-a", false, done, userdata,
                         reterr);
}

int qemu_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbDriverOpDone done, void *userdata, VbError *reterr) {
        char uuid[37];

        if (snapshot_def_kind(snap) == SNAPSHOT_KIND_DISK_ONLY)
                return qemu_snapshot_merge(drv->priv, def, running, snap, owner, done, userdata, reterr);
        if (running) {
                domain_def_get_uuid_string(def, uuid);
                return qmp_start(drv->priv, uuid, snap, "delete", "snapshot-delete", done, userdata, reterr);
        }
        return img_start(drv->priv, snap->domain ?: def, snap, owner, "delete", "-d", false, done, userdata, reterr);
}
