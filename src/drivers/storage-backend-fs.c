/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The 'fs' storage backend: a block device (a disk, a partition, a loop-attached image) holding a file
 * system that virtbus mounts at the pool's target at Start and unmounts at Stop. Build makes the file
 * system (mkfs from Debian's e2fsprogs: ext2, ext3, ext4) and the target directory. Once mounted, the
 * pool is a 'dir' pool: its volumes are files confined by openat2 as there. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/storage-backend.h"
#include "host/child-wait.h"
#include "host/process.h"
#include "util/log.h"
#include "util/macro.h"

#define MKFS_TIMEOUT_MS 120000
/* The ext2/3/4 superblock's magic: 0xef53 at byte 56 of the superblock, which starts at 1024. */
#define EXT_MAGIC_OFFSET (1024 + 56)

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* <source><device path=>: the parser made sure there is one. */
static const char *source_device(const StoragePoolDef *def) {
        const ConfNode *src = conf_node_child(def->extra, "source");
        const ConfNode *dev = src ? conf_node_child(src, "device") : NULL;

        return dev ? conf_node_attr(dev, "path") : NULL;
}

/* <source><format type=>, or "auto". */
static const char *source_format(const StoragePoolDef *def) {
        const ConfNode *src = conf_node_child(def->extra, "source");
        const ConfNode *fmt = src ? conf_node_child(src, "format") : NULL;
        const char *t = fmt ? conf_node_attr(fmt, "type") : NULL;

        return t ?: "auto";
}

static bool is_ext(const char *fs) {
        return streq(fs, "ext2") || streq(fs, "ext3") || streq(fs, "ext4");
}

/* The device, opened and checked to be a block device; *ret_st filled. */
static int open_device(const StoragePoolDef *def, int flags, struct stat *ret_st, VbError *reterr) {
        const char *dev = source_device(def);
        int fd;

        if (!dev || dev[0] != '/')
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Pool '%s': <source><device path=> must be an absolute path of a block device.",
                                    def->name);
        fd = open(dev, flags | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return vb_error_set(reterr, errno == ENOENT ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED,
                                    "Pool '%s': cannot open device '%s': %s", def->name, dev, strerror(errno));
        if (fstat(fd, ret_st) < 0 || !S_ISBLK(ret_st->st_mode)) {
                close(fd);
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Pool '%s': '%s' is not a block device (attach an image with losetup first).",
                                    def->name, dev);
        }
        return fd;
}

static bool has_ext_superblock(int fd) {
        uint8_t magic[2];

        return pread(fd, magic, sizeof magic, EXT_MAGIC_OFFSET) == (ssize_t) sizeof magic && magic[0] == 0x53 &&
               magic[1] == 0xef;
}

/* A file system mkfs did not finish is not one: its superblock's magic (if mkfs wrote it) goes, so that
 * the next Build makes it again instead of taking it for a finished one. The device held none before. */
static void forget_unfinished(const StoragePoolDef *def) {
        static const uint8_t zero[2] = {};
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open_device(def, O_RDWR, &st, NULL);
        if (fd < 0 || !has_ext_superblock(fd))
                return;
        if (pwrite(fd, zero, sizeof zero, EXT_MAGIC_OFFSET) != (ssize_t) sizeof zero || fsync(fd) < 0)
                log_warning("Pool '%s': failed to clear the unfinished file system on '%s', ignoring: %m", def->name,
                            source_device(def));
        else
                log_notice("Pool '%s': cleared the unfinished file system on '%s'.", def->name, source_device(def));
}

static int run_mkfs(const StoragePoolDef *def, const char *fs, VbError *reterr) {
        char prog[PATH_MAX];
        const char *argv[] = { prog, "-q", "-F", source_device(def), NULL };
        int status = 0, r;
        pid_t pid;

        /* VIRTBUS_MKFS_DIR: where mkfs.<type> is (tests hold it back with a wrapper); /sbin otherwise. */
        snprintf(prog, sizeof prog, "%s/mkfs.%s", getenv("VIRTBUS_MKFS_DIR") ?: "/sbin", fs);
        r = host_process_spawn(argv, -1, NULL, 0, &pid);
        if (r < 0)
                return vb_error_set(reterr, r == -ENOENT ? VB_ERROR_NOT_SUPPORTED : VB_ERROR_OPERATION_FAILED,
                                    "Failed to run '%s' (Debian's e2fsprogs): %s", prog, strerror(-r));
        /* Bounded, and killed with its process group a short grace after virtbusd begins to stop. */
        r = host_child_wait_timeout(pid, MKFS_TIMEOUT_MS * 1000ULL, &status);
        if (r == -ETIMEDOUT) {
                forget_unfinished(def);
                return vb_error_set(reterr, VB_ERROR_TIMEOUT, "'%s' did not finish within %d s.", prog,
                                    MKFS_TIMEOUT_MS / 1000);
        }
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                forget_unfinished(def);
                if (host_children_cancelled())
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "'%s' was stopped: virtbusd is stopping.",
                                            prog);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "'%s %s' failed (status %d).", prog,
                                    source_device(def), status);
        }
        return 0;
}

