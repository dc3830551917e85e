/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OpenConsole, OpenGraphics and Screenshot with the real QEMU and the tiny guest (tests/guest), as a
 * user of group 'virtbus' (the example rules grant org.virtbus1.domain.console): the guest's boot text
 * and a shell on its serial port, one session per console, a display that listens nowhere reached over
 * RFB, and PNG screenshots of it. */
#include <arpa/inet.h>

#include "console-util.h"

#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static void png_size(const void *png, size_t n, uint32_t *w, uint32_t *hgt) {
        static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        const unsigned char *p = png;
        uint32_t v;

        assert_true(n > 33);
        assert_memory_equal(p, sig, 8);
        assert_memory_equal(p + 12, "IHDR", 4);
        memcpy(&v, p + 16, 4);
        *w = ntohl(v);
        memcpy(&v, p + 20, 4);
        *hgt = ntohl(v);
}

static void read_exactly(int fd, void *buf, size_t n) {
        size_t got = 0;

        while (got < n) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                assert_int_equal(poll(&p, 1, 10000), 1);
                k = read(fd, (char *) buf + got, n - got);
                assert_true(k > 0);
                got += (size_t) k;
        }
}

/* RFB 3.8 up to ServerInit, with no authentication: the framebuffer's size. */
static void rfb_handshake(int fd, uint16_t *w, uint16_t *hgt) {
        unsigned char version[12], n_types, types[32], result[4], init[4];

        read_exactly(fd, version, 12);
        assert_memory_equal(version, "RFB 003.008\n", 12);
        console_write(fd, "RFB 003.008\n");
        read_exactly(fd, &n_types, 1);
        assert_true(n_types > 0 && n_types <= sizeof types);
        read_exactly(fd, types, n_types);
        assert_non_null(memchr(types, 1, n_types)); /* None */
        assert_int_equal(write(fd, "\1", 1), 1);
        read_exactly(fd, result, 4);
        assert_memory_equal(result, "\0\0\0\0", 4);
        assert_int_equal(write(fd, "\1", 1), 1); /* ClientInit: shared */
        read_exactly(fd, init, 4);
        *w = (uint16_t) (init[0] << 8 | init[1]);
        *hgt = (uint16_t) (init[2] << 8 | init[3]);
}

