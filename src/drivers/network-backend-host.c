/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host network backend: bridge + addresses (libnl-3), an nftables table per network, one dnsmasq
 * per network. Everything in the current network namespace. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/network-backend.h"
#include "host/dnsmasq.h"
#include "host/user-open.h"
#include "host/netlink-net.h"
#include "host/nft.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

#define NFT_FAMILY "inet"
/* The rights a TFTP root of a definition that recorded none is opened with: nobody's. */
#define TFTP_UID_UNKNOWN ((uid_t) 65534)

/* Our table for a network: virtbus_<bridge>, with anything but letters and digits turned into '_'. */
static void table_name(const NetworkDef *def, char ret[64]) {
        size_t i = 0;

        i = (size_t) snprintf(ret, 64, "virtbus_");
        for (const char *p = def->bridge; p && *p && i < 63; p++)
                ret[i++] = (char) ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_');
        ret[i] = 0;
}

static NetworkForwardMode mode_of(const NetworkDef *def) {
        return def->has_forward ? def->forward.mode : NETWORK_FORWARD_NONE;
}

/* The prefix an <ip> is given on the bridge: its own, else /24 or /64. */
static unsigned effective_prefix(const NetworkIpDef *ip) {
        return ip->prefix ?: (ip->family == NETWORK_FAMILY_IPV4 ? 24 : 64);
}

/* The subnet of an <ip> as "10.0.0.0/24" or "fd00::/64". */
static int ip_subnet(const NetworkIpDef *ip, char ret[INET6_ADDRSTRLEN + 8]) {
        int family = ip->family == NETWORK_FAMILY_IPV4 ? AF_INET : AF_INET6;
        unsigned prefix = effective_prefix(ip), len = family == AF_INET ? 4 : 16;
        unsigned char a[16];
        char text[INET6_ADDRSTRLEN];

        if (inet_pton(family, ip->address, a) != 1 || prefix > len * 8)
                return -EINVAL;
        for (unsigned i = 0; i < len; i++) {
                unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;

                a[i] &= bits >= 8 ? 0xff : (unsigned char) (0xff00 >> bits);
        }
        if (!inet_ntop(family, a, text, sizeof text))
                return -EINVAL;
        snprintf(ret, INET6_ADDRSTRLEN + 8, "%s/%u", text, prefix);
        return 0;
}

static bool needs_table(const NetworkDef *def) {
        NetworkForwardMode m = mode_of(def);
        return m == NETWORK_FORWARD_NAT || m == NETWORK_FORWARD_ROUTE || m == NETWORK_FORWARD_NONE;
}

static void append_masquerade(StrBuf *b, const NetworkDef *def, const char *subnet) {
        const NetworkForwardDef *f = &def->forward;

        strbuf_appendf(b, "    ip saddr %s ip daddr 224.0.0.0/24 return\n", subnet);
        strbuf_appendf(b, "    ip saddr %s ip daddr 255.255.255.255 return\n", subnet);
        if (f->nat_start)
                strbuf_appendf(b, "    ip saddr %s ip daddr != %s snat to %s-%s", subnet, subnet, f->nat_start,
                               f->nat_end ?: f->nat_start);
        else
                strbuf_appendf(b, "    ip saddr %s ip daddr != %s masquerade", subnet, subnet);
        if (f->nat_port_start > 0)
                strbuf_appendf(b, " to :%u-%u", f->nat_port_start, f->nat_port_end);
        strbuf_append(b, "\n");
}

/* The ruleset file: our table only, replaced as a whole (create, delete, define). */
/* The forward chain: traffic within the bridge; for nat and route networks their subnets out (IPv4
 * back in only as replies with nat; IPv6 is routed); anything else from or to the bridge is refused. */
