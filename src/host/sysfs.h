/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Reading and writing sysfs below host_sysfs_root() (tests and the test driver point it at a fake
 * tree). Paths given here are relative to that root ("bus/pci/devices/0000:03:00.0/vendor"). */

/* root + "/" + rel, formatted; caller frees. */
char *host_sysfs_path(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Whether the root is the real /sys of this machine (netlink, uevents only make sense then). */
bool host_sysfs_is_real(void);

/* The file's contents without trailing whitespace; -ENOENT if absent. */
int host_sysfs_read(const char *path, char **ret);
/* Numbers: decimal, or hex with 0x. */
int host_sysfs_read_u64(const char *path, uint64_t *ret);
int host_sysfs_read_hex(const char *path, uint64_t *ret); /* hex with or without 0x */
/* Writes value (no newline added) with one write(), as sysfs wants; the kernel's answer is the
 * result (-errno). */
int host_sysfs_write(const char *path, const char *value);
/* The last component of a symlink's target ("igb" for .../driver); -ENOENT if no link. */
int host_sysfs_link_name(const char *path, char **ret);
