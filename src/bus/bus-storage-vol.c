/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.StorageVol on /org/virtbus1/storagevol/<pool uuid hex>/<encoded name>, and
 * StoragePool.CreateVolume. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "bus/bus-error.h"
#include "bus/bus-object.h"
#include "bus/bus-parse.h"
#include "bus/bus-storage.h"
#include "util/log.h"

/* A volume description is small; larger ones are refused before parsing. */
#define VOL_XML_MAX (64U * 1024U)

/* The path of volume name in pool p (also of one that is yet to be made). */
static char *vol_path(const StoragePool *p, const char *name) {
        char prefix[BUS_UUID_PATH_MAX(VB_STORAGE_VOL_PREFIX)];
        char *path = NULL;

        bus_uuid_path(VB_STORAGE_VOL_PREFIX, p->uuid, prefix);
        return sd_bus_path_encode(prefix, name, &path) < 0 ? NULL : path;
}

char *bus_storage_vol_path(const StorageVol *v) {
        return vol_path(v->pool, v->name);
}

StorageVol *bus_storage_vol_from_path(BusServer *s, const char *path) {
        char prefix[BUS_UUID_PATH_MAX(VB_STORAGE_VOL_PREFIX)], uuid[37];
        _cleanup_free_ char *name = NULL;
        size_t n = strlen(VB_STORAGE_VOL_PREFIX "/") + 32;
        StoragePool *p;

        if (!path || strlen(path) <= n || path[n] != '/')
                return NULL;
        memcpy(prefix, path, n);
        prefix[n] = 0;
        if (bus_uuid_from_path(VB_STORAGE_VOL_PREFIX, prefix, uuid) < 0)
                return NULL;
        p = storage_pool_by_uuid(s->manager->storage, uuid);
        if (!p || sd_bus_path_decode(path, prefix, &name) <= 0)
                return NULL;
        return storage_vol_by_name(p, name);
}

static StorageRegistry *registry_of(BusServer *s) {
        return s->manager->storage;
}

static int find_vol(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        return bus_object_found(bus_storage_vol_from_path(userdata, path), found);
}

static char *path_of(const void *v) {
        return bus_storage_vol_path(v);
}

static int enumerate_vols(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        StorageRegistry *r = registry_of(userdata);
        _cleanup_free_ const void **all = NULL;
        size_t n = 0, k = 0;

        for (size_t i = 0; i < r->n_pools; i++)
                n += r->pools[i]->n_vols;
        all = new0(const void *, n + 1);
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_pools; i++)
                for (size_t j = 0; j < r->pools[i]->n_vols; j++)
                        all[k++] = r->pools[i]->vols[j];
        return bus_object_enumerate(all, n, path_of, nodes);
}

/* CreateVolume ---------------------------------------------------------------------------------- */

static int parse_volume(const char *xml, unsigned flags, void **ret, VbError *reterr) {
        StorageVolDef *def = NULL;
        int r;

        r = storage_vol_def_parse_string(xml, &def, reterr);
        if (r >= 0)
                *ret = def;
        return r;
}

static void free_volume(void *def) {
        storage_vol_def_free(def);
}

static const char *volume_name(const void *def) {
        return ((const StorageVolDef *) def)->name;
}

static const char *pool_name(void *userdata) {
        return ((StoragePool *) userdata)->name;
}

/* Polkit is asked with details pool and volume (the name read ahead, then the parsed one). */
static const BusParseSpec volume_spec = {
        .what = "volume description",
        .max = VOL_XML_MAX,
        .parse = parse_volume,
        .free = free_volume,
        .action = VB_STORAGE_ACTION_MANAGE,
        .detail_key = "volume",
        .name = volume_name,
        .context_key = "pool",
        .context = pool_name,
};

/* The caller's uid: who a new volume belongs to, and whose volumes it may use. */
static int caller_uid(BusServer *s, sd_bus_message *m, uid_t *ret, sd_bus_error *error) {
        int r = bus_polkit_sender_uid(s->polkit, m, ret);

        return r < 0 ? sd_bus_error_set_errnof(error, r, "Failed to find out who called: %m") : 0;
}

