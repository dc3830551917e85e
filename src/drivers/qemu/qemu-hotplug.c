/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device hotplug on a running QEMU: NICs (netdev_add + device_add), disks (blockdev-add + device_add),
 * host PCI functions (device_add vfio-pci, qemu-hostdev.c), removal (device_del, completed by the DEVICE_DELETED event naming the device) and in-place changes. */
#include <stdio.h>
#include <unistd.h>

#include "conf/domain-access.h"
#include "conf/domain-devices.h"
#include "drivers/driver.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-hostdev.h"
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

static int live_append(QemuVm *vm, const DeviceDef *dev, const char *tap_ifname) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        DeviceDef *copy = NULL;
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
        r = device_def_parse_node(TAKE_PTR(n), &copy, NULL);
        if (r < 0)
                return r;
        if (!GREEDY_REALLOC(vm->live->devices, vm->live->n_devices_allocated, vm->live->n_devices + 1)) {
                device_def_free(copy);
                return -ENOMEM;
        }
        vm->live->devices[vm->live->n_devices++] = copy;
        return 0;
}

static ssize_t live_find(QemuVm *vm, const char *alias) {
        for (size_t i = 0; i < vm->live->n_devices; i++)
                if (streq_ptr(vm->live->devices[i]->alias, alias))
                        return (ssize_t) i;
        return -1;
}

/* The outcome of a pipelined command (qemu_monitor_call), known once a later synchronous one returned. */
typedef struct Outcome {
        bool done;
        char *error;
} Outcome;

static void on_outcome(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        Outcome *o = userdata;
        o->done = true;
        if (error)
                o->error = strdup(error);
}

/* Sends first without waiting, then second and waits: one round trip for two commands. first's failure
 * wins (second then fails for want of it). *ret_first_ok: whether first took effect. */
static int command_pair(QemuVm *vm, const char *what1, const char *cmd1, struct json_object *args1, const char *what2,
                        const char *cmd2, struct json_object *args2, bool *ret_first_ok, VbError *reterr) {
        Outcome o = {};
        VbError e2 = VB_ERROR_NULL;
        int r;

        *ret_first_ok = false;
        r = qemu_monitor_call(vm->mon, cmd1, args1, on_outcome, &o);
        if (r < 0) {
                json_object_put(args2);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", what1, strerror(-r));
        }
        r = qemu_vm_command(vm, what2, cmd2, args2, NULL, &e2);
        *ret_first_ok = o.done && !o.error;
        if (!o.done || o.error) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to %s: %s", what1,
                                 o.error ?: "no answer from QEMU");
                free(o.error);
                vb_error_free(&e2);
                return r;
        }
        if (r < 0)
                vb_error_move(reterr, &e2);
        return r;
}

static void netdev_del(QemuVm *vm, const char *alias) {
        _cleanup_free_ char *hostid = NULL;
        struct json_object *args;

        if (asprintf(&hostid, "host%s", alias) < 0)
                return;
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(hostid));
        (void) qemu_monitor_call(vm->mon, "netdev_del", args, NULL, NULL);
}

/* type='direct': a new macvtap, its descriptor handed to QEMU under a name (getfd). */
static int attach_macvtap(QemuVm *vm, const DeviceDef *dev, const char *alias, char **ret_name, char **ret_fdname,
                          VbError *reterr) {
        _cleanup_free_ char *name = NULL, *fdname = NULL, *err = NULL;
        struct json_object *args;
        int fd = -1, r;

        r = qemu_vm_macvtap_create(vm, dev, &name, &fd, reterr);
        if (r < 0)
                return r;
        if (asprintf(&fdname, "fd-host%s", alias) < 0) {
                close(fd);
                qemu_vm_macvtap_delete(vm, name);
                return -ENOMEM;
        }
        args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(fdname));
        r = qemu_monitor_call_sync_fd(vm->mon, "getfd", args, fd, 10 * 1000 * 1000ULL, NULL, &err);
        close(fd);
        if (r < 0) {
                qemu_vm_macvtap_delete(vm, name);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to pass macvtap '%s' to QEMU: %s", name,
                                    err ?: strerror(-r));
        }
        *ret_name = TAKE_PTR(name);
        *ret_fdname = TAKE_PTR(fdname);
        return 0;
}

