/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host devices a domain holds while it runs: managed PCI <hostdev>s detached from the host, and the MAC /
 * VLAN given to SR-IOV VFs of <interface type='hostdev'>, with what they had before. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/device-host-source.h"
#include "conf/domain-conf.h"
#include "core/manager.h"
#include "core/nodedev-internal.h"
#include "util/log.h"

typedef struct HostdevLease {
        HostPciAddress address;
        bool detached;     /* we bound it to vfio-pci, and give it back */
        bool vf_configured; /* we set MAC/VLAN through the PF, and restore old */
        char *pf_ifname;
        unsigned vf;
        HostVfConfig old;
} HostdevLease;

struct HostdevLeases {
        char uuid[37];
        HostPciAddress *together; /* every PCI device of the domain: one IOMMU group may be given whole */
        size_t n_together;
        HostdevLease *leases;
        size_t n, allocated;
};

static HostdevLeases *leases_free(HostdevLeases *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                free(l->leases[i].pf_ifname);
        free(l->leases);
        free(l->together);
        free(l);
        return NULL;
}

void hostdev_forget_all(Manager *m) {
        HostdevLeases *set;

        /* virtbusd stops, its domains go on running with their devices: only our records go. */
        for (size_t i = 0; hashmap_iterate(m->nodedev.leases_by_domain, &i, (void **) &set, NULL);)
                leases_free(set);
}

static void mac_format(const uint8_t m[6], char ret[18]) {
        snprintf(ret, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Gives back one lease; logs; returns < 0 if something could not be given back. */
static int lease_release(const HostdevLease *l, const char *name) {
        char addr[HOST_PCI_ADDRESS_MAX], mac[18];
        VbError e = VB_ERROR_NULL;
        int r, ret = 0;

        host_pci_address_format(&l->address, addr);
        if (l->detached) {
                r = host_pci_reattach(&l->address, NULL, &e);
                log_notice("Domain '%s': giving PCI device '%s' back to the host: %s", name, addr,
                           r < 0 ? (e.message ?: strerror(-r)) : "done");
                vb_error_free(&e);
                if (r < 0)
                        ret = r;
        }
        if (l->vf_configured) {
                mac_format(l->old.mac, mac);
                r = host_net_vf_set(l->pf_ifname, l->vf, &l->old, &e);
                log_notice("Domain '%s': restoring VF %u of '%s' (%s) to MAC %s VLAN %u: %s", name, l->vf,
                           l->pf_ifname, addr, mac, l->old.vlan, r < 0 ? (e.message ?: strerror(-r)) : "done");
                vb_error_free(&e);
                if (r < 0)
                        ret = r;
        }
        return ret;
}

static int prepare_pci(HostdevLeases *set, HostdevLease *l, const DeviceHostSource *s, const char *name,
                       VbError *reterr) {
        _cleanup_free_ char *drv = NULL;
        char addr[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(&l->address, addr);
        if (!s->managed) {
                r = host_pci_get_driver(&l->address, &drv);
                if (r == -ENODEV)
                        return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", addr);
                if (r < 0)
                        return r;
                if (!drv || !streq(drv, HOST_PCI_VFIO_DRIVER))
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                            "PCI device '%s' is not detached from the host (driver '%s'): detach it "
                                            "first, or use managed='yes'", addr, drv ?: "none");
                return 0;
        }
        r = host_pci_detach(&l->address, HOST_PCI_VFIO_DRIVER, set->together, set->n_together, &drv, reterr);
        log_notice("Domain '%s': detaching PCI device '%s' from the host (driver '%s') to vfio-pci: %s", name, addr,
                   drv ?: "none", r < 0 ? (reterr && reterr->message ? reterr->message : strerror(-r))
                                        : r > 0 ? "already detached" : "done");
        if (r < 0)
                return r;
        l->detached = r == 0;
        return 0;
}

static int prepare_vf(HostdevLeases *set, HostdevLease *l, const DeviceHostSource *s, const char *name,
                      VbError *reterr) {
        _cleanup_(host_pci_device_done) HostPciDevice h = {};
        char addr[HOST_PCI_ADDRESS_MAX], mac[18];
        HostVfConfig cfg = {};
        int r;

        host_pci_address_format(&l->address, addr);
        r = host_pci_get(&l->address, &h);
        if (r == -ENODEV)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", addr);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read PCI device '%s': %s", addr,
                                    strerror(-r));
        if (!h.is_vf)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI device '%s' of <interface type='hostdev'> is not an SR-IOV virtual "
                                    "function: its MAC address can only be set on a VF (a plain NIC would lose it at "
                                    "reset); use <hostdev> to pass it through without a MAC", addr);
        if (h.vf_index < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "Cannot find VF '%s' among the virtual functions of its PF", addr);
        r = nodedev_pf_ifname(&h.pf, &l->pf_ifname, reterr);
        if (r < 0)
                return r;
        l->vf = (unsigned) h.vf_index;
        r = host_net_vf_get(l->pf_ifname, l->vf, &l->old, reterr);
        if (r < 0)
                return r;
        memcpy(cfg.mac, s->mac, 6);
        cfg.vlan = (uint16_t) s->vlan;
        mac_format(cfg.mac, mac);
        r = host_net_vf_set(l->pf_ifname, l->vf, &cfg, reterr);
        log_notice("Domain '%s': setting VF %u of '%s' (%s) to MAC %s VLAN %u: %s", name, l->vf, l->pf_ifname, addr, mac,
                   cfg.vlan, r < 0 ? (reterr && reterr->message ? reterr->message : strerror(-r)) : "done");
        if (r < 0)
                return r;
        l->vf_configured = true;
        if (s->managed)
                return prepare_pci(set, l, s, name, reterr);
        return 0;
}

