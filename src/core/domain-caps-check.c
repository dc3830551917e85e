/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Refusing definitions and devices the domain capabilities say cannot work. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/device-host-source.h"
#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/manager.h"
#include "util/log.h"

/* The bus a disk sits on: <target bus=>, else what its device name implies (as libvirt derives it). */
static const char *disk_bus(const DeviceDef *dev) {
        const char *bus = device_disk_get_bus(dev), *target = device_disk_get_target(dev);

        if (bus)
                return bus;
        if (!target)
                return NULL;
        if (strncmp(target, "hd", 2) == 0)
                return "ide";
        if (strncmp(target, "sd", 2) == 0)
                return "scsi";
        if (strncmp(target, "vd", 2) == 0)
                return "virtio";
        if (strncmp(target, "fd", 2) == 0)
                return "fdc";
        return NULL;
}

/* A value the device element has (attribute attr of child, or of the element itself when child is NULL)
 * must be in the enum of its device kind, when the capabilities list that enum. */
static int check_enum(const DomainCaps *caps, const DeviceDef *dev, DomainCapsDevice kind, const char *child,
                      const char *attr, const char *enum_name, const char *what, VbError *reterr) {
        const DomainCapsBlock *b = &caps->devices[kind];
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const ConfNode *where;
        const char *value;

        if (!b->present || !domain_caps_enum_find(b, enum_name))
                return 0;
        if (device_def_to_node(dev, 0, &n) < 0)
                return -ENOMEM;
        where = child ? conf_node_child(n, child) : n;
        value = where ? conf_node_attr(where, attr) : NULL;
        if (!value || domain_caps_enum_has(b, enum_name, value))
                return 0;
        {
                _cleanup_free_ char *list = domain_caps_enum_list(b, enum_name);
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "%s '%s' is not available with '%s' (it offers %s)",
                                    what, value, strempty(caps->path), strempty(list));
        }
}

int domain_caps_check_device_with(const DomainCaps *caps, const DeviceDef *dev, VbError *reterr) {
        const DomainCapsBlock *disk = &caps->devices[DOMAIN_CAPS_DISK], *hostdev = &caps->devices[DOMAIN_CAPS_HOSTDEV];
        DeviceHostSource src = {};

        if (dev->kind == DEVICE_DISK && disk->present) {
                const char *bus = disk_bus(dev);

                if (bus && domain_caps_enum_find(disk, "bus") && !domain_caps_enum_has(disk, "bus", bus)) {
                        _cleanup_free_ char *list = domain_caps_enum_list(disk, "bus");
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "Disk '%s' is on bus '%s', which machine '%s' of '%s' does not have "
                                            "(it has %s)", strempty(device_disk_get_target(dev)), bus,
                                            strempty(caps->machine), strempty(caps->path), strempty(list));
                }
        }
        if (dev->kind == DEVICE_GRAPHICS) {
                int r = check_enum(caps, dev, DOMAIN_CAPS_GRAPHICS, NULL, "type", "type", "Graphics type", reterr);
                if (r < 0)
                        return r;
        }
        if (dev->kind == DEVICE_VIDEO) {
                int r = check_enum(caps, dev, DOMAIN_CAPS_VIDEO, "model", "type", "modelType", "Video model", reterr);
                if (r < 0)
                        return r;
        }
        if (device_def_get_host_source(dev, &src) >= 0 &&
            (src.kind == DEVICE_HOST_SOURCE_PCI || src.kind == DEVICE_HOST_SOURCE_NET_PCI) && hostdev->present &&
            !domain_caps_enum_has(hostdev, "pciBackend", "vfio"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI device '%04x:%02x:%02x.%x' cannot be given to a domain here: PCI passthrough "
                                    "needs VFIO, and this host has no usable VFIO (no /dev/vfio/vfio or no IOMMU groups)",
                                    src.domain, src.bus, src.slot, src.function);
        return 0;
}

