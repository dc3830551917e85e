/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the guest agent tells and does (GetGuestInfo, InterfaceAddresses source 1, Shutdown/Reboot through the
 * agent, GuestAgentConnected): the requests go through qemu-agent.c one after another, each bounded by its
 * timeout; the answer comes when the last one is in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/qemu/qemu-driver-internal.h"
#include "util/log.h"

typedef enum GuestQuery {
        GUEST_QUERY_USERS,
        GUEST_QUERY_OS,
        GUEST_QUERY_TIMEZONE,
        GUEST_QUERY_HOSTNAME,
        GUEST_QUERY_FILESYSTEM,
        _GUEST_QUERY_MAX,
} GuestQuery;

/* By libvirt's virDomainGuestInfoTypes bit. */
static const char * const guest_query_command[_GUEST_QUERY_MAX] = {
        [GUEST_QUERY_USERS] = "guest-get-users",
        [GUEST_QUERY_OS] = "guest-get-osinfo",
        [GUEST_QUERY_TIMEZONE] = "guest-get-timezone",
        [GUEST_QUERY_HOSTNAME] = "guest-get-host-name",
        [GUEST_QUERY_FILESYSTEM] = "guest-get-fsinfo",
};

typedef struct GuestInfoCall {
        unsigned pending;
        int error;
        char *error_message;
        char uuid[37];
        struct json_object *replies[_GUEST_QUERY_MAX];
        VbDriverInfoDone done;
        void *userdata;
} GuestInfoCall;

typedef struct GuestSlot {
        GuestInfoCall *call;
        GuestQuery query;
} GuestSlot;

static void add_users(struct json_object *list, VbStats *s) {
        size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

        vb_stats_add_uint(s, (uint32_t) n, "user.count");
        for (size_t i = 0; i < n; i++) {
                struct json_object *u = json_object_array_get_idx(list, i), *t = qemu_json_get(u, "login-time");

                vb_stats_add_string(s, qemu_json_string(u, "user") ?: "", "user.%zu.name", i);
                if (qemu_json_string(u, "domain"))
                        vb_stats_add_string(s, qemu_json_string(u, "domain"), "user.%zu.domain", i);
                if (t) /* seconds as a float; libvirt gives milliseconds */
                        vb_stats_add_ullong(s, (uint64_t) (json_object_get_double(t) * 1000.0), "user.%zu.login-time", i);
        }
}

