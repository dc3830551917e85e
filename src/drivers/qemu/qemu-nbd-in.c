/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* copy-storage, the destination's part (driver.h's disks_create, disks_export, disks_end):
 *  - in a worker thread, each disk's image is created with the rights of whoever opens it
 *    (host/user-open.h create mode: O_EXCL, no link followed, so an existing file is never touched), as
 *    a sparse raw file of the size or a qcow2 image qemu-img writes into the descriptor;
 *  - once the domain waits paused for its state: a random key (TLS-PSK) goes into a directory of
 *    virtbusd's runtime directory (root's alone) that only QEMU's user may read, handed to QEMU as a
 *    descriptor (add-fd; QEMU names it /proc/self/fd/N, no path of ours), a tls-creds-psk object reads it,
 *    the NBD server listens on the socket core bound (getfd) with those credentials, and each disk is
 *    exported writable under its target name. A client without the key fails the TLS handshake;
 *  - at the end the exports, the server, the credentials and the key go; on failure the created files too.
 * The key never crosses the network: the client gives it to the source over the buses. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-paths.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-nbd.h"
#include "drivers/qemu/qemu-sequence.h"
#include "drivers/storage-backend.h"
#include "host/process.h"
#include "host/user-open.h"
#include "util/log.h"
#include "util/worker.h"

#define CREATE_TIMEOUT_MS (60 * 1000)
#define NBD_FD_NAME "virtbus-nbd"

typedef struct InDisk {
        char *target, *path, *format, *node;
        uint64_t size;
        uint32_t uid;
        int fd; /* the file we created (kept: its removal checks it is still the same file) */
        bool created;
} InDisk;

struct QemuNbdIn {
        QemuDriver *q;
        char uuid[37];
        InDisk *v;
        size_t n;
        int r;
        VbError e;
        bool remove;  /* the worker's task: remove the created files */
        bool dropped; /* the caller no longer waits (disks_end, the driver closing) */
        VbDriverOpDone done;
        VbDriverExportDone export_done;
        void *userdata;
        int listen_fd, dir_fd;
        char *psk_dir;
        char key[QEMU_NBD_KEY_HEX + 1];
        bool exported;
        int fdset;           /* QEMU's set holding the key's directory, -1 before add-fd */
        bool seq_running;    /* a command list of the export runs: its callback has j */
        bool end_pending;    /* disks_end came meanwhile: the callback finishes it (end_remove: the files go) */
        bool end_remove;
        QemuNbdIn *next;
};

static void nbd_in_end(QemuNbdIn *j, bool remove);

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static QemuNbdIn *nbd_in_of(QemuDriver *q, const char *uuid) {
        for (QemuNbdIn *j = q->nbd_in; j; j = j->next)
                if (streq(j->uuid, uuid))
                        return j;
        return NULL;
}

static void nbd_in_free(QemuNbdIn *j) {
        QemuNbdIn **i;

        for (i = &j->q->nbd_in; *i && *i != j; i = &(*i)->next)
                ;
        if (*i)
                *i = j->next;
        for (size_t k = 0; k < j->n; k++) {
                if (j->v[k].fd >= 0)
                        close(j->v[k].fd);
                free(j->v[k].target);
                free(j->v[k].path);
                free(j->v[k].format);
                free(j->v[k].node);
        }
        free(j->v);
        if (j->listen_fd >= 0)
                close(j->listen_fd);
        if (j->dir_fd >= 0)
                close(j->dir_fd);
        if (j->psk_dir)
                qemu_nbd_psk_remove(j->psk_dir);
        free(j->psk_dir);
        explicit_bzero(j->key, sizeof j->key);
        vb_error_free(&j->e);
        free(j);
}

/* The key and its directory (shared with the source's side) ------------------------------------------ */

/* The server's Diffie-Hellman group: RFC 7919's ffdhe2048, a published standard group. Without it QEMU
 * makes a new 2048-bit group when the credentials are made, which takes seconds of CPU (minutes on a busy
 * host) while its monitor does not answer. */
