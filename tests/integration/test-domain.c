/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domains as D-Bus objects: Manager methods, org.virtbus1.Domain, ObjectManager signals, persistence
 * across restarts of virtbusd, and authorization with the real polkitd. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define OM_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define ERR(name) "org.virtbus1.Error." name

static char *domain_xml(const char *name, const char *uuid, const char *extra) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='test'>\n"
                             "  <name>%s</name>\n"
                             "%s%s%s"
                             "  <memory unit='MiB'>256</memory>\n"
                             "  <vcpu>3</vcpu>\n"
                             "  <os><type arch='x86_64'>hvm</type></os>\n"
                             "  <devices>%s</devices>\n"
                             "</domain>\n",
                             name, uuid ? "  <uuid>" : "", uuid ?: "", uuid ? "</uuid>\n" : "", extra ?: "") >= 0);
        return x;
}

/* Defines a domain as root and returns its object path (to free). */
static char *define(sd_bus *bus, const char *name, const char *uuid, const char *extra) {
        _cleanup_free_ char *xml = domain_xml(name, uuid, extra);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "DefineDomain", "st", xml, UINT64_C(0));
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

static char *get_path(sd_bus *bus, const char *method, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, method, "s", arg);
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

static void call_domain_fails(sd_bus *bus, const char *path, const char *method, const char *error, const char *part) {
        harness_call_fails(bus, error, part, path, DOMAIN_INTERFACE, method, "t", UINT64_C(0));
}

static const char *state_of(Harness *h, const char *path) {
        return harness_get_string(harness_bus_root(h), path, DOMAIN_INTERFACE, "State");
}

static int get_bool(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, property, &e, 'b', &b), 0);
        return b;
}

static uint32_t get_u32(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t u = 0;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, property, &e, 'u', &u), 0);
        return u;
}

static size_t list_domains(sd_bus *bus, uint64_t flags, const char *must_contain) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "ListDomains", "t", flags);
        const char *p;
        size_t n = 0;
        bool found = !must_contain;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "o"), 1);
        while (sd_bus_message_read(reply, "o", &p) > 0) {
                n++;
                if (must_contain && streq(p, must_contain))
                        found = true;
        }
        assert_true(found);
        return n;
}

/* Waits for PropertiesChanged on path carrying State = state. */
static void expect_state_signal(HarnessWatch *w, const char *state) {
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
                const char *iface, *name, *value;

                if (!s)
                        fail_msg("no PropertiesChanged with State='%s'", state);
                assert_int_equal(sd_bus_message_read(s, "s", &iface), 1);
                assert_string_equal(iface, DOMAIN_INTERFACE);
                assert_int_equal(sd_bus_message_enter_container(s, 'a', "{sv}"), 1);
                while (sd_bus_message_enter_container(s, 'e', "sv") > 0) {
                        assert_int_equal(sd_bus_message_read(s, "s", &name), 1);
                        if (streq(name, "State")) {
                                assert_int_equal(sd_bus_message_read(s, "v", "s", &value), 1);
                                if (streq(value, state))
                                        return;
                        } else
                                assert_int_equal(sd_bus_message_skip(s, "v"), 1);
                        assert_int_equal(sd_bus_message_exit_container(s), 1);
                }
        }
}

static void test_default_host(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN); /* reading is open to all */
        _cleanup_free_ char *path = get_path(bus, "GetDomainByName", "test");

        assert_string_equal(path, "/org/virtbus1/domain/6695eb01f6a4830479aa97f2502e193f");
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "Name"), "test");
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID"), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "State"), "running");
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "OSType"), "hvm");
        assert_true(get_u32(bus, path, "Id") > 0);
        assert_int_equal(get_bool(bus, path, "Persistent"), 1);
        assert_int_equal(get_u32(bus, path, "VCPUs"), 2);
        assert_true(list_domains(bus, 1, path) >= 1);
        harness_assert_introspection(bus, path, "interfaces/org.virtbus1.Domain.xml");
        harness_assert_introspection(bus, HARNESS_MANAGER_PATH, "interfaces/org.virtbus1.Manager.xml");
}

