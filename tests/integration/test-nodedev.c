/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node devices on the bus: enumeration and XML, Detach / ReAttach, SR-IOV virtual functions, the host
 * devices of a domain around its life, and authorization with the real polkitd.
 *
 * This machine has no SR-IOV, IOMMU or VFIO. virtbusd therefore runs on a FAKE sysfs tree: a copy of
 * tests/data/sysfs/host (an SR-IOV NIC with a PF and two VFs, a GPU and its audio function sharing an
 * IOMMU group, a USB receiver), with tests/helpers/fake-sysfs-kernel doing what the kernel would when
 * virtbusd writes its files (driver binding, drivers_probe honouring driver_override, sriov_numvfs
 * making VFs). virtbusd runs unchanged; the VF MAC/VLAN of the fake NIC live in the tree (see
 * src/host/net.h). The rtnetlink path of the VF calls is tested up to the kernel's answer in
 * tests/unit/test-host.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ND "org.virtbus1.NodeDevice"
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define OM_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define ERR(name) "org.virtbus1.Error." name

static HarnessFakeSysfs fake;
#define sysfs (fake.root)

static unsigned list_count(sd_bus *bus, const char *cap, const char *must_have) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "ListNodeDevices", "st", cap, UINT64_C(0));
        _cleanup_free_ char *want = NULL;
        const char *p;
        unsigned n = 0;
        bool found = !must_have;

        if (must_have)
                assert_true(sd_bus_path_encode("/org/virtbus1/nodedev", must_have, &want) >= 0);
        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        while (sd_bus_message_read(reply, "o", &p) > 0) {
                n++;
                if (want && streq(p, want))
                        found = true;
        }
        assert_true(found);
        return n;
}

static const char *driver_of(Harness *h, const char *name) {
        _cleanup_free_ char *p = harness_nodedev_path(harness_bus_root(h), name);
        return harness_get_string(harness_bus_root(h), p, ND, "Driver");
}

static char *get_xml(sd_bus *bus, const char *name) {
        _cleanup_free_ char *p = harness_nodedev_path(bus, name);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, p, ND, "GetXMLDesc", "t", UINT64_C(0));
        const char *x;

        assert_int_equal(sd_bus_message_read(reply, "s", &x), 1);
        return strdup(x);
}

static void test_enumeration(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *pf = harness_nodedev_path(root, "pci_0000_03_00_0"), *xml = NULL, *vfxml = NULL, *usb = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char **caps = NULL;

        /* Everyone may read. */
        assert_true(list_count(plain, "", "computer") >= 12);
        assert_int_equal(list_count(plain, "virt_functions", "pci_0000_03_00_0"), 1);
        assert_int_equal(list_count(plain, "phys_function", "pci_0000_03_10_2"), 2);
        assert_int_equal(list_count(plain, "usb_device", "usb_1_2"), 2);
        assert_int_equal(list_count(plain, "net", "net_enp3s0f0_00_1b_21_3a_5c_10"), 1);
        harness_call_fails(plain, ERR("NoSuchDevice"), "pci_9999", M, "GetNodeDeviceByName", "s", "pci_9999");
        harness_call_fails(plain, SD_BUS_ERROR_INVALID_ARGS, NULL, M, "ListNodeDevices", "st", "", UINT64_C(1));

        assert_string_equal(harness_get_string(plain, pf, ND, "Name"), "pci_0000_03_00_0");
        assert_string_equal(harness_get_string(plain, pf, ND, "Parent"), "pci_0000_00_1c_0");
        assert_string_equal(harness_get_string(plain, pf, ND, "Driver"), "igb");
        assert_int_equal(sd_bus_get_property_strv(plain, HARNESS_SERVICE, pf, ND, "Capabilities", NULL, &caps), 0);
        assert_string_equal(caps[0], "pci");
        assert_string_equal(caps[1], "virt_functions");
        assert_null(caps[2]);
        for (char **c = caps; *c; c++)
                free(*c);
        free(caps);
        harness_assert_introspection(plain, pf, "interfaces/org.virtbus1.NodeDevice.xml");

        xml = get_xml(plain, "pci_0000_03_00_0");
        assert_non_null(strstr(xml, "<name>pci_0000_03_00_0</name>"));
        assert_non_null(strstr(xml, "<driver>\n    <name>igb</name>"));
        assert_non_null(strstr(xml, "<product id='0x10c9'>82576 Gigabit Network Connection</product>"));
        assert_non_null(strstr(xml, "<vendor id='0x8086'>Intel Corporation</vendor>"));
        assert_non_null(strstr(xml, "<capability type='virt_functions' maxCount='7'>\n"
                                    "      <address domain='0x0000' bus='0x03' slot='0x10' function='0x0'/>\n"
                                    "      <address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>"));
        assert_non_null(strstr(xml, "<iommuGroup number='11'>"));
        assert_non_null(strstr(xml, "<link validity='cap' speed='2.5' width='4'/>"));
        vfxml = get_xml(plain, "pci_0000_03_10_2");
        assert_non_null(strstr(vfxml, "<capability type='phys_function'>\n"
                                      "      <address domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>"));
        usb = get_xml(plain, "usb_1_2");
        assert_non_null(strstr(usb, "<capability type='usb_device'>\n    <bus>1</bus>\n    <device>3</device>"));
        assert_non_null(strstr(usb, "<parent>usb_usb1</parent>"));
        /* The GPU and its audio function share IOMMU group 15. */
        {
                _cleanup_free_ char *gpu = get_xml(plain, "pci_0000_05_00_0");
                assert_non_null(strstr(gpu, "<iommuGroup number='15'>\n"
                                            "      <address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>\n"
                                            "      <address domain='0x0000' bus='0x05' slot='0x00' function='0x1'/>"));
        }
        /* The same through GetManagedObjects. */
        reply = harness_call_ok(root, HARNESS_MANAGER_PATH, OM_INTERFACE, "GetManagedObjects", "");
        assert_non_null(reply);
}

