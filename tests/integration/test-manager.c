/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Manager on a private system bus with the real polkitd. */
#include <stdio.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define PROPS HARNESS_MANAGER_PATH, HARNESS_PROPERTIES_INTERFACE

static const char * const log_levels[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

static bool is_log_level(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (streq(s, log_levels[i]))
                        return true;
        return false;
}

static void test_properties(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);

        assert_string_equal(harness_get_string(bus, M, "Version"), VIRTBUS_PROJECT_VERSION);
        assert_string_equal(harness_get_string(bus, M, "Driver"), "test");
        assert_true(is_log_level(harness_get_string(bus, M, "LogLevel")));

        /* Reading is open to everyone: the bus policy lets anyone call, and reads need no polkit. */
        bus = harness_bus_as(h, HARNESS_USER_PLAIN);
        assert_string_equal(harness_get_string(bus, M, "Version"), VIRTBUS_PROJECT_VERSION);
        assert_string_equal(harness_get_string(bus, M, "Driver"), "test");
}

static void test_get_all(void **state) {
        Harness *h = *state;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(harness_bus_as(h, HARNESS_USER_VIRTBUS), PROPS, "GetAll", "s", HARNESS_MANAGER_INTERFACE);
        const char *name, *value;
        unsigned seen = 0;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{sv}"), 1);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_int_equal(sd_bus_message_read(reply, "s", &name), 1);
                assert_int_equal(sd_bus_message_read(reply, "v", "s", &value), 1);
                if (streq(name, "Version")) {
                        assert_string_equal(value, VIRTBUS_PROJECT_VERSION);
                        seen |= 1;
                } else if (streq(name, "Driver")) {
                        assert_string_equal(value, "test");
                        seen |= 2;
                } else if (streq(name, "LogLevel")) {
                        assert_true(is_log_level(value));
                        seen |= 4;
                } else
                        fail_msg("unexpected property %s", name);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
        }
        assert_int_equal(sd_bus_message_exit_container(reply), 1);
        assert_int_equal(seen, 7);
}

static void test_introspection(void **state) {
        Harness *h = *state;

        /* Later object types add a line each: harness_assert_introspection(bus, path, "interfaces/...xml"). */
        harness_assert_introspection(harness_bus_root(h), HARNESS_MANAGER_PATH, "interfaces/org.virtbus1.Manager.xml");
}

static void test_introspection_comparer(void **state) {
        /* The comparer itself: a changed access, arg, annotation or missing member must show. */
        static const char *base =
                "<node><interface name='org.virtbus1.X'>"
                "<method name='M'><arg name='a' type='s' direction='in'/><arg name='b' type='u' direction='out'/>"
                "<annotation name='org.freedesktop.DBus.DocString' value='doc'/></method>"
                "<property name='P' type='s' access='read'>"
                "<annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='const'/></property>"
                "<signal name='S'><arg name='x' type='o'/></signal></interface></node>";
        static const char *same =
                "<node><interface name='org.virtbus1.X'><signal name='S'><arg name='x' type='o'/></signal>"
                "<property name='P' type='s' access='read'>"
                "<annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='const'/></property>"
                "<method name='M'><arg name='a' type='s'/><arg name='b' type='u' direction='out'/></method>"
                "</interface><interface name='org.other.Y'/></node>";
        static const char *different[] = {
                "<node><interface name='org.virtbus1.X'><method name='M'><arg name='a' type='s'/>"
                "<arg name='b' type='u' direction='out'/></method><property name='P' type='s' access='readwrite'>"
                "<annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='const'/></property>"
                "<signal name='S'><arg name='x' type='o'/></signal></interface></node>",
                "<node><interface name='org.virtbus1.X'><method name='M'><arg name='b' type='u' direction='out'/>"
                "<arg name='a' type='s'/></method><property name='P' type='s' access='read'>"
                "<annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='const'/></property>"
                "<signal name='S'><arg name='x' type='o'/></signal></interface></node>",
                "<node><interface name='org.virtbus1.X'><method name='M'><arg name='a' type='s'/>"
                "<arg name='b' type='u' direction='out'/></method><property name='P' type='s' access='read'/>"
                "<signal name='S'><arg name='x' type='o'/></signal></interface></node>",
                "<node><interface name='org.virtbus1.X'><method name='M'><arg name='a' type='s'/>"
                "<arg name='b' type='u' direction='out'/></method><property name='P' type='s' access='read'>"
                "<annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='const'/></property>"
                "</interface></node>",
        };
        _cleanup_free_ char *a = harness_introspection_normalize(base, "org.virtbus1.", NULL);
        _cleanup_free_ char *b = harness_introspection_normalize(same, "org.virtbus1.", NULL);

        assert_non_null(a);
        assert_string_equal(a, b);
        for (size_t i = 0; i < ELEMENTSOF(different); i++) {
                _cleanup_free_ char *d = harness_introspection_normalize(different[i], "org.virtbus1.", NULL);
                assert_non_null(d);
                assert_string_not_equal(a, d);
        }
}

