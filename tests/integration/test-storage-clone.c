/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clones, overlays and volume owners (test driver, real files, the real qemu-img and polkitd), as two
 * users of group 'virtbus' (the example rules grant them volumes in pool 'default'):
 *   - CreateVolumeFrom raw to raw (the same bytes, holes kept), raw to qcow2 and back (qemu-img convert),
 *     with Progress on the new volume, answered with it; a caller that disconnects mid-clone leaves no
 *     volume and no file;
 *   - an overlay with <backingStore>: qemu-img sees the backing file and format, GetXMLDesc shows them;
 *   - a volume belongs to its creator: another user may not delete, read, write, wipe, resize, clone it
 *     nor put an overlay over it, nor give it to a domain (at Define, and at Start when the name was
 *     taken over); root may. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define POOL_INTERFACE "org.virtbus1.StoragePool"
#define VOL_INTERFACE "org.virtbus1.StorageVol"
#define ERR(name) "org.virtbus1.Error." name
#define MiB (UINT64_C(1) << 20)

static char *clone_vol(sd_bus *bus, const char *pool, const char *xml, const char *source) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, pool, POOL_INTERFACE, "CreateVolumeFrom", "sot", xml, source, UINT64_C(0));
        const char *o;

        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        return strdup(o);
}

static uint64_t get_u64(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, VOL_INTERFACE, property, &e, 't', &v), 0);
        return v;
}

static char *setup_default_pool(Harness *h, sd_bus *root) {
        _cleanup_free_ char *xml = NULL, *dir = NULL;

        assert_true(asprintf(&dir, "%s/pool-default", harness_dir(h)) > 0);
        assert_true(mkdir(dir, 0711) >= 0 || errno == EEXIST);
        assert_true(asprintf(&xml, "<pool type='dir'><name>default</name><target><path>%s</path></target></pool>", dir) > 0);
        {
                /* Left by a test that failed before it stopped it: the same pool. */
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *o;

                if (sd_bus_call_method(root, HARNESS_SERVICE, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE,
                                       "GetStoragePoolByName", &e, &reply, "s", "default") >= 0 &&
                    sd_bus_message_read(reply, "o", &o) > 0)
                        return strdup(o);
        }
        return harness_call_path(root, M, "CreateStoragePool", "st", xml);
}

static char *vol_file(Harness *h, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/pool-default/%s", harness_dir(h), name) > 0);
        return p;
}

/* size bytes: pattern blocks of 1 MiB at the offsets in data[] (in MiB), holes elsewhere. */
static void write_sparse_file(const char *file, uint64_t size, const unsigned *data, size_t n) {
        static char block[MiB];
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) size), 0);
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < sizeof block; j++)
                        block[j] = (char) (j * 31 + data[i] * 7 + 1);
                assert_int_equal(pwrite(fd, block, sizeof block, (off_t) (data[i] * MiB)), (ssize_t) sizeof block);
        }
        close(fd);
}

static bool same_bytes(const char *a, const char *b) {
        static char x[1 << 16], y[1 << 16];
        int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
        bool same = fa >= 0 && fb >= 0;
        ssize_t n, m;

        while (same && (n = read(fa, x, sizeof x)) > 0) {
                m = read(fb, y, (size_t) n);
                same = m == n && memcmp(x, y, (size_t) n) == 0;
        }
        if (same)
                same = read(fb, y, 1) == 0;
        if (fa >= 0)
                close(fa);
        if (fb >= 0)
                close(fb);
        return same;
}

/* A new volume name of mib MiB in pool, holding the bytes of file data (uploaded). */
static char *upload_vol(sd_bus *bus, const char *pool, const char *name, unsigned mib, const char *data) {
        _cleanup_free_ char *xml = NULL;
        char *vol;
        int fd;

        assert_true(asprintf(&xml, "<volume><name>%s</name><capacity unit='MiB'>%u</capacity></volume>", name, mib) > 0);
        vol = harness_call_path(bus, pool, POOL_INTERFACE, "CreateVolume", "st", xml);
        fd = open(data, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        sd_bus_message_unref(harness_call_ok(bus, vol, VOL_INTERFACE, "Upload", "httt", fd, UINT64_C(0), UINT64_C(0),
                                             UINT64_C(0)));
        close(fd);
        return vol;
}

static char *vol_xml(sd_bus *bus, const char *vol) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, vol, VOL_INTERFACE, "GetXMLDesc", "t", UINT64_C(0));
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

