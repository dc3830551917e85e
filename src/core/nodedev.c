/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node device registry: what the host has, re-read after our own changes, and the privileged
 * operations on it (each logged at notice with the caller's uid, what, and the result). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/manager.h"
#include "core/nodedev-internal.h"
#include "host/host.h"
#include "util/log.h"
#include "util/worker.h"

/* Changes of the host waiting for a thread: beyond this, callers are told to try again. */
#define CHANGES_QUEUE_MAX 16

typedef enum ChangeKind {
        CHANGE_SET_VFS,
        CHANGE_DETACH,
        CHANGE_REATTACH,
        CHANGE_RESET,
        CHANGE_CONFIGURE_VF,
} ChangeKind;

/* A change of the host handed to the worker (SetVirtualFunctions, Detach, ReAttach, Reset,
 * ConfigureVirtualFunction). */
struct NodeDevChange {
        Manager *manager;
        NodeDevChange *next;
        ChangeKind kind;
        char *name;         /* the device's, for the log and the answers of busy */
        HostPciAddress pci; /* the device's; for SetVirtualFunctions its VFs are busy too */
        HostPciAddress *group; /* Detach of the whole IOMMU group: its endpoints (busy too), else NULL */
        size_t n_group;
        const char *driver; /* Detach */
        char *got;          /* ReAttach: the driver the device went back to; ConfigureVirtualFunction: the
                             * PF's network interface */
        unsigned count;     /* SetVirtualFunctions: the VFs wanted; ConfigureVirtualFunction: the VF's index */
        HostVfConfig vf_config; /* ConfigureVirtualFunction */
        uid_t uid;
        char *what;
        int r; /* the thread's result, and its error */
        VbError error;
        NodeDevScan scan; /* the host read again by the thread afterwards (reading pci.ids takes a while) */
        int scan_r;
        uint64_t scans; /* manager_nodedev_scan()s begun before the thread's reading */
        NodeDevDone done;
        void *userdata;
};

NodeDevice *nodedev_free(NodeDevice *d) {
        if (!d)
                return NULL;
        free(d->name);
        nodedev_def_free(d->def);
        free(d);
        return NULL;
}

int nodedev_scan_add(NodeDevScan *scan, NodeDevDef *def, const HostPciAddress *pci) {
        NodeDevice *d;

        if (!def)
                return -ENOMEM;
        d = new0(NodeDevice, 1);
        if (!d || !(d->name = strdup(def->name)) || !GREEDY_REALLOC(scan->devices, scan->allocated, scan->n + 1)) {
                nodedev_free(d);
                nodedev_def_free(def);
                return -ENOMEM;
        }
        d->def = def;
        if (pci) {
                d->is_pci = true;
                d->pci = *pci;
        }
        scan->devices[scan->n++] = d;
        return 0;
}

void nodedev_scan_done(NodeDevScan *scan) {
        for (size_t i = 0; i < scan->n; i++)
                nodedev_free(scan->devices[i]);
        free(scan->devices);
        *scan = (NodeDevScan) {};
}

int manager_nodedev_init(Manager *m) {
        m->nodedev.by_name = hashmap_new();
        m->nodedev.leases_by_domain = hashmap_new();
        if (!m->nodedev.by_name || !m->nodedev.leases_by_domain)
                return -ENOMEM;
        return 0;
}

void manager_nodedev_done(Manager *m) {
        NodeDevState *s = &m->nodedev;

        /* Waits for a change a thread is making (the kernel's write cannot be cut short); its caller,
         * like the bus, is gone. virtbusd waited for it before (manager_stop_pending()); one that still
         * runs after that is left to the thread, which keeps what it uses. */
        s->stopping = true;
        if (s->worker && worker_running(s->worker)) {
                log_warning("A change of a host device is still running: virtbusd exits without it.");
                s->worker = NULL;
                s->changes = NULL;
        }
        s->worker = worker_free(s->worker);
        manager_nodedev_watch_stop(m);
        manager_nodedev_test_host_stop(m);
        for (size_t i = 0; i < s->n_devices; i++)
                nodedev_free(s->devices[i]);
        free(s->devices);
        hashmap_free(s->by_name);
        hostdev_forget_all(m);
        hashmap_free(s->leases_by_domain);
        *s = (NodeDevState) {};
}

NodeDevice *manager_nodedev_by_name(Manager *m, const char *name) {
        return m->nodedev.by_name ? hashmap_get(m->nodedev.by_name, name) : NULL;
}

size_t manager_nodedev_list(Manager *m, NodeDevice *const **ret) {
        *ret = m->nodedev.devices;
        return m->nodedev.n_devices;
}

const char *nodedev_driver(const NodeDevice *d) {
        return d->def->driver;
}

const char *nodedev_parent(const NodeDevice *d) {
        return d->def->parent;
}

static int name_compare(const void *a, const void *b) {
        return strcmp((*(NodeDevice * const *) a)->name, (*(NodeDevice * const *) b)->name);
}

static bool defs_equal(const NodeDevDef *a, const NodeDevDef *b) {
        _cleanup_free_ char *x = NULL, *y = NULL;

        if (nodedev_def_format(a, &x) < 0 || nodedev_def_format(b, &y) < 0)
                return false;
        return streq(x, y);
}

int manager_nodedev_scan(Manager *m) {
        NodeDevScan scan = {};
        int r;

        /* A thread's reading of the host from before this is older than what this finds. */
        __atomic_add_fetch(&m->nodedev.scans, 1, __ATOMIC_SEQ_CST);
        r = nodedev_host_enumerate(&scan);
        if (r < 0) {
                nodedev_scan_done(&scan);
                return log_warning_errno(r, "Failed to read the host's devices below '%s': %m", host_sysfs_root());
        }
        return nodedev_scan_apply(m, &scan);
}

int nodedev_scan_apply(Manager *m, NodeDevScan *taken) {
        static const char * const props[] = { NODEDEV_CHANGING_PROPERTIES, NULL };
        NodeDevState *s = &m->nodedev;
        NodeDevScan scan = *taken;
        _cleanup_free_ uint8_t *what = NULL; /* per new device: 0 same, 1 added, 2 changed */
        bool announce = s->devices != NULL;
        Hashmap *by_name;
        size_t k = 0;

        *taken = (NodeDevScan) {};
        if (scan.n > 1)
                qsort(scan.devices, scan.n, sizeof(NodeDevice *), name_compare);
        by_name = hashmap_new();
        what = new0(uint8_t, scan.n);
        if (!by_name || !what) {
                hashmap_free(by_name);
                nodedev_scan_done(&scan);
                return -ENOMEM;
        }
        /* Keep the objects of devices still there (their definition swapped if it changed). */
        for (size_t i = 0; i < scan.n; i++) {
                NodeDevice *old = manager_nodedev_by_name(m, scan.devices[i]->name), *new = scan.devices[i];

                new->manager = m;
                what[i] = 1;
                if (old && hashmap_get(by_name, old->name) != old) {
                        NodeDevDef *t = old->def;

                        what[i] = defs_equal(old->def, new->def) ? 0 : 2;
                        old->def = new->def;
                        new->def = t;
                        old->is_pci = new->is_pci;
                        old->pci = new->pci;
                        nodedev_free(new);
                        scan.devices[i] = old;
                        hashmap_remove(s->by_name, old->name);
                }
                if (hashmap_put(by_name, scan.devices[i]->name, scan.devices[i]) < 0) {
                        /* Two devices with one name (e.g. interfaces with the same MAC): keep the first. */
                        log_debug("Duplicate node device name '%s', ignoring the second.", scan.devices[i]->name);
                        scan.devices[i] = nodedev_free(scan.devices[i]);
                }
        }
        /* What is left in the old map is gone. */
        for (size_t i = 0; i < s->n_devices; i++) {
                NodeDevice *d = s->devices[i];

                if (hashmap_get(s->by_name, d->name) != d)
                        continue;
                log_info("Node device '%s' went away.", d->name);
                if (m->events.nodedev_removed)
                        m->events.nodedev_removed(m->events.userdata, d);
                nodedev_free(d);
        }
        hashmap_free(s->by_name);
        free(s->devices);
        s->by_name = by_name;
        s->devices = scan.devices;
        s->n_allocated = scan.allocated;
        for (size_t i = 0; i < scan.n; i++) {
                NodeDevice *d = scan.devices[i];

                if (!d)
                        continue;
                s->devices[k++] = d;
                if (announce && what[i] == 1)
                        log_info("Node device '%s' appeared.", d->name);
                if (announce && what[i] == 1 && m->events.nodedev_added)
                        m->events.nodedev_added(m->events.userdata, d);
                else if (what[i] == 2 && m->events.nodedev_changed)
                        m->events.nodedev_changed(m->events.userdata, d, props);
        }
        s->n_devices = k;
        log_debug("Node devices: %zu.", s->n_devices);
        return 0;
}

int manager_nodedev_get_xml(Manager *m, NodeDevice *d, char **ret, VbError *reterr) {
        int r = nodedev_def_format(d->def, ret);

        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format node device '%s': %s", d->name,
                                    strerror(-r));
        return 0;
}

