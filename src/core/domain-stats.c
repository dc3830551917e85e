/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetStats and GetAllDomainStats without D-Bus: core answers state.* itself, asks the driver for the
 * rest of every running domain at the same time, and answers when all are in or the wait is over. */
#include <stdio.h>

#include "core/domain-internal.h"
#include "util/log.h"

/* libvirt's virDomainState. */
enum {
        STATS_STATE_RUNNING = 1,
        STATS_STATE_PAUSED = 3,
        STATS_STATE_SHUTDOWN = 4,
        STATS_STATE_SHUTOFF = 5,
        STATS_STATE_CRASHED = 6,
};

static const int stats_state[_DOMAIN_STATE_MAX] = {
        [DOMAIN_SHUTOFF] = STATS_STATE_SHUTOFF,   [DOMAIN_RUNNING] = STATS_STATE_RUNNING,
        [DOMAIN_PAUSED] = STATS_STATE_PAUSED,     [DOMAIN_SHUTDOWN] = STATS_STATE_SHUTDOWN,
        [DOMAIN_CRASHED] = STATS_STATE_CRASHED,
};

/* libvirt's virDomainShutoffReason (SHUTDOWN 1, DESTROYED 2, CRASHED 3, FAILED 6); 0 is "unknown", which
 * is what the other states report: virtbus does not record why a domain runs or paused. */
static const int stats_shutoff_reason[_DOMAIN_STOP_REASON_MAX] = {
        [DOMAIN_STOP_SHUTDOWN] = 1, [DOMAIN_STOP_DESTROYED] = 2, [DOMAIN_STOP_CRASHED] = 3, [DOMAIN_STOP_FAILED] = 6,
};

uint64_t domain_current_memory_kib(const Domain *d) {
        const DomainDef *def = domain_current_def(d);

        if (!def)
                return 0;
        return def->current_memory_kib > 0 ? def->current_memory_kib : def->memory_kib;
}

static void add_state(const Domain *d, VbStats *s) {
        int reason = 0;

        if (d->state == DOMAIN_SHUTOFF && d->stop_reason >= 0 && d->stop_reason < _DOMAIN_STOP_REASON_MAX)
                reason = stats_shutoff_reason[d->stop_reason];
        vb_stats_add_int(s, stats_state[d->state], "state.state");
        vb_stats_add_int(s, reason, "state.reason");
}

/* A shut-off domain: what its saved definition says. */
static void add_config(const Domain *d, uint64_t groups, VbStats *s) {
        const DomainDef *def = domain_current_def(d);

        if (!def)
                return;
        if (groups & VB_STATS_GROUP_BALLOON) {
                vb_stats_add_ullong(s, domain_current_memory_kib(d), "balloon.current");
                vb_stats_add_ullong(s, def->memory_kib, "balloon.maximum");
        }
        if (groups & VB_STATS_GROUP_VCPU) {
                vb_stats_add_uint(s, domain_def_get_current_vcpus(def), "vcpu.current");
                vb_stats_add_uint(s, domain_def_get_vcpus(def) ?: 1, "vcpu.maximum");
        }
}

DomainStatsQuery *domain_stats_query_free(DomainStatsQuery *q) {
        if (!q)
                return NULL;
        for (size_t i = 0; i < q->n; i++) {
                if (q->entries[i].pending && DRIVER_OP(q->manager, domain_stats_cancel))
                        DRIVER_OP(q->manager, domain_stats_cancel)(q->manager->driver, &q->entries[i]);
                vb_stats_free(q->entries[i].stats);
        }
        free(q->entries);
        sd_event_source_disable_unref(q->timer);
        free(q);
        return NULL;
}

static void query_finish(DomainStatsQuery *q) {
        q->timer = sd_event_source_disable_unref(q->timer);
        q->done(q, q->userdata);
}

static void on_driver_stats(void *userdata, VbStats *stats) {
        DomainStatsEntry *e = userdata;
        DomainStatsQuery *q = e->query;

        if (!e->pending) {
                vb_stats_free(stats);
                return;
        }
        e->pending = false;
        vb_stats_append(e->stats, stats);
        vb_stats_free(stats);
        if (--q->n_pending == 0)
                query_finish(q);
}

static int on_stats_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        DomainStatsQuery *q = userdata;

        for (size_t i = 0; i < q->n; i++) {
                DomainStatsEntry *e = &q->entries[i];

                if (!e->pending)
                        continue;
                log_debug("Domain %s did not answer for its statistics within %llu ms, reporting its state only.",
                          e->uuid, (unsigned long long) (DOMAIN_STATS_TIMEOUT_USEC / 1000));
                e->pending = false;
                if (DRIVER_OP(q->manager, domain_stats_cancel))
                        DRIVER_OP(q->manager, domain_stats_cancel)(q->manager->driver, e);
        }
        q->n_pending = 0;
        query_finish(q);
        return 0;
}

/* Fills e; asks the driver for a running domain (e->pending while it has not answered). */
static int entry_start(Manager *m, Domain *d, uint64_t groups, DomainStatsEntry *e) {
        VbStats *now = NULL;
        int r;

        snprintf(e->uuid, sizeof e->uuid, "%s", d->uuid);
        e->stats = vb_stats_new();
        if (!e->stats)
                return -ENOMEM;
        if (groups & VB_STATS_GROUP_STATE)
                add_state(d, e->stats);
        groups &= ~VB_STATS_GROUP_STATE;
        if (!domain_is_active(d) || d->state == DOMAIN_CRASHED) {
                add_config(d, groups, e->stats);
                return vb_stats_failed(e->stats) ? -ENOMEM : 0;
        }
        if (groups == 0 || !DRIVER_OP(m, domain_get_stats))
                return vb_stats_failed(e->stats) ? -ENOMEM : 0;
        r = DRIVER_OP(m, domain_get_stats)(m->driver, d->uuid, groups, on_driver_stats, e, &now, NULL);
        if (r < 0) {
                /* Not running after all (it stopped a moment ago), or the driver could not ask: state only. */
                log_debug_errno(r, "Failed to ask for the statistics of domain '%s', ignoring: %m", d->name);
                return 0;
        }
        if (r > 0) {
                vb_stats_append(e->stats, now);
                vb_stats_free(now);
        } else
                e->pending = true;
        return vb_stats_failed(e->stats) ? -ENOMEM : 0;
}

int manager_domains_get_stats(Manager *m, Domain * const *domains, size_t n, uint64_t groups,
                              DomainStatsDone done, void *userdata, DomainStatsQuery **ret) {
        _cleanup_(domain_stats_query_freep) DomainStatsQuery *q = NULL;
        int r;

        if (groups == 0)
                groups = VB_STATS_GROUPS_ALL;
        q = new0(DomainStatsQuery, 1);
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->done = done;
        q->userdata = userdata;
        q->entries = new0(DomainStatsEntry, n);
        if (!q->entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                q->entries[i].query = q;
                q->n++;
                r = entry_start(m, domains[i], groups, &q->entries[i]);
                if (r < 0)
                        return r;
                if (q->entries[i].pending)
                        q->n_pending++;
        }
        if (q->n_pending == 0) {
                *ret = TAKE_PTR(q);
                return 1;
        }
        r = sd_event_add_time_relative(m->event, &q->timer, CLOCK_MONOTONIC, DOMAIN_STATS_TIMEOUT_USEC, 0,
                                       on_stats_timeout, q);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(q);
        return 0;
}
