/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration on the bus: Manager.PrepareMigration (destination), Domain.MigrateTo (source),
 * Domain.FinishMigration and Domain.AbortMigration (either side), the MigrationStats signal (and Progress,
 * which Save shares). core/domain-migrate.h says what each step does; all of them are guarded by
 * org.virtbus1.domain.migrate. Its own vtables, added to the Manager object and the Domain objects next to
 * theirs (sd-bus joins vtables of one interface). */
#include <stdio.h>
#include <sys/socket.h>

#include "bus/bus-authz.h"
#include "bus/bus-domain-migrate.h"
#include "bus/bus-domain.h"
#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "conf/domain-conf.h"
#include "core/domain-migrate.h"
#include "util/log.h"

/* As DefineDomain's limit (bus-domain.c). */
#define MIGRATE_XML_MAX (4U * 1024U * 1024U)
/* Options 'bandwidth' and 'postcopy-bandwidth' (MiB/s). */
#define BANDWIDTH_MIB_MAX (UINT64_C(1) << 40)

static BusServer *server_of(const Domain *d) {
        return d->manager->events.userdata;
}

/* The client driving a migration ------------------------------------------------------------------ */

/* The caller of PrepareMigration (destination) or MigrateTo (source), followed while its migration lasts:
 * if it goes away (its connection closes) while the state is still on its way, nobody could finish the
 * migration, and it is aborted here as AbortMigration would (core decides when that applies). */
typedef struct MigrationClient {
        Manager *manager;
        sd_bus_track *track;
        char uuid[37];
        char cookie[MIGRATION_COOKIE_HEX + 1];
} MigrationClient;

static void migration_client_free(void *userdata) {
        MigrationClient *c = userdata;

        sd_bus_track_unref(c->track);
        explicit_bzero(c->cookie, sizeof c->cookie);
        free(c);
}

static int on_client_gone(sd_bus_track *track, void *userdata) {
        MigrationClient *c = userdata;

        /* c goes with the migration, maybe within this call: nothing of it is used after. > 0: sd-bus
         * does not queue the (empty) track again. */
        manager_migration_client_gone(c->manager, c->uuid, c->cookie);
        return 1;
}

/* Follows m's sender for the migration of uuid with cookie; a failure only loses that. */
static void follow_client(Manager *manager, sd_bus_message *m, const char *uuid, const char *cookie) {
        MigrationClient *c = new0(MigrationClient, 1);
        int r;

        if (!c)
                return;
        c->manager = manager;
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        snprintf(c->cookie, sizeof c->cookie, "%s", cookie);
        r = sd_bus_track_new(sd_bus_message_get_bus(m), &c->track, on_client_gone, c);
        if (r >= 0)
                r = sd_bus_track_add_sender(c->track, m);
        if (r >= 0)
                r = manager_migration_follow_client(manager, uuid, cookie, c, migration_client_free);
        if (r < 0) {
                log_debug_errno(r, "Failed to follow the client of the migration of %s, ignoring: %m", uuid);
                migration_client_free(c);
        }
}

/* Options (a{sv}) --------------------------------------------------------------------------------- */

typedef enum OptionSide {
        OPT_PREPARE,
        OPT_MIGRATE,
} OptionSide;

typedef struct Options {
        MigrationPrepareOptions prepare;
        MigrationOptions migrate;
        bool copy_storage;
        VbMigrateDisk *disks; /* disk-sizes (targets point into the message) */
        size_t n_disks;
        const char *nbd_uri, *nbd_key;
} Options;

static void options_done(Options *o) {
        free(o->disks);
        *o = (Options) {};
}

