/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CPU modes with the real QEMU: <cpu mode='host-model'> (virt-manager's default) starts with the model and
 * features GetDomainCapabilities names for this host, shown in the live definition and passed to QEMU, the
 * saved definition unchanged; the tiny guest boots on it under TCG; mode='maximum' is QEMU's "max";
 * host-passthrough under TCG is refused with a sentence saying why. KVM where /dev/kvm opens, else TCG. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static bool kvm_usable(void) {
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return false;
        close(fd);
        return true;
}

static char *diskless_xml(const char *type, const char *name, const char *cpu) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>%s"
                             "<devices><memballoon model='none'/></devices></domain>",
                             type, name, cpu) >= 0);
        return x;
}

static char *domain_caps(sd_bus *bus, const char *virttype) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, M, "GetDomainCapabilities", "sssst", "", "x86_64", "pc", virttype, UINT64_C(0));
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

/* The text between after and the next '<' in s (to free); NULL if after is not in s. */
static char *text_after(const char *s, const char *after) {
        const char *p = strstr(s, after), *e;

        if (!p)
                return NULL;
        p += strlen(after);
        e = strchr(p, '<');
        return e ? strndup(p, (size_t) (e - p)) : NULL;
}

/* QEMU's command line with NULs made spaces (to free). */
static char *qemu_cmdline(Harness *h, const char *path) {
        sd_bus *bus = harness_bus_root(h);
        const char *uuid = harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID");
        pid_t pid = harness_qemu_pid(h, uuid);
        char proc[64], *s;
        FILE *f;
        size_t n;

        assert_true(pid > 0);
        snprintf(proc, sizeof proc, "/proc/%d/cmdline", (int) pid);
        f = fopen(proc, "re");
        assert_non_null(f);
        s = calloc(65536, 1);
        assert_non_null(s);
        n = fread(s, 1, 65535, f);
        fclose(f);
        for (size_t i = 0; i + 1 < n; i++)
                if (s[i] == '\0')
                        s[i] = ' ';
        return s;
}

/* Every <feature policy='P' name='N'/> of the host-model section of caps is in live and on QEMU's -cpu. */
static void assert_features(const char *caps, const char *live, const char *cmdline) {
        const char *hm = strstr(caps, "<mode name='host-model'"), *end = strstr(hm, "</mode>"), *p = hm;
        unsigned n = 0;

        while ((p = strstr(p, "<feature policy='")) && p < end) {
                char policy[16] = "", name[64] = "", want[128], on_cmdline[128];

                assert_int_equal(sscanf(p, "<feature policy='%15[^']' name='%63[^']'", policy, name), 2);
                snprintf(want, sizeof want, "<feature policy='%s' name='%s'/>", policy, name);
                if (!strstr(live, want))
                        fail_msg("the live definition lacks %s:\n%s", want, live);
                /* QEMU's own spelling differs for a few (cmp_legacy is cmp-legacy): either is accepted by it. */
                snprintf(on_cmdline, sizeof on_cmdline, "=%s", streq(policy, "require") ? "on" : "off");
                if (!strstr(cmdline, on_cmdline))
                        fail_msg("QEMU's -cpu has no %s feature: %s", policy, cmdline);
                p++;
                n++;
        }
        print_message("host-model: %u features checked\n", n);
}

static void test_host_model(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *type = kvm_usable() ? "kvm" : "qemu";
        _cleanup_free_ char *caps = domain_caps(bus, type), *model = text_after(caps, "<model fallback='forbid'>"),
                            *xml = diskless_xml(type, "hostmodel", "<cpu mode='host-model'/>"),
                            *path = harness_define_domain(bus, xml), *live = NULL, *saved = NULL, *cmdline = NULL,
                            *want = NULL, *dash = NULL;

        assert_non_null(strstr(caps, "<mode name='host-model' supported='yes'>"));
        assert_non_null(model);
        harness_domain_call(bus, path, "Start");
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, "<cpu mode='host-model'>"));
        assert_true(asprintf(&want, "<model fallback='forbid'>%s</model>", model) >= 0);
        if (!strstr(live, want))
                fail_msg("the live definition does not name the model '%s':\n%s", model, live);
        /* QEMU runs the named model with those features. */
        cmdline = qemu_cmdline(h, path);
        assert_true(asprintf(&dash, "-cpu %s,", model) >= 0);
        if (!strstr(cmdline, dash))
                fail_msg("QEMU was not given '%s': %s", dash, cmdline);
        assert_features(caps, live, cmdline);
        /* The saved definition keeps host-model alone. */
        saved = harness_domain_xml(bus, path, 1);
        assert_non_null(strstr(saved, "<cpu mode='host-model'/>"));
        assert_null(strstr(saved, "fallback="));
        harness_domain_call(bus, path, "Destroy");
        /* Again from the saved definition: the same expansion. */
        harness_domain_call(bus, path, "Start");
        free(live);
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, want));
        harness_domain_call(bus, path, "Destroy");
}

