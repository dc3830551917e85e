/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetMemory and SetVCPUs without D-Bus: check, ask the driver (live), save (config), swap the
 * definitions, announce. Nothing changes when a step fails. */
#include "core/domain-caps.h"
#include "core/domain-internal.h"
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
                r = domain_store_save(m->domains_dir, def, &d->access, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}

static void set_current_memory(DomainDef *def, uint64_t kib) {
        def->current_memory_kib = kib;
}

static void set_vcpus(DomainDef *def, uint64_t count) {
        def->vcpus = (uint32_t) count;
}

int manager_domain_set_memory(Manager *m, Domain *d, uint64_t kib, unsigned flags, VbError *reterr) {
        static const char * const props[] = { "CurrentMemoryKiB", NULL };
        _cleanup_(domain_def_freep) DomainDef *config = NULL, *live = NULL;
        int r;

        manager_define_settle(m);

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
        if (flags & DOMAIN_DEVICE_LIVE) {
                if (!DRIVER_OP(m, domain_set_memory))
                        return vb_driver_not_supported(m->driver, "changing the memory of a running domain", reterr);
                r = domain_def_copy(d->live, &live);
                if (r < 0)
                        return r;
                set_current_memory(live, kib);
                live->serial = domain_def_new_serial();
        }
        if (flags & DOMAIN_DEVICE_CONFIG) {
                r = config_edit(m, d, set_current_memory, kib, &config, reterr);
                if (r < 0)
                        return r;
        }
        if (flags & DOMAIN_DEVICE_LIVE) {
                r = DRIVER_OP(m, domain_set_memory)(m->driver, d->uuid, kib, reterr);
                if (r < 0) {
                        if (config) /* the saved definition as it was */
                                (void) domain_store_save(m->domains_dir, d->config, &d->access, NULL);
                        return r;
                }
                domain_def_free(d->live);
                d->live = TAKE_PTR(live);
        }
        if (config) {
                domain_def_free(d->config);
                d->config = TAKE_PTR(config);
        }
        log_info("Domain '%s': memory set to %llu KiB (%s%s%s).", d->name, (unsigned long long) kib,
                 flags & DOMAIN_DEVICE_LIVE ? "live" : "",
                 (flags & DOMAIN_DEVICE_LIVE) && (flags & DOMAIN_DEVICE_CONFIG) ? ", " : "",
                 flags & DOMAIN_DEVICE_CONFIG ? "saved definition" : "");
        domain_emit_changed(d, props);
        return 0;
}

int manager_domain_set_vcpus(Manager *m, Domain *d, uint32_t count, unsigned flags, VbError *reterr) {
        static const char * const props[] = { "VCPUs", "MaxVCPUs", NULL };
        _cleanup_(domain_def_freep) DomainDef *config = NULL;
        int r;

        manager_define_settle(m);

        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;

        r = resolve_flags(d, &flags, reterr);
        if (r < 0)
                return r;
        if (count == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A domain needs at least one vCPU");
        if (flags & DOMAIN_DEVICE_LIVE)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Changing the vCPUs of running domain '%s' is "
                                    "not supported yet; change the saved definition (flag 2), which takes effect "
                                    "at its next start", d->name);
        r = config_edit(m, d, set_vcpus, count, &config, reterr);
        if (r < 0)
                return r;
        domain_def_free(d->config);
        d->config = TAKE_PTR(config);
        log_info("Domain '%s': %u vCPUs in the saved definition.", d->name, count);
        /* The properties show the current definition: the live one while the domain runs. */
        if (!is_live(d))
                domain_emit_changed(d, props);
        return 0;
}
