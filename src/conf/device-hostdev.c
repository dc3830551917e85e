/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <hostdev mode='subsystem' type='usb|pci|scsi|scsi_host|mdev'> (and mode='capabilities'). USB devices
 * by vendor/product or by bus/device; ids in decimal, hex (0x...) or octal (0...). */

typedef enum HostdevMode {
        HOSTDEV_MODE_SUBSYSTEM,
        HOSTDEV_MODE_CAPABILITIES,
        _HOSTDEV_MODE_MAX,
        _HOSTDEV_MODE_INVALID = -EINVAL,
} HostdevMode;

typedef enum HostdevType {
        HOSTDEV_TYPE_USB,
        HOSTDEV_TYPE_PCI,
        HOSTDEV_TYPE_SCSI,
        HOSTDEV_TYPE_SCSI_HOST,
        HOSTDEV_TYPE_MDEV,
        HOSTDEV_TYPE_STORAGE,
        HOSTDEV_TYPE_MISC,
        HOSTDEV_TYPE_NET,
        _HOSTDEV_TYPE_MAX,
        _HOSTDEV_TYPE_INVALID = -EINVAL,
} HostdevType;

static const char * const hostdev_mode_table[_HOSTDEV_MODE_MAX] = {
        [HOSTDEV_MODE_SUBSYSTEM] = "subsystem",
        [HOSTDEV_MODE_CAPABILITIES] = "capabilities",
};
DECLARE_STRING_TABLE_LOOKUP(hostdev_mode, HostdevMode);
DEFINE_STRING_TABLE_LOOKUP(hostdev_mode, HostdevMode);

static const char * const hostdev_type_table[_HOSTDEV_TYPE_MAX] = {
        [HOSTDEV_TYPE_USB] = "usb",
        [HOSTDEV_TYPE_PCI] = "pci",
        [HOSTDEV_TYPE_SCSI] = "scsi",
        [HOSTDEV_TYPE_SCSI_HOST] = "scsi_host",
        [HOSTDEV_TYPE_MDEV] = "mdev",
        [HOSTDEV_TYPE_STORAGE] = "storage",
        [HOSTDEV_TYPE_MISC] = "misc",
        [HOSTDEV_TYPE_NET] = "net",
};
DECLARE_STRING_TABLE_LOOKUP(hostdev_type, HostdevType);
DEFINE_STRING_TABLE_LOOKUP(hostdev_type, HostdevType);

#define UNSET UINT32_MAX

typedef struct HostdevDef {
        HostdevMode mode;
        HostdevType type;
        int managed; /* -1 unset */
        bool has_mode;
        /* usb */
        uint32_t vendor, product, bus, device;
        /* pci (source address), scsi (adapter + bus/target/unit) */
        uint32_t pci_domain, pci_bus, pci_slot, pci_function;
        char *scsi_adapter;
        uint32_t scsi_bus, scsi_target, scsi_unit;
        /* mdev */
        char *mdev_uuid;
} HostdevDef;

static int take_id(ConfNode *parent, const char *name, uint32_t *ret, VbError *e) {
        ConfNode *c = conf_node_use_child(parent, name);

        if (!c)
                return 0;
        return conf_take_uint32_base(c, "id", CONF_BASE_C, 0xffff, ret, e);
}

/* libvirt reads a host device's ids and addresses with C's rule (0x hex, 0 octal). */
static int hostdev_parse_source_address(HostdevDef *d, ConfNode *a, VbError *e) {
        int r = 0;

        switch (d->type) {
        case HOSTDEV_TYPE_USB:
                if ((r = conf_take_uint32_base(a, "bus", CONF_BASE_C, UNSET - 1, &d->bus, e)) < 0)
                        return r;
                return conf_take_uint32_base(a, "device", CONF_BASE_C, UNSET - 1, &d->device, e);
        case HOSTDEV_TYPE_PCI:
                if ((r = conf_take_uint32_base(a, "domain", CONF_BASE_C, 0xffff, &d->pci_domain, e)) < 0 ||
                    (r = conf_take_uint32_base(a, "bus", CONF_BASE_C, 0xff, &d->pci_bus, e)) < 0 ||
                    (r = conf_take_uint32_base(a, "slot", CONF_BASE_C, 0x1f, &d->pci_slot, e)) < 0)
                        return r;
                return conf_take_uint32_base(a, "function", CONF_BASE_C, 7, &d->pci_function, e);
        case HOSTDEV_TYPE_SCSI:
                if ((r = conf_take_uint32_base(a, "bus", CONF_BASE_C, UNSET - 1, &d->scsi_bus, e)) < 0 ||
                    (r = conf_take_uint32_base(a, "target", CONF_BASE_C, UNSET - 1, &d->scsi_target, e)) < 0)
                        return r;
                return conf_take_uint32_base(a, "unit", CONF_BASE_C, UNSET - 1, &d->scsi_unit, e);
        case HOSTDEV_TYPE_MDEV:
                d->mdev_uuid = conf_node_take_attr(a, "uuid");
                return 0;
        default:
                return 0;
        }
}

