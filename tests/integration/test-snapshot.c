/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain snapshots with the test driver: create (named and unnamed), list, the tree and the current
 * snapshot, revert to a running and to a shut-off snapshot, delete (alone, with children, children
 * only, metadata only), introspection, the errors, and everything found again after a restart. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

#define D HARNESS_DOMAIN_INTERFACE
#define S "org.virtbus1.DomainSnapshot"
#define ERR(name) "org.virtbus1.Error." name

static char *create(sd_bus *bus, const char *dom, const char *name) {
        _cleanup_free_ char *xml = NULL;
        const char *o;
        sd_bus_message *reply;
        char *ret;

        if (name)
                assert_true(asprintf(&xml, "<domainsnapshot><name>%s</name><description>d</description>"
                                           "</domainsnapshot>", name) > 0);
        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", xml ?: "<domainsnapshot/>", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        ret = strdup(o);
        sd_bus_message_unref(reply);
        return ret;
}

static char *get_o(sd_bus *bus, const char *path, const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *o;

        if (sd_bus_get_property(bus, HARNESS_SERVICE, path, interface, property, &e, &reply, "o") < 0)
                fail_msg("reading %s on %s: %s", property, path, e.message);
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        return strdup(o);
}

static int get_b(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, S, property, &e, 'b', &b), 0);
        return b;
}

/* The number of paths a list method answers, and whether want is among them. */
static size_t list(sd_bus *bus, const char *path, const char *interface, const char *method, const char *want,
                   bool *ret_found) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, interface, method, "t", UINT64_C(0));
        const char *o;
        size_t n = 0;

        *ret_found = false;
        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        while (sd_bus_message_read(reply, "o", &o) > 0) {
                n++;
                if (want && streq(o, want))
                        *ret_found = true;
        }
        return n;
}

static char *snapshot_xml(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, S, "GetXMLDesc", "t", UINT64_C(0));
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static void call(sd_bus *bus, const char *path, const char *method, uint64_t flags) {
        sd_bus_message_unref(harness_call_ok(bus, path, S, method, "t", flags));
}

