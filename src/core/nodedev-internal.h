/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between the node device files of src/core. */
#include "core/nodedev.h"

/* The devices one scan of the host found. */
typedef struct NodeDevScan {
        NodeDevice **devices;
        size_t n, allocated;
} NodeDevScan;

/* Takes def (also on failure). pci: the device's PCI address, or NULL. */
int nodedev_scan_add(NodeDevScan *scan, NodeDevDef *def, const HostPciAddress *pci);
void nodedev_scan_done(NodeDevScan *scan);
/* Updates the registry from scan (taken), as manager_nodedev_scan() does after reading the host. */
int nodedev_scan_apply(Manager *m, NodeDevScan *scan);
NodeDevice *nodedev_free(NodeDevice *d);

/* nodedev-host.c */
int nodedev_host_enumerate(NodeDevScan *scan);

/* The first network interface of a physical function, through which its VFs are configured. */
int nodedev_pf_ifname(const HostPciAddress *pf, char **ret, VbError *reterr);