static void add_os(struct json_object *o, VbStats *s) {
        static const char * const keys[] = { "id", "name", "pretty-name", "version", "version-id", "kernel-release",
                                             "kernel-version", "machine", "variant", "variant-id" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (qemu_json_string(o, keys[i]))
                        vb_stats_add_string(s, qemu_json_string(o, keys[i]), "os.%s", keys[i]);
}

static void add_filesystems(struct json_object *list, VbStats *s) {
        size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

        vb_stats_add_uint(s, (uint32_t) n, "fs.count");
        for (size_t i = 0; i < n; i++) {
                struct json_object *f = json_object_array_get_idx(list, i);
                struct json_object *total = qemu_json_get(f, "total-bytes"), *used = qemu_json_get(f, "used-bytes");

                vb_stats_add_string(s, qemu_json_string(f, "mountpoint") ?: "", "fs.%zu.mountpoint", i);
                vb_stats_add_string(s, qemu_json_string(f, "name") ?: "", "fs.%zu.name", i);
                vb_stats_add_string(s, qemu_json_string(f, "type") ?: "", "fs.%zu.fstype", i);
                if (total)
                        vb_stats_add_ullong(s, json_object_get_uint64(total), "fs.%zu.total-bytes", i);
                if (used)
                        vb_stats_add_ullong(s, json_object_get_uint64(used), "fs.%zu.used-bytes", i);
        }
}

static VbStats *info_build(GuestInfoCall *c) {
        VbStats *s = vb_stats_new();
        struct json_object *tz = c->replies[GUEST_QUERY_TIMEZONE];

        if (!s)
                return NULL;
        if (c->replies[GUEST_QUERY_USERS])
                add_users(c->replies[GUEST_QUERY_USERS], s);
        if (c->replies[GUEST_QUERY_OS])
                add_os(c->replies[GUEST_QUERY_OS], s);
        if (tz) {
                if (qemu_json_string(tz, "zone"))
                        vb_stats_add_string(s, qemu_json_string(tz, "zone"), "timezone.name");
                if (qemu_json_get(tz, "offset"))
                        vb_stats_add_int(s, json_object_get_int(qemu_json_get(tz, "offset")), "timezone.offset");
        }
        if (qemu_json_string(c->replies[GUEST_QUERY_HOSTNAME], "host-name"))
                vb_stats_add_string(s, qemu_json_string(c->replies[GUEST_QUERY_HOSTNAME], "host-name"), "hostname");
        if (c->replies[GUEST_QUERY_FILESYSTEM])
                add_filesystems(c->replies[GUEST_QUERY_FILESYSTEM], s);
        if (vb_stats_failed(s))
                s = vb_stats_free(s);
        return s;
}

static void info_finish(GuestInfoCall *c) {
        VbError e = VB_ERROR_NULL;
        VbStats *s = NULL;
        int r = c->error;

        if (r == -ETIMEDOUT)
                vb_error_set(&e, VB_ERROR_TIMEOUT, "The guest agent of domain %s did not answer within %llu s", c->uuid,
                             QEMU_AGENT_TIMEOUT_USEC / 1000000ULL);
        else if (r < 0)
                vb_error_set(&e, r == -ECANCELED ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED,
                             "Failed to ask the guest agent of domain %s: %s", c->uuid,
                             c->error_message ?: strerror(-r));
        else if (!(s = info_build(c)))
                r = -ENOMEM;
        c->done(r, r < 0 ? &e : NULL, s, c->userdata);
        vb_error_free(&e);
        for (size_t i = 0; i < _GUEST_QUERY_MAX; i++)
                json_object_put(c->replies[i]);
        free(c->error_message);
        free(c);
}

static void on_reply(int r, struct json_object *ret, const char *error, void *userdata) {
        GuestSlot *slot = userdata;
        GuestInfoCall *c = slot->call;

        if (r == -EIO) /* an agent without that command (older, or disabled): left out, as libvirt does */
                log_debug("Domain %s: the guest agent refused %s, ignoring: %s", c->uuid,
                          guest_query_command[slot->query], error);
        else if (r < 0 && c->error == 0) {
                c->error = r;
                c->error_message = error ? strdup(error) : NULL;
        } else if (r >= 0)
                c->replies[slot->query] = json_object_get(ret);
        free(slot);
        if (--c->pending == 0)
                info_finish(c);
}

/* The VM's agent if it is there and connected; else fills reterr. */
static QemuAgent *vm_agent(QemuDriver *q, const char *uuid, VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);

        if (!vm)
                return NULL;
        if (!vm->agent) {
                vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Domain %s has no guest agent channel (<channel type='unix'> "
                             "with <target type='virtio' name='" DEVICE_GUEST_AGENT_CHANNEL "'/>, present when it "
                             "started with this virtbusd)", uuid);
                return NULL;
        }
        if (!qemu_agent_is_connected(vm->agent)) {
                vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The guest agent of domain %s is not connected (no agent "
                             "runs in the guest)", uuid);
                return NULL;
        }
        return vm->agent;
}

