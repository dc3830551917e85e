/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device pools, virtualport choice and the resolution of a guest's <interface type='network'>. */
#include <stdlib.h>

#include "conf/network-resolve.h"

static const char * const network_actual_type_table[_NETWORK_ACTUAL_MAX] = {
        [NETWORK_ACTUAL_BRIDGE] = "bridge",
        [NETWORK_ACTUAL_DIRECT] = "direct",
        [NETWORK_ACTUAL_HOSTDEV] = "hostdev",
};
DEFINE_STRING_TABLE_LOOKUP(network_actual_type, NetworkActualType);

static bool pool_exclusive(const NetworkPool *p) {
        return p->mode == NETWORK_FORWARD_PASSTHROUGH || p->mode == NETWORK_FORWARD_HOSTDEV;
}

static int pool_add(NetworkPool *p, const char *dev, const NetworkPciAddress *pci) {
        NetworkPoolEntry *e;

        if (!GREEDY_REALLOC(p->entries, p->n_entries_allocated, p->n_entries + 1))
                return -ENOMEM;
        e = &p->entries[p->n_entries];
        *e = (NetworkPoolEntry) {};
        if (dev && !(e->dev = strdup(dev)))
                return -ENOMEM;
        if (pci)
                e->pci = *pci;
        p->n_entries++;
        return 0;
}

int network_pool_new(const NetworkDef *def, const NetworkPciAddress *vfs, size_t n_vfs, NetworkPool **ret,
                     VbError *reterr) {
        _cleanup_(network_pool_freep) NetworkPool *p = NULL;
        const NetworkForwardDef *f = &def->forward;
        int r = 0;

        p = new0(NetworkPool, 1);
        if (!p)
                return -ENOMEM;
        p->mode = def->has_forward ? f->mode : NETWORK_FORWARD_NONE;
        if (f->pf_dev) {
                if (n_vfs == 0)
                        return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE,
                                            "Network '%s': the physical function '%s' has no virtual functions.",
                                            def->name, f->pf_dev);
                for (size_t i = 0; i < n_vfs && r >= 0; i++)
                        r = pool_add(p, NULL, &vfs[i]);
        }
        for (size_t i = 0; i < f->n_devs && r >= 0; i++)
                r = pool_add(p, f->devs[i], NULL);
        for (size_t i = 0; i < f->n_addresses && r >= 0; i++)
                r = pool_add(p, NULL, &f->addresses[i]);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

NetworkPool *network_pool_free(NetworkPool *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_entries; i++)
                free(p->entries[i].dev);
        free(p->entries);
        free(p);
        return NULL;
}

static bool pci_equal(const NetworkPciAddress *a, const NetworkPciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot && a->function == b->function;
}

ssize_t network_pool_find(const NetworkPool *p, const char *dev, const NetworkPciAddress *pci) {
        for (size_t i = 0; i < p->n_entries; i++) {
                const NetworkPoolEntry *e = &p->entries[i];

                if (dev ? streq_ptr(e->dev, dev) : (!e->dev && pci && pci_equal(&e->pci, pci)))
                        return (ssize_t) i;
        }
        return -ENOENT;
}

int network_pool_acquire(NetworkPool *p, const char *network_name, const char *want, size_t *ret_index,
                         VbError *reterr) {
        bool exclusive = pool_exclusive(p);
        ssize_t best = -1;

        if (p->n_entries == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' has no forward devices to hand out.",
                                    network_name);
        if (want) {
                best = network_pool_find(p, want, NULL);
                if (best < 0)
                        return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Network '%s' has no forward device '%s'.",
                                            network_name, want);
                if (exclusive && p->entries[best].connections > 0)
                        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                            "Device '%s' of network '%s' is already in use by another guest.", want,
                                            network_name);
        } else
                for (size_t i = 0; i < p->n_entries; i++) {
                        if (exclusive && p->entries[i].connections > 0)
                                continue;
                        if (best < 0 || p->entries[i].connections < p->entries[best].connections)
                                best = (ssize_t) i;
                }
        if (best < 0)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                    "All %zu devices of network '%s' are in use (mode '%s' gives each to one guest).",
                                    p->n_entries, network_name, network_forward_mode_to_string(p->mode));
        p->entries[best].connections++;
        *ret_index = (size_t) best;
        return 0;
}

