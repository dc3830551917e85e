/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "conf/nodedev-conf.h"
#include "host/net.h"
#include "host/pci.h"
#include "util/error.h"
#include "util/hashmap.h"

typedef struct Manager Manager;
typedef struct DomainDef DomainDef;

/* A device of the host as the service shows it: a name (libvirt's: "pci_0000_03_00_0", "net_eth0_52_54_00_..",
 * "usb_1_2", "computer") and its current definition. The definition is replaced, never changed, when a
 * re-scan finds the device different. */
typedef struct NodeDevice {
        Manager *manager;
        char *name;
        NodeDevDef *def;
        bool is_pci;
        HostPciAddress pci;
} NodeDevice;

typedef struct HostdevLeases HostdevLeases;
typedef struct NodeDevWatch NodeDevWatch;
typedef struct NodeDevChange NodeDevChange;
struct Worker;

/* Everything of node devices a Manager holds (Manager.nodedev). */
typedef struct NodeDevState {
        Hashmap *by_name;
        NodeDevice **devices; /* sorted by name */
        size_t n_devices, n_allocated;
        Hashmap *leases_by_domain; /* domain UUID -> HostdevLeases, while a domain holds host devices */
        pid_t fake_kernel_pid;     /* the test driver's simulated host (nodedev-testhost.c), or 0 */
        NodeDevWatch *watch;       /* kernel device events (nodedev-watch.c), or NULL */
        struct Worker *worker;     /* runs the host's slow changes (sriov_numvfs); started on first use */
        NodeDevChange *changes;    /* those in flight: their devices (and a PF's VFs) answer busy */
        bool stopping;             /* manager_nodedev_done(): changes finishing now answer nobody */
        bool stop_requested;       /* SIGTERM (manager_nodedev_stop): no new changes begin */
        uint64_t scans;            /* manager_nodedev_scan()s begun (read by the changes' thread) */
} NodeDevState;

/* Property names of org.virtbus1.NodeDevice that change with a re-scan. */
#define NODEDEV_CHANGING_PROPERTIES "Parent", "Capabilities", "Driver"

int manager_nodedev_init(Manager *m);
void manager_nodedev_done(Manager *m);
/* virtbusd is stopping: new changes are refused, those not begun are answered "virtbusd is stopping" now
 * (also when a running one hangs in the kernel); running ones go on. */
void manager_nodedev_stop(Manager *m);
/* virtbusd exits without the changes still running (hung in the kernel): their callers are answered so. */
void manager_nodedev_abandon(Manager *m);
/* The test driver's host without --sysfs-root: a copy of data/test-host-sysfs (nodedev-testhost.c). */
int manager_nodedev_test_host_setup(Manager *m);
void manager_nodedev_test_host_stop(Manager *m);

/* Reads the host again and updates the registry: added, removed and changed devices are announced
 * through the Manager's events. */
int manager_nodedev_scan(Manager *m);
/* When the sysfs root is the real /sys, re-scans shortly after the kernel's device events for PCI, USB
 * and network devices (nodedev-watch.c): devices others add or remove show up too. Started before the
 * first scan; a failure to listen is logged and leaves re-scans after our own changes only. */
int manager_nodedev_watch_start(Manager *m);
void manager_nodedev_watch_stop(Manager *m);

NodeDevice *manager_nodedev_by_name(Manager *m, const char *name);
/* In name order; *ret points into the registry (valid until the next scan). */
size_t manager_nodedev_list(Manager *m, NodeDevice *const **ret);

int manager_nodedev_get_xml(Manager *m, NodeDevice *d, char **ret, VbError *reterr);
const char *nodedev_driver(const NodeDevice *d);
const char *nodedev_parent(const NodeDevice *d);

/* Called on the event loop when a change that was handed to a thread is done (r >= 0) or failed (r, e). */
typedef void (*NodeDevDone)(int r, const VbError *e, void *userdata);
/* Privileged changes; uid is the caller's, for the log. Each is made by a worker thread (the kernel's
 * unbind/bind/reset/sriov_numvfs writes can take long, and the re-reading of the host parses pci.ids):
 * 0 when handed over (done is called once it is finished and the registry was read again), or < 0 at
 * once. Meanwhile the device (and the endpoints of its group, or its VFs, when those change too) answers
 * DeviceBusy to other changes. */
/* whole_group: every device of its IOMMU group (bridges aside) goes to vfio-pci together. */
int manager_nodedev_detach(Manager *m, NodeDevice *d, const char *driver, bool whole_group, uid_t uid,
                           NodeDevDone done, void *userdata, VbError *reterr);
int manager_nodedev_reattach(Manager *m, NodeDevice *d, uid_t uid, NodeDevDone done, void *userdata,
                             VbError *reterr);
int manager_nodedev_reset(Manager *m, NodeDevice *d, uid_t uid, NodeDevDone done, void *userdata, VbError *reterr);
/* sriov_numvfs := count, the same way; its VFs are busy too. */
int manager_nodedev_set_vfs(Manager *m, NodeDevice *d, unsigned count, uid_t uid, NodeDevDone done, void *userdata,
                            VbError *reterr);
/* Changes handed to the thread and not yet answered. */
unsigned manager_nodedev_changes(Manager *m);
/* DeviceBusy when a change is in flight on the PCI device at a or on its physical function; else 0. */
int manager_nodedev_check_idle(Manager *m, const HostPciAddress *a, VbError *reterr);
/* The MAC and VLAN of VF number vf of the PF d, the same way (the PF busy meanwhile). mac:
 * "aa:bb:cc:dd:ee:ff"; vlan 0: none. */
int manager_nodedev_configure_vf(Manager *m, NodeDevice *d, unsigned vf, const char *mac, unsigned vlan, uid_t uid,
                                 NodeDevDone done, void *userdata, VbError *reterr);

/* Frees the records of what running domains hold, giving nothing back (virtbusd stops, they run on). */
void hostdev_forget_all(Manager *m);
/* At start-up, once the running domains were found again: reads what domains took from the host
 * (<runtime>/hostdevs/<uuid>.leases, hostdev-store.c); keeps it for domains that still run and gives it
 * back at once for those that stopped while virtbusd was away. Damaged records are logged and skipped. */
void manager_hostdev_load(Manager *m);

/* Host devices of a domain (core/hostdev.c): before the driver starts it, managed <hostdev>s are
 * detached from the host and <interface type='hostdev'> VFs get their MAC/VLAN (the old values are
 * remembered); when it stops, everything is given back. Nothing is left half-done on failure. */
int hostdev_prepare_domain(Manager *m, const char *uuid, const char *name, const DomainDef *def, VbError *reterr);
void hostdev_release_domain(Manager *m, const char *uuid, const char *name);
typedef struct DeviceDef DeviceDef;
/* The same for one device hot-plugged into / released by a running domain (core/domain-device.c). */
int hostdev_prepare_device(Manager *m, const char *uuid, const char *name, const DeviceDef *dev, VbError *reterr);
void hostdev_release_device(Manager *m, const char *uuid, const char *name, const DeviceDef *dev);
/* Whether def uses any host device (for the polkit action the caller needs). */
bool hostdev_domain_uses_host_devices(const DomainDef *def);
