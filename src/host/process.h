/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Child processes without a shell: argv is passed to execv as is. */

/* Starts argv[0] (an absolute path) with argv in a new session: stdin from /dev/null, stdout and stderr
 * to log_fd (or /dev/null when < 0), every other descriptor closed except those in keep_fds (which
 * keep their numbers), default signal dispositions and an empty signal mask. Fails with the exec
 * errno if the program could not be started. */
int host_process_spawn(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                       pid_t *ret_pid);

/* A character device made in a confined process' private /dev. */
typedef struct HostDevNode {
        const char *name; /* under /dev, at most one directory deep ("kvm", "vfio/vfio") */
        unsigned major, minor;
        bool owned;       /* owned by the process' user, mode 0600; else root's, mode 0666 */
} HostDevNode;

/* How a process is shut in before it runs (host_process_spawn_confined): its own mount namespace where
 * /dev holds only null, zero, full, random, urandom, dev_nodes and the host's ptys, and the directories in hide (those that exist) are
 * empty and read-only; then no new privileges, an empty capability bounding set, and the user uid with
 * group gid and no supplementary groups. */
typedef struct HostConfinement {
        uid_t uid;
        gid_t gid;
        const HostDevNode *dev_nodes;
        size_t n_dev_nodes;
        const char * const *hide; /* NULL-terminated */
        /* The process is killed when the thread that spawned it ends (virtbusd killed, or done with it): for
         * short-lived helpers such as the capability probe's QEMU, never for guests, which outlive us. */
        bool die_with_parent;
} HostConfinement;

/* c->hide less the directories that hold program's installation (the parent of its directory: QEMU finds
 * its data in ../share), so that a program installed there can still run; into buf (max entries with the
 * NULL), which c->hide then points to. */
void host_confinement_keep_program(HostConfinement *c, const char *program, const char **buf, size_t max);

/* host_process_spawn, shut in by c (which needs root, and a uid other than 0). */
int host_process_spawn_confined(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                                const HostConfinement *c, pid_t *ret_pid);

/* A child that waits, set up and shut in but before exec, until host_process_spawn_release(): between the
 * two the caller records its pid (durably), so that a crash of ours never leaves a process behind that
 * nobody knows of: if we die before releasing it, it exits without running anything. */
typedef struct HostSpawn {
        pid_t pid;
        int go_fd;  /* a byte written: exec */
        int err_fd; /* EOF once it exec'ed; an errno if it could not */
} HostSpawn;

/* host_process_spawn (c NULL) or host_process_spawn_confined (c set), held. */
int host_process_spawn_held(const char * const *argv, int log_fd, const int *keep_fds, size_t n_keep_fds,
                            const HostConfinement *c, HostSpawn *ret);
/* Lets it exec; 0 once it did, or the exec errno (it was reaped then). */
int host_process_spawn_release(HostSpawn *s);
/* It exits without running anything; reaped. */
void host_process_spawn_abandon(HostSpawn *s);

/* The start time of pid (field 22 of /proc/PID/stat, in clock ticks since boot): with the pid it
 * names one process for good, also after a restart of ours (pids get reused). */
int host_process_start_time(pid_t pid, uint64_t *ret);

/* Whether pid is alive (not a zombie) and started at start_time (0: don't check). */
bool host_process_is(pid_t pid, uint64_t start_time);

/* A pidfd for pid (our child or not), readable once it exited. */
int host_process_open_fd(pid_t pid);

/* Drops the file locks (OFD locks, whole file) held through descriptor fd of process pid (pidfd: its
 * pidfd) when they are stale: fd is open read-write and no other descriptor of that process shares its
 * open file description (kcmp(2)), which the locks belong to. A copy of fd taken with pidfd_getfd(2)
 * shares that description and releases them. Returns 1 when it dropped them, 0 when fd is not read-write
 * or is shared (nothing done), -errno. */
int host_process_fd_drop_stale_locks(pid_t pid, int pidfd, int fd);

/* SIGTERM, up to grace_usec for it to exit, then SIGKILL and up to another second; reaps it if it is our
 * child. Returns 0 once it is gone, -ETIMEDOUT if even SIGKILL did not end it. pidfd may be -1. */
int host_process_terminate(pid_t pid, int pidfd, uint64_t grace_usec);

/* Waits for our child pid to exit, at most timeout_ms (then it is ended as host_process_terminate does,
 * and -ETIMEDOUT returned). 0 and its wait status in *ret_status once it exited, or the -errno of
 * waitpid. Blocks: for worker threads. */
int host_process_wait_timeout(pid_t pid, int timeout_ms, int *ret_status);

/* Reaps pid if it is our child and exited; harmless otherwise. */
void host_process_reap(pid_t pid);