static void test_define_lookup_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesAdded");
        _cleanup_free_ char *path = NULL, *p2 = NULL, *p3 = NULL, *xml = NULL, *bad = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *added = NULL;
        const char *added_path;

        path = define(bus, "web", "0a1b2c3d-0000-4000-8000-00000000abcd", NULL);
        assert_string_equal(path, "/org/virtbus1/domain/0a1b2c3d00004000800000000000abcd");
        added = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(added);
        assert_int_equal(sd_bus_message_read(added, "o", &added_path), 1);
        assert_string_equal(added_path, path);

        assert_string_equal(state_of(h, path), "shutoff");
        assert_int_equal(get_u32(bus, path, "Id"), 0);
        assert_int_equal(get_u32(bus, path, "VCPUs"), 3);
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint64_t mem = 0;
                assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "MemoryKiB", &e, 't', &mem), 0);
                assert_int_equal(mem, 256 * 1024);
        }

        p2 = get_path(bus, "GetDomainByName", "web");
        assert_string_equal(p2, path);
        p3 = get_path(bus, "GetDomainByUUID", "0A1B2C3D00004000800000000000ABCD");
        assert_string_equal(p3, path);
        harness_call_fails(bus, ERR("NoSuchDomain"), "'nope'", M, "GetDomainByName", "s", "nope");
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByUUID", "s", "0a1b2c3d-0000-4000-8000-000000000000");
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "'xyz'", M, "GetDomainByUUID", "s", "xyz");

        xml = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(xml, "<name>web</name>"));
        assert_non_null(strstr(xml, "0a1b2c3d-0000-4000-8000-00000000abcd"));

        /* Errors: flags, XML, duplicates. */
        bad = domain_xml("web2", NULL, NULL);
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", M, "DefineDomain", "st", bad, UINT64_C(8));
        harness_call_fails(bus, ERR("InvalidXML"), NULL, M, "DefineDomain", "st", "<domain type='test'><name>x</name>", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidXML"), "line", M, "DefineDomain", "st",
                           "<domain type='test'><name>x</name><memory>1</memory><os><type>hvm</type></os><bogus/></domain>", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "empty", M, "DefineDomain", "st", "", UINT64_C(0));
        free(bad);
        bad = domain_xml("web", "0a1b2c3d-0000-4000-8000-00000000ffff", NULL);
        harness_call_fails(bus, ERR("AlreadyExists"), "'web'", M, "DefineDomain", "st", bad, UINT64_C(0));
        free(bad);
        bad = domain_xml("other", "0a1b2c3d-0000-4000-8000-00000000abcd", NULL);
        harness_call_fails(bus, ERR("AlreadyExists"), "0a1b2c3d-0000-4000-8000-00000000abcd", M, "DefineDomain", "st", bad, UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", M, "ListDomains", "t", UINT64_C(4));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", path, DOMAIN_INTERFACE, "GetXMLDesc", "t", UINT64_C(4));
}

static void test_lifecycle(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "life", NULL, NULL), *xml = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
        size_t active_before = list_domains(bus, 1, NULL), inactive_before = list_domains(bus, 2, path);

        call_domain_fails(bus, path, "Shutdown", ERR("InvalidState"), "Domain 'life' is not running");
        call_domain_fails(bus, path, "Suspend", ERR("InvalidState"), "not running");
        call_domain_fails(bus, path, "Destroy", ERR("InvalidState"), "not running");
        call_domain_fails(bus, path, "Reboot", ERR("InvalidState"), "not running");
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(2));

        harness_domain_call(bus, path, "Start");
        expect_state_signal(w, "running");
        assert_string_equal(state_of(h, path), "running");
        assert_true(get_u32(bus, path, "Id") > 0);
        assert_int_equal(list_domains(bus, 1, path), active_before + 1);
        assert_int_equal(list_domains(bus, 2, NULL), inactive_before - 1);
        call_domain_fails(bus, path, "Start", ERR("InvalidState"), "already running");
        xml = harness_domain_xml(bus, path, 0);
        assert_non_null(strstr(xml, " id="));
        free(xml);
        xml = harness_domain_xml(bus, path, 1);
        assert_null(strstr(xml, " id="));

        harness_domain_call(bus, path, "Suspend");
        expect_state_signal(w, "paused");
        call_domain_fails(bus, path, "Suspend", ERR("InvalidState"), "paused");
        harness_domain_call(bus, path, "Resume");
        expect_state_signal(w, "running");
        harness_domain_call(bus, path, "Reboot");
        harness_domain_call(bus, path, "Reset");
        assert_string_equal(state_of(h, path), "running");

        /* Shutdown waits until the guest has powered off. */
        harness_domain_call(bus, path, "Shutdown");
        assert_string_equal(state_of(h, path), "shutoff");
        assert_int_equal(get_u32(bus, path, "Id"), 0);

        /* Paused start, then Destroy. */
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(1)));
        assert_string_equal(state_of(h, path), "paused");
        harness_domain_call(bus, path, "Destroy");
        assert_string_equal(state_of(h, path), "shutoff");

        /* Shutdown without waiting. */
        harness_domain_call(bus, path, "Start");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Shutdown", "t", UINT64_C(1)));
        expect_state_signal(w, "shutoff");
}

