/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Domain: AttachDevice, DetachDevice, UpdateDevice and the device signals.
 *
 * Authorization depends on what the device is: one that hands the guest a device of the host (a hostdev,
 * an interface type='hostdev', an interface on a network of host devices) needs
 * org.virtbus1.hostdev.assign with the details domain and device (the host address); anything else
 * org.virtbus1.domain.manage with the detail domain. */
#include "bus/bus-authz.h"
#include "bus/bus-domain-device.h"
#include "bus/bus-domain.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "conf/domain-devices.h"
#include "core/manager.h"
#include "util/log.h"

/* Larger device descriptions are refused before parsing. */
#define DEVICE_XML_MAX (1024U * 1024U)

#define DEVICE_LIVE UINT64_C(1)
#define DEVICE_CONFIG UINT64_C(2)

#define ACTION_MANAGE BUS_ACTION_DOMAIN_MANAGE
#define ACTION_HOSTDEV BUS_ACTION_HOSTDEV_ASSIGN

static BusServer *server_of(Domain *d) {
        return d->manager->events.userdata;
}

/* Returns 1 when authorized, 0 when polkit's answer is pending, < 0 on error. ret_host (may be NULL) gets
 * the host device's address, for the log. */
static int authorize(BusServer *s, sd_bus_message *m, Domain *d, const DeviceDef *dev, char **ret_host,
                     sd_bus_error *error) {
        _cleanup_free_ char *host = NULL;
        int r;

        r = manager_device_assigns_host_device(s->manager, dev, &host);
        if (r < 0)
                return r;
        if (host) {
                const char *details[] = { "domain", d->name, "device", host, NULL };
                r = bus_polkit_check(s->polkit, m, ACTION_HOSTDEV, details, error);
        } else {
                const char *details[] = { "domain", d->name, NULL };
                r = bus_polkit_check(s->polkit, m, ACTION_MANAGE, details, error);
        }
        if (r > 0 && ret_host)
                *ret_host = TAKE_PTR(host);
        return r;
}

/* In a parse worker (bus-parse.h): pure. */
static int parse_device(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        DeviceDef *dev = NULL;
        int r;

        r = device_def_parse_string(xml, flags, &dev, reterr);
        if (r >= 0)
                *ret = dev;
        return r;
}

static void free_device(void *dev) {
        device_def_free(dev);
}

typedef struct AuthorizeArgs {
        Domain *domain;
        char **ret_host;
        DomainAccess *ret_access; /* NULL: the device's host paths don't matter (DetachDevice) */
} AuthorizeArgs;

static int authorize_parsed(BusServer *s, sd_bus_message *m, const void *dev, void *userdata, sd_bus_error *error) {
        AuthorizeArgs *a = userdata;

        return authorize(s, m, a->domain, dev, a->ret_host, error);
}

/* Then its host paths: whose rights open them (bus_domain_authorize_paths). */
static int authorize_paths(BusServer *s, sd_bus_message *m, const void *dev, void *userdata, sd_bus_error *error) {
        AuthorizeArgs *a = userdata;

        if (!a->ret_access)
                return 1;
        return bus_domain_authorize_paths(s, m, a->domain->name, domain_current_def(a->domain), dev, a->ret_access,
                                          error);
}

/* What the device is decides the action: polkit is asked once it is parsed. */
static const BusParseSpec device_spec = {
        .what = "device description",
        .max = DEVICE_XML_MAX,
        .allowed_flags = DEVICE_LIVE | DEVICE_CONFIG,
        .parse = parse_device,
        .free = free_device,
        .authorize = authorize_parsed,
        .authorize_more = authorize_paths,
};

/* The preamble of the device methods: reads "st", checks both, parses the device off the event loop
 * (pure; parse_flags: DEVICE_PARSE_*) and asks polkit (authorize()). Returns 1 to go on, 0 when the call
 * goes on later (the handler then returns 1), < 0 on error. */
