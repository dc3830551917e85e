/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The qemu driver with the real QEMU: diskless machines (KVM where /dev/kvm opens, TCG otherwise) and
 * a tiny Linux guest (tests/guest/build-guest: Debian's cloud kernel and busybox) booted directly under
 * TCG with its serial console in a file, where its /init prints what it sees. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static const char *guest(Harness *h) {
        return harness_guest_dir(h);
}

static char *serial_path(Harness *h, const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s.serial", harness_dir(h), name) >= 0);
        return p;
}

/* A diskless machine: nothing to boot, but every device kind we put on the command line. extra: more
 * elements of <domain> (before <devices>). */
static char *diskless_xml_extra(const char *type, const char *name, const char *extra, const char *devices) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='%s'>\n"
                             "  <name>%s</name>\n"
                             "  <memory unit='MiB'>64</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
                             "  <features><acpi/></features>\n"
                             "%s"
                             "  <devices>%s</devices>\n"
                             "</domain>\n",
                             type, name, extra ?: "", devices ?: "") >= 0);
        return x;
}

static char *diskless_xml(const char *type, const char *name, const char *devices) {
        return diskless_xml_extra(type, name, NULL, devices);
}

/* The tiny guest, serial console into a file; extra: more elements for <domain> (lifecycle) and for
 * <devices>, and words for the kernel command line. */
static char *guest_xml_full(Harness *h, const char *name, const char *domain_extra, const char *cmdline_extra,
                            const char *devices_extra) {
        const char *g = guest(h);
        _cleanup_free_ char *serial = serial_path(h, name);
        char *x;

        (void) unlink(serial);
        assert_true(asprintf(&x,
                             "<domain type='qemu'>\n"
                             "  <name>%s</name>\n"
                             "  <memory unit='MiB'>192</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os>\n"
                             "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                             "    <kernel>%s/vmlinuz</kernel>\n"
                             "    <initrd>%s/initrd.gz</initrd>\n"
                             "    <cmdline>console=ttyS0 quiet %s</cmdline>\n"
                             "  </os>\n"
                             "  <features><acpi/></features>\n"
                             "  %s\n"
                             "  <devices>\n"
                             "    <serial type='file'><source path='%s'/><target port='0'/></serial>\n"
                             "    %s\n"
                             "  </devices>\n"
                             "</domain>\n",
                             name, g, g, cmdline_extra, domain_extra, serial, devices_extra) >= 0);
        return x;
}

static char *guest_xml(Harness *h, const char *name, const char *on_poweroff) {
        _cleanup_free_ char *lifecycle = NULL;

        assert_true(asprintf(&lifecycle, "<on_poweroff>%s</on_poweroff>", on_poweroff ?: "destroy") >= 0);
        return guest_xml_full(h, name, lifecycle, "panic=-1", "");
}

static const char *state_of(Harness *h, const char *path) {
        return harness_get_string(harness_bus_root(h), path, DOMAIN_INTERFACE, "State");
}

static bool process_alive(pid_t pid) {
        char path[64];
        _cleanup_free_ char *stat = NULL;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        stat = harness_read_file(path);
        /* A zombie no longer runs. */
        return stat && !strstr(stat, ") Z ");
}

static char *uuid_of(Harness *h, const char *path) {
        return strdup(harness_get_string(harness_bus_root(h), path, DOMAIN_INTERFACE, "UUID"));
}

static void test_diskless(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "bare",
                                                "<serial type='pty'><target port='0'/></serial>"
                                                "<serial type='null'><target port='1'/></serial>"
                                                "<interface type='user'><mac address='52:54:00:00:00:11'/><model type='virtio'/></interface>"
                                                "<input type='tablet' bus='usb'/>"
                                                "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>"
                                                "<memballoon model='virtio'/>");
        _cleanup_free_ char *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path), *live = NULL, *log = NULL,
                            *cmdline = NULL, *proc = NULL;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        assert_string_equal(state_of(h, path), "running");
        pid = harness_qemu_pid(h, uuid);
        assert_true(pid > 1);
        assert_true(process_alive(pid));
        /* ps shows which domain it is. */
        assert_true(asprintf(&proc, "/proc/%d/cmdline", (int) pid) >= 0);
        cmdline = harness_read_file(proc);
        assert_non_null(cmdline);
        assert_string_equal(cmdline, "/usr/bin/qemu-system-x86_64");
        {
                _cleanup_free_ char *f = NULL;
                int fd = open(proc, O_RDONLY);
                char buf[8192];
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                assert_true(n > 0);
                for (ssize_t i = 0; i < n; i++)
                        if (!buf[i])
                                buf[i] = ' ';
                buf[n] = 0;
                assert_non_null(strstr(buf, "-name guest=bare,"));
        }

        /* The live XML: aliases, PCI addresses, the VNC port. The pty serial port has no pty on the host:
         * OpenConsole hands it out (test-qemu-console). */
        live = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(live, "<alias name='serial0'/>"));
        assert_non_null(strstr(live, "<alias name='net0'/>"));
        assert_null(strstr(live, "/dev/pts/"));
        assert_non_null(strstr(live, "type='pci'"));
        assert_null(strstr(live, "port='-1'"));
        assert_non_null(strstr(live, "port='59"));

        harness_domain_call(bus, path, "Suspend");
        assert_string_equal(state_of(h, path), "paused");
        harness_domain_call(bus, path, "Resume");
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Reset");

        harness_domain_call(bus, path, "Destroy");
        assert_string_equal(state_of(h, path), "shutoff");
        assert_false(process_alive(pid));
        assert_int_equal(harness_qemu_pid(h, uuid), 0);

        /* Its log is kept, with the command line. */
        free(proc);
        assert_true(asprintf(&proc, "%s/qemu/log/bare.log", harness_state_dir(h)) >= 0);
        log = harness_read_file(proc);
        assert_non_null(log);
        assert_non_null(strstr(log, "-name guest=bare"));
}

