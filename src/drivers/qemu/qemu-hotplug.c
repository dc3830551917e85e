/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device hotplug on a running QEMU: NICs (netdev_add + device_add), disks (blockdev-add + device_add),
 * host PCI functions (device_add vfio-pci, qemu-hostdev.c), removal (device_del, completed by the
 * DEVICE_DELETED event naming the device) and in-place changes. Each is a list of QMP commands
 * (qemu-sequence.h) that never waits on the event loop: the op answers through its completion, and a
 * list that fails undoes what its earlier steps added; the live definition changes only on success. */
#include <stdio.h>
#include <unistd.h>

#include "conf/domain-access.h"
#include "conf/domain-devices.h"
#include "drivers/driver.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-hostdev.h"
#include "drivers/qemu/qemu-sequence.h"
#include "host/tap.h"
#include "util/log.h"

/* "first,key=value,key=value" (QEMU's option syntax, ',,' escaping a comma) as a JSON object with
 * first_key: first (first_key NULL: the first is a key=value too). With typed, on/off become booleans
 * (QAPI commands want them so). */
static struct json_object *opts_to_json(const char *opts, const char *first_key, bool typed) {
        struct json_object *o = json_object_new_object();
        _cleanup_free_ char *buf = malloc(strlen(opts) + 1);
        size_t n = 0;
        bool first = true;

        if (!o || !buf) {
                json_object_put(o);
                return NULL;
        }
        for (const char *p = opts;; p++) {
                if (*p == ',' && p[1] == ',') {
                        buf[n++] = ',';
                        p++;
                        continue;
                }
                if (*p && *p != ',') {
                        buf[n++] = *p;
                        continue;
                }
                buf[n] = 0;
                if (first && first_key)
                        json_object_object_add(o, first_key, json_object_new_string(buf));
                else {
                        char *eq = strchr(buf, '=');
                        if (eq) {
                                *eq = 0;
                                if (typed && (streq(eq + 1, "on") || streq(eq + 1, "off")))
                                        json_object_object_add(o, buf, json_object_new_boolean(streq(eq + 1, "on")));
                                else
                                        json_object_object_add(o, buf, json_object_new_string(eq + 1));
                        }
                }
                first = false;
                n = 0;
                if (!*p)
                        break;
        }
        return o;
}

/* dev as the live definition shows it: with the tap or macvtap it got as <target dev=>. */
static int device_as_live(const DeviceDef *dev, const char *tap_ifname, DeviceDef **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        if (tap_ifname) {
                ConfNode *t = conf_node_child(n, "target") ?: conf_node_add(n, "target");
                if (!t || conf_node_set_attr(t, "dev", tap_ifname) < 0)
                        return -ENOMEM;
                conf_node_sort(n);
        }
        return device_def_parse_node(TAKE_PTR(n), ret, NULL);
}

/* Appends dev (taken) to the live definition. */
static int live_append(QemuVm *vm, DeviceDef *dev) {
        if (!GREEDY_REALLOC(vm->live->devices, vm->live->n_devices_allocated, vm->live->n_devices + 1)) {
                device_def_free(dev);
                return -ENOMEM;
        }
        vm->live->devices[vm->live->n_devices++] = dev;
        return 0;
}

static ssize_t live_find(QemuVm *vm, const char *alias) {
        for (size_t i = 0; i < vm->live->n_devices; i++)
                if (streq_ptr(vm->live->devices[i]->alias, alias))
                        return (ssize_t) i;
        return -1;
}

/* A hot-plug call on its way to QEMU (a command list, qemu-sequence.h): what changes in the live
 * definition once QEMU answered, what goes when it failed, and who waits. */
typedef struct HotplugCall {
        QemuDriver *q;
        char uuid[37];
        DeviceDef *dev;     /* attach: appended to the live definition; update: replaces its namesake */
        char *ifname;       /* the interface's tap or macvtap, recorded as <target dev=> */
        char *macvtap;      /* made for this call: deleted when it fails */
        unsigned *new_sets; /* update: the sets of the new medium, 0-terminated */
        size_t idx_live[3]; /* attach without an address: the live queries' steps */
        size_t idx_fdsets;  /* update: query-fdsets' step (SIZE_MAX: none) */
        bool query_live;
        bool medium_changed; /* update: QEMU has the new medium; the old one's nodes and sets are going */
        VbDriverDone done;
        void *userdata;
} HotplugCall;

static HotplugCall *hotplug_call_free(HotplugCall *c) {
        if (!c)
                return NULL;
        device_def_free(c->dev);
        free(c->ifname);
        free(c->macvtap);
        free(c->new_sets);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(HotplugCall *, hotplug_call_free);

static HotplugCall *hotplug_call_new(QemuDriver *q, const char *uuid, const DeviceDef *dev, VbDriverDone done,
                                     void *userdata) {
        _cleanup_(hotplug_call_freep) HotplugCall *c = new0(HotplugCall, 1);

        if (!c)
                return NULL;
        c->q = q;
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        c->idx_fdsets = SIZE_MAX;
        c->done = done;
        c->userdata = userdata;
        if (dev && device_def_copy(dev, &c->dev) < 0)
                return NULL;
        return TAKE_PTR(c);
}

/* { key: prefix alias suffix } */
static struct json_object *id_args(const char *key, const char *prefix, const char *alias, const char *suffix) {
        _cleanup_free_ char *id = NULL;
        struct json_object *args = json_object_new_object();

        if (!args || asprintf(&id, "%s%s%s", prefix, alias, suffix) < 0) {
                json_object_put(args);
                return NULL;
        }
        json_object_object_add(args, key, json_object_new_string(id));
        return args;
}

static struct json_object *fdset_args(unsigned fdset) {
        struct json_object *args = json_object_new_object();

        if (args)
                json_object_object_add(args, "fdset-id", json_object_new_int((int) fdset));
        return args;
}

/* Adds a step and the command that undoes it. */
static void add_undoable(QemuSeq *seq, const char *what, const char *command, struct json_object *args, int fd,
                         const char *undo, struct json_object *undo_args) {
        size_t i = fd >= 0 ? qemu_seq_add_fd(seq, what, command, args, fd) : qemu_seq_add(seq, what, command, args);

        if (undo)
                qemu_seq_set_undo(seq, i, undo, undo_args);
        else
                json_object_put(undo_args);
}

/* device_add with id = alias, undone by device_del. */
static void add_device_step(QemuSeq *seq, const char *what, struct json_object *args, const char *alias) {
        add_undoable(seq, what, "device_add", args, -1, "device_del", id_args("id", "", alias, ""));
}

/* A tap backend: virtbusd makes the tap (QEMU may not), sets it up in its bridge and hands it over. */
static int prepare_tap(QemuVm *vm, const ConfNode *n, const char *bridge, char **ret_name, int *ret_fd,
                       VbError *reterr) {
        _cleanup_free_ char *name = qemu_interface_tap_name(n);
        int fd, r;

        if (!name)
                return -ENOMEM;
        r = host_tap_create(name, &fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create tap '%s': %s", name,
                                    strerror(-r));
        /* Ours as long as fd is open: closing it (or QEMU closing its copy) makes it go. */
        r = host_tap_attach(name, bridge);
        if (r < 0) {
                close(fd);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to set up tap '%s'%s%s: %s", name,
                                    bridge ? " on bridge " : "", strempty(bridge), strerror(-r));
        }
        log_notice("Domain %s: tap '%s' up%s%s.", vm->uuid, name, bridge ? " in bridge " : "", strempty(bridge));
        *ret_name = TAKE_PTR(name);
        *ret_fd = fd;
        return 0;
}

