/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/network-conf.h"
#include "conf/network-resolve.h"
#include "host/dnsmasq.h"
#include "host/netlink-net.h"
#include "util/error.h"

/* What makes a virtual network real, behind one ops table that both hypervisor drivers share:
 *
 *   "simulated"  state only: Start/Stop change nothing on the host, ports get a made-up name, and each
 *                connected guest interface has a made-up lease from the first IPv4 DHCP range. The test driver uses it, so that the test driver never touches the host.
 *   "host"       the real thing in the current network namespace: a bridge (libnl-3) with its
 *                addresses, an nftables table of our own per network (NAT/forwarding), one dnsmasq per
 *                network (config, pid and lease file in <runtime>/networks/). The qemu driver uses it;
 *                tests ask for it with virtbusd --network-backend=host inside a network namespace they
 *                create.
 *
 * core/network.c decides what to do (state, persistence, pools); the backend only does it. Guest links
 * (the tap on the bridge, the macvtap on a forward device, the VF) are the hypervisor driver's: it gets
 * the interface resolved (core/network-manager.c), as a host device prepares its own. */
typedef struct VbNetworkBackend VbNetworkBackend;

typedef struct VbNetworkBackendOps {
        const char *name;
        /* Brings the network up: for nat/route/open/isolated networks the bridge (def->bridge is set),
         * its addresses, the firewall table and dnsmasq. Nothing is left behind on failure. */
        int (*start)(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr);
        /* Removes what start created; best effort, logs what it could not remove. */
        int (*stop)(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr);
        /* After a restart of virtbusd: whether what start created is still there. */
        bool (*is_running)(VbNetworkBackend *b, const NetworkDef *def);
        /* After a restart, for a network that is_running: does again what a start or stop cut short by a
         * crash left undone (NULL: nothing to do). */
        int (*resume)(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr);
        /* DHCP leases of the network (mac: "" or NULL for all). ports: the MACs of the guest interfaces
         * connected to it now (the simulated backend leases each of them an address). */
        int (*get_leases)(VbNetworkBackend *b, const NetworkDef *def, const uint8_t (*ports)[6], size_t n_ports,
                          const char *mac, HostDhcpLease **ret, size_t *ret_n, VbError *reterr);
        /* The host's neighbour table (ARP/NDP) entries of these MACs (InterfaceAddresses source 2). NULL where
         * there is no host (simulated). */
        int (*neighbours)(VbNetworkBackend *b, const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret,
                          size_t *ret_n);
        /* For what core/network-access.c refuses to callers other than root; NULL where there is no host
         * to ask (simulated): whether a link of that name exists; whether address/prefix overlaps a route
         * of the host (host_netlink_route_overlap). */
        bool (*link_exists)(VbNetworkBackend *b, const char *name);
        int (*route_overlap)(VbNetworkBackend *b, const char *address, unsigned prefix, const char *except_ifname,
                             char **ret_what);
} VbNetworkBackendOps;

struct VbNetworkBackend {
        const VbNetworkBackendOps *ops;
        char *runtime_dir; /* <runtime>/networks */
};

extern const VbNetworkBackendOps vb_network_backend_simulated_ops, vb_network_backend_host_ops;

/* name: "simulated" or "host"; NULL picks by driver: simulated for "test", host otherwise. */
int vb_network_backend_new(const char *name, const char *driver, const char *runtime_dir, VbNetworkBackend **ret,
                           VbError *reterr);
VbNetworkBackend *vb_network_backend_free(VbNetworkBackend *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(VbNetworkBackend *, vb_network_backend_free);

/* Files of a network in the backend's runtime dir: <dir>/<name>.<suffix>; caller frees. */
char *vb_network_backend_path(const VbNetworkBackend *b, const NetworkDef *def, const char *suffix);