static void test_rename_undefine(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "old-name", NULL, NULL);
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesRemoved");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        const char *p;

        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "a/b", path, DOMAIN_INTERFACE, "Rename", "st", "a/b", UINT64_C(0));
        harness_call_fails(bus, ERR("AlreadyExists"), "'test'", path, DOMAIN_INTERFACE, "Rename", "st", "test", UINT64_C(0));
        harness_domain_call(bus, path, "Start");
        harness_call_fails(bus, ERR("InvalidState"), "shut off", path, DOMAIN_INTERFACE, "Rename", "st", "new-name", UINT64_C(0));
        harness_domain_call(bus, path, "Destroy");
        sd_bus_message_unref(harness_call_ok(bus, path, DOMAIN_INTERFACE, "Rename", "st", "new-name", UINT64_C(0)));
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "Name"), "new-name");
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "old-name");

        harness_domain_call(bus, path, "Undefine");
        removed = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(removed);
        assert_int_equal(sd_bus_message_read(removed, "o", &p), 1);
        assert_string_equal(p, path);
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "new-name");
        harness_call_fails(bus, SD_BUS_ERROR_UNKNOWN_OBJECT, NULL, path, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
}

static void test_transient(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = domain_xml("fleeting", NULL, NULL), *path = NULL, *running = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *p;

        reply = harness_call_ok(bus, M, "CreateDomain", "st", xml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        path = strdup(p);
        assert_string_equal(state_of(h, path), "running");
        assert_int_equal(get_bool(bus, path, "Persistent"), 0);
        harness_call_fails(bus, ERR("InvalidState"), "transient", path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0));
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                harness_set_property(bus, path, DOMAIN_INTERFACE, "Autostart", &e, "b", 1);
                harness_assert_error(&e, ERR("InvalidState"), "transient");
        }
        /* Creating it again while it runs. */
        harness_call_fails(bus, ERR("AlreadyExists"), "'fleeting'", M, "CreateDomain", "st", xml, UINT64_C(0));
        harness_domain_call(bus, path, "Destroy");
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "fleeting");

        /* Undefining a running persistent domain leaves it running, transient. */
        running = define(bus, "was-persistent", NULL, NULL);
        harness_domain_call(bus, running, "Start");
        harness_domain_call(bus, running, "Undefine");
        assert_int_equal(get_bool(bus, running, "Persistent"), 0);
        assert_string_equal(state_of(h, running), "running");
        harness_domain_call(bus, running, "Destroy");
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "was-persistent");
}

static void test_managed_objects(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "GetManagedObjects", "");
        size_t n = 0, with_name = 0;
        const char *path, *iface, *prop;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}"), 1);
        while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
                assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
                assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{sa{sv}}"), 1);
                while (sd_bus_message_enter_container(reply, 'e', "sa{sv}") > 0) {
                        assert_int_equal(sd_bus_message_read(reply, "s", &iface), 1);
                        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{sv}"), 1);
                        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                                assert_int_equal(sd_bus_message_read(reply, "s", &prop), 1);
                                if (streq(iface, DOMAIN_INTERFACE) && streq(prop, "Name"))
                                        with_name++;
                                assert_int_equal(sd_bus_message_skip(reply, "v"), 1);
                                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                        }
                        assert_int_equal(sd_bus_message_exit_container(reply), 1);
                        assert_int_equal(sd_bus_message_exit_container(reply), 1);
                }
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                if (strncmp(path, "/org/virtbus1/domain/", 21) == 0)
                        n++;
        }
        assert_int_equal(n, list_domains(bus, 0, NULL));
        assert_int_equal(with_name, n);
}

