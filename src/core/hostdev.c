/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host devices a domain holds while it runs: managed PCI <hostdev>s detached from the host, and the MAC /
 * VLAN given to SR-IOV VFs of <interface type='hostdev'>, with what they had before. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/device-host-source.h"
#include "conf/domain-conf.h"
#include "core/manager.h"
#include "core/hostdev-internal.h"
#include "core/nodedev-internal.h"
#include "util/log.h"

HostdevLeases *hostdev_leases_new(const char *uuid, const char *name) {
        HostdevLeases *l = new0(HostdevLeases, 1);

        if (!l)
                return NULL;
        snprintf(l->uuid, sizeof l->uuid, "%s", uuid);
        l->name = strdup(name);
        if (!l->name)
                return hostdev_leases_free(l);
        return l;
}

void hostdev_lease_done(HostdevLease *l) {
        free(l->driver);
        free(l->pf_ifname);
        *l = (HostdevLease) {};
}

HostdevLeases *hostdev_leases_free(HostdevLeases *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                hostdev_lease_done(&l->leases[i]);
        free(l->leases);
        free(l->together);
        free(l->name);
        free(l);
        return NULL;
}

void hostdev_forget_all(Manager *m) {
        HostdevLeases *set;

        /* virtbusd stops, its domains go on running with their devices: only our memory goes; the records
         * in the runtime directory stay for the next start (hostdev-store.c). */
        for (size_t i = 0; hashmap_iterate(m->nodedev.leases_by_domain, &i, (void **) &set, NULL);)
                hostdev_leases_free(set);
}

