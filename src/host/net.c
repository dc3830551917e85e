/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <libgen.h>
#include <linux/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "host/net.h"
#include "host/sysfs.h"
#include "util/fileio.h"
#include "util/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);

static void interface_done(HostNetInterface *i) {
        free(i->name);
        free(i->mac);
        free(i->state);
        free(i->parent_path);
}

void host_net_interface_list_free(HostNetInterface *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                interface_done(&l[i]);
        free(l);
}

static void read_sysfs_state(HostNetInterface *i) {
        _cleanup_free_ char *pa = host_sysfs_path("class/net/%s/address", i->name),
                            *po = host_sysfs_path("class/net/%s/operstate", i->name);

        if (pa && !i->mac)
                (void) host_sysfs_read(pa, &i->mac);
        if (po && !i->state)
                (void) host_sysfs_read(po, &i->state);
}

/* MAC and operstate through rtnetlink, for the real /sys. */
static void read_netlink_state(HostNetInterface *l, size_t n) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;

        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(rtnl_link_putp) struct rtnl_link *link = rtnl_link_get_by_name(cache, l[i].name);
                struct nl_addr *addr;
                char buf[64];

                if (!link)
                        continue;
                addr = rtnl_link_get_addr(link);
                if (addr && nl_addr_get_len(addr) == 6 && !l[i].mac)
                        l[i].mac = strdup(nl_addr2str(addr, buf, sizeof buf));
                if (!l[i].state) {
                        rtnl_link_operstate2str(rtnl_link_get_operstate(link), buf, sizeof buf);
                        l[i].state = strdup(buf);
                }
        }
}

static int fill_interface(HostNetInterface *i) {
        _cleanup_free_ char *dev = host_sysfs_path("class/net/%s/device", i->name), *sp = NULL, *real = NULL,
                            *sub = NULL, *subsys = NULL;
        uint64_t speed;

        if (!dev)
                return -ENOMEM;
        sp = host_sysfs_path("class/net/%s/speed", i->name);
        if (sp && host_sysfs_read_u64(sp, &speed) >= 0 && speed < UINT32_MAX)
                i->speed = (unsigned) speed;
        real = realpath(dev, NULL);
        if (!real)
                return 0; /* virtual interface */
        if (asprintf(&sub, "%s/subsystem", real) < 0)
                return -ENOMEM;
        if (host_sysfs_link_name(sub, &subsys) >= 0 && streq(subsys, "pci") &&
            host_pci_address_parse(basename(real), &i->pci) >= 0)
                i->has_pci = true;
        else
                i->parent_path = TAKE_PTR(real);
        return 0;
}

int host_net_list(HostNetInterface **ret, size_t *ret_n) {
        _cleanup_free_ char *dir = host_sysfs_path("class/net");
        _cleanup_(closedirp) DIR *d = NULL;
        HostNetInterface *l = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r;

        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (!GREEDY_REALLOC(l, allocated, n + 1)) {
                        host_net_interface_list_free(l, n);
                        return -ENOMEM;
                }
                l[n] = (HostNetInterface) { .name = strdup(de->d_name) };
                if (!l[n++].name || (r = fill_interface(&l[n - 1])) < 0) {
                        host_net_interface_list_free(l, n);
                        return -ENOMEM;
                }
        }
        if (host_sysfs_is_real())
                read_netlink_state(l, n);
        for (size_t i = 0; i < n; i++)
                read_sysfs_state(&l[i]);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* rtnetlink */

static int netlink_error(VbError *reterr, int nlerr, const char *what, const char *ifname, unsigned vf) {
        if (nlerr == -NLE_OPNOTSUPP)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Failed to %s virtual function %u of '%s': Operation not supported", what, vf,
                                    ifname);
        if (nlerr == -NLE_OBJ_NOTFOUND || nlerr == -NLE_NODEV)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No network interface '%s'", ifname);
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to %s virtual function %u of '%s': %s", what,
                            vf, ifname, nl_geterror(nlerr));
}

static int open_link(const char *ifname, struct nl_sock **ret_sk, struct rtnl_link **ret_link, VbError *reterr) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *link = NULL;
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to open rtnetlink: %s", nl_geterror(r));
        r = rtnl_link_get_kernel(sk, 0, ifname, &link);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No network interface '%s': %s", ifname,
                                    nl_geterror(r));
        *ret_sk = TAKE_PTR(sk);
        *ret_link = link;
        return 0;
}

