/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QMP over a unix socket. QEMU writes one JSON object per line; we send each command as a bare object
 * ({"execute":"query-blockstats"}), with no "id" and no line end: QEMU 7.2 reads its monitor one byte per
 * turn of its monitor thread's loop (seven system calls a byte, some 12 us of its CPU here), and QEMU's
 * JSON parser takes an object as complete at its closing brace. Without the out-of-band capability (never
 * negotiated here) QEMU answers commands one at a time in the order they came, so the replies are
 * matched to the calls in order: every reply belongs to the oldest call not yet answered. */
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "drivers/qemu/qemu-monitor.h"
#include "util/log.h"

/* A command sent and not answered yet, in the order sent. id is ours only (qemu_monitor_cancel, the
 * synchronous wait), never sent. */
typedef struct PendingCall {
        uint64_t id;
        QemuMonitorReplyFn cb;
        void *userdata;
        struct PendingCall *next;
} PendingCall;

/* Messages read during a synchronous call, dispatched later from the loop. */
typedef struct Backlog {
        struct json_object *msg;
        struct Backlog *next;
} Backlog;

struct QemuMonitor {
        int fd;
        sd_event *event;
        sd_event_source *io, *defer;
        QemuMonitorCallbacks cb;
        void *userdata;
        char *rbuf;
        size_t rlen, ralloc;
        uint64_t next_id;
        PendingCall *pending, **pending_tail; /* oldest first */
        struct json_tokener *deep; /* for answers nested deeper than json-c's default (NULL until one) */
        Backlog *backlog, **backlog_tail;
        bool closed, closed_reported;
        uint64_t generation; /* qemu_monitor_generation() */
        unsigned dispatching; /* > 0 while callbacks run: frees are deferred */
        bool free_requested;
        /* Opening without waiting (qemu_monitor_open_async): the greeting, then qmp_capabilities' reply. */
        enum { OPEN_DONE, OPEN_GREETING, OPEN_CAPABILITIES } opening;
        sd_event_source *open_timer, *open_watch;
        int open_watch_fd; /* our copy of the watched descriptor (epoll takes each descriptor once) */
        char *path;
        QemuMonitorOpenDone open_done;
};

static int safe_close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

