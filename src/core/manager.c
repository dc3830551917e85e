/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager: creation, the domain registry, and start-up (load, reconnect, autostart). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf-schema.h"
#include "conf/domain-access.h"
#include "core/snapshot.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-migrate.h"
#include "core/domain-store.h"
#include "core/domain-save.h"
#include "core/manager.h"
#include "host/child-wait.h"
#include "host/host.h"
#include "util/durable.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/worker.h"

static int make_dir(const char *path, mode_t mode, VbError *reterr) {
        int r = mkdir_p(path, mode);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create directory '%s': %s",
                                    path, strerror(-r));
        return 0;
}

static void on_driver_state_changed(void *userdata, const char *uuid, DomainState state) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);

        if (!d) {
                log_debug("State change for unknown domain %s, ignoring.", uuid);
                return;
        }
        domain_set_state(d, state, d->id);
}

static void on_driver_connected(void *userdata, const char *uuid) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);

        if (!d || !d->connecting)
                return;
        d->connecting = false;
        /* A hot-plug of a NIC that a stop of virtbusd cut short and the driver undid (or a NIC that went
         * meanwhile) still has the network port core took for it: given back. */
        manager_domain_network_ports_reconcile(m, d->uuid, d->live);
        domain_queue_kick(m); /* the calls that waited for it */
}

static void on_driver_stopped(void *userdata, const char *uuid, DomainStopReason reason) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);

        if (!d) {
                log_debug("Stop of unknown domain %s, ignoring.", uuid);
                return;
        }
        log_info("Domain '%s' stopped (%s).", d->name, domain_stop_reason_to_string(reason));
        domain_stopped(d, reason);
}

/* How long the compiled schemas stay after their last use. */
#define SCHEMA_IDLE_USEC (2ULL * 1000ULL * 1000ULL)

static void on_schema_use(void *userdata);

typedef struct SchemaFree {
        ConfSchemaDetached *detached;
        int n;
} SchemaFree;

/* In the schema worker's thread. */
static void schema_free_work(void *userdata) {
        SchemaFree *f = userdata;

        f->detached = conf_schema_detached_free(f->detached);
        /* Give the freed pages back: an idle daemon should be small. */
        malloc_trim(0);
}

static void schema_free_done(void *userdata, bool cancelled) {
        SchemaFree *f = userdata;

        conf_schema_detached_free(f->detached); /* cancelled: virtbusd is stopping */
        if (!cancelled)
                log_debug("Released %i compiled schemas after %llu s unused.", f->n, SCHEMA_IDLE_USEC / 1000000ULL);
        free(f);
}

/* The schemas are freed in a thread: freeing them and trimming the heap held the event loop 15 ms on a quiet
 * machine, 50-150 ms under load, 2 s after each burst of definitions (at start-up too). */
static int on_schema_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        ConfSchemaDetached *d = NULL;
        SchemaFree *f;
        int n = conf_schema_detach(&d), r;

        if (n == -EBUSY) {
                /* Used meanwhile by a parse worker, or still in use: wait another while. */
                on_schema_use(userdata);
                return 0;
        }
        if (n <= 0)
                return 0;
        f = new0(SchemaFree, 1);
        r = f ? 0 : -ENOMEM;
        if (r >= 0 && !m->schema_worker)
                r = worker_new(m->event, 1, 1, 0, &m->schema_worker);
        if (r >= 0) {
                *f = (SchemaFree) { .detached = d, .n = n };
                r = worker_submit(m->schema_worker, schema_free_work, schema_free_done, f);
        }
        if (r < 0) {
                /* Here, then (a release still queued: the next one waits for no one). */
                free(f);
                conf_schema_detached_free(d);
                malloc_trim(0);
                log_debug("Released %i compiled schemas after %llu s unused.", n, SCHEMA_IDLE_USEC / 1000000ULL);
        }
        return 0;
}

static void on_schema_use(void *userdata) {
        Manager *m = userdata;
        uint64_t now;

        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (!m->schema_release_timer) {
                if (sd_event_add_time(m->event, &m->schema_release_timer, CLOCK_MONOTONIC, now + SCHEMA_IDLE_USEC,
                                      500 * 1000, on_schema_idle, m) < 0)
                        return;
                (void) sd_event_source_set_priority(m->schema_release_timer, SD_EVENT_PRIORITY_IDLE);
        } else
                (void) sd_event_source_set_time(m->schema_release_timer, now + SCHEMA_IDLE_USEC);
        (void) sd_event_source_set_enabled(m->schema_release_timer, SD_EVENT_ONESHOT);
}

