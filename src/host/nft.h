/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* nftables through the nft program, run with an argv vector (no shell). Each virtual network gets a
 * table of its own; nothing else in the ruleset is touched. */

/* Loads the ruleset in path (`nft -f path`); the file must create only our own tables. */
int host_nft_load(const char *path);
/* `nft delete table FAMILY NAME`; -ENOENT if it did not exist. */
int host_nft_delete_table(const char *family, const char *name);
bool host_nft_table_exists(const char *family, const char *name);
