/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration (see domain-migrate.h). Every step waits on the event loop, never blocks it: the
 * destination's listener and the stream's first line, the source's connect, and the backend's transfer
 * (which the hypervisor does on its own). A migration names its domain by UUID and finds it again at each
 * step: the domain may go away meanwhile (its QEMU killed). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/domain-paths.h"
#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-migrate.h"
#include "core/domain-queue.h"
#include "core/domain-store.h"
#include "core/network.h"
#include "util/log.h"

#define HEADER_MAGIC "VIRTBUS-MIGRATE "
#define HEADER_LEN (sizeof(HEADER_MAGIC) - 1 + MIGRATION_COOKIE_HEX + 1)
#define HEADER_ACK "+"

typedef enum MigrationStep {
        STEP_STARTING,  /* destination: the domain starts, paused */
        STEP_LISTENING, /* destination: waiting for the stream */
        STEP_HANDSHAKE, /* destination: reading a stream's first line; source: connecting, writing it */
        STEP_STREAMING, /* the backend sends or receives the state */
        STEP_DONE,      /* sent / received: waiting for Finish or Abort */
        STEP_FAILED,    /* destination: the state did not arrive (the domain is gone) */
} MigrationStep;

struct Migration {
        Manager *m;
        uint64_t id; /* this migration's own (a UUID may be migrated again) */
        bool incoming;
        MigrationStep step;
        char uuid[37];
        char name[256];
        char cookie[MIGRATION_COOKIE_HEX + 1];
        char header[HEADER_LEN + 1];
        size_t header_done;
        int listen_fd, fd;
        sd_event_source *listen_source, *io_source, *timer;
        VbError failure; /* destination, STEP_FAILED: why */
        bool loading;    /* destination: the backend's load_state runs and will call on_received with this */
        bool orphaned;   /* ended while loading: unlinked, and on_received frees it */
        bool ending;     /* incoming_fail runs (the destroy in it may make the backend answer at once) */

        /* destination */
        DomainDef *persist_def; /* the definition to save when finished (persist), else NULL */
        DomainAccess access;
        bool has_access;
        bool paused;
        bool postcopy, postcopy_ready; /* destination: postcopy asked, and accepted by the backend */
        char uri[128];
        DomainDef *start_def;   /* copy-storage: the definition to start once its disks are made */
        bool disks;             /* copy-storage: disks were created here (they go unless finished) */
        char nbd_uri[128];      /* copy-storage: the disks' export */
        char nbd_key[129];      /* copy-storage: its key (destination: made here; source: given) */
        MigrationPrepared prepared;
        MigrationDone finish_done; /* a Finish waiting for the state */
        void *finish_userdata;

        /* either side: what follows the client that started it (manager_migration_follow_client) */
        void *client;
        void (*client_free)(void *client);

        /* source */
        MigrationOptions opts;
        VbMigrationStats last;
        VbDriverMigrationStats stats;
        MigrationSent sent;
        void *userdata;

        Migration *next;
};

static Domain *migration_domain(Migration *g) {
        return manager_domain_by_uuid(g->m, g->uuid);
}

static void migration_unlink(Migration *g) {
        Migration **i;

        for (i = &g->m->migrations; *i && *i != g; i = &(*i)->next)
                ;
        if (*i)
                *i = g->next;
}

static void migration_close_io(Migration *g) {
        g->listen_source = sd_event_source_disable_unref(g->listen_source);
        g->io_source = sd_event_source_disable_unref(g->io_source);
        if (g->listen_fd >= 0)
                close(g->listen_fd);
        if (g->fd >= 0)
                close(g->fd);
        g->listen_fd = g->fd = -1;
}

/* copy-storage, destination: the export goes, and with remove the disks made for it. */
static void migration_disks_end(Migration *g, bool remove) {
        if (!g->disks)
                return;
        g->disks = false;
        if (DRIVER_OP(g->m, domain_disks_end))
                DRIVER_OP(g->m, domain_disks_end)(g->m->driver, g->uuid, remove);
}

/* The migration ends: its domain is no longer held. A destination whose backend still reads the stream
 * keeps the struct for on_received (which frees it), out of the list. */
static void migration_free(Migration *g) {
        Domain *d = g->orphaned ? NULL : migration_domain(g);

        if (d)
                d->job_busy = false;
        migration_disks_end(g, true);
        migration_unlink(g);
        migration_close_io(g);
        g->timer = sd_event_source_disable_unref(g->timer);
        g->persist_def = domain_def_free(g->persist_def);
        g->start_def = domain_def_free(g->start_def);
        explicit_bzero(g->nbd_key, sizeof g->nbd_key);
        domain_access_done(&g->access);
        vb_error_free(&g->failure);
        explicit_bzero(g->cookie, sizeof g->cookie);
        if (g->client_free)
                g->client_free(TAKE_PTR(g->client));
        g->client_free = NULL;
        if (g->loading) {
                g->orphaned = true;
                g->finish_done = NULL;
                return;
        }
        free(g);
}

static Migration *migration_new(Manager *m, bool incoming, const char *uuid, const char *name) {
        static uint64_t next_id;
        Migration *g = new0(Migration, 1);

        if (!g)
                return NULL;
        *g = (Migration) { .m = m, .id = ++next_id, .incoming = incoming, .listen_fd = -1, .fd = -1,
                           .failure = VB_ERROR_NULL };
        snprintf(g->uuid, sizeof g->uuid, "%s", uuid);
        snprintf(g->name, sizeof g->name, "%s", name);
        g->next = m->migrations;
        m->migrations = g;
        return g;
}

static Migration *migration_of(const Manager *m, const char *uuid) {
        for (Migration *g = m->migrations; g; g = g->next)
                if (streq(g->uuid, uuid))
                        return g;
        return NULL;
}

bool manager_domain_migrating(const Manager *m, const Domain *d) {
        return migration_of(m, d->uuid);
}

/* Equal bytes, in a time that depends on n only. */
static bool bytes_equal(const char *a, const char *b, size_t n) {
        unsigned char diff = 0;

        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (a[i] ^ b[i]);
        return diff == 0;
}

bool migration_cookie_equal(const char *a, const char *b) {
        /* The lengths say nothing secret (the cookie's is fixed); its contents are compared in full. */
        if (strlen(a) != MIGRATION_COOKIE_HEX || strlen(b) != MIGRATION_COOKIE_HEX)
                return false;
        return bytes_equal(a, b, MIGRATION_COOKIE_HEX);
}

