/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* copy-storage, the source's part of Domain.MigrateTo: before the memory phase, each writable disk is
 * mirrored into the destination's NBD export of the same name.
 *  - the key the client brought goes into a directory only QEMU's user may read, handed over as a
 *    descriptor (add-fd, read as /proc/self/fd/N); a tls-creds-psk client object loads it at once, and
 *    the directory goes right after;
 *  - per disk: blockdev-add of an NBD node (TLS with those credentials) and blockdev-mirror (sync full)
 *    from the disk's top node into it (a backing chain arrives flattened: what the guest reads through
 *    it), the mirrors sharing the option 'bandwidth' when given; query-block-jobs every 100 ms gives the
 *    Progress until every mirror is READY (it then keeps the copy in step with the guest's writes);
 *  - the memory phase (qemu-migrate.c); when it ended, each mirror is cancelled, which after READY is a
 *    clean end without switching the guest to the copy (the source keeps its own disk), then the NBD
 *    nodes and the credentials go; MigrateTo is answered after that, so the destination's FinishMigration
 *    comes when nothing writes to its disks any more. On any failure the mirrors are cancelled at once.
 * The data goes from QEMU to QEMU; virtbusd only asks how far they are. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-nbd.h"
#include "drivers/qemu/qemu-sequence.h"
#include "util/log.h"

#define POLL_USEC (100U * 1000U)
/* How long the mirrors may take to end once cancelled (polls). */
#define END_POLLS 600U
#define TLS_OUT_ID "virtbus-mirror-tls"

typedef enum MirrorPhase {
        PHASE_SETUP,  /* credentials, nodes, jobs being made */
        PHASE_COPY,   /* jobs run until all are READY */
        PHASE_RAM,    /* the memory phase */
        PHASE_ENDING, /* jobs cancelled, waiting for them to go; then the nodes go */
} MirrorPhase;

typedef struct OutDisk {
        char *target, *node, *job; /* the disk, its top node, the job and NBD node's name */
        uint64_t offset, len;
} OutDisk;

struct QemuMirror {
        QemuDriver *q;
        char uuid[37];
        MirrorPhase phase;
        OutDisk *v;
        size_t n;
        int fd; /* the memory stream, for the memory phase */
        VbMigrateParams params;
        char *host, *port, *key, *psk_dir;
        int dir_fd;
        bool seq_running, gone, cancelled, jobs_made;
        unsigned end_polls;
        sd_event_source *timer;
        int r;
        VbError e;
        VbDriverMigrationStats stats;
        VbDriverOpDone done;
        void *userdata;
        QemuMirror *next;
};

static void mirror_free(QemuMirror *m) {
        QemuMirror **i;

        for (i = &m->q->mirrors; *i && *i != m; i = &(*i)->next)
                ;
        if (*i)
                *i = m->next;
        for (size_t k = 0; k < m->n; k++) {
                free(m->v[k].target);
                free(m->v[k].node);
                free(m->v[k].job);
        }
        free(m->v);
        if (m->fd >= 0)
                close(m->fd);
        if (m->dir_fd >= 0)
                close(m->dir_fd);
        if (m->psk_dir)
                qemu_nbd_psk_remove(m->psk_dir);
        free(m->psk_dir);
        free(m->host);
        free(m->port);
        if (m->key)
                explicit_bzero(m->key, strlen(m->key));
        free(m->key);
        sd_event_source_disable_unref(m->timer);
        vb_error_free(&m->e);
        free(m);
}

static void mirror_finish(QemuMirror *m) {
        VbDriverOpDone done = m->done;
        void *userdata = m->userdata;
        int r = m->r;
        VbError e = m->e;

        m->e = VB_ERROR_NULL;
        if (r < 0 && e.code == VB_ERROR_NONE)
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "The disks of domain %s were not copied: %s", m->uuid,
                             strerror(-r));
        log_debug("Domain %s: disk mirrors ended (%s).", m->uuid, r < 0 ? "failed" : "done");
        mirror_free(m);
        if (done)
                done(r, r < 0 ? &e : NULL, userdata);
        vb_error_free(&e);
}

static void mirror_fail(QemuMirror *m, int r, const char *format, ...) _printf_(3, 4);