const char *qemu_json_string(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

struct json_object *qemu_json_get(struct json_object *o, const char *key) {
        struct json_object *v;
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

bool qemu_monitor_is_open(const QemuMonitor *mon) {
        return mon && !mon->closed;
}

/* Shared by all monitors, so that a generation is never seen on two (the probe's threads move it too). */
static uint64_t last_generation;

static void bump_generation(QemuMonitor *mon) {
        mon->generation = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
}

uint64_t qemu_monitor_generation(const QemuMonitor *mon) {
        return mon ? mon->generation : 0;
}

bool qemu_monitor_has_unread(const QemuMonitor *mon) {
        int n = 0;

        if (!mon || mon->closed || mon->rlen > 0 || mon->backlog)
                return true;
        return ioctl(mon->fd, FIONREAD, &n) < 0 || n > 0;
}

/* Commands that only read: they leave what QEMU reports as it was. */
static bool command_reads_only(const char *command) {
        return strncmp(command, "query-", 6) == 0 || streq(command, "qom-get") || streq(command, "qom-list");
}

/* Sends the first bytes with fd attached (SCM_RIGHTS), as QMP's getfd wants. */
static int send_with_fd(QemuMonitor *mon, const char *s, size_t n, int fd) {
        char control[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = (void *) s, .iov_len = n };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        ssize_t w;

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        do
                w = sendmsg(mon->fd, &msg, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        return w < 0 ? -errno : (int) w;
}

static int write_all(QemuMonitor *mon, const char *s, size_t n) {
        while (n > 0) {
                ssize_t w = send(mon->fd, s, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = mon->fd, .events = POLLOUT };
                                if (poll(&p, 1, 1000) <= 0)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        return -errno;
                }
                s += w;
                n -= (size_t) w;
        }
        return 0;
}

/* Appends a call to the queue of those waiting for their reply; NULL when out of memory. */
static PendingCall *pending_add(QemuMonitor *mon, QemuMonitorReplyFn cb, void *userdata) {
        PendingCall *p = new0(PendingCall, 1);

        if (!p)
                return NULL;
        *p = (PendingCall) { .id = ++mon->next_id, .cb = cb, .userdata = userdata };
        *mon->pending_tail = p;
        mon->pending_tail = &p->next;
        return p;
}

/* Takes the oldest call out of the queue (the one the next reply answers); NULL if none. */
static PendingCall *pending_pop(QemuMonitor *mon) {
        PendingCall *p = mon->pending;

        if (!p)
                return NULL;
        mon->pending = p->next;
        if (!mon->pending)
                mon->pending_tail = &mon->pending;
        return p;
}

/* Takes the newest call back out of the queue (its command could not be sent). */
static void pending_drop_last(QemuMonitor *mon, PendingCall *last) {
        for (PendingCall **i = &mon->pending; *i; i = &(*i)->next)
                if (*i == last && !last->next) {
                        *i = NULL;
                        mon->pending_tail = i;
                        free(last);
                        return;
                }
}

/* Sends {"execute":command,"arguments":args} (args taken, may be NULL), the call being queued already. */
static int send_command(QemuMonitor *mon, const char *command, struct json_object *args, int fd) {
        _cleanup_(json_object_putp) struct json_object *o = json_object_new_object();
        const char *line;
        size_t n;
        int r;

        if (!o) {
                json_object_put(args);
                return -ENOMEM;
        }
        json_object_object_add(o, "execute", json_object_new_string(command));
        if (args)
                json_object_object_add(o, "arguments", args);
        /* Every byte costs QEMU a turn of its loop: no spaces, no escaped slashes (QOM paths). */
        line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!line)
                return -ENOMEM;
        n = strlen(line);
        if (!command_reads_only(command))
                bump_generation(mon);
        log_debug("QMP> %s", line);
        if (fd >= 0) {
                r = send_with_fd(mon, line, n, fd);
                if (r >= 0)
                        r = write_all(mon, line + r, n - (size_t) r);
        } else
                r = write_all(mon, line, n);
        if (r < 0)
                mon->closed = true;
        return r;
}

/* QEMU's longest lines (query-qmp-schema's answer, ~200 KiB in 7.2) are far below this: a longer one is
 * not QMP, and would otherwise grow the buffer without end. */
#define QMP_LINE_MAX (64U * 1024U * 1024U)
/* Read at most this much at a time, so that complete lines are taken out of the buffer in between (what
 * is left is a line not yet complete), and so that a QEMU flooding its monitor with events is dispatched
 * in slices (a few hundred events), taking turns with everything else on the event loop. */
#define QMP_READ_MAX (64U * 1024U)

/* Reads what is available; returns 0 (maybe nothing), or -ECONNRESET at EOF/error. */
static int fill(QemuMonitor *mon) {
        size_t start = mon->rlen;

        if (mon->rlen >= QMP_LINE_MAX) {
                log_debug("QEMU sent a line of more than %u bytes on its monitor, closing it.", QMP_LINE_MAX);
                mon->closed = true;
                return -ECONNRESET;
        }
        while (mon->rlen - start < QMP_READ_MAX) {
                size_t room, budget = QMP_READ_MAX - (mon->rlen - start);
                ssize_t n;

                if (!GREEDY_REALLOC(mon->rbuf, mon->ralloc, mon->rlen + 4096 + 1))
                        return -ENOMEM;
                room = mon->ralloc - mon->rlen - 1;
                n = recv(mon->fd, mon->rbuf + mon->rlen, room < budget ? room : budget, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        mon->closed = true;
                        return -ECONNRESET;
                }
                if (n == 0) {
                        mon->closed = true;
                        return -ECONNRESET;
                }
                mon->rlen += (size_t) n;
                mon->rbuf[mon->rlen] = 0;
        }
        return 0;
}

/* json-c's default depth is 32: an answer of query-block for a disk with a long backing chain nests
 * deeper (one level per image). QEMU's own parser takes up to 1024. */
#define QMP_DEPTH_MAX 1024

/* One line from QEMU as a JSON object; NULL for a line that is none and answers nothing. */
static struct json_object *parse_line(QemuMonitor *mon, const char *line) {
        enum json_tokener_error e = json_tokener_success;
        struct json_object *o = json_tokener_parse_verbose(line, &e), *reply, *error;

        if (!o && e == json_tokener_error_depth && (mon->deep || (mon->deep = json_tokener_new_ex(QMP_DEPTH_MAX)))) {
                json_tokener_reset(mon->deep);
                o = json_tokener_parse_ex(mon->deep, line, -1);
                if (json_tokener_get_error(mon->deep) != json_tokener_success) {
                        json_object_put(o);
                        o = NULL;
                }
        }
        if (o && json_object_is_type(o, json_type_object))
                return o;
        json_object_put(o);
        /* The answer to a command sent without "id" is an object with one member, "return" or "error": one
         * that json-c cannot read still answers the oldest call, as a refusal, so that the calls after it
         * keep their own answers. Anything else (an event) is dropped. */
        if (strncmp(line, "{\"return\"", 9) != 0 && strncmp(line, "{\"error\"", 8) != 0)
                return NULL;
        reply = json_object_new_object();
        error = json_object_new_object();
        if (!reply || !error) {
                json_object_put(reply);
                json_object_put(error);
                return NULL;
        }
        json_object_object_add(error, "desc", json_object_new_string("QEMU's answer could not be read as JSON"));
        json_object_object_add(reply, "error", error);
        return reply;
}

/* Takes the next complete line out of the buffer as a JSON object; NULL if none. */
static struct json_object *next_message(QemuMonitor *mon) {
        for (;;) {
                char *nl;
                struct json_object *o;

                if (!mon->rbuf || mon->rlen == 0)
                        return NULL;
                nl = memchr(mon->rbuf, '\n', mon->rlen);
                if (!nl)
                        return NULL;
                *nl = 0;
                log_debug("QMP< %s", mon->rbuf);
                o = parse_line(mon, mon->rbuf);
                memmove(mon->rbuf, nl + 1, mon->rlen - (size_t) (nl + 1 - mon->rbuf));
                mon->rlen -= (size_t) (nl + 1 - mon->rbuf);
                mon->rbuf[mon->rlen] = 0;
                if (o)
                        return o;
        }
}

static bool is_reply(struct json_object *msg) {
        return qemu_json_get(msg, "return") || qemu_json_get(msg, "error");
}

static const char *message_error(struct json_object *msg) {
        struct json_object *e = qemu_json_get(msg, "error");
        if (!e)
                return NULL;
        return qemu_json_string(e, "desc") ?: "QEMU reported an error";
}

static void open_finish(QemuMonitor *mon, int r, const char *format, ...) _printf_(3, 4);

static void on_capabilities(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        if (error)
                open_finish(mon, -EIO, "QEMU refused QMP capabilities negotiation: %s", error);
        else
                open_finish(mon, 0, NULL);
}

/* The greeting while opening: qmp_capabilities follows, answered through the queue (on_capabilities). */
static void dispatch_greeting(QemuMonitor *mon, struct json_object *msg) {
        PendingCall *p;

        if (!qemu_json_get(msg, "QMP"))
                return;
        p = pending_add(mon, on_capabilities, NULL);
        if (!p)
                return open_finish(mon, -ENOMEM, "QMP capabilities negotiation on '%s' failed: %s", mon->path,
                                   strerror(ENOMEM));
        if (send_command(mon, "qmp_capabilities", NULL, -1) < 0) {
                pending_drop_last(mon, p);
                open_finish(mon, -ECONNRESET, "QMP capabilities negotiation on '%s' failed: %s", mon->path,
                            "the connection closed");
        } else
                mon->opening = OPEN_CAPABILITIES;
}

/* A reply: the answer to the oldest call (QEMU answers in order). */
static void dispatch_reply(QemuMonitor *mon, struct json_object *msg) {
        PendingCall *p = pending_pop(mon);

        if (!p) {
                log_debug("QEMU answered a command that was not sent, ignoring.");
                return;
        }
        if (p->cb)
                p->cb(mon, qemu_json_get(msg, "return"), message_error(msg), p->userdata);
        free(p);
}

static void dispatch(QemuMonitor *mon, struct json_object *msg) {
        const char *event = qemu_json_string(msg, "event");

        if (mon->opening == OPEN_GREETING)
                return dispatch_greeting(mon, msg);
        if (event) {
                /* Events while qmp_capabilities is on its way are not ours to report yet. */
                if (mon->opening != OPEN_DONE)
                        return;
                bump_generation(mon);
                if (mon->cb.event)
                        mon->cb.event(mon, event, qemu_json_get(msg, "data"), mon->userdata);
                return;
        }
        if (is_reply(msg))
                dispatch_reply(mon, msg);
}

static void fail_pending(QemuMonitor *mon) {
        PendingCall *p;

        while ((p = pending_pop(mon))) {
                if (p->cb)
                        p->cb(mon, NULL, "The QEMU monitor connection closed", p->userdata);
                free(p);
        }
}

static void report_closed(QemuMonitor *mon) {
        if (mon->closed_reported)
                return;
        mon->closed_reported = true;
        mon->io = sd_event_source_disable_unref(mon->io);
        fail_pending(mon);
        if (mon->cb.closed)
                mon->cb.closed(mon, mon->userdata);
}

static struct json_object *backlog_pop(QemuMonitor *mon) {
        Backlog *b = mon->backlog;
        struct json_object *msg;

        if (!b)
                return NULL;
        mon->backlog = b->next;
        if (!mon->backlog)
                mon->backlog_tail = &mon->backlog;
        msg = b->msg;
        free(b);
        return msg;
}

/* Dispatches in arrival order: what a synchronous call (maybe made from a callback) put aside comes
 * before what is still in the buffer. */
static void process(QemuMonitor *mon) {
        struct json_object *msg;

        mon->dispatching++;
        while (!mon->free_requested && ((msg = backlog_pop(mon)) || (msg = next_message(mon)))) {
                dispatch(mon, msg);
                json_object_put(msg);
        }
        if (mon->closed && !mon->free_requested && mon->opening != OPEN_DONE)
                open_finish(mon, -ECONNRESET, "QEMU did not greet on its monitor '%s': it exited", mon->path);
        if (mon->closed && !mon->free_requested)
                report_closed(mon);
        mon->dispatching--;
        if (mon->free_requested && mon->dispatching == 0) {
                mon->free_requested = false;
                qemu_monitor_free(mon);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuMonitor *mon = userdata;

        (void) fill(mon);
        process(mon);
        return 0;
}

static int on_defer(sd_event_source *s, void *userdata) {
        QemuMonitor *mon = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        process(mon);
        return 0;
}

static int backlog_add(QemuMonitor *mon, struct json_object *msg) {
        Backlog *b = new0(Backlog, 1);
        if (!b) {
                json_object_put(msg);
                return -ENOMEM;
        }
        b->msg = msg;
        *mon->backlog_tail = b;
        mon->backlog_tail = &b->next;
        if (mon->defer)
                (void) sd_event_source_set_enabled(mon->defer, SD_EVENT_ONESHOT);
        return 0;
}

/* Waits for the greeting (id 0) or the reply to the call with this id, putting events in the backlog.
 * A call that gives up waiting stays queued without a callback: its reply, when it comes, is dropped. */
static int wait_reply(QemuMonitor *mon, uint64_t id, uint64_t deadline, int watch_fd, struct json_object **ret) {
        for (;;) {
                struct json_object *msg;
                struct pollfd p[2] = { { .fd = mon->fd, .events = POLLIN }, { .fd = watch_fd, .events = POLLIN } };
                uint64_t now;
                int r;

                while ((msg = next_message(mon))) {
                        if (id == 0 && qemu_json_get(msg, "QMP")) {
                                *ret = msg;
                                return 0;
                        }
                        if (id != 0 && is_reply(msg) && mon->pending && mon->pending->id == id) {
                                free(pending_pop(mon));
                                *ret = msg;
                                return 0;
                        }
                        if (is_reply(msg)) {
                                /* The reply to a command sent before this one (pipelined): its callback
                                 * runs now, so that the caller knows its outcome when we return. */
                                dispatch_reply(mon, msg);
                                json_object_put(msg);
                                continue;
                        }
                        r = backlog_add(mon, msg);
                        if (r < 0)
                                return r;
                }
                if (mon->closed)
                        return -ECONNRESET;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(p, watch_fd >= 0 ? 2 : 1, (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        r = fill(mon);
                        if (r < 0 && r != -ECONNRESET)
                                return r;
                } else if (r > 0 && p[1].revents)
                        return -ECONNRESET;
        }
}

/* Sends command and waits until deadline for its reply (the whole message). */
static int call_wait(QemuMonitor *mon, const char *command, struct json_object *args, uint64_t deadline,
                     int watch_fd, struct json_object **ret) {
        PendingCall *p;
        int r;

        if (mon->closed) {
                json_object_put(args);
                return -ECONNRESET;
        }
        p = pending_add(mon, NULL, NULL);
        if (!p) {
                json_object_put(args);
                return -ENOMEM;
        }
        r = send_command(mon, command, args, -1);
        if (r < 0) {
                pending_drop_last(mon, p);
                return r;
        }
        return wait_reply(mon, p->id, deadline, watch_fd, ret);
}

int qemu_monitor_call_sync(QemuMonitor *mon, const char *command, struct json_object *args,
                           uint64_t timeout_usec, struct json_object **ret, char **ret_error) {
        struct json_object *reply = NULL;
        const char *err;
        int r;

        r = call_wait(mon, command, args, now_usec() + timeout_usec, -1, &reply);
        /* What was read along with the reply has to be dispatched without waiting for more input. */
        if ((mon->closed || mon->rlen > 0 || mon->backlog) && mon->defer)
                (void) sd_event_source_set_enabled(mon->defer, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        err = message_error(reply);
        if (err) {
                if (ret_error)
                        *ret_error = strdup(err);
                json_object_put(reply);
                return -EIO;
        }
        if (ret) {
                struct json_object *v = qemu_json_get(reply, "return");
                *ret = v ? json_object_get(v) : NULL;
        }
        json_object_put(reply);
        return 0;
}

int qemu_monitor_call(QemuMonitor *mon, const char *command, struct json_object *args, QemuMonitorReplyFn cb,
                      void *userdata) {
        return qemu_monitor_call_fd(mon, command, args, -1, cb, userdata, NULL);
}

int qemu_monitor_call_fd(QemuMonitor *mon, const char *command, struct json_object *args, int fd,
                         QemuMonitorReplyFn cb, void *userdata, uint64_t *ret_id) {
        PendingCall *p;
        int r;

        if (mon->closed || mon->opening != OPEN_DONE) {
                json_object_put(args);
                return -ECONNRESET;
        }
        p = pending_add(mon, cb, userdata);
        if (!p) {
                json_object_put(args);
                return -ENOMEM;
        }
        r = send_command(mon, command, args, fd);
        if (r < 0) {
                pending_drop_last(mon, p);
                return r;
        }
        if (ret_id)
                *ret_id = p->id;
        return 0;
}

void qemu_monitor_cancel(QemuMonitor *mon, uint64_t id) {
        for (PendingCall *p = mon ? mon->pending : NULL; p; p = p->next)
                if (p->id == id) {
                        p->cb = NULL;
                        p->userdata = NULL;
                }
}

static int connect_socket(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        *ret_fd = fd;
        return 0;
}

static void set_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static void set_error(char **ret_error, const char *format, ...) {
        va_list ap;
        if (!ret_error)
                return;
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
}

/* A monitor on fd (taken: closed on failure), not yet opened. */
static QemuMonitor *monitor_new(sd_event *event, int fd, const QemuMonitorCallbacks *cb, void *userdata) {
        QemuMonitor *mon = new0(QemuMonitor, 1);

        if (!mon) {
                close(fd);
                return NULL;
        }
        mon->fd = fd;
        mon->pending_tail = &mon->pending;
        mon->open_watch_fd = -1;
        bump_generation(mon);
        mon->backlog_tail = &mon->backlog;
        mon->cb = *cb;
        mon->userdata = userdata;
        mon->event = sd_event_ref(event);
        return mon;
}

int qemu_monitor_open(sd_event *event, const char *path, int watch_fd, uint64_t timeout_usec,
                      const QemuMonitorCallbacks *cb, void *userdata, QemuMonitor **ret, char **ret_error) {
        int fd = -1, r;

        r = connect_socket(path, &fd);
        if (r < 0) {
                set_error(ret_error, "Failed to connect to the QEMU monitor '%s': %s", path, strerror(-r));
                return r;
        }
        return qemu_monitor_open_fd(event, fd, path, watch_fd, timeout_usec, cb, userdata, ret, ret_error);
}

int qemu_monitor_open_fd(sd_event *event, int fd, const char *path, int watch_fd, uint64_t timeout_usec,
                         const QemuMonitorCallbacks *cb, void *userdata, QemuMonitor **ret, char **ret_error) {
        _cleanup_(qemu_monitor_freep) QemuMonitor *mon = NULL;
        struct json_object *greeting = NULL, *reply = NULL;
        uint64_t deadline = now_usec() + timeout_usec;
        int r;

        mon = monitor_new(event, fd, cb, userdata);
        if (!mon)
                return -ENOMEM;

        r = wait_reply(mon, 0, deadline, watch_fd, &greeting);
        json_object_put(greeting);
        if (r < 0) {
                set_error(ret_error, "QEMU did not greet on its monitor '%s': %s", path,
                          r == -ECONNRESET ? "it exited" : strerror(-r));
                return r;
        }
        r = call_wait(mon, "qmp_capabilities", NULL, deadline, watch_fd, &reply);
        if (r >= 0 && message_error(reply)) {
                set_error(ret_error, "QEMU refused QMP capabilities negotiation: %s", message_error(reply));
                r = -EIO;
        } else if (r < 0)
                set_error(ret_error, "QMP capabilities negotiation failed: %s", strerror(-r));
        json_object_put(reply);
        if (r < 0)
                return r;

        r = sd_event_add_io(event, &mon->io, mon->fd, EPOLLIN, on_io, mon);
        if (r < 0)
                return r;
        r = sd_event_add_defer(event, &mon->defer, on_defer, mon);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(mon->defer, mon->backlog || mon->rlen > 0 ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
        *ret = TAKE_PTR(mon);
        return 0;
}

static void open_finish(QemuMonitor *mon, int r, const char *format, ...) {
        QemuMonitorOpenDone done = mon->open_done;
        _cleanup_free_ char *error = NULL;
        va_list ap;

        if (mon->opening == OPEN_DONE)
                return;
        mon->opening = OPEN_DONE;
        mon->open_done = NULL;
        mon->open_timer = sd_event_source_disable_unref(mon->open_timer);
        mon->open_watch = sd_event_source_disable_unref(mon->open_watch);
        mon->open_watch_fd = safe_close_fd(mon->open_watch_fd);
        if (format) {
                va_start(ap, format);
                if (vasprintf(&error, format, ap) < 0)
                        error = NULL;
                va_end(ap);
        }
        if (r < 0)
                mon->closed = mon->closed_reported = true; /* unusable; the caller frees it */
        mon->dispatching++;
        if (done)
                done(mon, r, error, mon->userdata);
        mon->dispatching--;
        if (mon->free_requested && mon->dispatching == 0) {
                mon->free_requested = false;
                qemu_monitor_free(mon);
        }
}

static int on_open_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuMonitor *mon = userdata;

        open_finish(mon, -ETIMEDOUT, "QEMU did not %s on its monitor '%s' in time",
                    mon->opening == OPEN_GREETING ? "greet" : "negotiate QMP capabilities", mon->path);
        return 0;
}

static int on_open_watch(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuMonitor *mon = userdata;

        /* QEMU exited; what it wrote before is read first. */
        mon->dispatching++;
        (void) fill(mon);
        process(mon);
        if (mon->opening != OPEN_DONE && !mon->free_requested)
                open_finish(mon, -ECONNRESET, "QEMU did not greet on its monitor '%s': it exited", mon->path);
        mon->dispatching--;
        if (mon->free_requested && mon->dispatching == 0) {
                mon->free_requested = false;
                qemu_monitor_free(mon);
        }
        return 0;
}

int qemu_monitor_open_async(sd_event *event, const char *path, int watch_fd, uint64_t timeout_usec,
                            const QemuMonitorCallbacks *cb, void *userdata, QemuMonitorOpenDone done,
                            QemuMonitor **ret) {
        int fd = -1, r;

        /* QEMU inherited the listening socket: connecting does not wait (the kernel queues us until QEMU
         * accepts). */
        r = connect_socket(path, &fd);
        if (r < 0)
                return r;
        return qemu_monitor_open_fd_async(event, fd, path, watch_fd, timeout_usec, cb, userdata, done, ret);
}

int qemu_monitor_open_fd_async(sd_event *event, int fd, const char *path, int watch_fd, uint64_t timeout_usec,
                               const QemuMonitorCallbacks *cb, void *userdata, QemuMonitorOpenDone done,
                               QemuMonitor **ret) {
        _cleanup_(qemu_monitor_freep) QemuMonitor *mon = NULL;
        int r;

        mon = monitor_new(event, fd, cb, userdata);
        if (!mon)
                return -ENOMEM;
        mon->path = strdup(path);
        if (!mon->path)
                return -ENOMEM;
        mon->opening = OPEN_GREETING;
        mon->open_done = done;
        r = sd_event_add_io(event, &mon->io, mon->fd, EPOLLIN, on_io, mon);
        if (r >= 0)
                r = sd_event_add_defer(event, &mon->defer, on_defer, mon);
        if (r >= 0)
                r = sd_event_source_set_enabled(mon->defer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &mon->open_timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                               on_open_timeout, mon);
        if (r >= 0 && watch_fd >= 0) {
                mon->open_watch_fd = fcntl(watch_fd, F_DUPFD_CLOEXEC, 3);
                r = mon->open_watch_fd < 0 ? -errno
                                           : sd_event_add_io(event, &mon->open_watch, mon->open_watch_fd, EPOLLIN,
                                                             on_open_watch, mon);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(mon);
        return 0;
}

QemuMonitor *qemu_monitor_free(QemuMonitor *mon) {
        if (!mon)
                return NULL;
        if (mon->dispatching > 0) {
                /* Called from one of our callbacks: finish after it returns. */
                mon->free_requested = true;
                mon->cb = (QemuMonitorCallbacks) {};
                return NULL;
        }
        sd_event_source_disable_unref(mon->io);
        sd_event_source_disable_unref(mon->defer);
        sd_event_source_disable_unref(mon->open_timer);
        sd_event_source_disable_unref(mon->open_watch);
        safe_close_fd(mon->open_watch_fd);
        free(mon->path);
        /* The callers' userdata may be gone: drop pending calls without calling back. */
        while (mon->pending)
                free(pending_pop(mon));
        if (mon->deep)
                json_tokener_free(mon->deep);
        while (mon->backlog) {
                Backlog *b = mon->backlog;
                mon->backlog = b->next;
                json_object_put(b->msg);
                free(b);
        }
        if (mon->fd >= 0)
                close(mon->fd);
        free(mon->rbuf);
        sd_event_unref(mon->event);
        free(mon);
        return NULL;
}