static int cookie_new(char ret[static MIGRATION_COOKIE_HEX + 1]) {
        uint8_t bytes[MIGRATION_COOKIE_BYTES];
        ssize_t n = getrandom(bytes, sizeof bytes, 0);

        if (n != (ssize_t) sizeof bytes)
                return n < 0 ? -errno : -EIO;
        for (size_t i = 0; i < sizeof bytes; i++)
                snprintf(ret + 2 * i, 3, "%02x", bytes[i]);
        explicit_bzero(bytes, sizeof bytes);
        return 0;
}

static int arm_timer(Migration *g, uint64_t usec, sd_event_time_handler_t handler) {
        int r;

        if (!g->timer)
                return sd_event_add_time_relative(g->m->event, &g->timer, CLOCK_MONOTONIC, usec, 0, handler, g);
        r = sd_event_source_set_time_relative(g->timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT);
        return r;
}

/* The checks ---------------------------------------------------------------------------------------- */

int manager_migration_check_def(Manager *m, const DomainDef *def, bool destination, VbError *reterr) {
        DeviceDef *const *devs;
        size_t n = domain_def_get_devices(def, &devs);

        for (size_t i = 0; i < n; i++) {
                const char *net;

                if (devs[i]->kind == DEVICE_HOSTDEV)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Domain '%s' uses a device of the host "
                                            "(<hostdev>): its state in the device cannot move with the guest; "
                                            "detach it before migrating", domain_def_get_name(def));
                if (!destination || devs[i]->kind != DEVICE_INTERFACE)
                        continue;
                net = device_interface_get_network(devs[i]);
                if (net && (!m->networks || !network_registry_by_name(m->networks, net)))
                        return vb_error_set(reterr, VB_ERROR_NO_SUCH_NETWORK, "Domain '%s' has an interface on "
                                            "network '%s', which this host does not have: define a network of "
                                            "that name first", domain_def_get_name(def), net);
        }
        return 0;
}

/* Addresses ------------------------------------------------------------------------------------------ */

int migration_parse_uri(const char *uri, struct sockaddr_storage *ret, unsigned *ret_len, VbError *reterr) {
        char host[INET6_ADDRSTRLEN + 2];
        const char *p, *port_s;
        unsigned long port;
        char *end;
        size_t n;

        if (!uri || strncmp(uri, "tcp:", 4) != 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s' is not of the form "
                                    "tcp:ADDRESS:PORT", strempty(uri));
        p = uri + 4;
        if (*p == '[') {
                const char *close_b = strchr(p, ']');
                if (!close_b || close_b[1] != ':')
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s': an IPv6 "
                                            "address goes in brackets, followed by :PORT", uri);
                n = (size_t) (close_b - p - 1);
                p++;
                port_s = close_b + 2;
        } else {
                port_s = strrchr(p, ':');
                if (!port_s)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s' has no "
                                            ":PORT", uri);
                n = (size_t) (port_s - p);
                port_s++;
                if (memchr(p, ':', n))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s': an IPv6 "
                                            "address goes in brackets, followed by :PORT", uri);
        }
        if (n == 0 || n >= sizeof host)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s' has no valid address",
                                    uri);
        memcpy(host, p, n);
        host[n] = 0;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno || *end || !*port_s || port == 0 || port > 65535)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s': the port must be a "
                                    "number from 1 to 65535", uri);
        memset(ret, 0, sizeof *ret);
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) ret)->sin_addr) == 1) {
                ((struct sockaddr_in *) ret)->sin_family = AF_INET;
                ((struct sockaddr_in *) ret)->sin_port = htons((uint16_t) port);
                *ret_len = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) ret)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *) ret)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *) ret)->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(struct sockaddr_in6);
        } else
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The migration URI '%s': '%s' is not a "
                                    "numeric IPv4 or IPv6 address", uri, host);
        return 0;
}

/* The host's first address that is up and not a loopback one (IPv4 first). */
static int default_address(char ret[static INET6_ADDRSTRLEN], VbError *reterr) {
        struct ifaddrs *list, *i;
        int found = 0;

        if (getifaddrs(&list) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to list the host's addresses: %m");
        for (int family = AF_INET; !found && family <= AF_INET6; family += AF_INET6 - AF_INET)
                for (i = list; i && !found; i = i->ifa_next) {
                        const void *a;
                        if (!i->ifa_addr || i->ifa_addr->sa_family != family || !(i->ifa_flags & IFF_UP) ||
                            (i->ifa_flags & IFF_LOOPBACK))
                                continue;
                        a = family == AF_INET ? (const void *) &((struct sockaddr_in *) i->ifa_addr)->sin_addr
                                              : (const void *) &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                        if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *) a))
                                continue;
                        found = inet_ntop(family, a, ret, INET6_ADDRSTRLEN) != NULL;
                }
        freeifaddrs(list);
        if (!found)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "This host has no address but loopback ones: "
                                    "name the address to listen on (option 'listen-address')");
        return 0;
}

/* A listening socket on address:port (non-blocking), and the URI that reaches it. */
static int listen_on(const char *address, uint16_t port, int *ret_fd, char *uri, size_t uri_size, VbError *reterr) {
        char addr_buf[INET6_ADDRSTRLEN], tmp[160];
        struct sockaddr_storage sa;
        socklen_t sl;
        unsigned len;
        int fd, r, one = 1;
        bool v6;

        if (!address) {
                r = default_address(addr_buf, reterr);
                if (r < 0)
                        return r;
                address = addr_buf;
        }
        v6 = strchr(address, ':');
        snprintf(tmp, sizeof tmp, v6 ? "tcp:[%s]:1" : "tcp:%s:1", address);
        r = migration_parse_uri(tmp, &sa, &len, NULL);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The option 'listen-address' must be a "
                                    "numeric IPv4 or IPv6 address, not '%s'", address);
        if (sa.ss_family == AF_INET)
                ((struct sockaddr_in *) &sa)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *) &sa)->sin6_port = htons(port);
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create a socket: %m");
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, len) < 0 || listen(fd, 4) < 0) {
                r = vb_error_set(reterr, errno == EADDRNOTAVAIL ? VB_ERROR_INVALID_ARGUMENT : VB_ERROR_OPERATION_FAILED,
                                 "Failed to listen on '%s' port %u for the migration: %m", address, port);
                close(fd);
                return r;
        }
        sl = sizeof sa;
        if (getsockname(fd, (struct sockaddr *) &sa, &sl) < 0) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read the listener's port: %m");
                close(fd);
                return r;
        }
        port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *) &sa)->sin_port
                                            : ((struct sockaddr_in6 *) &sa)->sin6_port);
        snprintf(uri, uri_size, v6 ? "tcp:[%s]:%u" : "tcp:%s:%u", address, port);
        *ret_fd = fd;
        return 0;
}