static void test_secrets(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = define(root, "secret", NULL, "<graphics type='vnc' port='-1' autoport='yes' passwd='hunter2'/>");
        _cleanup_free_ char *plain = NULL, *secure = NULL;

        plain = harness_domain_xml(harness_bus_as(h, HARNESS_USER_PLAIN), path, 0);
        assert_null(strstr(plain, "hunter2"));
        assert_non_null(strstr(plain, "<graphics"));
        secure = harness_domain_xml(root, path, 2);
        assert_non_null(strstr(secure, "hunter2"));
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL,
                           path, DOMAIN_INTERFACE, "GetXMLDesc", "t", UINT64_C(2));
        /* The example rule does not grant read-secure to group virtbus either. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_VIRTBUS), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL,
                           path, DOMAIN_INTERFACE, "GetXMLDesc", "t", UINT64_C(2));
}

static void test_authorization(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN),
               *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *xml = domain_xml("by-member", NULL, NULL), *xml2 = domain_xml("by-plain", NULL, NULL);
        _cleanup_free_ char *path = define(root, "guarded", NULL, NULL), *mpath = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *p;

        /* Unprivileged: refused, and nothing happened. */
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.domain.manage",
                           M, "DefineDomain", "st", xml2, UINT64_C(0));
        harness_call_fails(root, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "by-plain");
        call_domain_fails(plain, path, "Start", SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
        assert_string_equal(state_of(h, path), "shutoff");
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                harness_set_property(plain, path, DOMAIN_INTERFACE, "Autostart", &e, "b", 1);
                harness_assert_error(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
                assert_int_equal(get_bool(root, path, "Autostart"), 0);
        }
        /* With interaction allowed but no agent: AccessDenied. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *r = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                assert_int_equal(sd_bus_message_new_method_call(plain, &call, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "Start"), 0);
                assert_int_equal(sd_bus_message_append(call, "t", UINT64_C(0)), 1);
                assert_int_equal(sd_bus_message_set_allow_interactive_authorization(call, true), 0);
                assert_true(sd_bus_call(plain, call, 0, &e, &r) < 0);
                harness_assert_error(&e, SD_BUS_ERROR_ACCESS_DENIED, NULL);
        }

        /* Group virtbus, through the example rule and the real polkitd: may manage domains. */
        reply = harness_call_ok(member, M, "DefineDomain", "st", xml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        mpath = strdup(p);
        harness_domain_call(member, mpath, "Start");
        harness_domain_call(member, mpath, "Suspend");
        harness_domain_call(member, mpath, "Resume");
        harness_domain_call(member, mpath, "Destroy");
        assert_int_equal(harness_set_property(member, mpath, DOMAIN_INTERFACE, "Autostart", NULL, "b", 1), 1);
        assert_int_equal(get_bool(root, mpath, "Autostart"), 1);
        harness_domain_call(member, mpath, "Undefine");
        /* ... but not the service's own settings. */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                harness_set_property(member, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE, "LogLevel", &e, "s", "debug");
                harness_assert_error(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
        }
}

static void test_persistence_restart(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *a = define(bus, "persist-a", NULL, NULL), *b = define(bus, "persist-b", NULL, NULL);
        _cleanup_free_ char *t = NULL, *xml = domain_xml("persist-transient", NULL, NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *p;

        assert_int_equal(harness_set_property(bus, a, DOMAIN_INTERFACE, "Autostart", NULL, "b", 1), 1);
        harness_domain_call(bus, b, "Start");
        harness_domain_call(bus, b, "Suspend");
        reply = harness_call_ok(bus, M, "CreateDomain", "st", xml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        t = strdup(p);

        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        /* Autostart domain started; a paused one is still paused; the transient one still runs. */
        assert_string_equal(state_of(h, a), "running");
        assert_int_equal(get_bool(bus, a, "Autostart"), 1);
        assert_string_equal(state_of(h, b), "paused");
        assert_string_equal(state_of(h, t), "running");
        assert_int_equal(get_bool(bus, t, "Persistent"), 0);
        harness_domain_call(bus, t, "Destroy");
        harness_domain_call(bus, b, "Destroy");
}

static unsigned dangling_links(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                        fprintf(stderr, "dangling autostart link %s/%s\n", dir, de->d_name);
                        n++;
                }
        }
        closedir(d);
        return n;
}

static int on_set_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unsigned *answered = userdata;

        assert_false(sd_bus_message_is_method_error(m, NULL));
        (*answered)++;
        return 0;
}

/* Autostart is answered once its link is durable (the store thread syncs it): writes sent together are
 * applied in order, the last one wins, an undefine meanwhile waits for them, and a value of the wrong type
 * is refused. */
static void test_autostart_async(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *a = define(bus, "autostart-a", NULL, NULL), *b = define(bus, "autostart-b", NULL, NULL);
        const int values[] = { 1, 0, 1, 1, 0, 1 };
        unsigned answered = 0;

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

                assert_true(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, a,
                                                           "org.freedesktop.DBus.Properties", "Set") >= 0);
                assert_true(sd_bus_message_append(call, "ssv", DOMAIN_INTERFACE, "Autostart", "b", values[i]) >= 0);
                assert_true(sd_bus_call_async(bus, NULL, call, on_set_reply, &answered, 0) >= 0);
        }
        /* b's Autostart on, then undefined at once: the undefine comes after the link. */
        assert_int_equal(harness_set_property(bus, b, DOMAIN_INTERFACE, "Autostart", NULL, "b", 1), 1);
        harness_domain_call(bus, b, "Undefine");
        while (answered < ELEMENTSOF(values)) {
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                assert_true(sd_bus_wait(bus, 100 * HARNESS_USEC_PER_MSEC) >= 0);
        }
        assert_int_equal(get_bool(bus, a, "Autostart"), 1);
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;

                assert_true(harness_set_property(bus, a, DOMAIN_INTERFACE, "Autostart", &e, "s", "yes") < 0);
                harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "boolean");
                sd_bus_error_free(&e);
        }
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_int_equal(get_bool(bus, a, "Autostart"), 1);
        assert_string_equal(state_of(h, a), "running");
        harness_domain_call(bus, a, "Destroy");
        harness_domain_call(bus, a, "Undefine");
        {
                _cleanup_free_ char *link = NULL;

                assert_true(asprintf(&link, "%s/domains/autostart", harness_config_dir(h)) > 0);
                /* Neither domain left a link behind: every one left leads to a definition. */
                assert_int_equal(dangling_links(link), 0);
        }
}

