/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"

/* Resource control groups in <cputune>: a <cachetune> or <memorytune> gives its vCPUs an allocation of
 * cache or memory bandwidth. A vCPU can be in one such group of each kind only (a cachetune and a
 * memorytune of the very same vCPUs form one group), a group allocates each cache (level, id, type) or
 * memory node once, and a <monitor> watches vCPUs of its own group. Every check is linear in the size of
 * the document (after a sort), whatever it holds. */

#define TUNE_VCPUS_MAX 16384U
#define WORDS (TUNE_VCPUS_MAX / 64)

typedef struct VcpuSet {
        uint64_t bits[WORDS];
} VcpuSet;

static void vcpu_set_range(VcpuSet *s, unsigned long a, unsigned long b, bool on) {
        for (unsigned long w = a / 64; w <= b / 64; w++) {
                unsigned lo = w == a / 64 ? a % 64 : 0, hi = w == b / 64 ? b % 64 : 63;
                uint64_t mask = (hi == 63 ? UINT64_MAX : (UINT64_C(1) << (hi + 1)) - 1) & ~((UINT64_C(1) << lo) - 1);

                if (on)
                        s->bits[w] |= mask;
                else
                        s->bits[w] &= ~mask;
        }
}

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
                vcpu_set_range(ret, a, b, !negate);
                p += strspn(p, " ");
                if (*p == ',')
                        p++;
                else if (*p)
                        return conf_error(e, n, "vcpus='%s' is not a list of vCPU numbers and ranges (expected e.g. '0-3,^2')", s);
        }
        for (size_t i = 0; i < WORDS; i++)
                if (ret->bits[i])
                        return 0;
        return conf_error(e, n, "vcpus='%s' names no vCPU (expected at least one)", s);
}

static bool vcpu_set_contains(const VcpuSet *outer, const VcpuSet *inner) {
        for (size_t i = 0; i < WORDS; i++)
                if (inner->bits[i] & ~outer->bits[i])
                        return false;
        return true;
}

/* One allocation of a group: a cache by level, id and type, a memory node by id. */
typedef struct Allocation {
        uint64_t level, id;
        bool bad; /* a number we could not read: compares equal to nothing */
        const char *type;
        const ConfNode *node;
} Allocation;

/* The schema gives these in decimal digits: '010' is ten, as libvirt reads it (not octal eight). */
static uint64_t number_of(const ConfNode *n, const char *attr, bool *bad) {
        const char *s = conf_node_attr(n, attr);
        unsigned long long v;
        char *end;

        if (!s)
                return UINT64_MAX; /* absent: UINT64_MAX, which no given number reaches */
        s += strspn(s, " \t\r\n");
        errno = 0;
        v = strtoull(s, &end, 10);
        end += strspn(end, " \t\r\n");
        if (errno != 0 || end == s || *end || *s == '-' || v >= UINT64_MAX)
                *bad = true;
        return v;
}

static int allocation_compare(const void *x, const void *y) {
        const Allocation *a = x, *b = y;

        if (a->bad != b->bad)
                return a->bad ? 1 : -1;
        if (a->level != b->level)
                return a->level < b->level ? -1 : 1;
        if (a->id != b->id)
                return a->id < b->id ? -1 : 1;
        return (a->node->line > b->node->line) - (a->node->line < b->node->line);
}

/* A cache given for both code and data overlaps one given for either. */
static bool types_overlap(const char *x, const char *y) {
        return streq_ptr(x, y) || streq_ptr(x, "both") || streq_ptr(y, "both");
}

static int validate_allocations(const ConfNode *g, VbError *e) {
        const char *what = conf_node_is(g, "cachetune") ? "cache" : "node";
        _cleanup_free_ Allocation *a = new0(Allocation, g->n_children + 1);
        size_t n = 0;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_children; i++) {
                const ConfNode *c = g->children[i];
                Allocation *x;

                if (!conf_node_is(c, what))
                        continue;
                x = &a[n++];
                x->node = c;
                x->type = conf_node_attr(c, "type");
                x->level = number_of(c, "level", &x->bad);
                x->id = number_of(c, "id", &x->bad);
        }
        qsort(a, n, sizeof(*a), allocation_compare);
        for (size_t i = 0; i < n; i++) {
                size_t end = i;

                if (a[i].bad)
                        break;
                while (end + 1 < n && !a[end + 1].bad && a[end + 1].level == a[i].level && a[end + 1].id == a[i].id)
                        end++;
                /* one run of the same level and id: any two that overlap? (a run holds three types at most
                 * before two overlap, so this stays linear) */
                for (size_t j = i; j <= end; j++)
                        for (size_t k = i; k < j; k++)
                                if (types_overlap(a[k].type, a[j].type))
                                        return conf_error(e, a[j].node, "the same %s is allocated twice in one <%s> "
                                                          "(lines %u and %u; expected one allocation of each)",
                                                          conf_node_is(g, "cachetune") ? "cache" : "memory node",
                                                          g->name, a[k].node->line, a[j].node->line);
                i = end;
        }
        return 0;
}