/* The steps of an interface: its tap or macvtap (made here) handed over by getfd, netdev_add,
 * device_add. */
static int seq_interface(QemuVm *vm, HotplugCall *c, QemuSeq *seq, VbError *reterr) {
        const DeviceDef *dev = c->dev;
        _cleanup_free_ char *netdev = NULL, *device = NULL, *fdname = NULL;
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *lower, *mode, *want;
        QemuTap tap = {};
        int fd = -1, r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        if (qemu_interface_direct(n, &lower, &mode, &want) > 0 || qemu_interface_is_tap(n))
                if (asprintf(&fdname, "fd-host%s", dev->alias) < 0)
                        return -ENOMEM;
        r = qemu_command_interface_opts(dev, dev->alias, fdname, domain_machine_is_q35(vm->live->os.machine), &netdev,
                                        &device, &tap, reterr);
        if (r < 0)
                return r;
        if (qemu_interface_direct(n, &lower, &mode, &want) > 0) {
                r = qemu_vm_macvtap_create(vm, dev, &c->macvtap, &fd, reterr);
                if (r >= 0)
                        c->ifname = strdup(c->macvtap);
        } else if (qemu_interface_is_tap(n))
                r = prepare_tap(vm, n, tap.bridge, &c->ifname, &fd, reterr);
        free(tap.ifname);
        free(tap.bridge);
        if (r < 0)
                return r;
        if (fd >= 0) {
                struct json_object *args = json_object_new_object();

                json_object_object_add(args, "fdname", json_object_new_string(fdname));
                add_undoable(seq, "pass the network backend's descriptor to QEMU", "getfd", args, fd, "closefd",
                             id_args("fdname", "", fdname, ""));
                close(fd); /* the step keeps a copy until it is sent */
        }
        add_undoable(seq, "add the network backend", "netdev_add", opts_to_json(netdev, "type", false), -1,
                     "netdev_del", id_args("id", "host", dev->alias, ""));
        add_device_step(seq, "add the network device", opts_to_json(device, "driver", false), dev->alias);
        return 0;
}

/* Opens the host files of dev with the rights access gives; the steps hand them to QEMU (add-fd, undone
 * by remove-fd). ret_sets (may be NULL): the sets, 0-terminated. */
static int seq_send_files(QemuVm *vm, QemuSeq *seq, const DeviceDef *dev, const DomainAccess *access,
                          QemuFiles *ret, unsigned **ret_sets, VbError *reterr) {
        _cleanup_free_ unsigned *sets = NULL;
        QemuFiles f = {};
        size_t n_sets = 0;
        int r;

        r = qemu_files_open_device(dev, access, vm->next_fdset ?: 1, &f, reterr);
        if (r < 0)
                return r;
        sets = new0(unsigned, f.n + 1);
        if (!sets) {
                qemu_files_done(&f);
                return -ENOMEM;
        }
        vm->next_fdset = f.next_fdset;
        for (size_t i = 0; i < f.n; i++) {
                bool first = true;

                for (size_t k = 0; k < 2 && f.v[i].fdset > 0; k++) {
                        struct json_object *args;

                        if (f.v[i].fds[k] < 0)
                                continue;
                        args = fdset_args(f.v[i].fdset);
                        json_object_object_add(args, "opaque", json_object_new_string(dev->alias));
                        add_undoable(seq, "pass a file to QEMU", "add-fd", args, f.v[i].fds[k],
                                     first ? "remove-fd" : NULL, first ? fdset_args(f.v[i].fdset) : NULL);
                        if (first)
                                sets[n_sets++] = f.v[i].fdset;
                        first = false;
                }
        }
        *ret = f;
        if (ret_sets)
                *ret_sets = TAKE_PTR(sets);
        return 0;
}

/* A disk's steps: its image and those of its <backingStore> chain handed over as descriptors (add-fd), their
 * nodes added from the bottom of the chain up (blockdev-add, each undone by blockdev-del), as a start would
 * give them (qemu_command_disk), then device_add. */
static int seq_disk(QemuVm *vm, HotplugCall *c, QemuSeq *seq, const DomainAccess *access, VbError *reterr) {
        const DeviceDef *dev = c->dev;
        _cleanup_(qemu_disk_opts_done) QemuDiskOpts o = {};
        _cleanup_(qemu_files_done) QemuFiles files = {};
        int r;

        if (device_disk_get_source(dev)) {
                r = seq_send_files(vm, seq, dev, access, &files, NULL, reterr);
                if (r < 0)
                        return r;
        }
        r = qemu_command_disk(dev, dev->alias, &files, 0, vm->live->os.machine, &o, reterr);
        if (r < 0)
                return r;
        for (size_t k = 0; k < o.n_blockdev; k++) {
                struct json_object *args = opts_to_json(o.blockdev[k], NULL, true);
                const char *node = qemu_json_string(args, "node-name");

                if (!args || !node) {
                        json_object_put(args);
                        return -ENOMEM;
                }
                add_undoable(seq, k % 2 == 0 ? "open a disk image" : "open a disk image's format", "blockdev-add", args,
                             -1, "blockdev-del", id_args("node-name", "", node, ""));
        }
        add_device_step(seq, "add the disk", opts_to_json(o.device, "driver", false), dev->alias);
        return 0;
}