/* Changes of domains sent right behind an Autostart change and DefineDomain calls (pipelined, all on one
 * connection): those that find the store thread committing wait for it in core, off the event loop
 * (domain-queue.c), and every call is answered, rightly, in memory and on disk (after a restart). */
static void test_change_after_define(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        char *old_paths[8];
        unsigned answered = 0, sent = 0;

        for (unsigned i = 0; i < ELEMENTSOF(old_paths); i++) {
                _cleanup_free_ char *name = NULL;

                assert_true(asprintf(&name, "settle-old-%u", i) > 0);
                old_paths[i] = define(bus, name, NULL, NULL);
        }
        for (unsigned i = 0; i < ELEMENTSOF(old_paths); i++) {
                _cleanup_free_ char *name = NULL, *renamed = NULL, *xml = NULL;

                assert_true(asprintf(&name, "settle-new-%u", i) > 0);
                assert_true(asprintf(&renamed, "settle-renamed-%u", i) > 0);
                xml = domain_xml(name, NULL, NULL);
                /* Autostart is committed by the store thread too, at once: what follows finds it busy. */
                {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

                        assert_true(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, old_paths[i],
                                                                   "org.freedesktop.DBus.Properties", "Set") >= 0);
                        assert_true(sd_bus_message_append(call, "ssv", DOMAIN_INTERFACE, "Autostart", "b", 1) >= 0);
                        assert_true(sd_bus_call_async(bus, NULL, call, on_set_reply, &answered, 0) >= 0);
                        sent++;
                }
                assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, M, "DefineDomain", on_set_reply,
                                                     &answered, "st", xml, UINT64_C(0)) >= 0);
                assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, old_paths[i], DOMAIN_INTERFACE, "Rename",
                                                     on_set_reply, &answered, "st", renamed, UINT64_C(0)) >= 0);
                assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, old_paths[i], DOMAIN_INTERFACE,
                                                     "SetVCPUs", on_set_reply, &answered, "ut", 2, UINT64_C(2)) >= 0);
                sent += 3;
        }
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered < sent;) {
                assert_true(harness_now_usec() < end); /* a call that waited must be answered */
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                assert_true(sd_bus_wait(bus, 100 * HARNESS_USEC_PER_MSEC) >= 0);
        }
        for (int round = 0; round < 2; round++) {
                for (unsigned i = 0; i < ELEMENTSOF(old_paths); i++) {
                        _cleanup_free_ char *name = NULL, *renamed = NULL, *old = NULL, *path = NULL;
                        uint32_t vcpus = 0;

                        assert_true(asprintf(&name, "settle-new-%u", i) > 0);
                        assert_true(asprintf(&renamed, "settle-renamed-%u", i) > 0);
                        assert_true(asprintf(&old, "settle-old-%u", i) > 0);
                        free(get_path(bus, "GetDomainByName", name));
                        path = get_path(bus, "GetDomainByName", renamed);
                        assert_string_equal(path, old_paths[i]);
                        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "VCPUs",
                                                                     NULL, 'u', &vcpus), 0);
                        assert_int_equal(vcpus, 2);
                        assert_int_equal(get_bool(bus, path, "Autostart"), 1);
                        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", old);
                }
                /* What was answered is what was saved. */
                assert_int_equal(harness_daemon_restart(h), 0);
                bus = harness_bus_root(h);
        }
        for (unsigned i = 0; i < ELEMENTSOF(old_paths); i++) {
                _cleanup_free_ char *name = NULL, *path = NULL;

                assert_true(asprintf(&name, "settle-new-%u", i) > 0);
                path = get_path(bus, "GetDomainByName", name);
                harness_domain_call(bus, path, "Undefine");
                harness_domain_call(bus, old_paths[i], "Undefine");
                free(old_paths[i]);
        }
}

/* The answers to one caller's pipelined calls, in the order they come. */
typedef struct Answers {
        unsigned n, out_of_order, errors;
} Answers;

typedef struct AnswerSlot {
        Answers *answers;
        unsigned index; /* the call's place in the order of sending */
} AnswerSlot;

static int on_ordered_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        AnswerSlot *slot = userdata;
        Answers *a = slot->answers;
        unsigned index = slot->index;

        if (sd_bus_message_is_method_error(m, NULL)) {
                fprintf(stderr, "call %u: %s\n", index, sd_bus_message_get_error(m)->message);
                a->errors++;
        }
        if (index != a->n)
                a->out_of_order++;
        a->n++;
        return 0;
}

