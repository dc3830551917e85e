/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool types beyond 'dir' (test driver, real polkitd):
 *   - an 'fs' pool on a loop device this test attaches to an image file: Build makes an ext4 file system
 *     (mkfs.ext4 from e2fsprogs) and the target, Start mounts it there, volumes live on it, Stop unmounts
 *     it (refused while a volume is busy), a second Build leaves the file system and its files alone,
 *     and a restart finds the pool mounted and active again;
 *   - the other types are kept as written and refused at Start (and CreateStoragePool) with
 *     NotSupported saying what is missing. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define POOL_INTERFACE "org.virtbus1.StoragePool"
#define VOL_INTERFACE "org.virtbus1.StorageVol"
#define ERR(name) "org.virtbus1.Error." name
#define MiB (UINT64_C(1) << 20)

static char *vol_by_name(sd_bus *bus, const char *pool, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, pool, POOL_INTERFACE, "GetVolumeByName", "s", name);
        const char *o;

        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        return strdup(o);
}

static void call_pool(sd_bus *bus, const char *path, const char *method) {
        sd_bus_message_unref(harness_call_ok(bus, path, POOL_INTERFACE, method, "t", UINT64_C(0)));
}

/* Whether dir is a mount point of the device numbered rdev in our mount table. */
static bool mounted(const char *dir, dev_t rdev) {
        struct stat st;

        return stat(dir, &st) == 0 && st.st_dev == rdev;
}

/* losetup --find --show image: the loop device's path. */
static char *loop_attach(Harness *h, const char *image) {
        const char *argv[] = { "/sbin/losetup", "--find", "--show", image, NULL };
        HarnessResult res = {};
        char *dev;

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        if (res.status != 0)
                fail_msg("losetup failed: %s", res.err);
        dev = strndup(res.out, strcspn(res.out, "\n"));
        harness_result_done(&res);
        return dev;
}

static void loop_detach(Harness *h, const char *dev) {
        const char *argv[] = { "/sbin/losetup", "--detach", dev, NULL };
        HarnessResult res = {};

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        harness_result_done(&res);
}

/* The answer of an async call: 1 done, -1 an error. */
static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(int *) userdata = sd_bus_message_is_method_error(m, NULL) ? -1 : 1;
        return 0;
}

