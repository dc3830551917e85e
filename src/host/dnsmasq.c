/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/dnsmasq.h"
#include "util/fileio.h"
#include "util/log.h"

extern char **environ;

static int spawn_setsid(const char * const *argv, pid_t *ret_pid) {
        posix_spawnattr_t attr;
        sigset_t none;
        int r;

        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        sigemptyset(&none);
        (void) posix_spawnattr_setsigmask(&attr, &none);
        (void) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
        r = posix_spawn(ret_pid, argv[0], NULL, &attr, (char **) argv, environ);
        posix_spawnattr_destroy(&attr);
        return -r;
}

int host_dnsmasq_start(const char *conf_path, pid_t *ret_pid) {
        static const char * const candidates[] = { "/usr/sbin/dnsmasq", "/sbin/dnsmasq" };
        _cleanup_free_ char *conf_arg = NULL;
        const char *bin = NULL;

        for (size_t i = 0; i < ELEMENTSOF(candidates) && !bin; i++)
                if (access(candidates[i], X_OK) == 0)
                        bin = candidates[i];
        if (!bin)
                return -ENOENT;
        if (asprintf(&conf_arg, "--conf-file=%s", conf_path) < 0)
                return -ENOMEM;
        /* --no-ping: no ICMP probe before an offer (it delays the first lease by 3 s). A new session, so
         * that a terminal's signals don't reach it. */
        return spawn_setsid((const char *[]) { bin, conf_arg, "--keep-in-foreground", "--no-ping", NULL }, ret_pid);
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
