/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu driver's command line: a definition in, QEMU's argument vector out (no QEMU runs here; the
 * integration test test-qemu runs these command lines for real). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "conf/domain-conf.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-process.h"

static const QemuCommandParams params = { .emulator = "/usr/bin/qemu-system-x86_64", .monitor_fd = 3 };

static DomainDef *parse(const char *type, const char *name, const char *os, const char *features,
                        const char *devices) {
        _cleanup_free_ char *xml = NULL;
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        assert_true(asprintf(&xml,
                             "<domain type='%s'><name>%s</name><memory unit='MiB'>128</memory><vcpu>2</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type>%s</os>%s"
                             "<devices>%s</devices></domain>",
                             type, name, os ?: "", features ?: "", devices ?: "") >= 0);
        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("%s: %s", xml, e.message);
        return def;
}

/* The value following option opt, the n-th time opt appears (0-based); NULL if not there. */
static const char *opt(const QemuCommand *c, const char *option, unsigned n) {
        for (size_t i = 0; i + 1 < c->argv.n; i++)
                if (streq(c->argv.v[i], option) && n-- == 0)
                        return c->argv.v[i + 1];
        return NULL;
}

static bool has_value(const QemuCommand *c, const char *option, const char *value) {
        for (unsigned n = 0; opt(c, option, n); n++)
                if (streq(opt(c, option, n), value))
                        return true;
        return false;
}

static void build_ok(const DomainDef *def, const QemuCommandParams *p, QemuCommand *c) {
        VbError e = VB_ERROR_NULL;
        if (qemu_command_build(def, p, c, &e) < 0)
                fail_msg("build failed: %s", e.message);
        assert_null(c->argv.v[c->argv.n]);
}

static void build_fails_with(const DomainDef *def, const QemuCommandParams *p, VbErrorCode code, const char *part) {
        QemuCommand c = {};
        VbError e = VB_ERROR_NULL;

        assert_true(qemu_command_build(def, p, &c, &e) < 0);
        assert_int_equal(e.code, code);
        if (!strstr(e.message, part))
                fail_msg("'%s' does not contain '%s'", e.message, part);
        vb_error_free(&e);
}

static void build_fails(const DomainDef *def, VbErrorCode code, const char *part) {
        build_fails_with(def, &params, code, part);
}

static void test_machine(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def =
                parse("qemu", "a,b", "<kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0 x=1,2</cmdline>",
                      "<features><acpi/></features><on_reboot>destroy</on_reboot>", NULL);
        _cleanup_(qemu_command_done) QemuCommand c = {};

        build_ok(def, &params, &c);
        assert_string_equal(c.argv.v[0], "/usr/bin/qemu-system-x86_64");
        /* Commas in values are doubled; the name is the process's. */
        assert_string_equal(opt(&c, "-name", 0), "guest=a,,b,debug-threads=on");
        assert_string_equal(opt(&c, "-machine", 0), "pc,usb=off,dump-guest-core=off");
        assert_string_equal(opt(&c, "-accel", 0), "tcg");
        assert_string_equal(opt(&c, "-m", 0), "size=131072k");
        assert_string_equal(opt(&c, "-smp", 0), "2");
        assert_string_equal(opt(&c, "-kernel", 0), "/k");
        assert_string_equal(opt(&c, "-initrd", 0), "/i");
        /* A vector, not a shell line: the command line goes as one argument, commas and all. */
        assert_string_equal(opt(&c, "-append", 0), "console=ttyS0 x=1,2");
        assert_string_equal(opt(&c, "-chardev", 0), "socket,id=charmonitor,fd=3,server=on,wait=off");
        assert_true(has_value(&c, "-mon", "chardev=charmonitor,id=monitor,mode=control"));
        for (size_t i = 0; i < c.argv.n; i++)
                if (streq(c.argv.v[i], "-S") || streq(c.argv.v[i], "-no-shutdown") || streq(c.argv.v[i], "-no-reboot"))
                        c.argv.v[i][1] = '!'; /* mark as seen */
        assert_true(has_value(&c, "-uuid", "") || opt(&c, "-uuid", 0));
        {
                unsigned seen = 0;
                for (size_t i = 0; i < c.argv.n; i++)
                        seen += c.argv.v[i][0] == '-' && c.argv.v[i][1] == '!';
                assert_int_equal(seen, 3);
        }
}

