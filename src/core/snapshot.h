/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/snapshot-conf.h"
#include "util/error.h"

/* The snapshots of a domain: a tree by parent name, one of them current (the one the domain was last
 * taken or reverted to). Each is saved as <config>/snapshots/<domain uuid>/s-<name>.xml (atomically:
 * a crash leaves no snapshot or a whole one; the current one carries <active>1</active>), and found
 * again at start-up. What a snapshot holds on the host is the backend's (driver.h's domain_snapshot_*
 * ops); a backend without them answers NotSupported. */

typedef struct Manager Manager;
typedef struct Domain Domain;

typedef struct DomainSnapshot {
        Domain *domain;
        char *name;
        SnapshotDef *def; /* as saved; def->parent_name names the parent */
} DomainSnapshot;

/* Snapshot names: the file name (s-<name>.xml) must fit. */
#define SNAPSHOT_NAME_MAX 200

/* Domain.CreateSnapshot flags. */
#define SNAPSHOT_CREATE_DISK_ONLY UINT64_C(1)
#define SNAPSHOT_CREATE_QUIESCE UINT64_C(2)
#define SNAPSHOT_CREATE_REDEFINE UINT64_C(4)
#define SNAPSHOT_CREATE_ATOMIC UINT64_C(8)
/* DomainSnapshot.Delete flags. */
#define SNAPSHOT_DELETE_CHILDREN UINT64_C(1)
#define SNAPSHOT_DELETE_CHILDREN_ONLY UINT64_C(2)
#define SNAPSHOT_DELETE_METADATA_ONLY UINT64_C(4)

DomainSnapshot *domain_snapshot_by_name(const Domain *d, const char *name);
DomainSnapshot *domain_snapshot_parent(const DomainSnapshot *s);
bool domain_snapshot_is_current(const DomainSnapshot *s);
/* The direct children of s (NULL: the roots), in order of creation; *ret to free. */
int domain_snapshot_children(const Domain *d, const DomainSnapshot *s, DomainSnapshot ***ret, size_t *ret_n);

/* A snapshot operation ended: r < 0 with e saying why, or done (s: the snapshot taken or reverted to). */
typedef void (*SnapshotOpDone)(int r, DomainSnapshot *s, const VbError *e, void *userdata);

/* The operations run while the event loop goes on (the backend's work is off it), one at a time per
 * domain (another one meanwhile is DeviceBusy). Returning 0, done follows once, from the event loop;
 * returning < 0 they failed at once (reterr) and done never comes. create takes def (also on failure).
 * Revert puts back the snapshot's definition too; a snapshot of a running guest is loaded into the
 * running domain (started paused from that definition when it is shut off). */
int manager_snapshot_create(Manager *m, Domain *d, SnapshotDef *def, uint64_t flags, SnapshotOpDone done,
                            void *userdata, VbError *reterr);
int manager_snapshot_revert(Manager *m, DomainSnapshot *s, uint64_t flags, SnapshotOpDone done, void *userdata,
                            VbError *reterr);
/* The running domain's live definition changed under the service (a merge a stop of the service cut
 * short, settled by the driver): disk-only snapshots drop the overlays it no longer has. */
void manager_snapshots_reconcile_merges(Manager *m, Domain *d);
int manager_snapshot_delete(Manager *m, DomainSnapshot *s, uint64_t flags, SnapshotOpDone done, void *userdata,
                            VbError *reterr);
/* The snapshot as the user sees it (without the <active> bookkeeping). */
int manager_snapshot_get_xml(const DomainSnapshot *s, char **ret, VbError *reterr);

/* Start-up: the saved snapshots of every domain. Called by manager_load(). */
void manager_snapshot_load_all(Manager *m);
/* The domain is being freed: its snapshots go from memory (their files stay). */
void domain_snapshots_free(Domain *d);
/* Undefine with its flag 2: the snapshots go (their files and objects), what the backend keeps stays. */
void manager_snapshot_forget_all(Manager *m, Domain *d);
/* Undefine: the files of a domain's snapshots. */
int manager_snapshot_remove_all(Manager *m, Domain *d);
