/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Consoles, displays and screenshots of a running QEMU (OpenConsole, OpenGraphics, Screenshot).
 *
 * virtbusd makes a socket pair, hands QEMU one end by descriptor and the caller the other; it never
 * sees a byte of what goes through. QEMU, unprivileged and shut in, opens no path for any of this:
 *  - a serial port of type 'pty' starts with a null backend (qemu-command-devices.c); OpenConsole swaps
 *    it (QMP chardev-change) for a socket connected to the caller. Taking a console over swaps it again:
 *    QEMU closes the previous socket and its holder reads end-of-file. Whether somebody holds it is what
 *    query-chardev says: "disconnected:..." once the holder closed its end.
 *  - OpenGraphics: QMP getfd + add_client, as VNC's own listening socket would accept a client.
 *  - Screenshot: a memory file passed with add-fd, which QEMU reopens through /proc/self/fd (its own
 *    descriptor: a name nobody else can swap), written by screendump in PNG and read back here. The
 *    wait for QEMU is asynchronous. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "util/log.h"

/* As qemu-process.c waits for QEMU's answers. */
#define QEMU_COMMAND_TIMEOUT_USEC (10 * 1000 * 1000ULL)
/* A PNG larger than this is refused (a 8K display is well below). */
#define SCREENSHOT_MAX (64U * 1024U * 1024U)

static const DeviceDef *find_alias(const DomainDef *live, const char *alias) {
        for (size_t i = 0; i < live->n_devices; i++) {
                const DeviceDef *d = live->devices[i];
                if ((d->kind == DEVICE_SERIAL || d->kind == DEVICE_CONSOLE || d->kind == DEVICE_CHANNEL ||
                     d->kind == DEVICE_PARALLEL) && streq_ptr(d->alias, alias))
                        return d;
        }
        return NULL;
}

/* The device named device, "" the first console (a <console>, else the first <serial>). */
static const DeviceDef *find_console(const DomainDef *live, const char *device, VbError *reterr) {
        const char *name = domain_def_get_name(live);
        const DeviceDef *found = NULL;

        if (isempty(device)) {
                for (size_t i = 0; i < live->n_devices && !found; i++)
                        if (live->devices[i]->kind == DEVICE_CONSOLE)
                                found = live->devices[i];
                for (size_t i = 0; i < live->n_devices && !found; i++)
                        if (live->devices[i]->kind == DEVICE_SERIAL)
                                found = live->devices[i];
                if (!found)
                        return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain '%s' has no console or serial port",
                                            name), NULL;
                /* A serial console is the serial port itself. */
                return find_alias(live, found->alias) ?: found;
        }
        found = find_alias(live, device);
        if (!found)
                vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE,
                             "Domain '%s' has no console, serial port or channel with alias '%s'", name, device);
        return found;
}

/* Whether somebody holds the chardev with this label now. */
static int chardev_held(QemuVm *vm, const char *label, bool *ret, VbError *reterr) {
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        int r;

        r = qemu_vm_command(vm, "ask QEMU about its character devices", "query-chardev", NULL, &list, reterr);
        if (r < 0)
                return r;
        for (size_t k = 0; list && json_object_is_type(list, json_type_array) && k < json_object_array_length(list);
             k++) {
                struct json_object *c = json_object_array_get_idx(list, k);
                const char *f = qemu_json_string(c, "filename");

                if (!streq_ptr(qemu_json_string(c, "label"), label) || !f)
                        continue;
                *ret = !streq(f, "null") && strncmp(f, "disconnected:", 13) != 0;
                return 0;
        }
        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "QEMU has no character device '%s'", label);
}

/* Passes fd to QEMU under name (getfd). */
static int pass_fd(QemuVm *vm, const char *name, int fd, VbError *reterr) {
        _cleanup_free_ char *err = NULL;
        struct json_object *args = json_object_new_object();
        int r;

        if (!vm->mon) {
                json_object_put(args);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to QEMU");
        }
        json_object_object_add(args, "fdname", json_object_new_string(name));
        r = qemu_monitor_call_sync_fd(vm->mon, "getfd", args, fd, QEMU_COMMAND_TIMEOUT_USEC, NULL, &err);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to pass a descriptor to QEMU: %s",
                                    err ?: strerror(-r));
        return 0;
}

static void forget_fd(QemuVm *vm, const char *name) {
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "fdname", json_object_new_string(name));
        (void) qemu_monitor_call(vm->mon, "closefd", args, NULL, NULL);
}

static int make_pair(int sv[2], VbError *reterr) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a socket pair: %m");
        return 0;
}

