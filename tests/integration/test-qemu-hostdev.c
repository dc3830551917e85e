/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hot-plug of host PCI functions into a real QEMU: a managed <hostdev type='pci'> and an
 * <interface type='hostdev'> on an SR-IOV VF go to the guest as device_add vfio-pci.
 *
 * WHAT CANNOT BE EXERCISED HERE: a successful vfio hot-plug (and so its unplug, device_del answered by
 * DEVICE_DELETED). This machine has no IOMMU, no /dev/vfio and no SR-IOV NIC. virtbusd runs with the qemu
 * driver on a copy of the FAKE sysfs tree tests/data/sysfs/host (tests/helpers/fake-sysfs-kernel acting as
 * the kernel), which has IOMMU groups and a vfio-pci driver, so virtbusd offers PCI passthrough and really
 * takes the device from the (fake) host: binds it to vfio-pci, sets the VF's MAC through its PF. QEMU, which
 * looks at the real /sys, then refuses the device_add with its own sentence ("no such host device"). What
 * is tested is that path: the error carries QEMU's words, and nothing is left half-done: the live
 * definition has no such device, the device is back on its host driver in the tree, the VF has its old
 * MAC/VLAN again, and no lease record is left. The device_add arguments themselves are unit-tested in
 * tests/unit/test-qemu-hostdev.c. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
/* What QEMU 7.2 says when the host device is not in the real /sys (see the comment above). */
#define QEMU_REFUSAL "no such host device"

static HarnessFakeSysfs fake;
#define sysfs (fake.root)

static char *define_and_start(sd_bus *bus, const char *name) {
        _cleanup_free_ char *xml = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *p;
        char *path;

        /* Diskless, TCG: nothing to boot, but a running QEMU with its QMP monitor. */
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><devices/>"
                             "</domain>",
                             name) >= 0);
        reply = harness_call_ok(bus, M, "DefineDomain", "st", xml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        path = strdup(p);
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        return path;
}

static char *live_xml(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, DOMAIN_INTERFACE, "GetXMLDesc", "t", UINT64_C(0));
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static bool hostdev_records_left(Harness *h) {
        _cleanup_free_ char *dir = NULL;
        DIR *d;
        struct dirent *de;
        bool found = false;

        assert_true(asprintf(&dir, "%s/hostdevs", harness_runtime_dir(h)) >= 0);
        d = opendir(dir);
        if (!d)
                return false;
        while ((de = readdir(d)))
                if (strstr(de->d_name, ".leases"))
                        found = true;
        closedir(d);
        return found;
}

/* Calls AttachDevice expecting OperationFailed with QEMU's sentence; returns the message. */
static char *attach_refused(sd_bus *bus, const char *path, const char *device) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "AttachDevice", &e, &reply, "st", device,
                               UINT64_C(0));
        assert_true(r < 0);
        harness_assert_error(&e, ERR("OperationFailed"), QEMU_REFUSAL);
        return strdup(e.message);
}

static void test_pci_hostdev_refused_by_qemu(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_and_start(bus, "vfio-plug"), *msg = NULL, *live = NULL, *log = NULL;

        harness_assert_fake_driver(&fake, "0000:03:10.2", "igbvf");
        msg = attach_refused(bus, path,
                             "<hostdev mode='subsystem' type='pci' managed='yes'>"
                             "<source><address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source>"
                             "</hostdev>");
        /* Our words around QEMU's: what failed, and the device. */
        if (!strstr(msg, "Failed to add the host device: vfio ") || !strstr(msg, "0000:03:10.2"))
                fail_msg("unexpected message: %s", msg);

        /* Nothing half-done. */
        live = live_xml(bus, path);
        if (strstr(live, "<hostdev"))
                fail_msg("the refused device is in the live XML:\n%s", live);
        harness_assert_fake_driver(&fake, "0000:03:10.2", "igbvf");
        assert_false(hostdev_records_left(h));
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "State"), "running");
        /* It was really taken from the host first, and given back after QEMU's answer. */
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(strstr(log, "detaching PCI device '0000:03:10.2' from the host (driver 'igbvf') to vfio-pci: done"));
        assert_non_null(strstr(log, "Domain 'vfio-plug': giving PCI device '0000:03:10.2' back to the host: done"));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
}

static void test_vf_interface_refused_by_qemu(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_and_start(bus, "vf-plug"), *live = NULL, *vf = NULL, *msg = NULL, *pf = NULL;

        /* VF 0 has a MAC of its own. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                        harness_call_ok(bus, M, "GetNodeDeviceByName", "s", "pci_0000_03_00_0");
                const char *p;

                assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
                pf = strdup(p);
        }
        sd_bus_message_unref(harness_call_ok(bus, pf, "org.virtbus1.NodeDevice", "ConfigureVirtualFunction", "usut",
                                             0, "02:00:00:00:00:07", 7, UINT64_C(0)));
        msg = attach_refused(bus, path,
                             "<interface type='hostdev' managed='yes'>"
                             "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x0'/></source>"
                             "<mac address='52:54:00:aa:bb:01'/><vlan><tag id='42'/></vlan></interface>");
        assert_non_null(strstr(msg, "0000:03:10.0"));
        live = live_xml(bus, path);
        if (strstr(live, "52:54:00:aa:bb:01"))
                fail_msg("the refused interface is in the live XML:\n%s", live);
        vf = harness_fake_sysfs_vf(&fake, 0);
        assert_string_equal(vf, "02:00:00:00:00:07 7\n");
        harness_assert_fake_driver(&fake, "0000:03:10.0", "igbvf");
        assert_false(hostdev_records_left(h));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_pci_hostdev_refused_by_qemu, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_vf_interface_refused_by_qemu, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "No qemu-system-x86_64, skipping.\n");
                return 77;
        }
        return harness_run_group_on_fake_sysfs(tests, &fake, "qemu-hostdev", (const char * const[]) { "--driver", "qemu", "--log-level", "debug", NULL });
}
