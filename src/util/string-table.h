/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "util/macro.h"

/* Lookup of a string in a table indexed by enum value; returns the index or -EINVAL. */
ssize_t string_table_lookup(const char * const *table, size_t n, const char *key);

/* Defines name_to_string() and name_from_string() for a table built with designated initialisers. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                  \
        const char *name##_to_string(type i) {                                  \
                if (i < 0 || (size_t) i >= ELEMENTSOF(name##_table))            \
                        return NULL;                                            \
                return name##_table[i];                                         \
        }                                                                       \
        type name##_from_string(const char *s) {                                \
                return (type) string_table_lookup(name##_table, ELEMENTSOF(name##_table), s); \
        }                                                                       \
        size_t name##_table_size(void) {                                        \
                return ELEMENTSOF(name##_table);                                \
        }

#define DECLARE_STRING_TABLE_LOOKUP(name, type)         \
        const char *name##_to_string(type i);           \
        type name##_from_string(const char *s);         \
        size_t name##_table_size(void)
