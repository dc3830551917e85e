/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/drivers/qemu/qemu-monitor: what QEMU writes is read with bounds; commands go out as bare objects
 * (no "id", no line end) and replies are matched to them in order. A peer process plays QEMU on a
 * socketpair (the framing is the same as on QEMU's unix socket; tests/integration/test-qemu*.c talk to
 * the real QEMU). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/qemu/qemu-monitor.h"

static const char greeting[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n";

static void closed(QemuMonitor *mon, void *userdata) {
}

/* A peer that greets and then sends size bytes without a line end, and keeps the socket open. */
static pid_t start_peer(int fd, size_t size) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                static char chunk[65536];

                memset(chunk, 'x', sizeof chunk);
                if (write(fd, greeting, strlen(greeting)) < 0)
                        _exit(1);
                for (size_t done = 0; done < size;) {
                        ssize_t n = write(fd, chunk, size - done < sizeof chunk ? size - done : sizeof chunk);
                        if (n <= 0)
                                _exit(0); /* the monitor closed its end */
                        done += (size_t) n;
                }
                pause();
                _exit(0);
        }
        return pid;
}

/* A line longer than any QMP message closes the monitor at once, instead of being buffered until
 * memory runs out (or, here, until the 60 s timeout). */
static void test_line_too_long(void **state) {
        static const QemuMonitorCallbacks cb = { .closed = closed };
        QemuMonitor *mon = NULL;
        _cleanup_free_ char *error = NULL;
        sd_event *event = NULL;
        int fds[2], r;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        pid = start_peer(fds[1], 80U * 1024U * 1024U);
        close(fds[1]);
        assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
        assert_true(sd_event_new(&event) >= 0);

        r = qemu_monitor_open_fd(event, fds[0], "test", -1, 60ULL * 1000 * 1000, &cb, NULL, &mon, &error);
        assert_int_equal(r, -ECONNRESET);
        assert_null(mon);
        assert_non_null(error);

        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        sd_event_unref(event);
}


/* A QEMU flooding its monitor with events: they are dispatched in slices, so that the rest of the event
 * loop (here a timer that is due at every turn) keeps running, and a command's answer still arrives. The
 * peer answers commands as QEMU does, in between its events. */
static const char flood_event[] = "{\"event\": \"RTC_CHANGE\", \"data\": {\"offset\": 0}, "
                                  "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n";

/* The length of the first complete JSON object in buf (as QEMU's parser sees one end: its closing brace),
 * 0 if none is complete yet. */
static size_t object_end(const char *buf, size_t len) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                if (in_string) {
                        if (buf[i] == '\\')
                                i++;
                        else if (buf[i] == '"')
                                in_string = false;
                } else if (buf[i] == '"')
                        in_string = true;
                else if (buf[i] == '{')
                        depth++;
                else if (buf[i] == '}' && depth > 0 && --depth == 0)
                        return i + 1;
        }
        return 0;
}

static void peer_answer(int fd, char *buf, size_t *len) {
        static const char reply[] = "{\"return\": {\"status\": \"running\"}}\n";
        size_t used;

        while ((used = object_end(buf, *len)) > 0) {
                if (write(fd, reply, strlen(reply)) < 0)
                        _exit(0);
                memmove(buf, buf + used, *len - used);
                *len -= used;
        }
}

static pid_t start_flooding_peer(int fd, int other) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                static char chunk[64 * sizeof flood_event];
                char buf[4096];
                size_t len = 0;

                close(other); /* so that the test's end closes the socket */
                for (size_t i = 0; i < 64; i++)
                        memcpy(chunk + i * strlen(flood_event), flood_event, strlen(flood_event));
                if (write(fd, greeting, strlen(greeting)) < 0)
                        _exit(1);
                for (;;) {
                        struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
                        if (poll(&p, 1, -1) < 0 || (p.revents & (POLLHUP | POLLERR)))
                                _exit(0);
                        if (p.revents & POLLIN) {
                                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
                                if (n <= 0)
                                        _exit(0);
                                len += (size_t) n;
                                buf[len] = 0;
                                peer_answer(fd, buf, &len);
                        }
                        if ((p.revents & POLLOUT) && write(fd, chunk, 64 * strlen(flood_event)) < 0)
                                _exit(0);
                }
        }
        return pid;
}

typedef struct Flood {
        bool ready, answered;
        unsigned events, since_tick, most_between_ticks, ticks;
} Flood;

static void flood_event_cb(QemuMonitor *mon, const char *name, struct json_object *data, void *userdata) {
        Flood *f = userdata;
        f->events++;
        f->since_tick++;
}