static int arm_timer(QemuMirror *m, sd_event_time_handler_t handler) {
        int r;

        if (!m->timer)
                return sd_event_add_time_relative(m->q->drv->cfg.event, &m->timer, CLOCK_MONOTONIC, POLL_USEC, 0,
                                                  handler, m);
        r = sd_event_source_set_time_relative(m->timer, POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
        return r;
}

/* The end: cancel the jobs, wait for them to go, remove the NBD nodes ------------------------------------ */

static void on_nodes_removed(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMirror *m = userdata;

        m->seq_running = false;
        mirror_finish(m);
}

static void remove_nodes(QemuMirror *m) {
        QemuVm *vm = hashmap_get(m->q->vms, m->uuid);
        struct json_object *args;
        QemuSeq *seq;

        m->timer = sd_event_source_disable_unref(m->timer);
        if (m->gone || !vm || !vm->mon || vm->exited || !(seq = qemu_seq_new(vm))) {
                mirror_finish(m);
                return;
        }
        for (size_t k = 0; k < m->n; k++) {
                args = json_object_new_object();
                json_object_object_add(args, "node-name", json_object_new_string(m->v[k].job));
                qemu_seq_add_optional(seq, "blockdev-del", args);
        }
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(TLS_OUT_ID));
        qemu_seq_add_optional(seq, "object-del", args);
        m->seq_running = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_nodes_removed, m, NULL) >= 0;
        if (!m->seq_running)
                mirror_finish(m);
}

static int on_end_poll(sd_event_source *s, uint64_t usec, void *userdata);

/* Whether one of our jobs is still in query-block-jobs' answer. */
static bool jobs_left(QemuMirror *m, struct json_object *jobs) {
        size_t n = jobs && json_object_is_type(jobs, json_type_array) ? json_object_array_length(jobs) : 0;

        for (size_t i = 0; i < n; i++) {
                const char *id = qemu_json_string(json_object_array_get_idx(jobs, i), "device");

                for (size_t k = 0; k < m->n; k++)
                        if (streq_ptr(id, m->v[k].job))
                                return true;
        }
        return false;
}

static void on_end_jobs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuMirror *m = userdata;

        if (error || !jobs_left(m, ret) || ++m->end_polls >= END_POLLS) {
                if (!error && m->end_polls >= END_POLLS && m->r >= 0)
                        m->r = vb_error_set(&m->e, VB_ERROR_TIMEOUT, "The disk mirrors of domain %s did not end in "
                                            "time", m->uuid);
                remove_nodes(m);
                return;
        }
        if (arm_timer(m, on_end_poll) < 0)
                remove_nodes(m);
}

static int on_end_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMirror *m = userdata;
        QemuVm *vm = hashmap_get(m->q->vms, m->uuid);

        if (!vm || !vm->mon || qemu_monitor_call(vm->mon, "query-block-jobs", NULL, on_end_jobs, m) < 0)
                remove_nodes(m);
        return 0;
}

static void on_cancel_sent(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMirror *m = userdata;

        m->seq_running = false;
        if (m->gone) {
                mirror_finish(m);
                return;
        }
        if (arm_timer(m, on_end_poll) < 0)
                remove_nodes(m);
}

/* Ends the jobs (force: at once, the copy abandoned) and then the nodes; m->r says how it went. */
static void mirror_end(QemuMirror *m, bool force) {
        QemuVm *vm = hashmap_get(m->q->vms, m->uuid);
        QemuSeq *seq;

        m->phase = PHASE_ENDING;
        m->timer = sd_event_source_disable_unref(m->timer);
        if (m->gone || !vm || !vm->mon || vm->exited || !(seq = qemu_seq_new(vm))) {
                mirror_finish(m);
                return;
        }
        for (size_t k = 0; m->jobs_made && k < m->n; k++) {
                struct json_object *args = json_object_new_object();

                json_object_object_add(args, "device", json_object_new_string(m->v[k].job));
                json_object_object_add(args, "force", json_object_new_boolean(force));
                qemu_seq_add_optional(seq, "block-job-cancel", args);
        }
        m->seq_running = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_cancel_sent, m, NULL) >= 0;
        if (!m->seq_running)
                remove_nodes(m);
}

static void mirror_fail(QemuMirror *m, int r, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        m->r = r;
        vb_error_free(&m->e);
        vb_error_set(&m->e, VB_ERROR_OPERATION_FAILED, "%s", msg ?: "Out of memory");
        log_warning("Domain %s: %s", m->uuid, m->e.message);
        mirror_end(m, true);
}

/* The memory phase ---------------------------------------------------------------------------------------- */

