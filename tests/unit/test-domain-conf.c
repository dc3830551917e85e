/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf-util.h"
#include "conf/device-conf.h"
#include "test-data.h"
#include "conf/domain-conf.h"
#include "util/fileio.h"

/* Data-driven xml2xml tests: tests/data/<kind>/<case>.xml is parsed and formatted; the result must
 * equal <kind>-out/<case>.xml (or the input itself when that is absent), and formatting the result
 * again must give the same bytes. VIRTBUS_TEST_REGENERATE=1 rewrites the expected files. */

static int format_kind(bool domain, const char *xml, char **ret, VbError *e) {
        int r;

        if (domain) {
                _cleanup_(domain_def_freep) DomainDef *def = NULL;

                r = domain_def_parse_string(xml, DOMAIN_PARSE_STABLE_DEFAULTS, &def, e);
                return r < 0 ? r : domain_def_format(def, DOMAIN_FORMAT_SECURE, ret);
        } else {
                _cleanup_(device_def_freep) DeviceDef *def = NULL;

                r = device_def_parse_string(xml, DEVICE_PARSE_STABLE_DEFAULTS, &def, e);
                return r < 0 ? r : device_def_format(def, DEVICE_FORMAT_SECURE, ret);
        }
}

static void check_case(const char *kind, const char *name) {
        bool domain = streq(kind, "domain");
        _cleanup_free_ char *in = test_data_read(kind, name), *out = NULL, *again = NULL, *expected = NULL;
        _cleanup_free_ char *outdir = NULL;
        VbError e = VB_ERROR_NULL;

        assert_non_null(in);
        assert_true(asprintf(&outdir, "%s-out", kind) >= 0);
        if (format_kind(domain, in, &out, &e) < 0)
                fail_msg("%s/%s: %s", kind, name, strempty(e.message));
        expected = test_data_read(outdir, name);
        if (getenv("VIRTBUS_TEST_REGENERATE")) {
                _cleanup_free_ char *p = test_data_path(outdir, name);

                if (!streq(out, in))
                        assert_int_equal(write_file_atomic(p, out, strlen(out), 0644), 0);
                else
                        (void) unlink(p);
        } else if (!streq(out, expected ?: in))
                fail_msg("%s/%s: output differs from the expected file:\n%s", kind, name, out);
        assert_int_equal(format_kind(domain, out, &again, &e), 0);
        assert_string_equal(out, again);
        vb_error_free(&e);
}

static void run_dir(const char *kind) {
        _cleanup_free_ char *dir = test_data_path(kind, NULL);
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                if (strstr(list[i]->d_name, ".xml"))
                        check_case(kind, list[i]->d_name);
                free(list[i]);
        }
        free(list);
}

static void test_domain_xml2xml(void **state) {
        run_dir("domain");
}

static void test_device_xml2xml(void **state) {
        run_dir("device");
}

typedef struct InvalidCase {
        const char *file;
        const char *fragment;
} InvalidCase;