/* <cpu mode=...>: a mode the capabilities say is not supported (host-passthrough under TCG). */
static int check_cpu_mode(const DomainCaps *caps, const DomainDef *def, VbError *reterr) {
        const ConfNode *cpu = def->extra ? conf_node_child(def->extra, "cpu") : NULL;
        const char *mode = cpu ? conf_node_attr(cpu, "mode") : NULL;
        bool ok;

        if (!mode || !caps->cpu_present)
                return 0;
        if (streq(mode, "host-passthrough"))
                ok = caps->cpu_host_passthrough;
        else if (streq(mode, "maximum"))
                ok = caps->cpu_maximum;
        else if (streq(mode, "host-model"))
                ok = caps->cpu_host_model;
        else
                return 0;
        if (ok)
                return 0;
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                            "<cpu mode='%s'> is not available for virt type '%s' on machine '%s'%s", mode,
                            strempty(caps->domain), strempty(caps->machine),
                            streq(mode, "host-passthrough") ? " (it needs KVM: use type='kvm', or mode='maximum')" : "");
}

/* The PIIX3's own IDE (0:0:1.1) and USB (0:0:1.2) functions, which libvirt leaves out of the addresses it
 * reserves from a definition. */
static bool piix3_function(const DeviceDef *dev, uint32_t dom, uint32_t bus, uint32_t slot, uint32_t fn) {
        const char *type, *model;
        uint32_t index;

        if (!device_controller_get(dev, &type, &model, &index) || dom != 0 || bus != 0 || slot != 1 || index != 0)
                return false;
        return (streq(type, "ide") && fn == 1) ||
               (streq(type, "usb") && fn == 2 && (!model || streq(model, "piix3-uhci")));
}

static uint32_t or_zero(uint32_t v) {
        return v == UINT32_MAX ? 0 : v;
}

int domain_check_pci_addresses(const DomainDef *def, VbError *reterr) {
        DeviceDef *const *devices;
        size_t n = domain_def_get_devices(def, &devices), n_keys = 0, first, second;
        _cleanup_free_ ConfKey *keys = new0(ConfKey, n);

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const DeviceAddress *a = &devices[i]->address;
                uint32_t dom, bus, slot, fn;

                if (a->type != DEVICE_ADDRESS_PCI)
                        continue;
                dom = or_zero(a->pci.domain), bus = or_zero(a->pci.bus), slot = or_zero(a->pci.slot);
                fn = or_zero(a->pci.function);
                /* 0000:00:00.0 is no address given (one to be chosen), as libvirt reads it */
                if ((dom | bus | slot | fn) == 0 || piix3_function(devices[i], dom, bus, slot, fn))
                        continue;
                keys[n_keys++] = (ConfKey) { .u = (uint64_t) dom << 32 | bus << 16 | slot << 8 | fn, .index = i };
        }
        if (!conf_keys_find_duplicate(keys, n_keys, &first, &second))
                return 0;
        {
                const DeviceAddress *a = &devices[second]->address;

                return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                    "PCI address %04x:%02x:%02x.%x is given to two devices: device %zu (<%s>) and "
                                    "device %zu (<%s>); each PCI function holds one device",
                                    or_zero(a->pci.domain), or_zero(a->pci.bus), or_zero(a->pci.slot),
                                    or_zero(a->pci.function), first + 1, device_kind_to_string(devices[first]->kind),
                                    second + 1, device_kind_to_string(devices[second]->kind));
        }
}

