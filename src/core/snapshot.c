/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Domain snapshots: the per-domain tree, its persistence and the lifecycle around the backend's ops. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/domain-caps.h"
#include "core/domain-internal.h"
#include "core/domain-queue.h"
#include "core/domain-save.h"
#include "core/domain-store.h"
#include "core/snapshot.h"
#include "conf/conf-node.h"
#include "conf/device-conf.h"
#include "conf/domain-paths.h"
#include "util/durable.h"
#include "util/fileio.h"
#include "util/log.h"

static const char * const current_props[] = { "IsCurrent", NULL };
static const char * const parent_props[] = { "Parent", NULL };
static const char * const domain_props[] = { "CurrentSnapshot", NULL };

static DomainSnapshot *snapshot_free(DomainSnapshot *s) {
        if (!s)
                return NULL;
        free(s->name);
        snapshot_def_free(s->def);
        free(s);
        return NULL;
}

void domain_snapshots_free(Domain *d) {
        for (size_t i = 0; i < d->n_snapshots; i++)
                snapshot_free(d->snapshots[i]);
        free(d->snapshots);
        d->snapshots = NULL;
        d->n_snapshots = 0;
        d->current_snapshot = NULL;
}

DomainSnapshot *domain_snapshot_by_name(const Domain *d, const char *name) {
        for (size_t i = 0; i < d->n_snapshots; i++)
                if (streq(d->snapshots[i]->name, name))
                        return d->snapshots[i];
        return NULL;
}

DomainSnapshot *domain_snapshot_parent(const DomainSnapshot *s) {
        return s->def->parent_name ? domain_snapshot_by_name(s->domain, s->def->parent_name) : NULL;
}

bool domain_snapshot_is_current(const DomainSnapshot *s) {
        return s->domain->current_snapshot == s;
}

int domain_snapshot_children(const Domain *d, const DomainSnapshot *s, DomainSnapshot ***ret, size_t *ret_n) {
        DomainSnapshot **list = new0(DomainSnapshot *, d->n_snapshots + 1);
        size_t n = 0;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_snapshots; i++)
                if (domain_snapshot_parent(d->snapshots[i]) == s)
                        list[n++] = d->snapshots[i];
        *ret = list;
        *ret_n = n;
        return 0;
}

static bool is_descendant(const DomainSnapshot *s, const DomainSnapshot *ancestor) {
        size_t guard = s->domain->n_snapshots;

        for (const DomainSnapshot *p = domain_snapshot_parent(s); p && guard-- > 0; p = domain_snapshot_parent(p))
                if (p == ancestor)
                        return true;
        return false;
}

void manager_on_driver_snapshot_progress(void *userdata, const char *uuid, uint64_t done, uint64_t total) {
        Manager *m = userdata;
        Domain *d = manager_domain_by_uuid(m, uuid);

        /* Only while core has a snapshot operation of the domain in flight. */
        if (d && d->job_busy && m->events.domain_progress)
                m->events.domain_progress(m->events.userdata, d, done, total);
}

/* Persistence ----------------------------------------------------------------------------------- */

static int snapshot_dir(const Manager *m, const Domain *d, char **ret) {
        return asprintf(ret, "%s/snapshots/%s", m->config_dir, d->uuid) < 0 ? -ENOMEM : 0;
}

static int snapshot_save(Manager *m, DomainSnapshot *s, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *xml = NULL;
        int r;

        s->def->active = domain_snapshot_is_current(s) ? 1 : 0;
        if (snapshot_dir(m, s->domain, &dir) < 0 || asprintf(&path, "%s/s-%s.xml", dir, s->name) < 0)
                return -ENOMEM;
        r = snapshot_def_format(s->def, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = durable_write(m->durable, path, xml, strlen(xml), 0600); /* synced off the loop, in order */
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to save snapshot '%s' to '%s': %s",
                                    s->name, path, strerror(-r));
        return 0;
}

static int snapshot_unlink(Manager *m, DomainSnapshot *s) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        int r;

        if (snapshot_dir(m, s->domain, &dir) < 0 || asprintf(&path, "%s/s-%s.xml", dir, s->name) < 0)
                return -ENOMEM;
        r = durable_remove(m->durable, path); /* after the saves queued before it */
        if (r < 0)
                return log_warning_errno(r, "Failed to remove '%s', ignoring: %m", path);
        return 0;
}

/* Makes s (or none) current, saving the old and the new current one. */
static void set_current(Manager *m, Domain *d, DomainSnapshot *s) {
        DomainSnapshot *old = d->current_snapshot;
        VbError e = VB_ERROR_NULL;

        if (old == s)
                return;
        d->current_snapshot = s;
        if (old) {
                if (snapshot_save(m, old, &e) < 0)
                        log_warning("%s, ignoring.", strempty(e.message));
                vb_error_free(&e);
                if (m->events.snapshot_changed)
                        m->events.snapshot_changed(m->events.userdata, old, current_props);
        }
        if (s) {
                if (snapshot_save(m, s, &e) < 0)
                        log_warning("%s, ignoring.", strempty(e.message));
                vb_error_free(&e);
                if (m->events.snapshot_changed)
                        m->events.snapshot_changed(m->events.userdata, s, current_props);
        }
        domain_emit_changed(d, domain_props);
}

static int snapshot_add(Domain *d, SnapshotDef *def, DomainSnapshot **ret) {
        _cleanup_(snapshot_def_freep) SnapshotDef *owned = def;
        DomainSnapshot *s, **grown;

        grown = reallocarray(d->snapshots, d->n_snapshots + 1, sizeof *grown);
        if (!grown)
                return -ENOMEM;
        d->snapshots = grown;
        s = new0(DomainSnapshot, 1);
        if (!s || !(s->name = strdup(def->name))) {
                free(s);
                return -ENOMEM;
        }
        s->domain = d;
        s->def = TAKE_PTR(owned);
        d->snapshots[d->n_snapshots++] = s;
        *ret = s;
        return 0;
}

static void snapshot_remove(Manager *m, DomainSnapshot *s) {
        Domain *d = s->domain;

        if (m->events.snapshot_removed)
                m->events.snapshot_removed(m->events.userdata, s);
        for (size_t i = 0; i < d->n_snapshots; i++)
                if (d->snapshots[i] == s) {
                        memmove(d->snapshots + i, d->snapshots + i + 1, (d->n_snapshots - i - 1) * sizeof *d->snapshots);
                        d->n_snapshots--;
                        break;
                }
        snapshot_free(s);
}

