/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/macvtap.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/netlink-net.h"
#include "util/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put);

static int nl_to_errno(int nlerr) {
        switch (-nlerr) {
        case NLE_EXIST: return -EEXIST;
        case NLE_NODEV:
        case NLE_OBJ_NOTFOUND: return -ENODEV;
        case NLE_PERM: return -EPERM;
        case NLE_NOMEM: return -ENOMEM;
        case NLE_OPNOTSUPP: return -EOPNOTSUPP;
        case NLE_INVAL: return -EINVAL;
        case NLE_BUSY: return -EBUSY;
        default: return -EIO;
        }
}

static int open_socket(struct nl_sock **ret) {
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_to_errno(r);
        }
        *ret = sk;
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free);

/* RTM_NEWLINK by hand: libnl-route has no setters for the bridge's own attributes (IFLA_BR_*). */
int host_netlink_bridge_add(const char *name, uint32_t mtu, const uint8_t *mac, int stp, int64_t delay_sec) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
        struct nlattr *linkinfo, *data;
        int r;

        r = open_socket(&sk);
        if (r < 0)
                return r;
        msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        if (!msg)
                return -ENOMEM;
        if (nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 || nla_put_string(msg, IFLA_IFNAME, name) < 0 ||
            (mtu > 0 && nla_put_u32(msg, IFLA_MTU, mtu) < 0) || (mac && nla_put(msg, IFLA_ADDRESS, 6, mac) < 0))
                return -ENOMEM;
        linkinfo = nla_nest_start(msg, IFLA_LINKINFO);
        if (!linkinfo || nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0)
                return -ENOMEM;
        if (stp >= 0 || delay_sec >= 0) {
                data = nla_nest_start(msg, IFLA_INFO_DATA);
                if (!data || (stp >= 0 && nla_put_u32(msg, IFLA_BR_STP_STATE, stp > 0) < 0) ||
                    /* In hundredths of a second (USER_HZ). */
                    (delay_sec >= 0 && nla_put_u32(msg, IFLA_BR_FORWARD_DELAY, (uint32_t) delay_sec * 100) < 0))
                        return -ENOMEM;
                nla_nest_end(msg, data);
        }
        nla_nest_end(msg, linkinfo);
        r = nl_send_sync(sk, TAKE_PTR(msg)); /* frees the message */
        if (r < 0) {
                log_debug("Failed to add bridge '%s': %s", name, nl_geterror(r));
                return nl_to_errno(r);
        }
        return 0;
}

int host_netlink_address_add(const char *ifname, const char *address, unsigned prefix) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
        _cleanup_free_ char *spec = NULL;
        int ifindex = (int) if_nametoindex(ifname), family = strchr(address, ':') ? AF_INET6 : AF_INET, r;

        if (ifindex == 0)
                return -ENODEV;
        r = open_socket(&sk);
        if (r < 0)
                return r;
        if (asprintf(&spec, "%s/%u", address, prefix) < 0)
                return -ENOMEM;
        r = nl_addr_parse(spec, family, &local);
        if (r < 0)
                return -EINVAL;
        a = rtnl_addr_alloc();
        if (!a)
                return -ENOMEM;
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, family);
        r = rtnl_addr_set_local(a, local);
        if (r < 0)
                return nl_to_errno(r);
        if (family == AF_INET) {
                /* The broadcast address of the subnet, as `ip addr add ... brd +` does. */
                struct in_addr in;
                _cleanup_(nl_addr_putp) struct nl_addr *brd = NULL;

                if (inet_pton(AF_INET, address, &in) == 1 && prefix < 31) {
                        uint32_t host = prefix == 0 ? 0xffffffffu : (1u << (32 - prefix)) - 1;

                        in.s_addr = htonl(ntohl(in.s_addr) | host);
                        brd = nl_addr_build(AF_INET, &in, 4);
                        if (brd)
                                (void) rtnl_addr_set_broadcast(a, brd);
                }
        }
        r = rtnl_addr_add(sk, a, 0);
        if (r < 0) {
                log_debug("Failed to add address %s to '%s': %s", spec, ifname, nl_geterror(r));
                return nl_to_errno(r);
        }
        return 0;
}

int host_netlink_link_up(const char *ifname) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL, *change = NULL;
        int r;

        r = open_socket(&sk);
        if (r < 0)
                return r;
        r = rtnl_link_get_kernel(sk, 0, ifname, &link);
        if (r < 0)
                return nl_to_errno(r);
        change = rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        rtnl_link_set_flags(change, IFF_UP);
        r = rtnl_link_change(sk, link, change, 0);
        return r < 0 ? nl_to_errno(r) : 0;
}

