/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test backend's simulated snapshots (see test-driver-snapshot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/snapshot-conf.h"
#include "drivers/test-driver-snapshot.h"
#include "util/fileio.h"
#include "util/log.h"

typedef struct Completion {
        VbDriverSnapshotDone done;
        void *userdata;
        int r;
        VbError e;
        sd_event_source *source;
} Completion;

static int on_complete(sd_event_source *source, void *userdata) {
        Completion *c = userdata;

        c->done(c->r, c->r < 0 ? &c->e : NULL, c->userdata);
        vb_error_free(&c->e);
        sd_event_source_unref(c->source);
        free(c);
        return 0;
}

/* Hands the outcome r (e: why it failed) to done from the event loop; e is taken. */
static int complete_later(VbDriver *drv, int r, VbError *e, VbDriverSnapshotDone done, void *userdata,
                          VbError *reterr) {
        Completion *c;
        int k;

        if (r < 0 && r != -ENOMEM && e->code == VB_ERROR_NONE)
                vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Simulated snapshot operation failed: %s", strerror(-r));
        c = new0(Completion, 1);
        if (!c) {
                vb_error_free(e);
                return -ENOMEM;
        }
        *c = (Completion) { .done = done, .userdata = userdata, .r = r, .e = *e };
        *e = VB_ERROR_NULL;
        k = sd_event_add_defer(drv->cfg.event, &c->source, on_complete, c);
        if (k < 0) {
                /* Not queued: the outcome is told now, as a failure to start. */
                r = c->r < 0 ? c->r : k;
                if (c->r < 0 && reterr)
                        *reterr = c->e;
                else
                        vb_error_free(&c->e);
                free(c);
                return r;
        }
        return 0;
}

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

static int snapshot_create(VbDriver *drv, const DomainDef *def, const SnapshotDef *snap, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        const char *state = snapshot_state_to_string(snap->state);
        int r;

        r = snapshot_file(drv, def, snap, &dir, &path);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = write_file_atomic(path, state, strlen(state), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to write the simulated snapshot '%s': %s",
                                    path, strerror(-r));
        return 0;
}

static int snapshot_revert(VbDriver *drv, const DomainDef *def, const SnapshotDef *snap, VbError *reterr) {
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

static int snapshot_delete(VbDriver *drv, const DomainDef *def, const SnapshotDef *snap, VbError *reterr) {
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

/* The ops: the work now, the answer from the event loop. */
#define TEST_SNAPSHOT_OP(op)                                                                                        \
        int test_snapshot_##op(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,        \
                               const DomainAccess *owner, VbDriverSnapshotDone done, void *userdata,               \
                               VbError *reterr) {                                                                  \
                VbError e = VB_ERROR_NULL;                                                                         \
                int r = snapshot_##op(drv, def, snap, &e);                                                         \
                return complete_later(drv, r, &e, done, userdata, reterr);                                         \
        }

TEST_SNAPSHOT_OP(create)
TEST_SNAPSHOT_OP(revert)
TEST_SNAPSHOT_OP(delete)
