/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* With the real QEMU and the tiny guest (tests/guest), as a user of group 'virtbus': OpenConsole on
 * consoles QEMU listens for (a virtio console, on a socket in virtbusd's runtime directory, and a serial
 * port on a socket of the definition's: type 'unix', mode 'bind'), and no descriptor kept over many
 * sessions of every kind (test-qemu-console has the rest). */
#include <sys/socket.h>
#include <sys/un.h>

#include "console-util.h"

#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

/* A virtio console (QEMU cannot swap its character device: it listens on a socket of virtbusd's) and a
 * serial port on a socket of the definition's (mode 'bind'): both open, talk both ways, are taken over
 * with force, free again once closed, and end with the domain. */
static void test_listened(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *xml = NULL, *path = NULL, *live = NULL, *sock = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[65536];
        int con, v, v2, u, u2;

        assert_true(asprintf(&sock, "%s/listener.serial1", harness_dir(h)) >= 0);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'>\n"
                             "  <name>listener</name>\n"
                             "  <memory unit='MiB'>192</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os>\n"
                             "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                             "    <kernel>%s/vmlinuz</kernel>\n"
                             "    <initrd>%s/initrd.gz</initrd>\n"
                             "    <cmdline>console=ttyS0 panic=-1 virtbus.shell virtbus.idle</cmdline>\n"
                             "  </os>\n"
                             "  <features><acpi/></features>\n"
                             "  <devices>\n"
                             "    <serial type='pty'><target port='0'/></serial>\n"
                             "    <serial type='unix'><source mode='bind' path='%s'/><target port='1'/></serial>\n"
                             "    <console type='pty'><target type='serial' port='0'/></console>\n"
                             "    <console type='pty'><target type='virtio' port='1'/></console>\n"
                             "  </devices>\n"
                             "</domain>\n",
                             g, g, sock) >= 0);
        path = harness_define_domain(root, xml);
        sd_bus_message_unref(harness_call_ok(root, path, "org.virtbus1.Domain", "Start", "t", UINT64_C(1)));
        live = harness_domain_xml(root, path, 0);
        assert_null(strstr(live, "/dev/pts"));
        assert_non_null(strstr(live, "<alias name='console0'/>"));
        con = console_open(user, path, "serial0", 0, &e);
        assert_true(con >= 0);
        /* Open before the guest runs: nothing it says is lost. */
        v = console_open(user, path, "console0", 0, &e);
        assert_true(v >= 0);
        u = console_open(user, path, "serial1", 0, &e);
        assert_true(u >= 0);
        harness_domain_call(root, path, "Resume");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));

        /* Both ways on the virtio console (the guest's /dev/hvc0) and on the socket serial port (ttyS1). */
        console_write(con, "echo VIRTBUS-HVC-OUT >/dev/hvc0; echo VIRTBUS-S1-OUT >/dev/ttyS1\n");
        buf[0] = 0;
        assert_true(console_read_until(v, buf, sizeof buf, "VIRTBUS-HVC-OUT", 30 * HARNESS_USEC_PER_SEC));
        buf[0] = 0;
        assert_true(console_read_until(u, buf, sizeof buf, "VIRTBUS-S1-OUT", 30 * HARNESS_USEC_PER_SEC));
        /* The guest holds /dev/hvc0 open from before it says it is ready until it has read the line (a line
         * sent between stty's close and read's open could be taken and dropped by the tty). */
        console_write(con, "exec 3<>/dev/hvc0; stty -echo <&3; echo $((6*9))VIRTBUS-HVC-READY; read l <&3; exec 3<&-; "
                           "echo VIRTBUS-GOT-$l\n");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "54VIRTBUS-HVC-READY", 30 * HARNESS_USEC_PER_SEC));
        console_write(v, "fromhvc\n");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "VIRTBUS-GOT-fromhvc", 30 * HARNESS_USEC_PER_SEC));

        /* One session each: busy without force, taken over with it (the holder reads end-of-file). */
        v2 = console_take_over(user, path, "console0", v);
        u2 = console_take_over(user, path, "serial1", u);
        console_write(con, "echo VIRTBUS-HVC-AGAIN >/dev/hvc0; echo VIRTBUS-S1-AGAIN >/dev/ttyS1\n");
        buf[0] = 0;
        assert_true(console_read_until(v2, buf, sizeof buf, "VIRTBUS-HVC-AGAIN", 30 * HARNESS_USEC_PER_SEC));
        buf[0] = 0;
        assert_true(console_read_until(u2, buf, sizeof buf, "VIRTBUS-S1-AGAIN", 30 * HARNESS_USEC_PER_SEC));

        /* Closed by its holder: free again once QEMU noticed. */
        close(u2);
        for (unsigned i = 0; i < 500; i++) {
                u = console_open(user, path, "serial1", 0, &e);
                if (u >= 0)
                        break;
                harness_assert_error(&e, ERR("DeviceBusy"), NULL);
                sd_bus_error_free(&e);
                usleep(10 * 1000);
        }
        assert_true(u >= 0);

        /* Destroy ends every session. */
        harness_domain_call(root, path, "Destroy");
        assert_true(console_sees_eof(v2, 10 * HARNESS_USEC_PER_SEC));
        assert_true(console_sees_eof(u, 10 * HARNESS_USEC_PER_SEC));
        assert_true(console_sees_eof(con, 10 * HARNESS_USEC_PER_SEC));
        close(v2);
        close(u);
        close(con);
}

