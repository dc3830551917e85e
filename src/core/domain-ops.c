/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the Domain and Manager methods do, without D-Bus: check state, call the driver, then commit
 * (save, swap definitions) and announce. Nothing changes when a step fails. */
#include <stdio.h>

#include "conf/domain-access.h"
#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-store.h"
#include "util/durable.h"
#include "util/log.h"


static int not_running(Domain *d, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
}

static int require_running(Domain *d, VbError *reterr) {
        if (d->state == DOMAIN_RUNNING || d->state == DOMAIN_PAUSED || d->state == DOMAIN_SHUTDOWN)
                return 0;
        return not_running(d, reterr);
}

/* Another domain that has the name or UUID of def. */
typedef struct RenameCommit RenameCommit;
static const RenameCommit *rename_taking(Manager *m, const char *name, const char *uuid);
static const char *rename_from(const RenameCommit *c);

static int check_unique(Manager *m, const DomainDef *def, Domain **ret_same, VbError *reterr) {
        Domain *by_uuid = manager_domain_by_uuid(m, domain_def_uuid(def).s);
        Domain *by_name = manager_domain_by_name(m, domain_def_get_name(def));
        const RenameCommit *renaming = rename_taking(m, domain_def_get_name(def), domain_def_uuid(def).s);

        if (by_uuid && !streq(by_uuid->name, domain_def_get_name(def)))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS,
                                    "Domain '%s' already has the UUID %s", by_uuid->name, by_uuid->uuid);
        if (by_name && by_name != by_uuid)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS,
                                    "A domain named '%s' already exists (UUID %s)", by_name->name, by_name->uuid);
        /* On disk already, or about to be: two definitions of one name would both be found at start-up. */
        if (renaming)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' is being renamed to '%s'",
                                    rename_from(renaming), domain_def_get_name(def));
        *ret_same = by_uuid;
        return 0;
}

int manager_domain_define(Manager *m, const char *xml, Domain **ret, bool *ret_created, VbError *reterr) {
        DomainDef *def = NULL;
        int r;

        r = domain_def_parse_string(xml, 0, &def, reterr);
        if (r < 0)
                return r;
        return manager_domain_define_def(m, def, ret, ret_created, reterr);
}

int domain_define_check_names(Manager *m, DomainDef *def, VbError *reterr) {
        Domain *same;

        domain_def_set_id(def, -1); /* An inactive definition has no id. */
        return check_unique(m, def, &same, reterr);
}

int domain_define_check(Manager *m, DomainDef *def, VbError *reterr) {
        int r = domain_define_check_names(m, def, reterr);

        if (r >= 0)
                r = domain_caps_check_definition(m, def, reterr);
        return r;
}

int manager_domain_define_def(Manager *m, DomainDef *def, Domain **ret, bool *ret_created, VbError *reterr) {
        int r;

        /* Never waits on a client's behalf: the only caller in the service is start-up's
         * seed_default_domains(), before the bus is served, when nothing can be committing (clients'
         * DefineDomain goes through the group commit, domain-define.c); else unit tests. */
        manager_define_settle(m);

        r = domain_define_check_names(m, def, reterr);
        if (r >= 0) /* start-up: nothing else to answer meanwhile */
                r = domain_caps_check_definition_wait(m, def, reterr);
        if (r >= 0)
                r = domain_store_save(m->durable, m->domains_dir, def, NULL, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        return domain_define_apply(m, def, NULL, ret, ret_created);
}

int domain_define_apply(Manager *m, DomainDef *def, DomainAccess *access, Domain **ret, bool *ret_created) {
        static const char * const props[] = { "Persistent", "VCPUs", "MemoryKiB", "OSType", NULL };
        Domain *d = manager_domain_by_uuid(m, domain_def_uuid(def).s);
        int r;

        if (d) {
                /* A new definition for a known domain: takes effect at its next start. */
                domain_def_free(d->config);
                d->config = def;
                domain_access_done(&d->access);
                if (access) {
                        d->access = *access;
                        *access = (DomainAccess) {};
                }
                domain_emit_changed(d, props);
                log_info("Domain '%s' redefined.", d->name);
                *ret_created = false;
        } else {
                r = domain_new(m, def, &d);
                if (r < 0) {
                        (void) domain_store_remove(m->durable, m->domains_dir, domain_def_uuid(def).s, NULL);
                        domain_def_free(def);
                        if (access)
                                domain_access_done(access);
                        return r;
                }
                if (access) {
                        d->access = *access;
                        *access = (DomainAccess) {};
                }
                r = manager_add_domain(m, d);
                if (r < 0) {
                        (void) domain_store_remove(m->durable, m->domains_dir, d->uuid, NULL);
                        domain_free(d);
                        return r;
                }
                log_info("Domain '%s' defined.", d->name);
                *ret_created = true;
        }
        *ret = d;
        return 0;
}

/* A lifecycle operation the driver carries out without waiting (driver.h): one per domain at a time. */
struct DomainOp {
        Manager *m;
        Domain *d; /* NULL once the domain went away */
        const char *what;
        DomainWaitDone done; /* may be NULL: the outcome is only logged */
        void *userdata;
        bool create;         /* CreateDomain: d joins the registry when it runs */
        DomainState required, result; /* the simple ops */
};

int domain_check_idle(Domain *d, VbError *reterr) {
        if (!d->op)
                return 0;
        return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                            "Domain '%s' is busy %s; try again when that has finished", d->name, d->op->what);
}