/* A <hostdev type='pci'> or an <interface type='hostdev'> on a VF: core bound it to vfio-pci (and set the
 * VF's MAC) before; QEMU opens it through VFIO. 0 if dev is not a host PCI device. */
static int seq_hostdev(QemuVm *vm, HotplugCall *c, QemuSeq *seq, VbError *reterr) {
        struct json_object *args = NULL;
        int r;

        r = qemu_hostdev_device_add_args(c->dev, c->dev->alias, domain_machine_is_q35(vm->live->os.machine), &args,
                                         reterr);
        if (r <= 0)
                return r;
        add_device_step(seq, "add the host device", args, c->dev->alias);
        return 1;
}

static void on_attached(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_(hotplug_call_freep) HotplugCall *c = userdata;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0 && vm) {
                DeviceDef *live = NULL;

                r = device_as_live(c->dev, c->ifname, &live);
                if (r >= 0)
                        r = live_append(vm, live);
                if (r < 0)
                        e = NULL;
                else {
                        /* The guest address QEMU chose, if core left it open. */
                        if (c->query_live)
                                (void) qemu_vm_seq_apply_live(vm, seq, c->idx_live, NULL, 0);
                        (void) qemu_vm_save(vm);
                        log_debug("Domain %s: device '%s' added.", vm->uuid, c->dev->alias);
                }
        }
        if (r < 0 && vm && c->macvtap)
                qemu_vm_macvtap_delete(vm, c->macvtap);
        if (vm)
                qemu_vm_plug_remove(vm);
        if (r < 0 && !e)
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Failed to add device '%s': %s", c->dev->alias,
                                 strerror(-r));
        c->done(r, e ?: &e2, c->userdata);
        vb_error_free(&e2);
}

/* Runs seq for c (both taken); returns 0 (done follows) or < 0 (nothing changed; done is not called). */
static int run_call(QemuVm *vm, QemuSeq *seq, HotplugCall *c, QemuSeqDone done, VbError *reterr) {
        int r;

        if (qemu_seq_n_steps(seq) == 0) {
                qemu_seq_free(seq);
                hotplug_call_free(c);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Nothing to ask QEMU");
        }
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), done, c, reterr);
        if (r < 0) {
                if (c->macvtap)
                        qemu_vm_macvtap_delete(vm, c->macvtap);
                hotplug_call_free(c);
        }
        return r;
}

static int plug_record(QemuVm *vm, const HotplugCall *c) {
        _cleanup_(device_def_freep) DeviceDef *live = NULL;
        _cleanup_free_ char *xml = NULL;
        int r;

        r = device_as_live(c->dev, c->ifname, &live);
        if (r >= 0)
                r = device_def_format(live, DEVICE_FORMAT_SECURE, &xml);
        if (r >= 0)
                r = qemu_vm_plug_write(vm, xml);
        return r;
}

int qemu_attach_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbDriverDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(hotplug_call_freep) HotplugCall *c = NULL;
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        int r;

        if (!vm)
                return -EBUSY;
        if (!dev->alias)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The device to attach has no alias");
        if (live_find(vm, dev->alias) >= 0)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain %s already has a device '%s'", uuid,
                                    dev->alias);
        /* On the i440fx board the root bus hot-plugs through ACPI only; QEMU's own answer names no cause. */
        if (dev->address.type == DEVICE_ADDRESS_PCI && dev->address.pci.bus == 0 &&
            !domain_machine_is_q35(vm->live->os.machine) && !vm->live->features[DOMAIN_FEATURE_ACPI])
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Domain %s runs without ACPI, and its PCI bus can hot-plug devices only "
                                    "through ACPI: add <features><acpi/></features> to the definition (it takes "
                                    "effect at the next start)", domain_def_get_name(vm->live));
        c = hotplug_call_new(q, uuid, dev, done, userdata);
        seq = qemu_seq_new(vm);
        if (!c || !seq)
                return -ENOMEM;
        switch (dev->kind) {
        case DEVICE_INTERFACE:
                r = seq_hostdev(vm, c, seq, reterr);
                if (r == 0)
                        r = seq_interface(vm, c, seq, reterr);
                break;
        case DEVICE_DISK:
                r = seq_disk(vm, c, seq, access, reterr);
                break;
        case DEVICE_HOSTDEV:
                r = qemu_hostdev_is_vfio(dev, reterr);
                if (r > 0)
                        r = seq_hostdev(vm, c, seq, reterr);
                else if (r == 0)
                        r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "This host device is not supported by "
                                         "the qemu driver");
                break;
        default:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver cannot hot-plug devices of kind '%s' yet",
                                    device_def_kind_name(dev));
        }
        if (r < 0) {
                if (c->macvtap)
                        qemu_vm_macvtap_delete(vm, c->macvtap);
                return r;
        }
        if (dev->address.type != DEVICE_ADDRESS_PCI) {
                qemu_vm_seq_add_live_queries(vm, seq, false, c->idx_live);
                c->query_live = true;
        }
        /* Recorded ahead: a virtbusd stopped before the answer finishes or undoes it when it comes back. */
        r = plug_record(vm, c);
        if (r < 0) {
                if (c->macvtap)
                        qemu_vm_macvtap_delete(vm, c->macvtap);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the device to add: %s",
                                    strerror(-r));
        }
        r = run_call(vm, TAKE_PTR(seq), TAKE_PTR(c), on_attached, reterr);
        if (r < 0)
                qemu_vm_plug_remove(vm);
        return r < 0 ? r : 0;
}

/* q35's pcie.0 takes neither hot-plug nor hot-unplug (QEMU: "Bus 'pcie.0' does not support hotplugging"). */
static bool on_q35_root_bus(QemuVm *vm, const DeviceDef *dev) {
        const DeviceAddress *a = &dev->address;

        return domain_machine_is_q35(vm->live->os.machine) && a->type == DEVICE_ADDRESS_PCI && a->pci.bus == 0 &&
               a->pci.slot != UINT32_MAX && (a->pci.domain == 0 || a->pci.domain == UINT32_MAX);
}

