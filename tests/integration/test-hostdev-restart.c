/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host devices of running domains across a restart of virtbusd: what a domain took from the host (a PCI
 * device bound to vfio-pci, a VF given a MAC/VLAN through its PF) is recorded in
 * <runtime>/hostdevs/<uuid>.leases, and given back when the domain stops, also when virtbusd was
 * restarted (or killed) in between, and at once when the domain stopped while virtbusd was away.
 *
 * This machine has no SR-IOV, IOMMU or VFIO: as in test-nodedev, virtbusd runs with the test driver on a
 * copy of the FAKE sysfs tree tests/data/sysfs/host, with tests/helpers/fake-sysfs-kernel acting as the
 * kernel (driver binding, the fake NIC keeping its VFs' MAC/VLAN in the tree). The fake kernel and the
 * tree outlive virtbusd's restarts, as the real kernel would. The test driver's running guests are its
 * records in <runtime>/test-driver/<uuid>.{xml,state}: removing them while virtbusd is down is how a
 * guest "dies" meanwhile (as a QEMU process would). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ND "org.virtbus1.NodeDevice"
#define DOMAIN_INTERFACE "org.virtbus1.Domain"

static HarnessFakeSysfs fake;
#define sysfs (fake.root)

/* VF 0 of the fake NIC's PF, and another VF passed as a plain managed <hostdev>. */
#define GUEST_DEVICES                                                                                           \
        "<interface type='hostdev' managed='yes'>"                                                              \
        "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x0'/></source>"          \
        "<mac address='52:54:00:aa:bb:01'/><vlan><tag id='42'/></vlan></interface>"                             \
        "<hostdev mode='subsystem' type='pci' managed='yes'>"                                                   \
        "<source><address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source></hostdev>"

/* <runtime>/dir/uuid.suffix (dir alone when uuid is NULL). */
static char *runtime_file(Harness *h, const char *dir, const char *uuid, const char *suffix) {
        char *p;

        assert_true(asprintf(&p, "%s/%s%s%s%s", harness_runtime_dir(h), dir, uuid ? "/" : "", strempty(uuid),
                             strempty(suffix)) >= 0);
        return p;
}

static char *lease_file(Harness *h, const char *uuid) {
        return runtime_file(h, "hostdevs", uuid, ".leases");
}

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;

        for (const char *p = haystack; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* VF 0 gets a MAC/VLAN of its own first: the guest's replace them, and they must come back. */
static void give_vf0_its_own_mac(sd_bus *root) {
        harness_nodedev_call(root, "pci_0000_03_00_0", "ConfigureVirtualFunction", "usut", 0, "02:00:00:00:00:07", 7, UINT64_C(0));
        harness_assert_fake_vf(&fake, 0, "02:00:00:00:00:07 7\n");
}

static void assert_taken(void) {
        harness_assert_fake_vf(&fake, 0, "52:54:00:aa:bb:01 42\n");
        harness_assert_fake_driver(&fake, "0000:03:10.0", "vfio-pci");
        harness_assert_fake_driver(&fake, "0000:03:10.2", "vfio-pci");
}

static void assert_given_back(void) {
        harness_assert_fake_vf(&fake, 0, "02:00:00:00:00:07 7\n");
        harness_assert_fake_driver(&fake, "0000:03:10.0", "igbvf");
        harness_assert_fake_driver(&fake, "0000:03:10.2", "igbvf");
}

/* Started, then virtbusd restarted (cleanly, then killed): Destroy gives everything back. */
static void test_restart_then_destroy(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *dom = NULL, *uuid = NULL, *leases = NULL, *text = NULL;

        give_vf0_its_own_mac(root);
        dom = harness_define_test_domain(root, "survivor", GUEST_DEVICES);
        uuid = strdup(harness_get_string(root, dom, DOMAIN_INTERFACE, "UUID"));
        leases = lease_file(h, uuid);
        harness_domain_call(root, dom, "Start");
        assert_taken();

        /* The record: both devices, taken, with what VF 0 had before. */
        text = harness_read_file(leases);
        assert_non_null(text);
        assert_non_null(strstr(text, "lease 0000:03:10.0 detach=taken driver=igbvf vf=taken pf=enp3s0f0 index=0 "
                                     "mac=02:00:00:00:00:07 vlan=7\n"));
        assert_non_null(strstr(text, "lease 0000:03:10.2 detach=taken driver=igbvf vf=none"));

        /* A clean restart: nothing is given back (the guest runs on with its devices). */
        assert_int_equal(harness_daemon_restart(h), 0);
        root = harness_bus_root(h);
        assert_string_equal(harness_get_string(root, dom, DOMAIN_INTERFACE, "State"), "running");
        assert_taken();
        /* Killed outright: the record is on disk already. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);
        assert_string_equal(harness_get_string(root, dom, DOMAIN_INTERFACE, "State"), "running");
        assert_taken();
        assert_int_equal(access(leases, F_OK), 0);

        harness_domain_call(root, dom, "Destroy");
        assert_given_back();
        assert_int_equal(access(leases, F_OK), -1);
        /* And through virtbusd's own eyes. */
        {
                _cleanup_free_ char *p = harness_nodedev_path(root, "pci_0000_03_10_2");
                assert_string_equal(harness_get_string(root, p, ND, "Driver"), "igbvf");
        }
        harness_domain_call(root, dom, "Undefine");
}

/* The guest died while virtbusd was down: its devices go back as virtbusd starts, logged at notice. */
static void test_died_while_down(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *dom = NULL, *uuid = NULL, *leases = NULL, *guest_xml = NULL, *guest_state = NULL,
                            *log = NULL;
        size_t before;

        give_vf0_its_own_mac(root);
        dom = harness_define_test_domain(root, "casualty", GUEST_DEVICES);
        uuid = strdup(harness_get_string(root, dom, DOMAIN_INTERFACE, "UUID"));
        leases = lease_file(h, uuid);
        guest_xml = runtime_file(h, "test-driver", uuid, ".xml");
        guest_state = runtime_file(h, "test-driver", uuid, ".state");
        harness_domain_call(root, dom, "Start");
        assert_taken();
        assert_int_equal(access(guest_state, F_OK), 0);

        assert_int_equal(harness_daemon_stop(h), 0);
        /* The guest goes away with no one watching. */
        assert_int_equal(unlink(guest_state), 0);
        assert_int_equal(unlink(guest_xml), 0);
        log = harness_read_file(harness_daemon_log_path(h));
        before = count(log, "stopped while virtbusd was not running");
        free(log);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);

        assert_string_equal(harness_get_string(root, dom, DOMAIN_INTERFACE, "State"), "shutoff");
        assert_given_back();
        assert_int_equal(access(leases, F_OK), -1);
        log = harness_read_file(harness_daemon_log_path(h));
        assert_int_equal(count(log, "stopped while virtbusd was not running: giving back its 2 host device(s)"),
                         before + 1);
        assert_non_null(strstr(log, "<5>Domain 'casualty': giving PCI device '0000:03:10.2' back to the host: done"));
        assert_non_null(strstr(log, "<5>Domain 'casualty': restoring VF 0 of 'enp3s0f0' (0000:03:10.0) to MAC "
                                    "02:00:00:00:00:07 VLAN 7: done"));
        /* virtbusd's own view agrees (it re-read the host). */
        {
                _cleanup_free_ char *p = harness_nodedev_path(root, "pci_0000_03_10_0");
                assert_string_equal(harness_get_string(root, p, ND, "Driver"), "igbvf");
        }
        harness_domain_call(root, dom, "Undefine");
}

static void write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

/* virtbusd died between binding a device to vfio-pci and writing down that it did: the record still says
 * "intent", which is given back like a fact. (The moment cannot be hit from outside; the record is
 * written here as virtbusd leaves it there.) Damaged records are skipped, and start-up goes on. */
static void test_intent_and_damaged_records(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *dir = NULL, *intent = NULL, *torn = NULL, *junk = NULL, *log = NULL;
        const char *uuid = "5a1e5a1e-0000-4000-8000-00000000c0de";

        /* The device on vfio-pci, as virtbusd's detach left it. */
        harness_nodedev_call(root, "pci_0000_03_10_2", "Detach", "st", "vfio-pci", UINT64_C(0));
        harness_assert_fake_driver(&fake, "0000:03:10.2", "vfio-pci");
        assert_int_equal(harness_daemon_stop(h), 0);
        dir = runtime_file(h, "hostdevs", NULL, NULL);
        (void) mkdir(dir, 0700);
        intent = lease_file(h, uuid);
        write_text(intent, "virtbus-hostdev-leases 1\n"
                           "domain 5a1e5a1e-0000-4000-8000-00000000c0de half-started guest\n"
                           "lease 0000:03:10.2 detach=intent driver=igbvf vf=none pf=- index=0 "
                           "mac=00:00:00:00:00:00 vlan=0\n"
                           "end\n");
        /* Torn (no "end" line) and plain junk: skipped with a warning. */
        torn = lease_file(h, "11111111-2222-3333-4444-555555555555");
        write_text(torn, "virtbus-hostdev-leases 1\n"
                         "domain 11111111-2222-3333-4444-555555555555 torn\n"
                         "lease 0000:03:10.0 detach=taken driver=igbvf vf=taken pf=enp3s0f0 in");
        junk = lease_file(h, "66666666-7777-8888-9999-aaaaaaaaaaaa");
        write_text(junk, "\x01\x02 not a record at all\n\n\n");

        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);
        /* It answers (virtbusd owns its name before it loads: the first answer comes after). */
        assert_string_equal(harness_get_string(root, M, "Driver"), "test");
        harness_assert_fake_driver(&fake, "0000:03:10.2", "igbvf");
        assert_int_equal(access(intent, F_OK), -1);
        /* The damaged ones are left for a person to look at, and did not change anything. */
        assert_int_equal(access(torn, F_OK), 0);
        harness_assert_fake_driver(&fake, "0000:03:10.0", "igbvf");
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(strstr(log, "Domain 'half-started guest' (5a1e5a1e-0000-4000-8000-00000000c0de) stopped while "
                                    "virtbusd was not running: giving back its 1 host device(s)."));
        assert_non_null(strstr(log, "The host device record '"));
        assert_non_null(strstr(log, "11111111-2222-3333-4444-555555555555.leases' is damaged, ignoring it"));
        assert_non_null(strstr(log, "66666666-7777-8888-9999-aaaaaaaaaaaa.leases' is damaged, ignoring it"));
        assert_int_equal(unlink(torn), 0);
        assert_int_equal(unlink(junk), 0);
}

/* The intent cannot be written down: nothing is taken from the host, and the start is refused. */
static void test_unrecordable_refused(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *dom = NULL, *dir = runtime_file(h, "hostdevs", NULL, NULL);

        give_vf0_its_own_mac(root);
        dom = harness_define_test_domain(root, "unrecorded", GUEST_DEVICES);
        /* A file where the directory should be. */
        (void) rmdir(dir);
        write_text(dir, "in the way\n");
        harness_call_fails(root, "org.virtbus1.Error.OperationFailed", "Failed to record the host devices of domain "
                           "'unrecorded'", dom, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        assert_given_back();
        assert_string_equal(harness_get_string(root, dom, DOMAIN_INTERFACE, "State"), "shutoff");
        assert_int_equal(unlink(dir), 0);
        harness_domain_call(root, dom, "Start");
        assert_taken();
        harness_domain_call(root, dom, "Destroy");
        assert_given_back();
        harness_domain_call(root, dom, "Undefine");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_restart_then_destroy),
                cmocka_unit_test(test_died_while_down),
                cmocka_unit_test(test_intent_and_damaged_records),
                cmocka_unit_test(test_unrecordable_refused),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group_on_fake_sysfs(tests, &fake, "hostdev-restart", NULL);
}
