/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domains: lifecycle operations through the driver, saved definitions, waiting for state. */
#include <stdio.h>
#include <stdlib.h>

#include "conf/domain-access.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-store.h"
#include "core/snapshot.h"
#include "util/log.h"

struct DomainWaiter {
        Domain *domain;
        sd_event_source *timer;
        DomainWaitDone done;
        void *userdata;
        DomainWaiter *next;
};

int domain_new_shell(Manager *m, const DomainDef *def, Domain **ret) {
        Domain *d = new0(Domain, 1);

        if (!d)
                return -ENOMEM;
        d->manager = m;
        d->state = DOMAIN_SHUTOFF;
        d->stop_reason = -1;
        snprintf(d->uuid, sizeof d->uuid, "%s", domain_def_uuid(def).s);
        d->name = strdup(domain_def_get_name(def));
        if (!d->name) {
                free(d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

int domain_new(Manager *m, DomainDef *config, Domain **ret) {
        int r = domain_new_shell(m, config, ret);
        if (r < 0)
                return r;
        (*ret)->config = config;
        return 0;
}

int domain_new_transient(Manager *m, DomainDef *live, Domain **ret) {
        int r = domain_new_shell(m, live, ret);
        if (r < 0)
                return r;
        (*ret)->live = live;
        return 0;
}

static void waiter_free(DomainWaiter *w) {
        sd_event_source_disable_unref(w->timer);
        free(w);
}

/* Completes and removes every waiter (r >= 0: the awaited change happened). */
static void domain_finish_waits(Domain *d, int r, const VbError *e) {
        while (d->waiters) {
                DomainWaiter *w = d->waiters;
                d->waiters = w->next;
                w->done(d, r, e, w->userdata);
                waiter_free(w);
        }
}

Domain *domain_free(Domain *d) {
        if (!d)
                return NULL;
        if (d->waiters) {
                VbError e = VB_ERROR_NULL;
                vb_error_set(&e, VB_ERROR_NO_SUCH_DOMAIN, "Domain '%s' went away", d->name);
                domain_finish_waits(d, -ENOENT, &e);
                vb_error_free(&e);
        }
        domain_fail_device_removals(d, VB_ERROR_NO_SUCH_DOMAIN, "went away");
        domain_op_detach(d);
        domain_snapshots_free(d);
        domain_def_free(d->config);
        domain_def_free(d->live);
        free(d->xml_cache);
        free(d->name);
        domain_access_done(&d->access);
        free(d);
        return NULL;
}

const DomainDef *domain_current_def(const Domain *d) {
        return d->live ?: d->config;
}

bool domain_is_active(const Domain *d) {
        return d->state != DOMAIN_SHUTOFF;
}

bool domain_is_persistent(const Domain *d) {
        return d->config != NULL;
}

void domain_emit_changed(Domain *d, const char * const *properties) {
        Manager *m = d->manager;
        if (m->events.domain_changed)
                m->events.domain_changed(m->events.userdata, d, properties);
}

void domain_set_state(Domain *d, DomainState state, unsigned id) {
        static const char * const props[] = { DOMAIN_STATE_PROPERTIES, NULL };

        if (d->state == state && d->id == id)
                return;
        d->state = state;
        d->id = id;
        domain_emit_changed(d, props);
}

void domain_stopped(Domain *d, DomainStopReason reason) {
        Manager *m = d->manager;

        d->stop_reason = (int) reason;
        d->live = domain_def_free(d->live);
        if (d->connecting) { /* its QEMU went before it answered: the calls kept for it hear so */
                d->connecting = false;
                domain_queue_kick(m);
        }
        hostdev_release_domain(m, d->uuid, d->name); /* host devices go back to the host (hostdev.c) */
        manager_domain_networks_release(m, d->uuid); /* network ports (network-manager.c) */
        domain_fail_device_removals(d, VB_ERROR_INVALID_STATE, "stopped");
        if (!domain_is_persistent(d)) {
                domain_finish_waits(d, 0, NULL);
                manager_remove_domain(m, d);
                return;
        }
        domain_set_state(d, reason == DOMAIN_STOP_CRASHED ? DOMAIN_CRASHED : DOMAIN_SHUTOFF, 0);
        domain_finish_waits(d, 0, NULL);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        DomainWaiter *w = userdata;
        Domain *d = w->domain;
        VbError e = VB_ERROR_NULL;

        for (DomainWaiter **i = &d->waiters; *i; i = &(*i)->next)
                if (*i == w) {
                        *i = w->next;
                        break;
                }
        vb_error_set(&e, VB_ERROR_TIMEOUT, "Domain '%s' did not stop in time; it is still %s", d->name,
                     domain_state_to_string(d->state));
        w->done(d, -ETIMEDOUT, &e, w->userdata);
        vb_error_free(&e);
        waiter_free(w);
        return 0;
}

int domain_wait_for_stop(Domain *d, uint64_t timeout_usec, DomainWaitDone done, void *userdata) {
        DomainWaiter *w;
        int r;

        if (!domain_is_active(d) || d->state == DOMAIN_CRASHED) {
                done(d, 0, NULL, userdata);
                return 0;
        }
        w = new0(DomainWaiter, 1);
        if (!w)
                return -ENOMEM;
        w->domain = d;
        w->done = done;
        w->userdata = userdata;
        r = sd_event_add_time_relative(d->manager->event, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                       on_wait_timeout, w);
        if (r < 0) {
                free(w);
                return r;
        }
        w->next = d->waiters;
        d->waiters = w;
        return 0;
}

void domain_cancel_waits(Domain *d, void *userdata) {
        for (DomainWaiter **i = &d->waiters; *i;) {
                DomainWaiter *w = *i;
                if (w->userdata == userdata) {
                        *i = w->next;
                        waiter_free(w);
                } else
                        i = &w->next;
        }
}