static void disk_totals(const QemuMirror *m, uint64_t *done, uint64_t *total) {
        *done = *total = 0;
        for (size_t k = 0; k < m->n; k++) {
                *done += m->v[k].offset;
                *total += m->v[k].len;
        }
}

static void on_ram_stats(const VbMigrationStats *st, void *userdata) {
        QemuMirror *m = userdata;
        VbMigrationStats copy = *st;

        disk_totals(m, &copy.disk_transferred, &copy.disk_total);
        copy.disk_transferred = copy.disk_total; /* READY: in step */
        if (m->stats)
                m->stats(&copy, m->userdata);
}

static void on_ram_done(int r, const VbError *e, void *userdata) {
        QemuMirror *m = userdata;

        m->r = r;
        if (r < 0) {
                vb_error_free(&m->e);
                vb_error_set(&m->e, e ? e->code : VB_ERROR_OPERATION_FAILED, "%s",
                             e && e->message ? e->message : "The migration failed");
        }
        /* Sent: the guest is paused, the mirrors end cleanly (what is in flight arrives); failed: at once. */
        mirror_end(m, r < 0);
}

/* The copy --------------------------------------------------------------------------------------------------- */

static int on_copy_poll(sd_event_source *s, uint64_t usec, void *userdata);

static void on_copy_jobs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuMirror *m = userdata;
        size_t n = ret && json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
        VbError e = VB_ERROR_NULL;
        bool all_ready = true;
        int r;

        if (error) {
                mirror_fail(m, -EIO, "Failed to follow the copy of the disks: %s", error);
                return;
        }
        if (m->cancelled) {
                mirror_fail(m, -ECANCELED, "The migration of domain %s was aborted while its disks were copied",
                            m->uuid);
                return;
        }
        for (size_t k = 0; k < m->n; k++) {
                struct json_object *job = NULL;

                for (size_t i = 0; i < n && !job; i++)
                        if (streq_ptr(qemu_json_string(json_object_array_get_idx(ret, i), "device"), m->v[k].job))
                                job = json_object_array_get_idx(ret, i);
                if (!job) {
                        mirror_fail(m, -EIO, "The copy of disk '%s' to the destination stopped before it was complete "
                                    "(the destination refused the connection or went away)", m->v[k].target);
                        return;
                }
                m->v[k].offset = (uint64_t) json_object_get_int64(qemu_json_get(job, "offset"));
                m->v[k].len = (uint64_t) json_object_get_int64(qemu_json_get(job, "len"));
                if (!json_object_get_boolean(qemu_json_get(job, "ready")))
                        all_ready = false;
        }
        if (m->stats) {
                VbMigrationStats st = {};

                disk_totals(m, &st.disk_transferred, &st.disk_total);
                m->stats(&st, m->userdata);
        }
        if (!all_ready) {
                if (arm_timer(m, on_copy_poll) < 0)
                        mirror_fail(m, -ENOMEM, "Failed to follow the copy of the disks");
                return;
        }
        log_info("Domain %s: %zu disk(s) copied and in step; the memory follows.", m->uuid, m->n);
        m->phase = PHASE_RAM;
        r = qemu_migrate_ram_start(m->q, m->uuid, m->fd, &m->params, on_ram_stats, on_ram_done, m, &e);
        close(m->fd);
        m->fd = -1;
        if (r < 0) {
                m->r = r;
                vb_error_free(&m->e);
                m->e = e;
                mirror_end(m, true);
        }
}

static int on_copy_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMirror *m = userdata;
        QemuVm *vm = hashmap_get(m->q->vms, m->uuid);

        if (!vm || !vm->mon || qemu_monitor_call(vm->mon, "query-block-jobs", NULL, on_copy_jobs, m) < 0)
                mirror_fail(m, -ESRCH, "Domain %s went away while its disks were copied", m->uuid);
        return 0;
}

static void on_jobs_made(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMirror *m = userdata;

        m->seq_running = false;
        /* Loaded by now (a client's credentials read their key when made): the key's file goes. */
        if (m->psk_dir) {
                qemu_nbd_psk_remove(m->psk_dir);
                free(m->psk_dir);
                m->psk_dir = NULL;
        }
        if (m->gone) {
                mirror_finish(m);
                return;
        }
        if (r < 0) {
                m->r = r;
                vb_error_free(&m->e);
                vb_error_set(&m->e, e ? e->code : VB_ERROR_OPERATION_FAILED, "%s",
                             e && e->message ? e->message : "Failed to start copying the disks");
                m->jobs_made = true; /* those that were made go */
                remove_nodes(m);
                return;
        }
        m->jobs_made = true;
        m->phase = PHASE_COPY;
        if (arm_timer(m, on_copy_poll) < 0)
                mirror_fail(m, -ENOMEM, "Failed to follow the copy of the disks");
}

