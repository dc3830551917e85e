/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetMemory and SetVCPUs without D-Bus: check, ask the driver (live), save (config), swap the
 * definitions, announce. Nothing changes when a step fails. */
#include <stdio.h>

#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-store.h"
#include "util/log.h"

static bool is_live(const Domain *d) {
        return d->live && domain_is_active(d) && d->state != DOMAIN_CRASHED;
}

/* 0 becomes live when running, else config; live needs a running domain, config a saved definition. */
static int resolve_flags(Domain *d, unsigned *flags, VbError *reterr) {
        if (*flags == 0)
                *flags = is_live(d) ? DOMAIN_DEVICE_LIVE : DOMAIN_DEVICE_CONFIG;
        if ((*flags & DOMAIN_DEVICE_LIVE) && !is_live(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
        if ((*flags & DOMAIN_DEVICE_CONFIG) && !d->config)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient: it has no saved "
                                    "definition", d->name);
        return 0;
}

/* A copy of the saved definition changed by edit, saved; *ret to swap in once everything else worked. */
static int config_edit(Manager *m, Domain *d, void (*edit)(DomainDef *def, uint64_t v), uint64_t v,
                       DomainDef **ret, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *def = NULL;
        int r;

        r = domain_def_copy(d->config, &def);
        if (r < 0)
                return r;
        edit(def, v);
        def->serial = domain_def_new_serial();
        r = domain_def_validate(def, reterr);
        if (r >= 0)
                r = domain_caps_check_definition(m, def, reterr);
        if (r >= 0)
                r = domain_store_save(m->durable, m->domains_dir, def, &d->access, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}

static void set_current_memory(DomainDef *def, uint64_t kib) {
        def->current_memory_kib = kib;
}

/* A live SetMemory the driver answers later (the domain held meanwhile). */
typedef struct MemoryChange {
        Manager *manager;
        DomainOp *op;
        uint64_t kib;
        unsigned flags;
        DomainDef *live, *config; /* to swap in (config: already written) */
        VbDriverDone done;
        void *userdata;
} MemoryChange;

static MemoryChange *memory_change_free(MemoryChange *c) {
        if (!c)
                return NULL;
        domain_def_free(c->live);
        domain_def_free(c->config);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(MemoryChange *, memory_change_free);

static void memory_change_finish(MemoryChange *c, Domain *d, int r, const VbError *e) {
        static const char * const props[] = { "CurrentMemoryKiB", NULL };
        Manager *m = c->manager;

        if (r < 0 || !d) {
                if (d && c->config) /* the saved definition as it was */
                        (void) domain_store_save(m->durable, m->domains_dir, d->config, &d->access, NULL);
                if (c->done)
                        c->done(r < 0 ? r : -ESRCH, e, c->userdata);
                return;
        }
        if (c->live && is_live(d)) {
                domain_def_free(d->live);
                d->live = TAKE_PTR(c->live);
        }
        if (c->config) {
                domain_def_free(d->config);
                d->config = TAKE_PTR(c->config);
        }
        log_info("Domain '%s': memory set to %llu KiB (%s%s%s).", d->name, (unsigned long long) c->kib,
                 c->flags & DOMAIN_DEVICE_LIVE ? "live" : "",
                 (c->flags & DOMAIN_DEVICE_LIVE) && (c->flags & DOMAIN_DEVICE_CONFIG) ? ", " : "",
                 c->flags & DOMAIN_DEVICE_CONFIG ? "saved definition" : "");
        domain_emit_changed(d, props);
        if (c->done)
                c->done(0, NULL, c->userdata);
}

static void on_driver_memory(int r, const VbError *e, void *userdata) {
        _cleanup_(memory_change_freep) MemoryChange *c = userdata;
        Domain *d = domain_op_release(TAKE_PTR(c->op));

        memory_change_finish(c, d, r, e);
}

/* SetMemory and SetVCPUs kept while the store or the domain is busy (domain-queue.c). */
typedef struct TuneArgs {
        uint64_t value;
        unsigned flags;
        bool vcpus, maximum;
        VbDriverDone done;
        void *userdata;
} TuneArgs;

static int tune_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        TuneArgs *a = p;

        if (a->vcpus)
                return manager_domain_set_vcpus(m, d, (uint32_t) a->value, a->flags, a->maximum, a->done, a->userdata,
                                                reterr);
        return manager_domain_set_memory(m, d, a->value, a->flags, a->done, a->userdata, reterr);
}

static void tune_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        TuneArgs *a = p;

        a->done(r, e, a->userdata);
}

static const QueuedCallType tune_type = {
        .what = "changing the memory or vCPUs of a domain",
        .run = tune_run,
        .answer = tune_answer,
        .free = free,
};

int manager_domain_set_memory(Manager *m, Domain *d, uint64_t kib, unsigned flags, VbDriverDone done, void *userdata,
                              VbError *reterr) {
        _cleanup_(memory_change_freep) MemoryChange *c = NULL;
        int r;

        r = domain_queue_keep_if_probing(m, d, d->config, true, &tune_type, &(TuneArgs) { .value = kib, .flags = flags,
                                         .done = done, .userdata = userdata }, sizeof(TuneArgs), reterr);
        if (r <= 0)
                return r;

        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;

        r = resolve_flags(d, &flags, reterr);
        if (r < 0)
                return r;
        if (kib == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Memory of 0 KiB is not possible");
        if ((flags & DOMAIN_DEVICE_LIVE) && kib > d->live->memory_kib)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Domain '%s' has at most %llu KiB of memory "
                                    "while running (its <memory>); %llu KiB asked", d->name,
                                    (unsigned long long) d->live->memory_kib, (unsigned long long) kib);
        if ((flags & DOMAIN_DEVICE_CONFIG) && kib > d->config->memory_kib)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Domain '%s' has at most %llu KiB of memory "
                                    "(its <memory>); %llu KiB asked", d->name,
                                    (unsigned long long) d->config->memory_kib, (unsigned long long) kib);
        if ((flags & DOMAIN_DEVICE_LIVE) && !DRIVER_OP(m, domain_set_memory))
                return vb_driver_not_supported(m->driver, "changing the memory of a running domain", reterr);
        c = new0(MemoryChange, 1);
        if (!c)
                return -ENOMEM;
        *c = (MemoryChange) { .manager = m, .kib = kib, .flags = flags, .done = done, .userdata = userdata };
        if (flags & DOMAIN_DEVICE_LIVE) {
                r = domain_def_copy(d->live, &c->live);
                if (r < 0)
                        return r;
                set_current_memory(c->live, kib);
                c->live->serial = domain_def_new_serial();
        }
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = config_edit(m, d, set_current_memory, kib, &c->config, reterr);
                if (r < 0)
                        return r;
        }
        if (flags & DOMAIN_DEVICE_LIVE) {
                r = domain_op_hold(m, d, "setting the memory", &c->op);
                if (r >= 0)
                        r = DRIVER_OP(m, domain_set_memory)(m->driver, d->uuid, kib, on_driver_memory, c, reterr);
                if (r == 0) {
                        TAKE_PTR(c);
                        return 0;
                }
                (void) domain_op_release(TAKE_PTR(c->op));
        }
        c->done = NULL;
        memory_change_finish(c, d, r < 0 ? r : 0, reterr);
        return r < 0 ? r : 1;
}