/* <vcpu current=>: QEMU starts with current vCPUs and room for the rest (hot-plugged by SetVCPUs). */
static void test_smp_current(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse("qemu", "v", NULL, NULL, NULL);
        _cleanup_(qemu_command_done) QemuCommand c = {};

        def->vcpus = 4;
        def->vcpus_current = 1;
        build_ok(def, &params, &c);
        assert_string_equal(opt(&c, "-smp", 0), "1,maxcpus=4");
}

static void test_accel_and_cpu(void **state) {
        _cleanup_(domain_def_freep) DomainDef *kvm = parse("kvm", "k", NULL, NULL, NULL);
        _cleanup_(domain_def_freep) DomainDef *noacpi = parse("qemu", "n", NULL, NULL, NULL);
        _cleanup_(domain_def_freep) DomainDef *xen = parse("xen", "x", NULL, NULL, NULL);
        QemuCommandParams with_kvm = params;
        _cleanup_(qemu_command_done) QemuCommand c = {}, d = {};

        build_fails(kvm, VB_ERROR_NOT_SUPPORTED, "/dev/kvm");
        build_fails(xen, VB_ERROR_NOT_SUPPORTED, "'xen'");
        with_kvm.kvm_usable = true;
        build_ok(kvm, &with_kvm, &c);
        assert_string_equal(opt(&c, "-accel", 0), "kvm");
        /* TCG's translation cache from <features><tcg><tb-cache>, in MiB; refused under KVM. */
        {
                _cleanup_(domain_def_freep) DomainDef *tb =
                        parse("qemu", "t", NULL, "<features><tcg><tb-cache unit='KiB'>65537</tb-cache></tcg></features>", NULL);
                _cleanup_(domain_def_freep) DomainDef *tbkvm =
                        parse("kvm", "t", NULL, "<features><tcg><tb-cache unit='MiB'>64</tb-cache></tcg></features>", NULL);
                _cleanup_(qemu_command_done) QemuCommand t = {};

                build_ok(tb, &params, &t);
                assert_string_equal(opt(&t, "-accel", 0), "tcg,tb-size=65");
                {
                        QemuCommandParams p = params;

                        p.kvm_usable = true;
                        build_fails_with(tbkvm, &p, VB_ERROR_NOT_SUPPORTED, "<features><tcg>");
                }
        }
        /* No <acpi/>: no ACPI, as in libvirt's format. */
        build_ok(noacpi, &params, &d);
        assert_string_equal(opt(&d, "-machine", 0), "pc,usb=off,dump-guest-core=off,acpi=off");
}

static void test_disks(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def =
                parse("qemu", "d", NULL, NULL,
                      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/a,b.qcow2'/>"
                      "<target dev='vda' bus='virtio'/><boot order='1'/></disk>"
                      "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
                      "<disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='sda' bus='scsi'/></disk>");
        _cleanup_(domain_def_freep) DomainDef *bad =
                parse("qemu", "b", NULL, NULL,
                      "<disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/x'/>"
                      "<target dev='vda' bus='virtio'/></disk>");
        _cleanup_(qemu_command_done) QemuCommand c = {};

        build_ok(def, &params, &c);
        assert_true(has_value(&c, "-blockdev",
                              "driver=file,filename=/img/a,,b.qcow2,node-name=disk0-storage,read-only=off,auto-read-only=on"));
        assert_true(has_value(&c, "-blockdev", "driver=qcow2,file=disk0-storage,node-name=disk0-format,read-only=off"));
        assert_true(has_value(&c, "-device", "virtio-blk-pci,drive=disk0-format,id=disk0,bootindex=1"));
        /* An empty cdrom: a drive without medium. */
        assert_true(has_value(&c, "-device", "ide-cd,bus=ide.1,unit=0,id=disk1"));
        assert_true(has_value(&c, "-device", "virtio-scsi-pci,id=scsi0"));
        assert_true(has_value(&c, "-blockdev",
                              "driver=host_device,filename=/dev/sdz,node-name=disk2-storage,read-only=off,auto-read-only=on"));
        assert_true(has_value(&c, "-device", "scsi-hd,bus=scsi0.0,id=disk2,drive=disk2-format"));
        assert_string_equal(c.aliases[0], "disk0");
        build_fails(bad, VB_ERROR_NOT_SUPPORTED, "'vmdk'");
}

