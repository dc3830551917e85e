/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network registry: define / create / start / stop / undefine, autostart, loading, guest ports. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/network-internal.h"
#include "host/child-wait.h"
#include "host/host.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/worker.h"

/* Starts and stops waiting for a thread: beyond this, callers are told to try again. */
#define JOBS_QUEUE_MAX 32

/* A start or stop whose backend steps run in the registry's worker. */
typedef struct NetworkJob {
        NetworkRegistry *registry;
        Network *network;
        NetworkDef *live;  /* start: the definition being started (the job's until it is n's) */
        NetworkPool *pool; /* start: its pool */
        const NetworkDef *stopping; /* stop: n->live (n is busy: nothing else changes it) */
        int r;
        VbError error;
        NetworkDone done;
        NetworkCreateDone created; /* CreateNetwork: n joins the registry when it runs */
        void *userdata;
        struct NetworkJob *next; /* in the registry's list of creations */
} NetworkJob;

static const char * const STATE_PROPERTIES[] = { "Active", "Bridge", NULL };

Network *network_free(Network *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_ports; i++) {
                free(n->ports[i].owner);
                network_actual_done(&n->ports[i].actual);
        }
        free(n->ports);
        network_pool_free(n->pool);
        network_def_free(n->config);
        network_def_free(n->live);
        free(n->name);
        free(n);
        return NULL;
}

int network_registry_new(const char *config_dir, const char *runtime_dir, const char *backend, const char *driver,
                         NetworkRegistry **ret, VbError *reterr) {
        _cleanup_(network_registry_freep) NetworkRegistry *r = NULL;
        int k;

        r = new0(NetworkRegistry, 1);
        if (!r)
                return -ENOMEM;
        r->by_uuid = hashmap_new();
        r->by_name = hashmap_new();
        if (!r->by_uuid || !r->by_name || asprintf(&r->dir, "%s/networks", config_dir) < 0 ||
            asprintf(&r->status_dir, "%s/networks", runtime_dir) < 0)
                return -ENOMEM;
        k = mkdir_p(r->dir, 0755);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create directory '%s': %s", r->dir,
                                    strerror(-k));
        k = vb_network_backend_new(backend, driver, runtime_dir, &r->backend, reterr);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

/* Networks keep running when virtbusd exits (as domains do); this only frees memory. */
NetworkRegistry *network_registry_free(NetworkRegistry *r) {
        if (!r)
                return NULL;
        /* Waits for the host steps a thread is taking; their callers, like the bus, are gone. */
        r->freeing = true;
        if (r->worker && worker_running(r->worker)) {
                /* virtbusd stops and gave up waiting (daemon/main.c): the thread keeps what it uses. */
                log_warning("A network start or stop is still running: virtbusd exits without it.");
                return NULL;
        }
        r->worker = worker_free(r->worker);
        for (size_t i = 0; i < r->n_networks; i++)
                network_free(r->networks[i]);
        free(r->networks);
        hashmap_free(r->by_uuid);
        hashmap_free(r->by_name);
        vb_network_backend_free(r->backend);
        free(r->dir);
        free(r->status_dir);
        free(r);
        return NULL;
}

void network_registry_set_events(NetworkRegistry *r, const NetworkEvents *events) {
        r->events = *events;
}

Network *network_registry_by_uuid(const NetworkRegistry *r, const char *uuid) {
        return hashmap_get(r->by_uuid, uuid);
}

Network *network_registry_by_name(const NetworkRegistry *r, const char *name) {
        return hashmap_get(r->by_name, name);
}

bool network_is_active(const Network *n) {
        return n->live != NULL;
}

bool network_is_persistent(const Network *n) {
        return n->config != NULL;
}

const NetworkDef *network_current_def(const Network *n) {
        return n->live ?: n->config;
}

const char *network_forward_mode_name(const Network *n) {
        const NetworkDef *def = network_current_def(n);
        return network_forward_mode_to_string(def->has_forward ? def->forward.mode : NETWORK_FORWARD_NONE);
}