static int op_new(Manager *m, Domain *d, const char *what, DomainWaitDone done, void *userdata, DomainOp **ret) {
        DomainOp *op = new0(DomainOp, 1);

        if (!op)
                return -ENOMEM;
        *op = (DomainOp) { .m = m, .d = d, .what = what, .done = done, .userdata = userdata };
        d->op = op;
        *ret = op;
        return 0;
}

/* The operation ends: the caller hears of it, the domain takes the next one. */
static void op_finish(DomainOp *op, int r, const VbError *e) {
        Domain *d = op->d;

        if (d && d->op == op)
                d->op = NULL;
        if (r < 0 && !op->done)
                log_warning("Failed %s domain '%s': %s", op->what, d ? d->name : "(gone)",
                            e && e->message ? e->message : strerror(-r));
        if (op->done)
                op->done(d, r, e, op->userdata);
        /* The calls kept while it was in flight (domain-queue.c). */
        domain_queue_kick(op->m);
        free(op);
}

const char *domain_op_what(const DomainOp *op) {
        return op->what;
}

int domain_op_hold(Manager *m, Domain *d, const char *what, DomainOp **ret) {
        return op_new(m, d, what, NULL, NULL, ret);
}

Domain *domain_op_release(DomainOp *op) {
        Domain *d;

        if (!op)
                return NULL;
        d = op->d;
        if (d && d->op == op)
                d->op = NULL;
        domain_queue_kick(op->m);
        free(op);
        return d;
}

void domain_op_detach(Domain *d) {
        if (d->op) {
                d->op->d = NULL;
                /* The calls kept behind it hear that the domain went away (on the next turn of the loop). */
                domain_queue_kick(d->op->m);
        }
        d->op = NULL;
}

/* The start succeeded (now or later): the domain runs. */
static void start_commit(Domain *d, VbDriverDomainInfo *info) {
        static const char * const props[] = { DOMAIN_STATE_PROPERTIES, "VCPUs", "MemoryKiB", NULL };

        domain_def_free(d->live);
        d->live = TAKE_PTR(info->live);
        d->state = info->state;
        d->id = info->id;
        domain_emit_changed(d, props);
        log_info("Domain '%s' started (id %u).", d->name, d->id);
}

/* What start_def took for the domain goes back. */
static void start_release(Manager *m, const char *uuid, const char *name) {
        manager_domain_networks_release(m, uuid);
        hostdev_release_domain(m, uuid, name);
}

/* A CreateDomain whose start failed: the shell goes, the caller hears why. */
static void create_failed(DomainOp *op, Domain *d, int r, const VbError *e) {
        d->op = NULL;
        op->d = NULL;
        op_finish(op, r, e);
        domain_free(d);
}

