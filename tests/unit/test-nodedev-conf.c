/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node device XML: data-driven round trips (tests/data/nodedev, nodedev-out, nodedev-invalid), definitions
 * built from typed capabilities (what the service writes for host devices) valid against nodedev.rng,
 * the capability table, PCI addresses. The corpus check is tests/nodedev-fidelity-check.sh. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/nodedev-conf.h"
#include "test-data.h"
#include "util/fileio.h"

static void test_round_trips(void **state) {
        _cleanup_free_ char *dir = test_data_path("nodedev", NULL);
        _cleanup_(closedirp) DIR *d = opendir(dir);
        unsigned n = 0;
        struct dirent *de;

        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *in = NULL, *out = NULL, *expected = NULL, *got = NULL, *again = NULL,
                                    *ip = test_data_path("nodedev", de->d_name), *op = test_data_path("nodedev-out", de->d_name);
                _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL, *def2 = NULL;
                VbError e = VB_ERROR_NULL;

                if (!strstr(de->d_name, ".xml"))
                        continue;
                assert_int_equal(read_full_file(ip, 0, &in, NULL), 0);
                if (nodedev_def_parse_string(in, &def, &e) < 0)
                        fail_msg("%s: %s", de->d_name, e.message);
                assert_int_equal(nodedev_def_format(def, &got), 0);
                if (getenv("VIRTBUS_TEST_REGENERATE") && !streq(got, in))
                        assert_int_equal(write_file_atomic(op, got, strlen(got), 0644), 0);
                if (read_full_file(op, 0, &expected, NULL) < 0)
                        expected = strdup(in);
                if (!streq(got, expected))
                        fail_msg("%s: got\n%s\nexpected\n%s", de->d_name, got, expected);
                /* Idempotent. */
                assert_int_equal(nodedev_def_parse_string(got, &def2, NULL), 0);
                assert_int_equal(nodedev_def_format(def2, &again), 0);
                assert_string_equal(again, got);
                n++;
        }
        assert_true(n >= 4);
}