/* Sends n OpenConsole calls with force at once (virtbusd takes them one after the other, faster than
 * QEMU accepts) and puts their descriptors in fds. */
static void console_open_burst(sd_bus *bus, const char *path, const char *device, int *fds, size_t n) {
        sd_bus_message *replies[8] = {};
        uint64_t cookies[8];

        assert_true(n <= 8);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                assert_int_equal(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                                "OpenConsole"), 0);
                assert_true(sd_bus_message_append(m, "st", device, UINT64_C(1)) >= 0);
                assert_true(sd_bus_send(bus, m, &cookies[i]) >= 0);
        }
        for (size_t got = 0; got < n;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                uint64_t rc;
                int r = sd_bus_process(bus, &m);

                assert_true(r >= 0);
                if (m && sd_bus_message_get_reply_cookie(m, &rc) >= 0)
                        for (size_t i = 0; i < n; i++)
                                if (cookies[i] == rc) {
                                        if (sd_bus_message_is_method_error(m, NULL))
                                                fail_msg("OpenConsole %zu: %s", i, sd_bus_message_get_error(m)->message);
                                        replies[i] = sd_bus_message_ref(m);
                                        got++;
                                }
                if (r == 0)
                        assert_true(sd_bus_wait(bus, 60 * HARNESS_USEC_PER_SEC) > 0);
        }
        for (size_t i = 0; i < n; i++) {
                int fd;
                assert_int_equal(sd_bus_message_read(replies[i], "h", &fd), 1);
                fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                assert_true(fds[i] >= 0);
                sd_bus_message_unref(replies[i]);
        }
}

/* A virtio channel and a parallel port of type pty listen like a virtio console (on sockets of
 * virtbusd's); sources whose stream is somebody else's answer NotSupported with the reason; and forced
 * opens sent at once leave the last one holding the console, however quick they come. */
