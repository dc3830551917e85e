/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain capabilities of one QEMU binary for a virt type and machine: every value comes from the probe
 * (QOM types, commands, display types, machines, CPU definitions), the host (KVM, VFIO) and the firmware
 * descriptors on disk (QEMU's interop format: the .json files in /usr/share/qemu/firmware). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "drivers/qemu/qemu-caps.h"
#include "drivers/qemu/qemu-cpu.h"
#include "drivers/qemu/qemu-firmware.h"
#include "drivers/qemu/qemu-monitor.h"

typedef enum MachineFamily {
        MACHINE_I440FX,
        MACHINE_Q35,
        MACHINE_ISAPC,
        MACHINE_MICROVM,
        MACHINE_OTHER,
} MachineFamily;

static MachineFamily machine_family(const char *name) {
        if (strncmp(name, "pc-i440fx-", 10) == 0 || streq(name, "pc"))
                return MACHINE_I440FX;
        if (strncmp(name, "pc-q35-", 7) == 0 || streq(name, "q35"))
                return MACHINE_Q35;
        if (streq(name, "isapc"))
                return MACHINE_ISAPC;
        if (streq(name, "microvm"))
                return MACHINE_MICROVM;
        return MACHINE_OTHER;
}

/* A value offered when QEMU has the type that provides it. */
typedef struct TypeValue {
        const char *value;
        const char *types[3]; /* any of them */
} TypeValue;

static bool has_any(const QemuCaps *c, const char * const *types) {
        for (size_t i = 0; i < 3 && types[i]; i++)
                if (qemu_caps_has_type(c, types[i]))
                        return true;
        return false;
}

static int add_typed(DomainCapsBlock *b, const QemuCaps *c, const char *name, const TypeValue *v, size_t n) {
        int r = domain_caps_enum_add(b, name, NULL);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (has_any(c, v[i].types))
                        r = domain_caps_enum_add(b, name, v[i].value);
        return r;
}

static int add_values(DomainCapsBlock *b, const char *name, const char * const *values) {
        int r = domain_caps_enum_add(b, name, NULL);
        for (size_t i = 0; r >= 0 && values[i]; i++)
                r = domain_caps_enum_add(b, name, values[i]);
        return r;
}

/* virtio models: the plain type, and its transitional / non-transitional variants when present. */
static int add_virtio_models(DomainCapsBlock *b, const QemuCaps *c, const char *base) {
        char t[128], nt[128];
        int r = domain_caps_enum_add(b, "model", NULL);

        snprintf(t, sizeof t, "%s-transitional", base);
        snprintf(nt, sizeof nt, "%s-non-transitional", base);
        if (r >= 0 && qemu_caps_has_type(c, base))
                r = domain_caps_enum_add(b, "model", "virtio");
        if (r >= 0 && qemu_caps_has_type(c, t))
                r = domain_caps_enum_add(b, "model", "virtio-transitional");
        if (r >= 0 && qemu_caps_has_type(c, nt))
                r = domain_caps_enum_add(b, "model", "virtio-non-transitional");
        return r;
}

/* Whether the machine has a PCI bus for devices: the PC boards always; microvm when QEMU has the generic
 * PCIe host it adds with pcie=on; isapc never. */
static bool machine_has_pci(const QemuCaps *c, MachineFamily family) {
        if (family == MACHINE_I440FX || family == MACHINE_Q35)
                return true;
        return family == MACHINE_MICROVM && qemu_caps_has_type(c, "gpex-pcihost");
}

/* Whether the machine can hold a USB host controller on PCI. (microvm's own sysbus xHCI, usb=on, is not
 * used: QEMU 7.2 makes it after the command line's devices, so that no -device finds its bus.) */
static bool machine_has_usb(const QemuCaps *c, MachineFamily family) {
        static const char * const pci_hcds[] = { "qemu-xhci", "nec-usb-xhci", "piix3-usb-uhci" };

        if (!machine_has_pci(c, family))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(pci_hcds); i++)
                if (qemu_caps_has_type(c, pci_hcds[i]))
                        return true;
        return false;
}

