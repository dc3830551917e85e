/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP command lists on the event loop (qemu-sequence.h). */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "drivers/qemu/qemu-sequence.h"
#include "util/log.h"

typedef struct QemuSeqStep {
        char *what, *command;
        struct json_object *args; /* until sent */
        int fd;
        bool optional;
        struct json_object *reply;
        char *undo_command; /* sent when a later step fails (or this one gets no answer in time) */
        struct json_object *undo_args;
} QemuSeqStep;

struct QemuSeq {
        QemuVm *vm;
        QemuSeqStep *steps;
        size_t n_steps, n_allocated;
        size_t next;       /* the step sent last is next - 1 */
        uint64_t call_id;  /* of the call waiting for its answer (0: none) */
        bool oom;
        sd_event_source *timer;
        uint64_t timeout_usec;
        QemuSeqDone done;
        void *userdata;
        QemuSeq *list_next; /* in vm->seqs */
};

QemuSeq *qemu_seq_new(QemuVm *vm) {
        QemuSeq *seq = new0(QemuSeq, 1);
        if (seq)
                seq->vm = vm;
        return seq;
}

static void unlink_seq(QemuSeq *seq) {
        if (!seq->vm)
                return;
        for (QemuSeq **i = &seq->vm->seqs; *i; i = &(*i)->list_next)
                if (*i == seq) {
                        *i = seq->list_next;
                        break;
                }
}

QemuSeq *qemu_seq_free(QemuSeq *seq) {
        if (!seq)
                return NULL;
        unlink_seq(seq);
        if (seq->call_id > 0 && seq->vm)
                qemu_monitor_cancel(seq->vm->mon, seq->call_id);
        sd_event_source_disable_unref(seq->timer);
        for (size_t i = 0; i < seq->n_steps; i++) {
                QemuSeqStep *s = &seq->steps[i];
                free(s->what);
                free(s->command);
                json_object_put(s->args);
                json_object_put(s->reply);
                free(s->undo_command);
                json_object_put(s->undo_args);
                if (s->fd >= 0)
                        close(s->fd);
        }
        free(seq->steps);
        free(seq);
        return NULL;
}

static size_t add_step(QemuSeq *seq, const char *what, const char *command, struct json_object *args, int fd,
                       bool optional) {
        QemuSeqStep *s;

        if (!GREEDY_REALLOC(seq->steps, seq->n_allocated, seq->n_steps + 1)) {
                seq->oom = true;
                json_object_put(args);
                return SIZE_MAX;
        }
        s = &seq->steps[seq->n_steps];
        *s = (QemuSeqStep) { .args = args, .fd = -1, .optional = optional };
        s->what = strdup(what ?: command);
        s->command = strdup(command);
        if (fd >= 0)
                s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (!s->what || !s->command || (fd >= 0 && s->fd < 0)) {
                seq->oom = true;
                free(s->what);
                free(s->command);
                json_object_put(args);
                if (s->fd >= 0)
                        close(s->fd);
                return SIZE_MAX;
        }
        return seq->n_steps++;
}

size_t qemu_seq_add(QemuSeq *seq, const char *what, const char *command, struct json_object *args) {
        return add_step(seq, what, command, args, -1, false);
}

size_t qemu_seq_add_fd(QemuSeq *seq, const char *what, const char *command, struct json_object *args, int fd) {
        return add_step(seq, what, command, args, fd, false);
}

size_t qemu_seq_add_optional(QemuSeq *seq, const char *command, struct json_object *args) {
        return add_step(seq, NULL, command, args, -1, true);
}

size_t qemu_seq_n_steps(const QemuSeq *seq) {
        return seq->n_steps;
}

struct json_object *qemu_seq_reply(const QemuSeq *seq, size_t i) {
        return i < seq->n_steps ? seq->steps[i].reply : NULL;
}

void qemu_seq_set_undo(QemuSeq *seq, size_t i, const char *command, struct json_object *args) {
        QemuSeqStep *s;

        if (i >= seq->n_steps) {
                json_object_put(args);
                return;
        }
        s = &seq->steps[i];
        free(s->undo_command);
        json_object_put(s->undo_args);
        s->undo_command = strdup(command);
        s->undo_args = args;
        if (!s->undo_command)
                seq->oom = true;
}

/* The list failed at step failed: what the steps before it did is undone, last first (and failed's own,
 * when it got no answer: QEMU may still carry it out, and would then carry out its undo after it). Sent
 * without waiting for the answers: QMP takes them in order. */
static void undo_steps(QemuSeq *seq, size_t failed, bool failed_too) {
        for (size_t i = failed + (failed_too ? 1 : 0); i-- > 0;) {
                QemuSeqStep *s = &seq->steps[i];
                int r;

                if (!s->undo_command || (s->optional && i != failed))
                        continue;
                log_debug("Domain %s: undoing %s: %s.", seq->vm->uuid, s->command, s->undo_command);
                r = qemu_monitor_call(seq->vm->mon, s->undo_command, TAKE_PTR(s->undo_args), NULL, NULL);
                if (r < 0)
                        log_warning_errno(r, "Domain %s: failed to send %s to undo %s, ignoring: %m", seq->vm->uuid,
                                          s->undo_command, s->command);
        }
}

