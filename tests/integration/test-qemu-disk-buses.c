/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What GetDomainCapabilities lists must start: for every machine type this host's QEMU has (pc, q35,
 * isapc, microvm) and every disk bus the capabilities list for it (type 'qemu', TCG), a minimal domain with
 * one disk on that bus (and the controller the bus needs; ACPI but on isapc, which has none) is started paused with the real QEMU, and QEMU's
 * own answer (query-block, read through GetStats: the entry whose qdev is the disk's alias, with the
 * image's size) shows it holds the device (the bus's own QEMU device, on its command line) with the image attached; then Destroy. No guest runs: the tiny
 * guest has no drivers for several of these buses, and holding the device is what is checked. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define D HARNESS_DOMAIN_INTERFACE
#define DISK_SIZE (1440 * 1024)

static const char * const machines[] = { "pc", "q35", "isapc", "microvm" };

/* The values of <enum name='bus'> inside <disk> of the capabilities, as a NULL-terminated array. */
static char **disk_buses(sd_bus *bus, const char *machine) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, M, "GetDomainCapabilities", "sssst", "", "x86_64", machine, "qemu",
                                UINT64_C(0));
        const char *xml, *disk, *end, *p;
        char **out = calloc(16, sizeof(char *));
        size_t n = 0;

        assert_non_null(out);
        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        disk = strstr(xml, "<disk supported='yes'>");
        assert_non_null(disk);
        p = strstr(disk, "<enum name='bus'>");
        end = strstr(disk, "</disk>");
        assert_true(p && end && p < end);
        end = strstr(p, "</enum>");
        while ((p = strstr(p, "<value>")) && p < end) {
                const char *e;

                p += strlen("<value>");
                e = strchr(p, '<');
                assert_true(n < 15);
                out[n++] = strndup(p, (size_t) (e - p));
        }
        assert_true(n > 0);
        return out;
}

/* The QEMU device a disk on this bus is: it must be on QEMU's command line. */
static const char *qemu_device_for(const char *machine, const char *busname) {
        static const struct {
                const char *bus, *device;
        } table[] = {
                { "virtio", "virtio-blk-pci," }, { "ide", "ide-hd," }, { "fdc", "floppy," },
                { "sata", "ich9-ahci," },        { "scsi", "scsi-hd," }, { "usb", "usb-storage," },
        };
        /* q35's SATA disks sit on its built-in AHCI controller. */
        if (streq(busname, "sata") && streq(machine, "q35"))
                return "ide-hd,bus=ide.";
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(busname, table[i].bus))
                        return table[i].device;
        return NULL;
}

static char *qemu_cmdline(pid_t pid) {
        char proc[64], *s = calloc(65536, 1);
        size_t n;
        FILE *f;

        assert_non_null(s);
        snprintf(proc, sizeof proc, "/proc/%d/cmdline", (int) pid);
        f = fopen(proc, "re");
        assert_non_null(f);
        n = fread(s, 1, 65535, f);
        fclose(f);
        for (size_t i = 0; i + 1 < n; i++)
                if (s[i] == '\0')
                        s[i] = ' ';
        return s;
}

/* The disk and controller for a bus: target name, device, and what else the bus needs. */
static void disk_for(const char *busname, const char **ret_dev, const char **ret_device, const char **ret_extra) {
        *ret_device = "disk";
        *ret_extra = "";
        if (streq(busname, "virtio"))
                *ret_dev = "vda";
        else if (streq(busname, "ide"))
                *ret_dev = "hda";
        else if (streq(busname, "fdc")) {
                *ret_dev = "fda";
                *ret_device = "floppy";
        } else if (streq(busname, "sata")) {
                *ret_dev = "sda";
                *ret_extra = "<controller type='sata' index='0'/>";
        } else if (streq(busname, "scsi")) {
                *ret_dev = "sda";
                *ret_extra = "<controller type='scsi' index='0'/>";
        } else if (streq(busname, "usb")) {
                *ret_dev = "sda";
                *ret_extra = "<controller type='usb' index='0' model='qemu-xhci'/>";
        } else
                fail_msg("a disk bus this test does not know: '%s'", busname);
}

static void start_with_disk(Harness *h, const char *machine, const char *busname, const char *image) {
        sd_bus *bus = harness_bus_root(h);
        const char *dev = NULL, *device = NULL, *extra = NULL;
        _cleanup_free_ char *name = NULL, *xml = NULL, *path = NULL, *live = NULL, *cmdline = NULL;
        HarnessStats s = {};
        sd_bus_message *reply;

        disk_for(busname, &dev, &device, &extra);
        assert_true(asprintf(&name, "bus-%s-%s", machine, busname) >= 0);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='%s'>hvm</type></os>%s<devices>"
                             "<disk type='file' device='%s'><driver name='qemu' type='raw'/><source file='%s'/>"
                             "<target dev='%s' bus='%s'/></disk>%s"
                             "<memballoon model='none'/></devices></domain>",
                             name, machine, streq(machine, "isapc") ? "" : "<features><acpi/></features>", device,
                             image, dev, busname, extra) >= 0);
        print_message("%s: disk bus '%s'\n", machine, busname);
        path = harness_define_domain(bus, xml);
        sd_bus_message_unref(harness_call_ok(bus, path, D, "Start", "t", UINT64_C(1)));
        cmdline = qemu_cmdline(harness_qemu_pid(h, harness_get_string(bus, path, D, "UUID")));
        if (!strstr(cmdline, qemu_device_for(machine, busname)))
                fail_msg("%s, bus '%s': QEMU has no '%s' device: %s", machine, busname,
                         qemu_device_for(machine, busname), cmdline);
        /* Block group only: QEMU's query-block entry for the disk's alias gives its capacity. */
        reply = harness_call_ok(bus, path, D, "GetStats", "tt", UINT64_C(32), UINT64_C(0));
        harness_stats_read(reply, &s);
        sd_bus_message_unref(reply);
        assert_int_equal(harness_stats_number(&s, "block.count", 'u'), 1);
        assert_string_equal(harness_stats_string(&s, "block.0.name"), dev);
        if (harness_stats_type(&s, "block.0.capacity") != 't')
                fail_msg("%s, bus '%s': QEMU has no block device for the disk's alias", machine, busname);
        assert_int_equal(harness_stats_number(&s, "block.0.capacity", 't'), DISK_SIZE);
        harness_stats_done(&s);
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, "<alias name="));
        harness_domain_call(bus, path, "Destroy");
        sd_bus_message_unref(harness_call_ok(bus, path, D, "Undefine", "t", UINT64_C(0)));
}

static void test_listed_buses_start(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *image = NULL;
        unsigned started = 0;
        int fd;

        assert_true(asprintf(&image, "%s/bus.img", harness_dir(h)) >= 0);
        fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
        close(fd);

        for (size_t m = 0; m < ELEMENTSOF(machines); m++) {
                char **buses = disk_buses(harness_bus_root(h), machines[m]);

                for (char **b = buses; *b; b++) {
                        start_with_disk(h, machines[m], *b, image);
                        started++;
                        free(*b);
                }
                free(buses);
        }
        print_message("%u machine/bus pairs started\n", started);
        assert_true(started >= ELEMENTSOF(machines));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_listed_buses_start, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-disk-buses: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", "--log-level", "debug", NULL } });
}
