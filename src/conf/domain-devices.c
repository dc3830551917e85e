/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The devices of a domain definition for AttachDevice / DetachDevice / UpdateDevice (see the header).
 *
 * Devices are compared in their canonical form: each is formatted to a ConfNode tree by the typed code
 * (so '0x2' and '0x02', or upper and lower case MACs, read the same) and the trees are compared. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/domain-devices.h"
#include "util/strbuf.h"

#define UNSET UINT32_MAX
#define PCI_FIRST_FREE_SLOT 3
#define PCI_SLOTS 32

static ConfNode *dev_node(const DeviceDef *dev) {
        ConfNode *n = NULL;

        if (device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n) < 0)
                return NULL;
        return n;
}

/* Children looked up regardless of the parser's "used" mark. */
static const ConfNode *node_child(const ConfNode *n, const char *name) {
        for (size_t i = 0; n && i < n->n_children; i++)
                if (!n->children[i]->ns_href && streq(n->children[i]->name, name))
                        return n->children[i];
        return NULL;
}

static const char *node_get(const ConfNode *n, const char *child, const char *attr) {
        if (child)
                n = node_child(n, child);
        return n ? conf_node_attr(n, attr) : NULL;
}

static uint32_t node_uint(const ConfNode *n, const char *attr) {
        const char *s = conf_node_attr(n, attr);
        char *end;
        unsigned long v;

        if (!s)
                return UNSET;
        v = strtoul(s, &end, 0);
        return *end || v >= UNSET ? UNSET : (uint32_t) v;
}

int device_def_copy(const DeviceDef *dev, DeviceDef **ret) {
        ConfNode *n = dev_node(dev);
        VbError e = VB_ERROR_NULL;
        int r;

        if (!n)
                return -ENOMEM;
        r = device_def_parse_node(n, ret, &e);
        vb_error_free(&e);
        return r;
}

static int format_pci(const ConfNode *a, char **ret) {
        uint32_t dom = node_uint(a, "domain"), bus = node_uint(a, "bus"), slot = node_uint(a, "slot"),
                 fn = node_uint(a, "function");

        if (bus == UNSET || slot == UNSET)
                return 0;
        if (asprintf(ret, "%04x:%02x:%02x.%x", dom == UNSET ? 0 : dom, bus, slot, fn == UNSET ? 0 : fn) < 0)
                return -ENOMEM;
        return 1;
}

static int hostdev_key(const ConfNode *n, char **ret) {
        const ConfNode *src = node_child(n, "source"), *a = node_child(src, "address");
        const char *type = conf_node_attr(n, "type"), *mode = conf_node_attr(n, "mode");
        int r;

        if (!type || (mode && !streq(mode, "subsystem")) || !src)
                return 0;
        if (streq(type, "pci"))
                return a ? format_pci(a, ret) : 0;
        if (streq(type, "usb")) {
                uint32_t vendor = node_uint(node_child(src, "vendor"), "id"),
                         product = node_uint(node_child(src, "product"), "id");
                if (vendor != UNSET && product != UNSET)
                        r = asprintf(ret, "usb:%04x:%04x", vendor, product);
                else if (a && node_uint(a, "bus") != UNSET && node_uint(a, "device") != UNSET)
                        r = asprintf(ret, "usb:%u.%u", node_uint(a, "bus"), node_uint(a, "device"));
                else
                        return 0;
                return r < 0 ? -ENOMEM : 1;
        }
        if (streq(type, "scsi") && a && node_get(src, "adapter", "name"))
                return asprintf(ret, "scsi:%s:%u:%u:%u", node_get(src, "adapter", "name"), node_uint(a, "bus"),
                                node_uint(a, "target"), node_uint(a, "unit")) < 0 ? -ENOMEM : 1;
        if (streq(type, "mdev") && a && conf_node_attr(a, "uuid"))
                return asprintf(ret, "mdev:%s", conf_node_attr(a, "uuid")) < 0 ? -ENOMEM : 1;
        return 0;
}

static int node_host_device(const DeviceDef *dev, const ConfNode *n, char **ret) {
        const ConfNode *a;

        *ret = NULL;
        if (dev->kind == DEVICE_HOSTDEV)
                return hostdev_key(n, ret);
        if (dev->kind == DEVICE_INTERFACE && streq_ptr(conf_node_attr(n, "type"), "hostdev")) {
                a = node_child(node_child(n, "source"), "address");
                if (a && streq_ptr(conf_node_attr(a, "type"), "pci"))
                        return format_pci(a, ret);
        }
        return 0;
}

int device_def_host_device(const DeviceDef *dev, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;

        *ret = NULL;
        if (dev->kind != DEVICE_HOSTDEV && dev->kind != DEVICE_INTERFACE)
                return 0;
        n = dev_node(dev);
        if (!n)
                return -ENOMEM;
        return node_host_device(dev, n, ret);
}

bool device_def_is_host_device(const DeviceDef *dev) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;

        if (dev->kind == DEVICE_HOSTDEV)
                return true;
        if (dev->kind != DEVICE_INTERFACE)
                return false;
        n = dev_node(dev);
        return n && streq_ptr(conf_node_attr(n, "type"), "hostdev");
}

