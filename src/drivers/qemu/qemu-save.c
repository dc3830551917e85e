/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A running QEMU's whole state to and from a descriptor (Domain.Save, ManagedSave, RestoreDomain):
 *  - save: the guest stopped, the bandwidth limit lifted, the descriptor handed over with getfd, then
 *    migrate to "fd:NAME"; QEMU writes in its migration thread, the event loop only asks query-migrate now
 *    and then (Progress from its RAM counters) until it says completed or failed;
 *  - restore: the domain is started with -incoming defer (paused), the descriptor handed over the same
 *    way, migrate-incoming from "fd:NAME", and query-migrate asked until the state is in.
 * QEMU's MIGRATION events (capability "events", set on both sides) make the next query-migrate go at once, so
 * an end is seen when it happens rather than at the next poll.
 * The descriptors are the caller's or the service's own files: QEMU never opens a path for this. */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/qemu/qemu-driver-internal.h"
#include "util/log.h"

#define SAVE_POLL_USEC (100U * 1000U)
#define SAVE_LATE_USEC (2U * 1000U)
#define SAVE_LATE_TRIES 10U
/* After a switch to postcopy, polls a migration may stay "cancelling" before the job ends anyway. */
#define SAVE_STUCK_TRIES 20U
#define SAVE_FD_NAME "virtbus-save"
#define LOAD_FD_NAME "virtbus-load"

struct QemuSaveJob {
        QemuDriver *q;
        char uuid[37];
        const char *what; /* "save", "restore" */
        sd_event_source *timer;
        bool querying; /* a query-migrate is on its way */
        bool kicked;   /* a MIGRATION event came meanwhile: ask again as soon as it answers */
        unsigned late; /* "completed" answers without figures yet (QEMU sets them just after the state) */
        VbDriverProgress progress;
        VbDriverMigrationStats stats; /* live migration (qemu-migrate.c) */
        VbDriverOpDone done;
        void *userdata;
        uint64_t postcopy_after; /* switch to postcopy after that many passes (0: only when asked) */
        bool postcopy_sent;
        bool postcopy; /* QEMU accepted the switch */
        unsigned stuck; /* polls seen "cancelling" after the switch */
        struct QemuSaveJob *next;
};

static void job_unlink(QemuSaveJob *j) {
        QemuSaveJob **i;

        for (i = &j->q->save_jobs; *i && *i != j; i = &(*i)->next)
                ;
        if (*i)
                *i = j->next;
}

static void job_free(QemuSaveJob *j) {
        job_unlink(j);
        sd_event_source_disable_unref(j->timer);
        free(j);
}

/* Ends the job and tells the caller: r < 0 with the sentence format says. */
static void job_finish(QemuSaveJob *j, int r, const char *format, ...) _printf_(3, 4);
static void job_finish(QemuSaveJob *j, int r, const char *format, ...) {
        VbDriverOpDone done = j->done;
        void *userdata = j->userdata;
        VbError e = VB_ERROR_NULL;
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (r < 0 && format) {
                va_start(ap, format);
                if (vasprintf(&msg, format, ap) < 0)
                        msg = NULL;
                va_end(ap);
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "%s", msg ?: "Out of memory");
        }
        log_debug("Domain %s: %s %s.", j->uuid, j->what, r < 0 ? "failed" : "done");
        job_free(j);
        done(r, r < 0 ? &e : NULL, userdata);
        vb_error_free(&e);
}

static int arm_timer(QemuSaveJob *j, uint64_t usec);

static QemuSaveJob *job_of(QemuDriver *q, const char *uuid, const char *what) {
        for (QemuSaveJob *j = q->save_jobs; j; j = j->next)
                if (streq(j->uuid, uuid) && streq(j->what, what))
                        return j;
        return NULL;
}

typedef struct PostcopyCall {
        QemuDriver *q;
        char uuid[37];
} PostcopyCall;

static void on_postcopy(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        PostcopyCall *c = userdata;
        QemuSaveJob *j = job_of(c->q, c->uuid, "send");

        if (error)
                log_warning("Domain %s: QEMU did not switch the migration to postcopy: %s", c->uuid, error);
        else if (j)
                j->postcopy = true;
        free(c);
}

