/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Saved state and managed save (see domain-save.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-save.h"
#include "core/snapshot.h"
#include "util/fileio.h"
#include "util/log.h"

static const char * const save_props[] = { "HasManagedSave", NULL };

typedef struct SaveJob {
        Manager *m;
        Domain *d;
        char uuid[37];
        int fd;          /* ManagedSave, Start: the service's own file */
        char *tmp_path;  /* ManagedSave: the file being written, renamed when complete */
        bool paused;     /* Start, RestoreDomain: leave the guest paused */
        bool restore;    /* RestoreDomain, Start: state read in; else written out */
        bool managed;    /* from or into the managed save */
        DomainJobDone done;
        void *userdata;
} SaveJob;

static int save_path(Manager *m, const char *uuid, const char *suffix, char **ret) {
        return asprintf(ret, "%s/%s/save/%s.save%s", m->state_dir, m->driver->ops->name, uuid, suffix) < 0 ? -ENOMEM
                                                                                                               : 0;
}

bool manager_domain_has_managed_save(Manager *m, const Domain *d) {
        _cleanup_free_ char *path = NULL;

        return save_path(m, d->uuid, "", &path) >= 0 && access(path, F_OK) == 0;
}

static SaveJob *job_new(Manager *m, Domain *d, DomainJobDone done, void *userdata) {
        SaveJob *j = new0(SaveJob, 1);

        if (!j)
                return NULL;
        *j = (SaveJob) { .m = m, .d = d, .fd = -1, .done = done, .userdata = userdata };
        if (d) {
                snprintf(j->uuid, sizeof j->uuid, "%s", d->uuid);
                d->job_busy = true;
        }
        return j;
}

static void job_free(SaveJob *j) {
        if (j->d)
                j->d->job_busy = false;
        if (j->fd >= 0)
                close(j->fd);
        if (j->tmp_path) {
                (void) unlink(j->tmp_path);
                free(j->tmp_path);
        }
        free(j);
}

/* The job no longer holds its domain (which may go away now); done gets none. */
static void job_release(SaveJob *j) {
        if (j->d)
                j->d->job_busy = false;
        j->d = NULL;
}

/* The domain started for a restore goes again (a transient one with it). */
static void job_destroy_domain(SaveJob *j) {
        Domain *d = j->d;

        job_release(j);
        if (d)
                (void) manager_domain_destroy(j->m, d, NULL);
}

static void job_finish(SaveJob *j, int r, const VbError *e) {
        DomainJobDone done = j->done;
        void *userdata = j->userdata;
        Domain *d = j->d;

        job_free(j);
        done(r, d, e, userdata);
}

static void job_fail(SaveJob *j, int r, VbError *e) {
        if (e->code == VB_ERROR_NONE)
                vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed: %s", strerror(-r));
        job_finish(j, r, e);
        vb_error_free(e);
}

static int busy(Domain *d, VbError *reterr) {
        if (d->job_busy)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain '%s' has a snapshot or save operation in "
                                    "progress", d->name);
        /* Nor behind a start, stop or other lifecycle call in flight. */
        return domain_check_idle(d, reterr);
}

static int not_supported(Manager *m, const char *what, VbError *reterr) {
        return vb_driver_not_supported(m->driver, what, reterr);
}

static void on_progress(uint64_t done, uint64_t total, void *userdata) {
        SaveJob *j = userdata;

        if (j->d && j->m->events.domain_progress)
                j->m->events.domain_progress(j->m->events.userdata, j->d, done, total);
}

/* Save and ManagedSave -------------------------------------------------------------------------- */

static void on_saved(int r, const VbError *driver_e, void *userdata) {
        SaveJob *j = userdata;
        _cleanup_free_ char *path = NULL;
        VbError e = VB_ERROR_NULL;
        Domain *d = j->d;

        if (r < 0) {
                job_finish(j, r, driver_e);
                return;
        }
        if (j->managed) {
                r = save_path(j->m, d->uuid, "", &path);
                if (r >= 0 && rename(j->tmp_path, path) < 0)
                        r = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to keep the saved state as '%s': %m",
                                         path);
                if (r < 0) {
                        job_fail(j, r, &e);
                        return;
                }
                free(j->tmp_path);
                j->tmp_path = NULL;
                domain_emit_changed(d, save_props);
        }
        log_notice("Domain '%s' saved%s.", d->name, j->managed ? " (managed save)" : "");
        /* The state is out: the paused guest goes (a transient domain with it). */
        job_release(j);
        r = manager_domain_destroy(j->m, d, &e);
        if (r < 0) {
                job_fail(j, r, &e);
                return;
        }
        job_finish(j, 0, NULL);
}

