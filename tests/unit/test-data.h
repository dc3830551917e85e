/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Files under tests/data of the source tree ($VIRTBUS_SOURCE_ROOT, which meson sets; else "."), for the
 * unit tests. */

/* tests/data/sub[/name] (to free; name may be NULL). */
char *test_data_path(const char *sub, const char *name);
/* That file's contents (to free), or NULL if it cannot be read. */
char *test_data_read(const char *sub, const char *name);
