/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the service (core, drivers) reads and changes in a DomainDef, besides parse and format. */
#include "conf/domain-conf.h"

typedef enum DomainLifecycleEvent {
        DOMAIN_LIFECYCLE_ON_POWEROFF,
        DOMAIN_LIFECYCLE_ON_REBOOT,
        DOMAIN_LIFECYCLE_ON_CRASH,
        _DOMAIN_LIFECYCLE_EVENT_MAX,
} DomainLifecycleEvent;

/* The action for a lifecycle event, with libvirt's defaults when the definition gives none
 * (destroy, restart, destroy). */
DomainLifecycleAction domain_def_get_lifecycle(const DomainDef *def, DomainLifecycleEvent event);

/* The UUID as 8-4-4-4-12 lowercase text, in a buffer of the definition's own. */
typedef struct DomainUUIDString {
        char s[37];
} DomainUUIDString;
DomainUUIDString domain_def_uuid(const DomainDef *def);

int domain_def_set_name(DomainDef *def, const char *name, VbError *reterr);
/* id < 0: none (an inactive definition). */
void domain_def_set_id(DomainDef *def, int64_t id);

/* Checks a name as the parser would: non-empty, no '/', no control characters. */
int domain_def_check_name(const char *name, VbError *reterr);

/* A number no other definition of this process has or will have: a published definition never
 * changes, so what is computed from it (its formatted XML) can be kept under this key. */
uint64_t domain_def_serial(const DomainDef *def);

/* Any accepted UUID spelling (dashes or not, any case) to 8-4-4-4-12 lowercase. */
int domain_def_normalize_uuid(const char *s, char ret[37]);
