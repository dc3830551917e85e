/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/domain-paths.h"
#include "drivers/driver.h"
#include "util/error.h"

typedef struct Manager Manager;
typedef struct Domain Domain;

/* Called once when a waited-for change happened (r >= 0) or didn't in time (r < 0, e set). */
typedef void (*DomainWaitDone)(Domain *d, int r, const VbError *e, void *userdata);
typedef struct DomainWaiter DomainWaiter;
typedef struct DomainDeviceRemoval DomainDeviceRemoval;
typedef struct DomainOp DomainOp;

/* A domain as the service knows it: its saved definition (persistent domains), its live definition
 * and state while it runs. Definitions are immutable once published: changes build a new one and swap
 * it in after the driver agreed. */
struct Domain {
        Manager *manager;
        char uuid[37];
        char *name;
        DomainDef *config;  /* the saved definition; NULL for a transient domain */
        DomainDef *live;    /* the running definition; NULL when shut off */
        DomainState state;
        int stop_reason; /* DomainStopReason of the last stop, -1 before any */
        unsigned id;
        bool autostart;
        /* Running, found again at start-up, and the driver is still connecting to it: calls that need the
         * hypervisor wait (domain-queue.c). */
        bool connecting;
        /* Whose rights open the host paths of its definitions (conf/domain-paths.h): recorded at Define
         * and Attach, saved with the definition, used at every Start, also by autostart. */
        DomainAccess access;
        DomainWaiter *waiters;
        DomainOp *op; /* the lifecycle operation the driver is carrying out, one at a time (domain-ops.c) */
        DomainDeviceRemoval *removals; /* live detaches the guest has yet to answer (domain-device.c) */
        /* Its snapshots (core/snapshot.h), in order of creation, and the current one (or NULL). */
        struct DomainSnapshot **snapshots;
        size_t n_snapshots;
        struct DomainSnapshot *current_snapshot;
        bool job_busy; /* a snapshot or saved-state operation runs (one at a time per domain) */
        /* GetXMLDesc's last answer, for the definition with this serial and these format flags. */
        char *xml_cache;
        uint64_t xml_cache_serial;
        unsigned xml_cache_flags;
};

/* Property names that change with a domain's state, for PropertiesChanged. */
#define DOMAIN_STATE_PROPERTIES "State", "Id"

/* The current definition: the live one while running, else the saved one. */
const DomainDef *domain_current_def(const Domain *d);
bool domain_is_active(const Domain *d);
bool domain_is_persistent(const Domain *d);

/* Waits up to timeout_usec for the domain to stop running. */
int domain_wait_for_stop(Domain *d, uint64_t timeout_usec, DomainWaitDone done, void *userdata);
/* Cancels waits for a caller that went away (all waits with that userdata). */
void domain_cancel_waits(Domain *d, void *userdata);
