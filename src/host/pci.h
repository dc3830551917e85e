/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* PCI devices below the sysfs root: enumeration through libpci (ids and names from pci.ids), the rest
 * (driver, IOMMU group, NUMA node, link, SR-IOV) from sysfs; and the privileged changes: binding to
 * vfio-pci and back, reset, number of virtual functions. Nothing here logs above debug: callers log
 * the changes (with who asked). */

typedef struct HostPciAddress {
        uint32_t domain, bus, slot, function;
} HostPciAddress;

#define HOST_PCI_ADDRESS_MAX 16
void host_pci_address_format(const HostPciAddress *a, char ret[HOST_PCI_ADDRESS_MAX]);
int host_pci_address_parse(const char *s, HostPciAddress *ret);
bool host_pci_address_equal(const HostPciAddress *a, const HostPciAddress *b);

typedef struct HostPciLink {
        bool present;
        char *speed; /* GT/s as libvirt writes it: "2.5", "8" */
        unsigned width;
} HostPciLink;

typedef struct HostPciDevice {
        HostPciAddress address;
        char *path;            /* the device directory as the kernel names it ("/sys/devices/...") */
        bool has_parent;       /* parent is a PCI device (bridge / root port) */
        HostPciAddress parent;
        uint16_t vendor_id, device_id;
        uint32_t class_code;
        char *vendor_name, *device_name;
        char *driver;          /* NULL: unbound */
        int64_t iommu_group;   /* -1: none */
        HostPciAddress *group; /* the members of the group, this device included */
        size_t n_group;
        int numa_node;         /* -1: none */
        bool pcie;
        HostPciLink link_cap, link_sta;
        /* SR-IOV */
        bool is_pf;
        unsigned total_vfs;
        HostPciAddress *vfs; /* by VF index: the VFs there are */
        size_t n_vfs;
        bool is_vf;
        HostPciAddress pf;
        int vf_index; /* -1 when not a VF or not found */
} HostPciDevice;

void host_pci_device_done(HostPciDevice *d);
void host_pci_device_list_free(HostPciDevice *l, size_t n);

/* All PCI devices, sorted by address. */
int host_pci_list(HostPciDevice **ret, size_t *ret_n);
/* One device; -ENODEV if there's no such device. */
int host_pci_get(const HostPciAddress *a, HostPciDevice *ret);

/* The driver a device is bound to; *ret NULL when unbound. -ENODEV if no such device. */
int host_pci_get_driver(const HostPciAddress *a, char **ret);

#define HOST_PCI_VFIO_DRIVER "vfio-pci"

/* Gives the device to driver (vfio-pci): checks that the device has an IOMMU group and that the group is
 * viable, i.e. every other member is unbound, bound to vfio-pci, a bridge, or among together[] (devices
 * given away in the same operation); then driver_override, unbind, drivers_probe, and checks the result.
 * Undoes driver_override on failure. Sets *ret_previous (may be NULL) to the driver it had. Returns 0, or
 * 1 if it was already bound to driver. */
int host_pci_detach(const HostPciAddress *a, const char *driver, const HostPciAddress *together, size_t n_together,
                    char **ret_previous, VbError *reterr);
/* The members of a's IOMMU group that are not bridges (a included); -ENOENT without a group. */
int host_pci_group_endpoints(const HostPciAddress *a, HostPciAddress **ret, size_t *ret_n);
/* Gives a device bound to vfio-pci back to the host: clears driver_override, unbinds and lets the
 * kernel probe its own driver. Sets *ret_driver (may be NULL) to the driver it got (NULL: none). */
int host_pci_reattach(const HostPciAddress *a, char **ret_driver, VbError *reterr);
/* Function-level (or bus) reset through the device's reset file. */
int host_pci_reset(const HostPciAddress *a, VbError *reterr);
/* sriov_numvfs on a physical function (through 0 when changing a non-zero count, as the kernel wants). */
int host_pci_set_num_vfs(const HostPciAddress *a, unsigned n, VbError *reterr);

/* The network interfaces (names) of a PCI device, NULL-terminated; caller frees (each and the array). */
int host_pci_net_names(const HostPciAddress *a, char ***ret);
