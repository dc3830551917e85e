/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <disk type='file|block|dir|network|...' device='floppy|disk|cdrom|lun'> */

typedef enum DiskType {
        DISK_TYPE_UNSET,
        DISK_TYPE_FILE,
        DISK_TYPE_BLOCK,
        DISK_TYPE_DIR,
        DISK_TYPE_NETWORK,
        DISK_TYPE_VOLUME,
        DISK_TYPE_NVME,
        DISK_TYPE_VHOSTUSER,
        DISK_TYPE_VHOSTVDPA,
        _DISK_TYPE_MAX,
        _DISK_TYPE_INVALID = -EINVAL,
} DiskType;

typedef enum DiskDevice {
        DISK_DEVICE_UNSET,
        DISK_DEVICE_FLOPPY,
        DISK_DEVICE_DISK,
        DISK_DEVICE_CDROM,
        DISK_DEVICE_LUN,
        _DISK_DEVICE_MAX,
        _DISK_DEVICE_INVALID = -EINVAL,
} DiskDevice;

static const char * const disk_type_table[_DISK_TYPE_MAX] = {
        [DISK_TYPE_FILE] = "file",
        [DISK_TYPE_BLOCK] = "block",
        [DISK_TYPE_DIR] = "dir",
        [DISK_TYPE_NETWORK] = "network",
        [DISK_TYPE_VOLUME] = "volume",
        [DISK_TYPE_NVME] = "nvme",
        [DISK_TYPE_VHOSTUSER] = "vhostuser",
        [DISK_TYPE_VHOSTVDPA] = "vhostvdpa",
};
DECLARE_STRING_TABLE_LOOKUP(disk_type, DiskType);
DEFINE_STRING_TABLE_LOOKUP(disk_type, DiskType);

static const char * const disk_device_table[_DISK_DEVICE_MAX] = {
        [DISK_DEVICE_FLOPPY] = "floppy",
        [DISK_DEVICE_DISK] = "disk",
        [DISK_DEVICE_CDROM] = "cdrom",
        [DISK_DEVICE_LUN] = "lun",
};
DECLARE_STRING_TABLE_LOOKUP(disk_device, DiskDevice);
DEFINE_STRING_TABLE_LOOKUP(disk_device, DiskDevice);

/* Which <source> attribute holds the path or name, per disk type. */
static const char * const disk_source_attr[_DISK_TYPE_MAX] = {
        [DISK_TYPE_FILE] = "file",
        [DISK_TYPE_BLOCK] = "dev",
        [DISK_TYPE_DIR] = "dir",
        [DISK_TYPE_NETWORK] = "name",
};

static char *mfree_str(char *s) {
        free(s);
        return NULL;
}

typedef struct DiskDef {
        DiskType type;
        DiskDevice device;
        char *driver_name;
        char *driver_type;
        char *source;
        char *source_protocol; /* network disks */
        char *source_pool, *source_volume; /* volume disks */
        char *target_dev;
        char *target_bus;
        bool readonly;
        bool shareable;
} DiskDef;

static int disk_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        DiskDef *d = dev->data;
        ConfNode *c;
        int r;

        if ((r = CONF_TAKE_ENUM(n, "type", disk_type, false, &d->type, e)) < 0 ||
            (r = CONF_TAKE_ENUM(n, "device", disk_device, false, &d->device, e)) < 0)
                return r;
        if ((c = conf_node_use_child(n, "driver"))) {
                d->driver_name = conf_node_take_attr(c, "name");
                d->driver_type = conf_node_take_attr(c, "type");
        }
        if ((c = conf_node_use_child(n, "source"))) {
                if (disk_source_attr[d->type])
                        d->source = conf_node_take_attr(c, disk_source_attr[d->type]);
                if (d->type == DISK_TYPE_NETWORK)
                        d->source_protocol = conf_node_take_attr(c, "protocol");
                if (d->type == DISK_TYPE_VOLUME) {
                        d->source_pool = conf_node_take_attr(c, "pool");
                        d->source_volume = conf_node_take_attr(c, "volume");
                }
        }
        if ((c = conf_node_use_child(n, "target"))) {
                d->target_dev = conf_node_take_attr(c, "dev");
                d->target_bus = conf_node_take_attr(c, "bus");
        }
        d->readonly = conf_node_use_child(n, "readonly");
        d->shareable = conf_node_use_child(n, "shareable");
        return 0;
}