/* The Progress signals of the volume at path until one says done == total (the last before the answer). */
static void assert_progress_to_end(HarnessWatch *w, const char *path, uint64_t total) {
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
                uint64_t done, all;

                assert_non_null(s);
                if (!streq(sd_bus_message_get_path(s), path))
                        continue;
                assert_int_equal(sd_bus_message_read(s, "tt", &done, &all), 1);
                assert_int_equal(all, total);
                assert_true(done <= all);
                if (done == all)
                        return;
        }
}

static void test_clone(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *src = NULL, *copy = NULL, *qcow = NULL, *back = NULL, *data = NULL,
                            *src_file = NULL, *copy_file = NULL, *qcow_file = NULL, *back_file = NULL, *info = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        static const unsigned blocks[] = { 0, 1, 5, 13, 15 };
        struct stat st;

        pool = setup_default_pool(h, root);
        assert_true(asprintf(&data, "%s/clone-data", harness_dir(h)) > 0);
        write_sparse_file(data, 16 * MiB, blocks, ELEMENTSOF(blocks));
        src = upload_vol(member, pool, "src.img", 16, data);
        src_file = vol_file(h, "src.img");
        assert_true(same_bytes(data, src_file));

        /* Raw to raw: the same bytes, the holes still holes, the caller's file. */
        w = harness_watch_signal(member, NULL, VOL_INTERFACE, "Progress");
        copy = clone_vol(member, pool, "<volume><name>copy.img</name></volume>", src);
        assert_progress_to_end(w, copy, 16 * MiB);
        copy_file = vol_file(h, "copy.img");
        assert_true(same_bytes(data, copy_file));
        assert_int_equal(stat(copy_file, &st), 0);
        assert_int_equal(st.st_uid, harness_user_uid(h, HARNESS_USER_VIRTBUS));
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_true((uint64_t) st.st_blocks * 512 <= 6 * MiB);
        assert_int_equal(get_u64(member, copy, "Capacity"), 16 * MiB);
        assert_string_equal(harness_get_string(member, copy, VOL_INTERFACE, "Format"), "raw");

        /* Raw to qcow2 and back (qemu-img convert): the same bytes again. */
        qcow = clone_vol(member, pool, "<volume><name>copy.qcow2</name><target><format type='qcow2'/></target></volume>", src);
        assert_progress_to_end(w, qcow, 16 * MiB);
        qcow_file = vol_file(h, "copy.qcow2");
        info = harness_qemu_img_info(h, qcow_file);
        assert_non_null(strstr(info, "\"format\": \"qcow2\""));
        assert_non_null(strstr(info, "\"virtual-size\": 16777216"));
        assert_string_equal(harness_get_string(member, qcow, VOL_INTERFACE, "Format"), "qcow2");
        back = clone_vol(member, pool, "<volume><name>back.img</name><target><format type='raw'/></target></volume>", qcow);
        back_file = vol_file(h, "back.img");
        assert_true(same_bytes(data, back_file));

        /* What a clone refuses. */
        harness_call_fails(member, ERR("AlreadyExists"), "copy.img", pool, POOL_INTERFACE, "CreateVolumeFrom", "sot",
                           "<volume><name>copy.img</name></volume>", src, UINT64_C(0));
        harness_call_fails(member, ERR("NoSuchStorageVol"), "source", pool, POOL_INTERFACE, "CreateVolumeFrom", "sot",
                           "<volume><name>x.img</name></volume>", "/org/virtbus1/storagevol/none", UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "no <backingStore>", pool, POOL_INTERFACE,
                           "CreateVolumeFrom", "sot",
                           "<volume><name>x.img</name><backingStore><path>/x</path></backingStore></volume>", src,
                           UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, NULL, pool, POOL_INTERFACE, "CreateVolumeFrom", "sot",
                           "<volume><name>x.img</name></volume>", src, UINT64_C(2));
        {
                _cleanup_free_ char *x = vol_file(h, "x.img");
                assert_true(access(x, F_OK) < 0);
        }

        for (const char *v, *const *vv = (const char *const[]) { src, copy, qcow, back, NULL }; (v = *vv); vv++)
                sd_bus_message_unref(harness_call_ok(member, v, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
        unlink(data);
}

/* A caller gone mid-clone: qemu-img is ended, the new volume and its file go. */
static void test_clone_cancel(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS), *conn = NULL;
        _cleanup_free_ char *pool = NULL, *src = NULL, *data = NULL, *big_file = NULL, *path = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        unsigned blocks[512];
        bool cut = false, finished = false;

        pool = setup_default_pool(h, root);
        /* 512 MiB of data that is not zeroes: qemu-img has to copy it all, which takes long enough to be
         * seen half-done in its progress. */
        for (unsigned i = 0; i < ELEMENTSOF(blocks); i++)
                blocks[i] = i;
        assert_true(asprintf(&data, "%s/cancel-data", harness_dir(h)) > 0);
        write_sparse_file(data, 512 * MiB, blocks, ELEMENTSOF(blocks));
        src = upload_vol(member, pool, "big.img", 512, data);
        unlink(data);

        /* The new volume's object: /org/virtbus1/storagevol/<the pool's UUID hex>/<the name, encoded>. */
        {
                _cleanup_free_ char *prefix = NULL;

                assert_true(asprintf(&prefix, "/org/virtbus1/storagevol/%s", strrchr(pool, '/') + 1) > 0);
                assert_true(sd_bus_path_encode(prefix, "half.qcow2", &path) >= 0);
        }
        w = harness_watch_signal(member, path, VOL_INTERFACE, "Progress");
        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
        assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, pool, POOL_INTERFACE, "CreateVolumeFrom", NULL,
                                             NULL, "sot",
                                             "<volume><name>half.qcow2</name><target><format type='qcow2'/></target></volume>",
                                             src, UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(conn) >= 0);
        /* Once it is under way (some, not all, copied), the caller goes. */
        while (!cut && !finished) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
                uint64_t done, all;

                assert_non_null(s);
                if (!streq(sd_bus_message_get_path(s), path))
                        continue; /* others' (an upload's, queued before the watch began) */
                assert_int_equal(sd_bus_message_read(s, "tt", &done, &all), 1);
                finished = done == all;
                cut = done > 0;
        }
        sd_bus_flush_close_unref(conn);
        if (finished) {
                /* Copied before Progress could show it half-done (a fast, idle machine): the finished clone
                 * goes, and once more with the caller leaving as soon as its call is sent. */
                fprintf(stderr, "test: the clone finished before its caller could go; again, leaving at once\n");
                for (int i = 0; i < 200; i++) {
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        int r = sd_bus_call_method(member, HARNESS_SERVICE, path, VOL_INTERFACE, "Delete", &e, NULL, "t",
                                                   UINT64_C(0));

                        sd_bus_error_free(&e);
                        if (r >= 0)
                                break;
                        usleep(50000);
                }
                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
                assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, pool, POOL_INTERFACE, "CreateVolumeFrom",
                                                     NULL, NULL, "sot",
                                                     "<volume><name>half.qcow2</name><target><format type='qcow2'/>"
                                                     "</target></volume>",
                                                     src, UINT64_C(0)) >= 0);
                assert_true(sd_bus_flush(conn) >= 0);
                sd_bus_flush_close_unref(conn);
        }
        /* The volume goes (InterfacesRemoved), and so does its file. */
        big_file = vol_file(h, "half.qcow2");
        for (int i = 0; i < 200; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                int r = sd_bus_call_method(member, HARNESS_SERVICE, pool, POOL_INTERFACE, "GetVolumeByName", &e, &reply,
                                           "s", "half.qcow2");

                sd_bus_error_free(&e);
                sd_bus_message_unref(reply);
                if (r < 0)
                        break;
                usleep(50000);
        }
        harness_call_fails(member, ERR("NoSuchStorageVol"), NULL, pool, POOL_INTERFACE, "GetVolumeByName", "s",
                           "half.qcow2");
        assert_true(access(big_file, F_OK) < 0);
        /* The source is free again. */
        sd_bus_message_unref(harness_call_ok(member, src, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* qemu-io's command on a qcow2 file (root opens the chain: this is the test looking, not virtbusd). */
static void qemu_io(Harness *h, const char *file, const char *command, const char *expect) {
        const char *argv[] = { "/usr/bin/qemu-io", "-f", "qcow2", "-c", command, file, NULL };
        HarnessResult res = {};

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        assert_int_equal(res.status, 0);
        if (!strstr(res.out, expect) || strstr(res.out, "verification failed"))
                fail_msg("qemu-io '%s' on '%s': expected '%s' in:\n%s%s", command, file, expect, res.out, strempty(res.err));
        harness_result_done(&res);
}

static void test_overlay(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *base = NULL, *top = NULL, *base_file = NULL, *top_file = NULL, *xml = NULL,
                            *info = NULL, *got = NULL, *want = NULL, *flat = NULL;

        pool = setup_default_pool(h, root);
        base = harness_call_path(member, pool, POOL_INTERFACE, "CreateVolume", "st",
                                 "<volume><name>base.qcow2</name><capacity unit='MiB'>32</capacity>"
                                 "<target><format type='qcow2'/></target></volume>");
        base_file = vol_file(h, "base.qcow2");
        top_file = vol_file(h, "top.qcow2");
        /* No capacity: the backing volume's; no format: qcow2. */
        assert_true(asprintf(&xml, "<volume><name>top.qcow2</name><backingStore><path>%s</path></backingStore></volume>",
                             base_file) > 0);
        top = harness_call_path(member, pool, POOL_INTERFACE, "CreateVolume", "st", xml);
        info = harness_qemu_img_info(h, top_file);
        assert_non_null(strstr(info, "\"format\": \"qcow2\""));
        assert_non_null(strstr(info, "\"virtual-size\": 33554432"));
        assert_true(asprintf(&want, "\"backing-filename\": \"%s\"", base_file) > 0);
        assert_non_null(strstr(info, want));
        assert_non_null(strstr(info, "\"backing-filename-format\": \"qcow2\""));
        assert_int_equal(get_u64(member, top, "Capacity"), 32 * MiB);
        /* Read back from the image's header into the volume XML. */
        got = vol_xml(member, top);
        free(want);
        assert_true(asprintf(&want, "<path>%s</path>", base_file) > 0);
        {
                const char *b = strstr(got, "<backingStore>"), *end = b ? strstr(b, "</backingStore>") : NULL;

                if (!end || !strstr(b, want) || strstr(b, want) > end || !strstr(b, "<format type='qcow2'/>"))
                        fail_msg("no <backingStore> with '%s' and format qcow2 in:\n%s", want, got);
        }
        free(got);
        got = vol_xml(member, base);
        assert_null(strstr(got, "backingStore"));

        /* A clone of the overlay is flattened: a raw image of the whole. */
        flat = clone_vol(member, pool, "<volume><name>flat.img</name><target><format type='raw'/></target></volume>", top);
        assert_string_equal(harness_get_string(member, flat, VOL_INTERFACE, "Format"), "raw");
        assert_int_equal(get_u64(member, flat, "Capacity"), 32 * MiB);

        /* Refused: a backing file that is no volume, a format that is not the backing volume's, a raw overlay. */
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "not a volume", pool, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>o.qcow2</name><backingStore><path>/etc/shadow</path></backingStore></volume>",
                           UINT64_C(0));
        free(xml);
        assert_true(asprintf(&xml, "<volume><name>o.qcow2</name><backingStore><path>%s</path><format type='raw'/>"
                                   "</backingStore></volume>", base_file) > 0);
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "is 'qcow2'", pool, POOL_INTERFACE, "CreateVolume", "st", xml,
                           UINT64_C(0));
        free(xml);
        assert_true(asprintf(&xml, "<volume><name>o.img</name><target><format type='raw'/></target>"
                                   "<backingStore><path>%s</path></backingStore></volume>", base_file) > 0);
        harness_call_fails(member, ERR("NotSupported"), "needs <target><format type='qcow2'/>", pool, POOL_INTERFACE,
                           "CreateVolume", "st", xml, UINT64_C(0));

        /* Wipe of the overlay drops its own data only: it stays an overlay of the same file, and reads show
         * the backing image again. */
        qemu_io(h, base_file, "write -P 0x5a 0 1M", "wrote 1048576/1048576 bytes");
        qemu_io(h, top_file, "write -P 0x33 0 64k", "wrote 65536/65536 bytes");
        qemu_io(h, top_file, "read -P 0x33 0 64k", "read 65536/65536 bytes");
        sd_bus_message_unref(harness_call_ok(member, top, VOL_INTERFACE, "Wipe", "t", UINT64_C(0)));
        free(info);
        info = harness_qemu_img_info(h, top_file);
        free(want);
        assert_true(asprintf(&want, "\"backing-filename\": \"%s\"", base_file) > 0);
        if (!strstr(info, want) || !strstr(info, "\"backing-filename-format\": \"qcow2\"") ||
            !strstr(info, "\"virtual-size\": 33554432"))
                fail_msg("the wiped overlay lost its backing file or size:\n%s", info);
        qemu_io(h, top_file, "read -P 0x5a 0 64k", "read 65536/65536 bytes");
        assert_int_equal(get_u64(member, top, "Capacity"), 32 * MiB);

        for (const char *v, *const *vv = (const char *const[]) { flat, top, base, NULL }; (v = *vv); vv++)
                sd_bus_message_unref(harness_call_ok(member, v, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

static char *volume_disk(const char *volume) {
        char *x;

        assert_true(asprintf(&x, "<disk type='volume' device='disk'><source pool='default' volume='%s'/>"
                                 "<target dev='vda' bus='virtio'/></disk>", volume) >= 0);
        return x;
}

/* Two users of group 'virtbus', both allowed volumes in 'default' by polkit: neither reaches the other's. */
static void test_owners(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *one = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *two = harness_bus_as(h, HARNESS_USER_VIRTBUS2);
        _cleanup_free_ char *pool = NULL, *vol = NULL, *file = NULL, *xml = NULL, *disk = NULL, *dom = NULL,
                            *taken = NULL, *mine = NULL;
        struct stat st;
        int fd;

        pool = setup_default_pool(h, root);
        vol = harness_call_path(one, pool, POOL_INTERFACE, "CreateVolume", "st",
                                "<volume><name>one.img</name><capacity unit='MiB'>4</capacity></volume>");
        file = vol_file(h, "one.img");
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_uid, harness_user_uid(h, HARNESS_USER_VIRTBUS));

        /* The other user: nothing on it, each refusal naming the volume. */
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img' of pool 'default' belongs to another user", vol,
                           VOL_INTERFACE, "Delete", "t", UINT64_C(0));
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", vol, VOL_INTERFACE, "Download", "httt", fd,
                           UINT64_C(0), UINT64_C(0), UINT64_C(0));
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", vol, VOL_INTERFACE, "Upload", "httt", fd,
                           UINT64_C(0), UINT64_C(0), UINT64_C(0));
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", vol, VOL_INTERFACE, "Wipe", "t", UINT64_C(0));
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", vol, VOL_INTERFACE, "Resize", "tt", 8 * MiB,
                           UINT64_C(0));
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", pool, POOL_INTERFACE, "CreateVolumeFrom", "sot",
                           "<volume><name>stolen.img</name></volume>", vol, UINT64_C(0));
        assert_true(asprintf(&xml, "<volume><name>over.qcow2</name><backingStore><path>%s</path></backingStore></volume>",
                             file) > 0);
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img'", pool, POOL_INTERFACE, "CreateVolume", "st", xml,
                           UINT64_C(0));
        close(fd);
        {
                _cleanup_free_ char *stolen = vol_file(h, "stolen.img"), *over = vol_file(h, "over.qcow2");
                assert_true(access(stolen, F_OK) < 0);
                assert_true(access(over, F_OK) < 0);
        }

        /* Nor as a disk of a domain of theirs. */
        disk = volume_disk("one.img");
        free(xml);
        assert_true(asprintf(&xml, "<domain type='test'><name>two-dom</name><memory unit='MiB'>128</memory>"
                                   "<os><type>hvm</type></os><devices>%s</devices></domain>", disk) >= 0);
        harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'one.img' of pool 'default' belongs to another user", M,
                           "DefineDomain", "st", xml, UINT64_C(0));

        /* Its owner's domain takes it; when the name is another user's by the next start, it does not. */
        dom = harness_define_test_domain(one, "one-dom", disk);
        harness_domain_call(one, dom, "Start");
        harness_domain_call(one, dom, "Destroy");
        sd_bus_message_unref(harness_call_ok(one, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        taken = harness_call_path(two, pool, POOL_INTERFACE, "CreateVolume", "st",
                                  "<volume><name>one.img</name><capacity unit='MiB'>4</capacity></volume>");
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'one.img' of pool 'default' belongs to another user", dom,
                           HARNESS_DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));

        /* Root may use anyone's volume. */
        mine = clone_vol(root, pool, "<volume><name>root-copy.img</name></volume>", taken);
        free(file);
        file = vol_file(h, "root-copy.img");
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_uid, 0);
        sd_bus_message_unref(harness_call_ok(root, taken, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, mine, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        harness_domain_call(one, dom, "Undefine");
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

static void cdrom_disk(char *buf, size_t size, const char *volume) {
        snprintf(buf, size, "<disk type='volume' device='cdrom'><source pool='default' volume='%s'/>"
                            "<target dev='sda' bus='sata'/><readonly/></disk>", volume);
}

/* Root's volumes (an installer ISO in 'default'): a user polkit lets use the pool may read them (Download,
 * a cdrom or <readonly/> disk of its domain, a clone of its own), never change them or use them writable;
 * another user's volume stays out of reach even read-only; a user polkit refuses reads nothing. */
static void test_root_volumes(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *one = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *two = harness_bus_as(h, HARNESS_USER_VIRTBUS2), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *pool = NULL, *iso = NULL, *data = NULL, *copy = NULL, *xml = NULL, *dom = NULL,
                            *theirs = NULL, *got = NULL;
        char disk[512];
        unsigned uid_one = harness_user_uid(h, HARNESS_USER_VIRTBUS);
        struct stat st;
        int fd;

        pool = setup_default_pool(h, root);
        assert_true(asprintf(&data, "%s/iso-data", harness_dir(h)) > 0);
        assert_true(asprintf(&copy, "%s/iso-copy", harness_dir(h)) > 0);
        write_sparse_file(data, 2 * MiB, (const unsigned[]) { 0, 1 }, 2);
        iso = upload_vol(root, pool, "installer.iso", 2, data);
        {
                _cleanup_free_ char *file = vol_file(h, "installer.iso");
                assert_int_equal(stat(file, &st), 0);
                assert_int_equal(st.st_uid, 0);
                assert_int_equal(st.st_mode & 0077, 0); /* not readable by the user itself */
        }

        /* Read: Download gives the same bytes. */
        fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        sd_bus_message_unref(harness_call_ok(one, iso, VOL_INTERFACE, "Download", "httt", fd, UINT64_C(0), UINT64_C(0),
                                             UINT64_C(0)));
        close(fd);
        assert_true(same_bytes(data, copy));

        /* Change: refused, naming the volume; nothing changed. */
        fd = open(data, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'installer.iso' of pool 'default' belongs to root", iso,
                           VOL_INTERFACE, "Upload", "httt", fd, UINT64_C(0), UINT64_C(0), UINT64_C(0));
        close(fd);
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'installer.iso'", iso, VOL_INTERFACE, "Wipe", "t", UINT64_C(0));
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'installer.iso'", iso, VOL_INTERFACE, "Delete", "t", UINT64_C(0));

        /* A cdrom of the user's domain: defined, started (the volume resolved again, read-only). */
        cdrom_disk(disk, sizeof disk, "installer.iso");
        dom = harness_define_test_domain(one, "iso-dom", disk);
        harness_domain_call(one, dom, "Start");
        harness_domain_call(one, dom, "Destroy");

        /* The same volume writable: refused, saying how it can be used. */
        snprintf(disk, sizeof disk, "<disk type='volume' device='disk'><source pool='default' volume='installer.iso'/>"
                                    "<target dev='vdb' bus='virtio'/></disk>");
        assert_true(asprintf(&xml, "<domain type='test'><name>iso-rw</name><memory unit='MiB'>128</memory>"
                                   "<os><type>hvm</type></os><devices>%s</devices></domain>", disk) >= 0);
        free(got);
        assert_true(asprintf(&got, "belongs to root: a domain of uid %u can use it only read-only", uid_one) > 0);
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, got, M, "DefineDomain", "st", xml, UINT64_C(0));
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, got, dom, HARNESS_DOMAIN_INTERFACE, "AttachDevice", "st", disk,
                           UINT64_C(2));

        /* Another user's volume, even as a cdrom: refused. */
        theirs = harness_call_path(two, pool, POOL_INTERFACE, "CreateVolume", "st",
                                   "<volume><name>two.iso</name><capacity unit='MiB'>1</capacity></volume>");
        cdrom_disk(disk, sizeof disk, "two.iso");
        free(xml);
        assert_true(asprintf(&xml, "<domain type='test'><name>iso-theirs</name><memory unit='MiB'>128</memory>"
                                   "<os><type>hvm</type></os><devices>%s</devices></domain>", disk) >= 0);
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'two.iso' of pool 'default' belongs to another user", M,
                           "DefineDomain", "st", xml, UINT64_C(0));

        /* Clone: root's volume into one of the user's own, the same bytes, the user's file (0600), which
         * the user may change and delete and another user may not; root's stays root's. */
        {
                _cleanup_free_ char *mine = clone_vol(one, pool, "<volume><name>my-installer.iso</name></volume>", iso),
                                    *file = vol_file(h, "my-installer.iso"), *file_root = vol_file(h, "installer.iso");

                assert_int_equal(stat(file, &st), 0);
                assert_int_equal(st.st_uid, uid_one);
                assert_int_equal(st.st_mode & 0777, 0600);
                assert_true(same_bytes(data, file));
                assert_int_equal(stat(file_root, &st), 0);
                assert_int_equal(st.st_uid, 0);
                harness_call_fails(two, SD_BUS_ERROR_ACCESS_DENIED, "'my-installer.iso' of pool 'default' belongs to another user",
                                   mine, VOL_INTERFACE, "Delete", "t", UINT64_C(0));
                sd_bus_message_unref(harness_call_ok(one, mine, VOL_INTERFACE, "Wipe", "t", UINT64_C(0)));
                sd_bus_message_unref(harness_call_ok(one, mine, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        }
        /* Another user's volume: not cloned, nothing made. */
        harness_call_fails(one, SD_BUS_ERROR_ACCESS_DENIED, "'two.iso' of pool 'default' belongs to another user", pool,
                           POOL_INTERFACE, "CreateVolumeFrom", "sot", "<volume><name>not-mine.iso</name></volume>", theirs,
                           UINT64_C(0));
        {
                _cleanup_free_ char *file = vol_file(h, "not-mine.iso");
                assert_int_equal(access(file, F_OK), -1);
        }
        /* A user polkit does not let use the pool clones nothing. */
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.storage.manage", pool,
                           POOL_INTERFACE, "CreateVolumeFrom", "sot", "<volume><name>plain.iso</name></volume>", iso,
                           UINT64_C(0));

        /* A user polkit does not let use the pool reads nothing. */
        fd = open(copy, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.storage.manage", iso,
                           VOL_INTERFACE, "Download", "httt", fd,
                           UINT64_C(0), UINT64_C(0), UINT64_C(0));
        close(fd);
        assert_int_equal(stat(copy, &st), 0);
        assert_int_equal(st.st_size, 0);

        harness_domain_call(one, dom, "Undefine");
        sd_bus_message_unref(harness_call_ok(two, theirs, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, iso, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
        unlink(data);
        unlink(copy);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clone),
                cmocka_unit_test(test_clone_cancel),
                cmocka_unit_test(test_overlay),
                cmocka_unit_test(test_owners),
                cmocka_unit_test(test_root_volumes),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
