/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Open addressing with linear probing and tombstones; grows at 70% load. */
#include <stdint.h>

#include "util/hashmap.h"
#include "util/macro.h"

#define TOMBSTONE ((const char *) 1)

typedef struct Entry {
        const char *key;
        void *value;
        size_t hash;
} Entry;

struct Hashmap {
        Entry *entries;
        size_t n_buckets;
        size_t n_used;   /* live entries */
        size_t n_filled; /* live entries + tombstones */
};

static size_t string_hash(const char *s) {
        /* FNV-1a, 64 bit. */
        uint64_t h = UINT64_C(14695981039346656037);
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(1099511628211);
        }
        return (size_t) h;
}

Hashmap *hashmap_new(void) {
        return new0(Hashmap, 1);
}

Hashmap *hashmap_free(Hashmap *h) {
        if (h) {
                free(h->entries);
                free(h);
        }
        return NULL;
}

static bool is_live(const Entry *e) {
        return e->key && e->key != TOMBSTONE;
}

static Entry *find(const Hashmap *h, const char *key, size_t hash) {
        if (h->n_buckets == 0)
                return NULL;
        for (size_t i = hash & (h->n_buckets - 1), n = 0; n < h->n_buckets; i = (i + 1) & (h->n_buckets - 1), n++) {
                Entry *e = &h->entries[i];
                if (!e->key)
                        return NULL;
                if (e->key != TOMBSTONE && e->hash == hash && streq(e->key, key))
                        return e;
        }
        return NULL;
}

static int resize(Hashmap *h, size_t n_buckets) {
        Entry *old = h->entries;
        size_t old_n = h->n_buckets;

        h->entries = new0(Entry, n_buckets);
        if (!h->entries) {
                h->entries = old;
                return -ENOMEM;
        }
        h->n_buckets = n_buckets;
        h->n_filled = h->n_used;
        for (size_t i = 0; i < old_n; i++) {
                size_t j;
                if (!is_live(&old[i]))
                        continue;
                for (j = old[i].hash & (n_buckets - 1); h->entries[j].key; j = (j + 1) & (n_buckets - 1))
                        ;
                h->entries[j] = old[i];
        }
        free(old);
        return 0;
}

int hashmap_put(Hashmap *h, const char *key, void *value) {
        size_t hash = string_hash(key), i;
        int r;

        if (find(h, key, hash))
                return -EEXIST;
        if ((h->n_filled + 1) * 10 >= h->n_buckets * 7) {
                size_t n = h->n_buckets ?: 8;
                while ((h->n_used + 1) * 10 >= n * 5)
                        n *= 2;
                r = resize(h, n);
                if (r < 0)
                        return r;
        }
        for (i = hash & (h->n_buckets - 1); is_live(&h->entries[i]); i = (i + 1) & (h->n_buckets - 1))
                ;
        if (!h->entries[i].key)
                h->n_filled++;
        h->entries[i] = (Entry) { .key = key, .value = value, .hash = hash };
        h->n_used++;
        return 0;
}

void *hashmap_get(const Hashmap *h, const char *key) {
        Entry *e;

        if (!h || !key)
                return NULL;
        e = find(h, key, string_hash(key));
        return e ? e->value : NULL;
}

void *hashmap_remove(Hashmap *h, const char *key) {
        Entry *e;
        void *v;

        if (!h || !key)
                return NULL;
        e = find(h, key, string_hash(key));
        if (!e)
                return NULL;
        v = e->value;
        e->key = TOMBSTONE;
        e->value = NULL;
        h->n_used--;
        return v;
}

size_t hashmap_size(const Hashmap *h) {
        return h ? h->n_used : 0;
}

bool hashmap_iterate(const Hashmap *h, size_t *i, void **ret_value, const char **ret_key) {
        if (!h)
                return false;
        for (; *i < h->n_buckets; (*i)++) {
                const Entry *e = &h->entries[*i];
                if (!is_live(e))
                        continue;
                if (ret_value)
                        *ret_value = e->value;
                if (ret_key)
                        *ret_key = e->key;
                (*i)++;
                return true;
        }
        return false;
}