static void emit_changed(Network *n, const char * const *properties) {
        if (n->registry->events.changed)
                n->registry->events.changed(n->registry->events.userdata, n, properties);
}

int network_registry_insert(NetworkRegistry *r, Network *n, bool announce) {
        int k;

        if (!GREEDY_REALLOC(r->networks, r->n_networks_allocated, r->n_networks + 1))
                return -ENOMEM;
        k = hashmap_put(r->by_uuid, n->uuid, n);
        if (k < 0)
                return k;
        k = hashmap_put(r->by_name, n->name, n);
        if (k < 0) {
                hashmap_remove(r->by_uuid, n->uuid);
                return k;
        }
        r->networks[r->n_networks++] = n;
        if (announce && r->events.added)
                r->events.added(r->events.userdata, n);
        return 0;
}

static void registry_remove(NetworkRegistry *r, Network *n) {
        if (r->events.removed)
                r->events.removed(r->events.userdata, n);
        hashmap_remove(r->by_uuid, n->uuid);
        hashmap_remove(r->by_name, n->name);
        for (size_t i = 0; i < r->n_networks; i++)
                if (r->networks[i] == n) {
                        memmove(r->networks + i, r->networks + i + 1, (r->n_networks - i - 1) * sizeof(Network *));
                        r->n_networks--;
                        break;
                }
        network_free(n);
}

Network *network_new(NetworkRegistry *r, const NetworkDef *def) {
        Network *n = new0(Network, 1);

        if (!n)
                return NULL;
        n->registry = r;
        network_def_get_uuid_string(def, n->uuid);
        n->name = strdup(def->name);
        if (!n->name) {
                free(n);
                return NULL;
        }
        return n;
}

static bool bridge_taken(const NetworkRegistry *r, const char *name, const Network *except) {
        for (const struct NetworkJob *j = r->creating; j; j = j->next)
                if (streq_ptr(j->live->bridge, name))
                        return true;
        for (size_t i = 0; i < r->n_networks; i++) {
                const Network *n = r->networks[i];

                if (n == except)
                        continue;
                if ((n->config && streq_ptr(n->config->bridge, name)) || (n->live && streq_ptr(n->live->bridge, name)))
                        return true;
        }
        return false;
}

/* Networks with a bridge of their own get one named virbrN when the definition names none; two
 * networks never share a bridge. */
static int assign_bridge(NetworkRegistry *r, NetworkDef *def, const Network *self, VbError *reterr) {
        char name[16];

        if (def->bridge) {
                if (network_def_has_own_bridge(def) && bridge_taken(r, def->bridge, self))
                        return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Bridge '%s' is used by another network.",
                                            def->bridge);
                return 0;
        }
        if (!network_def_has_own_bridge(def)) {
                if (def->forward.mode == NETWORK_FORWARD_BRIDGE && def->forward.n_devs == 0)
                        return vb_error_set(reterr, VB_ERROR_INVALID_XML,
                                            "Network '%s': forward mode 'bridge' needs <bridge name=> or forward devices.",
                                            def->name);
                return 0;
        }
        for (unsigned i = 0; i < 1024; i++) {
                snprintf(name, sizeof name, "virbr%u", i);
                if (!bridge_taken(r, name, self) && network_bridge_name_free(r, name))
                        return free_and_strdup(&def->bridge, name);
        }
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No free bridge name.");
}

/* Name and UUID must name the same network, or no network at all. */
static int check_conflicts(NetworkRegistry *r, const NetworkDef *def, Network **ret_existing, VbError *reterr) {
        char uuid[37];
        Network *by_uuid, *by_name;

        network_def_get_uuid_string(def, uuid);
        by_uuid = network_registry_by_uuid(r, uuid);
        by_name = network_registry_by_name(r, def->name);
        if (by_name && by_name != by_uuid)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "A network named '%s' exists already (UUID %s).",
                                    def->name, by_name->uuid);
        if (by_uuid && by_uuid != by_name)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Network %s exists already as '%s'.", uuid,
                                    by_uuid->name);
        *ret_existing = by_uuid;
        return 0;
}

