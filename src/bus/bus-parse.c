/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "bus/bus-polkit.h"
#include "conf/conf-peek.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/worker.h"

/* Threads that parse (the machines are small: the loop keeps a core), and how many calls may be in
 * flight from all callers together (the worker's queue is as long). */
#define PARSE_THREADS 2U
#define PARSE_NICE 5
#define PARSE_CALLS_TOTAL_MAX 256U
/* How far a document is read ahead for its name. */
#define PEEK_BYTES_MAX (64U * 1024U)
/* A parsed call whose message did not come back to its handler (the object it was for went away) is
 * dropped after this; after the longest polkit may take to answer when the handler waits for it. */
#define ORPHAN_USEC (5ULL * 1000ULL * 1000ULL)
#define ORPHAN_POLKIT_USEC (330ULL * 1000ULL * 1000ULL)

typedef struct Sender {
        char *name;
        unsigned calls;
        size_t bytes;
} Sender;

typedef enum CallState {
        CALL_ASKING,   /* polkit, before parsing */
        CALL_PARSING,  /* in the worker */
        CALL_PARSED,   /* back, for the handler */
} CallState;

typedef struct Call Call;
struct Call {
        BusParse *owner;
        sd_bus_message *m;
        const BusParseSpec *spec;
        Sender *sender;
        const char *xml;        /* in m */
        size_t bytes;
        uint64_t flags;
        unsigned parse_flags;
        CallState state;
        bool authorized;        /* the action (or authorize) said yes after parsing */
        bool asked;             /* polkit said yes before parsing ... */
        char *asked_name;       /* ... about this name (NULL: none was found ahead) */
        sd_event_source *orphan_timer;
        /* Written by the worker thread while CALL_PARSING only. */
        void *def;
        VbError error;
        int r;
        Call *next;
};

struct BusParse {
        BusServer *server;
        Worker *worker;      /* started on first use */
        Call *calls;
        unsigned n_calls;
        Hashmap *senders;       /* unique name -> Sender, while it has calls in flight */
};

