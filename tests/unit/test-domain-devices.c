/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/conf/domain-devices.c: finding a device from a description, conflicts, aliases and guest PCI
 * addresses, live-update checks, definitions with a device added or removed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/domain-devices.h"

static const char domain_xml[] =
        "<domain type='test'>\n"
        "  <name>devs</name>\n"
        "  <memory>65536</memory>\n"
        "  <os><type>hvm</type></os>\n"
        "  <devices>\n"
        "    <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/>\n"
        "      <alias name='virtio-disk0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></disk>\n"
        "    <disk type='file' device='cdrom'><source file='/cd.iso'/><target dev='hdc' bus='ide'/><readonly/><alias name='ide0-1-0'/></disk>\n"
        "    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/>\n"
        "      <model type='virtio'/><alias name='net0'/></interface>\n"
        "    <hostdev mode='subsystem' type='pci' managed='yes'><source>\n"
        "      <address domain='0x0000' bus='0x06' slot='0x12' function='0x2'/></source></hostdev>\n"
        "    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n"
        "    <rng model='virtio'><backend model='random'>/dev/random</backend></rng>\n"
        "    <watchdog model='i6300esb' action='reset'><alias name='watchdog0'/></watchdog>\n"
        "  </devices>\n"
        "</domain>\n";

static DomainDef *parse_domain(const char *xml) {
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("domain: %s", e.message);
        return def;
}

static DeviceDef *parse_device(const char *xml, unsigned flags) {
        DeviceDef *dev = NULL;
        VbError e = VB_ERROR_NULL;

        if (device_def_parse_string(xml, flags, &dev, &e) < 0)
                fail_msg("device: %s", e.message);
        return dev;
}

#define ASSERT_HAS(s, part)                                                    \
        do {                                                                   \
                if (!strstr(s, part))                                          \
                        fail_msg("'%s' not in:\n%s", part, s);                 \
        } while (false)

/* Finds probe in def: returns the index, or -code with the message checked to contain part. */
static int find(const DomainDef *def, const char *probe_xml, DeviceMatch how, const char *part) {
        _cleanup_(device_def_freep) DeviceDef *probe = parse_device(probe_xml, DEVICE_PARSE_NO_DEFAULTS);
        VbError e = VB_ERROR_NULL;
        size_t i;
        int r;

        r = domain_def_find_device(def, probe, how, &i, &e);
        if (r >= 0) {
                assert_false(vb_error_is_set(&e));
                return (int) i;
        }
        assert_true(vb_error_is_set(&e));
        if (part && !strstr(e.message, part))
                fail_msg("'%s' not in '%s'", part, e.message);
        r = -(int) e.code;
        vb_error_free(&e);
        return r;
}

static int conflict(const DomainDef *def, const char *xml, const char *part);

