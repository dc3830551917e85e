/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AttachDevice, DetachDevice, UpdateDevice over the bus, on the test driver: every device kind live and
 * in the saved definition, conflicts and errors, the device signals, the simulated guest refusing or
 * ignoring an unplug (<test:hotplug> metadata, see src/drivers/test-driver.c), authorization with the
 * real polkitd, and the device XML of libvirt's hotplug tests (from the corpus directory that tests/shared-dir.sh names).
 *
 * This machine has no SR-IOV or VFIO: like test-nodedev, virtbusd runs on a copy of the FAKE sysfs tree
 * tests/data/sysfs/host with tests/helpers/fake-sysfs-kernel acting as the kernel, so that a live PCI
 * hostdev is really taken from the host (bound to vfio-pci) and given back; its VFs 0000:03:10.0 and
 * 0000:03:10.2 are the host devices used here. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tests/shared-dir.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
#define LIVE UINT64_C(1)
#define CONFIG UINT64_C(2)
#define TEST_NS "urn:virtbus:test-driver"
static HarnessFakeSysfs fake;
#define sysfs (fake.root)

/* The driver a PCI device of the fake tree is bound to ("" if none). */
static char *driver_of(const char *address) {
        _cleanup_free_ char *link = NULL;
        char target[4096];
        ssize_t n;

        assert_true(asprintf(&link, "%s/bus/pci/devices/%s/driver", sysfs, address) >= 0);
        n = readlink(link, target, sizeof target - 1);
        if (n < 0)
                return strdup("");
        target[n] = 0;
        return strdup(basename(target));
}

#define CORPUS_DIR "corpus/libvirt/device/input/qemuhotplugtestdevices"

static char *domain_xml(const char *name, const char *metadata, const char *devices) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='test'>\n"
                             "  <name>%s</name>\n"
                             "  <memory unit='MiB'>128</memory>\n"
                             "%s%s%s"
                             "  <os><type arch='x86_64'>hvm</type></os>\n"
                             "  <devices>%s</devices>\n"
                             "</domain>\n",
                             name, metadata ? "  <metadata>" : "", metadata ?: "", metadata ? "</metadata>\n" : "",
                             devices ?: "") >= 0);
        return x;
}

static char *define(sd_bus *bus, const char *name, const char *metadata, const char *devices) {
        _cleanup_free_ char *xml = domain_xml(name, metadata, devices);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "DefineDomain", "st", xml, UINT64_C(0));
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

static char *define_running(sd_bus *bus, const char *name, const char *metadata, const char *devices) {
        char *path = define(bus, name, metadata, devices);
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        return path;
}

static void remove_domain(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        (void) sd_bus_call_method(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "Destroy", &e, NULL, "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
}

static void call_dev(sd_bus *bus, const char *path, const char *method, const char *xml, uint64_t flags) {
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, method, "st", xml, flags));
}

static void call_dev_fails(sd_bus *bus, const char *path, const char *method, const char *xml, uint64_t flags,
                           const char *error, const char *part) {
        harness_call_fails(bus, error, part, path, DOMAIN_INTERFACE, method, "st", xml, flags);
}

/* Whether the definition (flags as GetXMLDesc) contains text. */
static bool xml_has(sd_bus *bus, const char *path, uint64_t flags, const char *text) {
        _cleanup_free_ char *xml = harness_domain_xml(bus, path, flags);
        return strstr(xml, text) != NULL;
}

#define ASSERT_XML(bus, path, flags, text, expected)                                                      \
        do {                                                                                             \
                if (xml_has(bus, path, flags, text) != (expected)) {                                     \
                        _cleanup_free_ char *_x = harness_domain_xml(bus, path, flags);                             \
                        fail_msg("'%s' %s in %s XML:\n%s", text, (expected) ? "missing" : "unexpected",     \
                                 (flags) ? "saved" : "live", _x);                                        \
                }                                                                                        \
        } while (false)

/* The next signal of the watch, read as strings; fails the test if none comes. */
static void expect_signal(HarnessWatch *w, const char *alias, const char *reason_part) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        const char *a, *reason;

        if (!s)
                fail_msg("no signal for '%s'", alias);
        assert_int_equal(sd_bus_message_read(s, "s", &a), 1);
        assert_string_equal(a, alias);
        if (reason_part) {
                assert_int_equal(sd_bus_message_read(s, "s", &reason), 1);
                if (!strstr(reason, reason_part))
                        fail_msg("'%s' not in '%s'", reason_part, reason);
        }
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_message **ret = userdata;
        *ret = sd_bus_message_ref(m);
        return 0;
}

/* One of each kind the issue lists: its XML, text that shows in the definition once attached, the alias
 * it gets live, and whether it gets a guest PCI address. */
