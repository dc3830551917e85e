/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "util/durable.h"
#include "util/error.h"

/* Saved definitions of one kind (domains, networks): <dir>/<uuid>.xml, written atomically (a crash
 * leaves the old or the new file, never a torn one), and autostart links <dir>/autostart/<uuid> ->
 * ../<uuid>.xml. The kind-specific stores (domain-store.c, network-store.c) format and parse around
 * these. The changes go through durable (util/durable.h: synced off the event loop, in order; NULL:
 * synced here, for start-up); whoever answers a caller waits for them with durable_wait(). */

#define DEF_STORE_UUID_LEN 36

int def_store_path(const char *dir, const char *uuid, char **ret);
int def_store_save(Durable *durable, const char *dir, const char *uuid, const char *xml, VbError *reterr);
int def_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr);
int def_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart, VbError *reterr);
bool def_store_get_autostart(const char *dir, const char *uuid);
int def_store_sync_dir(const char *dir);

/* Calls cb for each <uuid>.xml in name order (start-up stays deterministic), with the UUID its name
 * gives and its contents; a file that can't be read is logged and skipped, never removed. Temporary
 * files of a write that never finished are removed: their caller never heard of them. */
typedef int (*DefStoreLoadFunc)(const char *path, const char *uuid, const char *xml, void *userdata);
int def_store_load_all(const char *dir, DefStoreLoadFunc cb, void *userdata);
