/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between the files of src/core; not for other layers. */
#include "core/domain.h"
#include "core/manager.h"

/* A backend operation (NULL when the backend has none). */
#define DRIVER_OP(m, op) ((m)->driver->ops->op)

/* A domain with name and UUID of def but no definition yet. */
int domain_new_shell(Manager *m, const DomainDef *def, Domain **ret);
int domain_new(Manager *m, DomainDef *config, Domain **ret);
int domain_new_transient(Manager *m, DomainDef *live, Domain **ret);
Domain *domain_free(Domain *d);

void domain_set_state(Domain *d, DomainState state, unsigned id);
/* InvalidState naming the lifecycle operation in flight on d (domain-ops.c), if any. */
int domain_check_idle(Domain *d, VbError *reterr);
/* Another module's operation that waits for the driver (hot-plug, the balloon) holds d as a lifecycle
 * one does: domain_check_idle answers busy what (a static string: "attaching a device") meanwhile. */
int domain_op_hold(Manager *m, Domain *d, const char *what, DomainOp **ret);
/* Ends it: the domain, or NULL when it went away meanwhile. The calls kept in core for the domain
 * (domain-queue.c) run next. */
Domain *domain_op_release(DomainOp *op);
/* Whether a DefineDomain waiting for the group commit, or in it, gives name to a domain other than uuid's
 * (domain-define.c): a Rename to that name is refused meanwhile. */
bool manager_define_pending_name(Manager *m, const char *name, const char *uuid);
/* What the operation is doing ("suspending"). */
const char *domain_op_what(const DomainOp *op);
/* d goes away: its operation in flight, if any, will find it gone. */
void domain_op_detach(Domain *d);
void domain_stopped(Domain *d, DomainStopReason reason);
void domain_emit_changed(Domain *d, const char * const *properties);
/* domain-device.c: ends the pending device removals of a domain that stopped or goes away. */
void domain_fail_device_removals(Domain *d, VbErrorCode code, const char *why);
/* domain-device.c: the driver's device events (VbDriverEvents, userdata = the Manager). */
#define DOMAIN_DEVICE_REMOVAL_TIMEOUT_USEC (10ULL * 1000ULL * 1000ULL)
void manager_on_driver_device_removed(void *userdata, const char *uuid, const char *alias);
void manager_on_driver_device_changed(void *userdata, const char *uuid, const char *alias, bool added);
void manager_on_driver_device_removal_failed(void *userdata, const char *uuid, const char *alias, const char *reason);
void manager_on_driver_agent_changed(void *userdata, const char *uuid, bool connected);
/* snapshot.c: the progress of a snapshot job the backend runs, as the domain's Progress signal. */
void manager_on_driver_snapshot_progress(void *userdata, const char *uuid, uint64_t done, uint64_t total);

/* DefineDomain in steps: check (names, UUID), then, once the definition is saved, apply it to the
 * registry (takes def). */
int domain_define_check(Manager *m, DomainDef *def, VbError *reterr);
/* The names and UUID part of it alone. */
int domain_define_check_names(Manager *m, DomainDef *def, VbError *reterr);
/* Publishes def (taken) as the saved definition, with access (its contents taken; NULL: root's). */
int domain_define_apply(Manager *m, DomainDef *def, DomainAccess *access, Domain **ret, bool *ret_created);

/* The probe core waited for ended: the definitions and calls kept for it run (domain-define.c). */
void manager_on_caps_ready(Manager *m);
/* Answers the DefineDomain calls still waiting for the capabilities: the service stops. */
void manager_cancel_caps_defines(Manager *m);
/* Saves pending DefineDomain calls now, waiting for them (domain-define.c). */
void manager_commit_defines(Manager *m);
/* Waits for the batch of definitions being committed, if any, and publishes it: the synchronous changes
 * to a domain or to the names call this first, so that registry and files change in the same order. It
 * blocks the loop: clients' calls reach them through domain-queue.c only when the store is idle. */
void manager_define_settle(Manager *m);
/* Definitions or Autostart changes are being committed in the store thread, or definitions wait for the
 * hypervisor's capabilities (being probed): a change of a domain's definition or of the names (undefine,
 * rename, a device or tuning saved, CreateDomain) waits for them (domain-queue.c keeps the call
 * meanwhile). */
bool manager_store_busy(const Manager *m);
/* Another change in flight in the store thread, whose publication waits for it: manager_store_busy() meanwhile. */
void manager_store_job_begin(Manager *m);
void manager_store_job_end(Manager *m);
/* Rename whose new name shows only once its definition is on disk: 1 done now, 0 done(r, e, userdata)
 * follows (OperationFailed naming the file, the name unchanged, when it could not be saved); < 0. */
int manager_domain_rename_committed(Manager *m, Domain *d, const char *name, VbDriverDone done, void *userdata,
                                    VbError *reterr);
/* Undefine whose object goes (or turns transient) only once the definition is gone from disk: as above. */
int manager_domain_undefine_committed(Manager *m, Domain *d, VbDriverDone done, void *userdata, VbError *reterr);
/* Starts the store thread (the group commit's, also Autostart's) if it is not running. */
int manager_store_worker(Manager *m);

int manager_add_domain(Manager *m, Domain *d);
void manager_remove_domain(Manager *m, Domain *d);
int manager_rename_domain(Manager *m, Domain *d, const char *name);