static void test_fs_pool(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *image = NULL, *dev = NULL, *target = NULL, *xml = NULL, *pool = NULL, *vol = NULL,
                            *file = NULL, *again = NULL;
        struct stat st;
        dev_t rdev;
        int fd, p[2];

        assert_true(asprintf(&image, "%s/fs-pool.img", harness_dir(h)) > 0);
        fd = open(image, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 64 * MiB), 0);
        close(fd);
        dev = loop_attach(h, image);
        assert_int_equal(stat(dev, &st), 0);
        assert_true(S_ISBLK(st.st_mode));
        rdev = st.st_rdev;

        assert_true(asprintf(&target, "%s/fs-mnt", harness_dir(h)) > 0);
        assert_true(asprintf(&xml, "<pool type='fs'><name>fsp</name><source><device path='%s'/><format type='ext4'/>"
                                   "</source><target><path>%s</path></target></pool>", dev, target) > 0);
        pool = harness_call_path(root, M, "DefineStoragePool", "st", xml);
        assert_string_equal(harness_get_string(root, pool, POOL_INTERFACE, "Type"), "fs");
        /* Nothing to mount on yet, and no file system. */
        harness_call_fails(root, ERR("InvalidState"), "Build makes the directory", pool, POOL_INTERFACE, "Start", "t",
                           UINT64_C(0));
        call_pool(root, pool, "Build");
        assert_int_equal(stat(target, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_false(mounted(target, rdev));
        call_pool(root, pool, "Start");
        assert_true(mounted(target, rdev));
        assert_int_equal(harness_set_property(root, pool, POOL_INTERFACE, "Autostart", NULL, "b", 1), 1);
        /* The pool's sizes are the file system's: under the image's 64 MiB. */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint64_t cap = 0;

                assert_int_equal(sd_bus_get_property_trivial(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "Capacity", &e,
                                                             't', &cap), 0);
                assert_true(cap > 32 * MiB && cap <= 64 * MiB);
        }

        vol = harness_call_path(root, pool, POOL_INTERFACE, "CreateVolume", "st",
                                "<volume><name>on-fs.img</name><capacity unit='MiB'>8</capacity></volume>");
        assert_true(asprintf(&file, "%s/on-fs.img", target) > 0);
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_dev, rdev);

        /* Busy volume: the pool stays mounted. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        {
                sd_bus *conn = NULL;
                int answered = 0;

                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &conn), 0);
                assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, vol, VOL_INTERFACE, "Upload", on_reply, &answered,
                                                     "httt", p[0], UINT64_C(0), UINT64_C(0), UINT64_C(0)) >= 0);
                assert_true(sd_bus_flush(conn) >= 0);
                close(p[0]);
                /* Resize to the same size works until the upload holds the volume, then is DeviceBusy. */
                for (int i = 0;; i++) {
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = NULL;
                        int r = sd_bus_call_method(root, HARNESS_SERVICE, vol, VOL_INTERFACE, "Resize", &e, &reply, "tt",
                                                   8 * MiB, UINT64_C(0));

                        sd_bus_message_unref(reply);
                        if (r < 0) {
                                assert_true(sd_bus_error_has_name(&e, ERR("DeviceBusy")));
                                sd_bus_error_free(&e);
                                break;
                        }
                        assert_true(i < 500);
                        usleep(10000);
                }
                harness_call_fails(root, ERR("DeviceBusy"), "on-fs.img", pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0));
                assert_true(mounted(target, rdev));
                assert_int_equal(write(p[1], "fs-pool", 7), 7);
                close(p[1]);
                /* The upload's answer (it ends at the pipe's end), before the caller goes. */
                while (answered == 0) {
                        int r = sd_bus_process(conn, NULL);

                        assert_true(r >= 0);
                        if (r == 0)
                                assert_true(sd_bus_wait(conn, HARNESS_TIMEOUT_USEC) >= 0);
                }
                assert_int_equal(answered, 1);
                sd_bus_flush_close_unref(conn);
        }
        /* Wait until the upload is over (the volume free again), then stop: unmounted. */
        for (int i = 0; i < 200; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                int r = sd_bus_call_method(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "Stop", &e, &reply, "t", UINT64_C(0));

                sd_bus_message_unref(reply);
                if (r >= 0)
                        break;
                assert_true(sd_bus_error_has_name(&e, ERR("DeviceBusy")));
                sd_bus_error_free(&e);
                usleep(20000);
        }
        assert_false(mounted(target, rdev));
        assert_true(access(file, F_OK) < 0);

        /* Build again: the file system and the volume on it stay. */
        call_pool(root, pool, "Build");
        call_pool(root, pool, "Start");
        assert_true(mounted(target, rdev));
        again = vol_by_name(root, pool, "on-fs.img");
        {
                char buf[16] = "";
                fd = open(file, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                assert_int_equal(read(fd, buf, 7), 7);
                close(fd);
                assert_memory_equal(buf, "fs-pool", 7);
        }

        /* A restart finds it mounted and takes it up again. */
        assert_int_equal(harness_daemon_restart(h), 0);
        root = harness_bus_root(h);
        assert_string_equal(harness_get_string(root, pool, POOL_INTERFACE, "Type"), "fs");
        free(again);
        again = vol_by_name(root, pool, "on-fs.img");
        sd_bus_message_unref(harness_call_ok(root, again, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        call_pool(root, pool, "Stop");
        assert_false(mounted(target, rdev));
        call_pool(root, pool, "Delete");
        call_pool(root, pool, "Undefine");
        loop_detach(h, dev);
        unlink(image);
}

static void test_fs_pool_refusals(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = NULL, *pool = NULL, *file = NULL;

        /* Not a block device. */
        assert_true(asprintf(&file, "%s/not-a-device", harness_dir(h)) > 0);
        assert_int_equal(close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
        assert_true(asprintf(&xml, "<pool type='fs'><name>fs-bad</name><source><device path='%s'/></source>"
                                   "<target><path>%s/fs-bad</path></target></pool>", file, harness_dir(h)) > 0);
        pool = harness_call_path(root, M, "DefineStoragePool", "st", xml);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "is not a block device", pool, POOL_INTERFACE, "Build", "t",
                           UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "is not a block device", pool, POOL_INTERFACE, "Start", "t",
                           UINT64_C(0));
        call_pool(root, pool, "Undefine");
        free(xml);
        free(pool);
        /* A file system Build does not make. */
        assert_true(asprintf(&xml, "<pool type='fs'><name>fs-xfs</name><source><device path='/dev/null'/>"
                                   "<format type='xfs'/></source><target><path>%s/fs-xfs</path></target></pool>",
                             harness_dir(h)) > 0);
        pool = harness_call_path(root, M, "DefineStoragePool", "st", xml);
        harness_call_fails(root, ERR("NotSupported"), "not 'xfs'", pool, POOL_INTERFACE, "Build", "t", UINT64_C(0));
        call_pool(root, pool, "Undefine");
        unlink(file);
}

/* Every other type: defined and kept as written, refused at Start naming what is missing. */
static void test_other_types(void **state) {
        static const struct {
                const char *xml, *missing;
        } cases[] = {
                { "<pool type='logical'><name>vg</name><source><name>vg0</name><format type='lvm2'/></source>"
                  "<target><path>/dev/vg0</path></target></pool>", "LVM" },
                { "<pool type='netfs'><name>nfs</name><source><host name='nfs.example.org'/><dir path='/export'/>"
                  "<format type='nfs'/></source><target><path>/var/lib/nfs-pool</path></target></pool>", "network file system" },
                { "<pool type='iscsi'><name>scsi</name><source><host name='iscsi.example.org'/>"
                  "<device path='iqn.2013-06.com.example:iscsi-pool'/></source><target><path>/dev/disk/by-path</path>"
                  "</target></pool>", "iSCSI initiator" },
                { "<pool type='rbd'><name>ceph</name><source><name>rbdpool</name><host name='ceph.example.org' port='6789'/>"
                  "</source></pool>", "librbd" },
                { "<pool type='disk'><name>whole</name><source><device path='/dev/sdz'/></source>"
                  "<target><path>/dev</path></target></pool>", "partitioning" },
        };
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *pool = harness_call_path(root, M, "DefineStoragePool", "st", cases[i].xml);
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                        harness_call_ok(root, pool, POOL_INTERFACE, "GetXMLDesc", "t", UINT64_C(1));
                const char *got;

                harness_call_fails(root, ERR("NotSupported"), cases[i].missing, pool, POOL_INTERFACE, "Start", "t",
                                   UINT64_C(0));
                harness_call_fails(root, ERR("NotSupported"), cases[i].missing, pool, POOL_INTERFACE, "Build", "t",
                                   UINT64_C(0));
                /* Kept: the source as it was given. */
                assert_int_equal(sd_bus_message_read(reply, "s", &got), 1);
                assert_non_null(strstr(got, "<source>"));
                call_pool(root, pool, "Undefine");
        }
        harness_call_fails(root, ERR("NotSupported"), "LVM", M, "CreateStoragePool", "st", cases[0].xml, UINT64_C(0));
}

/* VIRTBUS_MKFS_DIR for this test's virtbusd: /sbin/mkfs.ext4, held back while the file hold exists. */
static char mkfs_dir[] = "/tmp/virtbus-test-mkfs-XXXXXX";

static void mkfs_hold(bool hold) {
        harness_wrapper_flag(mkfs_dir, "hold", hold);
}

/* Build's mkfs runs off the event loop: while it is held back, other calls are answered and the pool is
 * busy; Build is answered when mkfs ended. (It ran on the loop: every caller waited for mkfs.) */
static void test_build_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *image = NULL, *dev = NULL, *target = NULL, *xml = NULL, *pool = NULL;
        struct stat st;
        int fd, answered = 0;

        assert_true(asprintf(&image, "%s/held-pool.img", harness_dir(h)) > 0);
        fd = open(image, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 32 * MiB), 0);
        close(fd);
        dev = loop_attach(h, image);
        assert_int_equal(stat(dev, &st), 0);
        assert_true(asprintf(&target, "%s/held-mnt", harness_dir(h)) > 0);
        assert_true(asprintf(&xml, "<pool type='fs'><name>held</name><source><device path='%s'/><format type='ext4'/>"
                                   "</source><target><path>%s</path></target></pool>", dev, target) > 0);
        pool = harness_call_path(root, M, "DefineStoragePool", "st", xml);

        mkfs_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, pool, POOL_INTERFACE, "Build", on_reply,
                                             &answered, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* Until mkfs runs: others are answered, the pool is busy. */
        for (int i = 0; i < 500; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                if (sd_bus_call_method(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "Start", &e, NULL, "t", UINT64_C(0)) < 0 &&
                    sd_bus_error_has_name(&e, ERR("DeviceBusy")))
                        break;
                assert_true(i < 499);
                usleep(10000);
        }
        harness_call_fails(root, ERR("DeviceBusy"), "being built", pool, POOL_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being built", pool, POOL_INTERFACE, "Build", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being built", pool, POOL_INTERFACE, "Undefine", "t", UINT64_C(0));
        {
                /* The same pool again (its UUID): its definition stays while mkfs works from it. */
                _cleanup_free_ char *same = NULL;

                assert_true(asprintf(&same, "<pool type='fs'><name>held</name><uuid>%s</uuid><source><device path='%s'/>"
                                            "<format type='ext4'/></source><target><path>%s</path></target></pool>",
                                     harness_get_string(root, pool, POOL_INTERFACE, "UUID"), dev, target) > 0);
                harness_call_fails(root, ERR("DeviceBusy"), "being built", M, "DefineStoragePool", "st", same,
                                   UINT64_C(0));
        }
        sd_bus_message_unref(harness_call_ok(root, M, "ListStoragePools", "t", UINT64_C(0)));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(answered, 0);
        mkfs_hold(false);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        assert_int_equal(answered, 1);
        /* Built: it starts, mounted. */
        call_pool(root, pool, "Start");
        assert_true(mounted(target, st.st_rdev));
        call_pool(root, pool, "Stop");
        call_pool(root, pool, "Delete");
        call_pool(root, pool, "Undefine");
        loop_detach(h, dev);
        unlink(image);
}