static void test_invalid(void **state) {
        static const struct {
                const char *file;
                VbErrorCode code;
                const char *part;
        } cases[] = {
                { "cap-type.xml", VB_ERROR_INVALID_XML, "capability" },
                { "unknown-element.xml", VB_ERROR_INVALID_XML, "line 1" },
                { "pci-slot.xml", VB_ERROR_INVALID_XML, "'slot' has invalid value '32'" },
                { "net-mac.xml", VB_ERROR_INVALID_XML, "line 1" },
                { "name-slash.xml", VB_ERROR_INVALID_XML, "must not contain '/'" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *p = test_data_path("nodedev-invalid", cases[i].file), *xml = NULL;
                _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
                VbError e = VB_ERROR_NULL;

                assert_int_equal(read_full_file(p, 0, &xml, NULL), 0);
                assert_true(nodedev_def_parse_string(xml, &def, &e) < 0);
                assert_int_equal(e.code, cases[i].code);
                if (!strstr(e.message, cases[i].part))
                        fail_msg("%s: message '%s' lacks '%s'", cases[i].file, e.message, cases[i].part);
                vb_error_free(&e);
        }
}

/* What the service builds for a host's SR-IOV PF, written and read back through the schema. */
static void test_typed(void **state) {
        _cleanup_(nodedev_def_freep) NodeDevDef *def = nodedev_def_new("pci_0000_03_00_0"), *back = NULL;
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ const char **names = NULL;
        NodeDevCap *c;
        VbError e = VB_ERROR_NULL;

        assert_non_null(def);
        def->parent = strdup("computer");
        def->driver = strdup("igb");
        c = nodedev_def_add_cap(def, NODEDEV_CAP_PCI);
        c->pci.address = (NodeDevPciAddress) { 0, 3, 0, 0 };
        c->pci.class_code = 0x020000;
        c->pci.vendor_id = 0x8086;
        c->pci.product_id = 0x10c9;
        c->pci.vendor_name = strdup("Intel Corporation");
        c->pci.is_pf = true;
        c->pci.max_vfs = 7;
        c->pci.vfs = calloc(2, sizeof(NodeDevPciAddress));
        c->pci.vfs[0] = (NodeDevPciAddress) { 0, 3, 16, 0 };
        c->pci.vfs[1] = (NodeDevPciAddress) { 0, 3, 16, 2 };
        c->pci.n_vfs = 2;
        c->pci.iommu_group = 11;
        c->pci.pcie = true;
        c->pci.link_cap = (NodeDevPciLink) { .present = true, .port = -1, .speed = strdup("8"), .width = 16 };
        c = nodedev_def_add_cap(def, NODEDEV_CAP_NET);
        c->net.ifname = strdup("enp3s0f0");
        c->net.mac = strdup("00:1b:21:3a:5c:10");
        c->net.link_state = strdup("up");

        assert_int_equal(nodedev_def_format(def, &xml), 0);
        if (nodedev_def_parse_string(xml, &back, &e) < 0)
                fail_msg("%s\n%s", e.message, xml);
        assert_non_null(strstr(xml, "<capability type='virt_functions' maxCount='7'>\n"
                                    "      <address domain='0x0000' bus='0x03' slot='0x10' function='0x0'/>"));
        assert_non_null(strstr(xml, "<class>0x020000</class>"));
        assert_non_null(strstr(xml, "<product id='0x10c9'/>"));
        assert_non_null(strstr(xml, "<link validity='cap' speed='8' width='16'/>"));
        assert_non_null(strstr(xml, "<link state='up'/>"));
        assert_true(nodedev_def_has_capability(back, "virt_functions"));
        assert_true(nodedev_def_has_capability(back, "net"));
        assert_false(nodedev_def_has_capability(back, "phys_function"));
        assert_int_equal(nodedev_def_find_cap(back, NODEDEV_CAP_PCI)->pci.n_vfs, 2);
        assert_int_equal(nodedev_def_capability_names(back, &names), 0);
        assert_string_equal(names[0], "pci");
        assert_string_equal(names[1], "virt_functions");
        assert_string_equal(names[2], "net");
        assert_null(names[3]);
}

/* libvirt's bases: elements' text decimal ('010' ten), vendor/product ids and class hex ('10c9'), the
 * <address> attributes with C's rule ('01' one, '0x10' sixteen). */
static void test_number_bases(void **state) {
        _cleanup_free_ char *xml = test_data_read("nodedev", "number-bases.xml");
        _cleanup_(nodedev_def_freep) NodeDevDef *def = NULL;
        const NodeDevCap *c;
        VbError e = VB_ERROR_NULL;

        assert_non_null(xml);
        if (nodedev_def_parse_string(xml, &def, &e) < 0)
                fail_msg("%s", e.message);
        c = nodedev_def_find_cap(def, NODEDEV_CAP_PCI);
        assert_non_null(c);
        assert_int_equal(c->pci.class_code, 0x020000);
        assert_int_equal(c->pci.address.bus, 2);
        assert_int_equal(c->pci.address.slot, 10);
        assert_int_equal(c->pci.vendor_id, 0x8086);
        assert_int_equal(c->pci.product_id, 0x10c9);
        assert_int_equal(c->pci.max_vfs, 7);
        assert_int_equal(c->pci.n_vfs, 1);
        assert_int_equal(c->pci.vfs[0].slot, 16);
        assert_int_equal(c->pci.vfs[0].function, 1);
        assert_int_equal(c->pci.iommu_group, 10);
}

static void test_tables(void **state) {
        NodeDevPciAddress a;
        char s[NODEDEV_PCI_ADDRESS_MAX];
        _cleanup_free_ char *name = NULL;

        for (int i = 0; i < (int) nodedev_cap_type_table_size(); i++) {
                assert_non_null(nodedev_cap_type_to_string(i));
                assert_int_equal(nodedev_cap_type_from_string(nodedev_cap_type_to_string(i)), i);
        }
        assert_int_equal(nodedev_cap_type_from_string("floppy"), -EINVAL);
        assert_int_equal(nodedev_pci_address_parse("0000:03:10.2", &a), 0);
        nodedev_pci_address_format(&a, s);
        assert_string_equal(s, "0000:03:10.2");
        assert_int_equal(nodedev_pci_name(&a, &name), 0);
        assert_string_equal(name, "pci_0000_03_10_2");
        assert_int_equal(nodedev_pci_address_parse("0000:03:20.0", &a), -EINVAL);
        assert_int_equal(nodedev_pci_address_parse("0000:03:10.8", &a), -EINVAL);
        assert_int_equal(nodedev_pci_address_parse("0000:03:10.2x", &a), -EINVAL);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trips),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_typed),
                cmocka_unit_test(test_tables),
                cmocka_unit_test(test_number_bases),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
