/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/durable.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/stats.h"
#include "util/string-table.h"
#include "util/worker.h"

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

typedef struct Answer {
        int calls, r;
        char path[256];
} Answer;

static void on_durable(int r, const char *path, void *userdata) {
        Answer *a = userdata;

        a->calls++;
        a->r = r;
        snprintf(a->path, sizeof a->path, "%s", path ?: "");
}

static void run_until_answered(sd_event *e, const Answer *a) {
        for (int i = 0; i < 1000 && a->calls == 0; i++)
                assert_true(sd_event_run(e, 100 * 1000) >= 0);
        assert_int_equal(a->calls, 1);
}

static size_t count_temporary(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                n += strlen(de->d_name) > 5 && strcmp(de->d_name + strlen(de->d_name) - 5, ".tmp~") == 0;
        closedir(d);
        return n;
}

static void assert_file(const char *path, const char *expected) {
        char *contents = NULL;

        assert_int_equal(read_full_file(path, 0, &contents, NULL), 0);
        assert_string_equal(contents, expected);
        free(contents);
}

/* Changes queued on the loop, committed in a thread in order; failures reach the waiter that made them,
 * and leave the old file whole. */
static void test_durable(void **state) {
        char dir[] = "/tmp/vb-test-XXXXXX", a[64], b[64], link[64], sub[64], inner[80], target[8];
        sd_event *e = NULL;
        Worker *w = NULL;
        Durable *d = NULL;
        Answer one = {}, two = {}, three = {}, late = {};
        uint64_t mark;
        ssize_t n;

        assert_non_null(mkdtemp(dir));
        snprintf(a, sizeof a, "%s/a.xml", dir);
        snprintf(b, sizeof b, "%s/b.xml", dir);
        snprintf(link, sizeof link, "%s/link", dir);
        snprintf(sub, sizeof sub, "%s/sub", dir);
        snprintf(inner, sizeof inner, "%s/sub/keep", dir);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_new(e, 1, 64, 0, &w), 0);
        assert_int_equal(durable_new(e, w, &d), 0);
        assert_int_equal(write_file_atomic(b, "b", 1, 0600), 0);

        /* Nothing queued: nothing to wait for. */
        mark = durable_seq(d);
        assert_int_equal(durable_wait(d, mark, on_durable, &one), 1);

        /* The last of two writes wins, the removal and the link follow; the reply comes once all are done. */
        assert_int_equal(durable_write(d, a, "first", 5, 0600), 0);
        assert_int_equal(durable_write(d, a, "second", 6, 0600), 0);
        assert_int_equal(durable_remove(d, b), 0);
        assert_int_equal(durable_symlink(d, "a.xml", link), 0);
        assert_int_equal(durable_seq(d), mark + 4);
        assert_int_equal(durable_wait(d, mark, on_durable, &one), 0);
        run_until_answered(e, &one);
        assert_int_equal(one.r, 0);
        assert_file(a, "second");
        assert_int_equal(access(b, F_OK), -1);
        n = readlink(link, target, sizeof target - 1);
        assert_int_equal(n, 5);
        target[n] = 0;
        assert_string_equal(target, "a.xml");
        assert_int_equal(count_temporary(dir), 0);

        /* A directory that does not exist: refused at once, nothing queued. */
        mark = durable_seq(d);
        assert_true(durable_write(d, "/nonexistent-vb/x.xml", "x", 1, 0600) < 0);
        assert_int_equal(durable_seq(d), mark);

        /* A rename that fails in the thread (a directory is in the way): that caller hears it with the
         * path, the file stays as it was, no temporary file is left; a later caller is not blamed. */
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(write_file_atomic(inner, "k", 1, 0600), 0);
        mark = durable_seq(d);
        assert_int_equal(durable_write(d, sub, "over a directory", 16, 0600), 0);
        assert_int_equal(durable_wait(d, mark, on_durable, &two), 0);
        mark = durable_seq(d);
        assert_int_equal(durable_write(d, a, "third", 5, 0600), 0);
        assert_int_equal(durable_wait(d, mark, on_durable, &three), 0);
        run_until_answered(e, &two);
        run_until_answered(e, &three);
        assert_int_equal(two.r, -EISDIR);
        assert_string_equal(two.path, sub);
        assert_int_equal(three.r, 0);
        assert_file(inner, "k");
        assert_file(a, "third");
        assert_int_equal(count_temporary(dir), 0);
        /* Asked after the commit ended (a reply that waited for something else first): still told. */
        assert_int_equal(durable_wait(d, mark - 1, on_durable, &late), 0);
        run_until_answered(e, &late);
        assert_int_equal(late.r, -EISDIR);

        /* The directory removal comes after the removal of its file. */
        assert_int_equal(durable_remove(d, inner), 0);
        assert_int_equal(durable_remove_dir(d, sub), 0);
        durable_flush(d);
        assert_int_equal(access(sub, F_OK), -1);

        d = durable_free(d);
        w = worker_free(w);
        sd_event_unref(e);
        unlink(a);
        unlink(link);
        rmdir(dir);
}

typedef struct Held {
        int gate[2];     /* the job blocks reading gate[0] until the test writes */
        int ran, done, cancelled;
} Held;

static void held_work(void *userdata) {
        Held *h = userdata;
        char c;

        __atomic_add_fetch(&h->ran, 1, __ATOMIC_SEQ_CST);
        (void) read(h->gate[0], &c, 1);
}

static void quick_work(void *userdata) {
        Held *h = userdata;

        __atomic_add_fetch(&h->ran, 1, __ATOMIC_SEQ_CST);
}

static void held_done(void *userdata, bool cancelled) {
        Held *h = userdata;

        h->done++;
        h->cancelled += cancelled;
}

/* What waits behind a job that hangs is answered at once (cancelled, never run); the running job goes
 * on and is delivered as usual; later jobs run. */
static void test_worker_cancel_queued(void **state) {
        sd_event *e = NULL;
        Worker *w = NULL;
        Held first = {}, behind = {};

        assert_int_equal(pipe2(first.gate, O_CLOEXEC), 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_new(e, 1, 8, 0, &w), 0);
        assert_int_equal(worker_submit(w, held_work, held_done, &first), 0);
        while (__atomic_load_n(&first.ran, __ATOMIC_SEQ_CST) == 0)
                usleep(1000);
        assert_int_equal(worker_submit(w, quick_work, held_done, &behind), 0);
        assert_int_equal(worker_submit(w, quick_work, held_done, &behind), 0);
        worker_cancel_queued(w);
        assert_int_equal(behind.done, 2);
        assert_int_equal(behind.cancelled, 2);
        assert_int_equal(behind.ran, 0);
        assert_true(worker_running(w));
        worker_cancel_queued(w); /* nothing queued: nothing happens */
        assert_int_equal(behind.done, 2);

        assert_int_equal(write(first.gate[1], "x", 1), 1);
        worker_wait(w);
        assert_int_equal(first.done, 1);
        assert_int_equal(first.cancelled, 0);
        assert_int_equal(worker_submit(w, quick_work, held_done, &behind), 0);
        worker_wait(w);
        assert_int_equal(behind.ran, 1);
        assert_int_equal(behind.done, 3);
        w = worker_free(w);
        sd_event_unref(e);
        close(first.gate[0]);
        close(first.gate[1]);
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
                cmocka_unit_test(test_durable),
                cmocka_unit_test(test_worker_cancel_queued),
                cmocka_unit_test(test_greedy_realloc),
                cmocka_unit_test(test_hashmap),
                cmocka_unit_test(test_stats),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
