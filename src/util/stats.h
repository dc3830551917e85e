/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* A statistics record as libvirt's typed parameters: ordered keys ("cpu.time", "block.0.rd.bytes") with
 * a typed value each. Drivers fill it, core merges the parts, src/bus turns it into a{sv}. Allocation
 * failure is sticky (like StrBuf): adding returns nothing, vb_stats_failed() says so once at the end. */
typedef enum VbStatsType {
        VB_STATS_INT,    /* int: D-Bus 'i' */
        VB_STATS_UINT,   /* unsigned int: 'u' */
        VB_STATS_ULLONG, /* unsigned long long: 't' */
        VB_STATS_STRING, /* 's' */
} VbStatsType;

typedef struct VbStatsField {
        char *key;
        VbStatsType type;
        union {
                int32_t i;
                uint32_t u;
                uint64_t t;
                char *s;
        };
} VbStatsField;

typedef struct VbStats {
        VbStatsField *fields;
        size_t n, allocated;
        bool oom;
} VbStats;

/* The groups of GetStats/GetAllDomainStats, libvirt's VIR_DOMAIN_STATS_* bits. */
#define VB_STATS_GROUP_STATE UINT64_C(1)
#define VB_STATS_GROUP_CPU UINT64_C(2)
#define VB_STATS_GROUP_BALLOON UINT64_C(4)
#define VB_STATS_GROUP_VCPU UINT64_C(8)
#define VB_STATS_GROUP_INTERFACE UINT64_C(16)
#define VB_STATS_GROUP_BLOCK UINT64_C(32)
#define VB_STATS_GROUPS_ALL UINT64_C(63)

VbStats *vb_stats_new(void);
VbStats *vb_stats_free(VbStats *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VbStats *, vb_stats_free);

/* key is a printf format. */
void vb_stats_add_int(VbStats *s, int32_t v, const char *key, ...) _printf_(3, 4);
void vb_stats_add_uint(VbStats *s, uint32_t v, const char *key, ...) _printf_(3, 4);
void vb_stats_add_ullong(VbStats *s, uint64_t v, const char *key, ...) _printf_(3, 4);
/* v NULL adds nothing. */
void vb_stats_add_string(VbStats *s, const char *v, const char *key, ...) _printf_(3, 4);
/* Moves the fields of src (emptied, not freed) to the end of dst. */
void vb_stats_append(VbStats *dst, VbStats *src);
/* The field with this key, NULL if none. */
const VbStatsField *vb_stats_find(const VbStats *s, const char *key);
/* An allocation failed on the way. */
static inline bool vb_stats_failed(const VbStats *s) {
        return !s || s->oom;
}
