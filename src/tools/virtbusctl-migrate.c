/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl migrate NAME DEST: live migration driven from here, over two connections: the source (the bus
 * virtbusctl was told to use) and the destination (DEST: a bus address such as unix:path=..., or an ssh
 * host reached as sd_bus_open_system_remote does). PrepareMigration there, MigrateTo here (its Progress
 * signals draw a bar on a terminal), FinishMigration there, then here. On any failure both sides are told
 * AbortMigration: the guest keeps running on the source. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/virtbusctl.h"

#define MIGRATE_TIMEOUT_USEC (7ULL * 24 * 3600 * 1000000ULL) /* the migration decides */

typedef struct Run {
        const char *name;
        bool bar, done;
        uint64_t done_bytes, total;
        sd_bus_message *reply; /* MigrateTo's */
} Run;

static void progress_draw(const Run *t) {
        char done[32], total[32], bar[31];
        unsigned pct = t->total ? (unsigned) CTL_MIN(t->done_bytes * 100 / t->total, 100) : 0;
        size_t fill = pct * (sizeof bar - 1) / 100;

        memset(bar, '#', fill);
        memset(bar + fill, '-', sizeof bar - 1 - fill);
        bar[sizeof bar - 1] = 0;
        format_bytes(t->done_bytes, done, sizeof done);
        format_bytes(t->total, total, sizeof total);
        fprintf(stderr, "\rMigrating '%s' [%s] %3u%% %s of %s\033[K", t->name, bar, pct, done, total);
        fflush(stderr);
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Run *t = userdata;

        if (sd_bus_message_read(m, "tt", &t->done_bytes, &t->total) >= 0 && t->bar)
                progress_draw(t);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Run *t = userdata;

        t->done = true;
        t->reply = sd_bus_message_ref(m);
        return 0;
}

static int open_dest(const char *dest, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (strchr(dest, '=')) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, dest);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system_remote(&bus, dest);
        /* Connected only once Hello is answered: an ssh that fails (unknown host key, refused login) shows
         * here, with ssh's own words on stderr above, not at the first call. */
        if (r >= 0) {
                const char *unique;
                r = sd_bus_get_unique_name(bus, &unique);
        }
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the destination '%s': %s\n", dest, strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        (void) sd_bus_set_allow_interactive_authorization(bus, isatty(STDIN_FILENO));
        *ret = TAKE_PTR(bus);
        return 0;
}

static int append_option(sd_bus_message *m, const char *key, char type, const void *value) {
        char sig[2] = { type, 0 };
        int r = sd_bus_message_open_container(m, 'e', "sv");

        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', sig);
        if (r >= 0)
                r = sd_bus_message_append_basic(m, type, value);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* copy-storage: the disks' sizes as the source's GetStats gives them (block.N.name, block.N.capacity). */
typedef struct DiskSizes {
        char *names[64];
        uint64_t sizes[64];
        size_t n;
} DiskSizes;

static void disk_sizes_done(DiskSizes *d) {
        for (size_t i = 0; i < d->n; i++)
                free(d->names[i]);
        d->n = 0;
}

static int disk_sizes_get(sd_bus *bus, const char *path, DiskSizes *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *key, *type, *name;
        char *names[64] = {};
        uint64_t sizes[64] = {}, v;
        unsigned i;
        int r, n;

        r = sd_bus_call_method(bus, CTL_SERVICE, path, CTL_DOMAIN, "GetStats", &e, &reply, "tt", UINT64_C(32),
                               UINT64_C(0));
        if (r < 0)
                return -ctl_error(&e, r, "the source's GetStats (for the disks' sizes)");
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &type);
                if (r < 0)
                        break;
                if (sscanf(key, "block.%u.%n", &i, &n) == 1 && i < 64 && streq(key + n, "name") && streq(type, "s")) {
                        r = sd_bus_message_read(reply, "v", "s", &name);
                        if (r > 0 && !names[i] && !(names[i] = strdup(name)))
                                r = -ENOMEM;
                } else if (sscanf(key, "block.%u.%n", &i, &n) == 1 && i < 64 && streq(key + n, "capacity") &&
                           streq(type, "t")) {
                        r = sd_bus_message_read(reply, "v", "t", &v);
                        sizes[i] = v;
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        for (i = 0; i < 64; i++) {
                if (r >= 0 && names[i] && sizes[i]) {
                        ret->names[ret->n] = names[i];
                        ret->sizes[ret->n++] = sizes[i];
                } else
                        free(names[i]);
        }
        return r < 0 ? -ctl_error(NULL, r, "GetStats") : 0;
}

/* PrepareMigration's storage: nbd-uri and nbd-key (copy-storage). */
static int read_storage(sd_bus_message *reply, char **ret_nbd_uri, char **ret_nbd_key) {
        const char *key, *value;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && (streq(key, "nbd-uri") || streq(key, "nbd-key"))) {
                        r = sd_bus_message_read(reply, "v", "s", &value);
                        if (r > 0 && !(*(streq(key, "nbd-uri") ? ret_nbd_uri : ret_nbd_key) = strdup(value)))
                                r = -ENOMEM;
                } else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0 && arg.copy_storage && (!*ret_nbd_uri || !*ret_nbd_key))
                r = -EBADMSG;
        return r;
}