int manager_new(const ManagerConfig *cfg, sd_event *event, Manager **ret, VbError *reterr) {
        _cleanup_(manager_freep) Manager *m = NULL;
        VbDriverConfig dcfg;
        int r;

        m = new0(Manager, 1);
        if (!m)
                return -ENOMEM;
        m->mode = cfg->mode;
        m->device_removal_timeout_usec = cfg->device_removal_timeout_usec ?: DOMAIN_DEVICE_REMOVAL_TIMEOUT_USEC;
        m->event = sd_event_ref(event);
        m->domains_by_uuid = hashmap_new();
        m->domains_by_name = hashmap_new();
        if (manager_nodedev_init(m) < 0)
                return -ENOMEM;
        if (!m->domains_by_uuid || !m->domains_by_name)
                return -ENOMEM;
        if (free_and_strdup(&m->config_dir, cfg->config_dir) < 0 ||
            free_and_strdup(&m->state_dir, cfg->state_dir) < 0 ||
            free_and_strdup(&m->runtime_dir, cfg->runtime_dir) < 0 ||
            free_and_strdup(&m->sysfs_root, cfg->sysfs_root ?: "/sys") < 0 ||
            asprintf(&m->domains_dir, "%s/domains", cfg->config_dir) < 0 ||
            asprintf(&m->autostart_dir, "%s/autostart", m->domains_dir) < 0)
                return -ENOMEM;

        conf_schema_set_use_callback(on_schema_use, m);

        r = host_set_sysfs_root(m->sysfs_root);
        if (r < 0)
                return r;

        r = make_dir(m->domains_dir, 0755, reterr);
        if (r < 0)
                return r;
        r = make_dir(m->state_dir, 0700, reterr);
        if (r < 0)
                return r;
        r = make_dir(m->runtime_dir, 0755, reterr);
        if (r < 0)
                return r;
        if (!cfg->sysfs_root && streq_ptr(cfg->driver, "test"))
                (void) manager_nodedev_test_host_setup(m); /* the simulated host's devices */

        dcfg = (VbDriverConfig) {
                .event = event,
                .state_dir = m->state_dir,
                .runtime_dir = m->runtime_dir,
                .sysfs_root = m->sysfs_root,
                .events = {
                        .domain_state_changed = on_driver_state_changed,
                        .domain_stopped = on_driver_stopped,
                        .device_removed = manager_on_driver_device_removed,
                        .device_changed = manager_on_driver_device_changed,
                        .device_removal_failed = manager_on_driver_device_removal_failed,
                        .agent_changed = manager_on_driver_agent_changed,
                        .domain_progress = manager_on_driver_snapshot_progress,
                        .domain_connected = on_driver_connected,
                        .userdata = m,
                },
        };
        r = vb_driver_open(cfg->driver, &dcfg, &m->driver, reterr);
        if (r < 0)
                return r;
        r = manager_store_worker(m);
        if (r >= 0)
                r = durable_new(event, m->store_worker, &m->durable);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start the store thread: %s",
                                    strerror(-r));
        r = network_registry_new(m->config_dir, m->runtime_dir, cfg->network_backend, cfg->driver, &m->networks, reterr);
        if (r < 0)
                return r;
        r = storage_registry_new(m->config_dir, m->runtime_dir, cfg->driver, &m->storage, reterr);
        if (r < 0)
                return r;
        m->storage->event = m->event;
        m->networks->durable = m->storage->durable = m->durable;
        m->networks->event = m->event;

        *ret = TAKE_PTR(m);
        return 0;
}

void manager_stop_begin(Manager *m) {
        network_registry_stop(m->networks);
        storage_registry_stop(m->storage);
        manager_nodedev_stop(m);
}

unsigned manager_stop_pending(const Manager *m) {
        return network_registry_jobs(m->networks) + manager_nodedev_changes((Manager *) m) +
               storage_registry_jobs(m->storage);
}

void manager_stop_cut(Manager *m) {
        host_children_cancel();
}

