/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The "qemu" backend: each domain is a QEMU process driven over QMP.
 *
 * qemu/qemu-command.c turns a definition into QEMU's argument vector, qemu/qemu-process.c runs and
 * finds again the processes, qemu/qemu-monitor.c speaks QMP. Here: the ops table and the lifecycle.
 * QEMU runs with -no-shutdown, so a guest that powers off stops with a SHUTDOWN event and we apply
 * <on_poweroff> (or <on_reboot> after a Reboot request, <on_crash> after a panic): destroy ends the
 * process, restart resets and continues the guest, preserve leaves it paused. */
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "conf/domain-access.h"
#include "drivers/driver.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-nbd.h"
#include "drivers/qemu/qemu-caps-driver.h"
#include "drivers/qemu/qemu-cpu.h"
#include "drivers/qemu/qemu-firmware.h"
#include "drivers/qemu/qemu-sequence.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/worker.h"

static QemuDriver *priv(VbDriver *drv) {
        return drv->priv;
}

QemuVm *qemu_driver_find_vm(QemuDriver *q, const char *uuid, VbError *reterr) {
        QemuVm *vm = hashmap_get(q->vms, uuid);
        if (!vm)
                vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s is not running", uuid);
        else if (vm->start) {
                vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s is still starting", uuid);
                vm = NULL;
        } else if (vm->destroying) {
                vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s is being destroyed", uuid);
                vm = NULL;
        } else if (vm->connecting) {
                vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s is busy: virtbusd is still connecting to its "
                             "QEMU (found again at start-up); try again shortly", uuid);
                vm = NULL;
        } else if (vm->connect_error) {
                vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Domain %s: its QEMU did not answer when virtbusd "
                             "started (%s); only Destroy works on it", uuid, vm->connect_error);
                vm = NULL;
        }
        return vm;
}

static void vm_forget(QemuDriver *q, QemuVm *vm) {
        qemu_stats_forget_vm(q, vm, true);
        qemu_console_abort(q, vm->uuid);
        qemu_vcpus_abort(q, vm->uuid);
        qemu_snapshots_abort(q, vm->uuid);
        qemu_saves_abort(q, vm->uuid);
        qemu_mirrors_abort(q, vm->uuid);
        hashmap_remove(q->vms, vm->uuid);
        qemu_vm_free(vm);
}

static void notify_state(QemuDriver *q, QemuVm *vm, DomainState state) {
        const VbDriverEvents *ev = &q->drv->cfg.events;

        if (vm->state == state)
                return;
        vm->state = state;
        (void) qemu_vm_save(vm);
        if (ev->domain_state_changed)
                ev->domain_state_changed(ev->userdata, vm->uuid, state);
}

/* The guest stopped (SHUTDOWN event) for this reason: follow the definition's action. */
static void vm_lifecycle(QemuDriver *q, QemuVm *vm, DomainLifecycleEvent event) {
        DomainLifecycleAction action = domain_def_get_lifecycle(vm->live, event);

        log_debug("Domain %s: lifecycle event %d, action %s.", vm->uuid, (int) event,
                  domain_lifecycle_action_to_string(action));
        switch (action) {
        case DOMAIN_LIFECYCLE_RESTART:
        case DOMAIN_LIFECYCLE_RENAME_RESTART:
        case DOMAIN_LIFECYCLE_COREDUMP_RESTART:
                vm->shutdown_seen = vm->crashed = false;
                vm->restarting = true;
                (void) qemu_monitor_call(vm->mon, "system_reset", NULL, NULL, NULL);
                (void) qemu_monitor_call(vm->mon, "cont", NULL, NULL, NULL);
                notify_state(q, vm, DOMAIN_RUNNING);
                break;
        case DOMAIN_LIFECYCLE_PRESERVE:
                notify_state(q, vm, DOMAIN_PAUSED);
                break;
        default:
                /* Ending the process; its exit reports the stop. */
                vm->stop_requested = true;
                if (kill(vm->pid, SIGTERM) < 0)
                        log_warning("Failed to stop QEMU process %d, ignoring: %m", (int) vm->pid);
                break;
        }
}