/* A caller other than root may change only the volumes it created, and read those and root's
 * (AccessDenied naming the owner). */
static int check_use(BusServer *s, sd_bus_message *m, StorageVol *v, bool read_only, sd_bus_error *error) {
        VbError e = VB_ERROR_NULL;
        uid_t uid;
        int r;

        r = caller_uid(s, m, &uid, error);
        if (r < 0)
                return r;
        r = read_only ? storage_vol_check_read(v, uid, &e) : storage_vol_check_owner(v, uid, &e);
        return r < 0 ? bus_reply_vb_error(error, &e, r) : 0;
}

static int check_owner(BusServer *s, sd_bus_message *m, StorageVol *v, sd_bus_error *error) {
        return check_use(s, m, v, false, error);
}

/* The volume's own methods ---------------------------------------------------------------------- */

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *xml = NULL;
        StorageVol *v = userdata;
        VbError e = VB_ERROR_NULL;
        uint64_t flags;
        int r;

        r = bus_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = storage_vol_get_xml(v, &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static int method_delete(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        StorageVol *v = userdata;
        BusServer *s = v->pool->registry->events.userdata;
        const char *details[] = { "pool", v->pool->name, "volume", v->name, NULL };
        VbError e = VB_ERROR_NULL;
        int r;

        r = bus_begin_flags_call(s, m, 0, VB_STORAGE_ACTION_MANAGE, details, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_owner(s, m, v, error);
        if (r < 0)
                return r;
        r = manager_storage_vol_delete(s->manager, v, &e);
        return bus_reply_done(m, r, &e, error);
}

/* Upload, Download, Wipe, Resize: answered when the job ends ----------------------------------- */

#define RESIZE_SHRINK UINT64_C(1)

/* One call whose answer waits for a job; its caller is tracked, and a caller gone cancels the job. */
typedef struct VolCall {
        BusServer *server;
        sd_bus_message *message;
        sd_bus_track *track;
        char *path;
        bool reply_path; /* CreateVolumeFrom: answered with the new volume */
} VolCall;

static void vol_call_free(VolCall *c) {
        sd_bus_track_unref(c->track);
        sd_bus_message_unref(c->message);
        free(c->path);
        free(c);
}

static void emit_sizes(BusServer *s, StorageVol *v) {
        _cleanup_free_ char *path = bus_storage_vol_path(v);

        if (path)
                (void) sd_bus_emit_properties_changed(s->bus, path, VB_STORAGE_VOL_INTERFACE, "Capacity", "Allocation",
                                                      NULL);
}

static void on_job_progress(StorageVol *v, uint64_t done, uint64_t total, void *userdata) {
        VolCall *c = userdata;

        (void) sd_bus_emit_signal(c->server->bus, c->path, VB_STORAGE_VOL_INTERFACE, "Progress", "tt", done, total);
}

static void on_job_done(StorageVol *v, int64_t r, const VbError *e, void *userdata) {
        VolCall *c = userdata;

        if (c->reply_path && r >= 0 && v)
                (void) sd_bus_reply_method_return(c->message, "o", c->path);
        else
                bus_reply_later(c->message, r < 0 ? (int) r : 0, e);
        if (v)
                emit_sizes(c->server, v);
        vol_call_free(c);
}

static int on_caller_gone(sd_bus_track *t, void *userdata) {
        VolCall *c = userdata;
        StorageVol *v = bus_storage_vol_from_path(c->server, c->path);

        log_info("The caller of a job on '%s' went away: cancelling it.", c->path);
        if (v)
                storage_vol_cancel_job(v, sd_bus_message_get_sender(c->message));
        return 0;
}

/* A call on volume name of pool p (the one the job works on) that is answered later; its caller is
 * tracked. */
static int vol_call_new(BusServer *s, sd_bus_message *m, const StoragePool *p, const char *name, VolCall **ret) {
        VolCall *c = new0(VolCall, 1);
        int r;

        if (!c || !(c->path = vol_path(p, name))) {
                free(c);
                return -ENOMEM;
        }
        c->server = s;
        c->message = sd_bus_message_ref(m);
        r = sd_bus_track_new(s->bus, &c->track, on_caller_gone, c);
        if (r >= 0)
                r = sd_bus_track_add_sender(c->track, m);
        if (r < 0) {
                vol_call_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* After a job was asked for: r > 0, it runs and c answers when it ends; 0, done at once; < 0, refused. */
static int job_answer(BusServer *s, sd_bus_message *m, StorageVol *v, VolCall *c, int r, VbError *e,
                      sd_bus_error *error) {
        if (r > 0)
                return 1;
        vol_call_free(c);
        if (r < 0)
                return bus_reply_vb_error(error, e, r);
        emit_sizes(s, v);
        return sd_bus_reply_method_return(m, NULL);
}

static const StorageVolJobCallbacks job_callbacks = { .progress = on_job_progress, .done = on_job_done };

/* CreateVolume(s xml, t flags): a raw volume is answered at once; an image (qcow2) once qemu-img wrote it
 * in the job's thread (the event loop never waits for a child). */
int bus_storage_pool_method_create_volume(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        StoragePool *p = userdata;
        BusServer *s = p->registry->events.userdata;
        const char *sender = sd_bus_message_get_sender(m);
        VbError e = VB_ERROR_NULL;
        void *def = NULL;
        StorageVol *v;
        uint64_t flags;
        VolCall *c;
        uid_t uid;
        int r;

        r = bus_parse_document(s, m, &volume_spec, 0, p, &def, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = caller_uid(s, m, &uid, error);
        if (r >= 0)
                r = vol_call_new(s, m, p, ((StorageVolDef *) def)->name, &c);
        if (r < 0) {
                storage_vol_def_free(def);
                return r;
        }
        c->reply_path = true;
        r = storage_vol_create(p->registry, p, def, uid, sender, &job_callbacks, c, &v, &e);
        if (r < 0) {
                vol_call_free(c);
                return bus_reply_vb_error(error, &e, r);
        }
        /* Until it is written into, the volume is the caller's new one: see Upload. */
        (void) storage_vol_set_creator(v, sender);
        if (r > 0)
                return 1;
        vol_call_free(c);
        return bus_reply_path(m, bus_storage_vol_path(v));
}

/* Starts kind on v for m with fd (ours: a copy of the caller's, or -1); replies at once on failure. */
static int start_job(sd_bus_message *m, StorageVol *v, StorageJobKind kind, int fd, uint64_t offset, uint64_t length,
                     sd_bus_error *error) {
        BusServer *s = v->pool->registry->events.userdata;
        VbError e = VB_ERROR_NULL;
        VolCall *c;
        int r;

        if (kind != STORAGE_JOB_DOWNLOAD && manager_storage_vol_user(s->manager, v)) {
                if (fd >= 0)
                        close(fd);
                return sd_bus_error_setf(error, "org.virtbus1.Error.DeviceBusy",
                                         "Volume '%s' is a disk of running domain '%s'.", v->name,
                                         manager_storage_vol_user(s->manager, v));
        }
        r = vol_call_new(s, m, v->pool, v->name, &c);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        r = storage_vol_start_job(v->pool->registry, v, kind, fd, offset, length, sd_bus_message_get_sender(m),
                                  &job_callbacks, c, &e);
        return job_answer(s, m, v, c, r, &e, error);
}

static int method_transfer(sd_bus_message *m, StorageVol *v, StorageJobKind kind, sd_bus_error *error) {
        BusServer *s = v->pool->registry->events.userdata;
        const char *details[] = { "pool", v->pool->name, "volume", v->name, NULL };
        uint64_t offset, length, flags;
        int fd, copy, r;

        r = sd_bus_message_read(m, "httt", &fd, &offset, &length, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(s->polkit, m, VB_STORAGE_ACTION_MANAGE, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_use(s, m, v, kind == STORAGE_JOB_DOWNLOAD, error);
        if (r < 0)
                return r;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        return start_job(m, v, kind, copy, offset, length, error);
}

static int method_upload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_transfer(m, userdata, STORAGE_JOB_UPLOAD, error);
}

static int method_download(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return method_transfer(m, userdata, STORAGE_JOB_DOWNLOAD, error);
}

static int method_wipe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        StorageVol *v = userdata;
        BusServer *s = v->pool->registry->events.userdata;
        const char *details[] = { "pool", v->pool->name, "volume", v->name, NULL };
        int r;

        r = bus_begin_flags_call(s, m, 0, VB_STORAGE_ACTION_MANAGE, details, NULL, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_owner(s, m, v, error);
        if (r < 0)
                return r;
        return start_job(m, v, STORAGE_JOB_WIPE, -1, 0, 0, error);
}

static int method_resize(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        StorageVol *v = userdata;
        BusServer *s = v->pool->registry->events.userdata;
        const char *details[] = { "pool", v->pool->name, "volume", v->name, NULL };
        VbError e = VB_ERROR_NULL;
        uint64_t capacity, flags;
        VolCall *c;
        int r;

        r = sd_bus_message_read(m, "tt", &capacity, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, RESIZE_SHRINK, error);
        if (r < 0)
                return r;
        r = bus_polkit_check(s->polkit, m, VB_STORAGE_ACTION_MANAGE, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = check_owner(s, m, v, error);
        if (r < 0)
                return r;
        if (manager_storage_vol_user(s->manager, v))
                return sd_bus_error_setf(error, "org.virtbus1.Error.DeviceBusy", "Volume '%s' is a disk of running domain '%s'.",
                                         v->name, manager_storage_vol_user(s->manager, v));
        r = vol_call_new(s, m, v->pool, v->name, &c);
        if (r < 0)
                return r;
        /* A qcow2 is resized by qemu-img in a thread: the answer then comes when it is done. */
        r = storage_vol_resize(v->pool->registry, v, capacity, flags & RESIZE_SHRINK, sd_bus_message_get_sender(m),
                               &job_callbacks, c, &e);
        return job_answer(s, m, v, c, r, &e, error);
}

/* The source of CreateVolumeFrom: the volume at the call's object path argument. */
static StorageVol *clone_source(BusServer *s, sd_bus_message *m, const char *path, sd_bus_error *error) {
        StorageVol *source = path ? bus_storage_vol_from_path(s, path) : NULL;

        if (!source)
                sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchStorageVol", "Argument 'source': no volume at '%s'.",
                                  strna(path));
        return source;
}

/* After the new volume was authorized: polkit about the source too (details pool and volume). */
static int authorize_source(BusServer *s, sd_bus_message *m, const void *def, void *userdata, sd_bus_error *error) {
        StorageVol *source = clone_source(s, m, bus_parse_call_object(s, m), error);

        if (!source)
                return -ENOENT;
        return bus_polkit_check(s->polkit, m, VB_STORAGE_ACTION_MANAGE,
                                (const char *[]) { "pool", source->pool->name, "volume", source->name, NULL }, error);
}

/* As CreateVolume's, with the source ("sot") asked about once the new volume is allowed. */
static const BusParseSpec clone_spec = {
        .what = "volume description",
        .max = VOL_XML_MAX,
        .parse = parse_volume,
        .free = free_volume,
        .action = VB_STORAGE_ACTION_MANAGE,
        .detail_key = "volume",
        .name = volume_name,
        .context_key = "pool",
        .context = pool_name,
        .authorize_more = authorize_source,
        .object_arg = "source",
};

/* CreateVolumeFrom(s xml, o source, t flags): the description read and parsed off the event loop
 * (bus-parse.c), polkit asked about the new volume and then the source (details pool and volume of
 * each); answered with the new volume when its filling is done. */
int bus_storage_pool_method_create_volume_from(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        static const StorageVolJobCallbacks callbacks = { .progress = on_job_progress, .done = on_job_done };
        _cleanup_(storage_vol_def_freep) StorageVolDef *def = NULL;
        StoragePool *p = userdata;
        BusServer *s = p->registry->events.userdata;
        const char *source_path = NULL;
        VbError e = VB_ERROR_NULL;
        StorageVol *source, *v;
        uint64_t flags;
        void *parsed = NULL;
        VolCall *c;
        uid_t uid;
        int r;

        r = bus_parse_document_object(s, m, &clone_spec, 0, p, &parsed, &source_path, &flags, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        def = parsed;
        source = clone_source(s, m, source_path, error); /* it may have gone meanwhile */
        if (!source)
                return -ENOENT;
        r = caller_uid(s, m, &uid, error);
        if (r < 0)
                return r;
        if (manager_storage_vol_user(s->manager, source) && source->info.format != STORAGE_VOL_FORMAT_RAW)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "DeviceBusy",
                                         "Volume '%s' is a disk of running domain '%s': a qcow2 image in use cannot be "
                                         "cloned consistently.", source->name, manager_storage_vol_user(s->manager, source));
        /* The call waits for the job, following the new volume. */
        r = vol_call_new(s, m, p, def->name, &c);
        if (r < 0)
                return r;
        c->reply_path = true;
        r = storage_vol_clone(p->registry, p, TAKE_PTR(def), source, uid, sd_bus_message_get_sender(m), &callbacks, c,
                              &v, &e);
        if (r < 0) {
                vol_call_free(c);
                return bus_reply_vb_error(error, &e, r);
        }
        return 1;
}

static int property_get_pool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *p = bus_storage_pool_path(((StorageVol *) userdata)->pool);

        return p ? sd_bus_message_append(reply, "o", p) : -ENOMEM;
}

#define VOL_PROPERTY_GETTER(fn, sig, expr) BUS_PROPERTY_GETTER(fn, StorageVol, v, sig, expr)

VOL_PROPERTY_GETTER(property_get_name, "s", v->name);
VOL_PROPERTY_GETTER(property_get_key, "s", v->path);
VOL_PROPERTY_GETTER(property_get_path, "s", v->path);
VOL_PROPERTY_GETTER(property_get_type, "s", storage_vol_type_name(v));
VOL_PROPERTY_GETTER(property_get_format, "s", storage_vol_format_to_string(v->info.format));
VOL_PROPERTY_GETTER(property_get_capacity, "t", v->info.capacity);
VOL_PROPERTY_GETTER(property_get_allocation, "t", v->info.allocation);

static const sd_bus_vtable vol_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Key", "s", property_get_key, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Path", "s", property_get_path, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Type", "s", property_get_type, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Format", "s", property_get_format, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Capacity", "t", property_get_capacity, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Allocation", "t", property_get_allocation, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Pool", "o", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Delete", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_delete,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Wipe", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_wipe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resize", SD_BUS_ARGS("t", capacity, "t", flags), SD_BUS_NO_RESULT, method_resize,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Upload", SD_BUS_ARGS("h", fd, "t", offset, "t", length, "t", flags), SD_BUS_NO_RESULT,
                                method_upload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Download", SD_BUS_ARGS("h", fd, "t", offset, "t", length, "t", flags),
                                SD_BUS_NO_RESULT, method_download, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Progress", SD_BUS_ARGS("t", done, "t", total), 0),
        SD_BUS_VTABLE_END,
};

/* Calls to volumes that went away get a plain answer. */
static int vol_gate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *path = sd_bus_message_get_path(m);

        if (!bus_storage_vol_from_path(userdata, path) && !streq(path, VB_STORAGE_VOL_PREFIX) &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Introspectable", NULL))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No storage volume at %s", path);
        return 0;
}

int bus_storage_vol_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback(s->bus, NULL, VB_STORAGE_VOL_PREFIX, vol_gate, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the storage volume gate: %m");
        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_STORAGE_VOL_PREFIX, VB_STORAGE_VOL_INTERFACE, vol_vtable,
                                       find_vol, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the StorageVol objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_STORAGE_VOL_PREFIX, enumerate_vols, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the StorageVol enumerator: %m");
        return 0;
}