static const struct {
        const char *xml;
        const char *shows;
        const char *alias;
        bool pci;
} kinds[] = {
        { "<disk type='file' device='disk'><source file='/var/lib/x.img'/><target dev='vdb' bus='virtio'/></disk>",
          "<target dev='vdb' bus='virtio'/>", "virtio-disk1", true },
        { "<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sdc' bus='sata'/><readonly/></disk>",
          "<target dev='sdc' bus='sata'/>", "sata-disk2", false },
        { "<interface type='network'><mac address='52:54:00:01:02:03'/><source network='default'/><model type='virtio'/></interface>",
          "<mac address='52:54:00:01:02:03'/>", "net0", true },
        { "<interface type='bridge'><mac address='52:54:00:01:02:04'/><source bridge='br0'/></interface>",
          "<source bridge='br0'/>", "net0", true },
        { "<interface type='user'><mac address='52:54:00:01:02:05'/></interface>", "52:54:00:01:02:05", "net0", true },
        { "<interface type='ethernet'><mac address='52:54:00:01:02:06'/><target dev='tap7'/></interface>",
          "<target dev='tap7'/>", "net0", true },
        { "<interface type='direct'><mac address='52:54:00:01:02:07'/><source dev='eth0' mode='bridge'/></interface>",
          "<source dev='eth0' mode='bridge'/>", "net0", true },
        { "<interface type='mcast'><mac address='52:54:00:01:02:09'/><source address='230.0.0.1' port='5558'/></interface>",
          "<source address='230.0.0.1' port='5558'/>", "net0", true },
        { "<interface type='server'><mac address='52:54:00:01:02:0a'/><source address='192.168.0.1' port='5558'/></interface>",
          "52:54:00:01:02:0a", "net0", true },
        { "<interface type='client'><mac address='52:54:00:01:02:0b'/><source address='192.168.0.1' port='5558'/></interface>",
          "52:54:00:01:02:0b", "net0", true },
        { "<interface type='udp'><mac address='52:54:00:01:02:0c'/><source address='127.0.0.1' port='11111'>"
          "<local address='127.0.0.1' port='22222'/></source></interface>", "<local address='127.0.0.1' port='22222'/>", "net0", true },
        { "<interface type='vhostuser'><mac address='52:54:00:01:02:0d'/><source type='unix' path='/tmp/vb-vhost.sock' mode='server'/>"
          "<model type='virtio'/></interface>", "/tmp/vb-vhost.sock", "net0", true },
        { "<interface type='hostdev' managed='yes'><mac address='52:54:00:01:02:08'/><source>"
          "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x0'/></source></interface>",
          "bus='0x03' slot='0x10' function='0x0'", "hostdev0", true },
        { "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/></source></hostdev>",
          "bus='0x03' slot='0x10' function='0x2'", "hostdev0", true },
        { "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0104'/></source></hostdev>",
          "<vendor id='0x1d6b'/>", "hostdev0", false },
        { "<controller type='usb' index='1' model='qemu-xhci'/>", "model='qemu-xhci'", "usb1", true },
        { "<controller type='virtio-serial' index='0'/>", "type='virtio-serial'", "virtio-serial0", true },
        { "<input type='tablet' bus='usb'/>", "type='tablet' bus='usb'", "input0", false },
        { "<serial type='pty'><target port='1'/></serial>", "<serial type='pty'>", "serial0", false },
        { "<console type='pty'><target type='virtio' port='1'/></console>", "<target type='virtio' port='1'/>", "console0", false },
        { "<channel type='unix'><source mode='bind' path='/tmp/vb-test-agent'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
          "org.qemu.guest_agent.0", "channel0", false },
        { "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>", "/dev/urandom", "rng0", true },
        { "<watchdog model='i6300esb' action='poweroff'/>", "action='poweroff' model='i6300esb'", "watchdog0", true },
        { "<filesystem type='mount' accessmode='passthrough'><source dir='/srv/share'/><target dir='share'/></filesystem>",
          "<target dir='share'/>", "fs0", true },
};

static void test_introspection(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "intro", NULL, NULL);

        harness_assert_introspection(bus, path, "interfaces/org.virtbus1.Domain.xml");
        remove_domain(bus, path);
}

static void test_config_every_kind(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "cfg-kinds", NULL, NULL);

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                /* flags 0 on a shut-off domain: the saved definition */
                call_dev(bus, path, "AttachDevice", kinds[i].xml, 0);
                ASSERT_XML(bus, path, 1, kinds[i].shows, true);
                ASSERT_XML(bus, path, 1, "<alias", false); /* aliases are for running guests */
                if (kinds[i].pci)
                        ASSERT_XML(bus, path, 1, "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>", true);
                call_dev(bus, path, "DetachDevice", kinds[i].xml, CONFIG);
                ASSERT_XML(bus, path, 1, kinds[i].shows, false);
        }
        /* And every kind at once, kept across a restart of virtbusd. */
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (!strstr(kinds[i].xml, "usb' index"))
                        call_dev(bus, path, "AttachDevice", kinds[i].xml, CONFIG);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (!strstr(kinds[i].xml, "usb' index"))
                        ASSERT_XML(bus, path, 1, kinds[i].shows, true);
        remove_domain(bus, path);
}

