/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deleting a disk-only snapshot: each overlay it made is merged into the image below it, which becomes the
 * disk's image again, and the overlay file goes (core checked that every overlay is its disk's image now).
 *  - Stopped domain, in a worker thread: every image of the disk's chain is opened with the rights of
 *    whoever the definition says opens it (the overlay and the image below read-write, the rest read-only),
 *    and `qemu-img commit` runs as the disk's owner, confined, with the chain given as those descriptors
 *    (a json: description naming /proc/self/fd/N: it opens no path of its own). Only once every disk is
 *    merged are the overlays removed, through their directories opened with their users' rights and only
 *    if the names still are those files: a failure leaves every chain as it was (an image below may hold
 *    a copy of what its overlay holds: nothing reads it differently).
 *  - Running domain: the image below each overlay gets a read-write descriptor (opened with its user's
 *    rights) in its descriptor set, its nodes are reopened read-write (blockdev-reopen), and QMP
 *    block-commit of the active layer runs, one job per disk, followed by its JOB_STATUS_CHANGE events
 *    (and polled for Progress). Only once all are ready is job-complete asked, of one disk at a time, the
 *    next after the one before pivoted onto the image below. The overlay's nodes and descriptor set go,
 *    then the files. As all or nothing as QEMU allows: a disk failing before its pivot has the others'
 *    jobs cancelled (a cancelled active commit leaves its disk on its overlay); a pivot cannot be undone,
 *    so a disk failing after an earlier one pivoted leaves those merged, and then the live definition
 *    says so (core makes the snapshot keep only the overlays left, from it). */
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf-node.h"
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

#define COMMIT_TIMEOUT_MS (30 * 60 * 1000)
#define MERGE_POLL_USEC (250 * 1000)
#define MERGE_JOB_PREFIX "vb-merge-" /* and the disk's alias: a job's id */

typedef struct Layer {
        char *path, *format;
        uint32_t uid;
        int fd;
} Layer;

typedef struct MergeDisk {
        char *target;
        Layer *v;       /* v[0]: the overlay, v[1]: the image below it, then the rest of the chain */
        size_t n;
        bool removed;
        /* running */
        char *alias, *job_id, *top_prefix, *base_prefix, *below_node;
        int top_fdset, base_fdset;
        int base_ro_fd;  /* the image below, read-only too: its set holds only ours from then on */
        bool ready, concluded;
        bool complete_sent, completing; /* job-complete asked, accepted */
        bool cancelling;
        char *error;
        uint64_t done, total;
} MergeDisk;

struct QemuMergeJob {
        QemuDriver *q;
        char uuid[37];
        char *name;
        SnapshotDef *snap;
        bool running, removing, dropped;
        bool failing;      /* a disk failed: the others are cancelled or, if pivoting, waited for */
        bool kick;         /* a job changed while a query was in flight: ask again at once */
        bool ending;       /* every job concluded: no more queries */
        char *failure;     /* the first failure, naming its disk */
        MergeDisk *v;
        size_t n;
        int r;
        VbError e;
        VbDriverOpDone done;
        void *userdata;
        sd_event_source *poll;
        uint64_t poll_id;
        uint64_t complete_id; /* the job-complete in flight (0: none) */
        struct QemuMergeJob *next;
};

static void disk_done(MergeDisk *d) {
        for (size_t i = 0; i < d->n; i++) {
                if (d->v[i].fd >= 0)
                        close(d->v[i].fd);
                free(d->v[i].path);
                free(d->v[i].format);
        }
        if (d->base_ro_fd >= 0)
                close(d->base_ro_fd);
        free(d->v);
        free(d->target);
        free(d->alias);
        free(d->job_id);
        free(d->top_prefix);
        free(d->base_prefix);
        free(d->below_node);
        free(d->error);
}

static void job_free(QemuMergeJob *j) {
        QemuMergeJob **i;

        for (i = &j->q->merge_jobs; *i && *i != j; i = &(*i)->next)
                ;
        if (*i)
                *i = j->next;
        sd_event_source_disable_unref(j->poll);
        if (j->complete_id) {
                QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

                if (vm && vm->mon)
                        qemu_monitor_cancel(vm->mon, j->complete_id);
        }
        for (size_t k = 0; k < j->n; k++)
                disk_done(&j->v[k]);
        free(j->v);
        free(j->name);
        free(j->failure);
        snapshot_def_free(j->snap);
        vb_error_free(&j->e);
        free(j);
}

static void job_finish(QemuMergeJob *j) {
        if (!j->dropped) {
                if (j->r < 0 && j->e.code == VB_ERROR_NONE)
                        vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Failed to merge the overlays of snapshot '%s': %s",
                                     j->name, strerror(-j->r));
                if (j->r >= 0)
                        log_info("Domain %s: the overlays of snapshot '%s' merged into the images below them.", j->uuid,
                                 j->name);
                j->done(j->r, j->r < 0 ? &j->e : NULL, j->userdata);
        }
        job_free(j);
}

/* In the worker ----------------------------------------------------------------------------------- */

/* The images a merge touches, each with its user's rights: running, the overlay (read-only: to know the
 * file to remove) and the image below (read-write); stopped, the whole chain. */
static int disk_open(MergeDisk *d, bool running, VbError *e) {
        size_t n = running ? 2 : d->n;

        for (size_t i = 0; i < n; i++) {
                HostOpenMode mode = i < 2 && !(running && i == 0) ? HOST_OPEN_READ_WRITE : HOST_OPEN_READ;
                int r = host_open_one_as(d->v[i].uid, d->v[i].path, mode, &d->v[i].fd);

                if (r < 0)
                        return vb_error_set(e, r == -EACCES || r == -EPERM ? VB_ERROR_ACCESS_DENIED :
                                            VB_ERROR_OPERATION_FAILED, "Cannot open '%s' of disk '%s' (%s) with the "
                                            "rights of uid %u to merge it: %s", d->v[i].path, d->target,
                                            host_open_mode_to_string(mode), d->v[i].uid, strerror(-r));
        }
        if (running) {
                int r = host_open_one_as(d->v[1].uid, d->v[1].path, HOST_OPEN_READ, &d->base_ro_fd);

                if (r < 0)
                        return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Cannot open '%s' of disk '%s' (read-only) "
                                            "with the rights of uid %u to merge it: %s", d->v[1].path, d->target,
                                            d->v[1].uid, strerror(-r));
        }
        return 0;
}

