/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

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
        for (size_t i = 0; i < def->n_devices; i++) {
                const char *t = def->devices[i]->kind == DEVICE_DISK ? device_disk_get_target(def->devices[i]) : NULL;

                if (def->devices[i]->kind == DEVICE_DISK && isempty(t))
                        return vb_error_set(e, VB_ERROR_INVALID_XML,
                                            "line %u: element 'disk': a disk in a domain needs <target dev='...'/>",
                                            def->devices[i]->line);
                if (!t)
                        continue;
                for (size_t j = 0; j < i; j++)
                        if (def->devices[j]->kind == DEVICE_DISK && streq_ptr(device_disk_get_target(def->devices[j]), t))
                                return vb_error_set(e, VB_ERROR_INVALID_XML,
                                                    "line %u: element 'disk': target '%s' is used by two disks (lines %u and %u)",
                                                    def->devices[i]->line, t, def->devices[j]->line, def->devices[i]->line);
        }
        return 0;
}

static int validate_unique_macs(const DomainDef *def, VbError *e) {
        uint8_t a[6], b[6];
        char s[18];

        for (size_t i = 0; i < def->n_devices; i++) {
                if (def->devices[i]->kind != DEVICE_INTERFACE || !device_interface_get_mac(def->devices[i], a))
                        continue;
                for (size_t j = 0; j < i; j++)
                        if (def->devices[j]->kind == DEVICE_INTERFACE && device_interface_get_mac(def->devices[j], b) &&
                            memcmp(a, b, 6) == 0) {
                                conf_mac_format(a, s);
                                return vb_error_set(e, VB_ERROR_INVALID_XML,
                                                    "line %u: element 'interface': MAC address '%s' is used by two interfaces (lines %u and %u)",
                                                    def->devices[i]->line, s, def->devices[j]->line, def->devices[i]->line);
                        }
        }
        return 0;
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