/* disk-sizes: a{st}, target -> bytes. */
static int read_disk_sizes(sd_bus_message *m, Options *ret) {
        const char *target;
        uint64_t size;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{st}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "{st}", &target, &size)) > 0) {
                VbMigrateDisk *grown;

                if (ret->n_disks >= 256)
                        return -E2BIG;
                grown = reallocarray(ret->disks, ret->n_disks + 1, sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                ret->disks = grown;
                ret->disks[ret->n_disks++] = (VbMigrateDisk) { .target = target, .size = size };
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads the options of one side: unknown keys and wrong types are refused, naming what is known. */
static int read_options(sd_bus_message *m, OptionSide side, Options *ret, sd_bus_error *error) {
        static const char * const known[] = {
                [OPT_PREPARE] = "listen-address (s), port (q), persist (b), paused (b), copy-storage (b), "
                                "disk-sizes (a{st}), postcopy (b)",
                [OPT_MIGRATE] = "max-downtime (t, ms), bandwidth (t, MiB/s), auto-converge (b), undefine-source "
                                "(b), copy-storage (b), nbd-uri (s), nbd-key (s), postcopy (b), postcopy-after (t), "
                                "postcopy-bandwidth (t, MiB/s)",
        };
        int r;

        options_done(ret);
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *type = NULL;
                const char *want_s;
                char want;
                int b = 0;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                want_s = NULL;
                if (side == OPT_PREPARE && streq(key, "listen-address"))
                        want = 's';
                else if (side == OPT_PREPARE && streq(key, "disk-sizes")) {
                        want = 'a';
                        want_s = "a{st}";
                } else if (side == OPT_MIGRATE && (streq(key, "nbd-uri") || streq(key, "nbd-key")))
                        want = 's';
                else if (side == OPT_PREPARE && streq(key, "port"))
                        want = 'q';
                else if (side == OPT_MIGRATE && (streq(key, "max-downtime") || streq(key, "bandwidth") ||
                                                 streq(key, "postcopy-after") || streq(key, "postcopy-bandwidth")))
                        want = 't';
                else if ((side == OPT_PREPARE && (streq(key, "persist") || streq(key, "paused"))) ||
                         (side == OPT_MIGRATE && (streq(key, "auto-converge") || streq(key, "undefine-source"))) ||
                         streq(key, "copy-storage") || streq(key, "postcopy"))
                        want = 'b';
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%s'; the options "
                                                 "are: %s", key, known[side]);
                r = sd_bus_message_peek_type(m, NULL, &type);
                if (r < 0)
                        return r;
                if (want_s ? !streq_ptr(type, want_s) : (!type || type[0] != want || type[1]))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option '%s' must be of type '%s', "
                                                 "not '%s'", key, want_s ?: (char[]) { want, 0 }, strempty(type));
                r = sd_bus_message_enter_container(m, 'v', type);
                if (r < 0)
                        return r;
                if (streq(key, "listen-address"))
                        r = sd_bus_message_read(m, "s", &ret->prepare.address);
                else if (streq(key, "disk-sizes")) {
                        r = read_disk_sizes(m, ret);
                        if (r == -E2BIG)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'disk-sizes' names "
                                                         "more than 256 disks");
                } else if (streq(key, "nbd-uri"))
                        r = sd_bus_message_read(m, "s", &ret->nbd_uri);
                else if (streq(key, "nbd-key"))
                        r = sd_bus_message_read(m, "s", &ret->nbd_key);
                else if (streq(key, "port"))
                        r = sd_bus_message_read(m, "q", &ret->prepare.port);
                else if (streq(key, "max-downtime"))
                        r = sd_bus_message_read(m, "t", &ret->migrate.params.max_downtime_ms);
                else if (streq(key, "bandwidth"))
                        r = sd_bus_message_read(m, "t", &ret->migrate.params.bandwidth_mib);
                else if (streq(key, "postcopy-after"))
                        r = sd_bus_message_read(m, "t", &ret->migrate.params.postcopy_after);
                else if (streq(key, "postcopy-bandwidth"))
                        r = sd_bus_message_read(m, "t", &ret->migrate.params.postcopy_bandwidth_mib);
                else {
                        r = sd_bus_message_read(m, "b", &b);
                        if (streq(key, "persist"))
                                ret->prepare.persist = b;
                        else if (streq(key, "paused"))
                                ret->prepare.paused = b;
                        else if (streq(key, "auto-converge"))
                                ret->migrate.params.auto_converge = b;
                        else if (streq(key, "undefine-source"))
                                ret->migrate.undefine_source = b;
                        else if (streq(key, "postcopy"))
                                ret->prepare.postcopy = ret->migrate.params.postcopy = b;
                        else
                                ret->copy_storage = b;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (ret->prepare.address && isempty(ret->prepare.address))
                ret->prepare.address = NULL;
        if (ret->migrate.params.max_downtime_ms > 2000000)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'max-downtime' is %llu ms; at most "
                                         "2000000 ms (QEMU's limit)",
                                         (unsigned long long) ret->migrate.params.max_downtime_ms);
        /* In bytes for QEMU: 2^60 at most, well inside its int64. */
        if (ret->migrate.params.bandwidth_mib > BANDWIDTH_MIB_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'bandwidth' is %llu MiB/s; at most "
                                         "%llu MiB/s", (unsigned long long) ret->migrate.params.bandwidth_mib,
                                         (unsigned long long) BANDWIDTH_MIB_MAX);
        if (ret->migrate.params.postcopy_bandwidth_mib > BANDWIDTH_MIB_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'postcopy-bandwidth' is %llu MiB/s; "
                                         "at most %llu MiB/s",
                                         (unsigned long long) ret->migrate.params.postcopy_bandwidth_mib,
                                         (unsigned long long) BANDWIDTH_MIB_MAX);
        if (side == OPT_PREPARE) {
                if (ret->n_disks && !ret->copy_storage)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'disk-sizes' goes with "
                                                 "'copy-storage'");
                ret->prepare.copy_storage = ret->copy_storage;
                ret->prepare.disks = ret->disks;
                ret->prepare.n_disks = ret->n_disks;
                return 0;
        }
        if (ret->migrate.params.postcopy_after && !ret->migrate.params.postcopy)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'postcopy-after' goes with "
                                         "'postcopy'");
        if (ret->copy_storage != (ret->nbd_uri || ret->nbd_key) ||
            (ret->copy_storage && (!ret->nbd_uri || !ret->nbd_key)))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option 'copy-storage' goes with "
                                         "'nbd-uri' and 'nbd-key', as the destination's PrepareMigration gave them");
        ret->migrate.params.nbd_uri = ret->nbd_uri;
        ret->migrate.params.nbd_key = ret->nbd_key;
        return 0;
}