int network_define(NetworkRegistry *r, const char *xml, NetworkCaller *caller, Network **ret, bool *ret_created,
                   VbError *reterr) {
        NetworkDef *def = NULL;
        int k;

        k = network_def_parse_string(xml, 0, &def, reterr);
        if (k < 0)
                return k;
        return network_define_def(r, def, caller, ret, ret_created, reterr);
}

/* A transient network being created is not in the registry yet, but its name, UUID and bridge are
 * taken. */
static NetworkJob *creating_conflict(NetworkRegistry *r, const NetworkDef *def) {
        char uuid[37];

        network_def_get_uuid_string(def, uuid);
        for (NetworkJob *j = r->creating; j; j = j->next)
                if (streq(j->network->name, def->name) || streq(j->network->uuid, uuid) ||
                    (def->bridge && network_def_has_own_bridge(def) && streq_ptr(j->live->bridge, def->bridge)))
                        return j;
        return NULL;
}

static int check_creating(NetworkRegistry *r, const NetworkDef *def, VbError *reterr) {
        NetworkJob *other = creating_conflict(r, def);

        if (!other)
                return 0;
        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Network '%s' (bridge '%s') is being created; try again "
                            "when that has finished", other->network->name, strna(other->live->bridge));
}

int network_define_def(NetworkRegistry *r, NetworkDef *parsed, NetworkCaller *caller, Network **ret, bool *ret_created,
                       VbError *reterr) {
        _cleanup_(network_def_freep) NetworkDef *def = parsed;
        Network *n = NULL;
        bool created;
        int k;

        k = check_conflicts(r, def, &n, reterr);
        if (k >= 0)
                k = check_creating(r, def, reterr);
        if (k < 0)
                return k;
        k = assign_bridge(r, def, n, reterr);
        if (k < 0)
                return k;
        k = network_access_check(r, def, caller, reterr);
        if (k < 0)
                return k;
        k = network_store_save(r->durable, r->dir, def, reterr);
        if (k < 0)
                return k;
        created = !n;
        if (n) {
                bool was_persistent = network_is_persistent(n);

                /* The new definition applies from the next start; the live one stays. */
                network_def_free(n->config);
                n->config = TAKE_PTR(def);
                emit_changed(n, was_persistent ? (const char * const[]) { "Bridge", "ForwardMode", NULL }
                                               : (const char * const[]) { "Persistent", "Bridge", "ForwardMode", NULL });
        } else {
                n = network_new(r, def);
                if (!n)
                        return -ENOMEM;
                n->config = TAKE_PTR(def);
                k = network_registry_insert(r, n, true);
                if (k < 0) {
                        network_free(n);
                        return k;
                }
        }
        log_info("Defined network '%s' (%s).", n->name, n->uuid);
        if (ret_created)
                *ret_created = created;
        *ret = n;
        return 0;
}

static int compare_pci(const void *a, const void *b) {
        const NetworkPciAddress *x = a, *y = b;
        uint64_t kx = ((uint64_t) x->domain << 24) | (x->bus << 16) | (x->slot << 8) | x->function;
        uint64_t ky = ((uint64_t) y->domain << 24) | (y->bus << 16) | (y->slot << 8) | y->function;

        return kx < ky ? -1 : kx > ky;
}