static void on_vm_event(QemuVm *vm, const char *name, struct json_object *data, void *userdata) {
        QemuDriver *q = userdata;

        log_debug("Domain %s: QMP event %s.", vm->uuid, name);
        qemu_stats_event(vm, name);
        if (streq(name, "MIGRATION")) {
                qemu_save_job_event(q, vm, data);
                return;
        }
        /* While it starts, its state is the start's to tell (the RESUME of its own cont, say). */
        if (vm->destroying || vm->start)
                return;
        if (streq(name, "SHUTDOWN")) {
                const char *reason = qemu_json_string(data, "reason") ?: "";
                bool reboot = vm->reboot_requested;

                if (strncmp(reason, "host-", 5) == 0)
                        return; /* we or someone on the host ended it: the exit follows */
                if (streq(reason, "guest-panic") && vm->crashed)
                        return; /* GUEST_PANICKED came first and was handled */
                vm->shutdown_seen = true;
                vm->reboot_requested = false;
                if (streq(reason, "guest-panic"))
                        vm->crashed = true;
                vm_lifecycle(q, vm, vm->crashed                        ? DOMAIN_LIFECYCLE_ON_CRASH
                                    : reboot || streq(reason, "guest-reset") ? DOMAIN_LIFECYCLE_ON_REBOOT
                                                                             : DOMAIN_LIFECYCLE_ON_POWEROFF);
        } else if (streq(name, "GUEST_PANICKED")) {
                /* QEMU paused the guest (its default panic action): follow <on_crash>. */
                if (vm->crashed)
                        return;
                vm->crashed = true;
                vm_lifecycle(q, vm, DOMAIN_LIFECYCLE_ON_CRASH);
        } else if (streq(name, "STOP")) {
                if (!vm->shutdown_seen && !vm->crashed && !vm->restarting && vm->state != DOMAIN_SHUTDOWN)
                        notify_state(q, vm, DOMAIN_PAUSED);
        } else if (streq(name, "RESUME")) {
                vm->restarting = false;
                notify_state(q, vm, DOMAIN_RUNNING);
        } else if (streq(name, "DEVICE_DELETED"))
                qemu_driver_device_deleted(q, vm, qemu_json_string(data, "device"));
        else if (streq(name, "VSERPORT_CHANGE"))
                qemu_guest_port_changed(q, vm, qemu_json_string(data, "id"),
                                        json_object_get_boolean(qemu_json_get(data, "open")));
        else if (streq(name, "JOB_STATUS_CHANGE")) {
                qemu_snapshot_job_event(q, vm, data);
                qemu_snapshot_merge_job_event(q, vm, data);
        }
}

static void on_vm_exited(QemuVm *vm, void *userdata) {
        QemuDriver *q = userdata;
        const VbDriverEvents *ev = &q->drv->cfg.events;
        DomainStopReason reason;
        char uuid[37];

        if (vm->destroying || vm->start)
                return; /* a start that fails reports it itself (its monitor closes) */
        reason = vm->crashed ? DOMAIN_STOP_CRASHED
                 : vm->shutdown_seen || vm->stop_requested ? DOMAIN_STOP_SHUTDOWN
                                                           : DOMAIN_STOP_FAILED;
        if (reason == DOMAIN_STOP_FAILED) {
                _cleanup_free_ char *tail = qemu_vm_log_tail(vm->log_path, vm->log_offset);
                log_warning("QEMU of domain %s exited unexpectedly%s%s", vm->uuid, tail ? ": " : ".", strempty(tail));
        }
        snprintf(uuid, sizeof uuid, "%s", vm->uuid);
        qemu_vm_remove_files(vm);
        vm_forget(q, vm);
        if (ev->domain_stopped)
                ev->domain_stopped(ev->userdata, uuid, reason);
}

/* $VIRTBUS_QEMU_EMULATOR (for tests: a stand-in that holds QEMU back; named qemu-system-x86_64), else the
 * installed one. */