static void test_detach_reattach(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *vf = harness_nodedev_path(root, "pci_0000_03_10_2"), *log = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(root, vf, "org.freedesktop.DBus.Properties",
                                                                              "PropertiesChanged");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;

        harness_nodedev_call(root, "pci_0000_03_10_2", "Detach", "st", "vfio-pci", UINT64_C(0));
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "vfio-pci");
        sig = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(sig);
        /* Again: nothing to do. */
        harness_nodedev_call(root, "pci_0000_03_10_2", "Detach", "st", "", UINT64_C(0));
        harness_nodedev_call(root, "pci_0000_03_10_2", "Reset", "t", UINT64_C(0));
        harness_nodedev_call(root, "pci_0000_03_10_2", "ReAttach", "t", UINT64_C(0));
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");
        harness_call_fails(root, ERR("InvalidState"), "not detached", vf, ND, "ReAttach", "t", UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, vf, ND, "Detach", "st", "", UINT64_C(4));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "nvidia", vf, ND, "Detach", "st", "nvidia", UINT64_C(0));

        /* An IOMMU group is given away whole: not while the audio function is on its host driver. */
        {
                _cleanup_free_ char *gpu = harness_nodedev_path(root, "pci_0000_05_00_0"), *bridge = harness_nodedev_path(root, "pci_0000_00_1c_0"),
                                    *net = harness_nodedev_path(root, "net_enp3s0f0_00_1b_21_3a_5c_10");

                harness_call_fails(root, ERR("DeviceBusy"), "0000:05:00.1", gpu, ND, "Detach", "st", "", UINT64_C(0));
                assert_string_equal(driver_of(h, "pci_0000_05_00_0"), "nouveau");
                /* Flags 1: the whole group, together. */
                harness_nodedev_call(root, "pci_0000_05_00_0", "Detach", "st", "vfio", UINT64_C(1));
                assert_string_equal(driver_of(h, "pci_0000_05_00_0"), "vfio-pci");
                assert_string_equal(driver_of(h, "pci_0000_05_00_1"), "vfio-pci");
                harness_nodedev_call(root, "pci_0000_05_00_0", "ReAttach", "t", UINT64_C(0));
                harness_nodedev_call(root, "pci_0000_05_00_1", "ReAttach", "t", UINT64_C(0));
                assert_string_equal(driver_of(h, "pci_0000_05_00_0"), "nouveau");
                assert_string_equal(driver_of(h, "pci_0000_05_00_1"), "snd_hda_intel");
                harness_call_fails(root, ERR("NotSupported"), "bridge", bridge, ND, "Detach", "st", "", UINT64_C(0));
                harness_call_fails(root, ERR("NotSupported"), "not a PCI device", net, ND, "Detach", "st", "", UINT64_C(0));
        }
        /* Logged at notice, with the caller's uid. */
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(log);
        assert_non_null(strstr(log, "uid 0: detach (0000:03:10.2 to vfio-pci) of node device 'pci_0000_03_10_2': done."));
        assert_non_null(strstr(log, "uid 0: detach (0000:05:00.0 to vfio-pci) of node device 'pci_0000_05_00_0' failed"));
        assert_non_null(strstr(log, "uid 0: detach (0000:05:00.0 and its IOMMU group to vfio-pci) of node device 'pci_0000_05_00_0': done."));
}

