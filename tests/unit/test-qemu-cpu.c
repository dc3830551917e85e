/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host-model CPU from QEMU's answers (qemu-cpu.c): the closest model of a made-up probe document,
 * vendors, feature names; a definition with <cpu mode='host-model'> expanded for a start, and the -cpu
 * argument of each mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/domain-conf.h"
#include "drivers/qemu/qemu-cpu.h"
#include "drivers/qemu/qemu-command.h"

/* A probe document with three models and a host: the host is model "B" plus f4, minus f2. */
static const char probe_doc[] =
        "{\"emulator\": \"/usr/bin/qemu-system-x86_64\", \"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}},"
        " \"target\": {\"arch\": \"x86_64\"}, \"machines\": [{\"name\": \"pc-i440fx-7.2\", \"alias\": \"pc\", \"cpu-max\": 255, \"is-default\": true}],"
        " \"cpus-tcg\": [{\"name\": \"max\"}, {\"name\": \"A\"}, {\"name\": \"B\"}, {\"name\": \"B-v1\"}, {\"name\": \"C\"}, {\"name\": \"G\"}],"
        " \"cpu-models\": {"
        "  \"A\": {\"vendor\": \"GenuineIntel\", \"model-id\": \"Intel Thing\", \"features\": [\"fpu\", \"f1\", \"f2\", \"f4\"]},"
        "  \"B\": {\"vendor\": \"AuthenticAMD\", \"model-id\": \"AMD Thing\", \"features\": [\"fpu\", \"f1\", \"f2\", \"f3\", \"hypervisor\"]},"
        "  \"C\": {\"vendor\": \"AuthenticAMD\", \"model-id\": \"AMD Other\", \"features\": [\"fpu\"]},"
        "  \"G\": {\"vendor\": \"GenuineIntel\", \"model-id\": \"QEMU Virtual CPU version 2.5+\", \"features\": [\"fpu\", \"f1\"]},"
        "  \"qemu64\": {\"vendor\": \"AuthenticAMD\", \"model-id\": \"QEMU Virtual CPU version 2.5+\", \"features\": [\"fpu\"]},"
        "  \"athlon\": {\"vendor\": \"AuthenticAMD\", \"model-id\": \"QEMU Virtual CPU version 2.5+\", \"features\": [\"fpu\"]},"
        "  \"pentium\": {\"vendor\": \"GenuineIntel\", \"model-id\": \"\", \"features\": [\"fpu\"]}},"
        " \"host-cpu-tcg\": {\"vendor\": \"AuthenticAMD\", \"features\": [\"fpu\", \"f1\", \"f3\", \"f4\", \"cmp-legacy\","
        "  \"hypervisor\", \"kvmclock\", \"arch-capabilities\", \"mds-no\"]},"
        " \"cpu-hv-properties\": [\"hv-spinlocks\", \"hv-relaxed\"]}";

static QemuCaps *caps(void) {
        QemuCaps *c = NULL;
        char *err = NULL;

        assert_int_equal(qemu_caps_from_doc(json_tokener_parse(probe_doc), &c, &err), 0);
        return c;
}

static bool has(char **v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

static void test_host_model(void **state) {
        _cleanup_(qemu_caps_unrefp) QemuCaps *c = caps();
        _cleanup_(qemu_host_model_freep) QemuHostModel *hm = NULL;

        /* A (Intel) is not for an AMD host; B needs f4 and cmp_legacy added and f2 taken away (3), C needs f1,
         * f3, f4, cmp_legacy (4), the generic G f3, f4, cmp_legacy (3): a tie with B, which G wins by taking
         * nothing away. */
        assert_int_equal(qemu_cpu_host_model(c, false, &hm), 0);
        assert_string_equal(hm->model, "G");
        assert_string_equal(hm->vendor, "AMD");
        /* The KVM leaf and IA32_ARCH_CAPABILITIES stay out; hypervisor is always named; names as the XML's. */
        assert_int_equal(hm->n_require, 4);
        assert_true(has(hm->require, hm->n_require, "f3"));
        assert_true(has(hm->require, hm->n_require, "f4"));
        assert_true(has(hm->require, hm->n_require, "cmp_legacy"));
        assert_true(has(hm->require, hm->n_require, "hypervisor"));
        assert_int_equal(hm->n_disable, 0);
        /* No KVM expansion in this document. */
        assert_int_equal(qemu_cpu_host_model(c, true, &hm), -ENODATA);

        assert_string_equal(qemu_cpu_model_vendor(c, "A"), "Intel");
        assert_string_equal(qemu_cpu_model_vendor(c, "B"), "AMD");
        /* QEMU's own models and those without a brand string have no vendor (as libvirt says); a real CPU
         * QEMU brands as its own has its CPUID vendor (athlon: AMD, as libvirt says) */
        assert_string_equal(qemu_cpu_model_vendor(c, "qemu64"), "unknown");
        assert_string_equal(qemu_cpu_model_vendor(c, "athlon"), "AMD");
        assert_string_equal(qemu_cpu_model_vendor(c, "pentium"), "unknown");
        assert_string_equal(qemu_cpu_model_vendor(c, "G"), "Intel");
        assert_null(qemu_cpu_model_vendor(c, "nope"));
        assert_true(qemu_cpu_has_property(c, "hv-spinlocks"));
        assert_false(qemu_cpu_has_property(c, "hv-vendor-id"));
        assert_string_equal(qemu_cpu_feature_to_xml("pclmulqdq"), "pclmuldq");
        assert_string_equal(qemu_cpu_feature_from_xml("lahf_lm"), "lahf-lm");
        assert_string_equal(qemu_cpu_feature_from_xml("avx2"), "avx2");
        assert_false(qemu_caps_cpu_listed(qemu_caps_cpus(c, false), "B-v1"));
        assert_true(qemu_caps_cpu_listed(qemu_caps_cpus(c, false), "B"));
}

static DomainDef *parse(const char *cpu, const char *features) {
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        char *xml;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>c</name><memory>65536</memory>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>/k</kernel><cmdline>x</cmdline></os>"
                             "<features><acpi/>%s</features>%s<devices/></domain>",
                             features, cpu) >= 0);
        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("%s", strempty(e.message));
        free(xml);
        return def;
}

