/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <video><model type='...' vram='...' heads='...'/></video> */

typedef struct VideoDef {
        char *model;
        uint32_t vram, heads; /* UINT32_MAX: not given */
        bool has_model;
} VideoDef;

static int video_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        VideoDef *d = dev->data;
        ConfNode *m;
        int r;

        d->vram = d->heads = UINT32_MAX;
        m = conf_node_use_child(n, "model");
        if (!m)
                return 0;
        d->has_model = true;
        d->model = conf_node_take_attr(m, "type");
        if ((r = conf_take_uint32(m, "vram", UINT32_MAX - 1, &d->vram, e)) < 0 ||
            (r = conf_take_uint32(m, "heads", UINT32_MAX - 1, &d->heads, e)) < 0)
                return r;
        return 0;
}

static int video_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const VideoDef *d = dev->data;
        ConfNode *m;

        if (!d->has_model)
                return 0;
        m = conf_node_add(n, "model");
        if (!m || conf_node_set_attr(m, "type", d->model) < 0 ||
            (d->vram != UINT32_MAX && conf_node_set_attrf(m, "vram", "%u", d->vram) < 0) ||
            (d->heads != UINT32_MAX && conf_node_set_attrf(m, "heads", "%u", d->heads) < 0))
                return -ENOMEM;
        return 0;
}

static int video_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const VideoDef *d = dev->data;

        if (d->heads == 0)
                return conf_error(e, where, "attribute 'heads' must be at least 1");
        return 0;
}

static void video_free(void *data) {
        VideoDef *d = data;

        free(d->model);
}

const DeviceOps device_video_ops = {
        .data_size = sizeof(VideoDef),
        .parse = video_parse,
        .format = video_format,
        .validate = video_validate,
        .free = video_free,
};