int device_def_network(const DeviceDef *dev, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *net;

        *ret = NULL;
        if (dev->kind != DEVICE_INTERFACE)
                return 0;
        n = dev_node(dev);
        if (!n)
                return -ENOMEM;
        if (!streq_ptr(conf_node_attr(n, "type"), "network") || !(net = node_get(n, "source", "network")))
                return 0;
        *ret = strdup(net);
        return *ret ? 1 : -ENOMEM;
}

/* What identifies a device of its kind, or NULL. */
static int node_identity(const DeviceDef *dev, const ConfNode *n, DeviceMatch how, char **ret) {
        const char *v = NULL;

        *ret = NULL;
        switch (dev->kind) {
        case DEVICE_DISK:
                v = node_get(n, "target", "dev");
                break;
        case DEVICE_INTERFACE:
                v = node_get(n, "mac", "address");
                break;
        case DEVICE_HOSTDEV:
                return node_host_device(dev, n, ret);
        case DEVICE_GRAPHICS:
                if (how == DEVICE_MATCH_IDENTITY)
                        v = conf_node_attr(n, "type");
                break;
        default:
                break;
        }
        if (!v)
                return 0;
        *ret = strdup(v);
        return *ret ? 1 : -ENOMEM;
}

char *device_def_describe(const DeviceDef *dev) {
        _cleanup_(conf_node_freep) ConfNode *n = dev_node(dev);
        _cleanup_free_ char *key = NULL;
        char *s;

        if (n && node_identity(dev, n, DEVICE_MATCH_IDENTITY, &key) > 0) {
                if (asprintf(&s, "%s '%s'", device_def_kind_name(dev), key) < 0)
                        return NULL;
        } else if (dev->alias) {
                if (asprintf(&s, "%s '%s'", device_def_kind_name(dev), dev->alias) < 0)
                        return NULL;
        } else
                s = strdup(device_def_kind_name(dev));
        return s;
}

/* Comparing canonical trees ----------------------------------------------------------------------- */

typedef struct Compare {
        const char *a_label, *b_label;      /* "given", "in the domain" */
        const char * const *ignore_children; /* at the top level only */
        const char * const *ignore_attrs;
        char *diff; /* the first difference, in words */
} Compare;

static bool in_list(const char * const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

static const ConfNode *nth_child_named(const ConfNode *n, const ConfNode *like, size_t k) {
        for (size_t i = 0; i < n->n_children; i++) {
                const ConfNode *c = n->children[i];
                if (streq(c->name, like->name) && streq_ptr(c->ns_href, like->ns_href) && k-- == 0)
                        return c;
        }
        return NULL;
}

/* Everything a has is in b too (attributes, text, children: the k-th child named X of a against the k-th
 * child named X of b). path: "<source>" etc. */
static int node_subset(const ConfNode *a, const ConfNode *b, const char *path, bool top, Compare *cmp) {
        for (size_t i = 0; i < a->n_attrs; i++) {
                const ConfAttr *at = &a->attrs[i];
                const char *bv = NULL;

                if (top && in_list(cmp->ignore_attrs, at->name))
                        continue;
                for (size_t j = 0; j < b->n_attrs; j++)
                        if (streq(b->attrs[j].name, at->name) && streq_ptr(b->attrs[j].ns_href, at->ns_href))
                                bv = b->attrs[j].value;
                if (streq_ptr(bv, at->value))
                        continue;
                if (asprintf(&cmp->diff, bv ? "attribute '%s' of %s is '%s' %s but '%s' %s"
                                            : "attribute '%s' of %s is '%s' %s but not set %s%s",
                             at->name, path, at->value, cmp->a_label, bv ?: "", cmp->b_label) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (!isempty(a->text) && !streq_ptr(a->text, b->text)) {
                if (asprintf(&cmp->diff, "the text of %s is '%s' %s but '%s' %s", path, a->text, cmp->a_label,
                             strempty(b->text), cmp->b_label) < 0)
                        return -ENOMEM;
                return 0;
        }
        for (size_t i = 0; i < a->n_children; i++) {
                const ConfNode *c = a->children[i], *other;
                _cleanup_free_ char *sub = NULL;
                size_t k = 0;
                int r;

                if (top && in_list(cmp->ignore_children, c->name))
                        continue;
                for (size_t j = 0; j < i; j++)
                        k += streq(a->children[j]->name, c->name) && streq_ptr(a->children[j]->ns_href, c->ns_href);
                if (asprintf(&sub, "%s<%s>", top ? "" : path, c->name) < 0)
                        return -ENOMEM;
                other = nth_child_named(b, c, k);
                if (!other) {
                        if (asprintf(&cmp->diff, "%s is %s but not %s", sub, cmp->a_label, cmp->b_label) < 0)
                                return -ENOMEM;
                        return 0;
                }
                r = node_subset(c, other, sub, false, cmp);
                if (r < 0 || cmp->diff)
                        return r;
        }
        return 0;
}

/* 1 if a is within b, 0 with cmp->diff set if not. */
static int node_is_subset(const ConfNode *a, const ConfNode *b, Compare *cmp) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "<%s>", a->name) < 0)
                return -ENOMEM;
        r = node_subset(a, b, path, true, cmp);
        if (r < 0)
                return r;
        return !cmp->diff;
}

