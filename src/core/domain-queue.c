/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Calls that wait in core. A call that changes a domain's definition cannot run while the store thread
 * commits definitions (the registry and the files must change in the same order), a call to a running
 * domain cannot reach its QEMU while virtbusd is still connecting to it after a restart, and a call to a
 * domain with an operation in flight (a Suspend with QEMU, a hot-plug, a balloon change) cannot run
 * before that operation ends. Such a call,
 * authorized and parsed already, is kept here with its arguments and run once nothing holds it up: in
 * arrival order per domain (a later call to the same domain never overtakes an earlier one), the calls on
 * the manager (CreateDomain, RestoreDomain, PrepareMigration) in their own order. A call that checks a
 * definition against the hypervisor's capabilities while the driver probes them (domain_caps_pending)
 * waits as for the store. The event loop never waits. Bounded: at most QUEUE_MAX_DOMAIN calls per domain
 * and QUEUE_MAX in all (more: LimitsExceeded), and none waits longer than the queue's timeout (Timeout,
 * with what it waited for). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-save.h"
#include "util/log.h"

#define QUEUE_MAX 1024
#define QUEUE_MAX_DOMAIN 64
#define QUEUE_TIMEOUT_USEC_DEFAULT (30ULL * 1000ULL * 1000ULL)

struct QueuedCall {
        QueuedCall *next;
        char uuid[37];  /* "": a call on the manager */
        bool store;     /* waits for the store thread too */
        uint64_t deadline;
        const QueuedCallType *type;
        void *args;
};

/* How long a call may wait: $VIRTBUS_QUEUE_TIMEOUT_MS (for tests), else 30 s. */
static uint64_t queue_timeout_usec(void) {
        return env_msec_as_usec("VIRTBUS_QUEUE_TIMEOUT_MS", QUEUE_TIMEOUT_USEC_DEFAULT);
}

static bool domain_ready(Manager *m, const Domain *d, bool store) {
        return !(store && manager_store_busy(m)) && !(d && (d->connecting || d->op));
}

/* Another call to the same domain (or on the manager) waits ahead of c (NULL: at all). */
static bool waits_ahead(Manager *m, const char *uuid, const QueuedCall *c) {
        for (QueuedCall *i = m->queue; i && i != c; i = i->next)
                if (streq(i->uuid, uuid))
                        return true;
        return false;
}

bool domain_queue_wanted(Manager *m, Domain *d, bool store) {
        if (m->queue_bypass)
                return false; /* the call is being run from the queue (or by one run from it) */
        return !domain_ready(m, d, store) || waits_ahead(m, d ? d->uuid : "", NULL);
}

bool domain_queue_wanted_connected(Manager *m, Domain *d) {
        return !m->queue_bypass && d->connecting;
}

static void queue_unlink(Manager *m, QueuedCall *c) {
        for (QueuedCall **p = &m->queue; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        m->n_queued--;
                        return;
                }
}

static void call_free(QueuedCall *c) {
        c->type->free(c->args);
        free(c);
}

static void call_fail(Manager *m, QueuedCall *c, Domain *d, int r, const VbError *e) {
        c->type->answer(m, d, c->args, r, e);
        call_free(c);
}

static void call_run(Manager *m, QueuedCall *c, Domain *d) {
        VbError e = VB_ERROR_NULL;
        Domain *out = d;
        int r;

        m->queue_bypass = true;
        r = c->type->run(m, d, c->args, &out, &e);
        m->queue_bypass = false;
        if (r != 0) /* answered now: else the operation answers itself */
                c->type->answer(m, out, c->args, r < 0 ? r : 0, &e);
        vb_error_free(&e);
        call_free(c);
}

static int on_queue_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_queue_defer(sd_event_source *s, void *userdata);

static void arm_timer(Manager *m) {
        uint64_t first = UINT64_MAX;
        int r;

        for (QueuedCall *c = m->queue; c; c = c->next)
                if (c->deadline < first)
                        first = c->deadline;
        if (first == UINT64_MAX) {
                if (m->queue_timer)
                        (void) sd_event_source_set_enabled(m->queue_timer, SD_EVENT_OFF);
                return;
        }
        if (!m->queue_timer) {
                r = sd_event_add_time(m->event, &m->queue_timer, CLOCK_MONOTONIC, first, 0, on_queue_timer, m);
                if (r < 0)
                        log_warning_errno(r, "Failed to bound the wait of queued calls: %m");
                return;
        }
        (void) sd_event_source_set_time(m->queue_timer, first);
        (void) sd_event_source_set_enabled(m->queue_timer, SD_EVENT_ONESHOT);
}

