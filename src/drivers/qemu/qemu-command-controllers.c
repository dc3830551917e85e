/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Controllers on QEMU's command line, before every other device (a device names the bus it sits on, and
 * QEMU wants that bus to exist already): the PCI controllers in index order, each making the bus 'pci.N'
 * (N its index) that <address bus='N'> of the devices behind it names, then the USB, SCSI and
 * virtio-serial controllers that have a guest address. Those without one are made on demand by the first
 * device needing them (qemu-command-devices.c), as before. */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/qemu/qemu-command.h"

typedef struct PciModel {
        const char *model;    /* <controller type='pci' model=> */
        const char *names[3]; /* the QEMU devices <model name=> may choose; the first is the default */
        bool chassis_port;    /* takes chassis= and port= (<target chassis= port=>) */
        bool chassis_nr;      /* takes chassis_nr= (<target chassisNr=>) */
} PciModel;

static const PciModel pci_models[] = {
        { "pcie-root-port", { "pcie-root-port", "ioh3420" }, .chassis_port = true },
        { "pcie-switch-upstream-port", { "x3130-upstream" } },
        { "pcie-switch-downstream-port", { "xio3130-downstream" }, .chassis_port = true },
        { "pci-bridge", { "pci-bridge" }, .chassis_nr = true },
        { "pcie-to-pci-bridge", { "pcie-pci-bridge" } },
};

static const PciModel *pci_model(const char *model) {
        for (size_t i = 0; i < ELEMENTSOF(pci_models); i++)
                if (streq(model, pci_models[i].model))
                        return &pci_models[i];
        return NULL;
}

/* An attribute of <target> as a number (decimal or 0x...), def if absent. */
static int target_uint(const ConfNode *n, const char *attr, uint32_t index, unsigned long max, unsigned long def,
                       unsigned long *ret, VbError *reterr) {
        const char *v = qemu_node_attr(n, "target", attr);
        char *end;

        if (!v) {
                *ret = def;
                return 0;
        }
        *ret = strtoul(v, &end, 0);
        if (!*v || *end || *ret > max)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "PCI controller %u: attribute '%s' of <target> must be a number up to %lu, not '%s'",
                                    index, attr, max, v);
        return 0;
}

static int add_pci_controller(QemuBuildState *s, size_t i, uint32_t index, const char *model, VbError *reterr) {
        const DeviceDef *dev = s->def->devices[i];
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *addr = NULL;
        const PciModel *m;
        const char *name, *root = s->q35 ? "pcie-root" : "pci-root";
        unsigned long chassis, port;
        int r;

        if (!model)
                model = index == 0 ? root : s->q35 ? "pcie-root-port" : "pci-bridge";
        if (streq(model, "pci-root") || streq(model, "pcie-root")) {
                if (!streq(model, root) || index != 0)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "PCI controller %u: model '%s' is not the root bus of a %s machine, "
                                            "whose root is <controller type='pci' index='0' model='%s'/>",
                                            index, model, s->q35 ? "q35" : "pc", root);
                return 0; /* built into the machine */
        }
        if (index == 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI controller index 0 is the machine's root bus ('%s'), not a '%s'", root, model);
        m = pci_model(model);
        if (!m)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI controller model '%s' (index %u) is not supported by the qemu driver (it "
                                    "supports pcie-root-port, pcie-switch-upstream-port, pcie-switch-downstream-port, "
                                    "pci-bridge and pcie-to-pci-bridge)",
                                    model, index);
        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        name = qemu_node_attr(n, "model", "name") ?: m->names[0];
        for (size_t k = 0;; k++) {
                if (k == ELEMENTSOF(m->names) || !m->names[k])
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "PCI controller %u: <model name='%s'/> is not a QEMU device for model '%s' "
                                            "(use '%s')",
                                            index, name, model, m->names[0]);
                if (streq(name, m->names[k]))
                        break;
        }
        /* As libvirt numbers them: the chassis is the index, the port the controller's own devfn. */
        port = dev->address.type == DEVICE_ADDRESS_PCI && dev->address.pci.slot != UINT32_MAX
                       ? (dev->address.pci.slot << 3) |
                                 (dev->address.pci.function == UINT32_MAX ? 0 : dev->address.pci.function)
                       : index;
        r = target_uint(n, m->chassis_nr ? "chassisNr" : "chassis", index, 255, index, &chassis, reterr);
        if (r >= 0 && m->chassis_port)
                r = target_uint(n, "port", index, 255, port & 0xff, &port, reterr);
        if (r < 0)
                return r;
        if (m->chassis_nr && chassis == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "PCI controller %u: attribute 'chassisNr' of <target> must not be 0", index);
        addr = qemu_pci_place_opts(&dev->address, s->q35);
        if (!addr)
                return -ENOMEM;
        if (asprintf(&s->cmd->aliases[i], "pci.%u", index) < 0) {
                s->cmd->aliases[i] = NULL;
                return -ENOMEM;
        }
        qemu_argv_add(&s->cmd->argv, "-device");
        if (m->chassis_port)
                qemu_argv_addf(&s->cmd->argv, "%s,port=%lu,chassis=%lu,id=pci.%u%s", name, port, chassis, index, addr);
        else if (m->chassis_nr)
                qemu_argv_addf(&s->cmd->argv, "%s,chassis_nr=%lu,id=pci.%u%s", name, chassis, index, addr);
        else
                qemu_argv_addf(&s->cmd->argv, "%s,id=pci.%u%s", name, index, addr);
        return 0;
}

