/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Consoles, displays and screenshots of a running domain: the driver hands out a descriptor (or an
 * image); nothing here ever reads or writes what goes through it. */
#include <stdlib.h>
#include <string.h>

#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "util/log.h"

static int require_running(Domain *d, VbError *reterr) {
        if (d->state == DOMAIN_RUNNING || d->state == DOMAIN_PAUSED || d->state == DOMAIN_SHUTDOWN)
                return 0;
        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
}

/* A call kept while virtbusd is still connecting to the domain's QEMU after a restart (domain-queue.c):
 * it waits there, in order with the domain's other kept calls, instead of being answered busy. */
typedef enum ConsoleCallKind {
        CONSOLE_CALL_CONSOLE,
        CONSOLE_CALL_GRAPHICS,
        CONSOLE_CALL_SCREENSHOT,
} ConsoleCallKind;

typedef struct ConsoleCall {
        ConsoleCallKind kind;
        char *device;   /* OpenConsole */
        unsigned index; /* OpenGraphics' display, Screenshot's screen */
        bool flag;      /* OpenConsole's force, OpenGraphics' skip_auth */
        VbDriverFdDone fd_done;
        VbDriverScreenshotDone shot_done;
        void *userdata;
} ConsoleCall;

static int console_call_run(Manager *m, Domain *d, void *args, Domain **ret, VbError *reterr) {
        ConsoleCall *c = args;
        int r;

        switch (c->kind) {
        case CONSOLE_CALL_CONSOLE:
                r = manager_domain_open_console(m, d, c->device, c->flag, c->fd_done, c->userdata, reterr);
                break;
        case CONSOLE_CALL_GRAPHICS:
                r = manager_domain_open_graphics(m, d, c->index, c->flag, c->fd_done, c->userdata, reterr);
                break;
        default:
                r = manager_domain_screenshot(m, d, c->index, c->shot_done, c->userdata, reterr);
        }
        return r < 0 ? r : 0; /* done answers */
}

static void console_call_answer(Manager *m, Domain *d, void *args, int r, const VbError *e) {
        ConsoleCall *c = args;

        if (c->kind == CONSOLE_CALL_SCREENSHOT)
                c->shot_done(r, NULL, 0, e, c->userdata);
        else
                c->fd_done(r, -1, e, c->userdata);
}

static void console_call_free(void *args) {
        ConsoleCall *c = args;

        free(c->device);
        free(c);
}

static const QueuedCallType console_call_type = {
        .what = "opening a console or display",
        .run = console_call_run,
        .answer = console_call_answer,
        .free = console_call_free,
};

/* Keeps a copy of call: 0 (done follows), or < 0 with reterr. */
static int console_call_keep(Manager *m, Domain *d, const ConsoleCall *call, VbError *reterr) {
        ConsoleCall *c = new0(ConsoleCall, 1);
        int r;

        if (!c)
                return -ENOMEM;
        *c = *call;
        c->device = NULL;
        if (call->device && !(c->device = strdup(call->device))) {
                free(c);
                return -ENOMEM;
        }
        r = domain_queue_add(m, d, false, &console_call_type, c, reterr);
        if (r < 0)
                console_call_free(c);
        return r < 0 ? r : 0;
}

int manager_domain_open_console(Manager *m, Domain *d, const char *device, bool force, VbDriverFdDone done,
                                void *userdata, VbError *reterr) {
        int r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (domain_queue_wanted_connected(m, d))
                return console_call_keep(m, d, &(ConsoleCall) { .kind = CONSOLE_CALL_CONSOLE, .device = (char *) device,
                                                                .flag = force, .fd_done = done, .userdata = userdata },
                                         reterr);
        if (!DRIVER_OP(m, domain_open_console))
                return vb_driver_not_supported(m->driver, "opening consoles", reterr);
        return DRIVER_OP(m, domain_open_console)(m->driver, d->uuid, &d->access, device, force, done, userdata,
                                                  reterr);
}

int manager_domain_open_graphics(Manager *m, Domain *d, unsigned index, bool skip_auth, VbDriverFdDone done,
                                 void *userdata, VbError *reterr) {
        int r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (domain_queue_wanted_connected(m, d))
                return console_call_keep(m, d, &(ConsoleCall) { .kind = CONSOLE_CALL_GRAPHICS, .index = index,
                                                                .flag = skip_auth, .fd_done = done,
                                                                .userdata = userdata },
                                         reterr);
        if (!DRIVER_OP(m, domain_open_graphics))
                return vb_driver_not_supported(m->driver, "opening displays", reterr);
        return DRIVER_OP(m, domain_open_graphics)(m->driver, d->uuid, index, skip_auth, done, userdata, reterr);
}

int manager_domain_screenshot(Manager *m, Domain *d, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                              VbError *reterr) {
        int r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (domain_queue_wanted_connected(m, d))
                return console_call_keep(m, d, &(ConsoleCall) { .kind = CONSOLE_CALL_SCREENSHOT, .index = screen,
                                                                .shot_done = done, .userdata = userdata },
                                         reterr);
        if (!DRIVER_OP(m, domain_screenshot))
                return vb_driver_not_supported(m->driver, "screenshots", reterr);
        return DRIVER_OP(m, domain_screenshot)(m->driver, d->uuid, screen, done, userdata, reterr);
}