static void test_live_every_kind(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_running(bus, "live-kinds", NULL,
                                                   "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"
                                                   "<disk type='file' device='disk'><source file='/b.img'/><target dev='sdb' bus='sata'/></disk>");
        _cleanup_(harness_watch_freep) HarnessWatch *added = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceAdded");
        _cleanup_(harness_watch_freep) HarnessWatch *removed = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceRemoved");

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                _cleanup_free_ char *alias_xml = NULL;

                assert_true(asprintf(&alias_xml, "<alias name='%s'/>", kinds[i].alias) >= 0);
                /* flags 0 on a running domain: live only */
                call_dev(bus, path, "AttachDevice", kinds[i].xml, 0);
                expect_signal(added, kinds[i].alias, NULL);
                ASSERT_XML(bus, path, 0, kinds[i].shows, true);
                ASSERT_XML(bus, path, 0, alias_xml, true);
                ASSERT_XML(bus, path, 1, kinds[i].shows, false);
                if (kinds[i].pci) /* vda got slot 3 when the domain started */
                        ASSERT_XML(bus, path, 0, "slot='0x04'", true);
                /* Replies once the simulated guest released the device, after DeviceRemoved. */
                call_dev(bus, path, "DetachDevice", kinds[i].xml, LIVE);
                expect_signal(removed, kinds[i].alias, NULL);
                ASSERT_XML(bus, path, 0, kinds[i].shows, false);
                ASSERT_XML(bus, path, 0, alias_xml, false);
        }
        remove_domain(bus, path);
}

static void test_live_and_config(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_running(bus, "both", NULL, NULL);
        const char *nic = "<interface type='network'><mac address='52:54:00:0b:0b:0b'/><source network='default'/></interface>";

        call_dev(bus, path, "AttachDevice", nic, LIVE | CONFIG);
        ASSERT_XML(bus, path, 0, "<alias name='net0'/>", true);
        ASSERT_XML(bus, path, 0, "slot='0x03'", true);
        ASSERT_XML(bus, path, 1, "52:54:00:0b:0b:0b", true);
        ASSERT_XML(bus, path, 1, "slot='0x03'", true); /* the same guest address in both */
        ASSERT_XML(bus, path, 1, "<alias", false);
        /* Found by alias in the live definition, by MAC in both. */
        call_dev_fails(bus, path, "DetachDevice", "<interface type='network'><alias name='net0'/></interface>", LIVE | CONFIG,
                       ERR("NoSuchDevice"), NULL);
        call_dev(bus, path, "DetachDevice", "<interface type='network'><mac address='52:54:00:0B:0B:0B'/></interface>", LIVE | CONFIG);
        ASSERT_XML(bus, path, 0, "52:54:00:0b:0b:0b", false);
        ASSERT_XML(bus, path, 1, "52:54:00:0b:0b:0b", false);

        /* A user alias is kept in both. */
        call_dev(bus, path, "AttachDevice", "<watchdog model='ib700' action='reset'><alias name='ua-dog'/></watchdog>", LIVE | CONFIG);
        ASSERT_XML(bus, path, 0, "<alias name='ua-dog'/>", true);
        ASSERT_XML(bus, path, 1, "<alias name='ua-dog'/>", true);
        call_dev(bus, path, "DetachDevice", "<watchdog model='ib700'><alias name='ua-dog'/></watchdog>", LIVE | CONFIG);
        ASSERT_XML(bus, path, 1, "ua-dog", false);

        /* The live definition survives a restart of virtbusd. */
        call_dev(bus, path, "AttachDevice", "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>", LIVE);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        ASSERT_XML(bus, path, 0, "<alias name='rng0'/>", true);
        call_dev(bus, path, "DetachDevice", "<rng model='virtio'><backend model='random'/><alias name='rng0'/></rng>", LIVE);
        ASSERT_XML(bus, path, 0, "rng0", false);
        remove_domain(bus, path);
}

/* A NIC on a network gets its port when plugged in (the live XML shows the bridge) and gives it back
 * when the guest released it: the network can then be stopped, which it refuses while in use. */