static int append_forward_chain(StrBuf *b, const NetworkDef *def) {
        NetworkForwardMode m = mode_of(def);

        strbuf_append(b, "  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
        strbuf_appendf(b, "    iifname \"%s\" oifname \"%s\" accept\n", def->bridge, def->bridge);
        for (size_t i = 0; m != NETWORK_FORWARD_NONE && i < def->n_ips; i++) {
                const NetworkIpDef *ip = &def->ips[i];
                const char *fam = ip->family == NETWORK_FAMILY_IPV4 ? "ip" : "ip6";
                char subnet[INET6_ADDRSTRLEN + 8];

                if (ip_subnet(ip, subnet) < 0)
                        return -EINVAL;
                strbuf_appendf(b, "    iifname \"%s\" %s saddr %s accept\n", def->bridge, fam, subnet);
                strbuf_appendf(b, "    oifname \"%s\" %s daddr %s%s accept\n", def->bridge, fam, subnet,
                               m == NETWORK_FORWARD_NAT && ip->family == NETWORK_FAMILY_IPV4 ? " ct state established,related" : "");
        }
        strbuf_appendf(b, "    iifname \"%s\" reject\n    oifname \"%s\" reject\n  }\n", def->bridge, def->bridge);
        return 0;
}

/* The ruleset file: our table only (family inet: IPv4 and IPv6), replaced as a whole (create, delete,
 * define), so that loading it twice is harmless. */
static int write_ruleset(const NetworkDef *def, const char *path) {
        const NetworkIpDef *ip4 = network_def_ipv4(def);
        _cleanup_free_ char *text = NULL;
        char table[64], subnet[INET6_ADDRSTRLEN + 8];
        StrBuf b = STRBUF_NULL;
        int r;

        table_name(def, table);
        strbuf_appendf(&b, "table %s %s\ndelete table %s %s\ntable %s %s {\n", NFT_FAMILY, table, NFT_FAMILY, table,
                       NFT_FAMILY, table);
        r = append_forward_chain(&b, def);
        if (r < 0) {
                strbuf_done(&b);
                return r;
        }
        if (mode_of(def) == NETWORK_FORWARD_NAT && ip4 && ip_subnet(ip4, subnet) >= 0) {
                strbuf_append(&b, "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
                append_masquerade(&b, def, subnet);
                strbuf_append(&b, "  }\n");
        }
        strbuf_append(&b, "}\n");
        text = strbuf_steal(&b);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600);
}

static bool wants_dnsmasq(const NetworkDef *def) {
        for (size_t i = 0; i < def->n_ips; i++)
                if (def->ips[i].has_dhcp || def->ips[i].tftp_root)
                        return true;
        return def->n_ips > 0 && def->dns.enable != 0;
}

/* ",1h", ",30m", ",infinite" for a <lease>; "" without one (dnsmasq's default). */
static void lease_suffix(const NetworkLease *l, char ret[32]) {
        const char *u = !l->unit || streq(l->unit, "minutes") ? "m" : streq(l->unit, "hours") ? "h" : "";

        if (!l->given)
                *ret = 0;
        else if (l->expiry == 0)
                snprintf(ret, 32, ",infinite");
        else
                snprintf(ret, 32, ",%" PRIu64 "%s", l->expiry, u);
}

static void append_dhcp(StrBuf *b, const NetworkIpDef *ip) {
        size_t n_addresses = 0;

        for (size_t i = 0; i < ip->n_ranges; i++) {
                const NetworkDhcpRange *r = &ip->ranges[i];

                if (ip->family == NETWORK_FAMILY_IPV4) {
                        unsigned prefix = effective_prefix(ip);
                        struct in_addr s, e, mask = { .s_addr = htonl(prefix ? 0xffffffffu << (32 - prefix) : 0) };

                        char lease[32];

                        lease_suffix(&r->lease, lease);
                        strbuf_appendf(b, "dhcp-range=%s,%s,%s%s\n", r->start, r->end, inet_ntoa(mask), lease);
                        if (inet_pton(AF_INET, r->start, &s) == 1 && inet_pton(AF_INET, r->end, &e) == 1)
                                n_addresses += ntohl(e.s_addr) - ntohl(s.s_addr) + 1;
                } else {
                        char lease[32];

                        lease_suffix(&r->lease, lease);
                        strbuf_appendf(b, "dhcp-range=%s,%s,%u%s\n", r->start, r->end, effective_prefix(ip), lease);
                }
        }
        for (size_t i = 0; i < ip->n_hosts; i++) {
                const NetworkDhcpHost *h = &ip->hosts[i];
                char lease[32];

                lease_suffix(&h->lease, lease);
                strbuf_appendf(b, "dhcp-host=%s%s%s%s%s%s\n", h->mac ?: h->id ?: "", h->ip ? "," : "", strempty(h->ip),
                               h->name ? "," : "", strempty(h->name), lease);
        }
        if (ip->family == NETWORK_FAMILY_IPV6 && ip->n_ranges > 0)
                strbuf_append(b, "enable-ra\n"); /* DHCPv6 clients need router advertisements */
        if (ip->n_ranges > 0 || ip->n_hosts > 0) {
                strbuf_append(b, "dhcp-no-override\ndhcp-authoritative\n");
                if (n_addresses > 0)
                        strbuf_appendf(b, "dhcp-lease-max=%zu\n", n_addresses + ip->n_hosts);
        }
        if (ip->bootp_file)
                strbuf_appendf(b, "dhcp-boot=%s%s%s\n", ip->bootp_file, ip->bootp_server ? ",," : "",
                               strempty(ip->bootp_server));
}

static void append_dns(StrBuf *b, const NetworkDef *def) {
        const NetworkDnsDef *dns = &def->dns;

        if (dns->enable == 0) {
                strbuf_append(b, "port=0\n");
                return;
        }
        if (def->domain_name)
                strbuf_appendf(b, "domain=%s\nexpand-hosts\nlocal=/%s/\n", def->domain_name, def->domain_name);
        for (size_t i = 0; i < dns->n_forwarders; i++) {
                const struct NetworkDnsForwarder *f = &dns->forwarders[i];

                if (f->domain)
                        strbuf_appendf(b, "server=/%s/%s\n", f->domain, strempty(f->addr));
                else
                        strbuf_appendf(b, "server=%s\n", f->addr);
        }
        for (size_t i = 0; i < dns->n_hosts; i++)
                for (size_t j = 0; j < dns->hosts[i].n_hostnames; j++)
                        strbuf_appendf(b, "host-record=%s,%s\n", dns->hosts[i].hostnames[j], dns->hosts[i].ip);
        for (size_t i = 0; i < dns->n_txts; i++)
                strbuf_appendf(b, "txt-record=%s,%s\n", dns->txts[i].name, strempty(dns->txts[i].value));
        for (size_t i = 0; i < dns->n_srvs; i++) {
                const struct NetworkDnsSrv *s = &dns->srvs[i];

                strbuf_appendf(b, "srv-host=_%s._%s%s%s", strempty(s->service), strempty(s->protocol), s->domain ? "." : "",
                               strempty(s->domain));
                if (s->target)
                        strbuf_appendf(b, ",%s,%d,%d,%d", s->target, s->port < 0 ? 0 : s->port,
                                       s->priority < 0 ? 0 : s->priority, s->weight < 0 ? 0 : s->weight);
                strbuf_append(b, "\n");
        }
}

/* dnsmasq's files: <runtime>/networks/<name>.dnsmasq/<leaf>; that directory is root's (0755): dnsmasq
 * writes only its lease file (made for it, rewritten in place) and its pid file (made while it is still
 * root); nobody else unprivileged writes anything there. */
static char *dnsmasq_path(VbNetworkBackend *b, const NetworkDef *def, const char *leaf) {
        _cleanup_free_ char *dir = vb_network_backend_path(b, def, "dnsmasq");
        char *p;

        if (!dir)
                return NULL;
        if (!leaf)
                return TAKE_PTR(dir);
        return asprintf(&p, "%s/%s", dir, leaf) < 0 ? NULL : p;
}

static int write_dnsmasq_conf(VbNetworkBackend *b, const NetworkDef *def, const HostDnsmasqUser *user, const char *path) {
        _cleanup_free_ char *pid = dnsmasq_path(b, def, "pid"), *leases = dnsmasq_path(b, def, "leases");
        _cleanup_free_ char *tftp = dnsmasq_path(b, def, "tftp"), *text = NULL;
        StrBuf s = STRBUF_NULL;

        if (!pid || !leases || !tftp)
                return -ENOMEM;
        strbuf_appendf(&s, "# Written by virtbusd for network '%s'; changes are overwritten.\n", def->name);
        strbuf_appendf(&s, "strict-order\npid-file=%s\nexcept-interface=lo\nbind-dynamic\ninterface=%s\n", pid,
                       def->bridge);
        /* dnsmasq reads this file and opens its sockets, pid and lease file as root, then becomes user=
         * keeping only what DHCP and DNS on the bridge need (CAP_NET_ADMIN, CAP_NET_BIND_SERVICE). */
        strbuf_appendf(&s, "user=%s\n", user->name);
        if (*user->group)
                strbuf_appendf(&s, "group=%s\n", user->group);
        strbuf_appendf(&s, "no-ping\ndhcp-leasefile=%s\n", leases);
        append_dns(&s, def);
        for (size_t i = 0; i < def->n_ips; i++)
                append_dhcp(&s, &def->ips[i]);
        /* The TFTP tree is bind-mounted here in dnsmasq's own mount namespace (host_dnsmasq_start). */
        if (network_def_tftp_root(def))
                strbuf_appendf(&s, "enable-tftp\ntftp-root=%s\n", tftp);
        text = strbuf_steal(&s);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600);
}