static bool pci_equal(const NodeDevPciAddress *n, const HostPciAddress *h) {
        return n->domain == h->domain && n->bus == h->bus && n->slot == h->slot && n->function == h->function;
}

/* The change in flight on the device at a, or on the PF whose VF the registry knows a to be. */
static NodeDevChange *change_on(Manager *m, const HostPciAddress *a) {
        NodeDevState *s = &m->nodedev;
        const NodeDevCap *pci = NULL;

        if (!s->changes)
                return NULL;
        for (size_t i = 0; i < s->n_devices && !pci; i++)
                if (s->devices[i]->is_pci && host_pci_address_equal(&s->devices[i]->pci, a))
                        pci = nodedev_def_find_cap(s->devices[i]->def, NODEDEV_CAP_PCI);
        for (NodeDevChange *c = s->changes; c; c = c->next) {
                if (host_pci_address_equal(&c->pci, a) ||
                    (c->kind == CHANGE_SET_VFS && pci && pci->pci.is_vf && pci_equal(&pci->pci.pf, &c->pci)))
                        return c;
                for (size_t i = 0; i < c->n_group; i++)
                        if (host_pci_address_equal(&c->group[i], a))
                                return c;
        }
        return NULL;
}

static const char *change_busy(const NodeDevChange *c) {
        switch (c->kind) {
        case CHANGE_SET_VFS:
                return "busy changing its virtual functions";
        case CHANGE_DETACH:
                return "being detached";
        case CHANGE_REATTACH:
                return "being re-attached";
        case CHANGE_RESET:
                return "being reset";
        case CHANGE_CONFIGURE_VF:
                return "busy configuring a virtual function";
        }
        return "busy";
}