static void test_expand(void **state) {
        _cleanup_(domain_caps_unrefp) DomainCaps *dc = domain_caps_new();
        _cleanup_(domain_def_freep) DomainDef *def = parse("<cpu mode='host-model'><feature policy='disable' name='f3'/>"
                                                           "<topology sockets='1' cores='1' threads='1'/></cpu>", ""),
                                              *live = NULL, *plain = parse("", "");
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;

        dc->domain = strdup("qemu");
        /* No host-model: refused, saying so. */
        assert_int_equal(qemu_cpu_expand_host_model(dc, def, &live, &e), -EOPNOTSUPP);
        assert_non_null(strstr(e.message, "host-model"));
        vb_error_free(&e);

        dc->cpu_present = dc->cpu_host_model = true;
        dc->host_model = strdup("B");
        assert_int_equal(domain_caps_add_host_model_feature(dc, "f3", true), 0);
        assert_int_equal(domain_caps_add_host_model_feature(dc, "cmp_legacy", true), 0);
        assert_int_equal(domain_caps_add_host_model_feature(dc, "f2", false), 0);
        assert_int_equal(qemu_cpu_expand_host_model(dc, plain, &live, &e), 0);
        assert_null(live); /* nothing to expand */
        assert_int_equal(qemu_cpu_expand_host_model(dc, def, &live, &e), 0);
        assert_non_null(live);
        assert_int_equal(domain_def_format(live, 0, &xml), 0);
        assert_non_null(strstr(xml, "<kernel>/k</kernel>"));
        assert_non_null(strstr(xml, "<cpu mode='host-model'>"));
        assert_non_null(strstr(xml, "<model fallback='forbid'>B</model>"));
        assert_non_null(strstr(xml, "<feature policy='require' name='cmp_legacy'/>"));
        assert_non_null(strstr(xml, "<feature policy='disable' name='f2'/>"));
        /* The user's own feature wins over the host's. */
        if (!strstr(xml, "<feature name='f3' policy='disable'/>"))
                fail_msg("%s", xml);
        assert_null(strstr(xml, "<os/>"));
        assert_non_null(strstr(xml, "<cpu mode='host-model'>\n    <model fallback='forbid'>B</model>"));
        assert_null(strstr(xml, "<feature policy='require' name='f3'/>"));
        assert_non_null(strstr(xml, "<topology"));
        free(xml);
        xml = NULL;
        /* The definition given is unchanged. */
        assert_int_equal(domain_def_format(def, 0, &xml), 0);
        assert_null(strstr(xml, "fallback"));
}

static char *cpu_arg(const char *cpu, const char *features, bool kvm, VbError *e) {
        _cleanup_(domain_def_freep) DomainDef *def = parse(cpu, features);
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        char *arg = NULL;

        assert_int_equal(domain_def_to_node(def, DOMAIN_FORMAT_SECURE, &root), 0);
        if (qemu_cpu_argument(root, kvm, &arg, e) < 0)
                return NULL;
        return arg;
}

