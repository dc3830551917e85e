/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CPU models from QEMU's static expansions (see qemu-cpu.h). */
#include <stdlib.h>
#include <string.h>

#include "drivers/qemu/qemu-cpu.h"
#include "drivers/qemu/qemu-monitor.h"

/* QEMU's canonical feature names that the domain XML spells differently. */
static const struct {
        const char *qemu, *xml;
} feature_names[] = {
        { "cmp-legacy", "cmp_legacy" },     { "fxsr-opt", "fxsr_opt" },       { "lahf-lm", "lahf_lm" },
        { "tsc-adjust", "tsc_adjust" },     { "nodeid-msr", "nodeid_msr" },   { "perfctr-core", "perfctr_core" },
        { "perfctr-nb", "perfctr_nb" },     { "ds-cpl", "ds_cpl" },           { "pclmulqdq", "pclmuldq" },
};

/* Bits of the IA32_ARCH_CAPABILITIES MSR (QEMU's names), which come and go with arch-capabilities. */
static const char * const arch_capabilities_bits[] = {
        "arch-capabilities", "rdctl-no", "ibrs-all", "rsba", "skip-l1dfl-vmentry", "ssb-no",
        "mds-no", "pschange-mc-no", "tsx-ctrl", "taa-no", NULL,
};

static const struct {
        const char *cpuid, *xml;
} vendor_names[] = {
        { "GenuineIntel", "Intel" }, { "AuthenticAMD", "AMD" }, { "HygonGenuine", "Hygon" },
        { "CentaurHauls", "VIA" },   { "  Shanghai  ", "Zhaoxin" },
};

const char *qemu_cpu_feature_to_xml(const char *qemu_name) {
        for (size_t i = 0; i < ELEMENTSOF(feature_names); i++)
                if (streq(feature_names[i].qemu, qemu_name))
                        return feature_names[i].xml;
        return qemu_name;
}

const char *qemu_cpu_feature_from_xml(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(feature_names); i++)
                if (streq(feature_names[i].xml, name))
                        return feature_names[i].qemu;
        return name;
}

static const char *vendor_xml(const char *cpuid) {
        for (size_t i = 0; i < ELEMENTSOF(vendor_names); i++)
                if (streq_ptr(vendor_names[i].cpuid, cpuid))
                        return vendor_names[i].xml;
        return NULL;
}

QemuHostModel *qemu_host_model_free(QemuHostModel *m) {
        if (!m)
                return NULL;
        free(m->model);
        free(m->vendor);
        for (size_t i = 0; i < m->n_require; i++)
                free(m->require[i]);
        free(m->require);
        for (size_t i = 0; i < m->n_disable; i++)
                free(m->disable[i]);
        free(m->disable);
        free(m);
        return NULL;
}

/* A model of QEMU's own making rather than a real CPU: no vendor to name. */
static bool model_generic(struct json_object *m) {
        const char *id = qemu_json_string(m, "model-id");
        return isempty(id) || strncmp(id, "QEMU ", 5) == 0 || strstr(id, "KVM processor");
}

/* QEMU's own models, no real CPU: qemu32/qemu64, kvm32/kvm64 (base, max and host are not listed). */
static bool model_of_qemu(const char *name) {
        return strncmp(name, "qemu", 4) == 0 || strncmp(name, "kvm", 3) == 0;
}

/* The vendor a model's guests see: its CPUID vendor, for the models of real CPUs, also one QEMU gives its own
 * brand string (athlon, AMD's Athlon: AuthenticAMD, family 6), as libvirt names them. "unknown" for QEMU's
 * own models, whose CPUID vendor is an arbitrary pick (qemu64 says AuthenticAMD, qemu32 GenuineIntel), and,
 * as libvirt says, for those QEMU gives no brand string at all (486, pentium...). */
const char *qemu_cpu_model_vendor(const QemuCaps *c, const char *model) {
        struct json_object *m = qemu_json_get(qemu_json_get(c->doc, "cpu-models"), model);

        if (!m)
                return NULL;
        if (model_of_qemu(model) || isempty(qemu_json_string(m, "model-id")))
                return "unknown";
        return vendor_xml(qemu_json_string(m, "vendor")) ?: "unknown";
}