/* The bandwidth limit holds for the disks too: shared by the mirrors, bytes per second each (at least 1). */
static uint64_t mirror_speed(const QemuMirror *m) {
        uint64_t speed = m->params.bandwidth_mib * (UINT64_C(1) << 20) / (m->n ?: 1);

        return speed ?: 1;
}

static void on_dir_added(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuMirror *m = userdata;
        QemuVm *vm = hashmap_get(m->q->vms, m->uuid);
        struct json_object *reply = qemu_seq_reply(seq, 0), *args, *server;
        VbError e2 = VB_ERROR_NULL;
        char dir[64];
        QemuSeq *next = NULL;

        m->seq_running = false;
        if (m->gone) {
                mirror_finish(m);
                return;
        }
        if (r >= 0 && (!vm || !vm->mon || !(next = qemu_seq_new(vm))))
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Domain %s stopped", m->uuid);
        if (r < 0) {
                m->r = r;
                vb_error_set(&m->e, (e ?: &e2)->code, "%s", (e ?: &e2)->message ?: "Failed to hand over the key");
                vb_error_free(&e2);
                mirror_finish(m);
                return;
        }
        snprintf(dir, sizeof dir, "/proc/self/fd/%d", json_object_get_int(qemu_json_get(reply, "fd")));
        args = json_object_new_object();
        json_object_object_add(args, "qom-type", json_object_new_string("tls-creds-psk"));
        json_object_object_add(args, "id", json_object_new_string(TLS_OUT_ID));
        json_object_object_add(args, "endpoint", json_object_new_string("client"));
        json_object_object_add(args, "dir", json_object_new_string(dir));
        json_object_object_add(args, "username", json_object_new_string(QEMU_NBD_PSK_USER));
        qemu_seq_add(next, "load the key of the destination's disks", "object-add", args);
        args = json_object_new_object();
        json_object_object_add(args, "fdset-id", json_object_new_int(json_object_get_int(qemu_json_get(reply, "fdset-id"))));
        qemu_seq_add_optional(next, "remove-fd", args);
        for (size_t k = 0; k < m->n; k++) {
                args = json_object_new_object();
                server = json_object_new_object();
                json_object_object_add(server, "type", json_object_new_string("inet"));
                json_object_object_add(server, "host", json_object_new_string(m->host));
                json_object_object_add(server, "port", json_object_new_string(m->port));
                json_object_object_add(args, "driver", json_object_new_string("nbd"));
                json_object_object_add(args, "node-name", json_object_new_string(m->v[k].job));
                json_object_object_add(args, "server", server);
                json_object_object_add(args, "export", json_object_new_string(m->v[k].target));
                json_object_object_add(args, "tls-creds", json_object_new_string(TLS_OUT_ID));
                qemu_seq_add(next, "connect to the destination's disk", "blockdev-add", args);
                args = json_object_new_object();
                json_object_object_add(args, "job-id", json_object_new_string(m->v[k].job));
                json_object_object_add(args, "device", json_object_new_string(m->v[k].node));
                json_object_object_add(args, "target", json_object_new_string(m->v[k].job));
                json_object_object_add(args, "sync", json_object_new_string("full"));
                if (m->params.bandwidth_mib > 0)
                        json_object_object_add(args, "speed", json_object_new_int64((int64_t) mirror_speed(m)));
                qemu_seq_add(next, "start copying a disk", "blockdev-mirror", args);
        }
        m->seq_running = qemu_seq_run(next, qemu_vm_command_timeout(vm), on_jobs_made, m, &m->e) >= 0;
        if (!m->seq_running) {
                m->r = -EIO;
                mirror_finish(m);
        }
}

/* "tcp:HOST:PORT" or "tcp:[V6]:PORT" into host and port. */
static int split_uri(const char *uri, char **ret_host, char **ret_port) {
        const char *p = uri + 4, *colon;
        size_t n;

        if (strncmp(uri, "tcp:", 4) != 0 || !(colon = strrchr(p, ':')))
                return -EINVAL;
        n = (size_t) (colon - p);
        if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
                p++;
                n -= 2;
        }
        *ret_host = strndup(p, n);
        *ret_port = strdup(colon + 1);
        return *ret_host && *ret_port ? 0 : -ENOMEM;
}