static void on_detach_asked(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_(hotplug_call_freep) HotplugCall *c = userdata;

        c->done(r, e, c->userdata);
}

int qemu_detach_device(VbDriver *drv, const char *uuid, const char *alias, VbDriverDone done, void *userdata,
                       VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        HotplugCall *c;
        ssize_t i;
        DeviceKind kind;
        int r;

        if (!vm)
                return -EBUSY;
        i = live_find(vm, alias);
        if (i < 0)
                return 1; /* gone already */
        kind = vm->live->devices[i]->kind;
        if (kind != DEVICE_INTERFACE && kind != DEVICE_DISK && kind != DEVICE_HOSTDEV)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver cannot hot-unplug devices of kind '%s' yet",
                                    device_kind_to_string(kind));
        if (on_q35_root_bus(vm, vm->live->devices[i]))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Device '%s' sits on the root bus 'pcie.0' of this q35 machine (an integrated "
                                    "device), from which QEMU cannot unplug devices. Devices to detach live must "
                                    "sit in a pcie-root-port: attach them to the running domain, or give them "
                                    "<address type='pci' bus='N' slot='0'/> naming <controller type='pci' "
                                    "model='pcie-root-port' index='N'/>",
                                    alias);
        c = hotplug_call_new(q, uuid, NULL, done, userdata);
        seq = qemu_seq_new(vm);
        if (!c || !seq) {
                hotplug_call_free(c);
                return -ENOMEM;
        }
        (void) qemu_seq_add(seq, "ask the guest to release the device", "device_del", id_args("id", "", alias, ""));
        r = run_call(vm, TAKE_PTR(seq), c, on_detach_asked, reterr);
        return r < 0 ? r : 0;
}

/* The block nodes of disk dev (alias) in the order they can go: its own image's format and storage nodes,
 * then those of each image below it down its <backingStore> chain (qemu_disk_node_prefix), NULL-terminated
 * (to free with disk_nodes_free). */
static void disk_nodes_free(char **v);

static char **disk_nodes(const DeviceDef *dev, const char *alias) {
        static const char * const kinds[] = { "format", "storage" };
        int depth = qemu_disk_depth(dev);
        char **v;
        size_t n = 0;

        if (depth < 0)
                return NULL;
        v = new0(char *, 2 * ((size_t) depth + 1) + 1);
        for (int k = depth; v && k >= 0; k--) {
                _cleanup_free_ char *prefix = NULL;

                if (qemu_disk_node_prefix(alias, (size_t) k, &prefix) < 0) {
                        disk_nodes_free(v);
                        return NULL;
                }
                for (size_t m = 0; m < ELEMENTSOF(kinds); m++)
                        if (asprintf(&v[n], "%s-%s", prefix, kinds[m]) < 0) {
                                v[n] = NULL;
                                disk_nodes_free(v);
                                return NULL;
                        } else
                                n++;
        }
        return v;
}

static void disk_nodes_free(char **v) {
        for (size_t k = 0; v && v[k]; k++)
                free(v[k]);
        free(v);
}

static inline void disk_nodes_freep(char ***v) {
        disk_nodes_free(*v);
}

/* Optional blockdev-del steps of every node of disk dev (disk_nodes). */
static void add_disk_nodes_del(QemuSeq *seq, const DeviceDef *dev, const char *alias) {
        _cleanup_(disk_nodes_freep) char **nodes = disk_nodes(dev, alias);

        for (size_t k = 0; nodes && nodes[k]; k++)
                (void) qemu_seq_add_optional(seq, "blockdev-del", id_args("node-name", "", nodes[k], ""));
}

/* After the guest released a device: its backend goes too (netdev_del; blockdev-del and the descriptor
 * sets QEMU holds for it, whose "opaque" names it), then it leaves the live definition and DeviceRemoved
 * goes out, so that by then the image or the macvtap is free. */
typedef struct ReleaseCall {
        QemuDriver *q;
        char uuid[37];
        char *alias;
        size_t idx_fdsets;
} ReleaseCall;

static ReleaseCall *release_call_free(ReleaseCall *c) {
        if (c) {
                free(c->alias);
                free(c);
        }
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ReleaseCall *, release_call_free);

static void release_finish(ReleaseCall *c, int r, const VbError *e) {
        const VbDriverEvents *ev = &c->q->drv->cfg.events;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);
        ssize_t i;

        /* QEMU went away meanwhile (the only failure of a list of optional steps, but for a hung QEMU):
         * the domain's stop tells the rest. */
        if (!vm || vm->destroying || (r < 0 && (!e || e->code != VB_ERROR_TIMEOUT)))
                return;
        i = live_find(vm, c->alias);
        if (i < 0)
                return;
        if (vm->live->devices[i]->kind == DEVICE_INTERFACE) {
                _cleanup_(conf_node_freep) ConfNode *n = NULL;
                const char *lower, *mode, *name;

                if (qemu_device_node(vm->live->devices[i], &n) >= 0 &&
                    qemu_interface_direct(n, &lower, &mode, &name) > 0 && name)
                        qemu_vm_macvtap_delete(vm, name);
        }
        device_def_free(vm->live->devices[i]);
        memmove(vm->live->devices + i, vm->live->devices + i + 1,
                (vm->live->n_devices - (size_t) i - 1) * sizeof(DeviceDef *));
        vm->live->n_devices--;
        (void) qemu_vm_save(vm);
        log_debug("Domain %s: device '%s' removed.", vm->uuid, c->alias);
        if (ev->device_removed)
                ev->device_removed(ev->userdata, vm->uuid, c->alias);
}

static void on_sets_removed(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_(release_call_freep) ReleaseCall *c = userdata;

        release_finish(c, r, e);
}

/* The sets in query-fdsets' answer whose descriptors say they are alias's, 0-terminated (to free). */
static unsigned *fdsets_of(struct json_object *sets, const char *alias) {
        size_t len = sets && json_object_is_type(sets, json_type_array) ? json_object_array_length(sets) : 0, n = 0;
        unsigned *ids = new0(unsigned, len + 1);

        for (size_t i = 0; ids && i < len; i++) {
                struct json_object *set = json_object_array_get_idx(sets, i), *fds = qemu_json_get(set, "fds");
                for (size_t k = 0; fds && k < json_object_array_length(fds); k++)
                        if (streq_ptr(qemu_json_string(json_object_array_get_idx(fds, k), "opaque"), alias)) {
                                ids[n++] = (unsigned) json_object_get_int(qemu_json_get(set, "fdset-id"));
                                break;
                        }
        }
        return ids;
}

