/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/device-conf.h"

/* What host device a domain's device stands for, read from its definition: a <hostdev> (PCI, USB,
 * other) or an <interface type='hostdev'> with its PCI or USB source, MAC and VLAN. */
typedef enum DeviceHostSourceKind {
        DEVICE_HOST_SOURCE_NONE,      /* not a host device */
        DEVICE_HOST_SOURCE_PCI,       /* <hostdev type='pci'> */
        DEVICE_HOST_SOURCE_OTHER,     /* another <hostdev> (usb, scsi, mdev...) */
        DEVICE_HOST_SOURCE_NET_PCI,   /* <interface type='hostdev'> on a PCI function */
        DEVICE_HOST_SOURCE_NET_USB,   /* <interface type='hostdev'> on a USB device */
        DEVICE_HOST_SOURCE_NET_OTHER, /* <interface type='hostdev'> without a usable source */
} DeviceHostSourceKind;

typedef struct DeviceHostSource {
        DeviceHostSourceKind kind;
        bool managed;
        uint32_t domain, bus, slot, function; /* PCI source address */
        bool has_mac;
        uint8_t mac[6];
        uint32_t vlan; /* first <vlan><tag id>, 0: none */
} DeviceHostSource;

int device_def_get_host_source(const DeviceDef *dev, DeviceHostSource *ret);
