/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
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
#include "conf/conf-schema.h"
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
/* Documents of a caller other than root go on at p->rate bytes a second per uid, after a first burst:
 * every document crosses dbus-daemon and our socket whole, ahead of everybody else's calls, before
 * anything can be said about it. The excess waits (unanswered, so a caller who waits for its answers is
 * slowed down; one who does not reaches its limits above). A definition is a few KiB: only floods wait. */
#define BUDGET_BURST_BYTES (4LL * 1024LL * 1024LL + 64LL * 1024LL)
#define BUDGETS_MAX 1024U

typedef struct Sender {
        char *name;
        unsigned calls;
        size_t bytes;
        uint64_t next_seq;      /* of its next call: its calls reach their handlers in this order */
} Sender;

typedef struct Budget {
        int64_t bytes;          /* may be spent ahead: < 0 is a debt, paid off at p->rate */
        uint64_t stamp;         /* CLOCK_MONOTONIC µs of bytes */
} Budget;

typedef enum CallState {
        CALL_READING,  /* the arguments, in the worker (sd-bus checks the whole string there) */
        CALL_READ,     /* back, for the handler: the limits, then asking or parsing */
        CALL_HELD,     /* over its uid's budget, waiting (hold_timer) */
        CALL_ASKING,   /* polkit, before parsing */
        CALL_PARSING,  /* in the worker */
        CALL_PARSED,   /* back, for the handler */
        CALL_WAITING,  /* parsed, waiting for the same sender's earlier calls to reach their handlers */
} CallState;

typedef struct Call Call;
struct Call {
        BusParse *owner;
        sd_bus_message *m;
        const BusParseSpec *spec;
        Sender *sender;
        uint64_t seq;           /* its place among its sender's calls */
        const char *xml;        /* in m */
        const char *object;     /* in m: the object path after xml (spec->object_arg) */
        size_t bytes;           /* of xml, once counted against the sender */
        uint64_t flags;
        unsigned parse_flags;
        bool root;              /* the caller is root: no polkit before parsing */
        uid_t uid;              /* when not root */
        sd_event_source *hold_timer;
        CallState state;
        bool authorized;        /* the action (or authorize) said yes after parsing */
        bool asked;             /* polkit said yes before parsing ... */
        char *asked_name;       /* ... about this name (NULL: none was found ahead) */
        sd_event_source *orphan_timer;
        /* Written by the worker thread while CALL_READING or CALL_PARSING only. */
        size_t length;          /* of xml */
        sd_bus_error bus_error; /* why the arguments were refused */
        void *def;
        VbError error;
        int r;
        Call *next;
};

/* A call handed to its handler whose answer comes later (a definition that waits in core): it still
 * counts against its sender (bus_parse_document_held). */
struct BusParseHold {
        BusParse *owner;        /* NULL once virtbusd's parse state is gone (at exit) */
        Sender *sender;
        size_t bytes;
        BusParseHold *next;
};

struct BusParse {
        BusServer *server;
        BusParseHold *holds;
        Worker *worker;      /* started on first use */
        Call *calls;
        unsigned n_calls;
        Hashmap *senders;       /* unique name -> Sender, while it has calls in flight */
        Hashmap *budgets;       /* uid -> Budget, of callers other than root */
        int64_t rate;           /* bytes a second of their documents (0: no budget) */
        bool freeing;
};