static void switch_postcopy(QemuSaveJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        PostcopyCall *c;

        if (j->postcopy_sent || !vm || !vm->mon || !(c = new0(PostcopyCall, 1)))
                return;
        c->q = j->q;
        snprintf(c->uuid, sizeof c->uuid, "%s", j->uuid);
        j->postcopy_sent = true;
        log_info("Domain %s: the migration switches to postcopy.", j->uuid);
        if (qemu_monitor_call(vm->mon, "migrate-start-postcopy", NULL, on_postcopy, c) < 0)
                free(c);
}

static void on_resumed(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        if (error)
                log_warning("QEMU did not resume a guest whose migration ended in postcopy: %s", error);
}

/* A migration that switched to postcopy and then ended without completing (AbortMigration: migrate_cancel,
 * which QEMU accepts then) leaves the source's guest stopped ("postmigrate"), where before the switch QEMU
 * resumes it itself. The guest's memory here is whole (no release-ram) and the destination never ran it
 * (it stays paused until FinishMigration), so it goes on here. */
static void resume_after_postcopy(QemuSaveJob *j) {
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);

        if (!vm || !vm->mon)
                return;
        log_notice("Domain %s: the migration ended after its switch to postcopy; the guest resumes here.", j->uuid);
        (void) qemu_monitor_call(vm->mon, "cont", NULL, on_resumed, NULL);
}

void qemu_save_job_postcopy_after(QemuDriver *q, const char *uuid, uint64_t n) {
        QemuSaveJob *j = job_of(q, uuid, "send");

        if (j)
                j->postcopy_after = n;
}

bool qemu_save_job_postcopy_now(QemuDriver *q, const char *uuid) {
        QemuSaveJob *j = job_of(q, uuid, "send");

        if (!j)
                return false;
        switch_postcopy(j);
        return true;
}

static uint64_t json_u64(struct json_object *o, const char *key) {
        int64_t v = json_object_get_int64(qemu_json_get(o, key));

        return v > 0 ? (uint64_t) v : 0;
}

/* What query-migrate says, for a live migration's MigrationStats: postcopy once QEMU is in it (while it
 * runs), or when it was switched (at the end). */
static void report_stats(QemuSaveJob *j, struct json_object *ret, bool completed) {
        struct json_object *ram = qemu_json_get(ret, "ram");
        bool postcopy = j->postcopy && (completed || streq_ptr(qemu_json_string(ret, "status"), "postcopy-active"));
        VbMigrationStats st = {
                .total_time_ms = json_u64(ret, "total-time"),
                .downtime_ms = json_u64(ret, "downtime"),
                .setup_time_ms = json_u64(ret, "setup-time"),
                .completed = completed,
                .postcopy = postcopy,
        };

        if (!j->stats)
                return;
        if (ram)
                st = (VbMigrationStats) { .total_time_ms = st.total_time_ms, .downtime_ms = st.downtime_ms,
                                          .setup_time_ms = st.setup_time_ms, .completed = completed,
                                          .postcopy = postcopy,
                                          .transferred = json_u64(ram, "transferred"),
                                          .remaining = json_u64(ram, "remaining"), .total = json_u64(ram, "total"),
                                          .dirty_rate = json_u64(ram, "dirty-pages-rate"),
                                          .iterations = json_u64(ram, "dirty-sync-count"),
                                          .mbps = (uint64_t) json_object_get_double(qemu_json_get(ram, "mbps")) };
        j->stats(&st, j->userdata);
}

static void resume_after_postcopy(QemuSaveJob *j);