static const char dh_params_pem[] =
        "-----BEGIN DH PARAMETERS-----\n"
        "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
        "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
        "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
        "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
        "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
        "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
        "-----END DH PARAMETERS-----\n";

int qemu_nbd_key_new(char ret[static QEMU_NBD_KEY_HEX + 1]) {
        uint8_t bytes[QEMU_NBD_KEY_HEX / 2];

        if (getrandom(bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes)
                return -EIO;
        for (size_t i = 0; i < sizeof bytes; i++)
                snprintf(ret + 2 * i, 3, "%02x", bytes[i]);
        explicit_bzero(bytes, sizeof bytes);
        return 0;
}

bool qemu_nbd_key_valid(const char *key) {
        if (!key || strlen(key) != QEMU_NBD_KEY_HEX)
                return false;
        for (; *key; key++)
                if (!strchr("0123456789abcdef", *key))
                        return false;
        return true;
}

/* dir/dh-params.pem for QEMU's user (the server side). */
static int write_dh_params(int dfd, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = openat(dfd, "dh-params.pem", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                                        0600);
        size_t len = sizeof dh_params_pem - 1;

        if (fd < 0 || write(fd, dh_params_pem, len) != (ssize_t) len || (uid != 0 && fchown(fd, uid, gid) < 0))
                return -errno ?: -EIO;
        return 0;
}

int qemu_nbd_psk_make(QemuDriver *q, const char *uuid, const char *side, const char *key, char **ret_dir,
                      int *ret_fd) {
        _cleanup_free_ char *dir = NULL, *file = NULL, *line = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        uid_t uid = q->confinement.uid;
        gid_t gid = q->confinement.gid;
        size_t len;

        if (asprintf(&dir, "%s/%s.nbd-%s", q->runtime_dir, uuid, side) < 0 ||
            asprintf(&file, "%s/keys.psk", dir) < 0 || asprintf(&line, QEMU_NBD_PSK_USER ":%s\n", key) < 0)
                return -ENOMEM;
        qemu_nbd_psk_remove(dir); /* a leftover of a run cut short */
        if (mkdir(dir, 0700) < 0)
                return -errno;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        len = strlen(line);
        if (dfd < 0 || fd < 0 || write(fd, line, len) != (ssize_t) len ||
            (uid != 0 && (fchown(fd, uid, gid) < 0 || fchown(dfd, uid, gid) < 0))) {
                int r = -errno ?: -EIO;

                explicit_bzero(line, len);
                qemu_nbd_psk_remove(dir);
                return r;
        }
        explicit_bzero(line, len);
        if (streq(side, "in") && write_dh_params(dfd, uid, gid) < 0) {
                int r = -errno ?: -EIO;

                qemu_nbd_psk_remove(dir);
                return r;
        }
        *ret_dir = TAKE_PTR(dir);
        *ret_fd = dfd;
        dfd = -EBADF;
        return 0;
}

void qemu_nbd_psk_remove(const char *dir) {
        _cleanup_free_ char *file = NULL, *dh = NULL;

        if (asprintf(&file, "%s/keys.psk", dir) < 0 || asprintf(&dh, "%s/dh-params.pem", dir) < 0)
                return;
        (void) unlink(file);
        (void) unlink(dh);
        (void) rmdir(dir);
}

/* In the worker: create or remove ---------------------------------------------------------------------- */

static int write_qcow2(const InDisk *d, VbError *e) {
        char file[32], sz[32];
        const char *argv[] = { storage_qemu_img_path(), "create", "-q", "-f", "qcow2", file, sz, NULL };
        int keep[] = { d->fd }, status = 0, r;
        pid_t pid;

        snprintf(file, sizeof file, "/dev/fd/%d", d->fd);
        snprintf(sz, sizeof sz, "%" PRIu64, d->size);
        r = host_process_spawn(argv, -1, keep, 1, &pid);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        r = host_process_wait_timeout(pid, CREATE_TIMEOUT_MS, &status);
        if (r == -ETIMEDOUT)
                return vb_error_set(e, VB_ERROR_TIMEOUT, "qemu-img create of '%s' took over %d s", d->path,
                                    CREATE_TIMEOUT_MS / 1000);
        if (r < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s", strerror(-r));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "qemu-img failed to create '%s' of disk '%s' "
                                    "(status %d)", d->path, d->target, status);
        return 0;
}

static int disk_create(InDisk *d, VbError *e) {
        int r;

        r = host_open_one_as(d->uid, d->path, HOST_OPEN_CREATE, &d->fd);
        if (r < 0) {
                char whose[48] = "";

                if (d->uid != 0)
                        snprintf(whose, sizeof whose, " with the rights of uid %u", d->uid);
                return vb_error_set(e, r == -EEXIST ? VB_ERROR_ALREADY_EXISTS :
                                    r == -EACCES || r == -EPERM || r == -ELOOP ? VB_ERROR_ACCESS_DENIED :
                                    VB_ERROR_OPERATION_FAILED, "Cannot create '%s' for disk '%s'%s: %s", d->path,
                                    d->target, whose, r == -EEXIST ? "the file exists already on this host (copy-storage "
                                    "makes a new one)" : strerror(-r));
        }
        d->created = true;
        if (streq(d->format, "qcow2"))
                return write_qcow2(d, e);
        if (ftruncate(d->fd, (off_t) d->size) < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to size '%s' of disk '%s': %m", d->path,
                                    d->target);
        return 0;
}

/* Removes a file we created: through its directory opened with its creator's rights, and only if the name
 * still is that file. */
static void disk_remove(InDisk *d) {
        _cleanup_close_ int dfd = -EBADF;
        const char *base;
        int r;

        if (!d->created || d->fd < 0 || host_open_parent_as(d->uid, d->path, &dfd, &base) < 0)
                return;
        r = host_unlinkat_if_same(dfd, base, d->fd);
        if (r == -ESTALE)
                return;
        if (r < 0)
                log_warning_errno(r, "Failed to remove '%s', ignoring: %m", d->path);
        else
                log_info("Removed '%s' (disk '%s' of a migration that did not finish).", d->path, d->target);
        d->created = false;
}

static void work(void *userdata) {
        QemuNbdIn *j = userdata;
        int r = 0;

        if (j->remove) {
                for (size_t k = 0; k < j->n; k++)
                        disk_remove(&j->v[k]);
                return;
        }
        for (size_t k = 0; k < j->n && r >= 0; k++)
                r = disk_create(&j->v[k], &j->e);
        if (r < 0)
                for (size_t k = 0; k < j->n; k++)
                        disk_remove(&j->v[k]);
        j->r = r;
}

static void after_remove(void *userdata, bool cancelled);

static void on_created(void *userdata, bool cancelled) {
        QemuNbdIn *j = userdata;
        VbDriverOpDone done = j->done;
        void *done_userdata = j->userdata;
        VbError e;

        j->done = NULL;
        if (cancelled && j->r >= 0)
                j->r = vb_error_set(&j->e, VB_ERROR_OPERATION_FAILED, "The disks were not created: the service is "
                                    "stopping");
        if (j->dropped || !done) {
                /* Ended meanwhile: what was made goes again. */
                j->remove = true;
                if (j->r < 0 || !j->q->snap_worker || worker_submit(j->q->snap_worker, work, after_remove, j) < 0)
                        nbd_in_free(j);
                return;
        }
        if (j->r < 0) {
                e = j->e;
                j->e = VB_ERROR_NULL;
                nbd_in_free(j);
                done(-EIO, &e, done_userdata);
                vb_error_free(&e);
                return;
        }
        log_info("Domain %s: %zu disk(s) created for an incoming migration.", j->uuid, j->n);
        done(0, NULL, done_userdata);
}

static void after_remove(void *userdata, bool cancelled) {
        nbd_in_free(userdata);
}

/* The ops ----------------------------------------------------------------------------------------------- */

int qemu_nbd_disk_check(const DeviceDef *dev, bool source, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *target = device_disk_get_target(dev), *format = device_disk_get_format(dev) ?: "raw";
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        if (!streq(qemu_node_attr(n, NULL, "type") ?: "file", "file"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is not a file: copy-storage copies "
                                    "file disks only", strempty(target));
        if (!streq(format, "raw") && !streq(format, "qcow2"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is '%s': copy-storage copies 'raw' "
                                    "and 'qcow2' images", strempty(target), format);
        if (!source && qemu_disk_depth(dev) != 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' has a backing chain "
                                    "(<backingStore>) in the destination's definition: copy-storage copies the "
                                    "source's chain flattened into one image, which the destination's definition "
                                    "is to name alone", strempty(target));
        return 0;
}

int qemu_disks_create(VbDriver *drv, const DomainDef *def, const DomainAccess *access, const VbMigrateDisk *disks,
                      size_t n, VbDriverOpDone done, void *userdata, VbError *reterr) {
        QemuDriver *q = drv->priv;
        char uuid[37];
        QemuNbdIn *j;
        int r = 0;

        domain_def_get_uuid_string(def, uuid);
        if (nbd_in_of(q, uuid))
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "The disks of domain %s are being copied already",
                                    uuid);
        r = qemu_snap_worker_start(q);
        if (r < 0)
                return r;
        j = new0(QemuNbdIn, 1);
        if (!j)
                return -ENOMEM;
        *j = (QemuNbdIn) { .q = q, .done = done, .userdata = userdata, .e = VB_ERROR_NULL, .listen_fd = -1,
                           .dir_fd = -1, .fdset = -1, .next = q->nbd_in };
        q->nbd_in = j;
        snprintf(j->uuid, sizeof j->uuid, "%s", uuid);
        j->v = new0(InDisk, n + 1);
        if (!j->v)
                r = -ENOMEM;
        for (size_t k = 0; k < n && r >= 0; k++) {
                const DeviceDef *dev = domain_def_find_disk(def, disks[k].target);
                InDisk *d = &j->v[j->n];

                if (!dev || !device_disk_is_writable_image(dev)) {
                        r = vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "'%s' is not a writable disk of the "
                                         "domain", disks[k].target);
                        break;
                }
                r = qemu_nbd_disk_check(dev, false, reterr);
                if (r < 0)
                        break;
                *d = (InDisk) { .fd = -1, .size = disks[k].size };
                j->n++;
                if (!(d->target = strdup(disks[k].target)) || !(d->path = strdup(device_disk_get_source(dev))) ||
                    !(d->format = strdup(device_disk_get_format(dev) ?: "raw")))
                        r = -ENOMEM;
                d->uid = domain_access_uid_for(access, d->path);
        }
        if (r >= 0)
                r = worker_submit(q->snap_worker, work, on_created, j);
        if (r < 0) {
                if (r == -EAGAIN)
                        r = vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many disk operations wait already");
                nbd_in_free(j);
                return r;
        }
        return 0;
}

static void on_exported(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuNbdIn *j = userdata;
        VbDriverExportDone done = j->export_done;

        j->seq_running = false;
        j->export_done = NULL;
        if (j->end_pending) {
                nbd_in_end(j, j->end_remove);
                return;
        }
        if (j->dropped || !done)
                return;
        if (r >= 0) {
                j->exported = true;
                log_info("Domain %s: %zu disk(s) exported for an incoming migration.", j->uuid, j->n);
        }
        done(r, r >= 0 ? j->key : NULL, e, j->userdata);
}

static void on_dir_added(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuNbdIn *j = userdata;
        VbDriverExportDone done = j->export_done;
        QemuVm *vm = hashmap_get(j->q->vms, j->uuid);
        struct json_object *reply = qemu_seq_reply(seq, 0), *args, *addr, *data;
        VbError e2 = VB_ERROR_NULL;
        char dir[64];
        QemuSeq *next;

        j->seq_running = false;
        if (j->end_pending) {
                nbd_in_end(j, j->end_remove);
                return;
        }
        if (j->dropped)
                return;
        if (r >= 0 && (!vm || !vm->mon || !(next = qemu_seq_new(vm))))
                r = vb_error_set(&e2, VB_ERROR_OPERATION_FAILED, "Domain %s stopped before its disks were exported",
                                 j->uuid);
        if (r < 0) {
                j->export_done = NULL;
                done(r, NULL, e ?: &e2, j->userdata);
                vb_error_free(&e2);
                return;
        }
        snprintf(dir, sizeof dir, "/proc/self/fd/%d", json_object_get_int(qemu_json_get(reply, "fd")));
        j->fdset = json_object_get_int(qemu_json_get(reply, "fdset-id"));
        args = json_object_new_object();
        json_object_object_add(args, "qom-type", json_object_new_string("tls-creds-psk"));
        json_object_object_add(args, "id", json_object_new_string(QEMU_NBD_TLS_ID));
        json_object_object_add(args, "endpoint", json_object_new_string("server"));
        json_object_object_add(args, "dir", json_object_new_string(dir));
        qemu_seq_add(next, "load the key for the disks' export", "object-add", args);
        args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(NBD_FD_NAME));
        qemu_seq_add_fd(next, "hand the NBD socket to QEMU", "getfd", args, j->listen_fd);
        args = json_object_new_object();
        addr = json_object_new_object();
        data = json_object_new_object();
        json_object_object_add(data, "str", json_object_new_string(NBD_FD_NAME));
        json_object_object_add(addr, "type", json_object_new_string("fd"));
        json_object_object_add(addr, "data", data);
        json_object_object_add(args, "addr", addr);
        json_object_object_add(args, "tls-creds", json_object_new_string(QEMU_NBD_TLS_ID));
        qemu_seq_add(next, "start the NBD server", "nbd-server-start", args);
        for (size_t k = 0; k < j->n; k++) {
                _cleanup_free_ char *id = NULL;

                if (asprintf(&id, "virtbus-nbd-%s", j->v[k].target) < 0)
                        id = NULL;
                args = json_object_new_object();
                json_object_object_add(args, "type", json_object_new_string("nbd"));
                json_object_object_add(args, "id", json_object_new_string(strempty(id)));
                json_object_object_add(args, "node-name", json_object_new_string(j->v[k].node));
                json_object_object_add(args, "name", json_object_new_string(j->v[k].target));
                json_object_object_add(args, "writable", json_object_new_boolean(true));
                qemu_seq_add(next, "export a disk", "block-export-add", args);
        }
        r = qemu_seq_run(next, qemu_vm_command_timeout(vm), on_exported, j, &e2);
        j->seq_running = r >= 0;
        if (r < 0) {
                j->export_done = NULL;
                done(r, NULL, &e2, j->userdata);
                vb_error_free(&e2);
        }
}

