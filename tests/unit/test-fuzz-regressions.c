/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every input the fuzzers (tests/fuzz) found a crash, leak, hang or broken promise with, kept under
 * tests/data/fuzz-regressions/<target>/, and our own seeds under tests/data/fuzz-seeds/<target>/, go
 * through the same parse path as in the fuzzer (fuzz-targets.c): each must be accepted or refused, never
 * crash or abort. Run under ASan/UBSan by scripts/test, this keeps the fixes fixed. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/fuzz/fuzz-targets.h"
#include "util/fileio.h"
#include "util/macro.h"

typedef struct Target {
        const char *name;
        int (*run)(const uint8_t *data, size_t size);
        const char *seeds[3]; /* below tests/data, as README.md tells the fuzzer */
} Target;

static const Target targets[] = {
        { "domain", fuzz_domain, { "domain", "domain-invalid" } },
        { "device", fuzz_device, { "device", "device-invalid" } },
        { "network", fuzz_network, { "network", "network-invalid" } },
        { "nodedev", fuzz_nodedev, { "nodedev", "nodedev-invalid" } },
        { "qmp", fuzz_qmp, { "fuzz-seeds/qmp" } },
        { "uevent", fuzz_uevent, { "fuzz-seeds/uevent" } },
        { "dbus", fuzz_dbus, { "fuzz-seeds/dbus" } },
};

/* Runs every file of tests/data/<sub> through the target; returns how many there were. */
static unsigned replay_dir(const Target *t, const char *sub) {
        const char *root = getenv("VIRTBUS_SOURCE_ROOT") ?: ".";
        _cleanup_free_ char *dir = NULL;
        struct dirent **list = NULL;
        unsigned n_files = 0;
        int n;

        assert_true(asprintf(&dir, "%s/tests/data/%s", root, sub) > 0);
        n = scandir(dir, &list, NULL, alphasort);
        if (n < 0)
                return 0; /* no file for this target yet */
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *data = NULL;
                size_t size;
                int r;

                if (list[i]->d_name[0] != '.') {
                        assert_true(asprintf(&path, "%s/%s", dir, list[i]->d_name) > 0);
                        assert_int_equal(read_full_file(path, 0, &data, &size), 0);
                        r = t->run((const uint8_t *) data, size);
                        printf("# %s/%s: %s\n", sub, list[i]->d_name, r > 0 ? "accepted" : "refused");
                        assert_true(r == 0 || r == 1);
                        n_files++;
                }
                free(list[i]);
        }
        free(list);
        return n_files;
}

/* One test per target: its regressions, then its seeds (every target has seeds in the repository, so
 * finding none means the test looked in the wrong place). */
static void test_replay(void **state) {
        const Target *t = *state;
        _cleanup_free_ char *regressions = NULL;
        unsigned n_seeds = 0;

        fuzz_setup();
        assert_true(asprintf(&regressions, "fuzz-regressions/%s", t->name) > 0);
        (void) replay_dir(t, regressions);
        for (size_t i = 0; i < ELEMENTSOF(t->seeds) && t->seeds[i]; i++)
                n_seeds += replay_dir(t, t->seeds[i]);
        assert_true(n_seeds > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_prestate(test_replay, (void *) &targets[0]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[1]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[2]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[3]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[4]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[5]),
                cmocka_unit_test_prestate(test_replay, (void *) &targets[6]),
        };

        assert_true(ELEMENTSOF(tests) == ELEMENTSOF(targets));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
