/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/drivers/qemu/qemu-monitor: what QEMU writes is read with bounds. A peer process plays QEMU on a
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_line_too_long),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
