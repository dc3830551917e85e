/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The 'dir' storage backend: a directory of image files. Raw volumes are sparse files; qcow2 ones are made
 * by qemu-img (Debian's qemu-utils) writing into a file we created, through its descriptor. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/storage-backend.h"
#include "host/process.h"
#include "util/macro.h"
#include "util/log.h"

#define QEMU_IMG_TIMEOUT_MS 30000

/* "<what>: <strerror(err)>" with code. */
#define vb_error_set_errno(e, code, err, format, ...) \
        vb_error_set(e, code, format ": %s", ##__VA_ARGS__, strerror(err))

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

int storage_open_beneath(int dir_fd, const char *name, int flags, mode_t mode) {
        struct open_how how = {
                .flags = (uint64_t) flags | O_CLOEXEC | O_NOFOLLOW,
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dir_fd, name, &how, sizeof how);

        return fd < 0 ? -errno : (int) fd;
}

const char *storage_qemu_img_path(void) {
        const char *p = getenv("VIRTBUS_QEMU_IMG");

        return p && p[0] == '/' ? p : "/usr/bin/qemu-img";
}

static int dir_build(const StoragePoolDef *def, VbError *reterr) {
        if (mkdir(def->target_path, 0711) < 0 && errno != EEXIST)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to create '%s'",
                                          def->target_path);
        return 0;
}

static int dir_remove(const StoragePoolDef *def, VbError *reterr) {
        if (rmdir(def->target_path) < 0 && errno != ENOENT) {
                if (errno == ENOTEMPTY || errno == EEXIST)
                        return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                            "Pool directory '%s' is not empty (delete its volumes first).",
                                            def->target_path);
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to remove '%s'",
                                          def->target_path);
        }
        return 0;
}

static int dir_start(const StoragePoolDef *def, int *ret_fd, VbError *reterr) {
        int fd = open(def->target_path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return vb_error_set_errno(reterr, errno == ENOENT ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED,
                                          errno, "Cannot open the pool directory '%s'%s", def->target_path,
                                          errno == ENOENT ? " (Build makes it)" : "");
        *ret_fd = fd;
        return 0;
}

static int dir_pool_info(int pool_fd, StoragePoolInfo *ret) {
        struct statvfs sv;

        if (fstatvfs(pool_fd, &sv) < 0)
                return -errno;
        ret->capacity = (uint64_t) sv.f_blocks * sv.f_frsize;
        ret->available = (uint64_t) sv.f_bavail * sv.f_frsize;
        ret->allocation = ret->capacity - (uint64_t) sv.f_bfree * sv.f_frsize;
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static int dir_list_volumes(int pool_fd, char ***ret_names, size_t *ret_n) {
        _cleanup_free_ char **names = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        fd = storage_open_beneath(pool_fd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] == '.' || storage_vol_name_check(de->d_name, NULL) < 0)
                        continue;
                /* Only regular files are volumes: a symlink someone planted is not one. */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (!GREEDY_REALLOC(names, allocated, n + 1) || !(names[n] = strdup(de->d_name))) {
                        for (size_t i = 0; i < n; i++)
                                free(names[i]);
                        closedir(d);
                        return -ENOMEM;
                }
                n++;
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof(char *), compare_names);
        *ret_names = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

static uint64_t be64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

static int dir_vol_info(int pool_fd, const char *name, StorageVolInfo *ret, VbError *reterr) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t header[32];
        struct stat st;
        ssize_t n;

        fd = storage_open_beneath(pool_fd, name, O_RDONLY | O_NONBLOCK, 0);
        if (fd < 0)
                return vb_error_set_errno(reterr, fd == -ENOENT ? VB_ERROR_NO_SUCH_STORAGE_VOL : VB_ERROR_OPERATION_FAILED,
                                          -fd, "Cannot open volume '%s'", name);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Volume '%s' is not a regular file.", name);
        *ret = (StorageVolInfo) {
                .format = STORAGE_VOL_FORMAT_RAW,
                .capacity = (uint64_t) st.st_size,
                .allocation = (uint64_t) st.st_blocks * 512,
                .owner = st.st_uid,
        };
        n = pread(fd, header, sizeof header, 0);
        if (n == (ssize_t) sizeof header && memcmp(header, "QFI\xfb", 4) == 0) {
                ret->format = STORAGE_VOL_FORMAT_QCOW2;
                ret->capacity = be64(header + 24);
        }
        return 0;
}

