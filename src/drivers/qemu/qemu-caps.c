/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A probe document (qemu-caps-probe.c) read into QemuCaps, and lookups on it. */
#include <stdio.h>
#include <stdlib.h>

#include "drivers/qemu/qemu-caps.h"
#include "drivers/qemu/qemu-monitor.h"

static const struct {
        const char *qemu, *libvirt;
} arch_names[] = {
        { "x86_64", "x86_64" }, { "i386", "i686" },       { "aarch64", "aarch64" }, { "arm", "armv7l" },
        { "ppc64", "ppc64" },   { "riscv64", "riscv64" }, { "s390x", "s390x" },     { "mips64", "mips64" },
};

const char *qemu_caps_arch_from_qemu(const char *qemu_arch) {
        for (size_t i = 0; i < ELEMENTSOF(arch_names); i++)
                if (streq_ptr(arch_names[i].qemu, qemu_arch))
                        return arch_names[i].libvirt;
        return NULL;
}

const char *qemu_caps_arch_to_qemu(const char *arch) {
        for (size_t i = 0; i < ELEMENTSOF(arch_names); i++)
                if (streq_ptr(arch_names[i].libvirt, arch))
                        return arch_names[i].qemu;
        return NULL;
}

QemuCaps *qemu_caps_ref(QemuCaps *c) {
        if (c)
                c->n_ref++;
        return c;
}

QemuCaps *qemu_caps_unref(QemuCaps *c) {
        DomainCaps *dc;
        const char *key;

        if (!c || --c->n_ref > 0)
                return NULL;
        for (size_t i = 0; c->domain_caps && hashmap_iterate(c->domain_caps, &i, (void **) &dc, &key);) {
                domain_caps_unref(dc);
                free((char *) key);
        }
        hashmap_free(c->domain_caps);
        hashmap_free(c->types);
        hashmap_free(c->commands);
        hashmap_free(c->displays);
        free(c->machines);
        free(c->emulator);
        json_object_put(c->doc);
        free(c);
        return NULL;
}

static bool caps_json_bool(struct json_object *o, const char *key) {
        struct json_object *v = qemu_json_get(o, key);
        return v && json_object_get_boolean(v);
}

static int64_t caps_json_int(struct json_object *o, const char *key) {
        struct json_object *v = qemu_json_get(o, key);
        return v ? json_object_get_int64(v) : 0;
}

/* A set of the strings of a json array (keys point into the document). */
static int string_set(struct json_object *a, Hashmap **ret) {
        Hashmap *h = hashmap_new();

        if (!h)
                return -ENOMEM;
        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(a, i));
                if (s && hashmap_put(h, s, (void *) s) == -ENOMEM) {
                        hashmap_free(h);
                        return -ENOMEM;
                }
        }
        *ret = h;
        return 0;
}

static int machine_cmp(const void *a, const void *b) {
        return strverscmp(((const QemuCapsMachine *) a)->name, ((const QemuCapsMachine *) b)->name);
}

static int read_machines(QemuCaps *c, struct json_object *list) {
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

        c->machines = new0(QemuCapsMachine, n);
        if (!c->machines)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *m = json_object_array_get_idx(list, i);
                const char *name = qemu_json_string(m, "name");

                if (!name || streq(name, "none"))
                        continue;
                c->machines[c->n_machines++] = (QemuCapsMachine) {
                        .name = name,
                        .alias = qemu_json_string(m, "alias"),
                        .max_cpus = (unsigned) caps_json_int(m, "cpu-max"),
                        .is_default = caps_json_bool(m, "is-default"),
                        .deprecated = caps_json_bool(m, "deprecated"),
                };
        }
        if (c->n_machines > 0)
                qsort(c->machines, c->n_machines, sizeof(QemuCapsMachine), machine_cmp);
        return 0;
}

int qemu_caps_from_doc(struct json_object *doc, QemuCaps **ret, char **ret_error) {
        _cleanup_(qemu_caps_unrefp) QemuCaps *c = NULL;
        struct json_object *version = qemu_json_get(qemu_json_get(doc, "version"), "qemu");
        const char *emulator = qemu_json_string(doc, "emulator");
        const char *target = qemu_json_string(qemu_json_get(doc, "target"), "arch");

        c = new0(QemuCaps, 1);
        if (!c) {
                json_object_put(doc);
                return -ENOMEM;
        }
        c->n_ref = 1;
        c->doc = doc;
        if (!emulator || !version || !target || !qemu_json_get(doc, "machines")) {
                *ret_error = strdup("The QEMU probe document is incomplete");
                return -EBADMSG;
        }
        c->arch = qemu_caps_arch_from_qemu(target) ?: target;
        c->emulator = strdup(emulator);
        if (!c->emulator)
                return -ENOMEM;
        c->key = (QemuCapsKey) {
                .dev = (dev_t) caps_json_int(doc, "dev"),
                .ino = (ino_t) caps_json_int(doc, "ino"),
                .size = (off_t) caps_json_int(doc, "size"),
                .mtime_nsec = caps_json_int(doc, "mtime"),
        };
        c->version = (unsigned) (caps_json_int(version, "major") * 1000000 + caps_json_int(version, "minor") * 1000 +
                                 caps_json_int(version, "micro"));
        c->kvm_present = caps_json_bool(qemu_json_get(doc, "kvm"), "present");
        c->kvm_enabled = caps_json_bool(qemu_json_get(doc, "kvm"), "enabled") && qemu_json_get(doc, "cpus-kvm");
        if (read_machines(c, qemu_json_get(doc, "machines")) < 0 ||
            string_set(qemu_json_get(doc, "types"), &c->types) < 0 ||
            string_set(qemu_json_get(doc, "commands"), &c->commands) < 0 ||
            string_set(qemu_json_get(doc, "displays"), &c->displays) < 0 || !(c->domain_caps = hashmap_new()))
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

bool qemu_caps_has_type(const QemuCaps *c, const char *type) {
        return hashmap_get(c->types, type) != NULL;
}

const QemuCapsMachine *qemu_caps_find_machine(const QemuCaps *c, const char *name) {
        for (size_t i = 0; i < c->n_machines; i++)
                if (streq(c->machines[i].name, name) || streq_ptr(c->machines[i].alias, name))
                        return &c->machines[i];
        return NULL;
}

const QemuCapsMachine *qemu_caps_default_machine(const QemuCaps *c) {
        for (size_t i = 0; i < c->n_machines; i++)
                if (c->machines[i].is_default)
                        return &c->machines[i];
        return c->n_machines > 0 ? &c->machines[0] : NULL;
}

struct json_object *qemu_caps_cpus(const QemuCaps *c, bool kvm) {
        return qemu_json_get(c->doc, kvm ? "cpus-kvm" : "cpus-tcg");
}

bool qemu_caps_cpu_listed(struct json_object *cpus, const char *name) {
        const char *v = strrchr(name, '-');
        size_t n;

        if (streq(name, "max") || streq(name, "host") || streq(name, "base"))
                return false;
        if (!v || v[1] != 'v' || !v[2] || strspn(v + 2, "0123456789") != strlen(v + 2))
                return true;
        n = (size_t) (v - name);
        for (size_t i = 0; json_object_is_type(cpus, json_type_array) && i < json_object_array_length(cpus); i++) {
                const char *other = qemu_json_string(json_object_array_get_idx(cpus, i), "name");
                if (other && strlen(other) == n && strncmp(other, name, n) == 0)
                        return false;
        }
        return true;
}