static void test_interfaces(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def =
                parse("qemu", "n", NULL, NULL,
                      "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/></interface>"
                      "<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/>"
                      "<target dev='vnet7'/><model type='virtio'/>"
                      "<address type='pci' domain='0' bus='0' slot='7' function='0'/></interface>");
        _cleanup_(domain_def_freep) DomainDef *net =
                parse("qemu", "m", NULL, NULL, "<interface type='network'><source network='default'/></interface>");
        _cleanup_(qemu_command_done) QemuCommand c = {};

        build_ok(def, &params, &c);
        assert_true(has_value(&c, "-netdev", "user,id=hostnet0"));
        assert_true(has_value(&c, "-device", "e1000,netdev=hostnet0,id=net0,mac=52:54:00:00:00:01"));
        /* Never vhost (no /dev/vhost-net here, and QEMU 7.2 aborts on it). */
        assert_true(has_value(&c, "-netdev", "tap,id=hostnet1,ifname=vnet7,script=no,downscript=no"));
        assert_true(has_value(&c, "-device",
                              "virtio-net-pci,netdev=hostnet1,id=net1,mac=52:54:00:00:00:02,bus=pci.0,addr=0x7.0x0"));
        assert_int_equal(c.n_taps, 1);
        assert_string_equal(c.taps[0].ifname, "vnet7");
        assert_string_equal(c.taps[0].bridge, "br0");
        build_fails(net, VB_ERROR_NOT_SUPPORTED, "'network'");
}

static void test_direct(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def =
                parse("qemu", "m", NULL, NULL,
                      "<interface type='user'><mac address='52:54:00:00:00:01'/></interface>"
                      "<interface type='direct'><source dev='eth9' mode='bridge'/><mac address='52:54:00:00:00:02'/>"
                      "<model type='virtio'/></interface>");
        const int fds[] = { -1, 9 };
        QemuCommandParams p = params;
        _cleanup_(qemu_command_done) QemuCommand c = {};

        /* Without the macvtap's descriptor there is nothing to give QEMU. */
        build_fails(def, VB_ERROR_OPERATION_FAILED, "macvtap");
        p.tap_fds = fds;
        p.n_tap_fds = ELEMENTSOF(fds);
        build_ok(def, &p, &c);
        assert_true(has_value(&c, "-netdev", "tap,id=hostnet1,fd=9"));
        assert_true(has_value(&c, "-device", "virtio-net-pci,netdev=hostnet1,id=net1,mac=52:54:00:00:00:02"));
        assert_int_equal(c.n_taps, 0);
}

