/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <serial>, <parallel>, <console>, <channel> with every source type: pty, file, stdio, vc, null, dev,
 * pipe, tcp (connect/bind, telnet...), udp (bind + connect sources), unix, spicevmc, ... */

typedef enum ChardevType {
        CHARDEV_TYPE_UNSET,
        CHARDEV_TYPE_NULL,
        CHARDEV_TYPE_VC,
        CHARDEV_TYPE_PTY,
        CHARDEV_TYPE_DEV,
        CHARDEV_TYPE_FILE,
        CHARDEV_TYPE_PIPE,
        CHARDEV_TYPE_STDIO,
        CHARDEV_TYPE_UDP,
        CHARDEV_TYPE_TCP,
        CHARDEV_TYPE_UNIX,
        CHARDEV_TYPE_SPICEVMC,
        CHARDEV_TYPE_SPICEPORT,
        CHARDEV_TYPE_NMDM,
        CHARDEV_TYPE_QEMU_VDAGENT,
        CHARDEV_TYPE_DBUS,
        _CHARDEV_TYPE_MAX,
        _CHARDEV_TYPE_INVALID = -EINVAL,
} ChardevType;

static const char * const chardev_type_table[_CHARDEV_TYPE_MAX] = {
        [CHARDEV_TYPE_NULL] = "null",
        [CHARDEV_TYPE_VC] = "vc",
        [CHARDEV_TYPE_PTY] = "pty",
        [CHARDEV_TYPE_DEV] = "dev",
        [CHARDEV_TYPE_FILE] = "file",
        [CHARDEV_TYPE_PIPE] = "pipe",
        [CHARDEV_TYPE_STDIO] = "stdio",
        [CHARDEV_TYPE_UDP] = "udp",
        [CHARDEV_TYPE_TCP] = "tcp",
        [CHARDEV_TYPE_UNIX] = "unix",
        [CHARDEV_TYPE_SPICEVMC] = "spicevmc",
        [CHARDEV_TYPE_SPICEPORT] = "spiceport",
        [CHARDEV_TYPE_NMDM] = "nmdm",
        [CHARDEV_TYPE_QEMU_VDAGENT] = "qemu-vdagent",
        [CHARDEV_TYPE_DBUS] = "dbus",
};
DECLARE_STRING_TABLE_LOOKUP(chardev_type, ChardevType);
DEFINE_STRING_TABLE_LOOKUP(chardev_type, ChardevType);

typedef struct ChardevSource {
        char *mode; /* bind, connect */
        char *host;
        char *service;
        char *path;
} ChardevSource;

typedef struct ChardevDef {
        ChardevType type;
        ChardevSource sources[2]; /* udp has a bind and a connect source */
        size_t n_sources;
        char *protocol; /* raw, telnet, telnets, tls */
        char *target_type;
        char *target_name;
        bool has_target_port;
        uint32_t target_port;
        bool has_target;
} ChardevDef;

static int chardev_parse_target(ChardevDef *d, ConfNode *t, VbError *e) {
        int r;

        d->has_target = true;
        d->target_type = conf_node_take_attr(t, "type");
        d->target_name = conf_node_take_attr(t, "name");
        r = conf_take_uint32(t, "port", UINT32_MAX - 1, &d->target_port, e);
        if (r < 0)
                return r;
        d->has_target_port = r > 0;
        return 0;
}

static int chardev_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        ChardevDef *d = dev->data;
        ConfNode *c;
        int r;

        r = CONF_TAKE_ENUM(n, "type", chardev_type, false, &d->type, e);
        if (r < 0)
                return r;
        while (d->n_sources < ELEMENTSOF(d->sources) && (c = conf_node_use_child(n, "source"))) {
                ChardevSource *s = &d->sources[d->n_sources++];

                s->mode = conf_node_take_attr(c, "mode");
                s->host = conf_node_take_attr(c, "host");
                s->service = conf_node_take_attr(c, "service");
                s->path = conf_node_take_attr(c, "path");
        }
        if ((c = conf_node_use_child(n, "protocol")))
                d->protocol = conf_node_take_attr(c, "type");
        if ((c = conf_node_use_child(n, "target")) && (r = chardev_parse_target(d, c, e)) < 0)
                return r;
        return 0;
}

static int chardev_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const ChardevDef *d = dev->data;
        ConfNode *c;

        if (conf_node_set_attr(n, "type", chardev_type_to_string(d->type)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_sources; i++) {
                const ChardevSource *s = &d->sources[i];

                c = conf_node_add(n, "source");
                if (!c || conf_node_set_attr(c, "mode", s->mode) < 0 || conf_node_set_attr(c, "host", s->host) < 0 ||
                    conf_node_set_attr(c, "service", s->service) < 0 || conf_node_set_attr(c, "path", s->path) < 0)
                        return -ENOMEM;
        }
        if (d->protocol && (!(c = conf_node_add(n, "protocol")) || conf_node_set_attr(c, "type", d->protocol) < 0))
                return -ENOMEM;
        if (d->has_target) {
                c = conf_node_add(n, "target");
                if (!c || conf_node_set_attr(c, "type", d->target_type) < 0 ||
                    (d->has_target_port && conf_node_set_attrf(c, "port", "%u", d->target_port) < 0) ||
                    conf_node_set_attr(c, "name", d->target_name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int chardev_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const ChardevDef *d = dev->data;

        if (d->type == CHARDEV_TYPE_UDP && d->n_sources == 0)
                return conf_error(e, where, "type 'udp' needs a <source mode='connect' .../>");
        if ((d->type == CHARDEV_TYPE_FILE || d->type == CHARDEV_TYPE_DEV || d->type == CHARDEV_TYPE_PIPE) &&
            (d->n_sources == 0 || !d->sources[0].path))
                return conf_error(e, where, "type '%s' needs <source path='...'/>", chardev_type_to_string(d->type));
        return 0;
}

static void chardev_free(void *data) {
        ChardevDef *d = data;

        for (size_t i = 0; i < d->n_sources; i++) {
                free(d->sources[i].mode);
                free(d->sources[i].host);
                free(d->sources[i].service);
                free(d->sources[i].path);
        }
        free(d->protocol);
        free(d->target_type);
        free(d->target_name);
}

bool device_channel_is_guest_agent(const DeviceDef *dev) {
        const ChardevDef *d = dev->kind == DEVICE_CHANNEL ? dev->data : NULL;

        return d && d->type == CHARDEV_TYPE_UNIX && streq_ptr(d->target_type, "virtio") &&
               streq_ptr(d->target_name, DEVICE_GUEST_AGENT_CHANNEL);
}

const DeviceOps device_chardev_ops = {
        .data_size = sizeof(ChardevDef),
        .parse = chardev_parse,
        .format = chardev_format,
        .validate = chardev_validate,
        .free = chardev_free,
};