int domain_caps_check_definition_with(const DomainCaps *caps, const DomainDef *def, VbError *reterr) {
        DeviceDef *const *devices;
        size_t n = domain_def_get_devices(def, &devices);
        int k = check_cpu_mode(caps, def, reterr);

        if (k < 0)
                return k;
        /* the qemu driver's rule in libvirt (addresses reserved at define), held by any backend here */
        k = domain_check_pci_addresses(def, reterr);
        if (k < 0)
                return k;

        for (size_t i = 0; i < n; i++) {
                int r = domain_caps_check_device_with(caps, devices[i], reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The capabilities became known (or could not be found): the calls and definitions core keeps for them
 * run (domain-define.c, domain-queue.c). Several waiters may fire for one probe: only the first finds
 * anything to do. */
static void on_caps_ready(void *userdata) {
        Manager *m = userdata;

        m->caps_probing = false;
        m->caps_wait_over = false;
        m->caps_wait_timer = sd_event_source_disable_unref(m->caps_wait_timer);
        manager_on_caps_ready(m);
}

static VbDomainCapsQuery query_of(const DomainDef *def) {
        /* The emulator is the driver's (qemu runs its own binary whatever <emulator> says). */
        return (VbDomainCapsQuery) {
                .arch = def->os.arch,
                .machine = def->os.machine,
                .virttype = domain_virt_type_to_string(def->virt_type),
        };
}

bool domain_caps_pending(Manager *m, const DomainDef *def) {
        _cleanup_(domain_caps_unrefp) DomainCaps *caps = NULL;
        const VbDomainCapsQuery q = query_of(def);
        VbError e = VB_ERROR_NULL;
        int r;

        if (!def || !m->driver->ops->domain_capabilities)
                return false;
        r = m->driver->ops->domain_capabilities(m->driver, &q, on_caps_ready, m, &caps, &e);
        vb_error_free(&e);
        if (r != 0)
                return false; /* known, or failed: the check itself answers */
        if (!m->caps_probing)
                log_debug("Calls that check definitions wait for the capabilities of the hypervisor.");
        m->caps_probing = true;
        return true;
}

void manager_caps_cancel(Manager *m) {
        if (m->driver && m->driver->ops->capabilities_cancel)
                m->driver->ops->capabilities_cancel(m->driver, m);
        m->caps_probing = false;
}

/* The capabilities def would run with; 0 and *ret NULL when there is nothing to check against. Never
 * waits unless wait is set (start-up only): when they are still being probed, -EAGAIN with reterr (the
 * callers ask domain_caps_pending() first and keep the call until the probe ended, so this is only seen
 * when the emulator changed in between). */
static int caps_for(Manager *m, const DomainDef *def, bool wait, DomainCaps **ret, VbError *reterr) {
        VbError e = VB_ERROR_NULL;
        const VbDomainCapsQuery q = query_of(def);
        int r;

        *ret = NULL;
        if (!m->driver->ops->domain_capabilities)
                return 0;
        r = m->driver->ops->domain_capabilities(m->driver, &q, wait ? NULL : on_caps_ready, wait ? NULL : m, ret,
                                                &e);
        if (r == 0) {
                m->caps_probing = true;
                vb_error_free(&e);
                if (m->caps_wait_over) {
                        /* DefineDomain waited long enough (domain-define.c): as when the probe fails. */
                        log_warning("Not checking domain '%s' against the capabilities: they are still being "
                                    "probed.", strempty(def->name));
                        return 0;
                }
                vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The capabilities of the hypervisor are being "
                             "probed (its emulator changed); try again in a moment");
                return -EAGAIN;
        }
        if (r >= 0) {
                vb_error_free(&e);
                return 0;
        }
        if (e.code == VB_ERROR_INVALID_ARGUMENT || e.code == VB_ERROR_NOT_SUPPORTED) {
                r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Domain '%s' cannot run here: %s",
                                 strempty(def->name), strempty(e.message));
                vb_error_free(&e);
                return r;
        }
        /* The emulator could not be probed: that is for Start to report; nothing to check against. */
        log_warning("Not checking domain '%s' against the capabilities: %s", strempty(def->name),
                    e.message ?: strerror(-r));
        vb_error_free(&e);
        return 0;
}

static int check_definition(Manager *m, const DomainDef *def, bool wait, VbError *reterr) {
        _cleanup_(domain_caps_unrefp) DomainCaps *caps = NULL;
        int r = caps_for(m, def, wait, &caps, reterr);

        if (r < 0 || !caps)
                return r;
        return domain_caps_check_definition_with(caps, def, reterr);
}

int domain_caps_check_definition(Manager *m, const DomainDef *def, VbError *reterr) {
        return check_definition(m, def, false, reterr);
}

int domain_caps_check_definition_wait(Manager *m, const DomainDef *def, VbError *reterr) {
        return check_definition(m, def, true, reterr);
}

int domain_caps_check_device(Manager *m, const DomainDef *def, const DeviceDef *dev, VbError *reterr) {
        _cleanup_(domain_caps_unrefp) DomainCaps *caps = NULL;
        int r = caps_for(m, def, false, &caps, reterr);

        if (r < 0 || !caps)
                return r;
        return domain_caps_check_device_with(caps, dev, reterr);
}
