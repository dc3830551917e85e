/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/dnsmasq.h"
#include "util/fileio.h"
#include "util/log.h"

extern char **environ;

int host_dnsmasq_user(HostDnsmasqUser *ret) {
        static const char * const names[] = { "dnsmasq", "virtbus-dnsmasq" };
        char buf[4096];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                struct passwd pw, *p = NULL;
                struct group gr, *g = NULL;

                if (getpwnam_r(names[i], &pw, buf, sizeof buf, &p) != 0 || !p)
                        continue;
                *ret = (HostDnsmasqUser) { .uid = p->pw_uid, .gid = p->pw_gid };
                snprintf(ret->name, sizeof ret->name, "%s", p->pw_name);
                if (getgrgid_r(p->pw_gid, &gr, buf, sizeof buf, &g) == 0 && g)
                        snprintf(ret->group, sizeof ret->group, "%s", g->gr_name);
                return 0;
        }
        return -ENOENT;
}

/* In the child, between fork and exec: only system calls. The tree is cloned (open_tree) while still
 * in our mount namespace, given its flags while detached, and attached in the new one: a bind mount
 * of the descriptor itself would be refused there (its mount is in another namespace). Only that
 * mount, not what is mounted below it. */
static int child_setup(int tftp_fd, const char *tftp_mount) {
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                            MOUNT_ATTR_NOSYMFOLLOW,
        };
        sigset_t none;
        int tree;

        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0 || setsid() < 0)
                return -errno;
        if (tftp_fd < 0)
                return 0;
        tree = open_tree(tftp_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            move_mount(tree, "", AT_FDCWD, tftp_mount, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

int host_dnsmasq_start(const char *conf_path, int tftp_fd, const char *tftp_mount, pid_t *ret_pid) {
        static const char * const candidates[] = { "/usr/sbin/dnsmasq", "/sbin/dnsmasq" };
        _cleanup_free_ char *conf_arg = NULL;
        const char *bin = NULL;
        int pipefd[2], err = 0;
        ssize_t n;
        pid_t pid;

        for (size_t i = 0; i < ELEMENTSOF(candidates) && !bin; i++)
                if (access(candidates[i], X_OK) == 0)
                        bin = candidates[i];
        if (!bin)
                return -ENOENT;
        if (asprintf(&conf_arg, "--conf-file=%s", conf_path) < 0)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                err = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return err;
        }
        if (pid == 0) {
                /* --no-ping: no ICMP probe before an offer (it delays the first lease by 3 s). A new
                 * session, so that a terminal's signals don't reach it. */
                const char *argv[] = { bin, conf_arg, "--keep-in-foreground", "--no-ping", NULL };

                close(pipefd[0]);
                err = child_setup(tftp_fd, tftp_mount);
                if (err >= 0) {
                        execve(bin, (char **) argv, environ);
                        err = -errno;
                }
                (void) !write(pipefd[1], &err, sizeof err);
                _exit(127);
        }
        close(pipefd[1]);
        /* EOF: exec happened (the pipe is close-on-exec); else the child's errno. */
        do
                n = read(pipefd[0], &err, sizeof err);
        while (n < 0 && errno == EINTR);
        close(pipefd[0]);
        if (n == sizeof err && err < 0) {
                (void) waitpid(pid, NULL, 0);
                return err;
        }
        *ret_pid = pid;
        return 0;
}

void host_dnsmasq_reap(pid_t pid) {
        (void) waitpid(pid, NULL, WNOHANG);
}

void host_dhcp_leases_free(HostDhcpLease *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].mac);
                free(l[i].ip);
                free(l[i].hostname);
                free(l[i].client_id);
        }
        free(l);
}

static char *dup_known(const char *s) {
        return streq(s, "*") ? NULL : strdup(s);
}

int host_dnsmasq_read_leases(const char *path, const char *mac, HostDhcpLease **ret, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        HostDhcpLease *l = NULL;
        size_t n = 0, allocated = 0;
        char *save = NULL;
        int r;

        r = read_full_file(path, 0, &text, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char expiry[32], lmac[64], ip[64], host[256], cid[256];

                if (sscanf(line, "%31s %63s %63s %255s %255s", expiry, lmac, ip, host, cid) != 5)
                        continue; /* the "duid ..." line of IPv6, or garbage */
                if (!isempty(mac) && strcasecmp(mac, lmac) != 0)
                        continue;
                if (!GREEDY_REALLOC(l, allocated, n + 1)) {
                        host_dhcp_leases_free(l, n);
                        return -ENOMEM;
                }
                l[n] = (HostDhcpLease) {
                        .expiry = strtoull(expiry, NULL, 10),
                        .mac = strdup(lmac),
                        .ip = strdup(ip),
                        .hostname = dup_known(host),
                        .client_id = dup_known(cid),
                };
                n++;
                if (!l[n - 1].mac || !l[n - 1].ip) {
                        host_dhcp_leases_free(l, n);
                        return -ENOMEM;
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