static int validate_monitors(const ConfNode *g, const VcpuSet *vcpus, VbError *e) {
        for (size_t i = 0; i < g->n_children; i++) {
                const ConfNode *c = g->children[i];
                VcpuSet m;
                int r;

                if (!conf_node_is(c, "monitor") || !conf_node_attr(c, "vcpus"))
                        continue;
                r = vcpu_set_parse(c, conf_node_attr(c, "vcpus"), &m, e);
                if (r < 0)
                        return r;
                if (!vcpu_set_contains(vcpus, &m))
                        return conf_error(e, c, "vcpus='%s' are not all in the <%s vcpus='%s'> it is part of "
                                          "(expected a subset of the group's vCPUs)",
                                          conf_node_attr(c, "vcpus"), g->name, conf_node_attr(g, "vcpus"));
        }
        return 0;
}

/* Which group of each kind every vCPU is in: groups[kind][k] is the k-th group of that kind, owner[kind][v]
 * the index + 1 of the group that holds vCPU v (0: none), size[kind][k] how many vCPUs it holds. */
typedef struct TuneOwners {
        const ConfNode **groups[2];
        size_t *size[2];
        size_t n[2];
        uint32_t owner[2][TUNE_VCPUS_MAX];
} TuneOwners;

static void tune_owners_free(TuneOwners *t) {
        for (size_t k = 0; k < 2; k++) {
                free(t->groups[k]);
                free(t->size[k]);
        }
        free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(TuneOwners *, tune_owners_free);

static int claim_vcpus(TuneOwners *t, const ConfNode *g, const VcpuSet *s, VbError *e) {
        size_t kind = conf_node_is(g, "cachetune") ? 0 : 1, other = 1 - kind, count = 0, with = 0;
        uint32_t shared = 0;

        for (size_t w = 0; w < WORDS; w++)
                for (uint64_t bits = s->bits[w]; bits; bits &= bits - 1) {
                        size_t v = w * 64 + (size_t) __builtin_ctzll(bits);

                        if (t->owner[kind][v])
                                return conf_error(e, g, "vcpus='%s' overlap those of the <%s> on line %u (expected "
                                                  "each vCPU in one <%s> at most)", conf_node_attr(g, "vcpus"),
                                                  g->name, t->groups[kind][t->owner[kind][v] - 1]->line, g->name);
                        t->owner[kind][v] = (uint32_t) t->n[kind] + 1;
                        count++;
                        if (!shared)
                                shared = t->owner[other][v];
                        with += shared && t->owner[other][v] == shared;
                }
        t->groups[kind][t->n[kind]] = g;
        t->size[kind][t->n[kind]++] = count;
        /* Sharing vCPUs with a group of the other kind is only right if both hold the very same ones. (A vCPU
         * counted before shared was found has no such group, so 'with' falls short then too.) */
        if (shared && (with != count || t->size[other][shared - 1] != count))
                return conf_error(e, g, "vcpus='%s' overlap those of the <%s> on line %u but are not the same "
                                  "(expected the same vCPUs, or none in common)", conf_node_attr(g, "vcpus"),
                                  t->groups[other][shared - 1]->name, t->groups[other][shared - 1]->line);
        return 0;
}

int domain_validate_cputune(const ConfNode *cputune, VbError *e) {
        _cleanup_(tune_owners_freep) TuneOwners *t = NULL;
        _cleanup_free_ VcpuSet *s = NULL;
        int r;

        if (!cputune)
                return 0;
        t = new0(TuneOwners, 1);
        s = new0(VcpuSet, 1);
        if (!t || !s)
                return -ENOMEM;
        for (size_t k = 0; k < 2; k++) {
                t->groups[k] = new0(const ConfNode *, cputune->n_children + 1);
                t->size[k] = new0(size_t, cputune->n_children + 1);
                if (!t->groups[k] || !t->size[k])
                        return -ENOMEM;
        }
        for (size_t i = 0; i < cputune->n_children; i++) {
                const ConfNode *g = cputune->children[i];

                if ((!conf_node_is(g, "cachetune") && !conf_node_is(g, "memorytune")) || !conf_node_attr(g, "vcpus"))
                        continue;
                if ((r = vcpu_set_parse(g, conf_node_attr(g, "vcpus"), s, e)) < 0 ||
                    (r = validate_allocations(g, e)) < 0 || (r = validate_monitors(g, s, e)) < 0 ||
                    (r = claim_vcpus(t, g, s, e)) < 0)
                        return r;
        }
        return 0;
}
