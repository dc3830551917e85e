/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/macro.h"

/* Host capabilities in libvirt's format (<capabilities>, GetCapabilities): the host (arch, CPU, IOMMU,
 * NUMA cells) and the guests a driver can run (per arch: emulator, machines, domain types). Drivers
 * fill it (the host part through core, from sysfs); formatted once, shared. */

typedef struct HostCapsCpu {
        unsigned id;
        int socket_id, die_id, core_id; /* -1: unknown (then none of the ids is written) */
        char *siblings;                 /* cpuset text */
} HostCapsCpu;

typedef struct HostCapsCell {
        unsigned id;
        uint64_t memory_kib; /* 0: unknown */
        HostCapsCpu *cpus;
        size_t n_cpus;
} HostCapsCell;

typedef struct HostCapsMachine {
        char *name;
        char *canonical; /* for an alias ("pc" -> "pc-i440fx-7.2"), else NULL */
        unsigned max_cpus;
        bool deprecated;
} HostCapsMachine;

typedef struct HostCapsGuest {
        char *os_type; /* hvm */
        char *arch;
        unsigned wordsize;
        char *emulator;
        HostCapsMachine *machines;
        size_t n_machines;
        char **domain_types; /* qemu, kvm */
        size_t n_domain_types;
} HostCapsGuest;

typedef struct HostCaps {
        unsigned n_ref;
        char *arch;
        char *cpu_vendor;  /* NULL: unknown */
        char *cpu_model;   /* NULL: unknown */
        bool cpu_vmx, cpu_svm;
        unsigned sockets, dies, cores, threads; /* 0: unknown */
        int iommu;         /* -1: unknown, 0/1 */
        HostCapsCell *cells;
        size_t n_cells;
        HostCapsGuest *guests;
        size_t n_guests;
        char *xml;
} HostCaps;

HostCaps *host_caps_new(void);
HostCaps *host_caps_ref(HostCaps *c);
HostCaps *host_caps_unref(HostCaps *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostCaps *, host_caps_unref);

HostCapsCell *host_caps_add_cell(HostCaps *c, unsigned id, uint64_t memory_kib);
int host_caps_cell_add_cpu(HostCapsCell *cell, unsigned id, int socket_id, int die_id, int core_id,
                           const char *siblings);
HostCapsGuest *host_caps_add_guest(HostCaps *c, const char *os_type, const char *arch, unsigned wordsize,
                                   const char *emulator);
int host_caps_guest_add_machine(HostCapsGuest *g, const char *name, const char *canonical, unsigned max_cpus,
                                bool deprecated);
int host_caps_guest_add_domain_type(HostCapsGuest *g, const char *type);

int host_caps_format(const HostCaps *c, char **ret);
/* Formatted once and kept with c (NULL on allocation failure). */
const char *host_caps_xml(HostCaps *c);