static void on_start_done(int r, const VbError *e, VbDriverDomainInfo *info, void *userdata) {
        DomainOp *op = userdata;
        Domain *d = op->d;
        VbError e2 = VB_ERROR_NULL;

        if (!d) {
                /* Gone meanwhile (the service is stopping): what runs stays for the next start-up. */
                if (info)
                        vb_driver_domain_info_done(info);
                op_finish(op, r < 0 ? r : -ESRCH, e);
                return;
        }
        if (r < 0) {
                start_release(op->m, d->uuid, d->name);
                if (op->create)
                        create_failed(op, d, r, e);
                else
                        op_finish(op, r, e);
                return;
        }
        start_commit(d, info);
        vb_driver_domain_info_done(info);
        if (op->create) {
                r = manager_add_domain(op->m, d);
                if (r < 0) {
                        (void) DRIVER_OP(op->m, domain_destroy)(op->m->driver, d->uuid, NULL, NULL, NULL);
                        start_release(op->m, d->uuid, d->name);
                        r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Failed to add domain '%s': %s", d->name,
                                         strerror(-r));
                        create_failed(op, d, r, &e2);
                        vb_error_free(&e2);
                        return;
                }
        }
        op_finish(op, 0, NULL);
}

/* Starts d with def. Returns 1 when it runs now, 0 when done(d) follows, < 0 on failure (nothing taken). */
static int start_def(Manager *m, Domain *d, const DomainDef *def, bool paused, bool create, DomainWaitDone done,
                     void *userdata, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *with_networks = NULL, *with_volumes = NULL;
        VbDriverDomainInfo info = {};
        DomainOp *op = NULL;
        int r;

        if (!DRIVER_OP(m, domain_start))
                return vb_driver_not_supported(m->driver, "starting domains", reterr);
        /* <disk type='volume'>: the volume's file (storage-manager.c), opened as the domain's access record
         * says (a volume granted at Define: by the service). */
        r = manager_domain_volumes_resolve(m, def, (uid_t) d->access.owner, &with_volumes, reterr);
        if (r < 0)
                return r;
        if (with_volumes)
                def = with_volumes;
        /* <interface type='network'>: connected to their networks (network-manager.c), which says what
         * each actually uses in the definition the driver gets (a VF of a hostdev network becomes an
         * <interface type='hostdev'>, prepared below like the others). */
        r = manager_domain_networks_acquire(m, d->uuid, def, &with_networks, reterr);
        if (r < 0)
                return r;
        /* Host devices first (nodedev.h): the guest must find them ready; given back if it doesn't start. */
        r = hostdev_prepare_domain(m, d->uuid, d->name, with_networks ?: def, reterr);
        if (r < 0) {
                manager_domain_networks_release(m, d->uuid);
                return r;
        }
        r = op_new(m, d, "starting", done, userdata, &op);
        if (r < 0) {
                start_release(m, d->uuid, d->name);
                return r;
        }
        op->create = create;
        r = DRIVER_OP(m, domain_start)(m->driver, with_networks ?: def, &d->access, paused, on_start_done, op, &info,
                                       reterr);
        if (r == 0)
                return 0; /* on_start_done follows */
        d->op = NULL;
        free(op);
        if (r < 0) {
                start_release(m, d->uuid, d->name);
                return r;
        }
        start_commit(d, &info);
        vb_driver_domain_info_done(&info);
        return 1;
}

int manager_domain_create(Manager *m, const char *xml, bool paused, Domain **ret, VbError *reterr) {
        DomainDef *def = NULL;
        int r;

        r = domain_def_parse_string(xml, 0, &def, reterr);
        if (r < 0)
                return r;
        return manager_domain_create_def(m, def, NULL, paused, NULL, NULL, ret, reterr);
}

/* CreateDomain of a domain that is defined already: a transient start with this definition, whose paths
 * open with the rights of whoever created it this time (as libvirt does). */
static int create_defined(Manager *m, Domain *same, DomainDef *def, const DomainAccess *access, bool paused,
                          DomainWaitDone done, void *userdata, Domain **ret, VbError *reterr) {
        DomainAccess keep = {}, saved;
        int r;

        r = domain_check_idle(same, reterr);
        if (r >= 0 && domain_is_active(same))
                r = vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' is already running", same->name);
        if (r >= 0)
                r = domain_access_copy(access ?: &(const DomainAccess) {}, &keep);
        if (r >= 0) {
                saved = same->access;
                same->access = keep;
                r = start_def(m, same, def, paused, false, done, userdata, reterr);
                same->access = saved;
                domain_access_done(&keep);
        }
        domain_def_free(def);
        if (r >= 0)
                *ret = same;
        return r;
}

