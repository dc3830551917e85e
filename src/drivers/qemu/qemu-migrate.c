/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration out of a running QEMU (Domain.MigrateTo). The stream goes into a descriptor the service
 * connected to the destination (core/domain-migrate.c), handed over with getfd as for Save: the same job of
 * qemu-save.c follows it (query-migrate now and then, Progress and MigrationStats from its counters), but
 * the guest keeps running until QEMU's last pass pauses it. The incoming side is RestoreDomain's path
 * (-incoming defer, migrate-incoming from a descriptor). */
#include <inttypes.h>
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

/* A figure of query-migrate-parameters' answer, or -1. */
static int64_t parameter(struct json_object *ret, const char *key) {
        struct json_object *v = qemu_json_get(ret, key);

        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/* QEMU's own figures once set (vm lives as long as its monitor, which drops its callbacks when freed):
 * the log says what the migration runs with. */
static void on_parameters(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuVm *vm = userdata;

        if (error || !ret) {
                log_debug("Domain %s: failed to read QEMU's migration parameters, ignoring: %s", vm->uuid,
                          strna(error));
                return;
        }
        log_info("Domain %s: QEMU migrates with max-bandwidth %" PRIi64 " B/s, max-postcopy-bandwidth %" PRIi64
                 " B/s (0: no limit), downtime-limit %" PRIi64 " ms.", vm->uuid, parameter(ret, "max-bandwidth"),
                 parameter(ret, "max-postcopy-bandwidth"), parameter(ret, "downtime-limit"));
}

static void set_parameters(QemuVm *vm, const VbMigrateParams *p) {
        QemuMonitor *mon = vm->mon;
        struct json_object *args = json_object_new_object(), *caps, *cap;

        /* No limit unless asked: QEMU's default (32 MiB/s) is for networks shared with the guests. */
        json_object_object_add(args, "max-bandwidth",
                               json_object_new_int64(p && p->bandwidth_mib ? (int64_t) (p->bandwidth_mib << 20)
                                                                           : INT64_MAX / 2));
        /* After the switch to postcopy: QEMU's own default, no limit, unless asked. */
        if (p && p->postcopy_bandwidth_mib)
                json_object_object_add(args, "max-postcopy-bandwidth",
                                       json_object_new_int64((int64_t) (p->postcopy_bandwidth_mib << 20)));
        if (p && p->max_downtime_ms)
                json_object_object_add(args, "downtime-limit", json_object_new_int64((int64_t) p->max_downtime_ms));
        (void) qemu_monitor_call(mon, "migrate-set-parameters", args, on_setup, NULL);

        caps = json_object_new_array();
        cap = json_object_new_object();
        json_object_object_add(cap, "capability", json_object_new_string("auto-converge"));
        json_object_object_add(cap, "state", json_object_new_boolean(p && p->auto_converge));
        json_object_array_add(caps, cap);
        cap = json_object_new_object();
        json_object_object_add(cap, "capability", json_object_new_string("postcopy-ram"));
        json_object_object_add(cap, "state", json_object_new_boolean(p && p->postcopy));
        json_object_array_add(caps, cap);
        args = json_object_new_object();
        json_object_object_add(args, "capabilities", caps);
        (void) qemu_monitor_call(mon, "migrate-set-capabilities", args, on_setup, NULL);
        (void) qemu_monitor_call(mon, "query-migrate-parameters", NULL, on_parameters, vm);
}

/* The QEMU of domain uuid, with its monitor connected. */
static int find_vm_with_monitor(QemuDriver *q, const char *uuid, QemuVm **ret, VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        *ret = vm;
        return 0;
}

int qemu_migrate_ram_start(QemuDriver *q, const char *uuid, int fd, const VbMigrateParams *params,
                           VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuVm *vm = NULL;
        int r;

        r = find_vm_with_monitor(q, uuid, &vm, reterr);
        if (r < 0)
                return r;
        set_parameters(vm, params);
        r = qemu_save_job_start(q, uuid, "send", fd, MIGRATE_FD_NAME, "migrate", NULL, stats, done, userdata,
                                reterr);
        if (r >= 0 && params && params->postcopy && params->postcopy_after)
                qemu_save_job_postcopy_after(q, uuid, params->postcopy_after);
        return r;
}

int qemu_migrate_out(VbDriver *drv, const char *uuid, int fd, const VbMigrateParams *params,
                     VbDriverMigrationStats stats, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = NULL;
        int r;

        r = find_vm_with_monitor(q, uuid, &vm, reterr);
        if (r < 0)
                return r;
        if (params && params->nbd_uri)
                return qemu_mirror_start(q, vm, fd, params, stats, done, userdata, reterr);
        return qemu_migrate_ram_start(q, uuid, fd, params, stats, done, userdata, reterr);
}

int qemu_migrate_cancel(VbDriver *drv, const char *uuid, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = NULL;
        int r;

        r = find_vm_with_monitor(q, uuid, &vm, reterr);
        if (r < 0)
                return r;
        if (qemu_mirror_cancel(q, uuid))
                return 0; /* the disks are still being copied: that stops, and done says so */
        /* The job sees "cancelled" in its next query-migrate and fails; QEMU resumes the guest itself, or
         * after a switch to postcopy the job does (qemu-save.c). */
        return qemu_monitor_call(vm->mon, "migrate_cancel", NULL, on_setup, NULL);
}

int qemu_migrate_postcopy(VbDriver *drv, const char *uuid, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = NULL;
        int r;

        r = find_vm_with_monitor(q, uuid, &vm, reterr);
        if (r < 0)
                return r;
        if (!qemu_save_job_postcopy_now(q, uuid))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "The memory of domain %s is not being sent yet "
                                    "(its disks are still copied): ask again once it is", uuid);
        return 0;
}

/* The incoming side's postcopy-ram: refused by a QEMU that cannot use userfaultfd (an unprivileged QEMU
 * where vm.unprivileged_userfaultfd is 0). */
typedef struct IncomingCall {
        VbDriverOpDone done;
        void *userdata;
        char uuid[37];
} IncomingCall;

static void on_incoming_cap(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        IncomingCall *c = userdata;
        VbError e = VB_ERROR_NULL;

        if (error)
                vb_error_set(&e, VB_ERROR_NOT_SUPPORTED, "The QEMU of domain %s cannot take a postcopy migration: %s "
                             "(it runs unprivileged: the host needs vm.unprivileged_userfaultfd=1)", c->uuid, error);
        c->done(error ? -EOPNOTSUPP : 0, error ? &e : NULL, c->userdata);
        vb_error_free(&e);
        free(c);
}

int qemu_incoming_postcopy(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = NULL;
        struct json_object *args, *caps, *cap;
        IncomingCall *c;
        int r;

        r = find_vm_with_monitor(q, uuid, &vm, reterr);
        if (r < 0)
                return r;
        c = new0(IncomingCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (IncomingCall) { .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        caps = json_object_new_array();
        cap = json_object_new_object();
        json_object_object_add(cap, "capability", json_object_new_string("postcopy-ram"));
        json_object_object_add(cap, "state", json_object_new_boolean(true));
        json_object_array_add(caps, cap);
        args = json_object_new_object();
        json_object_object_add(args, "capabilities", caps);
        r = qemu_monitor_call(vm->mon, "migrate-set-capabilities", args, on_incoming_cap, c);
        if (r < 0) {
                free(c);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to ask the QEMU of domain %s: %s", uuid,
                                    strerror(-r));
        }
        return 0;
}