/* The chain from layer i down, for qemu-img: every image by its descriptor, nothing by a path. */
static struct json_object *chain_json(const MergeDisk *d, size_t i) {
        struct json_object *o = json_object_new_object(), *file = json_object_new_object();
        char name[64];
        struct stat st;

        snprintf(name, sizeof name, "/proc/self/fd/%d", d->v[i].fd);
        json_object_object_add(file, "driver", json_object_new_string(
                                       fstat(d->v[i].fd, &st) >= 0 && S_ISBLK(st.st_mode) ? "host_device" : "file"));
        json_object_object_add(file, "filename", json_object_new_string(name));
        json_object_object_add(o, "driver", json_object_new_string(d->v[i].format));
        json_object_object_add(o, "file", file);
        if (streq(d->v[i].format, "qcow2"))
                json_object_object_add(o, "backing", i + 1 < d->n ? chain_json(d, i + 1) : NULL);
        return o;
}

static int wait_child(pid_t pid, const char *what, VbError *e) {
        int status = 0, r;

        r = host_process_wait_timeout(pid, COMMIT_TIMEOUT_MS, &status);
        if (r == -ETIMEDOUT)
                return vb_error_set(e, VB_ERROR_TIMEOUT, "%s took over %d s", what, COMMIT_TIMEOUT_MS / 1000);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s", strerror(-r));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "%s failed (status %d)", what, status);
        return 0;
}

/* qemu-img commit of the overlay into the image below, run as the overlay's user (confined, with only
 * the chain's descriptors), or as root for root's. */
static int commit_stopped(const QemuDriver *q, MergeDisk *d, VbError *e) {
        _cleanup_free_ int *keep = new0(int, d->n);
        _cleanup_free_ char *spec = NULL, *what = NULL;
        struct json_object *chain;
        const char *argv[] = { storage_qemu_img_path(), "commit", "-q", "-d", NULL, NULL };
        pid_t pid;
        int r;

        chain = chain_json(d, 0);
        r = asprintf(&spec, "json:%s", json_object_to_json_string_ext(chain, JSON_C_TO_STRING_PLAIN));
        json_object_put(chain);
        if (r < 0 || !keep || asprintf(&what, "qemu-img commit of overlay '%s' of disk '%s' into '%s'", d->v[0].path,
                                       d->target, d->v[1].path) < 0)
                return -ENOMEM;
        argv[4] = spec;
        for (size_t i = 0; i < d->n; i++)
                keep[i] = d->v[i].fd;
        if (d->v[0].uid != 0) {
                struct passwd pw, *res = NULL;
                char buf[4096];
                /* Shut in as QEMU is: the service's own directories hidden. */
                HostConfinement c = { .uid = d->v[0].uid, .hide = q->confinement.hide, .die_with_parent = true };

                if (getpwuid_r(d->v[0].uid, &pw, buf, sizeof buf, &res) != 0 || !res)
                        return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "No user has uid %u: cannot merge disk '%s' "
                                            "as its owner", d->v[0].uid, d->target);
                c.gid = pw.pw_gid;
                r = host_process_spawn_confined(argv, -1, keep, d->n, &c, &pid);
        } else
                r = host_process_spawn(argv, -1, keep, d->n, &pid);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        return wait_child(pid, what, e);
}

/* Removes the overlay: through its directory opened with its user's rights, only if the name still is
 * the file merged. */
static void overlay_remove(MergeDisk *d) {
        const char *base;
        int dfd = -EBADF, r;

        if (d->v[0].fd < 0)
                return;
        r = host_open_parent_as(d->v[0].uid, d->v[0].path, &dfd, &base);
        if (r == -ENOMEM || r == -EINVAL)
                return;
        if (r < 0) {
                log_warning("Cannot open the directory of overlay '%s' to remove it, ignoring.", d->v[0].path);
                return;
        }
        r = host_unlinkat_if_same(dfd, base, d->v[0].fd);
        if (r == -ESTALE)
                log_warning("Overlay '%s' was replaced since its snapshot: left in place.", d->v[0].path);
        else if (r < 0)
                log_warning_errno(r, "Failed to remove overlay '%s', ignoring: %m", d->v[0].path);
        else
                d->removed = true;
        close(dfd);
}

/* A disk whose job concluded after its job-complete was accepted, with no error: it runs on the image below. */
static bool disk_pivoted(const MergeDisk *d) {
        return d->concluded && d->completing && !d->error;
}

static void work(void *userdata) {
        QemuMergeJob *j = userdata;
        int r = 0;

        if (j->removing) {
                /* Running, only the overlays QEMU left (a failed merge keeps the others'). */
                for (size_t k = 0; k < j->n; k++)
                        if (!j->running || disk_pivoted(&j->v[k]))
                                overlay_remove(&j->v[k]);
                return;
        }
        for (size_t k = 0; k < j->n && r >= 0; k++)
                r = disk_open(&j->v[k], j->running, &j->e);
        for (size_t k = 0; k < j->n && r >= 0 && !j->running; k++)
                r = commit_stopped(j->q, &j->v[k], &j->e);
        /* Every chain merged: only now do the overlays go. */
        for (size_t k = 0; k < j->n && r >= 0 && !j->running; k++)
                overlay_remove(&j->v[k]);
        j->r = r;
}

/* On the event loop: the live part ------------------------------------------------------------------ */

static void live_start(QemuMergeJob *j);

static void tell_progress(QemuMergeJob *j) {
        const VbDriverEvents *ev = &j->q->drv->cfg.events;
        uint64_t done = 0, total = 0;

        for (size_t k = 0; k < j->n; k++) {
                done += j->v[k].done;
                total += j->v[k].total;
        }
        if (total == 0)
                done = 0, total = 1;
        if (ev->domain_progress)
                ev->domain_progress(ev->userdata, j->uuid, done > total ? total : done, total);
}

