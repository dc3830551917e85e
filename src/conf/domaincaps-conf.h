/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "util/macro.h"
#include "util/string-table.h"

/* What a hypervisor can give a domain of one emulator / arch / machine / virt type, in libvirt's domain
 * capabilities format (<domainCapabilities>, data/schemas/domaincaps.rng). Drivers fill one from what
 * they found out (the qemu driver by asking QEMU and the host); the service checks definitions against
 * it (core/domain-caps-check.c) and GetDomainCapabilities formats it. Published capabilities are
 * immutable and shared (ref counted); the XML is formatted once, on first use. */

typedef enum DomainCapsDevice {
        DOMAIN_CAPS_DISK,
        DOMAIN_CAPS_GRAPHICS,
        DOMAIN_CAPS_VIDEO,
        DOMAIN_CAPS_HOSTDEV,
        DOMAIN_CAPS_RNG,
        DOMAIN_CAPS_FILESYSTEM,
        DOMAIN_CAPS_TPM,
        DOMAIN_CAPS_REDIRDEV,
        DOMAIN_CAPS_CHANNEL,
        DOMAIN_CAPS_CRYPTO,
        DOMAIN_CAPS_INTERFACE,
        DOMAIN_CAPS_PANIC,
        _DOMAIN_CAPS_DEVICE_MAX,
        _DOMAIN_CAPS_DEVICE_INVALID = -EINVAL,
} DomainCapsDevice;

typedef enum DomainCapsFeature {
        DOMAIN_CAPS_FEATURE_GIC,
        DOMAIN_CAPS_FEATURE_VMCOREINFO,
        DOMAIN_CAPS_FEATURE_GENID,
        DOMAIN_CAPS_FEATURE_BACKING_STORE_INPUT,
        DOMAIN_CAPS_FEATURE_BACKUP,
        DOMAIN_CAPS_FEATURE_ASYNC_TEARDOWN,
        DOMAIN_CAPS_FEATURE_PS2,
        DOMAIN_CAPS_FEATURE_SEV,
        DOMAIN_CAPS_FEATURE_SGX,
        DOMAIN_CAPS_FEATURE_LAUNCH_SECURITY,
        _DOMAIN_CAPS_FEATURE_MAX,
        _DOMAIN_CAPS_FEATURE_INVALID = -EINVAL,
} DomainCapsFeature;

typedef enum DomainCapsUsable {
        DOMAIN_CAPS_USABLE_YES,
        DOMAIN_CAPS_USABLE_NO,
        DOMAIN_CAPS_USABLE_UNKNOWN,
        _DOMAIN_CAPS_USABLE_MAX,
        _DOMAIN_CAPS_USABLE_INVALID = -EINVAL,
} DomainCapsUsable;

/* Element names of the devices (<disk>, ...) and features (<genid>, ...). */
DECLARE_STRING_TABLE_LOOKUP(domain_caps_device, DomainCapsDevice);
DECLARE_STRING_TABLE_LOOKUP(domain_caps_feature, DomainCapsFeature);
DECLARE_STRING_TABLE_LOOKUP(domain_caps_usable, DomainCapsUsable);

/* <enum name='bus'><value>ide</value>...</enum> */
typedef struct DomainCapsEnum {
        char *name;
        char **values;
        size_t n_values;
} DomainCapsEnum;

/* An element with supported='yes|no' and enums (a device, <os>, <loader>, <memoryBacking>). */
typedef struct DomainCapsBlock {
        bool present; /* written at all */
        bool supported;
        DomainCapsEnum *enums;
        size_t n_enums;
} DomainCapsBlock;

typedef struct DomainCapsCpuModel {
        char *name;
        char *vendor; /* "" when unknown */
        DomainCapsUsable usable;
        bool deprecated;
        char **blockers; /* features missing for it to be usable */
        size_t n_blockers;
} DomainCapsCpuModel;

typedef enum DomainCapsTristate {
        DOMAIN_CAPS_ABSENT = -1, /* not written */
        DOMAIN_CAPS_NO = 0,
        DOMAIN_CAPS_YES = 1,
} DomainCapsTristate;

typedef struct DomainCaps {
        unsigned n_ref;
        char *path;    /* the emulator */
        char *domain;  /* virt type: qemu, kvm, test */
        char *machine; /* the canonical machine name */
        char *arch;
        unsigned vcpu_max; /* 0: not written */
        DomainCapsTristate iothreads;

        DomainCapsBlock os;     /* enum firmware */
        DomainCapsBlock loader; /* enums type, readonly, secure */
        char **loader_values;   /* firmware files that exist */
        size_t n_loader_values;

        bool cpu_present;
        bool cpu_host_passthrough, cpu_maximum, cpu_host_model, cpu_custom;
        /* <enum name='hostPassthroughMigratable'> / 'maximumMigratable' with on and off */
        bool cpu_host_passthrough_migratable, cpu_maximum_migratable;
        char *host_model;        /* host-model's <model>, NULL: none */
        char *host_model_vendor; /* NULL: none */
        char **host_model_require; /* its <feature policy='require'> names */
        size_t n_host_model_require;
        char **host_model_disable; /* its <feature policy='disable'> names */
        size_t n_host_model_disable;
        DomainCapsCpuModel *cpu_models;
        size_t n_cpu_models;

        DomainCapsBlock memory_backing; /* enum sourceType */
        bool devices_present;
        DomainCapsBlock devices[_DOMAIN_CAPS_DEVICE_MAX];
        bool features_present;
        DomainCapsTristate features[_DOMAIN_CAPS_FEATURE_MAX];
        DomainCapsBlock hyperv; /* <features><hyperv> with enum features */

        char *xml; /* formatted on first use (domain_caps_xml) */
} DomainCaps;

DomainCaps *domain_caps_new(void);
DomainCaps *domain_caps_ref(DomainCaps *c);
DomainCaps *domain_caps_unref(DomainCaps *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(DomainCaps *, domain_caps_unref);

/* Adds value to the enum called name of block (creating the enum; value NULL: only the enum, empty).
 * Values are kept in the order added, without duplicates. Marks the block present. */
int domain_caps_enum_add(DomainCapsBlock *b, const char *name, const char *value);
const DomainCapsEnum *domain_caps_enum_find(const DomainCapsBlock *b, const char *name);
bool domain_caps_enum_has(const DomainCapsBlock *b, const char *name, const char *value);
/* The values of an enum joined as "'a', 'b', 'c'" (for error messages; "none" when empty); to free. */
char *domain_caps_enum_list(const DomainCapsBlock *b, const char *name);

int domain_caps_add_loader(DomainCaps *c, const char *path);
/* Adds a feature to the host-model CPU (require: policy 'require', else 'disable'). */
int domain_caps_add_host_model_feature(DomainCaps *c, const char *name, bool require);
int domain_caps_add_cpu_model(DomainCaps *c, const char *name, const char *vendor, DomainCapsUsable usable,
                              bool deprecated, char * const *blockers, size_t n_blockers);

/* The XML document (domaincaps-format.c). */
int domain_caps_format(const DomainCaps *c, char **ret);
/* The same, formatted once and kept with c (NULL on allocation failure). */
const char *domain_caps_xml(DomainCaps *c);