static void test_find(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(domain_xml);

        /* disk by target; the rest must agree */
        assert_int_equal(find(def, "<disk type='file' device='disk'><target dev='vda'/></disk>", DEVICE_MATCH_EXACT, NULL), 0);
        assert_int_equal(find(def, "<disk type='file'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>",
                              DEVICE_MATCH_EXACT, NULL), 0);
        assert_int_equal(find(def, "<disk type='file'><source file='/b.img'/><target dev='vda'/></disk>", DEVICE_MATCH_EXACT,
                              "attribute 'file' of <source> is '/b.img'"), -VB_ERROR_NO_SUCH_DEVICE);
        assert_int_equal(find(def, "<disk type='file'><target dev='vda' bus='scsi'/></disk>", DEVICE_MATCH_EXACT,
                              "attribute 'bus' of <target>"), -VB_ERROR_NO_SUCH_DEVICE);
        assert_int_equal(find(def, "<disk type='file'><target dev='vda'/><shareable/></disk>", DEVICE_MATCH_EXACT,
                              "<shareable>"), -VB_ERROR_NO_SUCH_DEVICE);
        assert_int_equal(find(def, "<disk type='file'><target dev='vdz'/></disk>", DEVICE_MATCH_EXACT, "no disk 'vdz'"),
                         -VB_ERROR_NO_SUCH_DEVICE);
        /* identity only (UpdateDevice): a new medium is not a mismatch */
        assert_int_equal(find(def, "<disk type='file' device='cdrom'><source file='/new.iso'/><target dev='hdc'/></disk>",
                              DEVICE_MATCH_IDENTITY, NULL), 1);

        /* interface by MAC (any spelling) or alias */
        assert_int_equal(find(def, "<interface type='network'><mac address='52:54:00:AA:BB:CC'/></interface>",
                              DEVICE_MATCH_EXACT, NULL), 2);
        assert_int_equal(find(def, "<interface type='network'><alias name='net0'/></interface>", DEVICE_MATCH_EXACT, NULL), 2);
        assert_int_equal(find(def, "<interface type='bridge'><alias name='net0'/></interface>", DEVICE_MATCH_EXACT,
                              "attribute 'type' of <interface> is 'bridge'"), -VB_ERROR_NO_SUCH_DEVICE);
        assert_int_equal(find(def, "<interface type='network'><mac address='52:54:00:00:00:01'/></interface>",
                              DEVICE_MATCH_EXACT, NULL), -VB_ERROR_NO_SUCH_DEVICE);

        /* hostdev by host address, numbers in any base */
        assert_int_equal(find(def, "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='6' slot='0x12' function='2'/></source></hostdev>",
                              DEVICE_MATCH_EXACT, NULL), 3);
        assert_int_equal(find(def, "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='6' slot='0x13' function='2'/></source></hostdev>",
                              DEVICE_MATCH_EXACT, "no hostdev '0000:06:13.2'"), -VB_ERROR_NO_SUCH_DEVICE);

        /* USB hostdevs by vendor+product or by bus+device */
        {
                _cleanup_(domain_def_freep) DomainDef *usb = parse_domain(
                        "<domain type='test'><name>usb</name><memory>1</memory><os><type>hvm</type></os><devices>"
                        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0104'/></source></hostdev>"
                        "<hostdev mode='subsystem' type='usb'><source><address bus='1' device='4'/></source></hostdev>"
                        "</devices></domain>");
                _cleanup_free_ char *key = NULL;

                assert_int_equal(find(usb, "<hostdev mode='subsystem' type='usb'><source><vendor id='7531'/><product id='260'/></source></hostdev>",
                                      DEVICE_MATCH_EXACT, NULL), 0);
                assert_int_equal(find(usb, "<hostdev mode='subsystem' type='usb'><source><address bus='1' device='4'/></source></hostdev>",
                                      DEVICE_MATCH_EXACT, NULL), 1);
                assert_int_equal(find(usb, "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0002'/></source></hostdev>",
                                      DEVICE_MATCH_EXACT, "no hostdev 'usb:1d6b:0002'"), -VB_ERROR_NO_SUCH_DEVICE);
                assert_int_equal(conflict(usb, "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0104'/></source></hostdev>",
                                          "'usb:1d6b:0104' is already given"), -VB_ERROR_DEVICE_BUSY);
                assert_int_equal(device_def_host_device(usb->devices[1], &key), 1);
                assert_string_equal(key, "usb:1.4");
        }

        /* others: by alias, by content; two alike ask for more */
        assert_int_equal(find(def, "<watchdog model='i6300esb'><alias name='watchdog0'/></watchdog>", DEVICE_MATCH_EXACT, NULL), 6);
        assert_int_equal(find(def, "<watchdog model='ib700'/>", DEVICE_MATCH_EXACT, "attribute 'model'"), -VB_ERROR_NO_SUCH_DEVICE);
        assert_int_equal(find(def, "<rng model='virtio'><backend model='random'>/dev/random</backend></rng>", DEVICE_MATCH_EXACT, NULL), 5);
        assert_int_equal(find(def, "<rng model='virtio'><backend model='random'/></rng>", DEVICE_MATCH_EXACT, "2 devices"),
                         -VB_ERROR_INVALID_ARGUMENT);
        assert_int_equal(find(def, "<input type='tablet' bus='usb'/>", DEVICE_MATCH_EXACT, "has no input"), -VB_ERROR_NO_SUCH_DEVICE);
}