/* How many times polkitd ran the counting rule for domain name (its log lines). */
static unsigned polkit_checks(Harness *h, const char *name) {
        _cleanup_free_ char *path = NULL, *log = NULL, *needle = NULL;
        unsigned n = 0;

        assert_true(asprintf(&path, "%s/polkitd.log", harness_dir(h)) > 0);
        assert_true(asprintf(&needle, "virtbus-queue-check %s;", name) > 0);
        log = harness_read_file(path);
        for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* A caller's calls that find the store thread busy (another caller keeps it committing Autostart changes)
 * are kept in core after their authorization: polkit is asked once per call (a rule counts), and they are
 * answered in the order they were sent, the last one's value kept. */
static void test_queue_order(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *busy = define(root, "queue-busy", NULL, NULL), *path = define(root, "queue-mine", NULL, NULL);
        const char *details[] = { "domain", "queue-probe", NULL };
        enum { N_ROOT = 60, N_USER = 24 };
        AnswerSlot slots[N_USER];
        Answers answers = {};
        unsigned root_answered = 0, checks = 0;
        bool authorized = false, challenge = false;
        uint32_t vcpus = 0;

        assert_int_equal(harness_polkit_add_rules(h, "count-checks",
                                                  "polkit.addRule(function(action, subject) {\n"
                                                  "        var d = action.lookup('domain');\n"
                                                  "        if (action.id == 'org.virtbus1.domain.manage' && d &&\n"
                                                  "            d.indexOf('queue-') == 0)\n"
                                                  "                polkit.log('virtbus-queue-check ' + d + ';');\n"
                                                  "});\n"), 0);
        /* The rule is in force once a check shows in the log. */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; polkit_checks(h, "queue-probe") == 0;) {
                assert_true(harness_now_usec() < end);
                assert_int_equal(harness_polkit_check(h, HARNESS_USER_VIRTBUS, "org.virtbus1.domain.manage", details,
                                                      false, &authorized, &challenge), 0);
                usleep(100 * 1000);
        }
        assert_true(authorized);

        /* root keeps the store thread busy... */
        for (unsigned i = 0; i < N_ROOT; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

                assert_true(sd_bus_message_new_method_call(root, &call, HARNESS_SERVICE, busy,
                                                           "org.freedesktop.DBus.Properties", "Set") >= 0);
                assert_true(sd_bus_message_append(call, "ssv", DOMAIN_INTERFACE, "Autostart", "b", (int) (i % 2 == 0)) >= 0);
                assert_true(sd_bus_call_async(root, NULL, call, on_set_reply, &root_answered, 0) >= 0);
        }
        assert_true(sd_bus_flush(root) >= 0);
        /* ...while the user changes its domain's saved vCPUs back and forth, then renames it. */
        for (unsigned i = 0; i < N_USER; i++) {
                slots[i] = (AnswerSlot) { .answers = &answers, .index = i };
                if (i == N_USER - 1)
                        assert_true(sd_bus_call_method_async(user, NULL, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "Rename",
                                                             on_ordered_reply, &slots[i], "st", "queue-renamed",
                                                             UINT64_C(0)) >= 0);
                else
                        assert_true(sd_bus_call_method_async(user, NULL, HARNESS_SERVICE, path, DOMAIN_INTERFACE,
                                                             "SetVCPUs", on_ordered_reply, &slots[i], "ut",
                                                             (uint32_t) (i % 3 + 1), UINT64_C(2)) >= 0);
        }
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answers.n < N_USER || root_answered < N_ROOT;) {
                assert_true(harness_now_usec() < end);
                if (sd_bus_process(user, NULL) > 0 || sd_bus_process(root, NULL) > 0)
                        continue;
                assert_true(sd_bus_wait(user, 10 * HARNESS_USEC_PER_MSEC) >= 0);
        }
        assert_int_equal(answers.errors, 0);
        assert_int_equal(answers.out_of_order, 0);
        /* The last SetVCPUs (i = N_USER - 2) is what was kept, under the new name. */
        assert_int_equal(sd_bus_get_property_trivial(root, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "VCPUs", NULL, 'u',
                                                     &vcpus), 0);
        assert_int_equal(vcpus, (N_USER - 2) % 3 + 1);
        assert_string_equal(harness_get_string(root, path, DOMAIN_INTERFACE, "Name"), "queue-renamed");
        /* One check per call: polkitd's log is written as it answers, and every call was answered. */
        checks = polkit_checks(h, "queue-mine") + polkit_checks(h, "queue-renamed");
        assert_int_equal(checks, N_USER);

        harness_domain_call(root, path, "Undefine");
        harness_domain_call(root, busy, "Undefine");
}

