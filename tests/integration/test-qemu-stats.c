/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Statistics of real QEMUs: the tiny guest (tests/guest/build-guest) under TCG with a virtio disk and a
 * virtio balloon: CPU time grows, the disk's read counters grow when the guest reads it at boot, SetMemory
 * live moves balloon.current; SetVCPUs live hot-plugs a vCPU the guest brings online and unplugs it; what
 * virtbusd keeps of QEMU's answers, asked again after a command changed QEMU, and calls at the same time
 * sharing one set of queries (counted in virtbusd's debug log); and GetAllDomainStats over ten running
 * QEMUs at once. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define D HARNESS_DOMAIN_INTERFACE
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static void get_stats(sd_bus *bus, const char *path, uint64_t groups, HarnessStats *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, D, "GetStats", "tt", groups, UINT64_C(0));
        harness_stats_read(reply, ret);
}

static char *file_in(Harness *h, const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", harness_dir(h), name) >= 0);
        return p;
}

static void test_guest_stats(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *serial = file_in(h, "stats.serial"), *image = file_in(h, "stats.img"), *xml = NULL,
                            *path = NULL;
        HarnessStats before = {}, after = {}, s = {};
        uint64_t deadline;
        int fd;

        fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 4 << 20), 0);
        close(fd);
        (void) unlink(serial);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>stats</name><memory unit='MiB'>192</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                             "<target dev='vda' bus='virtio'/></disk>"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial>"
                             "<memballoon model='virtio'><stats period='1'/></memballoon></devices></domain>",
                             g, g, image, serial) >= 0);
        path = harness_define_domain(bus, xml);

        /* Paused at first: the guest has read nothing yet. */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "Start", "t", UINT64_C(1)));
        get_stats(bus, path, 0, &before);
        assert_int_equal(harness_stats_number(&before, "state.state", 'i'), 3);
        assert_int_equal(harness_stats_number(&before, "block.count", 'u'), 1);
        assert_string_equal(harness_stats_string(&before, "block.0.name"), "vda");
        assert_string_equal(harness_stats_string(&before, "block.0.path"), image);
        assert_int_equal(harness_stats_number(&before, "block.0.rd.bytes", 't'), 0);
        assert_int_equal(harness_stats_number(&before, "block.0.capacity", 't'), 4 << 20);
        (void) harness_stats_number(&before, "block.0.physical", 't');
        (void) harness_stats_number(&before, "block.0.wr.reqs", 't');
        (void) harness_stats_number(&before, "block.0.fl.times", 't');
        assert_int_equal(harness_stats_number(&before, "vcpu.current", 'u'), 1);
        assert_int_equal(harness_stats_number(&before, "vcpu.0.state", 'i'), 1);
        (void) harness_stats_number(&before, "vcpu.0.time", 't');
        assert_int_equal(harness_stats_number(&before, "balloon.maximum", 't'), 192 * 1024);
        assert_int_equal(harness_stats_number(&before, "balloon.current", 't'), 192 * 1024);
        assert_true(harness_stats_number(&before, "balloon.rss", 't') > 0);
        assert_int_equal(harness_stats_number(&before, "net.count", 'u'), 0);
        (void) harness_stats_number(&before, "cpu.user", 't');
        (void) harness_stats_number(&before, "cpu.system", 't');

        /* Running, the guest finds its disk (reading its partition table) and loads the balloon driver. */
        harness_domain_call(bus, path, "Resume");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda", 1, GUEST_TIMEOUT_USEC);
        get_stats(bus, path, 0, &after);
        assert_int_equal(harness_stats_number(&after, "state.state", 'i'), 1);
        assert_true(harness_stats_number(&after, "cpu.time", 't') > harness_stats_number(&before, "cpu.time", 't'));
        assert_true(harness_stats_number(&after, "vcpu.0.time", 't') > harness_stats_number(&before, "vcpu.0.time", 't'));
        /* cpu.time is the whole process' (its vCPU thread's included), read after cpu.user and cpu.system. */
        assert_true(harness_stats_number(&after, "cpu.time", 't') >=
                    harness_stats_number(&after, "cpu.user", 't') + harness_stats_number(&after, "cpu.system", 't'));
        assert_true(harness_stats_number(&after, "block.0.rd.bytes", 't') > 0);
        assert_true(harness_stats_number(&after, "block.0.rd.reqs", 't') > 0);
        harness_stats_done(&before);
        harness_stats_done(&after);

        /* Two calls in a row: CPU time goes on growing. */
        get_stats(bus, path, 2, &before);
        usleep(100 * 1000);
        get_stats(bus, path, 2, &after);
        assert_true(harness_stats_number(&after, "cpu.time", 't') > harness_stats_number(&before, "cpu.time", 't'));
        harness_stats_done(&before);
        harness_stats_done(&after);

        /* SetMemory live: the guest's balloon driver gives 64 MiB back. */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "SetMemory", "tt", UINT64_C(128 * 1024), UINT64_C(1)));
        deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;
        for (;;) {
                get_stats(bus, path, 4, &s);
                if (harness_stats_number(&s, "balloon.current", 't') == 128 * 1024)
                        break;
                if (harness_now_usec() > deadline)
                        fail_msg("balloon.current is still %llu KiB",
                                 (unsigned long long) harness_stats_number(&s, "balloon.current", 't'));
                harness_stats_done(&s);
                usleep(100 * 1000);
        }
        harness_stats_done(&s);

        /* The guest reports its own memory every second (<stats period='1'/>): what it has in all (less than the
         * 192 MiB it was given: the kernel's own and, once the report follows the balloon, the 64 MiB it took),
         * and what is free and usable out of that. */
        deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;
        for (;;) {
                get_stats(bus, path, 4, &s);
                if (harness_stats_type(&s, "balloon.available") == 't')
                        break;
                if (harness_now_usec() > deadline)
                        fail_msg("the guest reported no memory statistics");
                harness_stats_done(&s);
                usleep(200 * 1000);
        }
        print_message("guest memory: available %llu KiB, usable %llu KiB, unused %llu KiB\n",
                      (unsigned long long) harness_stats_number(&s, "balloon.available", 't'),
                      (unsigned long long) harness_stats_number(&s, "balloon.usable", 't'),
                      (unsigned long long) harness_stats_number(&s, "balloon.unused", 't'));
        assert_true(harness_stats_number(&s, "balloon.available", 't') < 192 * 1024);
        assert_true(harness_stats_number(&s, "balloon.available", 't') > 64 * 1024);
        assert_true(harness_stats_number(&s, "balloon.usable", 't') <= harness_stats_number(&s, "balloon.available", 't'));
        assert_true(harness_stats_number(&s, "balloon.unused", 't') > 0);
        assert_true(harness_stats_number(&s, "balloon.last-update", 't') > 0);
        (void) harness_stats_number(&s, "balloon.minor_fault", 't');
        harness_stats_done(&s);
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, path, "Undefine");
}

