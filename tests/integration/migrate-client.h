/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The client's side of the qemu migration tests (test-qemu-migrate*.c): two network namespaces joined by a
 * veth pair (MIG_ADDR_A in the first, where the test and the harness's daemons run; MIG_ADDR_B in the
 * second, for migrate-hosts.c's host), the calls of a migration, and the tiny guest's console. */
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define MIG_ADDR_A "10.231.0.1"
#define MIG_ADDR_B "10.231.0.2"
#define MIG_GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

/* The namespaces' names ("" before mig_enter_netns). */
extern char mig_ns_a[64], mig_ns_b[64];

/* Creates both namespaces and the veth pair, and moves this process into the first one; they are
 * deleted at exit. */
int mig_enter_netns(void);
/* What every migration test's main does before running its group: the tiny guest built (or found in its
 * cache) while this process still reaches the package archive, then mig_enter_netns(). < 0 (said on
 * stderr) when the namespaces could not be made. */
int mig_setup_tests(void);
void mig_del_netns(void);

/* argv as root, output discarded: its exit status. */
int mig_run(const char * const *argv);
/* argv as root through the harness: its exit status (stdout in *ret_out when asked). */
int mig_run_out(Harness *h, const char * const *argv, char **ret_out);

/* Options as a{sv} from (key, type, value) triples, NULL-terminated; types "s", "b" and "t". */
void mig_append_options(sd_bus_message *m, const char * const *opts);
/* PrepareMigration on bus b; disk_size > 0: copy-storage of vda with that size, and the export's address
 * and key in *ret_nbd_uri, *ret_nbd_key. 0, or < 0 with e. */
int mig_prepare_storage(sd_bus *b, const char *xml, const char * const *opts, uint64_t disk_size, char **ret_uri,
                        char **ret_cookie, char **ret_nbd_uri, char **ret_nbd_key, sd_bus_error *e);
void mig_prepare(sd_bus *b, const char *xml, const char * const *opts, char **ret_uri, char **ret_cookie);

/* MigrateTo, sent without waiting. */
typedef struct MigPending {
        bool done;
        char *error;            /* its name, or NULL: it worked */
        bool postcopy;          /* the answer's "postcopy" */
        uint64_t total_time_ms; /* the answer's "total-time-ms" */
} MigPending;

int mig_on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
void mig_migrate_to_async(sd_bus *bus, const char *path, const char *uri, const char *cookie,
                          const char * const *opts, MigPending *p);
void mig_wait_reply(sd_bus *bus, MigPending *p);
/* Waits for a MigrationStats signal (the stream is going) while the call is pending. */
void mig_wait_streaming(sd_bus *bus, const char *path, MigPending *p);
/* Waits until the domain called name is gone from bus. */
void mig_wait_gone(sd_bus *bus, const char *name);

/* The guest's counter ("TICK-N") */
long mig_last_tick(const char *buf);
long mig_tick_after(int console, long after, char *buf, size_t size);
/* Writes cmd to the console and waits for want (and no new boot banner). */
void mig_guest_say(int console, const char *cmd, const char *want);

/* qemu-img info of the export vda at nbd_uri ("tcp:ADDR:PORT"): with key (hex) over TLS-PSK, or plain
 * NBD without one. Its exit status. */
int mig_nbd_info(Harness *h, const char *nbd_uri, const char *key);

void mig_write_file(const char *path, const char *text);
bool mig_file_exists(const char *path);
void mig_wait_file_gone(const char *path);
char *mig_mfree_str(char *p);
/* xml with every occurrence of from replaced by to (at least one). */
char *mig_replace_all(const char *xml, const char *from, const char *to);