static void test_chardevs(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = parse(
                "qemu", "c", NULL, NULL,
                "<serial type='pty'><target port='0'/></serial>"
                "<serial type='file'><source path='/tmp/s,1' append='on'/><target port='1'/></serial>"
                "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='4555'/><protocol type='telnet'/>"
                "<target port='2'/></serial>"
                "<serial type='udp'><source mode='bind' host='0.0.0.0' service='4556'/>"
                "<source mode='connect' host='10.0.0.1' service='4557'/><target port='3'/></serial>"
                "<parallel type='unix'><source mode='bind' path='/tmp/p.sock'/><target port='0'/></parallel>"
                "<console type='pty'><target type='serial' port='0'/></console>"
                "<channel type='null'><target type='virtio' name='org.example.x'/></channel>"
                "<console type='null'><target type='virtio' port='1'/></console>");
        _cleanup_(qemu_command_done) QemuCommand c = {};

        build_ok(def, &params, &c);
        /* A pty serial port is handed out by OpenConsole: QEMU starts it writing into /dev/null (a backend
         * it can wait on, unlike null). */
        assert_true(has_value(&c, "-chardev", "file,id=charserial0,path=/dev/null"));
        assert_true(has_value(&c, "-device", "isa-serial,chardev=charserial0,id=serial0"));
        assert_true(has_value(&c, "-chardev", "file,id=charserial1,path=/tmp/s,,1,append=on"));
        assert_true(has_value(&c, "-chardev", "socket,id=charserial2,host=127.0.0.1,port=4555,server=on,wait=off,telnet=on"));
        assert_true(has_value(&c, "-chardev", "udp,id=charserial3,host=10.0.0.1,port=4557,localaddr=0.0.0.0,localport=4556"));
        assert_true(has_value(&c, "-chardev", "socket,id=charparallel0,path=/tmp/p.sock,server=on,wait=off"));
        assert_true(has_value(&c, "-device", "isa-parallel,chardev=charparallel0,id=parallel0"));
        assert_true(has_value(&c, "-device", "virtio-serial-pci,id=virtio-serial0"));
        assert_true(has_value(&c, "-device", "virtserialport,chardev=charchannel0,id=channel0,name=org.example.x"));
        assert_true(has_value(&c, "-device", "virtconsole,chardev=charconsole0,id=console0"));
        /* The serial console is serial0 itself: no second -serial device. */
        for (unsigned n = 0; opt(&c, "-chardev", n); n++)
                assert_null(strstr(opt(&c, "-chardev", n), "charserial4"));
}

static void test_graphics_input(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def =
                parse("qemu", "g", NULL, NULL,
                      "<graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0' passwd='s3cret'/>"
                      "<input type='tablet' bus='usb'/><input type='keyboard' bus='virtio'/><input type='mouse' bus='ps2'/>"
                      "<memballoon model='virtio'/>");
        _cleanup_(domain_def_freep) DomainDef *fixed =
                parse("qemu", "f", NULL, NULL, "<graphics type='vnc' port='5907'/><video><model type='cirrus'/></video>");
        _cleanup_(domain_def_freep) DomainDef *spice = parse("qemu", "s", NULL, NULL, "<graphics type='spice'/>");
        _cleanup_(domain_def_freep) DomainDef *none =
                parse("qemu", "n", NULL, NULL, "<graphics type='vnc'><listen type='none'/></graphics>");
        _cleanup_(domain_def_freep) DomainDef *two =
                parse("qemu", "t", NULL, NULL, "<graphics type='vnc' port='5907'/><graphics type='vnc' autoport='yes'/>");
        _cleanup_(qemu_command_done) QemuCommand c = {}, d = {}, e = {};

        /* one graphics device of each type, as libvirt refuses at start (defining two is accepted) */
        build_fails(two, VB_ERROR_NOT_SUPPORTED, "Only one graphics device of each type is supported: a second <graphics type='vnc'> (device 2)");
        build_ok(def, &params, &c);
        assert_string_equal(opt(&c, "-vnc", 0), "0.0.0.0:0,to=1000,password=on");
        assert_string_equal(c.vnc_password, "s3cret");
        /* The password is set over QMP, never on the command line. */
        for (size_t i = 0; i < c.argv.n; i++)
                assert_null(strstr(c.argv.v[i], "s3cret"));
        assert_true(has_value(&c, "-device", "piix3-usb-uhci,id=usb"));
        assert_true(has_value(&c, "-device", "usb-tablet,id=input0,bus=usb.0"));
        assert_true(has_value(&c, "-device", "virtio-keyboard-pci,id=input1"));
        assert_true(has_value(&c, "-device", "virtio-balloon-pci,id=balloon0"));
        assert_true(has_value(&c, "-device", "VGA,id=video0"));

        build_ok(fixed, &params, &d);
        assert_string_equal(opt(&d, "-vnc", 0), "127.0.0.1:7");
        assert_true(has_value(&d, "-device", "cirrus-vga,id=video0"));
        assert_false(has_value(&d, "-device", "VGA,id=video0"));
        build_fails(spice, VB_ERROR_NOT_SUPPORTED, "'spice'");

        /* <listen type='none'/>: a display reached only through OpenGraphics. */
        build_ok(none, &params, &e);
        assert_string_equal(opt(&e, "-vnc", 0), "none");
        assert_true(has_value(&e, "-device", "VGA,id=video0"));
}

