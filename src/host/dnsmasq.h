/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* dnsmasq, one instance per virtual network, started with a configuration file written by the caller. */

/* The user dnsmasq runs as (its configuration's user= and group=): Debian's 'dnsmasq' if it exists,
 * else 'virtbus-dnsmasq' (service/virtbus-dnsmasq.sysusers creates it). -ENOENT if neither exists. */
typedef struct HostDnsmasqUser {
        uid_t uid;
        gid_t gid;
        char name[64];
        char group[64]; /* "" if the primary group has no name */
} HostDnsmasqUser;

int host_dnsmasq_user(HostDnsmasqUser *ret);

/* Starts dnsmasq --conf-file=conf_path in the foreground as our child (no shell), in a session of its
 * own. With tftp_fd >= 0 (a directory) it runs in a mount namespace of its own in which that directory
 * is bind-mounted on tftp_mount read-only, nosuid, nodev, noexec and nosymfollow: dnsmasq reaches that
 * tree, as it was when the descriptor was opened, through a fixed path, and no symlink in it is
 * followed. Returns once dnsmasq is executing (or the error of setting that up). */
int host_dnsmasq_start(const char *conf_path, int tftp_fd, const char *tftp_mount, pid_t *ret_pid);

/* Reaps pid if it is an exited child of ours; harmless otherwise. */
void host_dnsmasq_reap(pid_t pid);

/* A line of dnsmasq's lease file: "EXPIRY MAC IP HOSTNAME CLIENT-ID" ('*' for unknown). */
typedef struct HostDhcpLease {
        uint64_t expiry; /* seconds since the epoch; 0: infinite */
        char *mac;
        char *ip;
        char *hostname;  /* NULL if unknown */
        char *client_id; /* NULL if unknown */
} HostDhcpLease;

void host_dhcp_leases_free(HostDhcpLease *l, size_t n);
/* The leases in path (none if the file does not exist yet); mac, if non-NULL and non-empty, keeps only
 * the leases of that MAC (compared case-insensitively). */
int host_dnsmasq_read_leases(const char *path, const char *mac, HostDhcpLease **ret, size_t *ret_n);