static void queue_run(Manager *m) {
        QueuedCall *c = m->queue, *next;

        for (; c; c = next) {
                Domain *d = c->uuid[0] ? manager_domain_by_uuid(m, c->uuid) : NULL;

                next = c->next;
                if (c->uuid[0] && !d) {
                        VbError e = VB_ERROR_NULL;

                        queue_unlink(m, c);
                        vb_error_set(&e, VB_ERROR_NO_SUCH_DOMAIN, "Domain %s went away while the call waited for "
                                     "it", c->uuid);
                        call_fail(m, c, NULL, -ENOENT, &e);
                        vb_error_free(&e);
                        continue;
                }
                if (!domain_ready(m, d, c->store) || waits_ahead(m, c->uuid, c))
                        continue;
                queue_unlink(m, c);
                call_run(m, c, d);
                /* Only this walk removes calls, and new ones go to the end: next is still queued. */
        }
        arm_timer(m);
}

static int on_queue_defer(sd_event_source *s, void *userdata) {
        queue_run(userdata);
        return 0;
}

void domain_queue_kick(Manager *m) {
        int r;

        if (!m->queue)
                return;
        if (!m->queue_defer) {
                r = sd_event_add_defer(m->event, &m->queue_defer, on_queue_defer, m);
                if (r < 0) {
                        log_warning_errno(r, "Failed to schedule the queued calls, running them now: %m");
                        queue_run(m);
                        return;
                }
        }
        (void) sd_event_source_set_enabled(m->queue_defer, SD_EVENT_ONESHOT);
}

static int on_queue_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = 0, waited = queue_timeout_usec() / 1000000ULL;
        QueuedCall *c, *next;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        for (c = m->queue; c; c = next) {
                Domain *d = c->uuid[0] ? manager_domain_by_uuid(m, c->uuid) : NULL;
                VbError e = VB_ERROR_NULL;

                next = c->next;
                if (c->deadline > now)
                        continue;
                queue_unlink(m, c);
                if (d && d->connecting)
                        vb_error_set(&e, VB_ERROR_TIMEOUT, "Domain '%s': virtbusd found its QEMU again at start-up "
                                     "and is still connecting to it after %llu s; the call was not made",
                                     d->name, (unsigned long long) waited);
                else if (d && d->op)
                        vb_error_set(&e, VB_ERROR_TIMEOUT, "Domain '%s' was still busy %s after %llu s; the call "
                                     "waited for it and was not made", d->name, domain_op_what(d->op),
                                     (unsigned long long) waited);
                else if (c->store && m->caps_probing)
                        vb_error_set(&e, VB_ERROR_TIMEOUT, "The call waited %llu s for the capabilities of the "
                                     "hypervisor (its emulator is being probed) and was not made",
                                     (unsigned long long) waited);
                else
                        vb_error_set(&e, VB_ERROR_TIMEOUT, "The call waited %llu s for the calls and definitions "
                                     "ahead of it and was not made", (unsigned long long) waited);
                log_warning("%s", e.message);
                call_fail(m, c, d, -ETIMEDOUT, &e);
                vb_error_free(&e);
        }
        arm_timer(m);
        return 0;
}

int domain_queue_add(Manager *m, Domain *d, bool store, const QueuedCallType *type, void *args, VbError *reterr) {
        const char *uuid = d ? d->uuid : "";
        size_t same = 0;
        QueuedCall *c, **tail;
        uint64_t now = 0;

        for (c = m->queue; c; c = c->next)
                if (streq(c->uuid, uuid))
                        same++;
        if (m->n_queued >= QUEUE_MAX || same >= QUEUE_MAX_DOMAIN)
                return vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many calls wait for %s%s%s (at most %u): "
                                    "try again once they are answered", d ? "domain '" : "the service",
                                    d ? d->name : "", d ? "'" : "",
                                    m->n_queued >= QUEUE_MAX ? QUEUE_MAX : QUEUE_MAX_DOMAIN);
        c = new0(QueuedCall, 1);
        if (!c)
                return -ENOMEM;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        *c = (QueuedCall) { .store = store, .deadline = now + queue_timeout_usec(), .type = type, .args = args };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        for (tail = &m->queue; *tail; tail = &(*tail)->next)
                ;
        *tail = c;
        m->n_queued++;
        log_debug("A call %s waits for %s.", type->what,
                  d && d->connecting ? "the connection to its QEMU" :
                  store && m->caps_probing ? "the capabilities of the hypervisor" :
                  store && manager_store_busy(m) ? "the definitions being saved" : "the calls ahead of it");
        arm_timer(m);
        /* Nothing may hold it up any more (the calls ahead ran meanwhile): the walk decides. */
        if (domain_ready(m, d, store))
                domain_queue_kick(m);
        return 0;
}

void manager_cancel_queued(Manager *m) {
        manager_cancel_caps_defines(m);
        while (m->queue) {
                QueuedCall *c = m->queue;
                VbError e = VB_ERROR_NULL;

                queue_unlink(m, c);
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "virtbusd is stopping");
                call_fail(m, c, NULL, -ECANCELED, &e);
                vb_error_free(&e);
        }
        m->queue_timer = sd_event_source_disable_unref(m->queue_timer);
        m->queue_defer = sd_event_source_disable_unref(m->queue_defer);
}

