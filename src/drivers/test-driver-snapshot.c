/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test backend's simulated snapshots (see test-driver-snapshot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/snapshot-conf.h"
#include "drivers/test-driver-snapshot.h"
#include "util/fileio.h"

static int snapshot_file(VbDriver *drv, const DomainDef *def, const SnapshotDef *snap, char **ret_dir,
                         char **ret_path) {
        char uuid[37];

        domain_def_get_uuid_string(def, uuid);
        if (asprintf(ret_dir, "%s/snapshots/%s", drv->state_dir, uuid) < 0)
                return -ENOMEM;
        if (asprintf(ret_path, "%s/%s", *ret_dir, snap->name) < 0) {
                free(*ret_dir);
                return -ENOMEM;
        }
        return 0;
}

int test_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        const char *state = snapshot_state_to_string(snap->state);
        int r;

        r = snapshot_file(drv, def, snap, &dir, &path);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        /* The simulated disk's state, as the test driver's runtime files: replaced atomically, not synced
         * on the event loop (what must survive is core's snapshot record, snapshot.c). */
        if (r >= 0)
                r = write_file_replace(path, state, strlen(state), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to write the simulated snapshot '%s': %s",
                                    path, strerror(-r));
        return 0;
}

int test_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        int r;

        r = snapshot_file(drv, def, snap, &dir, &path);
        if (r < 0)
                return r;
        if (access(path, F_OK) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "The simulated snapshot '%s' is gone (%s)",
                                    snap->name, path);
        return 0;
}

int test_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        int r;

        r = snapshot_file(drv, def, snap, &dir, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove the simulated snapshot '%s': %m",
                                    path);
        (void) rmdir(dir);
        return 0;
}