/* The directory, the empty lease file given to dnsmasq's user, the mount point of the TFTP tree. */
static int prepare_dnsmasq_dir(VbNetworkBackend *b, const NetworkDef *def, const HostDnsmasqUser *user) {
        _cleanup_free_ char *dir = dnsmasq_path(b, def, NULL), *leases = dnsmasq_path(b, def, "leases");
        _cleanup_free_ char *tftp = dnsmasq_path(b, def, "tftp");
        struct stat st;
        int fd, r = 0;

        if (!dir || !leases || !tftp)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
                return -EPERM;
        fd = open(leases, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return -errno;
        if (fchown(fd, user->uid, user->gid) < 0 || fchmod(fd, 0644) < 0)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;
        if (network_def_tftp_root(def) && mkdir(tftp, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int read_pid(const char *path, pid_t *ret) {
        _cleanup_free_ char *s = NULL;
        long v;
        int r;

        r = read_full_file(path, 64, &s, NULL);
        if (r < 0)
                return r;
        v = strtol(s, NULL, 10);
        if (v <= 1)
                return -EINVAL;
        *ret = (pid_t) v;
        return 0;
}

/* SIGTERM, then up to 2 s for it to go (reaping it when it is our child), then SIGKILL. */
static void kill_and_wait(pid_t pid) {
        struct timespec pause = { 0, 10 * 1000 * 1000 };

        if (kill(pid, SIGTERM) < 0)
                return;
        for (int i = 0; i < 200; i++) {
                pid_t w = waitpid(pid, NULL, WNOHANG);

                if (w == pid || (w < 0 && errno == ECHILD && kill(pid, 0) < 0))
                        return;
                nanosleep(&pause, NULL);
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

/* Whether pid is the dnsmasq we started with conf_path (a pid in a stale file may name another process). */
static bool is_our_dnsmasq(pid_t pid, const char *conf_path) {
        _cleanup_free_ char *path = NULL, *cmdline = NULL, *want = NULL;
        size_t size = 0;

        if (asprintf(&path, "/proc/%d/cmdline", (int) pid) < 0 || asprintf(&want, "--conf-file=%s", conf_path) < 0 ||
            read_full_file(path, 0, &cmdline, &size) < 0)
                return false;
        for (size_t i = 0; i < size; i += strlen(cmdline + i) + 1)
                if (streq(cmdline + i, want))
                        return true;
        return false;
}

/* The network's dnsmasq, if it runs: the pid we recorded, or (a crash before we did) the one dnsmasq
 * wrote itself. */
static bool find_dnsmasq(VbNetworkBackend *b, const NetworkDef *def, pid_t *ret) {
        _cleanup_free_ char *ourpid = vb_network_backend_path(b, def, "ourpid");
        _cleanup_free_ char *itspid = dnsmasq_path(b, def, "pid"), *conf = dnsmasq_path(b, def, "conf");
        const char *files[] = { ourpid, itspid };
        pid_t pid;

        for (size_t i = 0; conf && i < ELEMENTSOF(files); i++) {
                if (!files[i] || read_pid(files[i], &pid) < 0)
                        continue;
                if (is_our_dnsmasq(pid, conf)) {
                        *ret = pid;
                        return true;
                }
                host_dnsmasq_reap(pid); /* it died on its own (a zombie child), or the file is stale */
        }
        return false;
}

static void stop_dnsmasq(VbNetworkBackend *b, const NetworkDef *def) {
        static const char * const leaves[] = { "conf", "pid", "leases" };
        _cleanup_free_ char *ourpid = vb_network_backend_path(b, def, "ourpid");
        _cleanup_free_ char *tftp = dnsmasq_path(b, def, "tftp");
        _cleanup_free_ char *dir = dnsmasq_path(b, def, NULL);
        pid_t pid;

        if (find_dnsmasq(b, def, &pid)) {
                kill_and_wait(pid);
                log_notice("Stopped dnsmasq (pid %d) of network '%s'.", (int) pid, def->name);
        }
        if (ourpid)
                (void) unlink(ourpid);
        for (size_t i = 0; i < ELEMENTSOF(leaves); i++) {
                _cleanup_free_ char *p = dnsmasq_path(b, def, leaves[i]);

                if (p)
                        (void) unlink(p);
        }
        /* Only a mount point in dnsmasq's namespace, which ended with it: here an empty directory. */
        if (tftp)
                (void) rmdir(tftp);
        if (dir)
                (void) rmdir(dir);
}

/* The TFTP tree, opened with the rights of the user recorded with the definition (the caller who
 * defined it, whose own directory it must still be; 'nobody' for a definition saved before that was
 * recorded), or with the service's when polkit allowed the caller more, then without following
 * symlinks. */
static int open_tftp_root(const NetworkDef *def, int *ret_fd, VbError *reterr) {
        const char *root = network_def_tftp_root(def);
        uid_t uid = def->has_access_uid ? (def->access_host_files ? 0 : (uid_t) def->access_uid) : TFTP_UID_UNKNOWN;
        HostOpenRequest q = { .path = root, .mode = HOST_OPEN_DIRECTORY, .no_symlinks = def->access_host_files, .fd = -1 };
        struct stat st;
        int r;

        *ret_fd = -1;
        if (!root)
                return 0;
        r = host_open_as(uid, &q, 1);
        if (r >= 0 && q.error < 0)
                r = q.error;
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                                    "Failed to open the TFTP root '%s' of network '%s' with the rights of uid %u: %s", root,
                                    def->name, (unsigned) uid, strerror(-r));
        /* Still the caller's own tree (a directory swapped for a link to another one is not). */
        if (def->has_access_uid && !def->access_host_files && uid != 0 && (fstat(q.fd, &st) < 0 || st.st_uid != uid)) {
                close(q.fd);
                return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                                    "The TFTP root '%s' of network '%s' is no longer a directory of uid %u's own.", root,
                                    def->name, (unsigned) uid);
        }
        *ret_fd = q.fd;
        return 0;
}

static void fd_closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}

static int start_dnsmasq(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        _cleanup_free_ char *conf = dnsmasq_path(b, def, "conf"), *tftp = dnsmasq_path(b, def, "tftp");
        _cleanup_free_ char *ourpid = vb_network_backend_path(b, def, "ourpid");
        _cleanup_(fd_closep) int tftp_fd = -1;
        HostDnsmasqUser user;
        char buf[32];
        pid_t pid;
        int r;

        if (!conf || !ourpid || !tftp)
                return -ENOMEM;
        r = host_dnsmasq_user(&user);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "Failed to start dnsmasq for network '%s': neither user 'dnsmasq' nor 'virtbus-dnsmasq' exists",
                                    def->name);
        r = open_tftp_root(def, &tftp_fd, reterr);
        if (r < 0)
                return r;
        r = prepare_dnsmasq_dir(b, def, &user);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to prepare the files of dnsmasq in '%s': %s",
                                    conf, strerror(-r));
        r = write_dnsmasq_conf(b, def, &user, conf);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to write '%s': %s", conf, strerror(-r));
        r = host_dnsmasq_start(conf, tftp_fd, tftp, &pid);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start dnsmasq for network '%s': %s",
                                    def->name, strerror(-r));
        snprintf(buf, sizeof buf, "%d\n", (int) pid);
        /* Runtime state: replaced atomically, not synced on the event loop (dnsmasq's own pid file
         * names it too, should we die before this is written). */
        r = write_file_replace(ourpid, buf, strlen(buf), 0644);
        if (r < 0) {
                kill_and_wait(pid);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to write '%s': %s", ourpid, strerror(-r));
        }
        log_notice("Started dnsmasq (pid %d, user '%s') for network '%s' on '%s'%s%s%s.", (int) pid, user.name,
                   def->name, def->bridge, tftp_fd >= 0 ? ", serving TFTP from '" : "",
                   tftp_fd >= 0 ? network_def_tftp_root(def) : "", tftp_fd >= 0 ? "'" : "");
        return 0;
}