static void on_query_migrate(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSaveJob *j = userdata;
        const char *status = qemu_json_string(ret, "status");
        struct json_object *ram = qemu_json_get(ret, "ram");

        j->querying = false;
        if (error) {
                job_finish(j, -EIO, "Failed to follow the %s of domain %s: %s", j->what, j->uuid, error);
                return;
        }
        if (streq_ptr(status, "completed")) {
                /* QEMU switches to "completed" a moment before it works out total-time and downtime: a live
                 * migration asks again (a few ms) for the figures it reports. */
                if (j->stats && json_u64(ret, "total-time") == 0 && j->late++ < SAVE_LATE_TRIES) {
                        if (arm_timer(j, SAVE_LATE_USEC) >= 0)
                                return;
                }
                report_stats(j, ret, true);
                job_finish(j, 0, NULL);
                return;
        }
        if (streq_ptr(status, "failed") || streq_ptr(status, "cancelled")) {
                if (j->postcopy_sent)
                        resume_after_postcopy(j);
                job_finish(j, -EIO, "QEMU failed to %s the state of domain %s: %s", j->what, j->uuid,
                           qemu_json_string(ret, "error-desc") ?: status);
                return;
        }
        /* After the switch, a stream that broke (or a migrate_cancel racing QEMU's own error path) leaves
         * QEMU 7.2 waiting for a postcopy recovery we do not offer: "postcopy-paused", or "cancelling" for
         * good, its migration thread parked. The guest's memory here is whole and the destination never ran
         * it: the job ends and the guest goes on here (QEMU keeps the parked migration until it ends). */
        if (j->postcopy_sent && (streq_ptr(status, "postcopy-paused") ||
                                 (streq_ptr(status, "cancelling") && ++j->stuck >= SAVE_STUCK_TRIES))) {
                resume_after_postcopy(j);
                job_finish(j, -EIO, "QEMU failed to %s the state of domain %s: the migration stopped after its "
                           "switch to postcopy (%s)", j->what, j->uuid, status);
                return;
        }
        if (ram && j->postcopy_after && streq_ptr(status, "active") &&
            json_u64(ram, "dirty-sync-count") >= j->postcopy_after)
                switch_postcopy(j);
        if (ram && j->progress)
                j->progress((uint64_t) json_object_get_int64(qemu_json_get(ram, "transferred")),
                            (uint64_t) json_object_get_int64(qemu_json_get(ram, "total")), j->userdata);
        report_stats(j, ret, false);
        if (arm_timer(j, j->kicked ? 0 : SAVE_POLL_USEC) < 0)
                job_finish(j, -ENOMEM, "Failed to follow the %s of domain %s", j->what, j->uuid);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuSaveJob *j = userdata;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        int r;

        j->kicked = false;
        r = vm && vm->mon ? qemu_monitor_call(vm->mon, "query-migrate", NULL, on_query_migrate, j) : -ESRCH;
        if (r >= 0)
                j->querying = true;
        else
                job_finish(j, r, "Failed to follow the %s of domain %s: %s", j->what, j->uuid, strerror(-r));
        return 0;
}

static int arm_timer(QemuSaveJob *j, uint64_t usec) {
        int r;

        if (!j->timer)
                /* Accuracy 1 us: sd-event's default (0) lets a timer fire up to 250 ms late. */
                return sd_event_add_time_relative(j->q->drv->cfg.event, &j->timer, CLOCK_MONOTONIC, usec, 1, on_timer, j);
        r = sd_event_source_set_time_relative(j->timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->timer, SD_EVENT_ONESHOT);
        return r;
}

static void on_migrate(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSaveJob *j = userdata;

        if (error) {
                job_finish(j, -EIO, "QEMU refused to %s the state of domain %s: %s", j->what, j->uuid, error);
                return;
        }
        if (arm_timer(j, j->kicked ? 0 : SAVE_POLL_USEC) < 0)
                job_finish(j, -ENOMEM, "Failed to follow the %s of domain %s", j->what, j->uuid);
}

