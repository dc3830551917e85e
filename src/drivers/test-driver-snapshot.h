/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "drivers/driver.h"

/* The test backend's simulated snapshots: what a backend would keep for each is a file
 * <state>/snapshots/<domain uuid>/<name> holding the state it was taken in. Each op does its work at
 * once and reports it to done from the event loop, as a real backend's job would. */
int test_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverSnapshotDone done, void *userdata, VbError *reterr);
int test_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverSnapshotDone done, void *userdata, VbError *reterr);
int test_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *access, VbDriverSnapshotDone done, void *userdata, VbError *reterr);
