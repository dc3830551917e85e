/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node device definitions to XML: from the typed capabilities (devices found on the host), or the
 * parsed element as given; both written canonically (attributes in libvirt's order). */
#include <stdio.h>
#include <stdlib.h>

#include "conf/nodedev-conf.h"

/* "0x" and at least digits hex digits. */
static int add_hex(ConfNode *n, const char *name, int digits, uint32_t v) {
        return conf_node_set_attrf(n, name, "0x%0*x", digits, v);
}

static int add_uint_text(ConfNode *n, const char *name, uint64_t v) {
        char buf[32];

        snprintf(buf, sizeof buf, "%llu", (unsigned long long) v);
        return conf_node_add_text(n, name, buf);
}

static int add_pci_address(ConfNode *parent, const NodeDevPciAddress *a) {
        ConfNode *n = conf_node_add(parent, "address");

        if (!n || add_hex(n, "domain", 4, a->domain) < 0 || add_hex(n, "bus", 2, a->bus) < 0 ||
            add_hex(n, "slot", 2, a->slot) < 0 || add_hex(n, "function", 1, a->function) < 0)
                return -ENOMEM;
        return 0;
}

static int add_id_text(ConfNode *parent, const char *name, uint32_t id, const char *text) {
        ConfNode *n = conf_node_add(parent, name);

        if (!n || add_hex(n, "id", 4, id) < 0 || (text && conf_node_set_text(n, text) < 0))
                return -ENOMEM;
        return 0;
}

static int add_link(ConfNode *parent, const char *validity, const NodeDevPciLink *l) {
        ConfNode *n;

        if (!l->present)
                return 0;
        n = conf_node_add(parent, "link");
        if (!n || conf_node_set_attr(n, "validity", validity) < 0 ||
            (l->port >= 0 && conf_node_set_attrf(n, "port", "%d", l->port) < 0) ||
            conf_node_set_attr(n, "speed", l->speed) < 0 || conf_node_set_attrf(n, "width", "%u", l->width) < 0)
                return -ENOMEM;
        return 0;
}

static int format_cap_pci(const NodeDevCapPci *p, ConfNode *c) {
        ConfNode *k;

        if (p->class_code >= 0) {
                char buf[32];

                snprintf(buf, sizeof buf, "0x%06llx", (unsigned long long) p->class_code);
                if (conf_node_add_text(c, "class", buf) < 0)
                        return -ENOMEM;
        }
        if (add_uint_text(c, "domain", p->address.domain) < 0 || add_uint_text(c, "bus", p->address.bus) < 0 ||
            add_uint_text(c, "slot", p->address.slot) < 0 || add_uint_text(c, "function", p->address.function) < 0 ||
            add_id_text(c, "product", p->product_id, p->product_name) < 0 ||
            add_id_text(c, "vendor", p->vendor_id, p->vendor_name) < 0)
                return -ENOMEM;
        if (p->is_vf) {
                k = conf_node_add(c, "capability");
                if (!k || conf_node_set_attr(k, "type", "phys_function") < 0 || add_pci_address(k, &p->pf) < 0)
                        return -ENOMEM;
        }
        if (p->is_pf) {
                k = conf_node_add(c, "capability");
                if (!k || conf_node_set_attr(k, "type", "virt_functions") < 0 ||
                    (p->max_vfs > 0 && conf_node_set_attrf(k, "maxCount", "%u", p->max_vfs) < 0))
                        return -ENOMEM;
                for (size_t i = 0; i < p->n_vfs; i++)
                        if (add_pci_address(k, &p->vfs[i]) < 0)
                                return -ENOMEM;
        }
        if (p->iommu_group >= 0) {
                k = conf_node_add(c, "iommuGroup");
                if (!k || conf_node_set_attrf(k, "number", "%lld", (long long) p->iommu_group) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < p->n_group; i++)
                        if (add_pci_address(k, &p->group[i]) < 0)
                                return -ENOMEM;
        }
        if (p->numa_node >= 0) {
                k = conf_node_add(c, "numa");
                if (!k || conf_node_set_attrf(k, "node", "%d", p->numa_node) < 0)
                        return -ENOMEM;
        }
        if (p->pcie) {
                k = conf_node_add(c, "pci-express");
                if (!k || add_link(k, "cap", &p->link_cap) < 0 || add_link(k, "sta", &p->link_sta) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_cap_net(const NodeDevCapNet *net, ConfNode *c) {
        ConfNode *k;

        if (conf_node_add_text(c, "interface", net->ifname) < 0 || conf_node_add_text(c, "address", net->mac) < 0)
                return -ENOMEM;
        if (net->link_state || net->speed) {
                k = conf_node_add(c, "link");
                if (!k || (net->speed && conf_node_set_attrf(k, "speed", "%u", net->speed) < 0) ||
                    conf_node_set_attr(k, "state", net->link_state) < 0)
                        return -ENOMEM;
        }
        k = conf_node_add(c, "capability");
        if (!k || conf_node_set_attr(k, "type", "80203") < 0)
                return -ENOMEM;
        return 0;
}

static int format_cap_usb_device(const NodeDevCapUsbDevice *u, ConfNode *c) {
        if (add_uint_text(c, "bus", u->bus) < 0 || add_uint_text(c, "device", u->device) < 0 ||
            add_id_text(c, "product", u->product_id, u->product_name) < 0 ||
            add_id_text(c, "vendor", u->vendor_id, u->vendor_name) < 0)
                return -ENOMEM;
        return 0;
}

static int format_cap_system(const NodeDevCapSystem *s, ConfNode *c) {
        ConfNode *k;

        if (conf_node_add_text(c, "product", s->product) < 0)
                return -ENOMEM;
        if (s->hw_uuid) {
                k = conf_node_add(c, "hardware");
                if (!k || conf_node_add_text(k, "vendor", s->hw_vendor) < 0 ||
                    conf_node_add_text(k, "version", s->hw_version) < 0 ||
                    conf_node_add_text(k, "serial", s->hw_serial) < 0 || conf_node_add_text(k, "uuid", s->hw_uuid) < 0)
                        return -ENOMEM;
        }
        if (s->fw_vendor || s->fw_version || s->fw_release_date) {
                k = conf_node_add(c, "firmware");
                if (!k || conf_node_add_text(k, "vendor", s->fw_vendor) < 0 ||
                    conf_node_add_text(k, "version", s->fw_version) < 0 ||
                    conf_node_add_text(k, "release_date", s->fw_release_date) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int nodedev_def_to_node(const NodeDevDef *def, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = conf_node_new("device");
        int r = 0;

        if (!n || conf_node_add_text(n, "name", def->name) < 0 || conf_node_add_text(n, "path", def->path) < 0 ||
            conf_node_add_text(n, "parent", def->parent) < 0)
                return -ENOMEM;
        if (def->driver) {
                ConfNode *d = conf_node_add(n, "driver");
                if (!d || conf_node_add_text(d, "name", def->driver) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < def->n_caps && r >= 0; i++) {
                const NodeDevCap *cap = &def->caps[i];
                ConfNode *c = conf_node_add(n, "capability");

                if (!c || conf_node_set_attr(c, "type", nodedev_cap_type_to_string(cap->type)) < 0)
                        return -ENOMEM;
                switch (cap->type) {
                case NODEDEV_CAP_PCI:
                        r = format_cap_pci(&cap->pci, c);
                        break;
                case NODEDEV_CAP_NET:
                        r = format_cap_net(&cap->net, c);
                        break;
                case NODEDEV_CAP_USB_DEVICE:
                        r = format_cap_usb_device(&cap->usb_device, c);
                        break;
                case NODEDEV_CAP_SYSTEM:
                        r = format_cap_system(&cap->system, c);
                        break;
                default:
                        break;
                }
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

/* Attributes in the order libvirt writes them; others after these, by name. */
static const char * const attr_order[] = {
        "type", "id", "validity", "access", "index", "number", "node", "maxCount", "domain", "bus", "slot",
        "function", "port", "speed", "width", "state", "name", "value", "ref",
};

static int attr_rank(const ConfAttr *a) {
        if (a->ns_href)
                return (int) ELEMENTSOF(attr_order) + 1;
        for (size_t i = 0; i < ELEMENTSOF(attr_order); i++)
                if (streq(attr_order[i], a->name))
                        return (int) i;
        return (int) ELEMENTSOF(attr_order);
}

static int attr_compare(const void *x, const void *y) {
        const ConfAttr *a = x, *b = y;
        int ra = attr_rank(a), rb = attr_rank(b);

        if (ra != rb)
                return ra < rb ? -1 : 1;
        return strcmp(a->name, b->name);
}

static void order_attrs(ConfNode *n) {
        if (n->n_attrs > 1)
                qsort(n->attrs, n->n_attrs, sizeof(ConfAttr), attr_compare);
        for (size_t i = 0; i < n->n_children; i++)
                order_attrs(n->children[i]);
}

int nodedev_def_format(const NodeDevDef *def, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        if (def->source) {
                n = conf_node_copy(def->source);
                if (!n)
                        return -ENOMEM;
        } else {
                r = nodedev_def_to_node(def, &n);
                if (r < 0)
                        return r;
        }
        order_attrs(n);
        return conf_node_format_string(n, ret);
}
