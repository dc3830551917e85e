/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Firmware descriptors, firmware='efi' auto-selection and the UEFI variable store, on descriptor
 * directories and images this test writes into a temporary directory (the real QEMU boots OVMF through
 * the same code in tests/integration/test-qemu-uefi.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/domain-conf.h"
#include "drivers/qemu/qemu-firmware.h"
#include "util/fileio.h"

static char tmp[] = "/tmp/virtbus-test-firmware-XXXXXX";
static char *dirs[3];
static char *nvram_dir;

static char *path_of(const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmp, name) >= 0);
        return p;
}

static void write_text(const char *name, const char *text) {
        _cleanup_free_ char *p = path_of(name);
        assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
}

static void write_descriptor(const char *name, const char *code, const char *machines, const char *features) {
        _cleanup_free_ char *json = NULL;

        assert_true(asprintf(&json,
                             "{ \"interface-types\": [\"uefi\"],\n"
                             "  \"mapping\": { \"device\": \"flash\",\n"
                             "    \"executable\": { \"filename\": \"%s/%s\", \"format\": \"raw\" },\n"
                             "    \"nvram-template\": { \"filename\": \"%s/VARS.fd\", \"format\": \"raw\" } },\n"
                             "  \"targets\": [ { \"architecture\": \"x86_64\", \"machines\": [%s] } ],\n"
                             "  \"features\": [%s], \"tags\": [] }\n",
                             tmp, code, tmp, machines, features) >= 0);
        write_text(name, json);
}

static int setup(void **state) {
        assert_non_null(mkdtemp(tmp));
        dirs[0] = path_of("etc");
        dirs[1] = path_of("share");
        nvram_dir = path_of("state/qemu/nvram");
        assert_int_equal(mkdir(dirs[0], 0755), 0);
        assert_int_equal(mkdir(dirs[1], 0755), 0);
        write_text("CODE.fd", "code");
        write_text("SB_CODE.fd", "secure code");
        write_text("VARS.fd", "the variable store template\n");
        /* Ranked by file name across the directories; an earlier directory hides a later one's file. */
        write_descriptor("etc/50-secure.json", "SB_CODE.fd", "\"pc-q35-*\"", "\"requires-smm\", \"secure-boot\"");
        write_descriptor("share/50-secure.json", "HIDDEN.fd", "\"pc-q35-*\"", "\"secure-boot\"");
        write_descriptor("share/60-plain.json", "CODE.fd", "\"pc-i440fx-*\", \"pc-q35-*\"", "\"acpi-s3\"");
        write_descriptor("share/40-missing.json", "MISSING.fd", "\"pc-*\"", "");
        write_text("share/30-broken.json", "{ not json");
        write_text("share/README", "not a descriptor");
        return 0;
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "rm -rf '%s'", tmp) >= 0);
        assert_int_equal(system(cmd), 0);
        for (size_t i = 0; i < 2; i++)
                free(dirs[i]);
        free(nvram_dir);
        return 0;
}

static DomainDef *parse(const char *uuid, const char *machine, const char *os_attrs, const char *os) {
        _cleanup_free_ char *xml = NULL;
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>fw</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
                             "<os%s><type arch='x86_64' machine='%s'>hvm</type>%s</os><devices/></domain>",
                             uuid, os_attrs, machine, os) >= 0);
        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("%s: %s", xml, e.message);
        return def;
}

static char *os_of(const DomainDef *def) {
        _cleanup_free_ char *xml = NULL;
        const char *a, *b;

        assert_int_equal(domain_def_format(def, 0, &xml), 0);
        a = strstr(xml, "<os");
        b = strstr(xml, "</os>");
        assert_true(a && b);
        return strndup(a, (size_t) (b + 5 - a));
}

#define assert_contains(s, part)                                                                        \
        do {                                                                                            \
                if (!strstr((s), (part)))                                                               \
                        fail_msg("'%s' does not contain '%s'", (s), (part));                            \
        } while (false)

static void test_list(void **state) {
        _cleanup_(qemu_firmware_list_done) QemuFirmwareList l = {};

        assert_int_equal(qemu_firmware_list_load((const char * const *) dirs, &l), 0);
        assert_int_equal(l.n, 3);
        assert_true(strstr(l.items[0].descriptor, "/share/40-missing.json"));
        assert_false(qemu_firmware_usable(&l.items[0]));
        assert_true(strstr(l.items[1].descriptor, "/etc/50-secure.json"));
        assert_true(l.items[1].secure_boot && l.items[1].requires_smm && l.items[1].uefi && l.items[1].flash);
        assert_true(strstr(l.items[2].descriptor, "/share/60-plain.json"));
        assert_false(l.items[2].secure_boot);
        assert_true(strstr(l.items[2].nvram_template, "/VARS.fd"));
        /* Machine globs, QEMU's aliases standing for the newest version. */
        assert_true(qemu_firmware_targets(&l.items[2], "x86_64", "pc"));
        assert_true(qemu_firmware_targets(&l.items[2], "x86_64", "pc-i440fx-7.2"));
        assert_false(qemu_firmware_targets(&l.items[1], "x86_64", "pc"));
        assert_true(qemu_firmware_targets(&l.items[1], "x86_64", "q35"));
        assert_false(qemu_firmware_targets(&l.items[1], "aarch64", "q35"));
}

