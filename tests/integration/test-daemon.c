/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusd as a program: options, the bus name, signals, --user mode. */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE

static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle))
                fail_msg("\"%s\" not found in:\n%s", needle, haystack);
}

/* A set of dirs for a second virtbusd, owned by user. */
static void make_dirs(Harness *h, HarnessUser user, const char *name, char *ret[3]) {
        static const char *kinds[] = { "config", "state", "runtime" };
        char *top;

        assert_true(asprintf(&top, "%s/%s", harness_dir(h), name) > 0);
        assert_int_equal(mkdir(top, 0755), 0);
        assert_int_equal(chown(top, harness_user_uid(h, user), harness_user_gid(h, user)), 0);
        for (size_t i = 0; i < 3; i++) {
                assert_true(asprintf(&ret[i], "%s/%s", top, kinds[i]) > 0);
                assert_int_equal(mkdir(ret[i], 0755), 0);
                assert_int_equal(chown(ret[i], harness_user_uid(h, user), harness_user_gid(h, user)), 0);
        }
        free(top);
}

static void free_dirs(char *d[3]) {
        for (size_t i = 0; i < 3; i++)
                free(d[i]);
}

/* Runs virtbusd on the harness's bus with its own dirs and args. */
static void run_on_bus(Harness *h, HarnessUser user, const char *name, const char *extra, HarnessResult *res) {
        _cleanup_free_ char *address = NULL;
        char *d[3];

        make_dirs(h, user, name, d);
        assert_true(asprintf(&address, "--bus-address=%s", harness_bus_address(h)) > 0);
        assert_int_equal(harness_run_daemon(h, user,
                                            (const char *[]) { address, "--driver", "test", "--config-dir", d[0],
                                                               "--state-dir", d[1], "--runtime-dir", d[2], extra,
                                                               NULL },
                                            res),
                         0);
        free_dirs(d);
}

static void test_help(void **state) {
        static const char *options[] = { "--help", "--version", "--system", "--user", "--bus-address",
                                         "--driver", "--config-dir", "--state-dir", "--runtime-dir",
                                         "--sysfs-root", "--log-level" };
        HarnessResult res = {};

        assert_int_equal(harness_run_daemon(*state, HARNESS_USER_ROOT, (const char *[]) { "--help", NULL }, &res), 0);
        assert_int_equal(res.status, 0);
        assert_contains(res.out, "Usage: virtbusd");
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                assert_contains(res.out, options[i]);
        harness_result_done(&res);

        /* -h is the same, and works for anyone. */
        assert_int_equal(harness_run_daemon(*state, HARNESS_USER_PLAIN, (const char *[]) { "-h", NULL }, &res), 0);
        assert_int_equal(res.status, 0);
        assert_contains(res.out, "Usage: virtbusd");
        harness_result_done(&res);
}

static void test_version(void **state) {
        HarnessResult res = {};

        assert_int_equal(harness_run_daemon(*state, HARNESS_USER_ROOT, (const char *[]) { "--version", NULL }, &res), 0);
        assert_int_equal(res.status, 0);
        assert_string_equal(res.out, "virtbusd " VIRTBUS_PROJECT_VERSION "\n");
        harness_result_done(&res);
}

static void test_bad_options(void **state) {
        static const struct {
                const char *args[3];
                const char *message;
        } cases[] = {
                { { "--frobnicate", NULL }, "frobnicate" },
                { { "--driver", "xen" }, "Unknown driver 'xen'" },
                { { "--driver=vmware", NULL }, "Unknown driver 'vmware'" },
                { { "--log-level", "loud" }, "Invalid log level 'loud'" },
                { { "surplus", NULL }, "Unexpected argument 'surplus'" },
                { { "--driver", NULL }, "driver" }, /* missing value */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                HarnessResult res = {};
                assert_int_equal(harness_run_daemon(*state, HARNESS_USER_ROOT, cases[i].args, &res), 0);
                if (res.status != 1)
                        fail_msg("virtbusd %s %s: exit status %d, expected 1", cases[i].args[0],
                                 strempty(cases[i].args[1]), res.status);
                assert_contains(res.err, cases[i].message);
                harness_result_done(&res);
        }
}

static void test_name_taken(void **state) {
        Harness *h = *state;
        HarnessResult res = {};
        pid_t first = harness_daemon_pid(h);

        run_on_bus(h, HARNESS_USER_ROOT, "second", NULL, &res);
        assert_int_equal(res.status, 1);
        assert_contains(res.err, "already taken");
        assert_contains(res.err, "org.virtbus1");
        harness_result_done(&res);

        /* The first one is unharmed. */
        assert_int_equal(harness_daemon_pid(h), first);
        assert_int_equal(kill(first, 0), 0);
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "Driver"), "test");
}

static void check_clean_exit(Harness *h, int sig, const char *log_line) {
        _cleanup_free_ char *log = NULL;
        int has_owner = -1;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        assert_int_equal(harness_daemon_kill(h, sig), 0);
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(log);
        assert_contains(log, log_line);
        assert_int_equal(sd_bus_call_method(harness_bus_root(h), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
                                            HARNESS_SERVICE),
                         1);
        assert_int_equal(sd_bus_message_read(reply, "b", &has_owner), 1);
        assert_false(has_owner);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
}

static void test_sigterm(void **state) {
        check_clean_exit(*state, SIGTERM, "Received Terminated, shutting down.");
}

