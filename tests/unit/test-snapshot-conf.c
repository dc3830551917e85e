/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain snapshot XML: data-driven xml2xml and invalid cases, the typed part, kinds, tables. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/snapshot-conf.h"
#include "test-data.h"
#include "util/fileio.h"

static int format_doc(const char *xml, char **ret, VbError *e) {
        _cleanup_(snapshot_def_freep) SnapshotDef *def = NULL;
        int r;

        r = snapshot_def_parse_string(xml, &def, e);
        return r < 0 ? r : snapshot_def_format(def, DOMAIN_FORMAT_SECURE, ret);
}

/* tests/data/snapshot/<case>.xml formats to snapshot-out/<case>.xml (or itself); the output is stable. */
static void check_case(const char *name) {
        _cleanup_free_ char *in = test_data_read("snapshot", name), *out = NULL, *again = NULL,
                            *expected = NULL;
        VbError e = VB_ERROR_NULL;

        assert_non_null(in);
        if (format_doc(in, &out, &e) < 0)
                fail_msg("snapshot/%s: %s", name, strempty(e.message));
        expected = test_data_read("snapshot-out", name);
        if (getenv("VIRTBUS_TEST_REGENERATE")) {
                _cleanup_free_ char *p = test_data_path("snapshot-out", name);

                if (!streq(out, in))
                        assert_int_equal(write_file_atomic(p, out, strlen(out), 0644), 0);
                else
                        (void) unlink(p);
        } else if (!streq(out, expected ?: in))
                fail_msg("snapshot/%s: output differs from the expected file:\n%s", name, out);
        assert_int_equal(format_doc(out, &again, &e), 0);
        assert_string_equal(out, again);
}

static void test_xml2xml(void **state) {
        _cleanup_free_ char *dir = test_data_path("snapshot", NULL);
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                if (strstr(list[i]->d_name, ".xml"))
                        check_case(list[i]->d_name);
                free(list[i]);
        }
        free(list);
}

static const struct {
        const char *file;
        const char *fragment;
} invalid_cases[] = {
        { "bad-state.xml", "line 3: element 'state'" },
        { "name-slash.xml", "line 2: element 'name'" },
        { "unknown-element.xml", "unexpected child element 'colour'" },
        { "memory-file-internal.xml", "a memory file= needs snapshot='external'" },
        { "disk-twice.xml", "disk 'vda' is named twice" },
        { "source-internal.xml", "has a <source> but snapshot='internal'" },
        { "bad-domain.xml", "line 4: element 'memory': invalid value 'bogus' (expected a whole number" },
};

static void test_invalid(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
                _cleanup_free_ char *in = NULL, *out = NULL;
                VbError e = VB_ERROR_NULL;

                in = test_data_read("snapshot-invalid", invalid_cases[i].file);
                assert_non_null(in);
                if (format_doc(in, &out, &e) >= 0)
                        fail_msg("snapshot-invalid/%s was accepted", invalid_cases[i].file);
                assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                if (!strstr(strempty(e.message), invalid_cases[i].fragment))
                        fail_msg("snapshot-invalid/%s: message '%s' lacks '%s'", invalid_cases[i].file,
                                 strempty(e.message), invalid_cases[i].fragment);
                vb_error_free(&e);
        }
}

static void test_typed(void **state) {
        _cleanup_free_ char *xml = test_data_read("snapshot", "tree-member.xml");
        _cleanup_(snapshot_def_freep) SnapshotDef *s = NULL, *c = NULL, *m = NULL;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(snapshot_def_parse_string(xml, &s, &e), 0);
        assert_string_equal(s->name, "second");
        assert_string_equal(s->parent_name, "first");
        assert_int_equal(s->creation_time, 1767225600);
        assert_int_equal(s->state, SNAPSHOT_STATE_SHUTOFF);
        assert_int_equal(s->active, 0);
        assert_non_null(s->domain);
        assert_string_equal(domain_def_get_name(s->domain), "desk");
        assert_int_equal(snapshot_def_kind(s), SNAPSHOT_KIND_INTERNAL);
        assert_int_equal(snapshot_def_disk_mode(s, "vdb", SNAPSHOT_MODE_INTERNAL), SNAPSHOT_MODE_NO);
        assert_int_equal(snapshot_def_disk_mode(s, "vdz", SNAPSHOT_MODE_INTERNAL), SNAPSHOT_MODE_INTERNAL);
        assert_int_equal(snapshot_def_copy(s, &c), 0);
        assert_string_equal(c->name, "second");
        assert_non_null(c->domain);

        assert_int_equal(snapshot_def_parse_string("<domainsnapshot/>", &m, &e), 0);
        assert_null(m->name);
        assert_int_equal(m->active, -1);
        assert_null(m->domain);
        m = snapshot_def_free(m);
        assert_int_equal(snapshot_def_parse_string("<domainsnapshot><state>disk-snapshot</state></domainsnapshot>",
                                                   &m, &e), 0);
        assert_int_equal(snapshot_def_kind(m), SNAPSHOT_KIND_DISK_ONLY);
        m = snapshot_def_free(m);
        assert_int_equal(snapshot_def_parse_string("<domainsnapshot><memory file='/m'/></domainsnapshot>", &m, &e), 0);
        assert_int_equal(snapshot_def_kind(m), SNAPSHOT_KIND_EXTERNAL);
}

/* A disk-only snapshot's overlays: typed, and applied to a definition as <backingStore> chains (only where
 * the disk still has the image it had when the snapshot was taken), and merged away again. */
