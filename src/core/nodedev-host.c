/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From what src/host finds to node device definitions: names, parents and capabilities as libvirt
 * shows them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/nodedev-internal.h"
#include "host/host.h"
#include "host/net.h"
#include "host/pci.h"
#include "host/sysfs.h"
#include "host/usb.h"
#include "util/log.h"

static void to_nodedev_address(const HostPciAddress *a, NodeDevPciAddress *ret) {
        *ret = (NodeDevPciAddress) { a->domain, a->bus, a->slot, a->function };
}

static char *pci_name(const HostPciAddress *a) {
        NodeDevPciAddress n;
        char *s = NULL;

        to_nodedev_address(a, &n);
        return nodedev_pci_name(&n, &s) < 0 ? NULL : s;
}

/* Characters other than [A-Za-z0-9_] become '_', as in libvirt's names. */
static void name_sanitize(char *s) {
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '_')
                        *s = '_';
}

static int dup_list(const HostPciAddress *l, size_t n, NodeDevPciAddress **ret, size_t *ret_n) {
        size_t k = 0;

        *ret = n ? new0(NodeDevPciAddress, n) : NULL;
        if (n && !*ret)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (l[i].domain != UINT32_MAX)
                        to_nodedev_address(&l[i], &(*ret)[k++]);
        *ret_n = k;
        return 0;
}

static int dup_link(const HostPciLink *l, NodeDevPciLink *ret) {
        *ret = (NodeDevPciLink) { .present = l->present, .port = -1, .width = l->width };
        if (l->speed && !(ret->speed = strdup(l->speed)))
                return -ENOMEM;
        return 0;
}

static int pci_def(const HostPciDevice *h, NodeDevDef **ret) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
        _cleanup_free_ char *name = pci_name(&h->address);
        NodeDevCap *c;
        NodeDevCapPci *p;

        if (!name || !(def = nodedev_def_new(name)))
                return -ENOMEM;
        def->parent = h->has_parent ? pci_name(&h->parent) : strdup("computer");
        if (!def->parent || (h->path && !(def->path = strdup(h->path))) ||
            (h->driver && !(def->driver = strdup(h->driver))))
                return -ENOMEM;
        c = nodedev_def_add_cap(def, NODEDEV_CAP_PCI);
        if (!c)
                return -ENOMEM;
        p = &c->pci;
        to_nodedev_address(&h->address, &p->address);
        p->class_code = h->class_code;
        p->vendor_id = h->vendor_id;
        p->product_id = h->device_id;
        if ((h->vendor_name && !(p->vendor_name = strdup(h->vendor_name))) ||
            (h->device_name && !(p->product_name = strdup(h->device_name))))
                return -ENOMEM;
        p->is_pf = h->is_pf;
        p->max_vfs = h->total_vfs;
        p->is_vf = h->is_vf;
        to_nodedev_address(&h->pf, &p->pf);
        p->iommu_group = h->iommu_group;
        p->numa_node = h->numa_node;
        p->pcie = h->pcie;
        if (dup_list(h->vfs, h->n_vfs, &p->vfs, &p->n_vfs) < 0 ||
            dup_list(h->group, h->n_group, &p->group, &p->n_group) < 0 || dup_link(&h->link_cap, &p->link_cap) < 0 ||
            dup_link(&h->link_sta, &p->link_sta) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(def);
        return 0;
}

static int usb_def(const HostUsbDevice *u, NodeDevDef **ret) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
        _cleanup_free_ char *name = NULL;
        NodeDevCap *c;

        if (asprintf(&name, "usb_%s", u->sysname) < 0)
                return -ENOMEM;
        name_sanitize(name);
        if (!(def = nodedev_def_new(name)))
                return -ENOMEM;
        if (u->parent_is_pci)
                def->parent = pci_name(&u->pci);
        else if (u->parent_sysname) {
                if (asprintf(&def->parent, "usb_%s", u->parent_sysname) < 0)
                        def->parent = NULL;
                else
                        name_sanitize(def->parent);
        } else
                def->parent = strdup("computer");
        if (!def->parent)
                return -ENOMEM;
        c = nodedev_def_add_cap(def, NODEDEV_CAP_USB_DEVICE);
        if (!c)
                return -ENOMEM;
        c->usb_device = (NodeDevCapUsbDevice) { .bus = u->bus, .device = u->device, .vendor_id = u->vendor_id,
                                                .product_id = u->product_id };
        if ((u->manufacturer && !(c->usb_device.vendor_name = strdup(u->manufacturer))) ||
            (u->product && !(c->usb_device.product_name = strdup(u->product))))
                return -ENOMEM;
        *ret = TAKE_PTR(def);
        return 0;
}