/* KVM, with the host's CPU (on KVM_PVM hosts QEMU needs arch-capabilities hidden for that). */
static void test_kvm(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml_extra("kvm", "fast", "  <cpu mode='host-passthrough'/>\n", NULL),
                            *path = NULL;
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

        if (fd < 0) {
                /* Without KVM a kvm domain is refused when defined, as libvirt does; the error names the way
                 * out. */
                harness_call_fails(bus, ERR("NotSupported"), "'qemu'", HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE,
                                   "DefineDomain", "st", xml, UINT64_C(0));
                return;
        }
        close(fd);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");
        assert_string_equal(state_of(h, path), "shutoff");
}

static void test_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *bad_disk = diskless_xml("qemu", "no-image",
                                                     "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                                                     "<source file='/nonexistent/virtbus.img'/><target dev='vda' bus='virtio'/></disk>");
        _cleanup_free_ char *path = harness_define_domain(bus, bad_disk), *xen = NULL, *xpath = NULL;

        /* QEMU's own sentence reaches the caller. */
        harness_call_fails(bus, ERR("OperationFailed"), "/nonexistent/virtbus.img", path, DOMAIN_INTERFACE, "Start", "t",
                           UINT64_C(0));
        assert_string_equal(state_of(h, path), "shutoff");

        xen = diskless_xml("qemu", "no-network", "<interface type='network'><source network='default'/></interface>");
        xpath = harness_define_domain(bus, xen);
        harness_call_fails(bus, ERR("NoSuchNetwork"), "'default'", xpath, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));

        /* Without ACPI the i440fx root bus cannot hot-plug: the caller learns why, and what to change. */
        {
                _cleanup_free_ char *noacpi = NULL, *npath = NULL, *live = NULL;

                assert_true(asprintf(&noacpi, "<domain type='qemu'><name>no-acpi</name><memory unit='MiB'>64</memory>"
                                              "<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
                                              "<devices><memballoon model='none'/></devices></domain>") >= 0);
                npath = harness_define_domain(bus, noacpi);
                harness_domain_call(bus, npath, "Start");
                harness_call_fails(bus, ERR("NotSupported"), "<features><acpi/></features>", npath, DOMAIN_INTERFACE,
                                   "AttachDevice", "st",
                                   "<interface type='user'><mac address='52:54:00:00:00:31'/><model type='virtio'/></interface>",
                                   UINT64_C(0));
                live = harness_domain_xml(bus, npath, 0);
                assert_null(strstr(live, "52:54:00:00:00:31"));
                harness_domain_call(bus, npath, "Destroy");
        }
}

static void test_guest_shutdown(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml(h, "tiny", NULL), *path = harness_define_domain(bus, xml),
                            *serial = serial_path(h, "tiny");

        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        harness_domain_call(bus, path, "Suspend");
        assert_string_equal(state_of(h, path), "paused");
        harness_domain_call(bus, path, "Resume");
        assert_string_equal(state_of(h, path), "running");

        /* ACPI: the guest sees the power button and powers off; Shutdown replies once it did. */
        harness_domain_call(bus, path, "Shutdown");
        assert_string_equal(state_of(h, path), "shutoff");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-POWEROFF", 1, GUEST_TIMEOUT_USEC);
}

static void test_restart_reconnect(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml(h, "survivor", NULL), *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path),
                            *serial = serial_path(h, "survivor");
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        pid = harness_qemu_pid(h, uuid);
        assert_true(pid > 1);

        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        /* The same process, still running (listed at once), and under control once its monitor connected. */
        assert_string_equal(state_of(h, path), "running");
        harness_domain_wait_connected(bus, path);
        assert_int_equal(harness_qemu_pid(h, uuid), pid);
        assert_true(process_alive(pid));
        harness_domain_call(bus, path, "Suspend");
        assert_string_equal(state_of(h, path), "paused");

        /* Paused across a restart stays paused. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_string_equal(state_of(h, path), "paused");
        harness_domain_wait_connected(bus, path);
        harness_domain_call(bus, path, "Resume");
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");
        assert_false(process_alive(pid));
        assert_string_equal(state_of(h, path), "shutoff");
}

/* One QMP command on a connection of the test's own; fails the test unless QEMU answers "return". */
static void qmp_command(FILE *f, const char *json) {
        char line[4096];

        assert_true(fputs(json, f) >= 0 && fputs("\r\n", f) >= 0 && fflush(f) == 0);
        while (fgets(line, sizeof line, f)) {
                if (strstr(line, "\"return\""))
                        return;
                if (strstr(line, "\"error\""))
                        fail_msg("QEMU refused %s: %s", json, line);
        }
        fail_msg("QEMU closed its monitor after %s", json);
}

/* A NIC that a hot-plug cut short left in QEMU (added, but virtbusd stopped before it recorded it): the
 * next virtbusd removes it when it connects. The stray NIC is made here by speaking QMP to the QEMU
 * while no virtbusd runs; the guest's kernel sees it come and go. */
static void test_stray_nic_removed(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml(h, "stray", NULL), *path = harness_define_domain(bus, xml),
                            *uuid = uuid_of(h, path), *serial = serial_path(h, "stray"), *live = NULL;
        FILE *f;

        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: lo", 1, GUEST_TIMEOUT_USEC);
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);

        f = harness_qmp_open(h, uuid);
        qmp_command(f, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"user\",\"id\":\"hostnet7\"}}");
        qmp_command(f, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-net-pci\","
                       "\"id\":\"net7\",\"netdev\":\"hostnet7\",\"mac\":\"52:54:00:aa:bb:77\"}}");
        fclose(f);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 lo", 1, GUEST_TIMEOUT_USEC);

        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, path);
        /* The guest was asked to let it go, and did. */
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: lo", 2, GUEST_TIMEOUT_USEC);
        live = harness_domain_xml(bus, path, 0);
        if (strstr(live, "52:54:00:aa:bb:77"))
                fail_msg("the stray NIC is in the live XML:\n%s", live);
        harness_domain_call(bus, path, "Destroy");
}

