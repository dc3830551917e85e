/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* Saved state: a running domain's whole state written to a descriptor (Save) or to the service's own file
 * <state>/<driver>/save/<uuid>.save (ManagedSave), the domain shut off afterwards; started again from it
 * (RestoreDomain; Start of a domain with a managed save, which then goes). The backend does the work off
 * the event loop (driver.h's domain_save_state / domain_load_state) with Progress meanwhile. A managed save
 * is written under a temporary name and renamed when complete: a crash leaves none or a whole one. */

typedef struct Manager Manager;
typedef struct Domain Domain;
typedef struct DomainDef DomainDef;
typedef struct DomainAccess DomainAccess;

/* The operation ended: r < 0 with e, or done (d: the domain, for RestoreDomain the one started). */
typedef void (*DomainJobDone)(int r, Domain *d, const VbError *e, void *userdata);

/* Each returns 0 when done follows (once, from the event loop), < 0 when it failed at once. One such
 * operation (or a snapshot's) per domain at a time: another one meanwhile is DeviceBusy. */
int manager_domain_save(Manager *m, Domain *d, int fd, DomainJobDone done, void *userdata, VbError *reterr);
int manager_domain_managed_save(Manager *m, Domain *d, DomainJobDone done, void *userdata, VbError *reterr);
/* Start of a domain that has a managed save: resumed from it (paused: left paused), which then goes. */
int manager_domain_start_saved(Manager *m, Domain *d, bool paused, DomainJobDone done, void *userdata,
                               VbError *reterr);
/* RestoreDomain: def (taken) started from the state fd gives, as CreateDomain would start it (a defined
 * domain with its UUID must be shut off). */
int manager_domain_restore(Manager *m, DomainDef *def, const DomainAccess *access, int fd, bool paused,
                           DomainJobDone done, void *userdata, VbError *reterr);

bool manager_domain_has_managed_save(Manager *m, const Domain *d);
int manager_domain_managed_save_remove(Manager *m, Domain *d, VbError *reterr);
/* The same from inside core, during another operation (a snapshot revert changed the disks under it). */
int manager_domain_managed_save_remove_stale(Manager *m, Domain *d);
/* Undefine: refused while the domain has a managed save or snapshots, unless managed_save / snapshots say
 * to remove them (snapshots: their metadata; what they keep in disk images stays there). The object goes
 * once the definition is gone from disk: 1 done now, 0 done(r, e, userdata) follows, < 0 failed now. */
int manager_domain_undefine_with(Manager *m, Domain *d, bool managed_save, bool snapshots, VbDriverDone done,
                                 void *userdata, VbError *reterr);
