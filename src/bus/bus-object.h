/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the files of the object interfaces (bus-domain.c, bus-network.c, bus-nodedev.c, ...) share: the
 * steps of a method handler, object paths, and the signals of the object manager. Each interface keeps
 * its own vtable and handlers; these are the pieces they would otherwise write again. */

#include <systemd/sd-bus.h>

#include "bus/bus-server.h"
#include "util/error.h"

/* ---- A method handler's steps ---- */

/* Reads the flags ("t", the next argument) and rejects bits outside of allowed. */
int bus_read_flags(sd_bus_message *m, uint64_t allowed, uint64_t *ret_flags, sd_bus_error *error);

/* Reads "st", an XML text and flags; rejects unknown flag bits, an empty text ("The <what> is empty")
 * and one larger than max bytes ("The <what> is larger than <max> bytes"). */
int bus_read_xml_and_flags(sd_bus_message *m, uint64_t allowed, size_t max, const char *what,
                           const char **ret_xml, uint64_t *ret_flags, sd_bus_error *error);
/* The same with arguments of signature skip (NULL: none) between the text and the flags, skipped. */
int bus_read_xml_skip_flags(sd_bus_message *m, const char *skip, uint64_t allowed, size_t max, const char *what,
                            const char **ret_xml, uint64_t *ret_flags, sd_bus_error *error);

/* The preamble of a method whose only argument is flags: bus_read_flags(), then polkit for action with
 * details (NULL-terminated key, value, ...). Returns 1 to go on, 0 when polkit's answer is pending (the
 * handler then returns 1 and the message is dispatched again with the answer), < 0 on error. ret_flags
 * may be NULL. */
int bus_begin_flags_call(BusServer *s, sd_bus_message *m, uint64_t allowed, const char *action,
                         const char * const *details, uint64_t *ret_flags, sd_bus_error *error);

/* Fills error from core's answer (e, or r when e carries nothing), frees e and returns the negative
 * result for the handler to return. */
int bus_reply_vb_error(sd_bus_error *error, VbError *e, int r);

/* The end of a method without a result: the error of core's answer (r < 0, e), or an empty reply. */
int bus_reply_done(sd_bus_message *m, int r, VbError *e, sd_bus_error *error);

/* For a message kept to be answered later: sends the error of (r < 0, e), or an empty reply. */
void bus_reply_later(sd_bus_message *m, int r, const VbError *e);

/* Replies with the object path "o"; takes path (NULL: -ENOMEM). */
int bus_reply_path(sd_bus_message *m, char *path);

/* The value of a Properties.Set of a boolean (the message at its start: "ssv"); the error names the
 * property. */
int bus_read_property_set_bool(sd_bus_message *m, int *ret, sd_bus_error *error);

/* ---- Answers once the change is on disk ----
 * Core queues changes of saved files (util/durable.h) and returns before they are synced; a method that
 * changed something answers only once its changes are durable. The handler takes the mark before it
 * calls core and answers with one of these; a change of this call that could not be committed turns
 * the answer into OperationFailed naming the file (which is then as it was before). A call answered later
 * (BusLater) also waits for, and hears the failure of, changes other calls queued in between: its answer
 * is never early, at worst too cautious. */
uint64_t bus_durable_mark(BusServer *s);
/* As bus_reply_done(), an empty reply once durable. */
int bus_reply_done_durable(BusServer *s, sd_bus_message *m, uint64_t mark, int r, VbError *e, sd_bus_error *error);
/* As bus_reply_path() (takes path). */
int bus_reply_path_durable(BusServer *s, sd_bus_message *m, uint64_t mark, char *path);
/* As bus_reply_later(). */
void bus_reply_later_durable(BusServer *s, sd_bus_message *m, uint64_t mark, int r, const VbError *e);
/* Sends reply (an answer to call, built) once durable; takes neither. */
int bus_send_durable(BusServer *s, sd_bus_message *call, sd_bus_message *reply, uint64_t mark);

/* A call answered later (core's done callback), once its changes are durable: the message and the mark
 * taken now, before core is called. */
typedef struct BusLater BusLater;
BusLater *bus_later_new(BusServer *s, sd_bus_message *m);
BusLater *bus_later_free(BusLater *l);
/* Answer as bus_reply_later(), or with path ("o", taken; r >= 0), once durable; both free l. */
void bus_later_reply(BusLater *l, int r, const VbError *e);
/* bus_later_reply() as a completion (VbDriverDone, DomainOpDone) whose userdata is the BusLater. */
void bus_later_done(int r, const VbError *e, void *userdata);
/* The end of a handler that handed l to core: later (core keeps l and answers through it: return 1), or
 * now (l freed and the answer of (r, e) sent once durable, as bus_reply_done_durable()). */
int bus_later_end(BusLater *l, bool later, int r, VbError *e, sd_bus_error *error);
void bus_later_reply_path(BusLater *l, char *path);

/* The reply of a List method: "ao" opened, for the handler to append the paths it lists ('o'). */
int bus_reply_list_begin(sd_bus_message *m, sd_bus_message **ret);
/* Appends path to the list; takes path (NULL: -ENOMEM). */
int bus_reply_list_add(sd_bus_message *reply, char *path);
/* Closes the list and sends the reply. */
int bus_reply_list_end(sd_bus_message *reply);

/* The flags of ListDomains and ListNetworks: only active, only inactive objects (neither or both: all). */
#define BUS_LIST_ACTIVE UINT64_C(1)
#define BUS_LIST_INACTIVE UINT64_C(2)

/* Whether an object, active or not, is listed under those flags. */
static inline bool bus_list_wants(uint64_t flags, bool active) {
        if ((flags & BUS_LIST_ACTIVE) && !(flags & BUS_LIST_INACTIVE))
                return active;
        if ((flags & BUS_LIST_INACTIVE) && !(flags & BUS_LIST_ACTIVE))
                return !active;
        return true;
}

/* ---- Object paths ---- */

/* Room for prefix "/" and 32 hex digits. */
#define BUS_UUID_PATH_MAX(prefix) (sizeof(prefix "/") + 32)

/* prefix/<the UUID's 32 lowercase hex digits> in buf (BUS_UUID_PATH_MAX(prefix) bytes); returns buf. */
const char *bus_uuid_path(const char *prefix, const char *uuid, char *buf);

/* The UUID (with dashes) of prefix/<32 lowercase hex digits>; -EINVAL when path is not of that form. */
int bus_uuid_from_path(const char *prefix, const char *path, char uuid[static 37]);

/* The find callback of a fallback vtable, from the object at its path (or NULL). */
static inline int bus_object_found(void *object, void **found) {
        if (!object)
                return 0;
        *found = object;
        return 1;
}

/* The node enumerator's list: path_of(objects[i]) for each; 1 (as sd-bus wants) or -ENOMEM. */
typedef char *(*BusObjectPathFunc)(const void *object);
int bus_object_enumerate(const void * const *objects, size_t n, BusObjectPathFunc path_of, char ***ret);

/* ---- The object manager's signals; each takes path (NULL: out of memory, nothing is sent) ---- */

void bus_object_emit_added(BusServer *s, char *path, const char *interface);
void bus_object_emit_removed(BusServer *s, char *path, const char *interface);
void bus_object_emit_changed(BusServer *s, char *path, const char *interface, const char * const *properties);

/* A property getter fn for objects of type Type (the userdata, named var) that appends expr as sig. */
#define BUS_PROPERTY_GETTER(fn, Type, var, sig, expr)                                                      \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,         \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {                       \
                Type *var = userdata;                                                                      \
                return sd_bus_message_append(reply, sig, expr);                                            \
        }
