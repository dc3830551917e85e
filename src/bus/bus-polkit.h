/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Asynchronous authorization through polkit, with the caller's unique bus name as subject.
 *
 * A handler calls bus_polkit_check() before it changes anything:
 *   r = bus_polkit_check(reg, m, "org.virtbus1.domain.manage", details, error);
 *   if (r < 0) return r;       -- denied or failed; error is set
 *   if (r == 0) return 1;      -- the question is out; the message is dispatched again with the answer
 *   ...                        -- authorized
 */
typedef struct BusPolkit BusPolkit;

/* no_polkit: --user mode, where only callers of our own uid are served and polkit isn't asked. */
int bus_polkit_new(bool no_polkit, BusPolkit **ret);
BusPolkit *bus_polkit_free(BusPolkit *p);
/* Follows disconnects on bus, so that the uids of callers can be remembered. */
int bus_polkit_attach(BusPolkit *p, sd_bus *bus);

/* details: NULL or a NULL-terminated list of key, value, key, value... */
int bus_polkit_check(BusPolkit *p, sd_bus_message *m, const char *action, const char * const *details,
                     sd_bus_error *error);

/* The effective uid of the caller of m (remembered per unique name while it is connected). */
int bus_polkit_sender_uid(BusPolkit *p, sd_bus_message *m, uid_t *ret);

/* How many questions are out (for tests and the shutdown log). */
unsigned bus_polkit_pending(const BusPolkit *p);
