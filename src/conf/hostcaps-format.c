/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host capabilities: the typed document and its XML. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-node.h"
#include "conf/hostcaps-conf.h"

HostCaps *host_caps_new(void) {
        HostCaps *c = new0(HostCaps, 1);

        if (!c)
                return NULL;
        c->n_ref = 1;
        c->iommu = -1;
        return c;
}

HostCaps *host_caps_ref(HostCaps *c) {
        if (c)
                c->n_ref++;
        return c;
}

HostCaps *host_caps_unref(HostCaps *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        free(c->arch);
        free(c->cpu_vendor);
        free(c->cpu_model);
        for (size_t i = 0; i < c->n_cells; i++) {
                for (size_t j = 0; j < c->cells[i].n_cpus; j++)
                        free(c->cells[i].cpus[j].siblings);
                free(c->cells[i].cpus);
        }
        free(c->cells);
        for (size_t i = 0; i < c->n_guests; i++) {
                HostCapsGuest *g = &c->guests[i];
                free(g->os_type);
                free(g->arch);
                free(g->emulator);
                for (size_t j = 0; j < g->n_machines; j++) {
                        free(g->machines[j].name);
                        free(g->machines[j].canonical);
                }
                free(g->machines);
                for (size_t j = 0; j < g->n_domain_types; j++)
                        free(g->domain_types[j]);
                free(g->domain_types);
        }
        free(c->guests);
        free(c->xml);
        free(c);
        return NULL;
}

