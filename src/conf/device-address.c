/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* The guest-side <address type='...'> shared by all devices. */

static const char * const device_address_type_table[_DEVICE_ADDRESS_TYPE_MAX] = {
        [DEVICE_ADDRESS_NONE] = NULL,
        [DEVICE_ADDRESS_PCI] = "pci",
        [DEVICE_ADDRESS_DRIVE] = "drive",
        [DEVICE_ADDRESS_VIRTIO_SERIAL] = "virtio-serial",
        [DEVICE_ADDRESS_CCID] = "ccid",
        [DEVICE_ADDRESS_USB] = "usb",
        [DEVICE_ADDRESS_SPAPR_VIO] = "spapr-vio",
        [DEVICE_ADDRESS_VIRTIO_S390] = "virtio-s390",
        [DEVICE_ADDRESS_CCW] = "ccw",
        [DEVICE_ADDRESS_VIRTIO_MMIO] = "virtio-mmio",
        [DEVICE_ADDRESS_ISA] = "isa",
        [DEVICE_ADDRESS_DIMM] = "dimm",
        [DEVICE_ADDRESS_UNASSIGNED] = "unassigned",
};
DEFINE_STRING_TABLE_LOOKUP(device_address_type, DeviceAddressType);

#define UNSET UINT32_MAX

/* libvirt reads PCI and CCW addresses with C's rule (0x hex, 0 octal), the others in decimal. */
static int take_u32(ConfNode *n, const char *attr, int base, uint32_t *ret, VbError *e) {
        *ret = UNSET;
        return conf_take_uint32_base(n, attr, base, UINT32_MAX - 1, ret, e);
}

static int address_parse_pci(ConfNode *n, DeviceAddress *a, VbError *e) {
        int r;

        a->pci.multifunction = -1;
        if ((r = take_u32(n, "domain", CONF_BASE_C, &a->pci.domain, e)) < 0 ||
            (r = take_u32(n, "bus", CONF_BASE_C, &a->pci.bus, e)) < 0 ||
            (r = take_u32(n, "slot", CONF_BASE_C, &a->pci.slot, e)) < 0 ||
            (r = take_u32(n, "function", CONF_BASE_C, &a->pci.function, e)) < 0)
                return r;
        r = conf_take_yesno(n, "multifunction", &a->pci.multifunction, e);
        return r < 0 ? r : 0;
}

int device_address_parse(ConfNode *n, DeviceAddress *a, VbError *e) {
        int type = DEVICE_ADDRESS_NONE, r;

        r = CONF_TAKE_ENUM(n, "type", device_address_type, true, &type, e);
        if (r < 0)
                return r;
        *a = (DeviceAddress) { .type = type };
        switch (a->type) {
        case DEVICE_ADDRESS_PCI:
                return address_parse_pci(n, a, e);
        case DEVICE_ADDRESS_DRIVE:
                if ((r = take_u32(n, "controller", 10, &a->drive.controller, e)) < 0 ||
                    (r = take_u32(n, "bus", 10, &a->drive.bus, e)) < 0 || (r = take_u32(n, "target", 10, &a->drive.target, e)) < 0)
                        return r;
                return take_u32(n, "unit", 10, &a->drive.unit, e);
        case DEVICE_ADDRESS_VIRTIO_SERIAL:
                if ((r = take_u32(n, "controller", 10, &a->vioserial.controller, e)) < 0 ||
                    (r = take_u32(n, "bus", 10, &a->vioserial.bus, e)) < 0)
                        return r;
                return take_u32(n, "port", 10, &a->vioserial.port, e);
        case DEVICE_ADDRESS_USB:
                a->usb.port = conf_node_take_attr(n, "port");
                return take_u32(n, "bus", 10, &a->usb.bus, e);
        case DEVICE_ADDRESS_SPAPR_VIO:
                a->spaprvio.reg = UINT64_MAX;
                r = conf_take_uint_base(n, "reg", 16, UINT64_MAX - 1, &a->spaprvio.reg, e); /* libvirt: hex */
                return r < 0 ? r : 0;
        case DEVICE_ADDRESS_CCW:
                if ((r = take_u32(n, "cssid", CONF_BASE_C, &a->ccw.cssid, e)) < 0 ||
                    (r = take_u32(n, "ssid", CONF_BASE_C, &a->ccw.ssid, e)) < 0)
                        return r;
                return take_u32(n, "devno", CONF_BASE_C, &a->ccw.devno, e);
        default:
                return 0;
        }
}

