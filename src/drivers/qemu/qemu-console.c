/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Consoles, displays and screenshots of a running QEMU (OpenConsole, OpenGraphics, Screenshot).
 *
 * virtbusd makes a socket pair, hands QEMU one end by descriptor and the caller the other; it never
 * sees a byte of what goes through. QEMU, unprivileged and shut in, opens no path for any of this but
 * /dev/null:
 *  - a serial port of type 'pty' starts writing into /dev/null (qemu-command-devices.c); OpenConsole
 *    swaps that (QMP chardev-change) for a socket connected to the caller. Taking a console over swaps it
 *    again: QEMU closes the previous socket and its holder reads end-of-file. Whether somebody holds it is
 *    what query-chardev says: "file" before the first session, "disconnected:..." once the holder closed
 *    its end. A closed session's socket needs no sink: QEMU drops what the port writes to a socket with
 *    nobody at the other end, and a port that waited on the session's socket is woken by its hang-up.
 *  - OpenGraphics: QMP getfd + add_client, as VNC's own listening socket would accept a client.
 *  - Screenshot: a memory file passed with add-fd, which QEMU reopens through /proc/self/fd (its own
 *    descriptor: a name nobody else can swap), written by screendump as PPM; virtbusd encodes the PNG in
 *    a worker thread (deflate level 1, no filtering: QEMU's own PNG encoder takes several times longer).
 *
 * Nothing here waits for QEMU: the QMP commands of one call are sent together (QEMU runs them in order)
 * and the last answer completes the call through its done callback. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "host/user-open.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/png.h"
#include "util/worker.h"

/* A PPM larger than this is refused (an 8K display is well below). */
#define SCREENSHOT_MAX (256U * 1024U * 1024U)
/* Screenshots queued for encoding at most; more fail. */
#define SCREENSHOT_QUEUE_MAX 16
/* Fastest: a guest's screen is mostly flat colour, which level 1 already shrinks well. */
#define SCREENSHOT_PNG_LEVEL 1

typedef enum ConsoleOpKind {
        OP_CONSOLE,
        OP_GRAPHICS,
        OP_SCREENSHOT,
} ConsoleOpKind;

struct QemuConsoleOp {
        QemuDriver *q;
        ConsoleOpKind kind;
        char uuid[37];
        char *domain; /* its name, for messages */
        char *label;  /* OP_CONSOLE: the chardev; OP_SCREENSHOT: the video device (NULL: the first) */
        char *path;   /* OP_CONSOLE: the socket QEMU listens on for it, NULL if QEMU's chardev is swapped */
        uid_t uid;    /* whose rights connect to path */
        char fdname[48];
        int fd;    /* the caller's end, until done takes it */
        QemuShotFile *file; /* OP_SCREENSHOT: what QEMU writes the PPM into */
        unsigned pending; /* QMP answers still to come */
        bool passed;   /* getfd / add-fd done: QEMU holds a descriptor of ours */
        bool encoding; /* in the worker: no longer waits for the domain */
        bool waiting;  /* OP_SCREENSHOT: behind another screenshot of the domain, for its file */
        int r;         /* the first failure, with code and message */
        VbErrorCode code;
        char *message;
        void *png;
        size_t png_size;
        VbDriverFdDone fd_done;
        VbDriverScreenshotDone shot_done;
        void *userdata;
        QemuConsoleOp *next;
};

/* The memory file QEMU writes a domain's screenshots into: one per QEMU, kept (emptied) for the next
 * screenshot as long as the QEMU lives. QEMU frees a descriptor of an -add-fd set only while the guest
 * runs (remove-fd of a paused guest's set leaves it open until QEMU exits), so a file per screenshot
 * would pile up there, and so would a file per screenshot under way: a screenshot asked for while
 * another of the same domain is taken or encoded waits for the file (at most SCREENSHOT_QUEUE_MAX). */
struct QemuShotFile {
        char uuid[37];
        pid_t pid;   /* of the QEMU that holds it */
        int memfd;   /* ours, read and write */
        int qemu_fd; /* QEMU's copy (its number there), -1 until add-fd answered */
        bool busy;
        QemuShotFile *next;
};

static void shot_file_free(QemuDriver *q, QemuShotFile *f) {
        for (QemuShotFile **i = &q->shot_files; *i; i = &(*i)->next)
                if (*i == f) {
                        *i = f->next;
                        break;
                }
        close(f->memfd);
        free(f);
}

/* The file for a screenshot of vm: the one QEMU has already, else a new one (qemu_fd -1). -EBUSY: another
 * screenshot of vm has it. */
static int shot_file_get(QemuDriver *q, const QemuVm *vm, QemuShotFile **ret) {
        QemuShotFile *f;

        for (f = q->shot_files; f; f = f->next)
                if (f->pid == vm->pid && streq(f->uuid, vm->uuid)) {
                        if (f->busy)
                                return -EBUSY;
                        f->busy = true;
                        *ret = f;
                        return 0;
                }
        f = new0(QemuShotFile, 1);
        if (!f)
                return -ENOMEM;
        *f = (QemuShotFile) { .pid = vm->pid, .qemu_fd = -1, .busy = true, .next = q->shot_files };
        snprintf(f->uuid, sizeof f->uuid, "%s", vm->uuid);
        f->memfd = memfd_create("virtbus-screenshot", MFD_CLOEXEC);
        if (f->memfd < 0) {
                free(f);
                return -errno;
        }
        q->shot_files = f;
        *ret = f;
        return 0;
}

static void screenshot_next(QemuDriver *q, const char *uuid);

/* Done with f: emptied for the next screenshot, or gone with its QEMU (or if QEMU never got it). */
static void shot_file_put(QemuDriver *q, QemuShotFile *f) {
        QemuVm *vm;

        if (!f)
                return;
        vm = hashmap_get(q->vms, f->uuid);
        f->busy = false;
        if (f->qemu_fd < 0 || !vm || vm->pid != f->pid || ftruncate(f->memfd, 0) < 0)
                shot_file_free(q, f);
        if (vm)
                screenshot_next(q, vm->uuid);
}

static QemuConsoleOp *op_free(QemuConsoleOp *op) {
        QemuConsoleOp **i;

        if (!op)
                return NULL;
        for (i = &op->q->console_ops; *i && *i != op; i = &(*i)->next)
                ;
        if (*i)
                *i = op->next;
        if (op->fd >= 0)
                close(op->fd);
        shot_file_put(op->q, op->file);
        free(op->domain);
        free(op->label);
        free(op->path);
        free(op->message);
        free(op->png);
        free(op);
        return NULL;
}

static QemuConsoleOp *op_new(QemuDriver *q, ConsoleOpKind kind, const QemuVm *vm) {
        static unsigned counter;
        QemuConsoleOp *op = new0(QemuConsoleOp, 1);

        if (!op)
                return NULL;
        *op = (QemuConsoleOp) { .q = q, .kind = kind, .fd = -1, .next = q->console_ops };
        q->console_ops = op;
        snprintf(op->uuid, sizeof op->uuid, "%s", vm->uuid);
        snprintf(op->fdname, sizeof op->fdname, "virtbus-console-%u", ++counter);
        op->domain = strdup(domain_def_get_name(vm->live));
        return op->domain ? op : op_free(op);
}

/* Keeps the first failure: what went wrong first explains the rest. */
static void op_failed(QemuConsoleOp *op, int r, VbErrorCode code, const char *format, ...) _printf_(4, 5);
static void op_failed(QemuConsoleOp *op, int r, VbErrorCode code, const char *format, ...) {
        va_list ap;

        if (op->r < 0)
                return;
        op->r = r;
        op->code = code;
        va_start(ap, format);
        if (vasprintf(&op->message, format, ap) < 0)
                op->message = NULL;
        va_end(ap);
}

/* Answers the caller (exactly once) and frees op. */
static void op_finish(QemuConsoleOp *op) {
        VbError e = VB_ERROR_NULL;
        int fd = -1;

        if (op->r < 0)
                vb_error_set(&e, op->code, "%s", op->message ?: strerror(-op->r));
        if (op->kind == OP_SCREENSHOT)
                op->shot_done(op->r, op->png, op->png_size, op->r < 0 ? &e : NULL, op->userdata);
        else {
                if (op->r >= 0) {
                        fd = op->fd;
                        op->fd = -1;
                }
                op->fd_done(op->r, fd, op->r < 0 ? &e : NULL, op->userdata);
        }
        vb_error_free(&e);
        op_free(op);
}

static QemuMonitor *monitor_of(QemuConsoleOp *op) {
        QemuVm *vm = hashmap_get(op->q->vms, op->uuid);
        return vm && vm->mon && qemu_monitor_is_open(vm->mon) ? vm->mon : NULL;
}

/* Sends a command of op's; a failure to send fails op. */
static int op_call(QemuConsoleOp *op, const char *command, struct json_object *args, int fd, QemuMonitorReplyFn cb) {
        QemuMonitor *mon = monitor_of(op);
        int r;

        if (!mon) {
                json_object_put(args);
                op_failed(op, -ESRCH, VB_ERROR_INVALID_STATE, "Domain '%s' stopped", op->domain);
                return -ESRCH;
        }
        r = qemu_monitor_call_fd(mon, command, args, fd, cb, op, NULL);
        if (r < 0) {
                op_failed(op, r, VB_ERROR_OPERATION_FAILED, "Failed to send '%s' to QEMU: %s", command, strerror(-r));
                return r;
        }
        op->pending++;
        return 0;
}

/* The start of a call went wrong: with nothing sent, it fails now (done is not called); otherwise the
 * answers still to come finish it. */
static int op_start_failed(QemuConsoleOp *op, int r, VbError *reterr) {
        if (op->pending > 0)
                return 0;
        vb_error_set(reterr, op->code, "%s", op->message ?: strerror(-r));
        op_free(op);
        return r;
}

static struct json_object *args_string(const char *key, const char *value) {
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, key, json_object_new_string(value));
        return args;
}