/* A feature as Linux names it in /proc/cpuinfo; NULL for those it does not list there (pcommit, pks,
 * svme-addr-chk, arch-capabilities and its bits) or sets on its own (3dnowprefetch, with 3dnow or lm). */
static const char *linux_flag(const char *f, char *buf, size_t size) {
        static const char * const unlisted[] = { "pcommit", "pks", "svme-addr-chk", "arch-capabilities", "rdctl-no",
                                                 "mds-no", "skip-l1dfl-vmentry", "pschange-mc-no", NULL };
        static const struct {
                const char *xml, *linux_name;
        } renamed[] = { { "tsc-deadline", "tsc_deadline_timer" }, { "invtsc", "nonstop_tsc" },
                        { "cr8legacy", "cr8_legacy" }, { "pclmuldq", "pclmulqdq" } };

        for (size_t i = 0; unlisted[i]; i++)
                if (streq(unlisted[i], f))
                        return NULL;
        if (streq(f, "3dnowprefetch"))
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(renamed); i++)
                if (streq(renamed[i].xml, f))
                        return renamed[i].linux_name;
        snprintf(buf, size, "%s", f);
        for (char *p = buf; *p; p++)
                if (*p == '-' || *p == '.')
                        *p = '_';
        return buf;
}

/* The tiny guest boots on the host-model CPU under TCG (the named model with features added and taken
 * away) and sees the required features in its /proc/cpuinfo. */
static void test_host_model_guest(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *xml = NULL, *path = NULL, *live = NULL, *caps = domain_caps(bus, "qemu");
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "", *flags;
        const char *hm = strstr(caps, "<mode name='host-model'"), *end = strstr(hm, "</mode>"), *p = hm;
        unsigned n = 0;
        int con;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>hm-guest</name><memory unit='MiB'>192</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet virtbus.shell</cmdline></os>"
                             "<features><acpi/></features><cpu mode='host-model'/><devices>"
                             "<serial type='pty'><target port='0'/></serial>"
                             "<console type='pty'><target type='serial' port='0'/></console>"
                             "<memballoon model='none'/></devices></domain>",
                             g, g) >= 0);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, "<model fallback='forbid'>"));
        con = console_open(bus, path, "", 0, &e);
        assert_true(con >= 0);
        if (!console_read_until(con, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC))
                fail_msg("the guest did not boot on the host-model CPU: %s", buf);
        /* (the shell echoes the command: the marker is computed, so that only the answer holds it) */
        console_write(con, "echo FLAGS:$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) :VIRTBUS-$((40+2))\n");
        if (!console_read_until(con, buf, sizeof buf, ":VIRTBUS-42", 30 * HARNESS_USEC_PER_SEC))
                fail_msg("no answer from the guest's shell: %s", buf);
        flags = strstr(buf, "FLAGS: ");
        if (flags && strstr(flags + 1, "FLAGS: "))
                flags = strstr(flags + 1, "FLAGS: ");
        assert_non_null(flags);
        while ((p = strstr(p, "<feature policy='")) && p < end) {
                char policy[16] = "", name[64] = "", lbuf[64], word[80];
                const char *l;

                assert_int_equal(sscanf(p, "<feature policy='%15[^']' name='%63[^']'", policy, name), 2);
                p++;
                l = linux_flag(name, lbuf, sizeof lbuf);
                if (!l)
                        continue;
                snprintf(word, sizeof word, " %s ", l);
                if (streq(policy, "require") && !strstr(flags, word))
                        fail_msg("the guest does not see required feature '%s' ('%s'): %s", name, l, flags);
                if (streq(policy, "disable") && strstr(flags, word))
                        fail_msg("the guest sees disabled feature '%s' ('%s'): %s", name, l, flags);
                n++;
        }
        print_message("host-model under TCG: %u features as the guest sees them\n", n);
        assert_true(n > 0);
        close(con);
        harness_domain_call(bus, path, "Destroy");
}

