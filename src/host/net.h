/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "host/pci.h"
#include "util/error.h"

/* Network interfaces of the host, and the MAC / VLAN of SR-IOV virtual functions, set through their
 * physical function.
 *
 * On the real /sys, links are read and VFs configured through rtnetlink (libnl-3: IFLA_VF_MAC,
 * IFLA_VF_VLAN). Under a fake sysfs root (tests, the test driver's simulated host) there is no kernel
 * behind the interfaces: their state comes from the tree's files, and VF settings are kept in a
 * ".fake-vf<N>" file next to the PF's interface, which is what a simulated NIC remembers. */

typedef struct HostNetInterface {
        char *name;
        char *mac;      /* "aa:bb:..." or NULL */
        char *state;    /* operstate: "up", "down", ... or NULL */
        unsigned speed; /* Mb/s, 0 unknown */
        bool has_pci;   /* parent is a PCI device */
        HostPciAddress pci;
        char *parent_path; /* its device directory when not PCI, else NULL */
} HostNetInterface;

void host_net_interface_list_free(HostNetInterface *l, size_t n);
int host_net_list(HostNetInterface **ret, size_t *ret_n);

typedef struct HostVfConfig {
        uint8_t mac[6];
        uint16_t vlan; /* 0: none */
} HostVfConfig;

/* VF vf of the physical function with interface pf_ifname. */
int host_net_vf_get(const char *pf_ifname, unsigned vf, HostVfConfig *ret, VbError *reterr);
int host_net_vf_set(const char *pf_ifname, unsigned vf, const HostVfConfig *cfg, VbError *reterr);

/* The same through rtnetlink in the current network namespace, whatever the sysfs root (tests call
 * these on a veth in a namespace they create: the kernel answers that it can't). */
int host_net_vf_get_netlink(const char *pf_ifname, unsigned vf, HostVfConfig *ret, VbError *reterr);
int host_net_vf_set_netlink(const char *pf_ifname, unsigned vf, const HostVfConfig *cfg, VbError *reterr);
