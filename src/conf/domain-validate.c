/* SPDX-License-Identifier: LGPL-2.1-or-later */
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

static int validate_unique_disks(const DomainDef *def, VbError *e) {
        _cleanup_free_ ConfKey *keys = new0(ConfKey, def->n_devices);
        size_t n = 0, first, second, missing = SIZE_MAX;

        if (!keys)
                return -ENOMEM;
        /* Only in a domain: a <disk> document alone may describe just a source (libvirt's block layer reads
         * such documents), and AttachDevice's caller learns of a missing target from the domain's check. */
        for (size_t i = 0; i < def->n_devices; i++) {
                const char *t = def->devices[i]->kind == DEVICE_DISK ? device_disk_get_target(def->devices[i]) : NULL;

                if (def->devices[i]->kind == DEVICE_DISK && isempty(t) && missing == SIZE_MAX)
                        missing = i;
                if (!isempty(t))
                        keys[n++] = (ConfKey) { .s = t, .index = i };
        }
        if (!conf_keys_find_duplicate(keys, n, &first, &second))
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
        _cleanup_free_ ConfKey *keys = new0(ConfKey, def->n_devices);
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
                keys[n++] = (ConfKey) { .u = u, .index = i };
        }
        if (!conf_keys_find_duplicate(keys, n, &first, &second))
                return 0;
        (void) device_interface_get_mac(def->devices[second], a);
        conf_mac_format(a, s);
        return vb_error_set(e, VB_ERROR_INVALID_XML,
                            "line %u: element 'interface': MAC address '%s' is used by two interfaces (lines %u and %u)",
                            def->devices[second]->line, s, def->devices[first]->line, def->devices[second]->line);
}

/* A boot order names one device. (Per-device orders beside the <os>'s <boot dev=.../> list are a QEMU
 * driver's refusal in libvirt, not its parser's: documents of other drivers hold both.) */
static int validate_boot_orders(const DomainDef *def, VbError *e) {
        _cleanup_free_ ConfKey *keys = new0(ConfKey, def->n_devices);
        size_t n = 0, first, second;

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->boot_order > 0)
                        keys[n++] = (ConfKey) { .u = def->devices[i]->boot_order, .index = i };
        if (!conf_keys_find_duplicate(keys, n, &first, &second))
                return 0;
        return vb_error_set(e, VB_ERROR_INVALID_XML,
                            "line %u: element '%s': boot order %u is given to two devices (lines %u and %u; expected "
                            "each order once)", def->devices[second]->line, device_def_kind_name(def->devices[second]),
                            def->devices[second]->boot_order, def->devices[first]->line, def->devices[second]->line);
}

/* A user's alias ('ua-' and a name) names one device: hot-unplug and statistics find devices by it. The
 * aliases the hypervisor gives are its own business, and a <console> may be the first <serial> shown again,
 * alias and all. */
static int validate_unique_aliases(const DomainDef *def, VbError *e) {
        _cleanup_free_ ConfKey *keys = new0(ConfKey, def->n_devices);
        size_t n = 0, first, second;

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->alias && strncmp(def->devices[i]->alias, "ua-", 3) == 0 &&
                    def->devices[i]->kind != DEVICE_CONSOLE)
                        keys[n++] = (ConfKey) { .s = def->devices[i]->alias, .index = i };
        if (!conf_keys_find_duplicate(keys, n, &first, &second))
                return 0;
        return vb_error_set(e, VB_ERROR_INVALID_XML,
                            "line %u: element '%s': alias '%s' is used by two devices (lines %u and %u; expected "
                            "each alias once)", def->devices[second]->line, device_def_kind_name(def->devices[second]),
                            def->devices[second]->alias, def->devices[first]->line, def->devices[second]->line);
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
            (r = validate_boot_orders(def, e)) < 0 || (r = validate_unique_aliases(def, e)) < 0 ||
            (r = validate_numatune(def, e)) < 0 || (r = domain_validate_cputune(conf_node_child(def->extra, "cputune"), e)) < 0)
                return r;
        for (size_t i = 0; i < def->n_devices; i++) {
                r = device_def_validate(def->devices[i], e);
                if (r < 0)
                        return r;
        }
        return 0;
}