static int prepare(sd_bus *dest, const char *xml, const DiskSizes *disks, char **ret_path, char **ret_uri,
                   char **ret_cookie, char **ret_nbd_uri, char **ret_nbd_key) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *p, *u, *c;
        int yes = 1, r;

        r = sd_bus_message_new_method_call(dest, &m, CTL_SERVICE, CTL_MANAGER_PATH, CTL_MANAGER, "PrepareMigration");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", xml);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.listen_address)
                r = append_option(m, "listen-address", 's', arg.listen_address);
        if (r >= 0 && arg.persistent)
                r = append_option(m, "persist", 'b', &yes);
        if (r >= 0 && arg.paused)
                r = append_option(m, "paused", 'b', &yes);
        if (r >= 0 && arg.postcopy)
                r = append_option(m, "postcopy", 'b', &yes);
        if (r >= 0 && arg.copy_storage) {
                r = append_option(m, "copy-storage", 'b', &yes);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "disk-sizes");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "a{st}");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{st}");
                for (size_t i = 0; r >= 0 && i < disks->n; i++)
                        r = sd_bus_message_append(m, "{st}", disks->names[i], disks->sizes[i]);
                for (int k = 0; r >= 0 && k < 3; k++)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r < 0)
                return -ctl_error(NULL, r, "PrepareMigration");
        r = sd_bus_call(dest, m, CTL_CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return -ctl_error(&e, r, "the destination's PrepareMigration");
        r = sd_bus_message_read(reply, "oss", &p, &u, &c);
        if (r >= 0)
                r = read_storage(reply, ret_nbd_uri, ret_nbd_key);
        if (r < 0)
                return -ctl_error(NULL, r, "PrepareMigration");
        *ret_path = strdup(p);
        *ret_uri = strdup(u);
        *ret_cookie = strdup(c);
        return *ret_path && *ret_uri && *ret_cookie ? 0 : -ctl_error(NULL, -ENOMEM, "PrepareMigration");
}

/* MigrateTo on the source, the bus run until its answer (Progress drawn meanwhile). */
static int migrate_to(sd_bus *bus, const char *path, const char *uri, const char *cookie, const char *nbd_uri,
                      const char *nbd_key, Run *t) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *call = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int yes = 1, r;

        r = sd_bus_match_signal(bus, &match, CTL_SERVICE, path, CTL_DOMAIN, "Progress", on_progress, t);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, CTL_SERVICE, path, CTL_DOMAIN, "MigrateTo");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", uri, cookie);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg.undefine_source)
                r = append_option(m, "undefine-source", 'b', &yes);
        if (r >= 0 && arg.max_downtime)
                r = append_option(m, "max-downtime", 't', &arg.max_downtime);
        if (r >= 0 && arg.bandwidth)
                r = append_option(m, "bandwidth", 't', &arg.bandwidth);
        if (r >= 0 && nbd_uri) {
                r = append_option(m, "copy-storage", 'b', &yes);
                if (r >= 0)
                        r = append_option(m, "nbd-uri", 's', nbd_uri);
                if (r >= 0)
                        r = append_option(m, "nbd-key", 's', nbd_key);
        }
        if (r >= 0 && arg.postcopy) {
                /* Switch by itself after the first full pass unless told when. */
                uint64_t after = arg.postcopy_after ?: 2;

                r = append_option(m, "postcopy", 'b', &yes);
                if (r >= 0)
                        r = append_option(m, "postcopy-after", 't', &after);
                if (r >= 0 && arg.postcopy_bandwidth)
                        r = append_option(m, "postcopy-bandwidth", 't', &arg.postcopy_bandwidth);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r >= 0)
                r = sd_bus_call_async(bus, &call, m, on_reply, t, MIGRATE_TIMEOUT_USEC);
        while (r >= 0 && !t->done) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        if (t->bar)
                fputc('\n', stderr);
        if (r < 0)
                return -ctl_error(NULL, r, "MigrateTo");
        if (sd_bus_message_is_method_error(t->reply, NULL))
                return -ctl_error(sd_bus_message_get_error(t->reply), -sd_bus_message_get_errno(t->reply),
                                 "the source's MigrateTo");
        return 0;
}