/* The VFs of a PF, in address order: <sysfs>/class/net/<pf>/device/virtfnN -> ../DDDD:BB:SS.F */
static int read_pf_vfs(const char *pf, NetworkPciAddress **ret, size_t *ret_n) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        NetworkPciAddress *l = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;

        if (asprintf(&dir, "%s/class/net/%s/device", host_sysfs_root(), pf) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        while ((de = readdir(d))) {
                char target[256];
                const char *base;
                unsigned dom, bus, slot, fn;
                ssize_t len;

                if (strncmp(de->d_name, "virtfn", 6) != 0)
                        continue;
                len = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
                if (len < 0)
                        continue;
                target[len] = 0;
                base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
                if (sscanf(base, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4)
                        continue;
                if (!GREEDY_REALLOC(l, allocated, n + 1)) {
                        free(l);
                        return -ENOMEM;
                }
                l[n++] = (NetworkPciAddress) { dom, bus, slot, fn };
        }
        if (n > 1)
                qsort(l, n, sizeof(NetworkPciAddress), compare_pci);
        *ret = l;
        *ret_n = n;
        return 0;
}

int network_build_pool(const NetworkDef *def, NetworkPool **ret, VbError *reterr) {
        _cleanup_free_ NetworkPciAddress *vfs = NULL;
        size_t n_vfs = 0;
        int k;

        if (def->forward.pf_dev) {
                k = read_pf_vfs(def->forward.pf_dev, &vfs, &n_vfs);
                if (k < 0)
                        return k;
        }
        return network_pool_new(def, vfs, n_vfs, ret, reterr);
}

/* The live definition of an active network (or one being started) in the runtime directory: replaced
 * atomically, not synced (it is runtime state: a crash of the host ends the network too). */
static int write_status_def(NetworkRegistry *r, const Network *n, const NetworkDef *live) {
        _cleanup_free_ char *xml = NULL, *path = NULL;
        int k;

        k = network_def_format(live, &xml);
        if (k < 0)
                return k;
        if (asprintf(&path, "%s/%s.xml", r->status_dir, n->uuid) < 0)
                return -ENOMEM;
        return write_file_replace(path, xml, strlen(xml), 0600);
}


static void remove_status(NetworkRegistry *r, const Network *n) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s.xml", r->status_dir, n->uuid) >= 0)
                (void) unlink(path);
        free(path);
        path = NULL;
        if (asprintf(&path, "%s/%s.ports", r->status_dir, n->uuid) >= 0)
                (void) unlink(path);
}

/* Before the backend starts def: its pool, and the record of the start. */
static int start_prepare(NetworkRegistry *r, Network *n, NetworkDef *live, NetworkPool **ret_pool, VbError *reterr) {
        int k;

        k = network_build_pool(live, ret_pool, reterr);
        if (k < 0)
                return k;
        /* Recorded first: a virtbusd killed during the start finds what it made, and completes it or
         * removes it (network-load.c). */
        k = write_status_def(r, n, live);
        if (k < 0) {
                *ret_pool = network_pool_free(*ret_pool);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to record network '%s' as "
                                    "starting: %s", n->name, strerror(-k));
        }
        return 0;
}

/* After the backend's start (k): n's live definition and pool, or the record gone (takes live, pool). */
static int start_finish(NetworkRegistry *r, Network *n, NetworkDef *live, NetworkPool *pool, int k) {
        if (k < 0) {
                remove_status(r, n);
                network_def_free(live);
                network_pool_free(pool);
                return k;
        }
        network_def_free(n->live);
        n->live = live;
        network_pool_free(n->pool);
        n->pool = pool;
        log_info("Started network '%s' (%s backend).", n->name, r->backend->ops->name);
        return 0;
}

/* Starts def as n's live definition (takes def). */
static int start_with(NetworkRegistry *r, Network *n, NetworkDef *def, VbError *reterr) {
        _cleanup_(network_def_freep) NetworkDef *live = def;
        NetworkPool *pool = NULL;
        int k;

        k = start_prepare(r, n, live, &pool, reterr);
        if (k < 0)
                return k;
        k = r->backend->ops->start(r->backend, live, reterr);
        return start_finish(r, n, TAKE_PTR(live), pool, k);
}

int network_check_idle(const Network *n, VbError *reterr) {
        if (!n->busy)
                return 0;
        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Network '%s' is busy %s; try again when that has finished",
                            n->name, n->busy);
}