static bool set_listed(const unsigned *ids, unsigned id) {
        for (size_t i = 0; ids && ids[i]; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static void on_backend_released(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_(release_call_freep) ReleaseCall *c = userdata;
        _cleanup_free_ unsigned *sets = NULL;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);
        QemuSeq *next;

        if (r >= 0 && vm && c->idx_fdsets != SIZE_MAX)
                sets = fdsets_of(qemu_seq_reply(seq, c->idx_fdsets), c->alias);
        if (!sets || !sets[0] || !(next = qemu_seq_new(vm))) {
                release_finish(c, r, e);
                return;
        }
        for (size_t i = 0; sets[i]; i++)
                (void) qemu_seq_add_optional(next, "remove-fd", fdset_args(sets[i]));
        if (qemu_seq_run(next, qemu_vm_command_timeout(vm), on_sets_removed, c, NULL) >= 0)
                TAKE_PTR(c);
        else
                release_finish(c, 0, NULL);
}

void qemu_driver_device_deleted(QemuDriver *q, QemuVm *vm, const char *alias) {
        _cleanup_(release_call_freep) ReleaseCall *c = NULL;
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        const DeviceDef *dev;
        ssize_t i;

        if (!alias)
                return; /* a sub-object (".../virtio-backend"); the device's own event follows */
        i = live_find(vm, alias);
        if (i < 0)
                return;
        dev = vm->live->devices[i];
        c = new0(ReleaseCall, 1);
        seq = qemu_seq_new(vm);
        if (!c || !seq || !(c->alias = strdup(alias)))
                return;
        c->q = q;
        snprintf(c->uuid, sizeof c->uuid, "%s", vm->uuid);
        c->idx_fdsets = SIZE_MAX;
        if (dev->kind == DEVICE_INTERFACE && qemu_hostdev_is_vfio(dev, NULL) <= 0)
                (void) qemu_seq_add_optional(seq, "netdev_del", id_args("id", "host", alias, ""));
        else if (dev->kind == DEVICE_DISK) {
                add_disk_nodes_del(seq, dev, alias);
                c->idx_fdsets = qemu_seq_add_optional(seq, "query-fdsets", NULL);
        }
        /* A VF has no backend in QEMU (core gives the function back to the host). */
        if (qemu_seq_n_steps(seq) == 0) {
                release_finish(c, 0, NULL);
                return;
        }
        if (qemu_seq_run(TAKE_PTR(seq), qemu_vm_command_timeout(vm), on_backend_released, c, NULL) >= 0)
                TAKE_PTR(c);
        else
                release_finish(c, 0, NULL);
}

/* Update --------------------------------------------------------------------------------------------- */

/* The medium in before: its named nodes from the start and its sets go, before the caller hears that the
 * change is done (the image is free then). A list of optional steps; 0 if there is none. */
static int release_old_medium(QemuVm *vm, QemuSeq *seq, HotplugCall *c, QemuSeqDone done) {
        const char *alias = c->dev->alias;
        _cleanup_free_ unsigned *old = fdsets_of(qemu_seq_reply(seq, c->idx_fdsets), alias);
        _cleanup_(qemu_seq_freep) QemuSeq *next = qemu_seq_new(vm);

        if (!next)
                return 0;
        (void) qemu_seq_add_optional(next, "blockdev-del", id_args("node-name", "", alias, "-format"));
        (void) qemu_seq_add_optional(next, "blockdev-del", id_args("node-name", "", alias, "-storage"));
        for (size_t k = 0; old && old[k]; k++)
                if (!set_listed(c->new_sets, old[k]))
                        (void) qemu_seq_add_optional(next, "remove-fd", fdset_args(old[k]));
        c->idx_fdsets = SIZE_MAX;
        c->medium_changed = true;
        return qemu_seq_run(TAKE_PTR(next), qemu_vm_command_timeout(vm), done, c, NULL) >= 0;
}

/* An update recorded ahead (plug_record_update): "update N" (N the first descriptor set it hands QEMU, 0 if
 * none), then the device as the live definition is to show it. */
static int plug_record_update(QemuVm *vm, const HotplugCall *c) {
        _cleanup_free_ char *xml = NULL, *record = NULL;
        int r;

        r = device_def_format(c->dev, DEVICE_FORMAT_SECURE, &xml);
        if (r < 0)
                return r;
        if (asprintf(&record, "update %u\n%s", c->new_sets ? c->new_sets[0] : 0, xml) < 0)
                return -ENOMEM;
        return qemu_vm_plug_write(vm, record);
}

static void on_updated(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_(hotplug_call_freep) HotplugCall *c = userdata;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);
        ssize_t i = vm ? live_find(vm, c->dev->alias) : -1;

        if (c->medium_changed) {
                /* Only optional steps after the change itself: it stands whatever they said. */
                r = 0;
                e = NULL;
        }
        if (r >= 0 && i >= 0 && c->idx_fdsets != SIZE_MAX && release_old_medium(vm, seq, c, on_updated) > 0) {
                TAKE_PTR(c); /* on_updated again, once they are gone */
                return;
        }
        if (r >= 0 && i >= 0) {
                /* Keep what QEMU assigned (the address) if the update didn't say. */
                if (c->dev->address.type == DEVICE_ADDRESS_NONE) {
                        c->dev->address = vm->live->devices[i]->address;
                        vm->live->devices[i]->address = (DeviceAddress) { .type = DEVICE_ADDRESS_NONE };
                }
                device_def_free(vm->live->devices[i]);
                vm->live->devices[i] = TAKE_PTR(c->dev);
                (void) qemu_vm_save(vm);
        }
        if (vm)
                qemu_vm_plug_remove(vm);
        if (c->done)
                c->done(r, e, c->userdata);
}

static int seq_link(HotplugCall *c, QemuSeq *seq, const ConfNode *n) {
        const char *link = qemu_node_attr(n, "link", "state");
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "name", json_object_new_string(c->dev->alias));
        json_object_object_add(args, "up", json_object_new_boolean(!link || !streq(link, "down")));
        (void) qemu_seq_add(seq, "set the link state", "set_link", args);
        return 0;
}