static int net_def(const HostNetInterface *i, NodeDevDef **ret) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
        _cleanup_free_ char *name = NULL;
        NodeDevCap *c;

        if (asprintf(&name, "net_%s_%s", i->name, i->mac ?: "00_00_00_00_00_00") < 0)
                return -ENOMEM;
        name_sanitize(name);
        if (!(def = nodedev_def_new(name)))
                return -ENOMEM;
        def->parent = i->has_pci ? pci_name(&i->pci) : strdup("computer");
        if (!def->parent || (asprintf(&def->path, "%s/class/net/%s", host_sysfs_root(), i->name) < 0))
                return -ENOMEM;
        c = nodedev_def_add_cap(def, NODEDEV_CAP_NET);
        if (!c)
                return -ENOMEM;
        c->net.speed = i->speed;
        if (!(c->net.ifname = strdup(i->name)) || (i->mac && !(c->net.mac = strdup(i->mac))) ||
            (i->state && !(c->net.link_state = strdup(i->state))))
                return -ENOMEM;
        *ret = TAKE_PTR(def);
        return 0;
}

static char *dmi(const char *file) {
        _cleanup_free_ char *p = host_sysfs_path("class/dmi/id/%s", file);
        char *s = NULL;

        if (!p || host_sysfs_read(p, &s) < 0)
                return NULL;
        if (isempty(s)) {
                free(s);
                return NULL;
        }
        return s;
}

static int computer_def(NodeDevDef **ret) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = nodedev_def_new("computer");
        NodeDevCap *c;

        if (!def || !(c = nodedev_def_add_cap(def, NODEDEV_CAP_SYSTEM)))
                return -ENOMEM;
        c->system = (NodeDevCapSystem) {
                .product = dmi("product_name"),
                .hw_vendor = dmi("sys_vendor"),
                .hw_version = dmi("product_version"),
                .hw_serial = dmi("product_serial"),
                .hw_uuid = dmi("product_uuid"),
                .fw_vendor = dmi("bios_vendor"),
                .fw_version = dmi("bios_version"),
                .fw_release_date = dmi("bios_date"),
        };
        *ret = TAKE_PTR(def);
        return 0;
}

int nodedev_host_enumerate(NodeDevScan *scan) {
        HostPciDevice *pci = NULL;
        HostUsbDevice *usb = NULL;
        HostNetInterface *net = NULL;
        size_t n_pci = 0, n_usb = 0, n_net = 0;
        NodeDevDef *def;
        int r;

        r = computer_def(&def);
        if (r >= 0)
                r = nodedev_scan_add(scan, def, NULL);
        if (r >= 0)
                r = host_pci_list(&pci, &n_pci);
        for (size_t i = 0; i < n_pci && r >= 0; i++) {
                r = pci_def(&pci[i], &def);
                if (r >= 0)
                        r = nodedev_scan_add(scan, def, &pci[i].address);
        }
        if (r >= 0) {
                r = host_usb_list(&usb, &n_usb);
                if (r < 0)
                        log_debug_errno(r, "Failed to list USB devices, ignoring: %m");
                r = 0;
        }
        for (size_t i = 0; i < n_usb && r >= 0; i++) {
                r = usb_def(&usb[i], &def);
                if (r >= 0)
                        r = nodedev_scan_add(scan, def, NULL);
        }
        if (r >= 0) {
                r = host_net_list(&net, &n_net);
                if (r < 0)
                        log_debug_errno(r, "Failed to list network interfaces, ignoring: %m");
                r = 0;
        }
        for (size_t i = 0; i < n_net && r >= 0; i++) {
                r = net_def(&net[i], &def);
                if (r >= 0)
                        r = nodedev_scan_add(scan, def, NULL);
        }
        host_pci_device_list_free(pci, n_pci);
        host_usb_device_list_free(usb, n_usb);
        host_net_interface_list_free(net, n_net);
        return r;
}
