/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain snapshots with the test driver: create (named and unnamed), list, the tree and the current
 * snapshot, revert to a running and to a shut-off snapshot (the definition comes back too), delete (alone,
 * with children, children only, metadata only), introspection, the errors, and everything found again
 * after a restart. Saved state with the test driver: Save and RestoreDomain through a pipe with Progress,
 * ManagedSave / HasManagedSave / Start / ManagedSaveRemove (also across a restart), and Undefine's flags. */
#include <fcntl.h>
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
        /* The test domain has no image disk. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "no writable image disk", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name></domainsnapshot>", UINT64_C(1));
        harness_call_fails(bus, ERR("NotSupported"), "external", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name><memory snapshot='external' file='/tmp/m'/></domainsnapshot>",
                           UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "(flag 1, no <memory>) or an internal one", dom, D,
                           "CreateSnapshot", "st", "<domainsnapshot><name>x</name><memory snapshot='internal'/><disks>"
                           "<disk name='vda' snapshot='external'/></disks></domainsnapshot>", UINT64_C(0));
        /* Asked for disk-only, a memory state is a mistake of the caller's. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "keeps no memory state", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name><memory snapshot='internal'/></domainsnapshot>", UINT64_C(1));
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

static uint64_t get_t(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 't', &v), 0);
        return v;
}

static int has_managed_save(sd_bus *bus, const char *dom) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, dom, D, "HasManagedSave", &e, 'b', &b), 0);
        return b;
}

/* Revert puts the definition recorded in the snapshot back. */
static void test_definition_reverted(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dom = harness_define_test_domain(bus, "snapdef", ""), *a = NULL;
        uint64_t before = get_t(bus, dom, "CurrentMemoryKiB");

        a = create(bus, dom, "def");
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "SetMemory", "tt", before / 2, UINT64_C(2)));
        assert_int_equal(get_t(bus, dom, "CurrentMemoryKiB"), before / 2);
        call(bus, a, "Revert", 0);
        assert_int_equal(get_t(bus, dom, "CurrentMemoryKiB"), before);
        /* Saved so: the same after a restart. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_int_equal(get_t(bus, dom, "CurrentMemoryKiB"), before);
        /* Undefine refuses, flag 2 removes the snapshots' metadata with the definition. */
        harness_call_fails(bus, ERR("InvalidState"), "flag 2", dom, D, "Undefine", "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "Undefine", "t", UINT64_C(2)));
}

static void test_saved_state(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dom = harness_define_test_domain(bus, "savedom", ""), *xml = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *progress = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL, *msg;
        uint64_t done, total;
        char buf[4096] = "";
        const char *o;
        int p[2], devnull;
        ssize_t n;

        progress = harness_watch_signal(bus, dom, D, "Progress");
        harness_domain_call(bus, dom, "Start");
        xml = harness_domain_xml(bus, dom, 0);

        /* Save through a pipe: the state comes out of it, the domain is shut off, Progress was said. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        harness_call_fails(bus, "org.freedesktop.DBus.Error.InvalidArgs", "writing", dom, D, "Save", "ht", p[0],
                           UINT64_C(0));
        harness_call_fd(bus, dom, D, "Save", p[1], NULL, &reply, NULL);
        sd_bus_message_unref(reply);
        close(p[1]);
        n = read(p[0], buf, sizeof buf - 1);
        assert_true(n > 0);
        assert_non_null(strstr(buf, "virtbus test driver saved state"));
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        msg = harness_watch_next(progress, HARNESS_TIMEOUT_USEC);
        assert_non_null(msg);
        assert_int_equal(sd_bus_message_read(msg, "tt", &done, &total), 1);
        assert_int_equal(done, (uint64_t) n);
        sd_bus_message_unref(msg);
        close(p[0]);

        /* RestoreDomain from the same bytes; a descriptor without them is refused and nothing runs. */
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(devnull >= 0);
        harness_call_fd(bus, HARNESS_MANAGER_PATH, "org.virtbus1.Manager", "RestoreDomain", devnull,
                        xml, &reply, &e);
        assert_true(sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.InvalidArgs"));
        sd_bus_error_free(&e);
        close(devnull);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(write(p[1], buf, (size_t) n) == n);
        close(p[1]);
        harness_call_fd(bus, HARNESS_MANAGER_PATH, "org.virtbus1.Manager", "RestoreDomain", p[0],
                        xml, &reply, NULL);
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        assert_string_equal(o, dom);
        sd_bus_message_unref(reply);
        close(p[0]);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");

        /* ManagedSave: kept by the service, found after a restart, Start resumes from it and it goes. */
        assert_int_equal(has_managed_save(bus, dom), 0);
        harness_domain_call(bus, dom, "ManagedSave");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        assert_int_equal(has_managed_save(bus, dom), 1);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_int_equal(has_managed_save(bus, dom), 1);
        harness_call_fails(bus, ERR("InvalidState"), "managed save", dom, D, "Undefine", "t", UINT64_C(0));
        harness_domain_call(bus, dom, "Start");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        assert_int_equal(has_managed_save(bus, dom), 0);

        /* ManagedSaveRemove: the next Start boots. */
        harness_domain_call(bus, dom, "ManagedSave");
        harness_domain_call(bus, dom, "ManagedSaveRemove");
        assert_int_equal(has_managed_save(bus, dom), 0);
        harness_call_fails(bus, ERR("InvalidState"), "no managed save", dom, D, "ManagedSaveRemove", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidState"), "not running", dom, D, "ManagedSave", "t", UINT64_C(0));

        /* Undefine with flag 1 takes the managed save along. */
        harness_domain_call(bus, dom, "Start");
        harness_domain_call(bus, dom, "ManagedSave");
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "Undefine", "t", UINT64_C(1)));
        harness_call_fails(bus, ERR("NoSuchDomain"), NULL, HARNESS_MANAGER_PATH, "org.virtbus1.Manager",
                           "GetDomainByName", "s", "savedom");
}