static int disk_caps(DomainCaps *dc, const QemuCaps *c, MachineFamily family) {
        DomainCapsBlock *b = &dc->devices[DOMAIN_CAPS_DISK];
        /* The floppy controller needs the ISA DMA controller of a PC board (microvm has none: QEMU
         * refuses isa-fdc there, "ISA controller does not support DMA"). */
        bool pc = family == MACHINE_I440FX || family == MACHINE_Q35 || family == MACHINE_ISAPC;
        bool pci = machine_has_pci(c, family);
        const TypeValue devices[] = {
                { "disk", { "scsi-hd", "ide-hd", "virtio-blk-pci" } },
                { "cdrom", { "scsi-cd", "ide-cd" } },
                { "floppy", { pc ? "isa-fdc" : NULL } },
                { "lun", { "scsi-block" } },
        };
        const TypeValue buses[] = {
                /* IDE is built into i440fx and isapc boards; q35 has none (its disks sit on AHCI). */
                { "ide", { family == MACHINE_I440FX || family == MACHINE_ISAPC ? "ide-hd" : NULL } },
                { "fdc", { pc ? "isa-fdc" : NULL } },
                /* Every SCSI controller and the virtio disk the qemu driver makes sit on PCI (isapc has none). */
                { "scsi", { pci ? "virtio-scsi-pci" : NULL } },
                { "virtio", { pci ? "virtio-blk-pci" : NULL } },
                { "usb", { machine_has_usb(c, family) ? "usb-storage" : NULL } },
                /* AHCI is a PCI device: q35's built-in one, or ich9-ahci on any PCI bus. */
                { "sata", { pci ? "ich9-ahci" : NULL } },
        };
        int r;

        b->supported = true;
        if ((r = add_typed(b, c, "diskDevice", devices, ELEMENTSOF(devices))) < 0 ||
            (r = add_typed(b, c, "bus", buses, ELEMENTSOF(buses))) < 0)
                return r;
        return add_virtio_models(b, c, "virtio-blk-pci");
}

static int graphics_caps(DomainCaps *dc, const QemuCaps *c) {
        DomainCapsBlock *b = &dc->devices[DOMAIN_CAPS_GRAPHICS];
        int r = domain_caps_enum_add(b, "type", NULL);

        b->supported = true;
        if (r >= 0 && hashmap_get(c->displays, "sdl"))
                r = domain_caps_enum_add(b, "type", "sdl");
        if (r >= 0 && hashmap_get(c->commands, "query-vnc"))
                r = domain_caps_enum_add(b, "type", "vnc");
        if (r >= 0 && hashmap_get(c->commands, "query-spice"))
                r = domain_caps_enum_add(b, "type", "spice");
        if (r >= 0 && hashmap_get(c->displays, "egl-headless"))
                r = domain_caps_enum_add(b, "type", "egl-headless");
        if (r >= 0 && hashmap_get(c->displays, "dbus"))
                r = domain_caps_enum_add(b, "type", "dbus");
        return r;
}

static int video_caps(DomainCaps *dc, const QemuCaps *c) {
        static const TypeValue models[] = {
                { "vga", { "VGA" } },          { "cirrus", { "cirrus-vga" } },
                { "vmvga", { "vmware-svga" } }, { "qxl", { "qxl-vga", "qxl" } },
                { "virtio", { "virtio-vga", "virtio-gpu-pci" } }, { "bochs", { "bochs-display" } },
                { "ramfb", { "ramfb" } },
        };
        DomainCapsBlock *b = &dc->devices[DOMAIN_CAPS_VIDEO];
        int r = add_typed(b, c, "modelType", models, ELEMENTSOF(models));

        b->supported = true;
        return r < 0 ? r : domain_caps_enum_add(b, "modelType", "none");
}