int qemu_open_console(VbDriver *drv, const char *uuid, const char *device, bool force, int *ret_fd,
                      VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(drv->priv, uuid, reterr);
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *label = NULL, *fdname = NULL;
        struct json_object *args, *backend, *data, *addr, *addr_data;
        const char *name, *type, *ttype;
        const DeviceDef *dev;
        bool held = false;
        int sv[2], r;

        if (!vm)
                return -ESRCH;
        name = domain_def_get_name(vm->live);
        dev = find_console(vm->live, device, reterr);
        if (!dev)
                return -ENODEV;
        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type") ?: "pty";
        ttype = qemu_node_attr(n, "target", "type");
        if (!qemu_chardev_is_handed_over(dev->kind, ttype))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is a %s with target type '%s': only serial ports and serial "
                                    "consoles can be opened (QEMU cannot hand over the character device of a virtio "
                                    "console, a channel or a parallel port)",
                                    dev->alias, name, device_def_kind_name(dev), strempty(ttype));
        if (!streq(type, "pty"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is of type '%s': only a serial port of type 'pty' (the "
                                    "default) is opened by virtbus; this one goes where its <source> says",
                                    dev->alias, name, type);
        if (asprintf(&label, "char%s", dev->alias) < 0 || asprintf(&fdname, "console-%s", dev->alias) < 0)
                return -ENOMEM;
        if (!force) {
                r = chardev_held(vm, label, &held, reterr);
                if (r < 0)
                        return r;
                if (held)
                        return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                            "Console '%s' of domain '%s' is open in another session (flag 1 takes it "
                                            "over)", dev->alias, name);
        }
        r = make_pair(sv, reterr);
        if (r < 0)
                return r;
        r = pass_fd(vm, fdname, sv[0], reterr);
        close(sv[0]);
        if (r < 0) {
                close(sv[1]);
                return r;
        }
        /* A socket chardev on the descriptor, connected from the start; the previous one (and the
         * connection of whoever held it) goes. */
        addr_data = json_object_new_object();
        json_object_object_add(addr_data, "str", json_object_new_string(fdname));
        addr = json_object_new_object();
        json_object_object_add(addr, "type", json_object_new_string("fd"));
        json_object_object_add(addr, "data", addr_data);
        data = json_object_new_object();
        json_object_object_add(data, "addr", addr);
        json_object_object_add(data, "server", json_object_new_boolean(false));
        backend = json_object_new_object();
        json_object_object_add(backend, "type", json_object_new_string("socket"));
        json_object_object_add(backend, "data", data);
        args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(label));
        json_object_object_add(args, "backend", backend);
        r = qemu_vm_command(vm, "connect the console", "chardev-change", args, NULL, reterr);
        if (r < 0) {
                forget_fd(vm, fdname);
                close(sv[1]);
                return r;
        }
        *ret_fd = sv[1];
        return 0;
}

int qemu_open_graphics(VbDriver *drv, const char *uuid, unsigned index, bool skip_auth, int *ret_fd,
                       VbError *reterr) {
        QemuVm *vm = qemu_driver_find_vm(drv->priv, uuid, reterr);
        const DeviceDef *dev = NULL;
        struct json_object *args;
        unsigned k = 0;
        int sv[2], r;

        if (!vm)
                return -ESRCH;
        for (size_t i = 0; i < vm->live->n_devices && !dev; i++)
                if (vm->live->devices[i]->kind == DEVICE_GRAPHICS && k++ == index)
                        dev = vm->live->devices[i];
        if (!dev)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain '%s' has no <graphics> number %u (it has %u)",
                                    domain_def_get_name(vm->live), index, k);
        r = make_pair(sv, reterr);
        if (r < 0)
                return r;
        r = pass_fd(vm, "graphics", sv[0], reterr);
        close(sv[0]);
        if (r < 0) {
                close(sv[1]);
                return r;
        }
        args = json_object_new_object();
        json_object_object_add(args, "protocol", json_object_new_string("vnc"));
        json_object_object_add(args, "fdname", json_object_new_string("graphics"));
        json_object_object_add(args, "skipauth", json_object_new_boolean(skip_auth));
        r = qemu_vm_command(vm, "connect to the display", "add_client", args, NULL, reterr);
        if (r < 0) {
                forget_fd(vm, "graphics");
                close(sv[1]);
                return r;
        }
        *ret_fd = sv[1];
        return 0;
}

/* Screenshots --------------------------------------------------------------------------------- */

struct QemuShot {
        QemuDriver *q;
        char uuid[37];
        int memfd;
        unsigned fdset;
        VbDriverScreenshotDone done;
        void *userdata;
        struct QemuShot *next;
};

static QemuShot *shot_free(QemuShot *s) {
        QemuShot **i;

        for (i = &s->q->shots; *i && *i != s; i = &(*i)->next)
                ;
        if (*i)
                *i = s->next;
        if (s->memfd >= 0)
                close(s->memfd);
        free(s);
        return NULL;
}

