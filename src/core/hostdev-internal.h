/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between hostdev.c (taking host devices for a domain and giving them back) and hostdev-store.c (the
 * runtime record of what was taken, and start-up recovery). */
#include "core/nodedev.h"
#include "util/string-table.h"

/* Where one change to the host stands. A step is recorded as INTENT before it is made and becomes TAKEN
 * once it was; giving back treats both alike (each give-back is harmless when the change never happened:
 * a device that is not on vfio-pci is left alone, a VF gets the values it had anyway). */
typedef enum HostdevStep {
        HOSTDEV_STEP_NONE,
        HOSTDEV_STEP_INTENT,
        HOSTDEV_STEP_TAKEN,
        _HOSTDEV_STEP_MAX,
        _HOSTDEV_STEP_INVALID = -EINVAL,
} HostdevStep;

DECLARE_STRING_TABLE_LOOKUP(hostdev_step, HostdevStep);

typedef struct HostdevLease {
        HostPciAddress address;
        HostdevStep detach; /* bound to vfio-pci by us: given back to the host */
        char *driver;       /* the host driver it had (for the logs), NULL: unbound */
        HostdevStep vf;     /* MAC/VLAN set through the PF by us: the old ones restored */
        char *pf_ifname;
        unsigned vf_index;
        HostVfConfig old;
} HostdevLease;

struct HostdevLeases {
        char uuid[37];
        char *name;                /* the domain's, for the logs */
        HostPciAddress *together;  /* every PCI device of the domain: one IOMMU group may be given whole */
        size_t n_together;
        HostdevLease *leases;
        size_t n, allocated;
};

HostdevLeases *hostdev_leases_new(const char *uuid, const char *name);
HostdevLeases *hostdev_leases_free(HostdevLeases *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostdevLeases *, hostdev_leases_free);
void hostdev_lease_done(HostdevLease *l);

/* Gives back what lease l of domain name holds (logged at notice); < 0 if something could not be. */
int hostdev_lease_release(const HostdevLease *l, const char *name);

/* The record's text and back (hostdev-store.c). parse: -EBADMSG for anything damaged or torn (the text
 * must end with the "end" line the writer puts last). */
int hostdev_leases_format(const HostdevLeases *set, char **ret);
int hostdev_leases_parse(const char *text, HostdevLeases **ret);

/* Writes <runtime>/hostdevs/<uuid>.leases atomically, or removes it when set holds nothing. */
int hostdev_store_save(Manager *m, const HostdevLeases *set, VbError *reterr);
void hostdev_store_remove(Manager *m, const char *uuid);