static int load_one(Manager *m, Domain *d, const char *path) {
        _cleanup_free_ char *xml = NULL;
        SnapshotDef *def = NULL;
        DomainSnapshot *s;
        VbError e = VB_ERROR_NULL;
        int r;

        r = read_full_file(path, 16U * 1024U * 1024U, &xml, NULL);
        if (r < 0)
                return log_warning_errno(r, "Failed to read snapshot '%s', ignoring: %m", path);
        r = snapshot_def_parse_string(xml, &def, &e);
        if (r < 0 || !def->name || domain_snapshot_by_name(d, def->name)) {
                log_warning("Snapshot '%s' of domain '%s' cannot be read, ignoring: %s", path, d->name,
                            r < 0 ? strempty(e.message) : "no or a repeated name");
                vb_error_free(&e);
                snapshot_def_free(def);
                return 0;
        }
        r = snapshot_add(d, def, &s);
        if (r < 0)
                return r;
        if (s->def->active == 1)
                d->current_snapshot = s;
        return 0;
}

static int by_creation(const void *a, const void *b) {
        const DomainSnapshot *x = *(DomainSnapshot * const *) a, *y = *(DomainSnapshot * const *) b;

        if (x->def->creation_time != y->def->creation_time)
                return x->def->creation_time < y->def->creation_time ? -1 : 1;
        return strcmp(x->name, y->name);
}

void manager_snapshot_load_all(Manager *m) {
        for (size_t i = 0; i < m->n_domains; i++) {
                Domain *d = m->domains[i];
                _cleanup_free_ char *dir = NULL;
                struct dirent **list = NULL;
                int n;

                if (snapshot_dir(m, d, &dir) < 0)
                        return;
                n = scandir(dir, &list, NULL, alphasort);
                for (int k = 0; k < n; k++) {
                        _cleanup_free_ char *path = NULL;
                        const char *f = list[k]->d_name;

                        if (strlen(f) > 5 && streq(f + strlen(f) - 5, ".tmp~")) { /* a save a crash cut short */
                                if (asprintf(&path, "%s/%s", dir, f) >= 0)
                                        (void) unlink(path);
                        } else if (strncmp(f, "s-", 2) == 0 && strlen(f) > 6 && streq(f + strlen(f) - 4, ".xml") &&
                                 asprintf(&path, "%s/%s", dir, f) >= 0)
                                (void) load_one(m, d, path);
                        free(list[k]);
                }
                free(list);
                if (d->n_snapshots > 1)
                        qsort(d->snapshots, d->n_snapshots, sizeof *d->snapshots, by_creation);
                if (d->n_snapshots > 0)
                        log_info("Domain '%s' has %zu snapshot(s).", d->name, d->n_snapshots);
        }
}

void manager_snapshot_forget_all(Manager *m, Domain *d) {
        while (d->n_snapshots > 0) {
                DomainSnapshot *s = d->snapshots[d->n_snapshots - 1];

                if (d->current_snapshot == s)
                        d->current_snapshot = NULL;
                (void) snapshot_unlink(m, s);
                snapshot_remove(m, s);
        }
        domain_emit_changed(d, domain_props);
        log_notice("Snapshot metadata of domain '%s' removed.", d->name);
}

int manager_snapshot_remove_all(Manager *m, Domain *d) {
        _cleanup_free_ char *dir = NULL;

        for (size_t i = 0; i < d->n_snapshots; i++)
                (void) snapshot_unlink(m, d->snapshots[i]);
        if (snapshot_dir(m, d, &dir) < 0)
                return -ENOMEM;
        (void) durable_remove_dir(m->durable, dir); /* after the files */
        return 0;
}

/* Operations ------------------------------------------------------------------------------------ */

static int not_supported(Manager *m, const char *what, VbError *reterr) {
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The '%s' backend does not %s", m->driver->ops->name,
                            what);
}

static SnapshotState state_of(const Domain *d) {
        switch (d->state) {
        case DOMAIN_RUNNING:
                return SNAPSHOT_STATE_RUNNING;
        case DOMAIN_PAUSED:
                return SNAPSHOT_STATE_PAUSED;
        case DOMAIN_SHUTDOWN:
                return SNAPSHOT_STATE_SHUTDOWN;
        case DOMAIN_CRASHED:
                return SNAPSHOT_STATE_CRASHED;
        default:
                return SNAPSHOT_STATE_SHUTOFF;
        }
}

/* A disk-only snapshot: flag 1, or a disk the XML keeps externally (and no memory state). */
static bool is_disk_only(const SnapshotDef *def, uint64_t flags) {
        if (flags & SNAPSHOT_CREATE_DISK_ONLY)
                return true;
        for (size_t i = 0; i < def->n_disks; i++)
                if (def->disks[i].mode_given && def->disks[i].mode == SNAPSHOT_MODE_EXTERNAL)
                        return true;
        return false;
}

static int check_kind(const SnapshotDef *def, uint64_t flags, VbError *reterr) {
        if (def->memory_given && def->memory == SNAPSHOT_MODE_EXTERNAL)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Snapshots keeping the guest's memory in a file "
                                    "(<memory snapshot='external'>) are not supported: take an internal or a disk-only "
                                    "snapshot");
        if (def->memory_given && def->memory == SNAPSHOT_MODE_MANUAL)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "<memory snapshot='manual'> is not supported");
        if (!is_disk_only(def, flags))
                return 0;
        /* External disks with the guest's memory kept inside an image: libvirt's "external" snapshot. */
        if (!(flags & SNAPSHOT_CREATE_DISK_ONLY) && def->memory_given && def->memory == SNAPSHOT_MODE_INTERNAL)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Snapshots keeping the guest's memory "
                                    "(<memory snapshot='internal'>) with disks in new overlays "
                                    "(<disk snapshot='external'>) are not supported: take a disk-only snapshot "
                                    "(flag 1, no <memory>) or an internal one");
        if (def->memory_given && def->memory != SNAPSHOT_MODE_NO)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A disk-only snapshot keeps no memory state: "
                                    "<memory snapshot='%s'> (expected 'no', or no <memory>)",
                                    snapshot_mode_to_string(def->memory));
        for (size_t i = 0; i < def->n_disks; i++)
                if (def->disks[i].mode_given && def->disks[i].mode != SNAPSHOT_MODE_EXTERNAL &&
                    def->disks[i].mode != SNAPSHOT_MODE_NO)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s' of a disk-only snapshot says "
                                            "snapshot='%s' (expected 'external' or 'no')", def->disks[i].name,
                                            snapshot_mode_to_string(def->disks[i].mode));
        return 0;
}