static const InvalidCase domain_invalid[] = {
        { "boot-dev.xml", "boot" },
        { "chardev-udp.xml", "type 'udp' needs" },
        { "current-memory.xml", "must not exceed memory" },
        { "disk-device-typo.xml", "" },
        { "disk-target-dup.xml", "target 'hda' is used by two disks" },
        /* the first repetition in document order is named, with the earlier device of that key */
        { "disk-target-dup-order.xml", "line 6: element 'disk': target 'hdb' is used by two disks (lines 5 and 6)" },
        { "disk-target-missing.xml", "needs <target dev=" },
        { "doctype.xml", "Document type declarations are not allowed" },
        { "domain-type.xml", "element 'domain'" },
        { "graphics-type.xml", "" },
        { "lifecycle.xml", "on_crash" },
        { "mac-dup.xml", "is used by two interfaces" },
        { "mac-dup-order.xml", "line 6: element 'interface': MAC address '52:54:00:00:00:01' is used by two interfaces (lines 5 and 6)" },
        { "mac-format.xml", "" },
        { "mac-multicast.xml", "multicast" },
        { "malformed.xml", "malformed XML" },
        { "memory-unit.xml", "memory" },
        { "name-control.xml", "control characters" },
        { "name-empty.xml", "element 'name'" },
        { "name-slash.xml", "must not contain '/'" },
        { "numatune-auto.xml", "placement='auto'" },
        { "pci-function.xml", "attribute 'function' has invalid value 8 (expected at most 7)" },
        { "pci-slot.xml", "attribute 'slot' has invalid value 32" },
        { "unknown-attribute.xml", "unknown attribute 'colour'" },
        { "unknown-element.xml", "unexpected child element 'frobnicate'" },
        { "usb-id-range.xml", "expected at most 65535" },
        { "usb-no-ids.xml", "needs <vendor>/<product>" },
        { "uuid-format.xml", "uuid" },
        /* found by tests/fuzz: the messages name the line, the element and what is wrong */
        { "vcpu-zero.xml", "line 1: element 'vcpu': invalid value '0' (expected a whole number from 1 to 65535)" },
        { "vcpu-empty.xml", "line 4: element 'vcpu' does not fit here" },
        { "vcpu-current-over.xml", "line 1: element 'vcpu': vcpu attribute 'current' has invalid value '3' (expected at most 2)" },
        { "vcpu-current-zero.xml", "line 1: element 'vcpu': attribute 'current' has invalid value '0' (expected a whole number from 1 to 65535)" },
        { "os-type-value.xml", "line 5: element 'type': 'hvfeam' is not one of the values allowed here" },
        { "lifecycle-space.xml", "line 5: element 'on_reboot': the action 'restart' has white space around it; write it without" },
        /* what libvirt refuses too, each with the element and the rule */
        { "cachetune-overlap.xml", "element 'cachetune': vcpus='1-2' overlap those of the <cachetune> on line 1" },
        { "cachetune-same-cache.xml", "element 'cache': the same cache is allocated twice in one <cachetune>" },
        { "cachetune-monitor-outside.xml", "element 'monitor': vcpus='2' are not all in the <cachetune vcpus='0-3,^2'>" },
        { "memorytune-same-node.xml", "element 'node': the same memory node is allocated twice in one <memorytune>" },
        { "memorytune-vcpus-order.xml", "element 'memorytune': vcpus='3-1' has a range out of order" },
        { "chardev-tcp-two-sources.xml", "element 'source': a second <source> for a device of type 'tcp' (expected one)" },
        { "chardev-tcp-no-service.xml", "element 'source': type 'tcp' needs <source host='...' service='...'/>" },
        { "chardev-udp-two-bind.xml", "element 'source': a second source in mode 'bind'" },
        { "chardev-reconnect-bind.xml", "element 'reconnect': a source in mode 'bind' cannot reconnect" },
        { "redirdev-unix-no-source.xml", "element 'redirdev': type 'unix' needs <source path='...'/>" },
        { "graphics-listen-mismatch.xml", "element 'listen': address '::1' differs from listen='127.0.0.1' of <graphics>" },
        { "graphics-socket-mismatch.xml", "element 'listen': socket '/run/b.sock' differs from socket='/run/a.sock'" },
        { "bandwidth-outbound-floor.xml", "element 'outbound': attribute 'floor' is for <inbound> only" },
        { "hostdev-fc-adapter-wwpn.xml", "element 'adapter': type 'fc_host' needs both wwnn= and wwpn=" },
        { "hostdev-scsi-adapter-wwpn.xml", "element 'adapter': attribute 'wwpn' is for type 'fc_host' only" },
        { "hostdev-scsi-adapter-empty.xml", "element 'adapter': a scsi_host adapter needs name= or <parentaddr>" },
        { "cachetune-both-and-code.xml", "element 'cache': the same cache is allocated twice in one <cachetune>" },
        { "memorytune-cachetune-partial.xml", "element 'memorytune': vcpus='1-2' overlap those of the <cachetune> on line 1 but are not the same" },
        { "chardev-reconnect-no-timeout.xml", "element 'reconnect': enabled='yes' needs timeout=" },
        { "on-reboot-coredump.xml", "element 'on_reboot'" },
        /* numbers out of libvirt's ranges and values beyond its lists, named inside an interleave too */
        { "cputune-period-range.xml", "line 4: element 'period': invalid value '999' (expected a whole number from 1000 to 1000000)" },
        { "cputune-quota-range.xml", "line 4: element 'quota': invalid value '-2' (expected a whole number from -1 to 17592186044415)" },
        { "vcpupin-vcpu-range.xml", "line 5: element 'vcpupin': attribute 'vcpu' has invalid value '65536' (expected a whole number from 0 to 65535)" },
        { "numa-distance-range.xml", "line 4: element 'sibling': attribute 'value' has invalid value '256' (expected a whole number from 10 to 255)" },
        { "blkio-weight-range.xml", "line 4: element 'weight': invalid value '99' (expected a whole number from 100 to 1000)" },
        { "bios-reboot-timeout-range.xml", "line 5: element 'bios': attribute 'rebootTimeout' has invalid value '-2' (expected a whole number from -1 to 32767)" },
        { "os-arch-unknown.xml", "line 5: element 'type': attribute 'arch' has invalid value 'x86-64' (expected one of aarch64, " },
        { "perf-event-unknown.xml", "line 4: element 'event': attribute 'name' has invalid value 'cycles' (expected one of cmt, " },
        { "disk-format-unknown.xml", "line 6: element 'driver': attribute 'type' has invalid value 'qcow3' (expected one of raw, " },
        { "controller-model-unknown.xml", "line 6: element 'controller': attribute 'model' has invalid value 'xhci' (expected one of " },
        { "video-heads-range.xml", "line 2: element 'model': attribute 'heads' has invalid value '4294967296' (expected a whole number from 0 to 4294967295)" },
        { "topology-sockets-range.xml", "element 'topology': attribute 'sockets' has invalid value '0' (expected a whole number of at least 1)" },
        /* rules beyond the schema, each general (tests/refusal-variants.py writes variants of them) */
        { "boot-order-dup.xml", "line 3: element 'interface': boot order 1 is given to two devices (lines 2 and 3" },
        { "alias-dup.xml", "line 3: element 'video': alias 'ua-one' is used by two devices (lines 2 and 3" },
        /* '010' is ten, as libvirt reads the decimal the schema gives */
        { "cachetune-same-cache-leading-zero.xml", "line 3: element 'cache': the same cache is allocated twice in one <cachetune>" },
        /* libxml2 says only that <devices> does not fit: the schemas tell which attribute is missing where */
        { "required-attr-missing.xml", "line 8: element 'target': attribute 'dev' is missing (required on <target> in <disk>)" },
        /* libxml2 names only the parent (or a child it then expected): the schemas tell which child is never
         * allowed there, with its own line and what is */
        { "unknown-in-devices.xml", "line 7: element 'bogus' is not allowed in <devices> (allowed there: audio, channel, console, controller, crypto, disk, emulator, filesystem, graphics, hostdev, hub, input, ...)" },
        { "unknown-top-level.xml", "line 4: element 'bogus' is not allowed in <domain> (allowed there: blkiotune, " },
        { "misplaced-known.xml", "line 6: element 'model' is not allowed in <devices> (allowed there: " },
        /* a child of a kind allowed there, given twice: the general message */
        { "known-child-twice.xml", "line 5: element 'devices' does not fit here: not allowed in this place, given twice" },
};

