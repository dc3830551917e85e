/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

static const char * const device_kind_table[_DEVICE_KIND_MAX] = {
        [DEVICE_DISK] = "disk",
        [DEVICE_CONTROLLER] = "controller",
        [DEVICE_LEASE] = "lease",
        [DEVICE_FILESYSTEM] = "filesystem",
        [DEVICE_INTERFACE] = "interface",
        [DEVICE_SMARTCARD] = "smartcard",
        [DEVICE_SERIAL] = "serial",
        [DEVICE_PARALLEL] = "parallel",
        [DEVICE_CONSOLE] = "console",
        [DEVICE_CHANNEL] = "channel",
        [DEVICE_INPUT] = "input",
        [DEVICE_TPM] = "tpm",
        [DEVICE_GRAPHICS] = "graphics",
        [DEVICE_SOUND] = "sound",
        [DEVICE_AUDIO] = "audio",
        [DEVICE_VIDEO] = "video",
        [DEVICE_HOSTDEV] = "hostdev",
        [DEVICE_REDIRDEV] = "redirdev",
        [DEVICE_REDIRFILTER] = "redirfilter",
        [DEVICE_HUB] = "hub",
        [DEVICE_WATCHDOG] = "watchdog",
        [DEVICE_MEMBALLOON] = "memballoon",
        [DEVICE_RNG] = "rng",
        [DEVICE_NVRAM] = "nvram",
        [DEVICE_PANIC] = "panic",
        [DEVICE_SHMEM] = "shmem",
        [DEVICE_MEMORY] = "memory",
        [DEVICE_IOMMU] = "iommu",
        [DEVICE_VSOCK] = "vsock",
        [DEVICE_CRYPTO] = "crypto",
        [DEVICE_PSTORE] = "pstore",
};
DEFINE_STRING_TABLE_LOOKUP(device_kind, DeviceKind);

/* Kinds without an entry are generic: alias, address and boot order typed, the rest kept as extra. */
static const DeviceOps * const device_ops_table[_DEVICE_KIND_MAX] = {
        [DEVICE_DISK] = &device_disk_ops,
        [DEVICE_CONTROLLER] = &device_controller_ops,
        [DEVICE_INTERFACE] = &device_interface_ops,
        [DEVICE_SERIAL] = &device_chardev_ops,
        [DEVICE_PARALLEL] = &device_chardev_ops,
        [DEVICE_CONSOLE] = &device_chardev_ops,
        [DEVICE_CHANNEL] = &device_chardev_ops,
        [DEVICE_INPUT] = &device_input_ops,
        [DEVICE_GRAPHICS] = &device_graphics_ops,
        [DEVICE_VIDEO] = &device_video_ops,
        [DEVICE_HOSTDEV] = &device_hostdev_ops,
        [DEVICE_MEMBALLOON] = &device_memballoon_ops,
};

const char *device_def_kind_name(const DeviceDef *def) {
        return device_kind_to_string(def->kind);
}