/* What QEMU answered to getfd: the answer to the command sent with it follows. */
static void on_getfd(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuConsoleOp *op = userdata;

        op->pending--;
        if (error)
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to pass a descriptor to QEMU: %s", error);
        else
                op->passed = true;
        /* The command meant to follow was never sent. */
        if (op->pending == 0)
                op_finish(op);
}

/* The answer to chardev-change or add_client: the call is complete. */
static void on_connected(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuConsoleOp *op = userdata;

        op->pending--;
        if (error)
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to %s of domain '%s': %s",
                          op->kind == OP_CONSOLE ? "connect the console" : "connect to the display", op->domain,
                          error);
        if (op->r < 0 && op->passed)
                (void) qemu_monitor_call(mon, "closefd", args_string("fdname", op->fdname), NULL, NULL);
        op_finish(op);
}

/* Sends getfd with QEMU's end of a new socket pair, and then command (args taken), which uses it. */
static int send_with_pair(QemuConsoleOp *op, const char *command, struct json_object *args) {
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                json_object_put(args);
                op_failed(op, -errno, VB_ERROR_OPERATION_FAILED, "Failed to make a socket pair: %m");
                return op->r;
        }
        op->fd = sv[1];
        r = op_call(op, "getfd", args_string("fdname", op->fdname), sv[0], on_getfd);
        /* Sent: QEMU has its own copy. */
        close(sv[0]);
        if (r < 0) {
                json_object_put(args);
                return r;
        }
        return op_call(op, command, args, -1, on_connected);
}

