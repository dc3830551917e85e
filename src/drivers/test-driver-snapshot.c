/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test backend's simulated snapshots (see test-driver-snapshot.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/snapshot-conf.h"
#include "drivers/test-driver-snapshot.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/worker.h"

typedef struct Completion {
        VbDriverOpDone done;
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
static int complete_later(VbDriver *drv, int r, VbError *e, VbDriverOpDone done, void *userdata,
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

static int snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                           VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        const char *state = snapshot_state_to_string(snap->state);
        char uuid[37];
        int r;

        /* Disk-only: the simulated overlays are only names in the definitions (core switches the saved one). */
        if (snapshot_def_kind(snap) == SNAPSHOT_KIND_DISK_ONLY) {
                domain_def_get_uuid_string(def, uuid);
                return running ? test_driver_adopt_overlays(drv, uuid, snap, reterr) : 0;
        }

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

static int snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                           VbError *reterr) {
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

static int snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                           VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        char uuid[37];
        int r;

        /* Disk-only: the simulated overlays merge into their images at once; the running guest's disks go
         * back to those images (core does the same to the saved definition). */
        if (snapshot_def_kind(snap) == SNAPSHOT_KIND_DISK_ONLY) {
                domain_def_get_uuid_string(def, uuid);
                return running ? test_driver_drop_overlays(drv, uuid, snap, reterr) : 0;
        }

        r = snapshot_file(drv, def, snap, &dir, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove the simulated snapshot '%s': %m",
                                    path);
        (void) rmdir(dir);
        return 0;
}

/* A simulated job is one unit, done at once. */
static void tell_progress(VbDriver *drv, const DomainDef *def) {
        char uuid[37];

        domain_def_get_uuid_string(def, uuid);
        if (drv->cfg.events.domain_progress)
                drv->cfg.events.domain_progress(drv->cfg.events.userdata, uuid, 1, 1);
}

/* The ops: the work now, the answer from the event loop. */
#define TEST_SNAPSHOT_OP(op)                                                                                       \
        int test_snapshot_##op(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,         \
                               const DomainAccess *owner, VbDriverOpDone done, void *userdata,                     \
                               VbError *reterr) {                                                                  \
                VbError e = VB_ERROR_NULL;                                                                         \
                int r = snapshot_##op(drv, def, running, snap, &e);                                                \
                if (r >= 0)                                                                                        \
                        tell_progress(drv, def);                                                                   \
                return complete_later(drv, r, &e, done, userdata, reterr);                                         \
        }

TEST_SNAPSHOT_OP(create)
TEST_SNAPSHOT_OP(revert)
TEST_SNAPSHOT_OP(delete)

/* Saved state ------------------------------------------------------------------------------------ */

#define SAVE_MAGIC "virtbus test driver saved state\n"
#define SAVE_MAX 4096

typedef struct SaveJob {
        TestSaveHost *host;
        char uuid[37];
        int fd;       /* our copy of the caller's */
        bool load;
        size_t bytes; /* written or read */
        int r;
        VbError e;
        VbDriverProgress progress;
        VbDriverMigrationStats stats; /* a simulated live migration */
        VbDriverOpDone done;
        void *userdata;
} SaveJob;

static void save_work(void *userdata) {
        SaveJob *j = userdata;
        char buf[SAVE_MAX + 1], want[128];
        size_t n = 0;
        ssize_t k;

        snprintf(want, sizeof want, SAVE_MAGIC "uuid %s\n", j->uuid);
        if (!j->load) {
                for (n = 0; n < strlen(want); n += (size_t) k) {
                        k = write(j->fd, want + n, strlen(want) - n);
                        if (k < 0 && errno == EINTR) {
                                k = 0;
                                continue;
                        }
                        if (k <= 0) {
                                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Failed to write the simulated "
                                                    "state of domain %s: %s", j->uuid, strerror(k < 0 ? errno : EPIPE));
                                return;
                        }
                }
                j->bytes = n;
                return;
        }
        while (n < SAVE_MAX && (k = read(j->fd, buf + n, SAVE_MAX - n)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "Failed to read a saved state: %m");
                        return;
                }
                n += (size_t) k;
        }
        buf[n] = 0;
        j->bytes = n;
        if (!streq(buf, want))
                j->r = vb_error_set(&j->e, VB_ERROR_INVALID_ARGUMENT, "The descriptor does not hold the saved state "
                                    "of domain %s written by the test driver", j->uuid);
}

static void save_done(void *userdata, bool cancelled) {
        SaveJob *j = userdata;

        if (!j->host->closing) {
                if (cancelled && j->r >= 0)
                        j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "The service is stopping");
                if (j->r >= 0 && j->progress)
                        j->progress(j->bytes, j->bytes, j->userdata);
                if (j->r >= 0 && j->stats)
                        j->stats(&(VbMigrationStats) { .transferred = j->bytes, .total = j->bytes, .iterations = 1,
                                                       .completed = true }, j->userdata);
                j->done(j->r, j->r < 0 ? &j->e : NULL, j->userdata);
        }
        vb_error_free(&j->e);
        close(j->fd);
        free(j);
}

static int save_submit(VbDriver *drv, const char *uuid, int fd, bool load, VbDriverProgress progress,
                       VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        TestSaveHost *h = test_driver_save_host(drv);
        SaveJob *j;
        int r;

        if (!h->worker) {
                r = worker_new(drv->cfg.event, 1, 16, 0, &h->worker);
                if (r < 0)
                        return r;
        }
        j = new0(SaveJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (SaveJob) { .host = h, .load = load, .progress = progress, .stats = stats, .done = done,
                         .userdata = userdata, .e = VB_ERROR_NULL };
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (j->fd < 0) {
                free(j);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to take the descriptor: %m");
        }
        r = worker_submit(h->worker, save_work, save_done, j);
        if (r < 0) {
                close(j->fd);
                free(j);
                return r == -EAGAIN ? vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many saves wait already") : r;
        }
        return 0;
}

int test_save_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr) {
        return save_submit(drv, uuid, fd, false, progress, NULL, done, userdata, reterr);
}

int test_expect_incoming(VbDriver *drv, const char *uuid, bool expect, VbError *reterr) {
        /* A simulated guest starts paused anyway (core asks for it): nothing to prepare. */
        return 0;
}

int test_load_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr) {
        return save_submit(drv, uuid, fd, true, progress, NULL, done, userdata, reterr);
}

/* A simulated live migration: the saved state's lines go to the destination's test driver, whose
 * load_state checks them (the same UUID on both sides). */
int test_migrate_out(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                     VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return save_submit(drv, uuid, fd, false, NULL, stats, done, userdata, reterr);
}

int test_migrate_cancel(VbDriver *drv, const char *uuid, VbError *reterr) {
        /* The simulated stream is a few lines written at once: nothing to stop. */
        return 0;
}

void test_save_host_close(TestSaveHost *h) {
        h->closing = true;
        h->worker = worker_free(h->worker);
}