static void on_removed(void *userdata, bool cancelled) {
        job_finish(userdata);
}

static void on_opened(void *userdata, bool cancelled) {
        QemuMergeJob *j = userdata;

        if (cancelled && j->r >= 0)
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Snapshot '%s' was not merged: the service is "
                                    "stopping", j->name);
        /* Shut off: qemu-img said nothing on the way; every disk is done. */
        for (size_t k = 0; k < j->n && j->r >= 0 && !j->running; k++)
                j->v[k].done = j->v[k].total = 1;
        if (j->r >= 0 && !j->running && !j->dropped)
                tell_progress(j);
        if (j->r < 0 || !j->running || j->dropped) {
                job_finish(j);
                return;
        }
        live_start(j);
}

static int node_name(const char *prefix, const char *what, char **ret) {
        return asprintf(ret, "%s-%s", prefix, what) < 0 ? -ENOMEM : 0;
}

/* The disks that pivoted are off their overlays: so is QEMU's live definition (written for a restart of
 * ours). Those that did not keep theirs. */
static void live_adopt(QemuMergeJob *j, QemuVm *vm) {
        _cleanup_(snapshot_def_freep) SnapshotDef *pivoted = NULL;
        DomainDef *copy = NULL;

        if (snapshot_def_copy(j->snap, &pivoted) >= 0)
                for (size_t i = 0; i < pivoted->n_disks; i++) {
                        SnapshotDiskDef *k = &pivoted->disks[i];
                        bool done = false;

                        for (size_t n = 0; n < j->n; n++)
                                if (streq(j->v[n].target, k->name))
                                        done = disk_pivoted(&j->v[n]);
                        if (!done)
                                k->mode = SNAPSHOT_MODE_NO;
                }
        if (!pivoted || snapshot_def_drop_overlays(pivoted, vm->live, &copy, NULL) < 0) {
                log_warning("Domain %s: out of memory recording the merge of snapshot '%s'.", j->uuid, j->name);
                return;
        }
        domain_def_free(vm->live);
        vm->live = copy;
        if (qemu_vm_save(vm) < 0)
                log_warning("Domain %s: failed to write its live definition after merging snapshot '%s', ignoring.",
                            vm->uuid, j->name);
}

static void live_fail(QemuMergeJob *j, int r, const VbError *e, const char *what) {
        j->r = r < 0 ? r : -EIO;
        if (j->e.code == VB_ERROR_NONE)
                vb_error_set(&j->e, e ? e->code : VB_ERROR_OPERATION_FAILED, "Failed to merge snapshot '%s' (%s): %s",
                             j->name, what, e ? strempty(e->message) : strerror(-j->r));
        job_finish(j);
}

/* The overlays' nodes and sets went: the files go (in the worker), then the caller hears it. */
static void on_cleaned(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMergeJob *j = userdata;

        if (r < 0)
                log_warning("Domain %s: QEMU kept some node of the merged overlays of snapshot '%s', ignoring: %s",
                            j->uuid, j->name, e ? strempty(e->message) : strerror(-r));
        j->removing = true;
        if (!j->q->snap_worker || worker_submit(j->q->snap_worker, work, on_removed, j) < 0)
                job_finish(j);
}

/* Every job concluded: all are dismissed, and the overlays of the disks that pivoted leave QEMU. */
static void live_cleanup(QemuMergeJob *j, QemuVm *vm) {
        QemuSeq *seq = qemu_seq_new(vm);
        struct json_object *args;

        j->ending = true;
        j->poll = sd_event_source_disable_unref(j->poll);
        if (!seq) {
                on_cleaned(NULL, -ENOMEM, NULL, j);
                return;
        }
        for (size_t k = 0; k < j->n; k++) {
                const MergeDisk *d = &j->v[k];

                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(d->job_id));
                qemu_seq_add_optional(seq, "job-dismiss", args);
                if (!disk_pivoted(d))
                        continue;
                for (size_t s = 0; s < 2; s++) {
                        _cleanup_free_ char *node = NULL;

                        if (node_name(d->top_prefix, s == 0 ? "format" : "storage", &node) < 0)
                                continue;
                        args = json_object_new_object();
                        json_object_object_add(args, "node-name", json_object_new_string(node));
                        qemu_seq_add_optional(seq, "blockdev-del", args);
                }
                if (d->top_fdset >= 0) {
                        args = json_object_new_object();
                        json_object_object_add(args, "fdset-id", json_object_new_int(d->top_fdset));
                        qemu_seq_add_optional(seq, "remove-fd", args);
                }
        }
        if (qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_cleaned, j, NULL) < 0)
                on_cleaned(NULL, -EIO, NULL, j);
}

static MergeDisk *disk_of_job(QemuMergeJob *j, const char *id) {
        for (size_t k = 0; k < j->n; k++)
                if (streq_ptr(j->v[k].job_id, id))
                        return &j->v[k];
        return NULL;
}

static int poll_arm(QemuMergeJob *j);
static void poll_now(QemuMergeJob *j);

/* The first failure, with its disk, is the one told. */
static void disk_failed(QemuMergeJob *j, MergeDisk *d, const char *error) {
        if (!d->error)
                d->error = strdup(error);
        if (!j->failure && asprintf(&j->failure, "disk '%s': %s", d->target, error) < 0)
                j->failure = NULL;
        j->failing = true;
}

static void on_completed(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuMergeJob *j = userdata;
        MergeDisk *d = NULL;

        j->complete_id = 0;
        for (size_t k = 0; k < j->n && !d; k++)
                if (j->v[k].complete_sent && !j->v[k].completing && !j->v[k].error && !j->v[k].concluded)
                        d = &j->v[k];
        if (!d)
                return;
        if (error)
                disk_failed(j, d, error);
        else
                d->completing = true;
        poll_now(j);
}

/* All ready: the next disk is asked to pivot, once the one before did. VIRTBUS_QEMU_MERGE_FAULT (tests):
 * the job-complete of the disk it names goes to a job that does not exist, so QEMU refuses it; "hold": no
 * job-complete is sent at all. */
