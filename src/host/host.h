/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The root under which sysfs is read (tests point it at a fake tree). */
int host_set_sysfs_root(const char *root);
const char *host_sysfs_root(void);