int manager_nodedev_check_idle(Manager *m, const HostPciAddress *a, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c = change_on(m, a);

        if (!c)
                return 0;
        host_pci_address_format(a, addr);
        if (host_pci_address_equal(&c->pci, a))
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "PCI device '%s' is %s (%s); try again when that "
                                    "has finished", addr, change_busy(c), c->what);
        if (c->kind == CHANGE_SET_VFS)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "PCI device '%s' is a virtual function of node "
                                    "device '%s', which is busy changing its virtual functions (%s); try again when "
                                    "that has finished", addr, c->name, c->what);
        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "PCI device '%s' is in the IOMMU group of node device '%s', "
                            "which is %s (%s); try again when that has finished", addr, c->name, change_busy(c),
                            c->what);
}

/* The device's own busy check, for the changes made on the event loop. */
static int check_idle(NodeDevice *d, VbError *reterr) {
        return d->is_pci ? manager_nodedev_check_idle(d->manager, &d->pci, reterr) : 0;
}

static int require_pci(NodeDevice *d, const char *what, char addr[HOST_PCI_ADDRESS_MAX], VbError *reterr) {
        if (!d->is_pci)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Node device '%s' is not a PCI device: %s works on "
                                    "PCI devices only", d->name, what);
        host_pci_address_format(&d->pci, addr);
        return 0;
}

/* Logs a privileged change at notice. */
static int log_change(uid_t uid, const char *what, const char *name, int r, const VbError *e) {
        if (r < 0)
                log_notice("uid %u: %s of node device '%s' failed: %s", (unsigned) uid, what, name,
                           e && e->message ? e->message : strerror(-r));
        else
                log_notice("uid %u: %s of node device '%s': done%s.", (unsigned) uid, what, name,
                           r > 0 ? " (nothing to change)" : "");
        return r < 0 ? r : 0;
}

static NodeDevChange *change_free(NodeDevChange *c) {
        if (!c)
                return NULL;
        free(c->name);
        free(c->what);
        free(c->group);
        free(c->got);
        vb_error_free(&c->error);
        nodedev_scan_done(&c->scan);
        free(c);
        return NULL;
}

/* In the worker: every endpoint of the group to driver; on failure those detached go back. */
static int detach_group_work(NodeDevChange *c) {
        _cleanup_free_ bool *done = new0(bool, c->n_group);
        int r = 0;

        if (!done)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_group && r >= 0; i++) {
                r = host_pci_detach(&c->group[i], c->driver, c->group, c->n_group, NULL, &c->error);
                done[i] = r == 0;
        }
        if (r < 0)
                for (size_t i = c->n_group; i > 0; i--)
                        if (done[i - 1])
                                (void) host_pci_reattach(&c->group[i - 1], NULL, NULL);
        return r < 0 ? r : 0;
}