static int conflict(const DomainDef *def, const char *xml, const char *part) {
        _cleanup_(device_def_freep) DeviceDef *dev = parse_device(xml, 0);
        VbError e = VB_ERROR_NULL;
        int r;

        r = domain_def_check_device_conflicts(def, dev, &e);
        if (r >= 0)
                return 0;
        if (part && !strstr(e.message, part))
                fail_msg("'%s' not in '%s'", part, e.message);
        r = -(int) e.code;
        vb_error_free(&e);
        return r;
}

static void test_conflicts(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(domain_xml);

        assert_int_equal(conflict(def, "<disk type='file'><source file='/x'/><target dev='vdb' bus='virtio'/></disk>", NULL), 0);
        assert_int_equal(conflict(def, "<disk type='file'><source file='/x'/><target dev='vda' bus='virtio'/></disk>",
                                  "a disk with target 'vda'"), -VB_ERROR_ALREADY_EXISTS);
        assert_int_equal(conflict(def, "<interface type='user'><mac address='52:54:00:aa:bb:cc'/></interface>",
                                  "MAC address '52:54:00:aa:bb:cc'"), -VB_ERROR_ALREADY_EXISTS);
        assert_int_equal(conflict(def, "<interface type='user'><alias name='net0'/></interface>", "alias 'net0'"),
                         -VB_ERROR_ALREADY_EXISTS);
        assert_int_equal(conflict(def, "<interface type='user'><address type='pci' domain='0' bus='0' slot='4' function='0'/></interface>",
                                  "pci 0000:00:04.0 of domain 'devs' is already used by disk 'vda'"), -VB_ERROR_DEVICE_BUSY);
        assert_int_equal(conflict(def, "<interface type='user'><address type='pci' domain='0' bus='0' slot='4' function='1'/></interface>", NULL), 0);
        assert_int_equal(conflict(def, "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='6' slot='0x12' function='2'/></source></hostdev>",
                                  "Host device '0000:06:12.2' is already given to domain 'devs'"), -VB_ERROR_DEVICE_BUSY);
        assert_int_equal(conflict(def, "<interface type='hostdev'><source><address type='pci' domain='0' bus='6' slot='0x12' function='2'/></source></interface>",
                                  "'0000:06:12.2'"), -VB_ERROR_DEVICE_BUSY);
        assert_int_equal(conflict(def, "<controller type='usb' index='0'/>", NULL), 0);
}

static char *assigned(const DomainDef *def, const DomainDef *other, const char *xml) {
        _cleanup_(device_def_freep) DeviceDef *dev = parse_device(xml, 0);
        VbError e = VB_ERROR_NULL;
        char *s = NULL;

        assert_int_equal(domain_def_assign_device_alias(def, dev), 0);
        if (domain_def_assign_device_address(def, other, dev, &e) < 0)
                fail_msg("%s", e.message);
        assert_int_equal(device_def_format(dev, 0, &s), 0);
        return s;
}