/* Host PCI functions go to QEMU through VFIO (this machine has no VFIO: the command line is what is
 * checked here; core binds the device to vfio-pci before the start, tested on a fake sysfs tree). */
static void test_host_devices(void **state) {
        _cleanup_(domain_def_freep) DomainDef *def = NULL;
        QemuCommand c = {};

        def = parse("qemu", "vfio", NULL, NULL,
                    "<hostdev mode='subsystem' type='pci' managed='yes'>"
                    "<source><address domain='0x0000' bus='0x06' slot='0x12' function='0x2'/></source>"
                    "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></hostdev>"
                    "<interface type='hostdev' managed='yes'><mac address='52:54:00:6d:90:02'/>"
                    "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x1'/></source>"
                    "<boot order='1'/></interface>");
        build_ok(def, &params, &c);
        assert_true(has_value(&c, "-device", "vfio-pci,host=0000:06:12.2,id=hostdev0,bus=pci.0,addr=0x7.0x0"));
        assert_true(has_value(&c, "-device", "vfio-pci,host=0000:03:10.1,id=hostdev1,bootindex=1"));
        /* No netdev for the VF: the guest drives the function itself. */
        assert_null(opt(&c, "-netdev", 0));
        qemu_command_done(&c);

        domain_def_free(def);
        def = parse("qemu", "usb-nic", NULL, NULL,
                    "<interface type='hostdev'><mac address='52:54:00:6d:90:03'/>"
                    "<source><address type='usb' bus='1' device='2'/></source></interface>");
        build_fails(def, VB_ERROR_NOT_SUPPORTED, "USB");
        domain_def_free(def);
        def = parse("qemu", "usb-hostdev", NULL, NULL,
                    "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/>"
                    "</source></hostdev>");
        build_fails(def, VB_ERROR_NOT_SUPPORTED, "other than PCI");
}

static DomainDef *parse_on(const char *machine, const char *devices) {
        _cleanup_free_ char *xml = NULL;
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>m</name><memory unit='MiB'>128</memory>"
                             "<os><type arch='x86_64' machine='%s'>hvm</type></os><devices>%s</devices></domain>",
                             machine, devices) >= 0);
        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("%s: %s", xml, e.message);
        return def;
}

/* The position of -device value in the vector (fails if absent). */
static size_t device_at(const QemuCommand *c, const char *value) {
        for (size_t i = 0; i + 1 < c->argv.n; i++)
                if (streq(c->argv.v[i], "-device") && streq(c->argv.v[i + 1], value))
                        return i;
        for (size_t i = 0; i < c->argv.n; i++)
                fprintf(stderr, "%s ", c->argv.v[i]);
        fail_msg("no -device %s", value);
        return 0;
}

/* PCI controllers become QEMU's buses 'pci.N', made before the devices on them; <address bus='N'> of
 * every device kind names that bus, bus 0 the machine's root ('pcie.0' on q35, 'pci.0' on pc). */