/* In the worker: the PF (read again: it may have changed since the registry was read) checked, its VF
 * configured through the PF's network interface (netlink; the fake tree's file). c->got: that interface. */
static int configure_vf_work(NodeDevChange *c) {
        _cleanup_(host_pci_device_done) HostPciDevice h = {};
        char addr[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(&c->pci, addr);
        r = host_pci_get(&c->pci, &h);
        if (r < 0)
                return vb_error_set(&c->error, VB_ERROR_NO_SUCH_DEVICE, "PCI device '%s' is gone", addr);
        if (!h.is_pf)
                return vb_error_set(&c->error, VB_ERROR_NOT_SUPPORTED,
                                    "Node device '%s' is not an SR-IOV physical function", c->name);
        if (c->count >= h.n_vfs)
                return vb_error_set(&c->error, VB_ERROR_INVALID_ARGUMENT,
                                    "Node device '%s' has %zu virtual functions; there is no VF %u", c->name,
                                    h.n_vfs, c->count);
        r = nodedev_pf_ifname(&c->pci, &c->got, &c->error);
        if (r < 0)
                return r;
        return host_net_vf_set(c->got, c->count, &c->vf_config, &c->error);
}

/* In the worker: the kernel's writes (unbind, driver_override, bind, reset, sriov_numvfs, which may each
 * take long on real hardware) and the re-reading of the host. Touches nothing but c. */
static void change_work(void *userdata) {
        NodeDevChange *c = userdata;

        switch (c->kind) {
        case CHANGE_SET_VFS:
                c->r = host_pci_set_num_vfs(&c->pci, c->count, &c->error);
                break;
        case CHANGE_DETACH:
                c->r = c->group ? detach_group_work(c) : host_pci_detach(&c->pci, c->driver, NULL, 0, NULL, &c->error);
                break;
        case CHANGE_REATTACH:
                c->r = host_pci_reattach(&c->pci, &c->got, &c->error);
                break;
        case CHANGE_RESET:
                c->r = host_pci_reset(&c->pci, &c->error);
                break;
        case CHANGE_CONFIGURE_VF:
                c->r = configure_vf_work(c);
                break;
        }
        c->scans = __atomic_load_n(&c->manager->nodedev.scans, __ATOMIC_SEQ_CST);
        c->scan_r = nodedev_host_enumerate(&c->scan);
}

/* On the event loop: logged, the registry updated from the thread's reading of the host (the VFs appear
 * or go), then the caller answered. */
static void change_done(void *userdata, bool cancelled) {
        NodeDevChange *c = userdata;
        Manager *m = c->manager;
        int r;

        for (NodeDevChange **p = &m->nodedev.changes; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (cancelled) /* never ran: nothing was written */
                c->r = vb_error_set(&c->error, VB_ERROR_OPERATION_FAILED, "The %s of node device '%s' was not begun: "
                                    "virtbusd is stopping", strna(c->what), c->name);
        if (cancelled && !m->nodedev.stopping) {
                log_notice("uid %u: %s of node device '%s' not begun: virtbusd is stopping.", (unsigned) c->uid,
                           strna(c->what), c->name);
                c->done(c->r, &c->error, c->userdata);
                change_free(c);
                return;
        }
        if (m->nodedev.stopping) {
                log_notice("uid %u: %s of node device '%s' %s while virtbusd stops.", (unsigned) c->uid, c->what,
                           c->name, c->r < 0 ? "failed" : "finished");
                change_free(c);
                return;
        }
        if (c->kind == CHANGE_REATTACH) {
                char addr[HOST_PCI_ADDRESS_MAX];

                host_pci_address_format(&c->pci, addr);
                free(c->what);
                if (asprintf(&c->what, "re-attach (%s back to %s)", addr, c->got ?: "the host") < 0)
                        c->what = NULL;
        } else if (c->kind == CHANGE_CONFIGURE_VF && c->got) {
                const uint8_t *a = c->vf_config.mac;
                char addr[HOST_PCI_ADDRESS_MAX], *what = NULL;

                host_pci_address_format(&c->pci, addr);
                if (asprintf(&what, "VF %u of %s (%s): MAC %02x:%02x:%02x:%02x:%02x:%02x VLAN %u", c->count,
                             c->got, addr, a[0], a[1], a[2], a[3], a[4], a[5], c->vf_config.vlan) >= 0) {
                        free(c->what);
                        c->what = what;
                }
        }
        r = log_change(c->uid, strna(c->what), c->name, c->r, &c->error);
        if (c->scan_r >= 0 && c->scans == m->nodedev.scans)
                (void) nodedev_scan_apply(m, &c->scan);
        else
                (void) manager_nodedev_scan(m);
        c->done(r, &c->error, c->userdata);
        change_free(c);
}

static void answered_already(int r, const VbError *e, void *userdata) {
}

void manager_nodedev_abandon(Manager *m) {
        for (NodeDevChange *c = m->nodedev.changes; c; c = c->next) {
                VbError e = VB_ERROR_NULL;
                int r;

                if (c->done == answered_already)
                        continue;
                r = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "virtbusd is stopping: the %s of node device '%s' "
                                 "was still running in the kernel, and may complete without virtbusd",
                                 strna(c->what), c->name);
                log_warning("uid %u: %s of node device '%s' still running while virtbusd exits.", (unsigned) c->uid,
                            strna(c->what), c->name);
                c->done(r, &e, c->userdata);
                vb_error_free(&e);
                /* The thread does not read these; the change stays its own until it ends. */
                c->done = answered_already;
                c->userdata = NULL;
        }
}

void manager_nodedev_stop(Manager *m) {
        m->nodedev.stop_requested = true;
        worker_cancel_queued(m->nodedev.worker);
}

unsigned manager_nodedev_changes(Manager *m) {
        unsigned n = 0;

        for (NodeDevChange *c = m->nodedev.changes; c; c = c->next)
                n++;
        return n;
}

/* Hands c (taken) to the worker; 0 when handed over. */
static int change_submit(Manager *m, NodeDevChange *c, VbError *reterr) {
        NodeDevState *s = &m->nodedev;
        int r;

        if (s->stop_requested) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The %s of node device '%s' cannot begin: virtbusd "
                                 "is stopping", strna(c->what), c->name);
                change_free(c);
                return r;
        }
        if (!s->worker) {
                r = worker_new(m->event, 1, CHANGES_QUEUE_MAX, 0, &s->worker);
                if (r < 0) {
                        change_free(c);
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start a thread for host "
                                            "changes: %s", strerror(-r));
                }
        }
        r = worker_submit(s->worker, change_work, change_done, c);
        if (r < 0) {
                change_free(c);
                if (r == -EAGAIN)
                        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Too many changes of host devices are "
                                            "waiting; try again later");
                return r;
        }
        c->next = s->changes;
        s->changes = c;
        log_debug("uid %u: %s of node device '%s' handed to a thread.", (unsigned) c->uid, c->what, c->name);
        return 0;
}