static const InvalidCase device_invalid[] = {
        { "controller-index.xml", "attribute 'index'" },
        { "disk-unknown-child.xml", "unexpected child element 'unknownchild'" },
        { "not-a-device.xml", "element 'domain' is not allowed here" },
        { "channel-target-no-type.xml", "line 2: element 'target': attribute 'type' is missing (required on <target> in <channel>)" },
};

static void check_invalid(const char *kind, const InvalidCase *cases, size_t n) {
        _cleanup_free_ char *dir = NULL;

        assert_true(asprintf(&dir, "%s-invalid", kind) >= 0);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *in = test_data_read(dir, cases[i].file), *out = NULL;
                VbError e = VB_ERROR_NULL;

                assert_non_null(in);
                if (format_kind(streq(kind, "domain"), in, &out, &e) >= 0)
                        fail_msg("%s/%s was accepted", dir, cases[i].file);
                assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                if (!strstr(strempty(e.message), cases[i].fragment))
                        fail_msg("%s/%s: message '%s' lacks '%s'", dir, cases[i].file, strempty(e.message),
                                 cases[i].fragment);
                vb_error_free(&e);
        }
}

static void test_domain_invalid(void **state) {
        check_invalid("domain", domain_invalid, ELEMENTSOF(domain_invalid));
}

