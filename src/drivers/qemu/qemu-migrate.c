/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration out of a running QEMU (Domain.MigrateTo). The stream goes into a descriptor the service
 * connected to the destination (core/domain-migrate.c), handed over with getfd as for Save: the same job of
 * qemu-save.c follows it (query-migrate now and then, Progress and MigrationStats from its counters), but
 * the guest keeps running until QEMU's last pass pauses it. The incoming side is RestoreDomain's path
 * (-incoming defer, migrate-incoming from a descriptor). */
#include <stdio.h>

#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-nbd.h"
#include "util/log.h"

#define MIGRATE_FD_NAME "virtbus-migrate"

/* migrate-set-parameters and -capabilities, pipelined ahead of the migration: when one fails, the migrate
 * command behind it still runs with what QEMU had; the failure is logged. */
static void on_setup(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        if (error)
                log_warning("Failed to set a migration parameter of QEMU, ignoring: %s", error);
}

static void set_parameters(QemuMonitor *mon, const VbMigrateParams *p) {
        struct json_object *args = json_object_new_object(), *caps, *cap;

        /* No limit unless asked: QEMU's default (32 MiB/s) is for networks shared with the guests. */
        json_object_object_add(args, "max-bandwidth",
                               json_object_new_int64(p && p->bandwidth_mib ? (int64_t) (p->bandwidth_mib << 20)
                                                                           : INT64_MAX / 2));
        if (p && p->max_downtime_ms)
                json_object_object_add(args, "downtime-limit", json_object_new_int64((int64_t) p->max_downtime_ms));
        (void) qemu_monitor_call(mon, "migrate-set-parameters", args, on_setup, NULL);

        caps = json_object_new_array();
        cap = json_object_new_object();
        json_object_object_add(cap, "capability", json_object_new_string("auto-converge"));
        json_object_object_add(cap, "state", json_object_new_boolean(p && p->auto_converge));
        json_object_array_add(caps, cap);
        args = json_object_new_object();
        json_object_object_add(args, "capabilities", caps);
        (void) qemu_monitor_call(mon, "migrate-set-capabilities", args, on_setup, NULL);
}

int qemu_migrate_ram_start(QemuDriver *q, const char *uuid, int fd, const VbMigrateParams *params,
                           VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        set_parameters(vm->mon, params);
        return qemu_save_job_start(q, uuid, "send", fd, MIGRATE_FD_NAME, "migrate", NULL, stats, done, userdata,
                                   reterr);
}

int qemu_migrate_out(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                     VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        if (params && params->nbd_uri)
                return qemu_mirror_start(q, vm, fd, params, stats, done, userdata, reterr);
        return qemu_migrate_ram_start(q, uuid, fd, params, stats, done, userdata, reterr);
}

int qemu_migrate_cancel(VbDriver *drv, const char *uuid, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        if (qemu_mirror_cancel(q, uuid))
                return 0; /* the disks are still being copied: that stops, and done says so */
        /* The job sees "cancelled" in its next query-migrate and fails; QEMU resumes the guest itself. */
        return qemu_monitor_call(vm->mon, "migrate_cancel", NULL, on_setup, NULL);
}