static void complete_next(QemuMergeJob *j, QemuVm *vm) {
        const char *fault = getenv("VIRTBUS_QEMU_MERGE_FAULT");
        struct json_object *args;

        if (streq_ptr(fault, "hold"))
                return; /* tests: the jobs stay ready until the service is stopped */

        for (size_t k = 0; k < j->n; k++) {
                MergeDisk *d = &j->v[k];

                if (d->concluded)
                        continue;
                if (d->complete_sent)
                        return; /* pivoting: the next waits */
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(streq_ptr(fault, d->target) ?
                                                                          "virtbus-injected-fault" : d->job_id));
                if (qemu_monitor_call_fd(vm->mon, "job-complete", args, -1, on_completed, j, &j->complete_id) < 0)
                        disk_failed(j, d, "cannot ask QEMU to complete the job");
                else
                        d->complete_sent = true;
                return;
        }
}

/* A disk failed: every job not pivoting is cancelled; once all concluded, what pivoted is recorded and the
 * caller told. */
static void live_unwind(QemuMergeJob *j, QemuVm *vm) {
        _cleanup_free_ char *merged = NULL;
        bool all_concluded = true;

        for (size_t k = 0; k < j->n; k++) {
                MergeDisk *d = &j->v[k];
                struct json_object *args;

                if (d->concluded)
                        continue;
                all_concluded = false;
                /* A pivot asked and accepted runs to its end; an answer still awaited is waited for. */
                if (d->completing || d->cancelling || (d->complete_sent && !d->error))
                        continue;
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(d->job_id));
                if (qemu_monitor_call(vm->mon, "job-cancel", args, NULL, NULL) >= 0)
                        d->cancelling = true;
        }
        if (!all_concluded) {
                (void) poll_arm(j);
                return;
        }
        for (size_t k = 0; k < j->n; k++) {
                char *m;

                if (!disk_pivoted(&j->v[k]))
                        continue;
                if (asprintf(&m, "%s%s'%s'", strempty(merged), merged ? ", " : "", j->v[k].target) < 0)
                        break;
                free(merged);
                merged = m;
        }
        j->r = -EIO;
        if (merged)
                vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "QEMU failed to merge the overlays of snapshot '%s': "
                             "%s; disk(s) %s had pivoted onto the image below already, which cannot be undone: the "
                             "snapshot keeps the overlays of the other disks only", j->name,
                             strempty(j->failure), merged);
        else
                vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "QEMU failed to merge the overlays of snapshot '%s': "
                             "%s; no disk was changed", j->name, strempty(j->failure));
        if (merged)
                live_adopt(j, vm);
        live_cleanup(j, vm);
}

/* query-jobs' answer: progress; all ready: the pivots, one disk at a time; all concluded: the end. */
static void on_jobs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuMergeJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        size_t n = ret && json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
        bool all_ready = true, all_concluded = true;

        j->poll_id = 0;
        if (j->dropped) {
                job_finish(j);
                return;
        }
        if (j->ending)
                return;
        for (size_t i = 0; i < n; i++) {
                struct json_object *job = json_object_array_get_idx(ret, i);
                MergeDisk *d = disk_of_job(j, qemu_json_string(job, "id"));
                const char *status = qemu_json_string(job, "status");

                if (!d || !status)
                        continue;
                if (qemu_json_get(job, "current-progress"))
                        d->done = (uint64_t) json_object_get_int64(qemu_json_get(job, "current-progress"));
                if (qemu_json_get(job, "total-progress"))
                        d->total = (uint64_t) json_object_get_int64(qemu_json_get(job, "total-progress"));
                if (streq(status, "ready"))
                        d->ready = true;
                if (streq(status, "concluded") || streq(status, "null")) {
                        d->concluded = true;
                        if (qemu_json_string(job, "error") && !d->error)
                                disk_failed(j, d, d->cancelling ? "cancelled" : qemu_json_string(job, "error"));
                }
        }
        for (size_t k = 0; k < j->n; k++) {
                all_ready = all_ready && (j->v[k].ready || j->v[k].concluded);
                all_concluded = all_concluded && j->v[k].concluded;
        }
        if (!j->failing)
                tell_progress(j);
        if (!vm || error) {
                live_fail(j, -EIO, NULL, vm ? error : "the domain stopped");
                return;
        }
        if (j->failing) {
                live_unwind(j, vm);
                return;
        }
        if (all_concluded) {
                live_adopt(j, vm);
                live_cleanup(j, vm);
                return;
        }
        if (all_ready)
                complete_next(j, vm);
        if (j->failing)
                live_unwind(j, vm);
        else
                (void) poll_arm(j);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMergeJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        j->poll = sd_event_source_disable_unref(j->poll);
        j->kick = false;
        if (!vm || !vm->mon || qemu_monitor_call_fd(vm->mon, "query-jobs", NULL, -1, on_jobs, j, &j->poll_id) < 0) {
                j->poll_id = 0;
                live_fail(j, -EIO, NULL, "the domain stopped");
        }
        return 0;
}

static int poll_arm(QemuMergeJob *j) {
        if (j->poll || j->poll_id || j->ending)
                return 0;
        /* Accuracy 1 µs: sd-event's default (0) lets a timer slip by up to 250 ms. */
        return sd_event_add_time_relative(j->q->drv->cfg.event, &j->poll, CLOCK_MONOTONIC,
                                          j->kick ? 0 : MERGE_POLL_USEC, 1, on_poll_timer, j);
}

/* Something changed: the next query goes at once (after the one in flight, if any). */
static void poll_now(QemuMergeJob *j) {
        if (j->ending)
                return;
        j->kick = true;
        j->poll = sd_event_source_disable_unref(j->poll);
        if (!j->poll_id && poll_arm(j) < 0)
                live_fail(j, -ENOMEM, NULL, "following the jobs");
}