static int check_new(Manager *m, Domain *d, SnapshotDef *def, uint64_t flags, VbError *reterr) {
        int r;

        if (flags & SNAPSHOT_CREATE_QUIESCE)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Quiescing through the guest agent is not supported yet");
        if (flags & SNAPSHOT_CREATE_REDEFINE)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Redefining a snapshot from its XML is not supported yet");
        r = check_kind(def, flags, reterr);
        if (r < 0)
                return r;
        if (def->state_given || def->creation_time_given || def->parent_name || def->domain || def->inactive_domain ||
            def->active >= 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A new snapshot's <state>, <creationTime>, "
                                    "<parent>, <domain> and <active> are the service's to fill in");
        if (!domain_is_persistent(d))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is transient: snapshots need a saved "
                                    "definition", d->name);
        if (!DRIVER_OP(m, domain_snapshot_create))
                return not_supported(m, "take snapshots", reterr);
        if (def->name && (streq(def->name, ".") || streq(def->name, "..")))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A snapshot cannot be named '%s'", def->name);
        if (def->name && strlen(def->name) > SNAPSHOT_NAME_MAX)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Snapshot names are at most %d bytes",
                                    SNAPSHOT_NAME_MAX);
        if (def->name && domain_snapshot_by_name(d, def->name))
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' already has a snapshot '%s'",
                                    d->name, def->name);
        return 0;
}

static const SnapshotDiskDef *snapshot_disk(const SnapshotDef *def, const char *name) {
        for (size_t i = 0; i < def->n_disks; i++)
                if (streq(def->disks[i].name, name))
                        return &def->disks[i];
        return NULL;
}

static bool is_domain_disk(const DomainDef *def, const char *target) {
        for (size_t i = 0; i < def->n_devices; i++)
                if (def->devices[i]->kind == DEVICE_DISK && streq_ptr(device_disk_get_target(def->devices[i]), target))
                        return true;
        return false;
}

/* Next to the image, named after the snapshot: its extension replaced ("/i/web.qcow2" -> "/i/web.before"). */
static int default_overlay(const char *source, const char *snapshot, char **ret) {
        const char *slash = strrchr(source, '/'), *dot = strrchr(source, '.');
        size_t keep = dot && slash && dot > slash + 1 ? (size_t) (dot - source) : strlen(source);

        return asprintf(ret, "%.*s.%s", (int) keep, source, snapshot) < 0 ? -ENOMEM : 0;
}

/* The overlay of one disk: absolute, new to the domain and to the other disks of the snapshot. */
static int check_overlay(const char *target, const char *path, const DomainPaths *paths, const SnapshotDiskDef *done,
                         size_t n_done, VbError *reterr) {
        if (path[0] != '/')
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s': the overlay <source file='%s'/> "
                                    "is not an absolute path", target, path);
        for (size_t i = 0; i < paths->n; i++)
                if (streq(paths->v[i].path, path))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s': the overlay '%s' is a file "
                                            "of the domain already (%s)", target, path, paths->v[i].what);
        for (size_t i = 0; i < n_done; i++)
                if (streq_ptr(done[i].source_file, path))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disks '%s' and '%s' would have the "
                                            "same overlay '%s'", done[i].name, target, path);
        return 0;
}

/* One disk of the domain in a disk-only snapshot: its overlay, or snapshot='no'. */
static int resolve_disk(const DeviceDef *dev, const SnapshotDef *def, const DomainPaths *paths, SnapshotDiskDef *list,
                        size_t n, VbError *reterr) {
        const char *target = device_disk_get_target(dev);
        const SnapshotDiskDef *given = snapshot_disk(def, target);
        bool image = device_disk_is_writable_image(dev);
        SnapshotMode mode = given && given->mode_given ? given->mode : image ? SNAPSHOT_MODE_EXTERNAL : SNAPSHOT_MODE_NO;
        SnapshotDiskDef *k = &list[n];
        int r;

        *k = (SnapshotDiskDef) { .mode = mode, .mode_given = true, .name = strdup(target) };
        if (!k->name)
                return -ENOMEM;
        if (mode == SNAPSHOT_MODE_NO)
                return 0;
        if (!image)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Disk '%s' cannot have an overlay: it is not "
                                    "a writable image (a read-only, shared, cdrom or floppy disk, or one without a "
                                    "file or block source); say <disk name='%s' snapshot='no'/>", target, target);
        if (given && given->driver_type && !streq(given->driver_type, "qcow2"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s': overlays are 'qcow2' images, not '%s'",
                                    target, given->driver_type);
        if (given && given->source_file)
                k->source_file = strdup(given->source_file);
        else
                (void) default_overlay(device_disk_get_source(dev), def->name, &k->source_file);
        k->driver_type = strdup("qcow2");
        if (!k->source_file || !k->driver_type)
                return -ENOMEM;
        r = check_overlay(target, k->source_file, paths, list, n, reterr);
        return r < 0 ? r : 1;
}

/* A disk-only snapshot lists every disk of the domain: with its new overlay (given, or next to its image),
 * or snapshot='no' (what cannot have one, unless the XML asked for it: then it is refused). */