/* Consoles ------------------------------------------------------------------------------------- */

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

/* The socket chardev on op's descriptor, connected from the start, to put in the place of the present
 * one (and of the connection of whoever held it). */
static struct json_object *chardev_change_args(QemuConsoleOp *op) {
        struct json_object *args, *backend, *data, *addr;

        addr = json_object_new_object();
        json_object_object_add(addr, "type", json_object_new_string("fd"));
        json_object_object_add(addr, "data", args_string("str", op->fdname));
        data = json_object_new_object();
        json_object_object_add(data, "addr", addr);
        json_object_object_add(data, "server", json_object_new_boolean(false));
        backend = json_object_new_object();
        json_object_object_add(backend, "type", json_object_new_string("socket"));
        json_object_object_add(backend, "data", data);
        args = args_string("id", op->label);
        json_object_object_add(args, "backend", backend);
        return args;
}

/* Consoles QEMU listens for: a virtio console or channel or a parallel port (on a socket in virtbusd's
 * runtime directory), a serial port, console, channel or parallel port of type 'unix' with mode 'bind' (on
 * the definition's socket). OpenConsole connects to the socket as the owner of the definition would (the
 * service's own socket: as root); QEMU accepts one client at a time. Taking one over ends the connection
 * QEMU accepted and those still waiting to be: virtbusd takes copies of QEMU's sockets (pidfd_getfd, as
 * root may) and shuts them down, and both QEMU and the holder read end-of-file. */