/* A cdrom or floppy gets another medium (blockdev-change-medium: tray open, medium out, new one in, tray
 * closed, also when the guest locked it) or none (eject). The named nodes and the sets the medium in had
 * go once it is out (on_updated). */
static int seq_medium(QemuVm *vm, HotplugCall *c, QemuSeq *seq, const DeviceDef *old, const ConfNode *n,
                      const DomainAccess *access, VbError *reterr) {
        const DeviceDef *dev = c->dev;
        const char *device = qemu_node_attr(n, NULL, "device") ?: "disk";
        const char *source = device_disk_get_source(dev), *format = qemu_node_attr(n, "driver", "type") ?: "raw";
        _cleanup_(qemu_files_done) QemuFiles files = {};
        struct json_object *args;
        int r;

        if (!streq(device, "cdrom") && !streq(device, "floppy"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Only the medium of a cdrom or floppy can be changed on a running domain");
        if (!source && !device_disk_get_source(old))
                return 0; /* no medium before or after */
        c->idx_fdsets = qemu_seq_add_optional(seq, "query-fdsets", NULL);
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(dev->alias));
        if (!source) {
                json_object_object_add(args, "force", json_object_new_boolean(true));
                (void) qemu_seq_add(seq, "eject the medium", "eject", args);
                return 0;
        }
        r = seq_send_files(vm, seq, dev, access, &files, &c->new_sets, reterr);
        if (r >= 0 && !(source = qemu_files_arg_device(&files, 0, source)))
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The new medium was not opened");
        if (r < 0) {
                json_object_put(args);
                return r;
        }
        json_object_object_add(args, "filename", json_object_new_string(source));
        json_object_object_add(args, "format", json_object_new_string(format));
        json_object_object_add(args, "read-only-mode", json_object_new_string("read-only"));
        json_object_object_add(args, "force", json_object_new_boolean(true));
        (void) qemu_seq_add(seq, "change the medium", "blockdev-change-medium", args);
        return 0;
}

int qemu_update_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbDriverDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(hotplug_call_freep) HotplugCall *c = NULL;
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        DeviceDef *copy = NULL;
        ssize_t i;
        int r;

        if (!vm)
                return -EBUSY;
        i = dev->alias ? live_find(vm, dev->alias) : -1;
        if (i < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain %s has no device '%s'", uuid,
                                    strempty(dev->alias));
        /* The live definition gets what the secure format keeps (as it shows it). */
        r = device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        c = hotplug_call_new(q, uuid, NULL, done, userdata);
        seq = qemu_seq_new(vm);
        if (!c || !seq)
                return -ENOMEM;
        r = device_def_parse_node(conf_node_copy(n), &copy, NULL);
        if (r < 0)
                return r;
        c->dev = copy;
        if (dev->kind == DEVICE_INTERFACE)
                r = seq_link(c, seq, n);
        else if (dev->kind == DEVICE_DISK)
                r = seq_medium(vm, c, seq, vm->live->devices[i], n, access, reterr);
        else
                r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                 "The qemu driver can change an interface's link state and a cdrom's or floppy's "
                                 "medium in place, not a '%s'", device_def_kind_name(dev));
        if (r < 0)
                return r;
        if (qemu_seq_n_steps(seq) == 0) {
                /* Nothing for QEMU to do (an empty drive stays empty): done now, nobody to call back. */
                c->done = NULL;
                on_updated(NULL, 0, NULL, TAKE_PTR(c));
                return 1;
        }
        /* Recorded ahead: a virtbusd stopped before the answer makes the live definition agree with QEMU. */
        r = plug_record_update(vm, c);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record the change to make: %s",
                                    strerror(-r));
        r = run_call(vm, TAKE_PTR(seq), TAKE_PTR(c), on_updated, reterr);
        if (r < 0)
                qemu_vm_plug_remove(vm);
        return r < 0 ? r : 0;
}

/* Reconciliation at start-up ----------------------------------------------------------------------- */

/* Whether QEMU's type of a peripheral ("child<virtio-net-pci>") is a NIC the qemu driver plugs in. */
static bool is_nic_type(const char *type) {
        static const char * const nics[] = { "virtio-net-pci", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet" };
        size_t n;

        if (!type || strncmp(type, "child<", 6) != 0)
                return false;
        type += 6;
        n = strcspn(type, ">");
        for (size_t i = 0; i < ELEMENTSOF(nics); i++)
                if (strlen(nics[i]) == n && strncmp(type, nics[i], n) == 0)
                        return true;
        return false;
}

static bool peripheral_listed(struct json_object *peripherals, const char *name) {
        size_t len = peripherals && json_object_is_type(peripherals, json_type_array) ?
                json_object_array_length(peripherals) : 0;

        for (size_t i = 0; i < len; i++)
                if (streq_ptr(qemu_json_string(json_object_array_get_idx(peripherals, i), "name"), name))
                        return true;
        return false;
}

/* The hot-plug recorded ahead (qemu_vm_plug_write) that a stop of virtbusd cut short: QEMU has the device
 * (device_add went through): it joins the live definition; else what the steps before it added goes (none
 * of these commands waits; those with nothing to remove fail harmlessly). */
/* Removes at once what QEMU may still hold of dev's backend: its netdev, or its disk's block nodes and
 * descriptor sets (those of fdsets, query-fdsets' answer, whose "opaque" is the alias). None of these
 * commands waits; those with nothing to remove fail harmlessly. */
static void backend_remove(QemuVm *vm, const DeviceDef *dev, struct json_object *fdsets) {
        if (dev->kind == DEVICE_INTERFACE)
                (void) qemu_monitor_call(vm->mon, "netdev_del", id_args("id", "host", dev->alias, ""), NULL, NULL);
        else if (dev->kind == DEVICE_DISK) {
                _cleanup_(disk_nodes_freep) char **nodes = disk_nodes(dev, dev->alias);
                _cleanup_free_ unsigned *sets = fdsets_of(fdsets, dev->alias);

                for (size_t k = 0; nodes && nodes[k]; k++)
                        (void) qemu_monitor_call(vm->mon, "blockdev-del", id_args("node-name", "", nodes[k], ""),
                                                 NULL, NULL);
                for (size_t k = 0; sets && sets[k]; k++)
                        (void) qemu_monitor_call(vm->mon, "remove-fd", fdset_args(sets[k]), NULL, NULL);
        }
}

/* The macvtap of a type='direct' interface (its <target dev=>), recorded with the VM's: deleted at stop, or
 * at once with delete_now. */
static void plug_macvtap(QemuVm *vm, const DeviceDef *dev, bool delete_now) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *lower, *mode, *name;

        if (dev->kind != DEVICE_INTERFACE || qemu_device_node(dev, &n) < 0 ||
            qemu_interface_direct(n, &lower, &mode, &name) <= 0 || !name)
                return;
        if (qemu_vm_macvtap_remember(vm, name) < 0) {
                log_oom();
                return;
        }
        if (delete_now)
                qemu_vm_macvtap_delete(vm, name);
}

