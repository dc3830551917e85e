/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Live migration between two services, driven by a client that talks to both (no protocol between the
 * services themselves):
 *   1. destination: manager_migration_prepare() starts the definition paused, waiting for its state
 *      (driver.h's expect_incoming), and listens on one TCP address for one stream; it answers with the
 *      URI to send to ("tcp:ADDRESS:PORT") and a cookie: 32 random bytes in hex, good for one stream and
 *      one finish, for MIGRATION_COOKIE_USEC;
 *   2. source: manager_migration_start() connects to the URI, sends the cookie as the stream's first line
 *      and hands the connected socket to the backend (driver.h's migrate_out), which sends the state while
 *      the guest runs; the destination checks the cookie (in constant time) before the backend reads
 *      anything (load_state); a stream with a wrong cookie is closed and the listener waits on;
 *   3. destination: manager_migration_finish() resumes the guest (unless asked to keep it paused) and saves
 *      the definition when asked; then source: manager_migration_finish() with the same cookie ends the
 *      paused source (its QEMU goes; its definition too when asked).
 * manager_migration_abort() on either side: the destination's domain goes; the source's migration is
 * cancelled or, once sent, the source guest resumes. Bulk data goes from hypervisor to hypervisor through
 * the socket; the services only connect it and check its first line. */

#include <stdbool.h>
#include <stdint.h>

#include "drivers/driver.h"
#include "util/error.h"

typedef struct Manager Manager;
typedef struct Domain Domain;
typedef struct DomainDef DomainDef;
typedef struct DomainAccess DomainAccess;
typedef struct Migration Migration;

#define MIGRATION_COOKIE_BYTES 32U
#define MIGRATION_COOKIE_HEX (2U * MIGRATION_COOKIE_BYTES)
#define MIGRATION_COOKIE_USEC (5ULL * 60ULL * 1000ULL * 1000ULL)
/* How long the destination waits for a connected stream's first line, and the source for its connect. */
#define MIGRATION_HANDSHAKE_USEC (10ULL * 1000ULL * 1000ULL)

typedef struct MigrationPrepareOptions {
        const char *address; /* the address to listen on (numeric); NULL: the host's first non-loopback one */
        uint16_t port;       /* 0: any free one */
        bool persist;        /* save the definition when finished */
        bool paused;         /* leave the guest paused when finished */
        /* copy-storage: every writable image disk of the definition is created here (its size from disks,
         * by target) and exported over NBD for the source to mirror into. */
        bool copy_storage;
        const VbMigrateDisk *disks;
        size_t n_disks;
        bool postcopy; /* accept a migration that switches to postcopy */
} MigrationPrepareOptions;

typedef struct MigrationOptions {
        VbMigrateParams params;
        bool undefine_source; /* the source's saved definition goes when finished */
} MigrationOptions;

/* Prepared: d runs paused waiting for its state; uri and cookie to give to the source; with copy-storage
 * also the disks' NBD address (nbd_uri, "tcp:ADDRESS:PORT") and key (hex), else NULL. */
typedef void (*MigrationPrepared)(int r, Domain *d, const char *uri, const char *cookie, const char *nbd_uri,
                                  const char *nbd_key, const VbError *e, void *userdata);
/* MigrateTo ended: r < 0 with e (the source guest runs on), or sent (stats: the last figures). */
typedef void (*MigrationSent)(int r, Domain *d, const VbMigrationStats *stats, const VbError *e, void *userdata);
/* Finish/Abort ended. */
typedef void (*MigrationDone)(int r, const VbError *e, void *userdata);

/* Destination. def is taken (also on failure); access as CreateDomain's. Returns 0 when prepared follows
 * (once, from the event loop), < 0 when it failed at once (nothing started, nothing listens). */
int manager_migration_prepare(Manager *m, DomainDef *def, const DomainAccess *access,
                              const MigrationPrepareOptions *opts, MigrationPrepared prepared, void *userdata,
                              VbError *reterr);

/* Source. stats (may be NULL) gets the figures while it runs (from the event loop). Returns 0 when sent
 * follows once, < 0 when it failed at once. */
int manager_migration_start(Manager *m, Domain *d, const char *uri, const char *cookie, const MigrationOptions *opts,
                            VbDriverMigrationStats stats, MigrationSent sent, void *userdata, VbError *reterr);

/* Either side, by d's role in its migration. 1: done now; 0: done follows once (the destination still
 * receives the state); < 0 failed (reterr). A wrong cookie is AccessDenied and changes nothing. */
int manager_migration_finish(Manager *m, Domain *d, const char *cookie, MigrationDone done, void *userdata,
                             VbError *reterr);
int manager_migration_abort(Manager *m, Domain *d, VbError *reterr);
/* Source: the running migration (asked with postcopy) switches to postcopy now: the guest runs on at the
 * destination, which pulls the pages it lacks. An Abort after that resumes the guest here (the
 * destination stays paused until FinishMigration). */
int manager_migration_postcopy(Manager *m, Domain *d, VbError *reterr);

/* The client that started the migration of uuid with cookie (PrepareMigration on the destination,
 * MigrateTo on the source) is followed by client, freed with client_free when the migration ends.
 * -ESRCH: no such migration (client not taken). */
int manager_migration_follow_client(Manager *m, const char *uuid, const char *cookie, void *client,
                                    void (*client_free)(void *client));
/* That client went away: a migration whose state is still on its way is aborted (as AbortMigration on
 * this side); later ones are left to their cookie's expiry or a later call. */
void manager_migration_client_gone(Manager *m, const char *uuid, const char *cookie);

/* Whether d is in a migration (one side or the other). */
bool manager_domain_migrating(const Manager *m, const Domain *d);

/* Checks of a definition to be migrated: no host devices; on the destination, every virtual network its
 * interfaces name exists. */
int manager_migration_check_def(Manager *m, const DomainDef *def, bool destination, VbError *reterr);

/* The service stops: migrations end without telling anyone. */
void manager_migrations_close(Manager *m);

/* "tcp:HOST:PORT" (HOST a numeric IPv4 address or one of IPv6 in brackets) into a socket address. */
struct sockaddr_storage;
int migration_parse_uri(const char *uri, struct sockaddr_storage *ret, unsigned *ret_len, VbError *reterr);
/* Whether two cookies are equal, in a time that does not depend on where they differ. */
bool migration_cookie_equal(const char *a, const char *b);
