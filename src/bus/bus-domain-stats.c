/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Statistics: core gathers them (core/domain-stats.c), here they become a{sv} with libvirt's keys. The
 * reply is sent when every domain answered or core stopped waiting; the event loop never waits. */
#include "bus/bus-authz.h"
#include "bus/bus-domain-stats.h"
#include "bus/bus-domain.h"
#include "bus/bus-object.h"
#include "core/manager.h"
#include "util/log.h"

/* GetAllDomainStats: only domains whose state is 'running' (libvirt's ..._STATS_RUNNING). */
#define STATS_RUNNING UINT64_C(1)

static int append_stats(sd_bus_message *reply, const VbStats *s) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; s && i < s->n; i++) {
                const VbStatsField *f = &s->fields[i];

                switch (f->type) {
                case VB_STATS_INT:
                        r = sd_bus_message_append(reply, "{sv}", f->key, "i", f->i);
                        break;
                case VB_STATS_UINT:
                        r = sd_bus_message_append(reply, "{sv}", f->key, "u", f->u);
                        break;
                case VB_STATS_ULLONG:
                        r = sd_bus_message_append(reply, "{sv}", f->key, "t", f->t);
                        break;
                case VB_STATS_STRING:
                        r = sd_bus_message_append(reply, "{sv}", f->key, "s", f->s);
                        break;
                }
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int reply_one(sd_bus_message *m, DomainStatsQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_stats(reply, q->n > 0 ? q->entries[0].stats : NULL);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int reply_all(sd_bus_message *m, DomainStatsQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(oa{sv})");
        for (size_t i = 0; r >= 0 && i < q->n; i++) {
                char path[BUS_DOMAIN_PATH_MAX];

                r = sd_bus_message_open_container(reply, 'r', "oa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'o',
                                                        bus_uuid_path(VB_DOMAIN_PREFIX, q->entries[i].uuid, path));
                if (r >= 0)
                        r = append_stats(reply, q->entries[i].stats);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* The answer came later (userdata: the call, referenced). */
static void on_stats(DomainStatsQuery *q, void *userdata, int (*reply)(sd_bus_message *m, DomainStatsQuery *q)) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        int r;

        r = reply(m, q);
        if (r < 0) {
                log_debug_errno(r, "Failed to send statistics, ignoring: %m");
                (void) sd_bus_reply_method_errnof(m, r, "Failed to send the statistics: %m");
        }
        domain_stats_query_free(q);
}

static void on_stats_one(DomainStatsQuery *q, void *userdata) {
        on_stats(q, userdata, reply_one);
}

static void on_stats_all(DomainStatsQuery *q, void *userdata) {
        on_stats(q, userdata, reply_all);
}

static int read_groups(sd_bus_message *m, uint64_t *ret, sd_bus_error *error) {
        uint64_t groups;
        int r;

        r = sd_bus_message_read(m, "t", &groups);
        if (r < 0)
                return r;
        if (groups & ~VB_STATS_GROUPS_ALL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown statistics groups 0x%" PRIx64 " (known: state 1, cpu 2, balloon 4, "
                                         "vcpu 8, interface 16, block 32; 0 for all)", groups & ~VB_STATS_GROUPS_ALL);
        *ret = groups;
        return 0;
}

static int get_stats(sd_bus_message *m, Manager *mgr, Domain * const *domains, size_t n, uint64_t groups,
                     DomainStatsDone done, int (*reply)(sd_bus_message *m, DomainStatsQuery *q)) {
        _cleanup_(domain_stats_query_freep) DomainStatsQuery *q = NULL;
        int r;

        r = manager_domains_get_stats(mgr, domains, n, groups, done, m, &q);
        if (r < 0)
                return r;
        if (r > 0)
                return reply(m, q);
        /* done replies and frees the query. */
        sd_bus_message_ref(m);
        TAKE_PTR(q);
        return 1;
}

int bus_domain_method_get_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        uint64_t groups = 0;
        int r;

        r = read_groups(m, &groups, error);
        if (r < 0)
                return r;
        r = bus_read_flags(m, 0, NULL, error);
        if (r < 0)
                return r;
        return get_stats(m, d->manager, &d, 1, groups, on_stats_one, reply_one);
}

int bus_manager_method_get_all_domain_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        Manager *mgr = s->manager;
        _cleanup_free_ Domain **domains = NULL;
        uint64_t groups = 0, flags = 0;
        size_t n = 0;
        int r;

        r = read_groups(m, &groups, error);
        if (r < 0)
                return r;
        r = bus_read_flags(m, STATS_RUNNING, &flags, error);
        if (r < 0)
                return r;
        domains = new0(Domain *, mgr->n_domains);
        if (!domains)
                return -ENOMEM;
        for (size_t i = 0; i < mgr->n_domains; i++)
                if (!(flags & STATS_RUNNING) || mgr->domains[i]->state == DOMAIN_RUNNING)
                        domains[n++] = mgr->domains[i];
        return get_stats(m, mgr, domains, n, groups, on_stats_all, reply_all);
}

/* a(ssa(ysu)): name, MAC, [(family, address, prefix)] */
static int reply_addresses(sd_bus_message *m, const DomainIfAddresses *l, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssa(ysu))");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = sd_bus_message_open_container(reply, 'r', "ssa(ysu)");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ss", l[i].name, l[i].mac);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "(ysu)");
                for (size_t j = 0; r >= 0 && j < l[i].n_addrs; j++)
                        r = sd_bus_message_append(reply, "(ysu)", l[i].addrs[j].family, l[i].addrs[j].address,
                                                  (uint32_t) l[i].addrs[j].prefix);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* InterfaceAddresses from the guest agent: the answer came later (userdata: the call, referenced). */