/* qemu-img into the file behind fd (passed as /dev/fd/N): qemu-img never opens a path of the pool itself,
 * so nothing it does can follow a symlink. Bounded: qemu-img writes a few clusters. Waits for it. */
static int wait_qemu_img(const char * const *argv, int fd, const char *verb, const char *name, VbError *reterr) {
        _cleanup_close_ int pidfd = -EBADF;
        int keep[] = { fd }, status = 0, r;
        pid_t pid;

        r = host_process_spawn(argv, -1, keep, 1, &pid);
        if (r < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, -r, "Failed to run '%s'", argv[0]);
        pidfd = host_process_open_fd(pid);
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                if (poll(&p, 1, QEMU_IMG_TIMEOUT_MS) == 0) {
                        (void) host_process_terminate(pid, pidfd, 1000000);
                        return vb_error_set(reterr, VB_ERROR_TIMEOUT, "qemu-img did not %s volume '%s' within %d s.",
                                            verb, name, QEMU_IMG_TIMEOUT_MS / 1000);
                }
        }
        if (waitpid(pid, &status, 0) < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to wait for qemu-img");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "qemu-img failed to %s volume '%s' (status %d).",
                                    verb, name, status);
        return 0;
}

static int run_qemu_img(int fd, const char *verb, const char *name, uint64_t capacity, bool shrink, VbError *reterr) {
        char target[32], size[32];
        const char *create[] = { storage_qemu_img_path(), "create", "-q", "-f", "qcow2", target, size, NULL };
        const char *resize[] = { storage_qemu_img_path(), "resize", "-q", "-f", "qcow2", target, size, NULL, NULL };
        const char **argv = streq(verb, "create") ? create : resize;

        snprintf(target, sizeof target, "/dev/fd/%d", fd);
        snprintf(size, sizeof size, "%" PRIu64, capacity);
        if (shrink) {
                resize[5] = "--shrink";
                resize[6] = target;
                resize[7] = size;
        }
        return wait_qemu_img(argv, fd, verb, name, reterr);
}

/* A qcow2 overlay of backing (a file of backing_format): -u, so that qemu-img records the backing file's
 * name without opening it (it would, as root); core checked it is a volume and gave its format and the
 * capacity (a Wipe: the overlay's own header named them). */
static int create_overlay(int fd, const char *name, const char *backing, StorageVolFormat backing_format,
                          uint64_t capacity, VbError *reterr) {
        char target[32], size[32];
        const char *argv[] = { storage_qemu_img_path(), "create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F",
                               storage_vol_format_to_string(backing_format), target, size, NULL };

        snprintf(target, sizeof target, "/dev/fd/%d", fd);
        snprintf(size, sizeof size, "%" PRIu64, capacity);
        return wait_qemu_img(argv, fd, "create", name, reterr);
}

static int dir_vol_create(int pool_fd, const StorageVolDef *def, uid_t owner, VbError *reterr) {
        StorageVolFormat format = def->format_given ? def->format : STORAGE_VOL_FORMAT_RAW;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (format != STORAGE_VOL_FORMAT_RAW && format != STORAGE_VOL_FORMAT_QCOW2)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Volume format '%s' is not supported in a 'dir' pool (expected 'raw' or 'qcow2').",
                                    storage_vol_format_to_string(format));
        if (def->backing_path && format != STORAGE_VOL_FORMAT_QCOW2)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Volume '%s': a <backingStore> needs <target><format type='qcow2'/> (an overlay), not '%s'.",
                                    def->name, storage_vol_format_to_string(format));
        fd = storage_open_beneath(pool_fd, def->name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd == -EEXIST || fd == -ELOOP)
                return vb_error_set(reterr, VB_ERROR_ALREADY_EXISTS, "Volume '%s' already exists in the pool%s.", def->name,
                                    fd == -ELOOP ? " (as a symlink)" : "");
        if (fd < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, -fd, "Failed to create volume '%s'", def->name);
        /* An image format is written later by dir_vol_format (qemu-img: off the event loop). */
        if (format == STORAGE_VOL_FORMAT_RAW)
                r = ftruncate(fd, (off_t) def->capacity.bytes) < 0
                            ? vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to size volume '%s'",
                                                 def->name)
                            : 0;
        else
                r = 1;
        /* The volume is its creator's file: a domain of another user cannot be given it. */
        if (r >= 0 && owner != 0 && fchown(fd, owner, (gid_t) -1) < 0)
                r = vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to give volume '%s' to uid %u",
                                       def->name, (unsigned) owner);
        if (r < 0)
                (void) unlinkat(pool_fd, def->name, 0); /* nothing half-made stays */
        return r;
}