/* How many times virtbusd sent QMP command since the log had offset bytes (its debug log has every
 * message: "QMP> {"execute":"query-block",...}"). */
static unsigned sent_since(Harness *h, size_t offset, const char *command) {
        _cleanup_free_ char *log = harness_read_file(harness_daemon_log_path(h)), *needle = NULL;
        unsigned n = 0;

        assert_non_null(log);
        assert_true(strlen(log) >= offset);
        assert_true(asprintf(&needle, "QMP> {\"execute\":\"%s\"", command) >= 0);
        for (const char *p = log + offset; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static size_t log_size(Harness *h) {
        _cleanup_free_ char *log = harness_read_file(harness_daemon_log_path(h));

        assert_non_null(log);
        return strlen(log);
}

typedef struct StatsPending {
        bool done;
        HarnessStats stats;
} StatsPending;

static int on_stats(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        StatsPending *p = userdata;

        assert_null(sd_bus_message_get_error(m));
        harness_stats_read(m, &p->stats);
        p->done = true;
        return 0;
}

/* What virtbusd keeps of QEMU's answers: a second call asks QEMU only for the disks' counters (and the
 * guest's memory report, which a guest that never ran has not made); the image's allocated size is read
 * from the file; a command that changes QEMU (the balloon's target) has everything asked again. Calls made
 * while QEMU is stopped (SIGSTOP) wait for one set of queries. */
static void test_kept_and_shared(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *image = file_in(h, "kept.img"), *xml = NULL, *path = NULL;
        static const char * const kept[] = { "query-block", "query-balloon", "query-cpus-fast" };
        StatsPending calls[4] = {};
        sd_bus_slot *slots[ELEMENTSOF(calls)] = {};
        HarnessStats s = {};
        struct stat st;
        char buf[4096];
        uint64_t first = 0;
        size_t offset;
        pid_t pid;
        int fd;

        fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 4 << 20), 0);
        close(fd);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>kept</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                             "<target dev='vda' bus='virtio'/></disk>"
                             "<memballoon model='virtio'><stats period='1'/></memballoon></devices></domain>",
                             g, g, image) >= 0);
        path = harness_define_domain(bus, xml);
        /* Paused: nothing in the guest changes what QEMU reports. */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "Start", "t", UINT64_C(1)));
        get_stats(bus, path, 0, &s);
        assert_int_equal(harness_stats_number(&s, "block.0.physical", 't'), 0);
        harness_stats_done(&s);

        /* The second call: only the counters (and the report not made yet). */
        offset = log_size(h);
        get_stats(bus, path, 0, &s);
        assert_int_equal(sent_since(h, offset, "query-blockstats"), 1);
        assert_int_equal(sent_since(h, offset, "qom-get"), 1);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                if (sent_since(h, offset, kept[i]) != 0)
                        fail_msg("%s was asked again", kept[i]);
        assert_int_equal(harness_stats_number(&s, "block.0.capacity", 't'), 4 << 20);
        assert_int_equal(harness_stats_number(&s, "balloon.current", 't'), 128 * 1024);
        assert_int_equal(harness_stats_number(&s, "vcpu.current", 'u'), 1);
        (void) harness_stats_number(&s, "vcpu.0.time", 't');
        harness_stats_done(&s);

        /* The image grows on the host: its allocated size now, without asking QEMU. */
        fd = open(image, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        memset(buf, 0x5a, sizeof buf);
        for (off_t o = 1 << 20; o < 2 << 20; o += (off_t) sizeof buf)
                assert_int_equal(pwrite(fd, buf, sizeof buf, o), (ssize_t) sizeof buf);
        assert_int_equal(fsync(fd), 0);
        close(fd);
        assert_int_equal(stat(image, &st), 0);
        assert_true(st.st_blocks > 0);
        offset = log_size(h);
        get_stats(bus, path, 32, &s);
        assert_int_equal(harness_stats_number(&s, "block.0.physical", 't'), (uint64_t) st.st_blocks * 512);
        assert_int_equal(sent_since(h, offset, "query-block"), 0);
        harness_stats_done(&s);

        /* A new balloon target is a command that changes QEMU: what was kept is asked again. */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "SetMemory", "tt", UINT64_C(96 * 1024), UINT64_C(1)));
        offset = log_size(h);
        get_stats(bus, path, 0, &s);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                if (sent_since(h, offset, kept[i]) != 1)
                        fail_msg("%s was not asked again after the balloon command", kept[i]);
        harness_stats_done(&s);

        /* QEMU stopped: four calls arrive (the ListDomains after them is answered once all four were taken:
         * one connection, in order) and wait for one set of queries; QEMU goes on and all four are answered. */
        pid = harness_qemu_pid(h, harness_get_string(bus, path, D, "UUID"));
        assert_true(pid > 1);
        offset = log_size(h);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                assert_int_equal(sd_bus_call_method_async(bus, &slots[i], HARNESS_SERVICE, path, D, "GetStats", on_stats,
                                                          &calls[i], "tt", UINT64_C(0), UINT64_C(0)),
                                 1);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        assert_int_equal(kill(pid, SIGCONT), 0);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;

                while (!calls[i].done) {
                        if (harness_now_usec() > deadline)
                                fail_msg("GetStats %zu was not answered", i);
                        if (sd_bus_process(bus, NULL) == 0)
                                (void) sd_bus_wait(bus, 100 * 1000);
                }
                /* All four have the replies of the same queries. */
                if (i == 0)
                        first = harness_stats_number(&calls[i].stats, "block.0.rd.reqs", 't');
                assert_int_equal(harness_stats_number(&calls[i].stats, "block.0.rd.reqs", 't'), first);
                harness_stats_done(&calls[i].stats);
                sd_bus_slot_unref(slots[i]);
        }
        assert_int_equal(sent_since(h, offset, "query-blockstats"), 1);
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, path, "Undefine");
}