int host_net_vf_get_netlink(const char *pf_ifname, unsigned vf, HostVfConfig *ret, VbError *reterr) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        struct rtnl_link_vf *v;
        struct nl_addr *addr = NULL;
        nl_vf_vlans_t *vlans = NULL;
        HostVfConfig c = {};
        uint32_t num = 0;
        int r;

        r = open_link(pf_ifname, &sk, &link, reterr);
        if (r < 0)
                return r;
        /* libnl walks a missing VF list: ask for the count first. No count: the device has no VFs. */
        if (rtnl_link_get_num_vf(link, &num) < 0 || num == 0)
                return netlink_error(reterr, -NLE_OPNOTSUPP, "read", pf_ifname, vf);
        if (vf >= num)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "'%s' has %u virtual functions; there is no VF %u",
                                    pf_ifname, num, vf);
        v = rtnl_link_vf_get(link, vf);
        if (!v)
                return netlink_error(reterr, -NLE_OBJ_NOTFOUND, "read", pf_ifname, vf);
        if (rtnl_link_vf_get_addr(v, &addr) >= 0 && addr && nl_addr_get_len(addr) == 6)
                memcpy(c.mac, nl_addr_get_binary_addr(addr), 6);
        if (rtnl_link_vf_get_vlans(v, &vlans) >= 0 && vlans && vlans->size > 0)
                c.vlan = (uint16_t) vlans->vlans[0].vf_vlan;
        rtnl_link_vf_put(v);
        *ret = c;
        return 0;
}

int host_net_vf_set_netlink(const char *pf_ifname, unsigned vf, const HostVfConfig *cfg, VbError *reterr) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL, *change = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *addr = NULL;
        struct rtnl_link_vf *v = NULL;
        nl_vf_vlans_t *vlans = NULL;
        int r;

        r = open_link(pf_ifname, &sk, &link, reterr);
        if (r < 0)
                return r;
        change = rtnl_link_alloc();
        v = rtnl_link_vf_alloc();
        addr = nl_addr_build(AF_LLC, cfg->mac, 6);
        if (!change || !v || !addr || rtnl_link_vf_vlan_alloc(&vlans, 1) < 0) {
                rtnl_link_vf_put(v);
                return -ENOMEM;
        }
        rtnl_link_set_ifindex(change, rtnl_link_get_ifindex(link));
        rtnl_link_vf_set_index(v, vf);
        rtnl_link_vf_set_addr(v, addr);
        vlans->vlans[0] = (nl_vf_vlan_info_t) { .vf_vlan = cfg->vlan, .vf_vlan_qos = 0, .vf_vlan_proto = 0 };
        rtnl_link_vf_set_vlans(v, vlans);
        rtnl_link_vf_vlan_put(vlans);
        r = rtnl_link_vf_add(change, v);
        rtnl_link_vf_put(v);
        if (r < 0)
                return netlink_error(reterr, r, "configure", pf_ifname, vf);
        r = rtnl_link_change(sk, link, change, 0);
        if (r < 0)
                return netlink_error(reterr, r, "configure", pf_ifname, vf);
        return 0;
}

/* The simulated NIC of a fake tree. */

static char *fake_vf_path(const char *pf_ifname, unsigned vf) {
        return host_sysfs_path("class/net/%s/.fake-vf%u", pf_ifname, vf);
}

static int fake_vf_check(const char *pf_ifname, VbError *reterr) {
        _cleanup_free_ char *p = host_sysfs_path("class/net/%s", pf_ifname);

        if (!p)
                return -ENOMEM;
        if (access(p, F_OK) < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No network interface '%s'", pf_ifname);
        return 0;
}

int host_net_vf_get(const char *pf_ifname, unsigned vf, HostVfConfig *ret, VbError *reterr) {
        _cleanup_free_ char *p = NULL, *s = NULL;
        unsigned m[6], vlan = 0;
        int r;

        if (host_sysfs_is_real())
                return host_net_vf_get_netlink(pf_ifname, vf, ret, reterr);
        r = fake_vf_check(pf_ifname, reterr);
        if (r < 0)
                return r;
        p = fake_vf_path(pf_ifname, vf);
        if (!p)
                return -ENOMEM;
        *ret = (HostVfConfig) {};
        if (host_sysfs_read(p, &s) < 0)
                return 0; /* never set: zero MAC, no VLAN, as a fresh VF */
        if (sscanf(s, "%x:%x:%x:%x:%x:%x %u", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &vlan) != 7)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Unreadable VF state in '%s'", p);
        for (size_t i = 0; i < 6; i++)
                ret->mac[i] = (uint8_t) m[i];
        ret->vlan = (uint16_t) vlan;
        return 0;
}

int host_net_vf_set(const char *pf_ifname, unsigned vf, const HostVfConfig *cfg, VbError *reterr) {
        _cleanup_free_ char *p = NULL;
        char buf[64];
        int r;

        if (host_sysfs_is_real())
                return host_net_vf_set_netlink(pf_ifname, vf, cfg, reterr);
        r = fake_vf_check(pf_ifname, reterr);
        if (r < 0)
                return r;
        p = fake_vf_path(pf_ifname, vf);
        if (!p)
                return -ENOMEM;
        snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x %u\n", cfg->mac[0], cfg->mac[1], cfg->mac[2],
                 cfg->mac[3], cfg->mac[4], cfg->mac[5], cfg->vlan);
        r = write_file_atomic(p, buf, strlen(buf), 0644);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to configure VF %u of '%s': %s", vf,
                                    pf_ifname, strerror(-r));
        return 0;
}