/* Stats as a{sv} ----------------------------------------------------------------------------------- */

static int append_stats(sd_bus_message *reply, const VbMigrationStats *st) {
        const struct {
                const char *key;
                uint64_t v;
        } fields[] = {
                { "total-time-ms", st->total_time_ms }, { "downtime-ms", st->downtime_ms },
                { "setup-time-ms", st->setup_time_ms }, { "transferred", st->transferred },
                { "remaining", st->remaining },         { "total", st->total },
                { "dirty-rate", st->dirty_rate },       { "iterations", st->iterations },
                { "mbps", st->mbps },                   { "disk-transferred", st->disk_transferred },
                { "disk-total", st->disk_total },
        };
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        for (size_t i = 0; r >= 0 && i < sizeof fields / sizeof fields[0]; i++)
                r = sd_bus_message_append(reply, "{sv}", fields[i].key, "t", fields[i].v);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "completed", "b", (int) st->completed);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}", "postcopy", "b", (int) st->postcopy);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* PrepareMigration ---------------------------------------------------------------------------------- */

static int parse_definition(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        DomainDef *def = NULL;
        int r = domain_def_parse_string(xml, flags, &def, reterr);

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

static int authorize_paths(BusServer *s, sd_bus_message *m, const void *def, void *userdata, sd_bus_error *error) {
        return bus_domain_authorize_paths(s, m, domain_def_get_name(def), def, NULL, userdata, error);
}

static const BusParseSpec prepare_spec = {
        .what = "definition", .max = MIGRATE_XML_MAX, .allowed_flags = 0, .skip = "a{sv}",
        .parse = parse_definition, .free = free_definition, .action = BUS_ACTION_DOMAIN_MIGRATE,
        .detail_key = "domain", .name = definition_name, .authorize_more = authorize_paths,
};

static void on_prepared(int r, Domain *d, const char *uri, const char *cookie, const char *nbd_uri,
                        const char *nbd_key, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char path[BUS_DOMAIN_PATH_MAX];

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "oss", bus_domain_path_buf(d, path), uri, cookie);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0 && nbd_uri)
                r = sd_bus_message_append(reply, "{sv}{sv}", "nbd-uri", "s", nbd_uri, "nbd-key", "s", nbd_key);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to answer PrepareMigration, ignoring: %m");
        else
                follow_client(d->manager, m, d->uuid, cookie);
}