static void test_pci_controllers(void **state) {
        _cleanup_(domain_def_freep) DomainDef *q35 = parse_on(
                "pc-q35-7.2",
                "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
                "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>"
                "<disk type='file' device='disk'><source file='/img/a'/><target dev='vda' bus='virtio'/>"
                "<address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></disk>"
                "<controller type='pci' index='0' model='pcie-root'/>"
                "<controller type='pci' index='1' model='pcie-root-port'><model name='pcie-root-port'/>"
                "<target chassis='1' port='0x10'/>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/></controller>"
                "<controller type='pci' index='2' model='pcie-root-port'>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x1'/></controller>"
                "<controller type='pci' index='3' model='pcie-root-port'/>"
                "<controller type='pci' index='4' model='pcie-to-pci-bridge'>"
                "<address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></controller>"
                "<controller type='pci' model='pcie-root-port'/>"
                "<controller type='virtio-serial' index='0'>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/></controller>"
                "<channel type='null'><target type='virtio' name='org.example.x'/></channel>"
                "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></rng>"
                "<memballoon model='virtio' autodeflate='on' freePageReporting='on'>"
                "<address type='pci' domain='0x0000' bus='0x04' slot='0x01' function='0x0'/></memballoon>");
        _cleanup_(domain_def_freep) DomainDef *pc = parse_on(
                "pc",
                "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='virtio'/>"
                "<address type='pci' domain='0x0000' bus='0x01' slot='0x03' function='0x0'/></interface>"
                "<controller type='pci' index='0' model='pci-root'/>"
                "<controller type='pci' index='1' model='pci-bridge'><target chassisNr='7'/>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></controller>"
                "<interface type='user'><mac address='52:54:00:00:00:03'/><model type='virtio'/>"
                "<address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/></interface>");
        _cleanup_(domain_def_freep) DomainDef *pxb = parse_on(
                "q35", "<controller type='pci' index='1' model='pcie-expander-bus'/>");
        _cleanup_(domain_def_freep) DomainDef *wrong_root = parse_on(
                "pc", "<controller type='pci' index='0' model='pcie-root'/>");
        _cleanup_(qemu_command_done) QemuCommand c = {}, d = {};
        size_t port1;

        build_ok(q35, &params, &c);
        port1 = device_at(&c, "pcie-root-port,port=16,chassis=1,id=pci.1,bus=pcie.0,addr=0x2.0x0,multifunction=on");
        /* Without <target>: chassis is the index, port the controller's own devfn (or the index). */
        assert_true(device_at(&c, "pcie-root-port,port=17,chassis=2,id=pci.2,bus=pcie.0,addr=0x2.0x1") > port1);
        device_at(&c, "pcie-root-port,port=3,chassis=3,id=pci.3");
        assert_true(device_at(&c, "pcie-pci-bridge,id=pci.4,bus=pci.3,addr=0x0.0x0") >
                    device_at(&c, "pcie-root-port,port=3,chassis=3,id=pci.3"));
        /* The controller without an index got the next one. */
        device_at(&c, "pcie-root-port,port=5,chassis=5,id=pci.5");
        /* The NIC comes first in the definition, but after the port it sits in on the command line. */
        assert_true(device_at(&c, "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:00:00:01,bus=pci.1,addr=0x0.0x0") >
                    port1);
        device_at(&c, "virtio-blk-pci,drive=disk0-format,id=disk0,bus=pci.2,addr=0x0.0x0");
        device_at(&c, "virtio-serial-pci,id=virtio-serial0,bus=pcie.0,addr=0x6.0x0");
        device_at(&c, "virtio-rng-pci,rng=objrng0,id=rng0,bus=pcie.0,addr=0x5.0x0");
        device_at(&c, "virtio-balloon-pci,id=balloon0,free-page-reporting=on,deflate-on-oom=on,bus=pci.4,addr=0x1.0x0");
        /* One virtio-serial bus: the controller's. */
        {
                unsigned n = 0;
                for (unsigned k = 0; opt(&c, "-device", k); k++)
                        n += strncmp(opt(&c, "-device", k), "virtio-serial-pci", 17) == 0;
                assert_int_equal(n, 1);
        }
        /* The live definition names the controllers as QEMU does. */
        for (size_t i = 0; i < q35->n_devices; i++)
                if (q35->devices[i]->kind == DEVICE_CONTROLLER && c.aliases[i] && strncmp(c.aliases[i], "pci.", 4) == 0)
                        port1 = SIZE_MAX;
        assert_true(port1 == SIZE_MAX);

        build_ok(pc, &params, &d);
        assert_true(device_at(&d, "pci-bridge,chassis_nr=7,id=pci.1,bus=pci.0,addr=0x5.0x0") <
                    device_at(&d, "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:00:00:02,bus=pci.1,addr=0x3.0x0"));
        device_at(&d, "virtio-net-pci,netdev=hostnet1,id=net1,mac=52:54:00:00:00:03,bus=pci.0,addr=0x6.0x0");

        build_fails(pxb, VB_ERROR_NOT_SUPPORTED, "PCI controller model 'pcie-expander-bus' (index 1) is not supported");
        build_fails(wrong_root, VB_ERROR_NOT_SUPPORTED, "model 'pcie-root' is not the root bus of a pc machine");
}

