/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "conf/domain-access.h"
#include "conf/domain-paths.h"
#include "util/durable.h"
#include "util/error.h"

/* Saved definitions: <dir>/<uuid>.xml, written atomically (a crash leaves the old or the new file,
 * never a torn one); autostart markers in <dir>/autostart/<uuid>. Whose rights open the definition's
 * host paths (access; NULL: root's) is written in the same file, ahead of the XML. */

int domain_store_save(Durable *durable, const char *dir, const DomainDef *def, const DomainAccess *access, VbError *reterr);
int domain_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr);
int domain_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart, VbError *reterr);
bool domain_store_get_autostart(const char *dir, const char *uuid);

/* Group commit: prepare several definitions on the event loop (their files' text, nothing written yet),
 * then commit them together, typically in a worker thread: each written to a temporary file and synced
 * on its own, then all renamed into place and one directory sync. A crash before a rename leaves only a
 * temporary file, which loading removes. */
typedef struct DomainStoreStaged {
        int fd;
        char *tmp_path;
        char *path; /* NULL: nothing to commit (skipped by domain_store_commit) */
        char *text;
        int result; /* > 0 prepared; after domain_store_commit: 0 = durable and visible, < 0 = -errno, not saved */
} DomainStoreStaged;

int domain_store_prepare(const char *dir, const DomainDef *def, const DomainAccess *access, DomainStoreStaged *ret,
                         VbError *reterr);
/* Releases s (and removes its temporary file if it has one); keeps s->result. */
void domain_store_staged_done(DomainStoreStaged *s);
/* Commits those of staged[0..n) that are prepared, sets each one's result and releases it; returns the
 * first failure. Safe in any thread: it touches only staged[] and the file system. */
int domain_store_commit(const char *dir, DomainStoreStaged *staged, size_t n);

/* Calls cb for each definition that parses; broken files are logged and skipped, never removed. */
/* cb takes def and the contents of access. */
typedef int (*DomainStoreLoadFunc)(DomainDef *def, DomainAccess *access, void *userdata);
int domain_store_load_all(const char *dir, DomainStoreLoadFunc cb, void *userdata);
