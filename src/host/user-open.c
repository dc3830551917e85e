/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/user-open.h"
#include "util/log.h"
#include "util/macro.h"

/* A child that never answers (a path on a hung network file system) is given up after this. */
#define USER_OPEN_TIMEOUT_MSEC 5000
#define USER_OPEN_GROUPS_MAX 256

static const char * const mode_names[_HOST_OPEN_MODE_MAX] = {
        [HOST_OPEN_READ] = "read",
        [HOST_OPEN_READ_WRITE] = "read and write",
        [HOST_OPEN_APPEND] = "append to",
        [HOST_OPEN_TRUNCATE] = "write",
        [HOST_OPEN_DIRECTORY] = "read the directory",
        [HOST_OPEN_SOCKET_LISTEN] = "listen on",
        [HOST_OPEN_SOCKET_CONNECT] = "connect to",
        [HOST_OPEN_CREATE] = "create",
};

const char *host_open_mode_to_string(HostOpenMode mode) {
        return mode >= 0 && mode < _HOST_OPEN_MODE_MAX ? mode_names[mode] : NULL;
}

void host_open_requests_close(HostOpenRequest *reqs, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (reqs[i].fd >= 0) {
                        close(reqs[i].fd);
                        reqs[i].fd = -1;
                }
}

/* The directory part of path into buf ("/" for "/x"); false if it does not fit. */
static bool dir_of(const char *path, char *buf, size_t size) {
        const char *slash = strrchr(path, '/');
        size_t n;

        if (!slash)
                return false;
        n = slash == path ? 1 : (size_t) (slash - path);
        if (n >= size)
                return false;
        memcpy(buf, path, n);
        buf[n] = 0;
        return true;
}

static int unix_address(const char *path, struct sockaddr_un *sa, socklen_t *len) {
        size_t n = strlen(path);

        if (n >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        memset(sa, 0, sizeof *sa);
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, path, n);
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* open(2) with the flags of a mode; O_NONBLOCK so that a FIFO cannot hang us (cleared again after). */
static int open_flags(HostOpenMode mode, bool check_only) {
        int f = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

        switch (mode) {
        case HOST_OPEN_READ:
                return f | O_RDONLY;
        case HOST_OPEN_READ_WRITE:
                return f | O_RDWR;
        case HOST_OPEN_APPEND:
                return f | O_WRONLY | O_APPEND | (check_only ? 0 : O_CREAT);
        case HOST_OPEN_TRUNCATE:
                return f | O_WRONLY | (check_only ? 0 : O_CREAT | O_TRUNC);
        case HOST_OPEN_DIRECTORY:
                return f | O_RDONLY | O_DIRECTORY;
        case HOST_OPEN_CREATE:
                return f | (check_only ? O_RDONLY : O_RDWR | O_CREAT | O_EXCL);
        default:
                return -1;
        }
}

static int do_open(const char *path, int flags, bool no_symlinks) {
        int fd;

        if (no_symlinks) {
                struct open_how how = { .flags = (uint64_t) flags, .mode = flags & O_CREAT ? 0600 : 0,
                                        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
                fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
                if (fd >= 0 || errno != ENOSYS)
                        return fd < 0 ? -errno : fd;
                flags |= O_NOFOLLOW;
        }
        fd = open(path, flags, 0600);
        return fd < 0 ? -errno : fd;
}

/* One request, with the rights of the calling process. Only async-signal-safe calls: it also runs in
 * the child between fork and _exit. Returns the descriptor, 0 for a check that passed, or -errno. */
static int open_one(const HostOpenRequest *q, bool no_symlinks) {
        char dir[PATH_MAX];
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r, flags;

        if (!q->path || q->path[0] != '/')
                return -EINVAL;
        switch (q->mode) {
        case HOST_OPEN_SOCKET_LISTEN:
        case HOST_OPEN_SOCKET_CONNECT:
                r = unix_address(q->path, &sa, &len);
                if (r < 0)
                        return r;
                if (!dir_of(q->path, dir, sizeof dir))
                        return -EINVAL;
                if (q->check_only) {
                        if (q->mode == HOST_OPEN_SOCKET_LISTEN)
                                return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0 ? -errno : 0;
                        if (faccessat(AT_FDCWD, q->path, W_OK, AT_EACCESS) >= 0)
                                return 0;
                        if (errno != ENOENT)
                                return -errno;
                        /* Not there yet: whoever serves it may start later. */
                        return faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) < 0 ? -errno : 0;
                }
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (q->mode == HOST_OPEN_SOCKET_CONNECT ? SOCK_NONBLOCK : 0), 0);
                if (fd < 0)
                        return -errno;
                if (q->mode == HOST_OPEN_SOCKET_LISTEN) {
                        struct stat st;
                        /* Replace a socket left by an earlier run; anything else stays. */
                        if (lstat(q->path, &st) >= 0 && S_ISSOCK(st.st_mode))
                                (void) unlink(q->path);
                        if (bind(fd, (struct sockaddr *) &sa, len) < 0 || listen(fd, 4) < 0) {
                                r = -errno;
                                close(fd);
                                return r;
                        }
                        return fd;
                }
                if (connect(fd, (struct sockaddr *) &sa, len) < 0 && errno != EINPROGRESS) {
                        r = -errno;
                        close(fd);
                        return r == -EAGAIN ? -EBUSY : r;
                }
                flags = fcntl(fd, F_GETFL);
                if (flags >= 0)
                        (void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
                return fd;
        default:
                flags = open_flags(q->mode, q->check_only);
                if (flags < 0)
                        return -EINVAL;
                fd = do_open(q->path, flags, no_symlinks);
                if (q->check_only && q->mode == HOST_OPEN_CREATE && fd >= 0) {
                        close(fd);
                        return -EEXIST;
                }
                if (fd == -ENOENT && q->check_only &&
                    (q->mode == HOST_OPEN_APPEND || q->mode == HOST_OPEN_TRUNCATE || q->mode == HOST_OPEN_CREATE)) {
                        /* It would be created: the directory must let us. */
                        if (!dir_of(q->path, dir, sizeof dir))
                                return -EINVAL;
                        return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0 ? -errno : 0;
                }
                if (fd < 0)
                        return fd;
                if (q->check_only) {
                        close(fd);
                        return 0;
                }
                flags = fcntl(fd, F_GETFL);
                if (flags >= 0)
                        (void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
                return fd;
        }
}

static int send_answer(int sock, int error, int fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = &error, .iov_len = sizeof error };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                memset(&control, 0, sizeof control);
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
                CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
                CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof fd);
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* One answer: 0 with *ret_error and *ret_fd (-1 if none came), or -errno. */
static int receive_answer(int sock, int *ret_error, int *ret_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        int error = 0;
        struct iovec iov = { .iov_base = &error, .iov_len = sizeof error };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        struct pollfd p = { .fd = sock, .events = POLLIN };
        ssize_t n;

        *ret_fd = -1;
        for (;;) {
                int k = poll(&p, 1, USER_OPEN_TIMEOUT_MSEC);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
                break;
        }
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        if (n != (ssize_t) sizeof error)
                return -EPROTO;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        *ret_error = error;
        return 0;
}

_Noreturn static void child_run(int sock, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
                                const HostOpenRequest *reqs, size_t n) {
        /* Raw system calls: after fork only async-signal-safe calls, and these change this process only. */
        if (syscall(SYS_setgroups, n_groups, groups) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
            syscall(SYS_setresuid, uid, uid, uid) < 0)
                _exit(2);
        for (size_t i = 0; i < n; i++) {
                int fd = open_one(&reqs[i], false);
                bool has_fd = fd >= 0 && !reqs[i].check_only;
                if (send_answer(sock, fd < 0 ? fd : 0, has_fd ? fd : -1) < 0)
                        _exit(3);
                if (has_fd)
                        close(fd);
        }
        _exit(0);
}

static int user_creds(uid_t uid, gid_t *ret_gid, gid_t *groups, int *n_groups) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r;

        r = getpwuid_r(uid, &pw, buf, sizeof buf, &res);
        if (r != 0)
                return -r;
        if (!res)
                return -ESRCH;
        *ret_gid = pw.pw_gid;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, n_groups) < 0)
                return -E2BIG;
        return 0;
}