static void on_interface_addresses(int r, const VbError *e, DomainIfAddresses *l, size_t n, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = reply_addresses(m, l, n);
        if (r < 0)
                (void) sd_bus_reply_method_errnof(m, r, "Failed to send the interface addresses: %m");
        domain_if_addresses_free(l, n);
}

int bus_domain_method_interface_addresses(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = d->manager->events.userdata;
        VbError e = VB_ERROR_NULL;
        DomainIfAddresses *l = NULL;
        size_t n = 0;
        uint32_t source;
        int r;

        r = sd_bus_message_read(m, "u", &source);
        if (r < 0)
                return r;
        if (source == DOMAIN_ADDRESSES_AGENT) {
                /* The agent runs code in the guest: for those who may manage the domain, as GetGuestInfo. */
                r = bus_begin_flags_call(s, m, 0, BUS_ACTION_DOMAIN_MANAGE, (const char *[]) { "domain", d->name, NULL },
                                         NULL, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        } else {
                r = bus_read_flags(m, 0, NULL, error);
                if (r < 0)
                        return r;
        }
        if (source > DOMAIN_ADDRESSES_ARP)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown address source %u (expected 0 for "
                                         "DHCP leases, 1 for the guest agent, 2 for the host's neighbour table)", source);
        r = manager_domain_interface_addresses(d->manager, d, source, on_interface_addresses, sd_bus_message_ref(m), &l,
                                               &n, &e);
        if (r == 0)
                return 1; /* on_interface_addresses replies */
        sd_bus_message_unref(m);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        r = reply_addresses(m, l, n);
        domain_if_addresses_free(l, n);
        return r;
}

/* GetGuestInfo: the answer came later (userdata: the call, referenced). */
static void on_guest_info(int r, const VbError *e, VbStats *info, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata, *reply = NULL;

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_stats(reply, info);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errnof(m, r, "Failed to send the guest information: %m");
        vb_stats_free(info);
}

int bus_domain_method_get_guest_info(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = d->manager->events.userdata;
        VbError e = VB_ERROR_NULL;
        VbStats *now = NULL;
        uint64_t types;
        int r;

        r = sd_bus_message_read(m, "t", &types);
        if (r < 0)
                return r;
        /* It runs code in the guest: for those who may manage the domain. */
        r = bus_begin_flags_call(s, m, 0, BUS_ACTION_DOMAIN_MANAGE, (const char *[]) { "domain", d->name, NULL }, NULL,
                                 error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_domain_guest_info(d->manager, d, types, on_guest_info, sd_bus_message_ref(m), &now, &e);
        if (r == 0)
                return 1; /* on_guest_info replies */
        sd_bus_message_unref(m);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        on_guest_info(0, NULL, now, sd_bus_message_ref(m));
        return 1;
}
