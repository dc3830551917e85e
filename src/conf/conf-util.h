/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "conf/conf-node.h"
#include "util/error.h"

/* Helpers shared by the typed parsers: each reads (and consumes) a value from a ConfNode and
 * reports problems as "line N: element 'E': attribute 'A' ...". */

int conf_error(VbError *e, const ConfNode *n, const char *format, ...) _printf_(3, 4);

/* Enumerations, by the functions DEFINE_STRING_TABLE_LOOKUP makes. The value is looked up and on
 * failure the message lists what is expected. *ret is left alone if absent; returns 1 if read. */
typedef const char *(*ConfEnumToString)(int);
int conf_lookup_enum(const ConfNode *n, const char *what, const char *value, ConfEnumToString to_string,
                     size_t n_table, int *ret, VbError *e);
int conf_take_enum(ConfNode *n, const char *attr, bool required, ConfEnumToString to_string, size_t n_table,
                   int *ret, VbError *e);
#define CONF_TAKE_ENUM(n, attr, name, required, ret, e)                                    \
        conf_take_enum(n, attr, required, (ConfEnumToString) name##_to_string, name##_table_size(), \
                       (int *) (ret), e)
#define CONF_LOOKUP_ENUM(n, what, value, name, ret, e)                                     \
        conf_lookup_enum(n, what, value, (ConfEnumToString) name##_to_string, name##_table_size(), \
                         (int *) (ret), e)

/* Unsigned numbers. libvirt reads most numbers in decimal ('010' is ten), and these do too. The _base
 * forms take the base libvirt gives a place: CONF_BASE_C (C's rule: 0x hex, a leading 0 octal, else
 * decimal) for guest and host PCI/CCW addresses and host USB/SCSI ids, 16 (hex with or without 0x) for
 * spapr-vio registers and node devices' vendor/product ids and PCI class. The take forms return 0 if
 * absent, 1 if read. */
#define CONF_BASE_C 0
int conf_take_uint(ConfNode *n, const char *attr, uint64_t max, uint64_t *ret, VbError *e);
int conf_take_uint32(ConfNode *n, const char *attr, uint32_t max, uint32_t *ret, VbError *e);
int conf_parse_uint(const ConfNode *n, const char *what, const char *s, uint64_t max, uint64_t *ret, VbError *e);
int conf_take_uint_base(ConfNode *n, const char *attr, int base, uint64_t max, uint64_t *ret, VbError *e);
int conf_take_uint32_base(ConfNode *n, const char *attr, int base, uint32_t max, uint32_t *ret, VbError *e);
int conf_parse_uint_base(const ConfNode *n, const char *what, const char *s, int base, uint64_t max, uint64_t *ret,
                         VbError *e);
/* Sets attr to v unless v is UINT32_MAX (unset). format: "%u" for decimal, or "0x%0Nx" written as a
 * width N > 0 (hex with N digits). */
int conf_set_uint32(ConfNode *n, const char *attr, const char *format, uint32_t v);

/* yes/no (also on/off): returns 0 if absent, 1 if read; *ret is a tristate -1/0/1 otherwise unset. */
int conf_take_yesno(ConfNode *n, const char *attr, int *ret, VbError *e);

/* Text of an element with an optional unit='...' attribute, converted to KiB (rounded up). */
int conf_take_memory(ConfNode *n, uint64_t *ret_kib, VbError *e);
int conf_memory_to_kib(const char *value, const char *unit, uint64_t *ret_kib);

/* UUIDs and MACs */
int conf_uuid_parse(const char *s, uint8_t ret[16]);
void conf_uuid_format(const uint8_t uuid[16], char ret[37]);
bool conf_uuid_is_null(const uint8_t uuid[16]);
int conf_mac_parse(const char *s, uint8_t ret[6]);
/* The <uuid> child of n (marked used), parsed into ret; ret_text (may be NULL) gets its text as given.
 * Returns 0 when there is none, 1 when read. */
int conf_take_uuid(ConfNode *n, uint8_t ret[16], char **ret_text, VbError *e);
void conf_mac_format(const uint8_t mac[6], char ret[18]);

/* Random bytes, or (seed non-NULL) bytes derived from seed, for stable defaults. */
void conf_fill_bytes(uint8_t *buf, size_t n, const char *seed, unsigned salt);

/* Per-device <seclabel>s: relabel='yes' needs a <label>. Walks the whole subtree. */
int conf_check_device_seclabels(const ConfNode *n, VbError *e);
/* <bandwidth> anywhere below n: a floor is guaranteed to incoming traffic only. */
int conf_check_bandwidth(const ConfNode *n, VbError *e);

/* Names of domains and such: non-empty, no '/', no control characters. */
int conf_check_name(const ConfNode *n, const char *what, const char *s, VbError *e);

/* Uniqueness checks (disk targets, MACs, portgroup names) by sorting, O(n log n): a definition may hold
 * tens of thousands of items, and comparing every pair takes seconds. A key is a string (s non-NULL) or
 * a number (u), and the item's position. */
typedef struct ConfKey {
        const char *s;
        uint64_t u;
        size_t index;
} ConfKey;

/* Sorts keys. Returns true if two are equal: *ret_second is the first item (in position order) that
 * repeats an earlier one's key, *ret_first the earliest item with that key. */
bool conf_keys_find_duplicate(ConfKey *keys, size_t n, size_t *ret_first, size_t *ret_second);