static void test_overlays(void **state) {
        _cleanup_(snapshot_def_freep) SnapshotDef *s = NULL;
        _cleanup_(domain_def_freep) DomainDef *d = NULL, *once = NULL, *twice = NULL, *other = NULL, *dropped = NULL,
                                    *none = NULL;
        _cleanup_free_ char *xml = NULL, *dom = NULL, *before = NULL;
        VbError e = VB_ERROR_NULL;
        const char *a, *b, *c, *blocking = NULL;

        assert_int_equal(snapshot_def_parse_string(
                                 "<domainsnapshot><name>o</name><state>disk-snapshot</state><disks>"
                                 "<disk name='vda' snapshot='external'><driver type='qcow2'/><source file='/i/top.qcow2'/></disk>"
                                 "<disk name='hdc' snapshot='no'/></disks>"
                                 "<domain type='kvm'><name>x</name><memory>65536</memory><os><type>hvm</type></os><devices>"
                                 "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sdz'/>"
                                 "<target dev='vda' bus='virtio'/></disk></devices></domain></domainsnapshot>",
                                 &s, &e), 0);
        assert_string_equal(s->disks[0].source_file, "/i/top.qcow2");
        assert_string_equal(s->disks[0].driver_type, "qcow2");
        assert_null(s->disks[1].source_file);
        assert_int_equal(snapshot_def_kind(s), SNAPSHOT_KIND_DISK_ONLY);

        assert_int_equal(domain_def_parse_string("<domain type='kvm'><name>x</name><memory>65536</memory><os><type>hvm"
                                                 "</type></os><devices><disk type='block' device='disk'><driver name='qemu' "
                                                 "type='raw'/><source dev='/dev/sdz'/><target dev='vda' bus='virtio'/>"
                                                 "</disk><disk type='file' device='cdrom'><source file='/i/cd.iso'/>"
                                                 "<target dev='hdc'/><readonly/></disk></devices></domain>", 0, &d, &e), 0);
        assert_true(device_disk_is_writable_image(d->devices[0]));
        assert_false(device_disk_is_writable_image(d->devices[1]));
        assert_int_equal(snapshot_def_apply_overlays(s, d, &once), 0);
        assert_string_equal(device_disk_get_source(once->devices[0]), "/i/top.qcow2");
        assert_string_equal(device_disk_get_format(once->devices[0]), "qcow2");
        assert_string_equal(device_disk_get_source(once->devices[1]), "/i/cd.iso");
        assert_int_equal(domain_def_format(once, 0, &dom), 0);
        a = strstr(dom, "<source file='/i/top.qcow2'/>");
        b = strstr(dom, "<backingStore type='block'>");
        c = strstr(dom, "<source dev='/dev/sdz'/>");
        assert_true(a && b && c && a < b && b < c && strstr(dom, "<format type='raw'/>"));
        /* It reads back the same. */
        free(xml);
        xml = NULL;
        assert_int_equal(domain_def_parse_string(dom, 0, &other, &e), 0);
        assert_int_equal(domain_def_format(other, 0, &xml), 0);
        assert_string_equal(xml, dom);
        /* Once more over it: the disk has another image than the snapshot's now, so it stays. */
        assert_int_equal(snapshot_def_apply_overlays(s, once, &twice), 0);
        assert_string_equal(device_disk_get_source(twice->devices[0]), "/i/top.qcow2");
        free(xml);
        xml = NULL;
        assert_int_equal(domain_def_format(twice, 0, &xml), 0);
        assert_string_equal(xml, dom);

        /* Merged away again: the block device is the disk's image, its type and format back, no chain; the
         * definition reads as the one before the overlay. */
        assert_int_equal(snapshot_def_drop_overlays(s, once, &dropped, &blocking), 0);
        assert_string_equal(device_disk_get_source(dropped->devices[0]), "/dev/sdz");
        assert_string_equal(device_disk_get_format(dropped->devices[0]), "raw");
        free(xml);
        xml = NULL;
        assert_int_equal(domain_def_format(dropped, 0, &xml), 0);
        assert_null(strstr(xml, "backingStore"));
        assert_non_null(strstr(xml, "<disk type='block' device='disk'>"));
        free(before);
        assert_int_equal(domain_def_format(d, 0, &before), 0);
        assert_string_equal(xml, before);
        /* Not on its overlay: refused, naming the disk; without ret_blocking, left as it is. */
        assert_int_equal(snapshot_def_drop_overlays(s, d, &none, &blocking), -EBUSY);
        assert_null(none);
        assert_string_equal(blocking, "vda");
        assert_int_equal(snapshot_def_drop_overlays(s, d, &none, NULL), 0);
        assert_string_equal(device_disk_get_source(none->devices[0]), "/dev/sdz");
        vb_error_free(&e);
}

static void test_string_tables(void **state) {
        for (int i = 0; i < (int) snapshot_state_table_size(); i++)
                assert_int_equal(snapshot_state_from_string(snapshot_state_to_string(i)), i);
        for (int i = 0; i < (int) snapshot_mode_table_size(); i++)
                assert_int_equal(snapshot_mode_from_string(snapshot_mode_to_string(i)), i);
        for (int i = 0; i < (int) snapshot_kind_table_size(); i++)
                assert_int_equal(snapshot_kind_from_string(snapshot_kind_to_string(i)), i);
        assert_int_equal(snapshot_state_from_string("sleeping"), -EINVAL);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_xml2xml),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_typed),
                cmocka_unit_test(test_overlays),
                cmocka_unit_test(test_string_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
