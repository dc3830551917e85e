/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* InterfaceAddresses without D-Bus: the addresses of a running domain's interfaces, from the DHCP leases of
 * virtbus networks (source 0) or the host's neighbour table (source 2). The guest agent's view (source 1)
 * is asked through the driver. */
#include <stdio.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"
#include "core/domain-internal.h"
#include "core/network.h"
#include "util/log.h"

/* One entry per interface of the live definition, with its name and MAC, no addresses yet. */
static int list_interfaces(const Domain *d, DomainIfAddresses **ret, const DeviceDef ***ret_devs, size_t *ret_n) {
        DomainIfAddresses *l = new0(DomainIfAddresses, d->live->n_devices ?: 1);
        const DeviceDef **devs = new0(const DeviceDef *, d->live->n_devices ?: 1);
        size_t n = 0;

        if (!l || !devs) {
                free(l);
                free(devs);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d->live->n_devices; i++) {
                const DeviceDef *dev = d->live->devices[i];
                uint8_t mac[6];

                if (dev->kind != DEVICE_INTERFACE || !device_interface_get_mac(dev, mac))
                        continue;
                /* The host side's device; a backend that makes none (test): the device's alias. */
                l[n].name = strdup(device_interface_get_target_dev(dev) ?: strempty(dev->alias));
                if (!l[n].name) {
                        domain_if_addresses_free(l, n);
                        free(devs);
                        return -ENOMEM;
                }
                memcpy(l[n].mac_bytes, mac, 6);
                conf_mac_format(mac, l[n].mac);
                devs[n++] = dev;
        }
        *ret = l;
        *ret_devs = devs;
        *ret_n = n;
        return 0;
}

/* The prefix of the network's subnet of this family (0 when it has none). */
static unsigned network_prefix(const NetworkDef *def, NetworkFamily family) {
        for (size_t i = 0; i < def->n_ips; i++)
                if (def->ips[i].family == family)
                        return def->ips[i].prefix;
        return 0;
}

static int add_leases(Manager *m, DomainIfAddresses *iface, const DeviceDef *dev) {
        const char *name = device_interface_get_network(dev);
        Network *net = name ? network_registry_by_name(m->networks, name) : NULL;
        HostDhcpLease *leases = NULL;
        size_t n = 0;
        int r;

        if (!net || !network_is_active(net))
                return 0;
        r = network_get_leases(m->networks, net, iface->mac, &leases, &n, NULL);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the leases of network '%s', ignoring: %m", name);
                return 0;
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool v6 = strchr(leases[i].ip, ':');
                r = domain_if_addresses_add(iface, v6 ? 6 : 4, leases[i].ip,
                                            network_prefix(net->live, v6 ? NETWORK_FAMILY_IPV6 : NETWORK_FAMILY_IPV4));
        }
        host_dhcp_leases_free(leases, n);
        return r;
}

static int add_neighbours(Manager *m, DomainIfAddresses *l, size_t n, VbError *reterr) {
        _cleanup_free_ uint8_t (*macs)[6] = calloc(n ?: 1, 6);
        HostNeighbour *nb = NULL;
        size_t n_nb = 0;
        int r;

        if (!macs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                memcpy(macs[i], l[i].mac_bytes, 6);
        r = network_registry_neighbours(m->networks, (const uint8_t (*)[6]) macs, n, &nb, &n_nb, reterr);
        if (r < 0)
                return r;
        /* The neighbour table knows no prefix: 0, as libvirt reports it. */
        for (size_t i = 0; r >= 0 && i < n_nb; i++)
                r = domain_if_addresses_add(&l[nb[i].mac_index], nb[i].family, nb[i].address, 0);
        host_neighbours_free(nb, n_nb);
        return r;
}

/* Drops the interfaces without an address. */
static size_t drop_empty(DomainIfAddresses *l, size_t n) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                if (l[i].n_addrs == 0) {
                        free(l[i].name);
                        free(l[i].addrs);
                        continue;
                }
                l[k++] = l[i];
        }
        return k;
}

int manager_domain_interface_addresses(Manager *m, Domain *d, unsigned source, VbDriverAddressesDone done,
                                       void *userdata, DomainIfAddresses **ret, size_t *ret_n, VbError *reterr) {
        DomainIfAddresses *l = NULL;
        _cleanup_free_ const DeviceDef **devs = NULL;
        size_t n = 0;
        int r = 0;

        if (source != DOMAIN_ADDRESSES_LEASE && source != DOMAIN_ADDRESSES_AGENT && source != DOMAIN_ADDRESSES_ARP)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Unknown address source %u (expected 0 for "
                                    "DHCP leases, 1 for the guest agent, 2 for the host's neighbour table)", source);
        /* A domain that does not run has no addresses (an answer, not an error, for a GUI that polls). */
        if (!domain_is_active(d) || !d->live) {
                *ret = NULL;
                *ret_n = 0;
                return 1;
        }
        if (source == DOMAIN_ADDRESSES_AGENT) {
                if (!DRIVER_OP(m, domain_agent_interfaces))
                        return vb_driver_not_supported(m->driver, "a guest agent", reterr);
                return DRIVER_OP(m, domain_agent_interfaces)(m->driver, d->uuid, done, userdata, ret, ret_n, reterr);
        }
        r = list_interfaces(d, &l, &devs, &n);
        if (r < 0)
                return r;
        if (source == DOMAIN_ADDRESSES_LEASE)
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = add_leases(m, &l[i], devs[i]);
        else if (n > 0)
                r = add_neighbours(m, l, n, reterr);
        if (r < 0) {
                domain_if_addresses_free(l, n);
                return r;
        }
        *ret_n = drop_empty(l, n);
        *ret = l;
        return 1;
}