static bool link_exists(const char *name) {
        char path[128];
        snprintf(path, sizeof path, "/sys/class/net/%s", name);
        return access(path, F_OK) == 0;
}

/* A QMP command that takes a descriptor (getfd, add-fd): fd goes along (SCM_RIGHTS). */
static void qmp_command_fd(FILE *f, const char *json, int fd) {
        char line[4096], cbuf[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = (void *) json, .iov_len = strlen(json) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        assert_int_equal(fflush(f), 0);
        assert_int_equal(sendmsg(fileno(f), &mh, MSG_NOSIGNAL), (ssize_t) strlen(json));
        assert_int_equal(write(fileno(f), "\r\n", 2), 2);
        while (fgets(line, sizeof line, f)) {
                if (strstr(line, "\"return\""))
                        return;
                if (strstr(line, "\"error\""))
                        fail_msg("QEMU refused %s: %s", json, line);
        }
        fail_msg("QEMU closed its monitor after %s", json);
}

/* What virtbusd writes ahead of a hot-plug or an update (<uuid>.plug), as a virtbusd killed before QEMU's
 * answer leaves it. */
static void write_plug_record(Harness *h, const char *uuid, const char *record) {
        _cleanup_free_ char *p = NULL;
        FILE *f;

        assert_true(asprintf(&p, "%s/qemu/%s.plug", harness_runtime_dir(h), uuid) >= 0);
        f = fopen(p, "we");
        assert_non_null(f);
        assert_true(fputs(record, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void ip(Harness *h, const char * const *argv) {
        HarnessResult res = {};

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
        if (res.status != 0)
                fail_msg("%s %s %s failed: %s", argv[0], argv[1], argv[2], strempty(res.err));
        harness_result_done(&res);
}

/* A hot-plug of a type='direct' NIC that a kill of virtbusd cut after QEMU took the device: the record
 * ahead is there, and so are the macvtap (on a veth made here) and the NIC in QEMU, put there over
 * QMP while no virtbusd runs. The next virtbusd keeps the NIC: core's live XML shows it (with DeviceAdded),
 * and the macvtap is the domain's, deleted when it stops. */
static void test_cut_hotplug_macvtap_kept(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "keeper", "<memballoon model='none'/>"),
                            *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path), *live = NULL,
                            *record = NULL, *ifindex = NULL, *sys = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *added = NULL;
        char lower[16], peer[16], mvt[16], tap[32];
        const char *alias;
        FILE *f;
        pid_t pid;
        int fd;

        /* The lower device: a veth (this kernel has no dummy links). */
        snprintf(lower, sizeof lower, "vbtkd%d", (int) (getpid() % 100000));
        snprintf(peer, sizeof peer, "vbtkp%d", (int) (getpid() % 100000));
        snprintf(mvt, sizeof mvt, "vbtkm%d", (int) (getpid() % 100000));
        ip(h, (const char *[]) { "/usr/sbin/ip", "link", "add", lower, "type", "veth", "peer", "name", peer, NULL });
        ip(h, (const char *[]) { "/usr/sbin/ip", "link", "set", lower, "up", NULL });
        harness_domain_call(bus, path, "Start");
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);

        /* What the killed virtbusd had done: the macvtap made and handed to QEMU, the NIC added. */
        ip(h, (const char *[]) { "/usr/sbin/ip", "link", "add", "link", lower, "name", mvt, "type", "macvtap", "mode",
                                 "bridge", NULL });
        ip(h, (const char *[]) { "/usr/sbin/ip", "link", "set", mvt, "address", "52:54:00:aa:bb:78", "up", NULL });
        assert_true(asprintf(&sys, "/sys/class/net/%s/ifindex", mvt) >= 0);
        ifindex = harness_read_file(sys);
        assert_non_null(ifindex);
        snprintf(tap, sizeof tap, "/dev/tap%d", atoi(ifindex));
        fd = open(tap, O_RDWR | O_CLOEXEC | O_NOCTTY);
        assert_true(fd >= 0);
        f = harness_qmp_open(h, uuid);
        qmp_command_fd(f, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"fd-hostnet7\"}}", fd);
        close(fd);
        qmp_command(f, "{\"execute\":\"netdev_add\",\"arguments\":{\"type\":\"tap\",\"id\":\"hostnet7\","
                       "\"fd\":\"fd-hostnet7\"}}");
        qmp_command(f, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-net-pci\","
                       "\"id\":\"net7\",\"netdev\":\"hostnet7\",\"mac\":\"52:54:00:aa:bb:78\"}}");
        fclose(f);
        assert_true(asprintf(&record, "<interface type='direct'><mac address='52:54:00:aa:bb:78'/>"
                                      "<source dev='%s' mode='bridge'/><target dev='%s'/><model type='virtio'/>"
                                      "<alias name='net7'/></interface>", lower, mvt) >= 0);
        write_plug_record(h, uuid, record);

        /* QEMU held back (SIGSTOP) while virtbusd starts, so that DeviceAdded is watched for before the
         * reconnection can send it. */
        pid = harness_qemu_pid(h, uuid);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        w = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceAdded");
        assert_int_equal(kill(pid, SIGCONT), 0);
        added = harness_watch_next(w, GUEST_TIMEOUT_USEC);
        assert_non_null(added);
        assert_int_equal(sd_bus_message_read(added, "s", &alias), 1);
        assert_string_equal(alias, "net7");
        harness_domain_wait_connected(bus, path);
        /* Kept: in the live XML core serves. The reconnection is done once the record is gone. */
        free(sys);
        assert_true(asprintf(&sys, "%s/qemu/%s.plug", harness_runtime_dir(h), uuid) >= 0);
        for (uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC; access(sys, F_OK) == 0;) {
                if (harness_now_usec() > deadline)
                        fail_msg("the hot-plug record is still there");
                usleep(20 * 1000);
        }
        live = harness_domain_xml(bus, path, 0);
        if (!strstr(live, "52:54:00:aa:bb:78") || !strstr(live, "<alias name='net7'/>"))
                fail_msg("the kept NIC is not in the live XML:\n%s", live);
        assert_true(link_exists(mvt));

        /* The macvtap is the domain's: it goes when the domain stops. */
        harness_domain_call(bus, path, "Destroy");
        assert_false(link_exists(mvt));
        ip(h, (const char *[]) { "/usr/sbin/ip", "link", "del", lower, NULL });
}

static unsigned count_text(const char *file, const char *text) {
        _cleanup_free_ char *s = harness_read_file(file);
        unsigned n = 0;

        for (const char *p = s; p && (p = strstr(p, text)); p++)
                n++;
        return n;
}

/* virtbusd restarted after a kill, the domain's monitor connected again, its reconciliation done. */
static sd_bus *restarted(Harness *h, const char *path) {
        sd_bus *bus;

        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, path);
        return bus;
}