static void test_assign(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(domain_xml), *other = NULL;
        _cleanup_free_ char *disk = NULL, *nic = NULL, *hd = NULL, *wd = NULL, *ctl = NULL, *sata = NULL, *nic2 = NULL,
                            *given = NULL;

        disk = assigned(def, NULL, "<disk type='file'><source file='/x'/><target dev='vde' bus='virtio'/></disk>");
        ASSERT_HAS(disk, "<alias name='virtio-disk4'/>");
        ASSERT_HAS(disk, "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>");
        nic = assigned(def, NULL, "<interface type='user'/>");
        ASSERT_HAS(nic, "<alias name='net1'/>");
        hd = assigned(def, NULL, "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='7' slot='0' function='0'/></source></hostdev>");
        ASSERT_HAS(hd, "<alias name='hostdev0'/>");
        ASSERT_HAS(hd, "slot='0x03'");
        wd = assigned(def, NULL, "<watchdog model='ib700'/>");
        ASSERT_HAS(wd, "<alias name='watchdog1'/>");
        assert_null(strstr(wd, "<address"));
        ctl = assigned(def, NULL, "<controller type='usb' index='1' model='qemu-xhci'/>");
        ASSERT_HAS(ctl, "<alias name='usb1'/>");
        sata = assigned(def, NULL, "<disk type='file'><source file='/y'/><target dev='sdb' bus='sata'/></disk>");
        ASSERT_HAS(sata, "<alias name='sata-disk1'/>");
        assert_null(strstr(sata, "type='pci'"));
        /* A partial address is completed; a given slot stays. */
        given = assigned(def, NULL, "<interface type='user'><address type='pci' slot='9'/></interface>");
        ASSERT_HAS(given, "domain='0x0000' bus='0x00' slot='0x09' function='0x0'");
        /* Slots used in the other definition (the saved one, for live+config) are skipped too. */
        other = parse_domain("<domain type='test'><name>o</name><memory>1</memory><os><type>hvm</type></os><devices>"
                             "<interface type='user'><address type='pci' domain='0' bus='0' slot='3' function='0'/></interface>"
                             "</devices></domain>");
        nic2 = assigned(def, other, "<interface type='user'/>");
        ASSERT_HAS(nic2, "slot='0x05'");
}

/* The message of a failed assignment (fails if it succeeds). */
static char *assign_fails(const DomainDef *def, const DomainDef *other, const char *xml, VbErrorCode code) {
        _cleanup_(device_def_freep) DeviceDef *dev = parse_device(xml, 0);
        VbError e = VB_ERROR_NULL;

        if (domain_def_assign_device_address(def, other, dev, &e) >= 0)
                fail_msg("assigned: %s", xml);
        assert_int_equal(e.code, code);
        return e.message;
}

