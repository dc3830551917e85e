/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "conf/network-conf.h"

/* Pure functions that turn a guest's <interface type='network'> into what it actually uses, given a
 * network definition and the usage of its device pool. No host access: the caller (src/core) creates
 * the macvtap / moves the VF / plugs the tap into the bridge afterwards. */

/* The forward devices (bridge/private/vepa/passthrough) or PCI functions (hostdev) of a network, each
 * with the number of guest interfaces using it. */
typedef struct NetworkPoolEntry {
        char *dev;             /* a network device name; NULL for a PCI entry */
        NetworkPciAddress pci; /* hostdev entries */
        unsigned connections;
} NetworkPoolEntry;

typedef struct NetworkPool {
        NetworkForwardMode mode;
        NetworkPoolEntry *entries;
        size_t n_entries, n_entries_allocated;
} NetworkPool;

/* The pool of def. For <pf dev=>, vfs lists the PF's virtual functions (PCI addresses, found by the
 * host module) and is required; otherwise it is ignored. */
int network_pool_new(const NetworkDef *def, const NetworkPciAddress *vfs, size_t n_vfs, NetworkPool **ret,
                     VbError *reterr);
NetworkPool *network_pool_free(NetworkPool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetworkPool *, network_pool_free);

/* Picks an entry for one more guest interface and counts it. passthrough and hostdev give each entry
 * to one guest only (DeviceBusy when all are taken); bridge/private/vepa share devices, taking the
 * least used one (the first on a tie). want, if non-NULL, asks for that device (DeviceBusy if it is
 * exclusively taken; NoSuchDevice if it is not in the pool). Returns the entry's index. */
int network_pool_acquire(NetworkPool *p, const char *network_name, const char *want, size_t *ret_index,
                         VbError *reterr);
/* Counts an entry again (reconnecting to guests that run). -ENOENT if dev is not in the pool. */
int network_pool_take(NetworkPool *p, const char *dev, const NetworkPciAddress *pci);
void network_pool_release(NetworkPool *p, size_t index);
/* The index of dev (or of pci, when dev is NULL), or -ENOENT. */
ssize_t network_pool_find(const NetworkPool *p, const char *dev, const NetworkPciAddress *pci);

/* What a guest interface asks for: the portgroup in its <source portgroup=>, its own <virtualport>. */
typedef struct NetworkPortRequest {
        const char *portgroup;
        const NetworkVirtualPort *virtualport;
        const char *dev; /* NULL: any pool entry */
} NetworkPortRequest;

typedef enum NetworkActualType {
        NETWORK_ACTUAL_BRIDGE,  /* a tap on a bridge (the network's own, or a host bridge) */
        NETWORK_ACTUAL_DIRECT,  /* a macvtap on a forward device */
        NETWORK_ACTUAL_HOSTDEV, /* a PCI function given to the guest */
        _NETWORK_ACTUAL_MAX,
        _NETWORK_ACTUAL_INVALID = -EINVAL,
} NetworkActualType;

DECLARE_STRING_TABLE_LOOKUP(network_actual_type, NetworkActualType);

typedef struct NetworkActual {
        NetworkActualType type;
        char *bridge;          /* BRIDGE */
        char *dev;             /* DIRECT: the forward device */
        const char *mode;      /* DIRECT: macvtap mode: bridge, private, vepa, passthrough */
        NetworkPciAddress pci; /* HOSTDEV */
        int managed;           /* HOSTDEV: the network's <forward managed=>, -1 unset */
        ssize_t pool_index;    /* the pool entry taken, -1 for none */
        char *portgroup;       /* the portgroup that applied, NULL for none */
        NetworkVirtualPort *virtualport; /* the one that applies, NULL for none */
} NetworkActual;

void network_actual_done(NetworkActual *a);

/* The virtualport for a guest interface: its own first; else the portgroup named in the request; else
 * the network's default portgroup; else the network's top-level one. NULL if none applies. Sets
 * *ret_portgroup to the portgroup that applied (by name or as default), or NULL. Fails with
 * InvalidArgument when the request names a portgroup the network lacks. */
int network_choose_virtualport(const NetworkDef *def, const NetworkPortRequest *req,
                               const NetworkVirtualPort **ret, const NetworkPortGroup **ret_portgroup,
                               VbError *reterr);

/* Resolves a guest interface on network def into what it uses, taking a pool entry where the mode
 * needs one (pool may be NULL for modes without). On failure nothing is taken. */
int network_resolve_port(const NetworkDef *def, NetworkPool *pool, const NetworkPortRequest *req,
                         NetworkActual *ret, VbError *reterr);