static void test_console(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *xml = console_guest_xml(h, "speaker"), *path = harness_define_domain(root, xml), *live = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[65536];
        int a, b;

        assert_int_equal(console_open(user, path, "", 0, &e), -1);
        harness_assert_error(&e, ERR("InvalidState"), "not running");
        sd_bus_error_free(&e);

        /* Paused, so that the console is open before the guest says anything. */
        sd_bus_message_unref(harness_call_ok(root, path, "org.virtbus1.Domain", "Start", "t", UINT64_C(1)));
        live = harness_domain_xml(root, path, 0);
        assert_null(strstr(live, "/dev/pts"));
        a = console_open(user, path, "", 0, &e);
        assert_true(a >= 0);
        harness_domain_call(root, path, "Resume");
        buf[0] = 0;
        assert_true(console_read_until(a, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        /* The kernel's own boot text came first. */
        assert_non_null(strstr(buf, "Linux version"));
        console_write(a, "echo $((6*7))VIRTBUS-ANSWER\n");
        buf[0] = 0;
        assert_true(console_read_until(a, buf, sizeof buf, "42VIRTBUS-ANSWER", 30 * HARNESS_USEC_PER_SEC));

        /* One session per console: 'serial0' is the console. */
        assert_int_equal(console_open(user, path, "serial0", 0, &e), -1);
        harness_assert_error(&e, ERR("DeviceBusy"), "'serial0'");
        sd_bus_error_free(&e);
        assert_int_equal(console_open(plain, path, "serial0", 1, &e), -1);
        assert_refused(&e);
        sd_bus_error_free(&e);
        b = console_open(user, path, "serial0", 1, &e);
        assert_true(b >= 0);
        assert_true(console_sees_eof(a, 10 * HARNESS_USEC_PER_SEC));
        close(a);
        console_write(b, "echo $((7*8))VIRTBUS-AGAIN\n");
        buf[0] = 0;
        assert_true(console_read_until(b, buf, sizeof buf, "56VIRTBUS-AGAIN", 30 * HARNESS_USEC_PER_SEC));
        /* Closed by its holder: free again (QEMU notices at once or very soon). */
        close(b);
        for (unsigned i = 0; i < 100; i++) {
                b = console_open(user, path, "serial0", 0, &e);
                if (b >= 0)
                        break;
                harness_assert_error(&e, ERR("DeviceBusy"), NULL);
                sd_bus_error_free(&e);
                usleep(10 * 1000);
        }
        assert_true(b >= 0);

        /* A serial port into a file is not handed out; no such device. */
        assert_int_equal(console_open(user, path, "serial1", 0, &e), -1);
        harness_assert_error(&e, ERR("NotSupported"), "'file'");
        sd_bus_error_free(&e);
        assert_int_equal(console_open(user, path, "serial5", 0, &e), -1);
        harness_assert_error(&e, ERR("NoSuchDevice"), "'serial5'");
        sd_bus_error_free(&e);
        assert_int_equal(console_open_fd(user, path, "OpenGraphics", "ut", &e, 1U, UINT64_C(0)), -1);
        harness_assert_error(&e, ERR("NoSuchDevice"), "<graphics> number 1");
        sd_bus_error_free(&e);

        /* Destroy ends the session. */
        harness_domain_call(root, path, "Destroy");
        assert_true(console_sees_eof(b, 10 * HARNESS_USEC_PER_SEC));
        close(b);
}

/* A session nobody reads is full after a few hundred bytes (QEMU writes a byte at a time); the guest's serial
 * port then waits to write. Saved in that state and started again from the saved state (as a migration
 * arrives), the port must work on: a new session answers. When the port's backend was null until a session
 * was opened, QEMU re-armed the wait on a backend that cannot be waited on and the port stayed stuck: the
 * guest said nothing again until it was reset (docs/dbus-api.md, "Consoles and migration"). */
static void test_console_full_when_saved(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = console_guest_xml(h, "stuffed"), *path = harness_define_domain(root, xml);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[65536];
        int a, b;

        harness_domain_call(root, path, "Start");
        a = console_open(root, path, "", 0, &e);
        assert_true(a >= 0);
        buf[0] = 0;
        assert_true(console_read_until(a, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        /* 8 KB the session does not read: the port waits, the shell with it. */
        console_write(a, "head -c 8192 /dev/zero | tr '\\0' x; echo VIRTBUS-NEVER-READ\n");
        usleep(2 * HARNESS_USEC_PER_SEC);
        harness_domain_call(root, path, "ManagedSave");
        close(a);
        harness_domain_call(root, path, "Start");
        b = console_open(root, path, "", 0, &e);
        assert_true(b >= 0);
        console_write(b, "echo $((6*9))VIRTBUS-AFTER\n");
        buf[0] = 0;
        if (!console_read_until(b, buf, sizeof buf, "54VIRTBUS-AFTER", 60 * HARNESS_USEC_PER_SEC))
                fail_msg("the restored guest's console said nothing to a new session; it said: %.200s", buf);
        close(b);
        harness_domain_call(root, path, "Destroy");
        harness_domain_call(root, path, "Undefine");
}

static void test_display(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *xml = console_guest_xml(h, "painter"), *path = harness_define_domain(root, xml);
        _cleanup_free_ void *before = NULL, *after = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[65536];
        size_t n_before, n_after;
        uint32_t w1, h1, w2, h2;
        uint16_t fw, fh;
        int con, vnc;

        sd_bus_message_unref(harness_call_ok(root, path, "org.virtbus1.Domain", "Start", "t", UINT64_C(1)));
        con = console_open(user, path, "", 0, &e);
        assert_true(con >= 0);
        harness_domain_call(root, path, "Resume");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));

        /* The display listens nowhere; the descriptor is a client QEMU accepted. */
        vnc = console_open_fd(user, path, "OpenGraphics", "ut", &e, 0U, UINT64_C(0));
        assert_true(vnc >= 0);
        rfb_handshake(vnc, &fw, &fh);
        close(vnc);
        assert_int_equal(console_open_fd(plain, path, "OpenGraphics", "ut", &e, 0U, UINT64_C(0)), -1);
        assert_refused(&e);
        sd_bus_error_free(&e);

        before = console_screenshot(user, path, &n_before);
        png_size(before, n_before, &w1, &h1);
        assert_int_equal(w1, fw);
        assert_int_equal(h1, fh);
        /* The guest writes on its screen. */
        console_write(con, "echo VIRTBUS-ON-SCREEN >/dev/tty1 && echo $((5*5))VIRTBUS-WROTE\n");
        buf[0] = 0;
        assert_true(console_read_until(con, buf, sizeof buf, "25VIRTBUS-WROTE", 30 * HARNESS_USEC_PER_SEC));
        after = console_screenshot(user, path, &n_after);
        png_size(after, n_after, &w2, &h2);
        assert_int_equal(w2, w1);
        assert_int_equal(h2, h1);
        assert_true(n_before != n_after || memcmp(before, after, n_after) != 0);
        fprintf(stderr, "display %ux%u, screenshots of %zu and %zu bytes\n", (unsigned) w1, (unsigned) h1, n_before,
                n_after);

        harness_call_fails(user, ERR("NoSuchDevice"), "screen 1", path, "org.virtbus1.Domain", "Screenshot", "ut", 1U,
                           UINT64_C(0));
        close(con);
        harness_domain_call(root, path, "Destroy");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_console, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_display, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_console_full_when_saved, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-console: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
