/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.Manager.GetDomainCapabilities and GetCapabilities: open to every caller (they only
 * read). When the driver has to find out first (probing an emulator takes ~0.1 s), the call waits
 * without blocking the loop: the driver calls back once it knows, and the message is dispatched again
 * (as after a polkit question), now answered from the cache. */
#include "bus/bus-capabilities.h"
#include "bus/bus-error.h"
#include "core/domain-caps.h"
#include "util/log.h"

#define CAPS_ARG_MAX 4096

/* A call waiting for the driver. */
typedef struct PendingCaps {
        BusServer *server;
        sd_bus_message *message;
        struct PendingCaps *next;
} PendingCaps;

static PendingCaps *pending_calls;

static void pending_unlink(PendingCaps *p) {
        for (PendingCaps **i = &pending_calls; *i; i = &(*i)->next)
                if (*i == p) {
                        *i = p->next;
                        return;
                }
}

static void on_ready(void *userdata) {
        PendingCaps *p = userdata;
        int r;

        pending_unlink(p);
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(p->message), p->message);
        if (r < 0)
                log_error_errno(r, "Failed to re-dispatch a capabilities call: %m");
        sd_bus_message_unref(p->message);
        free(p);
}

/* Registers the wait; the message comes back through on_ready. */
static int wait_for_driver(BusServer *s, sd_bus_message *m, PendingCaps *p) {
        p->server = s;
        p->message = sd_bus_message_ref(m);
        p->next = pending_calls;
        pending_calls = p;
        return 1;
}

void bus_capabilities_drop_pending(BusServer *s) {
        for (PendingCaps **i = &pending_calls; *i;) {
                PendingCaps *p = *i;
                if (p->server != s) {
                        i = &p->next;
                        continue;
                }
                *i = p->next;
                manager_capabilities_cancel(s->manager, p);
                sd_bus_message_unref(p->message);
                free(p);
        }
}

int bus_manager_method_get_domain_capabilities(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        _cleanup_(domain_caps_unrefp) DomainCaps *caps = NULL;
        _cleanup_(vb_error_free) VbError e = VB_ERROR_NULL;
        VbDomainCapsQuery q = {};
        PendingCaps *p;
        const char *xml;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "sssst", &q.emulator, &q.arch, &q.machine, &q.virttype, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (strlen(q.emulator) > CAPS_ARG_MAX || strlen(q.arch) > CAPS_ARG_MAX || strlen(q.machine) > CAPS_ARG_MAX ||
            strlen(q.virttype) > CAPS_ARG_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Arguments longer than %d bytes",
                                         CAPS_ARG_MAX);
        p = new0(PendingCaps, 1);
        if (!p)
                return -ENOMEM;
        r = manager_get_domain_capabilities(s->manager, &q, on_ready, p, &caps, &e);
        if (r == 0)
                return wait_for_driver(s, m, p);
        free(p);
        if (r < 0)
                return bus_error_from_vb(error, &e, r);
        xml = domain_caps_xml(caps);
        if (!xml)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", xml);
}

int bus_manager_method_get_capabilities(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        _cleanup_(vb_error_free) VbError e = VB_ERROR_NULL;
        _cleanup_free_ char *xml = NULL;
        PendingCaps *p;
        int r;

        p = new0(PendingCaps, 1);
        if (!p)
                return -ENOMEM;
        r = manager_get_capabilities(s->manager, on_ready, p, &xml, &e);
        if (r == 0)
                return wait_for_driver(s, m, p);
        free(p);
        if (r < 0)
                return bus_error_from_vb(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}