static uint64_t real_now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* The guest's memory report (<stats period='5'>) is kept from the very first call: QEMU asks the guest
 * for the next one five seconds after this one came, which was no earlier than its last-update (a
 * real-time second). Asked by the balloon's short QOM path. The first call on the domain is followed at
 * once by a second, which must not ask for the report when the real-time clock is still before
 * last-update + 5 s (most of the time; said when not); after those 5 s a call asks again. Before, a report
 * was kept only once a second report had been seen, so the second call always asked. */
static void test_guest_report_kept(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *serial = file_in(h, "report.serial"), *xml = NULL, *path = NULL;
        HarnessStats s = {};
        uint64_t update, after_first;
        size_t offset;

        (void) unlink(serial);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>report</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial>"
                             "<memballoon model='virtio'><stats period='5'/></memballoon></devices></domain>",
                             g, g, serial) >= 0);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        /* The balloon driver reports once when it loads, before the guest says it booted (QEMU takes the
         * report in from its loop: a moment more). */
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        usleep(500 * 1000);

        offset = log_size(h);
        get_stats(bus, path, 4, &s);
        after_first = real_now_usec();
        assert_int_equal(sent_since(h, offset, "qom-get"), 1);
        assert_int_equal(sent_since(h, offset, "qom-get\",\"arguments\":{\"path\":\"balloon0"), 1);
        update = harness_stats_number(&s, "balloon.last-update", 't');
        assert_true(update > 0);
        assert_true(harness_stats_number(&s, "balloon.available", 't') > 0);
        harness_stats_done(&s);

        offset = log_size(h);
        get_stats(bus, path, 4, &s);
        if (after_first < (update + 5) * 1000000ULL) {
                assert_int_equal(sent_since(h, offset, "qom-get"), 0);
                assert_int_equal(harness_stats_number(&s, "balloon.last-update", 't'), update);
        } else
                print_message("test_guest_report_kept: the first call came %.1f s after the report's last-update: "
                              "the second call was not checked\n",
                              (double) (after_first - update * 1000000ULL) / 1e6);
        harness_stats_done(&s);

        /* A period after the first call, the next report may be in: asked again. */
        usleep(5200 * 1000);
        offset = log_size(h);
        get_stats(bus, path, 4, &s);
        assert_int_equal(sent_since(h, offset, "qom-get"), 1);
        harness_stats_done(&s);
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, path, "Undefine");
}