/* In the current network namespace (procfs shows the caller's). */
static int write_proc(const char *path) {
        int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, "1\n", 2) != 2)
                r = -errno;
        close(fd);
        return r;
}

static int enable_forwarding(const NetworkDef *def) {
        bool v4 = false, v6 = false;
        int r;

        for (size_t i = 0; i < def->n_ips; i++) {
                v4 = v4 || def->ips[i].family == NETWORK_FAMILY_IPV4;
                v6 = v6 || def->ips[i].family == NETWORK_FAMILY_IPV6;
        }
        if (v4 && (r = write_proc("/proc/sys/net/ipv4/ip_forward")) < 0)
                return r;
        if (v6 && (r = write_proc("/proc/sys/net/ipv6/conf/all/forwarding")) < 0)
                return r;
        if (v4 || v6)
                log_notice("Enabled %s%s%s forwarding for network '%s'.", v4 ? "IPv4" : "", v4 && v6 ? " and " : "",
                           v6 ? "IPv6" : "", def->name);
        return 0;
}

static int host_stop(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr);

static int bring_up_bridge(const NetworkDef *def, VbError *reterr) {
        int r;

        r = host_netlink_bridge_add(def->bridge, def->mtu, def->has_mac ? def->mac : NULL, def->stp,
                                    def->has_delay ? (int64_t) def->delay : -1);
        if (r == -EEXIST)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "A link named '%s' exists already.", def->bridge);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create bridge '%s': %s", def->bridge,
                                    strerror(-r));
        log_notice("Created bridge '%s' for network '%s'.", def->bridge, def->name);
        for (size_t i = 0; i < def->n_ips; i++) {
                const NetworkIpDef *ip = &def->ips[i];

                r = host_netlink_address_add(def->bridge, ip->address, effective_prefix(ip));
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to add address '%s' to '%s': %s",
                                            ip->address, def->bridge, strerror(-r));
        }
        r = host_netlink_link_up(def->bridge);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to bring up '%s': %s", def->bridge,
                                    strerror(-r));
        /* Static routes to networks behind a guest (they go away with the bridge). */
        for (size_t i = 0; i < def->n_routes; i++) {
                const NetworkRouteDef *rt = &def->routes[i];
                unsigned prefix = rt->has_prefix || rt->netmask ? rt->prefix : (strchr(rt->address, ':') ? 64 : 24);

                r = host_netlink_route_add(def->bridge, rt->address, prefix, rt->gateway, rt->has_metric ? rt->metric : 0);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to add the route to '%s/%u' via '%s': %s",
                                            rt->address, prefix, rt->gateway, strerror(-r));
        }
        return 0;
}

