/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DefineDomain's group commit. Each definition must be durable before its caller hears "defined", and
 * a sync costs a few hundred microseconds. Definitions that arrive together (a client with calls in
 * flight, several clients) are therefore written as they come, and made durable together when the
 * event loop has nothing else to do: one sync, the renames, one directory sync; then every caller gets
 * its answer. A lone call waits for nothing: the loop is idle right after it. */
#include "conf/domain-access.h"
#include "core/domain-internal.h"
#include "core/domain-store.h"
#include "util/log.h"

/* More than this many waiting definitions are committed at once (each holds a file open). */
#define DEFINE_BATCH_MAX 64

typedef struct PendingDefine {
        DomainDef *def;
        DomainAccess access;
        DomainStoreStaged staged;
        DomainDefineDone done;
        void *userdata;
} PendingDefine;

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

void manager_commit_defines(Manager *m) {
        PendingDefine *batch = m->pending_defines;
        size_t n = m->n_pending_defines;
        DomainStoreStaged *staged;
        int r;

        if (n == 0)
                return;
        /* Callbacks may queue new definitions: they start a new batch. */
        m->pending_defines = NULL;
        m->n_pending_defines = m->n_pending_defines_allocated = 0;
        if (m->define_commit_source)
                (void) sd_event_source_set_enabled(m->define_commit_source, SD_EVENT_OFF);

        /* The registry may have changed since each was checked (an undefine, a rename in between). */
        for (size_t i = 0; i < n; i++) {
                VbError e = VB_ERROR_NULL;
                if (domain_define_check(m, batch[i].def, &e) < 0) {
                        domain_store_staged_discard(&batch[i].staged);
                        finish(m, &batch[i], -vb_error_code_to_errno(e.code), &e);
                        batch[i].done = NULL;
                        vb_error_free(&e);
                }
        }

        staged = new0(DomainStoreStaged, n);
        if (staged)
                for (size_t i = 0; i < n; i++)
                        staged[i] = batch[i].done ? batch[i].staged : (DomainStoreStaged) { .fd = -1 };
        r = staged ? domain_store_commit(m->domains_dir, staged, n) : -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                VbError e = VB_ERROR_NULL;
                int k;

                if (!batch[i].done)
                        continue;
                k = staged ? staged[i].result : r;
                if (k < 0) {
                        if (!staged)
                                domain_store_staged_discard(&batch[i].staged);
                        vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to save the definition of '%s': %s",
                                     domain_def_get_name(batch[i].def), strerror(-k));
                }
                finish(m, &batch[i], k, &e);
                vb_error_free(&e);
        }
        log_debug("Committed %zu definitions at once.", n);
        free(staged);
        free(batch);
}

static int on_idle(sd_event_source *s, void *userdata) {
        manager_commit_defines(userdata);
        return 0;
}

static bool pending_clash(Manager *m, const DomainDef *def) {
        for (size_t i = 0; i < m->n_pending_defines; i++) {
                const DomainDef *o = m->pending_defines[i].def;
                if (streq(domain_def_get_name(o), domain_def_get_name(def)) ||
                    streq(domain_def_uuid(o).s, domain_def_uuid(def).s))
                        return true;
        }
        return false;
}

static int arm(Manager *m) {
        int r;

        if (!m->define_commit_source) {
                r = sd_event_add_defer(m->event, &m->define_commit_source, on_idle, m);
                if (r < 0)
                        return r;
                /* After everything else that is ready: the bus drains its queue first. */
                r = sd_event_source_set_priority(m->define_commit_source, SD_EVENT_PRIORITY_IDLE);
                if (r < 0)
                        return r;
        }
        return sd_event_source_set_enabled(m->define_commit_source, SD_EVENT_ONESHOT);
}

int manager_domain_define_async(Manager *m, DomainDef *def, const DomainAccess *access, DomainDefineDone done,
                                void *userdata, VbError *reterr) {
        PendingDefine *p;
        int r;

        /* A second definition of the same domain in one batch: the first is saved first. */
        if (pending_clash(m, def))
                manager_commit_defines(m);

        r = domain_define_check(m, def, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        if (!GREEDY_REALLOC(m->pending_defines, m->n_pending_defines_allocated, m->n_pending_defines + 1)) {
                domain_def_free(def);
                return -ENOMEM;
        }
        p = &m->pending_defines[m->n_pending_defines];
        *p = (PendingDefine) { .def = def, .done = done, .userdata = userdata, .staged = { .fd = -1 } };
        r = domain_access_copy(access ?: &(const DomainAccess) {}, &p->access);
        if (r >= 0)
                r = domain_store_stage(m->domains_dir, def, &p->access, &p->staged, reterr);
        if (r < 0) {
                domain_access_done(&p->access);
                domain_def_free(def);
                return r;
        }
        m->n_pending_defines++;

        r = arm(m);
        if (r < 0 || m->n_pending_defines >= DEFINE_BATCH_MAX) {
                if (r < 0)
                        log_debug_errno(r, "Failed to schedule the commit, committing now: %m");
                manager_commit_defines(m);
        }
        return 0;
}