static void notify_changed(QemuDriver *q, QemuVm *vm, const char *alias, bool added) {
        const VbDriverEvents *ev = &q->drv->cfg.events;

        if (ev->device_changed)
                ev->device_changed(ev->userdata, vm->uuid, alias, added);
}

/* query-block's entry for the device with this alias (its "qdev": the id, or the QOM path below it). */
struct json_object *qemu_block_of(struct json_object *blocks, const char *alias) {
        size_t len = blocks && json_object_is_type(blocks, json_type_array) ? json_object_array_length(blocks) : 0;
        size_t n = strlen(alias);

        for (size_t i = 0; i < len; i++) {
                struct json_object *b = json_object_array_get_idx(blocks, i);
                const char *qdev = qemu_json_string(b, "qdev");

                if (!qdev)
                        continue;
                if (streq(qdev, alias) ||
                    (strncmp(qdev, "/machine/peripheral/", strlen("/machine/peripheral/")) == 0 &&
                     strncmp(qdev + strlen("/machine/peripheral/"), alias, n) == 0 &&
                     qdev[strlen("/machine/peripheral/") + n] == '/'))
                        return b;
        }
        return NULL;
}

/* Whether the medium QEMU has in the drive of the update's disk is the one the update put in: none, for an
 * eject; else one from a descriptor set the update handed over (first_set or later). -ENODATA: QEMU did not
 * say. */
static int medium_is_new(const DeviceDef *dev, unsigned first_set, struct json_object *blocks) {
        struct json_object *b = qemu_block_of(blocks, dev->alias), *inserted;
        const char *file;
        unsigned set;

        if (!b)
                return -ENODATA;
        inserted = qemu_json_get(b, "inserted");
        if (!device_disk_get_source(dev))
                return !inserted;
        file = qemu_json_string(inserted, "file");
        return file && first_set > 0 && sscanf(file, "/dev/fdset/%u", &set) == 1 && set >= first_set;
}

/* Removes the descriptor sets of alias (query-fdsets' answer) below first_set (the old medium's: new ones
 * true) or from it on (the new one's: new false). */
static void remove_sets(QemuVm *vm, struct json_object *fdsets, const char *alias, unsigned first_set, bool new) {
        _cleanup_free_ unsigned *sets = fdsets_of(fdsets, alias);

        for (size_t k = 0; sets && sets[k]; k++)
                if ((sets[k] >= first_set) == new || first_set == 0)
                        (void) qemu_monitor_call(vm->mon, "remove-fd", fdset_args(sets[k]), NULL, NULL);
}

/* An UpdateDevice that a stop of virtbusd cut short (recorded ahead by plug_record_update): the live
 * definition is made to agree with QEMU. A NIC's link state cannot be read back from QEMU: set_link is
 * sent again with the recorded state (it does nothing if it went through), and the record becomes live. A
 * medium: query-block tells whether the new one is in; if so the record becomes live and the old one's
 * nodes and sets go, else the live definition stays and what was handed over for the new one goes. */
static void update_reconcile(QemuDriver *q, QemuVm *vm, DeviceDef **devp, unsigned first_set,
                             struct json_object *fdsets, struct json_object *blocks) {
        DeviceDef *dev = *devp;
        ssize_t i = live_find(vm, dev->alias);
        int r;

        if (i < 0)
                return;
        if (dev->kind == DEVICE_INTERFACE) {
                _cleanup_(conf_node_freep) ConfNode *n = NULL;
                const char *link;
                struct json_object *args;

                if (device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n) < 0)
                        return;
                link = qemu_node_attr(n, "link", "state");
                args = json_object_new_object();
                if (!args)
                        return;
                json_object_object_add(args, "name", json_object_new_string(dev->alias));
                json_object_object_add(args, "up", json_object_new_boolean(!link || !streq(link, "down")));
                (void) qemu_monitor_call(vm->mon, "set_link", args, NULL, NULL);
                r = 1;
        } else if (dev->kind == DEVICE_DISK) {
                r = medium_is_new(dev, first_set, blocks);
                if (r < 0) {
                        log_warning("Domain %s: QEMU did not tell which medium drive '%s' has; keeping the live "
                                    "definition.", vm->uuid, dev->alias);
                        return;
                }
                if (r > 0) {
                        (void) qemu_monitor_call(vm->mon, "blockdev-del",
                                                 id_args("node-name", "", dev->alias, "-format"), NULL, NULL);
                        (void) qemu_monitor_call(vm->mon, "blockdev-del",
                                                 id_args("node-name", "", dev->alias, "-storage"), NULL, NULL);
                }
                /* The sets no medium uses now. */
                if (r > 0 || first_set > 0)
                        remove_sets(vm, fdsets, dev->alias, first_set, r == 0);
        } else
                return;
        log_notice("Domain %s: the change of device '%s' that a stop of virtbusd cut short %s.", vm->uuid, dev->alias,
                   r > 0 ? "is kept" : "did not happen");
        if (r == 0)
                return;
        if (dev->address.type == DEVICE_ADDRESS_NONE) {
                dev->address = vm->live->devices[i]->address;
                vm->live->devices[i]->address = (DeviceAddress) { .type = DEVICE_ADDRESS_NONE };
        }
        device_def_free(vm->live->devices[i]);
        vm->live->devices[i] = TAKE_PTR(*devp);
        (void) qemu_vm_save(vm);
        notify_changed(q, vm, vm->live->devices[i]->alias, false);
}