static char *strdup_or_null(const char *s, bool *oom) {
        char *d;
        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

HostCapsCell *host_caps_add_cell(HostCaps *c, unsigned id, uint64_t memory_kib) {
        HostCapsCell *n = realloc(c->cells, (c->n_cells + 1) * sizeof(HostCapsCell));

        if (!n)
                return NULL;
        c->cells = n;
        n[c->n_cells] = (HostCapsCell) { .id = id, .memory_kib = memory_kib };
        return &n[c->n_cells++];
}

int host_caps_cell_add_cpu(HostCapsCell *cell, unsigned id, int socket_id, int die_id, int core_id,
                           const char *siblings) {
        HostCapsCpu *n = realloc(cell->cpus, (cell->n_cpus + 1) * sizeof(HostCapsCpu));
        bool oom = false;

        if (!n)
                return -ENOMEM;
        cell->cpus = n;
        n[cell->n_cpus] = (HostCapsCpu) { .id = id, .socket_id = socket_id, .die_id = die_id, .core_id = core_id };
        n[cell->n_cpus].siblings = strdup_or_null(siblings, &oom);
        cell->n_cpus++;
        return oom ? -ENOMEM : 0;
}

HostCapsGuest *host_caps_add_guest(HostCaps *c, const char *os_type, const char *arch, unsigned wordsize,
                                   const char *emulator) {
        HostCapsGuest *n = realloc(c->guests, (c->n_guests + 1) * sizeof(HostCapsGuest)), *g;
        bool oom = false;

        if (!n)
                return NULL;
        c->guests = n;
        g = &n[c->n_guests++];
        *g = (HostCapsGuest) { .wordsize = wordsize };
        g->os_type = strdup_or_null(os_type, &oom);
        g->arch = strdup_or_null(arch, &oom);
        g->emulator = strdup_or_null(emulator, &oom);
        return oom ? NULL : g;
}

int host_caps_guest_add_machine(HostCapsGuest *g, const char *name, const char *canonical, unsigned max_cpus,
                                bool deprecated) {
        HostCapsMachine *n = realloc(g->machines, (g->n_machines + 1) * sizeof(HostCapsMachine));
        bool oom = false;

        if (!n)
                return -ENOMEM;
        g->machines = n;
        n[g->n_machines] = (HostCapsMachine) { .max_cpus = max_cpus, .deprecated = deprecated };
        n[g->n_machines].name = strdup_or_null(name, &oom);
        n[g->n_machines].canonical = strdup_or_null(canonical, &oom);
        g->n_machines++;
        return oom ? -ENOMEM : 0;
}

int host_caps_guest_add_domain_type(HostCapsGuest *g, const char *type) {
        char **n = realloc(g->domain_types, (g->n_domain_types + 1) * sizeof(char *));

        if (!n)
                return -ENOMEM;
        g->domain_types = n;
        n[g->n_domain_types] = strdup(type);
        if (!n[g->n_domain_types])
                return -ENOMEM;
        g->n_domain_types++;
        return 0;
}

static int add_host_cpu(ConfNode *host, const HostCaps *c) {
        ConfNode *cpu = conf_node_add(host, "cpu");

        if (!cpu || conf_node_add_text(cpu, "arch", c->arch) < 0)
                return -ENOMEM;
        if (c->cpu_vmx || c->cpu_svm) {
                ConfNode *f = conf_node_add(cpu, "features");
                if (!f || (c->cpu_vmx && !conf_node_add(f, "vmx")) || (c->cpu_svm && !conf_node_add(f, "svm")))
                        return -ENOMEM;
        }
        if (conf_node_add_text(cpu, "model", c->cpu_model) < 0 || conf_node_add_text(cpu, "vendor", c->cpu_vendor) < 0)
                return -ENOMEM;
        if (c->sockets > 0 && c->cores > 0 && c->threads > 0) {
                ConfNode *t = conf_node_add(cpu, "topology");
                if (!t || conf_node_set_attrf(t, "sockets", "%u", c->sockets) < 0 ||
                    (c->dies > 0 && conf_node_set_attrf(t, "dies", "%u", c->dies) < 0) ||
                    conf_node_set_attrf(t, "cores", "%u", c->cores) < 0 ||
                    conf_node_set_attrf(t, "threads", "%u", c->threads) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int add_cell(ConfNode *cells, const HostCapsCell *cell) {
        ConfNode *n = conf_node_add(cells, "cell"), *cpus;
        char buf[32];

        if (!n || conf_node_set_attrf(n, "id", "%u", cell->id) < 0)
                return -ENOMEM;
        if (cell->memory_kib > 0) {
                ConfNode *m;
                snprintf(buf, sizeof buf, "%llu", (unsigned long long) cell->memory_kib);
                m = conf_node_add(n, "memory");
                if (!m || conf_node_set_attr(m, "unit", "KiB") < 0 || conf_node_set_text(m, buf) < 0)
                        return -ENOMEM;
        }
        cpus = conf_node_add(n, "cpus");
        if (!cpus || conf_node_set_attrf(cpus, "num", "%zu", cell->n_cpus) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < cell->n_cpus; i++) {
                const HostCapsCpu *p = &cell->cpus[i];
                ConfNode *cpu = conf_node_add(cpus, "cpu");

                if (!cpu || conf_node_set_attrf(cpu, "id", "%u", p->id) < 0)
                        return -ENOMEM;
                if (p->socket_id < 0 || p->core_id < 0 || !p->siblings)
                        continue;
                if (conf_node_set_attrf(cpu, "socket_id", "%d", p->socket_id) < 0 ||
                    conf_node_set_attrf(cpu, "die_id", "%d", p->die_id < 0 ? 0 : p->die_id) < 0 ||
                    conf_node_set_attr(cpu, "cluster_id", "0") < 0 ||
                    conf_node_set_attrf(cpu, "core_id", "%d", p->core_id) < 0 ||
                    conf_node_set_attr(cpu, "siblings", p->siblings) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int add_machine(ConfNode *parent, const HostCapsMachine *m) {
        ConfNode *n = conf_node_add(parent, "machine");

        if (!n || conf_node_set_attr(n, "canonical", m->canonical) < 0 ||
            (m->max_cpus > 0 && conf_node_set_attrf(n, "maxCpus", "%u", m->max_cpus) < 0) ||
            (m->deprecated && conf_node_set_attr(n, "deprecated", "yes") < 0) || conf_node_set_text(n, m->name) < 0)
                return -ENOMEM;
        return 0;
}

static int add_guest(ConfNode *root, const HostCapsGuest *g) {
        ConfNode *n = conf_node_add(root, "guest"), *arch;
        char wordsize[16];

        if (!n || conf_node_add_text(n, "os_type", g->os_type) < 0)
                return -ENOMEM;
        snprintf(wordsize, sizeof wordsize, "%u", g->wordsize);
        arch = conf_node_add(n, "arch");
        if (!arch || conf_node_set_attr(arch, "name", g->arch) < 0 || conf_node_add_text(arch, "wordsize", wordsize) < 0 ||
            conf_node_add_text(arch, "emulator", g->emulator) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_machines; i++)
                if (add_machine(arch, &g->machines[i]) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < g->n_domain_types; i++) {
                ConfNode *d = conf_node_add(arch, "domain");
                if (!d || conf_node_set_attr(d, "type", g->domain_types[i]) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int host_caps_format(const HostCaps *c, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *root = conf_node_new("capabilities");
        ConfNode *host;

        if (!root || !(host = conf_node_add(root, "host")) || add_host_cpu(host, c) < 0)
                return -ENOMEM;
        if (c->iommu >= 0) {
                ConfNode *i = conf_node_add(host, "iommu");
                if (!i || conf_node_set_attr(i, "support", c->iommu ? "yes" : "no") < 0)
                        return -ENOMEM;
        }
        if (c->n_cells > 0) {
                ConfNode *t = conf_node_add(host, "topology"), *cells;
                if (!t || !(cells = conf_node_add(t, "cells")) ||
                    conf_node_set_attrf(cells, "num", "%zu", c->n_cells) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < c->n_cells; i++)
                        if (add_cell(cells, &c->cells[i]) < 0)
                                return -ENOMEM;
        }
        for (size_t i = 0; i < c->n_guests; i++)
                if (add_guest(root, &c->guests[i]) < 0)
                        return -ENOMEM;
        return conf_node_format_string(root, ret);
}

const char *host_caps_xml(HostCaps *c) {
        if (!c->xml)
                (void) host_caps_format(c, &c->xml);
        return c->xml;
}
