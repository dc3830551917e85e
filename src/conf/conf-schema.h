/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "util/error.h"

/* Our RelaxNG schemas (the .rng files in data/schemas), embedded at build time by gen-schemas.py. */
typedef struct ConfSchemaFile {
        const char *name;
        const char *data;
        size_t size;
} ConfSchemaFile;

extern const ConfSchemaFile conf_schema_files[]; /* terminated by an entry with name NULL */

const ConfSchemaFile *conf_schema_file_find(const char *name);

/* Parses XML from a string safely (no network, no DTD, no external entities; keeps line numbers) and
 * validates it against the named schema ("domain.rng", "device.rng"). On success returns the
 * document (an xmlDoc *, to keep libxml2 out of this header). */
int conf_schema_parse_and_validate(const char *xml, const char *schema, void **ret_doc, VbError *reterr);

/* The compiled schemas take a few MB. A long-running user (the daemon) may drop them when it has not
 * needed them for a while; they are compiled again (a few ms) on next use. on_use is called whenever a
 * schema is used, so that the user can (re)arm its timer. */
void conf_schema_set_use_callback(void (*on_use)(void *userdata), void *userdata);
/* On on_use's thread, after work in other threads (which cannot call on_use) may have used a schema:
 * calls on_use if one did since the last conf_schema_detach(). Without it, schemas compiled by other
 * threads only were never dropped. */
void conf_schema_uses_seen(void);
/* Dropping the compiled schemas, in two steps so that the slow one (10-20 ms, more under load) can run in
 * another thread: conf_schema_detach() takes them out of the cache (the lock held only for that) and
 * returns how many it took, 0 (and *ret NULL) when none was loaded, or -EBUSY (nothing taken: try again
 * later) when one is in use or was used by another thread than on_use's since the last call. Safe while
 * other threads validate (they compile anew). conf_schema_detached_free() frees what was taken, in any
 * thread. */
typedef struct ConfSchemaDetached ConfSchemaDetached;
int conf_schema_detach(ConfSchemaDetached **ret);
ConfSchemaDetached *conf_schema_detached_free(ConfSchemaDetached *d);
/* Compiles every embedded schema now rather than at first use: for a process that forks a child per
 * document (virtbus-xml serve), so that each child starts with them compiled. */
int conf_schema_compile_all(void);

/* Validates an already parsed document. */
int conf_schema_validate(void *doc, const char *schema, VbError *reterr);