static int begin_device_call(sd_bus_message *m, Domain *d, unsigned parse_flags, DeviceDef **ret,
                             unsigned *ret_flags, char **ret_host, DomainAccess *ret_access, sd_bus_error *error) {
        AuthorizeArgs args = { .domain = d, .ret_host = ret_host, .ret_access = ret_access };
        void *dev = NULL;
        uint64_t flags;
        int r;

        r = bus_parse_document(server_of(d), m, &device_spec, parse_flags, &args, &dev, &flags, error);
        if (r <= 0)
                return r;
        *ret = dev;
        *ret_flags = (unsigned) flags;
        return 1;
}

static void log_host_device(sd_bus_message *m, Domain *d, const char *what, const char *host, int r,
                            const VbError *e) {
        if (!host)
                return;
        log_notice("%s host device '%s' %s domain '%s' for %s: %s", what, host,
                   streq(what, "Attaching") ? "to" : "of", d->name, strempty(sd_bus_message_get_sender(m)),
                   r == 1 ? "asked" : r >= 0 ? "done" : e && e->message ? e->message : strerror(-r));
}

int bus_domain_method_attach_device(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        _cleanup_(domain_access_done) DomainAccess who = {};
        _cleanup_free_ char *host = NULL;
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        unsigned flags;
        BusLater *l;
        int r;

        r = begin_device_call(m, d, 0, &dev, &flags, &host, &who, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Replies at once, or when the hypervisor answered (0: bus_later_done); either once a changed
         * definition is on disk. */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_attach_device(s->manager, d, dev, &who, flags, bus_later_done, l, &e);
        log_host_device(m, d, "Attaching", host, r == 0 ? 1 : r, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

static void on_detached(Domain *d, int r, const VbError *e, void *userdata) {
        bus_later_reply(userdata, r, e);
}

int bus_domain_method_detach_device(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(device_def_freep) DeviceDef *probe = NULL;
        _cleanup_free_ char *host = NULL;
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        unsigned flags;
        BusLater *l;
        int r;

        r = begin_device_call(m, d, DEVICE_PARSE_NO_DEFAULTS, &probe, &flags, &host, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Replies at once (0) or when the guest answered or the wait ran out (1: on_detached); either
         * once a changed definition is on disk. */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_detach_device(s->manager, d, probe, flags, on_detached, l, &e);
        log_host_device(m, d, "Detaching", host, r, &e);
        return bus_later_end(l, r == 1, r, &e, error);
}

int bus_domain_method_update_device(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(device_def_freep) DeviceDef *dev = NULL;
        _cleanup_(domain_access_done) DomainAccess who = {};
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        unsigned flags;
        BusLater *l;
        int r;

        r = begin_device_call(m, d, DEVICE_PARSE_NO_DEFAULTS, &dev, &flags, NULL, &who, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_update_device(s->manager, d, dev, &who, flags, bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

static void emit(BusServer *s, Domain *d, const char *member, const char *types, const char *a, const char *b) {
        _cleanup_free_ char *path = bus_domain_path(d);
        int r;

        if (!path)
                return;
        r = sd_bus_emit_signal(s->bus, path, VB_DOMAIN_INTERFACE, member, types, a, b);
        if (r < 0)
                log_debug_errno(r, "Failed to emit %s, ignoring: %m", member);
}

void bus_domain_on_device_added(void *userdata, Domain *d, const char *alias) {
        emit(userdata, d, "DeviceAdded", "s", alias, NULL);
}

void bus_domain_on_device_removed(void *userdata, Domain *d, const char *alias) {
        emit(userdata, d, "DeviceRemoved", "s", alias, NULL);
}

void bus_domain_on_device_removal_failed(void *userdata, Domain *d, const char *alias, const char *reason) {
        emit(userdata, d, "DeviceRemovalFailed", "ss", alias, reason);
}