static const char *find_emulator(void) {
        static const char * const candidates[] = {
                "/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64",
        };
        const char *override = getenv("VIRTBUS_QEMU_EMULATOR");

        if (!isempty(override) && access(override, X_OK) == 0)
                return override;
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

/* A QEMU found again at start-up answered (or did not): its state as QEMU tells it, what the guest did
 * meanwhile, and devices a hot-plug cut short left behind. */
static void on_vm_reconnected(QemuVm *vm, int r, const char *error, DomainState state, struct json_object *peripherals,
                              struct json_object *fdsets, struct json_object *blocks, void *userdata) {
        QemuDriver *q = userdata;
        const VbDriverEvents *ev = &q->drv->cfg.events;
        char uuid[37];

        snprintf(uuid, sizeof uuid, "%s", vm->uuid); /* the lifecycle action below may end vm */
        if (r < 0) {
                log_warning("Failed to reconnect to QEMU process %d of domain %s: %s; calls to it fail until it is "
                            "destroyed.", (int) vm->pid, vm->uuid, strempty(error));
                if (ev->domain_connected) /* the calls waiting for it hear why */
                        ev->domain_connected(ev->userdata, vm->uuid);
                return;
        }
        log_info("Reconnected to QEMU process %d of domain '%s'.", (int) vm->pid, domain_def_get_name(vm->live));
        notify_state(q, vm, state);
        qemu_hotplug_reconcile(q, vm, peripherals, fdsets, blocks);
        qemu_snapshot_merge_reconnected(q, vm);
        qemu_guest_reattach(vm);
        /* The guest powered off or crashed while we were away: do now what we would have done. */
        if (vm->shutdown_seen || vm->crashed)
                vm_lifecycle(q, vm, vm->crashed ? DOMAIN_LIFECYCLE_ON_CRASH : DOMAIN_LIFECYCLE_ON_POWEROFF);
        if (ev->domain_connected)
                ev->domain_connected(ev->userdata, uuid);
}

static void reconnect_all(QemuDriver *q) {
        _cleanup_(closedirp) DIR *d = opendir(q->vm_cfg.runtime_dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                char uuid[37];
                QemuVm *vm = NULL;
                int r;

                if (n != 36 + 6 || !streq(de->d_name + 36, ".state"))
                        continue;
                snprintf(uuid, sizeof uuid, "%.36s", de->d_name);
                /* Listed at once as it was; its monitor connects in the background (on_vm_reconnected). */
                r = qemu_vm_reconnect(&q->vm_cfg, uuid, on_vm_reconnected, q, &vm);
                if (r == -ESRCH) {
                        log_info("QEMU of domain %s is gone.", uuid);
                        continue;
                }
                if (r < 0) {
                        log_warning_errno(r, "Failed to take over QEMU of domain %s, ignoring: %m", uuid);
                        continue;
                }
                if (hashmap_put(q->vms, vm->uuid, vm) < 0) {
                        qemu_vm_free(vm);
                        continue;
                }
                if (vm->id >= q->next_id)
                        q->next_id = vm->id + 1;
        }
}

/* What a QEMU does not see: the homes, temporary and runtime files, the service's state, other services'
 * data. It needs none of them: its files come as descriptors. */
static const char * const hidden_dirs[] = {
        "/home", "/root", "/tmp", "/var/tmp", "/run", "/mnt", "/media", "/srv", "/boot",
        "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail",
};

/* $VIRTBUS_QEMU_TIMEOUT_MS: how long QEMU may take to answer a list of commands (default 10 s). */
static uint64_t command_timeout(void) {
        return env_msec_as_usec("VIRTBUS_QEMU_TIMEOUT_MS", QEMU_COMMAND_TIMEOUT_USEC);
}

static int qemu_open(VbDriver *drv, const VbDriverConfig *cfg, VbError *reterr) {
        QemuDriver *q = priv(drv);
        const char *emulator = find_emulator();
        int fd, r;

        if (!emulator)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "The qemu driver needs qemu-system-x86_64, which is not installed");
        fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        q->kvm_usable = fd >= 0;
        if (fd >= 0)
                close(fd);
        /* QEMU never runs as root: a system service hands it to its own user. */
        if (geteuid() == 0) {
                const char *user = getenv("VIRTBUS_QEMU_USER") ?: QEMU_USER_DEFAULT;
                struct passwd *pw = getpwnam(user);
                if (!pw || pw->pw_uid == 0)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                            "The qemu driver runs QEMU as the unprivileged system user '%s', which %s "
                                            "(create it with systemd-sysusers and service/virtbus-sysusers.conf, or "
                                            "useradd --system %s)", user, pw ? "is root" : "does not exist", user);
                q->confinement = (HostConfinement) { .uid = pw->pw_uid, .gid = pw->pw_gid };
                q->hide[0] = cfg->state_dir;
                q->hide[1] = cfg->runtime_dir;
                for (size_t i = 0; i < ELEMENTSOF(hidden_dirs); i++)
                        q->hide[2 + i] = hidden_dirs[i];
                q->confinement.hide = q->hide;
                log_info("qemu driver: QEMU runs as user '%s' (uid %u), shut in.", user, (unsigned) pw->pw_uid);
        }
        q->drv = drv;
        q->next_id = 1;
        q->vms = hashmap_new();
        if (!q->vms || asprintf(&q->runtime_dir, "%s/qemu", cfg->runtime_dir) < 0 ||
            asprintf(&q->log_dir, "%s/qemu/log", cfg->state_dir) < 0 ||
            asprintf(&q->nvram_dir, "%s/qemu/nvram", cfg->state_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(q->runtime_dir, 0700);
        if (r >= 0)
                r = mkdir_p(q->log_dir, 0700);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", q->runtime_dir,
                                    strerror(-r));
        q->vm_cfg = (QemuVmConfig) {
                .event = cfg->event,
                .emulator = emulator,
                .runtime_dir = q->runtime_dir,
                .log_dir = q->log_dir,
                .kvm_usable = q->kvm_usable,
                .command_timeout_usec = command_timeout(),
                .confinement = geteuid() == 0 ? &q->confinement : NULL,
                .cb = { .event = on_vm_event, .exited = on_vm_exited },
                .userdata = q,
        };
        log_info("qemu driver: using %s, KVM %s.", emulator, q->kvm_usable ? "available" : "unavailable");
        reconnect_all(q);
        r = qemu_caps_driver_new(cfg->event, cfg->state_dir, cfg->runtime_dir, emulator, q->vm_cfg.confinement,
                                 &q->caps); /* issue 7 */
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to set up capabilities: %s", strerror(-r));
        return 0;
}