/* Whether a process runs a program of dir (the mkfs wrapper, held). */
static bool running_from(const char *dir) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        bool found = false;

        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *cmdline = NULL;
                char buf[4096];
                ssize_t n;
                int fd;

                if (atoi(de->d_name) <= 0 || asprintf(&path, "/proc/%s/cmdline", de->d_name) < 0)
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (n <= 0)
                        continue;
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == 0)
                                buf[i] = ' ';
                buf[n] = 0;
                if (strstr(buf, dir)) {
                        found = true;
                        break;
                }
        }
        closedir(d);
        return found;
}

/* SIGTERM while Build's mkfs is held (hung): virtbusd gives it a short grace, then kills it with its process
 * group; Build is answered "virtbusd is stopping", virtbusd exits well within the harness's 20 s bound,
 * and nothing half-made is left: no target directory, no file system, so after a restart the pool is not
 * taken for built (Start says Build makes the directory) and a Build makes it whole. On the old code
 * virtbusd's exit waited for mkfs (up to its 120 s bound), and the caller was answered only then. */
static void test_stop_during_build(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *image = NULL, *dev = NULL, *target = NULL, *xml = NULL, *pool = NULL;
        HarnessAnswer a = { .error = SD_BUS_ERROR_NULL };
        uint8_t magic[2] = { 1, 1 };
        uint64_t since;
        struct stat st;
        int fd, exited;

        assert_true(asprintf(&image, "%s/cut-pool.img", harness_dir(h)) > 0);
        fd = open(image, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 32 * MiB), 0);
        close(fd);
        dev = loop_attach(h, image);
        assert_int_equal(stat(dev, &st), 0);
        assert_true(asprintf(&target, "%s/cut-mnt", harness_dir(h)) > 0);
        assert_true(asprintf(&xml, "<pool type='fs'><name>cut</name><source><device path='%s'/><format type='ext4'/>"
                                   "</source><target><path>%s</path></target></pool>", dev, target) > 0);
        pool = harness_call_path(root, M, "DefineStoragePool", "st", xml);

        mkfs_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, pool, POOL_INTERFACE, "Build", harness_on_answer, &a,
                                             "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* mkfs (the wrapper) runs, held. */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !running_from(mkfs_dir);) {
                assert_true(harness_now_usec() < end);
                usleep(20000);
        }
        since = harness_now_usec();
        assert_int_equal(kill(harness_daemon_pid(h), SIGTERM), 0);
        for (uint64_t end = since + HARNESS_TIMEOUT_USEC; a.answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        exited = harness_daemon_kill(h, 0);
        fprintf(stderr, "virtbusd exited %.1f s after SIGTERM, Build held in mkfs\n",
                (double) (harness_now_usec() - since) / 1e6);
        mkfs_hold(false);
        assert_int_equal(a.answered, -1);
        assert_string_equal(a.error.name, ERR("OperationFailed"));
        assert_non_null(strstr(a.error.message, "virtbusd is stopping"));
        assert_int_equal(exited, 0);
        /* The held mkfs went with its group; nothing half-made. */
        assert_false(running_from(mkfs_dir));
        assert_true(access(target, F_OK) < 0);
        fd = open(dev, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, magic, sizeof magic, 1024 + 56), 2);
        close(fd);
        assert_false(magic[0] == 0x53 && magic[1] == 0xef);
        sd_bus_error_free(&a.error);

        /* After a restart: not built; a Build now makes it, and it starts. */
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);
        harness_call_fails(root, ERR("InvalidState"), "Build makes the directory", pool, POOL_INTERFACE, "Start", "t",
                           UINT64_C(0));
        call_pool(root, pool, "Build");
        call_pool(root, pool, "Start");
        assert_true(mounted(target, st.st_rdev));
        call_pool(root, pool, "Stop");
        call_pool(root, pool, "Delete");
        call_pool(root, pool, "Undefine");
        loop_detach(h, dev);
        unlink(image);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fs_pool),
                cmocka_unit_test(test_fs_pool_refusals),
                cmocka_unit_test(test_other_types),
                cmocka_unit_test(test_build_off_loop),
                cmocka_unit_test(test_stop_during_build),
        };
        int r;

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/sbin/mkfs.ext4", X_OK) < 0 || access("/sbin/losetup", X_OK) < 0 ||
            access("/dev/loop-control", F_OK) < 0) {
                fprintf(stderr, "test-storage-fs: needs mkfs.ext4 and losetup (scripts/bootstrap) and loop devices\n");
                return 77;
        }
        harness_wrapper_make(mkfs_dir, "mkfs.ext4", "/sbin/mkfs.ext4");
        assert_int_equal(setenv("VIRTBUS_MKFS_DIR", mkfs_dir, 1), 0);
        r = harness_run_group(tests, &(HarnessOptions) {});
        harness_wrapper_remove(mkfs_dir, "mkfs.ext4");
        return r;
}
