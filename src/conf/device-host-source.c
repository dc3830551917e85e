/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-host-source.h"

/* Read from the device's canonical element, so that this needs nothing of the kinds' typed code. */

static uint32_t attr_u32(const ConfNode *n, const char *name, uint32_t max) {
        uint64_t v = 0;

        if (!n || !conf_node_attr(n, name) || conf_parse_uint_base(n, name, conf_node_attr(n, name), CONF_BASE_C, max, &v, NULL) < 0)
                return 0;
        return (uint32_t) v;
}

static void read_pci_address(const ConfNode *a, DeviceHostSource *s) {
        s->domain = attr_u32(a, "domain", 0xffff);
        s->bus = attr_u32(a, "bus", 0xff);
        s->slot = attr_u32(a, "slot", 0x1f);
        s->function = attr_u32(a, "function", 7);
}

int device_def_get_host_source(const DeviceDef *dev, DeviceHostSource *ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const ConfNode *src, *a, *mac, *vlan, *tag;
        const char *type;
        int r;

        *ret = (DeviceHostSource) { .kind = DEVICE_HOST_SOURCE_NONE };
        if (dev->kind != DEVICE_HOSTDEV && dev->kind != DEVICE_INTERFACE)
                return 0;
        r = device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        type = conf_node_attr(n, "type");
        if (dev->kind == DEVICE_INTERFACE && !streq_ptr(type, "hostdev"))
                return 0;
        ret->managed = streq_ptr(conf_node_attr(n, "managed"), "yes");
        src = conf_node_child(n, "source");
        a = src ? conf_node_child(src, "address") : NULL;
        if (dev->kind == DEVICE_HOSTDEV) {
                if (!streq_ptr(type, "pci") || streq_ptr(conf_node_attr(n, "mode"), "capabilities") || !a) {
                        ret->kind = DEVICE_HOST_SOURCE_OTHER;
                        return 0;
                }
                ret->kind = DEVICE_HOST_SOURCE_PCI;
                read_pci_address(a, ret);
                return 0;
        }
        if (!a)
                ret->kind = DEVICE_HOST_SOURCE_NET_OTHER;
        else if (streq_ptr(conf_node_attr(a, "type"), "usb"))
                ret->kind = DEVICE_HOST_SOURCE_NET_USB;
        else if (!conf_node_attr(a, "type") || streq_ptr(conf_node_attr(a, "type"), "pci")) {
                ret->kind = DEVICE_HOST_SOURCE_NET_PCI;
                read_pci_address(a, ret);
        } else
                ret->kind = DEVICE_HOST_SOURCE_NET_OTHER;
        mac = conf_node_child(n, "mac");
        if (mac && conf_node_attr(mac, "address") && conf_mac_parse(conf_node_attr(mac, "address"), ret->mac) >= 0)
                ret->has_mac = true;
        vlan = conf_node_child(n, "vlan");
        tag = vlan ? conf_node_child(vlan, "tag") : NULL;
        ret->vlan = attr_u32(tag, "id", 4095);
        return 0;
}
