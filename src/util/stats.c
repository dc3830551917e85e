/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/stats.h"

VbStats *vb_stats_new(void) {
        return new0(VbStats, 1);
}

static void field_done(VbStatsField *f) {
        free(f->key);
        if (f->type == VB_STATS_STRING)
                free(f->s);
}

VbStats *vb_stats_free(VbStats *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                field_done(&s->fields[i]);
        free(s->fields);
        free(s);
        return NULL;
}

/* A new field named by format, or NULL (then s->oom is set). */
static VbStatsField *add(VbStats *s, VbStatsType type, const char *format, va_list ap) {
        VbStatsField *f;
        char *key;

        if (!s || s->oom)
                return NULL;
        if (vasprintf(&key, format, ap) < 0) {
                s->oom = true;
                return NULL;
        }
        if (!GREEDY_REALLOC(s->fields, s->allocated, s->n + 1)) {
                free(key);
                s->oom = true;
                return NULL;
        }
        f = &s->fields[s->n++];
        *f = (VbStatsField) { .key = key, .type = type };
        return f;
}

#define DEFINE_ADD(name, ctype, TYPE, member)                                   \
        void vb_stats_add_##name(VbStats *s, ctype v, const char *key, ...) {   \
                VbStatsField *f;                                                \
                va_list ap;                                                     \
                va_start(ap, key);                                              \
                f = add(s, TYPE, key, ap);                                      \
                va_end(ap);                                                     \
                if (f)                                                          \
                        f->member = v;                                          \
        }

DEFINE_ADD(int, int32_t, VB_STATS_INT, i)
DEFINE_ADD(uint, uint32_t, VB_STATS_UINT, u)
DEFINE_ADD(ullong, uint64_t, VB_STATS_ULLONG, t)

void vb_stats_add_string(VbStats *s, const char *v, const char *key, ...) {
        VbStatsField *f;
        char *copy;
        va_list ap;

        if (!v || !s || s->oom)
                return;
        copy = strdup(v);
        if (!copy) {
                s->oom = true;
                return;
        }
        va_start(ap, key);
        f = add(s, VB_STATS_STRING, key, ap);
        va_end(ap);
        if (f)
                f->s = copy;
        else
                free(copy);
}

void vb_stats_append(VbStats *dst, VbStats *src) {
        if (!src)
                return;
        if (src->oom)
                dst->oom = true;
        if (!dst->oom && src->n > 0 && !GREEDY_REALLOC(dst->fields, dst->allocated, dst->n + src->n))
                dst->oom = true;
        for (size_t i = 0; i < src->n; i++) {
                if (dst->oom)
                        field_done(&src->fields[i]);
                else
                        dst->fields[dst->n++] = src->fields[i];
        }
        src->n = 0;
}

const VbStatsField *vb_stats_find(const VbStats *s, const char *key) {
        for (size_t i = 0; s && i < s->n; i++)
                if (strcmp(s->fields[i].key, key) == 0)
                        return &s->fields[i];
        return NULL;
}