/* CreateDomain (also RestoreDomain's and PrepareMigration's start) kept while the store commits
 * definitions (domain-queue.c): the names it checks must be the registry's final ones. */
typedef struct CreateArgs {
        DomainDef *def;
        DomainAccess access;
        bool paused, has_access;
        DomainWaitDone done;
        void *userdata;
} CreateArgs;

static void create_args_free(void *p) {
        CreateArgs *a = p;

        domain_def_free(a->def);
        domain_access_done(&a->access);
        free(a);
}

static int create_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        CreateArgs *a = p;

        return manager_domain_create_def(m, TAKE_PTR(a->def), a->has_access ? &a->access : NULL, a->paused, a->done,
                                         a->userdata, ret, reterr);
}

static void create_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        CreateArgs *a = p;

        if (a->done)
                a->done(r < 0 ? NULL : d, r, e, a->userdata);
}

static const QueuedCallType create_type = {
        .what = "creating a domain",
        .run = create_run,
        .answer = create_answer,
        .free = create_args_free,
};

static int create_queue(Manager *m, DomainDef *def, const DomainAccess *access, bool paused, DomainWaitDone done,
                        void *userdata, VbError *reterr) {
        CreateArgs *a = new0(CreateArgs, 1);
        int r = 0;

        if (!a) {
                domain_def_free(def);
                return -ENOMEM;
        }
        *a = (CreateArgs) { .def = def, .paused = paused, .has_access = access, .done = done, .userdata = userdata };
        if (access)
                r = domain_access_copy(access, &a->access);
        if (r >= 0)
                r = domain_queue_add(m, NULL, true, &create_type, a, reterr);
        if (r < 0)
                create_args_free(a);
        return r < 0 ? r : 0;
}

int manager_domain_create_def(Manager *m, DomainDef *def, const DomainAccess *access, bool paused,
                              DomainWaitDone done, void *userdata, Domain **ret, VbError *reterr) {
        Domain *d = NULL, *same = NULL;
        int r;

        /* Kept while the store commits, or while the capabilities it is checked against are probed. */
        if (domain_queue_wanted(m, NULL, true) || domain_caps_pending(m, def)) {
                *ret = NULL;
                return create_queue(m, def, access, paused, done, userdata, reterr);
        }

        r = check_unique(m, def, &same, reterr);
        if (r >= 0)
                r = domain_caps_check_definition(m, def, reterr);
        if (r >= 0 && same)
                return create_defined(m, same, def, access, paused, done, userdata, ret, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }

        r = domain_new_shell(m, def, &d);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        if (access && domain_access_copy(access, &d->access) < 0) {
                domain_def_free(def);
                domain_free(d);
                return -ENOMEM;
        }
        r = start_def(m, d, def, paused, true, done, userdata, reterr);
        domain_def_free(def);
        if (r < 0) {
                domain_free(d);
                return r;
        }
        if (r == 0) {
                *ret = NULL; /* done(d) follows, once d is in the registry */
                return 0;
        }
        r = manager_add_domain(m, d);
        if (r < 0) {
                (void) DRIVER_OP(m, domain_destroy)(m->driver, d->uuid, NULL, NULL, NULL);
                start_release(m, d->uuid, d->name);
                domain_free(d);
                return r;
        }
        *ret = d;
        return 1;
}

int manager_domain_start(Manager *m, Domain *d, bool paused, DomainWaitDone done, void *userdata, VbError *reterr) {
        int r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        if (domain_is_active(d) && d->state != DOMAIN_CRASHED)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is already running", d->name);
        if (!d->config)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient", d->name);
        return start_def(m, d, d->config, paused, false, done, userdata, reterr);
}

/* A Start kept while the capabilities are probed (the qemu driver expands <cpu mode='host-model'> from
 * them). */
typedef struct StartArgs {
        bool paused;
        DomainWaitDone done;
        void *userdata;
} StartArgs;

static int start_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        StartArgs *a = p;

        return manager_domain_start_when_ready(m, d, a->paused, a->done, a->userdata, reterr);
}

static void start_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        StartArgs *a = p;

        if (a->done)
                a->done(d, r, e, a->userdata);
        else if (r < 0)
                log_warning("Failed to start domain '%s': %s", d ? d->name : "?",
                            e && e->message ? e->message : strerror(-r));
}