static void test_sigint(void **state) {
        check_clean_exit(*state, SIGINT, "Received Interrupt, shutting down.");
}

static void test_non_root_cannot_own(void **state) {
        /* org.virtbus1.conf: only root may own the name. */
        Harness *h = *state;
        HarnessResult res = {};

        run_on_bus(h, HARNESS_USER_PLAIN, "as-user", NULL, &res);
        assert_int_equal(res.status, 1);
        assert_contains(res.err, "does not allow this user to own org.virtbus1");
        harness_result_done(&res);

        run_on_bus(h, HARNESS_USER_VIRTBUS, "as-group-member", NULL, &res);
        assert_int_equal(res.status, 1);
        assert_contains(res.err, "does not allow this user to own org.virtbus1");
        harness_result_done(&res);

        /* Root may, with the same kind of arguments: it was the policy. */
        assert_int_equal(harness_daemon_start(h, NULL), 0);
}

/* --user: a session bus, no polkit, only the daemon's own uid is served. */
static void test_user_mode_owner(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w =
                harness_watch_signal(bus, HARNESS_MANAGER_PATH, HARNESS_PROPERTIES_INTERFACE, "PropertiesChanged");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        assert_string_equal(harness_get_string(bus, M, "Driver"), "test");
        assert_int_equal(harness_set_property(bus, M, "LogLevel", &e, "s", "debug"), 1);
        assert_string_equal(harness_get_string(bus, M, "LogLevel"), "debug");
        m = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(m);
        assert_int_equal(harness_set_property(bus, M, "LogLevel", &e, "s", "info"), 1);
        assert_string_equal(harness_get_string(bus, M, "LogLevel"), "info");

        assert_true(harness_set_property(bus, M, "LogLevel", &e, "s", "chatty") < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "'chatty'");
}

static void test_user_mode_others_refused(void **state) {
        Harness *h = *state;
        static const HarnessUser others[] = { HARNESS_USER_VIRTBUS, HARNESS_USER_ROOT };

        for (size_t i = 0; i < ELEMENTSOF(others); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e2 = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *level = NULL;

                assert_true(harness_set_property(harness_bus_as(h, others[i]), M, "LogLevel", &e, "s", "debug") < 0);
                harness_assert_error(&e, SD_BUS_ERROR_ACCESS_DENIED, NULL);
                /* Reads too: a per-user service serves its own user only. */
                assert_true(sd_bus_get_property_string(harness_bus_as(h, others[i]), HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                                       HARNESS_MANAGER_INTERFACE, "LogLevel", &e2, &level) < 0);
                harness_assert_error(&e2, SD_BUS_ERROR_ACCESS_DENIED, "own user");
        }
        assert_string_equal(harness_get_string(harness_bus_as(h, HARNESS_USER_PLAIN), M, "LogLevel"), "info");
}

/* The compiled schemas are dropped 2 s after their last use (freed in a thread of the daemon's own, so
 * that freeing them does not hold the event loop) and compiled again for the next definition, which is
 * still checked against them: a valid one defined, an invalid one refused naming the element. */
static void test_schemas_released_and_compiled_again(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;
        unsigned before = harness_daemon_log_count(h, "compiled schemas after");

        assert_int_equal(harness_set_property(bus, M, "LogLevel", &e, "s", "debug"), 1);
        a = harness_define_test_domain(bus, "schemas-a", "");
        harness_daemon_wait_log(h, "compiled schemas after", before + 1, HARNESS_TIMEOUT_USEC);
        b = harness_define_test_domain(bus, "schemas-b", "");
        harness_call_fails(bus, "org.virtbus1.Error.InvalidXML", "element 'bogus' is not allowed in <devices>", M,
                           "DefineDomain", "st",
                           "<domain type='test'><name>schemas-c</name><memory unit='MiB'>128</memory><os><type>hvm</type></os>"
                           "<devices><bogus/></devices></domain>",
                           UINT64_C(0));
        harness_daemon_wait_log(h, "compiled schemas after", before + 2, HARNESS_TIMEOUT_USEC);
        assert_int_equal(harness_set_property(bus, M, "LogLevel", &e, "s", "info"), 1);
}

int main(void) {
        static const struct CMUnitTest daemon_tests[] = {
                cmocka_unit_test(test_schemas_released_and_compiled_again),
                cmocka_unit_test(test_help),
                cmocka_unit_test(test_version),
                cmocka_unit_test(test_bad_options),
                cmocka_unit_test(test_name_taken),
                cmocka_unit_test(test_sigterm),
                cmocka_unit_test(test_sigint),
        };
        static const struct CMUnitTest no_daemon_tests[] = {
                cmocka_unit_test(test_non_root_cannot_own),
        };
        static const struct CMUnitTest user_mode_tests[] = {
                cmocka_unit_test(test_user_mode_owner),
                cmocka_unit_test(test_user_mode_others_refused),
        };
        int r = 0;

        HARNESS_SKIP_UNLESS_ROOT();
        r += harness_run_group(daemon_tests, &(HarnessOptions) {});
        r += harness_run_group(no_daemon_tests, &(HarnessOptions) { .no_daemon = true, .no_polkit = true });
        r += harness_run_group(user_mode_tests,
                               &(HarnessOptions) { .session_bus = true, .daemon_user = HARNESS_USER_PLAIN,
                                                   .daemon_args = (const char *[]) { "--user", NULL } });
        return r == 0 ? 0 : 1;
}