/* Hands fd to QEMU under fdname (getfd); fd is closed. */
static int send_fd(QemuVm *vm, int fd, const char *fdname, const char *what, VbError *reterr) {
        _cleanup_free_ char *err = NULL;
        struct json_object *args = json_object_new_object();
        int r;

        json_object_object_add(args, "fdname", json_object_new_string(fdname));
        r = qemu_monitor_call_sync_fd(vm->mon, "getfd", args, fd, 10 * 1000 * 1000ULL, NULL, &err);
        close(fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to pass %s to QEMU: %s", what,
                                    err ?: strerror(-r));
        return 0;
}

/* A tap backend: virtbusd makes the tap (QEMU may not) and hands it over. */
static int attach_tap(QemuVm *vm, const ConfNode *n, const char *alias, char **ret_name, char **ret_fdname,
                      VbError *reterr) {
        _cleanup_free_ char *name = qemu_interface_tap_name(n), *fdname = NULL;
        int fd, r;

        if (!name || asprintf(&fdname, "fd-host%s", alias) < 0)
                return -ENOMEM;
        r = host_tap_create(name, &fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create tap '%s': %s", name,
                                    strerror(-r));
        r = send_fd(vm, fd, fdname, "the tap", reterr);
        if (r < 0)
                return r;
        *ret_name = TAKE_PTR(name);
        *ret_fdname = TAKE_PTR(fdname);
        return 0;
}

static int attach_interface(QemuVm *vm, const DeviceDef *dev, const char *alias, VbError *reterr) {
        _cleanup_free_ char *netdev = NULL, *device = NULL, *macvtap = NULL, *fdname = NULL, *ifname = NULL,
                            *bridge = NULL, *our_tap = NULL;
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *lower, *mode, *want;
        QemuTap tap = {};
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        if (qemu_interface_direct(n, &lower, &mode, &want) > 0) {
                r = attach_macvtap(vm, dev, alias, &macvtap, &fdname, reterr);
                if (r < 0)
                        return r;
        } else if (qemu_interface_is_tap(n)) {
                r = attach_tap(vm, n, alias, &our_tap, &fdname, reterr);
                if (r < 0)
                        return r;
        }
        r = qemu_command_interface_opts(dev, alias, fdname, domain_machine_is_q35(vm->live->os.machine), &netdev,
                                        &device, &tap, reterr);
        ifname = tap.ifname;
        bridge = tap.bridge;
        if (our_tap) {
                free(ifname);
                ifname = TAKE_PTR(our_tap);
        }
        if (r >= 0 && !ifname) {
                /* Nothing to do between the two: one round trip. */
                bool added;

                r = command_pair(vm, "add the network backend", "netdev_add", opts_to_json(netdev, "type", false),
                                 "add the network device", "device_add", opts_to_json(device, "driver", false), &added,
                                 reterr);
                if (r >= 0)
                        r = live_append(vm, dev, macvtap);
                if (r < 0 && added)
                        netdev_del(vm, alias);
                if (r < 0 && macvtap)
                        qemu_vm_macvtap_delete(vm, macvtap);
                return r;
        }
        if (r >= 0)
                r = qemu_vm_command(vm, "add the network backend", "netdev_add", opts_to_json(netdev, "type", false),
                                    NULL, reterr);
        if (r < 0) {
                if (macvtap)
                        qemu_vm_macvtap_delete(vm, macvtap);
                return r;
        }
        if (ifname) {
                r = host_tap_attach(ifname, bridge);
                if (r < 0)
                        vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to set up tap '%s'%s%s: %s", ifname,
                                     bridge ? " on bridge " : "", strempty(bridge), strerror(-r));
                else
                        log_notice("Domain %s: tap '%s' up%s%s.", vm->uuid, ifname, bridge ? " in bridge " : "",
                                   strempty(bridge));
        }
        if (r >= 0)
                r = qemu_vm_command(vm, "add the network device", "device_add", opts_to_json(device, "driver", false),
                                    NULL, reterr);
        if (r >= 0)
                r = live_append(vm, dev, macvtap ?: ifname);
        if (r < 0) {
                netdev_del(vm, alias);
                if (macvtap)
                        qemu_vm_macvtap_delete(vm, macvtap);
        }
        return r;
}