/* A live change of the vCPUs the driver answers later. */
typedef struct VcpusChange {
        Manager *manager;
        char uuid[37];
        uint32_t count;
        DomainDef *config; /* the saved definition to swap in, already written (flag 2 too) */
        bool config_written; /* the domain's saved definition is to be written back if the live change fails */
        VbDriverDone done;
        void *userdata;
} VcpusChange;

static VcpusChange *vcpus_change_free(VcpusChange *c) {
        if (!c)
                return NULL;
        domain_def_free(c->config);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(VcpusChange *, vcpus_change_free);

/* Sets <vcpu current=> (the maximum stays). */
static void set_current_vcpus(DomainDef *def, uint64_t count) {
        def->vcpus_current = count >= def->vcpus ? 0 : (uint32_t) count;
}

/* Sets <vcpu>, the maximum; current= is kept when it still fits. */
static void set_max_vcpus(DomainDef *def, uint64_t count) {
        def->vcpus = (uint32_t) count;
        if (def->vcpus_current >= def->vcpus)
                def->vcpus_current = 0;
}

static const char * const vcpus_props[] = { "VCPUs", "MaxVCPUs", NULL };

/* The live part worked (r >= 0) or not: swap in or write back the saved definition, announce. */
static void vcpus_change_finish(VcpusChange *c, int r, const VbError *e) {
        Manager *m = c->manager;
        Domain *d = manager_domain_by_uuid(m, c->uuid);
        _cleanup_(domain_def_freep) DomainDef *live = NULL;

        if (!d || r < 0) {
                if (d && c->config_written && d->config) /* the saved definition as it is */
                        (void) domain_store_save(m->durable, m->domains_dir, d->config, &d->access, NULL);
                if (c->done)
                        c->done(r < 0 ? r : -ESRCH, e, c->userdata);
                return;
        }
        if (is_live(d) && domain_def_copy(d->live, &live) >= 0) {
                set_current_vcpus(live, c->count);
                live->serial = domain_def_new_serial();
                domain_def_free(d->live);
                d->live = TAKE_PTR(live);
        }
        if (c->config) {
                domain_def_free(d->config);
                d->config = TAKE_PTR(c->config);
        }
        log_info("Domain '%s': %u vCPUs (live%s).", d->name, c->count, c->config_written ? ", saved definition" : "");
        domain_emit_changed(d, vcpus_props);
        if (c->done)
                c->done(0, NULL, c->userdata);
}

static void on_driver_vcpus(int r, const VbError *e, void *userdata) {
        _cleanup_(vcpus_change_freep) VcpusChange *c = userdata;

        vcpus_change_finish(c, r, e);
}

static int check_vcpus(Domain *d, uint32_t count, unsigned flags, bool maximum, VbError *reterr) {
        if (count == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A domain needs at least one vCPU");
        if (maximum && (flags & DOMAIN_DEVICE_LIVE))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The maximum number of vCPUs (flag 4) of "
                                    "domain '%s' can only change in its saved definition (flag 2)", d->name);
        if (!maximum && (flags & DOMAIN_DEVICE_LIVE) && count > (d->live->vcpus ?: 1))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Domain '%s' has at most %u vCPUs while "
                                    "running (its <vcpu>); %u asked", d->name, d->live->vcpus ?: 1, count);
        if (!maximum && (flags & DOMAIN_DEVICE_CONFIG) && count > (d->config->vcpus ?: 1))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Domain '%s' has at most %u vCPUs (its "
                                    "<vcpu>); %u asked (flag 4 changes the maximum)", d->name,
                                    d->config->vcpus ?: 1, count);
        return 0;
}

