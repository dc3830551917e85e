/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The first steps of a method whose argument is an XML document (DefineDomain, CreateDomain,
 * DefineNetwork, CreateNetwork, AttachDevice, DetachDevice, UpdateDevice, CreateVolume, CreateVolumeFrom),
 * so that no caller can hold up another:
 *   1. the caller's limits: at most BUS_PARSE_CALLS_MAX such calls and BUS_PARSE_BYTES_MAX bytes of
 *      documents in flight per unique bus name (org.virtbus1.Error.LimitsExceeded beyond);
 *   2. a caller who is not root: the arguments are read in a worker thread (sd-bus checks the whole
 *      string when it is read), its uid's documents go on at a bounded rate (the excess waits), and it is
 *      asked about by polkit before anything is parsed, with the name read ahead (conf_peek_name) as
 *      detail;
 *   3. the document is parsed and validated in a worker thread (util/worker.c), off the event loop;
 *   4. the authorization that needs the parsed definition (its real name, or what the device is).
 * Between steps the message is dispatched again (as bus-polkit.c does), and the handler calls
 * bus_parse_document() again each time, until it answers 1 or < 0:
 *   r = bus_parse_document(s, m, &spec, 0, NULL, (void **) &def, &flags, error);
 *   if (r <= 0) return r < 0 ? r : 1;
 *   ... core, with def (now the handler's) ... */

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus/bus-server.h"
#include "util/error.h"

#define BUS_PARSE_CALLS_MAX 16U
#define BUS_PARSE_BYTES_MAX (16U * 1024U * 1024U)
/* Bytes a second of documents from each uid other than root, after a first one of up to 4 MiB: more waits
 * (see bus-parse.c). */
#define BUS_PARSE_RATE_DEFAULT (1024U * 1024U)

typedef int (*BusParseFunc)(const char *xml, unsigned flags, void **ret, VbError *reterr);
typedef void (*BusParseFreeFunc)(void *def);
typedef int (*BusParseAuthorizeFunc)(BusServer *s, sd_bus_message *m, const void *def, void *userdata,
                                     sd_bus_error *error);

typedef struct BusParseSpec {
        const char *what;         /* "definition", "device description": for the messages */
        size_t max;               /* larger documents are refused at once */
        uint64_t allowed_flags;   /* of the "t" argument after the document */
        const char *skip;         /* the signature of arguments between document and flags (NULL: none),
                                   * which the handler reads itself (PrepareMigration's options) */
        BusParseFunc parse;       /* runs in a worker thread: must be pure */
        BusParseFreeFunc free;
        /* Authorization, either polkit's action with the detail detail_key = the definition's name ... */
        const char *action;
        const char *detail_key;
        const char *(*name)(const void *def);
        /* ... preceded, when context is set, by the detail context_key = context(userdata): what the
         * document goes into (the pool of CreateVolume). */
        const char *context_key;
        const char *(*context)(void *userdata);
        /* ... or (action NULL) this, once parsed: 1 authorized, 0 pending, < 0 refused (error set). */
        BusParseAuthorizeFunc authorize;
        /* Then, once that said yes, this (may be NULL), with the same answers: what the definition
         * reaches on the host (bus_domain_authorize_paths), which may take several questions. */
        BusParseAuthorizeFunc authorize_more;
        /* When set, the document is followed by an object path ("sot" instead of "st"; CreateVolumeFrom's
         * source): the argument's name, for the messages. */
        const char *object_arg;
} BusParseSpec;

typedef struct BusParse BusParse;

int bus_parse_new(BusServer *s, BusParse **ret);
/* Answers the calls in flight (OperationFailed, "virtbusd is stopping": nothing was changed) and drops
 * them (at shutdown). */
BusParse *bus_parse_free(BusParse *p);

/* Reads "st" (the document and flags; spec->skip between them) of m and goes through the steps above. Returns 1 with *ret_def
 * (the caller's to free) and *ret_flags set, 0 when the call goes on later (the handler returns 1), < 0
 * with error set. parse_flags go to spec->parse, userdata to spec->authorize. */
int bus_parse_document(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                       void *userdata, void **ret_def, uint64_t *ret_flags, sd_bus_error *error);
/* The same for a spec with object_arg: *ret_object is the path (in m). */
int bus_parse_document_object(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                              void *userdata, void **ret_def, const char **ret_object, uint64_t *ret_flags,
                              sd_bus_error *error);
/* As bus_parse_document, for a call answered later (a definition that may wait in core while the
 * capabilities are probed, or behind other calls): *ret_hold (with 1) keeps the call counted against its
 * sender's limits above (one call, its document's bytes) until bus_parse_release() when it is answered,
 * so that calls waiting in core count too. */
typedef struct BusParseHold BusParseHold;
int bus_parse_document_held(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                            void *userdata, void **ret_def, uint64_t *ret_flags, BusParseHold **ret_hold,
                            sd_bus_error *error);
/* NULL-safe; also after virtbusd's parse state is gone (core answers its waiting calls at exit). */
void bus_parse_release(BusParseHold *h);
/* The object path argument of m's call in flight (for spec->authorize_more), NULL when there is none. */
const char *bus_parse_call_object(BusServer *s, sd_bus_message *m);

/* Sets the rate of documents of callers other than root (bytes a second per uid; 0: no limit). */
void bus_parse_set_rate(BusParse *p, uint64_t bytes_per_sec);

/* How many calls are in flight (for tests and the shutdown log). */
unsigned bus_parse_in_flight(const BusParse *p);