static void test_argument(void **state) {
        VbError e = VB_ERROR_NULL;
        char *a;

        assert_null(cpu_arg("", "", false, &e));
        assert_null(e.message);
        a = cpu_arg("<cpu mode='host-model'><model fallback='forbid'>EPYC</model><feature policy='require' name='lahf_lm'/>"
                    "<feature policy='disable' name='pni'/></cpu>", "", false, &e);
        assert_string_equal(a, "EPYC,lahf-lm=on,pni=off");
        free(a);
        a = cpu_arg("<cpu mode='maximum' migratable='off'/>", "", false, &e);
        assert_string_equal(a, "max,arch-capabilities=off,migratable=off");
        free(a);
        a = cpu_arg("<cpu mode='host-passthrough'/>", "", true, &e);
        assert_string_equal(a, "host,arch-capabilities=off");
        free(a);
        assert_null(cpu_arg("<cpu mode='host-passthrough'/>", "", false, &e));
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        assert_non_null(strstr(e.message, "'kvm'"));
        vb_error_free(&e);
        a = cpu_arg("", "<hyperv mode='custom'><spinlocks state='on' retries='4096'/><vendor_id state='on' value='KVMKVM'/></hyperv>",
                    false, &e);
        assert_string_equal(a, "qemu64,hv-spinlocks=4096,hv-vendor-id=KVMKVM");
        free(a);
        a = cpu_arg("<cpu mode='custom'><model>Haswell</model><feature policy='forbid' name='avx2'/></cpu>", "", true, &e);
        assert_string_equal(a, "Haswell,avx2=off");
        free(a);
}

#define HV_ALL "<hyperv mode='custom'><relaxed state='on'/><vapic state='on'/><spinlocks state='on' retries='8191'/>" \
        "<vpindex state='on'/><runtime state='on'/><synic state='on'/><stimer state='on'><direct state='on'/></stimer>" \
        "<reset state='off'/><vendor_id state='on' value='KVM Hv'/><frequencies state='on'/>" \
        "<reenlightenment state='on'/><tlbflush state='on'><direct state='on'/><extended state='on'/></tlbflush>" \
        "<ipi state='on'/><evmcs state='on'/><avic state='on'/><emsr_bitmap state='on'/><xmm_input state='on'/></hyperv>"
#define HV_CLOCK "<clock offset='utc'><timer name='hypervclock' present='yes'/></clock>"

static void test_hyperv(void **state) {
        VbError e = VB_ERROR_NULL;
        char *a;

        /* Every enlightenment as QEMU's property, each sub-element under its parent's name; hv-time from the clock. */
        a = cpu_arg(HV_CLOCK, HV_ALL, true, &e);
        assert_string_equal(a, "qemu64,hv-relaxed=on,hv-vapic=on,hv-vpindex=on,hv-runtime=on,hv-synic=on,hv-stimer=on,"
                               "hv-stimer-direct=on,hv-reset=off,hv-frequencies=on,hv-reenlightenment=on,hv-tlbflush=on,"
                               "hv-tlbflush-direct=on,hv-tlbflush-ext=on,hv-ipi=on,hv-evmcs=on,hv-avic=on,"
                               "hv-emsr-bitmap=on,hv-xmm-input=on,hv-time=on,hv-spinlocks=8191,hv-vendor-id=KVM Hv");
        free(a);
        a = cpu_arg("<cpu mode='host-passthrough'/>", "<hyperv mode='passthrough'/>", true, &e);
        assert_string_equal(a, "host,arch-capabilities=off,hv-passthrough=on");
        free(a);
        /* What the specification makes one enlightenment need, refused with a sentence naming both. */
        assert_null(cpu_arg("", "<hyperv><synic state='on'/></hyperv>", true, &e));
        assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
        assert_string_equal(e.message, "<hyperv><synic state='on'> needs <vpindex state='on'> too");
        vb_error_free(&e);
        assert_null(cpu_arg("", "<hyperv><vpindex state='on'/><synic state='on'/><stimer state='on'/></hyperv>", true, &e));
        assert_string_equal(e.message, "<hyperv><stimer state='on'> needs <clock><timer name='hypervclock' present='yes'/>");
        vb_error_free(&e);
        assert_null(cpu_arg("", "<hyperv><vpindex state='on'/><tlbflush state='on'><direct state='on'/></tlbflush></hyperv>",
                            true, &e));
        assert_string_equal(e.message, "<hyperv><tlbflush><direct state='on'> needs <evmcs state='on'> too");
        vb_error_free(&e);
        /* Under TCG: spinlocks and vendor_id only; off is always fine. */
        assert_null(cpu_arg("", "<hyperv><relaxed state='on'/></hyperv>", false, &e));
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        assert_non_null(strstr(e.message, "<hyperv><relaxed state='on'> needs domain type 'kvm'"));
        vb_error_free(&e);
        assert_null(cpu_arg("", "<hyperv mode='passthrough'/>", false, &e));
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        vb_error_free(&e);
        a = cpu_arg("", "<hyperv><relaxed state='off'/><spinlocks state='on'/></hyperv>", false, &e);
        assert_string_equal(a, "qemu64,hv-relaxed=off,hv-spinlocks=0x1fff");
        free(a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_host_model),
                cmocka_unit_test(test_expand),
                cmocka_unit_test(test_argument),
                cmocka_unit_test(test_hyperv),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