static int hostdev_caps(DomainCaps *dc, const QemuCaps *c, const QemuHostFacts *host) {
        static const char * const modes[] = { "subsystem", NULL };
        static const char * const policies[] = { "default", "mandatory", "requisite", "optional", NULL };
        const TypeValue subsys[] = {
                { "usb", { "usb-host" } },
                { "pci", { "vfio-pci" } },
                { "scsi", { "scsi-generic" } },
        };
        DomainCapsBlock *b = &dc->devices[DOMAIN_CAPS_HOSTDEV];
        int r;

        b->supported = true;
        if ((r = add_values(b, "mode", modes)) < 0 || (r = add_values(b, "startupPolicy", policies)) < 0 ||
            (r = add_typed(b, c, "subsysType", subsys, ELEMENTSOF(subsys))) < 0 ||
            (r = domain_caps_enum_add(b, "capsType", NULL)) < 0 || (r = domain_caps_enum_add(b, "pciBackend", NULL)) < 0)
                return r;
        /* PCI passthrough needs VFIO on this host (the device node and IOMMU groups) and in QEMU. */
        if (host->vfio_usable && qemu_caps_has_type(c, "vfio-pci")) {
                if ((r = domain_caps_enum_add(b, "pciBackend", "default")) < 0 ||
                    (r = domain_caps_enum_add(b, "pciBackend", "vfio")) < 0)
                        return r;
        }
        return 0;
}

static int misc_device_caps(DomainCaps *dc, const QemuCaps *c, MachineFamily family) {
        static const TypeValue rng_backends[] = {
                { "random", { "rng-random" } }, { "egd", { "rng-egd" } }, { "builtin", { "rng-builtin" } },
        };
        static const TypeValue fs_drivers[] = {
                { "path", { "virtio-9p-pci", "virtio-9p-device" } },
                { "handle", { "virtio-9p-pci", "virtio-9p-device" } },
                { "virtiofs", { "vhost-user-fs-pci" } },
        };
        static const TypeValue tpm_models[] = {
                { "tpm-tis", { "tpm-tis" } }, { "tpm-crb", { "tpm-crb" } }, { "spapr-tpm-proxy", { "spapr-tpm-proxy" } },
        };
        static const TypeValue tpm_backends[] = {
                { "passthrough", { "tpm-passthrough" } }, { "emulator", { "tpm-emulator" } },
        };
        static const TypeValue redir_buses[] = { { "usb", { "usb-redir" } } };
        static const TypeValue channel_types[] = {
                { "pty", { "virtserialport" } }, { "unix", { "virtserialport" } }, { "spicevmc", { "chardev-spicevmc" } },
        };
        static const TypeValue crypto_models[] = { { "virtio", { "virtio-crypto-pci", "virtio-crypto-device" } } };
        static const TypeValue crypto_backends[] = { { "builtin", { "cryptodev-backend-builtin" } },
                                                      { "lkcf", { "cryptodev-backend-lkcf" } } };
        static const TypeValue backend_types[] = { { "default", { "netdev" } } };
        const TypeValue panic_models[] = {
                { "isa", { family == MACHINE_MICROVM ? NULL : "pvpanic" } },
                { "pvpanic", { "pvpanic-pci" } },
        };
        DomainCapsBlock *d = dc->devices;
        int r;

        for (size_t i = 0; i < _DOMAIN_CAPS_DEVICE_MAX; i++)
                d[i].supported = true;
        if ((r = add_virtio_models(&d[DOMAIN_CAPS_RNG], c, "virtio-rng-pci")) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_RNG], c, "backendModel", rng_backends, ELEMENTSOF(rng_backends))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_FILESYSTEM], c, "driverType", fs_drivers, ELEMENTSOF(fs_drivers))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_TPM], c, "model", tpm_models, ELEMENTSOF(tpm_models))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_TPM], c, "backendModel", tpm_backends, ELEMENTSOF(tpm_backends))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_REDIRDEV], c, "bus", redir_buses, ELEMENTSOF(redir_buses))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_CHANNEL], c, "type", channel_types, ELEMENTSOF(channel_types))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_CRYPTO], c, "model", crypto_models, ELEMENTSOF(crypto_models))) < 0 ||
            (r = domain_caps_enum_add(&d[DOMAIN_CAPS_CRYPTO], "type", "qemu")) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_CRYPTO], c, "backendModel", crypto_backends, ELEMENTSOF(crypto_backends))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_INTERFACE], c, "backendType", backend_types, ELEMENTSOF(backend_types))) < 0 ||
            (r = add_typed(&d[DOMAIN_CAPS_PANIC], c, "model", panic_models, ELEMENTSOF(panic_models))) < 0)
                return r;
        /* A device kind with nothing to offer is not supported. */
        for (size_t i = 0; i < _DOMAIN_CAPS_DEVICE_MAX; i++)
                if (i != DOMAIN_CAPS_HOSTDEV && i != DOMAIN_CAPS_VIDEO && d[i].n_enums > 0 &&
                    d[i].enums[0].n_values == 0)
                        d[i].supported = false;
        if (d[DOMAIN_CAPS_TPM].supported && domain_caps_enum_find(&d[DOMAIN_CAPS_TPM], "backendModel")->n_values > 0)
                r = domain_caps_enum_add(&d[DOMAIN_CAPS_TPM], "backendVersion", "2.0");
        /* The interface backend "default" is QEMU's own netdev; always there. */
        d[DOMAIN_CAPS_INTERFACE].supported = true;
        if (r >= 0)
                r = domain_caps_enum_add(&d[DOMAIN_CAPS_INTERFACE], "backendType", "default");
        return r;
}