static void test_object_manager(void **state) {
        Harness *h = *state;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(
                harness_bus_as(h, HARNESS_USER_PLAIN), HARNESS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects", NULL);
        const char *path;

        assert_string_equal(sd_bus_message_get_signature(reply, true), "a{oa{sa{sv}}}");
        /* Whatever the test driver starts with lives below the manager. */
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}"), 1);
        while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
                assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
                assert_true(strncmp(path, HARNESS_MANAGER_PATH "/", strlen(HARNESS_MANAGER_PATH) + 1) == 0);
                assert_int_equal(sd_bus_message_skip(reply, "a{sa{sv}}"), 1);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
        }
}

/* The LogLevel value carried by a PropertiesChanged signal, or NULL. */
static const char *changed_log_level(sd_bus_message *m) {
        const char *interface, *name, *value = NULL;

        assert_int_equal(sd_bus_message_read(m, "s", &interface), 1);
        assert_string_equal(interface, HARNESS_MANAGER_INTERFACE);
        assert_int_equal(sd_bus_message_enter_container(m, 'a', "{sv}"), 1);
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                assert_int_equal(sd_bus_message_read(m, "s", &name), 1);
                if (streq(name, "LogLevel"))
                        assert_int_equal(sd_bus_message_read(m, "v", "s", &value), 1);
                else
                        assert_int_equal(sd_bus_message_skip(m, "v"), 1);
                assert_int_equal(sd_bus_message_exit_container(m), 1);
        }
        return value;
}

static void test_root_sets_log_level(void **state) {
        Harness *h = *state;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        /* An unprivileged observer: signals reach everyone. */
        _cleanup_(harness_watch_freep) HarnessWatch *w =
                harness_watch_signal(harness_bus_as(h, HARNESS_USER_PLAIN), HARNESS_MANAGER_PATH,
                                     HARNESS_PROPERTIES_INTERFACE, "PropertiesChanged");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *old = harness_get_string(harness_bus_root(h), M, "LogLevel");
        const char *new = streq(old, "debug") ? "notice" : "debug";

        assert_non_null(w);
        assert_int_equal(harness_set_property(harness_bus_root(h), M, "LogLevel", &e, "s", new), 1);
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "LogLevel"), new);
        m = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(m);
        assert_string_equal(changed_log_level(m), new);

        assert_int_equal(harness_set_property(harness_bus_root(h), M, "LogLevel", &e, "s", old), 1);
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "LogLevel"), old);
}

/* An unprivileged caller: polkit says "challenge" (auth_admin, no agent), which is
 * InteractiveAuthorizationRequired without the interactive flag and AccessDenied with it. */
static void check_refused(Harness *h, HarnessUser user) {
        _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL;
        sd_bus *bus = harness_bus_as(h, user);
        const char *old = harness_get_string(harness_bus_root(h), M, "LogLevel");
        const char *new = streq(old, "debug") ? "notice" : "debug";

        assert_non_null(bus);
        assert_true(harness_set_property(bus, M, "LogLevel", &e1, "s", new) < 0);
        harness_assert_error(&e1, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.manage");

        assert_int_equal(sd_bus_set_allow_interactive_authorization(bus, true), 0);
        assert_true(harness_set_property(bus, M, "LogLevel", &e2, "s", new) < 0);
        assert_int_equal(sd_bus_set_allow_interactive_authorization(bus, false), 0);
        harness_assert_error(&e2, SD_BUS_ERROR_ACCESS_DENIED, "org.virtbus1.manage");

        /* Nothing changed. */
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "LogLevel"), old);
}

static void test_plain_user_refused(void **state) {
        check_refused(*state, HARNESS_USER_PLAIN);
}

static void test_virtbus_group_refused(void **state) {
        /* The example rule grants domains and networks to group virtbus, not the service's settings. */
        check_refused(*state, HARNESS_USER_VIRTBUS);
}