static uint32_t get_u32_property(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t v = 0;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 'u', &v), 0);
        return v;
}

static uint32_t vcpus_now(sd_bus *bus, const char *path) {
        HarnessStats s = {};
        uint32_t n;

        get_stats(bus, path, 8, &s);
        n = (uint32_t) harness_stats_number(&s, "vcpu.current", 'u');
        harness_stats_done(&s);
        return n;
}

/* SetVCPUs live: QEMU starts with one of two vCPUs (<vcpu current='1'>2</vcpu>: -smp 1,maxcpus=2); the
 * second is hot-plugged, the guest brings it online, and it is unplugged again. */
static void test_vcpu_hotplug(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *serial = file_in(h, "vcpus.serial"), *xml = NULL, *path = NULL, *live = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;

        (void) unlink(serial);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>vcpus</name><memory unit='MiB'>128</memory>"
                             "<vcpu current='1'>2</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial></devices></domain>",
                             g, g, serial) >= 0);
        path = harness_define_domain(bus, xml);
        assert_int_equal(get_u32_property(bus, path, "VCPUs"), 1);
        assert_int_equal(get_u32_property(bus, path, "MaxVCPUs"), 2);
        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-CPUS: 0", 1, GUEST_TIMEOUT_USEC);
        assert_int_equal(vcpus_now(bus, path), 1);

        /* More than <vcpu> allows: refused, nothing changes. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "at most 2 vCPUs", path, D, "SetVCPUs", "ut", 3, UINT64_C(1));
        /* The maximum of a running domain: only in its saved definition. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flag 4", path, D, "SetVCPUs", "ut", 3, UINT64_C(5));

        /* Hot-plugged: the guest brings it online. */
        w = harness_watch_signal(bus, path, HARNESS_PROPERTIES_INTERFACE, "PropertiesChanged");
        sd_bus_message_unref(harness_call_ok(bus, path, D, "SetVCPUs", "ut", 2, UINT64_C(1)));
        sig = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(sig);
        assert_int_equal(get_u32_property(bus, path, "VCPUs"), 2);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-CPUS: 0-1", 1, GUEST_TIMEOUT_USEC);
        assert_int_equal(vcpus_now(bus, path), 2);
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, "<vcpu>2</vcpu>"));
        free(live);
        /* The saved definition did not change (flag 1 only). */
        live = harness_domain_xml(bus, path, 1);
        assert_non_null(strstr(live, "current='1'"));

        /* Unplugged again: the guest lets it go (the third change of its online list). */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "SetVCPUs", "ut", 1, UINT64_C(1)));
        assert_int_equal(get_u32_property(bus, path, "VCPUs"), 1);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-CPUS: ", 3, GUEST_TIMEOUT_USEC);
        /* None at all: refused. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "SetVCPUs", "ut", 0, UINT64_C(1));
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, path, "Undefine");
}

static void test_all_running(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        char *paths[10] = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t t0, t1;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_free_ char *xml = NULL;

                assert_true(asprintf(&xml,
                                     "<domain type='qemu'><name>many%zu</name><memory unit='MiB'>32</memory>"
                                     "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>",
                                     i) >= 0);
                paths[i] = harness_define_domain(bus, xml);
                harness_domain_call(bus, paths[i], "Start");
        }
        t0 = harness_now_usec();
        reply = harness_call_ok(bus, M, "GetAllDomainStats", "tt", UINT64_C(0), UINT64_C(1));
        t1 = harness_now_usec();
        print_message("GetAllDomainStats of 10 running QEMUs: %.1f ms\n", (double) (t1 - t0) / 1000.0);
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(oa{sv})"), 1);
        while ((r = sd_bus_message_enter_container(reply, 'r', "oa{sv}")) > 0) {
                HarnessStats s = {};
                const char *path;

                assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
                assert_string_equal(path, paths[n]);
                harness_stats_read(reply, &s);
                assert_int_equal(harness_stats_number(&s, "state.state", 'i'), 1);
                (void) harness_stats_number(&s, "cpu.time", 't');
                (void) harness_stats_number(&s, "vcpu.0.time", 't');
                assert_int_equal(harness_stats_number(&s, "balloon.current", 't'), 32 * 1024);
                assert_int_equal(harness_stats_number(&s, "block.count", 'u'), 0);
                harness_stats_done(&s);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                n++;
        }
        assert_true(r >= 0);
        assert_int_equal(n, ELEMENTSOF(paths));
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                harness_domain_call(bus, paths[i], "Destroy");
                harness_domain_call(bus, paths[i], "Undefine");
                free(paths[i]);
        }
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* bench/stats-run: GetAllDomainStats (all groups, running only) over 1, 10 and 30 running diskless TCG
 * guests; the median and the slowest of 15 calls each. Only with VIRTBUS_STATS_BENCH=1. */
