/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "host/host-virt.h"
#include "host/sysfs.h"
#include "util/fileio.h"

bool host_kvm_usable(void) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

unsigned host_iommu_groups(void) {
        _cleanup_free_ char *path = host_sysfs_path("kernel/iommu_groups");
        _cleanup_(closedirp) DIR *d = path ? opendir(path) : NULL;
        struct dirent *de;
        unsigned n = 0;

        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        return n;
}

bool host_vfio_usable(void) {
        /* A fake sysfs tree (tests, the test driver's simulated host) stands for the whole host: VFIO is
         * there when the tree has IOMMU groups and the vfio-pci driver (its /dev is not faked). */
        if (!host_sysfs_is_real()) {
                _cleanup_free_ char *drv = host_sysfs_path("bus/pci/drivers/vfio-pci");
                return drv && access(drv, F_OK) == 0 && host_iommu_groups() > 0;
        }
        return access("/dev/vfio/vfio", F_OK) == 0 && host_iommu_groups() > 0;
}

static char *cpuinfo_value(const char *text, const char *key) {
        size_t n = strlen(key);

        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                const char *colon;
                if (strncmp(l, key, n) != 0 || !strchr(" \t:", l[n]))
                        continue;
                colon = strchr(l, ':');
                if (!colon)
                        continue;
                colon++;
                colon += strspn(colon, " \t");
                return strndup(colon, strcspn(colon, "\n"));
        }
        return NULL;
}

int host_cpu_info(HostCpuInfo *ret) {
        _cleanup_free_ char *text = NULL, *vendor = NULL, *flags = NULL;
        int r;

        *ret = (HostCpuInfo) {};
        r = read_full_file("/proc/cpuinfo", 4 * 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        vendor = cpuinfo_value(text, "vendor_id");
        ret->model = cpuinfo_value(text, "model name");
        flags = cpuinfo_value(text, "flags");
        if (vendor)
                ret->vendor = strdup(streq(vendor, "GenuineIntel")   ? "Intel"
                                     : streq(vendor, "AuthenticAMD") ? "AMD"
                                     : streq(vendor, "HygonGenuine") ? "Hygon"
                                                                     : vendor);
        if (flags) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, " %s ", flags) >= 0) {
                        ret->vmx = strstr(f, " vmx ") != NULL;
                        ret->svm = strstr(f, " svm ") != NULL;
                }
        }
        return 0;
}

void host_cpu_info_done(HostCpuInfo *info) {
        free(info->vendor);
        free(info->model);
        *info = (HostCpuInfo) {};
}

static int read_int(unsigned cpu, const char *file) {
        _cleanup_free_ char *p = host_sysfs_path("devices/system/cpu/cpu%u/topology/%s", cpu, file);
        uint64_t v;
        if (!p || host_sysfs_read_u64(p, &v) < 0)
                return -1;
        return (int) v;
}

/* "0-3,8" -> calls fn for each number. */
static int parse_list(const char *list, int (*fn)(unsigned n, void *userdata), void *userdata) {
        const char *s = list;

        while (s && *s) {
                char *end;
                unsigned long a = strtoul(s, &end, 10), b = a;
                int r;

                if (end == s)
                        return -EINVAL;
                if (*end == '-') {
                        s = end + 1;
                        b = strtoul(s, &end, 10);
                        if (end == s || b < a || b - a > 65536)
                                return -EINVAL;
                }
                for (unsigned long i = a; i <= b; i++)
                        if ((r = fn((unsigned) i, userdata)) < 0)
                                return r;
                s = *end == ',' ? end + 1 : NULL;
        }
        return 0;
}

static int add_cpu(unsigned id, void *userdata) {
        HostNumaNode *node = userdata;
        HostCpu *n = realloc(node->cpus, (node->n_cpus + 1) * sizeof(HostCpu));
        _cleanup_free_ char *sib = host_sysfs_path("devices/system/cpu/cpu%u/topology/thread_siblings_list", id);

        if (!n || !sib)
                return -ENOMEM;
        node->cpus = n;
        n = &n[node->n_cpus++];
        *n = (HostCpu) {
                .id = id,
                .socket_id = read_int(id, "physical_package_id"),
                .die_id = read_int(id, "die_id"),
                .core_id = read_int(id, "core_id"),
        };
        (void) host_sysfs_read(sib, &n->siblings);
        return 0;
}

static uint64_t node_memory(unsigned id) {
        _cleanup_free_ char *p = host_sysfs_path("devices/system/node/node%u/meminfo", id), *text = NULL;
        const char *m;

        if (!p || read_full_file(p, 0, &text, NULL) < 0 || !(m = strstr(text, "MemTotal:")))
                return 0;
        return strtoull(m + 9, NULL, 10);
}

static uint64_t total_memory(void) {
        _cleanup_free_ char *text = NULL;
        const char *m;

        if (read_full_file("/proc/meminfo", 0, &text, NULL) < 0 || !(m = strstr(text, "MemTotal:")))
                return 0;
        return strtoull(m + 9, NULL, 10);
}

static int add_node(HostNumaNode **nodes, size_t *n, unsigned id, const char *cpulist, uint64_t memory_kib) {
        HostNumaNode *nn = realloc(*nodes, (*n + 1) * sizeof(HostNumaNode));

        if (!nn)
                return -ENOMEM;
        *nodes = nn;
        nn[*n] = (HostNumaNode) { .id = id, .memory_kib = memory_kib };
        (*n)++;
        return cpulist ? parse_list(cpulist, add_cpu, &nn[*n - 1]) : 0;
}

int host_numa_nodes(HostNumaNode **ret, size_t *ret_n) {
        _cleanup_free_ char *dir = host_sysfs_path("devices/system/node"), *online_path = NULL, *online = NULL;
        _cleanup_(closedirp) DIR *d = dir ? opendir(dir) : NULL;
        HostNumaNode *nodes = NULL;
        struct dirent *de;
        size_t n = 0;
        int r = 0;

        while (d && r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *p = NULL, *cpus = NULL;
                char *end;
                unsigned long id;

                if (strncmp(de->d_name, "node", 4) != 0 || !(id = strtoul(de->d_name + 4, &end, 10), *end == 0 && end != de->d_name + 4))
                        continue;
                p = host_sysfs_path("devices/system/node/node%lu/cpulist", id);
                if (!p)
                        r = -ENOMEM;
                else {
                        (void) host_sysfs_read(p, &cpus);
                        r = add_node(&nodes, &n, (unsigned) id, cpus, node_memory((unsigned) id));
                }
        }
        if (r >= 0 && n == 0) {
                online_path = host_sysfs_path("devices/system/cpu/online");
                if (online_path)
                        (void) host_sysfs_read(online_path, &online);
                r = add_node(&nodes, &n, 0, online, total_memory());
        }
        if (r < 0) {
                host_numa_nodes_free(nodes, n);
                return r;
        }
        /* Directory order is not numeric order. */
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (nodes[j].id < nodes[i].id) {
                                HostNumaNode t = nodes[i];
                                nodes[i] = nodes[j];
                                nodes[j] = t;
                        }
        *ret = nodes;
        *ret_n = n;
        return 0;
}

void host_numa_nodes_free(HostNumaNode *nodes, size_t n) {
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < nodes[i].n_cpus; j++)
                        free(nodes[i].cpus[j].siblings);
                free(nodes[i].cpus);
        }
        free(nodes);
}