static const QueuedCallType start_type = {
        .what = "starting a domain",
        .run = start_run,
        .answer = start_answer,
        .free = free,
};

int manager_domain_start_when_ready(Manager *m, Domain *d, bool paused, DomainWaitDone done, void *userdata,
                                    VbError *reterr) {
        /* Kept as a change is (the store counts as busy while core waits for a probe); run again from the
         * queue, it is kept anew only if another probe started meanwhile. */
        int r = domain_queue_keep_if_probing(m, d, domain_is_active(d) ? NULL : d->config, false, &start_type,
                                             &(StartArgs) { .paused = paused, .done = done, .userdata = userdata },
                                             sizeof(StartArgs), reterr);
        if (r <= 0)
                return r;
        return manager_domain_start(m, d, paused, done, userdata, reterr);
}

/* Destroy's checks: 1 when there is nothing for the driver to do (done now), 0 to go on. */
static int destroy_check(Manager *m, Domain *d, VbError *reterr) {
        int r;

        /* Destroy ends whatever the hypervisor is asked meanwhile (its caller hears so), but a start is
         * left to finish: what it took is given back by the start itself; and one Destroy is enough. */
        if (d->op && (streq(d->op->what, "starting") || streq(d->op->what, "being destroyed"))) {
                r = domain_check_idle(d, reterr);
                if (r < 0)
                        return r;
        }
        if (d->state == DOMAIN_CRASHED) {
                domain_stopped(d, DOMAIN_STOP_DESTROYED);
                return 1;
        }
        r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (!DRIVER_OP(m, domain_destroy))
                return vb_driver_not_supported(m->driver, "destroying domains", reterr);
        return 0;
}

static void destroy_commit(Domain *d) {
        log_info("Domain '%s' destroyed.", d->name);
        domain_stopped(d, DOMAIN_STOP_DESTROYED);
}

int manager_domain_destroy(Manager *m, Domain *d, VbError *reterr) {
        int r;

        r = destroy_check(m, d, reterr);
        if (r != 0)
                return r < 0 ? r : 0;
        r = DRIVER_OP(m, domain_destroy)(m->driver, d->uuid, NULL, NULL, reterr);
        if (r < 0)
                return r;
        destroy_commit(d);
        return 0;
}

static void on_destroyed(int r, const VbError *e, void *userdata) {
        DomainOp *op = userdata;

        if (r >= 0 && op->d)
                destroy_commit(op->d); /* may free the domain (transient): op->d is NULL then */
        op_finish(op, r, e);
}

int manager_domain_destroy_async(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        DomainOp *op = NULL;
        int r;

        r = destroy_check(m, d, reterr);
        if (r != 0)
                return r;
        /* Held from now on ("busy being destroyed"); an operation in flight ends with the hypervisor. */
        r = op_new(m, d, "being destroyed", done, userdata, &op);
        if (r < 0)
                return r;
        r = DRIVER_OP(m, domain_destroy)(m->driver, d->uuid, on_destroyed, op, reterr);
        if (r == 0)
                return 0;
        if (d->op == op)
                d->op = NULL;
        free(op);
        if (r < 0)
                return r;
        destroy_commit(d);
        return 1;
}

/* Lifecycle requests that only need the domain in one of the given states; the driver reports the
 * resulting state through its events or we set it here. */
typedef int (*DriverDomainOp)(VbDriver *drv, const char *uuid, VbDriverOpDone done, void *userdata, VbError *reterr);

static void simple_commit(Domain *d, DomainState required, DomainState result) {
        /* The driver may already have told us (e.g. a reboot that stops the domain). */
        if (domain_is_active(d) && d->state == required && result != required)
                domain_set_state(d, result, d->id);
}

static void on_simple_done(int r, const VbError *e, void *userdata) {
        DomainOp *op = userdata;

        if (r >= 0 && op->d)
                simple_commit(op->d, op->required, op->result);
        op_finish(op, r, e);
}

/* Returns 1 when done now, 0 when done(d) follows, < 0 on failure. required _DOMAIN_STATE_INVALID: any
 * running state. */