static int save_start(Manager *m, Domain *d, SaveJob *j, int fd, VbError *reterr) {
        int r;

        r = DRIVER_OP(m, domain_save_state)(m->driver, d->uuid, fd, on_progress, on_saved, j, reterr);
        if (r < 0)
                job_free(j);
        return r;
}

static int check_save(Manager *m, Domain *d, VbError *reterr) {
        int r = busy(d, reterr);

        if (r < 0)
                return r;
        if (!DRIVER_OP(m, domain_save_state))
                return not_supported(m, "saving domains", reterr);
        if (!domain_is_active(d) || d->state == DOMAIN_CRASHED)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
        return 0;
}

/* Save and ManagedSave kept while virtbusd is still connecting to the domain's QEMU after a restart
 * (domain-queue.c): they wait there instead of being answered busy. The caller's descriptor stays open
 * meanwhile (the bus keeps its message until done). */
typedef struct SaveCall {
        int fd; /* Save's; -1: ManagedSave */
        DomainJobDone done;
        void *userdata;
} SaveCall;

static int save_call_run(Manager *m, Domain *d, void *args, Domain **ret, VbError *reterr) {
        SaveCall *c = args;
        int r;

        if (c->fd >= 0)
                r = manager_domain_save(m, d, c->fd, c->done, c->userdata, reterr);
        else
                r = manager_domain_managed_save(m, d, c->done, c->userdata, reterr);
        return r < 0 ? r : 0;
}

static void save_call_answer(Manager *m, Domain *d, void *args, int r, const VbError *e) {
        SaveCall *c = args;

        c->done(r, d, e, c->userdata);
}

static const QueuedCallType save_call_type = {
        .what = "saving a domain",
        .run = save_call_run,
        .answer = save_call_answer,
        .free = free,
};

static int save_call_keep(Manager *m, Domain *d, int fd, DomainJobDone done, void *userdata, VbError *reterr) {
        return domain_queue_add_copy(m, d, false, &save_call_type,
                                     &(SaveCall) { .fd = fd, .done = done, .userdata = userdata }, sizeof(SaveCall),
                                     reterr);
}

int manager_domain_save(Manager *m, Domain *d, int fd, DomainJobDone done, void *userdata, VbError *reterr) {
        SaveJob *j;
        int r;

        if (domain_queue_wanted_connected(m, d))
                return save_call_keep(m, d, fd, done, userdata, reterr);
        r = check_save(m, d, reterr);
        if (r < 0)
                return r;
        j = job_new(m, d, done, userdata);
        if (!j)
                return -ENOMEM;
        return save_start(m, d, j, fd, reterr);
}

int manager_domain_managed_save(Manager *m, Domain *d, DomainJobDone done, void *userdata, VbError *reterr) {
        _cleanup_free_ char *dir = NULL;
        SaveJob *j;
        int r;

        if (domain_queue_wanted_connected(m, d))
                return save_call_keep(m, d, -1, done, userdata, reterr);
        r = check_save(m, d, reterr);
        if (r < 0)
                return r;
        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient: a managed save needs a "
                                    "saved definition to start from", d->name);
        j = job_new(m, d, done, userdata);
        if (!j)
                return -ENOMEM;
        j->managed = true;
        r = save_path(m, d->uuid, ".tmp", &j->tmp_path);
        if (r >= 0 && asprintf(&dir, "%s/%s/save", m->state_dir, m->driver->ops->name) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = mkdir_p(dir, 0700);
        if (r >= 0) {
                j->fd = open(j->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (j->fd < 0)
                        r = -errno;
        }
        if (r < 0) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", j->tmp_path ?: "the saved state",
                                 strerror(-r));
                job_free(j);
                return r;
        }
        return save_start(m, d, j, j->fd, reterr);
}

