/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"

/* Resource control groups in <cputune>: a <cachetune> or <memorytune> gives its vCPUs an allocation of
 * cache or memory bandwidth. A vCPU can be in one such group of each kind only, a group allocates each
 * cache (level, id, type) or memory node once, and a <monitor> watches vCPUs of its own group. */

#define TUNE_VCPUS_MAX 16384U

typedef struct VcpuSet {
        uint64_t bits[TUNE_VCPUS_MAX / 64];
} VcpuSet;

static int vcpu_set_parse(const ConfNode *n, const char *s, VcpuSet *ret, VbError *e) {
        memset(ret, 0, sizeof(*ret));
        for (const char *p = s; *p;) {
                unsigned long a, b;
                bool negate = false;
                char *end;

                p += strspn(p, " ");
                if (*p == '^') {
                        negate = true;
                        p++;
                }
                if (*p < '0' || *p > '9')
                        return conf_error(e, n, "vcpus='%s' is not a list of vCPU numbers and ranges (expected e.g. '0-3,^2')", s);
                a = b = strtoul(p, &end, 10);
                p = end;
                if (*p == '-' && !negate) {
                        if (p[1] < '0' || p[1] > '9')
                                return conf_error(e, n, "vcpus='%s' has a range without an end (expected e.g. '0-3')", s);
                        b = strtoul(p + 1, &end, 10);
                        p = end;
                }
                if (a > b || b >= TUNE_VCPUS_MAX)
                        return conf_error(e, n, "vcpus='%s' has a range out of order or above %u", s, TUNE_VCPUS_MAX - 1);
                for (unsigned long i = a; i <= b; i++)
                        if (negate)
                                ret->bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
                        else
                                ret->bits[i / 64] |= UINT64_C(1) << (i % 64);
                p += strspn(p, " ");
                if (*p == ',')
                        p++;
                else if (*p)
                        return conf_error(e, n, "vcpus='%s' is not a list of vCPU numbers and ranges (expected e.g. '0-3,^2')", s);
        }
        for (size_t i = 0; i < ELEMENTSOF(ret->bits); i++)
                if (ret->bits[i])
                        return 0;
        return conf_error(e, n, "vcpus='%s' names no vCPU (expected at least one)", s);
}

static bool vcpu_set_overlaps(const VcpuSet *a, const VcpuSet *b) {
        for (size_t i = 0; i < ELEMENTSOF(a->bits); i++)
                if (a->bits[i] & b->bits[i])
                        return true;
        return false;
}

static bool vcpu_set_contains(const VcpuSet *outer, const VcpuSet *inner) {
        for (size_t i = 0; i < ELEMENTSOF(outer->bits); i++)
                if (inner->bits[i] & ~outer->bits[i])
                        return false;
        return true;
}

static bool same_number(const ConfNode *a, const ConfNode *b, const char *attr) {
        const char *x = conf_node_attr(a, attr), *y = conf_node_attr(b, attr);
        uint64_t u, v;

        if (!x || !y)
                return !x && !y;
        return streq(x, y) || (conf_parse_uint(a, attr, x, UINT64_MAX, &u, NULL) >= 0 &&
                               conf_parse_uint(b, attr, y, UINT64_MAX, &v, NULL) >= 0 && u == v);
}

/* Whether two allocations of a group take the same thing: a memory node by its id, a cache by its level
 * and id, where a cache given for both code and data overlaps one given for either. */
static bool same_allocation(const ConfNode *a, const ConfNode *b) {
        const char *x = conf_node_attr(a, "type"), *y = conf_node_attr(b, "type");

        if (!same_number(a, b, "id") || !same_number(a, b, "level"))
                return false;
        return streq_ptr(x, y) || streq_ptr(x, "both") || streq_ptr(y, "both");
}

static int validate_group(const ConfNode *g, const VcpuSet *vcpus, VbError *e) {
        const char *alloc = conf_node_is(g, "cachetune") ? "cache" : "node";

        for (size_t i = 0; i < g->n_children; i++) {
                const ConfNode *c = g->children[i];

                if (conf_node_is(c, alloc))
                        for (size_t j = 0; j < i; j++)
                                if (conf_node_is(g->children[j], alloc) && same_allocation(g->children[j], c))
                                        return conf_error(e, c, "the same %s is allocated twice in one <%s> (lines %u "
                                                          "and %u; expected one allocation of each)",
                                                          conf_node_is(g, "cachetune") ? "cache" : "memory node",
                                                          g->name, g->children[j]->line, c->line);
                if (conf_node_is(c, "monitor") && conf_node_attr(c, "vcpus")) {
                        VcpuSet m;
                        int r = vcpu_set_parse(c, conf_node_attr(c, "vcpus"), &m, e);

                        if (r < 0)
                                return r;
                        if (!vcpu_set_contains(vcpus, &m))
                                return conf_error(e, c, "vcpus='%s' are not all in the <%s vcpus='%s'> it is part of "
                                                  "(expected a subset of the group's vCPUs)",
                                                  conf_node_attr(c, "vcpus"), g->name, conf_node_attr(g, "vcpus"));
                }
        }
        return 0;
}

int domain_validate_cputune(const ConfNode *cputune, VbError *e) {
        _cleanup_free_ VcpuSet *sets = NULL;
        _cleanup_free_ const ConfNode **groups = NULL;
        size_t n = 0;
        int r;

        if (!cputune)
                return 0;
        sets = new0(VcpuSet, cputune->n_children);
        groups = new0(const ConfNode *, cputune->n_children);
        if (!sets || !groups)
                return -ENOMEM;
        for (size_t i = 0; i < cputune->n_children; i++) {
                const ConfNode *g = cputune->children[i];

                if ((!conf_node_is(g, "cachetune") && !conf_node_is(g, "memorytune")) || !conf_node_attr(g, "vcpus"))
                        continue;
                r = vcpu_set_parse(g, conf_node_attr(g, "vcpus"), &sets[n], e);
                if (r < 0)
                        return r;
                r = validate_group(g, &sets[n], e);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < n; j++) {
                        if (!vcpu_set_overlaps(&sets[j], &sets[n]))
                                continue;
                        if (streq(groups[j]->name, g->name))
                                return conf_error(e, g, "vcpus='%s' overlap those of the <%s> on line %u (expected "
                                                  "each vCPU in one <%s> at most)",
                                                  conf_node_attr(g, "vcpus"), g->name, groups[j]->line, g->name);
                        /* a cachetune and a memorytune of the same vCPUs form one group */
                        if (memcmp(&sets[j], &sets[n], sizeof(VcpuSet)) != 0)
                                return conf_error(e, g, "vcpus='%s' overlap those of the <%s> on line %u but are not "
                                                  "the same (expected the same vCPUs, or none in common)",
                                                  conf_node_attr(g, "vcpus"), groups[j]->name, groups[j]->line);
                }
                groups[n++] = g;
        }
        return 0;
}
