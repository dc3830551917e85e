/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"

/* <interface type='network|bridge|user|ethernet|mcast|server|client|udp|direct|vhostuser|hostdev|...'> */

typedef enum InterfaceType {
        INTERFACE_TYPE_NETWORK,
        INTERFACE_TYPE_BRIDGE,
        INTERFACE_TYPE_USER,
        INTERFACE_TYPE_ETHERNET,
        INTERFACE_TYPE_MCAST,
        INTERFACE_TYPE_SERVER,
        INTERFACE_TYPE_CLIENT,
        INTERFACE_TYPE_UDP,
        INTERFACE_TYPE_DIRECT,
        INTERFACE_TYPE_VHOSTUSER,
        INTERFACE_TYPE_HOSTDEV,
        INTERFACE_TYPE_VDPA,
        INTERFACE_TYPE_INTERNAL,
        INTERFACE_TYPE_NULL,
        INTERFACE_TYPE_VDS,
        _INTERFACE_TYPE_MAX,
        _INTERFACE_TYPE_INVALID = -EINVAL,
} InterfaceType;

static const char * const interface_type_table[_INTERFACE_TYPE_MAX] = {
        [INTERFACE_TYPE_NETWORK] = "network",
        [INTERFACE_TYPE_BRIDGE] = "bridge",
        [INTERFACE_TYPE_USER] = "user",
        [INTERFACE_TYPE_ETHERNET] = "ethernet",
        [INTERFACE_TYPE_MCAST] = "mcast",
        [INTERFACE_TYPE_SERVER] = "server",
        [INTERFACE_TYPE_CLIENT] = "client",
        [INTERFACE_TYPE_UDP] = "udp",
        [INTERFACE_TYPE_DIRECT] = "direct",
        [INTERFACE_TYPE_VHOSTUSER] = "vhostuser",
        [INTERFACE_TYPE_HOSTDEV] = "hostdev",
        [INTERFACE_TYPE_VDPA] = "vdpa",
        [INTERFACE_TYPE_INTERNAL] = "internal",
        [INTERFACE_TYPE_NULL] = "null",
        [INTERFACE_TYPE_VDS] = "vds",
};
DECLARE_STRING_TABLE_LOOKUP(interface_type, InterfaceType);
DEFINE_STRING_TABLE_LOOKUP(interface_type, InterfaceType);

/* The <source> attributes we type; which ones appear depends on the type. */
typedef enum InterfaceSourceAttr {
        IF_SOURCE_NETWORK,
        IF_SOURCE_BRIDGE,
        IF_SOURCE_DEV,
        IF_SOURCE_MODE,
        IF_SOURCE_ADDRESS,
        IF_SOURCE_PORT,
        IF_SOURCE_PATH,
        _IF_SOURCE_MAX,
} InterfaceSourceAttr;

static const char * const interface_source_attr[_IF_SOURCE_MAX] = {
        [IF_SOURCE_NETWORK] = "network",
        [IF_SOURCE_BRIDGE] = "bridge",
        [IF_SOURCE_DEV] = "dev",
        [IF_SOURCE_MODE] = "mode",
        [IF_SOURCE_ADDRESS] = "address",
        [IF_SOURCE_PORT] = "port",
        [IF_SOURCE_PATH] = "path",
};

typedef struct InterfaceDef {
        InterfaceType type;
        int managed; /* -1 unset */
        char *source[_IF_SOURCE_MAX];
        bool has_source;
        DeviceAddress hostdev_address; /* type='hostdev': the host device */
        bool has_mac;
        uint8_t mac[6];
        char *target_dev;
        char *script;
        char *model;
} InterfaceDef;

static int interface_parse_source(InterfaceDef *d, ConfNode *src, VbError *e) {
        ConfNode *a;

        d->has_source = true;
        /* For mcast/server/client/udp, 'address' is an attribute; for hostdev a child element. */
        for (InterfaceSourceAttr i = 0; i < _IF_SOURCE_MAX; i++)
                d->source[i] = conf_node_take_attr(src, interface_source_attr[i]);
        a = conf_node_child(src, "address");
        if (d->type == INTERFACE_TYPE_HOSTDEV && a && conf_node_attr(a, "type")) {
                a->used = true;
                return device_address_parse(a, &d->hostdev_address, e);
        }
        return 0;
}

static int interface_parse(DeviceDef *dev, ConfNode *n, VbError *e) {
        InterfaceDef *d = dev->data;
        ConfNode *c;
        int r;

        d->managed = -1;
        if ((r = CONF_TAKE_ENUM(n, "type", interface_type, true, &d->type, e)) < 0 ||
            (r = conf_take_yesno(n, "managed", &d->managed, e)) < 0)
                return r;
        if ((c = conf_node_use_child(n, "source")) && (r = interface_parse_source(d, c, e)) < 0)
                return r;
        if ((c = conf_node_use_child(n, "mac"))) {
                _cleanup_free_ char *mac = conf_node_take_attr(c, "address");

                if (!mac || conf_mac_parse(mac, d->mac) < 0)
                        return conf_error(e, c, "attribute 'address' has invalid value '%s' (expected a MAC address like 52:54:00:12:34:56)",
                                          strempty(mac));
                d->has_mac = true;
        }
        if ((c = conf_node_use_child(n, "target")))
                d->target_dev = conf_node_take_attr(c, "dev");
        if ((c = conf_node_use_child(n, "script")))
                d->script = conf_node_take_attr(c, "path");
        if ((c = conf_node_use_child(n, "model")))
                d->model = conf_node_take_attr(c, "type");
        return 0;
}

