/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"

/* Checks beyond what the schema can say. */

static const ConfNode *where_of(const DomainDef *def, const char *child) {
        if (!def->extra)
                return NULL;
        for (size_t i = 0; i < def->extra->n_children; i++)
                if (conf_node_is(def->extra->children[i], child))
                        return def->extra->children[i];
        return def->extra;
}

/* A device's key for the uniqueness checks: a string (disk target) or a number (MAC). Sorting them
 * finds duplicates in O(n log n): a definition may carry tens of thousands of devices (DOMAIN_XML_MAX),
 * and comparing every pair took seconds of the event loop. */
typedef struct DeviceKey {
        const char *s;
        uint64_t u;
        size_t index;
} DeviceKey;

static int device_key_compare_value(const DeviceKey *x, const DeviceKey *y) {
        if (x->s || y->s)
                return strcmp(strempty(x->s), strempty(y->s));
        return (x->u > y->u) - (x->u < y->u);
}

static int device_key_compare(const void *a, const void *b) {
        const DeviceKey *x = a, *y = b;
        int c = device_key_compare_value(x, y);

        return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* The device that repeats an earlier one's key, the first such in document order (*ret_second), and
 * the earliest device with that key (*ret_first); false if all keys differ. Sorts keys. */
static bool device_keys_find_duplicate(DeviceKey *keys, size_t n, size_t *ret_first, size_t *ret_second) {
        size_t first = 0, second = SIZE_MAX, group = 0;

        if (n > 1)
                qsort(keys, n, sizeof *keys, device_key_compare);
        for (size_t k = 1; k < n; k++) {
                if (device_key_compare_value(&keys[k - 1], &keys[k]) != 0)
                        group = k;
                else if (k == group + 1 && keys[k].index < second) {
                        first = keys[group].index;
                        second = keys[k].index;
                }
        }
        if (second == SIZE_MAX)
                return false;
        *ret_first = first;
        *ret_second = second;
        return true;
}

static int validate_unique_disks(const DomainDef *def, VbError *e) {
        _cleanup_free_ DeviceKey *keys = new0(DeviceKey, def->n_devices);
        size_t n = 0, first, second, missing = SIZE_MAX;

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++) {
                const char *t = def->devices[i]->kind == DEVICE_DISK ? device_disk_get_target(def->devices[i]) : NULL;

                if (def->devices[i]->kind == DEVICE_DISK && isempty(t) && missing == SIZE_MAX)
                        missing = i;
                if (!isempty(t))
                        keys[n++] = (DeviceKey) { .s = t, .index = i };
        }
        if (!device_keys_find_duplicate(keys, n, &first, &second))
                second = SIZE_MAX;
        if (missing < second)
                return vb_error_set(e, VB_ERROR_INVALID_XML,
                                    "line %u: element 'disk': a disk in a domain needs <target dev='...'/>",
                                    def->devices[missing]->line);
        if (second != SIZE_MAX)
                return vb_error_set(e, VB_ERROR_INVALID_XML,
                                    "line %u: element 'disk': target '%s' is used by two disks (lines %u and %u)",
                                    def->devices[second]->line, device_disk_get_target(def->devices[second]),
                                    def->devices[first]->line, def->devices[second]->line);
        return 0;
}

static int validate_unique_macs(const DomainDef *def, VbError *e) {
        _cleanup_free_ DeviceKey *keys = new0(DeviceKey, def->n_devices);
        size_t n = 0, first, second;
        uint8_t a[6];
        char s[18];

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++) {
                uint64_t u = 0;

                if (def->devices[i]->kind != DEVICE_INTERFACE || !device_interface_get_mac(def->devices[i], a))
                        continue;
                for (size_t k = 0; k < 6; k++)
                        u = u << 8 | a[k];
                keys[n++] = (DeviceKey) { .u = u, .index = i };
        }
        if (!device_keys_find_duplicate(keys, n, &first, &second))
                return 0;
        (void) device_interface_get_mac(def->devices[second], a);
        conf_mac_format(a, s);
        return vb_error_set(e, VB_ERROR_INVALID_XML,
                            "line %u: element 'interface': MAC address '%s' is used by two interfaces (lines %u and %u)",
                            def->devices[second]->line, s, def->devices[first]->line, def->devices[second]->line);
}

static int validate_numatune(const DomainDef *def, VbError *e) {
        const ConfNode *m = conf_node_child(conf_node_child(def->extra, "numatune"), "memory");

        if (m && streq_ptr(conf_node_attr(m, "placement"), "auto") && conf_node_attr(m, "nodeset"))
                return conf_error(e, m, "attribute 'nodeset' cannot be combined with placement='auto'");
        return 0;
}

int domain_def_validate(const DomainDef *def, VbError *e) {
        int r;

        r = conf_check_name(where_of(def, "name"), "domain name", def->name, e);
        if (r < 0)
                return r;
        if (def->current_memory_kib > def->memory_kib && def->memory_kib > 0)
                return conf_error(e, where_of(def, "currentMemory"),
                                  "current memory (%llu KiB) must not exceed memory (%llu KiB)",
                                  (unsigned long long) def->current_memory_kib, (unsigned long long) def->memory_kib);
        if ((r = validate_unique_disks(def, e)) < 0 || (r = validate_unique_macs(def, e)) < 0 ||
            (r = validate_numatune(def, e)) < 0)
                return r;
        for (size_t i = 0; i < def->n_devices; i++) {
                r = device_def_validate(def->devices[i], e);
                if (r < 0)
                        return r;
        }
        return 0;
}