/* query-pci as QEMU 7.2 answered on q35 once firmware numbered the buses: it numbered the port in slot 2
 * (id pci.5) bus 1 and the one in slot 3 (pci.1) bus 2. The definition's bus is the controller's index. */
static void test_query_pci_buses(void **state) {
        static const char answer[] =
                "[{\"bus\":0,\"devices\":[{\"bus\":0,\"slot\":0,\"function\":0,\"qdev_id\":\"\"},"
                "{\"bus\":0,\"slot\":2,\"function\":0,\"qdev_id\":\"pci.5\",\"pci_bridge\":{\"bus\":{\"number\":0,"
                "\"secondary\":1,\"subordinate\":1},\"devices\":[{\"bus\":1,\"slot\":0,\"function\":0,\"qdev_id\":\"net1\"}]}},"
                "{\"bus\":0,\"slot\":3,\"function\":0,\"qdev_id\":\"pci.1\",\"pci_bridge\":{\"bus\":{\"number\":0,"
                "\"secondary\":2,\"subordinate\":2},\"devices\":[{\"bus\":2,\"slot\":0,\"function\":0,\"qdev_id\":\"net0\"}]}},"
                "{\"bus\":0,\"slot\":4,\"function\":0,\"qdev_id\":\"other\",\"pci_bridge\":{\"bus\":{\"number\":0,"
                "\"secondary\":3,\"subordinate\":3},\"devices\":[{\"bus\":3,\"slot\":1,\"function\":0,\"qdev_id\":\"net2\"}]}},"
                "{\"bus\":0,\"slot\":31,\"function\":2,\"qdev_id\":\"\"},"
                "{\"bus\":0,\"slot\":5,\"function\":1,\"qdev_id\":\"rng0\"}]}]";
        struct json_object *pci = json_tokener_parse(answer);
        _cleanup_free_ QemuPciSlot *slots = NULL;
        size_t n = 0;
        static const QemuPciSlot want[] = {
                { "pci.5", 0, 2, 0 }, { "net1", 5, 0, 0 }, { "pci.1", 0, 3, 0 }, { "net0", 1, 0, 0 },
                /* A bridge not made from a controller: the guest's number is all there is. */
                { "other", 0, 4, 0 }, { "net2", 3, 1, 0 }, { "rng0", 0, 5, 1 },
        };

        assert_non_null(pci);
        assert_int_equal(qemu_pci_slots(pci, &slots, &n), 0);
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(slots[i].qdev_id, want[i].qdev_id);
                assert_int_equal(slots[i].bus, want[i].bus);
                assert_int_equal(slots[i].slot, want[i].slot);
                assert_int_equal(slots[i].function, want[i].function);
        }
        json_object_put(pci);
}

static DomainDef *parse_os(const char *os_attrs, const char *os, const char *features) {
        _cleanup_free_ char *xml = NULL;
        DomainDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>fw</name><memory unit='MiB'>128</memory>"
                             "<os%s><type arch='x86_64' machine='q35'>hvm</type>%s</os>%s<devices/></domain>",
                             os_attrs, os, features ?: "") >= 0);
        if (domain_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("%s: %s", xml, e.message);
        return def;
}

/* UEFI: the read-only code as pflash unit 0, the domain's variable store as unit 1; a secure-boot loader
 * with SMM and the flash's secure mode. */
