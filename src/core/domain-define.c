/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DefineDomain's group commit. Each definition must be durable before its caller hears "defined", and
 * a sync costs a few hundred microseconds (much more on a busy disk). Definitions that arrive together
 * (a client with calls in flight, several clients) are therefore collected while the event loop is
 * busy, and made durable together in a worker thread when it has nothing else to do: each file written
 * and synced, the renames, one directory sync. Then, on the loop, each is published and every caller gets
 * its answer. At most one batch is in flight; what arrives meanwhile forms the next one. A lone call waits
 * for nothing but its own sync.
 *
 * While a batch is in flight its definitions have passed their checks but are not in the registry: a
 * change of a domain (undefine, rename, a device saved into its definition...) made meanwhile is kept in
 * core (domain-queue.c) and run once the store is idle, so that the registry and the files change in the
 * same order; the event loop never waits for the batch on a client's behalf (manager_define_settle is
 * left to start-up, shutdown and unit tests). */
#include <assert.h>
#include <stdio.h>

#include "conf/domain-access.h"
#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/def-store.h"
#include "core/domain-store.h"
#include "core/domain-queue.h"
#include "util/log.h"
#include "util/worker.h"

/* At most this many jobs wait for the store thread (a batch of definitions is one). */
#define STORE_QUEUE_MAX 1024
/* At most this many definitions are committed at once; the others wait for the next batch. */
#define DEFINE_BATCH_MAX 64

typedef struct PendingDefine {
        DomainDef *def;
        DomainAccess access;
        DomainDefineDone done;
        void *userdata;
} PendingDefine;

typedef struct DefineBatch {
        Manager *m;
        PendingDefine *items;
        VbError *errors;        /* of those refused before the commit (staged result < 0, no path) */
        DomainStoreStaged *staged;
        size_t n;
} DefineBatch;

static int on_define_idle(sd_event_source *s, void *userdata);
static void store_maybe_idle(Manager *m);

static void finish(Manager *m, PendingDefine *p, int r, const VbError *e) {
        Domain *d = NULL;
        bool created = false;

        if (r >= 0) {
                r = domain_define_apply(m, TAKE_PTR(p->def), &p->access, &d, &created);
                if (r < 0) {
                        VbError oom = VB_ERROR_NULL;
                        vb_error_set(&oom, VB_ERROR_OPERATION_FAILED, "Out of memory");
                        p->done(m, NULL, false, r, &oom, p->userdata);
                        vb_error_free(&oom);
                        return;
                }
        } else
                p->def = domain_def_free(p->def);
        domain_access_done(&p->access);
        p->done(m, d, created, r, e, p->userdata);
}

static void finish_error(Manager *m, PendingDefine *p, int r, VbError *e) {
        finish(m, p, r, e);
        vb_error_free(e);
}

static int arm(Manager *m) {
        int r;

        if (!m->define_commit_source) {
                r = sd_event_add_defer(m->event, &m->define_commit_source, on_define_idle, m);
                if (r < 0)
                        return r;
                /* After everything else that is ready: the bus drains its queue first. */
                r = sd_event_source_set_priority(m->define_commit_source, SD_EVENT_PRIORITY_IDLE);
                if (r < 0)
                        return r;
        }
        return sd_event_source_set_enabled(m->define_commit_source, SD_EVENT_ONESHOT);
}

static void batch_free(DefineBatch *b) {
        if (!b)
                return;
        free(b->items);
        free(b->staged);
        free(b->errors);
        free(b);
}

static void batch_work(void *userdata) {
        DefineBatch *b = userdata;

        (void) domain_store_commit(b->m->domains_dir, b->staged, b->n);
}

static void batch_done(void *userdata, bool cancelled) {
        DefineBatch *b = userdata;
        Manager *m = b->m;

        if (cancelled) /* the worker went away first (not expected: it is waited for) */
                batch_work(b);
        m->define_batch = NULL;
        for (size_t i = 0; i < b->n; i++) {
                VbError e = VB_ERROR_NULL;
                int k = b->staged[i].result;

                if (b->errors[i].code != 0)
                        e = b->errors[i];
                else if (k < 0)
                        vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to save the definition of '%s': %s",
                                     domain_def_get_name(b->items[i].def), strerror(-k));
                finish_error(m, &b->items[i], k, &e);
        }
        log_debug("Committed %zu definitions at once.", b->n);
        batch_free(b);
        if (m->n_pending_defines > 0 && arm(m) < 0)
                manager_commit_defines(m);
        store_maybe_idle(m);
}