/* Firmware ------------------------------------------------------------------------------------------------- */

/* What the descriptors (qemu-firmware.c) offer for arch and machine, of those whose images exist. */
static int os_caps(DomainCaps *dc, const QemuCaps *c, const QemuHostFacts *host, const char *machine) {
        _cleanup_(qemu_firmware_list_done) QemuFirmwareList l = {};
        const char *qemu_arch = qemu_caps_arch_to_qemu(c->arch) ?: c->arch;
        bool bios = false, efi = false, secure = false, insecure = false, flash = false, rom = false;
        int r;

        r = qemu_firmware_list_load(host->firmware_dirs, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                const QemuFirmware *f = &l.items[i];

                if (access(f->executable, R_OK) < 0 || !qemu_firmware_targets(f, qemu_arch, machine))
                        continue;
                efi = efi || f->uefi;
                bios = bios || f->bios;
                secure = secure || f->secure_boot;
                insecure = insecure || !f->secure_boot;
                flash = flash || f->flash;
                rom = rom || !f->flash;
                r = domain_caps_add_loader(dc, f->executable);
                if (r < 0)
                        return r;
        }

        /* Any firmware file can be a ROM (-bios) on x86, the loader type='rom' of qemu-command.c. */
        if (streq(qemu_arch, "x86_64") || streq(qemu_arch, "i386"))
                rom = true;
        /* SeaBIOS is QEMU's built-in default on x86 PCs; it comes with QEMU's own data files. */
        if (!bios && (streq(qemu_arch, "x86_64") || streq(qemu_arch, "i386")) &&
            (access("/usr/share/qemu/bios-256k.bin", R_OK) == 0 || access("/usr/share/seabios/bios-256k.bin", R_OK) == 0))
                bios = true;
        dc->os.supported = true;
        if ((r = domain_caps_enum_add(&dc->os, "firmware", NULL)) < 0 ||
            (bios && (r = domain_caps_enum_add(&dc->os, "firmware", "bios")) < 0) ||
            (efi && (r = domain_caps_enum_add(&dc->os, "firmware", "efi")) < 0))
                return r;
        dc->loader.present = true;
        dc->loader.supported = true;
        if ((r = domain_caps_enum_add(&dc->loader, "type", NULL)) < 0 ||
            (rom && (r = domain_caps_enum_add(&dc->loader, "type", "rom")) < 0) ||
            (flash && (r = domain_caps_enum_add(&dc->loader, "type", "pflash")) < 0) ||
            (r = domain_caps_enum_add(&dc->loader, "readonly", "yes")) < 0 ||
            (r = domain_caps_enum_add(&dc->loader, "readonly", "no")) < 0 ||
            (r = domain_caps_enum_add(&dc->loader, "secure", NULL)) < 0 ||
            (secure && (r = domain_caps_enum_add(&dc->loader, "secure", "yes")) < 0) ||
            /* secure='no' asks for nothing (no SMM): any loader takes it, a ROM too. */
            ((insecure || rom) && (r = domain_caps_enum_add(&dc->loader, "secure", "no")) < 0))
                return r;
        return 0;
}

/* CPU ------------------------------------------------------------------------------------------------------ */

/* host-model: the named model closest to what the accelerator offers, with the features to add and
 * to take away (qemu-cpu.c). */