bool qemu_cpu_has_property(const QemuCaps *c, const char *prop) {
        struct json_object *a = qemu_json_get(c->doc, "cpu-hv-properties");

        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(a, i)), prop))
                        return true;
        return false;
}

/* Features that take part in the comparison: not the hypervisor's own (the KVM leaf, the "hypervisor"
 * bit QEMU sets on every model), not those of IA32_ARCH_CAPABILITIES. */
static bool feature_counts(const char *name) {
        if (strncmp(name, "kvm", 3) == 0 || streq(name, "hypervisor"))
                return false;
        for (size_t i = 0; arch_capabilities_bits[i]; i++)
                if (streq(arch_capabilities_bits[i], name))
                        return false;
        return true;
}

static bool has_feature(struct json_object *features, const char *name) {
        for (size_t i = 0; i < json_object_array_length(features); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(features, i)), name))
                        return true;
        return false;
}

/* The features of a that b lacks (counted ones only); their number, and (ret non-NULL) their names in
 * the domain XML's spelling. */
static int difference(struct json_object *a, struct json_object *b, char ***ret, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
                const char *f = json_object_get_string(json_object_array_get_idx(a, i));

                if (!f || !feature_counts(f) || has_feature(b, f))
                        continue;
                if (ret) {
                        char **v = realloc(*ret, (n + 1) * sizeof(char *));
                        if (!v)
                                return -ENOMEM;
                        *ret = v;
                        v[n] = strdup(qemu_cpu_feature_to_xml(f));
                        if (!v[n])
                                return -ENOMEM;
                }
                n++;
                if (ret_n)
                        *ret_n = n;
        }
        return (int) n;
}

int qemu_cpu_host_model(const QemuCaps *c, bool kvm, QemuHostModel **ret) {
        _cleanup_(qemu_host_model_freep) QemuHostModel *hm = NULL;
        struct json_object *host = qemu_json_get(c->doc, kvm ? "host-cpu-kvm" : "host-cpu-tcg"),
                           *models = qemu_json_get(c->doc, "cpu-models"), *cpus = qemu_caps_cpus(c, false),
                           *hf = qemu_json_get(host, "features"), *best = NULL;
        const char *vendor = qemu_json_string(host, "vendor"), *best_name = NULL;
        int best_add = 0, best_drop = 0;
        int r;

        if (!host || !models || !json_object_is_type(hf, json_type_array))
                return -ENODATA;
        for (size_t i = 0; json_object_is_type(cpus, json_type_array) && i < json_object_array_length(cpus); i++) {
                const char *name = qemu_json_string(json_object_array_get_idx(cpus, i), "name");
                struct json_object *m = name ? qemu_json_get(models, name) : NULL,
                                   *mf = qemu_json_get(m, "features");
                int add, drop;

                if (!m || (!model_generic(m) && !streq_ptr(qemu_json_string(m, "vendor"), vendor)))
                        continue;
                add = difference(hf, mf, NULL, NULL);
                drop = difference(mf, hf, NULL, NULL);
                if (best && (add + drop > best_add + best_drop ||
                             (add + drop == best_add + best_drop && drop >= best_drop)))
                        continue;
                best = m;
                best_name = name;
                best_add = add;
                best_drop = drop;
        }
        if (!best)
                return -ENODATA;

        hm = new0(QemuHostModel, 1);
        if (!hm || !(hm->model = strdup(best_name)))
                return -ENOMEM;
        if (vendor_xml(vendor) && !(hm->vendor = strdup(vendor_xml(vendor))))
                return -ENOMEM;
        r = difference(hf, qemu_json_get(best, "features"), &hm->require, &hm->n_require);
        if (r >= 0)
                r = difference(qemu_json_get(best, "features"), hf, &hm->disable, &hm->n_disable);
        if (r < 0)
                return r;
        /* Set by QEMU on every model, left out of the comparison above; a guest of this host sees it. */
        if (has_feature(hf, "hypervisor")) {
                char **v = realloc(hm->require, (hm->n_require + 1) * sizeof(char *));
                if (!v)
                        return -ENOMEM;
                hm->require = v;
                v[hm->n_require] = strdup("hypervisor");
                if (!v[hm->n_require])
                        return -ENOMEM;
                hm->n_require++;
        }
        *ret = TAKE_PTR(hm);
        return 0;
}