static int set_blocking(int fd) {
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* Destination -------------------------------------------------------------------------------------- */

static void incoming_fail(Migration *g, int r, const VbError *e, bool now);

/* Ends a Finish that waited for the state. */
static void finish_waiter(Migration *g, int r, const VbError *e) {
        MigrationDone done = g->finish_done;

        g->finish_done = NULL;
        if (done)
                done(r, e, g->finish_userdata);
}

static int on_cookie_expired(sd_event_source *s, uint64_t usec, void *userdata) {
        Migration *g = userdata;
        VbError e = VB_ERROR_NULL;

        log_notice("Migration of domain '%s' to this host: no %s came within %llu s, the incoming domain goes.",
                   g->name, g->step == STEP_DONE ? "FinishMigration" : "stream",
                   (unsigned long long) (MIGRATION_COOKIE_USEC / 1000000ULL));
        vb_error_set(&e, VB_ERROR_TIMEOUT, "The migration of domain '%s' expired", g->name);
        incoming_fail(g, -ETIMEDOUT, &e, true);
        vb_error_free(&e);
        return 0;
}

typedef struct DestroyLater {
        Manager *m;
        char uuid[37];
        sd_event_source *source;
} DestroyLater;

static int on_destroy_later(sd_event_source *s, void *userdata) {
        DestroyLater *l = userdata;
        Domain *d = manager_domain_by_uuid(l->m, l->uuid);
        Migration *g = migration_of(l->m, l->uuid);

        /* Unless a new migration took the UUID meanwhile. */
        if (d && domain_is_active(d) && (!g || g->step == STEP_FAILED))
                (void) manager_domain_destroy(l->m, d, NULL);
        sd_event_source_disable_unref(l->source);
        free(l);
        return 0;
}

/* The incoming domain goes: from the event loop, not from inside the backend's callback that told of the
 * failure (the backend may be tearing that very domain down). */
static void destroy_later(Manager *m, const char *uuid) {
        DestroyLater *l = new0(DestroyLater, 1);

        if (!l)
                return;
        l->m = m;
        snprintf(l->uuid, sizeof l->uuid, "%s", uuid);
        if (sd_event_add_defer(m->event, &l->source, on_destroy_later, l) < 0)
                free(l);
}

/* The incoming domain goes (Abort, a failure): the migration ends, or stays FAILED when a Finish may still
 * ask (it hears why). */
static void incoming_fail(Migration *g, int r, const VbError *e, bool now) {
        Domain *d = migration_domain(g);

        g->ending = true;
        migration_close_io(g);
        if (d) {
                d->job_busy = false;
                (void) DRIVER_OP(g->m, domain_expect_incoming)(g->m->driver, g->uuid, false, NULL);
                if (domain_is_active(d) && now)
                        (void) manager_domain_destroy(g->m, d, NULL);
                else if (domain_is_active(d))
                        destroy_later(g->m, g->uuid);
        }
        migration_disks_end(g, true);
        if (g->finish_done) {
                finish_waiter(g, r, e);
                migration_free(g);
                return;
        }
        g->step = STEP_FAILED;
        g->ending = false;
        vb_error_free(&g->failure);
        if (e)
                vb_error_set(&g->failure, e->code, "%s", e->message ?: "The migration failed");
        else
                vb_error_set(&g->failure, VB_ERROR_OPERATION_FAILED, "The migration of domain '%s' failed: %s",
                             g->name, strerror(-r));
        /* Kept for a Finish to hear why, until the cookie expires. */
        if (arm_timer(g, MIGRATION_COOKIE_USEC, on_cookie_expired) < 0)
                migration_free(g);
}

static int finish_incoming(Migration *g, VbError *reterr);
static void finish_now(Migration *g);

static void on_received(int r, const VbError *e, void *userdata) {
        Migration *g = userdata;

        g->loading = false;
        if (g->orphaned) {
                free(g);
                return;
        }
        if (g->ending)
                return; /* incoming_fail is ending it */
        if (r < 0) {
                log_warning("Migration of domain '%s' to this host failed: %s", g->name,
                            e && e->message ? e->message : strerror(-r));
                incoming_fail(g, r, e, false);
                return;
        }
        migration_close_io(g);
        g->step = STEP_DONE;
        log_notice("Migration of domain '%s' to this host: state received.", g->name);
        if (!g->finish_done) {
                if (arm_timer(g, MIGRATION_COOKIE_USEC, on_cookie_expired) < 0)
                        log_warning("Failed to arm the expiry of the migration of '%s', ignoring.", g->name);
                return;
        }
        finish_now(g);
}

/* Finishes g for the Finish that waits (g->finish_done). */
static void finish_now(Migration *g) {
        VbError e = VB_ERROR_NULL;
        int r = finish_incoming(g, &e);

        if (r == 0)
                return; /* its answer follows */
        finish_waiter(g, r, r < 0 ? &e : NULL);
        vb_error_free(&e);
        if (r >= 0)
                migration_free(g);
}

static void on_progress(uint64_t done, uint64_t total, void *userdata) {
        Migration *g = userdata;
        Domain *d = g->orphaned ? NULL : migration_domain(g);

        if (d && g->m->events.domain_progress)
                g->m->events.domain_progress(g->m->events.userdata, d, done, total);
}

/* The stream's first line was right: the backend reads the rest. */
static void incoming_stream(Migration *g) {
        VbError e = VB_ERROR_NULL;
        int r;

        g->io_source = sd_event_source_disable_unref(g->io_source);
        g->listen_source = sd_event_source_disable_unref(g->listen_source);
        if (g->listen_fd >= 0)
                close(g->listen_fd);
        g->listen_fd = -1;
        g->timer = sd_event_source_disable_unref(g->timer);
        g->step = STEP_STREAMING;
        log_notice("Migration of domain '%s' to this host: stream accepted.", g->name);
        r = set_blocking(g->fd);
        if (r >= 0)
                r = DRIVER_OP(g->m, domain_load_state)(g->m->driver, g->uuid, g->fd, on_progress, on_received, g, &e);
        g->loading = r >= 0;
        if (r < 0) {
                incoming_fail(g, r, &e, false);
                vb_error_free(&e);
        }
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* A stream that did not say the cookie goes; the listener goes on. */
static void incoming_reject(Migration *g, const char *why) {
        log_warning("Migration of domain '%s' to this host: a stream was refused (%s).", g->name, why);
        g->io_source = sd_event_source_disable_unref(g->io_source);
        if (g->fd >= 0)
                close(g->fd);
        g->fd = -1;
        g->step = STEP_LISTENING;
        (void) sd_event_source_set_enabled(g->listen_source, SD_EVENT_ON);
        if (arm_timer(g, MIGRATION_COOKIE_USEC, on_cookie_expired) < 0)
                log_warning("Failed to arm the expiry of the migration of '%s', ignoring.", g->name);
}

static int on_handshake_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        incoming_reject(userdata, "it sent no first line in time");
        return 0;
}

static int on_header(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Migration *g = userdata;
        char want[HEADER_LEN + 1];
        ssize_t n;

        /* Exactly the line: what follows is the hypervisor's. */
        n = recv(fd, g->header + g->header_done, HEADER_LEN - g->header_done, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                incoming_reject(g, n == 0 ? "it closed before its first line" : strerror(errno));
                return 0;
        }
        g->header_done += (size_t) n;
        if (g->header_done < HEADER_LEN)
                return 0;
        g->header[HEADER_LEN] = 0;
        snprintf(want, sizeof want, HEADER_MAGIC "%s\n", g->cookie);
        if (!bytes_equal(g->header, want, HEADER_LEN)) {
                incoming_reject(g, "wrong cookie");
                return 0;
        }
        /* One byte back: the source hands the socket to its hypervisor only after it (a refused stream
         * ends there, with a clear failure, instead of being sent into a closed socket). The socket is new
         * and empty: the byte goes at once. */
        if (send(fd, HEADER_ACK, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
                incoming_reject(g, "it went away");
                return 0;
        }
        incoming_stream(g);
        return 0;
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Migration *g = userdata;
        int c, r;

        c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
                return 0;
        if (g->fd >= 0) {
                close(c); /* one stream at a time */
                return 0;
        }
        g->fd = c;
        g->header_done = 0;
        g->step = STEP_HANDSHAKE;
        (void) sd_event_source_set_enabled(g->listen_source, SD_EVENT_OFF);
        r = sd_event_add_io(g->m->event, &g->io_source, c, EPOLLIN, on_header, g);
        if (r >= 0)
                r = arm_timer(g, MIGRATION_HANDSHAKE_USEC, on_handshake_timeout);
        if (r < 0)
                incoming_reject(g, strerror(-r));
        return 0;
}

/* The incoming domain could not be made ready: what was started goes, the caller hears why. */
static void incoming_start_failed(Migration *g, Domain *d, int r, const VbError *e) {
        MigrationPrepared prepared = g->prepared;
        void *prepared_userdata = g->userdata;

        g->prepared = NULL;
        (void) DRIVER_OP(g->m, domain_expect_incoming)(g->m->driver, g->uuid, false, NULL);
        if (d && domain_is_active(d))
                (void) manager_domain_destroy(g->m, d, NULL);
        migration_free(g);
        if (prepared)
                prepared(r, NULL, NULL, NULL, NULL, NULL, e, prepared_userdata);
}

static void incoming_ready(Migration *g, Domain *d) {
        MigrationPrepared prepared = g->prepared;

        g->prepared = NULL;
        d->job_busy = true;
        g->step = STEP_LISTENING;
        log_notice("Migration of domain '%s' to this host: listening on %s%s%s.", g->name, g->uri,
                   g->disks ? ", disks exported on " : "", g->disks ? g->nbd_uri : "");
        prepared(0, d, g->uri, g->cookie, g->disks ? g->nbd_uri : NULL, g->disks ? g->nbd_key : NULL, NULL,
                 g->userdata);
}

static void incoming_continue(Migration *g, Domain *d);

static void on_disks_exported(int r, const char *key, const VbError *e, void *userdata) {
        Migration *g = userdata;
        Domain *d = migration_domain(g);
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0 && !d)
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Domain '%s' stopped while its disks were exported",
                                 g->name);
        if (r < 0) {
                incoming_start_failed(g, d, r, e ?: &e2);
                vb_error_free(&e2);
                return;
        }
        snprintf(g->nbd_key, sizeof g->nbd_key, "%s", key);
        incoming_continue(g, d);
}

