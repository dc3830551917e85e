/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "util/log.h"
#include "util/macro.h"
#include "util/string-table.h"

int free_and_strdup(char **p, const char *s) {
        char *t = NULL;

        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t size) {
        size_t a;
        void *q;

        if (*allocated >= need && *p)
                return *p;
        if (need > SIZE_MAX / 2 / size)
                return NULL;
        a = need < 8 ? 8 : need * 2;
        q = realloc(*p, a * size);
        if (!q)
                return NULL;
        memset((char *) q + *allocated * size, 0, (a - *allocated) * size);
        *p = q;
        *allocated = a;
        return q;
}

ssize_t string_table_lookup(const char * const *table, size_t n, const char *key) {
        if (!key)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], key))
                        return (ssize_t) i;
        return -EINVAL;
}

uint64_t env_msec_as_usec(const char *name, uint64_t def) {
        const char *v = getenv(name);
        unsigned long long ms;
        char *end = NULL;

        if (!v || !*v)
                return def;
        errno = 0;
        ms = strtoull(v, &end, 10);
        if (errno != 0 || !end || *end || ms == 0 || ms > 3600ULL * 1000ULL) {
                log_warning("Ignoring %s='%s' (expected milliseconds, 1 to 3600000).", name, v);
                return def;
        }
        return ms * 1000ULL;
}