static int prepare_one(HostdevLeases *set, const DeviceHostSource *s, const char *name, VbError *reterr) {
        HostdevLease *l;
        int r;

        switch (s->kind) {
        case DEVICE_HOST_SOURCE_NONE:
        case DEVICE_HOST_SOURCE_OTHER:
                return 0;
        case DEVICE_HOST_SOURCE_NET_USB:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "<interface type='hostdev'> on a USB device is not supported: only SR-IOV "
                                    "virtual functions (PCI) can be given a MAC address; use <hostdev type='usb'>");
        case DEVICE_HOST_SOURCE_NET_OTHER:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "<interface type='hostdev'> needs a PCI source address of an SR-IOV virtual function");
        default:
                break;
        }
        if (!GREEDY_REALLOC(set->leases, set->allocated, set->n + 1))
                return -ENOMEM;
        l = &set->leases[set->n];
        *l = (HostdevLease) { .address = { s->domain, s->bus, s->slot, s->function } };
        r = s->kind == DEVICE_HOST_SOURCE_PCI ? prepare_pci(set, l, s, name, reterr)
                                              : prepare_vf(set, l, s, name, reterr);
        if (r < 0) {
                (void) lease_release(l, name);
                free(l->pf_ifname);
                return r;
        }
        set->n++;
        return 0;
}

static int hostdev_put(Manager *m, HostdevLeases *set) {
        if (set->n == 0) {
                leases_free(set);
                return 0;
        }
        return hashmap_put(m->nodedev.leases_by_domain, set->uuid, set);
}

bool hostdev_domain_uses_host_devices(const DomainDef *def) {
        DeviceDef *const *devs;
        size_t n = domain_def_get_devices(def, &devs);

        for (size_t i = 0; i < n; i++) {
                DeviceHostSource s;

                if (device_def_get_host_source(devs[i], &s) >= 0 && s.kind != DEVICE_HOST_SOURCE_NONE)
                        return true;
        }
        return false;
}

