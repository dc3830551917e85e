/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node device definitions: life cycle, capability lookups and parsing. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/nodedev-conf.h"

static const char * const nodedev_cap_type_table[_NODEDEV_CAP_TYPE_MAX] = {
        [NODEDEV_CAP_SYSTEM] = "system",
        [NODEDEV_CAP_PCI] = "pci",
        [NODEDEV_CAP_USB_DEVICE] = "usb_device",
        [NODEDEV_CAP_USB] = "usb",
        [NODEDEV_CAP_NET] = "net",
        [NODEDEV_CAP_SCSI_HOST] = "scsi_host",
        [NODEDEV_CAP_SCSI_TARGET] = "scsi_target",
        [NODEDEV_CAP_SCSI] = "scsi",
        [NODEDEV_CAP_STORAGE] = "storage",
        [NODEDEV_CAP_DRM] = "drm",
        [NODEDEV_CAP_MDEV] = "mdev",
        [NODEDEV_CAP_CCW] = "ccw",
        [NODEDEV_CAP_CSS] = "css",
        [NODEDEV_CAP_VDPA] = "vdpa",
        [NODEDEV_CAP_AP_CARD] = "ap_card",
        [NODEDEV_CAP_AP_QUEUE] = "ap_queue",
        [NODEDEV_CAP_AP_MATRIX] = "ap_matrix",
        [NODEDEV_CAP_CCWGROUP] = "ccwgroup",
        [NODEDEV_CAP_SCSI_GENERIC] = "scsi_generic",
};
DEFINE_STRING_TABLE_LOOKUP(nodedev_cap_type, NodeDevCapType);

void nodedev_pci_address_format(const NodeDevPciAddress *a, char ret[NODEDEV_PCI_ADDRESS_MAX]) {
        snprintf(ret, NODEDEV_PCI_ADDRESS_MAX, "%04x:%02x:%02x.%x", a->domain, a->bus, a->slot, a->function);
}

int nodedev_pci_address_parse(const char *s, NodeDevPciAddress *ret) {
        unsigned d, b, sl, f;
        int n = -1;

        if (!s || sscanf(s, "%4x:%2x:%2x.%1x%n", &d, &b, &sl, &f, &n) != 4 || n != (int) strlen(s) ||
            strlen(s) != 12 || sl > 0x1f || f > 7)
                return -EINVAL;
        *ret = (NodeDevPciAddress) { d, b, sl, f };
        return 0;
}

bool nodedev_pci_address_equal(const NodeDevPciAddress *a, const NodeDevPciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot && a->function == b->function;
}

int nodedev_pci_name(const NodeDevPciAddress *a, char **ret) {
        return asprintf(ret, "pci_%04x_%02x_%02x_%x", a->domain, a->bus, a->slot, a->function) < 0 ? -ENOMEM : 0;
}

NodeDevDef *nodedev_def_new(const char *name) {
        NodeDevDef *def = new0(NodeDevDef, 1);

        if (!def)
                return NULL;
        def->name = strdup(name);
        if (!def->name) {
                free(def);
                return NULL;
        }
        return def;
}

static void nodedev_cap_done(NodeDevCap *c) {
        switch (c->type) {
        case NODEDEV_CAP_PCI:
                free(c->pci.vendor_name);
                free(c->pci.product_name);
                free(c->pci.vfs);
                free(c->pci.group);
                free(c->pci.link_cap.speed);
                free(c->pci.link_sta.speed);
                break;
        case NODEDEV_CAP_NET:
                free(c->net.ifname);
                free(c->net.mac);
                free(c->net.link_state);
                break;
        case NODEDEV_CAP_USB_DEVICE:
                free(c->usb_device.vendor_name);
                free(c->usb_device.product_name);
                break;
        case NODEDEV_CAP_SYSTEM:
                free(c->system.product);
                free(c->system.hw_vendor);
                free(c->system.hw_version);
                free(c->system.hw_serial);
                free(c->system.hw_uuid);
                free(c->system.fw_vendor);
                free(c->system.fw_version);
                free(c->system.fw_release_date);
                break;
        default:
                break;
        }
}

NodeDevDef *nodedev_def_free(NodeDevDef *def) {
        if (!def)
                return NULL;
        for (size_t i = 0; i < def->n_caps; i++)
                nodedev_cap_done(&def->caps[i]);
        free(def->caps);
        free(def->name);
        free(def->path);
        free(def->parent);
        free(def->driver);
        conf_node_free(def->source);
        free(def);
        return NULL;
}

NodeDevCap *nodedev_def_add_cap(NodeDevDef *def, NodeDevCapType type) {
        NodeDevCap *c;

        /* Exact growth: the array is small, and callers hold no pointers across additions. */
        c = realloc(def->caps, (def->n_caps + 1) * sizeof(NodeDevCap));
        if (!c)
                return NULL;
        def->caps = c;
        c = &def->caps[def->n_caps++];
        *c = (NodeDevCap) { .type = type };
        if (type == NODEDEV_CAP_PCI) {
                c->pci.class_code = -1;
                c->pci.iommu_group = -1;
                c->pci.numa_node = -1;
                c->pci.link_cap.port = c->pci.link_sta.port = -1;
        }
        return c;
}

