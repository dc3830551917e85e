/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Calls kept in core until the store thread and the domain are ready (domain-queue.c); between the files
 * of src/core. */
#include "core/domain-internal.h"

typedef struct QueuedCall QueuedCall;
typedef struct QueuedCallType QueuedCallType;

/* What a kept call does. */
struct QueuedCallType {
        const char *what; /* for the log: "renaming a domain" */
        /* Runs the call (d NULL for a call on the manager): 0 when the operation answers its caller itself
         * later, 1 when done now (*ret: the domain to answer with, d unless changed), < 0 on failure
         * (reterr). */
        int (*run)(Manager *m, Domain *d, void *args, Domain **ret, VbError *reterr);
        /* Answers the caller with (r, e); d may be NULL. */
        void (*answer)(Manager *m, Domain *d, void *args, int r, const VbError *e);
        void (*free)(void *args);
};

/* Whether a call on d (NULL: on the manager) must be kept: the store is busy (when it changes the store),
 * d's QEMU is still being connected to, or calls to d wait ahead of it. False while a kept call runs. */
bool domain_queue_wanted(Manager *m, Domain *d, bool store);
/* Whether a call that needs d's QEMU connected, but changes neither the definition nor the state (a
 * console, a display, a screenshot, a save), must be kept: virtbusd is still connecting to d's QEMU after
 * a restart. False while a kept call runs. Such a call, once kept, also waits for an operation in flight
 * and for the calls to d kept ahead of it. */
bool domain_queue_wanted_connected(Manager *m, Domain *d);
/* Keeps the call (takes args on success: type->free frees them once answered): 0, or < 0 with reterr
 * (LimitsExceeded when too many wait) and args not taken. */
int domain_queue_add(Manager *m, Domain *d, bool store, const QueuedCallType *type, void *args, VbError *reterr);
/* Something that held calls up has ended (the store went idle, a domain got connected): runs what can. */
void domain_queue_kick(Manager *m);
/* domain_queue_add() of a copy of args (size bytes, freed with free(): type->free must be free), or
 * < 0; returns 0 when kept, the "answered later" of most operations. */
int domain_queue_add_copy(Manager *m, Domain *d, bool store, const QueuedCallType *type, const void *args,
                          size_t size, VbError *reterr);
/* A call that starts d from def, or checks def against the capabilities, while the driver probes them
 * (domain_caps_pending: the qemu driver would otherwise wait for the probe on the event loop): kept as a
 * change of the store is, with a copy of args (as domain_queue_add_copy); with store, it is kept also while
 * domain_queue_wanted(m, d, true) says so. def NULL: nothing to probe for. 0 kept (the call answers
 * later), 1 nothing to wait for (run it now), < 0 with reterr. */
int domain_queue_keep_if_probing(Manager *m, Domain *d, const DomainDef *def, bool store, const QueuedCallType *type,
                                 const void *args, size_t size, VbError *reterr);
