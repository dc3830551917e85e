/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Consoles, displays and screenshots of a running domain: the driver hands out a descriptor (or an
 * image); nothing here ever reads or writes what goes through it. */
#include "core/domain-internal.h"
#include "util/log.h"

static int require_running(Domain *d, VbError *reterr) {
        if (d->state == DOMAIN_RUNNING || d->state == DOMAIN_PAUSED || d->state == DOMAIN_SHUTDOWN)
                return 0;
        return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
}

int manager_domain_open_console(Manager *m, Domain *d, const char *device, bool force, VbDriverFdDone done,
                                void *userdata, VbError *reterr) {
        int r = require_running(d, reterr);
        if (r < 0)
                return r;
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
        if (!DRIVER_OP(m, domain_open_graphics))
                return vb_driver_not_supported(m->driver, "opening displays", reterr);
        return DRIVER_OP(m, domain_open_graphics)(m->driver, d->uuid, index, skip_auth, done, userdata, reterr);
}

int manager_domain_screenshot(Manager *m, Domain *d, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                              VbError *reterr) {
        int r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (!DRIVER_OP(m, domain_screenshot))
                return vb_driver_not_supported(m->driver, "screenshots", reterr);
        return DRIVER_OP(m, domain_screenshot)(m->driver, d->uuid, screen, done, userdata, reterr);
}