static void test_snapshot_tree(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dom = harness_define_test_domain(bus, "snapdom", ""), *a = NULL, *b = NULL, *c = NULL,
                            *unnamed = NULL, *xml = NULL;
        char *o;
        bool found;

        /* a (shut off) <- b (running) <- c (running); a <- unnamed (after reverting to a). */
        a = create(bus, dom, "a");
        assert_non_null(strstr(a, "/snapshot/"));
        harness_assert_introspection(bus, a, "interfaces/org.virtbus1.DomainSnapshot.xml");
        assert_string_equal(harness_get_string(bus, a, S, "State"), "shutoff");
        assert_string_equal(harness_get_string(bus, a, S, "Kind"), "internal");
        o = get_o(bus, a, S, "Parent");
        assert_string_equal(o, "/");
        free(o);
        assert_int_equal(get_b(bus, a, "IsCurrent"), 1);
        harness_domain_call(bus, dom, "Start");
        b = create(bus, dom, "b");
        assert_string_equal(harness_get_string(bus, b, S, "State"), "running");
        o = get_o(bus, b, S, "Parent");
        assert_string_equal(o, a);
        free(o);
        assert_int_equal(get_b(bus, a, "IsCurrent"), 0);
        c = create(bus, dom, "c with space");
        o = get_o(bus, dom, D, "CurrentSnapshot");
        assert_string_equal(o, c);
        free(o);
        assert_int_equal(list(bus, dom, D, "ListSnapshots", c, &found), 3);
        assert_true(found);
        assert_int_equal(list(bus, a, S, "ListChildren", b, &found), 1);
        assert_true(found);
        xml = snapshot_xml(bus, c);
        assert_non_null(strstr(xml, "<name>c with space</name>"));
        assert_non_null(strstr(xml, "<parent>\n    <name>b</name>"));
        assert_non_null(strstr(xml, "<state>running</state>"));
        assert_non_null(strstr(xml, "<domain type="));
        assert_null(strstr(xml, "<active>"));

        /* Errors. */
        harness_call_fails(bus, ERR("AlreadyExists"), "'b'", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>b</name></domainsnapshot>", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidXML"), "state", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><state>bogus</state></domainsnapshot>", UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "isk-only", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name></domainsnapshot>", UINT64_C(1));
        harness_call_fails(bus, ERR("NotSupported"), "external", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name><memory snapshot='external' file='/tmp/m'/></domainsnapshot>",
                           UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, NULL, a, S, "Delete", "t", UINT64_C(16));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "'..'", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>..</name></domainsnapshot>", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidState"), "snapshot", dom, D, "Undefine", "t", UINT64_C(0));

        /* Revert to a (shut off): the domain stops; to b (running): it runs again. */
        call(bus, a, "Revert", 0);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        assert_int_equal(get_b(bus, a, "IsCurrent"), 1);
        unnamed = create(bus, dom, NULL);
        o = get_o(bus, unnamed, S, "Parent");
        assert_string_equal(o, a);
        free(o);
        call(bus, b, "Revert", 0);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");

        /* Everything comes back after a restart (the domain too: it was running). */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_int_equal(list(bus, dom, D, "ListSnapshots", unnamed, &found), 4);
        assert_true(found);
        o = get_o(bus, dom, D, "CurrentSnapshot");
        assert_string_equal(o, b);
        free(o);
        o = get_o(bus, c, S, "Parent");
        assert_string_equal(o, b);
        free(o);

        /* Delete b alone: c takes a as parent; then a's children only: c and unnamed go. */
        call(bus, b, "Delete", 0);
        o = get_o(bus, c, S, "Parent");
        assert_string_equal(o, a);
        free(o);
        o = get_o(bus, dom, D, "CurrentSnapshot");
        assert_string_equal(o, a);
        free(o);
        call(bus, a, "Delete", 2);
        assert_int_equal(list(bus, dom, D, "ListSnapshots", a, &found), 1);
        assert_true(found);
        harness_call_fails(bus, SD_BUS_ERROR_UNKNOWN_OBJECT, NULL, c, S, "GetXMLDesc", "t", UINT64_C(0));
        /* Metadata only, then the domain can go. */
        call(bus, a, "Delete", 4);
        assert_int_equal(list(bus, dom, D, "ListSnapshots", NULL, &found), 0);
        o = get_o(bus, dom, D, "CurrentSnapshot");
        assert_string_equal(o, "/");
        free(o);
        harness_domain_call(bus, dom, "Destroy");
        harness_domain_call(bus, dom, "Undefine");
}

/* Delete with children (1) removes the whole subtree; the others stay. */
static void test_delete_subtree(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dom = harness_define_test_domain(bus, "snaptree", ""), *a = NULL, *b = NULL, *c = NULL;
        bool found;

        _cleanup_(harness_watch_freep) HarnessWatch *added =
                harness_watch_signal(bus, HARNESS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded");
        _cleanup_(harness_watch_freep) HarnessWatch *removed =
                harness_watch_signal(bus, HARNESS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved");
        sd_bus_message *msg;
        const char *o;

        a = create(bus, dom, "a");
        msg = harness_watch_next(added, HARNESS_TIMEOUT_USEC);
        assert_non_null(msg);
        assert_int_equal(sd_bus_message_read(msg, "o", &o), 1);
        assert_string_equal(o, a);
        sd_bus_message_unref(msg);
        b = create(bus, dom, "b");
        c = create(bus, dom, "c");
        call(bus, b, "Delete", 1);
        msg = harness_watch_next(removed, HARNESS_TIMEOUT_USEC);
        assert_non_null(msg);
        assert_int_equal(sd_bus_message_read(msg, "o", &o), 1);
        assert_string_equal(o, c); /* the latest first */
        sd_bus_message_unref(msg);
        assert_int_equal(list(bus, dom, D, "ListSnapshots", a, &found), 1);
        assert_true(found);
        call(bus, a, "Delete", 0);
        harness_domain_call(bus, dom, "Undefine");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snapshot_tree),
                cmocka_unit_test(test_delete_subtree),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