/* An <interface type='network'> of a running domain shows the type it actually is (a bridge, a macvtap
 * 'direct', a VF 'hostdev': core/network-manager.c) next to its <source network=>: a description that says
 * type='network' means it all the same. */
static const char * const *network_actual_ignores(const DeviceDef *probe, const ConfNode *pn, const ConfNode *dn) {
        static const char * const type[] = { "type", NULL };

        if (probe->kind == DEVICE_INTERFACE && streq_ptr(conf_node_attr(pn, "type"), "network") &&
            node_get(dn, "source", "network"))
                return type;
        return NULL;
}

/* Finding ---------------------------------------------------------------------------------------- */

static bool address_equal(const DeviceAddress *a, const DeviceAddress *b) {
        _cleanup_(conf_node_freep) ConfNode *x = conf_node_new("x"), *y = conf_node_new("y");
        Compare c1 = { .a_label = "", .b_label = "" }, c2 = c1;
        bool eq;

        if (a->type != b->type)
                return false;
        if (!x || !y || device_address_format(a, x, "address") < 0 || device_address_format(b, y, "address") < 0)
                return false;
        eq = node_is_subset(x, y, &c1) > 0 && node_is_subset(y, x, &c2) > 0;
        free(c1.diff);
        free(c2.diff);
        return eq;
}

ssize_t domain_def_find_alias(const DomainDef *def, const char *alias) {
        for (size_t i = 0; alias && i < def->n_devices; i++)
                if (streq_ptr(def->devices[i]->alias, alias))
                        return (ssize_t) i;
        return -ENOENT;
}

int domain_def_find_device(const DomainDef *def, const DeviceDef *probe, DeviceMatch how, size_t *ret,
                           VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *pn = dev_node(probe);
        _cleanup_free_ char *key = NULL, *what = NULL, *first_diff = NULL;
        size_t n_candidates = 0, n_matches = 0, found = 0;
        int r;

        if (!pn)
                return -ENOMEM;
        r = node_identity(probe, pn, how, &key);
        if (r < 0)
                return r;
        what = device_def_describe(probe);
        if (!what)
                return -ENOMEM;

        for (size_t i = 0; i < def->n_devices; i++) {
                const DeviceDef *d = def->devices[i];
                _cleanup_(conf_node_freep) ConfNode *dn = NULL;
                _cleanup_free_ char *dkey = NULL;

                if (d->kind != probe->kind)
                        continue;
                dn = dev_node(d);
                if (!dn)
                        return -ENOMEM;
                if (key) {
                        r = node_identity(d, dn, how, &dkey);
                        if (r < 0)
                                return r;
                        if (!streq_ptr(key, dkey))
                                continue;
                } else if (probe->alias) {
                        if (!streq_ptr(probe->alias, d->alias))
                                continue;
                } else if (probe->address.type != DEVICE_ADDRESS_NONE) {
                        if (!address_equal(&probe->address, &d->address))
                                continue;
                }
                n_candidates++;
                if (how == DEVICE_MATCH_EXACT) {
                        Compare cmp = { .a_label = "in the XML given", .b_label = "in the domain",
                                        .ignore_attrs = network_actual_ignores(probe, pn, dn) };

                        r = node_is_subset(pn, dn, &cmp);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                if (!first_diff)
                                        first_diff = TAKE_PTR(cmp.diff);
                                free(cmp.diff);
                                continue;
                        }
                }
                n_matches++;
                found = i;
        }

        if (n_matches == 1) {
                *ret = found;
                return 0;
        }
        if (n_matches > 1)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "%zu devices of domain '%s' match the %s given; add its <alias> or <address> "
                                    "to say which one",
                                    n_matches, def->name, what);
        if (n_candidates == 1 && first_diff)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "The %s of domain '%s' differs: %s", what,
                                    def->name, first_diff);
        if (first_diff)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE,
                                    "Domain '%s' has no %s like the one given (e.g. %s)", def->name, what,
                                    first_diff);
        return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain '%s' has no %s", def->name, what);
}

/* Conflicts -------------------------------------------------------------------------------------- */

static bool address_complete(const DeviceAddress *a) {
        switch (a->type) {
        case DEVICE_ADDRESS_NONE:
        case DEVICE_ADDRESS_UNASSIGNED:
                return false;
        case DEVICE_ADDRESS_PCI:
                return a->pci.slot != UNSET;
        case DEVICE_ADDRESS_DRIVE:
                return a->drive.unit != UNSET;
        case DEVICE_ADDRESS_VIRTIO_SERIAL:
                return a->vioserial.port != UNSET;
        case DEVICE_ADDRESS_USB:
                return a->usb.port != NULL;
        case DEVICE_ADDRESS_CCW:
                return a->ccw.devno != UNSET;
        default:
                return false;
        }
}

