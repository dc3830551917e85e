/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "util/macro.h"

/* A QMP client on sd-event. On the event loop, everything is asynchronous: qemu_monitor_open_async
 * (connect, greeting, qmp_capabilities, bounded by a timeout) and qemu_monitor_call[_fd] (the reply to a
 * callback; qemu/qemu-sequence.h runs a list of commands with a bounded total time). The synchronous
 * forms (qemu_monitor_open, qemu_monitor_call_sync, bounded polls) are for threads that may block: the
 * capability probe in its worker thread, on its own short-lived QEMU. Nothing on the event loop uses them.
 * Events are dispatched from the event loop, in order, never from inside a synchronous call. */
typedef struct QemuMonitor QemuMonitor;

typedef struct QemuMonitorCallbacks {
        /* An asynchronous event ("STOP", "SHUTDOWN", ...) with its data (NULL if none). */
        void (*event)(QemuMonitor *mon, const char *name, struct json_object *data, void *userdata);
        /* The connection closed (QEMU exited or closed it); the monitor is unusable from now on. */
        void (*closed)(QemuMonitor *mon, void *userdata);
} QemuMonitorCallbacks;

/* ret: the "return" member (NULL on error); error: QMP's "desc" (NULL on success). */
typedef void (*QemuMonitorReplyFn)(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata);

/* Opening finished: r = 0, the monitor is ready; r < 0 (-ETIMEDOUT, -ECONNRESET: QEMU exited, -EIO: it
 * refused), error says so in a sentence, and the monitor is unusable (the caller frees it, also from
 * here). */
typedef void (*QemuMonitorOpenDone)(QemuMonitor *mon, int r, const char *error, void *userdata);

/* Connects to the monitor socket at path (QEMU inherited its listening end, so this does not wait) and
 * returns the monitor at once; done(userdata) follows from the event loop exactly once, unless the
 * monitor is freed first. watch_fd (a pidfd, or -1) ends the wait early when it becomes readable. */
int qemu_monitor_open_async(sd_event *event, const char *path, int watch_fd, uint64_t timeout_usec,
                            const QemuMonitorCallbacks *cb, void *userdata, QemuMonitorOpenDone done,
                            QemuMonitor **ret);
/* The same on a connected, non-blocking stream socket (taken, closed on failure). */
int qemu_monitor_open_fd_async(sd_event *event, int fd, const char *path, int watch_fd, uint64_t timeout_usec,
                               const QemuMonitorCallbacks *cb, void *userdata, QemuMonitorOpenDone done,
                               QemuMonitor **ret);

/* Connects to the monitor socket at path and waits (bounded) for it to be ready. watch_fd (a pidfd, or -1) ends the wait early when it
 * becomes readable (QEMU died). On failure *ret_error (may be NULL) describes it. */
int qemu_monitor_open(sd_event *event, const char *path, int watch_fd, uint64_t timeout_usec,
                      const QemuMonitorCallbacks *cb, void *userdata, QemuMonitor **ret, char **ret_error);
/* The same on a connected, non-blocking stream socket (taken, closed on failure); path only names it in
 * messages. */
int qemu_monitor_open_fd(sd_event *event, int fd, const char *path, int watch_fd, uint64_t timeout_usec,
                         const QemuMonitorCallbacks *cb, void *userdata, QemuMonitor **ret, char **ret_error);
QemuMonitor *qemu_monitor_free(QemuMonitor *mon);
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuMonitor *, qemu_monitor_free);

/* Sends command with args (taken, may be NULL); cb (may be NULL) gets the reply later, at the latest when
 * a synchronous call sent after it returns (QMP answers in order): commands can be pipelined that way. */
int qemu_monitor_call(QemuMonitor *mon, const char *command, struct json_object *args, QemuMonitorReplyFn cb,
                      void *userdata);
/* The same, passing fd along (SCM_RIGHTS; -1: none) for getfd / add-fd; *ret_id (may be NULL) names the
 * call for qemu_monitor_cancel. */
int qemu_monitor_call_fd(QemuMonitor *mon, const char *command, struct json_object *args, int fd,
                         QemuMonitorReplyFn cb, void *userdata, uint64_t *ret_id);
/* The reply to call id is no longer wanted (its waiter gave up): it is dropped when it comes. */
void qemu_monitor_cancel(QemuMonitor *mon, uint64_t id);
/* Sends command and waits up to timeout_usec for its reply. Returns 0 with *ret (may be NULL; the
 * "return" member, to json_object_put) on success; -EIO with *ret_error (QMP's description) when QEMU
 * refused; -ETIMEDOUT, -ECONNRESET. */
int qemu_monitor_call_sync(QemuMonitor *mon, const char *command, struct json_object *args,
                           uint64_t timeout_usec, struct json_object **ret, char **ret_error);

/* The socket connection is still up. */
bool qemu_monitor_is_open(const QemuMonitor *mon);

/* A number that changes whenever what QEMU reported may have changed by something other than time: on
 * every event QEMU sends, and on every command sent that is not a query ("query-*", "qom-get", "qom-list").
 * Values are unique across monitors (a new monitor never repeats another's), never 0. What a query
 * answered while the number stayed the same still holds (qemu-stats.c keeps such answers). */
uint64_t qemu_monitor_generation(const QemuMonitor *mon);
/* Whether QEMU sent something not dispatched yet (in the socket, or read and kept): an event may be among
 * it, and the generation is not final until it is dispatched. */
bool qemu_monitor_has_unread(const QemuMonitor *mon);

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put);

/* Small helpers on replies. */
const char *qemu_json_string(struct json_object *o, const char *key);
struct json_object *qemu_json_get(struct json_object *o, const char *key);
