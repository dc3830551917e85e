/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"
#include "util/fileio.h"
#include "util/log.h"

static const char * const domain_virt_type_table[_DOMAIN_VIRT_MAX] = {
        [DOMAIN_VIRT_QEMU] = "qemu",
        [DOMAIN_VIRT_KQEMU] = "kqemu",
        [DOMAIN_VIRT_KVM] = "kvm",
        [DOMAIN_VIRT_XEN] = "xen",
        [DOMAIN_VIRT_LXC] = "lxc",
        [DOMAIN_VIRT_UML] = "uml",
        [DOMAIN_VIRT_OPENVZ] = "openvz",
        [DOMAIN_VIRT_TEST] = "test",
        [DOMAIN_VIRT_VMWARE] = "vmware",
        [DOMAIN_VIRT_HYPERV] = "hyperv",
        [DOMAIN_VIRT_VBOX] = "vbox",
        [DOMAIN_VIRT_PHYP] = "phyp",
        [DOMAIN_VIRT_PARALLELS] = "parallels",
        [DOMAIN_VIRT_BHYVE] = "bhyve",
        [DOMAIN_VIRT_VZ] = "vz",
        [DOMAIN_VIRT_HVF] = "hvf",
        [DOMAIN_VIRT_NONE] = "none",
};
DEFINE_STRING_TABLE_LOOKUP(domain_virt_type, DomainVirtType);

static const char * const domain_lifecycle_action_table[_DOMAIN_LIFECYCLE_MAX] = {
        [DOMAIN_LIFECYCLE_UNSET] = NULL,
        [DOMAIN_LIFECYCLE_DESTROY] = "destroy",
        [DOMAIN_LIFECYCLE_RESTART] = "restart",
        [DOMAIN_LIFECYCLE_RENAME_RESTART] = "rename-restart",
        [DOMAIN_LIFECYCLE_PRESERVE] = "preserve",
        [DOMAIN_LIFECYCLE_COREDUMP_DESTROY] = "coredump-destroy",
        [DOMAIN_LIFECYCLE_COREDUMP_RESTART] = "coredump-restart",
};
DEFINE_STRING_TABLE_LOOKUP(domain_lifecycle_action, DomainLifecycleAction);

static const char * const domain_boot_dev_table[_DOMAIN_BOOT_MAX] = {
        [DOMAIN_BOOT_FD] = "fd",
        [DOMAIN_BOOT_CDROM] = "cdrom",
        [DOMAIN_BOOT_HD] = "hd",
        [DOMAIN_BOOT_NETWORK] = "network",
};
DEFINE_STRING_TABLE_LOOKUP(domain_boot_dev, DomainBootDev);

static const char * const domain_feature_table[_DOMAIN_FEATURE_MAX] = {
        [DOMAIN_FEATURE_PAE] = "pae",
        [DOMAIN_FEATURE_ACPI] = "acpi",
        [DOMAIN_FEATURE_APIC] = "apic",
        [DOMAIN_FEATURE_HAP] = "hap",
        [DOMAIN_FEATURE_PRIVNET] = "privnet",
        [DOMAIN_FEATURE_VIRIDIAN] = "viridian",
};
DEFINE_STRING_TABLE_LOOKUP(domain_feature, DomainFeature);

static const char * const domain_clock_offset_table[_DOMAIN_CLOCK_MAX] = {
        [DOMAIN_CLOCK_UNSET] = NULL,
        [DOMAIN_CLOCK_UTC] = "utc",
        [DOMAIN_CLOCK_LOCALTIME] = "localtime",
        [DOMAIN_CLOCK_TIMEZONE] = "timezone",
        [DOMAIN_CLOCK_VARIABLE] = "variable",
        [DOMAIN_CLOCK_ABSOLUTE] = "absolute",
};
DEFINE_STRING_TABLE_LOOKUP(domain_clock_offset, DomainClockOffset);

DomainDef *domain_def_free(DomainDef *def) {
        if (!def)
                return NULL;
        free(def->name);
        free(def->title);
        free(def->description);
        free(def->os.type);
        free(def->os.arch);
        free(def->os.machine);
        free(def->os.loader);
        free(def->os.kernel);
        free(def->os.initrd);
        free(def->os.cmdline);
        free(def->bootloader);
        free(def->bootloader_args);
        free(def->emulator);
        for (size_t i = 0; i < def->n_devices; i++)
                device_def_free(def->devices[i]);
        free(def->devices);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

int domain_def_parse_string(const char *xml, unsigned flags, DomainDef **ret, VbError *reterr) {
        ConfNode *root;
        int r;

        r = conf_node_parse_string(xml, "domain.rng", &root, reterr);
        if (r < 0)
                return r;
        return domain_def_parse_node(root, flags, ret, reterr);
}

int domain_def_parse_file(const char *path, unsigned flags, DomainDef **ret, VbError *reterr) {
        _cleanup_free_ char *xml = NULL;
        int r;

        r = read_full_file(path, 0, &xml, NULL);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Failed to read '%s': %s", path, strerror(-r));
        return domain_def_parse_string(xml, flags, ret, reterr);
}

int domain_def_format(const DomainDef *def, unsigned flags, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = domain_def_to_node(def, flags, &n);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}

/* Through the node model, not text: the definition was valid when it was made, so the copy skips the
 * schema (which may have been released and would be compiled again) and libxml2. */
int domain_def_copy(const DomainDef *def, DomainDef **ret) {
        ConfNode *n = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = domain_def_to_node(def, DOMAIN_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        r = domain_def_parse_node(n, 0, ret, &e);
        if (r < 0)
                log_debug("Copying a domain definition failed: %s", strempty(e.message));
        vb_error_free(&e);
        return r;
}

const char *domain_def_get_name(const DomainDef *def) {
        return def->name;
}

void domain_def_get_uuid_string(const DomainDef *def, char ret[37]) {
        conf_uuid_format(def->uuid, ret);
}

uint32_t domain_def_get_vcpus(const DomainDef *def) {
        return def->vcpus;
}

uint32_t domain_def_get_current_vcpus(const DomainDef *def) {
        if (def->vcpus_current > 0 && def->vcpus_current < def->vcpus)
                return def->vcpus_current;
        return def->vcpus ?: 1;
}

uint64_t domain_def_get_memory_kib(const DomainDef *def) {
        return def->memory_kib;
}

const char *domain_def_get_os_type(const DomainDef *def) {
        return def->os.type;
}

size_t domain_def_get_devices(const DomainDef *def, DeviceDef *const **ret) {
        *ret = def->devices;
        return def->n_devices;
}

const DeviceDef *domain_def_find_disk(const DomainDef *def, const char *target) {
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->kind == DEVICE_DISK && streq_ptr(device_disk_get_target(def->devices[i]), target))
                        return def->devices[i];
        return NULL;
}