/* Ends the list: done once, then the list is freed. */
static void finish(QemuSeq *seq, int r, const VbError *e) {
        QemuSeqDone done = seq->done;

        seq->done = NULL;
        unlink_seq(seq);
        seq->timer = sd_event_source_disable_unref(seq->timer);
        if (seq->call_id > 0 && seq->vm)
                qemu_monitor_cancel(seq->vm->mon, seq->call_id);
        seq->call_id = 0;
        seq->vm = NULL;
        if (done)
                done(seq, r, e, seq->userdata);
        qemu_seq_free(seq);
}

static void fail(QemuSeq *seq, VbErrorCode code, const char *format, ...) _printf_(3, 4);
static void fail(QemuSeq *seq, VbErrorCode code, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        VbError e = VB_ERROR_NULL;
        va_list ap;
        int r;

        /* Still connected (not qemu_seq_abort_all): what was done is undone. */
        if (seq->vm && seq->vm->mon && qemu_monitor_is_open(seq->vm->mon) && seq->next > 0)
                undo_steps(seq, seq->next - 1, code == VB_ERROR_TIMEOUT);
        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        r = vb_error_set(&e, code, "%s", msg ?: "QEMU failed");
        finish(seq, r, &e);
        vb_error_free(&e);
}

static int send_next(QemuSeq *seq);

static void on_reply(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuSeq *seq = userdata;
        QemuSeqStep *s = &seq->steps[seq->next - 1];
        int r;

        seq->call_id = 0;
        if (error && !s->optional) {
                if (!qemu_monitor_is_open(mon))
                        fail(seq, VB_ERROR_OPERATION_FAILED, "Failed to %s: QEMU closed its monitor (it exited?)",
                             s->what);
                else
                        fail(seq, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", s->what, error);
                return;
        }
        if (error)
                log_debug("Domain %s: %s failed, ignoring: %s", seq->vm->uuid, s->command, error);
        s->reply = ret ? json_object_get(ret) : NULL;
        r = send_next(seq);
        if (r < 0)
                fail(seq, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", seq->steps[seq->next - 1].what,
                     r == -ECONNRESET ? "no connection to QEMU" : strerror(-r));
}

/* Sends the next command, or finishes when none is left. */
static int send_next(QemuSeq *seq) {
        QemuSeqStep *s;
        int r;

        if (seq->next >= seq->n_steps) {
                finish(seq, 0, NULL);
                return 0;
        }
        s = &seq->steps[seq->next++];
        if (!seq->vm->mon)
                return -ECONNRESET;
        r = qemu_monitor_call_fd(seq->vm->mon, s->command, TAKE_PTR(s->args), s->fd, on_reply, seq, &seq->call_id);
        if (s->fd >= 0) {
                close(s->fd);
                s->fd = -1;
        }
        return r;
}

static int on_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        QemuSeq *seq = userdata;
        const char *what = seq->next > 0 ? seq->steps[seq->next - 1].what : "talk to QEMU";

        log_warning("Domain %s: QEMU did not answer '%s' within %" PRIu64 " ms.", seq->vm->uuid,
                    seq->next > 0 ? seq->steps[seq->next - 1].command : "", seq->timeout_usec / 1000);
        fail(seq, VB_ERROR_TIMEOUT, "Failed to %s: QEMU did not answer within %" PRIu64 " ms", what,
             seq->timeout_usec / 1000);
        return 0;
}

int qemu_seq_run(QemuSeq *seq, uint64_t timeout_usec, QemuSeqDone done, void *userdata, VbError *reterr) {
        _cleanup_(qemu_seq_freep) QemuSeq *s = seq;
        int r;

        if (s->oom)
                return -ENOMEM;
        assert(s->n_steps > 0);
        if (!s->vm->mon || !qemu_monitor_is_open(s->vm->mon))
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to %s: no connection to QEMU",
                                    s->n_steps > 0 ? s->steps[0].what : "talk to QEMU");
        r = sd_event_add_time_relative(s->vm->cfg.event, &s->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, s);
        if (r < 0)
                return r;
        s->timeout_usec = timeout_usec;
        s->done = done;
        s->userdata = userdata;
        r = send_next(s);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", s->steps[0].what,
                                    r == -ECONNRESET ? "no connection to QEMU" : strerror(-r));
        s->list_next = s->vm->seqs;
        s->vm->seqs = s;
        TAKE_PTR(s);
        return 0;
}

void qemu_seq_abort_all(QemuVm *vm, const char *why) {
        while (vm->seqs) {
                QemuSeq *seq = vm->seqs;
                const char *what = seq->next > 0 ? seq->steps[seq->next - 1].what : "talk to QEMU";

                vm->seqs = seq->list_next;
                if (seq->call_id > 0)
                        qemu_monitor_cancel(vm->mon, seq->call_id);
                seq->call_id = 0;
                seq->vm = NULL;
                fail(seq, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", what, why);
        }
}