/* q35: the root bus takes no hot-plugged device; a device goes into a free pcie-root-port (slot 0). */
static void test_assign_q35(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(
                "<domain type='test'><name>q</name><memory>65536</memory>"
                "<os><type machine='pc-q35-7.2'>hvm</type></os><devices>"
                "<controller type='pci' index='0' model='pcie-root'/>"
                "<controller type='pci' index='1' model='pcie-root-port'/>"
                "<controller type='pci' index='2' model='pcie-root-port'/>"
                "<controller type='pci' model='pcie-root-port'/>"
                "<interface type='user'><mac address='52:54:00:00:00:01'/>"
                "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>"
                "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
                "</devices></domain>"),
                                        *other = NULL, *full = NULL, *started = NULL;
        _cleanup_free_ char *nic = NULL, *nic2 = NULL, *disk = NULL, *named = NULL, *msg = NULL, *msg2 = NULL,
                            *rng = NULL;
        VbError e = VB_ERROR_NULL;

        /* Port 1 is taken by the NIC; 2 is free. The controller without an index got 3. */
        nic = assigned(def, NULL, "<interface type='user'/>");
        ASSERT_HAS(nic, "<address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>");
        /* A port used in the other definition (the saved one, for live+config) is skipped too. */
        other = parse_domain("<domain type='test'><name>o</name><memory>1</memory><os><type machine='q35'>hvm</type></os>"
                             "<devices><interface type='user'>"
                             "<address type='pci' domain='0' bus='2' slot='0' function='0'/></interface></devices></domain>");
        disk = assigned(def, other, "<disk type='file'><source file='/x'/><target dev='vdb' bus='virtio'/></disk>");
        ASSERT_HAS(disk, "bus='0x03' slot='0x00'");
        /* A bus naming a root port: its only slot. */
        named = assigned(def, NULL, "<interface type='user'><address type='pci' bus='2'/></interface>");
        ASSERT_HAS(named, "bus='0x02' slot='0x00' function='0x0'");

        /* Every port used: refused, saying what to add. */
        full = parse_domain("<domain type='test'><name>full</name><memory>65536</memory>"
                            "<os><type machine='q35'>hvm</type></os><devices>"
                            "<controller type='pci' index='1' model='pcie-root-port'/>"
                            "<interface type='user'><mac address='52:54:00:00:00:01'/>"
                            "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>"
                            "</devices></domain>");
        msg = assign_fails(full, NULL, "<interface type='user'/>", VB_ERROR_OPERATION_FAILED);
        ASSERT_HAS(msg, "Domain 'full' has no free PCIe root port");
        ASSERT_HAS(msg, "<controller type='pci' model='pcie-root-port'/>");
        /* The fix the message gives: a port added without an index gets the next one, and takes the device. */
        {
                _cleanup_(device_def_freep) DeviceDef *port = parse_device("<controller type='pci' model='pcie-root-port'/>", 0);
                _cleanup_(domain_def_freep) DomainDef *fixed = NULL;
                _cleanup_free_ char *xml = NULL, *nic3 = NULL;

                assert_int_equal(domain_def_with_device_added(full, port, &fixed), 0);
                assert_int_equal(domain_def_format(fixed, 0, &xml), 0);
                ASSERT_HAS(xml, "<controller type='pci' index='2' model='pcie-root-port'/>");
                nic3 = assigned(fixed, NULL, "<interface type='user'/>");
                ASSERT_HAS(nic3, "bus='0x02' slot='0x00'");
        }
        msg2 = assign_fails(def, NULL, "<interface type='user'><address type='pci' bus='7'/></interface>",
                            VB_ERROR_NOT_SUPPORTED);
        ASSERT_HAS(msg2, "give the <address> in full");

        /* At start, devices without an address stay on pcie.0 (integrated), as before. */
        assert_int_equal(domain_def_copy(def, &started), 0);
        assert_int_equal(domain_def_assign_device_names(started, &e), 0);
        assert_int_equal(device_def_format(started->devices[started->n_devices - 1], 0, &rng), 0);
        ASSERT_HAS(rng, "bus='0x00' slot='0x03'");

        assert_true(domain_machine_is_q35("q35"));
        assert_true(domain_machine_is_q35("pc-q35-7.2"));
        assert_false(domain_machine_is_q35("pc"));
        assert_false(domain_machine_is_q35("pc-i440fx-7.2"));
        assert_false(domain_machine_is_q35(NULL));
}