static int start_check(Network *n, VbError *reterr) {
        int k = network_check_idle(n, reterr);

        if (k < 0)
                return k;
        if (network_is_active(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is already active.", n->name);
        return 0;
}

int network_start(NetworkRegistry *r, Network *n, VbError *reterr) {
        NetworkDef *live = NULL;
        int k;

        k = start_check(n, reterr);
        if (k < 0)
                return k;
        k = network_def_copy(n->config, &live);
        if (k < 0)
                return k;
        k = start_with(r, n, live, reterr);
        if (k < 0)
                return k;
        emit_changed(n, STATE_PROPERTIES);
        return 0;
}

static int stop_check(Network *n, VbError *reterr) {
        int k = network_check_idle(n, reterr);

        if (k < 0)
                return k;
        if (!network_is_active(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is not active.", n->name);
        if (n->n_ports > 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "Network '%s' is in use by %zu guest interface(s) (the first by domain %s).", n->name,
                                    n->n_ports, n->ports[0].owner);
        return 0;
}

/* After the backend stopped n (k): n inactive, or gone if transient. */
static int stop_finish(NetworkRegistry *r, Network *n, int k) {
        if (k < 0)
                return k;
        remove_status(r, n);
        n->live = network_def_free(n->live);
        n->pool = network_pool_free(n->pool);
        log_info("Stopped network '%s'.", n->name);
        if (!network_is_persistent(n)) {
                registry_remove(r, n);
                return 0;
        }
        emit_changed(n, STATE_PROPERTIES);
        return 0;
}

int network_stop(NetworkRegistry *r, Network *n, VbError *reterr) {
        int k;

        k = stop_check(n, reterr);
        if (k < 0)
                return k;
        k = r->backend->ops->stop(r->backend, n->live, reterr);
        return stop_finish(r, n, k);
}

static void job_free(NetworkJob *j) {
        network_def_free(j->live);
        network_pool_free(j->pool);
        vb_error_free(&j->error);
        free(j);
}

/* In the worker: the backend only (it touches the host and its own files, nothing of the registry). */
static void job_work(void *userdata) {
        NetworkJob *j = userdata;
        VbNetworkBackend *b = j->registry->backend;

        /* Not begun when virtbusd began to stop: nothing is done (job_done answers). */
        if (__atomic_load_n(&j->registry->stopping, __ATOMIC_ACQUIRE)) {
                j->r = -ECANCELED;
                return;
        }
        j->r = j->live ? b->ops->start(b, j->live, &j->error) : b->ops->stop(b, j->stopping, &j->error);
}

/* A job that virtbusd's stop cut short, or kept from starting: its caller is told so. */
static void job_stopped_error(NetworkJob *j) {
        _cleanup_free_ char *why = NULL;
        const char *what = j->live ? "start" : "stop";

        if (j->r >= 0 || !j->registry->stopping)
                return;
        if (j->r == -ECANCELED) {
                vb_error_free(&j->error);
                j->r = vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "Network '%s': the %s was not begun: "
                                    "virtbusd is stopping", j->network->name, what);
                return;
        }
        why = TAKE_PTR(j->error.message);
        vb_error_free(&j->error);
        j->r = vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "Network '%s': the %s was cut short and undone: "
                            "virtbusd is stopping (%s)", j->network->name, what, why ?: strerror(-j->r));
}

/* CreateNetwork's end: n joins the registry (announced), or goes. */
static void created(NetworkJob *j) {
        NetworkRegistry *r = j->registry;
        Network *n = j->network;
        int k;

        for (NetworkJob **p = &r->creating; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        if (r->freeing) {
                job_free(j);
                network_free(n);
                return;
        }
        n->busy = NULL;
        k = start_finish(r, n, TAKE_PTR(j->live), TAKE_PTR(j->pool), j->r);
        if (k >= 0 && (k = network_registry_insert(r, n, true)) < 0) {
                (void) r->backend->ops->stop(r->backend, n->live, NULL);
                remove_status(r, n);
        }
        if (k < 0) {
                network_free(n);
                n = NULL;
        }
        j->created(n, k, &j->error, j->userdata);
        job_free(j);
}

static void job_done(void *userdata, bool cancelled) {
        NetworkJob *j = userdata;
        NetworkRegistry *r = j->registry;
        Network *n = j->network;
        bool start = j->live;
        int k;

        r->n_jobs--;
        if (cancelled) /* never ran: nothing on the host changed */
                j->r = vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "virtbusd is stopping");
        else
                job_stopped_error(j);
        if (j->created)
                return created(j);
        if (r->freeing) {
                /* The record of a start cut short here is completed or cleared at the next start-up. */
                log_notice("Network '%s': %s %s while virtbusd stops.", n->name, n->busy,
                           j->r < 0 ? "failed" : "finished");
                job_free(j);
                return;
        }
        n->busy = NULL;
        if (start) {
                k = start_finish(r, n, TAKE_PTR(j->live), TAKE_PTR(j->pool), j->r);
                if (k >= 0)
                        emit_changed(n, STATE_PROPERTIES);
        } else
                k = stop_finish(r, n, j->r); /* n may be gone now */
        j->done(k, &j->error, j->userdata);
        job_free(j);
}

void network_registry_stop(NetworkRegistry *r) {
        __atomic_store_n(&r->stopping, true, __ATOMIC_RELEASE);
}

unsigned network_registry_jobs(const NetworkRegistry *r) {
        return r->n_jobs;
}

static int job_submit(NetworkRegistry *r, NetworkJob *j, VbError *reterr) {
        int k;

        if (r->stopping)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Network '%s' cannot be %s: virtbusd is "
                                    "stopping", j->network->name, j->live ? "started" : "stopped");
        if (!r->worker) {
                k = worker_new(r->event, 1, JOBS_QUEUE_MAX, 0, &r->worker);
                if (k < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to start a thread for networks: %s",
                                            strerror(-k));
        }
        k = worker_submit(r->worker, job_work, job_done, j);
        if (k >= 0)
                r->n_jobs++;
        if (k == -EAGAIN)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Too many networks are starting or stopping; try "
                                    "again later");
        return k;
}