/* ---- The lifecycle calls (ManagerDomainAsyncOp) ---- */

typedef struct LifecycleArgs {
        ManagerDomainAsyncOp op;
        DomainWaitDone done;
        void *userdata;
} LifecycleArgs;

static int lifecycle_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        LifecycleArgs *a = p;

        return a->op(m, d, a->done, a->userdata, reterr);
}

static void lifecycle_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        LifecycleArgs *a = p;

        if (a->done)
                a->done(d, r, e, a->userdata);
}

static const QueuedCallType lifecycle_type = {
        .what = "changing the state of a domain",
        .run = lifecycle_run,
        .answer = lifecycle_answer,
        .free = free,
};

int manager_domain_call_when_ready(Manager *m, Domain *d, ManagerDomainAsyncOp op, DomainWaitDone done,
                                   void *userdata, VbError *reterr) {
        LifecycleArgs *a;
        int r;

        if (!domain_queue_wanted(m, d, false))
                return op(m, d, done, userdata, reterr);
        a = new0(LifecycleArgs, 1);
        if (!a)
                return -ENOMEM;
        *a = (LifecycleArgs) { .op = op, .done = done, .userdata = userdata };
        r = domain_queue_add(m, d, false, &lifecycle_type, a, reterr);
        if (r < 0)
                free(a);
        return r < 0 ? r : 0;
}

int domain_queue_add_copy(Manager *m, Domain *d, bool store, const QueuedCallType *type, const void *args,
                          size_t size, VbError *reterr) {
        void *copy = malloc(size);
        int r;

        if (!copy)
                return -ENOMEM;
        memcpy(copy, args, size);
        r = domain_queue_add(m, d, store, type, copy, reterr);
        if (r < 0)
                free(copy);
        return r < 0 ? r : 0;
}

int domain_queue_keep_if_probing(Manager *m, Domain *d, const DomainDef *def, bool store, const QueuedCallType *type,
                                 const void *args, size_t size, VbError *reterr) {
        /* In this order: the probe is asked for (and waited for) only when nothing else holds the call. */
        if (!(store && domain_queue_wanted(m, d, true)) && !(def && domain_caps_pending(m, def)))
                return 1;
        return domain_queue_add_copy(m, d, true, type, args, size, reterr);
}

/* ---- Rename and Undefine ---- */

typedef struct RenameArgs {
        char *name; /* NULL: Undefine */
        bool managed_save, snapshots;
        VbDriverDone done;
        void *userdata;
} RenameArgs;

static void rename_free(void *p) {
        RenameArgs *a = p;

        free(a->name);
        free(a);
}

static int rename_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        RenameArgs *a = p;

        *ret = NULL; /* d may be gone */
        if (a->name)
                return manager_domain_rename_committed(m, d, a->name, a->done, a->userdata, reterr);
        return manager_domain_undefine_with(m, d, a->managed_save, a->snapshots, a->done, a->userdata, reterr);
}

static void rename_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        RenameArgs *a = p;

        a->done(r, e, a->userdata);
}

static const QueuedCallType rename_type = {
        .what = "renaming or undefining a domain",
        .run = rename_run,
        .answer = rename_answer,
        .free = rename_free,
};

static int rename_or_undefine(Manager *m, Domain *d, const RenameArgs *args, VbError *reterr) {
        _cleanup_free_ RenameArgs *a = NULL;
        int r;

        if (!domain_queue_wanted(m, d, true)) {
                if (args->name)
                        return manager_domain_rename_committed(m, d, args->name, args->done, args->userdata, reterr);
                return manager_domain_undefine_with(m, d, args->managed_save, args->snapshots, args->done,
                                                    args->userdata, reterr);
        }
        a = new0(RenameArgs, 1);
        if (!a)
                return -ENOMEM;
        *a = *args;
        a->name = NULL;
        if (args->name) {
                a->name = strdup(args->name);
                if (!a->name)
                        return -ENOMEM;
        }
        r = domain_queue_add(m, d, true, &rename_type, a, reterr);
        if (r < 0) {
                free(a->name);
                return r;
        }
        TAKE_PTR(a);
        return 0;
}

int manager_domain_rename_when_ready(Manager *m, Domain *d, const char *name, VbDriverDone done, void *userdata,
                                     VbError *reterr) {
        return rename_or_undefine(m, d, &(RenameArgs) { .name = (char *) name, .done = done, .userdata = userdata },
                                  reterr);
}

int manager_domain_undefine_when_ready(Manager *m, Domain *d, bool managed_save, bool snapshots, VbDriverDone done,
                                       void *userdata, VbError *reterr) {
        return rename_or_undefine(m, d, &(RenameArgs) { .managed_save = managed_save, .snapshots = snapshots,
                                                        .done = done, .userdata = userdata }, reterr);
}