static int resolve_disk_only(const DomainDef *cur, SnapshotDef *def, VbError *reterr) {
        _cleanup_(domain_paths_done) DomainPaths paths = {};
        SnapshotDiskDef *list = new0(SnapshotDiskDef, cur->n_devices + 1);
        size_t n = 0, n_external = 0;
        int r = 0;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_disks && r >= 0; i++)
                if (!is_domain_disk(cur, def->disks[i].name))
                        r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The snapshot names disk '%s', which domain "
                                         "'%s' does not have (name= is a disk's <target dev=>)", def->disks[i].name,
                                         domain_def_get_name(cur));
        if (r >= 0)
                r = domain_def_host_paths(cur, &paths);
        for (size_t i = 0; i < cur->n_devices && r >= 0; i++) {
                if (cur->devices[i]->kind != DEVICE_DISK || !device_disk_get_target(cur->devices[i]))
                        continue;
                r = resolve_disk(cur->devices[i], def, &paths, list, n, reterr);
                if (list[n].name)
                        n++;
                if (r > 0)
                        n_external++;
        }
        if (r >= 0 && n_external == 0)
                r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Snapshot '%s' would keep no disk: domain '%s' has "
                                 "no writable image disk, or each says snapshot='no'", def->name,
                                 domain_def_get_name(cur));
        for (size_t i = 0; i < def->n_disks; i++) {
                free(def->disks[i].name);
                free(def->disks[i].source_file);
                free(def->disks[i].driver_type);
        }
        free(def->disks);
        def->disks = list;
        def->n_disks = n;
        return r < 0 ? r : 0;
}

/* Fills in what the service decides: name (the creation time), time, state, parent, the definition. */
static int fill_new(Domain *d, SnapshotDef *def, bool disk_only, VbError *reterr) {
        bool running = domain_is_active(d);
        int r;

        def->creation_time = (uint64_t) time(NULL);
        def->creation_time_given = true;
        if (!def->name) {
                if (asprintf(&def->name, "%" PRIu64, def->creation_time) < 0)
                        return -ENOMEM;
                if (domain_snapshot_by_name(d, def->name))
                        return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Domain '%s' already has a snapshot "
                                            "'%s' (taken this second): give a <name>", d->name, def->name);
        }
        def->state = disk_only ? SNAPSHOT_STATE_DISK_SNAPSHOT : state_of(d);
        def->state_given = true;
        def->memory = running && !disk_only ? SNAPSHOT_MODE_INTERNAL : SNAPSHOT_MODE_NO;
        def->memory_given = true;
        if (disk_only) {
                r = resolve_disk_only(domain_current_def(d), def, reterr);
                if (r < 0)
                        return r;
        }
        if (d->current_snapshot && !(def->parent_name = strdup(d->current_snapshot->name)))
                return -ENOMEM;
        r = domain_def_copy(domain_current_def(d), &def->domain);
        return r < 0 ? r : 0;
}

/* One operation in flight on a domain's snapshots, answered through done. */
typedef struct SnapshotJob {
        Manager *m;
        Domain *d;
        DomainSnapshot *s;        /* revert, delete: the snapshot named */
        SnapshotDef *def;         /* create: the new one, until it is added */
        uint64_t flags;
        SnapshotOpDone done;
        void *userdata;
        DomainDef *old_config;    /* revert: the definition replaced before the start, put back on failure */
        bool started;             /* revert: core started the domain for it */
        DomainSnapshot **pending; /* delete: what is left to remove, in order */
        size_t n_pending;
} SnapshotJob;

static int busy(Domain *d, VbError *reterr) {
        if (d->job_busy)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Domain '%s' has a snapshot or save operation in progress",
                                    d->name);
        /* Nor behind a start, stop or other lifecycle call in flight. */
        return domain_check_idle(d, reterr);
}

static SnapshotJob *job_new(Manager *m, Domain *d, DomainSnapshot *s, uint64_t flags, SnapshotOpDone done,
                            void *userdata) {
        SnapshotJob *j = new0(SnapshotJob, 1);

        if (!j)
                return NULL;
        *j = (SnapshotJob) { .m = m, .d = d, .s = s, .flags = flags, .done = done, .userdata = userdata };
        d->job_busy = true;
        return j;
}

static void job_free(SnapshotJob *j) {
        j->d->job_busy = false;
        snapshot_def_free(j->def);
        domain_def_free(j->old_config);
        free(j->pending);
        free(j);
}

/* Answers the caller and ends the job. */
static void job_finish(SnapshotJob *j, int r, DomainSnapshot *s, const VbError *e) {
        SnapshotOpDone done = j->done;
        void *userdata = j->userdata;

        job_free(j);
        done(r, s, e, userdata);
}

static void job_fail(SnapshotJob *j, int r, VbError *e) {
        if (r == -ENOMEM && e->code == VB_ERROR_NONE)
                vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Out of memory");
        job_finish(j, r, NULL, e);
        vb_error_free(e);
}

static void ignore_done(int r, const VbError *e, void *userdata) {
        if (r < 0)
                log_warning("Failed to drop a snapshot that could not be recorded, ignoring: %s",
                            e ? strempty(e->message) : strerror(-r));
}

/* A disk-only snapshot was taken: its overlays are the disks' images now, in the running definition (the
 * backend's, which it changed itself, or core's own) and the saved one. Best effort: the overlays are in
 * use whatever is written here. */
static void adopt_overlays(Manager *m, Domain *d, const SnapshotDef *snap) {
        _cleanup_(domain_def_freep) DomainDef *live = NULL, *config = NULL;
        VbError e = VB_ERROR_NULL;

        if (domain_is_active(d)) {
                if (!DRIVER_OP(m, domain_get_live) || DRIVER_OP(m, domain_get_live)(m->driver, d->uuid, &live, NULL) < 0)
                        (void) snapshot_def_apply_overlays(snap, d->live, &live);
                if (live) {
                        domain_def_free(d->live);
                        d->live = TAKE_PTR(live);
                }
        }
        if (!d->config)
                return;
        if (snapshot_def_apply_overlays(snap, d->config, &config) < 0) {
                log_warning("Domain '%s': out of memory switching its definition to the overlays of snapshot '%s'.",
                            d->name, snap->name);
                return;
        }
        if (domain_store_save(m->durable, m->domains_dir, config, &d->access, &e) < 0)
                log_warning("Domain '%s': its definition with the overlays of snapshot '%s' was not saved, ignoring: %s",
                            d->name, snap->name, strempty(e.message));
        vb_error_free(&e);
        domain_def_free(d->config);
        d->config = TAKE_PTR(config);
}

