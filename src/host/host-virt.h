/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* What this host offers virtual machines: KVM, VFIO and IOMMU groups, its CPUs and NUMA nodes, read
 * from /dev, /proc/cpuinfo and sysfs below host_sysfs_root(). */

/* /dev/kvm opens read-write. */
bool host_kvm_usable(void);
/* How many IOMMU groups sysfs lists (kernel/iommu_groups); 0 when none or no IOMMU. */
unsigned host_iommu_groups(void);
/* PCI passthrough can work: /dev/vfio/vfio exists and there are IOMMU groups (on a fake sysfs root:
 * the tree has IOMMU groups and a vfio-pci driver). */
bool host_vfio_usable(void);

/* The CPU as /proc/cpuinfo names it (vendor "Intel"/"AMD"/..., model name; to free) and its
 * virtualization flags. */
typedef struct HostCpuInfo {
        char *vendor;
        char *model;
        bool vmx, svm;
} HostCpuInfo;
int host_cpu_info(HostCpuInfo *ret);
void host_cpu_info_done(HostCpuInfo *info);

/* One online CPU (devices/system/cpu/cpuN/topology); ids -1 when sysfs doesn't say. */
typedef struct HostCpu {
        unsigned id;
        int socket_id, die_id, core_id;
        char *siblings; /* thread_siblings_list */
} HostCpu;

/* A NUMA node (devices/system/node/nodeN); a host without that directory is one node 0 with every CPU
 * and MemTotal from /proc/meminfo. */
typedef struct HostNumaNode {
        unsigned id;
        uint64_t memory_kib;
        HostCpu *cpus;
        size_t n_cpus;
} HostNumaNode;

int host_numa_nodes(HostNumaNode **ret, size_t *ret_n);
void host_numa_nodes_free(HostNumaNode *nodes, size_t n);