static void test_virtual_functions(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *pf = harness_nodedev_path(root, "pci_0000_03_00_0"), *vf0 = harness_nodedev_path(root, "pci_0000_03_10_0"), *s = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(root, HARNESS_MANAGER_PATH, OM_INTERFACE, NULL);
        _cleanup_free_ char *want = NULL;
        bool added = false, removed = false;

        assert_true(sd_bus_path_encode("/org/virtbus1/nodedev", "pci_0000_03_10_6", &want) >= 0);
        harness_nodedev_call(root, "pci_0000_03_00_0", "SetVirtualFunctions", "ut", 4, UINT64_C(0));
        assert_int_equal(list_count(root, "phys_function", "pci_0000_03_10_6"), 4);
        for (sd_bus_message *m; !added && (m = harness_watch_next(w, HARNESS_TIMEOUT_USEC)); sd_bus_message_unref(m)) {
                const char *p;
                if (sd_bus_message_is_signal(m, OM_INTERFACE, "InterfacesAdded") && sd_bus_message_read(m, "o", &p) > 0)
                        added = streq(p, want);
        }
        assert_true(added);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "at most 7", pf, ND, "SetVirtualFunctions", "ut", 8, UINT64_C(0));
        harness_call_fails(root, ERR("NotSupported"), "not an SR-IOV physical function", vf0, ND, "SetVirtualFunctions",
                           "ut", 1, UINT64_C(0));
        harness_nodedev_call(root, "pci_0000_03_00_0", "SetVirtualFunctions", "ut", 2, UINT64_C(0));
        assert_int_equal(list_count(root, "phys_function", NULL), 2);
        for (sd_bus_message *m; !removed && (m = harness_watch_next(w, HARNESS_TIMEOUT_USEC)); sd_bus_message_unref(m)) {
                const char *p;
                if (sd_bus_message_is_signal(m, OM_INTERFACE, "InterfacesRemoved") && sd_bus_message_read(m, "o", &p) > 0)
                        removed = streq(p, want);
        }
        assert_true(removed);

        /* VF MAC / VLAN through the PF (the fake NIC keeps them). */
        harness_nodedev_call(root, "pci_0000_03_00_0", "ConfigureVirtualFunction", "usut", 1, "02:00:00:00:00:11", 11, UINT64_C(0));
        s = harness_fake_sysfs_vf(&fake, 1);
        assert_string_equal(s, "02:00:00:00:00:11 11\n");
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, pf, ND, "ConfigureVirtualFunction", "usut", 1,
                           "02:00:00:00:00", 0, UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "unicast", pf, ND, "ConfigureVirtualFunction", "usut", 1,
                           "03:00:00:00:00:11", 0, UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "no VF 5", pf, ND, "ConfigureVirtualFunction", "usut", 5,
                           "02:00:00:00:00:11", 0, UINT64_C(0));
        harness_call_fails(root, ERR("NotSupported"), NULL, vf0, ND, "ConfigureVirtualFunction", "usut", 0,
                           "02:00:00:00:00:11", 0, UINT64_C(0));
}

/* The PF's sriov_numvfs made a FIFO for one call: what virtbusd reads from it is what this test writes, and
 * virtbusd's write hangs until this test reads it, as a real kernel's write of sriov_numvfs hangs while it
 * makes or removes VFs (seconds on real NICs). The fake kernel leaves FIFOs alone; the regular file waits
 * beside it (still watched by the fake kernel) and goes back once the test has read what virtbusd wrote. */
#define PF_DIR "bus/pci/devices/0000:03:00.0/"

static char *pf_file(const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/" PF_DIR "%s", sysfs, name) > 0);
        return p;
}

static void numvfs_hold(void) {
        _cleanup_free_ char *file = pf_file("sriov_numvfs"), *saved = pf_file(".sriov_numvfs.held");

        assert_int_equal(rename(file, saved), 0);
        assert_int_equal(mkfifo(file, 0644), 0);
}

/* Gives the regular file back, with value written as virtbusd would (the fake kernel acts on it). */
static void numvfs_release(const char *value) {
        _cleanup_free_ char *file = pf_file("sriov_numvfs"), *saved = pf_file(".sriov_numvfs.held");
        int fd;

        assert_int_equal(unlink(file), 0);
        assert_int_equal(rename(saved, file), 0);
        fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, value, strlen(value)), (ssize_t) strlen(value));
        assert_int_equal(close(fd), 0);
}

