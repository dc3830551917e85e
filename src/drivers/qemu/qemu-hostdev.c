/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host PCI functions hot-plugged into a running QEMU as vfio-pci: the device_add arguments. The QMP
 * exchange and the live definition are qemu-hotplug.c's, as for the other devices. */
#include <stdio.h>
#include <string.h>

#include "conf/device-host-source.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-hostdev.h"

static int source_of(const DeviceDef *dev, DeviceHostSource *ret, VbError *reterr) {
        if (device_def_get_host_source(dev, ret) < 0 || ret->kind == DEVICE_HOST_SOURCE_NONE)
                return 0;
        switch (ret->kind) {
        case DEVICE_HOST_SOURCE_PCI:
        case DEVICE_HOST_SOURCE_NET_PCI:
                return 1;
        case DEVICE_HOST_SOURCE_NET_USB:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "An <interface type='hostdev'> on a USB device is not supported: its MAC address "
                                    "cannot be set");
        case DEVICE_HOST_SOURCE_NET_OTHER:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "<interface type='hostdev'> needs a PCI source address of an SR-IOV virtual function");
        default:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver can hot-plug PCI host devices only (not USB, SCSI or mediated "
                                    "devices) yet");
        }
}

int qemu_hostdev_is_vfio(const DeviceDef *dev, VbError *reterr) {
        DeviceHostSource s;

        return source_of(dev, &s, reterr);
}

static int add_string(struct json_object *o, const char *key, const char *value) {
        struct json_object *v = json_object_new_string(value);

        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int qemu_hostdev_device_add_args(const DeviceDef *dev, const char *alias, bool q35, struct json_object **ret,
                                 VbError *reterr) {
        struct json_object *o;
        DeviceHostSource s;
        QemuPciPlace place;
        char host[32];
        int r;

        *ret = NULL;
        r = source_of(dev, &s, reterr);
        if (r <= 0)
                return r;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        snprintf(host, sizeof host, "%04x:%02x:%02x.%x", s.domain, s.bus, s.slot, s.function);
        r = add_string(o, "driver", "vfio-pci");
        if (r >= 0)
                r = add_string(o, "host", host);
        if (r >= 0)
                r = add_string(o, "id", alias);
        if (r >= 0 && qemu_pci_place(&dev->address, q35, &place)) {
                /* As on the command line: the bus, slot and function core chose. */
                r = add_string(o, "bus", place.bus);
                if (r >= 0)
                        r = add_string(o, "addr", place.addr);
                if (r >= 0 && place.multifunction)
                        r = add_string(o, "multifunction", "on");
        }
        if (r >= 0 && dev->boot_order > 0) {
                struct json_object *b = json_object_new_int64(dev->boot_order);
                if (!b || json_object_object_add(o, "bootindex", b) < 0) {
                        json_object_put(b);
                        r = -ENOMEM;
                }
        }
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 1;
}
