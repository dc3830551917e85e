/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OpenConsole, OpenGraphics, Screenshot: the caller gets a descriptor connected to the guest (or an
 * image); virtbusd stays out of the data path. All three need org.virtbus1.domain.console. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "bus/bus-authz.h"
#include "bus/bus-domain-console.h"
#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-polkit.h"
#include "core/manager.h"
#include "util/log.h"

#define ACTION_CONSOLE BUS_ACTION_DOMAIN_CONSOLE
#define ACTION_READ_SECURE BUS_ACTION_DOMAIN_READ_SECURE

#define CONSOLE_FORCE UINT64_C(1)
#define GRAPHICS_SKIP_AUTH UINT64_C(1)

/* Longer aliases than this do not exist. */
#define DEVICE_ALIAS_MAX 256

static BusServer *server_of(Domain *d) {
        return d->manager->events.userdata;
}

static unsigned caller_uid(BusServer *s, sd_bus_message *m) {
        uid_t uid = (uid_t) -1;

        (void) bus_polkit_sender_uid(s->polkit, m, &uid);
        return (unsigned) uid;
}

/* An OpenConsole/OpenGraphics call waiting for its descriptor, and the notice to log when it comes. */
typedef struct FdCall {
        sd_bus_message *m;
        char *notice;
} FdCall;

static FdCall *fd_call_free(FdCall *c) {
        if (!c)
                return NULL;
        sd_bus_message_unref(c->m);
        free(c->notice);
        free(c);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(FdCall *, fd_call_free);

static FdCall *fd_call_new(sd_bus_message *m, const char *format, ...) _printf_(2, 3);
static FdCall *fd_call_new(sd_bus_message *m, const char *format, ...) {
        FdCall *c = new0(FdCall, 1);
        va_list ap;
        int r;

        if (!c)
                return NULL;
        va_start(ap, format);
        r = vasprintf(&c->notice, format, ap);
        va_end(ap);
        if (r < 0) {
                free(c);
                return NULL;
        }
        c->m = sd_bus_message_ref(m);
        return c;
}

/* The driver's answer: the descriptor goes to the caller (sd-bus sends its own copy; ours is closed in
 * any case, also when the caller is gone), or the error. */
static void on_fd(int r, int fd, const VbError *e, void *userdata) {
        _cleanup_(fd_call_freep) FdCall *c = userdata;

        if (r < 0) {
                bus_reply_later(c->m, r, e);
                return;
        }
        log_notice("%s", c->notice);
        r = sd_bus_reply_method_return(c->m, "h", fd);
        close(fd);
        if (r < 0)
                log_debug_errno(r, "Failed to send a descriptor, ignoring: %m");
}

int bus_domain_method_open_console(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        const char *device;
        uint64_t flags;
        FdCall *c;
        int r;

        r = sd_bus_message_read(m, "s", &device);
        if (r < 0)
                return r;
        if (strlen(device) > DEVICE_ALIAS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The device alias is longer than %u bytes",
                                         DEVICE_ALIAS_MAX);
        r = bus_begin_flags_call(s, m, CONSOLE_FORCE, ACTION_CONSOLE, (const char *[]) { "domain", d->name, NULL },
                                 &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        c = fd_call_new(m, "Domain '%s': console '%s' opened by uid %u%s.", d->name,
                        isempty(device) ? "(first)" : device, caller_uid(s, m),
                        (flags & CONSOLE_FORCE) ? ", taken over from any other session" : "");
        if (!c)
                return -ENOMEM;
        /* QEMU connects it while the event loop goes on; on_fd replies. */
        r = manager_domain_open_console(s->manager, d, device, flags & CONSOLE_FORCE, on_fd, c, &e);
        if (r < 0) {
                fd_call_free(c);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

int bus_domain_method_open_graphics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint32_t index;
        uint64_t flags;
        FdCall *c;
        int r;

        r = sd_bus_message_read(m, "u", &index);
        if (r < 0)
                return r;
        r = bus_begin_flags_call(s, m, GRAPHICS_SKIP_AUTH, ACTION_CONSOLE,
                                 (const char *[]) { "domain", d->name, NULL }, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Past the display's password: as good as reading it. */
        if (flags & GRAPHICS_SKIP_AUTH) {
                r = bus_polkit_check(s->polkit, m, ACTION_READ_SECURE, (const char *[]) { "domain", d->name, NULL },
                                     error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }
        c = fd_call_new(m, "Domain '%s': display %u opened by uid %u%s.", d->name, (unsigned) index,
                        caller_uid(s, m), (flags & GRAPHICS_SKIP_AUTH) ? " without its password" : "");
        if (!c)
                return -ENOMEM;
        r = manager_domain_open_graphics(s->manager, d, index, flags & GRAPHICS_SKIP_AUTH, on_fd, c, &e);
        if (r < 0) {
                fd_call_free(c);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

static void on_screenshot(int r, const void *png, size_t size, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata, *reply = NULL;

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', png, size);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                /* The caller may have gone: nothing is kept for it. */
                log_debug_errno(r, "Failed to send a screenshot, ignoring: %m");
}

int bus_domain_method_screenshot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint32_t screen;
        int r;

        r = sd_bus_message_read(m, "u", &screen);
        if (r < 0)
                return r;
        r = bus_begin_flags_call(s, m, 0, ACTION_CONSOLE, (const char *[]) { "domain", d->name, NULL }, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* QEMU takes it while the event loop goes on; on_screenshot replies. */
        r = manager_domain_screenshot(s->manager, d, screen, on_screenshot, sd_bus_message_ref(m), &e);
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}