int host_netlink_link_delete(const char *ifname) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        int r;

        r = open_socket(&sk);
        if (r < 0)
                return r;
        r = rtnl_link_get_kernel(sk, 0, ifname, &link);
        if (r < 0)
                return nl_to_errno(r);
        r = rtnl_link_delete(sk, link);
        return r < 0 ? nl_to_errno(r) : 0;
}

bool host_netlink_link_exists(const char *ifname) {
        return if_nametoindex(ifname) > 0;
}

int host_netlink_macvtap_add(const char *name, const char *lower, const char *mode, const uint8_t *mac) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *lladdr = NULL;
        int lower_index = (int) if_nametoindex(lower), m, r;

        if (lower_index == 0)
                return -ENODEV;
        m = rtnl_link_macvtap_str2mode(streq(mode, "passthrough") ? "passthru" : mode);
        if (m < 0)
                return -EINVAL;
        r = open_socket(&sk);
        if (r < 0)
                return r;
        link = rtnl_link_macvtap_alloc();
        if (!link)
                return -ENOMEM;
        rtnl_link_set_name(link, name);
        rtnl_link_set_link(link, lower_index);
        r = rtnl_link_macvtap_set_mode(link, (uint32_t) m);
        if (r < 0)
                return nl_to_errno(r);
        if (mac) {
                lladdr = nl_addr_build(AF_LLC, mac, 6);
                if (!lladdr)
                        return -ENOMEM;
                rtnl_link_set_addr(link, lladdr);
        }
        rtnl_link_set_flags(link, IFF_UP);
        r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
        if (r < 0) {
                log_debug("Failed to add macvtap '%s' on '%s': %s", name, lower, nl_geterror(r));
                return nl_to_errno(r);
        }
        r = (int) if_nametoindex(name);
        return r > 0 ? r : -ENODEV;
}

int host_netlink_route_add(const char *ifname, const char *address, unsigned prefix, const char *gateway,
                           uint32_t metric) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_route_putp) struct rtnl_route *route = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL, *gw = NULL;
        _cleanup_free_ char *spec = NULL;
        int ifindex = (int) if_nametoindex(ifname), family = strchr(address, ':') ? AF_INET6 : AF_INET, r;
        struct rtnl_nexthop *nh;

        if (ifindex == 0)
                return -ENODEV;
        if (asprintf(&spec, "%s/%u", address, prefix) < 0)
                return -ENOMEM;
        if (nl_addr_parse(spec, family, &dst) < 0 || nl_addr_parse(gateway, family, &gw) < 0)
                return -EINVAL;
        r = open_socket(&sk);
        if (r < 0)
                return r;
        route = rtnl_route_alloc();
        nh = rtnl_route_nh_alloc();
        if (!route || !nh) {
                rtnl_route_nh_free(nh);
                return -ENOMEM;
        }
        rtnl_route_set_family(route, (uint8_t) family);
        r = rtnl_route_set_dst(route, dst);
        if (r < 0) {
                rtnl_route_nh_free(nh);
                return nl_to_errno(r);
        }
        if (metric > 0)
                rtnl_route_set_priority(route, metric);
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_nh_set_gateway(nh, gw);
        rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
        r = rtnl_route_add(sk, route, NLM_F_CREATE | NLM_F_EXCL);
        if (r < 0) {
                log_debug("Failed to add route %s via %s on '%s': %s", spec, gateway, ifname, nl_geterror(r));
                return nl_to_errno(r);
        }
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free);

/* Whether a/alen and b/blen share an address: the shorter prefix of the two covers the other's start. */
static bool prefixes_overlap(const unsigned char *a, unsigned alen, const unsigned char *b, unsigned blen) {
        unsigned n = alen < blen ? alen : blen;

        for (unsigned i = 0; i < n / 8; i++)
                if (a[i] != b[i])
                        return false;
        if (n % 8 == 0)
                return true;
        return ((a[n / 8] ^ b[n / 8]) & (0xff00 >> (n % 8)) & 0xff) == 0;
}

