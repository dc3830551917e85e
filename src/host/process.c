/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/process.h"
#include "util/fileio.h"
#include "util/log.h"

/* "/proc/self/fd/N" into buf, without stdio (after fork). */
static void fd_path(int fd, char buf[static 32]) {
        char digits[16];
        size_t n = 0, k = 0;

        do
                digits[n++] = (char) ('0' + fd % 10);
        while ((fd /= 10) > 0 && n < sizeof digits);
        memcpy(buf, "/proc/self/fd/", 14);
        k = 14;
        while (n > 0)
                buf[k++] = digits[--n];
        buf[k] = 0;
}

/* What every process finds in its private /dev. */
static const HostDevNode basic_nodes[] = {
        { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 },
};

/* The confinement of host_process_spawn_confined, in the child: system calls only. */
static int confine(const HostConfinement *c) {
        char dev[64], src[32];
        int pts;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        /* The host's ptys stay reachable (QEMU's pty chardevs open /dev/ptmx there). */
        pts = open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(basic_nodes) + c->n_dev_nodes; i++) {
                const HostDevNode *d = i < ELEMENTSOF(basic_nodes) ? &basic_nodes[i] : &c->dev_nodes[i - ELEMENTSOF(basic_nodes)];
                size_t n = strlen(d->name);
                const char *slash = strchr(d->name, '/');

                if (n + 6 > sizeof dev)
                        return -ENAMETOOLONG;
                memcpy(dev, "/dev/", 5);
                memcpy(dev + 5, d->name, n + 1);
                if (slash) {
                        dev[5 + (slash - d->name)] = 0;
                        if (mkdir(dev, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        dev[5 + (slash - d->name)] = '/';
                }
                if (mknod(dev, S_IFCHR | (d->owned ? 0600 : 0666), makedev(d->major, d->minor)) < 0 ||
                    (d->owned && chown(dev, c->uid, c->gid) < 0) || (!d->owned && chmod(dev, 0666) < 0))
                        return -errno;
        }
        if (pts >= 0) {
                /* /dev/ptmx finds its devpts as "pts" beside it: the host's, bound here. */
                fd_path(pts, src);
                if (mkdir("/dev/pts", 0755) < 0 || mount(src, "/dev/pts", NULL, MS_BIND, NULL) < 0 ||
                    mknod("/dev/ptmx", S_IFCHR | 0666, makedev(5, 2)) < 0 || chmod("/dev/ptmx", 0666) < 0)
                        return -errno;
                close(pts);
        }
        if (mount("tmpfs", "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
                return -errno;
        for (const char * const *h = c->hide; h && *h; h++)
                if (mount("tmpfs", *h, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=4k") < 0 &&
                    errno != ENOENT)
                        return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        for (unsigned long cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
                        break;
        if (syscall(SYS_setgroups, 1, &c->gid) < 0 || syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0 ||
            syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
                return -errno;
        return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
_Noreturn static void child_exec(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep,
                                 int err_fd, int go_fd, const HostConfinement *c, pid_t parent_pid) {
        sigset_t empty;
        int null_fd, e;

        (void) setsid();
        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        (void) signal(s, SIG_DFL);
        sigemptyset(&empty);
        (void) sigprocmask(SIG_SETMASK, &empty, NULL);

        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd >= 0 ? log_fd : null_fd, STDOUT_FILENO) < 0 ||
            dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO) < 0)
                goto fail;
        /* Everything else goes, but the error pipe (close-on-exec) and the kept descriptors. */
        {
                unsigned lo = 3;
                for (;;) {
                        unsigned next = ~0U; /* the smallest kept fd >= lo */
                        for (size_t i = 0; i <= n_keep + 1; i++) {
                                int k = i < n_keep ? keep_fds[i] : i == n_keep ? err_fd : go_fd;
                                if (k >= (int) lo && (unsigned) k < next)
                                        next = (unsigned) k;
                        }
                        if (next == ~0U) {
                                (void) syscall(SYS_close_range, lo, ~0U, 0);
                                break;
                        }
                        if (next > lo)
                                (void) syscall(SYS_close_range, lo, next - 1, 0);
                        if ((int) next != err_fd && (int) next != go_fd) {
                                int flags = fcntl((int) next, F_GETFD);
                                if (flags >= 0)
                                        (void) fcntl((int) next, F_SETFD, flags & ~FD_CLOEXEC);
                        }
                        lo = next + 1;
                }
        }
        if (c) {
                int r = confine(c);
                if (r < 0) {
                        errno = -r;
                        goto fail;
                }
                /* After the change of user, which clears the parent-death signal. The parent may be gone
                 * already: then there is no one to kill us later, so go now. */
                if (c->die_with_parent &&
                    (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent_pid))
                        _exit(127);
        }
        if (go_fd >= 0) {
                char go;
                ssize_t n;

                /* Held: run only once the parent recorded us (a byte); EOF: it died first, so nobody
                 * would know of us. */
                do
                        n = read(go_fd, &go, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1)
                        _exit(127);
        }
        execv(argv[0], (char * const *) argv);
fail:
        e = errno;
        (void) !write(err_fd, &e, sizeof e);
        _exit(127);
}

static void close_fdp(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/* Forks the child; held, it waits on s->go_fd before exec (else s->go_fd is -1 and it goes on). */
static int spawn_begin(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                       const HostConfinement *c, bool held, HostSpawn *s) {
        int pipe_fds[2], go_fds[2] = { -1, -1 };
        pid_t pid, parent_pid;

        if (!argv || !argv[0] || argv[0][0] != '/')
                return -EINVAL;
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return -errno;
        if (held && pipe2(go_fds, O_CLOEXEC) < 0) {
                int e = errno;
                close(pipe_fds[0]);
                close(pipe_fds[1]);
                return -e;
        }
        parent_pid = getpid();
        pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pipe_fds[0]);
                close(pipe_fds[1]);
                close_fdp(&go_fds[0]);
                close_fdp(&go_fds[1]);
                return -e;
        }
        if (pid == 0) {
                close(pipe_fds[0]);
                if (go_fds[1] >= 0)
                        close(go_fds[1]);
                child_exec(argv, log_fd, keep_fds, n_keep_fds, pipe_fds[1], go_fds[0], c, parent_pid);
        }
        close(pipe_fds[1]);
        close_fdp(&go_fds[0]);
        *s = (HostSpawn) { .pid = pid, .go_fd = go_fds[1], .err_fd = pipe_fds[0] };
        return 0;
}

/* Lets a held child go on, and waits until it exec'ed or failed to. */
static int spawn_finish(HostSpawn *s) {
        int child_errno = 0;
        ssize_t n;

        if (s->go_fd >= 0) {
                do
                        n = write(s->go_fd, "g", 1);
                while (n < 0 && errno == EINTR);
                close_fdp(&s->go_fd);
        }
        /* EOF: exec succeeded (the pipe closed on exec); an int: it failed with that errno. */
        do
                n = read(s->err_fd, &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        close_fdp(&s->err_fd);
        if (n == sizeof child_errno) {
                (void) waitpid(s->pid, NULL, 0);
                return -(child_errno ?: EIO);
        }
        return 0;
}

static int spawn(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                 const HostConfinement *c, pid_t *ret_pid) {
        HostSpawn s;
        int r;

        r = spawn_begin(argv, log_fd, keep_fds, n_keep_fds, c, false, &s);
        if (r < 0)
                return r;
        r = spawn_finish(&s);
        if (r < 0)
                return r;
        *ret_pid = s.pid;
        return 0;
}

int host_process_spawn_held(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                            const HostConfinement *c, HostSpawn *ret) {
        if (c && c->uid == 0)
                return -EINVAL;
        return spawn_begin(argv, log_fd, keep_fds, n_keep_fds, c, true, ret);
}

int host_process_spawn_release(HostSpawn *s) {
        return spawn_finish(s);
}

void host_process_spawn_abandon(HostSpawn *s) {
        close_fdp(&s->go_fd); /* EOF: the child exits without running anything */
        close_fdp(&s->err_fd);
        (void) waitpid(s->pid, NULL, 0);
}

int host_process_spawn(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                       pid_t *ret_pid) {
        return spawn(argv, log_fd, keep_fds, n_keep_fds, NULL, ret_pid);
}

/* Whether path is dir or below it. */
static bool path_below(const char *path, const char *dir, size_t dir_len) {
        return strncmp(path, dir, dir_len) == 0 && (path[dir_len] == '/' || path[dir_len] == 0);
}

void host_confinement_keep_program(HostConfinement *c, const char *program, const char **buf, size_t max) {
        const char *slash = program ? strrchr(program, '/') : NULL;
        size_t prefix_len = 0, n = 0;

        /* "/x/y/bin/qemu" -> "/x/y" */
        if (slash && slash > program) {
                const char *up = slash - 1;
                while (up > program && *up != '/')
                        up--;
                prefix_len = (size_t) (up - program);
        }
        for (const char * const *h = c->hide; h && *h && n + 1 < max; h++) {
                size_t len = strlen(*h);
                /* A hidden directory the installation lies in, or one that lies in the installation. */
                if (prefix_len > 0 && (path_below(program, *h, len) || path_below(*h, program, prefix_len)))
                        continue;
                buf[n++] = *h;
        }
        buf[n] = NULL;
        c->hide = buf;
}

int host_process_spawn_confined(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                                const HostConfinement *c, pid_t *ret_pid) {
        if (!c || c->uid == 0)
                return -EINVAL;
        return spawn(argv, log_fd, keep_fds, n_keep_fds, c, ret_pid);
}

int host_process_start_time(pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *stat = NULL;
        char path[64];
        const char *p;
        unsigned long long t;
        int r;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        r = read_full_file(path, 0, &stat, NULL);
        if (r < 0)
                return r;
        /* The command name may hold anything: skip to the last ')'. */
        p = strrchr(stat, ')');
        if (!p)
                return -EBADMSG;
        p++;
        /* Fields 3..21, then starttime (22). */
        for (int field = 3; field <= 22; field++) {
                p += strspn(p, " ");
                if (field == 22)
                        break;
                p += strcspn(p, " ");
        }
        if (sscanf(p, "%llu", &t) != 1)
                return -EBADMSG;
        *ret = t;
        return 0;
}

/* Running or sleeping, not a zombie (an exited process nobody reaped yet). */
static bool process_lives(pid_t pid) {
        _cleanup_free_ char *stat = NULL;
        char path[64];
        const char *p;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (read_full_file(path, 0, &stat, NULL) < 0 || !(p = strrchr(stat, ')')))
                return false;
        return p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

bool host_process_is(pid_t pid, uint64_t start_time) {
        uint64_t t;

        if (pid <= 1 || host_process_start_time(pid, &t) < 0)
                return false;
        return (start_time == 0 || t == start_time) && process_lives(pid);
}

int host_process_open_fd(pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
}

/* Whether another descriptor of pid than fd refers to fd's open file description. */
static int fd_shared(pid_t pid, int fd) {
        char path[64];
        struct dirent *de;
        int r = 0;
        DIR *d;

        snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
        d = opendir(path);
        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                char *end;
                long other = strtol(de->d_name, &end, 10);

                if (de->d_name[0] == '.' || *end || other == fd)
                        continue;
                if (syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd, (int) other) == 0)
                        r = 1;
        }
        closedir(d);
        return r;
}

int host_process_fd_drop_stale_locks(pid_t pid, int pidfd, int fd) {
        struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
        int copy, flags, r;

        copy = (int) syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (copy < 0)
                return -errno;
        flags = fcntl(copy, F_GETFL);
        if (flags < 0)
                r = -errno;
        else if ((flags & O_ACCMODE) != O_RDWR)
                r = 0;
        else if ((r = fd_shared(pid, fd)) != 0)
                r = r > 0 ? 0 : r;
        else if (fcntl(copy, F_OFD_SETLK, &fl) < 0)
                r = -errno;
        else
                r = 1;
        close(copy);
        return r;
}

void host_process_reap(pid_t pid) {
        (void) waitpid(pid, NULL, WNOHANG);
}

/* Waits until pidfd is readable (the process exited) or timeout. */
static bool wait_exit(pid_t pid, int pidfd, uint64_t timeout_usec) {
        struct timespec start, now;

        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                int r;
                do
                        r = poll(&p, 1, (int) (timeout_usec / 1000));
                while (r < 0 && errno == EINTR);
                return r > 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                if (waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0) < 0)
                        return true;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if ((uint64_t) (now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000 >=
                    timeout_usec)
                        return false;
                usleep(2000);
        }
}

int host_process_terminate(pid_t pid, int pidfd, uint64_t grace_usec) {
        int own_fd = -1;
        bool gone;

        if (pid <= 1)
                return -EINVAL;
        if (pidfd < 0)
                pidfd = own_fd = host_process_open_fd(pid);
        if (kill(pid, SIGTERM) < 0 && errno == ESRCH) {
                host_process_reap(pid);
                if (own_fd >= 0)
                        close(own_fd);
                return 0;
        }
        /* A stopped process (SIGSTOP, a debugger's) acts on SIGTERM only once it runs again. */
        (void) kill(pid, SIGCONT);
        gone = wait_exit(pid, pidfd, grace_usec);
        if (!gone) {
                log_debug("Process %d did not exit on SIGTERM, sending SIGKILL.", (int) pid);
                (void) kill(pid, SIGKILL);
                gone = wait_exit(pid, pidfd, 1000000);
        }
        host_process_reap(pid);
        if (own_fd >= 0)
                close(own_fd);
        return gone ? 0 : -ETIMEDOUT;
}

int host_process_wait_timeout(pid_t pid, int timeout_ms, int *ret_status) {
        int pidfd = host_process_open_fd(pid), status = 0;

        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                if (poll(&p, 1, timeout_ms) == 0) {
                        (void) host_process_terminate(pid, pidfd, 1000000);
                        close(pidfd);
                        return -ETIMEDOUT;
                }
                close(pidfd);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        *ret_status = status;
        return 0;
}