static bool pci_same_function(const DeviceAddress *a, const DeviceAddress *b) {
#define V(x) ((x) == UNSET ? 0 : (x))
        return V(a->pci.domain) == V(b->pci.domain) && V(a->pci.bus) == V(b->pci.bus) &&
               a->pci.slot == b->pci.slot && V(a->pci.function) == V(b->pci.function);
#undef V
}

static bool addresses_clash(const DeviceAddress *a, const DeviceAddress *b) {
        if (a->type != b->type || !address_complete(a) || !address_complete(b))
                return false;
        if (a->type == DEVICE_ADDRESS_PCI)
                return pci_same_function(a, b);
        return address_equal(a, b);
}

static char *address_text(const DeviceAddress *a) {
        char *s = NULL;

        if (a->type == DEVICE_ADDRESS_PCI)
                (void) asprintf(&s, "pci %04x:%02x:%02x.%x", a->pci.domain == UNSET ? 0 : a->pci.domain,
                                a->pci.bus == UNSET ? 0 : a->pci.bus, a->pci.slot,
                                a->pci.function == UNSET ? 0 : a->pci.function);
        else
                s = strdup(device_address_type_to_string(a->type));
        return s;
}

static int check_pair(const DomainDef *def, const DeviceDef *dev, const ConfNode *n, const DeviceDef *d,
                      const ConfNode *dn, VbError *reterr) {
        _cleanup_free_ char *k1 = NULL, *k2 = NULL;
        const char *v;
        int r;

        if (dev->alias && streq_ptr(dev->alias, d->alias))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' already has a device with alias '%s'",
                                    def->name, dev->alias);
        if (dev->kind == d->kind && dev->kind == DEVICE_DISK && (v = node_get(n, "target", "dev")) &&
            streq_ptr(v, node_get(dn, "target", "dev")))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' already has a disk with target '%s'",
                                    def->name, v);
        if (dev->kind == d->kind && dev->kind == DEVICE_INTERFACE && (v = node_get(n, "mac", "address")) &&
            streq_ptr(v, node_get(dn, "mac", "address")))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS,
                                    "Domain '%s' already has an interface with MAC address '%s'", def->name, v);
        if (dev->kind == d->kind && dev->kind == DEVICE_CONTROLLER && (v = conf_node_attr(n, "index")) &&
            streq_ptr(conf_node_attr(n, "type"), conf_node_attr(dn, "type")) &&
            streq_ptr(v, conf_node_attr(dn, "index")))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS,
                                    "Domain '%s' already has a '%s' controller with index %s", def->name,
                                    conf_node_attr(n, "type"), v);
        r = node_host_device(dev, n, &k1);
        if (r > 0)
                r = node_host_device(d, dn, &k2);
        if (r < 0)
                return r;
        if (k1 && k2 && streq(k1, k2))
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Host device '%s' is already given to domain '%s'",
                                    k1, def->name);
        if (addresses_clash(&dev->address, &d->address)) {
                _cleanup_free_ char *a = address_text(&dev->address), *who = device_def_describe(d);
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Guest address %s of domain '%s' is already used by %s",
                                    strempty(a), def->name, strempty(who));
        }
        return 0;
}