/* Whether path (as getsockname gives it, len bytes) is the socket named by want. */
static bool sockaddr_is(const struct sockaddr_un *sa, socklen_t len, const char *want) {
        size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;

        return sa->sun_family == AF_UNIX && n > 0 && sa->sun_path[0] != 0 &&
               strnlen(sa->sun_path, n) == strlen(want) && strncmp(sa->sun_path, want, n) == 0;
}

/* Ends, on a copy of QEMU's listening socket bound at path, the connections QEMU has not accepted yet
 * (an earlier OpenConsole's, made while QEMU was still busy with the one before): left there, QEMU would
 * accept it after the present one ends, and the next client would wait behind it. Only when QEMU's
 * socket does not block (QEMU's are not): an accept must never wait. Returns how many. */
static int drain_backlog(int listen_fd) {
        int flags = fcntl(listen_fd, F_GETFL), n = 0;

        if (flags < 0 || !(flags & O_NONBLOCK))
                return 0;
        for (;;) {
                int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return n;
                (void) shutdown(c, SHUT_RDWR);
                close(c);
                n++;
        }
}

/* Ends the connections to the socket QEMU bound at path, accepted or still waiting in its backlog;
 * returns how many. The backlog is emptied first: a connection QEMU accepts meanwhile is in its
 * descriptor table by the time accept returns there, so the scan that follows sees it. */
static int kick_connections(const QemuVm *vm, const char *path) {
        char dir[64];
        int n = 0;

        if (vm->pidfd < 0)
                return -ESRCH;
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) vm->pid);
        for (unsigned pass = 0; pass < 2; pass++) {
                _cleanup_(closedirp) DIR *d = opendir(dir);

                if (!d)
                        return -errno;
                for (struct dirent *de; (de = readdir(d));) {
                        struct sockaddr_un sa = {};
                        socklen_t len = sizeof sa, olen;
                        char target[64];
                        int fd, listening = 0;
                        ssize_t k;

                        if (de->d_name[0] < '0' || de->d_name[0] > '9')
                                continue;
                        k = readlinkat(dirfd(d), de->d_name, target, sizeof target - 1);
                        if (k <= 0 || strncmp(target, "socket:", 7) != 0)
                                continue;
                        fd = pidfd_getfd(vm->pidfd, atoi(de->d_name), 0);
                        if (fd < 0)
                                continue;
                        olen = sizeof listening;
                        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) >= 0 &&
                            getsockname(fd, (struct sockaddr *) &sa, &len) >= 0 && sockaddr_is(&sa, len, path)) {
                                /* First pass: the listening socket's backlog; second: what QEMU accepted. */
                                if (pass == 0 && listening)
                                        n += drain_backlog(fd);
                                else if (pass == 1 && !listening && shutdown(fd, SHUT_RDWR) >= 0)
                                        n++;
                        }
                        close(fd);
                }
        }
        return n;
}

/* A connection to op->path: as root straight away (the runtime directory is root's alone), else with the
 * rights of whoever the definition's path belongs to. */