static void set_immutable_at(const char *path, int oflags, bool on) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | oflags), flags = 0;

        assert_true(fd >= 0);
        assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
        flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        assert_int_equal(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
        close(fd);
}

static void set_immutable(const char *dir, bool on) {
        set_immutable_at(dir, O_DIRECTORY, on);
}

static void set_immutable_file(const char *file, bool on) {
        set_immutable_at(file, 0, on);
}

/* Definitions that cannot be saved (the config dir is immutable) show on the bus neither before nor
 * after the failure: no object, no InterfacesAdded, the old definition of a known domain kept; Rename
 * and Undefine that cannot be saved leave the name and the object as they were. */
static void test_define_save_errors(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define(bus, "saved-kept", NULL, NULL), *dir = NULL, *xml = NULL, *redef = NULL,
                            *file = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *added = NULL, *removed = NULL;
        size_t before = list_domains(bus, 0, NULL);
        sd_bus_message *signal;
        uint32_t vcpus = 0;

        assert_true(asprintf(&dir, "%s/domains", harness_config_dir(h)) > 0);
        xml = domain_xml("never-saved", NULL, NULL);
        assert_true(asprintf(&redef, "<domain type='test'><name>saved-kept</name><uuid>%s</uuid>"
                             "<memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
                             "</domain>", harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID")) > 0);
        added = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesAdded");
        removed = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesRemoved");

        set_immutable(dir, true);
        harness_call_fails(bus, ERR("OperationFailed"), "never-saved", M, "DefineDomain", "st", xml, UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), "saved-kept", M, "DefineDomain", "st", redef, UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), NULL, path, DOMAIN_INTERFACE, "Rename", "st", "saved-renamed",
                           UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), NULL, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0));
        set_immutable(dir, false);
        /* The file alone: the new one is written beside it, and putting it in place fails late. */
        assert_true(asprintf(&file, "%s/%s.xml", dir, harness_get_string(bus, path, DOMAIN_INTERFACE, "UUID")) > 0);
        set_immutable_file(file, true);
        harness_call_fails(bus, ERR("OperationFailed"), "saved-kept", M, "DefineDomain", "st", redef, UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), NULL, path, DOMAIN_INTERFACE, "Rename", "st", "saved-renamed",
                           UINT64_C(0));
        harness_call_fails(bus, ERR("OperationFailed"), "stays defined", path, DOMAIN_INTERFACE, "Undefine", "t",
                           UINT64_C(0));
        set_immutable_file(file, false);

        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "never-saved");
        assert_int_equal(list_domains(bus, 0, NULL), before);
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "Name"), "saved-kept");
        assert_int_equal(get_bool(bus, path, "Persistent"), 1);
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, DOMAIN_INTERFACE, "VCPUs", NULL, 'u',
                                                     &vcpus), 0);
        assert_int_equal(vcpus, 3);
        /* Signals sent before those answers are here already: none came. */
        signal = harness_watch_next(added, 0);
        assert_null(signal);
        signal = harness_watch_next(removed, 0);
        assert_null(signal);
        /* What is on disk agrees (after a restart), and saving works again. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "never-saved");
        assert_string_equal(harness_get_string(bus, path, DOMAIN_INTERFACE, "Name"), "saved-kept");
        harness_domain_call(bus, path, "Undefine");
}

/* Kill virtbusd with SIGKILL while definitions are being written: every file left must load. */
static void test_torn_writes(void **state) {
        Harness *h = *state;

        for (int round = 0; round < 3; round++) {
                /* close: the floating async calls keep the connection alive otherwise. */
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
                int sent = 0;

                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &bus), 0);
                for (int i = 0; i < 60; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
                        char name[64];
                        _cleanup_free_ char *x = NULL;

                        snprintf(name, sizeof name, "torn-%d-%d", round, i);
                        x = domain_xml(name, NULL, NULL);
                        assert_int_equal(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                                                        HARNESS_MANAGER_INTERFACE, "DefineDomain"), 0);
                        assert_int_equal(sd_bus_message_append(call, "st", x, UINT64_C(0)), 1);
                        assert_int_equal(sd_bus_call_async(bus, NULL, call, NULL, NULL, 0), 1);
                        sent++;
                }
                assert_true(sd_bus_flush(bus) >= 0);
                usleep(2000 + round * 3000);
                assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
                assert_int_equal(harness_daemon_start(h, NULL), 0);
                /* It came back, every domain it lists answers, and no file was lost as broken. */
                sd_bus *root = harness_bus_root(h);
                size_t n = list_domains(root, 0, NULL);
                assert_true(n >= 1);
                _cleanup_free_ char *log = harness_read_file(harness_daemon_log_path(h));
                if (log)
                        assert_null(strstr(log, "Failed to load"));
                (void) sent;
        }
}