int manager_domain_set_vcpus(Manager *m, Domain *d, uint32_t count, unsigned flags, bool maximum,
                             VbDriverDone done, void *userdata, VbError *reterr) {
        _cleanup_(vcpus_change_freep) VcpusChange *c = NULL;
        int r;

        r = domain_queue_keep_if_probing(m, d, d->config, true, &tune_type, &(TuneArgs) { .value = count,
                                         .flags = flags, .vcpus = true, .maximum = maximum, .done = done,
                                         .userdata = userdata }, sizeof(TuneArgs), reterr);
        if (r <= 0)
                return r;

        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;

        if (maximum && flags == 0)
                flags = DOMAIN_DEVICE_CONFIG;
        r = resolve_flags(d, &flags, reterr);
        if (r < 0)
                return r;
        r = check_vcpus(d, count, flags, maximum, reterr);
        if (r < 0)
                return r;
        if ((flags & DOMAIN_DEVICE_LIVE) && !DRIVER_OP(m, domain_set_vcpus))
                return vb_driver_not_supported(m->driver, "changing the vCPUs of a running domain", reterr);
        c = new0(VcpusChange, 1);
        if (!c)
                return -ENOMEM;
        *c = (VcpusChange) { .manager = m, .count = count, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", d->uuid);
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = config_edit(m, d, maximum ? set_max_vcpus : set_current_vcpus, count, &c->config, reterr);
                if (r < 0)
                        return r;
        }
        if (!(flags & DOMAIN_DEVICE_LIVE)) {
                domain_def_free(d->config);
                d->config = TAKE_PTR(c->config);
                log_info("Domain '%s': %u vCPUs%s in the saved definition.", d->name, count,
                         maximum ? " at most" : "");
                /* The properties show the current definition: the live one while the domain runs. */
                if (!is_live(d))
                        domain_emit_changed(d, vcpus_props);
                return 1;
        }
        c->config_written = c->config;
        r = DRIVER_OP(m, domain_set_vcpus)(m->driver, d->uuid, count, on_driver_vcpus, c, reterr);
        if (r < 0) {
                if (c->config_written) /* the saved definition as it was */
                        (void) domain_store_save(m->durable, m->domains_dir, d->config, &d->access, NULL);
                return r;
        }
        if (r > 0) {
                /* Done now: nobody to call back. */
                c->done = NULL;
                vcpus_change_finish(c, 0, NULL);
                return 1;
        }
        TAKE_PTR(c);
        return 0;
}