static int connect_as(QemuConsoleOp *op, int *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        HostOpenRequest req = { .path = op->path, .mode = HOST_OPEN_SOCKET_CONNECT, .no_symlinks = true, .fd = -1 };
        int fd, r;

        if (op->uid != 0) {
                r = host_open_as(op->uid, &req, 1);
                if (r >= 0)
                        r = req.error;
                if (r < 0)
                        return r;
                *ret = req.fd;
                return 0;
        }
        if (strlen(op->path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, op->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Never waits: a full backlog (clients QEMU has not accepted) is a busy console. */
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || fcntl(fd, F_SETFL, 0) < 0) {
                r = errno == EAGAIN ? -EBUSY : -errno;
                close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int console_connect(QemuConsoleOp *op) {
        int r = connect_as(op, &op->fd);

        if (r == -EBUSY)
                op_failed(op, r, VB_ERROR_DEVICE_BUSY, "Console '%s' of domain '%s' has clients waiting already",
                          op->label + strlen("char"), op->domain);
        else if (r < 0)
                op_failed(op, r, VB_ERROR_OPERATION_FAILED, "Failed to connect to the socket '%s' of console '%s': %s",
                          op->path, op->label + strlen("char"), strerror(-r));
        return r;
}

/* Whether query-chardev's answer says somebody holds op's chardev; -ENXIO if QEMU has none such. Free:
 * the sink a handed-over port starts on ("file"; "null" in a QEMU started by an older virtbusd, found
 * again after a restart), or a socket whose holder went. */
static int chardev_held(QemuConsoleOp *op, struct json_object *list) {
        for (size_t k = 0; list && json_object_is_type(list, json_type_array) && k < json_object_array_length(list);
             k++) {
                struct json_object *c = json_object_array_get_idx(list, k);
                const char *f = qemu_json_string(c, "filename");

                if (streq_ptr(qemu_json_string(c, "label"), op->label) && f)
                        return !streq(f, "file") && !streq(f, "null") &&
                               strncmp(f, "disconnected:", 13) != 0;
        }
        return -ENXIO;
}

static void on_query_chardev(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuConsoleOp *op = userdata;
        int held;

        op->pending--;
        if (error) {
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to ask QEMU about its character devices: %s",
                          error);
                op_finish(op);
                return;
        }
        held = chardev_held(op, ret);
        if (held < 0)
                op_failed(op, held, VB_ERROR_OPERATION_FAILED, "QEMU has no character device '%s'", op->label);
        else if (held)
                op_failed(op, -EBUSY, VB_ERROR_DEVICE_BUSY,
                          "Console '%s' of domain '%s' is open in another session (flag 1 takes it over)",
                          op->label + strlen("char"), op->domain);
        if (op->r >= 0 && op->path)
                (void) console_connect(op);
        else if (op->r >= 0)
                (void) send_with_pair(op, "chardev-change", chardev_change_args(op));
        if (op->pending == 0)
                op_finish(op);
}

/* Another OpenConsole of this console is under way. */
static bool console_opening(QemuDriver *q, const QemuConsoleOp *op) {
        for (QemuConsoleOp *o = q->console_ops; o; o = o->next)
                if (o != op && o->kind == OP_CONSOLE && streq(o->uuid, op->uuid) && streq(o->label, op->label))
                        return true;
        return false;
}

/* How OpenConsole reaches dev: QEMU's chardev swapped for a socket pair (*ret_path NULL), or a connection
 * to the socket *ret_path that QEMU listens on, with the rights of *ret_uid. */
static int check_console(const QemuVm *vm, const DeviceDef *dev, const DomainAccess *access, char **ret_path,
                         uid_t *ret_uid, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *name = domain_def_get_name(vm->live), *type, *ttype, *path, *mode;
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type") ?: "pty";
        ttype = qemu_node_attr(n, "target", "type");
        *ret_path = NULL;
        *ret_uid = 0;
        if (device_channel_is_guest_agent(dev))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is the guest agent's channel, which virtbusd itself speaks "
                                    "to (GetGuestInfo, InterfaceAddresses): it cannot be opened as a console",
                                    dev->alias, name);
        if (!qemu_chardev_is_handed_over(dev->kind, ttype) && !qemu_chardev_is_listened(dev->kind, ttype))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is a %s with target type '%s': serial ports, consoles, "
                                    "parallel ports and virtio channels can be opened",
                                    dev->alias, name, device_def_kind_name(dev), strempty(ttype));
        if (streq(type, "pty")) {
                if (qemu_chardev_is_handed_over(dev->kind, ttype))
                        return 0;
                r = qemu_vm_console_socket_path(vm, dev, ret_path);
                return r == -ENOENT ? vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                                   "Console '%s' of domain '%s' has no socket", dev->alias, name)
                                    : r;
        }
        path = qemu_node_attr(n, "source", "path");
        mode = qemu_node_attr(n, "source", "mode");
        if (streq(type, "file"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' writes into the file '%s' (type 'file') and reads nothing: "
                                    "read that file; a console that can be opened has type 'pty' (the default) or "
                                    "'unix' with mode 'bind'", dev->alias, name, strempty(path));
        if (streq(type, "tcp"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is a TCP socket (type 'tcp'), which anyone who reaches its "
                                    "address may use: connect there; a console that can be opened has type 'pty' "
                                    "(the default) or 'unix' with mode 'bind'", dev->alias, name);
        if (!streq(type, "unix") || !path)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is of type '%s': virtbus opens consoles of type 'pty' (the "
                                    "default) or 'unix' with mode 'bind'; this one goes where its <source> says",
                                    dev->alias, name, type);
        if (mode && streq(mode, "connect"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "'%s' of domain '%s' is connected to the socket '%s' (mode 'connect'): the program "
                                    "listening there holds the stream; only a socket QEMU listens on (mode 'bind') "
                                    "can be opened", dev->alias, name, path);
        *ret_path = strdup(path);
        *ret_uid = access ? domain_access_uid_for(access, path) : 0;
        return *ret_path ? 0 : -ENOMEM;
}

/* Takes the console over now: the holder's connection ends, and a new one is made. */
static int console_take(QemuConsoleOp *op, QemuVm *vm) {
        int r = kick_connections(vm, op->path);

        if (r < 0) {
                op_failed(op, r, VB_ERROR_OPERATION_FAILED, "Failed to end the session on console '%s' of domain "
                          "'%s': %s", op->label + strlen("char"), op->domain, strerror(-r));
                return r;
        }
        if (r > 0)
                log_debug("Domain '%s': %d connection(s) to '%s' ended.", op->domain, r, op->path);
        return console_connect(op);
}

int qemu_open_console(VbDriver *drv, const char *uuid, const DomainAccess *access, const char *device, bool force,
                      VbDriverFdDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_free_ char *path = NULL;
        const DeviceDef *dev;
        QemuConsoleOp *op;
        uid_t uid;
        int r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        dev = find_console(vm->live, device, reterr);
        if (!dev)
                return -ENODEV;
        r = check_console(vm, dev, access, &path, &uid, reterr);
        if (r < 0)
                return r;
        op = op_new(q, OP_CONSOLE, vm);
        if (!op || asprintf(&op->label, "char%s", dev->alias) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        op->path = TAKE_PTR(path);
        op->uid = uid;
        op->fd_done = done;
        op->userdata = userdata;
        if (!force && console_opening(q, op)) {
                op_free(op);
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                    "Console '%s' of domain '%s' is being opened in another session (flag 1 takes it "
                                    "over)", dev->alias, domain_def_get_name(vm->live));
        }
        if (!force)
                r = op_call(op, "query-chardev", NULL, -1, on_query_chardev);
        else if (op->path) {
                /* Nothing to wait for: answered now. */
                if (console_take(op, vm) < 0)
                        return op_start_failed(op, op->r, reterr);
                op_finish(op);
                return 0;
        } else
                r = send_with_pair(op, "chardev-change", chardev_change_args(op));
        return r < 0 ? op_start_failed(op, r, reterr) : 0;
}

int qemu_open_graphics(VbDriver *drv, const char *uuid, unsigned index, bool skip_auth, VbDriverFdDone done,
                       void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        const DeviceDef *dev = NULL;
        struct json_object *args;
        QemuConsoleOp *op;
        unsigned k = 0;
        int r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        for (size_t i = 0; i < vm->live->n_devices && !dev; i++)
                if (vm->live->devices[i]->kind == DEVICE_GRAPHICS && k++ == index)
                        dev = vm->live->devices[i];
        if (!dev)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "Domain '%s' has no <graphics> number %u (it has %u)",
                                    domain_def_get_name(vm->live), index, k);
        op = op_new(q, OP_GRAPHICS, vm);
        if (!op)
                return -ENOMEM;
        op->fd_done = done;
        op->userdata = userdata;
        args = args_string("protocol", "vnc");
        json_object_object_add(args, "fdname", json_object_new_string(op->fdname));
        json_object_object_add(args, "skipauth", json_object_new_boolean(skip_auth));
        r = send_with_pair(op, "add_client", args);
        return r < 0 ? op_start_failed(op, r, reterr) : 0;
}

/* Screenshots --------------------------------------------------------------------------------- */

/* In the worker: PPM in the memory file to PNG. */
static void encode_work(void *userdata) {
        QemuConsoleOp *op = userdata;
        const uint8_t *pixels;
        uint32_t w, h;
        struct stat st;
        void *map;
        int r;

        if (fstat(op->file->memfd, &st) < 0 || st.st_size <= 0 || (uint64_t) st.st_size > SCREENSHOT_MAX) {
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "QEMU wrote no usable screenshot (%lld bytes)",
                          (long long) st.st_size);
                return;
        }
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, op->file->memfd, 0);
        if (map == MAP_FAILED) {
                op_failed(op, -errno, VB_ERROR_OPERATION_FAILED, "Failed to map the screenshot: %m");
                return;
        }
        r = ppm_parse(map, (size_t) st.st_size, &w, &h, &pixels);
        if (r < 0)
                op_failed(op, r, VB_ERROR_OPERATION_FAILED, "QEMU wrote no usable screenshot (not a PPM image)");
        else {
                r = png_encode_rgb(pixels, w, h, (size_t) w * 3, SCREENSHOT_PNG_LEVEL, &op->png, &op->png_size);
                if (r < 0)
                        op_failed(op, r, VB_ERROR_OPERATION_FAILED, "Failed to encode the screenshot: %s",
                                  strerror(-r));
        }
        munmap(map, (size_t) st.st_size);
}