/* Answers virtbusd's read of the FIFO with value: waits (bounded) until virtbusd opens it for reading. */
static void numvfs_answer_read(const char *value) {
        _cleanup_free_ char *file = pf_file("sriov_numvfs");
        uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        int fd;

        while ((fd = open(file, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
                assert_int_equal(errno, ENXIO); /* no reader yet */
                assert_true(harness_now_usec() < end);
                (void) usleep(2000);
        }
        assert_int_equal(write(fd, value, strlen(value)), (ssize_t) strlen(value));
        assert_int_equal(close(fd), 0);
}

/* Waits (bounded) until a thread of process pid sleeps in the kernel's open of a FIFO that no reader has
 * opened yet (its wchan is "wait_for_partner"): the change held at a FIFO has begun in virtbusd's worker.
 * DeviceBusy alone does not say so: a change still queued, its thread not yet run, is busy too. */
static void wait_fifo_writer(pid_t pid) {
        uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        char dir[64];

        snprintf(dir, sizeof dir, "/proc/%d/task", (int) pid);
        for (;;) {
                DIR *d = opendir(dir);
                struct dirent *de;
                bool found = false;

                assert_non_null(d);
                while (!found && (de = readdir(d))) {
                        _cleanup_free_ char *path = NULL, *wchan = NULL;

                        if (de->d_name[0] == '.')
                                continue;
                        assert_true(asprintf(&path, "%s/%s/wchan", dir, de->d_name) > 0);
                        wchan = harness_read_file(path);
                        found = wchan && streq(wchan, "wait_for_partner");
                }
                closedir(d);
                if (found)
                        return;
                if (harness_now_usec() > end)
                        fail_msg("no thread of virtbusd (pid %d) began the change held at the FIFO", (int) pid);
                usleep(10000);
        }
}

/* Reads what virtbusd writes to the FIFO, until it closes it; its write was waiting for this. */
static char *numvfs_take_write(void) {
        _cleanup_free_ char *file = pf_file("sriov_numvfs");
        char buf[64];
        size_t n = 0;
        int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

        assert_true(fd >= 0);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                /* POLLHUP comes only once a writer has come and gone. */
                assert_int_equal(poll(&p, 1, (int) (HARNESS_TIMEOUT_USEC / 1000)), 1);
                k = read(fd, buf + n, sizeof buf - 1 - n);
                if (k > 0)
                        n += (size_t) k;
                else if (k == 0 && (p.revents & POLLHUP))
                        break;
                else
                        assert_true(k == 0 || errno == EAGAIN);
        }
        close(fd);
        buf[n] = 0;
        return strdup(buf);
}

/* userdata: a static of the test's (static: a test that failed leaves its call's slot behind, and the
 * late answer must not write into a frame that is gone). */
static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int *answered = userdata;

        *answered = sd_bus_message_is_method_error(m, NULL) ? -1 : 1;
        return 0;
}

static void test_virtual_functions_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *pf = harness_nodedev_path(root, "pci_0000_03_00_0"), *vf0 = harness_nodedev_path(root, "pci_0000_03_10_0"),
                            *written = NULL, *gpu = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        static int answered;

        assert_int_equal(list_count(root, "phys_function", NULL), 2);
        numvfs_hold();
        /* 2 -> 3: through 0, as the kernel wants. */
        answered = 0;
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, pf, ND, "SetVirtualFunctions", on_reply,
                                             &answered, "ut", 3, UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        numvfs_answer_read("2\n");
        /* virtbusd now waits for its write of 0 to be taken. Meanwhile another caller is answered, the
         * registry shows the VFs there still are, and the PF and its VFs refuse other changes. */
        assert_int_equal(list_count(plain, "phys_function", "pci_0000_03_10_2"), 2);
        gpu = get_xml(plain, "pci_0000_05_00_0");
        assert_non_null(strstr(gpu, "<name>pci_0000_05_00_0</name>"));
        assert_string_equal(driver_of(h, "pci_0000_03_10_0"), "igbvf");
        harness_call_fails(root, ERR("DeviceBusy"), "busy changing its virtual functions (sriov_numvfs=3", pf, ND,
                           "SetVirtualFunctions", "ut", 1, UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "virtual function of node device 'pci_0000_03_00_0'", vf0, ND,
                           "Detach", "st", "", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), NULL, pf, ND, "ConfigureVirtualFunction", "usut", 0,
                           "02:00:00:00:00:11", 0, UINT64_C(0));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(answered, 0);

        /* The kernel's part: take the write, remove the VFs; virtbusd then writes 3 to the regular file. */
        written = numvfs_take_write();
        assert_string_equal(written, "0");
        numvfs_release(written);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        assert_int_equal(answered, 1);
        /* Answered once the registry was read again: the new VF is there. */
        assert_int_equal(list_count(plain, "phys_function", "pci_0000_03_10_4"), 3);
        {
                _cleanup_free_ char *log = harness_read_file(harness_daemon_log_path(h));
                assert_non_null(strstr(log, "uid 0: sriov_numvfs=3 (0000:03:00.0) of node device 'pci_0000_03_00_0': done."));
        }
        /* Back to two for the tests that follow. */
        harness_nodedev_call(root, "pci_0000_03_00_0", "SetVirtualFunctions", "ut", 2, UINT64_C(0));
        assert_int_equal(list_count(root, "phys_function", NULL), 2);
}

