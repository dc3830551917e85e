/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf-node.h"
#include "util/error.h"
#include "util/string-table.h"

/* A host device in libvirt's node device format (<device> with <capability> children).
 *
 * Two ways in: the service builds a NodeDevDef from what it found on the host (src/core fills the typed
 * capabilities) and formats it; or a document is parsed (virtbus-xml, tests), validated against
 * nodedev.rng, its typed part read, and the element kept as given so that formatting loses nothing. */

typedef enum NodeDevCapType {
        NODEDEV_CAP_SYSTEM,
        NODEDEV_CAP_PCI,
        NODEDEV_CAP_USB_DEVICE,
        NODEDEV_CAP_USB,
        NODEDEV_CAP_NET,
        NODEDEV_CAP_SCSI_HOST,
        NODEDEV_CAP_SCSI_TARGET,
        NODEDEV_CAP_SCSI,
        NODEDEV_CAP_STORAGE,
        NODEDEV_CAP_DRM,
        NODEDEV_CAP_MDEV,
        NODEDEV_CAP_CCW,
        NODEDEV_CAP_CSS,
        NODEDEV_CAP_VDPA,
        NODEDEV_CAP_AP_CARD,
        NODEDEV_CAP_AP_QUEUE,
        NODEDEV_CAP_AP_MATRIX,
        NODEDEV_CAP_CCWGROUP,
        NODEDEV_CAP_SCSI_GENERIC,
        _NODEDEV_CAP_TYPE_MAX,
        _NODEDEV_CAP_TYPE_INVALID = -EINVAL,
} NodeDevCapType;

DECLARE_STRING_TABLE_LOOKUP(nodedev_cap_type, NodeDevCapType);

typedef struct NodeDevPciAddress {
        uint32_t domain, bus, slot, function;
} NodeDevPciAddress;

/* "0000:03:00.1" */
#define NODEDEV_PCI_ADDRESS_MAX 32 /* "dddddddd:bbbbbbbb:ss.f" at the widest */
void nodedev_pci_address_format(const NodeDevPciAddress *a, char ret[NODEDEV_PCI_ADDRESS_MAX]);
int nodedev_pci_address_parse(const char *s, NodeDevPciAddress *ret);
bool nodedev_pci_address_equal(const NodeDevPciAddress *a, const NodeDevPciAddress *b);

typedef struct NodeDevPciLink {
        bool present;
        int port;     /* -1: not known */
        char *speed;  /* "2.5", "8"... in GT/s; NULL: not known */
        unsigned width;
} NodeDevPciLink;

typedef struct NodeDevCapPci {
        NodeDevPciAddress address;
        int64_t class_code; /* -1: not known */
        uint32_t vendor_id, product_id;
        char *vendor_name, *product_name;
        /* SR-IOV */
        bool is_pf;
        uint32_t max_vfs;
        NodeDevPciAddress *vfs;
        size_t n_vfs;
        bool is_vf;
        NodeDevPciAddress pf;
        /* IOMMU group: -1 none */
        int64_t iommu_group;
        NodeDevPciAddress *group;
        size_t n_group;
        int numa_node; /* -1: none */
        bool pcie;
        NodeDevPciLink link_cap, link_sta;
} NodeDevCapPci;

typedef struct NodeDevCapNet {
        char *ifname;
        char *mac;        /* "52:54:00:..." or NULL */
        char *link_state; /* operstate: "up", "down"... or NULL */
        unsigned speed;   /* Mb/s, 0: not known */
} NodeDevCapNet;

typedef struct NodeDevCapUsbDevice {
        uint32_t bus, device;
        uint32_t vendor_id, product_id;
        char *vendor_name, *product_name;
} NodeDevCapUsbDevice;

typedef struct NodeDevCapSystem {
        char *product;
        char *hw_vendor, *hw_version, *hw_serial, *hw_uuid;
        char *fw_vendor, *fw_version, *fw_release_date;
} NodeDevCapSystem;

typedef struct NodeDevCap {
        NodeDevCapType type;
        union {
                NodeDevCapPci pci;
                NodeDevCapNet net;
                NodeDevCapUsbDevice usb_device;
                NodeDevCapSystem system;
        };
} NodeDevCap;

typedef struct NodeDevDef {
        char *name;
        char *path;   /* sysfs path, NULL if none */
        char *parent; /* NULL for the computer */
        char *driver;
        NodeDevCap *caps;
        size_t n_caps;
        ConfNode *source; /* a parsed document as given; NULL when built from the host */
} NodeDevDef;

NodeDevDef *nodedev_def_new(const char *name);
NodeDevDef *nodedev_def_free(NodeDevDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeDevDef *, nodedev_def_free);

/* Adds a capability of the given type (zeroed, with "unknown" markers set) and returns it. */
NodeDevCap *nodedev_def_add_cap(NodeDevDef *def, NodeDevCapType type);
/* The first capability of that type, or NULL. */
const NodeDevCap *nodedev_def_find_cap(const NodeDevDef *def, NodeDevCapType type);
/* Whether the device has the named capability: a top-level type, or one libvirt lists as a
 * sub-capability (virt_functions, phys_function, 80203). */
bool nodedev_def_has_capability(const NodeDevDef *def, const char *name);
/* Names of its capabilities (top-level and SR-IOV ones), NULL-terminated, caller frees the array only. */
int nodedev_def_capability_names(const NodeDevDef *def, const char ***ret);

/* Parses and validates (nodedev.rng) a document. */
int nodedev_def_parse_string(const char *xml, NodeDevDef **ret, VbError *reterr);
/* Canonical XML, caller frees. */
int nodedev_def_format(const NodeDevDef *def, char **ret);

/* Name of a PCI device as libvirt forms it: "pci_0000_03_00_1". */
int nodedev_pci_name(const NodeDevPciAddress *a, char **ret);