static void on_postcopy_ready(int r, const VbError *e, void *userdata) {
        Migration *g = userdata;
        Domain *d = migration_domain(g);
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0 && !d)
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Domain '%s' stopped while it was started for the "
                                 "migration", g->name);
        if (r < 0) {
                incoming_start_failed(g, d, r, e ?: &e2);
                vb_error_free(&e2);
                return;
        }
        g->postcopy_ready = true;
        incoming_continue(g, d);
}

/* The address of the stream's listener (from its URI), for the disks' listener. */
static void uri_address(const char *uri, char *buf, size_t size) {
        const char *p = uri + 4, *colon = strrchr(p, ':');
        size_t n = colon ? (size_t) (colon - p) : strlen(p);

        if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
                p++;
                n -= 2;
        }
        snprintf(buf, size, "%.*s", (int) (n < size ? n : size - 1), p);
}

/* The incoming domain started, paused and waiting: the listener opens to the stream (copy-storage: once
 * the disks are exported). */
static void on_incoming_started(Domain *d, int r, const VbError *e, void *userdata) {
        Migration *g = userdata;
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0 && !d)
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Domain '%s' stopped while it was started for the "
                                 "migration", g->name);
        if (r >= 0)
                r = sd_event_add_io(g->m->event, &g->listen_source, g->listen_fd, EPOLLIN, on_listen, g);
        if (r >= 0)
                r = arm_timer(g, MIGRATION_COOKIE_USEC, on_cookie_expired);
        if (r < 0) {
                incoming_start_failed(g, d, r, e ?: &e2);
                vb_error_free(&e2);
                return;
        }
        incoming_continue(g, d);
}