static void on_created(int r, const VbError *driver_e, void *userdata) {
        SnapshotJob *j = userdata;
        Manager *m = j->m;
        Domain *d = j->d;
        VbError e = VB_ERROR_NULL;
        DomainSnapshot *s = NULL;

        if (r < 0) {
                job_finish(j, r, NULL, driver_e);
                return;
        }
        if (snapshot_def_kind(j->def) == SNAPSHOT_KIND_DISK_ONLY)
                adopt_overlays(m, d, j->def);
        r = snapshot_add(d, TAKE_PTR(j->def), &s);
        if (r >= 0)
                r = snapshot_save(m, s, &e);
        if (r < 0) {
                /* Not recorded: what the backend made goes again (best effort; nothing waits for it). */
                if (s && snapshot_def_kind(s->def) == SNAPSHOT_KIND_INTERNAL) {
                        (void) DRIVER_OP(m, domain_snapshot_delete)(m->driver, domain_current_def(d),
                                                                    domain_is_active(d), s->def, &d->access,
                                                                    ignore_done, NULL, NULL);
                }
                if (s)
                        snapshot_remove(m, s);
                job_fail(j, r, &e);
                return;
        }
        log_notice("Snapshot '%s' of domain '%s' taken (%s).", s->name, d->name,
                   snapshot_state_to_string(s->def->state));
        if (m->events.snapshot_added)
                m->events.snapshot_added(m->events.userdata, s);
        set_current(m, d, s);
        job_finish(j, 0, s, NULL);
}

int manager_snapshot_create(Manager *m, Domain *d, SnapshotDef *def_in, uint64_t flags, SnapshotOpDone done,
                            void *userdata, VbError *reterr) {
        _cleanup_(snapshot_def_freep) SnapshotDef *def = def_in;
        SnapshotJob *j;
        int r;

        r = busy(d, reterr);
        if (r >= 0)
                r = check_new(m, d, def, flags, reterr);
        if (r >= 0)
                r = fill_new(d, def, is_disk_only(def, flags), reterr);
        if (r < 0)
                return r;
        j = job_new(m, d, NULL, flags, done, userdata);
        if (!j)
                return -ENOMEM;
        j->def = TAKE_PTR(def);
        r = DRIVER_OP(m, domain_snapshot_create)(m->driver, domain_current_def(d), domain_is_active(d), j->def,
                                                &d->access, on_created, j, reterr);
        if (r < 0)
                job_free(j);
        return r;
}

/* The snapshot's saved definition becomes the domain's again (*ret_old: the one it replaces). */
static int restore_definition(Manager *m, Domain *d, const SnapshotDef *snap, DomainDef **ret_old, VbError *reterr) {
        static const char * const props[] = { "VCPUs", "MemoryKiB", "OSType", NULL };
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        int r;

        *ret_old = NULL;
        if (!snap->domain || !d->config)
                return 0;
        /* Renamed since: the name stays (it names the domain everywhere else). */
        if (!streq_ptr(domain_def_get_name(snap->domain), d->name)) {
                log_info("Domain '%s' was called '%s' when snapshot '%s' was taken: its definition is not put back.",
                         d->name, domain_def_get_name(snap->domain), snap->name);
                return 0;
        }
        r = domain_def_copy(snap->domain, &copy);
        if (r >= 0)
                r = domain_store_save(m->durable, m->domains_dir, copy, &d->access, reterr);
        if (r < 0)
                return r;
        *ret_old = d->config;
        d->config = TAKE_PTR(copy);
        domain_emit_changed(d, props);
        return 0;
}

/* Undoes restore_definition (best effort: a failure to save is logged). */
static void put_back_definition(Manager *m, Domain *d, DomainDef **old) {
        VbError e = VB_ERROR_NULL;

        if (!*old)
                return;
        if (domain_store_save(m->durable, m->domains_dir, *old, &d->access, &e) < 0)
                log_warning("Failed to save the definition of domain '%s' again, ignoring: %s", d->name,
                            strempty(e.message));
        vb_error_free(&e);
        domain_def_free(d->config);
        d->config = TAKE_PTR(*old);
}

static bool state_is_running(SnapshotState st) {
        return st == SNAPSHOT_STATE_RUNNING || st == SNAPSHOT_STATE_PAUSED;
}

static void revert_finish(SnapshotJob *j) {
        Manager *m = j->m;
        Domain *d = j->d;
        DomainSnapshot *s = j->s;

        /* A managed save holds a state the disks no longer match: it goes. */
        if (manager_domain_has_managed_save(m, d) && manager_domain_managed_save_remove_stale(m, d) < 0)
                log_warning("Domain '%s': failed to remove its managed save after the revert, ignoring.", d->name);
        log_notice("Domain '%s' reverted to snapshot '%s'.", d->name, s->name);
        set_current(m, d, s);
        job_finish(j, 0, s, NULL);
}

/* The guest was resumed or paused as the snapshot has it. */
static void on_revert_state(Domain *d, int r, const VbError *e, void *userdata) {
        SnapshotJob *j = userdata;

        if (r < 0 || !d) {
                job_finish(j, r < 0 ? r : -ESRCH, NULL, e);
                return;
        }
        revert_finish(j);
}

static void on_reverted(int r, const VbError *driver_e, void *userdata) {
        SnapshotJob *j = userdata;
        Manager *m = j->m;
        Domain *d = j->d;
        DomainSnapshot *s = j->s;
        VbError e = VB_ERROR_NULL;
        DomainDef *old = NULL;

        if (r < 0) {
                if (j->started)
                        (void) manager_domain_destroy(m, d, NULL);
                put_back_definition(m, d, &j->old_config);
                job_finish(j, r, NULL, driver_e);
                return;
        }
        /* The disks are back (and the guest, live): the definition follows, unless done before the start. */
        if (!j->started) {
                r = restore_definition(m, d, s->def, &old, &e);
                domain_def_free(old);
                if (r < 0)
                        log_warning("Domain '%s' reverted to snapshot '%s', but its definition was not: %s", d->name,
                                    s->name, strempty(e.message));
                vb_error_free(&e);
        }
        /* The guest as it was: running, or paused (revert_finish follows). */
        r = 1;
        if (s->def->state == SNAPSHOT_STATE_RUNNING && d->state == DOMAIN_PAUSED)
                r = manager_domain_resume(m, d, on_revert_state, j, &e);
        else if (s->def->state == SNAPSHOT_STATE_PAUSED && d->state == DOMAIN_RUNNING)
                r = manager_domain_suspend(m, d, on_revert_state, j, &e);
        if (r < 0) {
                job_fail(j, r, &e);
                return;
        }
        if (r > 0)
                revert_finish(j);
}