int bus_parse_new(BusServer *s, BusParse **ret) {
        BusParse *p = new0(BusParse, 1);

        if (!p)
                return -ENOMEM;
        p->server = s;
        p->rate = BUS_PARSE_RATE_DEFAULT;
        p->senders = hashmap_new();
        p->budgets = hashmap_new();
        if (!p->senders || !p->budgets) {
                hashmap_free(p->senders);
                hashmap_free(p->budgets);
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

static void budgets_clear(BusParse *p, bool paid_only);

void bus_parse_set_rate(BusParse *p, uint64_t bytes_per_sec) {
        p->rate = (int64_t) bytes_per_sec;
        budgets_clear(p, false);
}

unsigned bus_parse_in_flight(const BusParse *p) {
        return p ? p->n_calls : 0;
}

static int call_arm_orphan(Call *c, uint64_t usec);
static void call_drop(Call *c);

/* An earlier call of c's sender is still on its way to its handler. */
static bool call_has_earlier(const Call *c) {
        for (const Call *i = c->owner->calls; i; i = i->next)
                if (i->sender == c->sender && i->seq < c->seq)
                        return true;
        return false;
}

/* The earliest call of sender waits for its turn: it goes to its handler now. */
static void sender_next_turn(BusParse *p, Sender *sender) {
        Call *next = NULL;
        int r;

        for (Call *i = p->calls; i; i = i->next)
                if (i->sender == sender && (!next || i->seq < next->seq))
                        next = i;
        if (!next || next->state != CALL_WAITING)
                return;
        next->state = CALL_PARSED;
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(next->m), next->m);
        if (r >= 0)
                r = call_arm_orphan(next, ORPHAN_USEC);
        if (r < 0) {
                log_error_errno(r, "Failed to continue a call after the earlier calls of its sender: %m");
                bus_reply_later(next->m, r, NULL);
                call_drop(next);
        }
}

static void sender_free(BusParse *p, Sender *sender) {
        hashmap_remove(p->senders, sender->name);
        free(sender->name);
        free(sender);
}

/* The call's counts taken again for a hold (before the call is dropped). */
static BusParseHold *hold_new(Call *c) {
        BusParseHold *h = new0(BusParseHold, 1);

        if (!h)
                return NULL;
        *h = (BusParseHold) { .owner = c->owner, .sender = c->sender, .bytes = c->bytes, .next = c->owner->holds };
        c->owner->holds = h;
        c->sender->calls++;
        c->sender->bytes += c->bytes;
        return h;
}

void bus_parse_release(BusParseHold *h) {
        BusParse *p;

        if (!h)
                return;
        p = h->owner;
        if (p) {
                for (BusParseHold **i = &p->holds; *i; i = &(*i)->next)
                        if (*i == h) {
                                *i = h->next;
                                break;
                        }
                h->sender->calls--;
                h->sender->bytes -= h->bytes;
                if (h->sender->calls == 0)
                        sender_free(p, h->sender);
        }
        free(h);
}

/* Forgets the call: gives back what it counted against its sender (forgotten with its last call); the
 * sender's next call may go on. */
static void call_drop(Call *c) {
        BusParse *p = c->owner;
        bool turn = false;

        for (Call **i = &p->calls; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        p->n_calls--;
        c->sender->calls--;
        c->sender->bytes -= c->bytes;
        if (c->sender->calls == 0)
                sender_free(p, c->sender);
        else
                turn = !p->freeing;
        sd_event_source_disable_unref(c->orphan_timer);
        sd_event_source_disable_unref(c->hold_timer);
        if (c->def)
                c->spec->free(c->def);
        vb_error_free(&c->error);
        sd_bus_error_free(&c->bus_error);
        free(c->asked_name);
        sd_bus_message_unref(c->m);
        if (turn)
                sender_next_turn(p, c->sender);
        free(c);
}

static uint64_t loop_now(BusParse *p) {
        uint64_t t = 0;

        (void) sd_event_now(sd_bus_get_event(p->server->bus), CLOCK_MONOTONIC, &t);
        return t;
}

/* Forgets the budgets (all, or those paid up: nothing is lost by forgetting them). */
static void budgets_clear(BusParse *p, bool paid_only) {
        char *keys[BUDGETS_MAX];
        size_t n = 0, i = 0;
        const char *key;
        void *v;

        while (n < ELEMENTSOF(keys) && hashmap_iterate(p->budgets, &i, &v, &key)) {
                Budget *b = v;

                if (!paid_only || b->bytes + (int64_t) ((loop_now(p) - b->stamp) *
                                                        p->rate / 1000000) >= BUDGET_BURST_BYTES)
                        keys[n++] = (char *) key;
        }
        for (i = 0; i < n; i++) {
                char *k = keys[i];

                free(hashmap_remove(p->budgets, k));
                free(k);
        }
}

/* Spends bytes of uid's budget; returns how long (µs) the call must wait for it to be paid off. */
static int budget_spend(BusParse *p, uid_t uid, size_t bytes, uint64_t *ret_usec) {
        char key[24];
        uint64_t t = loop_now(p);
        Budget *b;

        snprintf(key, sizeof key, "%u", (unsigned) uid);
        b = hashmap_get(p->budgets, key);
        if (!b) {
                _cleanup_free_ char *k = strdup(key);

                if (hashmap_size(p->budgets) >= BUDGETS_MAX)
                        budgets_clear(p, true);
                if (hashmap_size(p->budgets) >= BUDGETS_MAX)
                        budgets_clear(p, false);
                b = new0(Budget, 1);
                if (!k || !b || hashmap_put(p->budgets, k, b) < 0) {
                        free(b);
                        return -ENOMEM;
                }
                TAKE_PTR(k);
                *b = (Budget) { .bytes = BUDGET_BURST_BYTES, .stamp = t };
        }
        b->bytes += (int64_t) ((t - b->stamp) * p->rate / 1000000);
        if (b->bytes > BUDGET_BURST_BYTES)
                b->bytes = BUDGET_BURST_BYTES;
        b->stamp = t;
        b->bytes -= (int64_t) bytes;
        *ret_usec = b->bytes >= 0 ? 0 : (uint64_t) (-b->bytes * 1000000 / p->rate);
        return 0;
}

BusParse *bus_parse_free(BusParse *p) {
        void *v;

        if (!p)
                return NULL;
        /* The threads are done with every call once the worker is gone. */
        p->freeing = true;
        p->worker = worker_free(p->worker);
        while (p->calls) {
                /* Answered while the bus is still ours (virtbusd stops; the call changed nothing). */
                (void) sd_bus_reply_method_errorf(p->calls->m, bus_error_name(VB_ERROR_OPERATION_FAILED),
                                                  "virtbusd is stopping");
                call_drop(p->calls);
        }
        /* Calls answered later are answered by core, after this is gone. */
        for (BusParseHold *h = p->holds, *next; h; h = next) {
                next = h->next;
                *h = (BusParseHold) {};
        }
        p->holds = NULL;
        for (size_t i = 0; hashmap_iterate(p->senders, &i, &v, NULL);) { /* the senders of those */
                free(((Sender *) v)->name);
                free(v);
        }
        hashmap_free(p->senders);
        budgets_clear(p, false);
        hashmap_free(p->budgets);
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

/* A new call, counted against its sender's limits on calls; its bytes are counted once read. */
static int call_new(BusParse *p, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags, Call **ret,
                    sd_bus_error *error) {
        const char *name = sd_bus_message_get_sender(m) ?: "";
        Sender *sender;
        Call *c;

        sender = hashmap_get(p->senders, name);
        if (sender && sender->calls >= BUS_PARSE_CALLS_MAX)
                return limits_exceeded(error, "'%s' has %u documents in flight already: wait for their answers",
                                       name, BUS_PARSE_CALLS_MAX);
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
                .owner = p, .m = sd_bus_message_ref(m), .spec = spec, .sender = sender, .seq = sender->next_seq++,
                .parse_flags = parse_flags, .bus_error = SD_BUS_ERROR_NULL, .error = VB_ERROR_NULL,
                .next = p->calls,
        };
        sender->calls++;
        p->calls = c;
        p->n_calls++;
        *ret = c;
        return 0;
}

/* Counts the document's bytes against its sender, once read. */
static int call_count_bytes(Call *c, sd_bus_error *error) {
        if (c->sender->bytes + c->length > BUS_PARSE_BYTES_MAX)
                return limits_exceeded(error, "'%s' has documents in flight that would come to more than %u "
                                       "bytes: wait for their answers", c->sender->name, BUS_PARSE_BYTES_MAX);
        c->bytes = c->length;
        c->sender->bytes += c->bytes;
        return 0;
}

/* In a worker thread: the arguments. sd-bus checks a string when it is read (no NUL inside, UTF-8), which
 * for a document of megabytes takes milliseconds: not on the event loop. Nothing on the loop touches the
 * message's reading position meanwhile (the loop only keeps it, and reads its sender). */
/* "sot": the document, an object path, flags; the same checks as bus_read_xml_and_flags(). */
static int read_xml_object_and_flags(Call *c) {
        int r;

        r = sd_bus_message_read(c->m, "sot", &c->xml, &c->object, &c->flags);
        if (r < 0)
                return r;
        r = bus_check_flags(c->flags, c->spec->allowed_flags, &c->bus_error);
        if (r < 0)
                return r;
        if (strlen(c->xml) > c->spec->max)
                return sd_bus_error_setf(&c->bus_error, SD_BUS_ERROR_INVALID_ARGS, "The %s is larger than %zu bytes",
                                         c->spec->what, c->spec->max);
        if (isempty(c->xml))
                return sd_bus_error_setf(&c->bus_error, SD_BUS_ERROR_INVALID_ARGS, "The %s is empty", c->spec->what);
        return 0;
}

static void read_work(void *userdata) {
        Call *c = userdata;

        if (c->spec->object_arg)
                c->r = read_xml_object_and_flags(c);
        else
                c->r = bus_read_xml_skip_flags(c->m, c->spec->skip, c->spec->allowed_flags, c->spec->max,
                                               c->spec->what, &c->xml, &c->flags, &c->bus_error);
        if (c->r < 0)
                return;
        c->length = strlen(c->xml);
        if (!c->root)
                c->r = conf_peek_name(c->xml, PEEK_BYTES_MAX, &c->asked_name);
}

static void parse_work(void *userdata) {
        Call *c = userdata;

        c->r = c->spec->parse(c->xml, c->parse_flags, &c->def, &c->error);
}

static int on_orphan(sd_event_source *s, uint64_t usec, void *userdata) {
        Call *c = userdata;

        log_debug("A call of '%s' was not dispatched again, dropping it.", c->sender->name);
        call_drop(c);
        return 0;
}

static int call_arm_orphan(Call *c, uint64_t usec) {
        sd_bus *bus = sd_bus_message_get_bus(c->m);

        c->orphan_timer = sd_event_source_disable_unref(c->orphan_timer);
        return sd_event_add_time_relative(sd_bus_get_event(bus), &c->orphan_timer, CLOCK_MONOTONIC, usec, 0,
                                          on_orphan, c);
}

/* Back from the worker (reading or parsing): the message goes to its handler again. */
static void work_done(void *userdata, bool cancelled) {
        Call *c = userdata;
        int r;

        if (cancelled)
                return; /* bus_parse_free() drops it */
        conf_schema_uses_seen(); /* the parse may have compiled schemas: their idle timer armed */
        c->state = c->state == CALL_READING ? CALL_READ : CALL_PARSED;
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(c->m), c->m);
        if (r >= 0)
                r = call_arm_orphan(c, ORPHAN_USEC);
        if (r < 0) {
                log_error_errno(r, "Failed to continue a call after reading or parsing its document: %m");
                bus_reply_later(c->m, r, NULL);
                call_drop(c);
        }
}

static int work_start(BusParse *p, Call *c, CallState state, sd_bus_error *error) {
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
        r = worker_submit(p->worker, state == CALL_READING ? read_work : parse_work, work_done, c);
        if (r == -EAGAIN)
                return limits_exceeded(error, "Too many documents in flight ('%s' waits behind %u): try again "
                                       "later", c->sender->name, PARSE_CALLS_TOTAL_MAX);
        if (r < 0)
                return r;
        c->state = state;
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

/* A new call: the limit on calls, then its arguments are read in the worker. */
static int call_begin(BusParse *p, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                      Call **ret, sd_bus_error *error) {
        Call *c = NULL;
        uid_t uid;
        int r;

        r = call_new(p, m, spec, parse_flags, &c, error);
        if (r < 0)
                return r;
        /* root is allowed anything (bus_polkit_check says so at once): its documents go straight on. */
        r = bus_polkit_sender_uid(p->server->polkit, m, &uid);
        c->root = !spec->action || (r >= 0 && uid == 0);
        /* An unknown uid counts as nobody's: its budget is shared by all such callers. */
        c->uid = r >= 0 ? uid : (uid_t) -1;
        r = work_start(p, c, CALL_READING, error);
        if (r < 0) {
                call_drop(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* The budget is paid off: on to polkit. */
static int on_held(sd_event_source *s, uint64_t usec, void *userdata) {
        Call *c = userdata;
        int r;

        c->hold_timer = sd_event_source_disable_unref(c->hold_timer);
        c->state = CALL_ASKING;
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(c->m), c->m);
        if (r >= 0)
                r = call_arm_orphan(c, ORPHAN_USEC);
        if (r < 0) {
                log_error_errno(r, "Failed to continue a call after its wait: %m");
                bus_reply_later(c->m, r, NULL);
                call_drop(c);
        }
        return 0;
}

/* The arguments are read: the limit on bytes, then polkit first (after the budget) or the parse. */
static int call_read(BusParse *p, Call *c, sd_bus_error *error) {
        uint64_t wait;
        int r;

        c->orphan_timer = sd_event_source_disable_unref(c->orphan_timer);
        if (c->r < 0) {
                r = sd_bus_error_is_set(&c->bus_error) ? sd_bus_error_move(error, &c->bus_error) : c->r;
                return r < 0 ? r : -EINVAL;
        }
        r = call_count_bytes(c, error);
        if (r < 0)
                return r;
        if (c->root)
                return work_start(p, c, CALL_PARSING, error);
        wait = 0;
        r = p->rate <= 0 ? 0 : budget_spend(p, c->uid, c->length, &wait);
        if (r < 0)
                return r;
        if (wait == 0) {
                c->state = CALL_ASKING;
                return 0;
        }
        log_debug("A document of %zu bytes from uid %u waits %" PRIu64 " ms for its budget.", c->length,
                  (unsigned) c->uid, wait / 1000);
        r = sd_event_add_time_relative(sd_bus_get_event(p->server->bus), &c->hold_timer, CLOCK_MONOTONIC, wait, 0,
                                       on_held, c);
        if (r < 0)
                return r;
        c->state = CALL_HELD;
        return 0;
}

static int parse_document(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                          void *userdata, void **ret_def, const char **ret_object, uint64_t *ret_flags,
                          BusParseHold **ret_hold, sd_bus_error *error);

int bus_parse_document(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                       void *userdata, void **ret_def, uint64_t *ret_flags, sd_bus_error *error) {
        return parse_document(s, m, spec, parse_flags, userdata, ret_def, NULL, ret_flags, NULL, error);
}

int bus_parse_document_held(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                            void *userdata, void **ret_def, uint64_t *ret_flags, BusParseHold **ret_hold,
                            sd_bus_error *error) {
        return parse_document(s, m, spec, parse_flags, userdata, ret_def, NULL, ret_flags, ret_hold, error);
}

const char *bus_parse_call_object(BusServer *s, sd_bus_message *m) {
        Call *c = call_find(s->parse, m);

        return c ? c->object : NULL;
}

int bus_parse_document_object(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                              void *userdata, void **ret_def, const char **ret_object, uint64_t *ret_flags,
                              sd_bus_error *error) {
        return parse_document(s, m, spec, parse_flags, userdata, ret_def, ret_object, ret_flags, NULL, error);
}

static int parse_document(BusServer *s, sd_bus_message *m, const BusParseSpec *spec, unsigned parse_flags,
                          void *userdata, void **ret_def, const char **ret_object, uint64_t *ret_flags,
                          BusParseHold **ret_hold, sd_bus_error *error) {
        BusParse *p = s->parse;
        Call *c = call_find(p, m);
        int r;

        if (!c)
                return call_begin(p, m, spec, parse_flags, &c, error);
        if (c->state == CALL_READ) {
                r = call_read(p, c, error);
                if (r < 0 || c->state != CALL_ASKING) {
                        if (r < 0)
                                call_drop(c);
                        return r < 0 ? r : 0;
                }
        }
        switch (c->state) {
        case CALL_READING:
        case CALL_READ:
        case CALL_HELD:
        case CALL_PARSING:
        case CALL_WAITING:
                return 0;
        case CALL_ASKING:
                r = ask_before(p, c, userdata, error);
                if (r == 0)
                        return 0;
                if (r > 0) {
                        c->asked = true;
                        r = work_start(p, c, CALL_PARSING, error);
                }
                if (r < 0)
                        call_drop(c);
                return r < 0 ? r : 0;
        case CALL_PARSED:
                c->orphan_timer = sd_event_source_disable_unref(c->orphan_timer);
                if (c->r < 0) {
                        r = bus_reply_vb_error(error, &c->error, c->r);
                        call_drop(c);
                        return r;
                }
                /* Documents are parsed by two threads: a small one may be done before a larger one its
                 * sender sent first. The sender's calls take effect in the order sent (a CreateNetwork
                 * must not lose its network to a later one): this one waits until the earlier calls
                 * have reached their handlers or been answered (call_drop). */
                if (call_has_earlier(c)) {
                        c->state = CALL_WAITING;
                        return 0;
                }
                r = ask_after(p, c, userdata, error);
                if (r == 0) {
                        (void) call_arm_orphan(c, ORPHAN_POLKIT_USEC);
                        return 0;
                }
                if (r > 0 && ret_hold && !(*ret_hold = hold_new(c)))
                        r = -ENOMEM;
                if (r > 0) {
                        *ret_def = TAKE_PTR(c->def);
                        *ret_flags = c->flags;
                        if (ret_object)
                                *ret_object = c->object;
                }
                call_drop(c);
                return r < 0 ? r : 1;
        }
        return -EINVAL;
}