static void on_commits_started(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMergeJob *j = userdata;

        if (r < 0) {
                live_fail(j, r, e, "starting the block-commit jobs");
                return;
        }
        if (poll_arm(j) < 0)
                live_fail(j, -ENOMEM, NULL, "polling the jobs");
}

/* remove-fd of every descriptor of set id, from query-fdsets' answer. */
static void remove_set_fds(QemuSeq *seq, struct json_object *sets, int id) {
        size_t n = sets && json_object_is_type(sets, json_type_array) ? json_object_array_length(sets) : 0;

        for (size_t i = 0; i < n; i++) {
                struct json_object *set = json_object_array_get_idx(sets, i), *fds = qemu_json_get(set, "fds");
                size_t n_fds = fds && json_object_is_type(fds, json_type_array) ? json_object_array_length(fds) : 0;

                if (json_object_get_int(qemu_json_get(set, "fdset-id")) != id)
                        continue;
                for (size_t k = 0; k < n_fds; k++) {
                        struct json_object *args = json_object_new_object();

                        json_object_object_add(args, "fdset-id", json_object_new_int(id));
                        json_object_object_add(args, "fd", json_object_new_int(
                                                       json_object_get_int(qemu_json_get(json_object_array_get_idx(fds, k), "fd"))));
                        qemu_seq_add_optional(seq, "remove-fd", args);
                }
        }
}

/* The set a storage node's file is in ("/dev/fdset/N"), from query-named-block-nodes' answer. */
static int fdset_of(struct json_object *nodes, const char *prefix) {
        _cleanup_free_ char *name = NULL;
        size_t n = nodes && json_object_is_type(nodes, json_type_array) ? json_object_array_length(nodes) : 0;
        int set = -1;

        if (node_name(prefix, "storage", &name) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(nodes, i);
                const char *file = qemu_json_string(o, "file");

                if (streq_ptr(qemu_json_string(o, "node-name"), name) && file &&
                    sscanf(file, "/dev/fdset/%d", &set) == 1)
                        return set;
        }
        return -1;
}

/* The locks a read-write descriptor of the set of the image below still holds, dropped when stale. The
 * disk's node took them through its copy of that descriptor when it started read-write; they belong to the
 * open file description, which the set keeps after the node went read-only under its overlay. remove-fd
 * closes it only while the guest runs (QEMU 7.2 keeps removed descriptors of a set open while it is
 * paused), and its locks then refuse the reopen read-write ("Failed to get "write" lock"). Only a
 * descriptor no other one of QEMU's shares the description with is touched. */
static void drop_stale_locks(QemuVm *vm, struct json_object *sets, const MergeDisk *d) {
        size_t n = sets && json_object_is_type(sets, json_type_array) ? json_object_array_length(sets) : 0;
        int pidfd = vm->pidfd, own = -EBADF;

        if (pidfd < 0)
                pidfd = own = host_process_open_fd(vm->pid);
        if (pidfd < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                struct json_object *set = json_object_array_get_idx(sets, i), *fds = qemu_json_get(set, "fds");
                size_t n_fds = fds && json_object_is_type(fds, json_type_array) ? json_object_array_length(fds) : 0;

                if (json_object_get_int(qemu_json_get(set, "fdset-id")) != d->base_fdset)
                        continue;
                for (size_t k = 0; k < n_fds; k++) {
                        int fd = json_object_get_int(qemu_json_get(json_object_array_get_idx(fds, k), "fd"));
                        int r = host_process_fd_drop_stale_locks(vm->pid, pidfd, fd);

                        if (r < 0)
                                log_debug("Domain %s: could not drop the locks of QEMU's descriptor %d of disk '%s': %s",
                                          vm->uuid, fd, d->target, strerror(-r));
                        else if (r > 0)
                                log_debug("Domain %s: dropped the stale locks of QEMU's read-write descriptor %d of disk '%s'.",
                                          vm->uuid, fd, d->target);
                }
        }
        if (own >= 0)
                close(own);
}

/* The image below, read-write: its storage node (its set now holds a read-write descriptor) and format
 * node reopened so, as one. */
static struct json_object *reopen_args(const MergeDisk *d, bool block) {
        struct json_object *args = json_object_new_object(), *list = json_object_new_array();
        struct json_object *storage = json_object_new_object(), *format = json_object_new_object();
        _cleanup_free_ char *sname = NULL, *fname = NULL, *file = NULL;

        if (node_name(d->base_prefix, "storage", &sname) < 0 || node_name(d->base_prefix, "format", &fname) < 0 ||
            asprintf(&file, "/dev/fdset/%d", d->base_fdset) < 0) {
                json_object_put(args);
                json_object_put(list);
                json_object_put(storage);
                json_object_put(format);
                return NULL;
        }
        json_object_object_add(storage, "driver", json_object_new_string(block ? "host_device" : "file"));
        json_object_object_add(storage, "node-name", json_object_new_string(sname));
        json_object_object_add(storage, "filename", json_object_new_string(file));
        json_object_object_add(storage, "read-only", json_object_new_boolean(false));
        json_object_object_add(storage, "auto-read-only", json_object_new_boolean(true));
        json_object_object_add(format, "driver", json_object_new_string(d->v[1].format));
        json_object_object_add(format, "node-name", json_object_new_string(fname));
        json_object_object_add(format, "file", json_object_new_string(sname));
        json_object_object_add(format, "read-only", json_object_new_boolean(false));
        if (d->below_node)
                json_object_object_add(format, "backing", json_object_new_string(d->below_node));
        json_object_array_add(list, storage);
        json_object_array_add(list, format);
        json_object_object_add(args, "options", list);
        return args;
}