/* A revert that failed: the domain started for it stops, its definition goes back. */
static void revert_undo(SnapshotJob *j) {
        if (j->started)
                (void) manager_domain_destroy(j->m, j->d, NULL);
        put_back_definition(j->m, j->d, &j->old_config);
        job_free(j);
}

/* The backend puts the snapshot's disks (and guest state) back; on_reverted follows. */
static int revert_now(Manager *m, SnapshotJob *j, VbError *reterr) {
        Domain *d = j->d;

        return DRIVER_OP(m, domain_snapshot_revert)(m->driver, domain_current_def(d), domain_is_active(d), j->s->def,
                                                   &d->access, on_reverted, j, reterr);
}

/* The domain the revert started (paused) runs, or failed to start. */
static void on_revert_started(Domain *d, int r, const VbError *e, void *userdata) {
        SnapshotJob *j = userdata;
        VbError e2 = VB_ERROR_NULL;
        SnapshotOpDone done = j->done;
        void *done_userdata = j->userdata;

        if (r >= 0 && !d)
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "The domain went away while it started for the revert");
        if (r >= 0) {
                r = revert_now(j->m, j, &e2);
                if (r >= 0)
                        return;
                e = &e2;
        }
        revert_undo(j);
        done(r, NULL, e, done_userdata);
        vb_error_free(&e2);
}

/* A revert that starts the domain, kept while the capabilities are probed: the qemu driver expands <cpu
 * mode='host-model'> from them when QEMU starts, and would otherwise wait for the probe on the loop. The
 * snapshot is found again by name when the call runs. */
typedef struct RevertArgs {
        uint64_t flags;
        SnapshotOpDone done;
        void *userdata;
        char name[]; /* the snapshot's */
} RevertArgs;

static int revert_run(Manager *m, Domain *d, void *p, Domain **ret, VbError *reterr) {
        RevertArgs *a = p;
        DomainSnapshot *s = domain_snapshot_by_name(d, a->name);

        if (!s)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Snapshot '%s' of domain '%s' was deleted while "
                                    "the revert waited.", a->name, d->name);
        return manager_snapshot_revert(m, s, a->flags, a->done, a->userdata, reterr);
}

static void revert_answer(Manager *m, Domain *d, void *p, int r, const VbError *e) {
        RevertArgs *a = p;

        if (r < 0)
                a->done(r, NULL, e, a->userdata);
}

static const QueuedCallType revert_type = {
        .what = "reverting a domain to a snapshot",
        .run = revert_run,
        .answer = revert_answer,
        .free = free,
};

int manager_snapshot_revert(Manager *m, DomainSnapshot *s, uint64_t flags, SnapshotOpDone done, void *userdata,
                            VbError *reterr) {
        Domain *d = s->domain;
        bool run = state_is_running(s->def->state);
        SnapshotJob *j;
        int r;

        if (run && !domain_is_active(d)) {
                size_t size = sizeof(RevertArgs) + strlen(s->name) + 1;
                _cleanup_free_ RevertArgs *a = malloc(size);

                if (!a)
                        return -ENOMEM;
                *a = (RevertArgs) { .flags = flags, .done = done, .userdata = userdata };
                strcpy(a->name, s->name);
                r = domain_queue_keep_if_probing(m, d, d->config, false, &revert_type, a, size, reterr);
                if (r <= 0)
                        return r;
        }
        r = busy(d, reterr);
        if (r < 0)
                return r;
        if (!DRIVER_OP(m, domain_snapshot_revert))
                return not_supported(m, "revert to snapshots", reterr);
        r = domain_check_idle(d, reterr);
        if (r < 0)
                return r;
        if (snapshot_def_kind(s->def) != SNAPSHOT_KIND_INTERNAL)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Reverting to a '%s' snapshot is not supported: "
                                    "its disks were not kept inside their images",
                                    snapshot_kind_to_string(snapshot_def_kind(s->def)));
        if (domain_is_active(d) && !run) {
                r = manager_domain_destroy(m, d, reterr);
                if (r < 0)
                        return r;
        }
        j = job_new(m, d, s, flags, done, userdata);
        if (!j)
                return -ENOMEM;
        /* A snapshot of a running guest is loaded into a running domain: started (paused) from the
         * snapshot's definition, then the backend puts the guest's state back (once the start is done). */
        if (run && !domain_is_active(d)) {
                r = restore_definition(m, d, s->def, &j->old_config, reterr);
                if (r >= 0)
                        r = manager_domain_start(m, d, true, on_revert_started, j, reterr);
                if (r < 0) {
                        put_back_definition(m, d, &j->old_config);
                        job_free(j);
                        return r;
                }
                j->started = true;
                if (r == 0)
                        return 0; /* on_revert_started goes on */
        }
        r = revert_now(m, j, reterr);
        if (r < 0)
                revert_undo(j);
        return r;
}

static bool is_pending(const SnapshotJob *j, const DomainSnapshot *s) {
        for (size_t i = 0; i < j->n_pending; i++)
                if (j->pending[i] == s)
                        return true;
        return false;
}

/* Deleting a disk-only snapshot merges its overlays into the images below them: each must still be its
 * disk's image when its turn comes (the later disk-only snapshots over it go first, with flag 1), and no
 * snapshot that stays may have been taken over them. Checked for the whole list before anything is done. */