static void test_bad_arguments(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *old = harness_get_string(bus, M, "LogLevel");

        assert_true(harness_set_property(bus, M, "LogLevel", &e, "s", "verbose") < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "'verbose'");
        assert_string_equal(harness_get_string(bus, M, "LogLevel"), old);

        /* Wrong type, read-only and unknown properties: sd-bus's own answers, part of the API. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, NULL, PROPS, "Set", "ssv", HARNESS_MANAGER_INTERFACE,
                           "LogLevel", "u", 7);
        harness_call_fails(bus, SD_BUS_ERROR_PROPERTY_READ_ONLY, NULL, PROPS, "Set", "ssv",
                           HARNESS_MANAGER_INTERFACE, "Version", "s", "9.9");
        harness_call_fails(bus, SD_BUS_ERROR_UNKNOWN_PROPERTY, NULL, PROPS, "Get", "ss", HARNESS_MANAGER_INTERFACE,
                           "Frobnicate");
        harness_call_fails(bus, SD_BUS_ERROR_UNKNOWN_METHOD, NULL, M, "Frobnicate", NULL);
        assert_string_equal(harness_get_string(bus, M, "LogLevel"), old);
}

static void check_actions(Harness *h, HarnessUser user, const char * const *allowed, const char * const *refused) {
        bool authorized, challenge;

        for (const char * const *a = allowed; *a; a++) {
                assert_int_equal(harness_polkit_check(h, user, *a, NULL, false, &authorized, &challenge), 0);
                if (!authorized)
                        fail_msg("%s should be authorized for %s", *a, harness_user_name(h, user));
        }
        for (const char * const *a = refused; *a; a++) {
                assert_int_equal(harness_polkit_check(h, user, *a, NULL, false, &authorized, &challenge), 0);
                if (authorized)
                        fail_msg("%s should not be authorized for %s", *a, harness_user_name(h, user));
                /* auth_admin with no agent: an administrator could still say yes. */
                assert_true(challenge);
        }
}

static void test_example_rule(void **state) {
        Harness *h = *state;

        check_actions(h, HARNESS_USER_VIRTBUS,
                      (const char *[]) { "org.virtbus1.domain.manage", "org.virtbus1.network.manage", NULL },
                      (const char *[]) { "org.virtbus1.manage", "org.virtbus1.domain.read-secure",
                                         "org.virtbus1.hostdev.assign", "org.virtbus1.sriov.configure",
                                         "org.virtbus1.nodedev.manage", NULL });
        check_actions(h, HARNESS_USER_PLAIN, (const char *[]) { NULL },
                      (const char *[]) { "org.virtbus1.manage", "org.virtbus1.domain.manage",
                                         "org.virtbus1.domain.read-secure", "org.virtbus1.network.manage",
                                         "org.virtbus1.hostdev.assign", "org.virtbus1.sriov.configure",
                                         "org.virtbus1.nodedev.manage", NULL });
}

static void test_polkit_decides(void **state) {
        /* A site rule granting org.virtbus1.manage to one user is all it takes: the daemon defers to
         * polkit and adds no check of its own. */
        Harness *h = *state;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *rule = NULL;
        const char *old = harness_get_string(harness_bus_root(h), M, "LogLevel");
        const char *new = streq(old, "debug") ? "notice" : "debug";

        assert_true(asprintf(&rule,
                             "polkit.addRule(function(action, subject) {\n"
                             "        if (action.id == \"org.virtbus1.manage\" && subject.user == \"%s\")\n"
                             "                return polkit.Result.YES;\n"
                             "});\n", harness_user_name(h, HARNESS_USER_VIRTBUS)) > 0);
        assert_int_equal(harness_polkit_add_rules(h, "grant-manage", rule), 0);
        assert_int_equal(harness_polkit_wait_for(h, HARNESS_USER_VIRTBUS, "org.virtbus1.manage", true), 0);

        assert_int_equal(harness_set_property(harness_bus_as(h, HARNESS_USER_VIRTBUS), M, "LogLevel", &e, "s", new), 1);
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "LogLevel"), new);
        /* The plain user is still refused. */
        check_refused(h, HARNESS_USER_PLAIN);
        assert_int_equal(harness_set_property(harness_bus_root(h), M, "LogLevel", &e, "s", old), 1);
}

static void test_restart_keeps_serving(void **state) {
        Harness *h = *state;
        pid_t before = harness_daemon_pid(h);

        assert_int_equal(harness_daemon_restart(h), 0);
        assert_int_not_equal(harness_daemon_pid(h), before);
        assert_string_equal(harness_get_string(harness_bus_root(h), M, "Driver"), "test");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_properties),
                cmocka_unit_test(test_get_all),
                cmocka_unit_test(test_introspection),
                cmocka_unit_test(test_introspection_comparer),
                cmocka_unit_test(test_object_manager),
                cmocka_unit_test(test_root_sets_log_level),
                cmocka_unit_test(test_plain_user_refused),
                cmocka_unit_test(test_virtbus_group_refused),
                cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_example_rule),
                cmocka_unit_test(test_polkit_decides),
                cmocka_unit_test(test_restart_keeps_serving),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