static void test_channel_parallel(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *xml = NULL, *path = NULL, *live = NULL, *file = NULL, *lsock = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static const char *const refused[][2] = {
                { "serial1", "(mode 'connect'): the program listening there holds the stream" },
                { "serial2", "is a TCP socket (type 'tcp')" },
                { "serial3", "writes into the file" },
                { "channel1", "is the guest agent's channel" },
        };
        static char buf[65536];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int con, ch, par, par2, burst[5], listener;

        assert_true(asprintf(&file, "%s/forms.serial3", harness_dir(h)) >= 0);
        assert_true(asprintf(&lsock, "%s/forms.listener", harness_dir(h)) >= 0);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'>\n"
                             "  <name>forms</name>\n"
                             "  <memory unit='MiB'>192</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os>\n"
                             "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                             "    <kernel>%s/vmlinuz</kernel>\n"
                             "    <initrd>%s/initrd.gz</initrd>\n"
                             "    <cmdline>console=ttyS0 panic=-1 virtbus.shell virtbus.idle</cmdline>\n"
                             "  </os>\n"
                             "  <features><acpi/></features>\n"
                             "  <devices>\n"
                             "    <serial type='pty'><target port='0'/></serial>\n"
                             "    <serial type='unix'><source mode='connect' path='%s'/><target port='1'/></serial>\n"
                             "    <serial type='tcp'><source mode='connect' host='127.0.0.1' service='9'/>"
                             "<target port='2'/></serial>\n"
                             "    <serial type='file'><source path='%s'/><target port='3'/></serial>\n"
                             "    <console type='pty'><target type='serial' port='0'/></console>\n"
                             "    <channel type='pty'><target type='virtio' name='org.virtbus.test.0'/></channel>\n"
                             "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\n"
                             "    <parallel type='pty'><target port='0'/></parallel>\n"
                             "  </devices>\n"
                             "</domain>\n",
                             g, g, lsock, file) >= 0);
        /* The program serial1 connects to (virtbusd connects QEMU's socket at start). */
        listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(listener >= 0);
        assert_true(strlen(lsock) < sizeof sa.sun_path);
        strcpy(sa.sun_path, lsock);
        (void) unlink(lsock);
        assert_int_equal(bind(listener, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(listener, 4), 0);
        path = harness_define_domain(root, xml);
        sd_bus_message_unref(harness_call_ok(root, path, "org.virtbus1.Domain", "Start", "t", UINT64_C(1)));
        live = harness_domain_xml(root, path, 0);
        assert_null(strstr(live, "/dev/pts"));
        assert_non_null(strstr(live, "<alias name='channel0'/>"));
        assert_non_null(strstr(live, "<alias name='parallel0'/>"));

        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                assert_int_equal(console_open(user, path, refused[i][0], 0, &e), -1);
                harness_assert_error(&e, ERR("NotSupported"), refused[i][1]);
                sd_bus_error_free(&e);
        }

        con = console_open(user, path, "serial0", 0, &e);
        assert_true(con >= 0);
        ch = console_open(user, path, "channel0", 0, &e);
        assert_true(ch >= 0);
        par = console_open(user, path, "parallel0", 0, &e);
        assert_true(par >= 0);
        harness_domain_call(root, path, "Resume");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));

        /* The channel both ways: the guest finds its port by name. */
        console_write(con, "for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = org.virtbus.test.0 ] && "
                           "C=/dev/${p##*/}; done; echo VIRTBUS-CHAN-OUT >$C\n");
        buf[0] = 0;
        assert_true(console_read_until(ch, buf, sizeof buf, "VIRTBUS-CHAN-OUT", 30 * HARNESS_USEC_PER_SEC));
        console_write(con, "read l <$C; echo VIRTBUS-CHAN-GOT-$l\n");
        usleep(500 * 1000);
        console_write(ch, "fromchan\n");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "VIRTBUS-CHAN-GOT-fromchan", 30 * HARNESS_USEC_PER_SEC));

        /* The parallel port (the tiny guest's kernel has no parallel port driver: QEMU's side only): QEMU
         * accepted the session, so a second one is refused, and force takes it over. */
        par2 = console_take_over(user, path, "parallel0", par);
        close(par2);

        /* Five forced opens at once: the first four end (none waits in QEMU's queue), the last talks. */
        console_open_burst(root, path, "channel0", burst, ELEMENTSOF(burst));
        assert_true(console_sees_eof(ch, 10 * HARNESS_USEC_PER_SEC));
        close(ch);
        for (size_t i = 0; i + 1 < ELEMENTSOF(burst); i++) {
                assert_true(console_sees_eof(burst[i], 10 * HARNESS_USEC_PER_SEC));
                close(burst[i]);
        }
        console_write(con, "echo VIRTBUS-CHAN-LAST >$C\n");
        buf[0] = 0;
        assert_true(console_read_until(burst[4], buf, sizeof buf, "VIRTBUS-CHAN-LAST", 30 * HARNESS_USEC_PER_SEC));

        harness_domain_call(root, path, "Destroy");
        assert_true(console_sees_eof(burst[4], 10 * HARNESS_USEC_PER_SEC));
        close(burst[4]);
        close(con);
        close(listener);
}

/* For a failure's message: what the descriptors of pid are. */
static void dump_fds(pid_t pid) {
        char dir[64], link[320], target[256];
        DIR *d;

        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        for (struct dirent *de; d && (de = readdir(d));) {
                ssize_t k;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                k = readlink(link, target, sizeof target - 1);
                target[k > 0 ? k : 0] = 0;
                fprintf(stderr, "  fd %s -> %s\n", de->d_name, target);
        }
        if (d)
                closedir(d);
}

/* QEMU's descriptors, waiting up to 10 s for it to have closed those of clients gone (it notices an
 * end-of-file on its own loop): at most want, or the count seen last. */
static unsigned qemu_fds_settle(pid_t pid, unsigned want) {
        unsigned n = count_fds(pid);

        for (unsigned i = 0; i < 1000 && n > want; i++) {
                usleep(10 * 1000);
                n = count_fds(pid);
        }
        return n;
}

/* How many memory files for screenshots QEMU (pid) holds. */
static unsigned count_shot_files(pid_t pid) {
        char dir[64], link[320], target[256];
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));) {
                ssize_t k;

                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                k = readlink(link, target, sizeof target - 1);
                target[k > 0 ? k : 0] = 0;
                n += strstr(target, "memfd:virtbus-screenshot") != NULL;
        }
        closedir(d);
        return n;
}