const NodeDevCap *nodedev_def_find_cap(const NodeDevDef *def, NodeDevCapType type) {
        for (size_t i = 0; i < def->n_caps; i++)
                if (def->caps[i].type == type)
                        return &def->caps[i];
        return NULL;
}

int nodedev_def_capability_names(const NodeDevDef *def, const char ***ret) {
        const char **l = new0(const char *, 2 * def->n_caps + 2);
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_caps; i++) {
                const NodeDevCap *c = &def->caps[i];

                l[n++] = nodedev_cap_type_to_string(c->type);
                if (c->type == NODEDEV_CAP_PCI && c->pci.is_pf)
                        l[n++] = "virt_functions";
                if (c->type == NODEDEV_CAP_PCI && c->pci.is_vf)
                        l[n++] = "phys_function";
        }
        *ret = l;
        return 0;
}

bool nodedev_def_has_capability(const NodeDevDef *def, const char *name) {
        _cleanup_free_ const char **l = NULL;

        if (nodedev_def_capability_names(def, &l) < 0)
                return false;
        for (size_t i = 0; l[i]; i++)
                if (streq(l[i], name))
                        return true;
        return false;
}

/* Parsing: the schema checked the shape; here the typed part is read without consuming the element,
 * which stays as given in def->source. */

static const char *child_text(const ConfNode *n, const char *name) {
        const ConfNode *c = conf_node_child(n, name);
        return c ? c->text : NULL;
}