static int hostdev_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        HostdevDef *d = dev->data;
        ConfNode *src, *c;
        int r;

        d->managed = -1;
        d->vendor = d->product = d->bus = d->device = UNSET;
        d->pci_domain = d->pci_bus = d->pci_slot = d->pci_function = UNSET;
        d->scsi_bus = d->scsi_target = d->scsi_unit = UNSET;
        r = CONF_TAKE_ENUM(n, "mode", hostdev_mode, false, &d->mode, e);
        if (r < 0)
                return r;
        d->has_mode = r > 0;
        if ((r = CONF_TAKE_ENUM(n, "type", hostdev_type, true, &d->type, e)) < 0 ||
            (r = conf_take_yesno(n, "managed", &d->managed, e)) < 0)
                return r;
        src = conf_node_use_child(n, "source");
        if (!src || d->mode != HOSTDEV_MODE_SUBSYSTEM)
                return 0;
        if ((r = take_id(src, "vendor", &d->vendor, e)) < 0 || (r = take_id(src, "product", &d->product, e)) < 0)
                return r;
        if ((c = conf_node_use_child(src, "adapter")))
                d->scsi_adapter = conf_node_take_attr(c, "name");
        c = conf_node_child(src, "address");
        if (c && !conf_node_attr(c, "type")) {
                c->used = true;
                return hostdev_parse_source_address(d, c, e);
        }
        return 0;
}

static int hostdev_format_source(const HostdevDef *d, ConfNode *src) {
        ConfNode *c;

        if (d->vendor != UNSET && (!(c = conf_node_add(src, "vendor")) || conf_set_uint32(c, "id", "0x%04x", d->vendor) < 0))
                return -ENOMEM;
        if (d->product != UNSET && (!(c = conf_node_add(src, "product")) || conf_set_uint32(c, "id", "0x%04x", d->product) < 0))
                return -ENOMEM;
        if (d->scsi_adapter && (!(c = conf_node_add(src, "adapter")) || conf_node_set_attr(c, "name", d->scsi_adapter) < 0))
                return -ENOMEM;
        if (d->bus == UNSET && d->device == UNSET && d->pci_domain == UNSET && d->pci_bus == UNSET &&
            d->pci_slot == UNSET && d->pci_function == UNSET && d->scsi_bus == UNSET && d->scsi_target == UNSET &&
            d->scsi_unit == UNSET && !d->mdev_uuid)
                return 0;
        c = conf_node_add(src, "address");
        if (!c)
                return -ENOMEM;
        if (conf_set_uint32(c, "domain", "0x%04x", d->pci_domain) < 0 || conf_set_uint32(c, "bus", "0x%02x", d->pci_bus) < 0 ||
            conf_set_uint32(c, "slot", "0x%02x", d->pci_slot) < 0 || conf_set_uint32(c, "function", "0x%x", d->pci_function) < 0 ||
            conf_set_uint32(c, "bus", "%u", d->bus) < 0 || conf_set_uint32(c, "device", "%u", d->device) < 0 ||
            conf_set_uint32(c, "bus", "%u", d->scsi_bus) < 0 || conf_set_uint32(c, "target", "%u", d->scsi_target) < 0 ||
            conf_set_uint32(c, "unit", "%u", d->scsi_unit) < 0 || conf_node_set_attr(c, "uuid", d->mdev_uuid) < 0)
                return -ENOMEM;
        return 0;
}

