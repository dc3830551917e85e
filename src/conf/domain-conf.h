/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "conf/conf-node.h"
#include "conf/device-conf.h"
#include "util/error.h"
#include "util/string-table.h"

typedef enum DomainVirtType {
        DOMAIN_VIRT_QEMU,
        DOMAIN_VIRT_KQEMU,
        DOMAIN_VIRT_KVM,
        DOMAIN_VIRT_XEN,
        DOMAIN_VIRT_LXC,
        DOMAIN_VIRT_UML,
        DOMAIN_VIRT_OPENVZ,
        DOMAIN_VIRT_TEST,
        DOMAIN_VIRT_VMWARE,
        DOMAIN_VIRT_HYPERV,
        DOMAIN_VIRT_VBOX,
        DOMAIN_VIRT_PHYP,
        DOMAIN_VIRT_PARALLELS,
        DOMAIN_VIRT_BHYVE,
        DOMAIN_VIRT_VZ,
        DOMAIN_VIRT_HVF,
        DOMAIN_VIRT_NONE,
        _DOMAIN_VIRT_MAX,
        _DOMAIN_VIRT_INVALID = -EINVAL,
} DomainVirtType;

typedef enum DomainLifecycleAction {
        DOMAIN_LIFECYCLE_UNSET,
        DOMAIN_LIFECYCLE_DESTROY,
        DOMAIN_LIFECYCLE_RESTART,
        DOMAIN_LIFECYCLE_RENAME_RESTART,
        DOMAIN_LIFECYCLE_PRESERVE,
        DOMAIN_LIFECYCLE_COREDUMP_DESTROY,
        DOMAIN_LIFECYCLE_COREDUMP_RESTART,
        _DOMAIN_LIFECYCLE_MAX,
        _DOMAIN_LIFECYCLE_INVALID = -EINVAL,
} DomainLifecycleAction;

typedef enum DomainBootDev {
        DOMAIN_BOOT_FD,
        DOMAIN_BOOT_CDROM,
        DOMAIN_BOOT_HD,
        DOMAIN_BOOT_NETWORK,
        _DOMAIN_BOOT_MAX,
        _DOMAIN_BOOT_INVALID = -EINVAL,
} DomainBootDev;

/* Features that are a plain presence flag in the 2008 format; others are kept as extra. */
typedef enum DomainFeature {
        DOMAIN_FEATURE_PAE,
        DOMAIN_FEATURE_ACPI,
        DOMAIN_FEATURE_APIC,
        DOMAIN_FEATURE_HAP,
        DOMAIN_FEATURE_PRIVNET,
        DOMAIN_FEATURE_VIRIDIAN,
        _DOMAIN_FEATURE_MAX,
        _DOMAIN_FEATURE_INVALID = -EINVAL,
} DomainFeature;

typedef enum DomainClockOffset {
        DOMAIN_CLOCK_UNSET,
        DOMAIN_CLOCK_UTC,
        DOMAIN_CLOCK_LOCALTIME,
        DOMAIN_CLOCK_TIMEZONE,
        DOMAIN_CLOCK_VARIABLE,
        DOMAIN_CLOCK_ABSOLUTE,
        _DOMAIN_CLOCK_MAX,
        _DOMAIN_CLOCK_INVALID = -EINVAL,
} DomainClockOffset;

DECLARE_STRING_TABLE_LOOKUP(domain_virt_type, DomainVirtType);
DECLARE_STRING_TABLE_LOOKUP(domain_lifecycle_action, DomainLifecycleAction);
DECLARE_STRING_TABLE_LOOKUP(domain_boot_dev, DomainBootDev);
DECLARE_STRING_TABLE_LOOKUP(domain_feature, DomainFeature);
DECLARE_STRING_TABLE_LOOKUP(domain_clock_offset, DomainClockOffset);

typedef struct DomainOsDef {
        char *type; /* hvm, xen, linux, exe, ... */
        char *arch;
        char *machine;
        char *loader;
        DomainBootDev boot[_DOMAIN_BOOT_MAX];
        size_t n_boot;
        char *kernel;
        char *initrd;
        char *cmdline;
} DomainOsDef;

typedef struct DomainDef {
        uint64_t serial; /* unique per process, never reused: caches key on it (domain_def_serial) */
        DomainVirtType virt_type;
        int64_t id; /* -1: none */
        char *name;
        uint8_t uuid[16];
        bool has_uuid; /* false until given or generated */
        char *title;
        char *description;

        DomainOsDef os;
        char *bootloader;
        char *bootloader_args;

        uint64_t memory_kib;         /* <memory> */
        uint64_t current_memory_kib; /* <currentMemory>, 0 if not given */
        uint32_t vcpus;         /* <vcpu>: the maximum */
        uint32_t vcpus_current; /* <vcpu current=>, 0 if not given (then all of them) */

        DomainLifecycleAction on_poweroff, on_reboot, on_crash;
        bool features[_DOMAIN_FEATURE_MAX];
        DomainClockOffset clock_offset;

        char *emulator;
        DeviceDef **devices;
        size_t n_devices, n_devices_allocated;

        ConfNode *extra; /* everything else the user gave (see conf-node.h) */
} DomainDef;

/* Parse flags */
#define DOMAIN_PARSE_STABLE_DEFAULTS (1u << 0) /* derive missing UUID/MACs from the content, not randomly */
/* Format flags */
#define DOMAIN_FORMAT_SECURE DEVICE_FORMAT_SECURE /* include secrets (graphics passwd) */

int domain_def_parse_string(const char *xml, unsigned flags, DomainDef **ret, VbError *reterr);
int domain_def_parse_file(const char *path, unsigned flags, DomainDef **ret, VbError *reterr);
int domain_def_format(const DomainDef *def, unsigned flags, char **ret);
int domain_def_copy(const DomainDef *def, DomainDef **ret);
DomainDef *domain_def_free(DomainDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomainDef *, domain_def_free);

int domain_def_validate(const DomainDef *def, VbError *reterr);
/* The <cachetune>/<memorytune> groups of <cputune> (domain-validate-tune.c). */
int domain_validate_cputune(const ConfNode *cputune, VbError *reterr);

/* Accessors the service needs. */
const char *domain_def_get_name(const DomainDef *def);
void domain_def_get_uuid_string(const DomainDef *def, char ret[37]);
uint32_t domain_def_get_vcpus(const DomainDef *def);
/* The vCPUs present at start (current=, else all; at least 1). */
uint32_t domain_def_get_current_vcpus(const DomainDef *def);
uint64_t domain_def_get_memory_kib(const DomainDef *def);
const char *domain_def_get_os_type(const DomainDef *def);
size_t domain_def_get_devices(const DomainDef *def, DeviceDef *const **ret);
/* The <disk> whose <target dev=> is target, or NULL. */
const DeviceDef *domain_def_find_disk(const DomainDef *def, const char *target);

/* Internal: a fresh DomainDef.serial; functions that change a definition take one. */
uint64_t domain_def_new_serial(void);

/* Internal: the domain element from a ConfNode tree and back. */
int domain_def_parse_node(ConfNode *root, unsigned flags, DomainDef **ret, VbError *reterr);
int domain_def_to_node(const DomainDef *def, unsigned flags, ConfNode **ret);