/* The hot-plug or update recorded ahead (qemu_vm_plug_write) that a stop of virtbusd cut short. A
 * hot-plug: QEMU has the device (device_add went through): it joins the live definition (and core's);
 * else what the steps before it added goes (none of these commands waits; those with nothing to remove
 * fail harmlessly). */
static void plug_reconcile(QemuDriver *q, QemuVm *vm, struct json_object *peripherals, struct json_object *fdsets,
                           struct json_object *blocks) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        _cleanup_free_ char *record = NULL, *fdname = NULL;
        const char *xml, *alias;
        unsigned first_set = 0;
        bool update;

        if (qemu_vm_plug_read(vm, &record) < 0 || !record)
                return;
        xml = record;
        update = strncmp(record, "update ", strlen("update ")) == 0;
        if (update) {
                if (sscanf(record, "update %u", &first_set) != 1 || !(xml = strchr(record, '\n'))) {
                        qemu_vm_plug_remove(vm);
                        return;
                }
                xml++;
        }
        if (device_def_parse_string(xml, 0, &dev, NULL) < 0 || !dev->alias) {
                qemu_vm_plug_remove(vm);
                return;
        }
        if (update) {
                update_reconcile(q, vm, &dev, first_set, fdsets, blocks);
                qemu_vm_plug_remove(vm);
                return;
        }
        if (live_find(vm, dev->alias) >= 0) {
                qemu_vm_plug_remove(vm);
                return;
        }
        alias = dev->alias;
        if (peripheral_listed(peripherals, alias)) {
                _cleanup_free_ char *kept = strdup(alias);

                log_notice("Domain %s: device '%s', whose hot-plug a stop of virtbusd cut short, is kept.", vm->uuid,
                           alias);
                plug_macvtap(vm, dev, false);
                if (kept && live_append(vm, TAKE_PTR(dev)) >= 0) {
                        (void) qemu_vm_save(vm);
                        notify_changed(q, vm, kept, true);
                }
                qemu_vm_plug_remove(vm);
                return;
        }
        log_notice("Domain %s: undoing the hot-plug of '%s' that a stop of virtbusd cut short.", vm->uuid, alias);
        if (asprintf(&fdname, "fd-host%s", alias) >= 0)
                (void) qemu_monitor_call(vm->mon, "closefd", id_args("fdname", "", fdname, ""), NULL, NULL);
        backend_remove(vm, dev, fdsets);
        /* Not in vm->macvtaps (made by the virtbusd that stopped): recorded, then deleted. */
        plug_macvtap(vm, dev, true);
        qemu_vm_plug_remove(vm);
}

/* Whether dev is a device that QEMU gets with id=alias and that DetachDevice removes with a backend of its
 * own in QEMU: a disk, or a NIC other than a VF (whose function core gives back to the host). */
static bool has_qemu_backend(const DeviceDef *dev) {
        if (!dev->alias)
                return false;
        if (dev->kind == DEVICE_DISK)
                return true;
        return dev->kind == DEVICE_INTERFACE && qemu_hostdev_is_vfio(dev, NULL) <= 0;
}

/* Disks and NICs of the live definition that QEMU no longer has: a DetachDevice that a stop of virtbusd cut
 * short (the guest released the device, whose DEVICE_DELETED no virtbusd heard) or a removal by someone
 * else. They leave the live definition; what is left of their backends goes (its steps fail harmlessly
 * where the removal got that far). Only with QEMU's list of peripherals at hand. */
static void gone_reconcile(QemuDriver *q, QemuVm *vm, struct json_object *peripherals, struct json_object *fdsets) {
        const VbDriverEvents *ev = &q->drv->cfg.events;
        _cleanup_free_ char **gone = NULL;
        size_t n_gone = 0;

        if (!peripherals || !json_object_is_type(peripherals, json_type_array) || vm->live->n_devices == 0)
                return;
        gone = new0(char *, vm->live->n_devices);
        if (!gone) {
                log_oom();
                return;
        }
        for (size_t i = vm->live->n_devices; i > 0; i--) {
                DeviceDef *dev = vm->live->devices[i - 1];

                if (!has_qemu_backend(dev) || peripheral_listed(peripherals, dev->alias))
                        continue;
                log_notice("Domain %s: device '%s' is gone from QEMU (a removal a stop of virtbusd cut short); "
                           "removing it from the live definition.", vm->uuid, dev->alias);
                backend_remove(vm, dev, fdsets);
                plug_macvtap(vm, dev, true);
                gone[n_gone++] = TAKE_PTR(dev->alias);
                device_def_free(dev);
                memmove(vm->live->devices + i - 1, vm->live->devices + i,
                        (vm->live->n_devices - i) * sizeof(DeviceDef *));
                vm->live->n_devices--;
        }
        if (n_gone > 0)
                (void) qemu_vm_save(vm);
        /* Core takes them out of its live definition too (giving back what they held) and tells DeviceRemoved. */
        for (size_t k = 0; k < n_gone; k++) {
                if (ev->device_removed)
                        ev->device_removed(ev->userdata, vm->uuid, gone[k]);
                free(gone[k]);
        }
}

void qemu_hotplug_reconcile(QemuDriver *q, QemuVm *vm, struct json_object *peripherals, struct json_object *fdsets,
                            struct json_object *blocks) {
        size_t len = peripherals && json_object_is_type(peripherals, json_type_array) ?
                json_object_array_length(peripherals) : 0;

        plug_reconcile(q, vm, peripherals, fdsets, blocks);
        gone_reconcile(q, vm, peripherals, fdsets);
        for (size_t i = 0; i < len; i++) {
                struct json_object *p = json_object_array_get_idx(peripherals, i);
                const char *name = qemu_json_string(p, "name");

                if (!name || !is_nic_type(qemu_json_string(p, "type")) || live_find(vm, name) >= 0)
                        continue;
                /* A NIC the live definition does not have (added by someone else, or by a hot-plug whose
                 * record was lost): not the domain's, so it goes, with its backend (and so its tap). The
                 * guest is asked; its DEVICE_DELETED then finds nothing to do. */
                log_notice("Domain %s: removing NIC '%s', which is not in the live definition.", vm->uuid, name);
                (void) qemu_monitor_call(vm->mon, "device_del", id_args("id", "", name, ""), NULL, NULL);
                (void) qemu_monitor_call(vm->mon, "netdev_del", id_args("id", "host", name, ""), NULL, NULL);
        }
}