static void shot_fail(QemuShot *s, int r, const char *what, const char *detail) {
        VbError e = VB_ERROR_NULL;

        vb_error_set(&e, r == -ESRCH ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED, "%s: %s", what, detail);
        s->done(r, NULL, 0, &e, s->userdata);
        vb_error_free(&e);
}

static void on_screendump(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuShot *s = userdata;
        struct json_object *args = json_object_new_object();
        _cleanup_free_ void *png = NULL;
        struct stat st;
        ssize_t k;

        /* QEMU closed the file it opened; the set goes. */
        json_object_object_add(args, "fdset-id", json_object_new_int((int) s->fdset));
        (void) qemu_monitor_call(mon, "remove-fd", args, NULL, NULL);
        if (error) {
                shot_fail(s, -EIO, "Failed to take a screenshot", error);
                shot_free(s);
                return;
        }
        if (fstat(s->memfd, &st) < 0 || st.st_size <= 0 || (uint64_t) st.st_size > SCREENSHOT_MAX ||
            !(png = malloc((size_t) st.st_size)) ||
            (k = pread(s->memfd, png, (size_t) st.st_size, 0)) != (ssize_t) st.st_size) {
                shot_fail(s, -EIO, "Failed to read the screenshot back", "QEMU wrote no usable image");
                shot_free(s);
                return;
        }
        s->done(0, png, (size_t) st.st_size, NULL, s->userdata);
        shot_free(s);
}

void qemu_screenshots_abort(QemuDriver *q, const char *uuid) {
        for (QemuShot *s = q->shots, *next; s; s = next) {
                next = s->next;
                if (!streq(s->uuid, uuid))
                        continue;
                shot_fail(s, -ESRCH, "No screenshot", "the domain stopped before it was taken");
                shot_free(s);
        }
}

int qemu_screenshot(VbDriver *drv, const char *uuid, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                    VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(json_object_putp) struct json_object *added = NULL;
        _cleanup_free_ char *err = NULL, *target = NULL;
        const char *video = NULL;
        struct json_object *args;
        unsigned n_video = 0, n_graphics = 0;
        char twin[64];
        QemuShot *s;
        int wfd, r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                const DeviceDef *d = vm->live->devices[i];
                if (d->kind == DEVICE_GRAPHICS)
                        n_graphics++;
                if (d->kind == DEVICE_VIDEO && n_video++ == screen)
                        video = d->alias;
        }
        /* A display with no <video> got QEMU's VGA: screen 0. */
        if (n_video == 0 && n_graphics > 0 && screen == 0)
                n_video = 1;
        if (screen >= n_video)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain '%s' has no screen %u (it has %u)",
                                    domain_def_get_name(vm->live), screen, n_video);
        s = new0(QemuShot, 1);
        if (!s)
                return -ENOMEM;
        *s = (QemuShot) { .q = q, .memfd = -1, .done = done, .userdata = userdata, .fdset = vm->next_fdset++ };
        strcpy(s->uuid, uuid);
        s->next = q->shots;
        q->shots = s;
        s->memfd = memfd_create("virtbus-screenshot", MFD_CLOEXEC);
        if (s->memfd < 0) {
                shot_free(s);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a memory file: %m");
        }
        /* Write-only, as QEMU opens it. */
        snprintf(twin, sizeof twin, "/proc/self/fd/%d", s->memfd);
        wfd = open(twin, O_WRONLY | O_CLOEXEC);
        if (wfd < 0) {
                shot_free(s);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to reopen a memory file: %m");
        }
        args = json_object_new_object();
        json_object_object_add(args, "fdset-id", json_object_new_int((int) s->fdset));
        r = qemu_monitor_call_sync_fd(vm->mon, "add-fd", args, wfd, QEMU_COMMAND_TIMEOUT_USEC, &added, &err);
        close(wfd);
        if (r < 0) {
                shot_free(s);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to pass a descriptor to QEMU: %s",
                                    err ?: strerror(-r));
        }
        /* QEMU's own descriptor, by its own /proc: nothing another user could put in its place. */
        if (asprintf(&target, "/proc/self/fd/%d", json_object_get_int(qemu_json_get(added, "fd"))) < 0) {
                shot_free(s);
                return -ENOMEM;
        }
        args = json_object_new_object();
        json_object_object_add(args, "filename", json_object_new_string(target));
        json_object_object_add(args, "format", json_object_new_string("png"));
        if (video && screen > 0)
                json_object_object_add(args, "device", json_object_new_string(video));
        r = qemu_monitor_call(vm->mon, "screendump", args, on_screendump, s);
        if (r < 0) {
                args = json_object_new_object();
                json_object_object_add(args, "fdset-id", json_object_new_int((int) s->fdset));
                (void) qemu_monitor_call(vm->mon, "remove-fd", args, NULL, NULL);
                shot_free(s);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to ask QEMU for a screenshot: %s",
                                    strerror(-r));
        }
        return 0;
}