#define IMG "/var/lib/virtbus-test/web.qcow2"

static bool has(const char *hay, const char *needle) {
        if (!strstr(hay, needle))
                fail_msg("'%s' not in:\n%s", needle, hay);
        return true;
}

/* Disk-only snapshots, simulated: the snapshot lists the overlays, the definitions (saved, and live while
 * running) take them over their images as <backingStore> chains, which a Delete shortens again (the
 * latest first; one with a child that stays is refused); Revert answers NotSupported; everything is found
 * again after a restart. */
static void test_disk_only(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dom = harness_define_test_domain(bus, "diskonly",
                "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='" IMG "'/>"
                "<target dev='vda' bus='virtio'/></disk>"
                "<disk type='file' device='cdrom'><source file='/var/lib/virtbus-test/cd.iso'/>"
                "<target dev='hdc' bus='ide'/><readonly/></disk>");
        _cleanup_free_ char *a = NULL, *b = NULL, *xml = NULL, *live = NULL, *saved = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *progress = NULL;
        sd_bus_message *reply, *msg;
        uint64_t done = 0, total = 0;
        const char *o;

        /* Refused, each naming what is wrong. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "'vdz'", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><disks><disk name='vdz' snapshot='external'/></disks></domainsnapshot>",
                           UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "'hdc' cannot have an overlay", dom, D, "CreateSnapshot",
                           "st", "<domainsnapshot><disks><disk name='hdc' snapshot='external'/></disks></domainsnapshot>",
                           UINT64_C(1));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "not an absolute path", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><disks><disk name='vda' snapshot='external'><source file='rel.qcow2'/>"
                           "</disk></disks></domainsnapshot>", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "a file of the domain already", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><disks><disk name='vda' snapshot='external'><source file='" IMG "'/>"
                           "</disk></disks></domainsnapshot>", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "keeps no memory state", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><memory snapshot='internal'/></domainsnapshot>", UINT64_C(1));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "expected 'external' or 'no'", dom, D, "CreateSnapshot",
                           "st", "<domainsnapshot><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>",
                           UINT64_C(1));
        harness_call_fails(bus, ERR("NotSupported"), "'qcow2' images", dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><disks><disk name='vda' snapshot='external'><driver type='raw'/></disk>"
                           "</disks></domainsnapshot>", UINT64_C(1));

        /* Shut off, flag 1: the overlay next to the image, named after the snapshot; the cdrom is left. The
         * simulated job said its progress. */
        progress = harness_watch_signal(bus, dom, D, "Progress");
        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", "<domainsnapshot><name>one</name></domainsnapshot>",
                                UINT64_C(1 | 8));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        a = strdup(o);
        sd_bus_message_unref(reply);
        msg = harness_watch_next(progress, HARNESS_TIMEOUT_USEC);
        assert_non_null(msg);
        assert_int_equal(sd_bus_message_read(msg, "tt", &done, &total), 1);
        assert_true(done == 1 && total == 1);
        sd_bus_message_unref(msg);
        assert_string_equal(harness_get_string(bus, a, S, "Kind"), "disk-only");
        xml = snapshot_xml(bus, a);
        has(xml, "<state>disk-snapshot</state>");
        has(xml, "<memory snapshot='no'/>");
        has(xml, "<disk name='vda' snapshot='external'>");
        has(xml, "<source file='/var/lib/virtbus-test/web.one'/>");
        has(xml, "<disk name='hdc' snapshot='no'/>");
        saved = harness_domain_xml(bus, dom, 0);
        has(saved, "<source file='/var/lib/virtbus-test/web.one'/>");
        has(saved, "<backingStore type='file'>");
        has(saved, "<format type='qcow2'/>");
        has(saved, "<source file='" IMG "'/>");

        /* Running, from the XML alone: the live and the saved definition take the overlay, a chain of two. */
        harness_domain_call(bus, dom, "Start");
        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st",
                                "<domainsnapshot><name>two</name><disks><disk name='vda' snapshot='external'>"
                                "<source file='/var/lib/virtbus-test/top.qcow2'/></disk></disks></domainsnapshot>",
                                UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        b = strdup(o);
        sd_bus_message_unref(reply);
        assert_string_equal(harness_get_string(bus, b, S, "Kind"), "disk-only");
        free(saved);
        live = harness_domain_xml(bus, dom, 0);
        saved = harness_domain_xml(bus, dom, 1);
        for (size_t i = 0; i < 2; i++) {
                const char *x = i == 0 ? live : saved, *top = strstr(x, "top.qcow2"), *mid = strstr(x, "web.one"),
                           *base = strstr(x, "web.qcow2");

                if (!top || !mid || !base || !(top < mid && mid < base))
                        fail_msg("not the chain top.qcow2 > web.one > web.qcow2:\n%s", x);
        }

        /* Revert: not supported; Delete of a snapshot with a child that stays: refused. */
        harness_call_fails(bus, ERR("NotSupported"), "'disk-only'", b, S, "Revert", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "child snapshot 'two'", a, S, "Delete", "t", UINT64_C(0));

        /* After a restart: Delete of the running domain's latest merges its overlay (simulated): the chain
         * is one shorter in both definitions, the parent is current. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_string_equal(harness_get_string(bus, b, S, "Kind"), "disk-only");
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        has(live, "top.qcow2");
        call(bus, b, "Delete", 0);
        assert_int_equal(get_b(bus, a, "IsCurrent"), 1);
        free(live);
        free(saved);
        live = harness_domain_xml(bus, dom, 0);
        saved = harness_domain_xml(bus, dom, 1);
        for (size_t i = 0; i < 2; i++) {
                const char *x = i == 0 ? live : saved, *mid = strstr(x, "web.one"), *base = strstr(x, "web.qcow2");

                if (strstr(x, "top.qcow2") || !mid || !base || mid > base)
                        fail_msg("not the chain web.one > web.qcow2:\n%s", x);
        }

        /* Shut off, with its child (flag 1): both merged, the latest first; the disk is its image again. */
        harness_domain_call(bus, dom, "Destroy");
        free(b);
        b = NULL;
        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", "<domainsnapshot><name>three</name></domainsnapshot>",
                                UINT64_C(1));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        b = strdup(o);
        sd_bus_message_unref(reply);
        free(saved);
        saved = harness_domain_xml(bus, dom, 0);
        has(saved, "web.three");
        call(bus, a, "Delete", 1);
        free(saved);
        saved = harness_domain_xml(bus, dom, 0);
        has(saved, "<source file='" IMG "'/>");
        if (strstr(saved, "web.three") || strstr(saved, "web.one") || strstr(saved, "<backingStore"))
                fail_msg("overlays left in:\n%s", saved);
        {
                bool found;

                assert_int_equal(list(bus, dom, D, "ListSnapshots", NULL, &found), 0);
        }
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "Undefine", "t", UINT64_C(0)));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_snapshot_tree),
                cmocka_unit_test(test_delete_subtree),
                cmocka_unit_test(test_definition_reverted),
                cmocka_unit_test(test_saved_state),
                cmocka_unit_test(test_disk_only),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