/* A new change of d (a PCI device, idle), what it is for the log and the busy answers. */
static int change_new(NodeDevice *d, ChangeKind kind, const char *verb, uid_t uid, NodeDevDone done, void *userdata,
                      NodeDevChange **ret, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c;
        int r;

        r = require_pci(d, verb, addr, reterr);
        if (r >= 0)
                r = check_idle(d, reterr);
        if (r < 0)
                return r;
        c = new0(NodeDevChange, 1);
        if (!c)
                return -ENOMEM;
        *c = (NodeDevChange) { .manager = d->manager, .kind = kind, .pci = d->pci, .uid = uid, .done = done,
                               .userdata = userdata, .error = VB_ERROR_NULL };
        if (!(c->name = strdup(d->name))) {
                change_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int change_describe(NodeDevChange *c, const char *format, ...) _printf_(2, 3);
static int change_describe(NodeDevChange *c, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&c->what, format, ap);
        va_end(ap);
        if (r < 0) {
                c->what = NULL;
                change_free(c);
                return -ENOMEM;
        }
        return 0;
}

int manager_nodedev_set_vfs(Manager *m, NodeDevice *d, unsigned count, uid_t uid, NodeDevDone done, void *userdata,
                            VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c;
        int r;

        r = change_new(d, CHANGE_SET_VFS, "SetVirtualFunctions", uid, done, userdata, &c, reterr);
        if (r < 0)
                return r;
        c->count = count;
        host_pci_address_format(&d->pci, addr);
        r = change_describe(c, "sriov_numvfs=%u (%s)", count, addr);
        return r < 0 ? r : change_submit(m, c, reterr);
}

/* The endpoints of d's IOMMU group, each idle (c->group; NULL when the group cannot be read: the
 * thread's detach of d alone then says why). */
static int change_take_group(NodeDevChange *c, VbError *reterr) {
        int r;

        if (host_pci_group_endpoints(&c->pci, &c->group, &c->n_group) < 0) {
                c->group = NULL;
                c->n_group = 0;
                return 0;
        }
        for (size_t i = 0; i < c->n_group; i++) {
                r = manager_nodedev_check_idle(c->manager, &c->group[i], reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

int manager_nodedev_detach(Manager *m, NodeDevice *d, const char *driver, bool whole_group, uid_t uid,
                           NodeDevDone done, void *userdata, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c;
        int r;

        if (isempty(driver) || streq(driver, "vfio"))
                driver = HOST_PCI_VFIO_DRIVER;
        if (!streq(driver, HOST_PCI_VFIO_DRIVER))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Driver '%s' is not supported for detaching "
                                    "(expected 'vfio' or 'vfio-pci')", driver);
        r = change_new(d, CHANGE_DETACH, "Detach", uid, done, userdata, &c, reterr);
        if (r < 0)
                return r;
        c->driver = HOST_PCI_VFIO_DRIVER;
        if (whole_group) {
                r = change_take_group(c, reterr);
                if (r < 0) {
                        change_free(c);
                        return r;
                }
        }
        host_pci_address_format(&d->pci, addr);
        r = change_describe(c, "detach (%s%s to %s)", addr, whole_group ? " and its IOMMU group" : "", c->driver);
        return r < 0 ? r : change_submit(m, c, reterr);
}

int manager_nodedev_reattach(Manager *m, NodeDevice *d, uid_t uid, NodeDevDone done, void *userdata,
                             VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c;
        int r;

        r = change_new(d, CHANGE_REATTACH, "ReAttach", uid, done, userdata, &c, reterr);
        if (r < 0)
                return r;
        host_pci_address_format(&d->pci, addr);
        r = change_describe(c, "re-attach (%s)", addr); /* the driver it goes back to is known afterwards */
        return r < 0 ? r : change_submit(m, c, reterr);
}

int manager_nodedev_reset(Manager *m, NodeDevice *d, uid_t uid, NodeDevDone done, void *userdata, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        NodeDevChange *c;
        int r;

        r = change_new(d, CHANGE_RESET, "Reset", uid, done, userdata, &c, reterr);
        if (r < 0)
                return r;
        host_pci_address_format(&d->pci, addr);
        r = change_describe(c, "reset (%s)", addr);
        return r < 0 ? r : change_submit(m, c, reterr);
}

/* The first network interface of a PF. */
int nodedev_pf_ifname(const HostPciAddress *pf, char **ret, VbError *reterr) {
        char **names = NULL;
        char addr[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(pf, addr);
        r = host_pci_net_names(pf, &names);
        if (r < 0)
                return r;
        if (!names[0]) {
                free(names);
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Physical function '%s' has no network interface to configure its VFs through",
                                    addr);
        }
        *ret = names[0];
        for (size_t i = 1; names[i]; i++)
                free(names[i]);
        free(names);
        return 0;
}

int manager_nodedev_configure_vf(Manager *m, NodeDevice *d, unsigned vf, const char *mac, unsigned vlan, uid_t uid,
                                 NodeDevDone done, void *userdata, VbError *reterr) {
        char addr[HOST_PCI_ADDRESS_MAX];
        HostVfConfig cfg = { .vlan = (uint16_t) vlan };
        NodeDevChange *c;
        unsigned b[6];
        int r, n = -1;

        if (sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) != 6 ||
            n != (int) strlen(mac) || (b[0] & 1))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Invalid MAC address '%s' (expected a unicast address like 52:54:00:12:34:56)", mac);
        if (vlan > 4094)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Invalid VLAN %u (expected 0 to 4094)", vlan);
        for (size_t i = 0; i < 6; i++)
                cfg.mac[i] = (uint8_t) b[i];
        r = change_new(d, CHANGE_CONFIGURE_VF, "ConfigureVirtualFunction", uid, done, userdata, &c, reterr);
        if (r < 0)
                return r;
        c->count = vf;
        c->vf_config = cfg;
        host_pci_address_format(&d->pci, addr);
        /* The PF's interface is known once the thread found it (change_done names it). */
        r = change_describe(c, "VF %u of %s: MAC %s VLAN %u", vf, addr, mac, vlan);
        return r < 0 ? r : change_submit(m, c, reterr);
}