static int simple_op(Manager *m, Domain *d, DriverDomainOp op, const char *what, const char *doing,
                     DomainState required, DomainState result, DomainWaitDone done, void *userdata,
                     VbError *reterr) {
        DomainOp *o = NULL;
        int r;

        if (!op)
                return vb_driver_not_supported(m->driver, what, reterr);
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        if (required == _DOMAIN_STATE_INVALID)
                r = require_running(d, reterr);
        else if (d->state != required) {
                if (!domain_is_active(d) || d->state == DOMAIN_CRASHED)
                        return not_running(d, reterr);
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is %s; %s needs it %s",
                                    d->name, domain_state_to_string(d->state), what,
                                    domain_state_to_string(required));
        }
        if (r < 0)
                return r;
        r = op_new(m, d, doing, done, userdata, &o);
        if (r < 0)
                return r;
        o->required = required;
        o->result = result;
        r = op(m->driver, d->uuid, on_simple_done, o, reterr);
        if (r == 0)
                return 0;
        d->op = NULL;
        free(o);
        if (r < 0)
                return r;
        simple_commit(d, required, result);
        return 1;
}

int manager_domain_shutdown(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        if (d->state == DOMAIN_SHUTDOWN && !d->op)
                return 1; /* Already asked; the caller waits like the first one. */
        return simple_op(m, d, DRIVER_OP(m, domain_shutdown), "shutting down", "shutting down", DOMAIN_RUNNING,
                         DOMAIN_SHUTDOWN, done, userdata, reterr);
}

int manager_domain_reboot(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        return simple_op(m, d, DRIVER_OP(m, domain_reboot), "rebooting", "rebooting", DOMAIN_RUNNING, DOMAIN_RUNNING,
                         done, userdata, reterr);
}

int manager_domain_reset(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        return simple_op(m, d, DRIVER_OP(m, domain_reset), "resetting domains", "resetting", _DOMAIN_STATE_INVALID,
                         _DOMAIN_STATE_INVALID, done, userdata, reterr);
}

int manager_domain_suspend(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        return simple_op(m, d, DRIVER_OP(m, domain_suspend), "suspending", "suspending", DOMAIN_RUNNING,
                         DOMAIN_PAUSED, done, userdata, reterr);
}

int manager_domain_resume(Manager *m, Domain *d, DomainWaitDone done, void *userdata, VbError *reterr) {
        return simple_op(m, d, DRIVER_OP(m, domain_resume), "resuming", "resuming", DOMAIN_PAUSED, DOMAIN_RUNNING,
                         done, userdata, reterr);
}

static int undefine_check(Domain *d, VbError *reterr) {
        int r = domain_check_idle(d, reterr);

        if (r < 0)
                return r;
        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient: it has no saved "
                                    "definition to remove", d->name);
        if (d->n_snapshots > 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' has %zu snapshot(s): delete them "
                                    "first", d->name, d->n_snapshots);
        return 0;
}

/* The saved definition is gone: the registry follows. */
static void undefine_apply(Manager *m, Domain *d) {
        static const char * const props[] = { "Persistent", "Autostart", NULL };

        log_info("Domain '%s' undefined.", d->name);
        if (!domain_is_active(d) && d->config && DRIVER_OP(m, domain_undefined))
                DRIVER_OP(m, domain_undefined)(m->driver, d->config);
        if (domain_is_active(d) && d->state != DOMAIN_CRASHED) {
                /* It keeps running, as a transient domain. */
                d->config = domain_def_free(d->config);
                d->autostart = false;
                domain_emit_changed(d, props);
                return;
        }
        manager_remove_domain(m, d);
}

int manager_domain_undefine(Manager *m, Domain *d, VbError *reterr) {
        int r;

        /* Clients' Undefine (and FinishMigration's) go through manager_domain_undefine_committed; this
         * waits for unit tests and the fuzzer only. */
        manager_define_settle(m);

        r = undefine_check(d, reterr);
        if (r >= 0)
                r = domain_store_remove(m->durable, m->domains_dir, d->uuid, reterr);
        if (r < 0)
                return r;
        undefine_apply(m, d);
        return 0;
}

typedef struct UndefineCommit {
        Manager *m;
        char uuid[37];
        VbDriverDone done;
        void *userdata;
} UndefineCommit;