static void flood_opened(QemuMonitor *mon, int r, const char *error, void *userdata) {
        assert_int_equal(r, 0);
        ((Flood *) userdata)->ready = true;
}

static void flood_answer(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        Flood *f = userdata;
        assert_null(error);
        assert_string_equal(qemu_json_string(ret, "status"), "running");
        f->answered = true;
}

static int flood_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Flood *f = userdata;

        if (f->since_tick > f->most_between_ticks)
                f->most_between_ticks = f->since_tick;
        f->since_tick = 0;
        f->ticks++;
        /* Due again at once: it wants a turn at every pass of the loop. */
        assert_true(sd_event_source_set_time_relative(s, 0) >= 0);
        assert_true(sd_event_source_set_enabled(s, SD_EVENT_ON) >= 0);
        return 0;
}

static void test_flood(void **state) {
        static const QemuMonitorCallbacks cb = { .event = flood_event_cb, .closed = closed };
        /* What one read (64 KiB) can hold, four times over (the monitor's sources may run more than once
         * between two ticks): reading until the socket is empty would be far more. */
        const unsigned bound = 4 * (64U * 1024U / (unsigned) (strlen(flood_event) - 1) + 1);
        QemuMonitor *mon = NULL;
        sd_event_source *tick = NULL;
        sd_event *event = NULL;
        Flood f = {};
        int fds[2];
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        pid = start_flooding_peer(fds[1], fds[0]);
        close(fds[1]);
        assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
        assert_true(sd_event_new(&event) >= 0);
        assert_int_equal(qemu_monitor_open_fd_async(event, fds[0], "flood", -1, 60ULL * 1000 * 1000, &cb, &f,
                                                    flood_opened, &mon),
                         0);
        while (!f.ready)
                assert_true(sd_event_run(event, UINT64_MAX) >= 0);
        assert_true(sd_event_add_time_relative(event, &tick, CLOCK_MONOTONIC, 0, 1, flood_tick, &f) >= 0);
        assert_int_equal(qemu_monitor_call(mon, "query-status", NULL, flood_answer, &f), 0);
        while (!f.answered || f.events < 50000)
                assert_true(sd_event_run(event, UINT64_MAX) >= 0);

        assert_true(f.ticks > 0);
        assert_true(f.most_between_ticks <= bound);
        printf("flood: %u events, %u ticks, at most %u events between two (bound %u)\n", f.events, f.ticks,
               f.most_between_ticks, bound);

        sd_event_source_disable_unref(tick);
        qemu_monitor_free(mon);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        sd_event_unref(event);
}


/* A peer that answers each command in order, as QEMU does without the out-of-band capability: an event
 * before each answer, and the answer names the command ({"return": {"command": NAME}}). Some commands get
 * other answers: "deep" one nested 40 levels, "broken" one json-c cannot read, "slow" one 300 ms late.
 * The first two commands' bytes are written to record (a pipe), so the test sees what went out. */
static void order_reply(int fd, const char *cmd, size_t n) {
        char name[64] = "", reply[1024];
        const char *e = strstr(cmd, "\"execute\":\"");
        size_t k = 0;

        if (e)
                for (e += 11; k < sizeof name - 1 && e < cmd + n && *e != '"'; e++)
                        name[k++] = *e;
        name[k] = 0;
        snprintf(reply, sizeof reply, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RTC_CHANGE\", "
                 "\"data\": {\"offset\": 0}}\n");
        if (streq(name, "deep")) {
                strcat(reply, "{\"return\": ");
                for (int i = 0; i < 40; i++)
                        strcat(reply, "{\"a\": ");
                strcat(reply, "1");
                for (int i = 0; i < 40; i++)
                        strcat(reply, "}");
                strcat(reply, "}\n");
        } else if (streq(name, "broken"))
                strcat(reply, "{\"return\": {\"speed\": inf}}\n");
        else {
                if (streq(name, "slow"))
                        usleep(300 * 1000);
                snprintf(reply + strlen(reply), sizeof reply - strlen(reply), "{\"return\": {\"command\": \"%s\"}}\n",
                         name);
        }
        if (write(fd, reply, strlen(reply)) < 0)
                _exit(0);
}