int bus_parse_new(BusServer *s, BusParse **ret) {
        BusParse *p = new0(BusParse, 1);

        if (!p)
                return -ENOMEM;
        p->server = s;
        p->senders = hashmap_new();
        if (!p->senders) {
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

unsigned bus_parse_in_flight(const BusParse *p) {
        return p ? p->n_calls : 0;
}

/* Forgets the call: gives back what it counted against its sender (forgotten with its last call). */
static void call_drop(Call *c) {
        BusParse *p = c->owner;

        for (Call **i = &p->calls; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        p->n_calls--;
        c->sender->calls--;
        c->sender->bytes -= c->bytes;
        if (c->sender->calls == 0) {
                hashmap_remove(p->senders, c->sender->name);
                free(c->sender->name);
                free(c->sender);
        }
        sd_event_source_disable_unref(c->orphan_timer);
        if (c->def)
                c->spec->free(c->def);
        vb_error_free(&c->error);
        free(c->asked_name);
        sd_bus_message_unref(c->m);
        free(c);
}

BusParse *bus_parse_free(BusParse *p) {
        if (!p)
                return NULL;
        /* The threads are done with every call once the worker is gone. */
        p->worker = worker_free(p->worker);
        while (p->calls)
                call_drop(p->calls);
        hashmap_free(p->senders);
        free(p);
        return NULL;
}

static Call *call_find(BusParse *p, sd_bus_message *m) {
        for (Call *c = p->calls; c; c = c->next)
                if (c->m == m)
                        return c;
        return NULL;
}

static int limits_exceeded(sd_bus_error *error, const char *format, ...) _printf_(2, 3);
static int limits_exceeded(sd_bus_error *error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = sd_bus_error_setfv(error, bus_error_name(VB_ERROR_LIMITS_EXCEEDED), format, ap);
        va_end(ap);
        return r;
}

/* A new call, counted against its sender's limits. */
static int call_new(BusParse *p, sd_bus_message *m, const BusParseSpec *spec, const char *xml, uint64_t flags,
                    unsigned parse_flags, Call **ret, sd_bus_error *error) {
        const char *name = sd_bus_message_get_sender(m) ?: "";
        size_t bytes = strlen(xml);
        Sender *sender;
        Call *c;

        sender = hashmap_get(p->senders, name);
        if (sender && sender->calls >= BUS_PARSE_CALLS_MAX)
                return limits_exceeded(error, "'%s' has %u documents in flight already: wait for their answers",
                                       name, BUS_PARSE_CALLS_MAX);
        if (sender && sender->bytes + bytes > BUS_PARSE_BYTES_MAX)
                return limits_exceeded(error, "'%s' has documents in flight that would come to more than %u "
                                       "bytes: wait for their answers", name, BUS_PARSE_BYTES_MAX);
        if (p->n_calls >= PARSE_CALLS_TOTAL_MAX)
                return limits_exceeded(error, "Too many documents in flight ('%s' waits behind %u): try again "
                                       "later", name, PARSE_CALLS_TOTAL_MAX);
        if (!sender) {
                sender = new0(Sender, 1);
                if (!sender || !(sender->name = strdup(name)) || hashmap_put(p->senders, sender->name, sender) < 0) {
                        if (sender)
                                free(sender->name);
                        free(sender);
                        return -ENOMEM;
                }
        }
        c = new0(Call, 1);
        if (!c) {
                if (sender->calls == 0) {
                        hashmap_remove(p->senders, sender->name);
                        free(sender->name);
                        free(sender);
                }
                return -ENOMEM;
        }
        *c = (Call) {
                .owner = p, .m = sd_bus_message_ref(m), .spec = spec, .sender = sender, .xml = xml,
                .bytes = bytes, .flags = flags, .parse_flags = parse_flags, .error = VB_ERROR_NULL,
                .next = p->calls,
        };
        sender->calls++;
        sender->bytes += bytes;
        p->calls = c;
        p->n_calls++;
        *ret = c;
        return 0;
}

static void parse_work(void *userdata) {
        Call *c = userdata;

        c->r = c->spec->parse(c->xml, c->parse_flags, &c->def, &c->error);
}

static int on_orphan(sd_event_source *s, uint64_t usec, void *userdata) {
        Call *c = userdata;

        log_debug("A parsed call of '%s' was not dispatched again, dropping it.", c->sender->name);
        call_drop(c);
        return 0;
}

static int call_arm_orphan(Call *c, uint64_t usec) {
        sd_bus *bus = sd_bus_message_get_bus(c->m);

        c->orphan_timer = sd_event_source_disable_unref(c->orphan_timer);
        return sd_event_add_time_relative(sd_bus_get_event(bus), &c->orphan_timer, CLOCK_MONOTONIC, usec, 0,
                                          on_orphan, c);
}

static void parse_done(void *userdata, bool cancelled) {
        Call *c = userdata;
        int r;

        if (cancelled)
                return; /* bus_parse_free() drops it */
        c->state = CALL_PARSED;
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(c->m), c->m);
        if (r >= 0)
                r = call_arm_orphan(c, ORPHAN_USEC);
        if (r < 0) {
                log_error_errno(r, "Failed to continue a call after parsing: %m");
                bus_reply_later(c->m, r, NULL);
                call_drop(c);
        }
}

static int parse_start(BusParse *p, Call *c, sd_bus_error *error) {
        int r;

        if (!p->worker) {
                /* libxml2 wants its global state set up before threads use it; the threads run below
                 * the event loop: parsing for one caller must not take the CPU from answering the others. */
                xmlInitParser();
                r = worker_new(sd_bus_get_event(p->server->bus), PARSE_THREADS, PARSE_CALLS_TOTAL_MAX, PARSE_NICE,
                               &p->worker);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, r, "Failed to start the parser threads: %m");
        }
        r = worker_submit(p->worker, parse_work, parse_done, c);
        if (r == -EAGAIN)
                return limits_exceeded(error, "Too many documents in flight ('%s' waits behind %u): try again "
                                       "later", c->sender->name, PARSE_CALLS_TOTAL_MAX);
        if (r < 0)
                return r;
        c->state = CALL_PARSING;
        return 0;
}

/* Before parsing: polkit about the name read ahead (without the detail when none was found). */
static int ask_before(BusParse *p, Call *c, void *userdata, sd_bus_error *error) {
        const char *context = c->spec->context ? c->spec->context(userdata) : NULL;
        const char *details[] = { c->spec->context_key, context, c->spec->detail_key, c->asked_name, NULL };
        const char * const *d = context ? details : details + 2;

        if (!c->asked_name)
                details[context ? 2 : 0] = NULL;
        return bus_polkit_check(p->server->polkit, c->m, c->spec->action, d[0] ? d : NULL, error);
}

/* After parsing: the authorization the parsed definition needs, unless polkit was asked about just
 * this before. */
static int ask_first(BusParse *p, Call *c, void *userdata, sd_bus_error *error) {
        const char *context = c->spec->context ? c->spec->context(userdata) : NULL;
        const char *name, *details[] = { c->spec->context_key, context, c->spec->detail_key, NULL, NULL };
        const char * const *d = context ? details : details + 2;

        if (!c->spec->action)
                return c->spec->authorize(p->server, c->m, c->def, userdata, error);
        name = c->spec->name(c->def);
        if (c->asked && streq_ptr(name, c->asked_name))
                return 1;
        details[3] = name;
        if (!name)
                details[context ? 2 : 0] = NULL;
        return bus_polkit_check(p->server->polkit, c->m, c->spec->action, d[0] ? d : NULL, error);
}

/* The first answer is kept: the further questions each bring the message back. */
static int ask_after(BusParse *p, Call *c, void *userdata, sd_bus_error *error) {
        int r;

        if (!c->authorized) {
                r = ask_first(p, c, userdata, error);
                if (r <= 0)
                        return r;
                c->authorized = true;
        }
        return c->spec->authorize_more ? c->spec->authorize_more(p->server, c->m, c->def, userdata, error) : 1;
}

/* A new call: the checks of "st", the limits, and the first step. */
static int call_begin(BusParse *p, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                      Call **ret, sd_bus_error *error) {
        const char *xml;
        uint64_t flags;
        uid_t uid;
        Call *c = NULL;
        int r;

        r = bus_read_xml_and_flags(m, spec->allowed_flags, spec->max, spec->what, &xml, &flags, error);
        if (r < 0)
                return r;
        r = call_new(p, m, spec, xml, flags, parse_flags, &c, error);
        if (r < 0)
                return r;
        /* root is allowed anything (bus_polkit_check says so at once): its documents go straight on. */
        if (spec->action && (bus_polkit_sender_uid(p->server->polkit, m, &uid) < 0 || uid != 0)) {
                r = conf_peek_name(xml, PEEK_BYTES_MAX, &c->asked_name);
                if (r < 0) {
                        call_drop(c);
                        return r;
                }
                c->state = CALL_ASKING;
        } else {
                r = parse_start(p, c, error);
                if (r < 0) {
                        call_drop(c);
                        return r;
                }
        }
        *ret = c;
        return 0;
}

int bus_parse_document(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                       void *userdata, void **ret_def, uint64_t *ret_flags, sd_bus_error *error) {
        BusParse *p = s->parse;
        Call *c = call_find(p, m);
        int r;

        if (!c) {
                r = call_begin(p, m, spec, parse_flags, &c, error);
                if (r < 0)
                        return r;
        }
        switch (c->state) {
        case CALL_ASKING:
                r = ask_before(p, c, userdata, error);
                if (r == 0)
                        return 0;
                if (r > 0) {
                        c->asked = true;
                        r = parse_start(p, c, error);
                }
                if (r < 0)
                        call_drop(c);
                return r < 0 ? r : 0;
        case CALL_PARSING:
                return 0;
        case CALL_PARSED:
                c->orphan_timer = sd_event_source_disable_unref(c->orphan_timer);
                if (c->r < 0) {
                        r = bus_reply_vb_error(error, &c->error, c->r);
                        call_drop(c);
                        return r;
                }
                r = ask_after(p, c, userdata, error);
                if (r == 0) {
                        (void) call_arm_orphan(c, ORPHAN_POLKIT_USEC);
                        return 0;
                }
                if (r > 0) {
                        *ret_def = TAKE_PTR(c->def);
                        *ret_flags = c->flags;
                }
                call_drop(c);
                return r < 0 ? r : 1;
        }
        return -EINVAL;
}