/* An UpdateDevice of a NIC's link state that a kill of virtbusd cut short: QEMU had the command
 * (stopped with SIGSTOP meanwhile, virtbusd's log shows it sent) and virtbusd never heard the answer. QEMU
 * cannot be asked for the link state: the next virtbusd sends the recorded one again and the live XML shows
 * it. */
static void test_cut_update_link(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "blinker",
                                                "<interface type='user'><mac address='52:54:00:aa:bb:79'/>"
                                                "<model type='virtio'/></interface><memballoon model='none'/>"),
                            *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path), *live = NULL;
        const char *down = "<interface type='user'><mac address='52:54:00:aa:bb:79'/><model type='virtio'/>"
                           "<link state='down'/></interface>";
        const char *log = harness_daemon_log_path(h);
        unsigned sent;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        pid = harness_qemu_pid(h, uuid);
        sent = count_text(log, "\"set_link\"");
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "UpdateDevice", NULL,
                                             NULL, "st", down, UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(bus) >= 0);
        harness_wait_for_text(log, "\"set_link\"", sent + 1, GUEST_TIMEOUT_USEC);
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        assert_int_equal(kill(pid, SIGCONT), 0);

        bus = restarted(h, path);
        live = harness_domain_xml(bus, path, 0);
        if (!strstr(live, "<link state='down'/>"))
                fail_msg("the live XML does not show the link down:\n%s", live);
        assert_int_equal(harness_qemu_pid(h, uuid), pid);
        harness_domain_call(bus, path, "Destroy");
}

/* Hands QEMU file (read-only) in descriptor set `set`, named after the device with this alias, as virtbusd
 * does. */
static void qmp_add_file(FILE *f, const char *file, unsigned set, const char *alias) {
        _cleanup_free_ char *cmd = NULL;
        int fd = open(file, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_true(asprintf(&cmd, "{\"execute\":\"add-fd\",\"arguments\":{\"fdset-id\":%u,\"opaque\":\"%s\"}}", set,
                             alias) >= 0);
        qmp_command_fd(f, cmd, fd);
        close(fd);
}

/* The alias the live XML gives the device with this target dev. */
static char *alias_of_target(const char *live, const char *target) {
        _cleanup_free_ char *needle = NULL;
        const char *p, *a;

        assert_true(asprintf(&needle, "<target dev='%s'", target) >= 0);
        p = strstr(live, needle);
        assert_non_null(p);
        a = strstr(p, "<alias name='");
        assert_non_null(a);
        a += strlen("<alias name='");
        return strndup(a, strcspn(a, "'"));
}

/* UpdateDevice of a cdrom's medium that a kill of virtbusd cut short, both ways, made over QMP while no
 * virtbusd runs, with the record virtbusd writes ahead: the new medium is in (the live XML takes it), or
 * only its file was handed over (the live XML keeps the old one; QEMU lets go of the new file). */
static void test_cut_update_medium(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "changer",
                                                "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                                "<target dev='hdc' bus='ide'/><readonly/></disk>"
                                                "<memballoon model='none'/>"),
                            *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path), *a = NULL, *b = NULL,
                            *live = NULL, *alias = NULL, *record = NULL, *cmd = NULL;
        FILE *f;
        pid_t pid;

        assert_true(asprintf(&a, "%s/cut-a.iso", harness_dir(h)) >= 0);
        assert_true(asprintf(&b, "%s/cut-b.iso", harness_dir(h)) >= 0);
        for (int k = 0; k < 2; k++) {
                int fd = open(k ? b : a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 1 << 20), 0);
                close(fd);
        }
        harness_domain_call(bus, path, "Start");
        pid = harness_qemu_pid(h, uuid);
        live = harness_domain_xml(bus, path, 0);
        alias = alias_of_target(live, "hdc");

        /* The change went through: a's set handed over, the medium changed, no answer heard. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        f = harness_qmp_open(h, uuid);
        qmp_add_file(f, a, 50, alias);
        assert_true(asprintf(&cmd, "{\"execute\":\"blockdev-change-medium\",\"arguments\":{\"id\":\"%s\","
                                   "\"filename\":\"/dev/fdset/50\",\"format\":\"raw\",\"read-only-mode\":"
                                   "\"read-only\",\"force\":true}}", alias) >= 0);
        qmp_command(f, cmd);
        fclose(f);
        assert_true(asprintf(&record, "update 50\n<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                      "<source file='%s'/><target dev='hdc' bus='ide'/><readonly/>"
                                      "<alias name='%s'/></disk>", a, alias) >= 0);
        write_plug_record(h, uuid, record);
        bus = restarted(h, path);
        free(live);
        live = harness_domain_xml(bus, path, 0);
        if (!strstr(live, a))
                fail_msg("the medium QEMU has (%s) is not in the live XML:\n%s", a, live);
        assert_true(harness_process_has_open(pid, a));

        /* The change did not happen: b's set handed over, nothing else. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        f = harness_qmp_open(h, uuid);
        qmp_add_file(f, b, 60, alias);
        /* (Before the monitor closes: QEMU then closes by itself the descriptors of sets nothing uses.) */
        assert_true(harness_process_has_open(pid, b));
        fclose(f);
        free(record);
        assert_true(asprintf(&record, "update 60\n<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                      "<source file='%s'/><target dev='hdc' bus='ide'/><readonly/>"
                                      "<alias name='%s'/></disk>", b, alias) >= 0);
        write_plug_record(h, uuid, record);
        bus = restarted(h, path);
        free(live);
        live = harness_domain_xml(bus, path, 0);
        if (!strstr(live, a) || strstr(live, b))
                fail_msg("the live XML does not show the medium QEMU has (%s):\n%s", a, live);
        for (uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC; harness_process_has_open(pid, b);) {
                if (harness_now_usec() > deadline)
                        fail_msg("QEMU still holds %s, handed over for a change that did not happen", b);
                usleep(20 * 1000);
        }
        assert_true(harness_process_has_open(pid, a));
        harness_domain_call(bus, path, "Destroy");
}