bool manager_define_pending_name(Manager *m, const char *name, const char *uuid) {
        for (size_t i = 0; i < m->n_caps_defines; i++)
                if (streq(domain_def_get_name(m->caps_defines[i].def), name) &&
                    !streq(domain_def_uuid(m->caps_defines[i].def).s, uuid))
                        return true;
        for (size_t i = 0; i < m->n_pending_defines; i++)
                if (streq(domain_def_get_name(m->pending_defines[i].def), name) &&
                    !streq(domain_def_uuid(m->pending_defines[i].def).s, uuid))
                        return true;
        for (size_t i = 0; m->define_batch && i < m->define_batch->n; i++)
                if (streq(domain_def_get_name(m->define_batch->items[i].def), name) &&
                    !streq(domain_def_uuid(m->define_batch->items[i].def).s, uuid))
                        return true;
        return false;
}

static bool clashes(const PendingDefine *items, size_t n, const DomainDef *def) {
        for (size_t i = 0; i < n; i++)
                if (streq(domain_def_get_name(items[i].def), domain_def_get_name(def)) ||
                    streq(domain_def_uuid(items[i].def).s, domain_def_uuid(def).s))
                        return true;
        return false;
}

/* Takes up to DEFINE_BATCH_MAX pending definitions, none two of the same domain (the second waits for the
 * next batch), checks them again (the registry may have changed since each was queued) and prepares
 * their files. Those refused now are answered with the batch. */
static DefineBatch *batch_take(Manager *m) {
        size_t max = m->n_pending_defines < DEFINE_BATCH_MAX ? m->n_pending_defines : DEFINE_BATCH_MAX, kept = 0;
        DefineBatch *b;

        b = new0(DefineBatch, 1);
        if (!b)
                return NULL;
        b->m = m;
        b->items = new0(PendingDefine, max);
        b->staged = new0(DomainStoreStaged, max);
        b->errors = new0(VbError, max);
        if (!b->items || !b->staged || !b->errors) {
                batch_free(b);
                return NULL;
        }
        for (size_t i = 0; i < m->n_pending_defines; i++) {
                PendingDefine *p = &m->pending_defines[i];
                DomainStoreStaged *st = &b->staged[b->n];
                int r;

                if (b->n >= max || clashes(b->items, b->n, p->def)) {
                        m->pending_defines[kept++] = *p;
                        continue;
                }
                /* The capabilities were checked when the call came (they change with the emulator only). */
                r = domain_define_check_names(m, p->def, &b->errors[b->n]);
                if (r >= 0)
                        r = domain_store_prepare(m->domains_dir, p->def, &p->access, st, &b->errors[b->n]);
                if (r < 0)
                        *st = (DomainStoreStaged) { .fd = -1, .result = r };
                b->items[b->n++] = *p;
        }
        m->n_pending_defines = kept;
        return b;
}

/* Starts committing the pending definitions, unless a batch is in flight (its end starts the next). */
static void batch_start(Manager *m) {
        DefineBatch *b;
        int r;

        if (m->define_batch || m->n_pending_defines == 0)
                return;
        if (m->define_commit_source)
                (void) sd_event_source_set_enabled(m->define_commit_source, SD_EVENT_OFF);
        b = batch_take(m);
        if (!b) {
                log_error("Out of memory while committing definitions; retrying when the loop is idle.");
                (void) arm(m);
                return;
        }
        if (b->n == 0) {
                batch_free(b);
                return;
        }
        m->define_batch = b;
        r = manager_store_worker(m);
        if (r >= 0)
                r = worker_submit(m->store_worker, batch_work, batch_done, b);
        if (r < 0) {
                log_debug_errno(r, "Failed to hand the commit to a thread, committing here: %m");
                batch_work(b);
                batch_done(b, false);
        }
}

static int on_define_idle(sd_event_source *s, void *userdata) {
        batch_start(userdata);
        return 0;
}

int manager_store_worker(Manager *m) {
        return m->store_worker ? 0 : worker_new(m->event, 1, STORE_QUEUE_MAX, 0, &m->store_worker);
}