int domain_def_check_device_conflicts(const DomainDef *def, const DeviceDef *dev, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = dev_node(dev);

        if (!n)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++) {
                _cleanup_(conf_node_freep) ConfNode *dn = dev_node(def->devices[i]);
                int r;

                if (!dn)
                        return -ENOMEM;
                r = check_pair(def, dev, n, def->devices[i], dn, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Aliases ----------------------------------------------------------------------------------------- */

/* vda -> 0, sdq -> 16, hdaa -> 26, as libvirt numbers disks; -1 if not a disk name. */
static int disk_name_index(const char *name) {
        static const char * const prefixes[] = { "fd", "hd", "vd", "sd", "xvd", "ubd" };
        const char *p = NULL;
        long idx = 0;

        for (size_t i = 0; i < ELEMENTSOF(prefixes) && !p; i++)
                if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
                        p = name + strlen(prefixes[i]);
        if (!p || !*p)
                return -1;
        for (; *p; p++) {
                if (*p < 'a' || *p > 'z' || idx > 100000)
                        return -1;
                idx = idx * 26 + (*p - 'a' + 1);
        }
        return (int) (idx - 1);
}

static bool alias_used(const DomainDef *def, const char *alias) {
        return domain_def_find_alias(def, alias) >= 0;
}

static int next_alias(const DomainDef *def, const char *prefix, char **ret) {
        for (unsigned n = 0;; n++) {
                char *a;
                if (asprintf(&a, "%s%u", prefix, n) < 0)
                        return -ENOMEM;
                if (!alias_used(def, a)) {
                        *ret = a;
                        return 0;
                }
                free(a);
        }
}

static const char * const alias_prefix[_DEVICE_KIND_MAX] = {
        [DEVICE_INTERFACE] = "net",      [DEVICE_HOSTDEV] = "hostdev",   [DEVICE_INPUT] = "input",
        [DEVICE_SERIAL] = "serial",      [DEVICE_PARALLEL] = "parallel", [DEVICE_CONSOLE] = "console",
        [DEVICE_CHANNEL] = "channel",    [DEVICE_RNG] = "rng",           [DEVICE_WATCHDOG] = "watchdog",
        [DEVICE_FILESYSTEM] = "fs",      [DEVICE_SHMEM] = "shmem",       [DEVICE_REDIRDEV] = "redir",
        [DEVICE_SMARTCARD] = "smartcard", [DEVICE_SOUND] = "sound",      [DEVICE_VIDEO] = "video",
        [DEVICE_MEMBALLOON] = "balloon", [DEVICE_TPM] = "tpm",           [DEVICE_LEASE] = NULL,
        [DEVICE_GRAPHICS] = NULL,        [DEVICE_HUB] = "hub",           [DEVICE_MEMORY] = "dimm",
        [DEVICE_VSOCK] = "vsock",        [DEVICE_PANIC] = "panic",       [DEVICE_CRYPTO] = "crypto",
};

int domain_def_assign_device_alias(const DomainDef *def, DeviceDef *dev) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *prefix = NULL;
        const char *bus, *target, *type, *index;
        char *a = NULL;

        if (dev->alias || dev->kind == DEVICE_GRAPHICS || dev->kind == DEVICE_LEASE)
                return 0;
        n = dev_node(dev);
        if (!n)
                return -ENOMEM;
        switch (dev->kind) {
        case DEVICE_DISK:
                bus = node_get(n, "target", "bus");
                target = node_get(n, "target", "dev");
                if (asprintf(&prefix, "%s-disk", bus ?: "disk") < 0)
                        return -ENOMEM;
                if (target && disk_name_index(target) >= 0) {
                        if (asprintf(&a, "%s%d", prefix, disk_name_index(target)) < 0)
                                return -ENOMEM;
                        if (alias_used(def, a)) {
                                free(a);
                                a = NULL;
                        }
                }
                break;
        case DEVICE_CONTROLLER:
                type = conf_node_attr(n, "type");
                index = conf_node_attr(n, "index");
                prefix = strdup(type ?: "controller");
                if (!prefix)
                        return -ENOMEM;
                if (index) {
                        if (asprintf(&a, "%s%s", prefix, index) < 0)
                                return -ENOMEM;
                        if (alias_used(def, a)) {
                                free(a);
                                a = NULL;
                        }
                }
                break;
        case DEVICE_INTERFACE:
                prefix = strdup(streq_ptr(conf_node_attr(n, "type"), "hostdev") ? "hostdev" : "net");
                break;
        default:
                prefix = strdup(alias_prefix[dev->kind] ?: device_def_kind_name(dev));
                break;
        }
        if (!prefix)
                return -ENOMEM;
        if (!a && next_alias(def, prefix, &a) < 0)
                return -ENOMEM;
        dev->alias = a;
        return 0;
}

/* Guest PCI addresses ----------------------------------------------------------------------------- */

bool device_def_wants_pci_address(const DeviceDef *dev) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *v;

        if (dev->address.type != DEVICE_ADDRESS_NONE && dev->address.type != DEVICE_ADDRESS_PCI)
                return false;
        n = dev_node(dev);
        if (!n)
                return false;
        switch (dev->kind) {
        case DEVICE_DISK:
                return streq_ptr(node_get(n, "target", "bus"), "virtio");
        case DEVICE_INTERFACE:
        case DEVICE_RNG:
        case DEVICE_FILESYSTEM:
        case DEVICE_SHMEM:
        case DEVICE_SOUND:
        case DEVICE_VIDEO:
                return true;
        case DEVICE_HOSTDEV:
                return streq_ptr(conf_node_attr(n, "type"), "pci");
        case DEVICE_CONTROLLER:
                v = conf_node_attr(n, "type");
                if (streq_ptr(v, "usb"))
                        return !streq_ptr(conf_node_attr(n, "model"), "none");
                return streq_ptr(v, "scsi") || streq_ptr(v, "virtio-serial") || streq_ptr(v, "sata");
        case DEVICE_INPUT:
                return streq_ptr(conf_node_attr(n, "bus"), "virtio");
        case DEVICE_WATCHDOG:
                return streq_ptr(conf_node_attr(n, "model"), "i6300esb");
        case DEVICE_MEMBALLOON:
                v = conf_node_attr(n, "model");
                return v && strncmp(v, "virtio", 6) == 0;
        default:
                return false;
        }
}

static void mark_used_slots(const DomainDef *def, const DeviceDef *self, bool used[PCI_SLOTS]) {
        for (size_t i = 0; def && i < def->n_devices; i++) {
                const DeviceAddress *a = &def->devices[i]->address;

                if (def->devices[i] == self || a->type != DEVICE_ADDRESS_PCI || a->pci.slot >= PCI_SLOTS)
                        continue;
                if ((a->pci.domain == UNSET || a->pci.domain == 0) && (a->pci.bus == UNSET || a->pci.bus == 0))
                        used[a->pci.slot] = true;
        }
}