int host_open_as(uid_t uid, HostOpenRequest *reqs, size_t n) {
        gid_t gid = 0, groups[USER_OPEN_GROUPS_MAX];
        int n_groups = USER_OPEN_GROUPS_MAX, sv[2], r = 0;
        pid_t pid;

        for (size_t i = 0; i < n; i++) {
                reqs[i].fd = -1;
                reqs[i].error = 0;
        }
        if (uid == 0) {
                for (size_t i = 0; i < n; i++) {
                        int fd = open_one(&reqs[i], reqs[i].no_symlinks);
                        reqs[i].error = fd < 0 ? fd : 0;
                        reqs[i].fd = fd >= 0 && !reqs[i].check_only ? fd : -1;
                }
                return 0;
        }
        r = user_creds(uid, &gid, groups, &n_groups);
        if (r < 0)
                return log_debug_errno(r, "Cannot open files as uid %u: no such user (%m)", (unsigned) uid);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                close(sv[0]);
                child_run(sv[1], uid, gid, groups, (size_t) n_groups, reqs, n);
        }
        close(sv[1]);
        for (size_t i = 0; i < n; i++) {
                int error = 0, fd = -1;
                r = receive_answer(sv[0], &error, &fd);
                if (r < 0)
                        break;
                reqs[i].error = error;
                reqs[i].fd = fd;
        }
        close(sv[0]);
        if (r < 0) {
                host_open_requests_close(reqs, n);
                (void) kill(pid, SIGKILL);
                log_warning_errno(r, "The helper opening files as uid %u did not answer: %m", (unsigned) uid);
        }
        /* It has sent its last answer (or was killed): it exits at once. */
        (void) waitpid(pid, NULL, r == -ETIMEDOUT ? WNOHANG : 0);
        return r;
}

int host_open_one_as(uid_t uid, const char *path, HostOpenMode mode, int *ret_fd) {
        HostOpenRequest req = { .path = path, .mode = mode, .fd = -1 };
        int r;

        r = host_open_as(uid, &req, 1);
        if (r < 0)
                return r;
        if (req.error < 0)
                return req.error;
        *ret_fd = req.fd;
        return 0;
}

int host_open_parent_as(uid_t uid, const char *path, int *ret_dfd, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        char *dir;
        int r;

        if (!slash)
                return -EINVAL;
        dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        r = host_open_one_as(uid, dir, HOST_OPEN_DIRECTORY, ret_dfd);
        free(dir);
        if (r < 0)
                return r;
        *ret_name = slash + 1;
        return 0;
}

int host_unlinkat_if_same(int dfd, const char *name, int fd) {
        struct stat mine, there;

        if (fstat(fd, &mine) < 0 || fstatat(dfd, name, &there, AT_SYMLINK_NOFOLLOW) < 0 ||
            there.st_dev != mine.st_dev || there.st_ino != mine.st_ino)
                return -ESTALE;
        if (unlinkat(dfd, name, 0) < 0)
                return -errno;
        return 0;
}