static int check_merges(SnapshotJob *j, VbError *reterr) {
        _cleanup_(domain_def_freep) DomainDef *cur = NULL;
        Domain *d = j->d;
        int r;

        r = domain_def_copy(domain_current_def(d), &cur);
        if (r < 0)
                return r;
        for (size_t i = 0; i < j->n_pending; i++) {
                DomainSnapshot *s = j->pending[i];
                SnapshotKind kind = snapshot_def_kind(s->def);
                DomainDef *next = NULL;
                const char *disk = NULL;

                if (kind == SNAPSHOT_KIND_INTERNAL)
                        continue;
                if (kind != SNAPSHOT_KIND_DISK_ONLY)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Snapshot '%s' is '%s': deleting it is not "
                                            "supported; delete its metadata only (flag 4)", s->name,
                                            snapshot_kind_to_string(kind));
                for (size_t k = 0; k < d->n_snapshots; k++)
                        if (domain_snapshot_parent(d->snapshots[k]) == s && !is_pending(j, d->snapshots[k]))
                                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Snapshot '%s' has a child "
                                                    "snapshot '%s', taken over its overlays: delete that one first, "
                                                    "or both with flag 1", s->name, d->snapshots[k]->name);
                r = snapshot_def_drop_overlays(s->def, cur, &next, &disk);
                if (r == -EBUSY)
                        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Snapshot '%s' cannot be merged: disk '%s' of "
                                            "domain '%s' does not have its overlay as its image now (a later "
                                            "snapshot's overlay is over it, or the disk changed); delete the later "
                                            "snapshots first, or its metadata only (flag 4)", s->name, disk, d->name);
                if (r < 0)
                        return r;
                domain_def_free(cur);
                cur = next;
        }
        return 0;
}

/* A disk-only snapshot was deleted: its overlays are merged into the images below them, which are the
 * disks' images again, in the running definition (the backend's own, which it changed itself) and the
 * saved one. */
static void merge_overlays(Manager *m, Domain *d, const SnapshotDef *snap) {
        _cleanup_(domain_def_freep) DomainDef *live = NULL, *config = NULL;
        VbError e = VB_ERROR_NULL;

        if (domain_is_active(d)) {
                if (!DRIVER_OP(m, domain_get_live) || DRIVER_OP(m, domain_get_live)(m->driver, d->uuid, &live, NULL) < 0)
                        (void) snapshot_def_drop_overlays(snap, d->live, &live, NULL);
                if (live) {
                        domain_def_free(d->live);
                        d->live = TAKE_PTR(live);
                }
        }
        if (!d->config)
                return;
        if (snapshot_def_drop_overlays(snap, d->config, &config, NULL) < 0) {
                log_warning("Domain '%s': out of memory switching its definition back from the overlays of snapshot "
                            "'%s'.", d->name, snap->name);
                return;
        }
        if (domain_store_save(m->durable, m->domains_dir, config, &d->access, &e) < 0)
                log_warning("Domain '%s': its definition without the overlays of snapshot '%s' was not saved, "
                            "ignoring: %s", d->name, snap->name, strempty(e.message));
        vb_error_free(&e);
        domain_def_free(d->config);
        d->config = TAKE_PTR(config);
}

/* Removes one snapshot's file and object (the backend's part is gone already). */
static void forget_one(Manager *m, DomainSnapshot *s, uint64_t flags) {
        Domain *d = s->domain;

        (void) snapshot_unlink(m, s);
        log_notice("Snapshot '%s' of domain '%s' deleted%s.", s->name, d->name,
                   flags & SNAPSHOT_DELETE_METADATA_ONLY ? " (metadata only)" : "");
        snapshot_remove(m, s);
}

/* The children of s take its parent as theirs. */
static int reparent_children(Manager *m, DomainSnapshot *s, VbError *reterr) {
        Domain *d = s->domain;
        DomainSnapshot *parent = domain_snapshot_parent(s);

        for (size_t i = 0; i < d->n_snapshots; i++) {
                DomainSnapshot *c = d->snapshots[i];
                char *name = NULL;

                if (domain_snapshot_parent(c) != s)
                        continue;
                if (parent && !(name = strdup(parent->name)))
                        return -ENOMEM;
                free(c->def->parent_name);
                c->def->parent_name = name;
                (void) snapshot_save(m, c, reterr);
                if (m->events.snapshot_changed)
                        m->events.snapshot_changed(m->events.userdata, c, parent_props);
        }
        return 0;
}

/* The first of the list is gone from the backend: the current mark moves (to the named snapshot while its
 * descendants go, to its parent when it goes), its children take its parent, and it goes from here. */
static int forget_first(SnapshotJob *j, VbError *reterr) {
        DomainSnapshot *s = j->pending[0];
        Domain *d = j->d;
        int r;

        if (d->current_snapshot == s)
                set_current(j->m, d, s == j->s ? domain_snapshot_parent(s) : j->s);
        if (s == j->s) {
                r = reparent_children(j->m, s, reterr);
                if (r < 0)
                        return r;
        }
        forget_one(j->m, s, j->flags);
        memmove(j->pending, j->pending + 1, --j->n_pending * sizeof *j->pending);
        return 0;
}

/* Whether path is an image of disk dev's chain (its source or a <backingStore>'s). */
static bool disk_chain_has(const DeviceDef *dev, const char *path) {
        if (streq_ptr(device_disk_get_source(dev), path))
                return true;
        for (const ConfNode *b = dev->extra ? conf_node_child(dev->extra, "backingStore") : NULL; b;
             b = conf_node_child(b, "backingStore")) {
                const ConfNode *src = conf_node_child(b, "source");

                if (src && (streq_ptr(conf_node_attr(src, "file"), path) || streq_ptr(conf_node_attr(src, "dev"), path)))
                        return true;
        }
        return false;
}

/* The overlays of disk-only snapshot s that the backend's live definition no longer has (a merge that
 * failed after some disks pivoted onto the images below, which QEMU cannot undo, or one that a stop of the
 * service cut short and the driver settled when it found the domain again): those disks leave the
 * snapshot, their overlays leave the saved definition too, and a snapshot left with no overlay is gone
 * (its merge is done). Returns true when s was removed. */