static void test_firmware(void **state) {
        _cleanup_(domain_def_freep) DomainDef *split = parse_os(
                "", "<loader readonly='yes' type='pflash'>/fw/CODE,1.fd</loader><nvram>/v/a,b_VARS.fd</nvram>", NULL);
        _cleanup_(domain_def_freep) DomainDef *secure = parse_os(
                " firmware='efi'", "<loader readonly='yes' secure='yes' type='pflash'>/fw/SB.fd</loader>"
                "<nvram template='/fw/T.fd'><source file='/v/sb.fd'/></nvram>", NULL);
        _cleanup_(domain_def_freep) DomainDef *combined = parse_os(
                "", "<loader readonly='no' type='pflash'>/v/OVMF.fd</loader><nvram>/v/ignored.fd</nvram>", NULL);
        _cleanup_(domain_def_freep) DomainDef *rom = parse_os("", "<loader>/fw/bios.bin</loader>",
                                                               "<features><acpi/><smm state='on'/></features>");
        _cleanup_(domain_def_freep) DomainDef *unresolved = parse_os(" firmware='efi'", "", NULL);
        _cleanup_(domain_def_freep) DomainDef *bios = parse_os(" firmware='bios'", "", "<features><acpi/></features>");
        _cleanup_(qemu_command_done) QemuCommand c = {}, d = {}, e = {}, f = {}, g = {};

        build_ok(split, &params, &c);
        assert_string_equal(opt(&c, "-drive", 0), "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE,,1.fd");
        assert_string_equal(opt(&c, "-drive", 1), "if=pflash,format=raw,unit=1,file=/v/a,,b_VARS.fd");
        assert_null(opt(&c, "-global", 0));
        assert_string_equal(opt(&c, "-machine", 0), "q35,usb=off,dump-guest-core=off,acpi=off");

        build_ok(secure, &params, &d);
        assert_string_equal(opt(&d, "-drive", 0), "if=pflash,format=raw,unit=0,readonly=on,file=/fw/SB.fd");
        assert_string_equal(opt(&d, "-drive", 1), "if=pflash,format=raw,unit=1,file=/v/sb.fd");
        assert_string_equal(opt(&d, "-global", 0), "driver=cfi.pflash01,property=secure,value=on");
        assert_string_equal(opt(&d, "-machine", 0), "q35,usb=off,dump-guest-core=off,acpi=off,smm=on");

        /* Code and variables in one writable image: no second flash. */
        build_ok(combined, &params, &e);
        assert_string_equal(opt(&e, "-drive", 0), "if=pflash,format=raw,unit=0,file=/v/OVMF.fd");
        assert_null(opt(&e, "-drive", 1));

        build_ok(rom, &params, &f);
        assert_string_equal(opt(&f, "-bios", 0), "/fw/bios.bin");
        assert_null(opt(&f, "-drive", 0));
        assert_string_equal(opt(&f, "-machine", 0), "q35,usb=off,dump-guest-core=off,smm=on");

        /* firmware='efi' is resolved at start (qemu_firmware_prepare); never silently SeaBIOS. */
        build_fails(unresolved, VB_ERROR_NOT_SUPPORTED, "firmware='efi'");
        /* firmware='bios' without a descriptor is QEMU's own SeaBIOS. */
        build_ok(bios, &params, &g);
        assert_null(opt(&g, "-bios", 0));
        assert_null(opt(&g, "-drive", 0));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_firmware),         cmocka_unit_test(test_smp_current),
                cmocka_unit_test(test_machine),      cmocka_unit_test(test_accel_and_cpu),
                cmocka_unit_test(test_disks),        cmocka_unit_test(test_interfaces),
                cmocka_unit_test(test_chardevs),     cmocka_unit_test(test_graphics_input),
                cmocka_unit_test(test_direct),       cmocka_unit_test(test_host_devices),
                cmocka_unit_test(test_pci_controllers), cmocka_unit_test(test_query_pci_buses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