static int dir_vol_format(int fd, const char *name, StorageVolFormat format, uint64_t capacity, const char *backing,
                          StorageVolFormat backing_format, VbError *reterr) {
        if (format != STORAGE_VOL_FORMAT_QCOW2)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Volume '%s': format '%s' is not an image format.",
                                    name, storage_vol_format_to_string(format));
        if (backing)
                return create_overlay(fd, name, backing, backing_format, capacity, reterr);
        return run_qemu_img(fd, "create", name, capacity, false, reterr);
}

static int dir_vol_delete(int pool_fd, const char *name, VbError *reterr) {
        _cleanup_close_ int dfd = storage_open_beneath(pool_fd, ".", O_RDONLY | O_DIRECTORY, 0);

        if (dfd < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, -dfd, "Cannot open the pool directory");
        /* unlinkat removes the name itself, never what a symlink points to. */
        if (unlinkat(dfd, name, 0) < 0)
                return vb_error_set_errno(reterr, errno == ENOENT ? VB_ERROR_NO_SUCH_STORAGE_VOL : VB_ERROR_OPERATION_FAILED,
                                          errno, "Failed to delete volume '%s'", name);
        return 0;
}

static int dir_vol_open(int pool_fd, const char *name, int flags, VbError *reterr) {
        struct stat st;
        int fd;

        fd = storage_open_beneath(pool_fd, name, flags | O_NONBLOCK, 0);
        if (fd < 0)
                return vb_error_set_errno(reterr, fd == -ENOENT ? VB_ERROR_NO_SUCH_STORAGE_VOL : VB_ERROR_OPERATION_FAILED,
                                          -fd, "Cannot open volume '%s'", name);
        /* O_NONBLOCK only kept a FIFO planted under the name from blocking the open. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK & ~O_ACCMODE) < 0) {
                close(fd);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Volume '%s' is not a regular file.", name);
        }
        return fd;
}

static int dir_vol_resize(int pool_fd, const char *name, uint64_t capacity, bool shrink, VbError *reterr) {
        _cleanup_close_ int fd = -EBADF;
        StorageVolInfo info;
        int r;

        r = dir_vol_info(pool_fd, name, &info, reterr);
        if (r < 0)
                return r;
        if (capacity < info.capacity && !shrink)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Volume '%s' holds %" PRIu64 " bytes: making it smaller needs the shrink flag.", name,
                                    info.capacity);
        if (capacity == 0)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A volume's capacity cannot be 0.");
        fd = dir_vol_open(pool_fd, name, O_RDWR, reterr);
        if (fd < 0)
                return fd;
        if (info.format == STORAGE_VOL_FORMAT_QCOW2)
                return run_qemu_img(fd, "resize", name, capacity, capacity < info.capacity, reterr);
        if (ftruncate(fd, (off_t) capacity) < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to resize volume '%s'", name);
        return 0;
}

static int dir_vol_backing(int pool_fd, const char *name, char **ret_path, StorageVolFormat *ret_format) {
        _cleanup_close_ int fd = storage_open_beneath(pool_fd, name, O_RDONLY | O_NONBLOCK, 0);

        *ret_path = NULL;
        *ret_format = STORAGE_VOL_FORMAT_NONE;
        if (fd < 0)
                return fd;
        return storage_image_read_backing(fd, ret_path, ret_format);
}

/* An overlay stays an overlay of the same backing file: only its own data goes (the guest then sees the
 * backing image again, as right after the overlay was made). */
static int dir_vol_reformat(int pool_fd, const char *name, VbError *reterr) {
        _cleanup_free_ char *backing = NULL;
        StorageVolFormat backing_format;
        _cleanup_close_ int fd = -EBADF;
        StorageVolInfo info;
        int r;

        r = dir_vol_info(pool_fd, name, &info, reterr);
        if (r < 0)
                return r;
        if (info.format != STORAGE_VOL_FORMAT_QCOW2)
                return 0;
        fd = dir_vol_open(pool_fd, name, O_RDWR, reterr);
        if (fd < 0)
                return fd;
        r = storage_image_read_backing(fd, &backing, &backing_format);
        if (r < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, -r,
                                          "Failed to read the backing file volume '%s' names", name);
        if (backing && backing_format == STORAGE_VOL_FORMAT_NONE)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Volume '%s' is an overlay of '%s' but does not record that file's format: it "
                                    "cannot be wiped without losing the link (expected a backing format in its header).",
                                    name, backing);
        /* Checked before anything changes: from here on the old contents go. */
        if (ftruncate(fd, 0) < 0)
                return vb_error_set_errno(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to empty volume '%s'", name);
        if (backing)
                return create_overlay(fd, name, backing, backing_format, info.capacity, reterr);
        return run_qemu_img(fd, "create", name, info.capacity, false, reterr);
}

const VbStorageBackendOps storage_backend_dir = {
        .type = STORAGE_POOL_DIR,
        .build = dir_build,
        .remove = dir_remove,
        .start = dir_start,
        .pool_info = dir_pool_info,
        .list_volumes = dir_list_volumes,
        .vol_info = dir_vol_info,
        .vol_create = dir_vol_create,
        .vol_format = dir_vol_format,
        .vol_delete = dir_vol_delete,
        .vol_open = dir_vol_open,
        .vol_resize = dir_vol_resize,
        .vol_reformat = dir_vol_reformat,
        .vol_backing = dir_vol_backing,
};

const VbStorageBackendOps *storage_backend_find(StoragePoolType type) {
        if (type == STORAGE_POOL_DIR)
                return &storage_backend_dir;
        if (type == STORAGE_POOL_FS)
                return storage_backend_fs_ops();
        return NULL;
}

/* What a pool type without a backend would need, said at Start. */
static const char * const missing_table[_STORAGE_POOL_TYPE_MAX] = {
        [STORAGE_POOL_NETFS] = "mounting a network file system (NFS, CIFS or GlusterFS clients) is not implemented",
        [STORAGE_POOL_LOGICAL] = "LVM volume groups need LVM and device-mapper, which virtbus does not drive",
        [STORAGE_POOL_DISK] = "partitioning a whole disk (parted) is not implemented",
        [STORAGE_POOL_ISCSI] = "an iSCSI initiator (open-iscsi logins) is not implemented",
        [STORAGE_POOL_ISCSI_DIRECT] = "an iSCSI initiator (libiscsi) is not implemented",
        [STORAGE_POOL_SCSI] = "SCSI host adapters (scanning sysfs for their LUNs) are not implemented",
        [STORAGE_POOL_MPATH] = "multipath devices need device-mapper multipath, which virtbus does not drive",
        [STORAGE_POOL_RBD] = "Ceph RBD needs librados/librbd, which virtbus is not built with",
        [STORAGE_POOL_SHEEPDOG] = "Sheepdog clusters (a retired project) are not implemented",
        [STORAGE_POOL_GLUSTER] = "GlusterFS volumes need libgfapi, which virtbus is not built with",
        [STORAGE_POOL_ZFS] = "ZFS pools need the ZFS tools, which virtbus does not drive",
        [STORAGE_POOL_VSTORAGE] = "Virtuozzo storage clusters are not implemented",
};

const char *storage_backend_missing(StoragePoolType type) {
        if (type < 0 || type >= _STORAGE_POOL_TYPE_MAX || !missing_table[type])
                return "no backend for it";
        return missing_table[type];
}