static int disk_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const DiskDef *d = dev->data;
        ConfNode *c;

        if (conf_node_set_attr(n, "type", disk_type_to_string(d->type)) < 0 ||
            conf_node_set_attr(n, "device", disk_device_to_string(d->device)) < 0)
                return -ENOMEM;
        if (d->driver_name || d->driver_type) {
                c = conf_node_add(n, "driver");
                if (!c || conf_node_set_attr(c, "name", d->driver_name) < 0 ||
                    conf_node_set_attr(c, "type", d->driver_type) < 0)
                        return -ENOMEM;
        }
        if (d->source || d->source_protocol || d->source_pool || d->source_volume) {
                c = conf_node_add(n, "source");
                if (!c || conf_node_set_attr(c, "protocol", d->source_protocol) < 0 ||
                    conf_node_set_attr(c, "pool", d->source_pool) < 0 ||
                    conf_node_set_attr(c, "volume", d->source_volume) < 0 ||
                    conf_node_set_attr(c, disk_source_attr[d->type] ?: "file", d->source) < 0)
                        return -ENOMEM;
        }
        if (d->target_dev || d->target_bus) {
                c = conf_node_add(n, "target");
                if (!c || conf_node_set_attr(c, "dev", d->target_dev) < 0 || conf_node_set_attr(c, "bus", d->target_bus) < 0)
                        return -ENOMEM;
        }
        if ((d->readonly && !conf_node_add(n, "readonly")) || (d->shareable && !conf_node_add(n, "shareable")))
                return -ENOMEM;
        return 0;
}

static int disk_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const DiskDef *d = dev->data;

        if (d->type == DISK_TYPE_NETWORK && !d->source_protocol)
                return conf_error(e, where, "a network disk needs <source protocol='...'/>");
        if (d->type == DISK_TYPE_VOLUME && (!d->source_pool || !d->source_volume))
                return conf_error(e, where, "a volume disk needs <source pool='...' volume='...'/>");
        if (dev->address.type != DEVICE_ADDRESS_NONE && dev->address.type != DEVICE_ADDRESS_DRIVE &&
            dev->address.type != DEVICE_ADDRESS_PCI && dev->address.type != DEVICE_ADDRESS_CCW &&
            dev->address.type != DEVICE_ADDRESS_USB && dev->address.type != DEVICE_ADDRESS_VIRTIO_MMIO &&
            dev->address.type != DEVICE_ADDRESS_SPAPR_VIO && dev->address.type != DEVICE_ADDRESS_VIRTIO_S390 &&
            dev->address.type != DEVICE_ADDRESS_UNASSIGNED)
                return conf_error(e, where, "address type '%s' is not valid for a disk",
                                  device_address_type_to_string(dev->address.type));
        return 0;
}

static void disk_free(void *data) {
        DiskDef *d = data;

        free(d->driver_name);
        free(d->driver_type);
        free(d->source);
        free(d->source_protocol);
        free(d->source_pool);
        free(d->source_volume);
        free(d->target_dev);
        free(d->target_bus);
}

const char *device_disk_get_target(const DeviceDef *dev) {
        return dev->kind == DEVICE_DISK && dev->data ? ((const DiskDef *) dev->data)->target_dev : NULL;
}

const char *device_disk_get_bus(const DeviceDef *dev) {
        return dev->kind == DEVICE_DISK && dev->data ? ((const DiskDef *) dev->data)->target_bus : NULL;
}

const char *device_disk_get_source(const DeviceDef *dev) {
        return dev->kind == DEVICE_DISK && dev->data ? ((const DiskDef *) dev->data)->source : NULL;
}

bool device_disk_is_readonly(const DeviceDef *dev) {
        const DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;

        return d && (d->readonly || d->device == DISK_DEVICE_CDROM || d->device == DISK_DEVICE_FLOPPY);
}

bool device_disk_get_volume(const DeviceDef *dev, const char **ret_pool, const char **ret_volume) {
        const DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;

        if (!d || d->type != DISK_TYPE_VOLUME || !d->source_pool || !d->source_volume)
                return false;
        *ret_pool = d->source_pool;
        *ret_volume = d->source_volume;
        return true;
}

int device_disk_set_volume_file(DeviceDef *dev, const char *path, const char *format) {
        DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;
        char *p, *f = NULL;

        if (!d || d->type != DISK_TYPE_VOLUME)
                return -EINVAL;
        p = strdup(path);
        if (!p || (!d->driver_type && format && !(f = strdup(format)))) {
                free(p);
                return -ENOMEM;
        }
        free(d->source);
        d->source = p;
        if (f)
                d->driver_type = f;
        d->source_pool = mfree_str(d->source_pool);
        d->source_volume = mfree_str(d->source_volume);
        d->type = DISK_TYPE_FILE;
        return 0;
}

bool device_disk_is_writable_image(const DeviceDef *dev) {
        const DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;

        return d && d->source && (d->type == DISK_TYPE_FILE || d->type == DISK_TYPE_BLOCK || d->type == DISK_TYPE_UNSET) &&
               (d->device == DISK_DEVICE_DISK || d->device == DISK_DEVICE_UNSET) && !d->readonly && !d->shareable;
}

