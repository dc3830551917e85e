/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "conf/domain-access.h"
#include "util/error.h"

/* Saved definitions: <dir>/<uuid>.xml, written atomically (a crash leaves the old or the new file,
 * never a torn one); autostart markers in <dir>/autostart/<uuid>. */

int domain_store_save(const char *dir, const DomainDef *def, VbError *reterr);
int domain_store_remove(const char *dir, const char *uuid, VbError *reterr);
int domain_store_set_autostart(const char *dir, const char *uuid, bool autostart, VbError *reterr);
bool domain_store_get_autostart(const char *dir, const char *uuid);

/* Calls cb for each definition that parses; broken files are logged and skipped, never removed. */
typedef int (*DomainStoreLoadFunc)(DomainDef *def, void *userdata);
int domain_store_load_all(const char *dir, DomainStoreLoadFunc cb, void *userdata);
