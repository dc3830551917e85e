/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The device_add arguments for hot-plugging a host PCI function into QEMU (drivers/qemu/qemu-hostdev.c).
 * This machine has no VFIO: QEMU's answer to them is tested in tests/integration/test-qemu-hostdev.c (a
 * refusal); a successful vfio hot-plug could not be exercised here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf/device-conf.h"
#include "conf/domain-devices.h"
#include "drivers/qemu/qemu-hostdev.h"

/* The arguments as compact JSON, "" when the device is not a host PCI device, or the error code name. */
static char *args_of(const char *xml, const char *alias, bool q35) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        struct json_object *o = NULL;
        VbError e = VB_ERROR_NULL;
        char *s;
        int r;

        assert_int_equal(device_def_parse_string(xml, 0, &dev, NULL), 0);
        r = qemu_hostdev_device_add_args(dev, alias, q35, &o, &e);
        if (r < 0) {
                assert_null(o);
                s = strdup(vb_error_code_to_string(e.code));
                vb_error_free(&e);
                return s;
        }
        if (r == 0) {
                assert_null(o);
                return strdup("");
        }
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return s;
}

#define assert_args(xml, alias, q35, want)                                                              \
        do {                                                                                            \
                _cleanup_free_ char *_s = args_of(xml, alias, q35);                                     \
                assert_string_equal(_s, want);                                                          \
        } while (false)

#define PCI_HOSTDEV                                                                                     \
        "<hostdev mode='subsystem' type='pci' managed='yes'>"                                           \
        "<source><address domain='0x0000' bus='0x06' slot='0x12' function='0x2'/></source>"             \
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></hostdev>"

static void test_pci_hostdev(void **state) {
        /* The guest slot core gave, on the machine's root bus. */
        assert_args(PCI_HOSTDEV, "hostdev3", false,
                    "{\"driver\":\"vfio-pci\",\"host\":\"0000:06:12.2\",\"id\":\"hostdev3\",\"bus\":\"pci.0\","
                    "\"addr\":\"0x7.0x0\"}");
        assert_args(PCI_HOSTDEV, "hostdev3", true,
                    "{\"driver\":\"vfio-pci\",\"host\":\"0000:06:12.2\",\"id\":\"hostdev3\",\"bus\":\"pcie.0\","
                    "\"addr\":\"0x7.0x0\"}");
        /* Behind a root port (bus 3 is the controller of index 3, QEMU's 'pci.3'), on q35 and pc alike. */
        assert_args("<hostdev mode='subsystem' type='pci' managed='yes'>"
                    "<source><address domain='0x0000' bus='0x06' slot='0x12' function='0x2'/></source>"
                    "<address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></hostdev>",
                    "hostdev3", true,
                    "{\"driver\":\"vfio-pci\",\"host\":\"0000:06:12.2\",\"id\":\"hostdev3\",\"bus\":\"pci.3\","
                    "\"addr\":\"0x0.0x0\"}");
        /* No guest address: QEMU picks one. */
        assert_args("<hostdev mode='subsystem' type='pci' managed='no'>"
                    "<source><address domain='0x0001' bus='0xa0' slot='0x1f' function='0x7'/></source></hostdev>",
                    "hostdev0", false, "{\"driver\":\"vfio-pci\",\"host\":\"0001:a0:1f.7\",\"id\":\"hostdev0\"}");
}

static void test_vf_interface(void **state) {
        /* The MAC is not QEMU's business: core set it on the VF through its PF. */
        assert_args("<interface type='hostdev' managed='yes'>"
                    "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source>"
                    "<mac address='52:54:00:aa:bb:01'/><boot order='2'/></interface>",
                    "hostdev1", false,
                    "{\"driver\":\"vfio-pci\",\"host\":\"0000:03:10.1\",\"id\":\"hostdev1\",\"bootindex\":2}");
}

static void test_not_vfio(void **state) {
        /* Not a host device: for the NIC and disk paths. */
        assert_args("<interface type='user'><mac address='52:54:00:aa:bb:01'/></interface>", "net0", false, "");
        /* Host devices QEMU does not get through VFIO. */
        assert_args("<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/>"
                    "</source></hostdev>",
                    "hostdev0", false, "not-supported");
        assert_args("<interface type='hostdev'><source><address type='usb' bus='1' device='3'/></source>"
                    "<mac address='52:54:00:aa:bb:03'/></interface>",
                    "hostdev0", false, "not-supported");
}

static void test_machine_is_q35(void **state) {
        assert_true(domain_machine_is_q35("q35"));
        assert_true(domain_machine_is_q35("pc-q35-7.2"));
        assert_false(domain_machine_is_q35("pc"));
        assert_false(domain_machine_is_q35("pc-i440fx-7.2"));
        assert_false(domain_machine_is_q35(NULL));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pci_hostdev),
                cmocka_unit_test(test_vf_interface),
                cmocka_unit_test(test_not_vfio),
                cmocka_unit_test(test_machine_is_q35),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
