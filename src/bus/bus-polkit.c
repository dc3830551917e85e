/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <unistd.h>

#include "bus/bus-polkit.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strbuf.h"

/* The uid behind a unique bus name never changes, and unique names are never reused on a bus: known
 * callers are remembered until they disconnect, sparing a round trip to the bus per call. */
#define UID_CACHE_MAX 4096

typedef struct CallerUid {
        char *name;
        uid_t uid;
} CallerUid;

#define POLKIT_CHECK_ALLOW_INTERACTION UINT32_C(1)
/* How long a non-interactive question may take. */
#define POLKIT_TIMEOUT_USEC (10ULL * 1000ULL * 1000ULL)

typedef enum QueryState {
        QUERY_PENDING,
        QUERY_AUTHORIZED,
        QUERY_DENIED,
        QUERY_CHALLENGE,
        QUERY_FAILED,
} QueryState;

typedef struct Query Query;
struct Query {
        BusPolkit *owner;
        sd_bus_message *request;     /* the method call waiting for the answer */
        sd_bus_slot *slot;           /* the CheckAuthorization call */
        char *action;
        char *details;               /* key=value lines: one call may ask about several paths */
        bool interactive;            /* the caller allowed interactive authorization */
        QueryState state;
        sd_bus_error error;          /* when QUERY_FAILED */
        Query *next;
};

struct BusPolkit {
        bool no_polkit;
        Query *queries;
        Hashmap *uids;           /* unique name -> CallerUid */
        sd_bus_slot *name_owner_slot;
};

static void uid_cache_clear(BusPolkit *p) {
        CallerUid *c;

        for (size_t i = 0; hashmap_iterate(p->uids, &i, (void **) &c, NULL);) {
                free(c->name);
                free(c);
        }
        hashmap_free(p->uids);
        p->uids = NULL;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusPolkit *p = userdata;
        const char *name, *old_owner, *new_owner;
        CallerUid *c;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !isempty(new_owner))
                return 0;
        c = hashmap_remove(p->uids, name);
        if (c) {
                free(c->name);
                free(c);
        }
        return 0;
}

int bus_polkit_attach(BusPolkit *p, sd_bus *bus) {
        return sd_bus_match_signal_async(bus, &p->name_owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, p);
}

int bus_polkit_sender_uid(BusPolkit *p, sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(m);
        CallerUid *c;
        int r;

        c = sender ? hashmap_get(p->uids, sender) : NULL;
        if (c) {
                *ret = c->uid;
                return 0;
        }
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, ret);
        if (r < 0 || !sender || !p->name_owner_slot)
                return r;

        if (hashmap_size(p->uids) >= UID_CACHE_MAX)
                uid_cache_clear(p);
        if (!p->uids && !(p->uids = hashmap_new()))
                return 0;
        c = new0(CallerUid, 1);
        if (!c || !(c->name = strdup(sender))) {
                free(c);
                return 0;
        }
        c->uid = *ret;
        if (hashmap_put(p->uids, c->name, c) < 0) {
                free(c->name);
                free(c);
        }
        return 0;
}

int bus_polkit_new(bool no_polkit, BusPolkit **ret) {
        BusPolkit *p = new0(BusPolkit, 1);
        if (!p)
                return -ENOMEM;
        p->no_polkit = no_polkit;
        *ret = p;
        return 0;
}

static Query *query_free(Query *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        sd_bus_error_free(&q->error);
        free(q->action);
        free(q->details);
        free(q);
        return NULL;
}

static void query_unlink(BusPolkit *p, Query *q) {
        for (Query **i = &p->queries; *i; i = &(*i)->next)
                if (*i == q) {
                        *i = q->next;
                        return;
                }
}

BusPolkit *bus_polkit_free(BusPolkit *p) {
        if (!p)
                return NULL;
        while (p->queries) {
                Query *q = p->queries;
                p->queries = q->next;
                query_free(q);
        }
        uid_cache_clear(p);
        sd_bus_slot_unref(p->name_owner_slot);
        free(p);
        return NULL;
}

unsigned bus_polkit_pending(const BusPolkit *p) {
        unsigned n = 0;
        for (Query *q = p->queries; q; q = q->next)
                n += q->state == QUERY_PENDING;
        return n;
}