int host_netlink_route_overlap(const char *address, unsigned prefix, const char *except_ifname, char **ret_what) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        int family = strchr(address, ':') ? AF_INET6 : AF_INET, except = except_ifname ? (int) if_nametoindex(except_ifname) : 0;
        unsigned char want[16];
        int r;

        if (inet_pton(family, address, want) != 1 || prefix > (family == AF_INET ? 32u : 128u))
                return -EINVAL;
        r = open_socket(&sk);
        if (r < 0)
                return r;
        r = rtnl_route_alloc_cache(sk, family, 0, &cache);
        if (r < 0)
                return nl_to_errno(r);
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *) o;
                struct nl_addr *dst = rtnl_route_get_dst(rt);
                struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, 0);
                unsigned plen = dst ? nl_addr_get_prefixlen(dst) : 0;
                char text[INET6_ADDRSTRLEN + 8], dev[IF_NAMESIZE] = "";

                /* The main table only; the default route is what every new route narrows, by design;
                 * the network's own bridge may carry its own routes already (a redefinition). */
                if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || plen == 0 || !dst ||
                    nl_addr_get_len(dst) != (family == AF_INET ? 4u : 16u))
                        continue;
                if (nh && except > 0 && rtnl_route_nh_get_ifindex(nh) == except)
                        continue;
                if (family == AF_INET6 && ((const unsigned char *) nl_addr_get_binary_addr(dst))[0] == 0xfe &&
                    (((const unsigned char *) nl_addr_get_binary_addr(dst))[1] & 0xc0) == 0x80)
                        continue; /* fe80::/64 is on every link */
                if (!prefixes_overlap(want, prefix, nl_addr_get_binary_addr(dst), plen))
                        continue;
                if (ret_what) {
                        if (nh)
                                (void) if_indextoname((unsigned) rtnl_route_nh_get_ifindex(nh), dev);
                        nl_addr2str(dst, text, sizeof text);
                        if (asprintf(ret_what, "%s%s%s", text, *dev ? " dev " : "", dev) < 0)
                                return -ENOMEM;
                }
                return 1;
        }
        return 0;
}

int host_netlink_links_stats(const char * const *names, size_t n, HostLinkStats *ret, bool *found) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r;

        r = open_socket(&sk);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;

                ret[i] = (HostLinkStats) {};
                found[i] = false;
                if (!names[i])
                        continue;
                r = rtnl_link_get_kernel(sk, 0, names[i], &link);
                if (r < 0) {
                        r = nl_to_errno(r);
                        if (r == -ENODEV)
                                continue;
                        return r;
                }
                found[i] = true;
                ret[i] = (HostLinkStats) {
                        .rx_bytes = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES),
                        .rx_packets = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS),
                        .rx_errors = rtnl_link_get_stat(link, RTNL_LINK_RX_ERRORS),
                        .rx_dropped = rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED),
                        .tx_bytes = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES),
                        .tx_packets = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS),
                        .tx_errors = rtnl_link_get_stat(link, RTNL_LINK_TX_ERRORS),
                        .tx_dropped = rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED),
                };
        }
        return 0;
}

void host_neighbours_free(HostNeighbour *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i].address);
        free(l);
}

static int neighbour_add(struct rtnl_neigh *neigh, const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **list,
                         size_t *n, size_t *allocated) {
        struct nl_addr *ll = rtnl_neigh_get_lladdr(neigh), *dst = rtnl_neigh_get_dst(neigh);
        int family = rtnl_neigh_get_family(neigh), state = rtnl_neigh_get_state(neigh);
        char buf[INET6_ADDRSTRLEN];

        if (!ll || !dst || nl_addr_get_len(ll) != 6 || (family != AF_INET && family != AF_INET6) ||
            (state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NOARP)) || state == NUD_NONE)
                return 0;
        for (size_t i = 0; i < n_macs; i++) {
                if (memcmp(nl_addr_get_binary_addr(ll), macs[i], 6) != 0)
                        continue;
                if (!inet_ntop(family, nl_addr_get_binary_addr(dst), buf, sizeof buf))
                        return 0;
                if (*n == *allocated) {
                        size_t k = *allocated ? *allocated * 2 : 8;
                        HostNeighbour *p = reallocarray(*list, k, sizeof **list);
                        if (!p)
                                return -ENOMEM;
                        *list = p;
                        *allocated = k;
                }
                (*list)[*n] = (HostNeighbour) { .mac_index = i, .family = family == AF_INET ? 4 : 6,
                                                .address = strdup(buf) };
                if (!(*list)[*n].address)
                        return -ENOMEM;
                (*n)++;
                return 0;
        }
        return 0;
}

int host_netlink_neighbours(const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret, size_t *ret_n) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nl_cache_freep) struct nl_cache *cache = NULL;
        HostNeighbour *list = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = open_socket(&sk);
        if (r < 0)
                return r;
        r = rtnl_neigh_alloc_cache(sk, &cache);
        if (r < 0)
                return nl_to_errno(r);
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                r = neighbour_add((struct rtnl_neigh *) o, macs, n_macs, &list, &n, &allocated);
                if (r < 0) {
                        host_neighbours_free(list, n);
                        return r;
                }
        }
        *ret = list;
        *ret_n = n;
        return 0;
}
