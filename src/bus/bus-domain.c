/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Domain on /org/virtbus1/domain/<uuid hex>, and the Manager's domain methods. */
#include "bus/bus-authz.h"
#include "bus/bus-domain-console.h"
#include "bus/bus-domain-device.h"
#include "bus/bus-domain-save.h"
#include "bus/bus-domain-snapshot.h"
#include "bus/bus-domain-stats.h"
#include "bus/bus-domain.h"
#include "bus/bus-error.h"
#include "conf/device-conf.h"
#include "conf/domain-devices.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "conf/domain-access.h"
#include "host/user-open.h"
#include "core/domain-save.h"
#include "core/manager.h"
#include "util/log.h"

/* Larger definitions are refused before parsing. */
#define DOMAIN_XML_MAX (4U * 1024U * 1024U)
/* Shutdown replies when the guest powered off, or after this with Timeout (below the 25 s that sd-bus
 * and GDBus clients wait by default). */
#define SHUTDOWN_TIMEOUT_USEC (20ULL * 1000ULL * 1000ULL)

#define START_PAUSED UINT64_C(1)
#define SHUTDOWN_NO_WAIT UINT64_C(1)
#define POWER_AGENT UINT64_C(2) /* Shutdown/Reboot: ask the guest agent instead of ACPI */
#define XML_INACTIVE UINT64_C(1)
#define XML_SECURE UINT64_C(2)
/* SetMemory, SetVCPUs: the running domain, the saved definition (neither: the running one if it runs). */
#define TUNE_LIVE UINT64_C(1)
#define TUNE_CONFIG UINT64_C(2)
#define TUNE_MAXIMUM UINT64_C(4) /* SetVCPUs: <vcpu> itself, not current= */

#define ACTION_MANAGE BUS_ACTION_DOMAIN_MANAGE
#define ACTION_HOST_FILES BUS_ACTION_DOMAIN_HOST_FILES
#define ACTION_READ_SECURE BUS_ACTION_DOMAIN_READ_SECURE

const char *bus_domain_path_buf(const Domain *d, char buf[static BUS_DOMAIN_PATH_MAX]) {
        return bus_uuid_path(VB_DOMAIN_PREFIX, d->uuid, buf);
}

char *bus_domain_path(const Domain *d) {
        char buf[BUS_DOMAIN_PATH_MAX];
        return strdup(bus_domain_path_buf(d, buf));
}

Domain *bus_domain_from_path(BusServer *s, const char *path) {
        char uuid[37];

        if (bus_uuid_from_path(VB_DOMAIN_PREFIX, path, uuid) < 0)
                return NULL;
        return manager_domain_by_uuid(s->manager, uuid);
}

static int find_domain(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        return bus_object_found(bus_domain_from_path(userdata, path), found);
}

static char *path_of(const void *d) {
        return bus_domain_path(d);
}

static int enumerate_domains(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        BusServer *s = userdata;

        return bus_object_enumerate((const void * const *) s->manager->domains, s->manager->n_domains, path_of,
                                    nodes);
}

/* In a parse worker (bus-parse.h): pure. */
static int parse_definition(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        DomainDef *def = NULL;
        int r;

        r = domain_def_parse_string(xml, flags, &def, reterr);
        if (r >= 0)
                *ret = def;
        return r;
}

static void free_definition(void *def) {
        domain_def_free(def);
}

static const char *definition_name(const void *def) {
        return domain_def_get_name(def);
}

/* Then its host paths (userdata: the DomainAccess to fill). */
static int authorize_definition_paths(BusServer *s, sd_bus_message *m, const void *def, void *userdata,
                                      sd_bus_error *error) {
        return bus_domain_authorize_paths(s, m, domain_def_get_name(def), def, NULL, userdata, error);
}