static int interface_format(const DeviceDef *dev, ConfNode *n, unsigned flags) {
        const InterfaceDef *d = dev->data;
        ConfNode *c;
        char mac[18];

        if (conf_node_set_attr(n, "type", interface_type_to_string(d->type)) < 0 ||
            (d->managed >= 0 && conf_node_set_attr(n, "managed", d->managed ? "yes" : "no") < 0))
                return -ENOMEM;
        if (d->has_mac) {
                conf_mac_format(d->mac, mac);
                c = conf_node_add(n, "mac");
                if (!c || conf_node_set_attr(c, "address", mac) < 0)
                        return -ENOMEM;
        }
        if (d->has_source) {
                c = conf_node_add(n, "source");
                if (!c)
                        return -ENOMEM;
                for (InterfaceSourceAttr i = 0; i < _IF_SOURCE_MAX; i++)
                        if (conf_node_set_attr(c, interface_source_attr[i], d->source[i]) < 0)
                                return -ENOMEM;
                if (device_address_format(&d->hostdev_address, c, "address") < 0)
                        return -ENOMEM;
        }
        if ((d->target_dev && (!(c = conf_node_add(n, "target")) || conf_node_set_attr(c, "dev", d->target_dev) < 0)) ||
            (d->script && (!(c = conf_node_add(n, "script")) || conf_node_set_attr(c, "path", d->script) < 0)) ||
            (d->model && (!(c = conf_node_add(n, "model")) || conf_node_set_attr(c, "type", d->model) < 0)))
                return -ENOMEM;
        return 0;
}

static int interface_validate(const DeviceDef *dev, const ConfNode *where, VbError *e) {
        const InterfaceDef *d = dev->data;

        if (d->has_mac && (d->mac[0] & 1))
                return conf_error(e, where, "MAC address must not be a multicast address");
        if (d->type == INTERFACE_TYPE_NETWORK && !d->source[IF_SOURCE_NETWORK] && d->has_source)
                return conf_error(e, where, "type 'network' needs <source network='...'/>");
        if (d->type == INTERFACE_TYPE_HOSTDEV)
                return device_address_validate(&d->hostdev_address, where, e);
        return 0;
}

static void interface_free(void *data) {
        InterfaceDef *d = data;

        for (InterfaceSourceAttr i = 0; i < _IF_SOURCE_MAX; i++)
                free(d->source[i]);
        device_address_done(&d->hostdev_address);
        free(d->target_dev);
        free(d->script);
        free(d->model);
}

bool device_interface_get_mac(const DeviceDef *dev, uint8_t ret[6]) {
        const InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        if (!d || !d->has_mac)
                return false;
        memcpy(ret, d->mac, 6);
        return true;
}

void device_interface_set_mac(DeviceDef *dev, const uint8_t mac[6]) {
        InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        if (!d)
                return;
        memcpy(d->mac, mac, 6);
        d->has_mac = true;
}

void device_interface_ensure_mac(DeviceDef *dev, const char *seed, unsigned salt) {
        InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        if (!d || d->has_mac)
                return;
        d->mac[0] = 0x52;
        d->mac[1] = 0x54;
        d->mac[2] = 0x00;
        conf_fill_bytes(d->mac + 3, 3, seed, salt);
        d->has_mac = true;
}

const DeviceOps device_interface_ops = {
        .data_size = sizeof(InterfaceDef),
        .parse = interface_parse,
        .format = interface_format,
        .validate = interface_validate,
        .free = interface_free,
};

const char *device_interface_get_network(const DeviceDef *dev) {
        const InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        return d && d->type == INTERFACE_TYPE_NETWORK ? d->source[IF_SOURCE_NETWORK] : NULL;
}

int device_interface_set_network_actual(DeviceDef *dev, const char *bridge, const char *dev_name, const char *mode) {
        InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        if (!d || d->type != INTERFACE_TYPE_NETWORK)
                return -EINVAL;
        if (free_and_strdup(&d->source[IF_SOURCE_BRIDGE], bridge) < 0 ||
            free_and_strdup(&d->source[IF_SOURCE_DEV], dev_name) < 0 ||
            free_and_strdup(&d->source[IF_SOURCE_MODE], mode) < 0)
                return -ENOMEM;
        d->has_source = true;
        return 0;
}

int device_interface_set_network_hostdev(DeviceDef *dev, uint32_t domain, uint32_t bus, uint32_t slot,
                                         uint32_t function, int managed) {
        InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        if (!d || d->type != INTERFACE_TYPE_NETWORK)
                return -EINVAL;
        device_address_done(&d->hostdev_address);
        d->hostdev_address = (DeviceAddress) {
                .type = DEVICE_ADDRESS_PCI,
                .pci = { .domain = domain, .bus = bus, .slot = slot, .function = function, .multifunction = -1 },
        };
        d->type = INTERFACE_TYPE_HOSTDEV;
        d->managed = managed;
        d->has_source = true;
        return 0;
}

int device_interface_set_network_direct(DeviceDef *dev, const char *lower, const char *mode) {
        InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;
        int r;

        if (!d || d->type != INTERFACE_TYPE_NETWORK)
                return -EINVAL;
        r = device_interface_set_network_actual(dev, NULL, lower, mode);
        if (r < 0)
                return r;
        d->type = INTERFACE_TYPE_DIRECT;
        return 0;
}

const char *device_interface_get_target_dev(const DeviceDef *dev) {
        const InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        return d ? d->target_dev : NULL;
}

bool device_interface_shares_host_view(const DeviceDef *dev) {
        const InterfaceDef *d = dev->kind == DEVICE_INTERFACE ? dev->data : NULL;

        return d && (d->type == INTERFACE_TYPE_DIRECT || d->type == INTERFACE_TYPE_ETHERNET);
}