void manager_stop_abandon(Manager *m) {
        manager_nodedev_abandon(m);
        storage_registry_abandon(m->storage);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        manager_commit_defines(m);
        manager_cancel_queued(m);
        manager_migrations_close(m);
        m->durable = durable_free(m->durable);
        m->store_worker = worker_free(m->store_worker);
        m->schema_worker = worker_free(m->schema_worker);
        sd_event_source_disable_unref(m->define_commit_source);
        sd_event_source_disable_unref(m->caps_wait_timer);
        conf_schema_set_use_callback(NULL, NULL);
        sd_event_source_disable_unref(m->schema_release_timer);
        free(m->pending_defines);
        for (size_t i = 0; i < m->n_domains; i++)
                domain_free(m->domains[i]);
        free(m->domains);
        hashmap_free(m->domains_by_uuid);
        hashmap_free(m->domains_by_name);
        manager_nodedev_done(m);
        network_registry_free(m->networks);
        storage_registry_free(m->storage);
        vb_driver_close(m->driver);
        sd_event_unref(m->event);
        free(m->config_dir);
        free(m->domains_dir);
        free(m->autostart_dir);
        free(m->state_dir);
        free(m->runtime_dir);
        free(m->sysfs_root);
        free(m);
        return NULL;
}

void manager_set_events(Manager *m, const ManagerEvents *events) {
        m->events = *events;
}

const char *manager_driver_name(const Manager *m) {
        return vb_driver_name(m->driver);
}

Domain *manager_domain_by_uuid(const Manager *m, const char *uuid) {
        return hashmap_get(m->domains_by_uuid, uuid);
}

Domain *manager_domain_by_name(const Manager *m, const char *name) {
        return hashmap_get(m->domains_by_name, name);
}

int manager_add_domain(Manager *m, Domain *d) {
        int r;

        if (!GREEDY_REALLOC(m->domains, m->n_domains_allocated, m->n_domains + 1))
                return -ENOMEM;
        r = hashmap_put(m->domains_by_uuid, d->uuid, d);
        if (r < 0)
                return r;
        r = hashmap_put(m->domains_by_name, d->name, d);
        if (r < 0) {
                hashmap_remove(m->domains_by_uuid, d->uuid);
                return r;
        }
        m->domains[m->n_domains++] = d;
        if (m->events.domain_added)
                m->events.domain_added(m->events.userdata, d);
        return 0;
}

void manager_remove_domain(Manager *m, Domain *d) {
        if (m->events.domain_removed)
                m->events.domain_removed(m->events.userdata, d);
        hashmap_remove(m->domains_by_uuid, d->uuid);
        hashmap_remove(m->domains_by_name, d->name);
        for (size_t i = 0; i < m->n_domains; i++)
                if (m->domains[i] == d) {
                        memmove(m->domains + i, m->domains + i + 1, (m->n_domains - i - 1) * sizeof(Domain *));
                        m->n_domains--;
                        break;
                }
        domain_free(d);
}

int manager_rename_domain(Manager *m, Domain *d, const char *name) {
        _cleanup_free_ char *n = strdup(name);
        int r;

        if (!n)
                return -ENOMEM;
        hashmap_remove(m->domains_by_name, d->name);
        free(d->name);
        d->name = TAKE_PTR(n);
        r = hashmap_put(m->domains_by_name, d->name, d);
        return r;
}

static int load_one(DomainDef *def, DomainAccess *access, void *userdata) {
        Manager *m = userdata;
        Domain *d;
        int r;

        if (manager_domain_by_uuid(m, domain_def_uuid(def).s) ||
            manager_domain_by_name(m, domain_def_get_name(def))) {
                log_warning("A second saved domain named '%s' (UUID %s), ignoring it.", domain_def_get_name(def),
                            domain_def_uuid(def).s);
                domain_def_free(def);
                domain_access_done(access);
                return 0;
        }
        r = domain_new(m, def, &d);
        if (r < 0) {
                domain_def_free(def);
                domain_access_done(access);
                return r;
        }
        d->access = *access;
        *access = (DomainAccess) {};
        d->autostart = domain_store_get_autostart(m->domains_dir, d->uuid);
        r = manager_add_domain(m, d);
        if (r < 0)
                domain_free(d);
        return r;
}

static int seed_default_domains(Manager *m) {
        _cleanup_free_ char *marker = NULL;
        const char * const *xmls;
        int r;

        if (!m->driver->ops->default_domains)
                return 0;
        if (asprintf(&marker, "%s/%s-host-seeded", m->state_dir, manager_driver_name(m)) < 0)
                return -ENOMEM;
        if (access(marker, F_OK) == 0)
                return 0;

        xmls = m->driver->ops->default_domains(m->driver);
        for (size_t i = 0; xmls && xmls[i]; i++) {
                VbError e = VB_ERROR_NULL;
                Domain *d;
                bool created;

                r = manager_domain_define(m, xmls[i], &d, &created, &e);
                if (r >= 0)
                        r = manager_domain_set_autostart(m, d, true, &e);
                if (r < 0) {
                        log_warning("Failed to set up the default domain: %s", e.message ?: strerror(-r));
                        vb_error_free(&e);
                }
        }
        durable_flush(m->durable); /* the definitions first: the marker says they exist */
        return write_file_atomic(marker, "", 0, 0644);
}

