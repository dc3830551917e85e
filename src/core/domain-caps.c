/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetDomainCapabilities and GetCapabilities: the driver answers (the test driver a fixed set, qemu a
 * probe); the host part of the host capabilities (CPU, NUMA cells, IOMMU) is read here. */
#include <stdlib.h>
#include <sys/utsname.h>

#include "conf/hostcaps-conf.h"
#include "core/domain-caps.h"
#include "core/manager.h"
#include "host/host-virt.h"

int manager_get_domain_capabilities(Manager *m, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                                    DomainCaps **ret, VbError *reterr) {
        if (!m->driver->ops->domain_capabilities)
                return vb_driver_not_supported(m->driver, "domain capabilities", reterr);
        return m->driver->ops->domain_capabilities(m->driver, q, ready, userdata, ret, reterr);
}

static int read_host(HostCaps *c) {
        HostCpuInfo cpu = {};
        HostNumaNode *nodes = NULL;
        size_t n_nodes = 0;
        struct utsname u;
        int r;

        (void) uname(&u);
        c->arch = strdup(streq(u.machine, "i386") || streq(u.machine, "i586") ? "i686" : u.machine);
        if (!c->arch)
                return -ENOMEM;
        if (host_cpu_info(&cpu) >= 0) {
                c->cpu_vendor = TAKE_PTR(cpu.vendor);
                c->cpu_vmx = cpu.vmx;
                c->cpu_svm = cpu.svm;
                host_cpu_info_done(&cpu);
        }
        c->iommu = host_iommu_groups() > 0;
        r = host_numa_nodes(&nodes, &n_nodes);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_nodes && r >= 0; i++) {
                HostCapsCell *cell = host_caps_add_cell(c, nodes[i].id, nodes[i].memory_kib);
                if (!cell) {
                        r = -ENOMEM;
                        break;
                }
                for (size_t j = 0; j < nodes[i].n_cpus && r >= 0; j++) {
                        const HostCpu *p = &nodes[i].cpus[j];
                        r = host_caps_cell_add_cpu(cell, p->id, p->socket_id, p->die_id, p->core_id, p->siblings);
                }
        }
        host_numa_nodes_free(nodes, n_nodes);
        return r;
}

int manager_get_capabilities(Manager *m, VbDriverCapsReady ready, void *userdata, char **ret, VbError *reterr) {
        _cleanup_(host_caps_unrefp) HostCaps *c = host_caps_new();
        int r;

        if (!c)
                return -ENOMEM;
        r = read_host(c);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read the host's CPUs and memory: %s",
                                    strerror(-r));
        if (m->driver->ops->capabilities) {
                r = m->driver->ops->capabilities(m->driver, c, ready, userdata, reterr);
                if (r <= 0)
                        return r;
        }
        r = host_caps_format(c, ret);
        return r < 0 ? r : 1;
}

void manager_capabilities_cancel(Manager *m, void *userdata) {
        if (m->driver->ops->capabilities_cancel)
                m->driver->ops->capabilities_cancel(m->driver, userdata);
}