bool manager_store_busy(const Manager *m) {
        return m->define_batch || m->n_store_jobs > 0 || m->n_caps_defines > 0 || m->caps_probing;
}

static void store_maybe_idle(Manager *m) {
        if (!manager_store_busy(m))
                domain_queue_kick(m); /* the calls kept while it was busy */
}

void manager_store_job_begin(Manager *m) {
        m->n_store_jobs++;
}

void manager_store_job_end(Manager *m) {
        assert(m->n_store_jobs > 0);
        m->n_store_jobs--;
        store_maybe_idle(m);
}

void manager_define_settle(Manager *m) {
        /* The batch, and the other changes the store thread makes (domain_set_autostart_async). */
        if (m->define_batch || m->n_store_jobs > 0)
                worker_wait(m->store_worker);
}

typedef struct AutostartJob {
        Manager *m;
        char uuid[DEF_STORE_UUID_LEN + 1];
        bool autostart;
        DomainOpDone done;
        void *userdata;
        int r;
        VbError error;
} AutostartJob;

static void autostart_work(void *userdata) {
        AutostartJob *j = userdata;

        j->r = domain_store_set_autostart(NULL /* synced here, in the thread */, j->m->domains_dir, j->uuid, j->autostart, &j->error);
}

static void autostart_done(void *userdata, bool cancelled) {
        static const char * const props[] = { "Autostart", NULL };
        AutostartJob *j = userdata;
        Domain *d;

        j->m->n_store_jobs--;
        if (cancelled) {
                j->r = -ECANCELED;
                (void) vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "The service is stopping");
        }
        /* Every change that could remove the domain settles the store first: it is still there. */
        d = manager_domain_by_uuid(j->m, j->uuid);
        if (j->r >= 0 && d && d->autostart != j->autostart) {
                d->autostart = j->autostart;
                domain_emit_changed(d, props);
        }
        j->done(j->m, j->r, &j->error, j->userdata);
        vb_error_free(&j->error);
        store_maybe_idle(j->m);
        free(j);
}

int manager_domain_set_autostart_async(Manager *m, Domain *d, bool autostart, DomainOpDone done, void *userdata,
                                       VbError *reterr) {
        AutostartJob *j;
        int r;

        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient and cannot be "
                                    "started automatically", d->name);
        if (d->autostart == autostart && m->n_store_jobs == 0)
                return 1;
        r = manager_store_worker(m);
        if (r < 0)
                return r;
        j = new0(AutostartJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (AutostartJob) { .m = m, .autostart = autostart, .done = done, .userdata = userdata,
                              .error = VB_ERROR_NULL };
        snprintf(j->uuid, sizeof j->uuid, "%s", d->uuid);
        r = worker_submit(m->store_worker, autostart_work, autostart_done, j);
        if (r < 0) {
                free(j);
                return r;
        }
        m->n_store_jobs++;
        return 0;
}

void manager_commit_defines(Manager *m) {
        manager_define_settle(m);
        while (m->n_pending_defines > 0) {
                size_t before = m->n_pending_defines;

                batch_start(m);
                manager_define_settle(m);
                if (m->n_pending_defines >= before && !m->define_batch)
                        break; /* out of memory: nothing moved */
        }
}

/* Appends a definition to one of the lists (takes def, also on failure). */
static int pending_add(PendingDefine **list, size_t *n, size_t *allocated, DomainDef *def,
                       const DomainAccess *access, DomainDefineDone done, void *userdata) {
        PendingDefine *p;
        int r;

        if (!GREEDY_REALLOC(*list, *allocated, *n + 1)) {
                domain_def_free(def);
                return -ENOMEM;
        }
        p = &(*list)[*n];
        *p = (PendingDefine) { .def = def, .done = done, .userdata = userdata };
        r = domain_access_copy(access ?: &(const DomainAccess) {}, &p->access);
        if (r < 0) {
                domain_access_done(&p->access);
                domain_def_free(def);
                return r;
        }
        (*n)++;
        return 0;
}

/* The probe ended: the definitions that waited for it are checked, in arrival order, and go to the group
 * commit; those refused are answered now. One that finds another probe running (another emulator) waits
 * again, and the ones behind it with it. */