static int reconnect_running(Manager *m) {
        VbDriverDomainInfo *infos = NULL;
        size_t n = 0;
        VbError e = VB_ERROR_NULL;
        int r;

        if (!m->driver->ops->domain_list_running)
                return 0;
        r = m->driver->ops->domain_list_running(m->driver, &infos, &n, &e);
        if (r < 0) {
                log_warning("Failed to list running domains: %s", e.message ?: strerror(-r));
                vb_error_free(&e);
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                Domain *d = manager_domain_by_uuid(m, infos[i].uuid);

                if (!d) {
                        /* A transient domain: its live definition is all there is. */
                        r = domain_new_transient(m, infos[i].live, &d);
                        if (r >= 0) {
                                infos[i].live = NULL;
                                r = manager_add_domain(m, d);
                                if (r < 0)
                                        domain_free(d);
                        }
                        if (r < 0) {
                                log_warning_errno(r, "Failed to take over running domain %s, ignoring: %m",
                                                  infos[i].uuid);
                                continue;
                        }
                } else {
                        domain_def_free(d->live);
                        d->live = TAKE_PTR(infos[i].live);
                }
                d->state = infos[i].state;
                d->id = infos[i].id;
                d->connecting = infos[i].connecting;
                log_info("Domain '%s' is running (id %u).", d->name, d->id);
        }
        for (size_t i = 0; i < n; i++)
                vb_driver_domain_info_done(&infos[i]);
        free(infos);
        return 0;
}

static void autostart_done(int r, Domain *d, const VbError *e, void *userdata) {
        if (r < 0)
                log_warning("Failed to autostart a domain from its managed save: %s", e ? strempty(e->message) : strerror(-r));
        else
                log_info("Autostarted domain '%s' from its managed save.", d->name);
}

int manager_load(Manager *m, VbError *reterr) {
        int r;

        r = domain_store_load_all(m->domains_dir, load_one, m);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to load saved domains from '%s': %s",
                                    m->domains_dir, strerror(-r));
        r = seed_default_domains(m);
        if (r < 0)
                log_warning_errno(r, "Failed to set up the driver's default domains, ignoring: %m");
        (void) manager_nodedev_watch_start(m); /* before the first scan: no change after it goes unseen */
        r = manager_nodedev_scan(m);
        if (r < 0)
                log_warning_errno(r, "Failed to read the host's devices, ignoring: %m");
        r = manager_network_load(m);
        if (r < 0)
                log_warning_errno(r, "Failed to load networks, ignoring: %m");
        r = storage_registry_load(m->storage);
        if (r < 0)
                log_warning_errno(r, "Failed to load storage pools, ignoring: %m");
        (void) manager_storage_default_pool(m);
        r = reconnect_running(m);
        if (r < 0)
                return r;
        manager_snapshot_load_all(m);
        manager_network_prune_ports(m); /* ports of domains that stopped while we were away (network-manager.c) */
        manager_hostdev_load(m);        /* host devices they hold, or held (hostdev-store.c) */

        for (size_t i = 0; i < m->n_domains; i++) {
                Domain *d = m->domains[i];
                VbError e = VB_ERROR_NULL;

                if (!d->autostart || domain_is_active(d))
                        continue;
                /* A managed save: resumed from it (domain-save.c says how it went). */
                if (manager_domain_has_managed_save(m, d)) {
                        r = manager_domain_start_saved(m, d, false, autostart_done, NULL, &e);
                        if (r < 0)
                                log_warning("Failed to autostart domain '%s' from its managed save: %s", d->name,
                                            e.message ?: strerror(-r));
                        vb_error_free(&e);
                        continue;
                }
                /* A start that completes later logs its failure itself (domain-ops.c). */
                r = manager_domain_start_when_ready(m, d, false, NULL, NULL, &e);
                if (r < 0)
                        log_warning("Failed to autostart domain '%s': %s", d->name, e.message ?: strerror(-r));
                else
                        log_info("Autostart%s domain '%s'.", r > 0 ? "ed" : "ing", d->name);
                vb_error_free(&e);
        }
        log_info("Loaded %zu domains.", m->n_domains);
        return 0;
}