static bool reconcile_merge(Manager *m, Domain *d, DomainSnapshot *s, bool may_forget) {
        _cleanup_(snapshot_def_freep) SnapshotDef *merged = NULL;
        _cleanup_(domain_def_freep) DomainDef *driver_live = NULL;
        VbError e = VB_ERROR_NULL;
        size_t n_merged = 0, n_left = 0;
        const DomainDef *live;

        if (!domain_is_active(d) || !d->live || snapshot_def_kind(s->def) != SNAPSHOT_KIND_DISK_ONLY ||
            snapshot_def_copy(s->def, &merged) < 0)
                return false;
        /* The backend's own live definition: what it runs now. */
        if (DRIVER_OP(m, domain_get_live))
                (void) DRIVER_OP(m, domain_get_live)(m->driver, d->uuid, &driver_live, NULL);
        live = driver_live ?: d->live;
        for (size_t i = 0; i < merged->n_disks; i++) {
                SnapshotDiskDef *k = &merged->disks[i];
                const DeviceDef *dev = domain_def_find_disk(live, k->name);

                if (k->mode != SNAPSHOT_MODE_EXTERNAL || !k->source_file)
                        continue;
                if (dev && !disk_chain_has(dev, k->source_file))
                        n_merged++;
                else {
                        k->mode = SNAPSHOT_MODE_NO;
                        n_left++;
                }
        }
        if (n_merged == 0 || (n_left == 0 && !may_forget))
                return false;
        /* The overlay files of the disks merged: a merge that failed after a pivot removed them already; one
         * that a stop of the service cut short left them. */
        for (size_t i = 0; i < merged->n_disks && DRIVER_OP(m, domain_snapshot_overlay_forget); i++) {
                const SnapshotDiskDef *k = &merged->disks[i];
                const DeviceDef *dev = domain_def_find_disk(live, k->name);

                if (k->mode == SNAPSHOT_MODE_EXTERNAL && dev)
                        DRIVER_OP(m, domain_snapshot_overlay_forget)(m->driver, k->source_file,
                                                                     device_disk_get_source(dev), &d->access);
        }
        merge_overlays(m, d, merged);
        if (n_left == 0) {
                log_notice("Snapshot '%s' of domain '%s': every overlay was merged into the image below.", s->name,
                           d->name);
                if (d->current_snapshot == s)
                        set_current(m, d, domain_snapshot_parent(s));
                (void) reparent_children(m, s, NULL);
                forget_one(m, s, 0);
                return true;
        }
        for (size_t i = 0; i < merged->n_disks; i++) {
                SnapshotDiskDef *k = &s->def->disks[i];

                if (merged->disks[i].mode != SNAPSHOT_MODE_EXTERNAL)
                        continue;
                log_notice("Snapshot '%s' of domain '%s': disk '%s' merged into the image below '%s', the rest not.",
                           s->name, d->name, k->name, k->source_file);
                k->mode = SNAPSHOT_MODE_NO;
                k->mode_given = true;
                free(k->source_file);
                free(k->driver_type);
                k->source_file = k->driver_type = NULL;
        }
        if (snapshot_save(m, s, &e) < 0)
                log_warning("Snapshot '%s' of domain '%s': the disks left in it were not saved, ignoring: %s", s->name,
                            d->name, strempty(e.message));
        vb_error_free(&e);
        return false;
}

void manager_snapshots_reconcile_merges(Manager *m, Domain *d) {
        for (size_t i = d->n_snapshots; i > 0; i--)
                if (i - 1 < d->n_snapshots)
                        (void) reconcile_merge(m, d, d->snapshots[i - 1], true);
}

static void on_deleted(int r, const VbError *driver_e, void *userdata);

/* Asks the backend to drop the first of the list (metadata only: nothing to ask); done when none is left. */
static void delete_next(SnapshotJob *j) {
        VbError e = VB_ERROR_NULL;
        int r;

        while (j->n_pending > 0) {
                if (!(j->flags & SNAPSHOT_DELETE_METADATA_ONLY)) {
                        r = DRIVER_OP(j->m, domain_snapshot_delete)(j->m->driver, domain_current_def(j->d),
                                                                    domain_is_active(j->d), j->pending[0]->def,
                                                                    &j->d->access, on_deleted, j, &e);
                        if (r < 0)
                                job_fail(j, r, &e);
                        return;
                }
                r = forget_first(j, &e);
                if (r < 0) {
                        job_fail(j, r, &e);
                        return;
                }
        }
        job_finish(j, 0, NULL, NULL);
}

static void on_deleted(int r, const VbError *driver_e, void *userdata) {
        SnapshotJob *j = userdata;
        VbError e = VB_ERROR_NULL;

        if (r < 0) {
                (void) reconcile_merge(j->m, j->d, j->pending[0], false);
                job_finish(j, r, NULL, driver_e);
                return;
        }
        if (snapshot_def_kind(j->pending[0]->def) == SNAPSHOT_KIND_DISK_ONLY)
                merge_overlays(j->m, j->d, j->pending[0]->def);
        r = forget_first(j, &e);
        if (r < 0) {
                job_fail(j, r, &e);
                return;
        }
        delete_next(j);
}

int manager_snapshot_delete(Manager *m, DomainSnapshot *s, uint64_t flags, SnapshotOpDone done, void *userdata,
                            VbError *reterr) {
        Domain *d = s->domain;
        bool with_children = flags & (SNAPSHOT_DELETE_CHILDREN | SNAPSHOT_DELETE_CHILDREN_ONLY);
        SnapshotJob *j;
        size_t n = 0;
        int r;

        r = busy(d, reterr);
        if (r < 0)
                return r;
        if (!(flags & SNAPSHOT_DELETE_METADATA_ONLY) && !DRIVER_OP(m, domain_snapshot_delete))
                return not_supported(m, "delete snapshots", reterr);
        j = job_new(m, d, s, flags, done, userdata);
        if (!j || !(j->pending = new0(DomainSnapshot *, d->n_snapshots + 1))) {
                if (j)
                        job_free(j);
                return -ENOMEM;
        }
        /* Descendants first, the latest first: a snapshot is taken after its parent, so it has no child
         * left when its turn comes. */
        for (size_t i = d->n_snapshots; with_children && i > 0; i--)
                if (is_descendant(d->snapshots[i - 1], s))
                        j->pending[n++] = d->snapshots[i - 1];
        if (!(flags & SNAPSHOT_DELETE_CHILDREN_ONLY))
                j->pending[n++] = s;
        j->n_pending = n;
        if (!(flags & SNAPSHOT_DELETE_METADATA_ONLY)) {
                r = check_merges(j, reterr);
                if (r < 0) {
                        job_free(j);
                        return r;
                }
        }
        delete_next(j);
        return 0;
}

int manager_snapshot_get_xml(const DomainSnapshot *s, char **ret, VbError *reterr) {
        _cleanup_(snapshot_def_freep) SnapshotDef *copy = NULL;
        int r;

        r = snapshot_def_copy(s->def, &copy);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format snapshot '%s': %s", s->name,
                                    strerror(-r));
        copy->active = -1;
        return snapshot_def_format(copy, 0, ret);
}