static void test_hotplug_nic(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml(h, "plug", NULL), *path = harness_define_domain(bus, xml), *serial = serial_path(h, "plug"),
                            *live = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        const char *nic = "<interface type='user'><mac address='52:54:00:aa:bb:01'/><model type='virtio'/></interface>";
        const char *alias;
        _cleanup_free_ char *uuid_of_path = uuid_of(h, path);

        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: lo", 1, GUEST_TIMEOUT_USEC);

        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", nic, UINT64_C(0)));
        /* The guest's kernel found it. */
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 lo", 1, GUEST_TIMEOUT_USEC);
        live = harness_domain_xml(bus, path, 0);
        if (!strstr(live, "52:54:00:aa:bb:01"))
                fail_msg("the NIC is not in the live XML:\n%s", live);

        w = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceRemoved");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "DetachDevice", "st", nic, UINT64_C(0)));
        removed = harness_watch_next(w, GUEST_TIMEOUT_USEC);
        assert_non_null(removed);
        assert_int_equal(sd_bus_message_read(removed, "s", &alias), 1);
        assert_true(strlen(alias) > 0);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: lo", 2, GUEST_TIMEOUT_USEC);
        free(live);
        live = harness_domain_xml(bus, path, 0);
        if (strstr(live, "52:54:00:aa:bb:01"))
                fail_msg("the NIC (%s) is still in the live XML:\n%s", alias, live);

        /* A virtio disk: QEMU opens the image, the guest's kernel finds vda, and lets it go again. */
        {
                _cleanup_free_ char *image = NULL, *disk = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *gone = NULL;
                int fd;

                assert_true(asprintf(&image, "%s/plug-disk.img", harness_dir(h)) >= 0);
                fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 8 << 20), 0);
                close(fd);
                assert_true(asprintf(&disk, "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                                            "<source file='%s'/><target dev='vda' bus='virtio'/></disk>", image) >= 0);
                harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: ", 1, GUEST_TIMEOUT_USEC);
                sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", disk, UINT64_C(0)));
                assert_true(harness_process_has_open(harness_qemu_pid(h, uuid_of_path), image));
                harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda", 1, GUEST_TIMEOUT_USEC);
                sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "DetachDevice", "st", disk, UINT64_C(0)));
                gone = harness_watch_next(w, GUEST_TIMEOUT_USEC);
                assert_non_null(gone);
                harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: \r", 2, GUEST_TIMEOUT_USEC);
                assert_false(harness_process_has_open(harness_qemu_pid(h, uuid_of_path), image));
        }
        harness_domain_call(bus, path, "Destroy");
}

/* The tap named in the live XML for the interface with this MAC, or NULL. */
static char *tap_of(const char *live, const char *mac) {
        const char *m = strstr(live, mac), *start, *end, *t;

        if (!m)
                return NULL;
        for (start = m; start > live && strncmp(start, "<interface", 10) != 0; start--)
                ;
        end = strstr(m, "</interface>");
        t = strstr(start, "<target dev='");
        if (!end || !t || t > end)
                return NULL;
        t += strlen("<target dev='");
        return strndup(t, strcspn(t, "'"));
}

static void assert_in_bridge(const char *tap, const char *bridge) {
        char master[PATH_MAX], link[80];
        ssize_t n;

        snprintf(link, sizeof link, "/sys/class/net/%s/master", tap);
        n = readlink(link, master, sizeof master - 1);
        if (n <= 0)
                fail_msg("tap '%s' is in no bridge", tap);
        master[n] = 0;
        assert_non_null(strstr(master, bridge));
}

/* A tap on a host bridge: QEMU opens the tap, virtbusd brings it up in the bridge (libnl). The bridge is
 * made here with a name unique to this run, and removed at the end. */