/* The definition, parsed off the event loop; polkit for domain.manage with its name as detail. */
#define DEFINITION_SPEC(allowed)                                                                        \
        {                                                                                               \
                .what = "definition", .max = DOMAIN_XML_MAX, .allowed_flags = (allowed),                \
                .parse = parse_definition, .free = free_definition, .action = ACTION_MANAGE,           \
                .detail_key = "domain", .name = definition_name,                                        \
                .authorize_more = authorize_definition_paths,                                           \
        }
static const BusParseSpec define_spec = DEFINITION_SPEC(0);
static const BusParseSpec create_spec = DEFINITION_SPEC(START_PAUSED);

/* Returns 1 with *ret, *ret_flags and *ret_access set to go on, 0 when the call goes on later, < 0 on
 * error. */
static int parse_and_authorize(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, DomainDef **ret,
                               uint64_t *ret_flags, DomainAccess *ret_access, sd_bus_error *error) {
        void *def = NULL;
        int r;

        r = bus_parse_document(s, m, spec, 0, ret_access, &def, ret_flags, error);
        if (r > 0)
                *ret = def;
        return r;
}

int bus_domain_parse_create(BusServer *s, sd_bus_message *m, DomainDef **ret, uint64_t *ret_flags,
                            DomainAccess *ret_access, sd_bus_error *error) {
        return parse_and_authorize(s, m, &create_spec, ret, ret_flags, ret_access, error);
}

/* A volume disk's file (0600 in a pool) is opened by the service itself when polkit lets the caller use
 * that volume (org.virtbus1.storage.manage, details pool and volume) and the volume is the caller's own,
 * or root's and the disk read-only (<readonly/>, cdrom, floppy: the descriptor QEMU gets is then opened
 * read-only) (storage_vol_resolve: any other is AccessDenied, at Define and again at every start and
 * hot-plug); that is recorded as a grant of the volume's path. */
static int authorize_volume(BusServer *s, sd_bus_message *m, const char *domain, const DeviceDef *dev,
                            DomainAccess *access, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        const char *pool, *volume;
        VbError e = VB_ERROR_NULL;
        int r;

        if (!device_disk_get_volume(dev, &pool, &volume) || access->owner == 0)
                return 1;
        r = storage_vol_resolve(s->manager->storage, pool, volume, false, (uid_t) access->owner,
                                device_disk_is_readonly(dev), &path, NULL, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        r = bus_polkit_check(s->polkit, m, BUS_ACTION_STORAGE_MANAGE,
                             (const char *[]) { "pool", pool, "volume", volume, NULL }, error);
        if (r <= 0) {
                if (r < 0 && (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) ||
                              sd_bus_error_has_name(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))) {
                        sd_bus_error_free(error);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Domain '%s': disk '%s' is volume '%s' of pool '%s', which you may not "
                                                 "use (%s with details pool and volume)", domain,
                                                 strempty(device_disk_get_target(dev)), volume, pool,
                                                 BUS_ACTION_STORAGE_MANAGE);
                }
                return r;
        }
        r = domain_access_grant(access, path, 0);
        if (r < 0)
                return r;
        log_notice("Domain '%s': volume '%s' of pool '%s' ('%s') opened by the service for uid %u.", domain, volume,
                   pool, path, (unsigned) access->owner);
        return 1;
}

static int authorize_volumes(BusServer *s, sd_bus_message *m, const char *domain, const DomainDef *def,
                             const DeviceDef *dev, DomainAccess *access, sd_bus_error *error) {
        DeviceDef *const *devices;
        size_t n;
        int r;

        if (dev)
                return authorize_volume(s, m, domain, dev, access, error);
        n = domain_def_get_devices(def, &devices);
        for (size_t i = 0; i < n; i++) {
                r = authorize_volume(s, m, domain, devices[i], access, error);
                if (r <= 0)
                        return r;
        }
        return 1;
}