/* Build: an ext file system on the device, unless it holds one already (nothing is overwritten), and the
 * target directory. */
static int fs_build(const StoragePoolDef *def, VbError *reterr) {
        const char *fs = source_format(def);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        if (streq(fs, "auto"))
                fs = "ext4";
        if (!is_ext(fs))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Pool '%s': Build makes ext2, ext3 or ext4 file systems (e2fsprogs), not '%s'.",
                                    def->name, fs);
        fd = open_device(def, O_RDONLY, &st, reterr);
        if (fd < 0)
                return fd;
        if (has_ext_superblock(fd))
                log_info("Pool '%s': '%s' already holds an ext file system, left as it is.", def->name,
                         source_device(def));
        else {
                log_notice("Pool '%s': making an %s file system on '%s'.", def->name, fs, source_device(def));
                r = run_mkfs(def, fs, reterr);
                if (r < 0)
                        return r;
        }
        return storage_backend_dir.build(def, reterr);
}

/* Whether the target is the root of a mount of the device already (virtbusd restarted). */
static bool mounted_here(const StoragePoolDef *def, dev_t rdev) {
        struct stat st;

        return stat(def->target_path, &st) == 0 && st.st_dev == rdev;
}

static int fs_start(const StoragePoolDef *def, int *ret_fd, VbError *reterr) {
        static const char * const guesses[] = { "ext4", "xfs", "btrfs", "vfat", NULL };
        const char *fs = source_format(def);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r = -EINVAL;

        fd = open_device(def, O_RDONLY, &st, reterr);
        if (fd < 0)
                return fd;
        if (!mounted_here(def, st.st_rdev)) {
                unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

                if (streq(fs, "auto")) {
                        for (const char * const *g = guesses; *g && r < 0; g++)
                                r = mount(source_device(def), def->target_path, *g, flags, NULL) < 0 ? -errno : 0;
                } else
                        r = mount(source_device(def), def->target_path, fs, flags, NULL) < 0 ? -errno : 0;
                if (r < 0)
                        return vb_error_set(reterr, r == -ENOENT ? VB_ERROR_INVALID_STATE : VB_ERROR_OPERATION_FAILED,
                                            "Pool '%s': cannot mount '%s' (%s) at '%s': %s%s", def->name,
                                            source_device(def), fs, def->target_path, strerror(-r),
                                            r == -ENOENT ? " (Build makes the directory)"
                                                         : r == -EINVAL ? " (Build makes a file system)" : "");
                log_notice("Pool '%s': mounted '%s' at '%s'.", def->name, source_device(def), def->target_path);
        }
        r = storage_backend_dir.start(def, ret_fd, reterr);
        if (r < 0 && umount2(def->target_path, UMOUNT_NOFOLLOW) < 0)
                log_warning("Pool '%s': failed to unmount '%s' again, ignoring: %m", def->name, def->target_path);
        return r;
}

static int fs_stop(const StoragePoolDef *def, VbError *reterr) {
        if (umount2(def->target_path, UMOUNT_NOFOLLOW) < 0) {
                if (errno == EINVAL) /* not mounted (any more) */
                        return 0;
                return vb_error_set(reterr, errno == EBUSY ? VB_ERROR_DEVICE_BUSY : VB_ERROR_OPERATION_FAILED,
                                    "Pool '%s': cannot unmount '%s': %s", def->name, def->target_path, strerror(errno));
        }
        log_notice("Pool '%s': unmounted '%s'.", def->name, def->target_path);
        return 0;
}

static VbStorageBackendOps fs_ops;
static pthread_once_t fs_ops_once = PTHREAD_ONCE_INIT;

/* The dir table with the pool's own steps in place of the directory's. */
static void fs_ops_init(void) {
        fs_ops = storage_backend_dir;
        fs_ops.type = STORAGE_POOL_FS;
        fs_ops.build = fs_build;
        fs_ops.start = fs_start;
        fs_ops.stop = fs_stop;
}

const VbStorageBackendOps *storage_backend_fs_ops(void) {
        (void) pthread_once(&fs_ops_once, fs_ops_init);
        return &fs_ops;
}
