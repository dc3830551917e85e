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

/* One <source> of a character device, whether the typed parser took its attributes or not. */
typedef struct ChardevSourceView {
        const ConfNode *node;
        const char *mode, *host, *service, *path;
} ChardevSourceView;

#define CHARDEV_SOURCES_MAX 8

static bool source_connects(const ChardevSourceView *v) {
        return !v->mode || streq(v->mode, "connect");
}

static int check_reconnect(const ChardevSourceView *v, VbError *e) {
        const ConfNode *rc = conf_node_child(v->node, "reconnect");

        if (!rc || !streq_ptr(conf_node_attr(rc, "enabled"), "yes"))
                return 0;
        if (!source_connects(v))
                return conf_error(e, rc, "a source in mode '%s' cannot reconnect (expected mode='connect', or no "
                                  "<reconnect>)", v->mode);
        if (!conf_node_attr(rc, "timeout") || streq(conf_node_attr(rc, "timeout"), "0"))
                return conf_error(e, rc, "enabled='yes' needs timeout= (the seconds between attempts, at least 1)");
        return 0;
}

static int check_udp_sources(const ConfNode *holder, const ChardevSourceView *v, size_t n, VbError *e) {
        const ChardevSourceView *connect = NULL, *bind = NULL;

        for (size_t i = 0; i < n; i++) {
                const ChardevSourceView **slot = source_connects(&v[i]) ? &connect : &bind;

                if (*slot)
                        return conf_error(e, v[i].node, "a second source in mode '%s' (expected at most one source "
                                          "to connect to and one to bind to)", source_connects(&v[i]) ? "connect" : "bind");
                *slot = &v[i];
        }
        if (!connect || !connect->service)
                return conf_error(e, connect ? connect->node : holder,
                                  "type 'udp' needs a <source mode='connect' service='...'/> (the port to send to)");
        return 0;
}

/* The rules every character device source follows: of <serial>, <parallel>, <console>, <channel>, and of
 * <smartcard mode='passthrough'>, <redirdev> and an <rng>'s <backend>. A unix socket's path may be left
 * out only in a <channel>, which is given one. */
static int check_sources(const ConfNode *holder, ChardevType type, const ChardevSourceView *v, size_t n, VbError *e) {
        bool is_channel = conf_node_is(holder, "channel");
        int r;

        for (size_t i = 0; i < n; i++)
                if ((r = check_reconnect(&v[i], e)) < 0)
                        return r;
        if (type == CHARDEV_TYPE_UDP)
                return check_udp_sources(holder, v, n, e);
        if (n > 1)
                return conf_error(e, v[1].node, "a second <source> for a device of type '%s' (expected one)",
                                  chardev_type_to_string(type));
        switch (type) {
        case CHARDEV_TYPE_FILE:
        case CHARDEV_TYPE_DEV:
        case CHARDEV_TYPE_PIPE:
                if (n == 0 || !v[0].path)
                        return conf_error(e, n ? v[0].node : holder, "type '%s' needs <source path='...'/>",
                                          chardev_type_to_string(type));
                break;
        case CHARDEV_TYPE_UNIX:
                /* As libvirt's parser: a source that names no endpoint at all is refused here; one that
                 * gives a host or service instead of a path is left for the driver to refuse. */
                if (!is_channel && (n == 0 || (!v[0].path && !v[0].host && !v[0].service)))
                        return conf_error(e, n ? v[0].node : holder, "type 'unix' needs <source path='...'/> "
                                          "(the socket; only a <channel> may leave it out)");
                break;
        case CHARDEV_TYPE_TCP:
                if (n == 0 || !v[0].host || !v[0].service)
                        return conf_error(e, n ? v[0].node : holder, "type 'tcp' needs <source host='...' "
                                          "service='...'/> (the address and port)");
                break;
        default:
                break;
        }
        return 0;
}

/* Views of the <source> children of holder (extra of a parsed device, or a node no typed parser read):
 * the first n_typed take their attributes from typed, the rest from the node. */
static size_t source_views(const ConfNode *holder, const ChardevSource *typed, size_t n_typed,
                           ChardevSourceView v[static CHARDEV_SOURCES_MAX]) {
        size_t n = 0;

        for (size_t i = 0; holder && i < holder->n_children && n < CHARDEV_SOURCES_MAX; i++) {
                const ConfNode *c = holder->children[i];

                if (!conf_node_is(c, "source"))
                        continue;
                if (n < n_typed)
                        v[n] = (ChardevSourceView) { c, typed[n].mode, typed[n].host, typed[n].service, typed[n].path };
                else
                        v[n] = (ChardevSourceView) { c, conf_node_attr(c, "mode"), conf_node_attr(c, "host"),
                                                     conf_node_attr(c, "service"), conf_node_attr(c, "path") };
                n++;
        }
        return n;
}

static int chardev_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const ChardevDef *d = dev->data;
        ChardevSourceView v[CHARDEV_SOURCES_MAX];
        size_t n = source_views(where, d->sources, d->n_sources, v);

        return check_sources(where, d->type, v, n, e);
}

int device_chardev_source_validate(const ConfNode *holder, VbError *e) {
        ChardevSourceView v[CHARDEV_SOURCES_MAX];
        const char *type = conf_node_attr(holder, "type");
        ChardevType t;

        if (!type || (t = chardev_type_from_string(type)) < 0)
                return 0; /* the schema checks the type */
        return check_sources(holder, t, v, source_views(holder, NULL, 0, v), e);
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
