/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Host paths opened with somebody's rights, not the service's.
 *
 * virtbusd runs as root, but a path in a definition is only as trustworthy as whoever wrote it. The
 * descriptors a guest gets (its disks, the files its serial ports write, the sockets they listen on) are
 * therefore opened by a short-lived child that first becomes that user (uid, primary gid and the
 * supplementary groups the group database gives the user), and hands the descriptors back over a socket.
 * The kernel then checks every step of every path with exactly that user's rights, symlinks included:
 * a guest reaches what its owner could reach, nothing more. For uid 0 the service opens the paths
 * itself. */

typedef enum HostOpenMode {
        HOST_OPEN_READ,          /* an existing file, read-only */
        HOST_OPEN_READ_WRITE,    /* an existing file, read and write */
        HOST_OPEN_APPEND,        /* written to from its end, created (0600) if missing */
        HOST_OPEN_TRUNCATE,      /* written to from the start, created (0600) if missing, emptied */
        HOST_OPEN_DIRECTORY,     /* an existing directory, read-only (O_PATH-free: it can be listed) */
        HOST_OPEN_SOCKET_LISTEN, /* a new AF_UNIX stream socket bound there and listening (an old socket is replaced) */
        HOST_OPEN_SOCKET_CONNECT, /* an AF_UNIX stream socket connected to the one there */
        HOST_OPEN_CREATE,        /* a new regular file (0600), read and write; one that exists is EEXIST */
        _HOST_OPEN_MODE_MAX,
} HostOpenMode;

typedef struct HostOpenRequest {
        const char *path; /* absolute */
        HostOpenMode mode;
        /* Only find out whether it would work, changing nothing: files are opened and closed again
         * (nothing created, nothing emptied); for a file to be created or a socket to be bound, the
         * directory must be writable; a socket to connect to must be writable if it exists. */
        bool check_only;
        /* For uid 0: refuse a symlink anywhere in the path (a path an administrator allowed for somebody
         * else, who might otherwise swap a directory in it for a link). */
        bool no_symlinks;
        /* Filled in: the descriptor (close-on-exec; -1 with check_only or on failure) and 0 or -errno. */
        int fd;
        int error;
} HostOpenRequest;

/* Opens (or checks) every request as uid, with one child process for all of them. Returns 0 when each
 * request has its answer (look at each .error), < 0 when the answers could not be had at all (the user
 * does not exist, the child could not be made); then no descriptor is open. */
int host_open_as(uid_t uid, HostOpenRequest *reqs, size_t n);

/* One path opened as uid (host_open_as with one request): 0 and the descriptor in *ret_fd, or -errno of the
 * open or of the child. */
int host_open_one_as(uid_t uid, const char *path, HostOpenMode mode, int *ret_fd);

/* The directory of an absolute path opened as uid (HOST_OPEN_DIRECTORY), and in *ret_name the path's last
 * component (pointing into path). */
int host_open_parent_as(uid_t uid, const char *path, int *ret_dfd, const char **ret_name);

/* Removes name from the directory dfd only if it still is the file open as fd (same device and inode; a
 * symlink there is not followed): a file we made is removed, one put in its place since is not. 0 once
 * removed, -ESTALE when the name is gone or is another file, else the -errno of the unlink. */
int host_unlinkat_if_same(int dfd, const char *name, int fd);

/* Closes the descriptors of the requests, and forgets them. */
void host_open_requests_close(HostOpenRequest *reqs, size_t n);

/* The name of a mode, for messages ("read", "read and write", ...). */
const char *host_open_mode_to_string(HostOpenMode mode);
