/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test driver's capabilities: a fixed set that describes its simulated hypervisor (documented in
 * docs/dbus-api.md, "The test driver's capabilities"). Nothing here is probed:
 *   emulator /usr/bin/virtbus-test-emulator, arches x86_64 (default) and i686, virt type 'test';
 *   machines pc-i440fx-test (alias pc, the default; IDE, SATA, SCSI, virtio, USB, floppy buses, 255 vCPUs)
 *   and pc-q35-test (alias q35; the same without IDE, 288 vCPUs);
 *   PCI passthrough with VFIO (the simulated host has an IOMMU), firmware bios and efi. */
#include <stdio.h>

#include "conf/domaincaps-conf.h"
#include "conf/hostcaps-conf.h"
#include "drivers/test-driver-caps.h"
#include "util/strbuf.h"

#define TEST_EMULATOR "/usr/bin/virtbus-test-emulator"

static const struct {
        const char *name, *alias;
        unsigned max_cpus;
        bool ide;
} test_machines[] = {
        { "pc-i440fx-test", "pc", 255, true },
        { "pc-q35-test", "q35", 288, false },
};

static const char * const test_arches[] = { "x86_64", "i686" };

typedef struct EnumSpec {
        DomainCapsDevice device;
        const char *name;
        const char *values[8];
} EnumSpec;

static const EnumSpec test_device_enums[] = {
        { DOMAIN_CAPS_DISK, "diskDevice", { "disk", "cdrom", "floppy", "lun" } },
        { DOMAIN_CAPS_DISK, "bus", { "fdc", "scsi", "virtio", "usb", "sata" } }, /* + ide on pc */
        { DOMAIN_CAPS_DISK, "model", { "virtio", "virtio-transitional", "virtio-non-transitional" } },
        { DOMAIN_CAPS_GRAPHICS, "type", { "vnc", "spice" } },
        { DOMAIN_CAPS_VIDEO, "modelType", { "vga", "cirrus", "virtio", "none" } },
        { DOMAIN_CAPS_HOSTDEV, "mode", { "subsystem" } },
        { DOMAIN_CAPS_HOSTDEV, "startupPolicy", { "default", "mandatory", "requisite", "optional" } },
        { DOMAIN_CAPS_HOSTDEV, "subsysType", { "usb", "pci", "scsi" } },
        { DOMAIN_CAPS_HOSTDEV, "capsType", {} },
        { DOMAIN_CAPS_HOSTDEV, "pciBackend", { "default", "vfio" } },
        { DOMAIN_CAPS_RNG, "model", { "virtio" } },
        { DOMAIN_CAPS_RNG, "backendModel", { "random", "builtin" } },
        { DOMAIN_CAPS_FILESYSTEM, "driverType", { "path" } },
        { DOMAIN_CAPS_TPM, "model", { "tpm-tis", "tpm-crb" } },
        { DOMAIN_CAPS_TPM, "backendModel", { "emulator" } },
        { DOMAIN_CAPS_TPM, "backendVersion", { "2.0" } },
        { DOMAIN_CAPS_REDIRDEV, "bus", { "usb" } },
        { DOMAIN_CAPS_CHANNEL, "type", { "pty", "unix" } },
        { DOMAIN_CAPS_CRYPTO, "model", { "virtio" } },
        { DOMAIN_CAPS_CRYPTO, "type", { "qemu" } },
        { DOMAIN_CAPS_CRYPTO, "backendModel", { "builtin" } },
        { DOMAIN_CAPS_INTERFACE, "backendType", { "default" } },
        { DOMAIN_CAPS_PANIC, "model", { "isa" } },
};

static char *machine_list(void) {
        StrBuf b = STRBUF_NULL;
        for (size_t i = 0; i < ELEMENTSOF(test_machines); i++)
                strbuf_appendf(&b, "%s'%s' ('%s')", i > 0 ? ", " : "", test_machines[i].name, test_machines[i].alias);
        return strbuf_steal(&b);
}

static int add_enum(DomainCapsBlock *b, const char *name, const char * const *values, size_t n) {
        int r = domain_caps_enum_add(b, name, NULL);
        for (size_t i = 0; r >= 0 && i < n && values[i]; i++)
                r = domain_caps_enum_add(b, name, values[i]);
        return r;
}

