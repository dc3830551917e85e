/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf-node.h"
#include "conf/domain-conf.h"
#include "util/error.h"
#include "util/string-table.h"

/* Domain snapshots (<domainsnapshot>). The typed part is what the service acts on (name, parent, time,
 * state, how memory and each disk are kept, the domain definition taken); everything else is kept in
 * extra and merged back when formatting (see conf-node.h). A whole nested <domain> goes through the
 * domain parser; a <domain> holding only a <uuid> stays in extra. */

/* <state>: the domain's state when the snapshot was taken. */
typedef enum SnapshotState {
        SNAPSHOT_STATE_NOSTATE,
        SNAPSHOT_STATE_RUNNING,
        SNAPSHOT_STATE_BLOCKED,
        SNAPSHOT_STATE_PAUSED,
        SNAPSHOT_STATE_SHUTDOWN,
        SNAPSHOT_STATE_SHUTOFF,
        SNAPSHOT_STATE_CRASHED,
        SNAPSHOT_STATE_PMSUSPENDED,
        SNAPSHOT_STATE_DISK_SNAPSHOT,
        _SNAPSHOT_STATE_MAX,
        _SNAPSHOT_STATE_INVALID = -EINVAL,
} SnapshotState;

DECLARE_STRING_TABLE_LOOKUP(snapshot_state, SnapshotState);

/* snapshot= of <memory> and of each <disk>. */
typedef enum SnapshotMode {
        SNAPSHOT_MODE_NO,
        SNAPSHOT_MODE_INTERNAL,
        SNAPSHOT_MODE_EXTERNAL,
        SNAPSHOT_MODE_MANUAL,
        _SNAPSHOT_MODE_MAX,
        _SNAPSHOT_MODE_INVALID = -EINVAL,
} SnapshotMode;

DECLARE_STRING_TABLE_LOOKUP(snapshot_mode, SnapshotMode);

/* What a snapshot is, as the bus shows it (DomainSnapshot.Kind). */
typedef enum SnapshotKind {
        SNAPSHOT_KIND_INTERNAL,
        SNAPSHOT_KIND_EXTERNAL,
        SNAPSHOT_KIND_DISK_ONLY,
        _SNAPSHOT_KIND_MAX,
        _SNAPSHOT_KIND_INVALID = -EINVAL,
} SnapshotKind;

DECLARE_STRING_TABLE_LOOKUP(snapshot_kind, SnapshotKind);

typedef struct SnapshotDiskDef {
        char *name; /* the domain disk's target dev (or source path) */
        SnapshotMode mode;
        bool mode_given;
        char *source_file; /* external: the overlay (<source file=>) */
        char *driver_type; /* external: its format (<driver type=>) */
} SnapshotDiskDef;

typedef struct SnapshotDef {
        char *name;          /* NULL: not given (the service names it after the creation time) */
        char *description;
        char *parent_name;   /* <parent><name> */
        SnapshotState state;
        bool state_given;
        uint64_t creation_time; /* seconds since the epoch */
        bool creation_time_given;
        SnapshotMode memory;
        bool memory_given;
        char *memory_file;
        SnapshotDiskDef *disks;
        size_t n_disks;
        int active;                 /* <active>: -1 absent, 0, 1 */
        DomainDef *domain;          /* the definition when taken (NULL: absent or UUID only) */
        DomainDef *inactive_domain; /* <inactiveDomain>: the saved definition of a running domain */
        ConfNode *extra;
} SnapshotDef;

int snapshot_def_parse_string(const char *xml, SnapshotDef **ret, VbError *reterr);
/* flags: DOMAIN_FORMAT_* for the nested domain definitions. */
int snapshot_def_format(const SnapshotDef *def, unsigned flags, char **ret);
int snapshot_def_copy(const SnapshotDef *def, SnapshotDef **ret);
SnapshotDef *snapshot_def_free(SnapshotDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnapshotDef *, snapshot_def_free);

/* internal / external / disk-only, from the state and how memory and disks are kept. */
SnapshotKind snapshot_def_kind(const SnapshotDef *def);
/* The mode of the named disk as the snapshot says, or fallback if it does not name it. */
SnapshotMode snapshot_def_disk_mode(const SnapshotDef *def, const char *disk, SnapshotMode fallback);
/* A copy of def whose disks snap keeps externally have their overlays (snap's <source file=>) over their
 * images (device_disk_push_overlay), each only if the disk still has the image it had when snap was taken
 * (snap->domain); for a disk-only snapshot's definitions. */
int snapshot_def_apply_overlays(const SnapshotDef *snap, const DomainDef *def, DomainDef **ret);
/* A copy of def in which the overlays of snap are merged away: each disk snap keeps externally whose image
 * is snap's overlay gets the image below it back (device_disk_pop_overlay). With ret_blocking, a disk whose
 * image is not (or no longer) snap's overlay fails it: -EBUSY, *ret_blocking the disk's name (pointing into
 * snap); without, such a disk is left as it is. */
int snapshot_def_drop_overlays(const SnapshotDef *snap, const DomainDef *def, DomainDef **ret,
                               const char **ret_blocking);