static int parse_answer(Query *q, sd_bus_message *reply) {
        int authorized, challenge, r;

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return r;
        q->state = authorized ? QUERY_AUTHORIZED : challenge ? QUERY_CHALLENGE : QUERY_DENIED;
        return 0;
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Query *q = userdata;
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                log_warning("polkit check for '%s' failed: %s", q->action, e->message ?: e->name);
                q->state = QUERY_FAILED;
                sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "Could not ask polkit whether this is allowed: %s", e->message ?: e->name);
        } else {
                r = parse_answer(q, reply);
                if (r < 0) {
                        q->state = QUERY_FAILED;
                        sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                          "polkit sent an answer that could not be read");
                }
        }

        /* Dispatch the waiting call once more; its handler now finds the answer. */
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(q->request), q->request);
        if (r < 0) {
                log_error_errno(r, "Failed to re-dispatch a call after polkit answered: %m");
                query_unlink(q->owner, q);
                query_free(q);
        }
        return 1;
}

static int append_details(sd_bus_message *c, const char * const *details) {
        int r;

        r = sd_bus_message_open_container(c, 'a', "{ss}");
        if (r < 0)
                return r;
        for (const char * const *d = details; d && d[0] && d[1]; d += 2) {
                r = sd_bus_message_append(c, "{ss}", d[0], d[1]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(c);
}

/* details as one string, to tell the questions of one call apart. */
static char *details_key(const char * const *details) {
        StrBuf b = STRBUF_NULL;

        strbuf_append(&b, "");
        for (const char * const *d = details; d && d[0] && d[1]; d += 2)
                strbuf_appendf(&b, "%s=%s\n", d[0], d[1]);
        return strbuf_steal(&b);
}

static int start_query(BusPolkit *p, sd_bus_message *m, const char *action, const char * const *details) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus *bus = sd_bus_message_get_bus(m);
        Query *q;
        uint32_t flags;
        int r;

        flags = sd_bus_message_get_allow_interactive_authorization(m) ? POLKIT_CHECK_ALLOW_INTERACTION : 0;
        r = sd_bus_message_new_method_call(bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                  sd_bus_message_get_sender(m), action);
        if (r < 0)
                return r;
        r = append_details(call, details);
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "us", flags, "");
        if (r < 0)
                return r;

        q = new0(Query, 1);
        if (!q)
                return -ENOMEM;
        q->owner = p;
        q->interactive = flags & POLKIT_CHECK_ALLOW_INTERACTION;
        q->request = sd_bus_message_ref(m);
        q->action = strdup(action);
        q->details = details_key(details);
        if (!q->action || !q->details) {
                query_free(q);
                return -ENOMEM;
        }
        /* A user may take a while to answer an interactive prompt; polkit itself times out later. Without
         * one, a polkitd that hangs is given up on well before the caller's own timeout (25 s), and the
         * answer is a refusal. */
        r = sd_bus_call_async(bus, &q->slot, call, on_check_reply, q,
                              flags ? UINT64_C(300000000) : POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                query_free(q);
                return r;
        }
        q->next = p->queries;
        p->queries = q;
        return 0;
}

static int check_user_mode(BusPolkit *p, sd_bus_message *m, sd_bus_error *error) {
        uid_t uid;
        int r;

        r = bus_polkit_sender_uid(p, m, &uid);
        if (r < 0)
                return r;
        if (uid != geteuid())
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "This per-user service only serves its own user");
        return 1;
}

static int answer(Query *q, const char *action, sd_bus_error *error) {
        switch (q->state) {
        case QUERY_AUTHORIZED:
                return 1;
        case QUERY_CHALLENGE:
                /* With interaction allowed and still only a challenge, no agent answered: asking again
                 * would not help. */
                if (q->interactive)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Not authorized to perform '%s': authentication is required "
                                                 "and no authentication agent answered", action);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Authorization for '%s' requires interaction: call again allowing "
                                         "interactive authorization, with an authentication agent running",
                                         action);
        case QUERY_FAILED:
                return sd_bus_error_copy(error, &q->error);
        default:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized to perform '%s'", action);
        }
}

int bus_polkit_check(BusPolkit *p, sd_bus_message *m, const char *action, const char * const *details,
                     sd_bus_error *error) {
        uid_t uid;
        int r;

        if (p->no_polkit)
                return check_user_mode(p, m, error);

        /* Is this the second dispatch of a call whose question is answered? */
        for (Query *q = p->queries; q; q = q->next) {
                _cleanup_free_ char *key = NULL;
                if (q->request != m || !streq(q->action, action))
                        continue;
                key = details_key(details);
                if (!key)
                        return -ENOMEM;
                if (!streq(q->details, key))
                        continue;
                if (q->state == QUERY_PENDING)
                        return 0;
                query_unlink(p, q);
                r = answer(q, action, error);
                query_free(q);
                return r;
        }

        /* root is always allowed (polkit would say the same); spare it the round trip. */
        if (bus_polkit_sender_uid(p, m, &uid) >= 0 && uid == 0)
                return 1;

        r = start_query(p, m, action, details);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to ask polkit: %m");
        return 0;
}