int bus_domain_authorize_paths(BusServer *s, sd_bus_message *m, const char *domain, const DomainDef *def,
                               const DeviceDef *dev, DomainAccess *ret, sd_bus_error *error) {
        _cleanup_(domain_paths_done) DomainPaths denied = {};
        _cleanup_(domain_access_done) DomainAccess access = {};
        VbError e = VB_ERROR_NULL;
        uid_t uid;
        int r;

        r = bus_polkit_sender_uid(s->polkit, m, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to find out who called: %m");
        access.owner = (uint32_t) uid;
        r = manager_domain_paths_denied(s->manager, def, dev, access.owner, &denied, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        for (size_t i = 0; i < denied.n; i++) {
                const char *details[] = { "domain", domain, "path", denied.v[i].path, NULL };

                r = bus_polkit_check(s->polkit, m, ACTION_HOST_FILES, details, error);
                if (r == 0)
                        return 0;
                if (r < 0) {
                        /* Refused, or only with an administrator's password the caller did not let polkit
                         * ask for: either way the caller hears which path, and why. */
                        if (!sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) &&
                            !sd_bus_error_has_name(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                                return r;
                        sd_bus_error_free(error);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Domain '%s': %s is '%s', which you may not %s yourself, and '%s' "
                                                 "was not granted (an administrator may grant it, also interactively): "
                                                 "a guest may reach only what its owner may",
                                                 domain, denied.v[i].what, denied.v[i].path,
                                                 host_open_mode_to_string((HostOpenMode) denied.v[i].use),
                                                 ACTION_HOST_FILES);
                }
                /* An administrator allowed this path: the service opens it itself, symlinks refused. */
                r = domain_access_grant(&access, denied.v[i].path, 0);
                if (r < 0)
                        return r;
                log_notice("Domain '%s': '%s' allowed to uid %u through %s.", domain, denied.v[i].path,
                           (unsigned) uid, ACTION_HOST_FILES);
        }
        r = authorize_volumes(s, m, domain, def, dev, &access, error);
        if (r <= 0)
                return r;
        *ret = access;
        access = (DomainAccess) {};
        return 1;
}

/* The BusServer is the userdata of the Manager's events (bus_server_new sets it). */
static BusServer *server_of(Domain *d) {
        return d->manager->events.userdata;
}

/* A DefineDomain or CreateDomain answered later: it counts against its caller's limits until then
 * (bus_parse_document_held), also while it waits in core for the capabilities probe or other calls. */
typedef struct LaterCall {
        sd_bus_message *m;
        BusParseHold *hold;
} LaterCall;

static LaterCall *later_call_new(sd_bus_message *m, BusParseHold *hold) {
        LaterCall *c = new0(LaterCall, 1);

        if (!c) {
                bus_parse_release(hold);
                return NULL;
        }
        *c = (LaterCall) { .m = sd_bus_message_ref(m), .hold = hold };
        return c;
}

static sd_bus_message *later_call_done(LaterCall *c) {
        sd_bus_message *m = c->m;

        bus_parse_release(c->hold);
        free(c);
        return m;
}

static void on_defined(Manager *mgr, Domain *d, bool created, int r, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = later_call_done(userdata);

        if (r < 0)
                bus_reply_later(m, r, e);
        else
                (void) bus_reply_path(m, bus_domain_path(d));
}

static int parse_held(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, DomainDef **ret, uint64_t *ret_flags,
                      DomainAccess *ret_access, LaterCall **ret_call, sd_bus_error *error) {
        BusParseHold *hold = NULL;
        void *def = NULL;
        int r;

        r = bus_parse_document_held(s, m, spec, 0, ret_access, &def, ret_flags, &hold, error);
        if (r <= 0)
                return r;
        *ret_call = later_call_new(m, hold);
        if (!*ret_call) {
                spec->free(def);
                return -ENOMEM;
        }
        *ret = def;
        return 1;
}

int bus_manager_method_define_domain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(domain_access_done) DomainAccess access = {};
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags = 0;
        DomainDef *def = NULL;
        LaterCall *later = NULL;
        int r;

        r = parse_held(s, m, &define_spec, &def, &flags, &access, &later, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Saved together with whatever else arrives meanwhile; on_defined replies. */
        r = manager_domain_define_async(s->manager, def, &access, on_defined, later, &e);
        if (r < 0) {
                sd_bus_message_unref(later_call_done(later));
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

static void on_created(Domain *d, int r, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = later_call_done(userdata);

        if (r < 0 || !d)
                bus_reply_later(m, r < 0 ? r : -ESRCH, e);
        else
                (void) bus_reply_path(m, bus_domain_path(d));
}

int bus_manager_method_create_domain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(domain_access_done) DomainAccess access = {};
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags = 0;
        DomainDef *def = NULL;
        LaterCall *later = NULL;
        Domain *d;
        int r;

        r = parse_held(s, m, &create_spec, &def, &flags, &access, &later, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Replies now (1) or when QEMU answered (0: on_created; core may keep the call first, while
         * definitions are being committed or the capabilities probed). */
        r = manager_domain_create_def(s->manager, def, &access, flags & START_PAUSED, on_created, later, &d, &e);
        if (r != 0)
                sd_bus_message_unref(later_call_done(later));
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        if (r == 0)
                return 1;
        return bus_reply_path(m, bus_domain_path(d));
}

int bus_manager_method_list_domains(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusServer *s = userdata;
        Manager *mgr = s->manager;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, BUS_LIST_ACTIVE | BUS_LIST_INACTIVE, &flags, error);
        if (r < 0)
                return r;
        r = bus_reply_list_begin(m, &reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < mgr->n_domains; i++) {
                Domain *d = mgr->domains[i];
                char path[BUS_DOMAIN_PATH_MAX];

                if (!bus_list_wants(flags, domain_is_active(d)))
                        continue;
                r = sd_bus_message_append_basic(reply, 'o', bus_domain_path_buf(d, path));
                if (r < 0)
                        return r;
        }
        return bus_reply_list_end(reply);
}

int bus_manager_method_get_domain_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *name;
        Domain *d;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        d = manager_domain_by_name(s->manager, name);
        if (!d)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchDomain", "No domain named '%s'", name);
        return bus_reply_path(m, bus_domain_path(d));
}

int bus_manager_method_get_domain_by_uuid(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        char uuid[37];
        const char *arg;
        Domain *d;
        int r;

        r = sd_bus_message_read(m, "s", &arg);
        if (r < 0)
                return r;
        r = domain_def_normalize_uuid(arg, uuid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' is not a UUID (expected 32 hexadecimal digits, dashes allowed as in "
                                         "6695eb01-f6a4-8304-79aa-97f2502e193f)", arg);
        d = manager_domain_by_uuid(s->manager, uuid);
        if (!d)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchDomain", "No domain with UUID %s", uuid);
        return bus_reply_path(m, bus_domain_path(d));
}

/* Reads the flags of a lifecycle method, checks them, and asks polkit for domain.manage. Returns 1 to go
 * on, 0 when polkit's answer is pending (the handler then returns 1), < 0 on error. */
static int begin_manage(BusServer *s, sd_bus_message *m, Domain *d, uint64_t allowed, uint64_t *ret_flags,
                        sd_bus_error *error) {
        return bus_begin_flags_call(s, m, allowed, ACTION_MANAGE, (const char *[]) { "domain", d->name, NULL },
                                    ret_flags, error);
}

/* The reply of an operation that may wait for the hypervisor: now (r != 0), or from done (0), which
 * takes the reference on m given to op. */
static int reply_async(sd_bus_message *m, int r, VbError *e, sd_bus_error *error) {
        if (r != 0)
                sd_bus_message_unref(m);
        if (r == 0)
                return 1;
        return bus_reply_done(m, r, e, error);
}

/* Runs op once core lets it (after the calls to d kept ahead of it, or d's reconnection), or at once when
 * now is set (Destroy: what works on a domain whose QEMU does not answer). */
static int run_async(sd_bus_message *m, Domain *d, sd_bus_error *error, ManagerDomainAsyncOp op, bool now) {
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        int r;

        r = begin_manage(s, m, d, 0, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (now)
                r = op(s->manager, d, bus_domain_reply_later, sd_bus_message_ref(m), &e);
        else
                r = manager_domain_call_when_ready(s->manager, d, op, bus_domain_reply_later, sd_bus_message_ref(m),
                                                   &e);
        return reply_async(m, r, &e, error);
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = begin_manage(s, m, d, START_PAUSED, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Starting takes host devices from the host (managed hostdevs, SR-IOV VFs): that needs more. */
        if (d->config && hostdev_domain_uses_host_devices(d->config)) {
                const char *details[] = { "domain", d->name, NULL };

                r = bus_polkit_check(s->polkit, m, BUS_ACTION_HOSTDEV_ASSIGN, details, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }
        /* A managed save: resumed from it (bus-domain-save.c answers later). */
        if (manager_domain_has_managed_save(s->manager, d) && !domain_is_active(d))
                return bus_domain_start_saved(m, d, flags & START_PAUSED, error);
        r = manager_domain_start_when_ready(s->manager, d, flags & START_PAUSED, bus_domain_reply_later,
                                            sd_bus_message_ref(m), &e);
        return reply_async(m, r, &e, error);
}

void bus_domain_reply_later(Domain *d, int r, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        bus_reply_later(m, r, e);
}

/* Shutdown/Reboot through the guest agent: answered once the agent was asked (Shutdown then waits for the
 * stop unless flag 1). */
typedef struct AgentPowerCall {
        sd_bus_message *m;
        Manager *manager;
        char uuid[37];
        uint64_t flags;
        bool reboot;
} AgentPowerCall;

static void on_agent_power(int r, const VbError *e, void *userdata) {
        AgentPowerCall *c = userdata;
        Domain *d = manager_domain_by_uuid(c->manager, c->uuid);

        if (r < 0 || c->reboot || (c->flags & SHUTDOWN_NO_WAIT) || !d)
                bus_reply_later(c->m, r, e);
        else if (domain_wait_for_stop(d, SHUTDOWN_TIMEOUT_USEC, bus_domain_reply_later, sd_bus_message_ref(c->m)) < 0) {
                sd_bus_message_unref(c->m);
                bus_reply_later(c->m, -ENOMEM, NULL);
        }
        sd_bus_message_unref(c->m);
        free(c);
}

static int agent_power(sd_bus_message *m, Domain *d, uint64_t flags, bool reboot, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        AgentPowerCall *c = new0(AgentPowerCall, 1);
        int r;

        if (!c)
                return -ENOMEM;
        *c = (AgentPowerCall) { .m = sd_bus_message_ref(m), .manager = d->manager, .flags = flags, .reboot = reboot };
        snprintf(c->uuid, sizeof c->uuid, "%s", d->uuid);
        r = manager_domain_agent_power(d->manager, d, reboot, on_agent_power, c, &e);
        if (r == 0)
                return 1; /* on_agent_power replies */
        if (r > 0) {
                on_agent_power(0, NULL, c);
                return 1;
        }
        sd_bus_message_unref(c->m);
        free(c);
        return bus_reply_vb_error(error, &e, r);
}

/* Shutdown/Reboot's preamble (allowed: their flags besides POWER_AGENT): > 0 to go on with the flags in
 * ret_flags, 0 when the call was taken (pending authorization, or passed to the guest agent), < 0 on error. */
static int begin_power(BusServer *s, sd_bus_message *m, Domain *d, uint64_t allowed, bool reboot,
                       uint64_t *ret_flags, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = begin_manage(s, m, d, allowed | POWER_AGENT, &flags, error);
        if (r <= 0)
                return r;
        if (flags & POWER_AGENT) {
                r = agent_power(m, d, flags, reboot, error);
                return r < 0 ? r : 0;
        }
        *ret_flags = flags;
        return 1;
}

/* The guest was asked to power off: the reply waits until it did (bounded). */
static void on_shutdown_asked(Domain *d, int r, const VbError *e, void *userdata) {
        sd_bus_message *m = userdata;

        if (r >= 0 && d)
                r = domain_wait_for_stop(d, SHUTDOWN_TIMEOUT_USEC, bus_domain_reply_later, m);
        if (r < 0 || !d) {
                bus_reply_later(m, r, e);
                sd_bus_message_unref(m);
        }
}

static int method_shutdown(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = begin_power(s, m, d, SHUTDOWN_NO_WAIT, false, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (flags & SHUTDOWN_NO_WAIT) {
                r = manager_domain_call_when_ready(s->manager, d, manager_domain_shutdown, bus_domain_reply_later,
                                                   sd_bus_message_ref(m), &e);
                return reply_async(m, r, &e, error);
        }
        /* Asked (now or once QEMU answered), then waited for. */
        r = manager_domain_call_when_ready(s->manager, d, manager_domain_shutdown, on_shutdown_asked,
                                           sd_bus_message_ref(m), &e);
        if (r <= 0)
                return reply_async(m, r, &e, error);
        on_shutdown_asked(d, 0, NULL, sd_bus_message_ref(m));
        sd_bus_message_unref(m);
        return 1;
}

static int method_reboot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = begin_power(s, m, d, 0, true, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_domain_call_when_ready(s->manager, d, manager_domain_reboot, bus_domain_reply_later,
                                           sd_bus_message_ref(m), &e);
        return reply_async(m, r, &e, error);
}

static int method_reset(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_async(m, userdata, error, manager_domain_reset, false);
}

static int method_destroy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        /* Answered once the hypervisor ended (QEMU: SIGTERM, then SIGKILL from a timer). */
        return run_async(m, userdata, error, manager_domain_destroy_async, true);
}

static int method_suspend(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_async(m, userdata, error, manager_domain_suspend, false);
}

static int method_resume(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_async(m, userdata, error, manager_domain_resume, false);
}

static int method_rename(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        const char *name;
        BusLater *l;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = domain_def_check_name(name, &e);
        if (r < 0) {
                vb_error_free(&e);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid domain name '%s' (expected a non-empty name without '/' or "
                                         "control characters)", name);
        }
        r = begin_manage(s, m, d, 0, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_rename_when_ready(s->manager, d, name, bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error); /* once the definition is on disk */
}

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        _cleanup_free_ char *xml = NULL;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, XML_INACTIVE | XML_SECURE, &flags, error);
        if (r < 0)
                return r;
        if (flags & XML_SECURE) {
                const char *details[] = { "domain", d->name, NULL };
                r = bus_polkit_check(s->polkit, m, ACTION_READ_SECURE, details, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }
        r = manager_domain_get_xml(s->manager, d,
                                   ((flags & XML_INACTIVE) ? DOMAIN_XML_INACTIVE : 0) |
                                           ((flags & XML_SECURE) ? DOMAIN_XML_SECURE : 0),
                                   &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static unsigned tune_flags(uint64_t flags) {
        return ((flags & TUNE_LIVE) ? DOMAIN_DEVICE_LIVE : 0) | ((flags & TUNE_CONFIG) ? DOMAIN_DEVICE_CONFIG : 0);
}

static int method_set_memory(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t kib, flags;
        BusLater *l;
        int r;

        r = sd_bus_message_read(m, "t", &kib);
        if (r < 0)
                return r;
        r = begin_manage(s, m, d, TUNE_LIVE | TUNE_CONFIG, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_set_memory(s->manager, d, kib, tune_flags(flags), bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error); /* either once the definition is on disk */
}

static int method_set_vcpus(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        uint32_t count;
        BusLater *l;
        int r;

        r = sd_bus_message_read(m, "u", &count);
        if (r < 0)
                return r;
        r = begin_manage(s, m, d, TUNE_LIVE | TUNE_CONFIG | TUNE_MAXIMUM, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_set_vcpus(s->manager, d, count, tune_flags(flags), flags & TUNE_MAXIMUM, bus_later_done,
                                     l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

#define DOMAIN_PROPERTY_GETTER(fn, sig, expr) BUS_PROPERTY_GETTER(fn, Domain, d, sig, expr)

DOMAIN_PROPERTY_GETTER(property_get_name, "s", d->name);
DOMAIN_PROPERTY_GETTER(property_get_uuid, "s", d->uuid);
DOMAIN_PROPERTY_GETTER(property_get_id, "u", (uint32_t) d->id);
DOMAIN_PROPERTY_GETTER(property_get_state, "s", domain_state_to_string(d->state));
DOMAIN_PROPERTY_GETTER(property_get_persistent, "b", (int) domain_is_persistent(d));
DOMAIN_PROPERTY_GETTER(property_get_autostart, "b", (int) d->autostart);
DOMAIN_PROPERTY_GETTER(property_get_vcpus, "u", domain_def_get_current_vcpus(domain_current_def(d)));
DOMAIN_PROPERTY_GETTER(property_get_memory, "t", (uint64_t) domain_def_get_memory_kib(domain_current_def(d)));
DOMAIN_PROPERTY_GETTER(property_get_current_memory, "t", domain_current_memory_kib(d));
/* <vcpu> (1 when not given); VCPUs is its current=. */
DOMAIN_PROPERTY_GETTER(property_get_max_vcpus, "u", (uint32_t) (domain_def_get_vcpus(domain_current_def(d)) ?: 1));
DOMAIN_PROPERTY_GETTER(property_get_agent_connected, "b", (int) domain_agent_connected(d));
DOMAIN_PROPERTY_GETTER(property_get_os_type, "s", strempty(domain_def_get_os_type(domain_current_def(d))));

static int property_set_autostart(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        VbError e = VB_ERROR_NULL;
        int b, r;

        r = sd_bus_message_read(value, "b", &b);
        if (r < 0)
                return r;
        r = manager_domain_set_autostart(d->manager, d, b, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return 1;
}

static void autostart_done(Manager *m, int r, const VbError *e, void *userdata) {
        sd_bus_message *call = userdata;

        bus_reply_later(call, r, e);
        sd_bus_message_unref(call);
}

/* Properties.Set of Autostart, once authorized: answered when the link is durable (the store thread syncs
 * it), not by sd-bus' setter on the event loop. */
int bus_domain_set_autostart(BusServer *s, sd_bus_message *m, sd_bus_error *error) {
        Domain *d = bus_domain_from_path(s, sd_bus_message_get_path(m));
        VbError e = VB_ERROR_NULL;
        int b, r;

        if (!d)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No domain at %s",
                                         sd_bus_message_get_path(m));
        r = sd_bus_message_skip(m, "ss");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'v', "b");
        if (r >= 0)
                r = sd_bus_message_read(m, "b", &b);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Autostart takes a boolean ('b') value");
        r = manager_domain_set_autostart_async(d->manager, d, b, autostart_done, m, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        if (r > 0)
                return sd_bus_reply_method_return(m, NULL);
        sd_bus_message_ref(m);
        return 1;
}

int bus_domain_polkit_details(BusServer *s, const char *path, const char **ret_name) {
        Domain *d = bus_domain_from_path(s, path);

        if (!d)
                return -ENOENT;
        *ret_name = d->name;
        return 0;
}

static const sd_bus_vtable domain_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UUID", "s", property_get_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Id", "u", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Persistent", "b", property_get_persistent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("Autostart", "b", property_get_autostart, property_set_autostart, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("VCPUs", "u", property_get_vcpus, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryKiB", "t", property_get_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentMemoryKiB", "t", property_get_current_memory, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxVCPUs", "u", property_get_max_vcpus, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("OSType", "s", property_get_os_type, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("GuestAgentConnected", "b", property_get_agent_connected, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentSnapshot", "o", bus_domain_property_get_current_snapshot, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("HasManagedSave", "b", bus_domain_property_get_has_managed_save, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_start,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Shutdown", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_shutdown,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reboot", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_reboot,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reset", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_reset,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Destroy", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_destroy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Suspend", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_suspend,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_resume,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Undefine", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, bus_domain_method_undefine,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rename", SD_BUS_ARGS("s", name, "t", flags), SD_BUS_NO_RESULT, method_rename,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStats", SD_BUS_ARGS("t", groups, "t", flags), SD_BUS_RESULT("a{sv}", stats),
                                bus_domain_method_get_stats, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetGuestInfo", SD_BUS_ARGS("t", types, "t", flags), SD_BUS_RESULT("a{sv}", info),
                                bus_domain_method_get_guest_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("InterfaceAddresses", SD_BUS_ARGS("u", source, "t", flags),
                                SD_BUS_RESULT("a(ssa(ysu))", interfaces), bus_domain_method_interface_addresses,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMemory", SD_BUS_ARGS("t", kib, "t", flags), SD_BUS_NO_RESULT, method_set_memory,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetVCPUs", SD_BUS_ARGS("u", count, "t", flags), SD_BUS_NO_RESULT, method_set_vcpus,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AttachDevice", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_NO_RESULT,
                                bus_domain_method_attach_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DetachDevice", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_NO_RESULT,
                                bus_domain_method_detach_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UpdateDevice", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_NO_RESULT,
                                bus_domain_method_update_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenConsole", SD_BUS_ARGS("s", device, "t", flags), SD_BUS_RESULT("h", fd),
                                bus_domain_method_open_console, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenGraphics", SD_BUS_ARGS("u", index, "t", flags), SD_BUS_RESULT("h", fd),
                                bus_domain_method_open_graphics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Screenshot", SD_BUS_ARGS("u", screen, "t", flags), SD_BUS_RESULT("ay", png),
                                bus_domain_method_screenshot, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateSnapshot", SD_BUS_ARGS("s", xml, "t", flags), SD_BUS_RESULT("o", snapshot),
                                bus_domain_method_create_snapshot, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListSnapshots", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", snapshots),
                                bus_domain_method_list_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Save", SD_BUS_ARGS("h", fd, "t", flags), SD_BUS_NO_RESULT, bus_domain_method_save,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ManagedSave", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT,
                                bus_domain_method_managed_save, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ManagedSaveRemove", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT,
                                bus_domain_method_managed_save_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("DeviceAdded", SD_BUS_ARGS("s", alias), 0),
        SD_BUS_SIGNAL_WITH_ARGS("DeviceRemoved", SD_BUS_ARGS("s", alias), 0),
        SD_BUS_SIGNAL_WITH_ARGS("DeviceRemovalFailed", SD_BUS_ARGS("s", alias, "s", reason), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Progress", SD_BUS_ARGS("t", done, "t", total), 0),
        SD_BUS_VTABLE_END,
};

int bus_domain_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_DOMAIN_PREFIX, VB_DOMAIN_INTERFACE, domain_vtable,
                                       find_domain, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Domain objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_DOMAIN_PREFIX, enumerate_domains, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Domain enumerator: %m");
        return 0;
}

void bus_domain_on_added(void *userdata, Domain *d) {
        bus_object_emit_added(userdata, bus_domain_path(d), VB_DOMAIN_INTERFACE);
}

void bus_domain_on_removed(void *userdata, Domain *d) {
        bus_object_emit_removed(userdata, bus_domain_path(d), VB_DOMAIN_INTERFACE);
}

void bus_domain_on_changed(void *userdata, Domain *d, const char * const *properties) {
        bus_object_emit_changed(userdata, bus_domain_path(d), VB_DOMAIN_INTERFACE, properties);
}