int manager_domain_managed_save_remove_stale(Manager *m, Domain *d) {
        _cleanup_free_ char *path = NULL;

        if (save_path(m, d->uuid, "", &path) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        log_notice("Managed save of domain '%s' removed: it no longer matches the disks.", d->name);
        domain_emit_changed(d, save_props);
        return 0;
}

int manager_domain_managed_save_remove(Manager *m, Domain *d, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = busy(d, reterr);
        if (r < 0)
                return r;
        r = save_path(m, d->uuid, "", &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' has no managed save", d->name);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m", path);
        }
        log_notice("Managed save of domain '%s' removed.", d->name);
        domain_emit_changed(d, save_props);
        return 0;
}

/* Start from a managed save, RestoreDomain --------------------------------------------------------- */

/* The restored guest was resumed (or that failed: it stays, paused). */
static void on_restored_resumed(Domain *d, int r, const VbError *e, void *userdata) {
        SaveJob *j = userdata;

        if (r >= 0 && d)
                log_notice("Domain '%s' restored%s.", d->name, j->managed ? " from its managed save" : "");
        job_finish(j, d ? r : -ESRCH, e);
}

static void on_loaded(int r, const VbError *driver_e, void *userdata) {
        SaveJob *j = userdata;
        _cleanup_free_ char *path = NULL;
        VbError e = VB_ERROR_NULL;
        Domain *d = j->d;

        if (r < 0) {
                /* Not what was saved: it does not run half-restored. */
                job_destroy_domain(j);
                job_finish(j, r, driver_e);
                return;
        }
        if (j->managed) {
                if (save_path(j->m, d->uuid, "", &path) >= 0 && unlink(path) < 0)
                        log_warning("Failed to remove the managed save '%s' of domain '%s', ignoring: %m", path,
                                    d->name);
                domain_emit_changed(d, save_props);
        }
        if (!j->paused) {
                r = manager_domain_resume(j->m, d, on_restored_resumed, j, &e);
                if (r < 0) {
                        job_fail(j, r, &e);
                        return;
                }
                if (r == 0)
                        return; /* on_restored_resumed finishes */
        }
        log_notice("Domain '%s' restored%s.", d->name, j->managed ? " from its managed save" : "");
        job_finish(j, 0, NULL);
}

static int check_restore(Manager *m, VbError *reterr) {
        if (!DRIVER_OP(m, domain_expect_incoming) || !DRIVER_OP(m, domain_load_state))
                return not_supported(m, "restoring saved domains", reterr);
        return 0;
}

/* The domain runs paused, waiting for its state: fd brings it. */
static int load_start(Manager *m, SaveJob *j, int fd, VbError *reterr) {
        int r;

        r = DRIVER_OP(m, domain_load_state)(m->driver, j->d->uuid, fd, on_progress, on_loaded, j, reterr);
        if (r < 0) {
                job_destroy_domain(j);
                job_free(j);
        }
        return r;
}

/* The domain that waits for its state started (paused), or failed to: the state goes in. */
static void on_restore_started(Domain *d, int r, const VbError *e, void *userdata) {
        SaveJob *j = userdata;
        VbError e2 = VB_ERROR_NULL;
        DomainJobDone done = j->done;
        void *done_userdata = j->userdata;

        if (r < 0 || !d) {
                (void) DRIVER_OP(j->m, domain_expect_incoming)(j->m->driver, j->uuid, false, NULL);
                job_release(j);
                job_finish(j, r < 0 ? r : -ESRCH, e);
                return;
        }
        if (!j->d) {
                /* RestoreDomain: the domain exists from now on. */
                j->d = d;
                d->job_busy = true;
        }
        r = load_start(j->m, j, j->fd, &e2);
        if (r < 0) /* load_start freed the job */
                done(r, NULL, &e2, done_userdata);
        vb_error_free(&e2);
}

/* A Start from a managed save kept while the capabilities are probed: the qemu driver expands <cpu
 * mode='host-model'> from them when QEMU starts, and would otherwise wait for the probe on the loop. */
typedef struct StartSavedArgs {
        bool paused;
        DomainJobDone done;
        void *userdata;
} StartSavedArgs;

static int start_saved_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        StartSavedArgs *a = p;

        return manager_domain_start_saved(m, d, a->paused, a->done, a->userdata, reterr);
}

static void start_saved_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        StartSavedArgs *a = p;

        if (r < 0)
                a->done(r, d, e, a->userdata);
}

static const QueuedCallType start_saved_type = {
        .what = "starting a domain from its managed save",
        .run = start_saved_run,
        .answer = start_saved_answer,
        .free = free,
};