static int host_start(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        _cleanup_free_ char *rules = NULL;
        char table[64];
        int r;

        if (!network_def_has_own_bridge(def))
                return 0; /* host bridge / forward devices / VF pool: nothing to set up until guests come */
        if (!def->bridge)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' has no bridge name.", def->name);
        r = bring_up_bridge(def, reterr);
        if (r == -EEXIST)
                return r; /* not ours: a failed start must not remove somebody else's link */
        if (r < 0)
                goto fail;
        if (needs_table(def)) {
                rules = vb_network_backend_path(b, def, "nft");
                if (!rules) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = write_ruleset(def, rules);
                if (r >= 0)
                        r = host_nft_load(rules);
                if (r < 0) {
                        r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to load the firewall rules of network '%s' (%s): %s",
                                         def->name, rules, strerror(-r));
                        goto fail;
                }
                table_name(def, table);
                log_notice("Loaded nftables table '%s %s' for network '%s'.", NFT_FAMILY, table, def->name);
        }
        if (mode_of(def) == NETWORK_FORWARD_NAT || mode_of(def) == NETWORK_FORWARD_ROUTE) {
                r = enable_forwarding(def);
                if (r < 0) {
                        r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to enable IP forwarding: %s",
                                         strerror(-r));
                        goto fail;
                }
        }
        if (wants_dnsmasq(def)) {
                r = start_dnsmasq(b, def, reterr);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        (void) host_stop(b, def, NULL);
        return r;
}