bool domain_machine_is_q35(const char *machine) {
        return machine && (streq(machine, "q35") || strncmp(machine, "pc-q35", 6) == 0);
}

bool domain_machine_is_microvm(const char *machine) {
        return streq_ptr(machine, "microvm");
}

bool domain_machine_has_pcie_root(const char *machine) {
        return domain_machine_is_q35(machine) || domain_machine_is_microvm(machine);
}

/* Ports that take one device, at slot 0, and let it be hot-plugged and unplugged. */
static bool is_hotplug_port(const DeviceDef *dev, uint32_t *ret_index) {
        const char *type, *model;

        return device_controller_get(dev, &type, &model, ret_index) && streq_ptr(type, "pci") &&
               (streq_ptr(model, "pcie-root-port") || streq_ptr(model, "pcie-switch-downstream-port")) &&
               *ret_index != UNSET && *ret_index > 0;
}

static bool bus_used(const DomainDef *def, const DeviceDef *self, uint32_t bus) {
        for (size_t i = 0; def && i < def->n_devices; i++) {
                const DeviceAddress *a = &def->devices[i]->address;

                if (def->devices[i] != self && a->type == DEVICE_ADDRESS_PCI && a->pci.bus == bus &&
                    (a->pci.domain == UNSET || a->pci.domain == 0))
                        return true;
        }
        return false;
}

/* q35: the root bus pcie.0 takes no hot-plugged devices; a device goes alone into a pcie-root-port (or a
 * switch's downstream port) no device of def or other sits on. */
static int assign_root_port(const DomainDef *def, const DomainDef *other, DeviceDef *dev, VbError *reterr) {
        DeviceAddress *a = &dev->address;
        uint32_t index;

        for (size_t i = 0; i < def->n_devices; i++)
                if (is_hotplug_port(def->devices[i], &index) && !bus_used(def, dev, index) &&
                    !bus_used(other, dev, index)) {
                        a->pci.bus = index;
                        a->pci.slot = 0;
                        return 0;
                }
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                            "Domain '%s' has no free PCIe root port: on a q35 machine a device is hot-plugged into "
                            "a pcie-root-port no other device uses. Add <controller type='pci' "
                            "model='pcie-root-port'/> to the definition (one per device to hot-plug; it takes effect "
                            "at the next start), or detach a device from one",
                            def->name);
}

/* at_start: for a definition about to run, devices without an address stay on bus 0 (on q35, integrated
 * devices of pcie.0). Otherwise a q35 machine puts a device into a free root port. */
static int assign_address(const DomainDef *def, const DomainDef *other, DeviceDef *dev, bool at_start,
                          VbError *reterr) {
        DeviceAddress *a = &dev->address;
        bool used[PCI_SLOTS] = {};
        bool q35 = domain_machine_is_q35(def->os.machine);
        uint32_t index;

        if (!device_def_wants_pci_address(dev))
                return 0;
        if (a->type == DEVICE_ADDRESS_NONE)
                *a = (DeviceAddress) {
                        .type = DEVICE_ADDRESS_PCI,
                        .pci = { .domain = UNSET, .bus = UNSET, .slot = UNSET, .function = UNSET, .multifunction = -1 },
                };
        if (a->pci.domain == UNSET)
                a->pci.domain = 0;
        if (a->pci.function == UNSET)
                a->pci.function = 0;
        if (q35 && !at_start && a->pci.slot == UNSET && a->pci.domain == 0) {
                if (a->pci.bus == UNSET)
                        return assign_root_port(def, other, dev, reterr);
                /* A port named: its only slot. */
                for (size_t i = 0; a->pci.bus != 0 && i < def->n_devices; i++)
                        if (is_hotplug_port(def->devices[i], &index) && index == a->pci.bus) {
                                a->pci.slot = 0;
                                return 0;
                        }
        }
        if (a->pci.bus == UNSET)
                a->pci.bus = 0;
        if (a->pci.slot != UNSET)
                return 0;
        if (a->pci.domain != 0 || a->pci.bus != 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Only slots on PCI bus 0%s are assigned automatically; give the <address> in full",
                                    q35 ? " and in PCIe root ports" : "");
        mark_used_slots(def, dev, used);
        mark_used_slots(other, dev, used);
        for (uint32_t slot = PCI_FIRST_FREE_SLOT; slot < PCI_SLOTS; slot++)
                if (!used[slot]) {
                        a->pci.slot = slot;
                        return 0;
                }
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Domain '%s' has no free slot left on PCI bus 0",
                            def->name);
}

int domain_def_assign_device_address(const DomainDef *def, const DomainDef *other, DeviceDef *dev,
                                     VbError *reterr) {
        return assign_address(def, other, dev, false, reterr);
}