/* The answer to one call of a pair sent back to back. */
typedef struct RaceReply {
        bool done, failed;
} RaceReply;

static int on_race_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        RaceReply *r = userdata;

        r->done = true;
        r->failed = sd_bus_message_is_method_error(m, NULL);
        if (r->failed)
                assert_string_equal(sd_bus_message_get_error(m)->name, ERR("AlreadyExists"));
        return 0;
}

/* A DefineDomain of the name a Rename is taking, sent right behind it, and a Rename to the name a
 * DefineDomain is giving (both pipelined, so the second arrives while the first is being saved): exactly
 * one of the two is refused (AlreadyExists), and after a restart every name is one domain's, the renamed
 * domain has the name its Rename was answered with, and the defined one is there if it was accepted. */
static void test_rename_define_race(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        enum { ROUNDS = 12 };
        char *paths[ROUNDS], uuids[ROUNDS][37];
        RaceReply renamed[ROUNDS] = {}, defined[ROUNDS] = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *list = NULL;
        const char *p;
        char **names = NULL;
        size_t n_names = 0;

        for (unsigned i = 0; i < ROUNDS; i++) {
                _cleanup_free_ char *from = NULL, *to = NULL, *xml = NULL;

                assert_true(asprintf(&from, "race-from-%u", i) > 0 && asprintf(&to, "race-to-%u", i) > 0);
                snprintf(uuids[i], sizeof uuids[i], "6e0a1c2d-0000-4000-8000-0000000000%02u", i);
                paths[i] = define(bus, from, NULL, NULL);
                xml = domain_xml(to, uuids[i], NULL);
                for (unsigned k = 0; k < 2; k++) {
                        if ((k == 0) == (i % 2 == 0))
                                assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, paths[i],
                                                                     DOMAIN_INTERFACE, "Rename", on_race_reply,
                                                                     &renamed[i], "st", to, UINT64_C(0)) >= 0);
                        else
                                assert_true(sd_bus_call_method_async(bus, NULL, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                                                     HARNESS_MANAGER_INTERFACE, "DefineDomain",
                                                                     on_race_reply, &defined[i], "st", xml,
                                                                     UINT64_C(0)) >= 0);
                }
                assert_true(sd_bus_flush(bus) >= 0);
                for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !renamed[i].done || !defined[i].done;) {
                        assert_true(harness_now_usec() < end);
                        if (sd_bus_process(bus, NULL) > 0)
                                continue;
                        assert_true(sd_bus_wait(bus, 10 * HARNESS_USEC_PER_MSEC) >= 0);
                }
                assert_true(renamed[i].failed != defined[i].failed);
        }

        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        list = harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_enter_container(list, 'a', "o"), 1);
        while (sd_bus_message_read(list, "o", &p) > 0) {
                const char *name = harness_get_string(bus, p, DOMAIN_INTERFACE, "Name");

                for (size_t k = 0; k < n_names; k++)
                        if (streq(names[k], name))
                                fail_msg("two domains are named '%s' after the restart", name);
                names = realloc(names, (n_names + 1) * sizeof *names);
                assert_non_null(names);
                names[n_names++] = strdup(name);
        }
        for (unsigned i = 0; i < ROUNDS; i++) {
                _cleanup_free_ char *to = NULL, *from = NULL;

                assert_true(asprintf(&from, "race-from-%u", i) > 0 && asprintf(&to, "race-to-%u", i) > 0);
                assert_string_equal(harness_get_string(bus, paths[i], DOMAIN_INTERFACE, "Name"),
                                    renamed[i].failed ? from : to);
                harness_domain_call(bus, paths[i], "Undefine");
                if (!defined[i].failed) {
                        _cleanup_free_ char *other = get_path(bus, "GetDomainByName", to);

                        assert_string_equal(harness_get_string(bus, other, DOMAIN_INTERFACE, "UUID"), uuids[i]);
                        harness_domain_call(bus, other, "Undefine");
                }
                free(paths[i]);
        }
        for (size_t k = 0; k < n_names; k++)
                free(names[k]);
        free(names);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_host),
                cmocka_unit_test(test_define_lookup_errors),
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_rename_undefine),
                cmocka_unit_test(test_transient),
                cmocka_unit_test(test_managed_objects),
                cmocka_unit_test(test_secrets),
                cmocka_unit_test(test_authorization),
                cmocka_unit_test(test_persistence_restart),
                cmocka_unit_test(test_autostart_async),
                cmocka_unit_test(test_change_after_define),
                cmocka_unit_test(test_queue_order),
                cmocka_unit_test(test_define_save_errors),
                cmocka_unit_test(test_torn_writes),
                cmocka_unit_test(test_rename_define_race),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