/* The steps after the start, each answered later: postcopy accepted, the disks exported; then ready. */
static void incoming_continue(Migration *g, Domain *d) {
        char address[INET6_ADDRSTRLEN + 2];
        VbError e = VB_ERROR_NULL;
        int nbd_fd = -1, r;

        if (g->postcopy && !g->postcopy_ready)
                r = DRIVER_OP(g->m, domain_incoming_postcopy)
                            ? DRIVER_OP(g->m, domain_incoming_postcopy)(g->m->driver, g->uuid, on_postcopy_ready, g, &e)
                            : vb_driver_not_supported(g->m->driver, "postcopy migration", &e);
        else if (g->disks && !g->nbd_key[0]) {
                uri_address(g->uri, address, sizeof address);
                r = listen_on(address, 0, &nbd_fd, g->nbd_uri, sizeof g->nbd_uri, &e);
                if (r >= 0)
                        r = DRIVER_OP(g->m, domain_disks_export)(g->m->driver, g->uuid, nbd_fd, on_disks_exported, g,
                                                                 &e);
        } else {
                incoming_ready(g, d);
                return;
        }
        if (r < 0) {
                incoming_start_failed(g, d, r, &e);
                vb_error_free(&e);
        }
}

/* Starts the incoming domain (def taken): 0 when on_incoming_started follows, < 0 failed (g stays). */
static int incoming_start(Migration *g, DomainDef *def, VbError *reterr) {
        Domain *d = NULL;
        int r;

        r = DRIVER_OP(g->m, domain_expect_incoming)(g->m->driver, g->uuid, true, reterr);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        r = manager_domain_create_def(g->m, def, g->has_access ? &g->access : NULL, true, on_incoming_started,
                                      g, &d, reterr);
        if (r < 0) {
                (void) DRIVER_OP(g->m, domain_expect_incoming)(g->m->driver, g->uuid, false, NULL);
                return r;
        }
        if (r > 0)
                on_incoming_started(d, 0, NULL, g);
        return 0;
}

static void on_disks_created(int r, const VbError *e, void *userdata) {
        Migration *g = userdata;
        VbError e2 = VB_ERROR_NULL;

        if (r >= 0) {
                g->disks = true;
                r = incoming_start(g, TAKE_PTR(g->start_def), &e2);
        }
        if (r < 0) {
                incoming_start_failed(g, NULL, r, e && r == -EIO ? e : &e2);
                vb_error_free(&e2);
        }
}

/* copy-storage: the disks to make, each writable image disk of def with its size from opts. */
static int disks_to_create(const DomainDef *def, const MigrationPrepareOptions *opts, VbMigrateDisk **ret,
                           size_t *ret_n, VbError *reterr) {
        DeviceDef *const *devs;
        size_t n = domain_def_get_devices(def, &devs), k = 0;
        _cleanup_free_ VbMigrateDisk *v = new0(VbMigrateDisk, n + 1);

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *target = device_disk_get_target(devs[i]);
                bool found = false;

                if (devs[i]->kind != DEVICE_DISK || !device_disk_is_writable_image(devs[i]))
                        continue;
                for (size_t j = 0; j < opts->n_disks && !found; j++)
                        if (streq_ptr(opts->disks[j].target, target)) {
                                v[k++] = opts->disks[j];
                                found = true;
                        }
                if (!found)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'disk-sizes' gives no size for "
                                            "disk '%s' (copy-storage creates it here: its capacity in bytes, as the "
                                            "source's GetStats says in block.N.capacity)", strempty(target));
                if (v[k - 1].size == 0)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'disk-sizes': the size of disk "
                                            "'%s' must be more than 0 bytes", strempty(target));
        }
        for (size_t j = 0; j < opts->n_disks; j++) {
                bool known = false;

                for (size_t i = 0; i < k && !known; i++)
                        known = streq_ptr(v[i].target, opts->disks[j].target);
                /* Other disks of the domain (a cdrom, a read-only one) may be named: a client can pass what
                 * the source's statistics list. */
                for (size_t i = 0; i < n && !known; i++)
                        known = devs[i]->kind == DEVICE_DISK &&
                                streq_ptr(device_disk_get_target(devs[i]), opts->disks[j].target);
                if (!known)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'disk-sizes' names '%s', which "
                                            "is not a disk of the domain", strempty(opts->disks[j].target));
        }
        if (k == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'copy-storage': domain '%s' has no "
                                    "writable disk to copy", domain_def_get_name(def));
        *ret = TAKE_PTR(v);
        *ret_n = k;
        return 0;
}

int manager_migration_prepare(Manager *m, DomainDef *def_in, const DomainAccess *access,
                              const MigrationPrepareOptions *opts, MigrationPrepared prepared, void *userdata,
                              VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *def = def_in;
        char uuid[37];
        Domain *d = NULL;
        Migration *g;
        int r;

        if (!DRIVER_OP(m, domain_expect_incoming) || !DRIVER_OP(m, domain_load_state))
                return vb_driver_not_supported(m->driver, "migrating domains in", reterr);
        if (opts->copy_storage && (!DRIVER_OP(m, domain_disks_create) || !DRIVER_OP(m, domain_disks_export)))
                return vb_driver_not_supported(m->driver, "copying disks in a migration (copy-storage)", reterr);
        r = manager_migration_check_def(m, def, true, reterr);
        if (r < 0)
                return r;
        domain_def_get_uuid_string(def, uuid);
        d = manager_domain_by_uuid(m, uuid);
        g = migration_of(m, uuid);
        if (g && g->step == STEP_FAILED && !g->finish_done)
                migration_free(g); /* kept only to say why; a new attempt replaces it */
        if (migration_of(m, uuid))
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "A migration of the domain with UUID %s to this "
                                    "host is prepared already", uuid);
        if (d && domain_is_active(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' with UUID %s is running on this "
                                    "host already", d->name, uuid);
        g = migration_new(m, true, uuid, domain_def_get_name(def));
        if (!g)
                return -ENOMEM;
        g->paused = opts->paused;
        g->postcopy = opts->postcopy;
        g->prepared = prepared;
        g->userdata = userdata;
        r = cookie_new(g->cookie);
        if (r < 0)
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a cookie: %s", strerror(-r));
        if (r >= 0)
                r = listen_on(opts->address, opts->port, &g->listen_fd, g->uri, sizeof g->uri, reterr);
        if (r >= 0 && access) {
                r = domain_access_copy(access, &g->access);
                g->has_access = r >= 0;
        }
        if (r >= 0 && opts->persist)
                r = domain_def_copy(def, &g->persist_def);
        if (r >= 0 && opts->copy_storage) {
                _cleanup_free_ VbMigrateDisk *disks = NULL;
                size_t n = 0;

                r = disks_to_create(def, opts, &disks, &n, reterr);
                if (r >= 0) {
                        g->start_def = TAKE_PTR(def);
                        r = DRIVER_OP(m, domain_disks_create)(m->driver, g->start_def, &g->access, disks, n,
                                                              on_disks_created, g, reterr);
                }
                if (r >= 0)
                        return 0; /* on_disks_created goes on */
        }
        if (r >= 0)
                r = incoming_start(g, TAKE_PTR(def), reterr);
        if (r < 0) {
                g->prepared = NULL;
                migration_free(g);
                return r;
        }
        return 0;
}