static void encode_done(void *userdata, bool cancelled) {
        QemuConsoleOp *op = userdata;

        if (cancelled)
                op_failed(op, -ECANCELED, VB_ERROR_OPERATION_FAILED, "The screenshot was not encoded: virtbusd stops");
        op_finish(op);
}

static void on_screendump(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata);

/* screendump writes the file through QEMU's own descriptor, named by QEMU's /proc (nothing another user
 * could put in its place). Not /dev/fdset/N: QEMU's PPM writer closes a descriptor it got from a set
 * without telling the set, which then never lets go of it. */
static int send_screendump(QemuConsoleOp *op) {
        struct json_object *args;
        char path[64];

        snprintf(path, sizeof path, "/proc/self/fd/%d", op->file->qemu_fd);
        args = args_string("filename", path);
        json_object_object_add(args, "format", json_object_new_string("ppm"));
        if (op->label)
                json_object_object_add(args, "device", json_object_new_string(op->label));
        return op_call(op, "screendump", args, -1, on_screendump);
}

static void on_add_fd(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuConsoleOp *op = userdata;
        struct json_object *fd = qemu_json_get(ret, "fd");

        op->pending--;
        if (error)
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to pass a descriptor to QEMU: %s", error);
        else if (!fd || !json_object_is_type(fd, json_type_int) || json_object_get_int(fd) < 0)
                op_failed(op, -EBADMSG, VB_ERROR_OPERATION_FAILED, "QEMU's answer to add-fd names no descriptor");
        else {
                op->file->qemu_fd = json_object_get_int(fd);
                (void) send_screendump(op);
        }
        if (op->pending == 0)
                op_finish(op);
}