int domain_def_assign_device_names(DomainDef *def, VbError *reterr) {
        int r;

        for (size_t i = 0; i < def->n_devices; i++) {
                r = domain_def_assign_device_alias(def, def->devices[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < def->n_devices; i++) {
                r = assign_address(def, NULL, def->devices[i], true, reterr);
                if (r < 0)
                        return r;
        }
        def->serial = domain_def_new_serial();
        return 0;
}

/* Updates ---------------------------------------------------------------------------------------- */

/* old with what the update may change (children and attributes of the top element) taken from given. */
static int merge_changeable(const ConfNode *on, const ConfNode *gn, const char * const *children,
                            const char * const *attrs, DeviceDef **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = conf_node_copy(on);
        VbError e = VB_ERROR_NULL;
        int r;

        if (!n)
                return -ENOMEM;
        for (const char * const *a = attrs; a && *a; a++) {
                free(conf_node_take_attr(n, *a));
                if (conf_node_set_attr(n, *a, conf_node_attr(gn, *a)) < 0)
                        return -ENOMEM;
        }
        for (const char * const *c = children; c && *c; c++) {
                for (size_t i = n->n_children; i > 0; i--)
                        if (!n->children[i - 1]->ns_href && streq(n->children[i - 1]->name, *c))
                                conf_node_free(conf_node_detach_child(n, i - 1));
                for (size_t i = 0; i < gn->n_children; i++)
                        if (!gn->children[i]->ns_href && streq(gn->children[i]->name, *c) &&
                            conf_node_append(n, conf_node_copy(gn->children[i])) < 0)
                                return -ENOMEM;
        }
        conf_node_sort(n);
        r = device_def_parse_node(TAKE_PTR(n), ret, &e);
        if (r < 0 && vb_error_is_set(&e))
                r = -EINVAL;
        vb_error_free(&e);
        return r;
}

/* What an <interface type='network'> actually uses (<source bridge=> or dev= mode=, filled in when the
 * domain starts: core/network-manager.c) is not for the caller to repeat: dropped from the comparison. */
static ConfNode *without_network_actual(const ConfNode *on, const ConfNode *gn) {
        ConfNode *copy = conf_node_copy(on);
        static const char * const actual[] = { "bridge", "dev", "mode" };

        for (size_t i = 0; copy && i < copy->n_children; i++) {
                ConfNode *src = copy->children[i], *gsrc = conf_node_child(gn, "source");

                if (!conf_node_is(src, "source") || !conf_node_attr(src, "network"))
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(actual); k++)
                        if (!conf_node_attr(gsrc, actual[k]))
                                free(conf_node_take_attr(src, actual[k]));
        }
        return copy;
}

int device_def_live_update(const DeviceDef *old, const DeviceDef *given, DeviceDef **ret, VbError *reterr) {
        static const char * const disk_children[] = { "source", NULL }, * const disk_attrs[] = { "type", NULL };
        static const char * const if_children[] = { "link", "bandwidth", NULL };
        static const char * const gr_attrs[] = { "passwd", "passwdValidTo", "connected", NULL };
        _cleanup_(conf_node_freep) ConfNode *on = dev_node(old), *gn = dev_node(given);
        _cleanup_free_ char *what = device_def_describe(old);
        Compare cmp = { .a_label = "in the XML given", .b_label = "now" };
        const char *v;
        int r;

        if (!on || !gn || !what)
                return -ENOMEM;
        switch (old->kind) {
        case DEVICE_DISK:
                v = conf_node_attr(on, "device");
                if (!streq_ptr(v, "cdrom") && !streq_ptr(v, "floppy"))
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Only the medium of a cdrom or floppy can be changed while the domain "
                                            "runs; %s is a %s", what, v ?: "disk");
                cmp.ignore_children = disk_children;
                cmp.ignore_attrs = disk_attrs;
                break;
        case DEVICE_INTERFACE:
                cmp.ignore_children = if_children;
                cmp.ignore_attrs = network_actual_ignores(given, gn, on);
                break;
        case DEVICE_GRAPHICS:
                cmp.ignore_attrs = gr_attrs;
                break;
        default:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "A %s device cannot be changed while the domain runs; detach and attach it",
                                    device_def_kind_name(old));
        }
        /* What the XML gives besides the changeable parts must be as it is now; what it leaves out stays. */
        {
                _cleanup_(conf_node_freep) ConfNode *on_cmp = old->kind == DEVICE_INTERFACE ? without_network_actual(on, gn) : NULL;

                if (old->kind == DEVICE_INTERFACE && !on_cmp)
                        return -ENOMEM;
                r = node_is_subset(gn, on_cmp ?: on, &cmp);
        }
        if (r == 0) {
                r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Cannot change this of %s while the domain runs: %s",
                                 what, cmp.diff);
                free(cmp.diff);
                return r;
        }
        if (r < 0)
                return r;
        /* (An interface's actual type, ignored in the comparison, stays as it is.) */
        r = merge_changeable(on, gn, cmp.ignore_children, old->kind == DEVICE_INTERFACE ? NULL : cmp.ignore_attrs, ret);
        if (r == -EINVAL)
                return vb_error_set(reterr, VB_ERROR_INVALID_XML, "The changed %s is not valid", what);
        return r;
}

