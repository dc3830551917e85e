/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/domain-conf.h"
#include "conf/domain-devices.h"

/* From the validated <domain> tree to DomainDef. Each step consumes what it models from the tree;
 * the remainder stays in def->extra. */

static int take_child_text(ConfNode *parent, const char *name, char **ret) {
        ConfNode *c = conf_node_use_child(parent, name);

        if (!c)
                return 0;
        free(*ret);
        *ret = conf_node_take_text(c);
        if (!*ret) {
                *ret = strdup("");
                if (!*ret)
                        return -ENOMEM;
        }
        return 1;
}

static int parse_os(DomainDef *def, ConfNode *os, VbError *e) {
        ConfNode *c;
        int r;

        c = conf_node_use_child(os, "type");
        if (c) {
                def->os.type = conf_node_take_text(c);
                def->os.arch = conf_node_take_attr(c, "arch");
                def->os.machine = conf_node_take_attr(c, "machine");
        }
        /* Attributes of <loader> (readonly, type, secure...) stay extra; its path is typed. */
        if ((r = take_child_text(os, "loader", &def->os.loader)) < 0 ||
            (r = take_child_text(os, "kernel", &def->os.kernel)) < 0 ||
            (r = take_child_text(os, "initrd", &def->os.initrd)) < 0 ||
            (r = take_child_text(os, "cmdline", &def->os.cmdline)) < 0)
                return r;
        while ((c = conf_node_use_child(os, "boot"))) {
                int dev;

                if (def->os.n_boot >= _DOMAIN_BOOT_MAX)
                        return conf_error(e, c, "too many boot devices (at most %d)", _DOMAIN_BOOT_MAX);
                r = CONF_TAKE_ENUM(c, "dev", domain_boot_dev, true, &dev, e);
                if (r < 0)
                        return r;
                def->os.boot[def->os.n_boot++] = dev;
        }
        return 0;
}

static int parse_memory(DomainDef *def, ConfNode *root, VbError *e) {
        ConfNode *c;
        int r;

        c = conf_node_use_child(root, "memory");
        if (c) {
                r = conf_take_memory(c, &def->memory_kib, e);
                if (r < 0)
                        return r;
        }
        c = conf_node_use_child(root, "currentMemory");
        if (c) {
                r = conf_take_memory(c, &def->current_memory_kib, e);
                if (r < 0)
                        return r;
        }
        c = conf_node_use_child(root, "vcpu");
        if (c) {
                _cleanup_free_ char *t = conf_node_take_text(c), *cur = conf_node_take_attr(c, "current");
                uint64_t v, n = 0;

                r = conf_parse_uint(c, "vcpu count", t, UINT32_MAX, &v, e);
                if (r < 0)
                        return r;
                /* 0 would be written as no <vcpu> at all, which the schema refuses. */
                if (v == 0)
                        return conf_error(e, c, "vcpu count has invalid value '0' (expected at least 1)");
                if (cur) {
                        r = conf_parse_uint(c, "vcpu attribute 'current'", cur, v, &n, e);
                        if (r < 0)
                                return r;
                        if (n == 0)
                                return conf_error(e, c, "vcpu attribute 'current' has invalid value '0' (expected "
                                                  "1 to %" PRIu64 ")", v);
                }
                def->vcpus = (uint32_t) v;
                def->vcpus_current = (uint32_t) n;
        }
        return 0;
}

static int parse_lifecycle(ConfNode *root, const char *name, DomainLifecycleAction *ret, VbError *e) {
        ConfNode *c = conf_node_use_child(root, name);
        _cleanup_free_ char *t = NULL;
        int r;

        if (!c)
                return 0;
        t = conf_node_take_text(c);
        r = CONF_LOOKUP_ENUM(c, "the action", t, domain_lifecycle_action, ret, e);
        return r < 0 ? r : 0;
}