static void qemu_close(VbDriver *drv) {
        QemuDriver *q = priv(drv);
        QemuVm *vm;

        qemu_snapshots_close(q);
        qemu_saves_close(q);
        qemu_mirrors_close(q);
        qemu_nbd_in_close(q);
        /* Starts whose host part is in the thread come back first (those not begun fail; the others go on
         * to their monitor and are ended below like any start in progress). */
        q->start_worker = worker_free(q->start_worker);
        /* Starts in progress fail (their callers hear it); the guests go on running, and a restarted virtbusd
         * finds them through their state files. */
        for (bool again = true; again && q->vms;) {
                again = false;
                for (size_t i = 0; hashmap_iterate(q->vms, &i, (void **) &vm, NULL);)
                        if (vm->start) {
                                qemu_vm_start_abort(vm, "the service is stopping");
                                again = true;
                                break;
                        }
        }
        for (size_t i = 0; q->vms && hashmap_iterate(q->vms, &i, (void **) &vm, NULL);) {
                qemu_stats_forget_vm(q, vm, false);
                qemu_vm_free(vm);
        }
        qemu_console_close(q);
        qemu_vcpus_drop(q);
        hashmap_free(q->vms);
        free(q->runtime_dir);
        free(q->log_dir);
        free(q->nvram_dir);
        qemu_caps_driver_free(q->caps);
}

static int info_of(QemuVm *vm, VbDriverDomainInfo *ret) {
        return vb_driver_domain_info_set(ret, vm->uuid, vm->id, vm->state, vm->live);
}

static int describe_vm(void *domain, VbDriverDomainInfo *ret) {
        QemuVm *vm = domain;
        int r;

        if (vm->start)
                return 0; /* starting: not running yet */
        r = info_of(vm, ret);
        if (r < 0)
                return r;
        ret->connecting = vm->connecting;
        return 1;
}

static int qemu_list_running(VbDriver *drv, VbDriverDomainInfo **ret, size_t *ret_n, VbError *reterr) {
        return vb_driver_list_running_from(priv(drv)->vms, describe_vm, ret, ret_n);
}

/* The host's part of starts (qemu-process.c): opening files as their owners (a helper child each),
 * taps, the spawn. Two threads, so that one start waiting for a slow file does not hold every other. */
#define START_THREADS 2
#define START_QUEUE_MAX 64

/* Whose paths: the driver's, for the domain with this UUID. */
typedef struct OwnPaths {
        const QemuDriver *q;
        char uuid[37];
} OwnPaths;

/* The NVRAM store we made for the domain is ours to open, whoever owns the domain; no other path is.
 * Also called from the start's worker thread: it only reads what does not change. */
