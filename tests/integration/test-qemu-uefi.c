/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UEFI guests with the real QEMU and Debian's OVMF (package ovmf, its descriptors in
 * /usr/share/qemu/firmware), under TCG (OVMF does not run under this host's KVM): <os firmware='efi'>
 * picks the firmware, the domain gets its own variable store, and OVMF's boot manager (BdsDxe) prints on
 * the serial console, which goes to a file. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
#define BOOT_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

/* Debian 12's ovmf: the plain (60-edk2-x86_64.json) and the secure-boot, keys enrolled
 * (40-edk2-x86_64-secure-enrolled.json) images. */
#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define OVMF_CODE_SB "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
/* What OVMF's boot manager prints on the serial console when it boots its built-in shell. */
#define OVMF_BOOTS "BdsDxe: loading Boot0001 \"EFI Internal Shell\""
/* ... and what it prints when secure boot refuses that (unsigned) shell. */
#define OVMF_REFUSES "Security Violation"

static char *serial_path(Harness *h, const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s.serial", harness_dir(h), name) >= 0);
        (void) unlink(p);
        return p;
}

/* A diskless UEFI machine: the firmware boots its own shell (or, with secure boot, refuses it). */
static char *uefi_xml(Harness *h, const char *name, const char *machine, const char *os_attrs, const char *os) {
        _cleanup_free_ char *serial = serial_path(h, name);
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='qemu'>\n"
                             "  <name>%s</name>\n"
                             "  <memory unit='MiB'>256</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os%s>\n"
                             "    <type arch='x86_64' machine='%s'>hvm</type>\n"
                             "    %s\n"
                             "  </os>\n"
                             "  <features><acpi/></features>\n"
                             "  <devices>\n"
                             "    <serial type='file'><source path='%s'/><target port='0'/></serial>\n"
                             "  </devices>\n"
                             "</domain>\n",
                             name, os_attrs, machine, os, serial) >= 0);
        return x;
}

#define assert_contains(s, part)                                                                        \
        do {                                                                                            \
                if (!strstr((s), (part)))                                                               \
                        fail_msg("'%s' not in:\n%s", (part), (s));                                      \
        } while (false)

/* QEMU's command line, arguments separated by spaces. */
static char *qemu_cmdline(pid_t pid) {
        _cleanup_free_ char *proc = NULL;
        char buf[16384];
        FILE *f;
        size_t n;

        assert_true(asprintf(&proc, "/proc/%d/cmdline", (int) pid) >= 0);
        f = fopen(proc, "re");
        assert_non_null(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
                if (!buf[i])
                        buf[i] = ' ';
        buf[n] = 0;
        return strdup(buf);
}

static bool files_equal(const char *a, const char *b) {
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "cmp -s '%s' '%s'", a, b) >= 0);
        return system(cmd) == 0;
}

/* firmware='efi' on q35: OVMF chosen from the descriptors (not a secure-boot one: nobody asked), a
 * store made from its template, OVMF booting; a second start uses the same store; Undefine removes it. */
static void test_efi_auto(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = uefi_xml(h, "uefi-auto", "q35", " firmware='efi'", ""),
                            *serial = serial_path(h, "uefi-auto"), *path = harness_define_domain(bus, xml), *uuid = NULL,
                            *store = NULL, *want = NULL, *live = NULL, *saved = NULL, *cmdline = NULL;
        struct stat st, tmpl, st2;

        uuid = strdup(harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID"));
        assert_true(asprintf(&store, "%s/qemu/nvram/%s_VARS.fd", harness_state_dir(h), uuid) >= 0);
        assert_true(stat(store, &st) < 0);

        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, OVMF_BOOTS, 1, BOOT_TIMEOUT_USEC);

        /* The store: a copy of the template, the domain's own (0600), named in the live XML. */
        assert_int_equal(stat(store, &st), 0);
        assert_int_equal(stat(OVMF_VARS, &tmpl), 0);
        assert_int_equal(st.st_size, tmpl.st_size);
        assert_int_equal(st.st_mode & 07777, 0600);
        live = harness_domain_xml(bus, path, 0);
        assert_contains(live, "<os firmware='efi'>");
        assert_contains(live, "<loader readonly='yes' secure='no' type='pflash'>" OVMF_CODE "</loader>");
        assert_true(asprintf(&want, "<nvram template='" OVMF_VARS "'>%s</nvram>", store) >= 0);
        assert_contains(live, want);
        assert_contains(live, "<feature enabled='no' name='secure-boot'/>");
        /* The saved definition stays as given: the choice is made again at each start. */
        saved = harness_domain_xml(bus, path, 1);
        assert_null(strstr(saved, "<nvram"));
        assert_null(strstr(saved, "<loader"));
        cmdline = qemu_cmdline(harness_qemu_pid(h, uuid));
        /* Both flash images go to QEMU as descriptor sets, never as paths; it holds the store open. */
        assert_contains(cmdline, "if=pflash,format=raw,unit=1,file=/dev/fdset/");
        assert_contains(cmdline, "if=pflash,format=raw,unit=0,readonly=on,file=/dev/fdset/");
        assert_null(strstr(cmdline, "file=" OVMF_CODE));
        assert_true(harness_process_has_open(harness_qemu_pid(h, uuid), store));
        assert_null(strstr(cmdline, "smm=on"));
        harness_domain_call(bus, path, "Destroy");
        /* OVMF wrote its boot entries into it. */
        assert_false(files_equal(store, OVMF_VARS));

        /* The second start finds it: the same file, not a new copy. */
        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, OVMF_BOOTS, 1, BOOT_TIMEOUT_USEC);
        assert_int_equal(stat(store, &st2), 0);
        assert_int_equal(st.st_ino, st2.st_ino);
        harness_domain_call(bus, path, "Destroy");

        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        assert_true(stat(store, &st) < 0 && errno == ENOENT);
}