/* A figure of MigrateTo's answer (a{sv}), or 0. */
static uint64_t reply_figure(sd_bus_message *reply, const char *key) {
        const char *k, *type;
        uint64_t v, found = 0;

        if (sd_bus_message_rewind(reply, true) < 0 || sd_bus_message_enter_container(reply, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                if (sd_bus_message_read(reply, "s", &k) < 0 || sd_bus_message_peek_type(reply, NULL, &type) < 0)
                        return found;
                if (streq(type, "t") && sd_bus_message_read(reply, "v", "t", &v) > 0 && streq(k, key))
                        found = v;
                else if (!streq(type, "t"))
                        (void) sd_bus_message_skip(reply, "v");
                (void) sd_bus_message_exit_container(reply);
        }
        return found;
}

static void abort_side(sd_bus *bus, const char *path, const char *where) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (sd_bus_call_method(bus, CTL_SERVICE, path, CTL_DOMAIN, "AbortMigration", &e, NULL, "t", UINT64_C(0)) < 0 &&
            !sd_bus_error_has_name(&e, "org.virtbus1.Error.InvalidState") &&
            !sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_OBJECT))
                fprintf(stderr, "AbortMigration on the %s failed too: %s\n", where, e.message ?: e.name);
}

static int finish(sd_bus *bus, const char *path, const char *cookie, const char *where) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *what = NULL;
        int r;

        r = sd_bus_call_method(bus, CTL_SERVICE, path, CTL_DOMAIN, "FinishMigration", &e, NULL, "st", cookie,
                               UINT64_C(0));
        if (r < 0) {
                if (asprintf(&what, "the %s's FinishMigration", where) < 0)
                        what = NULL;
                return -ctl_error(&e, r, what ?: "FinishMigration");
        }
        return 0;
}

/* migrate NAME DEST [--listen-address ADDR] [--persistent] [--undefine-source] [--paused]
 *                   [--max-downtime MS] [--bandwidth MIB] [--copy-storage] [--postcopy] [--postcopy-after N]
 *                   [--postcopy-bandwidth MIB] */
int verb_migrate(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *dest = NULL;
        _cleanup_free_ char *path = NULL, *xml = NULL, *dpath = NULL, *uri = NULL, *cookie = NULL, *nbd_uri = NULL,
                            *nbd_key = NULL;
        _cleanup_(disk_sizes_done) DiskSizes disks = {};
        Run t = { .name = argv[0], .bar = isatty(STDERR_FILENO) && !arg.json };
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = ctl_domain_xml(bus, argv[0], 0, &xml);
        if (r >= 0 && arg.copy_storage)
                r = disk_sizes_get(bus, path, &disks);
        if (r >= 0)
                r = open_dest(argv[1], &dest);
        if (r < 0)
                return r;
        r = prepare(dest, xml, &disks, &dpath, &uri, &cookie, &nbd_uri, &nbd_key);
        if (r < 0) {
                fprintf(stderr, "Domain '%s' was not migrated; it runs on at the source.\n", argv[0]);
                return r;
        }
        r = migrate_to(bus, path, uri, cookie, nbd_uri, nbd_key, &t);
        if (r >= 0)
                r = finish(dest, dpath, cookie, "destination");
        if (r < 0) {
                /* The guest stays where it was. */
                abort_side(dest, dpath, "destination");
                abort_side(bus, path, "source");
                fprintf(stderr, "Domain '%s' was not migrated; it runs on at the source.\n", argv[0]);
                sd_bus_message_unref(t.reply);
                return r;
        }
        r = finish(bus, path, cookie, "source");
        if (r >= 0)
                printf("Domain '%s' migrated to '%s' in %" PRIu64 " ms (downtime %" PRIu64 " ms).\n", argv[0], argv[1],
                       reply_figure(t.reply, "total-time-ms"), reply_figure(t.reply, "downtime-ms"));
        sd_bus_message_unref(t.reply);
        return r;
}