static void blockdev_del(QemuVm *vm, const char *alias, const char *suffix) {
        _cleanup_free_ char *node = NULL;
        struct json_object *args;

        if (asprintf(&node, "%s-%s", alias, suffix) < 0)
                return;
        args = json_object_new_object();
        json_object_object_add(args, "node-name", json_object_new_string(node));
        (void) qemu_vm_command(vm, "remove the block node", "blockdev-del", args, NULL, NULL);
}

/* The first fdset number no set of QEMU's has (after a restart of ours, QEMU is asked). */
static unsigned next_fdset(QemuVm *vm) {
        struct json_object *sets = NULL;

        if (vm->next_fdset == 0) {
                vm->next_fdset = 1;
                if (qemu_vm_command(vm, "list the descriptor sets", "query-fdsets", NULL, &sets, NULL) >= 0)
                        for (size_t i = 0; sets && i < json_object_array_length(sets); i++) {
                                unsigned id = (unsigned) json_object_get_int(
                                        qemu_json_get(json_object_array_get_idx(sets, i), "fdset-id"));
                                if (id >= vm->next_fdset)
                                        vm->next_fdset = id + 1;
                        }
                json_object_put(sets);
        }
        return vm->next_fdset;
}

/* The descriptor sets QEMU holds for the device with this alias (their "opaque" says whose), 0-terminated
 * (to free). */
static unsigned *fdsets_of(QemuVm *vm, const char *alias) {
        struct json_object *sets = NULL;
        unsigned *ids = NULL;
        size_t n = 0;

        if (qemu_vm_command(vm, "list the descriptor sets", "query-fdsets", NULL, &sets, NULL) < 0)
                return NULL;
        ids = new0(unsigned, (sets ? json_object_array_length(sets) : 0) + 1);
        for (size_t i = 0; ids && sets && i < json_object_array_length(sets); i++) {
                struct json_object *set = json_object_array_get_idx(sets, i), *fds = qemu_json_get(set, "fds");
                for (size_t k = 0; fds && k < json_object_array_length(fds); k++)
                        if (streq_ptr(qemu_json_string(json_object_array_get_idx(fds, k), "opaque"), alias)) {
                                ids[n++] = (unsigned) json_object_get_int(qemu_json_get(set, "fdset-id"));
                                break;
                        }
        }
        json_object_put(sets);
        return ids;
}

static void fdsets_remove(QemuVm *vm, const unsigned *ids) {
        for (size_t i = 0; ids && ids[i]; i++) {
                struct json_object *args = json_object_new_object();
                json_object_object_add(args, "fdset-id", json_object_new_int((int) ids[i]));
                (void) qemu_vm_command(vm, "remove a descriptor set", "remove-fd", args, NULL, NULL);
        }
}

/* The device with this alias is gone: QEMU lets go of its files. */
static void fdsets_release(QemuVm *vm, const char *alias) {
        _cleanup_free_ unsigned *ids = fdsets_of(vm, alias);
        fdsets_remove(vm, ids);
}

/* Opens the host files of dev with the rights access gives, and hands them to QEMU (add-fd). */
static int send_files(QemuVm *vm, const DeviceDef *dev, const DomainAccess *access, QemuFiles *ret, VbError *reterr) {
        QemuFiles f = {};
        int r;

        r = qemu_files_open_device(dev, access, next_fdset(vm), &f, reterr);
        if (r < 0)
                return r;
        vm->next_fdset = f.next_fdset;
        for (size_t i = 0; i < f.n; i++)
                for (size_t k = 0; k < 2 && f.v[i].fdset > 0; k++) {
                        _cleanup_free_ char *err = NULL;
                        struct json_object *args;
                        if (f.v[i].fds[k] < 0)
                                continue;
                        args = json_object_new_object();
                        json_object_object_add(args, "fdset-id", json_object_new_int((int) f.v[i].fdset));
                        json_object_object_add(args, "opaque", json_object_new_string(dev->alias));
                        r = qemu_monitor_call_sync_fd(vm->mon, "add-fd", args, f.v[i].fds[k], 10 * 1000 * 1000ULL,
                                                      NULL, &err);
                        if (r < 0) {
                                qemu_files_done(&f);
                                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                                    "Failed to pass '%s' to QEMU: %s", f.v[i].path, err ?: strerror(-r));
                        }
                }
        *ret = f;
        return 0;
}