static int host_stop(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        _cleanup_free_ char *rules = NULL;
        char table[64];
        int r;

        if (!network_def_has_own_bridge(def) || !def->bridge)
                return 0;
        stop_dnsmasq(b, def);
        table_name(def, table);
        r = host_nft_delete_table(NFT_FAMILY, table);
        if (r >= 0)
                log_notice("Removed nftables table '%s %s' of network '%s'.", NFT_FAMILY, table, def->name);
        else if (r != -ENOENT)
                log_warning_errno(r, "Failed to remove nftables table '%s %s', ignoring: %m", NFT_FAMILY, table);
        rules = vb_network_backend_path(b, def, "nft");
        if (rules)
                (void) unlink(rules);
        r = host_netlink_link_delete(def->bridge);
        if (r >= 0)
                log_notice("Removed bridge '%s' of network '%s'.", def->bridge, def->name);
        else if (r != -ENODEV)
                log_warning_errno(r, "Failed to remove bridge '%s', ignoring: %m", def->bridge);
        return 0;
}

static int host_resume(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        char table[64];
        pid_t pid;
        int r;

        if (!network_def_has_own_bridge(def) || !def->bridge)
                return 0;
        table_name(def, table);
        if (needs_table(def) && !host_nft_table_exists(NFT_FAMILY, table)) {
                _cleanup_free_ char *rules = vb_network_backend_path(b, def, "nft");

                if (!rules)
                        return -ENOMEM;
                r = write_ruleset(def, rules);
                if (r >= 0)
                        r = host_nft_load(rules);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to load the firewall rules of "
                                            "network '%s' (%s) again: %s", def->name, rules, strerror(-r));
                log_notice("Loaded nftables table '%s %s' for network '%s' again (a start or stop was cut short).",
                           NFT_FAMILY, table, def->name);
        }
        if ((mode_of(def) == NETWORK_FORWARD_NAT || mode_of(def) == NETWORK_FORWARD_ROUTE) &&
            (r = enable_forwarding(def)) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to enable IP forwarding: %s",
                                    strerror(-r));
        if (wants_dnsmasq(def) && !find_dnsmasq(b, def, &pid)) {
                stop_dnsmasq(b, def); /* its stale files */
                r = start_dnsmasq(b, def, reterr);
                if (r < 0)
                        return r;
                log_notice("Started dnsmasq of network '%s' again (a start or stop was cut short).", def->name);
        } else if (wants_dnsmasq(def)) {
                _cleanup_free_ char *ourpid = vb_network_backend_path(b, def, "ourpid");
                char buf[32];

                /* Ours from now on, if we died before recording it. */
                snprintf(buf, sizeof buf, "%d\n", (int) pid);
                if (ourpid)
                        (void) write_file_replace(ourpid, buf, strlen(buf), 0644);
        }
        return 0;
}