static bool own_path(const char *path, void *userdata) {
        const OwnPaths *o = userdata;
        _cleanup_free_ char *ours = qemu_firmware_default_nvram(o->q->nvram_dir, o->uuid);

        return ours && streq(path, ours);
}

static bool qemu_path_is_own(VbDriver *drv, const DomainDef *def, const char *path) {
        OwnPaths o = { .q = priv(drv) };

        snprintf(o.uuid, sizeof o.uuid, "%s", domain_def_uuid(def).s);
        return own_path(path, &o);
}

typedef struct StartCall {
        QemuDriver *q;
        OwnPaths own; /* read by the worker thread until on_vm_started */
        VbDriverStartDone done;
        void *userdata;
} StartCall;

static void on_vm_started(QemuVm *vm, int r, const VbError *e, void *userdata) {
        StartCall *c = userdata;
        QemuDriver *q = c->q;
        VbDriverDomainInfo info = {};
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0) {
                r = info_of(vm, &info);
                if (r < 0) {
                        e = NULL;
                        (void) qemu_vm_terminate(vm);
                }
        }
        if (r < 0) {
                if (!e)
                        r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Failed to start domain %s: %s", vm->uuid,
                                         strerror(-r));
                hashmap_remove(q->vms, vm->uuid);
                qemu_vm_free(vm);
                c->done(r, e ?: &e2, NULL, c->userdata);
                vb_error_free(&e2);
        } else {
                log_debug("Domain %s: QEMU ready.", vm->uuid);
                c->done(0, NULL, &info, c->userdata);
                vb_driver_domain_info_done(&info);
        }
        free(c);
}

/* <cpu mode='host-model'> expanded into the model and features this host's capabilities name (the live
 * definition shows them; the persistent one keeps host-model alone). *ret NULL: nothing to expand. */
static int expand_host_model(QemuDriver *q, const DomainDef *def, DomainDef **ret, VbError *reterr) {
        _cleanup_(domain_caps_unrefp) DomainCaps *caps = NULL;
        const VbDomainCapsQuery query = {
                .arch = def->os.arch,
                .machine = def->os.machine,
                .virttype = domain_virt_type_to_string(def->virt_type),
        };
        const ConfNode *cpu = def->extra ? conf_node_child(def->extra, "cpu") : NULL;
        int r;

        *ret = NULL;
        if (!cpu || !streq_ptr(conf_node_attr(cpu, "mode"), "host-model"))
                return 0;
        /* Known by now (Define checked the definition against them); else this waits for the probe. */
        r = qemu_caps_driver_domain_caps(q->caps, &query, NULL, NULL, &caps, reterr);
        if (r < 0)
                return r;
        return qemu_cpu_expand_host_model(caps, def, ret, reterr);
}

static int qemu_start(VbDriver *drv, const DomainDef *def, const DomainAccess *access, bool paused,
                      VbDriverStartDone done, void *userdata, VbDriverDomainInfo *ret, VbError *reterr) {
        QemuDriver *q = priv(drv);
        _cleanup_(domain_def_freep) DomainDef *with_firmware = NULL, *with_cpu = NULL;
        _cleanup_free_ StartCall *c = NULL;
        QemuVmConfig cfg;
        QemuVm *vm = NULL;
        int r;

        if (hashmap_get(q->vms, domain_def_uuid(def).s))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is already running",
                                    domain_def_get_name(def));
        /* firmware='efi' resolved and the NVRAM store made: the live definition names both. */
        r = qemu_firmware_prepare(def, access, qemu_firmware_dirs, q->nvram_dir, &with_firmware, reterr);
        if (r < 0)
                return r;
        r = expand_host_model(q, with_firmware ?: def, &with_cpu, reterr);
        if (r < 0)
                return r;
        if (with_cpu) {
                domain_def_free(with_firmware);
                with_firmware = TAKE_PTR(with_cpu);
        }
        c = new0(StartCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (StartCall) { .q = q, .own = { .q = q }, .done = done, .userdata = userdata };
        snprintf(c->own.uuid, sizeof c->own.uuid, "%s", domain_def_uuid(def).s);
        if (!q->start_worker) {
                r = worker_new(q->drv->cfg.event, START_THREADS, START_QUEUE_MAX, 0, &q->start_worker);
                if (r < 0)
                        return r;
        }
        /* A restore: QEMU waits for the guest's state (qemu-save.c). */
        cfg = q->vm_cfg;
        cfg.incoming_defer = qemu_save_take_incoming(q, domain_def_uuid(def).s);
        /* The host's part in a thread, then QEMU runs paused until its monitor is open; on_vm_started
         * follows. Meanwhile the VM is known as starting (calls to it are refused as for a start). */
        r = qemu_vm_start(&cfg, with_firmware ?: def, access, own_path, &c->own, q->next_id,
                          paused || cfg.incoming_defer, on_vm_started, c, &vm);
        if (r < 0)
                return r;
        r = hashmap_put(q->vms, vm->uuid, vm);
        if (r >= 0) {
                r = qemu_vm_start_run(vm, q->start_worker, reterr);
                if (r < 0)
                        hashmap_remove(q->vms, vm->uuid);
        }
        if (r < 0) {
                qemu_vm_free(vm);
                return r;
        }
        TAKE_PTR(c);
        q->next_id++;
        return 0;
}