static int dup_text(const ConfNode *n, const char *name, char **ret) {
        const char *t = child_text(n, name);

        if (!t)
                return 0;
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* Bases as libvirt reads them: elements' text in decimal, <address> attributes with C's rule (0x hex,
 * 0 octal), vendor and product ids in hex. */
static int parse_u32(const ConfNode *n, const char *what, const char *s, int base, uint32_t max, uint32_t *ret,
                     VbError *e) {
        uint64_t v;
        int r;

        if (!s)
                return 0;
        r = conf_parse_uint_base(n, what, s, base, max, &v, e);
        if (r < 0)
                return r;
        *ret = (uint32_t) v;
        return 0;
}

static int parse_pci_address_attrs(const ConfNode *a, NodeDevPciAddress *ret, VbError *e) {
        int r;

        r = parse_u32(a, "attribute 'domain'", conf_node_attr(a, "domain"), CONF_BASE_C, UINT32_MAX, &ret->domain, e);
        if (r >= 0)
                r = parse_u32(a, "attribute 'bus'", conf_node_attr(a, "bus"), CONF_BASE_C, 0xff, &ret->bus, e);
        if (r >= 0)
                r = parse_u32(a, "attribute 'slot'", conf_node_attr(a, "slot"), CONF_BASE_C, 0x1f, &ret->slot, e);
        if (r >= 0)
                r = parse_u32(a, "attribute 'function'", conf_node_attr(a, "function"), CONF_BASE_C, 7, &ret->function, e);
        return r;
}

static int parse_address_list(const ConfNode *n, NodeDevPciAddress **ret, size_t *ret_n, VbError *e) {
        int r;

        for (size_t i = 0; i < n->n_children; i++) {
                const ConfNode *a = n->children[i];
                NodeDevPciAddress *l;

                if (!conf_node_is(a, "address"))
                        continue;
                l = realloc(*ret, (*ret_n + 1) * sizeof(NodeDevPciAddress));
                if (!l)
                        return -ENOMEM;
                *ret = l;
                l[*ret_n] = (NodeDevPciAddress) {};
                r = parse_pci_address_attrs(a, &l[*ret_n], e);
                if (r < 0)
                        return r;
                (*ret_n)++;
        }
        return 0;
}

static int parse_cap_pci(const ConfNode *n, NodeDevCapPci *p, VbError *e) {
        const ConfNode *c;
        uint64_t v;
        int r;

        /* A PCI domain is 32 bits (VMD domains start at 0x10000); so is a bus number here, as in libvirt. */
        r = parse_u32(n, "element 'domain'", child_text(n, "domain"), 10, UINT32_MAX, &p->address.domain, e);
        if (r >= 0)
                r = parse_u32(n, "element 'bus'", child_text(n, "bus"), 10, UINT32_MAX, &p->address.bus, e);
        if (r >= 0)
                r = parse_u32(n, "element 'slot'", child_text(n, "slot"), 10, 0x1f, &p->address.slot, e);
        if (r >= 0)
                r = parse_u32(n, "element 'function'", child_text(n, "function"), 10, 7, &p->address.function, e);
        if (r < 0)
                return r;
        if (child_text(n, "class")) {
                r = conf_parse_uint_base(n, "element 'class'", child_text(n, "class"), 16, 0xffffff, &v, e);
                if (r < 0)
                        return r;
                p->class_code = (int64_t) v;
        }
        if ((c = conf_node_child(n, "vendor"))) {
                r = parse_u32(c, "attribute 'id'", conf_node_attr(c, "id"), 16, 0xffff, &p->vendor_id, e);
                if (r < 0 || (c->text && !(p->vendor_name = strdup(c->text))))
                        return r < 0 ? r : -ENOMEM;
        }
        if ((c = conf_node_child(n, "product"))) {
                r = parse_u32(c, "attribute 'id'", conf_node_attr(c, "id"), 16, 0xffff, &p->product_id, e);
                if (r < 0 || (c->text && !(p->product_name = strdup(c->text))))
                        return r < 0 ? r : -ENOMEM;
        }
        for (size_t i = 0; i < n->n_children; i++) {
                const ConfNode *k = n->children[i];
                const char *type = conf_node_attr(k, "type");

                if (conf_node_is(k, "capability") && streq_ptr(type, "virt_functions")) {
                        p->is_pf = true;
                        r = parse_u32(k, "attribute 'maxCount'", conf_node_attr(k, "maxCount"), 10, UINT16_MAX,
                                      &p->max_vfs, e);
                        if (r >= 0)
                                r = parse_address_list(k, &p->vfs, &p->n_vfs, e);
                } else if (conf_node_is(k, "capability") && streq_ptr(type, "phys_function")) {
                        const ConfNode *a = conf_node_child(k, "address");

                        p->is_vf = true;
                        r = a ? parse_pci_address_attrs(a, &p->pf, e) : 0;
                } else if (conf_node_is(k, "iommuGroup")) {
                        r = conf_parse_uint(k, "attribute 'number'", conf_node_attr(k, "number"), INT32_MAX, &v, e);
                        if (r >= 0) {
                                p->iommu_group = (int64_t) v;
                                r = parse_address_list(k, &p->group, &p->n_group, e);
                        }
                } else if (conf_node_is(k, "pci-express"))
                        p->pcie = true;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_cap_net(const ConfNode *n, NodeDevCapNet *net, VbError *e) {
        const char *mac = child_text(n, "address");
        uint8_t m[6];
        int r;

        if (mac && conf_mac_parse(mac, m) < 0)
                return conf_error(e, conf_node_child(n, "address"), "invalid MAC address '%s'", mac);
        r = dup_text(n, "interface", &net->ifname);
        if (r >= 0)
                r = dup_text(n, "address", &net->mac);
        return r;
}

static int parse_cap_usb_device(const ConfNode *n, NodeDevCapUsbDevice *u, VbError *e) {
        const ConfNode *c;
        int r;

        r = parse_u32(n, "element 'bus'", child_text(n, "bus"), 10, UINT32_MAX, &u->bus, e);
        if (r >= 0)
                r = parse_u32(n, "element 'device'", child_text(n, "device"), 10, UINT32_MAX, &u->device, e);
        if (r >= 0 && (c = conf_node_child(n, "vendor")))
                r = parse_u32(c, "attribute 'id'", conf_node_attr(c, "id"), 16, 0xffff, &u->vendor_id, e);
        if (r >= 0 && (c = conf_node_child(n, "product")))
                r = parse_u32(c, "attribute 'id'", conf_node_attr(c, "id"), 16, 0xffff, &u->product_id, e);
        return r;
}

static int parse_caps(NodeDevDef *def, const ConfNode *root, VbError *e) {
        int r = 0;

        for (size_t i = 0; i < root->n_children && r >= 0; i++) {
                const ConfNode *c = root->children[i];
                NodeDevCapType t;
                NodeDevCap *cap;

                if (!conf_node_is(c, "capability"))
                        continue;
                r = CONF_LOOKUP_ENUM(c, "attribute 'type'", conf_node_attr(c, "type"), nodedev_cap_type, &t, e);
                if (r < 0)
                        return r;
                cap = nodedev_def_add_cap(def, t);
                if (!cap)
                        return -ENOMEM;
                switch (t) {
                case NODEDEV_CAP_PCI:
                        r = parse_cap_pci(c, &cap->pci, e);
                        break;
                case NODEDEV_CAP_NET:
                        r = parse_cap_net(c, &cap->net, e);
                        break;
                case NODEDEV_CAP_USB_DEVICE:
                        r = parse_cap_usb_device(c, &cap->usb_device, e);
                        break;
                default:
                        r = 0;
                }
        }
        return r;
}

int nodedev_def_parse_string(const char *xml, NodeDevDef **ret, VbError *reterr) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        const ConfNode *drv;
        int r;

        r = conf_node_parse_string(xml, "nodedev.rng", &root, reterr);
        if (r < 0)
                return r;
        r = conf_check_name(conf_node_child(root, "name"), "element 'name'", child_text(root, "name"), reterr);
        if (r < 0)
                return r;
        def = nodedev_def_new(child_text(root, "name"));
        if (!def)
                return -ENOMEM;
        drv = conf_node_child(root, "driver");
        if (dup_text(root, "path", &def->path) < 0 || dup_text(root, "parent", &def->parent) < 0 ||
            (drv && dup_text(drv, "name", &def->driver) < 0))
                return -ENOMEM;
        r = parse_caps(def, root, reterr);
        if (r < 0)
                return r;
        def->source = TAKE_PTR(root);
        *ret = TAKE_PTR(def);
        return 0;
}