/* Starting a domain ------------------------------------------------------------------------------------ */

static bool policy_on(const char *policy) {
        /* require, force and optional give the feature; disable and forbid take it away. */
        return !streq_ptr(policy, "disable") && !streq_ptr(policy, "forbid");
}

static bool has_user_feature(const ConfNode *cpu, const char *name) {
        for (size_t i = 0; i < cpu->n_children; i++)
                if (conf_node_is(cpu->children[i], "feature") && streq_ptr(conf_node_attr(cpu->children[i], "name"), name))
                        return true;
        return false;
}

static int add_feature(ConfNode *cpu, const char *policy, const char *name) {
        ConfNode *f;

        if (has_user_feature(cpu, name))
                return 0;
        f = conf_node_add(cpu, "feature");
        if (!f || conf_node_set_attr(f, "policy", policy) < 0 || conf_node_set_attr(f, "name", name) < 0)
                return -ENOMEM;
        return 0;
}

int qemu_cpu_expand_host_model(const DomainCaps *caps, const DomainDef *def, DomainDef **ret, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        ConfNode *cpu = def->extra ? conf_node_child(def->extra, "cpu") : NULL, *model;
        int r;

        *ret = NULL;
        if (!cpu || !streq_ptr(conf_node_attr(cpu, "mode"), "host-model"))
                return 0;
        if (!caps || !caps->cpu_host_model || !caps->host_model)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "<cpu mode='host-model'> is not available for virt type '%s' here: QEMU "
                                    "did not describe the host's CPU",
                                    caps ? strempty(caps->domain) : domain_virt_type_to_string(def->virt_type));
        r = domain_def_copy(def, &copy);
        if (r < 0)
                return r;
        cpu = conf_node_child(copy->extra, "cpu");
        /* A model the user gave is replaced: host-model means the host's. */
        for (size_t i = cpu->n_children; i > 0; i--)
                if (conf_node_is(cpu->children[i - 1], "model"))
                        conf_node_free(conf_node_detach_child(cpu, i - 1));
        model = conf_node_add(cpu, "model");
        if (!model || conf_node_set_attr(model, "fallback", "forbid") < 0 || conf_node_set_text(model, caps->host_model) < 0)
                return -ENOMEM;
        /* <model> first, as libvirt writes it; the user's elements keep their order after it. */
        memmove(cpu->children + 1, cpu->children, (cpu->n_children - 1) * sizeof(ConfNode *));
        cpu->children[0] = model;
        for (size_t i = 0; i < caps->n_host_model_require; i++)
                if ((r = add_feature(cpu, "require", caps->host_model_require[i])) < 0)
                        return r;
        for (size_t i = 0; i < caps->n_host_model_disable; i++)
                if ((r = add_feature(cpu, "disable", caps->host_model_disable[i])) < 0)
                        return r;
        *ret = TAKE_PTR(copy);
        return 0;
}

/* The Hyper-V enlightenments of <features><hyperv>, as QEMU's CPU properties. A child element (stimer's
 * and tlbflush's <direct>, tlbflush's <extended>) names its parent. Each enlightenment needs the ones
 * listed in .needs (the Hyper-V specification's dependencies, as QEMU documents them): refused at start
 * when one is off, since QEMU 7.2 does not check them all itself. */