/* A Destroy waiting for QEMU to end. */
typedef struct DestroyCall {
        QemuDriver *q;
        VbDriverOpDone done;
        void *userdata;
} DestroyCall;

static int destroy_failed(QemuVm *vm, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                            "QEMU process %d of domain %s did not end even on SIGKILL", (int) vm->pid, vm->uuid);
}

static void on_vm_gone(QemuVm *vm, int r, void *userdata) {
        _cleanup_free_ DestroyCall *c = userdata;
        VbError e = VB_ERROR_NULL;

        if (r < 0)
                r = destroy_failed(vm, &e);
        else
                vm_forget(c->q, vm);
        c->done(r, r < 0 ? &e : NULL, c->userdata);
        vb_error_free(&e);
}

static int qemu_destroy(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = priv(drv);
        QemuVm *vm = hashmap_get(q->vms, uuid);
        _cleanup_free_ DestroyCall *c = NULL;
        int r;

        /* Also one whose monitor is connecting or did not answer at start-up: it ends by its pid. */
        if (!vm || vm->start || vm->destroying) {
                (void) qemu_driver_find_vm(q, uuid, reterr);
                return -EBUSY;
        }
        if (!done) {
                /* The caller cannot wait (core ending a domain on its own): a bounded wait. */
                if (qemu_vm_terminate(vm) < 0)
                        return destroy_failed(vm, reterr);
                vm_forget(q, vm);
                return 1;
        }
        c = new0(DestroyCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (DestroyCall) { .q = q, .done = done, .userdata = userdata };
        /* SIGTERM now, SIGKILL after the grace from a timer: the loop never waits for QEMU to end. */
        r = qemu_vm_terminate_async(vm, on_vm_gone, c);
        if (r < 0)
                return destroy_failed(vm, reterr);
        if (r > 0) {
                vm_forget(q, vm);
                return 1;
        }
        TAKE_PTR(c);
        return 0;
}

/* A lifecycle command on its way to QEMU: what to record when it was done, and who waits for it. */
typedef struct LifecycleCall {
        QemuDriver *q;
        char uuid[37];
        DomainState state_after; /* _DOMAIN_STATE_INVALID: unchanged */
        bool reboot;             /* a Reboot request: undone when QEMU refused it */
        VbDriverOpDone done;
        void *userdata;
} LifecycleCall;

static void on_lifecycle_done(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_free_ LifecycleCall *c = userdata;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);

        if (vm && r >= 0 && c->state_after != _DOMAIN_STATE_INVALID) {
                vm->state = c->state_after;
                (void) qemu_vm_save(vm);
        }
        if (vm && r < 0 && c->reboot)
                vm->reboot_requested = false;
        c->done(r, e, c->userdata);
}

/* Sends command to the domain's QEMU; done follows when QEMU answered (or did not in time). */
static int lifecycle_command(VbDriver *drv, const char *uuid, const char *what, const char *command,
                             DomainState state_after, bool reboot, VbDriverOpDone done, void *userdata,
                             VbError *reterr) {
        QemuDriver *q = priv(drv);
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        LifecycleCall *c;
        QemuSeq *seq;
        int r;

        if (!vm)
                return -EBUSY;
        c = new0(LifecycleCall, 1);
        seq = qemu_seq_new(vm);
        if (!c || !seq) {
                free(c);
                qemu_seq_free(seq);
                return -ENOMEM;
        }
        *c = (LifecycleCall) { .q = q, .state_after = state_after, .reboot = reboot, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        (void) qemu_seq_add(seq, what, command, NULL);
        if (reboot)
                /* The guest powers off on the ACPI button; its SHUTDOWN then follows <on_reboot>. */
                vm->reboot_requested = true;
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_lifecycle_done, c, reterr);
        if (r < 0) {
                if (reboot)
                        vm->reboot_requested = false;
                free(c);
                return r;
        }
        return 0;
}