static int host_model_caps(DomainCaps *dc, const QemuCaps *c, bool kvm) {
        _cleanup_(qemu_host_model_freep) QemuHostModel *hm = NULL;
        int r = qemu_cpu_host_model(c, kvm, &hm);

        if (r == -ENODATA)
                return 0;
        if (r < 0)
                return r;
        dc->cpu_host_model = true;
        if (!(dc->host_model = strdup(hm->model)) || (hm->vendor && !(dc->host_model_vendor = strdup(hm->vendor))))
                return -ENOMEM;
        for (size_t i = 0; i < hm->n_require; i++)
                if ((r = domain_caps_add_host_model_feature(dc, hm->require[i], true)) < 0)
                        return r;
        for (size_t i = 0; i < hm->n_disable; i++)
                if ((r = domain_caps_add_host_model_feature(dc, hm->disable[i], false)) < 0)
                        return r;
        return 0;
}

static int cpu_caps(DomainCaps *dc, const QemuCaps *c, bool kvm) {
        struct json_object *cpus = qemu_caps_cpus(c, kvm);
        int r = 0;

        dc->cpu_present = true;
        /* "host" exists only under KVM; both it and "max" take a migratable=on|off property. */
        dc->cpu_host_passthrough = dc->cpu_host_passthrough_migratable = kvm;
        r = host_model_caps(dc, c, kvm);
        if (r < 0)
                return r;
        for (size_t i = 0; json_object_is_type(cpus, json_type_array) && i < json_object_array_length(cpus); i++) {
                struct json_object *m = json_object_array_get_idx(cpus, i), *unavail = qemu_json_get(m, "unavailable-features"), *dep;
                const char *name = qemu_json_string(m, "name");
                size_t nb = json_object_is_type(unavail, json_type_array) ? json_object_array_length(unavail) : 0;
                char *blockers[nb + 1];

                if (!name)
                        continue;
                if (streq(name, "max")) {
                        dc->cpu_maximum = dc->cpu_maximum_migratable = true;
                        continue;
                }
                if (!qemu_caps_cpu_listed(cpus, name))
                        continue;
                for (size_t j = 0; j < nb; j++)
                        blockers[j] = (char *) json_object_get_string(json_object_array_get_idx(unavail, j));
                dep = qemu_json_get(m, "deprecated");
                r = domain_caps_add_cpu_model(dc, name, qemu_cpu_model_vendor(c, name),
                                              unavail ? (nb == 0 ? DOMAIN_CAPS_USABLE_YES : DOMAIN_CAPS_USABLE_NO)
                                                      : DOMAIN_CAPS_USABLE_UNKNOWN,
                                              dep && json_object_get_boolean(dep), blockers, nb);
                if (r < 0)
                        return r;
        }
        dc->cpu_custom = dc->n_cpu_models > 0;
        return 0;
}

/* The Hyper-V enlightenments this QEMU has a CPU property for. Under KVM each one qemu-cpu.c passes on;
 * under TCG only the two that are CPUID values (QEMU emulates the rest only with KVM, and start refuses
 * them there). */
static int hyperv_caps(DomainCaps *dc, const QemuCaps *c, bool kvm) {
        static const struct {
                const char *xml, *prop;
        } values[] = { { "spinlocks", "hv-spinlocks" }, { "vendor_id", "hv-vendor-id" } };
        int r = 0;

        if (!qemu_json_get(c->doc, "cpu-hv-properties"))
                return 0;
        dc->hyperv.supported = true;
        r = domain_caps_enum_add(&dc->hyperv, "features", NULL);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(values); i++)
                if (qemu_cpu_has_property(c, values[i].prop))
                        r = domain_caps_enum_add(&dc->hyperv, "features", values[i].xml);
        /* Sub-elements (stimer's <direct>, ...) are not features of their own in the capabilities. */
        for (const QemuHypervFeature *f = qemu_cpu_hyperv_features(); kvm && r >= 0 && f->xml; f++)
                if (!f->parent && qemu_cpu_has_property(c, f->prop))
                        r = domain_caps_enum_add(&dc->hyperv, "features", f->xml);
        return r;
}