static const QemuHypervFeature hyperv_features[] = {
        { "relaxed", NULL, "hv-relaxed", {} },
        { "vapic", NULL, "hv-vapic", {} },
        { "vpindex", NULL, "hv-vpindex", {} },
        { "runtime", NULL, "hv-runtime", {} },
        { "synic", NULL, "hv-synic", { "vpindex" } },
        { "stimer", NULL, "hv-stimer", { "synic", "#hypervclock" } },
        { "direct", "stimer", "hv-stimer-direct", { "stimer" } },
        { "reset", NULL, "hv-reset", {} },
        { "frequencies", NULL, "hv-frequencies", {} },
        { "reenlightenment", NULL, "hv-reenlightenment", {} },
        { "tlbflush", NULL, "hv-tlbflush", { "vpindex" } },
        { "direct", "tlbflush", "hv-tlbflush-direct", { "tlbflush", "evmcs" } },
        { "extended", "tlbflush", "hv-tlbflush-ext", { "tlbflush" } },
        { "ipi", NULL, "hv-ipi", { "vpindex" } },
        { "evmcs", NULL, "hv-evmcs", { "vapic" } },
        { "avic", NULL, "hv-avic", {} },
        { "emsr_bitmap", NULL, "hv-emsr-bitmap", { "evmcs" } },
        { "xmm_input", NULL, "hv-xmm-input", {} },
        {}
};

const QemuHypervFeature *qemu_cpu_hyperv_features(void) {
        return hyperv_features;
}

static const ConfNode *hyperv_node(const ConfNode *hv, const char *xml, const char *parent) {
        return parent ? conf_node_child(conf_node_child(hv, parent), xml) : conf_node_child(hv, xml);
}

static bool state_on(const ConfNode *n) {
        return n && streq_ptr(conf_node_attr(n, "state"), "on");
}

/* <clock><timer name='hypervclock' present='yes'/>: Hyper-V's reference time (hv-time). */
static bool hypervclock_on(const ConfNode *root) {
        const ConfNode *clock = conf_node_child(root, "clock");

        for (size_t i = 0; clock && i < clock->n_children; i++) {
                const ConfNode *t = clock->children[i];
                if (conf_node_is(t, "timer") && streq_ptr(conf_node_attr(t, "name"), "hypervclock"))
                        return !streq_ptr(conf_node_attr(t, "present"), "no");
        }
        return false;
}

static int hyperv_needs(const ConfNode *root, const ConfNode *hv, const QemuHypervFeature *f, VbError *reterr) {
        for (size_t j = 0; j < ELEMENTSOF(f->needs) && f->needs[j]; j++) {
                const char *need = f->needs[j];
                bool on = need[0] == '#' ? hypervclock_on(root) : state_on(conf_node_child(hv, need));

                if (on)
                        continue;
                if (need[0] == '#')
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "<hyperv><%s state='on'> needs <clock><timer name='%s' present='yes'/>",
                                            f->xml, need + 1);
                if (f->parent)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "<hyperv><%s><%s state='on'> needs <%s state='on'> too", f->parent,
                                            f->xml, need);
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "<hyperv><%s state='on'> needs <%s state='on'> too", f->xml, need);
        }
        return 0;
}

/* ",hv-relaxed=on,…,hv-spinlocks=N,hv-vendor-id=ID" from <features><hyperv>. QEMU emulates the
 * enlightenments only with KVM: under TCG only the two that are values in CPUID (spinlocks, vendor_id)
 * are passed and the others refused. */