DeviceDef *device_def_free(DeviceDef *def) {
        const DeviceOps *ops;

        if (!def)
                return NULL;
        ops = device_ops_table[def->kind];
        if (ops && def->data)
                ops->free(def->data);
        free(def->data);
        free(def->alias);
        device_address_done(&def->address);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

static int device_parse_common(DeviceDef *dev, ConfNode *node, VbError *reterr) {
        ConfNode *c;
        int r;

        c = conf_node_use_child(node, "alias");
        if (c)
                dev->alias = conf_node_take_attr(c, "name");
        c = conf_node_use_child(node, "address");
        if (c) {
                r = device_address_parse(c, &dev->address, reterr);
                if (r < 0)
                        return r;
        }
        c = conf_node_use_child(node, "boot");
        if (c) {
                r = conf_take_uint32(c, "order", UINT32_MAX, &dev->boot_order, reterr);
                if (r < 0)
                        return r;
                if (dev->boot_order == 0)
                        return conf_error(reterr, c, "attribute 'order' must be at least 1");
        }
        return 0;
}

int device_def_parse_node(ConfNode *node, DeviceDef **ret, VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        _cleanup_(conf_node_freep) ConfNode *owned = node;
        const DeviceOps *ops;
        DeviceKind kind;
        int r;

        kind = node->ns_href ? _DEVICE_KIND_INVALID : device_kind_from_string(node->name);
        if (kind < 0)
                return conf_error(reterr, node, "unknown device kind");
        dev = new0(DeviceDef, 1);
        if (!dev)
                return -ENOMEM;
        dev->kind = kind;
        dev->line = node->line;
        r = device_parse_common(dev, node, reterr);
        if (r < 0)
                return r;
        ops = device_ops_table[kind];
        if (ops) {
                dev->data = calloc(1, ops->data_size);
                if (!dev->data)
                        return -ENOMEM;
                r = ops->parse(dev, node, reterr);
                if (r < 0)
                        return r;
        }
        dev->extra = TAKE_PTR(owned);
        r = device_def_validate(dev, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(dev);
        return 0;
}

int device_def_validate(const DeviceDef *def, VbError *reterr) {
        const DeviceOps *ops = device_ops_table[def->kind];
        int r;

        r = device_address_validate(&def->address, def->extra, reterr);
        if (r < 0)
                return r;
        r = conf_check_device_seclabels(def->extra, reterr);
        if (r >= 0 && def->kind == DEVICE_INTERFACE)
                r = conf_check_bandwidth(conf_node_child(def->extra, "bandwidth"), reterr);
        if (r < 0)
                return r;
        if (def->kind == DEVICE_SMARTCARD || def->kind == DEVICE_REDIRDEV)
                r = device_chardev_source_validate(def->extra, reterr);
        else if (def->kind == DEVICE_RNG && streq_ptr(conf_node_attr(conf_node_child(def->extra, "backend"), "model"), "egd"))
                r = device_chardev_source_validate(conf_node_child(def->extra, "backend"), reterr);
        if (r < 0)
                return r;
        if (ops && ops->validate)
                return ops->validate(def, def->extra, reterr);
        return 0;
}

int device_def_to_node(const DeviceDef *def, unsigned flags, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL, *residue = NULL;
        const DeviceOps *ops = device_ops_table[def->kind];
        ConfNode *c;
        int r;

        n = conf_node_new(device_kind_to_string(def->kind));
        if (!n)
                return -ENOMEM;
        if (ops) {
                r = ops->format(def, n, flags);
                if (r < 0)
                        return r;
        }
        if (def->alias) {
                c = conf_node_add(n, "alias");
                if (!c || conf_node_set_attr(c, "name", def->alias) < 0)
                        return -ENOMEM;
        }
        r = device_address_format(&def->address, n, "address");
        if (r < 0)
                return r;
        if (def->boot_order > 0) {
                c = conf_node_add(n, "boot");
                if (!c || conf_node_set_attrf(c, "order", "%u", def->boot_order) < 0)
                        return -ENOMEM;
        }
        if (def->extra) {
                residue = conf_node_copy(def->extra);
                if (!residue)
                        return -ENOMEM;
        }
        r = conf_node_merge(n, residue);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

int device_def_parse_string(const char *xml, unsigned flags, DeviceDef **ret, VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        _cleanup_free_ char *seed = NULL;
        ConfNode *root;
        int r;

        r = conf_node_parse_string(xml, "device.rng", &root, reterr);
        if (r < 0)
                return r;
        r = device_def_parse_node(root, &dev, reterr);
        if (r < 0)
                return r;
        if (dev->kind == DEVICE_INTERFACE && !(flags & DEVICE_PARSE_NO_DEFAULTS)) {
                /* Same rule as in domains: a missing MAC is made up, from the content when asked. */
                if (flags & DEVICE_PARSE_STABLE_DEFAULTS) {
                        r = device_def_format(dev, DEVICE_FORMAT_SECURE, &seed);
                        if (r < 0)
                                return r;
                }
                device_interface_ensure_mac(dev, seed, 1);
        }
        *ret = TAKE_PTR(dev);
        return 0;
}

int device_def_format(const DeviceDef *def, unsigned flags, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = device_def_to_node(def, flags, &n);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}