static void test_efi_store(void **state) {
        const char *uuid = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
        _cleanup_(domain_def_freep) DomainDef *def = parse(uuid, "q35", " firmware='efi'", "");
        _cleanup_(domain_def_freep) DomainDef *live = NULL, *again = NULL;
        _cleanup_free_ char *os = NULL, *want = NULL, *store = qemu_firmware_default_nvram(nvram_dir, uuid), *data = NULL;
        VbError e = VB_ERROR_NULL;
        struct stat st, st2;

        assert_int_equal(qemu_firmware_prepare(def, NULL, (const char * const *) dirs, nvram_dir, &live, &e), 0);
        assert_non_null(live);
        os = os_of(live);
        /* Not secure boot, though its descriptor ranks first: nobody asked for it. */
        assert_true(asprintf(&want, "<loader readonly='yes' secure='no' type='pflash'>%s/CODE.fd</loader>", tmp) >= 0);
        assert_contains(os, want);
        free(want);
        assert_true(asprintf(&want, "<nvram template='%s/VARS.fd'>%s</nvram>", tmp, store) >= 0);
        assert_contains(os, want);
        assert_contains(os, "<feature enabled='no' name='secure-boot'/>");
        assert_contains(os, "<os firmware='efi'>");
        /* A copy of the template, ours alone. */
        assert_int_equal(stat(store, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(read_full_file(store, 0, &data, NULL), 0);
        assert_string_equal(data, "the variable store template\n");
        free(data);

        /* The guest's variables are kept: a second start does not copy again. */
        assert_int_equal(write_file_atomic(store, "written by the guest", 20, 0600), 0);
        assert_int_equal(stat(store, &st), 0);
        assert_int_equal(qemu_firmware_prepare(def, NULL, (const char * const *) dirs, nvram_dir, &again, &e), 0);
        assert_int_equal(stat(store, &st2), 0);
        assert_int_equal(st.st_ino, st2.st_ino);
        assert_int_equal(read_full_file(store, 0, &data, NULL), 0);
        assert_string_equal(data, "written by the guest");

        /* Undefine: the store we made goes with the definition. */
        qemu_firmware_forget(def, nvram_dir);
        assert_true(stat(store, &st) < 0 && errno == ENOENT);
}

static void test_secure_boot(void **state) {
        _cleanup_(domain_def_freep) DomainDef *q35 = parse(
                "26a6d4b5-a6e1-4d4c-8f6e-2c1b1e3d3a11", "pc-q35-7.2", " firmware='efi'",
                "<firmware><feature enabled='yes' name='secure-boot'/></firmware>");
        _cleanup_(domain_def_freep) DomainDef *pc = parse(
                "26a6d4b5-a6e1-4d4c-8f6e-2c1b1e3d3a12", "pc", " firmware='efi'",
                "<firmware><feature enabled='yes' name='secure-boot'/></firmware>");
        _cleanup_(domain_def_freep) DomainDef *live = NULL, *none = NULL;
        _cleanup_free_ char *os = NULL, *want = NULL;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(qemu_firmware_prepare(q35, NULL, (const char * const *) dirs, nvram_dir, &live, &e), 0);
        os = os_of(live);
        assert_true(asprintf(&want, "<loader readonly='yes' secure='yes' type='pflash'>%s/SB_CODE.fd</loader>", tmp) >= 0);
        assert_contains(os, want);
        assert_contains(os, "<feature enabled='yes' name='secure-boot'/>");

        /* Nothing offers it for i440fx: the sentence says what was looked for and where. */
        assert_true(qemu_firmware_prepare(pc, NULL, (const char * const *) dirs, nvram_dir, &none, &e) < 0);
        assert_null(none);
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        assert_contains(e.message, "firmware 'efi' for arch 'x86_64' and machine 'pc' with secure-boot enabled");
        assert_contains(e.message, dirs[0]);
        vb_error_free(&e);
}

/* Nothing half-done: a store that cannot be made is not there at all. */
static void test_store_errors(void **state) {
        _cleanup_free_ char *os1 = NULL, *os2 = NULL, *os3 = NULL, *os4 = NULL, *store = path_of("mine_VARS.fd"),
                            *tmpfile = NULL, *os5 = NULL;
        _cleanup_(domain_def_freep) DomainDef *no_template = NULL, *dir_template = NULL, *unknown = NULL,
                                              *described = NULL, *relative = NULL, *out = NULL;
        VbError e = VB_ERROR_NULL;
        struct stat st;

        assert_true(asprintf(&tmpfile, "%s.tmp~", store) >= 0);
        assert_true(asprintf(&os1, "<loader readonly='yes' type='pflash'>%s/CODE.fd</loader>"
                                   "<nvram template='%s/NO-SUCH.fd'>%s</nvram>", tmp, tmp, store) >= 0);
        no_template = parse("3e6f2b8c-0c1c-4c55-9c61-6b0b6f2f0a01", "pc", "", os1);
        assert_true(qemu_firmware_prepare(no_template, NULL, (const char * const *) dirs, nvram_dir, &out, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_OPERATION_FAILED);
        assert_contains(e.message, "NO-SUCH.fd");
        assert_contains(e.message, store);
        vb_error_free(&e);
        assert_true(stat(store, &st) < 0 && stat(tmpfile, &st) < 0);

        /* A template that fails while being read (a directory). */
        assert_true(asprintf(&os2, "<loader readonly='yes' type='pflash'>%s/CODE.fd</loader>"
                                   "<nvram template='%s'>%s</nvram>", tmp, dirs[1], store) >= 0);
        dir_template = parse("3e6f2b8c-0c1c-4c55-9c61-6b0b6f2f0a02", "pc", "", os2);
        assert_true(qemu_firmware_prepare(dir_template, NULL, (const char * const *) dirs, nvram_dir, &out, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_OPERATION_FAILED);
        vb_error_free(&e);
        assert_true(stat(store, &st) < 0 && stat(tmpfile, &st) < 0);

        /* A loader no descriptor knows, and no template given. */
        assert_true(asprintf(&os3, "<loader readonly='yes' type='pflash'>%s/SB_CODE.fd.copy</loader><nvram>%s</nvram>",
                             tmp, store) >= 0);
        unknown = parse("3e6f2b8c-0c1c-4c55-9c61-6b0b6f2f0a03", "pc", "", os3);
        assert_true(qemu_firmware_prepare(unknown, NULL, (const char * const *) dirs, nvram_dir, &out, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
        assert_contains(e.message, "template");
        vb_error_free(&e);
        assert_true(stat(store, &st) < 0);

        /* A loader a descriptor knows: its template, written into the live definition. */
        assert_true(asprintf(&os4, "<loader readonly='yes' type='pflash'>%s/CODE.fd</loader><nvram>%s</nvram>", tmp,
                             store) >= 0);
        described = parse("3e6f2b8c-0c1c-4c55-9c61-6b0b6f2f0a04", "pc", "", os4);
        assert_int_equal(qemu_firmware_prepare(described, NULL, (const char * const *) dirs, nvram_dir, &out, &e), 0);
        assert_non_null(out);
        free(os4);
        os4 = os_of(out);
        assert_contains(os4, "/VARS.fd'>");
        assert_int_equal(stat(store, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* A store the definition names is the user's: Undefine keeps it. */
        qemu_firmware_forget(described, nvram_dir);
        assert_int_equal(stat(store, &st), 0);

        assert_true(asprintf(&os5, "<loader readonly='yes' type='pflash'>%s/CODE.fd</loader><nvram>rel.fd</nvram>",
                             tmp) >= 0);
        relative = parse("3e6f2b8c-0c1c-4c55-9c61-6b0b6f2f0a05", "pc", "", os5);
        out = domain_def_free(out);
        assert_true(qemu_firmware_prepare(relative, NULL, (const char * const *) dirs, nvram_dir, &out, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
        vb_error_free(&e);
}

static void test_nothing_to_do(void **state) {
        _cleanup_(domain_def_freep) DomainDef *plain = parse("9b1d2c3e-0000-4000-8000-000000000001", "pc", "", "");
        _cleanup_(domain_def_freep) DomainDef *bios = parse("9b1d2c3e-0000-4000-8000-000000000002", "pc",
                                                            " firmware='bios'", "");
        DomainDef *out = (DomainDef *) 1;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(qemu_firmware_prepare(plain, NULL, (const char * const *) dirs, nvram_dir, &out, &e), 0);
        assert_null(out);
        /* No BIOS descriptor here: QEMU's own SeaBIOS. */
        assert_int_equal(qemu_firmware_prepare(bios, NULL, (const char * const *) dirs, nvram_dir, &out, &e), 0);
        assert_null(out);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_list),          cmocka_unit_test(test_efi_store),
                cmocka_unit_test(test_secure_boot),   cmocka_unit_test(test_store_errors),
                cmocka_unit_test(test_nothing_to_do),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
