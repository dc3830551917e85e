/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal snapshots of a stopped domain's qcow2 disks: qemu-img snapshot -c/-a/-d on each disk, opened
 * with the rights of whoever the definition says opens it (host/user-open.h) and given to qemu-img as
 * /dev/fd/N, so that the service never acts on a user's path with its own rights. Images with a backing
 * file or an external data file are refused (qemu-img would open those paths itself). A running domain
 * (QMP snapshot-save and friends) is not supported yet. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "conf/domain-conf.h"
#include "conf/domain-paths.h"
#include "conf/snapshot-conf.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/storage-backend.h"
#include "host/process.h"
#include "host/user-open.h"
#include "util/log.h"

#define QEMU_IMG_SNAPSHOT_TIMEOUT_MS (60 * 1000)

typedef struct SnapDisk {
        const char *target, *path;
        int fd;
} SnapDisk;

static int run_qemu_img(const char *op, const char *name, const SnapDisk *disk, VbError *reterr) {
        char file[32];
        const char *argv[] = { storage_qemu_img_path(), "snapshot", "-q", op, name, file, NULL };
        int keep[] = { disk->fd }, status = 0, pidfd, r;
        pid_t pid;

        snprintf(file, sizeof file, "/dev/fd/%d", disk->fd);
        r = host_process_spawn(argv, -1, keep, 1, &pid);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        pidfd = host_process_open_fd(pid);
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                r = poll(&p, 1, QEMU_IMG_SNAPSHOT_TIMEOUT_MS);
                if (r == 0) {
                        (void) host_process_terminate(pid, pidfd, 1000000);
                        close(pidfd);
                        return vb_error_set(reterr, VB_ERROR_TIMEOUT, "qemu-img snapshot %s on disk '%s' took over %d s",
                                            op, disk->target, QEMU_IMG_SNAPSHOT_TIMEOUT_MS / 1000);
                }
                close(pidfd);
        }
        if (waitpid(pid, &status, 0) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "qemu-img snapshot %s '%s' failed on disk '%s' ('%s', status %d)", op, name,
                                    disk->target, disk->path, status);
        return 0;
}

static uint64_t be64_at(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* A qcow2 image without a backing file or an external data file: qemu-img then opens nothing but the
 * descriptor (both would be paths it opened itself, with the service's rights). */
static int check_image(const SnapDisk *disk, VbError *reterr) {
        uint8_t h[80] = {};
        ssize_t n = pread(disk->fd, h, sizeof h, 0);
        uint32_t version = (uint32_t) h[4] << 24 | (uint32_t) h[5] << 16 | (uint32_t) h[6] << 8 | h[7];

        if (n < 72 || memcmp(h, "QFI\xfb", 4) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Disk '%s' ('%s') is not a qcow2 image",
                                    disk->target, disk->path);
        if (be64_at(h + 8) != 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' ('%s') has a backing file: internal "
                                    "snapshots of such images are not supported yet", disk->target, disk->path);
        /* Incompatible feature bit 2: the data lives in an external file. */
        if (version >= 3 && (n < 80 || (be64_at(h + 72) & UINT64_C(4))))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' ('%s') keeps its data in an external "
                                    "file: not supported", disk->target, disk->path);
        return 0;
}

static void disks_close(SnapDisk *disks, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (disks[i].fd >= 0)
                        close(disks[i].fd);
}

/* The disks the snapshot covers, opened read-write as their owner and checked. */
static int disks_open(const DomainDef *def, const SnapshotDef *snap, const DomainAccess *owner, SnapDisk **ret,
                      size_t *ret_n, VbError *reterr) {
        DeviceDef *const *devs;
        size_t n_devs = domain_def_get_devices(def, &devs), n = 0;
        _cleanup_free_ SnapDisk *disks = new0(SnapDisk, n_devs + 1);
        int r = 0;

        if (!disks)
                return -ENOMEM;
        for (size_t i = 0; i < n_devs && r >= 0; i++) {
                const char *target = device_disk_get_target(devs[i]), *path = device_disk_get_source(devs[i]);
                const char *format = device_disk_get_format(devs[i]);
                HostOpenRequest req = { .path = path, .mode = HOST_OPEN_READ_WRITE, .fd = -1 };

                if (devs[i]->kind != DEVICE_DISK || !path || !target ||
                    snapshot_def_disk_mode(snap, target, SNAPSHOT_MODE_INTERNAL) == SNAPSHOT_MODE_NO)
                        continue;
                if (!streq_ptr(format, "qcow2")) {
                        r = vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Disk '%s' is '%s': internal snapshots need qcow2 "
                                         "(or <disk name='%s' snapshot='no'/> in the snapshot)", target,
                                         format ?: "raw", target);
                        break;
                }
                r = host_open_as(domain_access_uid_for(owner, path), &req, 1);
                if (r >= 0 && req.error < 0)
                        r = req.error;
                if (r < 0) {
                        r = vb_error_set(reterr, VB_ERROR_ACCESS_DENIED, "Cannot open disk '%s' ('%s') for its "
                                         "snapshot: %s", target, path, strerror(-r));
                        break;
                }
                disks[n++] = (SnapDisk) { .target = target, .path = path, .fd = req.fd };
                r = check_image(&disks[n - 1], reterr);
        }
        if (r < 0) {
                disks_close(disks, n);
                return r;
        }
        *ret = TAKE_PTR(disks);
        *ret_n = n;
        return 0;
}

static int not_running(bool running, const char *what, VbError *reterr) {
        if (running)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "The qemu driver cannot %s a running domain's "
                                    "snapshot yet: stop the domain first", what);
        return 0;
}

int qemu_snapshot_create(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ SnapDisk *disks = NULL;
        size_t n = 0;
        int r;

        if ((r = not_running(running, "take", reterr)) < 0 ||
            (r = disks_open(def, snap, owner, &disks, &n, reterr)) < 0)
                return r;
        if (n == 0) {
                disks_close(disks, n);
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "No qcow2 disk to take snapshot '%s' of",
                                    snap->name);
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = run_qemu_img("-c", snap->name, &disks[i], reterr);
                /* All or nothing: the disks done already drop it again. */
                for (size_t k = 0; r < 0 && k < i; k++)
                        (void) run_qemu_img("-d", snap->name, &disks[k], NULL);
        }
        disks_close(disks, n);
        return r;
}

int qemu_snapshot_revert(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ SnapDisk *disks = NULL;
        size_t n = 0;
        int r;

        if ((r = not_running(running, "revert to", reterr)) < 0 ||
            (r = disks_open(def, snap, owner, &disks, &n, reterr)) < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = run_qemu_img("-a", snap->name, &disks[i], reterr);
        disks_close(disks, n);
        return r;
}

int qemu_snapshot_delete(VbDriver *drv, const DomainDef *def, bool running, const SnapshotDef *snap,
                         const DomainAccess *owner, VbError *reterr) {
        _cleanup_free_ SnapDisk *disks = NULL;
        size_t n = 0;
        int r;

        if ((r = not_running(running, "delete", reterr)) < 0 ||
            (r = disks_open(def, snap, owner, &disks, &n, reterr)) < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = run_qemu_img("-d", snap->name, &disks[i], reterr);
        disks_close(disks, n);
        return r;
}
