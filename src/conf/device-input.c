/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <input type='mouse|tablet|keyboard|passthrough|evdev' bus='ps2|usb|xen|virtio|...'/> */

typedef enum InputType {
        INPUT_TYPE_MOUSE,
        INPUT_TYPE_TABLET,
        INPUT_TYPE_KEYBOARD,
        INPUT_TYPE_PASSTHROUGH,
        INPUT_TYPE_EVDEV,
        _INPUT_TYPE_MAX,
        _INPUT_TYPE_INVALID = -EINVAL,
} InputType;

typedef enum InputBus {
        INPUT_BUS_UNSET,
        INPUT_BUS_PS2,
        INPUT_BUS_USB,
        INPUT_BUS_XEN,
        INPUT_BUS_VIRTIO,
        INPUT_BUS_PARALLELS,
        INPUT_BUS_NONE,
        _INPUT_BUS_MAX,
        _INPUT_BUS_INVALID = -EINVAL,
} InputBus;

static const char * const input_type_table[_INPUT_TYPE_MAX] = {
        [INPUT_TYPE_MOUSE] = "mouse",
        [INPUT_TYPE_TABLET] = "tablet",
        [INPUT_TYPE_KEYBOARD] = "keyboard",
        [INPUT_TYPE_PASSTHROUGH] = "passthrough",
        [INPUT_TYPE_EVDEV] = "evdev",
};
DECLARE_STRING_TABLE_LOOKUP(input_type, InputType);
DEFINE_STRING_TABLE_LOOKUP(input_type, InputType);

static const char * const input_bus_table[_INPUT_BUS_MAX] = {
        [INPUT_BUS_PS2] = "ps2",
        [INPUT_BUS_USB] = "usb",
        [INPUT_BUS_XEN] = "xen",
        [INPUT_BUS_VIRTIO] = "virtio",
        [INPUT_BUS_PARALLELS] = "parallels",
        [INPUT_BUS_NONE] = "none",
};
DECLARE_STRING_TABLE_LOOKUP(input_bus, InputBus);
DEFINE_STRING_TABLE_LOOKUP(input_bus, InputBus);

typedef struct InputDef {
        InputType type;
        InputBus bus;
} InputDef;

static int input_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        InputDef *d = dev->data;
        int r;

        if ((r = CONF_TAKE_ENUM(n, "type", input_type, true, &d->type, e)) < 0 ||
            (r = CONF_TAKE_ENUM(n, "bus", input_bus, false, &d->bus, e)) < 0)
                return r;
        return 0;
}

static int input_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const InputDef *d = dev->data;

        if (conf_node_set_attr(n, "type", input_type_to_string(d->type)) < 0 ||
            conf_node_set_attr(n, "bus", input_bus_to_string(d->bus)) < 0)
                return -ENOMEM;
        return 0;
}

static int input_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const InputDef *d = dev->data;

        if (d->type == INPUT_TYPE_TABLET && d->bus == INPUT_BUS_PS2)
                return conf_error(e, where, "a tablet cannot be on bus 'ps2'");
        return 0;
}

static void input_free(void *data) {
}

const DeviceOps device_input_ops = {
        .data_size = sizeof(InputDef),
        .parse = input_parse,
        .format = input_format,
        .validate = input_validate,
        .free = input_free,
};