static int attach_disk(QemuVm *vm, const DeviceDef *dev, const char *alias, const DomainAccess *access,
                       VbError *reterr) {
        _cleanup_free_ char *file = NULL, *format = NULL, *device = NULL;
        _cleanup_(qemu_files_done) QemuFiles files = {};
        const char *source = NULL;
        int r;

        if (device_disk_get_source(dev)) {
                r = send_files(vm, dev, access, &files, reterr);
                if (r < 0) {
                        fdsets_release(vm, alias);
                        return r;
                }
                source = qemu_files_arg_device(&files, 0, device_disk_get_source(dev));
                if (!source)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The disk's image was not opened");
        }
        r = qemu_command_disk_opts(dev, alias, source, domain_machine_is_q35(vm->live->os.machine), &file, &format,
                                   &device, reterr);
        if (r < 0) {
                fdsets_release(vm, alias);
                return r;
        }
        if (file) {
                r = qemu_vm_command(vm, "open the disk image", "blockdev-add", opts_to_json(file, NULL, true), NULL,
                                    reterr);
                if (r < 0) {
                        fdsets_release(vm, alias);
                        return r;
                }
                r = qemu_vm_command(vm, "open the disk format", "blockdev-add", opts_to_json(format, NULL, true),
                                    NULL, reterr);
                if (r < 0) {
                        blockdev_del(vm, alias, "storage");
                        fdsets_release(vm, alias);
                        return r;
                }
        }
        r = qemu_vm_command(vm, "add the disk", "device_add", opts_to_json(device, "driver", false), NULL, reterr);
        if (r < 0) {
                if (file) {
                        blockdev_del(vm, alias, "format");
                        blockdev_del(vm, alias, "storage");
                }
                fdsets_release(vm, alias);
                return r;
        }
        return live_append(vm, dev, NULL);
}

/* A <hostdev type='pci'> or an <interface type='hostdev'> on a VF: core bound it to vfio-pci (and set the
 * VF's MAC) before; QEMU opens it through VFIO. 0 if dev is not a host PCI device. On failure QEMU's own
 * sentence is in the error and nothing was added. */
static int attach_hostdev(QemuVm *vm, const DeviceDef *dev, const char *alias, VbError *reterr) {
        struct json_object *args = NULL;
        int r;

        r = qemu_hostdev_device_add_args(dev, alias, domain_machine_is_q35(vm->live->os.machine), &args, reterr);
        if (r <= 0)
                return r;
        r = qemu_vm_command(vm, "add the host device", "device_add", args, NULL, reterr);
        if (r >= 0)
                r = live_append(vm, dev, NULL);
        return r < 0 ? r : 1;
}

int qemu_attach_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
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
        switch (dev->kind) {
        case DEVICE_INTERFACE:
                r = attach_hostdev(vm, dev, dev->alias, reterr);
                if (r == 0)
                        r = attach_interface(vm, dev, dev->alias, reterr);
                break;
        case DEVICE_DISK:
                r = attach_disk(vm, dev, dev->alias, access, reterr);
                break;
        case DEVICE_HOSTDEV:
                r = qemu_hostdev_is_vfio(dev, reterr);
                if (r > 0)
                        r = attach_hostdev(vm, dev, dev->alias, reterr);
                else if (r == 0)
                        r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "This host device is not supported by "
                                         "the qemu driver");
                break;
        default:
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver cannot hot-plug devices of kind '%s' yet",
                                    device_def_kind_name(dev));
        }
        if (r < 0)
                return r;
        /* The guest address QEMU chose, if core left it open. */
        if (dev->address.type != DEVICE_ADDRESS_PCI)
                (void) qemu_vm_refresh_live_then(vm, NULL, 0, false, NULL, NULL, NULL);
        (void) qemu_vm_save(vm);
        return 0;
}