static int on_shot_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unsigned *answered = userdata;
        const void *p;
        size_t n;

        if (sd_bus_message_is_method_error(m, NULL))
                fail_msg("a Screenshot of a burst failed: %s", sd_bus_message_get_error(m)->message);
        assert_true(sd_bus_message_read_array(m, 'y', &p, &n) >= 0);
        assert_true(n > 8 && memcmp(p, "\x89PNG", 4) == 0);
        (*answered)++;
        return 0;
}

/* 200 consoles and displays opened and closed, screenshots, and callers gone before the answer:
 * neither virtbusd nor QEMU keeps a descriptor of any of them. */
static void test_no_leak(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *xml = console_guest_xml(h, "leaky"), *path = harness_define_domain(root, xml), *uuid = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        pid_t pid = harness_daemon_pid(h), qemu;
        unsigned before, after, qemu_before, qemu_after;
        size_t n;
        int fd, held;

        /* Paused: QEMU answers all of this without the guest running. */
        sd_bus_message_unref(harness_call_ok(root, path, "org.virtbus1.Domain", "Start", "t", UINT64_C(1)));
        uuid = strdup(harness_get_string(root, path, "org.virtbus1.Domain", "UUID"));
        assert_non_null(uuid);
        qemu = harness_qemu_pid(h, uuid);
        assert_true(qemu > 0);
        /* Once each, so that whatever is made on first use (the encoding thread) exists. */
        fd = console_open_fd(user, path, "OpenGraphics", "ut", &e, 0U, UINT64_C(0));
        assert_true(fd >= 0);
        close(fd);
        free(console_screenshot(user, path, &n));
        held = console_open(user, path, "", 1, &e);
        assert_true(held >= 0);
        before = count_fds(pid);
        qemu_before = qemu_fds_settle(qemu, 0);

        for (unsigned i = 0; i < 200; i++) {
                fd = console_open(user, path, "", 1, &e);
                assert_true(fd >= 0);
                close(fd);
                fd = console_open_fd(user, path, "OpenGraphics", "ut", &e, 0U, UINT64_C(0));
                assert_true(fd >= 0);
                close(fd);
                if (i % 10 == 0)
                        free(console_screenshot(user, path, &n));
        }
        for (unsigned i = 0; i < 20; i++) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *gone = NULL;

                /* Root, whom polkit is not asked about: the calls reach QEMU before the caller is gone. */
                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &gone), 0);
                assert_true(sd_bus_call_method_async(gone, NULL, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                     "OpenConsole", NULL, NULL, "st", "serial0", UINT64_C(1)) >= 0);
                assert_true(sd_bus_call_method_async(gone, NULL, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                     "OpenGraphics", NULL, NULL, "ut", 0U, UINT64_C(0)) >= 0);
                assert_true(sd_bus_call_method_async(gone, NULL, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                     "Screenshot", NULL, NULL, "ut", 0U, UINT64_C(0)) >= 0);
                assert_true(sd_bus_flush(gone) >= 0);
        }
        /* Screenshots asked for all at once: each answered, one after another through QEMU's one file. */
        {
                unsigned answered = 0;
                uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;

                for (unsigned i = 0; i < 12; i++)
                        assert_true(sd_bus_call_method_async(root, NULL, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                             "Screenshot", on_shot_reply, &answered, "ut", 0U,
                                                             UINT64_C(0)) >= 0);
                while (answered < 12) {
                        assert_true(harness_now_usec() < deadline);
                        if (sd_bus_process(root, NULL) > 0)
                                continue;
                        (void) sd_bus_wait(root, 100 * HARNESS_USEC_PER_MSEC);
                }
                assert_int_equal(count_shot_files(qemu), 1);
        }
        /* The calls of those gone were answered (to nobody) before this one, which QEMU sees after them. */
        close(held);
        held = console_open(user, path, "", 1, &e);
        assert_true(held >= 0);
        free(console_screenshot(user, path, &n));
        after = count_fds(pid);
        qemu_after = qemu_fds_settle(qemu, qemu_before);
        fprintf(stderr, "descriptors: virtbusd %u before, %u after; QEMU %u before, %u after (200 sessions of each "
                "kind, 20 screenshots, 60 callers gone)\n", before, after, qemu_before, qemu_after);
        if (qemu_after > qemu_before)
                dump_fds(qemu);
        assert_true(after <= before);
        assert_true(qemu_after <= qemu_before);
        close(held);
        harness_domain_call(root, path, "Destroy");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_listened, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_channel_parallel, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_no_leak, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-console-sessions: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