static void on_screendump(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        QemuConsoleOp *op = userdata;
        int r;

        op->pending--;
        if (error)
                op_failed(op, -EIO, VB_ERROR_OPERATION_FAILED, "Failed to take a screenshot of domain '%s': %s",
                          op->domain, error);
        if (op->r < 0) {
                op_finish(op);
                return;
        }
        r = op->q->console_worker ? 0
                                  : worker_new(op->q->drv->cfg.event, 1, SCREENSHOT_QUEUE_MAX, 0, &op->q->console_worker);
        if (r >= 0)
                r = worker_submit(op->q->console_worker, encode_work, encode_done, op);
        if (r < 0) {
                op_failed(op, r, VB_ERROR_OPERATION_FAILED, "Failed to encode the screenshot: %s",
                          r == -EAGAIN ? "too many screenshots are being taken" : strerror(-r));
                op_finish(op);
                return;
        }
        op->encoding = true;
}

/* The video device of screen, NULL for the first (QEMU's default console); -ENODEV if there is none. */
static int find_screen(const QemuVm *vm, unsigned screen, const char **ret_video, VbError *reterr) {
        unsigned n_video = 0, n_graphics = 0;
        const char *video = NULL;

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
        *ret_video = screen > 0 ? video : NULL;
        return 0;
}

/* Sends op's first command with vm's file: screendump if QEMU has the file, add-fd before it if not. */
static int screenshot_send(QemuConsoleOp *op, QemuVm *vm) {
        struct json_object *args;
        char path[64];
        int wfd, r;

        if (op->file->qemu_fd >= 0)
                return send_screendump(op);
        args = json_object_new_object();
        json_object_object_add(args, "fdset-id", json_object_new_int((int) vm->next_fdset++));
        /* Write-only, as QEMU opens it. */
        snprintf(path, sizeof path, "/proc/self/fd/%d", op->file->memfd);
        wfd = open(path, O_WRONLY | O_CLOEXEC);
        if (wfd < 0) {
                json_object_put(args);
                op_failed(op, -errno, VB_ERROR_OPERATION_FAILED, "Failed to reopen a memory file: %m");
                return op->r;
        }
        r = op_call(op, "add-fd", args, wfd, on_add_fd);
        close(wfd);
        return r;
}

