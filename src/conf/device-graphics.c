/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <graphics type='sdl|vnc|spice|rdp|desktop|egl-headless|dbus' port= autoport= listen= passwd= keymap=> */

typedef enum GraphicsType {
        GRAPHICS_TYPE_SDL,
        GRAPHICS_TYPE_VNC,
        GRAPHICS_TYPE_RDP,
        GRAPHICS_TYPE_DESKTOP,
        GRAPHICS_TYPE_SPICE,
        GRAPHICS_TYPE_EGL_HEADLESS,
        GRAPHICS_TYPE_DBUS,
        _GRAPHICS_TYPE_MAX,
        _GRAPHICS_TYPE_INVALID = -EINVAL,
} GraphicsType;

static const char * const graphics_type_table[_GRAPHICS_TYPE_MAX] = {
        [GRAPHICS_TYPE_SDL] = "sdl",
        [GRAPHICS_TYPE_VNC] = "vnc",
        [GRAPHICS_TYPE_RDP] = "rdp",
        [GRAPHICS_TYPE_DESKTOP] = "desktop",
        [GRAPHICS_TYPE_SPICE] = "spice",
        [GRAPHICS_TYPE_EGL_HEADLESS] = "egl-headless",
        [GRAPHICS_TYPE_DBUS] = "dbus",
};
DECLARE_STRING_TABLE_LOOKUP(graphics_type, GraphicsType);
DEFINE_STRING_TABLE_LOOKUP(graphics_type, GraphicsType);

typedef struct GraphicsDef {
        GraphicsType type;
        bool has_port;
        int port; /* -1: pick one */
        int autoport; /* -1 unset */
        char *listen;
        char *passwd;
        char *keymap;
} GraphicsDef;

static int graphics_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        GraphicsDef *d = dev->data;
        _cleanup_free_ char *port = NULL;
        int r;

        d->autoport = -1;
        if ((r = CONF_TAKE_ENUM(n, "type", graphics_type, true, &d->type, e)) < 0)
                return r;
        if (d->type != GRAPHICS_TYPE_VNC && d->type != GRAPHICS_TYPE_SPICE && d->type != GRAPHICS_TYPE_RDP)
                return 0; /* the rest of sdl/desktop/egl-headless/dbus is kept as given */
        port = conf_node_take_attr(n, "port");
        if (port) {
                uint64_t v;

                if (streq(port, "-1"))
                        d->port = -1;
                else if ((r = conf_parse_uint(n, "attribute 'port'", port, 65535, &v, e)) < 0)
                        return r;
                else
                        d->port = (int) v;
                d->has_port = true;
        }
        if ((r = conf_take_yesno(n, "autoport", &d->autoport, e)) < 0)
                return r;
        d->listen = conf_node_take_attr(n, "listen");
        d->passwd = conf_node_take_attr(n, "passwd");
        d->keymap = conf_node_take_attr(n, "keymap");
        return 0;
}

static int graphics_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const GraphicsDef *d = dev->data;

        if (conf_node_set_attr(n, "type", graphics_type_to_string(d->type)) < 0 ||
            (d->has_port && conf_node_set_attrf(n, "port", "%d", d->port) < 0) ||
            (d->autoport >= 0 && conf_node_set_attr(n, "autoport", d->autoport ? "yes" : "no") < 0) ||
            conf_node_set_attr(n, "listen", d->listen) < 0 ||
            ((flags & DEVICE_FORMAT_SECURE) && conf_node_set_attr(n, "passwd", d->passwd) < 0) ||
            conf_node_set_attr(n, "keymap", d->keymap) < 0)
                return -ENOMEM;
        return 0;
}

/* The older attributes listen= and socket= of <graphics> say what its first <listen> says: when both are
 * given they must agree. */
static int graphics_validate_listen(const GraphicsDef *d, const ConfNode *where, VbError *e) {
        const ConfNode *first = conf_node_child(where, "listen");
        const char *listen = d->listen ?: conf_node_attr(where, "listen"), *socket = conf_node_attr(where, "socket");
        const char *type;

        if (!first)
                return 0;
        type = conf_node_attr(first, "type");
        if (listen && streq_ptr(type, "address") && conf_node_attr(first, "address") &&
            !streq(listen, conf_node_attr(first, "address")))
                return conf_error(e, first, "address '%s' differs from listen='%s' of <graphics> (expected the same "
                                  "address in both, or only one of them)", conf_node_attr(first, "address"), listen);
        if (socket && streq_ptr(type, "socket") && conf_node_attr(first, "socket") &&
            !streq(socket, conf_node_attr(first, "socket")))
                return conf_error(e, first, "socket '%s' differs from socket='%s' of <graphics> (expected the same "
                                  "path in both, or only one of them)", conf_node_attr(first, "socket"), socket);
        return 0;
}

static int graphics_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const GraphicsDef *d = dev->data;

        if (d->has_port && d->port > 0 && d->port < 5900 && d->type == GRAPHICS_TYPE_VNC)
                return conf_error(e, where, "VNC port %d is below 5900", d->port);
        return graphics_validate_listen(d, where, e);
}

static void graphics_free(void *data) {
        GraphicsDef *d = data;

        free(d->listen);
        free(d->passwd);
        free(d->keymap);
}

const DeviceOps device_graphics_ops = {
        .data_size = sizeof(GraphicsDef),
        .parse = graphics_parse,
        .format = graphics_format,
        .validate = graphics_validate,
        .free = graphics_free,
};