int qemu_save_job_start(QemuDriver *q, const char *uuid, const char *what, int fd, const char *name,
                        const char *command, VbDriverProgress progress, VbDriverMigrationStats stats,
                        VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        struct json_object *args;
        char uri[64];
        QemuSaveJob *j;
        int r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        for (j = q->save_jobs; j; j = j->next)
                if (streq(j->uuid, uuid))
                        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain %s is being saved, restored or "
                                            "migrated already", uuid);
        j = new0(QemuSaveJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (QemuSaveJob) { .q = q, .what = what, .progress = progress, .stats = stats, .done = done,
                             .userdata = userdata };
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        /* Events on: MIGRATION tells each change of state (qemu_save_job_event). No answer needed. */
        args = json_object_new_object();
        {
                struct json_object *caps = json_object_new_array(), *cap = json_object_new_object();

                json_object_object_add(cap, "capability", json_object_new_string("events"));
                json_object_object_add(cap, "state", json_object_new_boolean(true));
                json_object_array_add(caps, cap);
                json_object_object_add(args, "capabilities", caps);
        }
        (void) qemu_monitor_call(vm->mon, "migrate-set-capabilities", args, NULL, NULL);
        args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(name));
        /* No answer needed: when it fails, so does the command behind it, saying why. */
        r = qemu_monitor_call_fd(vm->mon, "getfd", args, fd, NULL, NULL, NULL);
        if (r >= 0) {
                snprintf(uri, sizeof uri, "fd:%s", name);
                args = json_object_new_object();
                json_object_object_add(args, "uri", json_object_new_string(uri));
                r = qemu_monitor_call(vm->mon, command, args, on_migrate, j);
        }
        if (r < 0) {
                free(j);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to ask QEMU to %s domain %s: %s", what,
                                    uuid, strerror(-r));
        }
        j->next = q->save_jobs;
        q->save_jobs = j;
        return 0;
}

int qemu_save_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        struct json_object *args;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        /* The guest stops first: what is written is one moment, written once. No limit on the speed (QEMU's
         * default is for live migration over a network). Pipelined ahead of the migration itself. */
        (void) qemu_monitor_call(vm->mon, "stop", NULL, NULL, NULL);
        args = json_object_new_object();
        json_object_object_add(args, "max-bandwidth", json_object_new_int64(INT64_MAX / 2));
        (void) qemu_monitor_call(vm->mon, "migrate-set-parameters", args, NULL, NULL);
        return qemu_save_job_start(q, uuid, "save", fd, SAVE_FD_NAME, "migrate", progress, NULL, done, userdata,
                                   reterr);
}

int qemu_load_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr) {
        return qemu_save_job_start(drv->priv, uuid, "restore", fd, LOAD_FD_NAME, "migrate-incoming", progress, NULL,
                                   done, userdata, reterr);
}

int qemu_expect_incoming(VbDriver *drv, const char *uuid, bool expect, VbError *reterr) {
        QemuDriver *q = drv->priv;
        char **grown;

        (void) qemu_save_take_incoming(q, uuid); /* asked twice: one mark */
        if (!expect)
                return 0;
        grown = reallocarray(q->incoming, q->n_incoming + 1, sizeof *grown);
        if (!grown)
                return -ENOMEM;
        q->incoming = grown;
        q->incoming[q->n_incoming] = strdup(uuid);
        if (!q->incoming[q->n_incoming])
                return -ENOMEM;
        q->n_incoming++;
        return 0;
}

bool qemu_save_take_incoming(QemuDriver *q, const char *uuid) {
        for (size_t i = 0; i < q->n_incoming; i++)
                if (streq(q->incoming[i], uuid)) {
                        free(q->incoming[i]);
                        q->incoming[i] = q->incoming[--q->n_incoming];
                        return true;
                }
        return false;
}

void qemu_save_job_event(QemuDriver *q, QemuVm *vm, struct json_object *data) {
        for (QemuSaveJob *j = q->save_jobs; j; j = j->next) {
                if (!streq(j->uuid, vm->uuid))
                        continue;
                log_debug("Domain %s: migration status %s.", vm->uuid, strna(qemu_json_string(data, "status")));
                /* Before migrate has answered, or while a query is out, the next query goes at once. */
                if (j->querying || !j->timer)
                        j->kicked = true;
                else if (arm_timer(j, 0) < 0)
                        log_warning("Domain %s: failed to follow a migration event; the next poll sees it.", vm->uuid);
                return;
        }
}

void qemu_saves_abort(QemuDriver *q, const char *uuid) {
        for (QemuSaveJob *j = q->save_jobs, *next; j; j = next) {
                next = j->next;
                if (streq(j->uuid, uuid))
                        job_finish(j, -ESRCH, "The %s of domain %s was not done: QEMU exited", j->what, uuid);
        }
}

void qemu_saves_close(QemuDriver *q) {
        while (q->save_jobs)
                job_free(q->save_jobs);
        for (size_t i = 0; i < q->n_incoming; i++)
                free(q->incoming[i]);
        free(q->incoming);
        q->incoming = NULL;
        q->n_incoming = 0;
}