/* A failed run of the test above leaves no FIFO behind (and no virtbusd waiting on it). */
static int teardown_numvfs(void **state) {
        _cleanup_free_ char *file = pf_file("sriov_numvfs"), *saved = pf_file(".sriov_numvfs.held");
        struct stat st;
        int fd;

        if (lstat(file, &st) < 0 || !S_ISFIFO(st.st_mode))
                return 0;
        fd = open(file, O_RDWR | O_NONBLOCK | O_CLOEXEC); /* lets a waiting open through */
        (void) unlink(file);
        (void) rename(saved, file);
        if (fd >= 0)
                close(fd);
        return 0;
}

/* ConfigureVirtualFunction off the event loop: the PF's sriov_totalvfs is made a FIFO, so that virtbusd's
 * reading of the PF (before it configures the VF) waits until the test answers it, as a read of a device
 * busy in the kernel waits. Meanwhile another caller is answered and the PF refuses other changes
 * (DeviceBusy); once answered, the VF has its MAC and VLAN and the change is logged. On code that read the
 * PF, configured the VF and read the host again in the D-Bus handler, nobody was answered meanwhile. */
static void totalvfs_restore(void) {
        _cleanup_free_ char *file = pf_file("sriov_totalvfs"), *saved = pf_file(".sriov_totalvfs.held");

        assert_int_equal(unlink(file), 0);
        assert_int_equal(rename(saved, file), 0);
}

static void test_configure_vf_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *pf = harness_nodedev_path(root, "pci_0000_03_00_0"), *file = pf_file("sriov_totalvfs"),
                            *saved = pf_file(".sriov_totalvfs.held"), *total = NULL, *gpu = NULL, *vf = NULL,
                            *log = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        static int answered;
        int fd;

        total = harness_read_file(file);
        assert_non_null(total);
        assert_int_equal(rename(file, saved), 0);
        assert_int_equal(mkfifo(file, 0644), 0);
        answered = 0;
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, pf, ND, "ConfigureVirtualFunction",
                                             on_reply, &answered, "usut", 1, "02:00:00:00:00:21", 21,
                                             UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* virtbusd opens the FIFO to read the PF: from then on its read waits for this test's write. */
        while ((fd = open(file, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
                assert_int_equal(errno, ENXIO);
                assert_true(harness_now_usec() < end);
                (void) usleep(2000);
        }
        assert_int_equal(list_count(plain, "phys_function", NULL), 2);
        gpu = get_xml(plain, "pci_0000_05_00_0");
        assert_non_null(strstr(gpu, "<name>pci_0000_05_00_0</name>"));
        harness_call_fails(root, ERR("DeviceBusy"), "busy configuring a virtual function", pf, ND,
                           "SetVirtualFunctions", "ut", 1, UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "busy configuring a virtual function", pf, ND,
                           "ConfigureVirtualFunction", "usut", 0, "02:00:00:00:00:22", 0, UINT64_C(0));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(answered, 0);

        /* The regular file back first (the re-reading of the host after the change reads it), then the
         * answer to the read that waits. */
        totalvfs_restore();
        assert_int_equal(write(fd, total, strlen(total)), (ssize_t) strlen(total));
        assert_int_equal(close(fd), 0);
        while (answered == 0 && harness_now_usec() < end)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        assert_int_equal(answered, 1);
        vf = harness_fake_sysfs_vf(&fake, 1);
        assert_string_equal(vf, "02:00:00:00:00:21 21\n");
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(strstr(log, "(0000:03:00.0): MAC 02:00:00:00:00:21 VLAN 21 of node device 'pci_0000_03_00_0': "
                                    "done."));
        /* Still refused when the VF does not exist, now from the thread. */
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "no VF 5", pf, ND, "ConfigureVirtualFunction", "usut", 5,
                           "02:00:00:00:00:11", 0, UINT64_C(0));
}

