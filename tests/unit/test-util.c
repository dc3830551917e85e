/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/stats.h"
#include "util/string-table.h"

static void test_error_codes_table(void **state) {
        /* Every code has a name and an errno, and names map back to their code. */
        for (int i = 0; i < _VB_ERROR_MAX; i++) {
                const char *n = vb_error_code_to_string(i);
                assert_non_null(n);
                assert_int_equal(vb_error_code_from_string(n), i);
                if (i != VB_ERROR_NONE)
                        assert_true(vb_error_code_to_errno(i) > 0);
        }
        assert_int_equal(vb_error_code_from_string("no-such-thing"), -EINVAL);
        assert_null(vb_error_code_to_string(_VB_ERROR_MAX));
}

static void test_error_first_wins(void **state) {
        VbError e = VB_ERROR_NULL;
        int r;

        assert_false(vb_error_is_set(&e));
        r = vb_error_set(&e, VB_ERROR_NO_SUCH_DOMAIN, "domain '%s' not found", "web");
        assert_int_equal(r, -ENOENT);
        assert_true(vb_error_is_set(&e));
        assert_string_equal(e.message, "domain 'web' not found");
        vb_error_set(&e, VB_ERROR_TIMEOUT, "later");
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_DOMAIN);
        vb_error_free(&e);
        assert_false(vb_error_is_set(&e));
        /* A NULL error is allowed and still gives the errno. */
        assert_int_equal(vb_error_set(NULL, VB_ERROR_DEVICE_BUSY, "x"), -EBUSY);
}

static void test_log_levels(void **state) {
        for (int i = 0; i <= LOG_DEBUG; i++)
                assert_int_equal(log_level_from_string(log_level_to_string(i)), i);
        assert_int_equal(log_level_from_string("verbose"), -EINVAL);
}

static void test_log_capture(void **state) {
        char *buf = NULL;
        int saved = log_get_max_level(), r;

        log_set_capture(&buf);
        log_set_max_level(LOG_INFO);
        log_debug("hidden");
        r = log_warning_errno(EBUSY, "Failed to bind '%s': %m", "0000:03:00.1");
        log_set_capture(NULL);
        log_set_max_level(saved);
        assert_int_equal(r, -EBUSY);
        assert_non_null(buf);
        assert_string_equal(buf, "<4>Failed to bind '0000:03:00.1': Device or resource busy\n");
        free(buf);
}

static void test_atomic_write(void **state) {
        char dir[] = "/tmp/vb-test-XXXXXX", path[64];
        char *contents = NULL;
        size_t size;
        struct stat st;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/a/b/file.xml", dir);
        assert_int_equal(mkdir_p(path, 0755), 0);
        assert_int_equal(rmdir(path), 0);
        assert_int_equal(write_file_atomic(path, "old", 3, 0600), 0);
        assert_int_equal(write_file_atomic(path, "new contents", 12, 0644), 0);
        assert_int_equal(read_full_file(path, 0, &contents, &size), 0);
        assert_int_equal(size, 12);
        assert_string_equal(contents, "new contents");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        free(contents);
        /* Too large for the limit. */
        assert_int_equal(read_full_file(path, 4, &contents, &size), -EFBIG);
        assert_int_equal(read_full_file("/nonexistent/x", 0, &contents, &size), -ENOENT);
        /* A failed write leaves the old file and no temp file behind. */
        assert_true(write_file_atomic("/nonexistent/dir/x", "a", 1, 0644) < 0);
        unlink(path);
        snprintf(path, sizeof path, "%s/a/b", dir);
        rmdir(path);
        snprintf(path, sizeof path, "%s/a", dir);
        rmdir(path);
        rmdir(dir);
}

static void test_greedy_realloc(void **state) {
        int *a = NULL;
        size_t n = 0;

        for (size_t i = 0; i < 1000; i++) {
                assert_non_null(GREEDY_REALLOC(a, n, i + 1));
                a[i] = (int) i;
        }
        assert_true(n >= 1000);
        assert_int_equal(a[999], 999);
        free(a);
}

static void test_hashmap(void **state) {
        Hashmap *h = hashmap_new();
        char keys[2000][16];
        size_t n = 0;
        void *v;

        assert_non_null(h);
        for (int i = 0; i < 2000; i++) {
                snprintf(keys[i], sizeof keys[i], "key-%d", i);
                assert_int_equal(hashmap_put(h, keys[i], keys[i]), 0);
        }
        assert_int_equal(hashmap_put(h, "key-7", NULL), -EEXIST);
        assert_int_equal(hashmap_size(h), 2000);
        for (int i = 0; i < 2000; i += 2)
                assert_ptr_equal(hashmap_remove(h, keys[i]), keys[i]);
        assert_null(hashmap_remove(h, "key-0"));
        assert_int_equal(hashmap_size(h), 1000);
        for (int i = 0; i < 2000; i++)
                assert_ptr_equal(hashmap_get(h, keys[i]), i % 2 ? keys[i] : NULL);
        /* Re-adding after removal reuses tombstones; iteration sees each live entry once. */
        for (int i = 0; i < 2000; i += 2)
                assert_int_equal(hashmap_put(h, keys[i], keys[i]), 0);
        for (size_t i = 0; hashmap_iterate(h, &i, &v, NULL);)
                n++;
        assert_int_equal(n, 2000);
        assert_null(hashmap_get(h, "missing"));
        hashmap_free(h);
}

static void test_stats(void **state) {
        _cleanup_(vb_stats_freep) VbStats *a = vb_stats_new(), *b = vb_stats_new();
        const VbStatsField *f;

        vb_stats_add_int(a, -1, "state.state");
        vb_stats_add_uint(a, 2, "net.count");
        vb_stats_add_string(a, NULL, "net.%u.name", 0u); /* nothing */
        vb_stats_add_string(b, "vnet0", "net.%u.name", 0u);
        vb_stats_add_ullong(b, UINT64_MAX, "net.%u.rx.bytes", 0u);
        vb_stats_append(a, b);
        assert_false(vb_stats_failed(a));
        assert_int_equal(b->n, 0);
        assert_int_equal(a->n, 4);
        assert_string_equal(a->fields[2].key, "net.0.name");
        f = vb_stats_find(a, "net.0.rx.bytes");
        assert_non_null(f);
        assert_int_equal(f->type, VB_STATS_ULLONG);
        assert_true(f->t == UINT64_MAX);
        assert_int_equal(vb_stats_find(a, "state.state")->i, -1);
        assert_string_equal(vb_stats_find(a, "net.0.name")->s, "vnet0");
        assert_null(vb_stats_find(a, "net.1.name"));
        assert_true(vb_stats_failed(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_codes_table),
                cmocka_unit_test(test_error_first_wins),
                cmocka_unit_test(test_log_levels),
                cmocka_unit_test(test_log_capture),
                cmocka_unit_test(test_atomic_write),
                cmocka_unit_test(test_greedy_realloc),
                cmocka_unit_test(test_hashmap),
                cmocka_unit_test(test_stats),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
