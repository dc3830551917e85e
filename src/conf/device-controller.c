/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <controller type='ide|fdc|scsi|sata|usb|ccid|virtio-serial|xenbus|pci|isa' index='N' model='...'> */

typedef enum ControllerType {
        CONTROLLER_TYPE_IDE,
        CONTROLLER_TYPE_FDC,
        CONTROLLER_TYPE_SCSI,
        CONTROLLER_TYPE_SATA,
        CONTROLLER_TYPE_VIRTIO_SERIAL,
        CONTROLLER_TYPE_CCID,
        CONTROLLER_TYPE_USB,
        CONTROLLER_TYPE_PCI,
        CONTROLLER_TYPE_XENBUS,
        CONTROLLER_TYPE_ISA,
        CONTROLLER_TYPE_NVME,
        _CONTROLLER_TYPE_MAX,
        _CONTROLLER_TYPE_INVALID = -EINVAL,
} ControllerType;

static const char * const controller_type_table[_CONTROLLER_TYPE_MAX] = {
        [CONTROLLER_TYPE_IDE] = "ide",
        [CONTROLLER_TYPE_FDC] = "fdc",
        [CONTROLLER_TYPE_SCSI] = "scsi",
        [CONTROLLER_TYPE_SATA] = "sata",
        [CONTROLLER_TYPE_VIRTIO_SERIAL] = "virtio-serial",
        [CONTROLLER_TYPE_CCID] = "ccid",
        [CONTROLLER_TYPE_USB] = "usb",
        [CONTROLLER_TYPE_PCI] = "pci",
        [CONTROLLER_TYPE_XENBUS] = "xenbus",
        [CONTROLLER_TYPE_ISA] = "isa",
        [CONTROLLER_TYPE_NVME] = "nvme",
};
DECLARE_STRING_TABLE_LOOKUP(controller_type, ControllerType);
DEFINE_STRING_TABLE_LOOKUP(controller_type, ControllerType);

typedef struct ControllerDef {
        ControllerType type;
        bool has_index;
        uint32_t index;
        char *model;
} ControllerDef;

static int controller_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        ControllerDef *d = dev->data;
        _cleanup_free_ char *index = NULL;
        uint64_t v;
        int r;

        r = CONF_TAKE_ENUM(n, "type", controller_type, true, &d->type, e);
        if (r < 0)
                return r;
        index = conf_node_take_attr(n, "index");
        if (index) {
                r = conf_parse_uint(n, "attribute 'index'", index, UINT32_MAX - 1, &v, e);
                if (r < 0)
                        return r;
                d->index = (uint32_t) v;
                d->has_index = true;
        }
        d->model = conf_node_take_attr(n, "model");
        return 0;
}

static int controller_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const ControllerDef *d = dev->data;

        if (conf_node_set_attr(n, "type", controller_type_to_string(d->type)) < 0 ||
            (d->has_index && conf_node_set_attrf(n, "index", "%u", d->index) < 0) ||
            conf_node_set_attr(n, "model", d->model) < 0)
                return -ENOMEM;
        return 0;
}

static void controller_free(void *data) {
        ControllerDef *d = data;

        free(d->model);
}

bool device_controller_get(const DeviceDef *dev, const char **ret_type, const char **ret_model, uint32_t *ret_index) {
        const ControllerDef *d;

        if (!dev || dev->kind != DEVICE_CONTROLLER || !dev->data)
                return false;
        d = dev->data;
        if (ret_type)
                *ret_type = controller_type_to_string(d->type);
        if (ret_model)
                *ret_model = d->model;
        if (ret_index)
                *ret_index = d->has_index ? d->index : UINT32_MAX;
        return true;
}

void device_controller_set_index(DeviceDef *dev, uint32_t index) {
        ControllerDef *d = dev->data;

        if (dev->kind != DEVICE_CONTROLLER || !d)
                return;
        d->index = index;
        d->has_index = true;
}

const DeviceOps device_controller_ops = {
        .data_size = sizeof(ControllerDef),
        .parse = controller_parse,
        .format = controller_format,
        .free = controller_free,
};