/* A failed run of the test above leaves no FIFO behind. */
static int teardown_totalvfs(void **state) {
        _cleanup_free_ char *file = pf_file("sriov_totalvfs"), *saved = pf_file(".sriov_totalvfs.held");
        struct stat st;
        int fd;

        if (lstat(file, &st) < 0 || !S_ISFIFO(st.st_mode))
                return 0;
        fd = open(file, O_RDWR | O_NONBLOCK | O_CLOEXEC); /* lets a waiting open through */
        (void) unlink(file);
        (void) rename(saved, file);
        if (fd >= 0)
                close(fd);
        return 0;
}

/* The same for Detach, ReAttach and Reset: a file of VF 0000:03:10.2 that virtbusd writes is made a FIFO,
 * so that its write hangs (as a real device's reset or unbind can) until the test reads it. */
#define HELD_DEV "bus/pci/devices/0000:03:10.2/"

static char *dev_file(const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/" HELD_DEV "%s", sysfs, name) > 0);
        return p;
}

static char *dev_file_held(const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/" HELD_DEV ".%s.held", sysfs, name) > 0);
        return p;
}

static void dev_hold(const char *name) {
        _cleanup_free_ char *file = dev_file(name), *saved = dev_file_held(name);

        assert_int_equal(rename(file, saved), 0);
        assert_int_equal(mkfifo(file, 0644), 0);
}

/* Reads what virtbusd writes to the FIFO (waiting, bounded, for it to open it), then gives the regular file
 * back with that value written, as virtbusd would have (the fake kernel acts on it). */
static char *dev_take_and_release(const char *name) {
        _cleanup_free_ char *file = dev_file(name), *saved = dev_file_held(name);
        uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        char buf[64];
        size_t n = 0;
        int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

        assert_true(fd >= 0);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                assert_true(harness_now_usec() < end);
                /* POLLHUP only once a writer came and went; before it opens, poll says nothing. */
                (void) poll(&p, 1, 100);
                k = read(fd, buf + n, sizeof buf - 1 - n);
                if (k > 0)
                        n += (size_t) k;
                else if (k == 0 && (p.revents & POLLHUP))
                        break;
                else
                        assert_true(k == 0 || errno == EAGAIN);
        }
        close(fd);
        buf[n] = 0;
        assert_int_equal(unlink(file), 0);
        assert_int_equal(rename(saved, file), 0);
        fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, n), (ssize_t) n);
        assert_int_equal(close(fd), 0);
        return strdup(buf);
}

static int teardown_dev_hold(void **state) {
        static const char * const names[] = { "reset", "driver_override" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *file = dev_file(names[i]), *saved = dev_file_held(names[i]);
                struct stat st;
                int fd;

                if (lstat(file, &st) < 0 || !S_ISFIFO(st.st_mode))
                        continue;
                fd = open(file, O_RDWR | O_NONBLOCK | O_CLOEXEC); /* lets a waiting open through */
                (void) unlink(file);
                (void) rename(saved, file);
                if (fd >= 0)
                        close(fd);
        }
        return 0;
}

/* One call (method, "t" flags or "st" for Detach) held at the FIFO name: meanwhile another caller's
 * ListNodeDevices and GetXMLDesc are answered and the device refuses other changes (busy); answered once
 * the write was taken. On the old code the write was made on the event loop: the other caller's calls
 * waited (timed out) behind it. */
static void held_change(Harness *h, const char *method, const char *file, const char *busy, const char *expect) {
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *vf = harness_nodedev_path(root, "pci_0000_03_10_2"), *xml = NULL, *written = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        static int answered;

        dev_hold(file);
        answered = 0;
        if (streq(method, "Detach"))
                assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, vf, ND, method, on_reply, &answered,
                                                     "st", "vfio-pci", UINT64_C(0)) >= 0);
        else
                assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, vf, ND, method, on_reply, &answered,
                                                     "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        assert_int_equal(list_count(plain, "phys_function", NULL), 2);
        xml = get_xml(plain, "pci_0000_03_10_2");
        assert_non_null(strstr(xml, "<name>pci_0000_03_10_2</name>"));
        harness_call_fails(root, ERR("DeviceBusy"), busy, vf, ND, "Reset", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), busy, vf, ND, "ReAttach", "t", UINT64_C(0));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(answered, 0);
        written = dev_take_and_release(file);
        assert_string_equal(written, expect);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        assert_int_equal(answered, 1);
}

