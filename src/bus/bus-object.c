/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdio.h>

#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "core/manager.h"
#include "util/durable.h"
#include "util/log.h"

int bus_read_flags(sd_bus_message *m, uint64_t allowed, uint64_t *ret_flags, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, allowed, error);
        if (r < 0)
                return r;
        if (ret_flags)
                *ret_flags = flags;
        return 0;
}

int bus_read_xml_and_flags(sd_bus_message *m, uint64_t allowed, size_t max, const char *what,
                           const char **ret_xml, uint64_t *ret_flags, sd_bus_error *error) {
        return bus_read_xml_skip_flags(m, NULL, allowed, max, what, ret_xml, ret_flags, error);
}

int bus_read_xml_skip_flags(sd_bus_message *m, const char *skip, uint64_t allowed, size_t max, const char *what,
                            const char **ret_xml, uint64_t *ret_flags, sd_bus_error *error) {
        const char *xml;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "s", &xml);
        if (r >= 0 && skip)
                r = sd_bus_message_skip(m, skip);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, allowed, error);
        if (r < 0)
                return r;
        if (strlen(xml) > max)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The %s is larger than %zu bytes", what,
                                         max);
        if (isempty(xml))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The %s is empty", what);
        *ret_xml = xml;
        *ret_flags = flags;
        return 0;
}

int bus_begin_flags_call(BusServer *s, sd_bus_message *m, uint64_t allowed, const char *action,
                         const char * const *details, uint64_t *ret_flags, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = bus_read_flags(m, allowed, &flags, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(s->polkit, m, action, details, error);
        if (r <= 0)
                return r;
        if (ret_flags)
                *ret_flags = flags;
        return 1;
}

int bus_reply_vb_error(sd_bus_error *error, VbError *e, int r) {
        r = bus_error_from_vb(error, e, r);
        vb_error_free(e);
        return r;
}

int bus_reply_done(sd_bus_message *m, int r, VbError *e, sd_bus_error *error) {
        if (r < 0)
                return bus_reply_vb_error(error, e, r);
        return sd_bus_reply_method_return(m, NULL);
}

void bus_reply_later(sd_bus_message *m, int r, const VbError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r < 0) {
                (void) bus_error_from_vb(&error, e, r);
                (void) sd_bus_reply_method_error(m, &error);
        } else
                (void) sd_bus_reply_method_return(m, NULL);
}

int bus_reply_path(sd_bus_message *m, char *path) {
        _cleanup_free_ char *p = path;

        if (!p)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "o", p);
}

int bus_read_property_set_bool(sd_bus_message *m, int *ret, sd_bus_error *error) {
        const char *property = NULL;
        int r;

        r = sd_bus_message_read(m, "ss", NULL, &property);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'v', "b");
        if (r >= 0)
                r = sd_bus_message_read(m, "b", ret);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s takes a boolean ('b') value",
                                         strna(property));
        return 0;
}

uint64_t bus_durable_mark(BusServer *s) {
        return durable_seq(s->manager->durable);
}

typedef struct DurableReply {
        sd_bus_message *call, *reply;
} DurableReply;

static void on_durable(int r, const char *path, void *userdata) {
        DurableReply *d = userdata;

        if (r < 0) {
                VbError e = VB_ERROR_NULL;

                (void) vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to save '%s': %s", strna(path),
                                    strerror(-r));
                bus_reply_later(d->call, r, &e);
                vb_error_free(&e);
        } else
                (void) sd_bus_send(NULL, d->reply, NULL);
        sd_bus_message_unref(d->call);
        sd_bus_message_unref(d->reply);
        free(d);
}

int bus_send_durable(BusServer *s, sd_bus_message *call, sd_bus_message *reply, uint64_t mark) {
        DurableReply *d;
        int r;

        d = new0(DurableReply, 1);
        if (!d)
                return -ENOMEM;
        r = durable_wait(s->manager->durable, mark, on_durable, d);
        if (r != 0) {
                free(d);
                return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
        }
        d->call = sd_bus_message_ref(call);
        d->reply = sd_bus_message_ref(reply);
        return 1;
}

int bus_reply_done_durable(BusServer *s, sd_bus_message *m, uint64_t mark, int r, VbError *e, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (r < 0)
                return bus_reply_vb_error(error, e, r);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        return bus_send_durable(s, m, reply, mark);
}