int manager_domain_start_saved(Manager *m, Domain *d, bool paused, DomainJobDone done, void *userdata,
                               VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        SaveJob *j;
        int r;

        r = domain_queue_keep_if_probing(m, d, domain_is_active(d) ? NULL : d->config, false, &start_saved_type,
                                         &(StartSavedArgs) { .paused = paused, .done = done, .userdata = userdata },
                                         sizeof(StartSavedArgs), reterr);
        if (r <= 0)
                return r;
        r = busy(d, reterr);
        if (r >= 0)
                r = check_restore(m, reterr);
        if (r >= 0)
                r = save_path(m, d->uuid, "", &path);
        if (r < 0)
                return r;
        j = job_new(m, d, done, userdata);
        if (!j)
                return -ENOMEM;
        *j = (SaveJob) { .m = m, .d = d, .fd = -1, .paused = paused, .restore = true, .managed = true,
                         .done = done, .userdata = userdata };
        snprintf(j->uuid, sizeof j->uuid, "%s", d->uuid);
        j->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (j->fd < 0) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to open the managed save '%s': %m", path);
                job_free(j);
                return r;
        }
        r = DRIVER_OP(m, domain_expect_incoming)(m->driver, d->uuid, true, reterr);
        if (r >= 0) {
                r = manager_domain_start(m, d, true, on_restore_started, j, reterr);
                if (r < 0)
                        (void) DRIVER_OP(m, domain_expect_incoming)(m->driver, d->uuid, false, NULL);
        }
        if (r < 0) {
                job_free(j);
                return r;
        }
        if (r == 0)
                return 0; /* on_restore_started goes on */
        return load_start(m, j, j->fd, reterr);
}

int manager_domain_restore(Manager *m, DomainDef *def, const DomainAccess *access, int fd, bool paused,
                           DomainJobDone done, void *userdata, VbError *reterr) {
        char uuid[37];
        Domain *d = NULL;
        SaveJob *j;
        int r;

        r = check_restore(m, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        domain_def_get_uuid_string(def, uuid);
        d = manager_domain_by_uuid(m, uuid);
        if (d && (r = busy(d, reterr)) < 0) {
                domain_def_free(def);
                return r;
        }
        r = DRIVER_OP(m, domain_expect_incoming)(m->driver, uuid, true, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        j = job_new(m, NULL, done, userdata);
        if (!j) {
                domain_def_free(def);
                (void) DRIVER_OP(m, domain_expect_incoming)(m->driver, uuid, false, NULL);
                return -ENOMEM;
        }
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->paused = paused;
        j->restore = true;
        /* The caller's descriptor, kept until the state is in (load_start takes no copy of its own). */
        j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (j->fd < 0) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to keep the saved state's descriptor: %m");
                domain_def_free(def);
                (void) DRIVER_OP(m, domain_expect_incoming)(m->driver, uuid, false, NULL);
                job_free(j);
                return r;
        }
        r = manager_domain_create_def(m, def, access, true, on_restore_started, j, &d, reterr);
        if (r < 0) {
                (void) DRIVER_OP(m, domain_expect_incoming)(m->driver, uuid, false, NULL);
                job_free(j);
                return r;
        }
        if (r == 0)
                return 0; /* on_restore_started goes on */
        j->d = d;
        d->job_busy = true;
        return load_start(m, j, j->fd, reterr);
}

int manager_domain_undefine_with(Manager *m, Domain *d, bool managed_save, bool snapshots, VbDriverDone done,
                                 void *userdata, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        bool has_save = manager_domain_has_managed_save(m, d);
        int r;

        r = busy(d, reterr);
        if (r < 0)
                return r;
        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient: it has no saved "
                                    "definition to remove", d->name);
        if (has_save && !managed_save)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' has a managed save: remove it first "
                                    "(ManagedSaveRemove) or undefine with flag 1", d->name);
        if (d->n_snapshots > 0 && !snapshots)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' has %zu snapshot(s): delete them "
                                    "first or undefine with flag 2 (their metadata goes, their data stays in the "
                                    "images)", d->name, d->n_snapshots);
        if (has_save) {
                r = save_path(m, d->uuid, "", &path);
                if (r < 0)
                        return r;
                if (unlink(path) < 0 && errno != ENOENT)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove the managed save "
                                            "'%s': %m", path);
        }
        if (snapshots)
                manager_snapshot_forget_all(m, d);
        return manager_domain_undefine_committed(m, d, done, userdata, reterr);
}