static void test_bridge_tap(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        char bridge[16], link[80];
        _cleanup_free_ char *xml = NULL, *path = NULL, *live = NULL, *tap = NULL, *dev = NULL;
        HarnessResult res = {};
        const char *p;

        snprintf(bridge, sizeof bridge, "vbtbr%d", (int) (getpid() % 100000));
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { "/usr/sbin/ip", "link", "add", "name", bridge, "type", "bridge", NULL },
                                     NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
        assert_true(asprintf(&dev, "<interface type='bridge'><source bridge='%s'/><mac address='52:54:00:00:00:22'/>"
                                   "<model type='e1000'/></interface>", bridge) >= 0);
        xml = diskless_xml("qemu", "bridged", dev);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");

        /* The live XML names the tap; the tap is up and in the bridge. */
        live = harness_domain_xml(bus, path, 0);
        p = strstr(live, "<target dev='");
        assert_non_null(p);
        p += strlen("<target dev='");
        tap = strndup(p, strcspn(p, "'"));
        assert_in_bridge(tap, bridge);
        snprintf(link, sizeof link, "/sys/class/net/%s/flags", tap);
        {
                _cleanup_free_ char *flags = harness_read_file(link);
                assert_non_null(flags);
                assert_true(strtoul(flags, NULL, 16) & 1); /* IFF_UP */
        }

        /* Hot-plugged, the same: the live XML names the tap the driver made (its live definition, not the
         * one core built from the request), and the tap is in the bridge. */
        {
                _cleanup_free_ char *nic = NULL, *live2 = NULL, *tap2 = NULL;

                assert_true(asprintf(&nic, "<interface type='bridge'><source bridge='%s'/>"
                                           "<mac address='52:54:00:00:00:23'/><model type='virtio'/></interface>",
                                     bridge) >= 0);
                sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", nic, UINT64_C(0)));
                live2 = harness_domain_xml(bus, path, 0);
                tap2 = tap_of(live2, "52:54:00:00:00:23");
                if (!tap2)
                        fail_msg("the hot-plugged NIC's tap is not in the live XML:\n%s", live2);
                assert_in_bridge(tap2, bridge);
                assert_string_not_equal(tap, tap2);
        }

        harness_domain_call(bus, path, "Destroy");
        /* QEMU's tap went with it. */
        snprintf(link, sizeof link, "/sys/class/net/%s", tap);
        assert_int_equal(access(link, F_OK), -1);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { "/usr/sbin/ip", "link", "del", bridge, NULL }, NULL,
                                     10 * HARNESS_USEC_PER_SEC, &res), 0);
        harness_result_done(&res);
}

/* Reboot: ACPI power button, and the guest's power-off turns into a reset (<on_reboot>restart</on_reboot>);
 * <on_poweroff>restart</on_poweroff> likewise keeps the domain running through a Shutdown, and preserve
 * leaves it paused. */
static void test_lifecycle_actions(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml(h, "phoenix", "restart"), *path = harness_define_domain(bus, xml),
                            *serial = serial_path(h, "phoenix"), *xml2 = guest_xml(h, "amber", "preserve"),
                            *path2 = harness_define_domain(bus, xml2), *serial2 = serial_path(h, "amber");
        _cleanup_(harness_watch_freep) HarnessWatch *w2 = harness_watch_signal(bus, path2, HARNESS_PROPERTIES_INTERFACE,
                                                                                "PropertiesChanged");

        harness_domain_call(bus, path, "Start");
        harness_domain_call(bus, path2, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        harness_domain_call(bus, path, "Reboot");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-POWEROFF", 1, GUEST_TIMEOUT_USEC);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 2, GUEST_TIMEOUT_USEC);
        assert_string_equal(state_of(h, path), "running");
        /* Shutdown without waiting: the guest powers off and comes back. */
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Shutdown", "t", UINT64_C(1)));
        harness_wait_for_text(serial, "VIRTBUS-GUEST-POWEROFF", 2, GUEST_TIMEOUT_USEC);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-BOOTED", 3, GUEST_TIMEOUT_USEC);
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");

        harness_wait_for_text(serial2, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        sd_bus_message_unref(harness_call_ok(bus, path2, DOMAIN_INTERFACE, "Shutdown", "t", UINT64_C(1)));
        harness_wait_for_text(serial2, "VIRTBUS-GUEST-POWEROFF", 1, GUEST_TIMEOUT_USEC);
        for (uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC; !streq(state_of(h, path2), "paused");) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = harness_watch_next(w2, 1000 * HARNESS_USEC_PER_MSEC);
                if (harness_now_usec() > deadline)
                        fail_msg("'amber' did not become paused; it is %s", state_of(h, path2));
        }
        harness_domain_call(bus, path2, "Destroy");
        assert_string_equal(state_of(h, path2), "shutoff");
}

/* type='direct': virtbusd makes a macvtap (libnl) on the given device and hands QEMU its /dev/tapN, at
 * start and on hotplug; the macvtaps go with the domain. The lower device is a veth pair made here with
 * names unique to this run. */
static char *macvtap_named(const char *live, unsigned n) {
        const char *p = live;
        for (unsigned i = 0; i <= n; i++) {
                p = strstr(p, "<interface type='direct'");
                assert_non_null(p);
                if (i < n)
                        p++;
        }
        p = strstr(p, "<target dev='");
        assert_non_null(p);
        p += strlen("<target dev='");
        return strndup(p, strcspn(p, "'"));
}

/* The name of an upper device of lower (a macvtap on it) other than not, NULL if none. */
static char *upper_other_than(const char *lower, const char *not) {
        char dir[128];
        DIR *d;
        struct dirent *de;
        char *found = NULL;

        snprintf(dir, sizeof dir, "/sys/class/net/%s", lower);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "upper_", 6) == 0 && !streq(de->d_name + 6, not) && !found)
                        found = strdup(de->d_name + 6);
        closedir(d);
        return found;
}

