/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A client of the QEMU guest agent's protocol: JSON objects in both directions; the reply to
 * guest-sync-delimited comes after a 0xff byte, which marks where the stream can be trusted again. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "drivers/qemu/qemu-agent.h"
#include "drivers/qemu/qemu-monitor.h"
#include "util/log.h"

typedef struct AgentRequest {
        char *command;
        struct json_object *args;
        bool no_reply;
        QemuAgentReplyFn cb;
        void *userdata;
        struct AgentRequest *next;
} AgentRequest;

typedef enum AgentPhase {
        AGENT_IDLE,
        AGENT_SYNCING,   /* waiting for 0xff and the sync's reply */
        AGENT_WAITING,   /* waiting for the command's reply */
} AgentPhase;

struct QemuAgent {
        int fd;
        sd_event *event;
        sd_event_source *io, *timer, *kick;
        bool connected;
        AgentRequest *queue; /* the head is the one under way */
        AgentPhase phase;
        bool seen_delimiter;
        bool hung; /* failing the queue after a timeout: nothing new starts meanwhile */
        uint64_t sync_id;
        struct json_tokener *tok;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void request_free(AgentRequest *q) {
        free(q->command);
        json_object_put(q->args);
        free(q);
}

static void start_next(QemuAgent *a);

/* Ends the request under way with r (and what came), then starts the next one. */
static void finish(QemuAgent *a, int r, struct json_object *ret, const char *error) {
        AgentRequest *q = a->queue;

        if (!q)
                return;
        a->queue = q->next;
        a->phase = AGENT_IDLE;
        a->timer = sd_event_source_disable_unref(a->timer);
        q->cb(r, ret, error, q->userdata);
        request_free(q);
        start_next(a);
}

static int send_object(QemuAgent *a, const char *command, struct json_object *args) {
        struct json_object *o = json_object_new_object();
        const char *text;
        size_t n;
        ssize_t w;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "execute", json_object_new_string(command));
        if (args)
                json_object_object_add(o, "arguments", json_object_get(args));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        n = strlen(text);
        log_debug("QGA> %s", text);
        /* A few hundred bytes into a socket buffer that only fills when the guest does not read: never
         * waited for. */
        w = send(a->fd, text, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        json_object_put(o);
        if (w < 0)
                return -errno;
        return (size_t) w == n ? 0 : -EAGAIN;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuAgent *a = userdata;

        log_debug("The guest agent did not answer within %llu s.", QEMU_AGENT_TIMEOUT_USEC / 1000000ULL);
        /* A hung agent would make each queued request wait its own timeout: they all end now. */
        a->timer = sd_event_source_disable_unref(a->timer);
        a->hung = true;
        while (a->queue)
                finish(a, -ETIMEDOUT, NULL, "the guest agent did not answer in time");
        a->hung = false;
        return 0;
}

static void start_next(QemuAgent *a) {
        struct json_object *args;
        int r;

        if (!a->queue || a->phase != AGENT_IDLE || a->hung)
                return;
        /* A fresh id each time: a late reply to an older handshake is not taken for this one's. */
        a->sync_id = (now_usec() & 0x7fffffffffffULL) + 1;
        args = json_object_new_object();
        if (!args) {
                finish(a, -ENOMEM, NULL, "out of memory");
                return;
        }
        json_object_object_add(args, "id", json_object_new_uint64(a->sync_id));
        a->phase = AGENT_SYNCING;
        a->seen_delimiter = false;
        json_tokener_reset(a->tok);
        r = sd_event_add_time_relative(a->event, &a->timer, CLOCK_MONOTONIC, QEMU_AGENT_TIMEOUT_USEC, 0, on_timeout, a);
        if (r >= 0)
                r = send_object(a, "guest-sync-delimited", args);
        json_object_put(args);
        if (r < 0)
                finish(a, r == -EAGAIN ? -ETIMEDOUT : -ECONNRESET, NULL, "the guest agent's channel is not writable");
}

/* One complete JSON object from the agent. */
static void handle(QemuAgent *a, struct json_object *o) {
        struct json_object *ret = qemu_json_get(o, "return"), *err = qemu_json_get(o, "error");
        AgentRequest *q = a->queue;
        int r;

        if (!q)
                return;
        if (a->phase == AGENT_SYNCING) {
                if (!ret || !json_object_is_type(ret, json_type_int) || json_object_get_uint64(ret) != a->sync_id)
                        return; /* something older: skipped */
                r = send_object(a, q->command, q->args);
                if (r < 0) {
                        finish(a, -ECONNRESET, NULL, "the guest agent's channel is not writable");
                        return;
                }
                if (q->no_reply)
                        finish(a, 0, NULL, NULL);
                else
                        a->phase = AGENT_WAITING;
                return;
        }
        if (a->phase != AGENT_WAITING)
                return;
        if (err)
                finish(a, -EIO, NULL, qemu_json_string(err, "desc") ?: "the guest agent reported an error");
        else if (ret)
                finish(a, 0, ret, NULL);
}

/* Feeds bytes to the tokenizer: objects come back one by one (before the delimiter of a handshake, all
 * is skipped). */
static void feed(QemuAgent *a, const char *p, size_t n) {
        while (n > 0) {
                struct json_object *o;
                size_t used;

                if (a->phase == AGENT_SYNCING && !a->seen_delimiter) {
                        const char *ff = memchr(p, 0xff, n);
                        if (!ff)
                                return;
                        a->seen_delimiter = true;
                        json_tokener_reset(a->tok);
                        n -= (size_t) (ff + 1 - p);
                        p = ff + 1;
                        continue;
                }
                if (a->phase == AGENT_IDLE)
                        return; /* nobody asked: a late reply */
                /* Skip white space between objects (the tokenizer would wait on it). */
                while (n > 0 && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')) {
                        p++;
                        n--;
                }
                if (n == 0)
                        return;
                o = json_tokener_parse_ex(a->tok, p, (int) n);
                used = json_tokener_get_parse_end(a->tok);
                if (!o && json_tokener_get_error(a->tok) == json_tokener_continue)
                        return;
                if (!o) {
                        /* Not JSON: start over at the next byte. */
                        json_tokener_reset(a->tok);
                        used = used > 0 ? used : 1;
                } else {
                        handle(a, o);
                        json_object_put(o);
                        json_tokener_reset(a->tok);
                }
                p += used;
                n -= used;
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuAgent *a = userdata;
        char buf[4096];
        ssize_t n;

        for (unsigned i = 0; i < 64; i++) {
                n = recv(a->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        log_debug("The guest agent's channel closed.");
                        a->io = sd_event_source_disable_unref(a->io);
                        a->connected = false;
                        while (a->queue)
                                finish(a, -ECONNRESET, NULL, "the guest agent's channel closed");
                        return 0;
                }
                feed(a, buf, (size_t) n);
        }
        return 0;
}

/* Requests start from the loop, so that a caller never sees its callback before qemu_agent_call returns. */
static int on_kick(sd_event_source *s, void *userdata) {
        start_next(userdata);
        return 0;
}

int qemu_agent_new(sd_event *event, int fd, QemuAgent **ret) {
        QemuAgent *a = new0(QemuAgent, 1);
        int r;

        if (!a) {
                close(fd);
                return -ENOMEM;
        }
        a->fd = fd;
        a->event = sd_event_ref(event);
        a->tok = json_tokener_new();
        if (!a->tok) {
                qemu_agent_free(a);
                return -ENOMEM;
        }
        r = sd_event_add_io(event, &a->io, fd, EPOLLIN, on_io, a);
        if (r >= 0)
                r = sd_event_add_defer(event, &a->kick, on_kick, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->kick, SD_EVENT_OFF);
        if (r < 0) {
                qemu_agent_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

QemuAgent *qemu_agent_free(QemuAgent *a) {
        if (!a)
                return NULL;
        while (a->queue)
                finish(a, -ECANCELED, NULL, "the domain stopped");
        sd_event_source_disable_unref(a->io);
        sd_event_source_disable_unref(a->timer);
        sd_event_source_disable_unref(a->kick);
        if (a->tok)
                json_tokener_free(a->tok);
        if (a->fd >= 0)
                close(a->fd);
        sd_event_unref(a->event);
        free(a);
        return NULL;
}

void qemu_agent_set_connected(QemuAgent *a, bool connected) {
        if (a)
                a->connected = connected;
}

bool qemu_agent_is_connected(const QemuAgent *a) {
        return a && a->connected && a->io;
}

int qemu_agent_call(QemuAgent *a, const char *command, struct json_object *args, bool no_reply, QemuAgentReplyFn cb,
                    void *userdata) {
        AgentRequest *q, **tail;
        size_t n = 0;

        for (tail = &a->queue; *tail; tail = &(*tail)->next)
                n++;
        if (n >= QEMU_AGENT_QUEUE_MAX) {
                json_object_put(args);
                return -EBUSY;
        }
        q = new0(AgentRequest, 1);

        if (!q || !(q->command = strdup(command))) {
                free(q);
                json_object_put(args);
                return -ENOMEM;
        }
        q->args = args;
        q->no_reply = no_reply;
        q->cb = cb;
        q->userdata = userdata;
        for (tail = &a->queue; *tail; tail = &(*tail)->next)
                ;
        *tail = q;
        (void) sd_event_source_set_enabled(a->kick, SD_EVENT_ONESHOT);
        return 0;
}