void manager_on_caps_ready(Manager *m) {
        size_t i = 0, moved = 0;

        for (; i < m->n_caps_defines; i++) {
                PendingDefine *p = &m->caps_defines[i];
                VbError e = VB_ERROR_NULL;
                int r;

                if (!m->caps_wait_over && domain_caps_pending(m, p->def))
                        break;
                r = domain_define_check(m, p->def, &e);
                if (r >= 0) {
                        /* Moved as it is (definition and access): nothing to fail but the array's growth. */
                        if (GREEDY_REALLOC(m->pending_defines, m->n_pending_defines_allocated,
                                           m->n_pending_defines + 1)) {
                                m->pending_defines[m->n_pending_defines++] = *p;
                                moved++;
                                continue;
                        }
                        r = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Out of memory");
                }
                finish_error(m, p, r, &e);
        }
        if (i > 0) /* none may wait (only calls in core's queue): caps_defines may be NULL */
                memmove(m->caps_defines, m->caps_defines + i, (m->n_caps_defines - i) * sizeof(PendingDefine));
        m->n_caps_defines -= i;
        if (moved > 0 && arm(m) < 0)
                manager_commit_defines(m);
        store_maybe_idle(m);
}

void manager_cancel_caps_defines(Manager *m) {
        m->caps_wait_timer = sd_event_source_disable_unref(m->caps_wait_timer);
        manager_caps_cancel(m);
        for (size_t i = 0; i < m->n_caps_defines; i++) {
                VbError e = VB_ERROR_NULL;

                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "virtbusd is stopping");
                finish_error(m, &m->caps_defines[i], -ECANCELED, &e);
        }
        m->n_caps_defines = 0;
        free(m->caps_defines);
        m->caps_defines = NULL;
        m->n_caps_defines_allocated = 0;
}

/* How long a DefineDomain waits for a probe; $VIRTBUS_CAPS_DEFINE_WAIT_MS for tests. Well below the 25 s
 * a D-Bus client waits for an answer by default. */
#define CAPS_DEFINE_WAIT_USEC (10 * 1000000ULL)

static uint64_t caps_define_wait_usec(void) {
        return env_msec_as_usec("VIRTBUS_CAPS_DEFINE_WAIT_MS", CAPS_DEFINE_WAIT_USEC);
}

/* The probe takes too long (a loaded host, a hung emulator): what waits is checked without the
 * capabilities, and what comes is, until the probe ends (on_caps_ready in domain-caps-check.c). */
static int on_caps_wait_over(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->caps_wait_timer = sd_event_source_disable_unref(m->caps_wait_timer);
        log_warning("The capabilities of the hypervisor are still being probed after %llu s: %zu definition(s) "
                    "are taken without checking them.",
                    (unsigned long long) (caps_define_wait_usec() / 1000000), m->n_caps_defines);
        m->caps_wait_over = true;
        manager_on_caps_ready(m);
        return 0;
}

int manager_domain_define_async(Manager *m, DomainDef *def, const DomainAccess *access, DomainDefineDone done,
                                void *userdata, VbError *reterr) {
        int r;

        /* The capabilities are being probed (the first definition after start-up with an empty cache): the
         * call waits, with those that came after it, and the loop goes on (manager_on_caps_ready), for
         * CAPS_DEFINE_WAIT_USEC at most. */
        if (!m->caps_wait_over && (m->n_caps_defines > 0 || domain_caps_pending(m, def))) {
                domain_def_set_id(def, -1);
                r = pending_add(&m->caps_defines, &m->n_caps_defines, &m->n_caps_defines_allocated, def, access,
                                done, userdata);
                if (r < 0)
                        return r;
                log_debug("DefineDomain of '%s' waits for the capabilities of the hypervisor.",
                          domain_def_get_name(def));
                if (!m->caps_wait_timer &&
                    sd_event_add_time_relative(m->event, &m->caps_wait_timer, CLOCK_MONOTONIC, caps_define_wait_usec(),
                                               0, on_caps_wait_over, m) < 0)
                        log_warning("Failed to bound the wait for the capabilities, ignoring.");
                return 0;
        }
        r = domain_define_check(m, def, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        r = pending_add(&m->pending_defines, &m->n_pending_defines, &m->n_pending_defines_allocated, def, access,
                        done, userdata);
        if (r < 0)
                return r;

        r = arm(m);
        if (r < 0) {
                log_debug_errno(r, "Failed to schedule the commit, committing now: %m");
                manager_commit_defines(m);
        }
        return 0;
}