static void test_device_invalid(void **state) {
        check_invalid("device", device_invalid, ELEMENTSOF(device_invalid));
}

static void test_error_message_enum(void **state) {
        _cleanup_free_ char *in = test_data_read("domain-invalid", "disk-device-typo.xml");
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        VbError e = VB_ERROR_NULL;

        assert_non_null(in);
        assert_true(device_def_parse_string("<disk type='file' device='flopy'>\n<target dev='fda'/></disk>", 0, &dev, &e) < 0);
        assert_non_null(strstr(e.message, "line 1: element 'disk': attribute 'device' has invalid value 'flopy' (expected"));
        assert_non_null(strstr(e.message, "floppy"));
        vb_error_free(&e);
}

static void test_accessors_copy_defaults(void **state) {
        _cleanup_free_ char *in = test_data_read("domain", "base-2008.xml"), *a = NULL, *b = NULL, *secure = NULL;
        _cleanup_(domain_def_freep) DomainDef *def = NULL, *copy = NULL, *d1 = NULL, *d2 = NULL;
        _cleanup_free_ char *dflt = test_data_read("domain", "defaults.xml");
        DeviceDef *const *devs;
        VbError e = VB_ERROR_NULL;
        char uuid[37];

        assert_int_equal(domain_def_parse_string(in, 0, &def, &e), 0);
        assert_string_equal(domain_def_get_name(def), "base2008");
        domain_def_get_uuid_string(def, uuid);
        assert_string_equal(uuid, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        assert_int_equal(domain_def_get_vcpus(def), 2);
        assert_int_equal(domain_def_get_memory_kib(def), 524288);
        assert_string_equal(domain_def_get_os_type(def), "hvm");
        assert_true(domain_def_get_devices(def, &devs) > 10);
        assert_string_equal(device_disk_get_target(devs[0]), "fda");
        assert_int_equal(domain_def_copy(def, &copy), 0);
        assert_int_equal(domain_def_format(def, DOMAIN_FORMAT_SECURE, &a), 0);
        assert_int_equal(domain_def_format(copy, DOMAIN_FORMAT_SECURE, &b), 0);
        assert_string_equal(a, b);
        assert_int_equal(domain_def_format(def, 0, &secure), 0);
        assert_null(strstr(secure, "passwd="));
        assert_non_null(strstr(a, "passwd='secret'"));
        /* Random defaults differ between parses; UUID v4 and MAC in 52:54:00. */
        assert_int_equal(domain_def_parse_string(dflt, 0, &d1, &e), 0);
        assert_int_equal(domain_def_parse_string(dflt, 0, &d2, &e), 0);
        assert_memory_not_equal(d1->uuid, d2->uuid, 16);
        assert_int_equal(d1->uuid[6] >> 4, 4);
        free(a);
        assert_int_equal(domain_def_format(d1, 0, &a), 0);
        assert_non_null(strstr(a, "<mac address='52:54:00:"));
}

/* The readers take the base libvirt gives each place: decimal by default ('010' is ten), C's rule for
 * addresses ('010' is eight), hex for ids ('010' is sixteen). */
static void test_number_bases(void **state) {
        static const struct {
                const char *s;
                int base;
                int64_t expected; /* -1: refused */
        } cases[] = {
                { "010", 10, 10 },      { "08", 10, 8 },         { "0x10", 10, -1 },   { "10", 10, 10 },
                { "010", CONF_BASE_C, 8 }, { "0x10", CONF_BASE_C, 16 }, { "08", CONF_BASE_C, -1 },
                { "10", CONF_BASE_C, 10 }, { "010", 16, 16 },     { "0x10", 16, 16 },   { "ff", 16, 255 },
                { "fg", 16, -1 },       { "", 10, -1 },          { "-1", 10, -1 },     { " 1", 10, -1 },
                { "+1", CONF_BASE_C, -1 }, { "x10", 16, -1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                VbError e = VB_ERROR_NULL;
                uint64_t v = 0;
                int r = conf_parse_uint_base(NULL, "attribute 'x'", cases[i].s, cases[i].base, UINT32_MAX, &v, &e);

                if (cases[i].expected < 0) {
                        if (r >= 0)
                                fail_msg("'%s' in base %d was read as %llu", cases[i].s, cases[i].base,
                                         (unsigned long long) v);
                        assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                        assert_non_null(strstr(e.message, "attribute 'x' has invalid value"));
                } else {
                        if (r < 0)
                                fail_msg("'%s' in base %d refused: %s", cases[i].s, cases[i].base, e.message);
                        assert_int_equal(v, (uint64_t) cases[i].expected);
                }
                vb_error_free(&e);
        }
        /* the default readers are decimal, and the message says so */
        {
                VbError e = VB_ERROR_NULL;
                uint64_t v = 0;

                assert_int_equal(conf_parse_uint(NULL, "vcpu count", "010", UINT32_MAX, &v, &e), 0);
                assert_int_equal(v, 10);
                assert_true(conf_parse_uint(NULL, "vcpu count", "0x10", UINT32_MAX, &v, &e) < 0);
                assert_string_equal(e.message, "vcpu count has invalid value '0x10' (expected an unsigned decimal number)");
                vb_error_free(&e);
        }
}

static void test_string_tables(void **state) {
        for (size_t i = 0; i < domain_virt_type_table_size(); i++)
                assert_int_equal(domain_virt_type_from_string(domain_virt_type_to_string(i)), (int) i);
        for (size_t i = 1; i < domain_lifecycle_action_table_size(); i++)
                assert_int_equal(domain_lifecycle_action_from_string(domain_lifecycle_action_to_string(i)), (int) i);
        for (size_t i = 0; i < domain_boot_dev_table_size(); i++)
                assert_int_equal(domain_boot_dev_from_string(domain_boot_dev_to_string(i)), (int) i);
        for (size_t i = 0; i < domain_feature_table_size(); i++)
                assert_int_equal(domain_feature_from_string(domain_feature_to_string(i)), (int) i);
        for (size_t i = 1; i < domain_clock_offset_table_size(); i++)
                assert_int_equal(domain_clock_offset_from_string(domain_clock_offset_to_string(i)), (int) i);
        for (size_t i = 0; i < device_kind_table_size(); i++)
                assert_int_equal(device_kind_from_string(device_kind_to_string(i)), (int) i);
        for (size_t i = 1; i < device_address_type_table_size(); i++)
                assert_int_equal(device_address_type_from_string(device_address_type_to_string(i)), (int) i);
        assert_int_equal(domain_virt_type_from_string("nonsense"), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain_xml2xml),
                cmocka_unit_test(test_device_xml2xml),
                cmocka_unit_test(test_domain_invalid),
                cmocka_unit_test(test_device_invalid),
                cmocka_unit_test(test_error_message_enum),
                cmocka_unit_test(test_accessors_copy_defaults),
                cmocka_unit_test(test_string_tables),
                cmocka_unit_test(test_number_bases),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