/* The resumed guest: the migration is over. */
static void on_finish_resumed(Domain *d, int r, const VbError *e, void *userdata) {
        Migration *g = userdata;

        if (r >= 0)
                log_notice("Migration of domain '%s' to this host finished: it runs here.", g->name);
        finish_waiter(g, r, e);
        migration_free(g);
}

/* A Finish that saves the definition (persist), kept in core while the store is busy or the capabilities
 * are probed (the emulator changed since the domain started here, or its probe failed and is tried again):
 * the migration is found again by UUID and id when the call runs. */
typedef struct FinishArgs {
        char uuid[37];
        uint64_t id;
} FinishArgs;

static Migration *finish_args_migration(Manager *m, const FinishArgs *a) {
        Migration *g = migration_of(m, a->uuid);

        return g && g->id == a->id && g->incoming && g->step == STEP_DONE ? g : NULL;
}

static int finish_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        Migration *g = finish_args_migration(m, p);

        if (g)
                finish_now(g);
        return 0; /* answered by finish_now, or already (an Abort meanwhile) */
}

/* It could not wait longer (Timeout), or virtbusd stops: the migration stays as before the Finish, for
 * another FinishMigration or an AbortMigration until the cookie expires. */
static void finish_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        Migration *g = finish_args_migration(m, p);

        if (!g)
                return;
        finish_waiter(g, r, e);
        if (r != -ECANCELED && arm_timer(g, MIGRATION_COOKIE_USEC, on_cookie_expired) < 0)
                log_warning("Failed to arm the expiry of the migration of '%s', ignoring.", g->name);
}

static const QueuedCallType finish_type = {
        .what = "finishing a migration",
        .run = finish_run,
        .answer = finish_answer,
        .free = free,
};

/* Saves the definition the migrated domain d runs with: 0, or < 0 (nothing saved, g->persist_def kept for
 * another Finish). */
static int finish_persist(Migration *g, VbError *reterr) {
        DomainAccess access = {};
        Domain *defined;
        bool created;
        int r;

        r = domain_access_copy(&g->access, &access);
        /* Checked again: the names as the registry has them now, and the capabilities (the definition runs
         * here already, but the emulator may have changed). Neither waits: finish_incoming kept the call
         * until nothing was pending. */
        if (r >= 0)
                r = domain_define_check_names(g->m, g->persist_def, reterr);
        if (r >= 0)
                r = domain_caps_check_definition(g->m, g->persist_def, reterr);
        if (r >= 0)
                r = domain_store_save(g->m->durable, g->m->domains_dir, g->persist_def, &access, reterr);
        if (r < 0) {
                domain_access_done(&access);
                return r;
        }
        r = domain_define_apply(g->m, TAKE_PTR(g->persist_def), &access, &defined, &created);
        domain_access_done(&access);
        return r;
}

/* The state is in: the definition is saved if asked, the guest resumed unless asked not to. 1 done, 0 the
 * answer follows (on_finish_resumed, or the kept call's finish_now), < 0 failed (the domain stays,
 * paused). */
static int finish_incoming(Migration *g, VbError *reterr) {
        Domain *d = migration_domain(g);
        int r;

        if (!d)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Domain '%s' stopped after its state arrived",
                                    g->name);
        if (g->persist_def) {
                FinishArgs a = { .id = g->id };

                snprintf(a.uuid, sizeof a.uuid, "%s", g->uuid);
                r = domain_queue_keep_if_probing(g->m, d, g->persist_def, true, &finish_type, &a, sizeof a, reterr);
                if (r <= 0)
                        return r;
        }
        d->job_busy = false;
        /* The source's mirrors ended before MigrateTo answered: the export goes before the guest runs (the
         * commands go to QEMU in this order). The disks stay. */
        migration_disks_end(g, false);
        if (g->persist_def) {
                r = finish_persist(g, reterr);
                if (r < 0)
                        return r;
        }
        if (g->paused) {
                log_notice("Migration of domain '%s' to this host finished: it stays paused.", g->name);
                return 1;
        }
        return manager_domain_resume(g->m, d, on_finish_resumed, g, reterr);
}

/* Source --------------------------------------------------------------------------------------------- */

static void outgoing_end(Migration *g, int r, const VbError *e) {
        MigrationSent sent = g->sent;
        void *userdata = g->userdata;
        VbMigrationStats last = g->last;
        Domain *d = migration_domain(g);

        g->sent = NULL;
        if (r < 0) {
                migration_free(g);
                if (sent)
                        sent(r, d, NULL, e, userdata);
                return;
        }
        g->step = STEP_DONE;
        migration_close_io(g);
        g->timer = sd_event_source_disable_unref(g->timer);
        if (sent)
                sent(0, d, &last, NULL, userdata);
}

static void on_stats(const VbMigrationStats *st, void *userdata) {
        Migration *g = userdata;

        g->last = *st;
        if (g->stats)
                g->stats(st, g->userdata);
}

static void on_sent(int r, const VbError *e, void *userdata) {
        Migration *g = userdata;

        if (r < 0)
                log_warning("Migration of domain '%s' from this host failed, the guest runs on here: %s", g->name,
                            e && e->message ? e->message : strerror(-r));
        else
                log_notice("Migration of domain '%s' from this host: state sent (%llu ms, downtime %llu ms), the "
                           "guest is paused here.", g->name, (unsigned long long) g->last.total_time_ms,
                           (unsigned long long) g->last.downtime_ms);
        outgoing_end(g, r, e);
}

static void outgoing_fail(Migration *g, int r, const char *format, ...) _printf_(3, 4);
static void outgoing_fail(Migration *g, int r, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        VbError e = VB_ERROR_NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "%s", msg ?: "Out of memory");
        log_warning("Migration of domain '%s' from this host failed, the guest runs on here: %s", g->name, e.message);
        outgoing_end(g, r, &e);
        vb_error_free(&e);
}

static int on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        outgoing_fail(userdata, -ETIMEDOUT, "The destination did not accept the migration stream within %llu s",
                      (unsigned long long) (MIGRATION_HANDSHAKE_USEC / 1000000ULL));
        return 0;
}

