/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* host_process_spawn_held(): the child runs only once released; abandoned, or with its parent dead
 * before the release, it exits without running anything (what keeps a killed virtbusd from leaving a
 * QEMU nobody knows of: see qemu-process.c); host_child_wait(); host_process_fd_drop_stale_locks() on a
 * child's locked descriptors. Real processes, no timing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/child-wait.h"
#include "host/process.h"

static char dir[] = "/tmp/virtbus-test-process.XXXXXX";

static char *marker(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* argv of /bin/sh writing "ran" into path. */
static void writer(const char *path, char **cmd, const char *argv[4]) {
        assert_true(asprintf(cmd, "echo ran > '%s'", path) > 0);
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = *cmd;
        argv[3] = NULL;
}

static int exit_status(pid_t pid) {
        int status = 0;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_released_runs(void **state) {
        char *path = marker("released"), *cmd = NULL;
        const char *argv[4];
        HostSpawn s;

        writer(path, &cmd, argv);
        assert_int_equal(host_process_spawn_held(argv, -1, NULL, 0, NULL, &s), 0);
        /* Held: it has not run yet. */
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(host_process_spawn_release(&s), 0);
        assert_int_equal(exit_status(s.pid), 0);
        assert_int_equal(access(path, F_OK), 0);
        free(cmd);
        free(path);
}

static void test_abandoned_never_runs(void **state) {
        char *path = marker("abandoned"), *cmd = NULL;
        const char *argv[4];
        HostSpawn s;

        writer(path, &cmd, argv);
        assert_int_equal(host_process_spawn_held(argv, -1, NULL, 0, NULL, &s), 0);
        host_process_spawn_abandon(&s);
        assert_int_equal(access(path, F_OK), -1);
        free(cmd);
        free(path);
}

/* The parent dies between spawn and release: the child comes to us (a subreaper) and ran nothing. */
static void test_parent_dies_first(void **state) {
        char *path = marker("orphan"), *cmd = NULL;
        const char *argv[4];
        int fds[2];
        pid_t helper, child = 0;

        writer(path, &cmd, argv);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        assert_int_equal(pipe(fds), 0);
        helper = fork();
        assert_true(helper >= 0);
        if (helper == 0) {
                HostSpawn s;

                close(fds[0]);
                if (host_process_spawn_held(argv, -1, NULL, 0, NULL, &s) < 0)
                        _exit(1);
                (void) !write(fds[1], &s.pid, sizeof s.pid);
                _exit(0); /* killed before recording it, as it were */
        }
        close(fds[1]);
        assert_int_equal(read(fds[0], &child, sizeof child), sizeof child);
        close(fds[0]);
        assert_int_equal(exit_status(helper), 0);
        assert_int_equal(exit_status(child), 127);
        assert_int_equal(access(path, F_OK), -1);
        free(cmd);
        free(path);
}

/* A confined helper process spawned to die with its parent (the capability probe's QEMU) is killed when
 * the process that spawned it ends; waited for with a bound, so that a regression fails, not hangs. */
static void test_die_with_parent(void **state) {
        const char *argv[] = { "/bin/sleep", "1000", NULL };
        int fds[2], status = 0;
        pid_t helper, child = 0, r = 0;

        if (geteuid() != 0)
                skip(); /* confinement needs root */
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        assert_int_equal(pipe(fds), 0);
        helper = fork();
        assert_true(helper >= 0);
        if (helper == 0) {
                HostConfinement c = { .uid = 65534, .gid = 65534, .die_with_parent = true };
                pid_t pid;

                close(fds[0]);
                if (host_process_spawn_confined(argv, -1, NULL, 0, &c, &pid) < 0)
                        _exit(1);
                (void) !write(fds[1], &pid, sizeof pid);
                _exit(0); /* gone, as a killed virtbusd would be */
        }
        close(fds[1]);
        assert_int_equal(read(fds[0], &child, sizeof child), sizeof child);
        close(fds[0]);
        assert_int_equal(exit_status(helper), 0);
        for (int i = 0; i < 1000 && r == 0; i++) {
                r = waitpid(child, &status, WNOHANG);
                if (r == 0)
                        usleep(10 * 1000);
        }
        if (r == 0) {
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                fail_msg("the confined child outlived the process that spawned it");
        }
        assert_int_equal(r, child);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_exec_failure_after_release(void **state) {
        const char *argv[] = { "/nonexistent/virtbus-no-such-program", NULL };
        HostSpawn s;

        assert_int_equal(host_process_spawn_held(argv, -1, NULL, 0, NULL, &s), 0);
        assert_int_equal(host_process_spawn_release(&s), -ENOENT);
}

/* host_process_wait_timeout(): the child's status once it exits; one that runs on is ended and reaped. */
static void test_wait_timeout(void **state) {
        const char *quick[] = { "/bin/sh", "-c", "exit 3", NULL }, *slow[] = { "/bin/sleep", "600", NULL };
        int status = -1;
        pid_t pid;

        assert_int_equal(host_process_spawn(quick, -1, NULL, 0, &pid), 0);
        assert_int_equal(host_process_wait_timeout(pid, 600 * 1000, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 3);

        status = -1;
        assert_int_equal(host_process_spawn(slow, -1, NULL, 0, &pid), 0);
        assert_int_equal(host_process_wait_timeout(pid, 50, &status), -ETIMEDOUT);
        assert_int_equal(status, -1);
        assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* already reaped */
        assert_int_equal(errno, ECHILD);
}

/* host_child_wait: a helper that exits is waited for as waitpid() would. */
static void test_child_wait(void **state) {
        pid_t pid = fork();
        int status = 0;

        assert_true(pid >= 0);
        if (pid == 0) {
                (void) setpgid(0, 0);
                execl("/bin/sh", "sh", "-c", "exit 3", (char *) NULL);
                _exit(127);
        }
        assert_int_equal(host_child_wait(pid, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 3);
}

static void *cancel_soon(void *userdata) {
        (void) usleep(100 * 1000);
        host_children_cancel();
        return NULL;
}

/* A helper that hangs (a shell waiting for a sleep it started) is killed with its process group once
 * another thread called host_children_cancel() (virtbusd stops), after the grace: its wait returns the
 * kill, and the sleep went too. Last: the cancel is for good. */
static void test_child_wait_cancel(void **state) {
        pthread_t t;
        pid_t pid, orphan;
        int status = 0;

        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the sleep comes back to us when sh dies */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) setpgid(0, 0);
                execl("/bin/sh", "sh", "-c", "sleep 60 & wait", (char *) NULL);
                _exit(127);
        }
        (void) setpgid(pid, pid);
        assert_false(host_children_cancelled());
        assert_int_equal(pthread_create(&t, NULL, cancel_soon, NULL), 0);
        assert_int_equal(host_child_wait(pid, &status), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(host_children_cancelled());
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        orphan = waitpid(-1, &status, 0);
        assert_true(orphan > 0);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);

        /* One started after the cancel gets the grace, then the same. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) setpgid(0, 0);
                execl("/bin/sh", "sh", "-c", "exec sleep 60", (char *) NULL);
                _exit(127);
        }
        (void) setpgid(pid, pid);
        assert_int_equal(host_child_wait(pid, &status), 0);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* Whether a lock of another open file description than ours meets a write lock on path's whole file. */
static bool locked(const char *path) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        int fd = open(path, O_RDWR | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
        close(fd);
        return fl.l_type != F_UNLCK;
}

/* host_process_fd_drop_stale_locks(): a child holds an OFD lock through a read-write descriptor (and a
 * copy of it, then not), and a read lock through a read-only one. Only the read-write descriptor no
 * other one of the child shares loses its lock. */
static void test_drop_stale_locks(void **state) {
        char *path = marker("locked");
        int cmd[2], ready[2], fds[3], pidfd, status;
        pid_t pid;

        assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
                struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 200, .l_len = 10 };
                char c;

                close(cmd[1]);
                fds[0] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                fds[1] = dup(fds[0]);
                fds[2] = open(path, O_RDONLY | O_CLOEXEC);
                if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fcntl(fds[0], F_OFD_SETLK, &w) < 0 ||
                    fcntl(fds[2], F_OFD_SETLK, &r) < 0 || write(ready[1], fds, sizeof fds) != sizeof fds)
                        _exit(1);
                while (read(cmd[0], &c, 1) == 1 && c == 'c')
                        if (close(fds[1]) < 0 || write(ready[1], "k", 1) != 1)
                                _exit(1);
                _exit(0);
        }
        assert_int_equal(read(ready[0], fds, sizeof fds), (ssize_t) sizeof fds);
        pidfd = host_process_open_fd(pid);
        assert_true(pidfd >= 0);

        /* Shared with its copy: kept. Read-only: kept. */
        assert_int_equal(host_process_fd_drop_stale_locks(pid, pidfd, fds[0]), 0);
        assert_int_equal(host_process_fd_drop_stale_locks(pid, pidfd, fds[2]), 0);
        assert_true(locked(path));
        /* Its copy closed: the write lock goes, the read lock stays. */
        assert_int_equal(write(cmd[1], "c", 1), 1);
        {
                char k;

                assert_int_equal(read(ready[0], &k, 1), 1);
        }
        assert_int_equal(host_process_fd_drop_stale_locks(pid, pidfd, fds[0]), 1);
        {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
                int fd = open(path, O_RDWR | O_CLOEXEC);

                assert_true(fd >= 0);
                assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
                assert_int_equal(fl.l_type, F_UNLCK);
                close(fd);
        }
        assert_true(locked(path));
        assert_int_equal(host_process_fd_drop_stale_locks(pid, pidfd, 9999), -EBADF);

        close(cmd[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(pidfd);
        close(cmd[0]);
        close(ready[0]);
        close(ready[1]);
        free(path);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_released_runs),
                cmocka_unit_test(test_abandoned_never_runs),
                cmocka_unit_test(test_parent_dies_first),
                cmocka_unit_test(test_exec_failure_after_release),
                cmocka_unit_test(test_die_with_parent),
                cmocka_unit_test(test_wait_timeout),
                cmocka_unit_test(test_child_wait),
                cmocka_unit_test(test_child_wait_cancel),
                cmocka_unit_test(test_drop_stale_locks),
        };
        char rm[128];
        int r;

        if (!mkdtemp(dir))
                return 1;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
        (void) !system(rm);
        return r;
}