static void test_network_ports(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = define_running(bus, "ports", NULL, NULL), *net = NULL;
        const char *p, *nic = "<interface type='network'><mac address='52:54:00:0c:0c:01'/><source network='devports'/></interface>";

        reply = harness_call_ok(bus, M, "DefineNetwork", "st",
                                "<network><name>devports</name><bridge name='vbdevbr0'/><forward mode='nat'/>"
                                "<ip address='192.168.177.1' netmask='255.255.255.0'/></network>", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        net = strdup(p);
        /* Not active: the NIC cannot be plugged in, and nothing changed. */
        call_dev_fails(bus, path, "AttachDevice", nic, LIVE | CONFIG, ERR("InvalidState"), "'devports' is not active");
        ASSERT_XML(bus, path, 1, "52:54:00:0c:0c:01", false);
        sd_bus_message_unref(harness_call_ok(bus, net, "org.virtbus1.Network", "Start", "t", UINT64_C(0)));

        call_dev(bus, path, "AttachDevice", nic, LIVE);
        ASSERT_XML(bus, path, 0, "<source network='devports' bridge='vbdevbr0'/>", true);
        harness_call_fails(bus, ERR("InvalidState"), "in use", net, "org.virtbus1.Network", "Stop", "t", UINT64_C(0));
        /* Found by what the user wrote, although the live XML says more. */
        call_dev(bus, path, "DetachDevice", nic, LIVE);
        sd_bus_message_unref(harness_call_ok(bus, net, "org.virtbus1.Network", "Stop", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, net, "org.virtbus1.Network", "Undefine", "t", UINT64_C(0)));

        /* A pool of VFs (the fake NIC's PF enp3s0f0): the NIC becomes one of them, taken from the host; the
         * user goes on calling it type='network' to update and detach it. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *r2 = NULL;
                _cleanup_free_ char *pool = NULL, *drv = NULL;
                const char *vf = "<interface type='network'><mac address='52:54:00:0c:0c:02'/><source network='devpool'/></interface>";

                r2 = harness_call_ok(bus, M, "DefineNetwork", "st",
                                     "<network><name>devpool</name><forward mode='hostdev' managed='yes'><pf dev='enp3s0f0'/></forward></network>",
                                     UINT64_C(0));
                assert_int_equal(sd_bus_message_read(r2, "o", &p), 1);
                pool = strdup(p);
                sd_bus_message_unref(harness_call_ok(bus, pool, "org.virtbus1.Network", "Start", "t", UINT64_C(0)));
                call_dev(bus, path, "AttachDevice", vf, LIVE);
                ASSERT_XML(bus, path, 0, "<interface type='hostdev' managed='yes'>", true);
                ASSERT_XML(bus, path, 0, "bus='0x03' slot='0x10' function='0x0'", true);
                drv = driver_of("0000:03:10.0");
                assert_string_equal(drv, "vfio-pci");
                call_dev(bus, path, "UpdateDevice",
                         "<interface type='network'><mac address='52:54:00:0c:0c:02'/><source network='devpool'/><link state='down'/></interface>", LIVE);
                ASSERT_XML(bus, path, 0, "<link state='down'/>", true);
                ASSERT_XML(bus, path, 0, "<interface type='hostdev' managed='yes'>", true);
                call_dev(bus, path, "DetachDevice", vf, LIVE);
                ASSERT_XML(bus, path, 0, "52:54:00:0c:0c:02", false);
                free(drv);
                drv = driver_of("0000:03:10.0");
                assert_string_not_equal(drv, "vfio-pci");
                sd_bus_message_unref(harness_call_ok(bus, pool, "org.virtbus1.Network", "Stop", "t", UINT64_C(0)));
                sd_bus_message_unref(harness_call_ok(bus, pool, "org.virtbus1.Network", "Undefine", "t", UINT64_C(0)));
        }
        remove_domain(bus, path);
}

static void test_flags_and_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *off = define(bus, "errs-off", NULL, NULL), *transient = NULL, *txml = domain_xml("errs-t", NULL, NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *p, *rng = "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>";

        call_dev_fails(bus, off, "AttachDevice", rng, LIVE, ERR("InvalidState"), "'errs-off' is not running");
        call_dev_fails(bus, off, "DetachDevice", rng, LIVE, ERR("InvalidState"), "not running");
        call_dev_fails(bus, off, "UpdateDevice", rng, LIVE | CONFIG, ERR("InvalidState"), "not running");
        call_dev_fails(bus, off, "AttachDevice", rng, 4, SD_BUS_ERROR_INVALID_ARGS, "Unknown flags 0x4");
        call_dev_fails(bus, off, "AttachDevice", "", CONFIG, SD_BUS_ERROR_INVALID_ARGS, "empty");
        call_dev_fails(bus, off, "AttachDevice", "<rng model='virtio'>", CONFIG, ERR("InvalidXML"), NULL);
        call_dev_fails(bus, off, "AttachDevice", "<rng model='nonsense'><backend model='random'/></rng>", CONFIG, ERR("InvalidXML"), NULL);
        call_dev_fails(bus, off, "AttachDevice", "<graphics type='vnc' port='-1'/>", CONFIG, ERR("NotSupported"), "'graphics'");
        call_dev_fails(bus, off, "DetachDevice", rng, CONFIG, ERR("NoSuchDevice"), "has no rng");
        call_dev_fails(bus, off, "UpdateDevice", rng, CONFIG, ERR("NoSuchDevice"), NULL);

        reply = harness_call_ok(bus, M, "CreateDomain", "st", txml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        transient = strdup(p);
        call_dev_fails(bus, transient, "AttachDevice", rng, CONFIG, ERR("InvalidState"), "transient");
        call_dev(bus, transient, "AttachDevice", rng, 0); /* flags 0 on a running transient domain: live */
        ASSERT_XML(bus, transient, 0, "<alias name='rng0'/>", true);
        sd_bus_message_unref(harness_call_ok(bus, transient, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        ASSERT_XML(bus, off, 1, "<rng", false);
        remove_domain(bus, off);
}

static void test_conflicts(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *hostdev = "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='3' slot='0x10' function='2'/></source></hostdev>";
        _cleanup_free_ char *devs = NULL, *a = NULL, *b = NULL, *before_live = NULL, *before_cfg = NULL, *after = NULL;

        assert_true(asprintf(&devs, "%s", "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/>"
                                    "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></disk>"
                                    "<interface type='user'><mac address='52:54:00:cc:cc:cc'/></interface>") >= 0);
        /* (Started without the hostdev: Start prepares the host's real PCI devices, and this one is made up.) */
        a = define_running(bus, "conflict-a", NULL, devs);
        b = define_running(bus, "conflict-b", NULL, NULL);
        call_dev(bus, a, "AttachDevice", hostdev, LIVE | CONFIG);
        before_live = harness_domain_xml(bus, a, 0);
        before_cfg = harness_domain_xml(bus, a, 1);

        call_dev_fails(bus, a, "AttachDevice", "<disk type='file'><source file='/other.img'/><target dev='vda' bus='virtio'/></disk>",
                       LIVE | CONFIG, ERR("AlreadyExists"), "a disk with target 'vda'");
        call_dev_fails(bus, a, "AttachDevice", "<interface type='network'><mac address='52:54:00:CC:CC:CC'/><source network='default'/></interface>",
                       CONFIG, ERR("AlreadyExists"), "MAC address '52:54:00:cc:cc:cc'");
        call_dev_fails(bus, a, "AttachDevice",
                       "<rng model='virtio'><backend model='random'>/dev/urandom</backend><address type='pci' domain='0' bus='0' slot='7' function='0'/></rng>",
                       LIVE, ERR("DeviceBusy"), "pci 0000:00:07.0 of domain 'conflict-a' is already used by disk 'vda'");
        call_dev_fails(bus, a, "AttachDevice", hostdev, LIVE, ERR("DeviceBusy"), "'0000:03:10.2' is already given to domain 'conflict-a'");
        call_dev_fails(bus, a, "AttachDevice",
                       "<interface type='hostdev'><source><address type='pci' domain='0' bus='3' slot='0x10' function='2'/></source></interface>",
                       CONFIG, ERR("DeviceBusy"), "'0000:03:10.2'");
        /* Another running domain has it: named in the error. */
        call_dev_fails(bus, b, "AttachDevice", hostdev, LIVE, ERR("DeviceBusy"), "already given to domain 'conflict-a'");
        /* The saved definition of a shut-off domain may name it (it's not in use). */
        call_dev(bus, b, "AttachDevice", hostdev, CONFIG);
        /* Nothing changed in a. */
        after = harness_domain_xml(bus, a, 0);
        assert_string_equal(after, before_live);
        free(after);
        after = harness_domain_xml(bus, a, 1);
        assert_string_equal(after, before_cfg);

        /* Live, the host gave it up (managed='yes': to vfio-pci); once a released it, it went back. */
        {
                _cleanup_free_ char *drv = driver_of("0000:03:10.2");
                assert_string_equal(drv, "vfio-pci");
        }
        call_dev(bus, a, "DetachDevice", hostdev, LIVE);
        {
                _cleanup_free_ char *drv = driver_of("0000:03:10.2");
                assert_string_not_equal(drv, "vfio-pci");
        }
        /* Once a released it, b may have it. */
        call_dev(bus, b, "AttachDevice", hostdev, LIVE);
        sd_bus_message_unref(harness_call_ok(bus, b, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        call_dev(bus, b, "DetachDevice", hostdev, CONFIG);
        remove_domain(bus, a);
        remove_domain(bus, b);
}

static void test_matching(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "match", NULL,
                                           "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>"
                                           "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
                                           "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>");

        call_dev_fails(bus, path, "DetachDevice", "<disk type='file'><source file='/b.img'/><target dev='vda'/></disk>", CONFIG,
                       ERR("NoSuchDevice"), "attribute 'file' of <source> is '/b.img' in the XML given but '/a.img' in the domain");
        call_dev_fails(bus, path, "DetachDevice", "<rng model='virtio'><backend model='random'/></rng>", CONFIG,
                       SD_BUS_ERROR_INVALID_ARGS, "2 devices of domain 'match' match");
        call_dev(bus, path, "DetachDevice", "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>", CONFIG);
        ASSERT_XML(bus, path, 1, "/dev/random", false);
        ASSERT_XML(bus, path, 1, "/dev/urandom", true);
        call_dev(bus, path, "DetachDevice", "<disk type='file'><target dev='vda'/></disk>", CONFIG);
        ASSERT_XML(bus, path, 1, "vda", false);
        remove_domain(bus, path);
}

static void test_guest_refuses_or_ignores(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_running(bus, "stubborn",
                "<test:hotplug xmlns:test='" TEST_NS "'>"
                "<test:unplug alias='ua-refuse' answer='refuse' reason='the guest is busy'/>"
                "<test:unplug alias='ua-ignore' answer='ignore'/>"
                "<test:unplug alias='ua-late' delay-ms='1500'/>"
                "<test:plug alias='ua-noplug' answer='refuse'/></test:hotplug>", NULL);
        _cleanup_(harness_watch_freep) HarnessWatch *failed = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceRemovalFailed");
        _cleanup_(harness_watch_freep) HarnessWatch *removed = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceRemoved");
        const char *refuse = "<watchdog model='ib700' action='reset'><alias name='ua-refuse'/></watchdog>",
                   *ignore = "<rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='ua-ignore'/></rng>";

        call_dev(bus, path, "AttachDevice", refuse, LIVE | CONFIG);
        call_dev_fails(bus, path, "DetachDevice", refuse, LIVE | CONFIG, ERR("OperationFailed"), "the guest is busy");
        expect_signal(failed, "ua-refuse", "the guest is busy");
        ASSERT_XML(bus, path, 0, "<alias name='ua-refuse'/>", true);
        ASSERT_XML(bus, path, 1, "<alias name='ua-refuse'/>", true); /* the saved definition stays consistent */
        /* Only from the saved definition: no guest involved. */
        call_dev(bus, path, "DetachDevice", refuse, CONFIG);
        ASSERT_XML(bus, path, 1, "<alias name='ua-refuse'/>", false);
        ASSERT_XML(bus, path, 0, "<alias name='ua-refuse'/>", true);

        /* A guest that never answers: Timeout (virtbusd runs with --device-removal-timeout=1), nothing
         * changed, and asking again is allowed. */
        call_dev(bus, path, "AttachDevice", ignore, LIVE | CONFIG);
        call_dev_fails(bus, path, "DetachDevice", ignore, LIVE | CONFIG, ERR("Timeout"), "did not release device 'ua-ignore'");
        ASSERT_XML(bus, path, 0, "<alias name='ua-ignore'/>", true);
        ASSERT_XML(bus, path, 1, "<alias name='ua-ignore'/>", true);
        call_dev_fails(bus, path, "DetachDevice", ignore, LIVE, ERR("Timeout"), NULL);
        assert_null(harness_watch_next(removed, 0));

        /* A guest that answers after the wait ran out: Timeout and nothing changed; then DeviceRemoved, and
         * the device leaves the live definition (the saved one keeps it: that call failed). */
        {
                const char *late = "<input type='keyboard' bus='usb'><alias name='ua-late'/></input>";

                call_dev(bus, path, "AttachDevice", late, LIVE | CONFIG);
                call_dev_fails(bus, path, "DetachDevice", late, LIVE | CONFIG, ERR("Timeout"), "may still release it");
                ASSERT_XML(bus, path, 0, "<alias name='ua-late'/>", true);
                expect_signal(removed, "ua-late", NULL);
                ASSERT_XML(bus, path, 0, "<alias name='ua-late'/>", false);
                ASSERT_XML(bus, path, 1, "<alias name='ua-late'/>", true);
        }

        /* A device the guest won't take: nothing saved either. */
        call_dev_fails(bus, path, "AttachDevice", "<input type='mouse' bus='usb'><alias name='ua-noplug'/></input>", LIVE | CONFIG,
                       ERR("OperationFailed"), "refused device 'ua-noplug'");
        ASSERT_XML(bus, path, 0, "<alias name='ua-noplug'/>", false);
        ASSERT_XML(bus, path, 1, "<alias name='ua-noplug'/>", false);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        ASSERT_XML(bus, path, 1, "<alias name='ua-noplug'/>", false);
        ASSERT_XML(bus, path, 1, "<alias name='ua-ignore'/>", true);

        /* The domain stops while a detach waits: the caller learns it (InvalidState, not Timeout). */
        {
                _cleanup_(sd_bus_unrefp) sd_bus *other = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;

                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &other), 0);
                assert_int_equal(sd_bus_message_new_method_call(other, &call, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "DetachDevice"), 0);
                assert_int_equal(sd_bus_message_append(call, "st", ignore, LIVE), 1);
                assert_int_equal(sd_bus_call_async(other, NULL, call, on_reply, &reply, 0), 1);
                assert_true(sd_bus_flush(other) >= 0);
                usleep(100 * 1000); /* either order ends in InvalidState: "stopped" or "not running" */
                sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
                for (int i = 0; !reply && i < 200; i++)
                        if (sd_bus_process(other, NULL) == 0)
                                (void) sd_bus_wait(other, 100 * HARNESS_USEC_PER_MSEC);
                assert_non_null(reply);
                assert_true(sd_bus_message_is_method_error(reply, ERR("InvalidState")));
        }
        remove_domain(bus, path);
}

static void test_update(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_running(bus, "upd", NULL,
                "<disk type='file' device='cdrom'><source file='/old.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>"
                "<interface type='network'><mac address='52:54:00:dd:dd:dd'/><source network='default'/><model type='virtio'/></interface>"
                "<watchdog model='ib700' action='reset'/>");

        /* cdrom media change: live only, then both */
        call_dev(bus, path, "UpdateDevice", "<disk type='file' device='cdrom'><source file='/new.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>", LIVE);
        ASSERT_XML(bus, path, 0, "/new.iso", true);
        ASSERT_XML(bus, path, 1, "/old.iso", true);
        call_dev(bus, path, "UpdateDevice", "<disk type='file' device='cdrom'><source file='/newer.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>", LIVE | CONFIG);
        ASSERT_XML(bus, path, 0, "/newer.iso", true);
        ASSERT_XML(bus, path, 1, "/newer.iso", true);
        /* eject */
        call_dev(bus, path, "UpdateDevice", "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>", LIVE);
        ASSERT_XML(bus, path, 0, "/newer.iso", false);
        /* Not changeable live. */
        call_dev_fails(bus, path, "UpdateDevice", "<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='hdc' bus='sata'/><readonly/></disk>",
                       LIVE, ERR("NotSupported"), "attribute 'bus' of <target>");
        /* interface link state and bandwidth */
        call_dev(bus, path, "UpdateDevice",
                 "<interface type='network'><mac address='52:54:00:dd:dd:dd'/><source network='default'/><model type='virtio'/>"
                 "<link state='down'/><bandwidth><inbound average='1000'/></bandwidth></interface>", LIVE);
        ASSERT_XML(bus, path, 0, "<link state='down'/>", true);
        ASSERT_XML(bus, path, 0, "<inbound average='1000'/>", true);
        ASSERT_XML(bus, path, 0, "<alias name='net0'/>", true); /* kept from the device it replaced */
        call_dev_fails(bus, path, "UpdateDevice", "<interface type='network'><mac address='52:54:00:dd:dd:dd'/><source network='other'/><model type='virtio'/></interface>",
                       LIVE, ERR("NotSupported"), "attribute 'network' of <source>");
        call_dev_fails(bus, path, "UpdateDevice", "<interface type='network'><mac address='52:54:00:dd:dd:01'/></interface>",
                       LIVE, ERR("NoSuchDevice"), NULL);
        /* other kinds: only the saved definition */
        call_dev_fails(bus, path, "UpdateDevice", "<watchdog model='ib700' action='poweroff'/>", LIVE, ERR("NotSupported"), "detach and attach");
        call_dev(bus, path, "UpdateDevice", "<watchdog model='ib700' action='poweroff'/>", CONFIG);
        ASSERT_XML(bus, path, 1, "action='poweroff'", true);
        ASSERT_XML(bus, path, 0, "action='poweroff'", false);
        remove_domain(bus, path);
}

/* Graphics are found by type; live, only passwords change. */
static void test_update_graphics(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_running(bus, "screen", NULL, "<graphics type='vnc' port='5931' autoport='no' listen='127.0.0.1'/>");
        _cleanup_free_ char *secure = NULL;

        call_dev(bus, path, "UpdateDevice", "<graphics type='vnc' port='5931' autoport='no' listen='127.0.0.1' passwd='s3cret'/>", LIVE);
        secure = harness_domain_xml(bus, path, 2);
        assert_non_null(strstr(secure, "passwd='s3cret'"));
        ASSERT_XML(bus, path, 0, "s3cret", false); /* not without the secure flag */
        call_dev_fails(bus, path, "UpdateDevice", "<graphics type='vnc' port='5932' autoport='no'/>", LIVE, ERR("NotSupported"),
                       "attribute 'port' of <graphics> is '5932'");
        call_dev_fails(bus, path, "UpdateDevice", "<graphics type='spice' port='5931'/>", LIVE, ERR("NoSuchDevice"), "graphics 'spice'");
        call_dev_fails(bus, path, "AttachDevice", "<graphics type='spice'/>", LIVE, ERR("NotSupported"), NULL);
        call_dev(bus, path, "UpdateDevice", "<graphics type='vnc' port='5932' autoport='no'/>", CONFIG);
        ASSERT_XML(bus, path, 1, "port='5932'", true);
        remove_domain(bus, path);
}

static void test_authorization(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN),
               *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *path = define_running(root, "authz", NULL, NULL);
        const char *nic = "<interface type='network'><mac address='52:54:00:ee:ee:01'/><source network='default'/></interface>",
                   *hostdev = "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='3' slot='0x10' function='0'/></source></hostdev>",
                   *granted = "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='3' slot='0x10' function='2'/></source></hostdev>",
                   *vf = "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0' bus='3' slot='0x10' function='2'/></source></interface>";

        /* Group virtbus (the example rule): a NIC yes, a host device no. */
        call_dev(member, path, "AttachDevice", nic, LIVE | CONFIG);
        call_dev_fails(member, path, "AttachDevice", hostdev, LIVE, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                       "org.virtbus1.hostdev.assign");
        call_dev_fails(member, path, "AttachDevice", vf, LIVE, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                       "org.virtbus1.hostdev.assign");
        ASSERT_XML(root, path, 0, "<hostdev", false);
        ASSERT_XML(root, path, 0, "<interface type='hostdev'", false);
        /* An interface on a network of host devices (forward mode hostdev) is a host device too. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(root, M, "DefineNetwork", "st",
                        "<network><name>authz-vfs</name><forward mode='hostdev' managed='yes'><pf dev='enp9s0f0'/></forward></network>",
                        UINT64_C(0));
                const char *net;

                call_dev_fails(member, path, "AttachDevice", "<interface type='network'><source network='authz-vfs'/></interface>", CONFIG,
                               SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.hostdev.assign");
                call_dev(root, path, "AttachDevice", "<interface type='network'><mac address='52:54:00:ee:ee:02'/><source network='authz-vfs'/></interface>", CONFIG);
                call_dev(root, path, "DetachDevice", "<interface type='network'><mac address='52:54:00:ee:ee:02'/></interface>", CONFIG);
                assert_int_equal(sd_bus_message_read(reply, "o", &net), 1);
                sd_bus_message_unref(harness_call_ok(root, net, "org.virtbus1.Network", "Undefine", "t", UINT64_C(0)));
        }
        /* Unprivileged: not even a NIC. */
        call_dev_fails(plain, path, "AttachDevice", "<interface type='user'/>", LIVE, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                       "org.virtbus1.domain.manage");
        call_dev_fails(plain, path, "DetachDevice", nic, LIVE, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
        /* A hostdev given by root stays out of reach for the member, also for removal. */
        call_dev(root, path, "AttachDevice", hostdev, LIVE);
        call_dev_fails(member, path, "DetachDevice", hostdev, LIVE, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
        call_dev(member, path, "DetachDevice", nic, LIVE | CONFIG);

        /* The details name the domain and the host device: a rule may grant one device. */
        assert_int_equal(harness_polkit_add_rules(h, "60-virtbus-test-devices.rules",
                "polkit.addRule(function(action, subject) {\n"
                "        if (action.id == 'org.virtbus1.hostdev.assign' && subject.isInGroup('virtbus') &&\n"
                "            action.lookup('domain') == 'authz' && action.lookup('device') == '0000:03:10.2')\n"
                "                return polkit.Result.YES;\n"
                "        return polkit.Result.NOT_HANDLED;\n"
                "});\n"), 0);
        for (int i = 0; i < 100; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                assert_int_equal(sd_bus_message_new_method_call(member, &call, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "AttachDevice"), 0);
                assert_int_equal(sd_bus_message_append(call, "st", granted, LIVE), 1);
                if (sd_bus_call(member, call, 0, &e, &reply) >= 0)
                        break;
                harness_assert_error(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
                if (i == 99)
                        fail_msg("the rule for 0000:03:10.2 never took effect");
                usleep(100 * 1000);
        }
        ASSERT_XML(root, path, 0, "function='0x2'", true);
        call_dev_fails(member, path, "AttachDevice", hostdev, CONFIG, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
        remove_domain(root, path);
}

/* libvirt's hotplug test devices: each attached and detached again, saved and live. */
static void test_libvirt_corpus(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dir = test_shared_path(CORPUS_DIR), *off = NULL, *on = NULL;
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(dir);
        d = opendir(dir);
        if (!d) {
                print_message("SKIP: %s is absent; libvirt's hotplug devices not tried\n", dir);
                /* skip() leaves by longjmp: nothing of ours may be left to clean up. */
                free(TAKE_PTR(dir));
                skip();
        }
        off = define(bus, "corpus-off", NULL, NULL);
        on = define_running(bus, "corpus-on", NULL, NULL);
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL, *xml = NULL;
                bool graphics;

                if (!strstr(de->d_name, ".xml"))
                        continue;
                assert_true(asprintf(&p, "%s/%s", dir, de->d_name) >= 0);
                xml = harness_read_file(p);
                assert_non_null(xml);
                graphics = strstr(xml, "<graphics") != NULL;
                print_message("corpus: %s\n", de->d_name);
                if (graphics) {
                        /* Displays are not hot-pluggable (libvirt neither); UpdateDevice is their way: a domain
                         * running with the very same display takes the "nochange" ones live. */
                        call_dev_fails(bus, off, "AttachDevice", xml, CONFIG, ERR("NotSupported"), "'graphics'");
                        if (strstr(de->d_name, "spice-nochange")) {
                                _cleanup_free_ char *g = define_running(bus, "corpus-gfx", NULL, xml), *listen = NULL, *lp = NULL;

                                call_dev(bus, g, "UpdateDevice", xml, LIVE);
                                assert_true(asprintf(&lp, "%s/qemuhotplug-graphics-spice-listen.xml", dir) >= 0);
                                listen = harness_read_file(lp);
                                if (listen)
                                        call_dev_fails(bus, g, "UpdateDevice", listen, LIVE, ERR("NotSupported"), "listen");
                                remove_domain(bus, g);
                        }
                        continue;
                }
                call_dev(bus, off, "AttachDevice", xml, CONFIG);
                call_dev(bus, off, "DetachDevice", xml, CONFIG);
                if (strstr(xml, "<hostdev")) {
                        /* Live, the host device must exist: the fake host has no 0000:06:12.2. */
                        call_dev_fails(bus, on, "AttachDevice", xml, LIVE, ERR("NoSuchDevice"), "No PCI device '0000:06:12.2'");
                        ASSERT_XML(bus, on, 0, "<hostdev", false);
                        n++;
                        continue;
                }
                call_dev(bus, on, "AttachDevice", xml, LIVE);
                call_dev(bus, on, "DetachDevice", xml, LIVE);
                n++;
        }
        closedir(d);
        assert_true(n >= 20);
        ASSERT_XML(bus, off, 1, "<disk", false);
        ASSERT_XML(bus, on, 0, "<disk", false);
        remove_domain(bus, off);
        remove_domain(bus, on);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_introspection),
                cmocka_unit_test(test_config_every_kind),
                cmocka_unit_test(test_live_every_kind),
                cmocka_unit_test(test_live_and_config),
                cmocka_unit_test(test_network_ports),
                cmocka_unit_test(test_flags_and_errors),
                cmocka_unit_test(test_conflicts),
                cmocka_unit_test(test_matching),
                cmocka_unit_test(test_guest_refuses_or_ignores),
                cmocka_unit_test(test_update),
                cmocka_unit_test(test_update_graphics),
                cmocka_unit_test(test_authorization),
                cmocka_unit_test(test_libvirt_corpus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group_on_fake_sysfs(tests, &fake, "devices",
                                               (const char * const[]) { "--device-removal-timeout=1", NULL });
}