static void mac_format(const uint8_t m[6], char ret[18]) {
        snprintf(ret, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Gives a device back to its host driver if it is on vfio-pci (it may never have got there, when only the
 * intent was recorded, or someone gave it back by hand). */
static int give_back_pci(const HostdevLease *l, const char *name, const char *addr) {
        _cleanup_free_ char *cur = NULL, *got = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = host_pci_get_driver(&l->address, &cur);
        if (r >= 0 && !streq_ptr(cur, HOST_PCI_VFIO_DRIVER)) {
                if (l->detach == HOSTDEV_STEP_TAKEN)
                        log_notice("Domain '%s': PCI device '%s' is back on the host already (driver '%s').", name,
                                   addr, cur ?: "none");
                return 0;
        }
        r = r < 0 ? vb_error_set(&e, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", addr)
                  : host_pci_reattach(&l->address, &got, &e);
        log_notice("Domain '%s': giving PCI device '%s' back to the host: %s%s%s", name, addr,
                   r < 0 ? (e.message ?: strerror(-r)) : "done", r >= 0 && got ? ", driver " : "",
                   r >= 0 ? strempty(got) : "");
        vb_error_free(&e);
        return r;
}

int hostdev_lease_release(const HostdevLease *l, const char *name) {
        char addr[HOST_PCI_ADDRESS_MAX], mac[18];
        VbError e = VB_ERROR_NULL;
        int r, ret = 0;

        host_pci_address_format(&l->address, addr);
        if (l->detach != HOSTDEV_STEP_NONE) {
                r = give_back_pci(l, name, addr);
                if (r < 0)
                        ret = r;
        }
        if (l->vf != HOSTDEV_STEP_NONE) {
                mac_format(l->old.mac, mac);
                r = host_net_vf_set(l->pf_ifname, l->vf_index, &l->old, &e);
                log_notice("Domain '%s': restoring VF %u of '%s' (%s) to MAC %s VLAN %u: %s", name, l->vf_index,
                           l->pf_ifname, addr, mac, l->old.vlan, r < 0 ? (e.message ?: strerror(-r)) : "done");
                vb_error_free(&e);
                if (r < 0)
                        ret = r;
        }
        return ret;
}

/* Planning: what will be changed, read from the host before anything is (the record's intent). */

static int plan_pci(HostdevLease *l, const DeviceHostSource *s, VbError *reterr) {
        _cleanup_free_ char *drv = NULL;
        char addr[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(&l->address, addr);
        r = host_pci_get_driver(&l->address, &drv);
        if (r == -ENODEV)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", addr);
        if (r < 0)
                return r;
        if (streq_ptr(drv, HOST_PCI_VFIO_DRIVER))
                return 0; /* detached already (by hand): not ours to give back */
        if (!s->managed)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "PCI device '%s' is not detached from the host (driver '%s'): detach it "
                                    "first, or use managed='yes'", addr, drv ?: "none");
        l->detach = HOSTDEV_STEP_INTENT;
        l->driver = TAKE_PTR(drv);
        return 0;
}

static int plan_vf(HostdevLease *l, const DeviceHostSource *s, VbError *reterr) {
        _cleanup_(host_pci_device_done) HostPciDevice h = {};
        char addr[HOST_PCI_ADDRESS_MAX];
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
        l->vf_index = (unsigned) h.vf_index;
        r = host_net_vf_get(l->pf_ifname, l->vf_index, &l->old, reterr);
        if (r < 0)
                return r;
        l->vf = HOSTDEV_STEP_INTENT;
        if (s->managed)
                return plan_pci(l, s, reterr);
        return 0;
}

/* Acting: the planned changes, each INTENT becoming TAKEN once made. */

static int act_vf(HostdevLease *l, const DeviceHostSource *s, const char *name, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX], mac[18];
        HostVfConfig cfg = {};
        int r;

        host_pci_address_format(&l->address, addr);
        memcpy(cfg.mac, s->mac, 6);
        cfg.vlan = (uint16_t) s->vlan;
        mac_format(cfg.mac, mac);
        r = host_net_vf_set(l->pf_ifname, l->vf_index, &cfg, reterr);
        log_notice("Domain '%s': setting VF %u of '%s' (%s) to MAC %s VLAN %u: %s", name, l->vf_index, l->pf_ifname,
                   addr, mac, cfg.vlan, r < 0 ? (reterr && reterr->message ? reterr->message : strerror(-r)) : "done");
        if (r < 0)
                return r;
        l->vf = HOSTDEV_STEP_TAKEN;
        return 0;
}

static int act_pci(HostdevLeases *set, HostdevLease *l, const char *name, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(&l->address, addr);
        r = host_pci_detach(&l->address, HOST_PCI_VFIO_DRIVER, set->together, set->n_together, NULL, reterr);
        log_notice("Domain '%s': detaching PCI device '%s' from the host (driver '%s') to vfio-pci: %s", name, addr,
                   l->driver ?: "none", r < 0 ? (reterr && reterr->message ? reterr->message : strerror(-r))
                                                : r > 0 ? "already detached" : "done");
        if (r < 0)
                return r;
        l->detach = HOSTDEV_STEP_TAKEN;
        return 0;
}

static void forget_intents(HostdevLease *l) {
        if (l->detach == HOSTDEV_STEP_INTENT)
                l->detach = HOSTDEV_STEP_NONE;
        if (l->vf == HOSTDEV_STEP_INTENT)
                l->vf = HOSTDEV_STEP_NONE;
}

/* Takes what one device needs from the host: planned, recorded (hostdev-store.c), then done. On failure
 * nothing of it is held and it is not in set (the caller writes the record again). */
static int prepare_one(Manager *m, HostdevLeases *set, const DeviceHostSource *s, VbError *reterr) {
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
        l = &set->leases[set->n++];
        *l = (HostdevLease) { .address = { s->domain, s->bus, s->slot, s->function } };
        /* Not while its VFs (or its PF's) are being changed. */
        r = manager_nodedev_check_idle(m, &l->address, reterr);
        if (r >= 0)
                r = s->kind == DEVICE_HOST_SOURCE_PCI ? plan_pci(l, s, reterr) : plan_vf(l, s, reterr);
        if (r >= 0 && (l->detach != HOSTDEV_STEP_NONE || l->vf != HOSTDEV_STEP_NONE))
                r = hostdev_store_save(m, set, reterr); /* the intent, before the host changes */
        if (r >= 0 && l->vf == HOSTDEV_STEP_INTENT)
                r = act_vf(l, s, set->name, reterr);
        if (r >= 0 && l->detach == HOSTDEV_STEP_INTENT)
                r = act_pci(set, l, set->name, reterr);
        if (r < 0) {
                forget_intents(l);
                (void) hostdev_lease_release(l, set->name);
                hostdev_lease_done(l);
                set->n--;
                return r;
        }
        if (l->detach == HOSTDEV_STEP_NONE && l->vf == HOSTDEV_STEP_NONE) {
                hostdev_lease_done(l); /* nothing of it is ours */
                set->n--;
        }
        return 0;
}

/* The record after the changes (the intents became facts). Failing here loses nothing: an intent is given
 * back like a fact. */
static void record_result(Manager *m, HostdevLeases *set) {
        VbError e = VB_ERROR_NULL;

        if (hostdev_store_save(m, set, &e) < 0)
                log_warning("%s, ignoring.", e.message ?: "Failed to record host devices");
        vb_error_free(&e);
}

static int hostdev_put(Manager *m, HostdevLeases *set) {
        if (set->n == 0) {
                hostdev_leases_free(set);
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
        set = hostdev_leases_new(uuid, name);
        if (!set)
                return -ENOMEM;
        set->together = new0(HostPciAddress, n);
        if (!set->together) {
                hostdev_leases_free(set);
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
                        r = prepare_one(m, set, &s, reterr);
        }
        if (r >= 0 && set->n == 0) {
                hostdev_leases_free(set);
                hostdev_store_remove(m, uuid);
                return 0;
        }
        if (r >= 0) {
                record_result(m, set);
                r = hostdev_put(m, set);
        }
        if (r < 0) {
                for (size_t i = set->n; i > 0; i--)
                        (void) hostdev_lease_release(&set->leases[i - 1], name);
                hostdev_leases_free(set);
                hostdev_store_remove(m, uuid);
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
                (void) hostdev_lease_release(&set->leases[i - 1], name);
        /* Only once all was given back: a crash before this gives it back again at the next start. */
        hostdev_store_remove(m, uuid);
        hostdev_leases_free(set);
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
                set = hostdev_leases_new(uuid, name);
                if (!set)
                        return -ENOMEM;
                created = true;
        }
        r = prepare_one(m, set, &s, reterr);
        record_result(m, set); /* the new lease, or (failed) the record without it */
        if (r >= 0 && created)
                r = hostdev_put(m, set);
        else if (r < 0 && created)
                hostdev_leases_free(set);
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
                (void) hostdev_lease_release(l, name);
                hostdev_lease_done(l);
                memmove(set->leases + i, set->leases + i + 1, (set->n - i - 1) * sizeof(HostdevLease));
                set->n--;
                record_result(m, set);
                break;
        }
        (void) manager_nodedev_scan(m);
}