int qemu_disks_export(VbDriver *drv, const char *uuid, int listen_fd, VbDriverExportDone done, void *userdata,
                      VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuNbdIn *j = nbd_in_of(q, uuid);
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        struct json_object *args;
        QemuSeq *seq;
        int r;

        if (!vm) {
                close(listen_fd);
                return -ESRCH;
        }
        if (!j || j->exported || j->export_done || !vm->mon) {
                close(listen_fd);
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain %s has no created disks to export", uuid);
        }
        j->listen_fd = listen_fd;
        for (size_t k = 0; k < j->n; k++) {
                const DeviceDef *dev = domain_def_find_disk(vm->live, j->v[k].target);

                free(j->v[k].node);
                j->v[k].node = NULL;
                if (!dev || !dev->alias || qemu_disk_top_node(dev, dev->alias, &j->v[k].node) < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Disk '%s' has no node in QEMU",
                                            j->v[k].target);
        }
        r = qemu_nbd_key_new(j->key);
        if (r >= 0)
                r = qemu_nbd_psk_make(q, uuid, "in", j->key, &j->psk_dir, &j->dir_fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make the key of the disks' export: "
                                    "%s", strerror(-r));
        seq = qemu_seq_new(vm);
        if (!seq)
                return -ENOMEM;
        args = json_object_new_object();
        json_object_object_add(args, "opaque", json_object_new_string("virtbus-nbd-key"));
        qemu_seq_add_fd(seq, "hand the key to QEMU", "add-fd", args, j->dir_fd);
        j->export_done = done;
        j->userdata = userdata;
        r = qemu_seq_run(seq, qemu_vm_command_timeout(vm), on_dir_added, j, reterr);
        j->seq_running = r >= 0;
        if (r < 0)
                j->export_done = NULL;
        return r;
}

