/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pool and volume XML: data-driven xml2xml and invalid cases, sizes, volume names, tables. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/storage-conf.h"
#include "test-data.h"
#include "util/fileio.h"

static int format_doc(const char *kind, const char *xml, char **ret, VbError *e) {
        int r;

        if (streq(kind, "storagepool")) {
                _cleanup_(storage_pool_def_freep) StoragePoolDef *def = NULL;

                r = storage_pool_def_parse_string(xml, STORAGE_PARSE_STABLE_DEFAULTS, &def, e);
                return r < 0 ? r : storage_pool_def_format(def, ret);
        }
        _cleanup_(storage_vol_def_freep) StorageVolDef *def = NULL;

        r = storage_vol_def_parse_string(xml, &def, e);
        return r < 0 ? r : storage_vol_def_format(def, ret);
}

/* tests/data/<kind>/<case>.xml formats to <kind>-out/<case>.xml (or itself); the output is stable. */
static void check_case(const char *kind, const char *name) {
        _cleanup_free_ char *in = test_data_read(kind, name), *out = NULL, *again = NULL, *expected = NULL,
                            *outdir = NULL;
        VbError e = VB_ERROR_NULL;

        assert_non_null(in);
        if (format_doc(kind, in, &out, &e) < 0)
                fail_msg("%s/%s: %s", kind, name, strempty(e.message));
        assert_non_null(asprintf(&outdir, "%s-out", kind) > 0 ? outdir : NULL);
        expected = test_data_read(outdir, name);
        if (getenv("VIRTBUS_TEST_REGENERATE")) {
                _cleanup_free_ char *p = test_data_path(outdir, name);

                if (!streq(out, in))
                        assert_int_equal(write_file_atomic(p, out, strlen(out), 0644), 0);
                else
                        (void) unlink(p);
        } else if (!streq(out, expected ?: in))
                fail_msg("%s/%s: output differs from the expected file:\n%s", kind, name, out);
        assert_int_equal(format_doc(kind, out, &again, &e), 0);
        assert_string_equal(out, again);
}

static void run_dir(const char *kind) {
        _cleanup_free_ char *dir = test_data_path(kind, NULL);
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                if (strstr(list[i]->d_name, ".xml"))
                        check_case(kind, list[i]->d_name);
                free(list[i]);
        }
        free(list);
}

static void test_xml2xml(void **state) {
        run_dir("storagepool");
        run_dir("storagevol");
}

static const struct {
        const char *kind;
        const char *file;
        const char *fragment;
} invalid_cases[] = {
        { "storagepool", "dir-no-path.xml", "line 1: element 'pool': a 'dir' pool needs <target><path>" },
        { "storagepool", "dir-relative.xml", "'srv/images' is not an absolute path" },
        { "storagepool", "unknown-type.xml", "line 1: element 'pool'" },
        { "storagepool", "unknown-element.xml", "line 5: element 'colour' is not allowed in <target> (allowed there: path, permissions)" },
        { "storagepool", "unknown-in-target.xml", "line 5: element 'bogus' is not allowed in <target> (allowed there: path, permissions)" },
        { "storagepool", "name-slash.xml", "line 2: element 'name'" },
        { "storagepool", "size-overflow.xml", "line 3: element 'capacity': size '17 EiB' is too large" },
        { "storagevol", "unknown-format.xml", "line 4: element 'format': attribute 'type' has invalid value 'floppy' (expected one of raw, " },
        { "storagevol", "bad-unit.xml", "line 3: element 'capacity'" },
        { "storagevol", "unknown-element.xml", "line 5: element 'shape' is not allowed in <backingStore> (allowed there: format, path, permissions, timestamps)" },
        { "storagevol", "no-name.xml", "missing child element 'name'" },
        { "storagevol", "raw-overallocated.xml", "allocation 4096 is larger than the capacity 1024" },
};

static void test_invalid(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
                _cleanup_free_ char *dir = NULL, *in = NULL, *out = NULL;
                VbError e = VB_ERROR_NULL;

                assert_true(asprintf(&dir, "%s-invalid", invalid_cases[i].kind) > 0);
                in = test_data_read(dir, invalid_cases[i].file);
                assert_non_null(in);
                if (format_doc(invalid_cases[i].kind, in, &out, &e) >= 0)
                        fail_msg("%s/%s was accepted", dir, invalid_cases[i].file);
                assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                if (!strstr(strempty(e.message), invalid_cases[i].fragment))
                        fail_msg("%s/%s: message '%s' lacks '%s'", dir, invalid_cases[i].file, strempty(e.message),
                                 invalid_cases[i].fragment);
                vb_error_free(&e);
        }
}

static void test_typed(void **state) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *p = NULL;
        _cleanup_(storage_vol_def_freep) StorageVolDef *v = NULL;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(storage_pool_def_parse_string("<pool type='dir'><name>p</name><target><path>/srv/p</path>"
                                                       "</target></pool>", 0, &p, &e), 0);
        assert_int_equal(p->type, STORAGE_POOL_DIR);
        assert_string_equal(p->target_path, "/srv/p");
        assert_true(p->has_uuid); /* a random one */
        assert_int_equal(storage_vol_def_parse_string("<volume><name>v</name><capacity unit='MiB'>3</capacity>"
                                                      "<target><format type='qcow2'/></target>"
                                                      "<backingStore><path>/b</path></backingStore></volume>", &v, &e), 0);
        assert_int_equal(v->capacity.bytes, 3 * 1024 * 1024);
        assert_false(v->capacity.plain);
        assert_int_equal(v->format, STORAGE_VOL_FORMAT_QCOW2);
        assert_string_equal(v->backing_path, "/b");
        assert_false(v->backing_format_given);
}

static void test_vol_names(void **state) {
        static const char * const bad[] = { "", ".hidden", "..", "a/b", "/abs", "tab\there", "nl\n", "del\x7f" };
        char longname[300];
        VbError e = VB_ERROR_NULL;

        assert_int_equal(storage_vol_name_check("disk0.img", &e), 0);
        assert_int_equal(storage_vol_name_check("a.b-c_d <e>", &e), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_true(storage_vol_name_check(bad[i], &e) < 0);
                assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
                vb_error_free(&e);
        }
        memset(longname, 'x', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        assert_true(storage_vol_name_check(longname, &e) < 0);
        vb_error_free(&e);
}

static void test_string_tables(void **state) {
        for (int i = 0; i < (int) storage_pool_type_table_size(); i++)
                assert_int_equal(storage_pool_type_from_string(storage_pool_type_to_string(i)), i);
        for (int i = 0; i < (int) storage_vol_type_table_size(); i++)
                assert_int_equal(storage_vol_type_from_string(storage_vol_type_to_string(i)), i);
        for (int i = 0; i < (int) storage_vol_format_table_size(); i++)
                assert_int_equal(storage_vol_format_from_string(storage_vol_format_to_string(i)), i);
        assert_int_equal(storage_pool_type_from_string("floppy"), -EINVAL);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_xml2xml),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_typed),
                cmocka_unit_test(test_vol_names),
                cmocka_unit_test(test_string_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