static void on_nodes(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMergeJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        struct json_object *nodes = r >= 0 ? qemu_seq_reply(seq, 0) : NULL;
        QemuSeq *next;

        if (r < 0 || !vm) {
                live_fail(j, r < 0 ? r : -ESRCH, e, "reading QEMU's block nodes");
                return;
        }
        next = qemu_seq_new(vm);
        if (!next) {
                live_fail(j, -ENOMEM, NULL, "out of memory");
                return;
        }
        for (size_t k = 0; k < j->n; k++) {
                MergeDisk *d = &j->v[k];
                struct json_object *args;
                _cleanup_free_ char *top = NULL, *base = NULL, *w_fd = NULL, *w_reopen = NULL, *w_commit = NULL;
                struct stat st;

                d->top_fdset = fdset_of(nodes, d->top_prefix);
                d->base_fdset = fdset_of(nodes, d->base_prefix);
                if (d->base_fdset < 0) {
                        qemu_seq_free(next);
                        live_fail(j, -ENOENT, NULL, "QEMU has no descriptor set for the image below the overlay");
                        return;
                }
                if (asprintf(&w_fd, "hand QEMU the image below the overlay of disk '%s'", d->target) < 0 ||
                    asprintf(&w_reopen, "reopen the image below the overlay of disk '%s' read-write", d->target) < 0 ||
                    asprintf(&w_commit, "start merging the overlay of disk '%s' (block-commit)", d->target) < 0)
                        w_fd = w_reopen = w_commit = NULL;
                /* The set's descriptors go first (the node keeps its own copy until the reopen): one the disk
                 * had read-write before an overlay went over it may still hold QEMU's lock against writers,
                 * which the reopen would meet ("Failed to get "write" lock"). Ours replace them. */
                drop_stale_locks(vm, qemu_seq_reply(seq, 1), d);
                remove_set_fds(next, qemu_seq_reply(seq, 1), d->base_fdset);
                for (size_t m = 0; m < 2; m++) {
                        args = json_object_new_object();
                        json_object_object_add(args, "fdset-id", json_object_new_int(d->base_fdset));
                        json_object_object_add(args, "opaque", json_object_new_string(d->alias));
                        qemu_seq_add_fd(next, w_fd, "add-fd", args, m == 0 ? d->v[1].fd : d->base_ro_fd);
                }
                qemu_seq_add(next, w_reopen, "blockdev-reopen", reopen_args(d, fstat(d->v[1].fd, &st) >= 0 &&
                                                                             S_ISBLK(st.st_mode)));
                if (node_name(d->top_prefix, "format", &top) < 0 || node_name(d->base_prefix, "format", &base) < 0) {
                        qemu_seq_free(next);
                        live_fail(j, -ENOMEM, NULL, "out of memory");
                        return;
                }
                args = json_object_new_object();
                json_object_object_add(args, "job-id", json_object_new_string(d->job_id));
                json_object_object_add(args, "device", json_object_new_string(top));
                json_object_object_add(args, "base-node", json_object_new_string(base));
                json_object_object_add(args, "auto-dismiss", json_object_new_boolean(false));
                qemu_seq_add(next, w_commit, "block-commit", args);
        }
        r = qemu_seq_run(next, qemu_vm_command_timeout(vm), on_commits_started, j, &j->e);
        if (r < 0)
                live_fail(j, r, NULL, "starting the block-commit jobs");
}

static void live_start(QemuMergeJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        struct json_object *args;
        QemuSeq *seq;
        int r;

        if (!vm || !vm->mon || !(seq = qemu_seq_new(vm))) {
                live_fail(j, vm ? -ENOMEM : -ESRCH, NULL, vm ? "out of memory" : "the domain stopped");
                return;
        }
        args = json_object_new_object();
        json_object_object_add(args, "flat", json_object_new_boolean(true));
        qemu_seq_add(seq, "list QEMU's block nodes", "query-named-block-nodes", args);
        qemu_seq_add(seq, "list QEMU's descriptor sets", "query-fdsets", NULL);
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_nodes, j, &j->e);
        if (r < 0)
                live_fail(j, r, NULL, "listing QEMU's block nodes");
}

/* The op ------------------------------------------------------------------------------------------- */

static int layer_add(MergeDisk *d, const char *path, const char *format, const DomainAccess *access) {
        Layer *l = &d->v[d->n];

        *l = (Layer) { .fd = -1, .path = strdup(path), .format = strdup(format ?: "raw") };
        d->n++;
        if (!l->path || !l->format)
                return -ENOMEM;
        l->uid = domain_access_uid_for(access, path);
        return 0;
}

