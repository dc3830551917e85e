/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "drivers/qemu/qemu-process.h"
#include "util/error.h"

/* A list of QMP commands for one VM, sent one after another on its monitor without waiting on the event
 * loop: each command goes when the previous one was answered, the first failure stops the rest, and the
 * whole list has a bounded time. The outcome goes to a callback, exactly once, from the event loop (or
 * from qemu_vm_free when the VM goes away first). */
typedef struct QemuSeq QemuSeq;

/* r >= 0: every command was answered (the optional ones maybe with an error); r < 0 and e: the first that
 * failed ("Failed to <what>: <QEMU's sentence>", OperationFailed), none came in time (Timeout), or QEMU
 * went away (OperationFailed). The answers can be read here with qemu_seq_reply(); seq is freed after. */
typedef void (*QemuSeqDone)(QemuSeq *seq, int r, const VbError *e, void *userdata);

QemuSeq *qemu_seq_new(QemuVm *vm);
QemuSeq *qemu_seq_free(QemuSeq *seq);
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuSeq *, qemu_seq_free);

/* Adds a command (args taken, may be NULL); what names it in errors ("pause the virtual CPUs"). fd >= 0
 * goes along (SCM_RIGHTS) for getfd/add-fd; a copy is kept until it is sent. Returns the step's index
 * (for qemu_seq_reply); a failure here (no memory) is reported by qemu_seq_run. */
size_t qemu_seq_add(QemuSeq *seq, const char *what, const char *command, struct json_object *args);
size_t qemu_seq_add_fd(QemuSeq *seq, const char *what, const char *command, struct json_object *args, int fd);
/* A command whose failure does not stop the list (a query whose answer is welcome but not needed). */
size_t qemu_seq_add_optional(QemuSeq *seq, const char *command, struct json_object *args);
size_t qemu_seq_n_steps(const QemuSeq *seq);

/* The "return" member of step i's answer (NULL: none, or it failed). Valid until the seq is freed. */
struct json_object *qemu_seq_reply(const QemuSeq *seq, size_t i);

/* The command (args taken) that undoes step i: when a later step fails, or step i itself gets no answer
 * in time, the undos of the steps done go out, last first, without waiting for their answers (netdev_del
 * after netdev_add, remove-fd after add-fd...). Not when QEMU went away. */
void qemu_seq_set_undo(QemuSeq *seq, size_t i, const char *command, struct json_object *args);

/* Starts sending (takes seq). 0: done(userdata) follows; < 0 with reterr: nothing was sent, seq is freed
 * and done is not called. */
int qemu_seq_run(QemuSeq *seq, uint64_t timeout_usec, QemuSeqDone done, void *userdata, VbError *reterr);

/* The VM goes away (its monitor is freed): its running lists end with why (OperationFailed), now. */
void qemu_seq_abort_all(QemuVm *vm, const char *why);
