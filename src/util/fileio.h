/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* Reads a whole file (at most max bytes; 0 means 16 MiB) into a NUL-terminated buffer. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* The same from an open descriptor, from where it stands. */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);
/* Writes all of p, retrying short writes and EINTR. */
int write_all_fd(int fd, const char *p, size_t size);

/* Replaces path with the given contents so that a crash at any moment leaves either the old or the
 * new file: temp file in the same directory, fsync, rename, fsync of the directory. */
int write_file_atomic(const char *path, const char *contents, size_t size, mode_t mode);
/* The same without the syncs, for runtime state (a tmpfs in /run, normally, gone at reboot anyway): a
 * crash of the process leaves the old or the new file; only the kernel's crash could lose it. */
int write_file_replace(const char *path, const char *contents, size_t size, mode_t mode);

/* mkdir -p with the given mode for directories it creates. */
int mkdir_p(const char *path, mode_t mode);