/* The disk's chain, from its image (the overlay) down, as its <backingStore> elements say. */
static int disk_fill(MergeDisk *d, const DeviceDef *dev, const SnapshotDiskDef *k, bool running,
                     const DomainAccess *access, VbError *reterr) {
        const ConfNode *b;
        size_t depth = 0;
        int r;

        for (b = dev->extra ? conf_node_child(dev->extra, "backingStore") : NULL; b; b = conf_node_child(b, "backingStore"))
                if (conf_node_child(b, "source"))
                        depth++;
        if (!streq_ptr(device_disk_get_source(dev), k->source_file) || depth == 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' does not run on the overlay '%s' of "
                                    "the snapshot over an image: it cannot be merged", k->name, strempty(k->source_file));
        if (!(d->target = strdup(k->name)) || !(d->v = new0(Layer, depth + 1)))
                return -ENOMEM;
        r = layer_add(d, device_disk_get_source(dev), device_disk_get_format(dev), access);
        for (b = conf_node_child(dev->extra, "backingStore"); b && r >= 0; b = conf_node_child(b, "backingStore")) {
                const ConfNode *src = conf_node_child(b, "source"), *fmt = conf_node_child(b, "format");
                const char *type = conf_node_attr(b, "type") ?: "file";
                const char *path = src ? conf_node_attr(src, streq(type, "block") ? "dev" : "file") : NULL;
                const char *format = fmt ? conf_node_attr(fmt, "type") : NULL;

                if (!src)
                        break;
                if (!path || (format && !streq(format, "raw") && !streq(format, "qcow2")))
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s': an image of its chain is not a "
                                            "'raw' or 'qcow2' file or block device", k->name);
                r = layer_add(d, path, format, access);
        }
        if (r < 0 || !running)
                return r;
        if (!dev->alias)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Disk '%s' has no id in QEMU", k->name);
        if (!(d->alias = strdup(dev->alias)) || asprintf(&d->job_id, MERGE_JOB_PREFIX "%s", dev->alias) < 0 ||
            qemu_disk_node_prefix(dev->alias, depth, &d->top_prefix) < 0 ||
            qemu_disk_node_prefix(dev->alias, depth - 1, &d->base_prefix) < 0)
                return -ENOMEM;
        if (depth >= 2) {
                _cleanup_free_ char *prefix = NULL;

                if (qemu_disk_node_prefix(dev->alias, depth - 2, &prefix) < 0 || node_name(prefix, "format", &d->below_node) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int qemu_snapshot_merge(QemuDriver *q, const DomainDef *def, bool running, const SnapshotDef *snap,
                        const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuMergeJob *j;
        char uuid[37];
        int r = 0;

        domain_def_get_uuid_string(def, uuid);
        if (running && !qemu_driver_find_vm(q, uuid, reterr))
                return -ESRCH;
        r = qemu_snap_worker_start(q);
        if (r < 0)
                return r;
        j = new0(QemuMergeJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (QemuMergeJob) { .q = q, .running = running, .done = done, .userdata = userdata, .e = VB_ERROR_NULL,
                              .next = q->merge_jobs };
        q->merge_jobs = j;
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->name = strdup(snap->name);
        j->v = new0(MergeDisk, snap->n_disks + 1);
        if (!j->name || !j->v || snapshot_def_copy(snap, &j->snap) < 0)
                r = -ENOMEM;
        for (size_t i = 0; i < snap->n_disks && r >= 0; i++) {
                const SnapshotDiskDef *k = &snap->disks[i];
                const DeviceDef *dev;

                if (k->mode != SNAPSHOT_MODE_EXTERNAL || !k->source_file)
                        continue;
                dev = domain_def_find_disk(def, k->name);
                if (!dev) {
                        r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' of snapshot '%s' is no longer a disk "
                                         "of the domain: its overlay cannot be merged", k->name, snap->name);
                        break;
                }
                j->v[j->n] = (MergeDisk) { .top_fdset = -1, .base_fdset = -1, .base_ro_fd = -1 };
                r = disk_fill(&j->v[j->n++], dev, k, running, access, reterr);
        }
        if (r >= 0)
                r = worker_submit(q->snap_worker, work, on_opened, j);
        if (r < 0) {
                if (r == -EAGAIN)
                        r = vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many snapshot operations wait already");
                job_free(j);
                return r;
        }
        log_debug("Domain %s: merging the overlays of snapshot '%s' (%zu disk(s)).", j->uuid, j->name, j->n);
        return 0;
}

void qemu_snapshot_merge_close(QemuDriver *q) {
        for (QemuMergeJob *j = q->merge_jobs; j; j = j->next) {
                j->dropped = true;
                j->poll = sd_event_source_disable_unref(j->poll);
        }
}

/* After a restart of the service ---------------------------------------------------------------------- */

/* Merge jobs a stop of the service left in QEMU (ids "vb-merge-<alias>", none of ours now): each is
 * cancelled unless it concluded already, and dismissed. Once none is left, query-block tells which disks
 * pivoted onto the image below meanwhile (a job-complete sent before the stop); the live definition
 * follows QEMU, and core hears it as a device change (and the snapshots' metadata follow). A disk that
 * did not pivot stays on its overlay, and its snapshot stays as it was. */
static bool is_merge_job_id(const char *id) {
        return strncmp(id, MERGE_JOB_PREFIX, strlen(MERGE_JOB_PREFIX)) == 0;
}

typedef struct MergeOrphans {
        QemuDriver *q;
        char uuid[37];
} MergeOrphans;

static MergeOrphans *orphans_new(QemuDriver *q, const QemuVm *vm) {
        MergeOrphans *o = new0(MergeOrphans, 1);

        if (!o)
                return NULL;
        o->q = q;
        snprintf(o->uuid, sizeof o->uuid, "%s", vm->uuid);
        return o;
}

static bool job_is_ours(QemuDriver *q, const QemuVm *vm, const char *id) {
        for (QemuMergeJob *j = q->merge_jobs; j; j = j->next)
                if (streq(j->uuid, vm->uuid) && disk_of_job(j, id))
                        return true;
        return false;
}

static void on_settle_blocks(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        _cleanup_free_ MergeOrphans *o = userdata;
        const VbDriverEvents *ev = &o->q->drv->cfg.events;
        QemuVm *vm = hashmap_get(o->q->vms, o->uuid);
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        _cleanup_free_ char **changed = NULL;
        size_t n_changed = 0;

        if (!vm || !vm->live || error || domain_def_copy(vm->live, &copy) < 0 ||
            !(changed = new0(char *, copy->n_devices + 1)))
                return;
        for (size_t i = 0; i < copy->n_devices; i++) {
                DeviceDef *dev = copy->devices[i];
                _cleanup_free_ char *top = NULL, *prefix = NULL, *below = NULL;
                struct json_object *inserted;
                int depth;

                if (dev->kind != DEVICE_DISK || !dev->alias || (depth = qemu_disk_depth(dev)) < 1)
                        continue;
                inserted = qemu_json_get(qemu_block_of(ret, dev->alias), "inserted");
                if (!inserted || qemu_disk_top_node(dev, dev->alias, &top) < 0 ||
                    qemu_disk_node_prefix(dev->alias, (size_t) depth - 1, &prefix) < 0 ||
                    node_name(prefix, "format", &below) < 0)
                        continue;
                if (!streq_ptr(qemu_json_string(inserted, "node-name"), below))
                        continue;
                /* It runs on the image below: its overlay's nodes go, and so does the layer. */
                for (size_t s = 0; s < 2; s++) {
                        _cleanup_free_ char *over = NULL, *node = NULL;
                        struct json_object *args;

                        if (qemu_disk_node_prefix(dev->alias, (size_t) depth, &over) < 0 ||
                            node_name(over, s == 0 ? "format" : "storage", &node) < 0)
                                continue;
                        args = json_object_new_object();
                        json_object_object_add(args, "node-name", json_object_new_string(node));
                        (void) qemu_monitor_call(mon, "blockdev-del", args, NULL, NULL);
                }
                log_notice("Domain %s: disk '%s' was merged into the image below its overlay '%s' while the service "
                           "was stopped.", vm->uuid, strempty(device_disk_get_target(dev)),
                           strempty(device_disk_get_source(dev)));
                if (device_disk_pop_overlay(dev) >= 0)
                        changed[n_changed++] = dev->alias;
        }
        if (n_changed == 0)
                return;
        domain_def_free(vm->live);
        vm->live = TAKE_PTR(copy);
        if (qemu_vm_save(vm) < 0)
                log_warning("Domain %s: failed to write its live definition after settling a cut merge, ignoring.",
                            vm->uuid);
        for (size_t k = 0; k < n_changed && ev->device_changed; k++)
                ev->device_changed(ev->userdata, vm->uuid, changed[k], false);
}

static void orphans_settle(QemuDriver *q, QemuVm *vm) {
        MergeOrphans *o = orphans_new(q, vm);

        if (!o || !vm->mon || qemu_monitor_call(vm->mon, "query-block", NULL, on_settle_blocks, o) < 0) {
                free(o);
                log_warning("Domain %s: cannot ask QEMU which disks a cut merge changed.", vm->uuid);
        }
}

static void on_orphan_jobs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        _cleanup_free_ MergeOrphans *o = userdata;
        QemuVm *vm = hashmap_get(o->q->vms, o->uuid);
        size_t n = ret && json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
        bool any = false;

        if (!vm || error)
                return;
        for (size_t i = 0; i < n; i++) {
                struct json_object *job = json_object_array_get_idx(ret, i), *args;
                const char *id = qemu_json_string(job, "id"), *status = qemu_json_string(job, "status");
                bool concluded = streq_ptr(status, "concluded");

                if (!id || !is_merge_job_id(id) || job_is_ours(o->q, vm, id))
                        continue;
                any = true;
                log_info("Domain %s: merge job '%s' left by a stop of the service (%s): %s.", vm->uuid, id,
                         strempty(status), concluded ? "dismissed" : "cancelled");
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(id));
                if (qemu_monitor_call(mon, concluded ? "job-dismiss" : "job-cancel", args, NULL, NULL) >= 0 && !concluded)
                        vm->merge_orphans++;
        }
        if (any && vm->merge_orphans == 0)
                orphans_settle(o->q, vm);
}