static void test_live_update(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(domain_xml);
        struct {
                const char *xml;
                size_t index;
                int code;
                const char *part;
        } cases[] = {
                { "<disk type='file' device='cdrom'><source file='/new.iso'/><target dev='hdc'/></disk>", 1, 0, "<source file='/new.iso'/>" },
                { "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>", 1, 0, "<readonly/>" }, /* eject */
                { "<disk type='file' device='cdrom'><source file='/n.iso'/><target dev='hdc' bus='sata'/><readonly/></disk>", 1,
                  VB_ERROR_NOT_SUPPORTED, "attribute 'bus' of <target>" },
                { "<disk type='file' device='disk'><source file='/b.img'/><target dev='vda' bus='virtio'/></disk>", 0,
                  VB_ERROR_NOT_SUPPORTED, "cdrom or floppy" },
                { "<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><model type='virtio'/>"
                  "<link state='down'/><bandwidth><inbound average='1000'/></bandwidth></interface>", 2, 0, "<link state='down'/>" },
                { "<interface type='network'><mac address='52:54:00:aa:bb:cc'/><link state='up'/></interface>", 2, 0, "<source network='default'/>" },
                { "<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/><model type='e1000'/></interface>", 2,
                  VB_ERROR_NOT_SUPPORTED, "attribute 'type' of <model>" },
                { "<watchdog model='i6300esb' action='poweroff'/>", 6, VB_ERROR_NOT_SUPPORTED, "detach and attach" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(device_def_freep) DeviceDef *dev = parse_device(cases[i].xml, DEVICE_PARSE_NO_DEFAULTS), *res = NULL;
                _cleanup_free_ char *out = NULL;
                VbError e = VB_ERROR_NULL;
                int r;

                r = device_def_live_update(def->devices[cases[i].index], dev, &res, &e);
                if (cases[i].code == 0) {
                        if (r < 0)
                                fail_msg("case %zu: %s", i, e.message);
                        assert_int_equal(device_def_format(res, 0, &out), 0);
                        ASSERT_HAS(out, "<alias name="); /* kept from the device replaced */
                        if (cases[i].part)
                                ASSERT_HAS(out, cases[i].part);
                        continue;
                }
                assert_true(r < 0);
                assert_int_equal(e.code, cases[i].code);
                if (!strstr(e.message, cases[i].part))
                        fail_msg("case %zu: '%s' not in '%s'", i, cases[i].part, e.message);
                vb_error_free(&e);
        }
}

static void test_add_remove(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(domain_xml), *added = NULL, *removed = NULL;
        _cleanup_(device_def_freep) DeviceDef *dev = parse_device("<input type='tablet' bus='usb'/>", 0);
        _cleanup_free_ char *xml = NULL, *host = NULL;

        assert_int_equal(domain_def_with_device_added(def, dev, &added), 0);
        assert_int_equal(added->n_devices, def->n_devices + 1);
        assert_int_equal(domain_def_format(added, 0, &xml), 0);
        ASSERT_HAS(xml, "<input type='tablet' bus='usb'/>");
        assert_int_equal(domain_def_with_device_removed(added, 0, &removed), 0);
        assert_int_equal(removed->n_devices, def->n_devices);
        assert_int_equal(domain_def_find_alias(removed, "virtio-disk0"), -ENOENT);
        assert_int_equal(domain_def_find_alias(def, "virtio-disk0"), 0); /* the original is untouched */
        /* Indexes stay valid although formatting sorts devices by kind (rng after watchdog). */
        {
                _cleanup_(domain_def_freep) DomainDef *no_dog = NULL;
                assert_int_equal(domain_def_with_device_removed(def, 6, &no_dog), 0);
                assert_int_equal(domain_def_find_alias(no_dog, "watchdog0"), -ENOENT);
                assert_int_equal(no_dog->n_devices, 6);
                assert_int_equal(no_dog->devices[5]->kind, DEVICE_RNG);
        }

        assert_int_equal(device_def_host_device(def->devices[3], &host), 1);
        assert_string_equal(host, "0000:06:12.2");
        assert_true(device_def_is_host_device(def->devices[3]));
        assert_false(device_def_is_host_device(def->devices[2]));
}

static void test_metadata(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse_domain(
                "<domain type='test'><name>m</name><memory>1</memory><metadata>"
                "<t:hotplug xmlns:t='urn:virtbus:test-driver'><t:unplug answer='refuse'/></t:hotplug>"
                "</metadata><os><type>hvm</type></os></domain>");
        const ConfNode *n = domain_def_get_metadata(def, "urn:virtbus:test-driver", "hotplug");

        assert_non_null(n);
        assert_int_equal(n->n_children, 1);
        assert_string_equal(conf_node_attr(n->children[0], "answer"), "refuse");
        assert_null(domain_def_get_metadata(def, "urn:other", "hotplug"));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_find),         cmocka_unit_test(test_conflicts),
                cmocka_unit_test(test_assign),       cmocka_unit_test(test_live_update),
                cmocka_unit_test(test_assign_q35),
                cmocka_unit_test(test_add_remove),   cmocka_unit_test(test_metadata),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
