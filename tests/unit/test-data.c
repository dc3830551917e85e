/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "test-data.h"
#include "util/fileio.h"
#include "util/macro.h"

char *test_data_path(const char *sub, const char *name) {
        const char *root = getenv("VIRTBUS_SOURCE_ROOT") ?: ".";
        char *p = NULL;

        assert_true(asprintf(&p, "%s/tests/data/%s%s%s", root, sub, name ? "/" : "", name ?: "") >= 0);
        return p;
}

char *test_data_read(const char *sub, const char *name) {
        _cleanup_free_ char *p = test_data_path(sub, name);
        char *s = NULL;

        if (read_full_file(p, 0, &s, NULL) < 0)
                return NULL;
        return s;
}