static void on_undefine_committed(int r, const char *path, void *userdata) {
        UndefineCommit *c = userdata;
        Manager *m = c->m;
        Domain *d = manager_domain_by_uuid(m, c->uuid);
        VbError e = VB_ERROR_NULL;

        if (r < 0)
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %s; domain %s stays defined",
                             strna(path), strerror(-r), c->uuid);
        else if (d && domain_is_persistent(d))
                undefine_apply(m, d);
        c->done(r, &e, c->userdata);
        vb_error_free(&e);
        free(c);
        manager_store_job_end(m);
}

int manager_domain_undefine_committed(Manager *m, Domain *d, VbDriverDone done, void *userdata, VbError *reterr) {
        UndefineCommit *c;
        uint64_t since;
        int r;

        r = undefine_check(d, reterr);
        if (r < 0)
                return r;
        c = new0(UndefineCommit, 1);
        if (!c)
                return -ENOMEM;
        *c = (UndefineCommit) { .m = m, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", d->uuid);
        since = durable_seq(m->durable);
        r = domain_store_remove(m->durable, m->domains_dir, d->uuid, reterr);
        if (r >= 0)
                r = durable_wait(m->durable, since, on_undefine_committed, c);
        if (r != 0)
                free(c);
        if (r < 0)
                return r;
        if (r > 0) { /* nothing to wait for (no store thread): gone from disk already */
                undefine_apply(m, d);
                return 1;
        }
        /* Gone from the bus once gone from disk: calls that change the store wait meanwhile. */
        manager_store_job_begin(m);
        return 0;
}

/* Rename's checks and its new definition (*ret NULL: the name is the same, nothing to do). */
static int rename_prepare(Manager *m, Domain *d, const char *name, DomainDef **ret, VbError *reterr) {
        DomainDef *def = NULL;
        int r;

        *ret = NULL;
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient and cannot be "
                                    "renamed", d->name);
        if (domain_is_active(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' must be shut off to be renamed",
                                    d->name);
        if (streq(name, d->name))
                return 0;
        if (manager_domain_by_name(m, name))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "A domain named '%s' already exists", name);
        /* A definition of that name being saved, or another domain being renamed to it, would leave two
         * definitions of one name on disk. */
        if (manager_define_pending_name(m, name, d->uuid))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "A domain named '%s' is being defined", name);
        if (rename_taking(m, name, d->uuid))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Another domain is being renamed to '%s'", name);

        r = domain_def_copy(d->config, &def);
        if (r < 0)
                return r;
        r = domain_def_set_name(def, name, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        *ret = def;
        return 0;
}

/* Publishes the renamed definition (taken). */
static int rename_apply(Manager *m, Domain *d, DomainDef *def) {
        static const char * const props[] = { "Name", NULL };
        const char *name = domain_def_get_name(def);
        int r;

        log_info("Domain '%s' renamed to '%s'.", d->name, name);
        domain_def_free(d->config);
        d->config = def;
        r = manager_rename_domain(m, d, name);
        if (r < 0)
                return r;
        domain_emit_changed(d, props);
        return 0;
}

int manager_domain_rename(Manager *m, Domain *d, const char *name, VbError *reterr) {
        DomainDef *def = NULL;
        int r;

        /* Clients' Rename goes through manager_domain_rename_committed; this waits for unit tests only. */
        manager_define_settle(m);

        r = rename_prepare(m, d, name, &def, reterr);
        if (r < 0 || !def)
                return r;
        r = domain_store_save(m->durable, m->domains_dir, def, &d->access, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        return rename_apply(m, d, def);
}

struct RenameCommit {
        RenameCommit *next; /* in m->renames */
        Manager *m;
        char uuid[37];
        char *from;   /* the old name */
        DomainDef *def;
        VbDriverDone done;
        void *userdata;
};

/* The Rename being committed that gives name to a domain other than uuid's, if any. */
static const RenameCommit *rename_taking(Manager *m, const char *name, const char *uuid) {
        for (const RenameCommit *c = m->renames; c; c = c->next)
                if (streq(domain_def_get_name(c->def), name) && !streq(c->uuid, uuid))
                        return c;
        return NULL;
}

static const char *rename_from(const RenameCommit *c) {
        return c->from;
}

static void rename_unlink(RenameCommit *c) {
        for (RenameCommit **p = &c->m->renames; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        return;
                }
}

static void on_rename_committed(int r, const char *path, void *userdata) {
        RenameCommit *c = userdata;
        Manager *m = c->m;
        Domain *d = manager_domain_by_uuid(m, c->uuid);
        VbError e = VB_ERROR_NULL;
        const char *name = domain_def_get_name(c->def);

        rename_unlink(c); /* on disk (or not): the registry says from here on */

        if (r < 0)
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to save '%s' (domain renamed to '%s'): %s; the "
                             "name is unchanged", strna(path), name, strerror(-r));
        else if (!d)
                r = vb_error_set(&e, VB_ERROR_NO_SUCH_DOMAIN, "Domain %s went away while it was renamed", c->uuid);
        else if (manager_domain_by_name(m, name)) /* not expected: the store was busy meanwhile */
                r = vb_error_set(&e, VB_ERROR_ALREADY_EXISTS, "A domain named '%s' appeared while domain '%s' was "
                                 "renamed to it", name, d->name);
        else
                r = rename_apply(m, d, TAKE_PTR(c->def));
        domain_def_free(c->def);
        c->done(r, &e, c->userdata);
        vb_error_free(&e);
        free(c->from);
        free(c);
        manager_store_job_end(m);
}