/* The screenshot of uuid that waited longest, if any, gets the file (console_ops is newest first). */
static void screenshot_next(QemuDriver *q, const char *uuid) {
        QemuConsoleOp *first = NULL;
        QemuVm *vm = hashmap_get(q->vms, uuid);
        int r;

        for (QemuConsoleOp *op = q->console_ops; op; op = op->next)
                if (op->kind == OP_SCREENSHOT && op->waiting && streq(op->uuid, uuid))
                        first = op;
        if (!first || !vm)
                return;
        r = shot_file_get(q, vm, &first->file);
        if (r == -EBUSY)
                return;
        first->waiting = false;
        if (r < 0)
                op_failed(first, r, VB_ERROR_OPERATION_FAILED, "Failed to make a memory file: %s", strerror(-r));
        else
                (void) screenshot_send(first, vm);
        if (first->pending == 0)
                op_finish(first);
}

int qemu_screenshot(VbDriver *drv, const char *uuid, unsigned screen, VbDriverScreenshotDone done, void *userdata,
                    VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        const char *video = NULL;
        QemuConsoleOp *op;
        unsigned waiting = 0;
        int r;

        if (!vm)
                return -ESRCH;
        if (!vm->mon)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "No connection to the QEMU of domain %s", uuid);
        r = find_screen(vm, screen, &video, reterr);
        if (r < 0)
                return r;
        for (QemuConsoleOp *o = q->console_ops; o; o = o->next)
                waiting += o->kind == OP_SCREENSHOT && o->waiting && streq(o->uuid, uuid);
        if (waiting >= SCREENSHOT_QUEUE_MAX)
                return vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED,
                                    "%u screenshots of domain '%s' wait already; try again later", waiting,
                                    domain_def_get_name(vm->live));
        op = op_new(q, OP_SCREENSHOT, vm);
        if (!op)
                return -ENOMEM;
        op->shot_done = done;
        op->userdata = userdata;
        if (video && !(op->label = strdup(video))) {
                op_free(op);
                return -ENOMEM;
        }
        r = shot_file_get(q, vm, &op->file);
        if (r == -EBUSY) {
                /* Answered when the one before it is done with the file. */
                op->waiting = true;
                return 0;
        }
        if (r < 0) {
                op_free(op);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a memory file: %s", strerror(-r));
        }
        r = screenshot_send(op, vm);
        return r < 0 ? op_start_failed(op, r, reterr) : 0;
}

/* The domain stopped: what waits for its QEMU fails (the monitor drops its pending answers without
 * calling back). Screenshots being encoded are no longer tied to it. */
void qemu_console_abort(QemuDriver *q, const char *uuid) {
        for (QemuConsoleOp *op = q->console_ops, *next; op; op = next) {
                next = op->next;
                if (op->encoding || !streq(op->uuid, uuid))
                        continue;
                op_failed(op, -ESRCH, VB_ERROR_INVALID_STATE, "Domain '%s' stopped before %s", op->domain,
                          op->kind == OP_SCREENSHOT ? "the screenshot was taken" : "the descriptor was handed over");
                op_finish(op);
                /* Finishing may have freed others (a caller's callback): start again from the head. */
                next = q->console_ops;
        }
        for (QemuShotFile *f = q->shot_files, *next; f; f = next) {
                next = f->next;
                if (!f->busy && streq(f->uuid, uuid))
                        shot_file_free(q, f);
        }
}

void qemu_console_close(QemuDriver *q) {
        /* Those waiting for a file are dropped with the rest, not started as files come free. */
        for (QemuConsoleOp *op = q->console_ops; op; op = op->next)
                op->waiting = false;
        /* Encodings still queued or done finish (cancelled or not), answering their callers. */
        q->console_worker = worker_free(q->console_worker);
        while (q->console_ops)
                op_free(q->console_ops);
        while (q->shot_files)
                shot_file_free(q, q->shot_files);
}