static bool host_is_running(VbNetworkBackend *b, const NetworkDef *def) {
        /* Networks of forward devices, host devices or a host bridge have nothing of their own on the
         * host: they are active as long as they were recorded so. */
        if (!network_def_has_own_bridge(def))
                return true;
        return def->bridge && host_netlink_link_exists(def->bridge);
}

static int host_get_leases(VbNetworkBackend *b, const NetworkDef *def, const uint8_t (*ports)[6], size_t n_ports,
                           const char *mac, HostDhcpLease **ret, size_t *ret_n, VbError *reterr) {
        _cleanup_free_ char *path = dnsmasq_path(b, def, "leases");
        int r;

        if (!path)
                return -ENOMEM;
        r = host_dnsmasq_read_leases(path, mac, ret, ret_n);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read '%s': %s", path, strerror(-r));
        return 0;
}

static int host_neighbours(VbNetworkBackend *b, const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret,
                           size_t *ret_n) {
        return host_netlink_neighbours(macs, n_macs, ret, ret_n);
}

static bool host_link_exists(VbNetworkBackend *b, const char *name) {
        return host_netlink_link_exists(name);
}

static int host_route_overlap(VbNetworkBackend *b, const char *address, unsigned prefix, const char *except_ifname,
                              char **ret_what) {
        return host_netlink_route_overlap(address, prefix, except_ifname, ret_what);
}

const VbNetworkBackendOps vb_network_backend_host_ops = {
        .name = "host",
        .start = host_start,
        .stop = host_stop,
        .is_running = host_is_running,
        .resume = host_resume,
        .get_leases = host_get_leases,
        .neighbours = host_neighbours,
        .link_exists = host_link_exists,
        .route_overlap = host_route_overlap,
};
