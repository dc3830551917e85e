/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Links of virtual networks through rtnetlink (libnl-3), in the current network namespace: bridges
 * with their addresses, and macvtaps on a forward device. Return -errno. */

/* A new bridge (fails with -EEXIST if a link of that name exists); mtu 0, mac NULL, stp < 0 and
 * delay_sec < 0 leave the kernel's defaults. */
int host_netlink_bridge_add(const char *name, uint32_t mtu, const uint8_t *mac, int stp, int64_t delay_sec);
/* address: "10.0.0.1" or "fd00::1". */
int host_netlink_address_add(const char *ifname, const char *address, unsigned prefix);
int host_netlink_link_up(const char *ifname);
/* A route to address/prefix via gateway on ifname (metric 0: the kernel's default). The kernel removes
 * it with the link. */
int host_netlink_route_add(const char *ifname, const char *address, unsigned prefix, const char *gateway,
                           uint32_t metric);
/* -ENODEV if there is no such link. */
int host_netlink_link_delete(const char *ifname);
/* Whether address/prefix overlaps a route of the main table (the default route, fe80::/64 and routes on
 * except_ifname left aside): 1 with *ret_what ("192.168.1.0/24 dev eth0", to free) if ret_what, 0 if
 * not, < 0 on error. */
int host_netlink_route_overlap(const char *address, unsigned prefix, const char *except_ifname, char **ret_what);
bool host_netlink_link_exists(const char *ifname);
/* A macvtap called name on lower in mode (bridge, private, vepa, passthru/passthrough), with mac
 * (may be NULL), brought up. Returns its ifindex (the character device is /dev/tap<ifindex>). */
int host_netlink_macvtap_add(const char *name, const char *lower, const char *mode, const uint8_t *mac);

/* A link's counters (IFLA_STATS64), as the host sees them. */
typedef struct HostLinkStats {
        uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
        uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
} HostLinkStats;
/* The counters of the n links named in names, over one rtnetlink socket: ret[i] for names[i]; found[i]
 * false for a link that does not exist (its counters zero). */
int host_netlink_links_stats(const char * const *names, size_t n, HostLinkStats *ret, bool *found);

/* An entry of the host's neighbour table (ARP, NDP) whose link-layer address is one of those asked. */
typedef struct HostNeighbour {
        size_t mac_index; /* which of the MACs asked */
        uint8_t family;   /* 4 or 6 */
        char *address;
} HostNeighbour;
void host_neighbours_free(HostNeighbour *l, size_t n);
/* The usable entries (not failed or incomplete) of the current namespace's neighbour table for the n_macs
 * MACs in macs, in the kernel's order. */
int host_netlink_neighbours(const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret, size_t *ret_n);