/* The overlay of a disk whose merge a stop of the service cut short, after its pivot: removed once it is
 * known to be that overlay (an image over the disk's image now). */
typedef struct OverlayForget {
        char *path, *below;
        uint32_t uid;
} OverlayForget;

static void forget_work(void *userdata) {
        OverlayForget *f = userdata;
        _cleanup_free_ char *backing = NULL;
        StorageVolFormat format;
        const char *name;
        int dfd = -EBADF, fd = -EBADF, r;

        r = host_open_parent_as(f->uid, f->path, &dfd, &name);
        if (r >= 0) {
                fd = storage_open_beneath(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
                r = fd < 0 ? fd : storage_image_read_backing(fd, &backing, &format);
        }
        if (r == -ENOENT)
                log_debug("Overlay '%s' is gone already.", f->path);
        else if (r < 0)
                log_warning_errno(r, "Cannot open overlay '%s' left by a cut merge to remove it, ignoring: %m", f->path);
        else if (!streq_ptr(backing, f->below))
                log_warning("'%s' is no longer the overlay over '%s' that a cut merge left: left in place.", f->path,
                            f->below);
        else if ((r = host_unlinkat_if_same(dfd, name, fd)) < 0)
                log_warning_errno(r, "Failed to remove overlay '%s' left by a cut merge, ignoring: %m", f->path);
        else
                log_notice("Removed overlay '%s', merged into '%s' by a merge that a stop of the service cut short.",
                           f->path, f->below);
        if (fd >= 0)
                close(fd);
        if (dfd >= 0)
                close(dfd);
}

static void forget_done(void *userdata, bool cancelled) {
        OverlayForget *f = userdata;

        free(f->path);
        free(f->below);
        free(f);
}

void qemu_snapshot_overlay_forget(VbDriver *drv, const char *path, const char *below, const DomainAccess *access) {
        QemuDriver *q = drv->priv;
        OverlayForget *f;

        if (!path || !below || qemu_snap_worker_start(q) < 0 || !(f = new0(OverlayForget, 1)))
                return;
        f->path = strdup(path);
        f->below = strdup(below);
        f->uid = access ? domain_access_uid_for(access, path) : 0;
        if (!f->path || !f->below || worker_submit(q->snap_worker, forget_work, forget_done, f) < 0)
                forget_done(f, true);
}

void qemu_snapshot_merge_reconnected(QemuDriver *q, QemuVm *vm) {
        MergeOrphans *o = orphans_new(q, vm);

        vm->merge_orphans = 0;
        if (!o || !vm->mon || qemu_monitor_call(vm->mon, "query-jobs", NULL, on_orphan_jobs, o) < 0) {
                free(o);
                log_warning("Domain %s: cannot ask QEMU for merge jobs left by a stop of the service.", vm->uuid);
        }
}

/* A left job concluded (cancelled): dismissed; the last one settles the definition. */
static void orphan_concluded(QemuDriver *q, QemuVm *vm, const char *id) {
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "id", json_object_new_string(id));
        (void) qemu_monitor_call(vm->mon, "job-dismiss", args, NULL, NULL);
        if (vm->merge_orphans > 0 && --vm->merge_orphans == 0)
                orphans_settle(q, vm);
}

void qemu_snapshot_merge_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data) {
        const char *id = qemu_json_string(data, "id");

        for (QemuMergeJob *j = q->merge_jobs; j; j = j->next)
                if (j->running && !j->dropped && !j->ending && streq(j->uuid, vm->uuid) && disk_of_job(j, id)) {
                        poll_now(j);
                        return;
                }
        if (id && is_merge_job_id(id) && vm->mon && !job_is_ours(q, vm, id) &&
            streq_ptr(qemu_json_string(data, "status"), "concluded"))
                orphan_concluded(q, vm, id);
}