int device_def_complete_from(DeviceDef *dev, const DeviceDef *old) {
        uint8_t mac[6];

        if (!dev->alias && old->alias) {
                dev->alias = strdup(old->alias);
                if (!dev->alias)
                        return -ENOMEM;
        }
        if (dev->address.type == DEVICE_ADDRESS_NONE && old->address.type != DEVICE_ADDRESS_NONE) {
                dev->address = old->address;
                if (old->address.type == DEVICE_ADDRESS_USB && old->address.usb.port) {
                        dev->address.usb.port = strdup(old->address.usb.port);
                        if (!dev->address.usb.port)
                                return -ENOMEM;
                }
        }
        if (dev->kind == DEVICE_INTERFACE && !device_interface_get_mac(dev, mac) && device_interface_get_mac(old, mac))
                device_interface_set_mac(dev, mac);
        return 0;
}

/* New definitions --------------------------------------------------------------------------------- */

/* A copy through the node model, without the text and schema round trip of domain_def_copy(). The devices
 * are copied one by one so that they keep their order (formatting sorts them by kind) and indexes into
 * def stay valid in the copy. */
static int def_copy(const DomainDef *def, DomainDef **ret) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        DomainDef shell = *def;
        ConfNode *n = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        shell.n_devices = 0;
        r = domain_def_to_node(&shell, DOMAIN_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        r = domain_def_parse_node(n, 0, &copy, &e);
        vb_error_free(&e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < def->n_devices; i++) {
                DeviceDef *d = NULL;

                r = device_def_copy(def->devices[i], &d);
                if (r >= 0)
                        r = domain_def_add_device(copy, d);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(copy);
        return 0;
}

int domain_def_add_device(DomainDef *def, DeviceDef *dev) {
        if (!GREEDY_REALLOC(def->devices, def->n_devices_allocated, def->n_devices + 1)) {
                device_def_free(dev);
                return -ENOMEM;
        }
        def->devices[def->n_devices++] = dev;
        def->serial = domain_def_new_serial();
        return 0;
}

void domain_def_remove_device(DomainDef *def, size_t index) {
        if (index >= def->n_devices)
                return;
        device_def_free(def->devices[index]);
        memmove(def->devices + index, def->devices + index + 1, (def->n_devices - index - 1) * sizeof(DeviceDef *));
        def->n_devices--;
        def->serial = domain_def_new_serial();
}

void domain_def_fill_controller_indexes(DomainDef *def) {
        for (size_t i = 0; i < def->n_devices; i++) {
                const char *type, *t;
                uint32_t index, k, next;
                bool pci, used = true;

                if (!device_controller_get(def->devices[i], &type, NULL, &index) || index != UINT32_MAX)
                        continue;
                pci = streq_ptr(type, "pci");
                next = pci ? 1 : 0;
                for (size_t j = 0; pci && j < def->n_devices; j++)
                        if (device_controller_get(def->devices[j], &t, NULL, &k) && streq_ptr(t, type) &&
                            k != UINT32_MAX && k >= next)
                                next = k + 1;
                while (!pci && used) {
                        used = false;
                        for (size_t j = 0; j < def->n_devices && !used; j++)
                                used = device_controller_get(def->devices[j], &t, NULL, &k) && streq_ptr(t, type) &&
                                       k == next;
                        if (used)
                                next++;
                }
                device_controller_set_index(def->devices[i], next);
        }
}

int domain_def_with_device_added(const DomainDef *def, const DeviceDef *dev, DomainDef **ret) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        DeviceDef *d = NULL;
        int r;

        r = def_copy(def, &copy);
        if (r >= 0)
                r = device_def_copy(dev, &d);
        if (r >= 0)
                r = domain_def_add_device(copy, d);
        if (r < 0)
                return r;
        domain_def_fill_controller_indexes(copy); /* a controller added without one */
        *ret = TAKE_PTR(copy);
        return 0;
}

int domain_def_with_device_removed(const DomainDef *def, size_t index, DomainDef **ret) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        int r;

        if (index >= def->n_devices)
                return -ENOENT;
        r = def_copy(def, &copy);
        if (r < 0)
                return r;
        domain_def_remove_device(copy, index);
        *ret = TAKE_PTR(copy);
        return 0;
}

int domain_def_with_device_replaced(const DomainDef *def, size_t index, const DeviceDef *dev, DomainDef **ret) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        DeviceDef *d = NULL;
        int r;

        if (index >= def->n_devices)
                return -ENOENT;
        r = def_copy(def, &copy);
        if (r >= 0)
                r = device_def_copy(dev, &d);
        if (r < 0)
                return r;
        device_def_free(copy->devices[index]);
        copy->devices[index] = d;
        copy->serial = domain_def_new_serial();
        *ret = TAKE_PTR(copy);
        return 0;
}

const ConfNode *domain_def_get_metadata(const DomainDef *def, const char *ns_href, const char *name) {
        const ConfNode *md = node_child(def->extra, "metadata");

        for (size_t i = 0; md && i < md->n_children; i++)
                if (streq_ptr(md->children[i]->ns_href, ns_href) && streq(md->children[i]->name, name))
                        return md->children[i];
        return NULL;
}
