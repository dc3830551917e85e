/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OpenConsole, OpenGraphics and Screenshot with the test driver: its simulated console (banner, login
 * prompt, echo), one session per console and taking it over, polkit's org.virtbus1.domain.console, and
 * no descriptor left behind in virtbusd. */
#include "console-util.h"

#define ERR(name) "org.virtbus1.Error." name
#define SERIALS "<serial type='pty'><target port='0'/></serial><serial type='pty'><target port='1'/></serial>"

static void test_console(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *path = harness_define_test_domain(root, "talker", SERIALS);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[8192] = "";
        int a, b, c;

        /* Not running. */
        assert_int_equal(console_open(user, path, "", 0, &e), -1);
        harness_assert_error(&e, ERR("InvalidState"), "not running");
        sd_bus_error_free(&e);
        harness_domain_call(root, path, "Start");

        a = console_open(user, path, "", 0, &e);
        assert_true(a >= 0);
        assert_true(console_read_until(a, buf, sizeof buf, "talker login: ", 5 * HARNESS_USEC_PER_SEC));
        assert_non_null(strstr(buf, "serial0"));
        console_write(a, "root\r");
        buf[0] = 0;
        assert_true(console_read_until(a, buf, sizeof buf, "Login incorrect", 5 * HARNESS_USEC_PER_SEC));
        assert_non_null(strstr(buf, "root"));

        /* One session per console. */
        assert_int_equal(console_open(user, path, "serial0", 0, &e), -1);
        harness_assert_error(&e, ERR("DeviceBusy"), "'serial0'");
        sd_bus_error_free(&e);
        /* Another console is free. */
        c = console_open(user, path, "serial1", 0, &e);
        assert_true(c >= 0);
        buf[0] = 0;
        assert_true(console_read_until(c, buf, sizeof buf, "serial1", 5 * HARNESS_USEC_PER_SEC));
        /* Taken over: the first session ends. */
        b = console_open(user, path, "serial0", 1, &e);
        assert_true(b >= 0);
        assert_true(console_sees_eof(a, 5 * HARNESS_USEC_PER_SEC));
        close(a);
        /* Closed by its holder: free again. */
        close(b);
        b = console_open(user, path, "serial0", 0, &e);
        assert_true(b >= 0);

        /* Bad input. */
        assert_int_equal(console_open(user, path, "serial7", 0, &e), -1);
        harness_assert_error(&e, ERR("NoSuchDevice"), "'serial7'");
        sd_bus_error_free(&e);
        assert_int_equal(console_open(user, path, "", 2, &e), -1);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, NULL);
        sd_bus_error_free(&e);
        /* Outside the group: polkit says no. */
        assert_int_equal(console_open(plain, path, "serial1", 1, &e), -1);
        assert_refused(&e);
        sd_bus_error_free(&e);

        /* No display here. */
        assert_int_equal(console_open_fd(user, path, "OpenGraphics", "ut", &e, 0U, UINT64_C(0)), -1);
        harness_assert_error(&e, ERR("NotSupported"), "no display");
        sd_bus_error_free(&e);
        harness_call_fails(user, ERR("NotSupported"), "no display", path, "org.virtbus1.Domain", "Screenshot", "ut", 0U,
                           UINT64_C(0));

        /* Stopping the domain ends the sessions. */
        harness_domain_call(root, path, "Destroy");
        assert_true(console_sees_eof(b, 5 * HARNESS_USEC_PER_SEC));
        assert_true(console_sees_eof(c, 5 * HARNESS_USEC_PER_SEC));
        close(b);
        close(c);
}

/* 200 sessions opened and closed, and calls whose caller went away before the answer: virtbusd keeps no
 * descriptor of them. */
static void test_no_leak(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *path = harness_define_test_domain(root, "leaky", SERIALS);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        pid_t pid = harness_daemon_pid(h);
        unsigned before, after;
        int fd;

        harness_domain_call(root, path, "Start");
        /* Once, so that whatever is made on first use exists. */
        fd = console_open(user, path, "", 0, &e);
        assert_true(fd >= 0);
        close(fd);
        before = count_fds(pid);
        for (unsigned i = 0; i < 200; i++) {
                /* Forced: the close of the previous one may not have reached virtbusd yet. */
                fd = console_open(user, path, "", 1, &e);
                assert_true(fd >= 0);
                close(fd);
        }
        for (unsigned i = 0; i < 20; i++) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *gone = NULL;

                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &gone), 0);
                assert_true(sd_bus_call_method_async(gone, NULL, HARNESS_SERVICE, path, "org.virtbus1.Domain",
                                                     "OpenConsole", NULL, NULL, "st", "serial1", UINT64_C(1)) >= 0);
                assert_true(sd_bus_flush(gone) >= 0);
        }
        /* Answered (to nobody) and closed. */
        for (unsigned i = 0; i < 50; i++) {
                fd = console_open(user, path, "serial1", 0, &e);
                if (fd >= 0)
                        break;
                sd_bus_error_free(&e);
                usleep(20 * 1000);
        }
        assert_true(fd >= 0);
        close(fd);
        usleep(100 * 1000);
        after = count_fds(pid);
        fprintf(stderr, "virtbusd descriptors: %u before, %u after 200 sessions and 20 callers gone\n", before, after);
        assert_true(after <= before);
        harness_domain_call(root, path, "Destroy");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_console),
                cmocka_unit_test(test_no_leak),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
