/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "config.h"

/* Runs tests/fidelity-check.sh (the corpus scorer against virtbus-xml); exit 77 = skipped. The scorer
 * needs about a minute on two cores (its meson timeout is raised for it). scripts/test sets
 * VIRTBUS_TEST_NO_FIDELITY=1 for the sanitizer pass, where it would take several times as long and
 * check nothing the normal pass doesn't. */
int main(void) {
        char *cmd = NULL;
        int r;

        if (getenv("VIRTBUS_TEST_NO_FIDELITY")) {
                printf("VIRTBUS_TEST_NO_FIDELITY is set, skipping the corpus fidelity check\n");
                return 77;
        }
        if (asprintf(&cmd, "sh '%s/tests/fidelity-check.sh' '%s/src/tools/virtbus-xml'", VB_SOURCE_ROOT, VB_BUILD_ROOT) < 0)
                return 1;
        r = system(cmd);
        free(cmd);
        if (r < 0 || !WIFEXITED(r))
                return 1;
        return WEXITSTATUS(r);
}
