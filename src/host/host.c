/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "host/host.h"
#include "util/macro.h"

static char *sysfs_root;

int host_set_sysfs_root(const char *root) {
        return free_and_strdup(&sysfs_root, root);
}

const char *host_sysfs_root(void) {
        return sysfs_root ?: "/sys";
}