int qemu_guest_info(VbDriver *drv, const char *uuid, uint64_t types, VbDriverInfoDone done, void *userdata,
                    VbStats **ret, VbError *reterr) {
        QemuAgent *a = vm_agent(drv->priv, uuid, reterr);
        GuestInfoCall *c;
        int r = 0;

        if (!a)
                return -EOPNOTSUPP;
        c = new0(GuestInfoCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (GuestInfoCall) { .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        c->pending = 1;
        for (GuestQuery i = 0; r >= 0 && i < _GUEST_QUERY_MAX; i++) {
                GuestSlot *slot;

                if (!(types & (UINT64_C(1) << i)))
                        continue;
                slot = new0(GuestSlot, 1);
                if (!slot) {
                        r = -ENOMEM;
                        break;
                }
                *slot = (GuestSlot) { .call = c, .query = i };
                r = qemu_agent_call(a, guest_query_command[i], NULL, false, on_reply, slot);
                if (r < 0)
                        free(slot);
                else
                        c->pending++;
        }
        if (r < 0 && c->error == 0)
                c->error = r;
        /* The agent answers from the loop: done follows later even when nothing was asked. */
        if (--c->pending == 0) {
                if (c->error < 0) {
                        r = c->error;
                        free(c);
                        return r;
                }
                *ret = info_build(c);
                free(c);
                return *ret ? 1 : -ENOMEM;
        }
        return 0;
}

typedef struct AgentShutdown {
        VbDriverDone done;
        void *userdata;
        char uuid[37];
} AgentShutdown;

static void on_shutdown(int r, struct json_object *ret, const char *error, void *userdata) {
        AgentShutdown *c = userdata;
        VbError e = VB_ERROR_NULL;

        if (r == -ETIMEDOUT)
                vb_error_set(&e, VB_ERROR_TIMEOUT, "The guest agent of domain %s did not answer within %llu s", c->uuid,
                             QEMU_AGENT_TIMEOUT_USEC / 1000000ULL);
        else if (r < 0)
                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "The guest agent of domain %s refused: %s", c->uuid,
                             error ?: strerror(-r));
        c->done(r, r < 0 ? &e : NULL, c->userdata);
        vb_error_free(&e);
        free(c);
}

int qemu_agent_shutdown(VbDriver *drv, const char *uuid, bool reboot, VbDriverDone done, void *userdata,
                        VbError *reterr) {
        QemuAgent *a = vm_agent(drv->priv, uuid, reterr);
        struct json_object *args;
        AgentShutdown *c;
        int r;

        if (!a)
                return -EOPNOTSUPP;
        c = new0(AgentShutdown, 1);
        args = json_object_new_object();
        if (!c || !args) {
                free(c);
                json_object_put(args);
                return -ENOMEM;
        }
        *c = (AgentShutdown) { .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        json_object_object_add(args, "mode", json_object_new_string(reboot ? "reboot" : "powerdown"));
        /* guest-shutdown answers nothing when it works: done once it is written. */
        r = qemu_agent_call(a, "guest-shutdown", args, true, on_shutdown, c);
        if (r < 0)
                free(c);
        return r < 0 ? r : 0;
}

bool qemu_agent_connected(VbDriver *drv, const char *uuid) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = hashmap_get(q->vms, uuid);

        return vm && qemu_agent_is_connected(vm->agent);
}

void qemu_guest_port_changed(QemuDriver *q, QemuVm *vm, const char *id, bool open) {
        const VbDriverEvents *ev = &q->drv->cfg.events;

        if (!vm->agent || !id || !streq_ptr(vm->agent_alias, id))
                return;
        log_debug("Domain %s: the guest agent %s its port.", vm->uuid, open ? "opened" : "closed");
        qemu_agent_set_connected(vm->agent, open);
        if (ev->agent_changed)
                ev->agent_changed(ev->userdata, vm->uuid, open);
}

/* query-chardev after a restart: whether the guest's agent has its port open (frontend-open), as the
 * VSERPORT_CHANGE virtbusd missed would have said. vm owns the monitor, so it is there when this comes. */
static void on_reattach_chardevs(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuVm *vm = userdata;
        _cleanup_free_ char *label = NULL;

        if (error || !vm->agent_alias || asprintf(&label, "char%s", vm->agent_alias) < 0) {
                log_debug("Domain %s: could not learn whether the guest agent is connected: %s", vm->uuid,
                          error ?: "out of memory");
                return;
        }
        for (size_t k = 0; json_object_is_type(ret, json_type_array) && k < json_object_array_length(ret); k++) {
                struct json_object *c = json_object_array_get_idx(ret, k);
                if (streq_ptr(qemu_json_string(c, "label"), label))
                        qemu_guest_port_changed(vm->cfg.userdata, vm, vm->agent_alias,
                                                json_object_get_boolean(qemu_json_get(c, "frontend-open")));
        }
}

void qemu_guest_reattach(QemuVm *vm) {
        const char *alias = NULL;
        int r;

        for (size_t i = 0; i < vm->live->n_devices && !alias; i++)
                if (device_channel_is_guest_agent(vm->live->devices[i]))
                        alias = vm->live->devices[i]->alias;
        if (!alias || vm->agent)
                return;
        r = qemu_vm_agent_connect(vm, alias);
        if (r < 0) {
                /* Started by a virtbusd before the agent had a socket of its own: none until the next start. */
                log_info("Domain '%s': no guest agent until its next start (connecting to its socket: %s).",
                         domain_def_get_name(vm->live), strerror(-r));
                return;
        }
        if (r > 0 && vm->mon && qemu_monitor_call(vm->mon, "query-chardev", NULL, on_reattach_chardevs, vm) < 0)
                log_debug("Domain %s: could not ask QEMU whether the guest agent is connected.", vm->uuid);
}

typedef struct AgentInterfaces {
        VbDriverAddressesDone done;
        void *userdata;
        char uuid[37];
} AgentInterfaces;

/* One GuestIpAddress of guest-network-get-interfaces: ip-address-type "ipv4"/"ipv6", ip-address, prefix. */
static int add_agent_address(DomainIfAddresses *iface, struct json_object *a) {
        const char *type = qemu_json_string(a, "ip-address-type"), *address = qemu_json_string(a, "ip-address");
        struct json_object *prefix = qemu_json_get(a, "prefix");
        uint8_t family = streq_ptr(type, "ipv4") ? 4 : streq_ptr(type, "ipv6") ? 6 : 0;

        if (family == 0 || !address) {
                log_debug("Guest agent: an address of '%s' without a known type or address, ignoring.", iface->name);
                return 0;
        }
        return domain_if_addresses_add(iface, family, address, prefix ? (unsigned) json_object_get_int(prefix) : 0);
}

/* One GuestNetworkInterface: name, hardware-address, ip-addresses; 0 when skipped (lo, no name). */
static int add_agent_interface(DomainIfAddresses *iface, struct json_object *o) {
        const char *name = qemu_json_string(o, "name"), *mac = qemu_json_string(o, "hardware-address");
        struct json_object *addrs = qemu_json_get(o, "ip-addresses");
        size_t n = addrs && json_object_is_type(addrs, json_type_array) ? json_object_array_length(addrs) : 0;
        int r = 0;

        if (!name || streq(name, "lo"))
                return 0;
        iface->name = strdup(name);
        if (!iface->name)
                return -ENOMEM;
        /* The agent gives the MAC as the guest's kernel formats it: lower case, colons. */
        if (mac && strlen(mac) == 17)
                memcpy(iface->mac, mac, 18);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = add_agent_address(iface, json_object_array_get_idx(addrs, i));
        return r < 0 ? r : 1;
}

int qemu_agent_interfaces_parse(struct json_object *list, DomainIfAddresses **ret, size_t *ret_n) {
        size_t n_in = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0, n = 0;
        DomainIfAddresses *l = new0(DomainIfAddresses, n_in ?: 1);
        int r = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n_in; i++) {
                r = add_agent_interface(&l[n], json_object_array_get_idx(list, i));
                if (r > 0 || l[n].name)
                        n++;
        }
        if (r < 0) {
                domain_if_addresses_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

static void on_interfaces(int r, struct json_object *ret, const char *error, void *userdata) {
        AgentInterfaces *c = userdata;
        VbError e = VB_ERROR_NULL;
        DomainIfAddresses *l = NULL;
        size_t n = 0;

        if (r == -ETIMEDOUT)
                vb_error_set(&e, VB_ERROR_TIMEOUT, "The guest agent of domain %s did not answer within %llu s", c->uuid,
                             QEMU_AGENT_TIMEOUT_USEC / 1000000ULL);
        else if (r == -EIO)
                vb_error_set(&e, VB_ERROR_NOT_SUPPORTED, "The guest agent of domain %s cannot list the guest's "
                             "interfaces (guest-network-get-interfaces): %s", c->uuid, strempty(error));
        else if (r < 0)
                vb_error_set(&e, r == -ECANCELED ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED,
                             "Failed to ask the guest agent of domain %s: %s", c->uuid, error ?: strerror(-r));
        else
                r = qemu_agent_interfaces_parse(ret, &l, &n);
        c->done(r, r < 0 ? &e : NULL, l, n, c->userdata);
        vb_error_free(&e);
        free(c);
}

int qemu_agent_interfaces(VbDriver *drv, const char *uuid, VbDriverAddressesDone done, void *userdata,
                          DomainIfAddresses **ret, size_t *ret_n, VbError *reterr) {
        QemuAgent *a = vm_agent(drv->priv, uuid, reterr);
        AgentInterfaces *c;
        int r;

        if (!a)
                return -EOPNOTSUPP;
        c = new0(AgentInterfaces, 1);
        if (!c)
                return -ENOMEM;
        *c = (AgentInterfaces) { .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        r = qemu_agent_call(a, "guest-network-get-interfaces", NULL, false, on_interfaces, c);
        if (r < 0)
                free(c);
        return r < 0 ? r : 0;
}