int hostdev_prepare_domain(Manager *m, const char *uuid, const char *name, const DomainDef *def, VbError *reterr) {
        HostdevLeases *set;
        DeviceDef *const *devs;
        size_t n = domain_def_get_devices(def, &devs);
        int r = 0;

        if (!hostdev_domain_uses_host_devices(def))
                return 0;
        hostdev_release_domain(m, uuid, name); /* leftovers of an earlier run */
        set = new0(HostdevLeases, 1);
        if (!set)
                return -ENOMEM;
        snprintf(set->uuid, sizeof set->uuid, "%s", uuid);
        set->together = new0(HostPciAddress, n);
        if (!set->together) {
                leases_free(set);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                DeviceHostSource s;

                if (device_def_get_host_source(devs[i], &s) >= 0 &&
                    (s.kind == DEVICE_HOST_SOURCE_PCI || s.kind == DEVICE_HOST_SOURCE_NET_PCI))
                        set->together[set->n_together++] = (HostPciAddress) { s.domain, s.bus, s.slot, s.function };
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                DeviceHostSource s;

                r = device_def_get_host_source(devs[i], &s);
                if (r >= 0)
                        r = prepare_one(set, &s, name, reterr);
        }
        if (r >= 0 && set->n == 0) {
                leases_free(set);
                return 0;
        }
        if (r >= 0)
                r = hostdev_put(m, set);
        if (r < 0) {
                for (size_t i = set->n; i > 0; i--)
                        (void) lease_release(&set->leases[i - 1], name);
                leases_free(set);
                (void) manager_nodedev_scan(m);
                return r;
        }
        (void) manager_nodedev_scan(m);
        return 0;
}

void hostdev_release_domain(Manager *m, const char *uuid, const char *name) {
        HostdevLeases *set;

        if (!m->nodedev.leases_by_domain)
                return;
        set = hashmap_remove(m->nodedev.leases_by_domain, uuid);
        if (!set)
                return;
        for (size_t i = set->n; i > 0; i--)
                (void) lease_release(&set->leases[i - 1], name);
        leases_free(set);
        (void) manager_nodedev_scan(m);
}

/* Hot-plug (core/domain-device.c): one device of a running domain, prepared as at its start and kept
 * with the domain's other leases, or given back when the guest released it. */
int hostdev_prepare_device(Manager *m, const char *uuid, const char *name, const DeviceDef *dev, VbError *reterr) {
        HostdevLeases *set = m->nodedev.leases_by_domain ? hashmap_get(m->nodedev.leases_by_domain, uuid) : NULL;
        bool created = false;
        DeviceHostSource s;
        int r;

        r = device_def_get_host_source(dev, &s);
        if (r < 0 || s.kind == DEVICE_HOST_SOURCE_NONE || s.kind == DEVICE_HOST_SOURCE_OTHER)
                return r < 0 ? r : 0;
        if (!set) {
                set = new0(HostdevLeases, 1);
                if (!set)
                        return -ENOMEM;
                snprintf(set->uuid, sizeof set->uuid, "%s", uuid);
                created = true;
        }
        r = prepare_one(set, &s, name, reterr);
        if (r >= 0 && created)
                r = hostdev_put(m, set);
        else if (r < 0 && created)
                leases_free(set);
        (void) manager_nodedev_scan(m);
        return r;
}

void hostdev_release_device(Manager *m, const char *uuid, const char *name, const DeviceDef *dev) {
        HostdevLeases *set = m->nodedev.leases_by_domain ? hashmap_get(m->nodedev.leases_by_domain, uuid) : NULL;
        DeviceHostSource s;

        if (!set || device_def_get_host_source(dev, &s) < 0)
                return;
        for (size_t i = 0; i < set->n; i++) {
                HostdevLease *l = &set->leases[i];

                if (!host_pci_address_equal(&l->address, &(HostPciAddress) { s.domain, s.bus, s.slot, s.function }))
                        continue;
                (void) lease_release(l, name);
                free(l->pf_ifname);
                memmove(set->leases + i, set->leases + i + 1, (set->n - i - 1) * sizeof(HostdevLease));
                set->n--;
                break;
        }
        (void) manager_nodedev_scan(m);
}