/* A USB, SCSI, SATA or virtio-serial controller with a guest address: made here at that address (with the id
 * the devices on it use). Others are left to be made on demand. */
static int add_bus_controller(QemuBuildState *s, size_t i, const char *type, const char *model, uint32_t index) {
        static const struct {
                const char *model, *device;
        } usb[] = {
                { "qemu-xhci", "qemu-xhci" },           { "nec-xhci", "nec-usb-xhci" },
                { "piix3-uhci", "piix3-usb-uhci" },     { "piix4-uhci", "piix4-usb-uhci" },
                { "ich9-ehci1", "ich9-usb-ehci1" },
        };
        const DeviceDef *dev = s->def->devices[i];
        _cleanup_free_ char *addr = NULL;
        const char *device = NULL, *id;
        bool *added;

        if (index != 0 || dev->address.type != DEVICE_ADDRESS_PCI || dev->address.pci.slot == UINT32_MAX)
                return 0;
        if (streq(type, "usb")) {
                if (!model)
                        device = s->q35 ? "qemu-xhci" : "piix3-usb-uhci";
                for (size_t k = 0; model && k < ELEMENTSOF(usb); k++)
                        if (streq(model, usb[k].model))
                                device = usb[k].device;
                id = "usb";
                added = &s->usb_added;
        } else if (streq(type, "scsi")) {
                if (!model || streq(model, "virtio-scsi"))
                        device = "virtio-scsi-pci";
                id = "scsi0";
                added = &s->scsi_added;
        } else if (streq(type, "virtio-serial")) {
                device = "virtio-serial-pci";
                id = "virtio-serial0";
                added = &s->virtio_serial_added;
        } else if (streq(type, "sata")) {
                if (s->builtin_ahci)
                        return 0; /* q35's own, at 00:1f.2 */
                device = "ich9-ahci";
                id = "sata0";
                added = &s->sata_added;
        } else
                return 0;
        if (!device || *added)
                return 0;
        addr = qemu_pci_place_opts(&dev->address, s->q35);
        s->cmd->aliases[i] = strdup(id);
        if (!addr || !s->cmd->aliases[i])
                return -ENOMEM;
        qemu_argv_add(&s->cmd->argv, "-device");
        qemu_argv_addf(&s->cmd->argv, "%s,id=%s%s", device, id, addr);
        *added = true;
        return 0;
}

int qemu_command_add_controllers(QemuBuildState *s, VbError *reterr) {
        const DomainDef *def = s->def;
        const char *type, *model;
        uint32_t index, done = 0;
        bool any_done = false;
        int r;

        /* PCI controllers by increasing index: a bus is on a lower-numbered one (or the root). */
        for (;;) {
                size_t next = SIZE_MAX;
                uint32_t next_index = UINT32_MAX;

                for (size_t i = 0; i < def->n_devices; i++)
                        if (device_controller_get(def->devices[i], &type, &model, &index) && streq_ptr(type, "pci") &&
                            index != UINT32_MAX && (!any_done || index > done) && (next == SIZE_MAX || index < next_index)) {
                                next = i;
                                next_index = index;
                        }
                if (next == SIZE_MAX)
                        break;
                device_controller_get(def->devices[next], &type, &model, &index);
                r = add_pci_controller(s, next, index, model, reterr);
                if (r < 0)
                        return r;
                done = index;
                any_done = true;
        }
        for (size_t i = 0; i < def->n_devices; i++) {
                if (!device_controller_get(def->devices[i], &type, &model, &index) || streq_ptr(type, "pci"))
                        continue;
                r = add_bus_controller(s, i, type, model, index);
                if (r < 0)
                        return r;
        }
        return 0;
}