int device_address_format(const DeviceAddress *a, ConfNode *parent, const char *name) {
        ConfNode *n;
        int r = 0;

        if (a->type == DEVICE_ADDRESS_NONE)
                return 0;
        n = conf_node_add(parent, name);
        if (!n || conf_node_set_attr(n, "type", device_address_type_to_string(a->type)) < 0)
                return -ENOMEM;
        switch (a->type) {
        case DEVICE_ADDRESS_PCI:
                if (conf_set_uint32(n, "domain", "0x%04x", a->pci.domain) < 0 || conf_set_uint32(n, "bus", "0x%02x", a->pci.bus) < 0 ||
                    conf_set_uint32(n, "slot", "0x%02x", a->pci.slot) < 0 || conf_set_uint32(n, "function", "0x%x", a->pci.function) < 0)
                        return -ENOMEM;
                if (a->pci.multifunction >= 0)
                        r = conf_node_set_attr(n, "multifunction", a->pci.multifunction ? "on" : "off");
                break;
        case DEVICE_ADDRESS_DRIVE:
                if (conf_set_uint32(n, "controller", "%u", a->drive.controller) < 0 || conf_set_uint32(n, "bus", "%u", a->drive.bus) < 0 ||
                    conf_set_uint32(n, "target", "%u", a->drive.target) < 0 || conf_set_uint32(n, "unit", "%u", a->drive.unit) < 0)
                        return -ENOMEM;
                break;
        case DEVICE_ADDRESS_VIRTIO_SERIAL:
                if (conf_set_uint32(n, "controller", "%u", a->vioserial.controller) < 0 ||
                    conf_set_uint32(n, "bus", "%u", a->vioserial.bus) < 0 || conf_set_uint32(n, "port", "%u", a->vioserial.port) < 0)
                        return -ENOMEM;
                break;
        case DEVICE_ADDRESS_USB:
                if (conf_set_uint32(n, "bus", "%u", a->usb.bus) < 0 || conf_node_set_attr(n, "port", a->usb.port) < 0)
                        return -ENOMEM;
                break;
        case DEVICE_ADDRESS_SPAPR_VIO:
                if (a->spaprvio.reg != UINT64_MAX && conf_node_set_attrf(n, "reg", "0x%llx", (unsigned long long) a->spaprvio.reg) < 0)
                        return -ENOMEM;
                break;
        case DEVICE_ADDRESS_CCW:
                if (conf_set_uint32(n, "cssid", "0x%x", a->ccw.cssid) < 0 || conf_set_uint32(n, "ssid", "0x%x", a->ccw.ssid) < 0 ||
                    conf_set_uint32(n, "devno", "0x%04x", a->ccw.devno) < 0)
                        return -ENOMEM;
                break;
        default:
                break;
        }
        return r;
}

static int check_max(const ConfNode *where, const char *type, const char *attr, uint32_t v, uint32_t max, VbError *e) {
        if (v == UNSET || v <= max)
                return 0;
        return conf_error(e, where, "address type '%s': attribute '%s' has invalid value %u (expected at most %u)",
                          type, attr, v, max);
}

static int usb_port_validate(const char *port, const ConfNode *where, VbError *e) {
        unsigned levels = 0;

        if (!port)
                return 0;
        for (const char *p = port; *p; ) {
                char *end;
                unsigned long v = strtoul(p, &end, 10);

                if (end == p || v > 255 || (*end && *end != '.'))
                        return conf_error(e, where, "address type 'usb': attribute 'port' has invalid value '%s' (expected up to 4 dot-separated numbers)", port);
                levels++;
                p = *end ? end + 1 : end;
        }
        if (levels == 0 || levels > 4)
                return conf_error(e, where, "address type 'usb': attribute 'port' has invalid value '%s' (expected up to 4 dot-separated numbers)", port);
        return 0;
}

int device_address_validate(const DeviceAddress *a, const ConfNode *where, VbError *e) {
        int r = 0;

        switch (a->type) {
        case DEVICE_ADDRESS_PCI:
                if ((r = check_max(where, "pci", "domain", a->pci.domain, 0xffff, e)) < 0 ||
                    (r = check_max(where, "pci", "bus", a->pci.bus, 0xff, e)) < 0 ||
                    (r = check_max(where, "pci", "slot", a->pci.slot, 0x1f, e)) < 0)
                        return r;
                return check_max(where, "pci", "function", a->pci.function, 7, e);
        case DEVICE_ADDRESS_CCW:
                if ((r = check_max(where, "ccw", "cssid", a->ccw.cssid, 0xfe, e)) < 0 ||
                    (r = check_max(where, "ccw", "ssid", a->ccw.ssid, 3, e)) < 0)
                        return r;
                return check_max(where, "ccw", "devno", a->ccw.devno, 0xffff, e);
        case DEVICE_ADDRESS_USB:
                return usb_port_validate(a->usb.port, where, e);
        case DEVICE_ADDRESS_SPAPR_VIO:
                if (a->spaprvio.reg != UINT64_MAX && a->spaprvio.reg > UINT32_MAX)
                        return conf_error(e, where, "address type 'spapr-vio': attribute 'reg' has invalid value 0x%llx (expected at most 0xffffffff)",
                                          (unsigned long long) a->spaprvio.reg);
                return 0;
        default:
                return 0;
        }
}

void device_address_done(DeviceAddress *a) {
        if (a->type == DEVICE_ADDRESS_USB)
                free(a->usb.port);
        *a = (DeviceAddress) {};
}