static pid_t start_order_peer(int fd, int other, int record) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[8192];
                size_t len = 0, used;
                unsigned seen = 0;

                close(other);
                if (write(fd, greeting, strlen(greeting)) < 0)
                        _exit(1);
                for (;;) {
                        ssize_t n = read(fd, buf + len, sizeof buf - len);

                        if (n <= 0)
                                _exit(0);
                        len += (size_t) n;
                        while ((used = object_end(buf, len)) > 0) {
                                if (seen++ < 3 && write(record, buf, used) < 0)
                                        _exit(1);
                                if (seen == 3)
                                        close(record);
                                order_reply(fd, buf, used);
                                memmove(buf, buf + used, len - used);
                                len -= used;
                        }
                }
        }
        return pid;
}

typedef struct Answer {
        bool done;
        char *command, *error;
        int depth;
} Answer;

static void order_answer(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        Answer *a = userdata;

        assert_false(a->done);
        a->done = true;
        a->command = qemu_json_string(ret, "command") ? strdup(qemu_json_string(ret, "command")) : NULL;
        a->error = error ? strdup(error) : NULL;
        for (struct json_object *o = qemu_json_get(ret, "a"); o; o = qemu_json_get(o, "a"))
                a->depth++;
}

static void order_event(QemuMonitor *mon, const char *name, struct json_object *data, void *userdata) {
        (*(unsigned *) userdata)++;
}

static void test_in_order(void **state) {
        static const QemuMonitorCallbacks cb = { .event = order_event, .closed = closed };
        static const char * const names[] = { "first", "deep", "cancelled", "broken", "last" };
        QemuMonitor *mon = NULL;
        _cleanup_free_ char *error = NULL;
        struct json_object *ret = NULL, *args;
        sd_event *event = NULL;
        Answer a[ELEMENTSOF(names)] = {}, after = {};
        uint64_t cancel_id = 0;
        unsigned events = 0;
        char sent[512] = "";
        int fds[2], rec[2];
        ssize_t n;
        pid_t pid;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(pipe2(rec, O_CLOEXEC), 0);
        pid = start_order_peer(fds[1], fds[0], rec[1]);
        close(fds[1]);
        close(rec[1]);
        assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
        assert_true(sd_event_new(&event) >= 0);
        assert_int_equal(qemu_monitor_open_fd(event, fds[0], "order", -1, 60ULL * 1000 * 1000, &cb, &events, &mon, &error),
                         0);

        /* Pipelined: each answer to its own call, the cancelled one's dropped; an answer nested deeper than
         * json-c's default depth is read; one that cannot be read refuses its own call only. */
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(qemu_monitor_call_fd(mon, names[i], NULL, -1, order_answer, &a[i],
                                                      i == 2 ? &cancel_id : NULL),
                                 0);
        qemu_monitor_cancel(mon, cancel_id);
        /* A synchronous call after them: their callbacks have run when it returns. */
        args = json_object_new_object();
        json_object_object_add(args, "path", json_object_new_string("/machine/peripheral/balloon0"));
        assert_int_equal(qemu_monitor_call_sync(mon, "qom-get", args, 60ULL * 1000 * 1000, &ret, NULL), 0);
        assert_string_equal(qemu_json_string(ret, "command"), "qom-get");
        json_object_put(ret);
        ret = NULL;
        assert_string_equal(a[0].command, "first");
        assert_null(a[0].error);
        assert_int_equal(a[1].depth, 40);
        assert_false(a[2].done);
        assert_null(a[3].command);
        assert_non_null(a[3].error);
        assert_non_null(strstr(a[3].error, "could not be read"));
        assert_string_equal(a[4].command, "last");

        /* A synchronous call that gives up: its late answer is dropped, not given to the next call. */
        assert_int_equal(qemu_monitor_call_sync(mon, "slow", NULL, 50 * 1000, &ret, NULL), -ETIMEDOUT);
        assert_int_equal(qemu_monitor_call(mon, "after", NULL, order_answer, &after), 0);
        while (!after.done)
                assert_true(sd_event_run(event, UINT64_MAX) >= 0);
        assert_string_equal(after.command, "after");

        /* What went out: bare objects, no "id", no line end, slashes as they are. */
        n = read(rec[0], sent, sizeof sent - 1);
        assert_true(n > 0);
        sent[n] = 0;
        assert_string_equal(sent, "{\"execute\":\"qmp_capabilities\"}{\"execute\":\"first\"}{\"execute\":\"deep\"}");
        /* The events in between were all dispatched from the loop, none lost. */
        while (events < ELEMENTSOF(names) + 3)
                assert_true(sd_event_run(event, 100 * 1000) >= 0);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                free(a[i].command);
                free(a[i].error);
        }
        free(after.command);
        qemu_monitor_free(mon);
        close(rec[0]);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_flood),
                cmocka_unit_test(test_in_order),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