int bus_reply_path_durable(BusServer *s, sd_bus_message *m, uint64_t mark, char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *p = path;
        int r;

        if (!p)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "o", p);
        if (r < 0)
                return r;
        return bus_send_durable(s, m, reply, mark);
}

void bus_reply_later_durable(BusServer *s, sd_bus_message *m, uint64_t mark, int r, const VbError *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (r < 0 || sd_bus_message_new_method_return(m, &reply) < 0 || bus_send_durable(s, m, reply, mark) < 0)
                bus_reply_later(m, r < 0 ? r : -ENOMEM, e);
}

struct BusLater {
        BusServer *server;
        sd_bus_message *m;
        uint64_t mark;
};

BusLater *bus_later_new(BusServer *s, sd_bus_message *m) {
        BusLater *l = new0(BusLater, 1);

        if (!l)
                return NULL;
        *l = (BusLater) { .server = s, .m = sd_bus_message_ref(m), .mark = bus_durable_mark(s) };
        return l;
}

BusLater *bus_later_free(BusLater *l) {
        if (!l)
                return NULL;
        sd_bus_message_unref(l->m);
        free(l);
        return NULL;
}

void bus_later_reply(BusLater *l, int r, const VbError *e) {
        bus_reply_later_durable(l->server, l->m, l->mark, r, e);
        bus_later_free(l);
}

void bus_later_done(int r, const VbError *e, void *userdata) {
        bus_later_reply(userdata, r, e);
}

int bus_later_end(BusLater *l, bool later, int r, VbError *e, sd_bus_error *error) {
        BusServer *s = l->server;
        sd_bus_message *m = l->m; /* still held by the dispatch that called the handler */
        uint64_t mark = l->mark;

        if (later)
                return 1;
        bus_later_free(l);
        return bus_reply_done_durable(s, m, mark, r, e, error);
}

void bus_later_reply_path(BusLater *l, char *path) {
        int r = bus_reply_path_durable(l->server, l->m, l->mark, path);

        if (r < 0) /* the caller may have gone: nothing is kept for it */
                log_debug_errno(r, "Failed to answer %s(), ignoring: %m", strna(sd_bus_message_get_member(l->m)));
        bus_later_free(l);
}

int bus_reply_list_begin(sd_bus_message *m, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(reply);
        return 0;
}

int bus_reply_list_add(sd_bus_message *reply, char *path) {
        _cleanup_free_ char *p = path;

        if (!p)
                return -ENOMEM;
        return sd_bus_message_append_basic(reply, 'o', p);
}

int bus_reply_list_end(sd_bus_message *reply) {
        int r;

        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

const char *bus_uuid_path(const char *prefix, const char *uuid, char *buf) {
        char *p = stpcpy(stpcpy(buf, prefix), "/"), *end = p + 32;

        for (const char *u = uuid; *u && p < end; u++)
                if (*u != '-')
                        *p++ = (char) tolower((unsigned char) *u);
        *p = 0;
        return buf;
}

int bus_uuid_from_path(const char *prefix, const char *path, char uuid[static 37]) {
        size_t n = strlen(prefix);
        const char *hex;

        if (strncmp(path, prefix, n) != 0 || path[n] != '/')
                return -EINVAL;
        hex = path + n + 1;
        if (strlen(hex) != 32)
                return -EINVAL;
        for (const char *c = hex; *c; c++)
                if (!isxdigit((unsigned char) *c) || isupper((unsigned char) *c))
                        return -EINVAL;
        snprintf(uuid, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
        return 0;
}

int bus_object_enumerate(const void * const *objects, size_t n, BusObjectPathFunc path_of, char ***ret) {
        char **l = new0(char *, n + 1);

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = path_of(objects[i]);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 1;
}

void bus_object_emit_added(BusServer *s, char *path, const char *interface) {
        _cleanup_free_ char *p = path;

        if (p)
                (void) sd_bus_emit_interfaces_added(s->bus, p, interface, NULL);
}

void bus_object_emit_removed(BusServer *s, char *path, const char *interface) {
        _cleanup_free_ char *p = path;

        if (p)
                (void) sd_bus_emit_interfaces_removed(s->bus, p, interface, NULL);
}

void bus_object_emit_changed(BusServer *s, char *path, const char *interface, const char * const *properties) {
        _cleanup_free_ char *p = path;

        if (p)
                (void) sd_bus_emit_properties_changed_strv(s->bus, p, interface, (char **) properties);
}