static void test_maximum_and_passthrough(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "maximum", "<cpu mode='maximum'/>"),
                            *path = harness_define_domain(bus, xml), *cmdline = NULL, *caps = domain_caps(bus, "qemu"),
                            *pt = diskless_xml("qemu", "passthrough", "<cpu mode='host-passthrough'/>");

        assert_non_null(strstr(caps, "<enum name='maximumMigratable'>"));
        assert_non_null(strstr(caps, "<mode name='host-passthrough' supported='no'/>"));
        harness_domain_call(bus, path, "Start");
        cmdline = qemu_cmdline(h, path);
        if (!strstr(cmdline, "-cpu max,"))
                fail_msg("mode='maximum' is not QEMU's max: %s", cmdline);
        harness_domain_call(bus, path, "Destroy");

        /* host-passthrough needs KVM: refused at once, saying so. */
        harness_call_fails(bus, ERR("NotSupported"), "needs KVM", M, "DefineDomain", "st", pt, UINT64_C(0));
}

static char *hyperv_xml(const char *type, const char *name, const char *hyperv) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/>%s</features>"
                             "<devices><memballoon model='none'/></devices></domain>",
                             type, name, hyperv) >= 0);
        return x;
}

/* Hyper-V enlightenments reach QEMU's -cpu as hv-* properties and QEMU runs with them; under TCG those QEMU
 * emulates only with KVM are refused with a sentence, and so is one whose dependency is off. This host's
 * KVM (KVM_PVM) makes QEMU abort on vapic, vpindex, synic and reenlightenment ("failed to set MSR"), so
 * the KVM part starts with the others. */
static void test_hyperv(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *tcg = hyperv_xml("qemu", "hvtcg", "<hyperv mode='custom'><relaxed state='on'/></hyperv>"),
                            *tcg_path = harness_define_domain(bus, tcg), *values = NULL, *values_path = NULL,
                            *cmdline = NULL, *caps = domain_caps(bus, "qemu");

        /* TCG: relaxed is refused at start, naming the element and what it needs; domcaps do not offer it. */
        assert_null(strstr(caps, "<value>relaxed</value>"));
        harness_call_fails(bus, ERR("NotSupported"), "<hyperv><relaxed state='on'> needs domain type 'kvm'", tcg_path,
                           DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        /* spinlocks and vendor_id are values in CPUID: TCG takes them, relaxed='off' too. */
        values = hyperv_xml("qemu", "hvvalues", "<hyperv mode='custom'><relaxed state='off'/>"
                                                "<spinlocks state='on' retries='4096'/><vendor_id state='on' value='vbtest'/></hyperv>");
        values_path = harness_define_domain(bus, values);
        harness_domain_call(bus, values_path, "Start");
        cmdline = qemu_cmdline(h, values_path);
        if (!strstr(cmdline, ",hv-relaxed=off,hv-spinlocks=4096,hv-vendor-id=vbtest"))
                fail_msg("QEMU's -cpu lacks the Hyper-V values: %s", cmdline);
        harness_domain_call(bus, values_path, "Destroy");

        if (kvm_usable()) {
                _cleanup_free_ char *kcaps = domain_caps(bus, "kvm"),
                                    *kvm = hyperv_xml("kvm", "hvkvm",
                                                      "<hyperv mode='custom'><relaxed state='on'/><runtime state='on'/>"
                                                      "<reset state='on'/><frequencies state='on'/><avic state='on'/>"
                                                      "<xmm_input state='on'/><spinlocks state='on' retries='8191'/></hyperv>"),
                                    *kvm_path = harness_define_domain(bus, kvm), *kcmd = NULL,
                                    *dep = hyperv_xml("kvm", "hvdep", "<hyperv mode='custom'><synic state='on'/></hyperv>"),
                                    *dep_path = harness_define_domain(bus, dep);

                assert_non_null(strstr(kcaps, "<value>relaxed</value>"));
                assert_non_null(strstr(kcaps, "<value>stimer</value>"));
                harness_domain_call(bus, kvm_path, "Start");
                kcmd = qemu_cmdline(h, kvm_path);
                if (!strstr(kcmd, ",hv-relaxed=on,hv-runtime=on,hv-reset=on,hv-frequencies=on,hv-avic=on,"
                                  "hv-xmm-input=on,hv-spinlocks=8191"))
                        fail_msg("QEMU's -cpu lacks the enlightenments: %s", kcmd);
                assert_string_equal(harness_get_string(bus, kvm_path, DOMAIN_INTERFACE, "State"), "running");
                print_message("Hyper-V under KVM: QEMU runs with %s\n", strstr(kcmd, "-cpu "));
                harness_domain_call(bus, kvm_path, "Destroy");
                /* synic needs vpindex (the Hyper-V specification; QEMU 7.2 does not check it). */
                harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "<hyperv><synic state='on'> needs <vpindex state='on'> too",
                                   dep_path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        }
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_host_model, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_maximum_and_passthrough, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_host_model_guest, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_hyperv, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-cpu: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", "--log-level", "debug", NULL } });
}