static int method_prepare_migration(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(domain_access_done) DomainAccess access = {};
        _cleanup_(domain_def_freep) DomainDef *def = NULL;
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags = 0;
        _cleanup_(options_done) Options opts = {};
        void *parsed = NULL;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = bus_parse_document(s, m, &prepare_spec, 0, &access, &parsed, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        def = parsed;
        /* Authorized: the options, read after the document. */
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_skip(m, "s");
        if (r >= 0)
                r = read_options(m, OPT_PREPARE, &opts, error);
        if (r < 0)
                return r;
        /* The disks' sizes are read by the call (the driver keeps copies). */
        r = manager_migration_prepare(s->manager, TAKE_PTR(def), &access, &opts.prepare, on_prepared,
                                      sd_bus_message_ref(m), &e);
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

/* MigrateTo ----------------------------------------------------------------------------------------- */

/* The host part of a "tcp:HOST:PORT" URI for polkit's details (what was given, checked later). */
static void uri_host(const char *uri, char *buf, size_t size) {
        const char *p = strncmp(uri, "tcp:", 4) == 0 ? uri + 4 : uri, *end = strrchr(p, ':');
        size_t n = end ? (size_t) (end - p) : strlen(p);

        if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
                p++;
                n -= 2;
        }
        snprintf(buf, size, "%.*s", (int) (n < size ? n : size - 1), p);
}

static void on_stats(const VbMigrationStats *st, void *userdata) {
        /* userdata: the kept MigrateTo message; its path is the domain's. */
        sd_bus_message *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *signal = NULL;
        sd_bus *bus = sd_bus_message_get_bus(m);
        const char *path = sd_bus_message_get_path(m);
        int r;

        /* The disks (copy-storage) come first, then the memory. */
        (void) sd_bus_emit_signal(bus, path, VB_DOMAIN_INTERFACE, "Progress", "tt",
                                  st->disk_transferred + st->transferred,
                                  st->disk_total + (st->total > st->transferred ? st->total : st->transferred));
        r = sd_bus_message_new_signal(bus, &signal, path, VB_DOMAIN_INTERFACE, "MigrationStats");
        if (r >= 0)
                r = append_stats(signal, st);
        if (r >= 0)
                r = sd_bus_send(bus, signal, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to send MigrationStats, ignoring: %m");
}

static void on_sent(int r, Domain *d, const VbMigrationStats *st, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_stats(reply, st);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to answer MigrateTo, ignoring: %m");
}

static int method_migrate_to(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        VbError e = VB_ERROR_NULL;
        const char *uri, *cookie;
        char host[128];
        uint64_t flags;
        _cleanup_(options_done) Options opts = {};
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "ss", &uri, &cookie);
        if (r < 0)
                return r;
        /* The options are read again below, once authorized. */
        r = sd_bus_message_skip(m, "a{sv}");
        if (r < 0)
                return r;
        uri_host(uri, host, sizeof host);
        r = bus_begin_flags_call(server_of(d), m, 0, BUS_ACTION_DOMAIN_MIGRATE,
                                 (const char *[]) { "domain", d->name, "address", host, NULL }, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_skip(m, "ss");
        if (r >= 0)
                r = read_options(m, OPT_MIGRATE, &opts, error);
        if (r < 0)
                return r;
        r = manager_migration_start(d->manager, d, uri, cookie, &opts.migrate, on_stats, on_sent,
                                    sd_bus_message_ref(m), &e);
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_vb_error(error, &e, r);
        }
        follow_client(d->manager, m, d->uuid, cookie);
        return 1;
}

/* FinishMigration, AbortMigration ---------------------------------------------------------------------- */

static int method_finish_migration(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        const char *cookie;
        BusLater *l;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &cookie);
        if (r < 0)
                return r;
        r = bus_begin_flags_call(server_of(d), m, 0, BUS_ACTION_DOMAIN_MIGRATE,
                                 (const char *[]) { "domain", d->name, NULL }, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Answered once a definition saved or removed here is on disk (d may be gone by then). */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_migration_finish(d->manager, d, cookie, bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

/* A call with only flags that steers the domain's migration: authorized as migrating it, then op. */
static int migration_step(sd_bus_message *m, Domain *d, int (*op)(Manager *, Domain *, VbError *),
                          sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        int r;

        r = bus_begin_flags_call(server_of(d), m, 0, BUS_ACTION_DOMAIN_MIGRATE,
                                 (const char *[]) { "domain", d->name, NULL }, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = op(d->manager, d, &e);
        return bus_reply_done(m, r, &e, error);
}

static int method_abort_migration(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return migration_step(m, userdata, manager_migration_abort, error);
}

static int method_start_postcopy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return migration_step(m, userdata, manager_migration_postcopy, error);
}

/* Registration ---------------------------------------------------------------------------------------- */

static const sd_bus_vtable manager_migrate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("PrepareMigration", SD_BUS_ARGS("s", xml, "a{sv}", options, "t", flags),
                                SD_BUS_RESULT("o", domain, "s", uri, "s", cookie, "a{sv}", storage),
                                method_prepare_migration,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable domain_migrate_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("MigrateTo", SD_BUS_ARGS("s", uri, "s", cookie, "a{sv}", options, "t", flags),
                                SD_BUS_RESULT("a{sv}", stats), method_migrate_to, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("FinishMigration", SD_BUS_ARGS("s", cookie, "t", flags), SD_BUS_NO_RESULT,
                                method_finish_migration, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AbortMigration", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_abort_migration,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartPostcopy", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_start_postcopy,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("MigrationStats", SD_BUS_ARGS("a{sv}", stats), 0),
        SD_BUS_VTABLE_END,
};

static int find_domain(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        return bus_object_found(bus_domain_from_path(userdata, path), found);
}

int bus_domain_migrate_register(BusServer *s) {
        int r;

        r = sd_bus_add_object_vtable(s->bus, NULL, VB_MANAGER_PATH, VB_MANAGER_INTERFACE, manager_migrate_vtable, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Manager's migration methods: %m");
        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_DOMAIN_PREFIX, VB_DOMAIN_INTERFACE, domain_migrate_vtable,
                                       find_domain, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the Domain migration methods: %m");
        return 0;
}