static int hyperv_options(const ConfNode *root, bool kvm, StrBuf *b, VbError *reterr) {
        const ConfNode *hv = conf_node_child(conf_node_child(root, "features"), "hyperv"), *n;
        const char *mode = hv ? conf_node_attr(hv, "mode") : NULL;
        int r;

        if (!hv)
                return 0;
        if (streq_ptr(mode, "passthrough")) {
                if (!kvm)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "<hyperv mode='passthrough'> needs domain type 'kvm' (it passes on what KVM offers)");
                strbuf_append(b, ",hv-passthrough=on");
        }
        for (const QemuHypervFeature *f = hyperv_features; f->xml; f++) {
                n = hyperv_node(hv, f->xml, f->parent);
                if (!n || !conf_node_attr(n, "state"))
                        continue;
                if (!state_on(n)) {
                        strbuf_appendf(b, ",%s=off", f->prop);
                        continue;
                }
                if (!kvm)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "<hyperv><%s%s%s state='on'> needs domain type 'kvm': QEMU emulates Hyper-V "
                                            "enlightenments only with KVM (under 'qemu' only spinlocks and vendor_id)",
                                            f->parent ?: "", f->parent ? "><" : "", f->xml);
                r = hyperv_needs(root, hv, f, reterr);
                if (r < 0)
                        return r;
                strbuf_appendf(b, ",%s=on", f->prop);
        }
        /* The Hyper-V reference clock is a timer of <clock>, not an element of <hyperv>. */
        if (kvm && hypervclock_on(root))
                strbuf_append(b, ",hv-time=on");
        n = conf_node_child(hv, "spinlocks");
        if (state_on(n)) {
                const char *retries = conf_node_attr(n, "retries");
                strbuf_appendf(b, ",hv-spinlocks=%s", retries ?: "0x1fff");
        }
        n = conf_node_child(hv, "vendor_id");
        if (state_on(n)) {
                const char *v = conf_node_attr(n, "value");
                if (!v || strchr(v, ','))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "<hyperv><vendor_id state='on'> needs a value without commas");
                strbuf_appendf(b, ",hv-vendor-id=%s", v);
        }
        return 0;
}

int qemu_cpu_argument(const ConfNode *root, bool kvm, char **ret, VbError *reterr) {
        const ConfNode *cpu = conf_node_child(root, "cpu"), *model = cpu ? conf_node_child(cpu, "model") : NULL;
        const char *mode = cpu ? conf_node_attr(cpu, "mode") : NULL, *migratable = cpu ? conf_node_attr(cpu, "migratable") : NULL;
        StrBuf b = STRBUF_NULL;
        int r;

        *ret = NULL;
        if (streq_ptr(mode, "host-passthrough")) {
                if (!kvm)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "<cpu mode='host-passthrough'> needs domain type 'kvm'; under 'qemu' (TCG) "
                                            "use mode='maximum' or 'host-model'");
                /* On hosts whose KVM cannot virtualise IA32_ARCH_CAPABILITIES (e.g. KVM_PVM), QEMU aborts unless
                 * it is hidden. */
                strbuf_append(&b, "host,arch-capabilities=off");
        } else if (streq_ptr(mode, "maximum"))
                strbuf_append(&b, "max,arch-capabilities=off");
        else if (model && !isempty(model->text)) {
                if (strchr(model->text, ','))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "CPU model '%s' is not a model name",
                                            model->text);
                strbuf_append(&b, model->text);
                for (size_t i = 0; i < cpu->n_children; i++) {
                        const ConfNode *f = cpu->children[i];
                        const char *name = conf_node_attr(f, "name");

                        if (!conf_node_is(f, "feature") || !name)
                                continue;
                        if (strchr(name, ',') || strchr(name, '='))
                                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                                    "CPU feature '%s' is not a feature name", name);
                        strbuf_appendf(&b, ",%s=%s", qemu_cpu_feature_from_xml(name),
                                       policy_on(conf_node_attr(f, "policy")) ? "on" : "off");
                }
        } else if (streq_ptr(mode, "host-model"))
                /* Not expanded (no description of the host's CPU came from QEMU): the same CPU, unnamed. */
                strbuf_append(&b, kvm ? "host,arch-capabilities=off" : "max,arch-capabilities=off");
        if (migratable && (streq_ptr(mode, "host-passthrough") || streq_ptr(mode, "maximum")))
                strbuf_appendf(&b, ",migratable=%s", migratable);
        if (!b.buf && conf_node_child(conf_node_child(root, "features"), "hyperv"))
                strbuf_append(&b, "qemu64"); /* QEMU's default CPU, for the properties below */
        r = hyperv_options(root, kvm, &b, reterr);
        if (r < 0) {
                free(strbuf_steal(&b));
                return r;
        }
        if (b.buf && !(*ret = strbuf_steal(&b)))
                return -ENOMEM;
        return 0;
}