int manager_domain_rename_committed(Manager *m, Domain *d, const char *name, VbDriverDone done, void *userdata,
                                    VbError *reterr) {
        RenameCommit *c;
        DomainDef *def = NULL;
        uint64_t since;
        int r;

        r = rename_prepare(m, d, name, &def, reterr);
        if (r < 0 || !def)
                return r < 0 ? r : 1;
        c = new0(RenameCommit, 1);
        if (!c) {
                domain_def_free(def);
                return -ENOMEM;
        }
        *c = (RenameCommit) { .m = m, .from = strdup(d->name), .def = def, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", d->uuid);
        if (!c->from) {
                domain_def_free(def);
                free(c);
                return -ENOMEM;
        }
        since = durable_seq(m->durable);
        r = domain_store_save(m->durable, m->domains_dir, def, &d->access, reterr);
        if (r >= 0)
                r = durable_wait(m->durable, since, on_rename_committed, c);
        if (r < 0) {
                domain_def_free(c->def);
                free(c->from);
                free(c);
                return r;
        }
        if (r > 0) { /* nothing to wait for (no store thread): on disk already */
                free(c->from);
                free(c);
                r = rename_apply(m, d, def);
                return r < 0 ? r : 1;
        }
        /* Published once on disk: calls that change the store wait meanwhile (domain-queue.c), and the new
         * name is taken from now on (check_unique). */
        c->next = m->renames;
        m->renames = c;
        manager_store_job_begin(m);
        return 0;
}

int manager_domain_set_autostart(Manager *m, Domain *d, bool autostart, VbError *reterr) {
        static const char * const props[] = { "Autostart", NULL };
        int r;

        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient and cannot be "
                                    "started automatically", d->name);
        /* Start-up only (seed_default_domains, before the bus is served): clients' Autostart goes
         * through manager_domain_set_autostart_async. */
        manager_define_settle(m);
        if (d->autostart == autostart)
                return 0;
        r = domain_store_set_autostart(m->durable, m->domains_dir, d->uuid, autostart, reterr);
        if (r < 0)
                return r;
        d->autostart = autostart;
        domain_emit_changed(d, props);
        return 0;
}

int manager_domain_get_xml(Manager *m, Domain *d, unsigned flags, char **ret, VbError *reterr) {
        const DomainDef *def;
        unsigned fflags = 0;
        int r;

        def = (flags & DOMAIN_XML_INACTIVE) && d->config ? d->config : domain_current_def(d);
        if (flags & DOMAIN_XML_SECURE)
                fflags |= DOMAIN_FORMAT_SECURE;
        /* Published definitions never change: the last answer stays right until another definition
         * takes its place. */
        if (!d->xml_cache || d->xml_cache_serial != domain_def_serial(def) || d->xml_cache_flags != fflags) {
                char *xml = NULL;

                r = domain_def_format(def, fflags, &xml);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format domain '%s': %s",
                                            d->name, strerror(-r));
                free(d->xml_cache);
                d->xml_cache = xml;
                d->xml_cache_serial = domain_def_serial(def);
                d->xml_cache_flags = fflags;
        }
        *ret = strdup(d->xml_cache);
        return *ret ? 0 : -ENOMEM;
}