static int on_ack(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Connected: the first line goes, then the backend sends the state. */
static int on_connected(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Migration *g = userdata;
        socklen_t sl = sizeof(int);
        int err = 0, r;
        ssize_t n;

        if (g->header_done == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err)) {
                outgoing_fail(g, -(err ?: errno), "Failed to connect to the destination: %s", strerror(err ?: errno));
                return 0;
        }
        n = send(fd, g->header + g->header_done, HEADER_LEN - g->header_done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0) {
                outgoing_fail(g, -errno, "Failed to send to the destination: %m");
                return 0;
        }
        g->header_done += (size_t) n;
        if (g->header_done < HEADER_LEN)
                return 0;
        /* Then the destination's answer (sd-event lets a source go from its own callback). */
        g->io_source = sd_event_source_disable_unref(g->io_source);
        r = sd_event_add_io(g->m->event, &g->io_source, fd, EPOLLIN, on_ack, g);
        if (r < 0)
                outgoing_fail(g, r, "Failed to wait for the destination: %s", strerror(-r));
        return 0;
}

/* The destination took the cookie: the backend sends the state. */
static int on_ack(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Migration *g = userdata;
        VbError e = VB_ERROR_NULL;
        char c;
        ssize_t n;
        int r;

        n = recv(fd, &c, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n != 1 || c != HEADER_ACK[0]) {
                outgoing_fail(g, -ECONNREFUSED, "The destination refused the migration stream: the cookie is wrong, "
                              "used already or expired, or the destination went away");
                return 0;
        }
        g->io_source = sd_event_source_disable_unref(g->io_source);
        g->timer = sd_event_source_disable_unref(g->timer);
        g->step = STEP_STREAMING;
        r = set_blocking(g->fd);
        if (r >= 0)
                r = DRIVER_OP(g->m, domain_migrate_out)(g->m->driver, g->uuid, g->fd, &g->opts.params, on_stats, on_sent,
                                                         g, &e);
        if (r < 0) {
                outgoing_end(g, r, &e);
                vb_error_free(&e);
                return 0;
        }
        /* The backend holds its own copy now (QEMU got it with getfd; the test driver dup'ed it). */
        close(g->fd);
        g->fd = -1;
        return 0;
}

static bool cookie_well_formed(const char *c) {
        if (strlen(c) != MIGRATION_COOKIE_HEX)
                return false;
        for (; *c; c++)
                if (!strchr("0123456789abcdef", *c))
                        return false;
        return true;
}

int manager_migration_start(Manager *m, Domain *d, const char *uri, const char *cookie, const MigrationOptions *opts,
                            VbDriverMigrationStats stats, MigrationSent sent, void *userdata, VbError *reterr) {
        struct sockaddr_storage sa;
        unsigned len;
        Migration *g;
        int r;

        if (!DRIVER_OP(m, domain_migrate_out))
                return vb_driver_not_supported(m->driver, "migrating domains out", reterr);
        r = migration_parse_uri(uri, &sa, &len, reterr);
        if (r < 0)
                return r;
        if (!cookie_well_formed(cookie))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The cookie must be the %u lowercase hex "
                                    "digits PrepareMigration gave", MIGRATION_COOKIE_HEX);
        if (!domain_is_active(d) || d->state == DOMAIN_CRASHED || d->state == DOMAIN_SHUTDOWN)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
        if (migration_of(m, d->uuid))
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain '%s' is being migrated already", d->name);
        if (d->job_busy)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain '%s' has a snapshot or save operation in "
                                    "progress", d->name);
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        r = manager_migration_check_def(m, d->live, false, reterr);
        if (r < 0)
                return r;
        if (opts->params.postcopy && !DRIVER_OP(m, domain_migrate_postcopy))
                return vb_driver_not_supported(m->driver, "postcopy migration", reterr);
        if (opts->params.nbd_uri) {
                struct sockaddr_storage nbd_sa;
                unsigned nbd_len;

                if (!DRIVER_OP(m, domain_disks_export))
                        return vb_driver_not_supported(m->driver, "copying disks in a migration (copy-storage)",
                                                       reterr);
                if (strlen(opts->params.nbd_uri) >= sizeof ((Migration *) NULL)->nbd_uri ||
                    migration_parse_uri(opts->params.nbd_uri, &nbd_sa, &nbd_len, NULL) < 0)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'nbd-uri' must be the "
                                            "tcp:ADDRESS:PORT PrepareMigration gave, not '%s'", opts->params.nbd_uri);
                if (!opts->params.nbd_key || strlen(opts->params.nbd_key) >= sizeof ((Migration *) NULL)->nbd_key)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Option 'nbd-key' must be the key "
                                            "PrepareMigration gave");
        }
        g = migration_new(m, false, d->uuid, d->name);
        if (!g)
                return -ENOMEM;
        g->opts = *opts;
        if (opts->params.nbd_uri) {
                snprintf(g->nbd_uri, sizeof g->nbd_uri, "%s", opts->params.nbd_uri);
                snprintf(g->nbd_key, sizeof g->nbd_key, "%s", strempty(opts->params.nbd_key));
                g->opts.params.nbd_uri = g->nbd_uri;
                g->opts.params.nbd_key = g->nbd_key;
        }
        g->stats = stats;
        g->sent = sent;
        g->userdata = userdata;
        g->step = STEP_HANDSHAKE;
        snprintf(g->cookie, sizeof g->cookie, "%s", cookie);
        snprintf(g->header, sizeof g->header, HEADER_MAGIC "%s\n", cookie);
        g->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (g->fd < 0 || (connect(g->fd, (struct sockaddr *) &sa, len) < 0 && errno != EINPROGRESS)) {
                r = vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to connect to '%s': %m", uri);
                migration_free(g);
                return r;
        }
        r = sd_event_add_io(m->event, &g->io_source, g->fd, EPOLLOUT, on_connected, g);
        if (r >= 0)
                r = arm_timer(g, MIGRATION_HANDSHAKE_USEC, on_connect_timeout);
        if (r < 0) {
                migration_free(g);
                return r;
        }
        d->job_busy = true;
        log_notice("Migration of domain '%s' from this host to %s started.", d->name, uri);
        return 0;
}

/* Finish, Abort ------------------------------------------------------------------------------------- */