static void test_direct_macvtap(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        char lower[16], peer[16], path_lower[128];
        _cleanup_free_ char *dev = NULL, *dev2 = NULL, *xml = NULL, *path = NULL, *live = NULL, *mv0 = NULL, *mv1 = NULL;
        HarnessResult res = {};

        snprintf(lower, sizeof lower, "vbtva%d", (int) (getpid() % 100000));
        snprintf(peer, sizeof peer, "vbtvb%d", (int) (getpid() % 100000));
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { "/usr/sbin/ip", "link", "add", lower, "type", "veth", "peer", "name", peer, NULL },
                                     NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
        assert_true(asprintf(&dev, "<interface type='direct'><source dev='%s' mode='bridge'/><mac address='52:54:00:00:00:33'/>"
                                   "<model type='virtio'/></interface>", lower) >= 0);
        assert_true(asprintf(&dev2, "<interface type='direct'><source dev='%s' mode='bridge'/><mac address='52:54:00:00:00:34'/>"
                                    "<model type='virtio'/></interface>", lower) >= 0);
        xml = diskless_xml("qemu", "direct", dev);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        live = harness_domain_xml(bus, path, 0);
        mv0 = macvtap_named(live, 0);
        assert_true(link_exists(mv0));
        snprintf(path_lower, sizeof path_lower, "/sys/class/net/%s/lower_%s", mv0, lower);
        assert_int_equal(access(path_lower, F_OK), 0);

        /* Live: a second one, through getfd. The host shows it as the veth's second upper device (the live
         * definition core keeps has the device as given). */
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", dev2, UINT64_C(0)));
        mv1 = upper_other_than(lower, mv0);
        assert_non_null(mv1);
        assert_true(link_exists(mv1));

        harness_domain_call(bus, path, "Destroy");
        assert_false(link_exists(mv0));
        assert_false(link_exists(mv1));
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char *[]) { "/usr/sbin/ip", "link", "del", lower, NULL },
                                     NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
        harness_result_done(&res);
}

/* A guest that panics: the pvpanic device tells QEMU, and <on_crash> decides: destroy leaves the domain
 * crashed, restart boots it again. */
static void test_crash(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = guest_xml_full(h, "fragile", "<on_crash>destroy</on_crash>", "virtbus.crash",
                                                  "<panic model='isa'/>"),
                            *path = harness_define_domain(bus, xml), *serial = serial_path(h, "fragile"), *uuid = uuid_of(h, path),
                            *xml2 = guest_xml_full(h, "phoenix2", "<on_crash>restart</on_crash>", "virtbus.crash",
                                                   "<panic model='isa'/>"),
                            *path2 = harness_define_domain(bus, xml2), *serial2 = serial_path(h, "phoenix2");
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        pid = harness_qemu_pid(h, uuid);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-CRASHING", 1, GUEST_TIMEOUT_USEC);
        for (uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC; !streq(state_of(h, path), "crashed");) {
                if (harness_now_usec() > deadline)
                        fail_msg("'fragile' is %s, not crashed", state_of(h, path));
                usleep(20 * 1000);
        }
        assert_false(process_alive(pid));
        harness_domain_call(bus, path, "Destroy"); /* a crashed domain is put to rest */
        assert_string_equal(state_of(h, path), "shutoff");

        harness_domain_call(bus, path2, "Start");
        harness_wait_for_text(serial2, "VIRTBUS-GUEST-CRASHING", 2, GUEST_TIMEOUT_USEC);
        assert_string_equal(state_of(h, path2), "running");
        harness_domain_call(bus, path2, "Destroy");
}

/* UpdateDevice on a cdrom: a medium goes in (QEMU opens the image), is swapped, and comes out. */
static void test_cdrom_medium(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("qemu", "jukebox",
                                                "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                                                "<target dev='hdc' bus='ide'/><readonly/></disk>"),
                            *path = harness_define_domain(bus, xml), *uuid = uuid_of(h, path), *a = NULL, *b = NULL, *with_a = NULL,
                            *with_b = NULL;
        const char *empty = "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                            "<target dev='hdc' bus='ide'/><readonly/></disk>";
        pid_t pid;

        assert_true(asprintf(&a, "%s/a.iso", harness_dir(h)) >= 0);
        assert_true(asprintf(&b, "%s/b.iso", harness_dir(h)) >= 0);
        for (int k = 0; k < 2; k++) {
                int fd = open(k ? b : a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 1 << 20), 0);
                close(fd);
        }
        assert_true(asprintf(&with_a, "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='%s'/>"
                                      "<target dev='hdc' bus='ide'/><readonly/></disk>", a) >= 0);
        assert_true(asprintf(&with_b, "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='%s'/>"
                                      "<target dev='hdc' bus='ide'/><readonly/></disk>", b) >= 0);
        harness_domain_call(bus, path, "Start");
        pid = harness_qemu_pid(h, uuid);

        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "UpdateDevice", "st", with_a, UINT64_C(0)));
        assert_true(harness_process_has_open(pid, a));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "UpdateDevice", "st", with_b, UINT64_C(0)));
        assert_false(harness_process_has_open(pid, a));
        assert_true(harness_process_has_open(pid, b));
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "UpdateDevice", "st", empty, UINT64_C(0)));
        assert_false(harness_process_has_open(pid, b));
        harness_domain_call(bus, path, "Destroy");
}