/* q35's pcie.0 takes neither hot-plug nor hot-unplug (QEMU: "Bus 'pcie.0' does not support hotplugging"). */
static bool on_q35_root_bus(QemuVm *vm, const DeviceDef *dev) {
        const DeviceAddress *a = &dev->address;

        return domain_machine_is_q35(vm->live->os.machine) && a->type == DEVICE_ADDRESS_PCI && a->pci.bus == 0 &&
               a->pci.slot != UINT32_MAX && (a->pci.domain == 0 || a->pci.domain == UINT32_MAX);
}

int qemu_detach_device(VbDriver *drv, const char *uuid, const char *alias, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        struct json_object *args;
        ssize_t i;
        DeviceKind kind;

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
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(alias));
        return qemu_vm_command(vm, "ask the guest to release the device", "device_del", args, NULL, reterr);
}

/* After the guest released a device: its backend goes too (synchronously, so that when DeviceRemoved is
 * out, the image or the macvtap is free). */
static void release_backend(QemuVm *vm, const DeviceDef *dev, const char *alias) {
        _cleanup_free_ char *id = NULL;
        struct json_object *args;

        if (dev->kind == DEVICE_INTERFACE && qemu_hostdev_is_vfio(dev, NULL) > 0)
                return; /* a VF: no backend in QEMU (core gives the function back to the host) */
        if (dev->kind == DEVICE_INTERFACE) {
                _cleanup_(conf_node_freep) ConfNode *n = NULL;
                const char *lower, *mode, *name;

                if (asprintf(&id, "host%s", alias) < 0)
                        return;
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(id));
                (void) qemu_vm_command(vm, "remove the network backend", "netdev_del", args, NULL, NULL);
                if (qemu_device_node(dev, &n) >= 0 && qemu_interface_direct(n, &lower, &mode, &name) > 0 && name)
                        qemu_vm_macvtap_delete(vm, name);
        } else if (dev->kind == DEVICE_DISK) {
                blockdev_del(vm, alias, "format");
                blockdev_del(vm, alias, "storage");
                fdsets_release(vm, alias);
        }
}

void qemu_driver_device_deleted(QemuDriver *q, QemuVm *vm, const char *alias) {
        const VbDriverEvents *ev = &q->drv->cfg.events;
        _cleanup_free_ char *a = NULL;
        ssize_t i;

        if (!alias)
                return; /* a sub-object (".../virtio-backend"); the device's own event follows */
        i = live_find(vm, alias);
        if (i < 0)
                return;
        a = strdup(alias); /* alias lives in the event's data */
        if (!a)
                return;
        release_backend(vm, vm->live->devices[i], a);
        device_def_free(vm->live->devices[i]);
        memmove(vm->live->devices + i, vm->live->devices + i + 1,
                (vm->live->n_devices - (size_t) i - 1) * sizeof(DeviceDef *));
        vm->live->n_devices--;
        (void) qemu_vm_save(vm);
        log_debug("Domain %s: device '%s' removed.", vm->uuid, a);
        if (ev->device_removed)
                ev->device_removed(ev->userdata, vm->uuid, a);
}

static int id_command(QemuVm *vm, const char *what, const char *command, const char *id, bool force,
                      VbError *reterr) {
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "id", json_object_new_string(id));
        if (force)
                json_object_object_add(args, "force", json_object_new_boolean(true));
        return qemu_vm_command(vm, what, command, args, NULL, reterr);
}

static int update_link(QemuVm *vm, const DeviceDef *dev, const ConfNode *n, VbError *reterr) {
        const char *link = qemu_node_attr(n, "link", "state");
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "name", json_object_new_string(dev->alias));
        json_object_object_add(args, "up", json_object_new_boolean(!link || !streq(link, "down")));
        return qemu_vm_command(vm, "set the link state", "set_link", args, NULL, reterr);
}