static void test_bench(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        static const size_t counts[] = { 1, 10, 30 };
        char *paths[30] = {};
        size_t started = 0;

        if (!getenv("VIRTBUS_STATS_BENCH"))
                skip();
        for (size_t c = 0; c < ELEMENTSOF(counts); c++) {
                uint64_t t[15];

                for (; started < counts[c]; started++) {
                        _cleanup_free_ char *xml = NULL;

                        assert_true(asprintf(&xml,
                                             "<domain type='qemu'><name>bench%zu</name><memory unit='MiB'>32</memory>"
                                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>",
                                             started) >= 0);
                        paths[started] = harness_define_domain(bus, xml);
                        harness_domain_call(bus, paths[started], "Start");
                }
                usleep(500 * 1000);
                for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                        uint64_t t0 = harness_now_usec();
                        sd_bus_message_unref(harness_call_ok(bus, M, "GetAllDomainStats", "tt", UINT64_C(0), UINT64_C(1)));
                        t[i] = harness_now_usec() - t0;
                        usleep(50 * 1000);
                }
                qsort(t, ELEMENTSOF(t), sizeof t[0], cmp_u64);
                print_message("stats-bench: %zu guests: GetAllDomainStats median %.2f ms, max %.2f ms\n", counts[c],
                              (double) t[ELEMENTSOF(t) / 2] / 1000.0, (double) t[ELEMENTSOF(t) - 1] / 1000.0);
        }
        for (size_t i = 0; i < started; i++) {
                harness_domain_call(bus, paths[i], "Destroy");
                harness_domain_call(bus, paths[i], "Undefine");
                free(paths[i]);
        }
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_guest_stats, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_vcpu_hotplug, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_kept_and_shared, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_guest_report_kept, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_all_running, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_bench, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-stats: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        /* The benchmark without debug logging (it writes every QMP message). */
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) {
                "--driver", "qemu", "--log-level", getenv("VIRTBUS_STATS_BENCH") ? "info" : "debug", NULL } });
}