int network_start_async(NetworkRegistry *r, Network *n, NetworkDone done, void *userdata, VbError *reterr) {
        NetworkJob *j;
        int k;

        if (!r->event) {
                done(network_start(r, n, reterr), reterr, userdata);
                return 0;
        }
        k = start_check(n, reterr);
        if (k < 0)
                return k;
        j = new0(NetworkJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (NetworkJob) { .registry = r, .network = n, .done = done, .userdata = userdata, .error = VB_ERROR_NULL };
        k = network_def_copy(n->config, &j->live);
        if (k >= 0)
                k = start_prepare(r, n, j->live, &j->pool, reterr);
        if (k >= 0) {
                k = job_submit(r, j, reterr);
                if (k < 0)
                        remove_status(r, n);
        }
        if (k < 0) {
                job_free(j);
                return k;
        }
        n->busy = "starting";
        log_debug("Network '%s': the start was handed to a thread.", n->name);
        return 0;
}

int network_stop_async(NetworkRegistry *r, Network *n, NetworkDone done, void *userdata, VbError *reterr) {
        NetworkJob *j;
        int k;

        if (!r->event) {
                done(network_stop(r, n, reterr), reterr, userdata);
                return 0;
        }
        k = stop_check(n, reterr);
        if (k < 0)
                return k;
        j = new0(NetworkJob, 1);
        if (!j)
                return -ENOMEM;
        *j = (NetworkJob) { .registry = r, .network = n, .stopping = n->live, .done = done, .userdata = userdata,
                            .error = VB_ERROR_NULL };
        k = job_submit(r, j, reterr);
        if (k < 0) {
                job_free(j);
                return k;
        }
        n->busy = "stopping";
        log_debug("Network '%s': the stop was handed to a thread.", n->name);
        return 0;
}

int network_create_def(NetworkRegistry *r, NetworkDef *parsed, NetworkCaller *caller, NetworkCreateDone done,
                       void *userdata, VbError *reterr) {
        _cleanup_(network_def_freep) NetworkDef *def = parsed;
        NetworkJob *j;
        Network *n = NULL;
        int k;

        k = check_conflicts(r, def, &n, reterr);
        if (k < 0)
                return k;
        if (n)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Network '%s' exists already.", n->name);
        k = check_creating(r, def, reterr);
        if (k < 0)
                return k;
        k = assign_bridge(r, def, NULL, reterr);
        if (k < 0)
                return k;
        k = network_access_check(r, def, caller, reterr);
        if (k < 0)
                return k;
        /* Transient: a live definition only. */
        n = network_new(r, def);
        j = new0(NetworkJob, 1);
        if (!n || !j) {
                network_free(n);
                free(j);
                return -ENOMEM;
        }
        *j = (NetworkJob) { .registry = r, .network = n, .live = TAKE_PTR(def), .created = done, .userdata = userdata,
                            .error = VB_ERROR_NULL };
        k = start_prepare(r, n, j->live, &j->pool, reterr);
        if (k >= 0 && r->event) {
                k = job_submit(r, j, reterr);
                if (k < 0)
                        remove_status(r, n);
        } else if (k >= 0) { /* no event loop: here and now */
                job_work(j);
                created(j);
                return 0;
        }
        if (k < 0) {
                job_free(j);
                network_free(n);
                return k;
        }
        n->busy = "starting";
        j->next = r->creating;
        r->creating = j;
        log_debug("Network '%s': the start was handed to a thread.", n->name);
        return 0;
}

int network_undefine(NetworkRegistry *r, Network *n, VbError *reterr) {
        int k;

        if (!network_is_persistent(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is transient: it has no saved definition.",
                                    n->name);
        k = network_check_idle(n, reterr);
        if (k < 0)
                return k;
        k = network_store_remove(r->durable, r->dir, n->uuid, reterr);
        if (k < 0)
                return k;
        n->config = network_def_free(n->config);
        n->autostart = false;
        log_info("Undefined network '%s'.", n->name);
        if (!network_is_active(n)) {
                registry_remove(r, n);
                return 0;
        }
        emit_changed(n, (const char * const[]) { "Persistent", "Autostart", NULL });
        return 0;
}

int network_set_autostart(NetworkRegistry *r, Network *n, bool autostart, VbError *reterr) {
        int k;

        if (!network_is_persistent(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is transient: it cannot autostart.",
                                    n->name);
        if (n->autostart == autostart)
                return 0;
        k = network_store_set_autostart(r->durable, r->dir, n->uuid, autostart, reterr);
        if (k < 0)
                return k;
        n->autostart = autostart;
        emit_changed(n, (const char * const[]) { "Autostart", NULL });
        return 0;
}

int network_get_xml(NetworkRegistry *r, Network *n, unsigned flags, char **ret, VbError *reterr) {
        const NetworkDef *def = (flags & NETWORK_XML_INACTIVE) && n->config ? n->config : network_current_def(n);
        int k = network_def_format(def, ret);

        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format network '%s': %s", n->name,
                                    strerror(-k));
        return 0;
}

int network_get_leases(NetworkRegistry *r, Network *n, const char *mac, HostDhcpLease **ret, size_t *ret_n,
                       VbError *reterr) {
        _cleanup_free_ uint8_t (*ports)[6] = calloc(n->n_ports ?: 1, 6);

        if (!network_is_active(n))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Network '%s' is not active.", n->name);
        if (!ports)
                return -ENOMEM;
        for (size_t i = 0; i < n->n_ports; i++)
                memcpy(ports[i], n->ports[i].mac, 6);
        return r->backend->ops->get_leases(r->backend, n->live, (const uint8_t (*)[6]) ports, n->n_ports, mac, ret,
                                           ret_n, reterr);
}

int network_registry_neighbours(NetworkRegistry *r, const uint8_t (*macs)[6], size_t n_macs, HostNeighbour **ret,
                                size_t *ret_n, VbError *reterr) {
        int k;

        if (!r->backend->ops->neighbours)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The %s network backend has no host neighbour "
                                    "table to look in", r->backend->ops->name);
        k = r->backend->ops->neighbours(r->backend, macs, n_macs, ret, ret_n);
        if (k < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read the host's neighbour table: %s",
                                    strerror(-k));
        return 0;
}
