/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The corpus directory (../shared beside the repository, or $VIRTBUS_SHARED_DIR) for the C tests, as
 * tests/shared-dir.sh (the one place that decides it) prints it. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* VB_SOURCE_ROOT/tests/shared-dir.sh's answer followed by "/" rel (to free); NULL when it could not be run. */
static inline char *test_shared_path(const char *rel) {
        char dir[4096], *p = NULL;
        FILE *f;
        size_t n;
        int r;

        f = popen("sh '" VB_SOURCE_ROOT "/tests/shared-dir.sh'", "re");
        if (!f)
                return NULL;
        n = fread(dir, 1, sizeof dir - 1, f);
        r = pclose(f);
        if (r != 0 || n == 0)
                return NULL;
        dir[n] = 0;
        dir[strcspn(dir, "\n")] = 0;
        if (asprintf(&p, "%s/%s", dir, rel) < 0)
                return NULL;
        return p;
}