/* Puts child at index at of n (it was appended last). */
static void move_child(ConfNode *n, size_t at) {
        ConfNode *c = n->children[n->n_children - 1];

        memmove(n->children + at + 1, n->children + at, (n->n_children - 1 - at) * sizeof *n->children);
        n->children[at] = c;
}

int device_disk_push_overlay(DeviceDef *dev, const char *path, const char *format) {
        DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;
        _cleanup_(conf_node_freep) ConfNode *layer = NULL;
        DiskType type;
        ConfNode *c;
        size_t at = SIZE_MAX;
        char *p, *f;
        int r;

        if (!d || !d->source || !dev->extra)
                return -EINVAL;
        type = d->type == DISK_TYPE_UNSET ? DISK_TYPE_FILE : d->type;
        if (type != DISK_TYPE_FILE && type != DISK_TYPE_BLOCK)
                return -EINVAL;
        /* The old source, its format and the chain below it become the first layer. */
        layer = conf_node_new("backingStore");
        if (!layer || conf_node_set_attr(layer, "type", disk_type_to_string(type)) < 0 ||
            !(c = conf_node_add(layer, "format")) || conf_node_set_attr(c, "type", d->driver_type ?: "raw") < 0 ||
            !(c = conf_node_add(layer, "source")) || conf_node_set_attr(c, disk_source_attr[type], d->source) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < dev->extra->n_children; i++)
                if (conf_node_is(dev->extra->children[i], "backingStore")) {
                        r = conf_node_append(layer, conf_node_detach_child(dev->extra, i));
                        if (r < 0)
                                return r;
                        at = i;
                        break;
                }
        if (at == SIZE_MAX)
                for (size_t i = 0; i < dev->extra->n_children; i++)
                        if (conf_node_is(dev->extra->children[i], "source"))
                                at = i + 1;
        p = strdup(path);
        f = strdup(format);
        if (!p || !f) {
                free(p);
                free(f);
                return -ENOMEM;
        }
        r = conf_node_append(dev->extra, TAKE_PTR(layer));
        if (r < 0) {
                free(p);
                free(f);
                return r;
        }
        if (at != SIZE_MAX)
                move_child(dev->extra, at);
        free(d->source);
        d->source = p;
        free(d->driver_type);
        d->driver_type = f;
        d->type = DISK_TYPE_FILE;
        return 0;
}

int device_disk_pop_overlay(DeviceDef *dev) {
        DiskDef *d = dev->kind == DEVICE_DISK ? dev->data : NULL;
        _cleanup_(conf_node_freep) ConfNode *layer = NULL, *below = NULL;
        const ConfNode *src, *fmt;
        const char *path;
        char *p, *f = NULL;
        size_t at = SIZE_MAX;
        DiskType type;
        int r;

        if (!d || !dev->extra)
                return -EINVAL;
        for (size_t i = 0; i < dev->extra->n_children && at == SIZE_MAX; i++)
                if (conf_node_is(dev->extra->children[i], "backingStore"))
                        at = i;
        if (at == SIZE_MAX)
                return -ENOENT;
        layer = conf_node_copy(dev->extra->children[at]);
        if (!layer)
                return -ENOMEM;
        type = conf_node_attr(layer, "type") ? disk_type_from_string(conf_node_attr(layer, "type")) : DISK_TYPE_FILE;
        if (type != DISK_TYPE_FILE && type != DISK_TYPE_BLOCK)
                return -EINVAL;
        src = conf_node_child(layer, "source");
        path = src ? conf_node_attr(src, disk_source_attr[type]) : NULL;
        if (!path)
                return -EINVAL;
        fmt = conf_node_child(layer, "format");
        if (!(p = strdup(path)) || (fmt && conf_node_attr(fmt, "type") && !(f = strdup(conf_node_attr(fmt, "type"))))) {
                free(p);
                return -ENOMEM;
        }
        /* The chain below the layer moves up one step, where the layer was. */
        for (size_t i = 0; i < layer->n_children; i++)
                if (conf_node_is(layer->children[i], "backingStore")) {
                        below = conf_node_detach_child(layer, i);
                        break;
                }
        conf_node_free(conf_node_detach_child(dev->extra, at));
        if (below) {
                r = conf_node_append(dev->extra, TAKE_PTR(below));
                if (r < 0) {
                        free(p);
                        free(f);
                        return r;
                }
                move_child(dev->extra, at);
        }
        free(d->source);
        d->source = p;
        free(d->driver_type);
        d->driver_type = f;
        d->type = type;
        return 0;
}

const char *device_disk_get_format(const DeviceDef *dev) {
        return dev->kind == DEVICE_DISK && dev->data ? ((const DiskDef *) dev->data)->driver_type : NULL;
}

const DeviceOps device_disk_ops = {
        .data_size = sizeof(DiskDef),
        .parse = disk_parse,
        .format = disk_format,
        .validate = disk_validate,
        .free = disk_free,
};