static int build(QemuCaps *c, const QemuHostFacts *host, bool kvm, const QemuCapsMachine *machine, DomainCaps *dc) {
        MachineFamily family = machine_family(machine->name);
        static const char * const sources[] = { "file", "anonymous", "memfd", NULL };
        int r;

        if (!(dc->path = strdup(c->emulator)) || !(dc->domain = strdup(kvm ? "kvm" : "qemu")) ||
            !(dc->machine = strdup(machine->name)) || !(dc->arch = strdup(c->arch)))
                return -ENOMEM;
        dc->vcpu_max = machine->max_cpus;
        dc->iothreads = qemu_caps_has_type(c, "iothread") ? DOMAIN_CAPS_YES : DOMAIN_CAPS_NO;
        if ((r = os_caps(dc, c, host, machine->name)) < 0 || (r = cpu_caps(dc, c, kvm)) < 0)
                return r;
        dc->memory_backing.supported = true;
        if ((r = domain_caps_enum_add(&dc->memory_backing, "sourceType", NULL)) < 0)
                return r;
        for (size_t i = 0; sources[i]; i++) {
                static const char * const backends[] = { "memory-backend-file", "memory-backend-ram", "memory-backend-memfd" };
                if (qemu_caps_has_type(c, backends[i]) &&
                    (r = domain_caps_enum_add(&dc->memory_backing, "sourceType", sources[i])) < 0)
                        return r;
        }
        dc->devices_present = true;
        if ((r = misc_device_caps(dc, c, family)) < 0 || (r = disk_caps(dc, c, family)) < 0 ||
            (r = graphics_caps(dc, c)) < 0 || (r = video_caps(dc, c)) < 0 || (r = hostdev_caps(dc, c, host)) < 0)
                return r;
        dc->features_present = true;
        dc->features[DOMAIN_CAPS_FEATURE_GIC] = DOMAIN_CAPS_NO;
        dc->features[DOMAIN_CAPS_FEATURE_VMCOREINFO] = qemu_caps_has_type(c, "vmcoreinfo");
        dc->features[DOMAIN_CAPS_FEATURE_GENID] = qemu_caps_has_type(c, "vmgenid");
        dc->features[DOMAIN_CAPS_FEATURE_BACKING_STORE_INPUT] = DOMAIN_CAPS_YES;
        dc->features[DOMAIN_CAPS_FEATURE_BACKUP] = hashmap_get(c->commands, "blockdev-backup") != NULL;
        dc->features[DOMAIN_CAPS_FEATURE_PS2] = family == MACHINE_I440FX || family == MACHINE_Q35 || family == MACHINE_ISAPC;
        dc->features[DOMAIN_CAPS_FEATURE_SEV] = hashmap_get(c->commands, "query-sev-capabilities") && kvm &&
                                                qemu_caps_has_type(c, "sev-guest") && access("/dev/sev", F_OK) == 0;
        dc->features[DOMAIN_CAPS_FEATURE_SGX] = kvm && qemu_caps_has_type(c, "memory-backend-epc") &&
                                                access("/dev/sgx_vepc", F_OK) == 0;
        dc->features[DOMAIN_CAPS_FEATURE_LAUNCH_SECURITY] = dc->features[DOMAIN_CAPS_FEATURE_SEV];
        return hyperv_caps(dc, c, kvm);
}

int qemu_caps_domain_caps(QemuCaps *c, const QemuHostFacts *host, const char *virttype,
                          const QemuCapsMachine *machine, DomainCaps **ret) {
        _cleanup_(domain_caps_unrefp) DomainCaps *dc = NULL;
        char key[256];
        int r;

        snprintf(key, sizeof key, "%s/%s/%d", virttype, machine->name, host->vfio_usable);
        dc = hashmap_get(c->domain_caps, key);
        if (dc) {
                *ret = domain_caps_ref(dc);
                dc = NULL;
                return 0;
        }
        dc = domain_caps_new();
        if (!dc)
                return -ENOMEM;
        r = build(c, host, streq(virttype, "kvm"), machine, dc);
        if (r < 0)
                return r;
        /* The map owns a copy of the key (freed by qemu_caps_unref). */
        {
                char *k = strdup(key);
                if (!k)
                        return -ENOMEM;
                free(dc->xml);
                dc->xml = NULL;
                r = hashmap_put(c->domain_caps, k, dc);
                if (r < 0) {
                        free(k);
                        return r;
                }
        }
        *ret = domain_caps_ref(dc);
        dc = NULL;
        return 0;
}