static int hostdev_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const HostdevDef *d = dev->data;
        ConfNode *src;

        if ((d->has_mode && conf_node_set_attr(n, "mode", hostdev_mode_to_string(d->mode)) < 0) ||
            conf_node_set_attr(n, "type", hostdev_type_to_string(d->type)) < 0 ||
            (d->managed >= 0 && conf_node_set_attr(n, "managed", d->managed ? "yes" : "no") < 0))
                return -ENOMEM;
        if (d->mode != HOSTDEV_MODE_SUBSYSTEM)
                return 0;
        src = conf_node_add(n, "source");
        if (!src)
                return -ENOMEM;
        return hostdev_format_source(d, src);
}

/* A SCSI host adapter is a scsi_host, named or found by its parent's PCI address, or a vHBA (fc_host)
 * given by its world wide names; the attributes of one kind do not go with the other. */
/* The child called name, whether typed code has looked at it or not. */
static const ConfNode *any_child(const ConfNode *n, const char *name) {
        for (size_t i = 0; n && i < n->n_children; i++)
                if (conf_node_is(n->children[i], name))
                        return n->children[i];
        return NULL;
}

static int hostdev_validate_adapter(const HostdevDef *d, const ConfNode *a, VbError *e) {
        static const char * const fc_only[] = { "parent", "managed", "parent_wwnn", "parent_wwpn", "parent_fabric_wwn",
                                                 "wwnn", "wwpn" };
        bool fc = streq_ptr(conf_node_attr(a, "type"), "fc_host");
        bool parentaddr = any_child(a, "parentaddr");

        if (fc) {
                if (d->scsi_adapter || parentaddr)
                        return conf_error(e, a, "type 'fc_host' is found by its world wide names (expected wwnn= and "
                                          "wwpn=, not %s)", d->scsi_adapter ? "name=" : "<parentaddr>");
                if (!conf_node_attr(a, "wwnn") || !conf_node_attr(a, "wwpn"))
                        return conf_error(e, a, "type 'fc_host' needs both wwnn= and wwpn=");
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(fc_only); i++)
                if (conf_node_attr(a, fc_only[i]))
                        return conf_error(e, a, "attribute '%s' is for type 'fc_host' only (expected name= or "
                                          "<parentaddr> for a scsi_host)", fc_only[i]);
        if (!d->scsi_adapter == !parentaddr)
                return conf_error(e, a, "a scsi_host adapter needs %s", d->scsi_adapter ? "name= or <parentaddr>, not both" :
                                  "name= or <parentaddr> (expected one)");
        return 0;
}

static int hostdev_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const HostdevDef *d = dev->data;
        const ConfNode *adapter = any_child(any_child(where, "source"), "adapter");
        int r;

        if (d->mode != HOSTDEV_MODE_SUBSYSTEM)
                return 0;
        if (d->type != HOSTDEV_TYPE_SCSI && conf_node_attr(where, "rawio"))
                return conf_error(e, where, "attribute 'rawio' is only valid for type 'scsi'");
        if (d->type != HOSTDEV_TYPE_SCSI && conf_node_attr(where, "sgio"))
                return conf_error(e, where, "attribute 'sgio' is only valid for type 'scsi'");
        if (d->type == HOSTDEV_TYPE_USB && d->vendor == UNSET && d->bus == UNSET)
                return conf_error(e, where, "a USB host device needs <vendor>/<product> or <address bus= device=>");
        if (d->type == HOSTDEV_TYPE_USB && (d->vendor == UNSET) != (d->product == UNSET))
                return conf_error(e, where, "a USB host device needs both <vendor> and <product>");
        if (d->type == HOSTDEV_TYPE_MDEV && !d->mdev_uuid)
                return conf_error(e, where, "a mediated device needs <source><address uuid='...'/></source>");
        if (adapter && (r = hostdev_validate_adapter(d, adapter, e)) < 0)
                return r;
        return 0;
}

static void hostdev_free(void *data) {
        HostdevDef *d = data;

        free(d->scsi_adapter);
        free(d->mdev_uuid);
}

const DeviceOps device_hostdev_ops = {
        .data_size = sizeof(HostdevDef),
        .parse = hostdev_parse,
        .format = hostdev_format,
        .validate = hostdev_validate,
        .free = hostdev_free,
};