static int qemu_shutdown(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return lifecycle_command(drv, uuid, "send the ACPI power button", "system_powerdown", DOMAIN_SHUTDOWN, false,
                                 done, userdata, reterr);
}

static int qemu_reboot(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return lifecycle_command(drv, uuid, "send the ACPI power button", "system_powerdown", _DOMAIN_STATE_INVALID,
                                 true, done, userdata, reterr);
}

static int qemu_reset(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return lifecycle_command(drv, uuid, "reset the domain", "system_reset", _DOMAIN_STATE_INVALID, false, done,
                                 userdata, reterr);
}

static int qemu_suspend(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return lifecycle_command(drv, uuid, "pause the virtual CPUs", "stop", DOMAIN_PAUSED, false, done, userdata,
                                 reterr);
}

static int qemu_resume(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr) {
        return lifecycle_command(drv, uuid, "start the virtual CPUs", "cont", DOMAIN_RUNNING, false, done, userdata,
                                 reterr);
}

static int qemu_get_live(VbDriver *drv, const char *uuid, DomainDef **ret, VbError *reterr) {
        QemuDriver *q = priv(drv);
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return -EBUSY;
        return domain_def_copy(vm->live, ret);
}

static void qemu_undefined(VbDriver *drv, const DomainDef *def) {
        qemu_firmware_forget(def, priv(drv)->nvram_dir);
}

const VbDriverOps vb_qemu_driver_ops = {
        .name = "qemu",
        .priv_size = sizeof(QemuDriver),
        .open = qemu_open,
        .close = qemu_close,
        .domain_list_running = qemu_list_running,
        .domain_start = qemu_start,
        .domain_destroy = qemu_destroy,
        .domain_shutdown = qemu_shutdown,
        .domain_reboot = qemu_reboot,
        .domain_reset = qemu_reset,
        .domain_suspend = qemu_suspend,
        .domain_resume = qemu_resume,
        .domain_get_live = qemu_get_live,
        .domain_undefined = qemu_undefined,
        .domain_path_is_own = qemu_path_is_own,
        .domain_attach_device = qemu_attach_device,
        .domain_detach_device = qemu_detach_device,
        .domain_update_device = qemu_update_device,
        .domain_open_console = qemu_open_console,
        .domain_open_graphics = qemu_open_graphics,
        .domain_screenshot = qemu_screenshot,
        .domain_capabilities = qemu_domain_capabilities,
        .capabilities = qemu_capabilities,
        .capabilities_cancel = qemu_capabilities_cancel,
        .domain_get_stats = qemu_get_stats,
        .domain_stats_cancel = qemu_stats_cancel,
        .domain_set_memory = qemu_set_memory,
        .domain_set_vcpus = qemu_set_vcpus,
        .domain_guest_info = qemu_guest_info,
        .domain_agent_shutdown = qemu_agent_shutdown,
        .domain_agent_connected = qemu_agent_connected,
        .domain_agent_interfaces = qemu_agent_interfaces,
        .domain_snapshot_create = qemu_snapshot_create,
        .domain_snapshot_revert = qemu_snapshot_revert,
        .domain_snapshot_delete = qemu_snapshot_delete,
        .domain_snapshot_overlay_forget = qemu_snapshot_overlay_forget,
        .domain_save_state = qemu_save_state,
        .domain_expect_incoming = qemu_expect_incoming,
        .domain_migrate_out = qemu_migrate_out,
        .domain_migrate_cancel = qemu_migrate_cancel,
        .domain_disks_create = qemu_disks_create,
        .domain_disks_export = qemu_disks_export,
        .domain_disks_end = qemu_disks_end,
        .domain_incoming_postcopy = qemu_incoming_postcopy,
        .domain_migrate_postcopy = qemu_migrate_postcopy,
        .domain_load_state = qemu_load_state,
};
