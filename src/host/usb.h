/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "host/pci.h"

/* USB devices below the sysfs root (bus/usb/devices; interfaces left out). */
typedef struct HostUsbDevice {
        char *sysname; /* "1-2", "usb1" */
        uint32_t bus, device;
        uint16_t vendor_id, product_id;
        char *manufacturer, *product;
        bool parent_is_pci; /* root hubs hang off their PCI controller */
        HostPciAddress pci;
        char *parent_sysname; /* the hub it is plugged into, else NULL */
} HostUsbDevice;

void host_usb_device_list_free(HostUsbDevice *l, size_t n);
int host_usb_list(HostUsbDevice **ret, size_t *ret_n);