void qemu_disks_end(VbDriver *drv, const char *uuid, bool remove) {
        QemuNbdIn *j = nbd_in_of(drv->priv, uuid);

        if (!j || j->end_pending)
                return;
        j->dropped = true;
        j->export_done = NULL;
        if (j->seq_running) {
                /* Its callback still has j: it ends it then. */
                j->end_pending = true;
                j->end_remove = remove;
                return;
        }
        nbd_in_end(j, remove);
}

static void nbd_in_end(QemuNbdIn *j, bool remove) {
        QemuDriver *q = j->q;
        QemuVm *vm = hashmap_get(q->vms, j->uuid);
        QemuSeq *seq;

        j->end_pending = false;
        if (vm && vm->mon && !vm->exited && (seq = qemu_seq_new(vm))) {
                struct json_object *args;

                /* Nothing writes through the server any more: the source ended its mirrors and removed its
                 * NBD nodes before its MigrateTo answered. */
                for (size_t k = 0; k < j->n; k++) {
                        _cleanup_free_ char *id = NULL;

                        if (asprintf(&id, "virtbus-nbd-%s", j->v[k].target) < 0)
                                continue;
                        args = json_object_new_object();
                        json_object_object_add(args, "id", json_object_new_string(id));
                        json_object_object_add(args, "mode", json_object_new_string("hard"));
                        qemu_seq_add_optional(seq, "block-export-del", args);
                }
                qemu_seq_add_optional(seq, "nbd-server-stop", NULL);
                args = json_object_new_object();
                json_object_object_add(args, "id", json_object_new_string(QEMU_NBD_TLS_ID));
                qemu_seq_add_optional(seq, "object-del", args);
                if (j->fdset >= 0) {
                        args = json_object_new_object();
                        json_object_object_add(args, "fdset-id", json_object_new_int(j->fdset));
                        qemu_seq_add_optional(seq, "remove-fd", args);
                }
                (void) qemu_seq_run(seq, qemu_vm_command_timeout(vm), NULL, NULL, NULL);
        }
        if (j->psk_dir) {
                qemu_nbd_psk_remove(j->psk_dir);
                free(j->psk_dir);
                j->psk_dir = NULL;
        }
        if (j->done)
                return; /* still creating: on_created frees it (and its failure removed what it made) */
        if (remove && q->snap_worker) {
                j->remove = true;
                if (worker_submit(q->snap_worker, work, after_remove, j) >= 0)
                        return;
        }
        nbd_in_free(j);
}

void qemu_nbd_in_close(QemuDriver *q) {
        while (q->nbd_in) {
                QemuNbdIn *j = q->nbd_in;

                if (j->done) {
                        /* The worker still has it; its completion frees it. */
                        j->dropped = true;
                        q->nbd_in = j->next;
                        j->next = NULL;
                        continue;
                }
                nbd_in_free(j);
        }
}