int network_pool_take(NetworkPool *p, const char *dev, const NetworkPciAddress *pci) {
        ssize_t i = network_pool_find(p, dev, pci);

        if (i < 0)
                return (int) i;
        p->entries[i].connections++;
        return 0;
}

void network_pool_release(NetworkPool *p, size_t index) {
        if (index < p->n_entries && p->entries[index].connections > 0)
                p->entries[index].connections--;
}

void network_actual_done(NetworkActual *a) {
        free(a->bridge);
        free(a->dev);
        free(a->portgroup);
        network_virtual_port_free(a->virtualport);
        *a = (NetworkActual) { .pool_index = -1 };
}

int network_choose_virtualport(const NetworkDef *def, const NetworkPortRequest *req,
                               const NetworkVirtualPort **ret, const NetworkPortGroup **ret_portgroup,
                               VbError *reterr) {
        const NetworkPortGroup *pg = NULL;

        if (req && req->portgroup) {
                for (size_t i = 0; i < def->n_portgroups && !pg; i++)
                        if (streq(def->portgroups[i].name, req->portgroup))
                                pg = &def->portgroups[i];
                if (!pg)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Network '%s' has no portgroup '%s'.",
                                            def->name, req->portgroup);
        }
        for (size_t i = 0; i < def->n_portgroups && !pg; i++)
                if (def->portgroups[i].is_default)
                        pg = &def->portgroups[i];
        if (ret_portgroup)
                *ret_portgroup = pg;
        if (req && req->virtualport)
                *ret = req->virtualport;
        else if (pg && pg->virtualport)
                *ret = pg->virtualport;
        else
                *ret = def->virtualport;
        return 0;
}

static int resolve_direct(const NetworkDef *def, NetworkPool *pool, const NetworkPortRequest *req,
                          NetworkActual *a, VbError *reterr) {
        size_t index;
        int r;

        if (!pool)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is not active.", def->name);
        r = network_pool_acquire(pool, def->name, req ? req->dev : NULL, &index, reterr);
        if (r < 0)
                return r;
        a->pool_index = (ssize_t) index;
        if (def->forward.mode == NETWORK_FORWARD_HOSTDEV || !pool->entries[index].dev) {
                a->type = NETWORK_ACTUAL_HOSTDEV;
                a->pci = pool->entries[index].pci;
                a->managed = def->forward.managed;
                return 0;
        }
        a->type = NETWORK_ACTUAL_DIRECT;
        a->mode = network_forward_mode_to_string(def->forward.mode);
        a->dev = strdup(pool->entries[index].dev);
        return a->dev ? 0 : -ENOMEM;
}

int network_resolve_port(const NetworkDef *def, NetworkPool *pool, const NetworkPortRequest *req,
                         NetworkActual *ret, VbError *reterr) {
        NetworkActual a = { .pool_index = -1 };
        const NetworkVirtualPort *vp = NULL;
        const NetworkPortGroup *pg = NULL;
        NetworkForwardMode mode = def->has_forward ? def->forward.mode : NETWORK_FORWARD_NONE;
        int r;

        r = network_choose_virtualport(def, req, &vp, &pg, reterr);
        if (r < 0)
                return r;
        if (network_def_has_own_bridge(def) || (mode == NETWORK_FORWARD_BRIDGE && def->bridge)) {
                if (!def->bridge)
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' has no bridge yet.", def->name);
                a.type = NETWORK_ACTUAL_BRIDGE;
                if (!(a.bridge = strdup(def->bridge)))
                        return -ENOMEM;
        } else {
                r = resolve_direct(def, pool, req, &a, reterr);
                if (r < 0) {
                        network_actual_done(&a);
                        return r;
                }
        }
        if ((pg && !(a.portgroup = strdup(pg->name))) || (vp && network_virtual_port_copy(vp, &a.virtualport) < 0)) {
                if (pool && a.pool_index >= 0)
                        network_pool_release(pool, (size_t) a.pool_index);
                network_actual_done(&a);
                return -ENOMEM;
        }
        *ret = a;
        return 0;
}