int manager_migration_finish(Manager *m, Domain *d, const char *cookie, MigrationDone done, void *userdata,
                             VbError *reterr) {
        Migration *g = migration_of(m, d->uuid);
        int r;

        if (!g)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not being migrated", d->name);
        if (!migration_cookie_equal(cookie, g->cookie))
                return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED, "The cookie is not the one of the migration of "
                                    "domain '%s'", d->name);
        if (g->finish_done)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "The migration of domain '%s' is being finished "
                                    "already", d->name);
        if (!g->incoming) {
                if (g->step != STEP_DONE)
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "The state of domain '%s' is still being "
                                            "sent: wait for MigrateTo's answer", d->name);
                /* The guest runs on the destination now: the paused one here goes (a transient domain with
                 * it). */
                bool persistent = domain_is_persistent(d), undefine = g->opts.undefine_source && persistent;
                bool later = false;
                char name[256];

                snprintf(name, sizeof name, "%s", d->name);
                migration_free(g);
                /* Done at once (0 is its success). */
                r = manager_domain_destroy(m, d, reterr);
                /* Not waiting on the loop for definitions being committed: kept in core meanwhile, done
                 * answers then (a running domain has no managed save; snapshots make it fail, as before). */
                if (r >= 0 && undefine) {
                        r = manager_domain_undefine_when_ready(m, d, false, false, done, userdata, reterr);
                        later = r == 0;
                }
                if (r >= 0)
                        log_notice("Migration of domain '%s' from this host finished: it runs elsewhere.", name);
                return r < 0 ? r : later ? 0 : 1;
        }
        if (g->step == STEP_FAILED) {
                r = vb_error_set(reterr, g->failure.code, "%s", g->failure.message ?: "The migration failed");
                migration_free(g);
                return r;
        }
        if (g->step < STEP_STREAMING)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "No migration stream of domain '%s' has arrived: "
                                    "call MigrateTo on the source first", d->name);
        g->timer = sd_event_source_disable_unref(g->timer);
        g->finish_done = done;
        g->finish_userdata = userdata;
        if (g->step != STEP_DONE)
                return 0; /* on_received finishes */
        g->finish_done = NULL;
        r = finish_incoming(g, reterr);
        if (r == 0) {
                g->finish_done = done;
                return 0;
        }
        if (r > 0)
                migration_free(g);
        return r;
}

int manager_migration_abort(Manager *m, Domain *d, VbError *reterr) {
        Migration *g = migration_of(m, d->uuid);
        VbError e = VB_ERROR_NULL;
        int r;

        if (!g)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not being migrated", d->name);
        if (g->incoming && g->step == STEP_STARTING)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain '%s' is still being started for the "
                                    "migration: abort once PrepareMigration answered", d->name);
        if (g->incoming) {
                bool waiting = g->finish_done;

                vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "The migration of domain '%s' was aborted", d->name);
                log_notice("Migration of domain '%s' to this host aborted.", d->name);
                /* d may go with it (a transient domain). */
                incoming_fail(g, -ECANCELED, &e, true);
                vb_error_free(&e);
                if (!waiting)
                        migration_free(g);
                return 0;
        }
        switch (g->step) {
        case STEP_HANDSHAKE:
                outgoing_fail(g, -ECANCELED, "The migration of domain '%s' was aborted before it started", d->name);
                return 0;
        case STEP_STREAMING:
                /* The backend's done answers MigrateTo with the failure. */
                log_notice("Migration of domain '%s' from this host: cancelling.", d->name);
                return DRIVER_OP(m, domain_migrate_cancel) ? DRIVER_OP(m, domain_migrate_cancel)(m->driver, d->uuid, reterr)
                                                           : vb_driver_not_supported(m->driver, "cancelling migrations", reterr);
        default:
                /* Sent, and the destination did not finish: the guest runs on here. */
                migration_free(g);
                log_notice("Migration of domain '%s' from this host aborted after the state was sent: resuming it "
                           "here.", d->name);
                r = manager_domain_resume(m, d, NULL, NULL, reterr);
                return r < 0 ? r : 0;
        }
}

int manager_migration_follow_client(Manager *m, const char *uuid, const char *cookie, void *client,
                                    void (*client_free)(void *client)) {
        Migration *g = migration_of(m, uuid);

        if (!g || !streq(g->cookie, cookie) || g->client)
                return -ESRCH;
        g->client = client;
        g->client_free = client_free;
        return 0;
}

void manager_migration_client_gone(Manager *m, const char *uuid, const char *cookie) {
        Migration *g = migration_of(m, uuid);
        Domain *d = manager_domain_by_uuid(m, uuid);
        VbError e = VB_ERROR_NULL;
        bool postcopy;

        if (!g || !d || !streq(g->cookie, cookie))
                return;
        /* Only while the state is on its way: once it has arrived (destination) the cookie's expiry ends it,
         * once sent (source) the guest stays paused for an AbortMigration or FinishMigration. A migration
         * asked with postcopy is left to run: it may have switched, and then the guest's state is split
         * between the hosts (the stream's end decides). */
        postcopy = g->incoming ? g->postcopy : g->opts.params.postcopy;
        if (g->step == STEP_STARTING || g->step >= STEP_DONE || (postcopy && g->step == STEP_STREAMING))
                return;
        log_notice("Migration of domain '%s' %s this host: the client driving it went away, aborting.", g->name,
                   g->incoming ? "to" : "from");
        if (manager_migration_abort(m, d, &e) < 0)
                log_warning("Migration of domain '%s': the abort failed, ignoring: %s", d->name, strempty(e.message));
        vb_error_free(&e);
}

int manager_migration_postcopy(Manager *m, Domain *d, VbError *reterr) {
        Migration *g = migration_of(m, d->uuid);

        if (!g || g->incoming)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not being migrated from this host",
                                    d->name);
        if (!g->opts.params.postcopy)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "The migration of domain '%s' was not started "
                                    "with option 'postcopy'", d->name);
        if (g->step != STEP_STREAMING)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "The migration of domain '%s' is not sending its "
                                    "state now", d->name);
        log_notice("Migration of domain '%s' from this host: switching to postcopy.", d->name);
        return DRIVER_OP(m, domain_migrate_postcopy)(m->driver, d->uuid, reterr);
}

void manager_migrations_close(Manager *m) {
        while (m->migrations) {
                Migration *g = m->migrations;
                g->finish_done = NULL;
                g->sent = NULL;
                g->loading = false; /* the backend closes after this, calling nobody */
                g->disks = false;   /* the QEMU may outlive us: its disks stay */
                migration_free(g);
        }
}
