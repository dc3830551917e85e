/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <memballoon model='virtio|xen|none|...'/> */

typedef struct MemballoonDef {
        char *model;
} MemballoonDef;

static int memballoon_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        MemballoonDef *d = dev->data;

        d->model = conf_node_take_attr(n, "model");
        if (!d->model)
                return conf_error(e, n, "attribute 'model' is missing");
        return 0;
}

static int memballoon_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const MemballoonDef *d = dev->data;

        return conf_node_set_attr(n, "model", d->model);
}

static int memballoon_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const MemballoonDef *d = dev->data;
        const ConfNode *stats = dev->extra ? conf_node_child(dev->extra, "stats") : NULL;
        uint64_t v;
        int r;

        /* libvirt reads the period with C's rule: '010' is eight, '09' is refused. */
        if (stats && conf_node_attr(stats, "period") &&
            (r = conf_parse_uint_base(stats, "attribute 'period'", conf_node_attr(stats, "period"), CONF_BASE_C, INT_MAX,
                                      &v, e)) < 0)
                return r;
        if (streq(d->model, "none") && dev->address.type != DEVICE_ADDRESS_NONE)
                return conf_error(e, where, "memballoon model 'none' cannot have an address");
        return 0;
}

static void memballoon_free(void *data) {
        MemballoonDef *d = data;

        free(d->model);
}

unsigned device_memballoon_get_stats_period(const DeviceDef *dev) {
        const char *period = dev->kind == DEVICE_MEMBALLOON && dev->extra
                                     ? conf_node_attr(conf_node_child(dev->extra, "stats"), "period")
                                     : NULL;
        unsigned long v;
        char *end;

        if (!period)
                return 0;
        v = strtoul(period, &end, 0); /* libvirt reads it with C's rule (0x hex, 0 octal) */
        return *end == 0 && v <= UINT_MAX ? (unsigned) v : 0;
}

const DeviceOps device_memballoon_ops = {
        .data_size = sizeof(MemballoonDef),
        .parse = memballoon_parse,
        .format = memballoon_format,
        .validate = memballoon_validate,
        .free = memballoon_free,
};
