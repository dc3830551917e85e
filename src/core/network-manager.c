/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's side of networks: loading the registry with the driver's defaults. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/domain-devices.h"
#include "core/manager.h"
#include "util/log.h"

int manager_network_load(Manager *m) {
        const char * const *defaults = NULL;
        _cleanup_free_ char *marker = NULL;

        if (m->driver->ops->default_networks)
                defaults = m->driver->ops->default_networks(m->driver);
        if (asprintf(&marker, "%s/%s-networks-seeded", m->state_dir, manager_driver_name(m)) < 0)
                return -ENOMEM;
        return network_registry_load(m->networks, defaults, marker);
}

/* The <source portgroup=> and <virtualport> of an interface: kept in its extra by the domain parser. */
static const char *interface_portgroup(const DeviceDef *dev) {
        for (size_t i = 0; dev->extra && i < dev->extra->n_children; i++)
                if (conf_node_is(dev->extra->children[i], "source"))
                        return conf_node_attr(dev->extra->children[i], "portgroup");
        return NULL;
}

static int interface_virtualport(const DeviceDef *dev, NetworkVirtualPort **ret) {
        for (size_t i = 0; dev->extra && i < dev->extra->n_children; i++)
                if (conf_node_is(dev->extra->children[i], "virtualport")) {
                        _cleanup_(conf_node_freep) ConfNode *copy = conf_node_copy(dev->extra->children[i]);

                        if (!copy)
                                return -ENOMEM;
                        return network_virtual_port_parse(copy, ret, NULL);
                }
        *ret = NULL;
        return 0;
}

/* Connects one <interface type='network'> (dev) and shows what it uses in resolved (a copy of dev). */
static int acquire_one(Manager *m, const char *owner, const DeviceDef *dev, DeviceDef *resolved, VbError *reterr) {
        const char *network = device_interface_get_network(dev);
        NetworkVirtualPort *own = NULL;
        const NetworkPort *port;
        bool had_own;
        uint8_t mac[6] = {};
        int r;

        r = interface_virtualport(dev, &own);
        if (r < 0)
                return r;
        (void) device_interface_get_mac(dev, mac);
        r = network_port_acquire(m->networks, network,
                                 &(NetworkPortRequest) { .portgroup = interface_portgroup(dev), .virtualport = own },
                                 owner, mac, &port, reterr);
        had_own = own != NULL;
        network_virtual_port_free(own);
        if (r < 0)
                return r;
        /* What the hypervisor driver gets: a VF as <interface type='hostdev'>, a forward device as
         * <interface type='direct'> (the driver makes the macvtap), else the bridge to plug a tap into. */
        if (port->actual.type == NETWORK_ACTUAL_HOSTDEV)
                r = device_interface_set_network_hostdev(resolved, port->actual.pci.domain, port->actual.pci.bus,
                                                         port->actual.pci.slot, port->actual.pci.function,
                                                         port->actual.managed);
        else if (port->actual.type == NETWORK_ACTUAL_DIRECT)
                r = device_interface_set_network_direct(resolved, port->actual.dev, port->actual.mode);
        else
                r = device_interface_set_network_actual(resolved, port->actual.bridge, NULL, NULL);
        /* The virtualport that applies (from the portgroup or the network) shows too. */
        if (r >= 0 && !had_own && port->actual.virtualport && resolved->extra)
                r = network_virtual_port_to_node(port->actual.virtualport, resolved->extra);
        return r;
}

int manager_domain_networks_acquire(Manager *m, const char *owner, const DomainDef *def, DomainDef **ret,
                                    VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        DeviceDef *const *devices;
        size_t n = domain_def_get_devices(def, &devices);
        int r;

        *ret = NULL;
        for (size_t i = 0; i < n; i++) {
                DeviceDef *const *cdev;

                if (!device_interface_get_network(devices[i]))
                        continue;
                if (!copy && (r = domain_def_copy(def, &copy)) < 0)
                        goto fail;
                (void) domain_def_get_devices(copy, &cdev);
                r = acquire_one(m, owner, devices[i], cdev[i], reterr);
                if (r < 0)
                        goto fail;
        }
        *ret = TAKE_PTR(copy);
        return 0;
fail:
        network_ports_release_owner(m->networks, owner);
        return r;
}

int manager_domain_network_acquire_device(Manager *m, const char *owner, const DeviceDef *dev, DeviceDef **ret,
                                          VbError *reterr) {
        _cleanup_(device_def_freep) DeviceDef *copy = NULL;
        uint8_t mac[6] = {};
        int r;

        *ret = NULL;
        if (!device_interface_get_network(dev) || !m->networks)
                return 0;
        r = device_def_copy(dev, &copy);
        if (r < 0)
                return r;
        r = acquire_one(m, owner, dev, copy, reterr);
        if (r < 0) {
                (void) device_interface_get_mac(dev, mac);
                network_port_release(m->networks, owner, mac);
                return r;
        }
        *ret = TAKE_PTR(copy);
        return 1;
}

void manager_domain_network_release_device(Manager *m, const char *owner, const DeviceDef *dev) {
        uint8_t mac[6] = {};

        if (!m->networks || !device_interface_get_mac(dev, mac))
                return;
        network_port_release(m->networks, owner, mac);
}

/* Whether def has an interface with this MAC. */
static bool def_has_mac(const DomainDef *def, const uint8_t mac[6]) {
        DeviceDef *const *devices;
        size_t n = def ? domain_def_get_devices(def, &devices) : 0;

        for (size_t i = 0; i < n; i++) {
                uint8_t m[6] = {};

                if (devices[i]->kind == DEVICE_INTERFACE && device_interface_get_mac(devices[i], m) &&
                    memcmp(m, mac, 6) == 0)
                        return true;
        }
        return false;
}

static bool port_in_live(const char *owner, const uint8_t mac[6], void *userdata) {
        const DomainDef *live = userdata;
        return def_has_mac(live, mac);
}

void manager_domain_network_ports_reconcile(Manager *m, const char *owner, const DomainDef *live) {
        if (m->networks)
                network_ports_keep(m->networks, owner, port_in_live, (void *) live);
}

void manager_domain_networks_release(Manager *m, const char *owner) {
        if (m->networks)
                network_ports_release_owner(m->networks, owner);
}

static bool domain_runs(const char *owner, void *userdata) {
        Domain *d = manager_domain_by_uuid(userdata, owner);
        return d && domain_is_active(d);
}

void manager_network_prune_ports(Manager *m) {
        network_ports_prune(m->networks, domain_runs, m);
}
