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
/* Frees the compiled schemas; returns how many were loaded, or -EBUSY (nothing freed: try again later)
 * when one is in use or was used by another thread than on_use's since the last call. Safe to call
 * while other threads validate. */
int conf_schema_release(void);
/* Compiles every embedded schema now rather than at first use: for a process that forks a child per
 * document (virtbus-xml serve), so that each child starts with them compiled. */
int conf_schema_compile_all(void);

/* Validates an already parsed document. */
int conf_schema_validate(void *doc, const char *schema, VbError *reterr);