/* Secure boot asked for: the secure-boot OVMF with Microsoft's keys, SMM on, and the firmware refusing to
 * run its own unsigned shell. */
static void test_efi_secure_boot(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = uefi_xml(h, "uefi-sb", "q35", " firmware='efi'",
                                            "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"),
                            *serial = serial_path(h, "uefi-sb"), *path = harness_define_domain(bus, xml), *uuid = NULL,
                            *live = NULL, *cmdline = NULL;

        uuid = strdup(harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID"));
        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, OVMF_REFUSES, 1, BOOT_TIMEOUT_USEC);
        live = harness_domain_xml(bus, path, 0);
        assert_contains(live, "<loader readonly='yes' secure='yes' type='pflash'>" OVMF_CODE_SB "</loader>");
        cmdline = qemu_cmdline(harness_qemu_pid(h, uuid));
        assert_contains(cmdline, ",smm=on ");
        assert_contains(cmdline, "-global driver=cfi.pflash01,property=secure,value=on");
        harness_domain_call(bus, path, "Destroy");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
}

/* The explicit form (virt-manager's XML after libvirt filled it in), on i440fx; a store the definition
 * names is the user's: Undefine keeps it. */
static void test_efi_explicit(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *store = NULL, *os = NULL, *xml = NULL, *serial = serial_path(h, "uefi-explicit"),
                            *path = NULL, *live = NULL, *want = NULL;
        struct stat st;

        assert_true(asprintf(&store, "%s/uefi-explicit_VARS.fd", harness_dir(h)) >= 0);
        (void) unlink(store);
        assert_true(asprintf(&os, "<loader readonly='yes' type='pflash'>" OVMF_CODE "</loader>"
                                  "<nvram template='" OVMF_VARS "'>%s</nvram>", store) >= 0);
        xml = uefi_xml(h, "uefi-explicit", "pc", "", os);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, OVMF_BOOTS, 1, BOOT_TIMEOUT_USEC);
        assert_int_equal(stat(store, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        live = harness_domain_xml(bus, path, 0);
        assert_true(asprintf(&want, "<nvram template='" OVMF_VARS "'>%s</nvram>", store) >= 0);
        assert_contains(live, want);
        harness_domain_call(bus, path, "Destroy");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        assert_int_equal(stat(store, &st), 0);
        (void) unlink(store);
}

/* Nothing fits, or the store cannot be made: a sentence, no QEMU, no half file. */
static void test_efi_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *none = uefi_xml(h, "uefi-none", "pc", " firmware='efi'",
                                             "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"),
                            *store = NULL, *tmpfile = NULL, *os = NULL, *missing = NULL, *p1 = NULL, *p2 = NULL;
        struct stat st;

        p1 = harness_define_domain(bus, none);
        harness_call_fails(bus, ERR("NotSupported"),
                           "firmware 'efi' for arch 'x86_64' and machine 'pc' with secure-boot enabled", p1,
                           DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        assert_string_equal(harness_get_string(bus, p1, DOMAIN_INTERFACE, "State"), "shutoff");

        assert_true(asprintf(&store, "%s/uefi-missing_VARS.fd", harness_dir(h)) >= 0);
        assert_true(asprintf(&tmpfile, "%s.tmp~", store) >= 0);
        (void) unlink(store);
        assert_true(asprintf(&os, "<loader readonly='yes' type='pflash'>" OVMF_CODE "</loader>"
                                  "<nvram template='/nonexistent/virtbus-VARS.fd'>%s</nvram>", store) >= 0);
        missing = uefi_xml(h, "uefi-missing", "q35", "", os);
        p2 = harness_define_domain(bus, missing);
        harness_call_fails(bus, ERR("OperationFailed"), "'/nonexistent/virtbus-VARS.fd'", p2, DOMAIN_INTERFACE,
                           "Start", "t", UINT64_C(0));
        assert_string_equal(harness_get_string(bus, p2, DOMAIN_INTERFACE, "State"), "shutoff");
        assert_true(stat(store, &st) < 0 && stat(tmpfile, &st) < 0);
        sd_bus_message_unref(harness_call_ok(bus, p1, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, p2, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_efi_auto, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_efi_secure_boot, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_efi_explicit, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_efi_errors, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0 || access(OVMF_CODE, R_OK) < 0 ||
            access(OVMF_CODE_SB, R_OK) < 0) {
                fprintf(stderr, "test-qemu-uefi: qemu-system-x86_64 or ovmf is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", "--log-level", "debug", NULL } });
}
