/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Saved state on the bus: Domain.Save/ManagedSave/ManagedSaveRemove, HasManagedSave, Progress, Start from a
 * managed save, Undefine's flags, Manager.RestoreDomain. */
#include <fcntl.h>

#include "bus/bus-authz.h"
#include "bus/bus-domain-save.h"
#include "bus/bus-domain.h"
#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "conf/domain-access.h"
#include "core/domain-save.h"
#include "core/snapshot.h"
#include "util/log.h"

#define START_PAUSED UINT64_C(1)

static BusServer *server_of(const Domain *d) {
        return d->manager->events.userdata;
}

static int begin_manage(sd_bus_message *m, Domain *d, uint64_t allowed, uint64_t *ret_flags, sd_bus_error *error) {
        return bus_begin_flags_call(server_of(d), m, allowed, BUS_ACTION_DOMAIN_MANAGE,
                                    (const char *[]) { "domain", d->name, NULL }, ret_flags, error);
}

/* The descriptor argument, checked for the direction it is used in. */
static int check_fd(int fd, bool write, sd_bus_error *error) {
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot use the descriptor given: %m");
        if ((fl & O_ACCMODE) == (write ? O_RDONLY : O_WRONLY))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The descriptor must be open for %s",
                                         write ? "writing" : "reading");
        return 0;
}

/* The descriptor, the first argument: read again from the start at each dispatch. */
static int read_fd(sd_bus_message *m, int *ret) {
        int r = sd_bus_message_rewind(m, true);

        return r < 0 ? r : sd_bus_message_read(m, "h", ret);
}

static void on_done(int r, Domain *d, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        bus_reply_later(m, r, e);
}

static void on_restored(int r, Domain *d, const VbError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        if (r < 0) {
                bus_reply_later(m, r, e);
                return;
        }
        r = bus_reply_path(m, bus_domain_path(d));
        if (r < 0)
                log_debug_errno(r, "Failed to answer RestoreDomain, ignoring: %m");
}

/* The message is kept for the answer (on_done/on_restored); r is what starting the operation returned. */
static int started(sd_bus_message *m, int r, VbError *e, sd_bus_error *error) {
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_vb_error(error, e, r);
        }
        return 1;
}

/* Save (to fd) and ManagedSave (fd < 0): the same call but for where the state goes. */
static int save_call(sd_bus_message *m, Domain *d, int fd, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        int r;

        r = begin_manage(m, d, 0, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (fd >= 0) {
                r = check_fd(fd, true, error);
                if (r < 0)
                        return r;
                r = manager_domain_save(d->manager, d, fd, on_done, sd_bus_message_ref(m), &e);
        } else
                r = manager_domain_managed_save(d->manager, d, on_done, sd_bus_message_ref(m), &e);
        return started(m, r, &e, error);
}

int bus_domain_method_save(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int fd, r;

        r = read_fd(m, &fd);
        if (r < 0)
                return r;
        return save_call(m, userdata, fd, error);
}

int bus_domain_method_managed_save(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return save_call(m, userdata, -1, error);
}

int bus_domain_method_managed_save_remove(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        VbError e = VB_ERROR_NULL;
        int r;

        r = begin_manage(m, d, 0, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_domain_managed_save_remove(d->manager, d, &e);
        return bus_reply_done(m, r, &e, error);
}

int bus_domain_start_saved(sd_bus_message *m, Domain *d, bool paused, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        int r;

        r = manager_domain_start_saved(d->manager, d, paused, on_done, sd_bus_message_ref(m), &e);
        return started(m, r, &e, error);
}

int bus_domain_method_undefine(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Domain *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        BusLater *l;
        int r;

        r = begin_manage(m, d, UNDEFINE_MANAGED_SAVE | UNDEFINE_SNAPSHOTS_METADATA, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_domain_undefine_when_ready(d->manager, d, flags & UNDEFINE_MANAGED_SAVE,
                                               flags & UNDEFINE_SNAPSHOTS_METADATA, bus_later_done, l, &e);
        /* Once the removal is on disk; d may be gone now. */
        return bus_later_end(l, r == 0, r, &e, error);
}

int bus_domain_property_get_has_managed_save(sd_bus *bus, const char *path, const char *interface,
                                             const char *property, sd_bus_message *reply, void *userdata,
                                             sd_bus_error *error) {
        Domain *d = userdata;

        return sd_bus_message_append(reply, "b", manager_domain_has_managed_save(d->manager, d));
}

int bus_manager_method_restore_domain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(domain_access_done) DomainAccess access = {};
        BusServer *s = userdata;
        VbError e = VB_ERROR_NULL;
        DomainDef *def = NULL;
        uint64_t flags = 0;
        int fd, r;

        /* The descriptor comes first; the definition and flags are then read as CreateDomain reads them
         * (again at each dispatch, from the start). */
        r = read_fd(m, &fd);
        if (r < 0)
                return r;
        r = bus_domain_parse_create(s, m, &def, &flags, &access, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_fd(fd, false, error);
        if (r < 0) {
                domain_def_free(def);
                return r;
        }
        r = manager_domain_restore(s->manager, def, &access, fd, flags & START_PAUSED, on_restored,
                                   sd_bus_message_ref(m), &e);
        return started(m, r, &e, error);
}

void bus_domain_save_on_progress(void *userdata, Domain *d, uint64_t done, uint64_t total) {
        BusServer *s = userdata;
        char path[BUS_DOMAIN_PATH_MAX];

        (void) sd_bus_emit_signal(s->bus, bus_domain_path_buf(d, path), VB_DOMAIN_INTERFACE, "Progress", "tt", done,
                                  total);
}