int qemu_mirror_start(QemuDriver *q, QemuVm *vm, int fd, const VbMigrateParams *params, VbDriverMigrationStats stats,
                      VbDriverOpDone done, void *userdata, VbError *reterr) {
        struct json_object *args;
        QemuMirror *m;
        QemuSeq *seq;
        int r;

        if (!qemu_nbd_key_valid(params->nbd_key))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The disks' key must be the %u hex digits "
                                    "PrepareMigration gave", QEMU_NBD_KEY_HEX);
        m = new0(QemuMirror, 1);
        if (!m)
                return -ENOMEM;
        *m = (QemuMirror) { .q = q, .fd = -1, .dir_fd = -1, .params = *params, .stats = stats, .done = done,
                            .userdata = userdata, .e = VB_ERROR_NULL, .next = q->mirrors };
        q->mirrors = m;
        snprintf(m->uuid, sizeof m->uuid, "%s", vm->uuid);
        m->params.nbd_uri = m->params.nbd_key = NULL;
        r = split_uri(params->nbd_uri, &m->host, &m->port);
        if (r == -EINVAL)
                r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The disks' address '%s' is not tcp:ADDRESS:PORT",
                                 params->nbd_uri);
        if (r >= 0 && !(m->key = strdup(params->nbd_key)))
                r = -ENOMEM;
        m->v = new0(OutDisk, vm->live->n_devices + 1);
        if (r >= 0 && !m->v)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < vm->live->n_devices; i++) {
                const DeviceDef *dev = vm->live->devices[i];
                OutDisk *d = &m->v[m->n];

                if (dev->kind != DEVICE_DISK || !device_disk_is_writable_image(dev))
                        continue;
                r = qemu_nbd_disk_check(dev, true, reterr);
                if (r < 0)
                        break;
                m->n++;
                if (!dev->alias || !(d->target = strdup(device_disk_get_target(dev))) ||
                    qemu_disk_top_node(dev, dev->alias, &d->node) < 0 || asprintf(&d->job, "virtbus-mirror-%s", d->target) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0 && (m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
                r = -errno;
        if (r >= 0)
                r = qemu_nbd_psk_make(q, m->uuid, "out", m->key, &m->psk_dir, &m->dir_fd);
        if (r >= 0 && !(seq = qemu_seq_new(vm)))
                r = -ENOMEM;
        if (r < 0) {
                if (reterr && reterr->code == VB_ERROR_NONE)
                        vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to set up the copy of the disks: %s",
                                     strerror(-r));
                m->done = NULL;
                mirror_free(m);
                return r;
        }
        args = json_object_new_object();
        json_object_object_add(args, "opaque", json_object_new_string("virtbus-mirror-key"));
        qemu_seq_add_fd(seq, "hand the key to QEMU", "add-fd", args, m->dir_fd);
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_dir_added, m, reterr);
        if (r < 0) {
                m->done = NULL;
                mirror_free(m);
                return r;
        }
        m->seq_running = true;
        log_info("Domain %s: copying %zu disk(s) to %s before its memory.", m->uuid, m->n, params->nbd_uri);
        return 0;
}

bool qemu_mirror_cancel(QemuDriver *q, const char *uuid) {
        for (QemuMirror *m = q->mirrors; m; m = m->next)
                if (streq(m->uuid, uuid) && m->phase != PHASE_RAM) {
                        m->cancelled = true;
                        return true;
                }
        return false;
}

void qemu_mirrors_abort(QemuDriver *q, const char *uuid) {
        for (QemuMirror *m = q->mirrors, *next; m; m = next) {
                next = m->next;
                if (!streq(m->uuid, uuid) || m->phase == PHASE_RAM)
                        continue; /* the memory phase's end (qemu_saves_abort) ends it */
                m->gone = true;
                if (m->r >= 0) {
                        m->r = -ESRCH;
                        vb_error_free(&m->e);
                        vb_error_set(&m->e, VB_ERROR_OPERATION_FAILED, "The migration of domain %s failed: QEMU "
                                     "exited", uuid);
                }
                if (!m->seq_running)
                        mirror_finish(m);
        }
}

void qemu_mirrors_close(QemuDriver *q) {
        while (q->mirrors) {
                q->mirrors->done = NULL;
                mirror_free(q->mirrors);
        }
}