static int build(const char *arch, size_t m, DomainCaps **ret) {
        _cleanup_(domain_caps_unrefp) DomainCaps *c = domain_caps_new();
        static const char * const firmware[] = { "bios", "efi" }, * const types[] = { "rom", "pflash" },
                                  * const ro[] = { "yes", "no" }, * const secure[] = { "no" },
                                  * const sources[] = { "file", "anonymous", "memfd" };
        char *blockers[] = { (char *) "avx2", (char *) "bmi2" };
        int r;

        if (!c || !(c->path = strdup(TEST_EMULATOR)) || !(c->domain = strdup("test")) ||
            !(c->machine = strdup(test_machines[m].name)) || !(c->arch = strdup(arch)))
                return -ENOMEM;
        c->vcpu_max = test_machines[m].max_cpus;
        c->iothreads = DOMAIN_CAPS_YES;
        c->os.supported = c->loader.supported = c->loader.present = true;
        if (add_enum(&c->os, "firmware", firmware, 2) < 0 ||
            domain_caps_add_loader(c, "/usr/share/virtbus-test/OVMF_CODE.fd") < 0 ||
            add_enum(&c->loader, "type", types, 2) < 0 || add_enum(&c->loader, "readonly", ro, 2) < 0 ||
            add_enum(&c->loader, "secure", secure, 1) < 0)
                return -ENOMEM;
        c->cpu_present = c->cpu_host_passthrough = c->cpu_maximum = c->cpu_custom = true;
        c->cpu_host_passthrough_migratable = c->cpu_maximum_migratable = true;
        /* The simulated host's CPU: qemu64 and a feature more (host-model domains start with it). */
        c->cpu_host_model = true;
        if (!(c->host_model = strdup("qemu64")) || domain_caps_add_host_model_feature(c, "x2apic", true) < 0)
                return -ENOMEM;
        if (domain_caps_add_cpu_model(c, "qemu64", "unknown", DOMAIN_CAPS_USABLE_YES, false, NULL, 0) < 0 ||
            domain_caps_add_cpu_model(c, "Haswell", "Intel", DOMAIN_CAPS_USABLE_NO, false, blockers, 2) < 0)
                return -ENOMEM;
        c->memory_backing.supported = true;
        if (add_enum(&c->memory_backing, "sourceType", sources, 3) < 0)
                return -ENOMEM;
        c->devices_present = true;
        for (size_t i = 0; i < _DOMAIN_CAPS_DEVICE_MAX; i++)
                c->devices[i].supported = true;
        for (size_t i = 0; i < ELEMENTSOF(test_device_enums); i++) {
                const EnumSpec *e = &test_device_enums[i];
                DomainCapsBlock *b = &c->devices[e->device];

                if (e->device == DOMAIN_CAPS_DISK && streq(e->name, "bus") && test_machines[m].ide &&
                    domain_caps_enum_add(b, "bus", "ide") < 0)
                        return -ENOMEM;
                if (add_enum(b, e->name, e->values, ELEMENTSOF(e->values)) < 0)
                        return -ENOMEM;
        }
        c->features_present = true;
        for (size_t i = 0; i < _DOMAIN_CAPS_FEATURE_MAX; i++)
                c->features[i] = DOMAIN_CAPS_NO;
        c->features[DOMAIN_CAPS_FEATURE_VMCOREINFO] = c->features[DOMAIN_CAPS_FEATURE_GENID] =
                c->features[DOMAIN_CAPS_FEATURE_BACKING_STORE_INPUT] = c->features[DOMAIN_CAPS_FEATURE_BACKUP] =
                        c->features[DOMAIN_CAPS_FEATURE_PS2] = DOMAIN_CAPS_YES;
        r = 0;
        *ret = TAKE_PTR(c);
        return r;
}

/* Built once per arch and machine; kept for the life of the process (a fixed set). */
static DomainCaps *test_caps_cache[ELEMENTSOF(test_arches)][ELEMENTSOF(test_machines)];

int test_domain_capabilities(VbDriver *drv, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                             DomainCaps **ret, VbError *reterr) {
        size_t a = 0, m = 0;

        if (!isempty(q->emulator) && !streq(q->emulator, TEST_EMULATOR))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No emulator '%s'; the test driver has '%s'",
                                    q->emulator, TEST_EMULATOR);
        if (!isempty(q->arch)) {
                for (a = 0; a < ELEMENTSOF(test_arches) && !streq(test_arches[a], q->arch); a++)
                        ;
                if (a == ELEMENTSOF(test_arches))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "No emulator for arch '%s'; the test driver runs 'x86_64' and 'i686'", q->arch);
        }
        if (!isempty(q->virttype) && !streq(q->virttype, "test"))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Unknown virt type '%s'; the test driver runs 'test'", q->virttype);
        if (!isempty(q->machine)) {
                for (m = 0; m < ELEMENTSOF(test_machines) && !streq(test_machines[m].name, q->machine) &&
                            !streq(test_machines[m].alias, q->machine);
                     m++)
                        ;
                if (m == ELEMENTSOF(test_machines)) {
                        _cleanup_free_ char *list = machine_list();
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "The emulator '%s' has no machine '%s'; it has %s", TEST_EMULATOR,
                                            q->machine, strempty(list));
                }
        }
        if (!test_caps_cache[a][m]) {
                int r = build(test_arches[a], m, &test_caps_cache[a][m]);
                if (r < 0)
                        return r;
        }
        *ret = domain_caps_ref(test_caps_cache[a][m]);
        return 1;
}

int test_capabilities(VbDriver *drv, HostCaps *caps, VbDriverCapsReady ready, void *userdata, VbError *reterr) {
        for (size_t a = 0; a < ELEMENTSOF(test_arches); a++) {
                HostCapsGuest *g = host_caps_add_guest(caps, "hvm", test_arches[a], a == 0 ? 64 : 32, TEST_EMULATOR);

                if (!g)
                        return -ENOMEM;
                for (size_t m = 0; m < ELEMENTSOF(test_machines); m++)
                        if (host_caps_guest_add_machine(g, test_machines[m].name, NULL, test_machines[m].max_cpus, false) < 0 ||
                            host_caps_guest_add_machine(g, test_machines[m].alias, test_machines[m].name,
                                                        test_machines[m].max_cpus, false) < 0)
                                return -ENOMEM;
                if (host_caps_guest_add_domain_type(g, "test") < 0)
                        return -ENOMEM;
        }
        return 1;
}