/* A cdrom or floppy gets another medium (blockdev-change-medium: tray open, medium out, new one in, tray
 * closed, also when the guest locked it) or none (eject). The named nodes a medium had from the start go
 * too, so that its image is closed. */
static int update_medium(QemuVm *vm, const DeviceDef *dev, const DeviceDef *old, const ConfNode *n,
                         const DomainAccess *access, VbError *reterr) {
        const char *device = qemu_node_attr(n, NULL, "device") ?: "disk";
        const char *source = device_disk_get_source(dev), *format = qemu_node_attr(n, "driver", "type") ?: "raw";
        _cleanup_(qemu_files_done) QemuFiles files = {};
        _cleanup_free_ unsigned *old_sets = NULL, *new_sets = NULL;
        struct json_object *args;
        int r;

        if (!streq(device, "cdrom") && !streq(device, "floppy"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Only the medium of a cdrom or floppy can be changed on a running domain");
        /* The sets of the medium in now go once it is out. */
        old_sets = fdsets_of(vm, dev->alias);
        if (source) {
                r = send_files(vm, dev, access, &files, reterr);
                if (r < 0)
                        return r;
                source = qemu_files_arg_device(&files, 0, source);
                if (!source)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The new medium was not opened");
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(dev->alias));
                json_object_object_add(args, "filename", json_object_new_string(source));
                json_object_object_add(args, "format", json_object_new_string(format));
                json_object_object_add(args, "read-only-mode", json_object_new_string("read-only"));
                json_object_object_add(args, "force", json_object_new_boolean(true));
                r = qemu_vm_command(vm, "change the medium", "blockdev-change-medium", args, NULL, reterr);
        } else if (device_disk_get_source(old))
                r = id_command(vm, "eject the medium", "eject", dev->alias, true, reterr);
        else
                r = 0;
        if (r < 0) {
                /* The new medium's sets: those of the alias that were not there before. */
                new_sets = new0(unsigned, files.n + 1);
                for (size_t k = 0, m = 0; new_sets && k < files.n; k++)
                        if (files.v[k].fdset > 0)
                                new_sets[m++] = files.v[k].fdset;
                fdsets_remove(vm, new_sets);
                return r;
        }
        blockdev_del(vm, dev->alias, "format");
        blockdev_del(vm, dev->alias, "storage");
        fdsets_remove(vm, old_sets);
        return 0;
}

int qemu_update_device(VbDriver *drv, const char *uuid, const DeviceDef *dev, const DomainAccess *access,
                       VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_(device_def_freep) DeviceDef *copy = NULL;
        ssize_t i;
        int r;

        if (!vm)
                return -EBUSY;
        i = dev->alias ? live_find(vm, dev->alias) : -1;
        if (i < 0)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain %s has no device '%s'", uuid,
                                    strempty(dev->alias));
        r = device_def_to_node(dev, DEVICE_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        if (dev->kind == DEVICE_INTERFACE)
                r = update_link(vm, dev, n, reterr);
        else if (dev->kind == DEVICE_DISK)
                r = update_medium(vm, dev, vm->live->devices[i], n, access, reterr);
        else
                r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                 "The qemu driver can change an interface's link state and a cdrom's or floppy's "
                                 "medium in place, not a '%s'", device_def_kind_name(dev));
        if (r < 0)
                return r;
        r = device_def_parse_node(TAKE_PTR(n), &copy, NULL);
        if (r < 0)
                return r;
        /* Keep what QEMU assigned (the address) if the update didn't say. */
        if (copy->address.type == DEVICE_ADDRESS_NONE) {
                copy->address = vm->live->devices[i]->address;
                vm->live->devices[i]->address = (DeviceAddress) { .type = DEVICE_ADDRESS_NONE };
        }
        device_def_free(vm->live->devices[i]);
        vm->live->devices[i] = TAKE_PTR(copy);
        (void) qemu_vm_save(vm);
        return 0;
}