/* The <interface> element of the live XML that has this MAC, or NULL. */
static char *interface_of(const char *live, const char *mac) {
        const char *m = strstr(live, mac), *start, *end;

        if (!m)
                return NULL;
        for (start = m; start > live && strncmp(start, "<interface", 10) != 0; start--)
                ;
        end = strstr(m, "</interface>");
        return end ? strndup(start, (size_t) (end - start)) : NULL;
}

static void assert_interface_at(sd_bus *bus, const char *path, const char *mac, const char *address) {
        _cleanup_free_ char *live = harness_domain_xml(bus, path, 0), *nic = interface_of(live, mac);

        if (!nic || !strstr(nic, address))
                fail_msg("interface %s is not at %s in the live XML:\n%s", mac, address, live);
}

/* q35, as desktop tools make it: PCIe root ports, each taking one device. The tiny guest boots on q35
 * under TCG. A NIC given a port is there; one without an address is an integrated device of pcie.0 (which
 * cannot be unplugged: refused with a sentence); a hot-plugged NIC goes into the free port, the guest sees
 * it and lets it go again; with no free port left, AttachDevice says what to add and nothing changes. */
static void test_q35_root_ports(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = NULL, *path = NULL, *serial = serial_path(h, "pcie"), *before = NULL, *after = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        const char *plugged = "<interface type='user'><mac address='52:54:00:00:35:03'/><model type='virtio'/></interface>";
        const char *third = "<interface type='user'><mac address='52:54:00:00:35:04'/><model type='virtio'/></interface>";
        const char *integrated = "<interface type='user'><mac address='52:54:00:00:35:02'/><model type='virtio'/></interface>";
        const char *alias;
        char *p;

        xml = guest_xml_full(h, "pcie", "", "",
                             "<controller type='pci' index='0' model='pcie-root'/>\n"
                             "    <controller type='pci' index='1' model='pcie-root-port'><model name='pcie-root-port'/>"
                             "<target chassis='1' port='0x10'/>"
                             "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/>"
                             "</controller>\n"
                             "    <controller type='pci' index='2' model='pcie-root-port'>"
                             "<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x1'/></controller>\n"
                             "    <interface type='user'><mac address='52:54:00:00:35:01'/><model type='virtio'/>"
                             "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>\n"
                             "    <interface type='user'><mac address='52:54:00:00:35:02'/><model type='virtio'/></interface>");
        p = strstr(xml, "machine='pc'");
        assert_non_null(p);
        {
                char *q35 = NULL;
                assert_true(asprintf(&q35, "%.*smachine='q35'%s", (int) (p - xml), xml, p + strlen("machine='pc'")) >= 0);
                free(xml);
                xml = q35;
        }
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 eth1 lo", 1, GUEST_TIMEOUT_USEC);
        assert_interface_at(bus, path, "52:54:00:00:35:01", "bus='0x01' slot='0x00' function='0x0'");
        assert_interface_at(bus, path, "52:54:00:00:35:02", "bus='0x00'");
        {
                /* The ports are named as QEMU knows them (the bus 'pci.N' of index N). */
                _cleanup_free_ char *live = harness_domain_xml(bus, path, 0);
                if (!strstr(live, "<alias name='pci.1'/>") || !strstr(live, "<alias name='pci.2'/>"))
                        fail_msg("the root ports are not named pci.1 and pci.2 in the live XML:\n%s", live);
        }

        /* Into the free port (2); QEMU has it there: the guest's kernel finds it. */
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", plugged, UINT64_C(0)));
        assert_interface_at(bus, path, "52:54:00:00:35:03", "bus='0x02' slot='0x00' function='0x0'");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 eth1 eth2 lo", 1, GUEST_TIMEOUT_USEC);

        /* No port left: refused with the fix, and nothing changed. */
        before = harness_domain_xml(bus, path, 0);
        harness_call_fails(bus, ERR("OperationFailed"), "has no free PCIe root port", path, DOMAIN_INTERFACE,
                           "AttachDevice", "st", third, UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), "<controller type='pci' model='pcie-root-port'/>", path,
                           DOMAIN_INTERFACE, "AttachDevice", "st", third, UINT64_C(0));
        after = harness_domain_xml(bus, path, 0);
        assert_string_equal(before, after);

        /* The integrated NIC cannot leave pcie.0: a sentence at once, no hang. */
        harness_call_fails(bus, ERR("NotSupported"), "root bus 'pcie.0'", path, DOMAIN_INTERFACE, "DetachDevice", "st",
                           integrated, UINT64_C(0));

        /* The hot-plugged one goes, as on pc. */
        w = harness_watch_signal(bus, path, DOMAIN_INTERFACE, "DeviceRemoved");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "DetachDevice", "st", plugged, UINT64_C(0)));
        removed = harness_watch_next(w, GUEST_TIMEOUT_USEC);
        assert_non_null(removed);
        assert_int_equal(sd_bus_message_read(removed, "s", &alias), 1);
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 eth1 lo", 2, GUEST_TIMEOUT_USEC);
        free(after);
        after = harness_domain_xml(bus, path, 0);
        assert_null(strstr(after, "52:54:00:00:35:03"));
        /* Its port is free again. */
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "AttachDevice", "st", third, UINT64_C(0)));
        assert_interface_at(bus, path, "52:54:00:00:35:04", "bus='0x02' slot='0x00'");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-NETS: eth0 eth1 eth2 lo", 2, GUEST_TIMEOUT_USEC);
        harness_domain_call(bus, path, "Destroy");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_diskless, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_kvm, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_errors, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_guest_shutdown, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_restart_reconnect, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_stray_nic_removed, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_cut_hotplug_macvtap_kept, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_cut_update_link, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_cut_update_medium, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_hotplug_nic, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_bridge_tap, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_direct_macvtap, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_lifecycle_actions, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_crash, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_cdrom_medium, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_q35_root_ports, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", "--log-level", "debug", NULL } });
}
