/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/child-wait.h"
#include "util/log.h"

/* Readable for good once cancelled: every waiting thread wakes. */
static int cancel_fd = -1;
static pthread_once_t cancel_once = PTHREAD_ONCE_INIT;
static bool cancelled;

static void cancel_fd_init(void) {
        cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

void host_children_cancel(void) {
        (void) pthread_once(&cancel_once, cancel_fd_init);
        __atomic_store_n(&cancelled, true, __ATOMIC_SEQ_CST);
        if (cancel_fd >= 0)
                (void) eventfd_write(cancel_fd, 1);
}

bool host_children_cancelled(void) {
        return __atomic_load_n(&cancelled, __ATOMIC_SEQ_CST);
}

static int reap(pid_t pid, int *ret_status) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_status = status;
        return 0;
}

/* Until the child exits (1), the grace after a cancel runs out (0), or the caller's own bound does
 * (-ETIMEDOUT; timeout_usec 0: none): then it is to be killed. */
static int wait_exit(pid_t pid, int pidfd, uint64_t timeout_usec) {
        uint64_t deadline = 0, bound = timeout_usec > 0 ? now_usec() + timeout_usec : 0;

        for (;;) {
                struct pollfd fds[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
                uint64_t t = now_usec(), until;
                int timeout = -1, n;

                if (deadline == 0 && host_children_cancelled())
                        deadline = t + HOST_CHILD_CANCEL_GRACE_USEC;
                if (deadline > 0 && t >= deadline)
                        return 0;
                if (bound > 0 && t >= bound)
                        return -ETIMEDOUT;
                until = deadline > 0 && (bound == 0 || deadline < bound) ? deadline : bound;
                if (until > 0)
                        timeout = (int) ((until - t + 999) / 1000);
                n = poll(fds, deadline > 0 || cancel_fd < 0 ? 1 : 2, timeout);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0 && fds[0].revents)
                        return 1;
        }
}

int host_child_wait_timeout(pid_t pid, uint64_t timeout_usec, int *ret_status) {
        int pidfd, r, k;

        (void) pthread_once(&cancel_once, cancel_fd_init);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) /* no pidfd: unbounded, as before */
                return reap(pid, ret_status);
        r = wait_exit(pid, pidfd, timeout_usec);
        close(pidfd);
        if (r <= 0) {
                log_debug("Killing helper process %d (and its process group): %s.", (int) pid,
                          r == 0 ? "virtbusd is stopping" : "it ran too long");
                (void) kill(-pid, SIGKILL);
                (void) kill(pid, SIGKILL);
        }
        k = reap(pid, ret_status);
        return r == -ETIMEDOUT ? r : k;
}

int host_child_wait(pid_t pid, int *ret_status) {
        return host_child_wait_timeout(pid, 0, ret_status);
}
