/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"

/* From DomainDef to a ConfNode tree: the typed part is generated, then the extra the parser kept is
 * merged in (see conf_node_merge()), which also puts children in libvirt's order. */

static int add_textf_u64(ConfNode *n, const char *name, uint64_t v, const char *unit) {
        char buf[32];
        ConfNode *c;

        snprintf(buf, sizeof buf, "%" PRIu64, v);
        c = conf_node_add(n, name);
        if (!c || conf_node_set_text(c, buf) < 0 || conf_node_set_attr(c, "unit", unit) < 0)
                return -ENOMEM;
        return 0;
}

static int format_os(const DomainDef *def, ConfNode *n) {
        ConfNode *os = conf_node_add(n, "os"), *c;

        if (!os)
                return -ENOMEM;
        if (def->os.type) {
                c = conf_node_add(os, "type");
                if (!c || conf_node_set_attr(c, "arch", def->os.arch) < 0 ||
                    conf_node_set_attr(c, "machine", def->os.machine) < 0 || conf_node_set_text(c, def->os.type) < 0)
                        return -ENOMEM;
        }
        if (conf_node_add_text(os, "loader", def->os.loader) < 0 || conf_node_add_text(os, "kernel", def->os.kernel) < 0 ||
            conf_node_add_text(os, "initrd", def->os.initrd) < 0 || conf_node_add_text(os, "cmdline", def->os.cmdline) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < def->os.n_boot; i++) {
                c = conf_node_add(os, "boot");
                if (!c || conf_node_set_attr(c, "dev", domain_boot_dev_to_string(def->os.boot[i])) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_identity(const DomainDef *def, ConfNode *n) {
        char uuid[37];

        if (conf_node_set_attr(n, "type", domain_virt_type_to_string(def->virt_type)) < 0)
                return -ENOMEM;
        if (def->id >= 0 && conf_node_set_attrf(n, "id", "%" PRIi64, def->id) < 0)
                return -ENOMEM;
        if (conf_node_add_text(n, "name", def->name) < 0)
                return -ENOMEM;
        if (def->has_uuid) {
                conf_uuid_format(def->uuid, uuid);
                if (conf_node_add_text(n, "uuid", uuid) < 0)
                        return -ENOMEM;
        }
        if (conf_node_add_text(n, "title", def->title) < 0 || conf_node_add_text(n, "description", def->description) < 0)
                return -ENOMEM;
        return 0;
}

static int format_resources(const DomainDef *def, ConfNode *n) {
        char buf[16];

        if (def->memory_kib > 0 && add_textf_u64(n, "memory", def->memory_kib, "KiB") < 0)
                return -ENOMEM;
        if (def->current_memory_kib > 0 && add_textf_u64(n, "currentMemory", def->current_memory_kib, "KiB") < 0)
                return -ENOMEM;
        if (def->vcpus > 0) {
                ConfNode *c = conf_node_add(n, "vcpu");

                snprintf(buf, sizeof buf, "%u", def->vcpus);
                if (!c || conf_node_set_text(c, buf) < 0)
                        return -ENOMEM;
                if (def->vcpus_current > 0 && conf_node_set_attrf(c, "current", "%u", def->vcpus_current) < 0)
                        return -ENOMEM;
        }
        if (conf_node_add_text(n, "bootloader", def->bootloader) < 0 ||
            conf_node_add_text(n, "bootloader_args", def->bootloader_args) < 0)
                return -ENOMEM;
        return 0;
}

static int format_features_clock(const DomainDef *def, ConfNode *n) {
        ConfNode *features = NULL, *clock;

        for (DomainFeature f = 0; f < _DOMAIN_FEATURE_MAX; f++) {
                if (!def->features[f])
                        continue;
                if (!features && !(features = conf_node_add(n, "features")))
                        return -ENOMEM;
                if (!conf_node_add(features, domain_feature_to_string(f)))
                        return -ENOMEM;
        }
        if (def->clock_offset != DOMAIN_CLOCK_UNSET) {
                clock = conf_node_add(n, "clock");
                if (!clock || conf_node_set_attr(clock, "offset", domain_clock_offset_to_string(def->clock_offset)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_devices(const DomainDef *def, ConfNode *n, unsigned flags) {
        ConfNode *devices;
        int r;

        if (!def->emulator && def->n_devices == 0)
                return 0;
        devices = conf_node_add(n, "devices");
        if (!devices || conf_node_add_text(devices, "emulator", def->emulator) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_devices; i++) {
                ConfNode *d = NULL;

                r = device_def_to_node(def->devices[i], flags, &d);
                if (r < 0)
                        return r;
                r = conf_node_append(devices, d);
                if (r < 0)
                        return r;
        }
        return 0;
}

int domain_def_to_node(const DomainDef *def, unsigned flags, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL, *residue = NULL;
        static const char * const actions[] = { "on_poweroff", "on_reboot", "on_crash" };
        const DomainLifecycleAction values[] = { def->on_poweroff, def->on_reboot, def->on_crash };
        int r;

        n = conf_node_new("domain");
        if (!n)
                return -ENOMEM;
        if ((r = format_identity(def, n)) < 0 || (r = format_resources(def, n)) < 0 || (r = format_os(def, n)) < 0 ||
            (r = format_features_clock(def, n)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                if (conf_node_add_text(n, actions[i], domain_lifecycle_action_to_string(values[i])) < 0)
                        return -ENOMEM;
        r = format_devices(def, n, flags);
        if (r < 0)
                return r;
        if (def->extra && !(residue = conf_node_copy(def->extra)))
                return -ENOMEM;
        r = conf_node_merge(n, residue);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}
