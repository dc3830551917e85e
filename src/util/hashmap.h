/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A map from strings to pointers. Keys are not copied: they must live as long as their entry
 * (usually they point into the value). Iteration order is unspecified. */
typedef struct Hashmap Hashmap;

Hashmap *hashmap_new(void);
Hashmap *hashmap_free(Hashmap *h);

/* -EEXIST if the key is present. */
int hashmap_put(Hashmap *h, const char *key, void *value);
void *hashmap_get(const Hashmap *h, const char *key);
void *hashmap_remove(Hashmap *h, const char *key);
size_t hashmap_size(const Hashmap *h);

/* Iteration: for (size_t i = 0; hashmap_iterate(h, &i, &value, &key); ) */
bool hashmap_iterate(const Hashmap *h, size_t *i, void **ret_value, const char **ret_key);