static void test_changes_off_loop(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *log = NULL;

        held_change(h, "Reset", "reset", "being reset (reset (0000:03:10.2))", "1");
        held_change(h, "Detach", "driver_override", "being detached (detach (0000:03:10.2 to vfio-pci))", "vfio-pci");
        /* Answered once the registry was read again. */
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "vfio-pci");
        held_change(h, "ReAttach", "driver_override", "being re-attached (re-attach (0000:03:10.2))", "\n");
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(strstr(log, "uid 0: reset (0000:03:10.2) of node device 'pci_0000_03_10_2': done."));
        assert_non_null(strstr(log, "uid 0: re-attach (0000:03:10.2 back to igbvf) of node device 'pci_0000_03_10_2': done."));
}

/* SIGTERM while one change hangs in the kernel (Reset of 03:10.2, held at its FIFO) and another waits
 * behind it for the thread (Reset of 03:10.0): the waiting one is answered at once "not begun: virtbusd
 * is stopping" and writes nothing; the hung one, once virtbusd's stop has waited its bound, "still
 * running"; virtbusd exits. A change asked for meanwhile cannot begin. (On the old code neither was
 * answered: both callers got NoReply when virtbusd was gone.) */
static void test_stop_answers(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *vf = harness_nodedev_path(root, "pci_0000_03_10_2"),
                            *other = harness_nodedev_path(root, "pci_0000_03_10_0"), *other_reset = NULL,
                            *before = NULL, *after = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot_a = NULL, *slot_b = NULL;
        HarnessAnswer a = { .error = SD_BUS_ERROR_NULL }, b = { .error = SD_BUS_ERROR_NULL };

        assert_true(asprintf(&other_reset, "%s/bus/pci/devices/0000:03:10.0/reset", sysfs) > 0);
        before = harness_read_file(other_reset);
        dev_hold("reset");
        assert_true(sd_bus_call_method_async(root, &slot_a, HARNESS_SERVICE, vf, ND, "Reset", harness_on_answer, &a, "t",
                                             UINT64_C(0)) >= 0);
        assert_true(sd_bus_call_method_async(root, &slot_b, HARNESS_SERVICE, other, ND, "Reset", harness_on_answer, &b, "t",
                                             UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* Both taken (busy): the first in the thread, held; the second waiting for it. Busy is said as soon
         * as a change is queued, so the test waits until the thread has begun the first (on a loaded host
         * it may run later than the calls below are answered): a change not begun is answered "not begun"
         * at SIGTERM, as the second is. */
        harness_call_fails(root, ERR("DeviceBusy"), NULL, vf, ND, "Reset", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), NULL, other, ND, "Reset", "t", UINT64_C(0));
        wait_fifo_writer(harness_daemon_pid(h));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(a.answered, 0);
        assert_int_equal(b.answered, 0);

        assert_int_equal(kill(harness_daemon_pid(h), SIGTERM), 0);
        harness_answer_wait(root, &b, HARNESS_TIMEOUT_USEC);
        assert_int_equal(b.answered, -1);
        assert_string_equal(b.error.name, ERR("OperationFailed"));
        assert_non_null(strstr(b.error.message, "was not begun: virtbusd is stopping"));
        if (a.answered != 0) /* still hung */
                fail_msg("the change held in the kernel was answered before virtbusd gave up on it: %s",
                         a.error.message ?: "(a success)");
        harness_answer_wait(root, &a, HARNESS_TIMEOUT_USEC);
        assert_int_equal(a.answered, -1);
        assert_string_equal(a.error.name, ERR("OperationFailed"));
        assert_non_null(strstr(a.error.message, "still running"));
        assert_int_equal(harness_daemon_kill(h, 0), 0);
        after = harness_read_file(other_reset);
        assert_string_equal(before, after); /* nothing written */
        sd_bus_error_free(&a.error);
        sd_bus_error_free(&b.error);

        teardown_dev_hold(NULL);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");
}

static void test_domain_host_devices(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *dom = NULL, *before = NULL, *during = NULL, *after = NULL, *bad = NULL, *usb = NULL;

        /* VF 0 had a MAC and VLAN of its own: it must get them back. */
        harness_nodedev_call(root, "pci_0000_03_00_0", "ConfigureVirtualFunction", "usut", 0, "02:00:00:00:00:07", 7, UINT64_C(0));
        before = harness_fake_sysfs_vf(&fake, 0);
        assert_string_equal(before, "02:00:00:00:00:07 7\n");

        dom = harness_define_test_domain(root, "sriov-guest",
                            "<interface type='hostdev' managed='yes'>"
                            "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x0'/></source>"
                            "<mac address='52:54:00:aa:bb:01'/><vlan><tag id='42'/></vlan></interface>"
                            "<hostdev mode='subsystem' type='pci' managed='yes'>"
                            "<source><address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source></hostdev>");
        /* Group virtbus may start domains (the example rule), but not take host devices with them. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_VIRTBUS), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           "org.virtbus1.hostdev.assign", dom, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        assert_string_equal(driver_of(h, "pci_0000_03_10_0"), "igbvf");
        sd_bus_message_unref(harness_call_ok(root, dom, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        during = harness_fake_sysfs_vf(&fake, 0);
        assert_string_equal(during, "52:54:00:aa:bb:01 42\n");
        assert_string_equal(driver_of(h, "pci_0000_03_10_0"), "vfio-pci");
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "vfio-pci");
        sd_bus_message_unref(harness_call_ok(root, dom, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        after = harness_fake_sysfs_vf(&fake, 0);
        assert_string_equal(after, "02:00:00:00:00:07 7\n");
        assert_string_equal(driver_of(h, "pci_0000_03_10_0"), "igbvf");
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");

        /* Not a VF: refused, and nothing changed. */
        bad = harness_define_test_domain(root, "pf-guest",
                            "<hostdev mode='subsystem' type='pci' managed='yes'>"
                            "<source><address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source></hostdev>"
                            "<interface type='hostdev' managed='yes'>"
                            "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></source>"
                            "<mac address='52:54:00:aa:bb:02'/></interface>");
        harness_call_fails(root, ERR("NotSupported"), "not an SR-IOV virtual function", bad, DOMAIN_INTERFACE, "Start",
                           "t", UINT64_C(0));
        assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");
        assert_string_equal(driver_of(h, "pci_0000_03_00_0"), "igb");
        usb = harness_define_test_domain(root, "usb-guest",
                            "<interface type='hostdev'><source><address type='usb' bus='1' device='3'/></source>"
                            "<mac address='52:54:00:aa:bb:03'/></interface>");
        harness_call_fails(root, ERR("NotSupported"), "USB", usb, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
}

static void test_authorization(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *vf = harness_nodedev_path(root, "pci_0000_03_10_2"), *pf = harness_nodedev_path(root, "pci_0000_03_00_0");

        for (HarnessUser u = HARNESS_USER_PLAIN; u <= HARNESS_USER_VIRTBUS; u++) {
                sd_bus *bus = harness_bus_as(h, u);

                /* The example rule grants domains and networks to group virtbus, none of these. */
                harness_call_fails(bus, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.nodedev.manage",
                                   vf, ND, "Detach", "st", "", UINT64_C(0));
                harness_call_fails(bus, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, vf, ND, "Reset", "t",
                                   UINT64_C(0));
                harness_call_fails(bus, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.sriov.configure",
                                   pf, ND, "SetVirtualFunctions", "ut", 3, UINT64_C(0));
                harness_call_fails(bus, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, pf, ND,
                                   "ConfigureVirtualFunction", "usut", 0, "02:00:00:00:00:99", 0, UINT64_C(0));
                /* Nothing happened. */
                assert_string_equal(driver_of(h, "pci_0000_03_10_2"), "igbvf");
                assert_int_equal(list_count(root, "phys_function", NULL), 2);
        }
        /* root is always authorized. */
        harness_nodedev_call(root, "pci_0000_03_10_2", "Detach", "st", "", UINT64_C(0));
        harness_nodedev_call(root, "pci_0000_03_10_2", "ReAttach", "t", UINT64_C(0));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_enumeration),
                cmocka_unit_test(test_detach_reattach),
                cmocka_unit_test(test_virtual_functions),
                cmocka_unit_test_teardown(test_virtual_functions_off_loop, teardown_numvfs),
                cmocka_unit_test_teardown(test_changes_off_loop, teardown_dev_hold),
                cmocka_unit_test_teardown(test_stop_answers, teardown_dev_hold),
                cmocka_unit_test_teardown(test_configure_vf_off_loop, teardown_totalvfs),
                cmocka_unit_test(test_domain_host_devices),
                cmocka_unit_test(test_authorization),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group_on_fake_sysfs(tests, &fake, "nodedev", NULL);
}
