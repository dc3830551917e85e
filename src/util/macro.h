/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand over ownership: returns the value and sets the variable to NULL. */
#define TAKE_PTR(p)                             \
        ({                                      \
                __typeof__(p) _p_ = (p);        \
                (p) = NULL;                     \
                _p_;                            \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
        static inline void func##p(type *p) {           \
                if (*p)                                 \
                        func(*p);                       \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline const char *strempty(const char *s) {
        return s ?: "";
}

static inline const char *strna(const char *s) {
        return s ?: "n/a";
}

#define new0(t, n) ((t *) calloc((n) ?: 1, sizeof(t)))

/* Frees the old value and stores a copy of the new one. */
int free_and_strdup(char **p, const char *s);

/* Overflow-checked growth of a dynamic array: ensures room for need elements. */
void *greedy_realloc(void **p, size_t *allocated, size_t need, size_t size);

/* A duration set by the environment variable name in milliseconds (1 to 3600000; tests shorten bounds with
 * it), in microseconds; def when it is unset or empty, and with a warning when it is not such a number. */
uint64_t env_msec_as_usec(const char *name, uint64_t def);
#define GREEDY_REALLOC(array, allocated, need) \
        greedy_realloc((void **) &(array), &(allocated), (need), sizeof((array)[0]))

#define ASSERT_RETURN(expr, r)          \
        do {                            \
                if (!(expr))            \
                        return (r);     \
        } while (false)