static int parse_features_clock(DomainDef *def, ConfNode *root, VbError *e) {
        ConfNode *c = conf_node_use_child(root, "features");
        int r;

        for (DomainFeature f = 0; c && f < _DOMAIN_FEATURE_MAX; f++) {
                ConfNode *fc = conf_node_child(c, domain_feature_to_string(f));

                /* Only the plain form is typed; <apic eoi='on'/> and such stay extra as a whole. */
                if (fc && fc->n_attrs == 0 && fc->n_children == 0) {
                        fc->used = true;
                        def->features[f] = true;
                }
        }
        c = conf_node_use_child(root, "clock");
        if (c) {
                r = CONF_TAKE_ENUM(c, "offset", domain_clock_offset, false, &def->clock_offset, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_devices(DomainDef *def, ConfNode *root, VbError *e) {
        ConfNode *devices = conf_node_use_child(root, "devices");
        int r;

        while (devices && devices->n_children > 0) {
                ConfNode *c = conf_node_detach_child(devices, 0);
                DeviceDef *dev = NULL;

                if (conf_node_is(c, "emulator")) {
                        free(def->emulator);
                        def->emulator = conf_node_take_text(c);
                        conf_node_free(c);
                        continue;
                }
                r = device_def_parse_node(c, &dev, e);
                if (r < 0)
                        return r;
                if (!GREEDY_REALLOC(def->devices, def->n_devices_allocated, def->n_devices + 1)) {
                        device_def_free(dev);
                        return -ENOMEM;
                }
                def->devices[def->n_devices++] = dev;
        }
        return 0;
}

static int parse_identity(DomainDef *def, ConfNode *root, VbError *e) {
        uint64_t id;
        int r;

        r = CONF_TAKE_ENUM(root, "type", domain_virt_type, true, &def->virt_type, e);
        if (r < 0)
                return r;
        r = conf_take_uint(root, "id", INT32_MAX, &id, e);
        if (r < 0)
                return r;
        def->id = r > 0 ? (int64_t) id : -1;
        if ((r = take_child_text(root, "name", &def->name)) < 0)
                return r;
        r = conf_take_uuid(root, def->uuid, NULL, e);
        if (r < 0)
                return r;
        if (r > 0)
                def->has_uuid = true;
        if ((r = take_child_text(root, "title", &def->title)) < 0 ||
            (r = take_child_text(root, "description", &def->description)) < 0 ||
            (r = take_child_text(root, "bootloader", &def->bootloader)) < 0 ||
            (r = take_child_text(root, "bootloader_args", &def->bootloader_args)) < 0)
                return r;
        return 0;
}

/* Missing UUID and MACs: random, or derived from the canonical text of the definition so that the
 * same definition always gives the same result (DOMAIN_PARSE_STABLE_DEFAULTS). Controllers' indexes. */
static int domain_def_fill_defaults(DomainDef *def, unsigned flags) {
        _cleanup_free_ char *seed = NULL;
        bool need = !def->has_uuid;
        uint8_t mac[6];
        int r;

        domain_def_fill_controller_indexes(def);
        for (size_t i = 0; i < def->n_devices && !need; i++)
                need = def->devices[i]->kind == DEVICE_INTERFACE && !device_interface_get_mac(def->devices[i], mac);
        if (!need)
                return 0;
        if (flags & DOMAIN_PARSE_STABLE_DEFAULTS) {
                r = domain_def_format(def, DOMAIN_FORMAT_SECURE, &seed);
                if (r < 0)
                        return r;
        }
        if (!def->has_uuid) {
                conf_fill_bytes(def->uuid, 16, seed, 0);
                def->has_uuid = true;
                def->uuid[6] = (def->uuid[6] & 0x0f) | 0x40;
                def->uuid[8] = (def->uuid[8] & 0x3f) | 0x80;
        }
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->kind == DEVICE_INTERFACE)
                        device_interface_ensure_mac(def->devices[i], seed, (unsigned) i + 1);
        return 0;
}

/* Every definition parsed (or changed) in this process gets its own number (see DomainDef.serial). */
uint64_t domain_def_new_serial(void) {
        static uint64_t counter;
        /* Definitions are parsed in the parse workers too. */
        return __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
}

int domain_def_parse_node(ConfNode *root, unsigned flags, DomainDef **ret, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *def = NULL;
        ConfNode *os;
        int r;

        def = new0(DomainDef, 1);
        if (!def) {
                conf_node_free(root);
                return -ENOMEM;
        }
        def->serial = domain_def_new_serial();
        def->extra = root;
        r = parse_identity(def, root, reterr);
        if (r < 0)
                return r;
        os = conf_node_use_child(root, "os");
        if (os && (r = parse_os(def, os, reterr)) < 0)
                return r;
        if ((r = parse_memory(def, root, reterr)) < 0 ||
            (r = parse_lifecycle(root, "on_poweroff", &def->on_poweroff, reterr)) < 0 ||
            (r = parse_lifecycle(root, "on_reboot", &def->on_reboot, reterr)) < 0 ||
            (r = parse_lifecycle(root, "on_crash", &def->on_crash, reterr)) < 0 ||
            (r = parse_features_clock(def, root, reterr)) < 0 ||
            (r = parse_devices(def, root, reterr)) < 0)
                return r;
        r = domain_def_validate(def, reterr);
        if (r < 0)
                return r;
        r = domain_def_fill_defaults(def, flags);
        if (r < 0)
                return r;
        /* What is left of the trees stays as long as the definition: without spare room. */
        conf_node_compact(def->extra);
        for (size_t i = 0; i < def->n_devices; i++)
                conf_node_compact(def->devices[i]->extra);
        *ret = TAKE_PTR(def);
        return 0;
}
