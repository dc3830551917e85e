/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "drivers/driver.h"

/* The test backend's simulated snapshots: what a backend would keep for each is a file
 * <state>/snapshots/<domain uuid>/<name> holding the state it was taken in. Each op does its work at
 * once and reports it to done from the event loop, as a real backend's job would. */
int test_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr);
int test_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr);
int test_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverOpDone done, void *userdata, VbError *reterr);

/* A simulated disk-only snapshot of a running guest: its live definition takes the overlays (no file is
 * made: the test host's disks are names). */
int test_driver_adopt_overlays(VbDriver *drv, const char *uuid, const SnapshotDef *snap, VbError *reterr);
/* The running guest's disks leave the overlays of snap for the images below them (a deleted disk-only
 * snapshot merged). */
int test_driver_drop_overlays(VbDriver *drv, const char *uuid, const SnapshotDef *snap, VbError *reterr);

/* Simulated saved state: a few lines naming the domain, written to or read from the descriptor by a
 * worker thread (util/worker.h), answered on the event loop. */
typedef struct Worker Worker;
typedef struct TestSaveHost {
        Worker *worker;
        bool closing; /* the driver closes: answers are dropped */
} TestSaveHost;

TestSaveHost *test_driver_save_host(VbDriver *drv);
void test_save_host_close(TestSaveHost *h);
int test_save_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr);
int test_migrate_out(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                     VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr);
int test_migrate_cancel(VbDriver *drv, const char *uuid, VbError *reterr);
int test_expect_incoming(VbDriver *drv, const char *uuid, bool expect, VbError *reterr);
int test_load_state(VbDriver *drv, const char *uuid, int fd, VbDriverProgress progress, VbDriverOpDone done,
                    void *userdata, VbError *reterr);
