/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Volume data through descriptors (test driver, real files, real polkitd with the example rules): a
 * group-virtbus user uploads 64 MiB through a pipe and downloads it back unchanged, with Progress
 * signals, an upload's pipe enlarged to 1 MiB, a download's left as it is; offset and length checks; holes kept through files,
 * read as zeroes through a pipe; a caller that disconnects mid-upload leaves no new volume behind (and an
 * old one as it was written), mid-download with its pipe full frees the volume; DeviceBusy while a job
 * runs; Resize and Wipe. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/param.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define POOL_INTERFACE "org.virtbus1.StoragePool"
#define VOL_INTERFACE "org.virtbus1.StorageVol"
#define ERR(name) "org.virtbus1.Error." name
#define MiB (UINT64_C(1) << 20)
#define SIZE (64 * MiB)
#define FULL_PIPE ((int) MiB) /* what a Download enlarges the caller's pipe to */

static char *raw_vol(sd_bus *bus, const char *pool, const char *name, uint64_t size) {
        _cleanup_free_ char *xml = NULL;

        assert_true(asprintf(&xml, "<volume><name>%s</name><capacity>%" PRIu64 "</capacity></volume>", name, size) > 0);
        return harness_call_path(bus, pool, POOL_INTERFACE, "CreateVolume", "st", xml);
}

static uint64_t get_u64(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, VOL_INTERFACE, property, &e, 't', &v), 0);
        return v;
}

/* FNV-1a over a file's bytes [off, off + len) (len 0: to the end). */
static uint64_t checksum(const char *file, uint64_t off, uint64_t len) {
        static char buf[1 << 16];
        uint64_t h = 0xcbf29ce484222325ULL, left = len ?: UINT64_MAX;
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        assert_true(lseek(fd, (off_t) off, SEEK_SET) >= 0);
        while (left > 0 && (n = read(fd, buf, MIN(left, sizeof buf))) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        h = (h ^ (uint8_t) buf[i]) * 0x100000001b3ULL;
                left -= (uint64_t) n;
        }
        close(fd);
        return h;
}

/* size bytes of a xorshift stream. */
static void write_random_file(const char *file, uint64_t size) {
        static uint64_t buf[1 << 13];
        uint64_t x = 0x9e3779b97f4a7c15ULL;
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        for (uint64_t done = 0; done < size; done += sizeof buf) {
                for (size_t i = 0; i < ELEMENTSOF(buf); i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        buf[i] = x;
                }
                assert_int_equal(write(fd, buf, sizeof buf), (ssize_t) sizeof buf);
        }
        close(fd);
}

/* A child that copies file into the pipe's write end (or, reverse, the read end into file), then exits. */
static pid_t pipe_child(int pipefd[2], const char *file, bool into_pipe) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = into_pipe ? open(file, O_RDONLY) : open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                ssize_t n;

                close(into_pipe ? pipefd[0] : pipefd[1]);
                if (fd < 0)
                        _exit(2);
                if (into_pipe)
                        while ((n = sendfile(pipefd[1], fd, NULL, 1 << 20)) > 0)
                                ;
                else
                        while ((n = splice(pipefd[0], NULL, fd, NULL, 1 << 20, 0)) > 0)
                                ;
                _exit(n < 0 ? 1 : 0);
        }
        close(into_pipe ? pipefd[1] : pipefd[0]);
        return pid;
}

static void wait_child(pid_t pid) {
        int status = 0;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void transfer_ok(sd_bus *bus, const char *vol, const char *method, int fd, uint64_t offset, uint64_t length) {
        sd_bus_message_unref(harness_call_ok(bus, vol, VOL_INTERFACE, method, "httt", fd, offset, length, UINT64_C(0)));
}

/* Both return the size of the pipe after the transfer. */
static int upload_file_via_pipe(sd_bus *bus, const char *vol, const char *file, uint64_t offset, uint64_t length) {
        int p[2], size;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = pipe_child(p, file, true);
        transfer_ok(bus, vol, "Upload", p[0], offset, length);
        size = fcntl(p[0], F_GETPIPE_SZ);
        close(p[0]);
        wait_child(pid);
        return size;
}

static int download_to_file_via_pipe(sd_bus *bus, const char *vol, const char *file, uint64_t offset, uint64_t length) {
        int p[2], size;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = pipe_child(p, file, false);
        transfer_ok(bus, vol, "Download", p[1], offset, length);
        size = fcntl(p[1], F_GETPIPE_SZ);
        close(p[1]);
        wait_child(pid);
        return size;
}

static char *setup_default_pool(Harness *h, sd_bus *root) {
        _cleanup_free_ char *xml = NULL, *dir = NULL;
        char *pool;

        assert_true(asprintf(&dir, "%s/pool-default", harness_dir(h)) > 0);
        assert_true(mkdir(dir, 0711) >= 0 || errno == EEXIST);
        assert_true(asprintf(&xml, "<pool type='dir'><name>default</name><target><path>%s/pool-default</path></target>"
                                   "</pool>", harness_dir(h)) > 0);
        pool = harness_call_path(root, M, "CreateStoragePool", "st", xml);
        return pool;
}

static char *vol_file(Harness *h, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/pool-default/%s", harness_dir(h), name) > 0);
        return p;
}

static void test_upload_download(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *vol = NULL, *src = NULL, *back = NULL, *part = NULL, *file = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        unsigned n_progress = 0;
        uint64_t last = 0, t0;
        struct stat st;
        int p[2], fd;

        assert_true(asprintf(&src, "%s/source", harness_dir(h)) > 0);
        assert_true(asprintf(&back, "%s/back", harness_dir(h)) > 0);
        assert_true(asprintf(&part, "%s/part", harness_dir(h)) > 0);
        write_random_file(src, SIZE);
        pool = setup_default_pool(h, root);
        vol = raw_vol(member, pool, "data.img", SIZE);
        file = vol_file(h, "data.img");

        /* 64 MiB through a pipe, and back through another; Progress on the way. */
        w = harness_watch_signal(member, vol, VOL_INTERFACE, "Progress");
        t0 = harness_now_usec();
        /* The caller's pipe comes back enlarged from its 64 KiB (fewer turns of its two ends). */
        assert_int_equal(upload_file_via_pipe(member, vol, src, 0, SIZE), (int) MiB);
        print_message("upload of 64 MiB through a pipe: %.1f ms\n", (harness_now_usec() - t0) / 1000.0);
        for (sd_bus_message *s; (s = harness_watch_next(w, 200000));) {
                uint64_t done, total;

                assert_int_equal(sd_bus_message_read(s, "tt", &done, &total), 1);
                assert_int_equal(total, SIZE);
                assert_true(done >= last && done <= total);
                last = done;
                n_progress++;
                sd_bus_message_unref(s);
        }
        assert_true(n_progress >= 1);
        assert_int_equal(last, SIZE);
        assert_true(checksum(file, 0, 0) == checksum(src, 0, 0));
        t0 = harness_now_usec();
        /* So does a download's (left at 64 KiB, the two ends took turns every 64 KiB). */
        assert_int_equal(download_to_file_via_pipe(member, vol, back, 0, 0), FULL_PIPE);
        print_message("download of 64 MiB through a pipe: %.1f ms\n", (harness_now_usec() - t0) / 1000.0);
        assert_int_equal(stat(back, &st), 0);
        assert_int_equal((uint64_t) st.st_size, SIZE);
        assert_true(checksum(back, 0, 0) == checksum(src, 0, 0));

        /* A part: 4 KiB at 1 MiB into a regular file, written from its position. */
        fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        transfer_ok(member, vol, "Download", fd, MiB, 4096);
        close(fd);
        assert_true(checksum(part, 0, 0) == checksum(src, MiB, 4096));
        /* ... and uploaded at another offset. */
        fd = open(part, O_RDONLY | O_CLOEXEC);
        transfer_ok(member, vol, "Upload", fd, 8 * MiB, 0);
        close(fd);
        assert_true(checksum(file, 8 * MiB, 4096) == checksum(src, MiB, 4096));

        /* Offset and length checks. */
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "past the end", vol, VOL_INTERFACE, "Upload", "httt", fd,
                           SIZE + 1, UINT64_C(0), UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "go past the end", vol, VOL_INTERFACE, "Download", "httt",
                           fd, SIZE - 4096, UINT64_C(8192), UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "go past the end", vol, VOL_INTERFACE, "Upload", "httt",
                           fd, UINT64_C(1), UINT64_MAX, UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, NULL, vol, VOL_INTERFACE, "Upload", "httt", fd,
                           UINT64_C(0), UINT64_C(0), UINT64_C(1));
        close(fd);
        /* A pipe that ends early. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "0123456789", 10), 10);
        close(p[1]);
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "ended after 10 of 4096 bytes", vol, VOL_INTERFACE,
                           "Upload", "httt", p[0], UINT64_C(0), UINT64_C(4096), UINT64_C(0));
        close(p[0]);
        /* Not readable / not writable. */
        fd = open(part, O_WRONLY | O_CLOEXEC);
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "not open for reading", vol, VOL_INTERFACE, "Upload",
                           "httt", fd, UINT64_C(0), UINT64_C(0), UINT64_C(0));
        close(fd);
        fd = open(part, O_RDONLY | O_CLOEXEC);
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "not open for writing", vol, VOL_INTERFACE, "Download",
                           "httt", fd, UINT64_C(0), UINT64_C(0), UINT64_C(0));
        close(fd);
        /* The other pool's rules: a plain user gets nothing. */
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL,
                           vol, VOL_INTERFACE, "Download", "httt", fd, UINT64_C(0), UINT64_C(0), UINT64_C(0));
        close(fd);
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* Holes stay holes through regular files, both ways; through a pipe they come as zeroes. */
static void test_sparse(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *vol = NULL, *src = NULL, *back = NULL, *file = NULL, *piped = NULL;
        struct stat st;
        int fd;

        assert_true(asprintf(&src, "%s/sparse-src", harness_dir(h)) > 0);
        assert_true(asprintf(&back, "%s/sparse-back", harness_dir(h)) > 0);
        assert_true(asprintf(&piped, "%s/sparse-piped", harness_dir(h)) > 0);
        fd = open(src, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) SIZE), 0);
        assert_int_equal(pwrite(fd, "data", 4, (off_t) (32 * MiB)), 4);
        close(fd);
        pool = setup_default_pool(h, root);
        vol = raw_vol(member, pool, "sparse.img", SIZE);
        file = vol_file(h, "sparse.img");
        /* The volume had data where the file has a hole: it goes. */
        fd = open(file, O_WRONLY | O_CLOEXEC);
        assert_int_equal(pwrite(fd, "old", 3, 0), 3);
        close(fd);

        fd = open(src, O_RDONLY | O_CLOEXEC);
        transfer_ok(member, vol, "Upload", fd, 0, 0);
        close(fd);
        assert_int_equal(stat(file, &st), 0);
        assert_true((uint64_t) st.st_blocks * 512 <= MiB);
        assert_true(checksum(file, 0, 0) == checksum(src, 0, 0));
        assert_true(get_u64(member, vol, "Allocation") <= MiB);

        fd = open(back, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        transfer_ok(member, vol, "Download", fd, 0, 0);
        close(fd);
        assert_int_equal(stat(back, &st), 0);
        assert_int_equal((uint64_t) st.st_size, SIZE);
        assert_true((uint64_t) st.st_blocks * 512 <= MiB);
        assert_true(checksum(back, 0, 0) == checksum(src, 0, 0));

        /* Through a pipe: every byte, the holes as zeroes (the reader writes them all). */
        assert_int_equal(download_to_file_via_pipe(member, vol, piped, 0, 0), FULL_PIPE);
        assert_int_equal(stat(piped, &st), 0);
        assert_int_equal((uint64_t) st.st_size, SIZE);
        assert_true(checksum(piped, 0, 0) == checksum(src, 0, 0));
        /* ... and a part across the data, from 1 MiB before it. */
        assert_int_equal(download_to_file_via_pipe(member, vol, piped, 31 * MiB, 2 * MiB), FULL_PIPE);
        assert_true(checksum(piped, 0, 0) == checksum(src, 31 * MiB, 2 * MiB));
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* Starts an Upload from a pipe on a connection of its own, feeds it 1 MiB, and drops the connection with
 * the pipe still open: the job must end by the disconnect alone. */
static void upload_then_disconnect(Harness *h, const char *vol_name, const char *pool, const char *existing) {
        _cleanup_free_ char *vol = NULL;
        static char chunk[1 << 20];
        sd_bus *conn = NULL;
        int p[2];

        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
        vol = existing ? strdup(existing) : raw_vol(conn, pool, vol_name, SIZE);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        memset(chunk, 'x', sizeof chunk);
        assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, vol, VOL_INTERFACE, "Upload", NULL, NULL,
                                             "httt", p[0], UINT64_C(0), UINT64_C(0), UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(conn) >= 0);
        close(p[0]);
        assert_int_equal(write(p[1], chunk, sizeof chunk), (ssize_t) sizeof chunk);
        usleep(300000);
        sd_bus_flush_close_unref(conn);
        /* Held open a while longer: the end of the pipe is not what stops the job. */
        usleep(1000000);
        close(p[1]);
}

/* Waits (bounded) until the volume takes a Resize to its size again: its job has ended. */
static int wait_vol_free(sd_bus *bus, const char *vol) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        int r;

        for (;;) {
                r = sd_bus_call_method(bus, HARNESS_SERVICE, vol, VOL_INTERFACE, "Resize", &e, NULL, "tt", SIZE,
                                       UINT64_C(0));
                if (r >= 0 || !sd_bus_error_has_name(&e, ERR("DeviceBusy")) || harness_now_usec() > deadline)
                        break;
                sd_bus_error_free(&e);
                usleep(50000);
        }
        sd_bus_error_free(&e);
        return r;
}

/* A Download into a pipe nobody reads, on a connection of its own: the pipe fills (all of its 64 KiB) and the
 * job waits for room; the caller's disconnect alone ends it, with the pipe still open at both ends. */
static void test_disconnect_download(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *vol = NULL, *src = NULL;
        sd_bus *conn = NULL;
        uint64_t deadline;
        int p[2], queued = 0;

        assert_true(asprintf(&src, "%s/source", harness_dir(h)) > 0);
        write_random_file(src, SIZE);
        pool = setup_default_pool(h, root);
        vol = raw_vol(member, pool, "out.img", SIZE);
        upload_file_via_pipe(member, vol, src, 0, SIZE);

        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, vol, VOL_INTERFACE, "Download", NULL, NULL,
                                             "httt", p[1], UINT64_C(0), UINT64_C(0), UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(conn) >= 0);
        deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        while (queued < FULL_PIPE && harness_now_usec() < deadline) {
                usleep(20000);
                assert_int_equal(ioctl(p[0], FIONREAD, &queued), 0);
        }
        assert_int_equal(queued, FULL_PIPE);
        harness_call_fails(member, ERR("DeviceBusy"), "busy with a download", vol, VOL_INTERFACE, "Delete", "t",
                           UINT64_C(0));
        sd_bus_flush_close_unref(conn);
        assert_true(wait_vol_free(member, vol) >= 0);
        /* What the pipe holds is the volume's start. */
        {
                static char buf[1 << 16];
                _cleanup_free_ char *head = NULL;
                int fd;

                assert_true(asprintf(&head, "%s/head", harness_dir(h)) > 0);
                fd = open(head, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                for (int got = 0; got < FULL_PIPE; got += (int) sizeof buf) {
                        assert_int_equal(read(p[0], buf, sizeof buf), (ssize_t) sizeof buf);
                        assert_int_equal(write(fd, buf, sizeof buf), (ssize_t) sizeof buf);
                }
                close(fd);
                assert_true(checksum(head, 0, 0) == checksum(src, 0, FULL_PIPE));
        }
        close(p[0]);
        close(p[1]);
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

static void test_disconnect(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *file = NULL, *old = NULL, *oldfile = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t deadline;
        char head[4] = {};
        int fd, r;

        pool = setup_default_pool(h, root);
        /* A new volume: gone again. */
        upload_then_disconnect(h, "half.img", pool, NULL);
        file = vol_file(h, "half.img");
        deadline = harness_now_usec() + 5000000;
        for (;;) {
                r = sd_bus_call_method(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "GetVolumeByName", &e, NULL, "s",
                                       "half.img");
                if (r < 0 || harness_now_usec() > deadline)
                        break;
                usleep(50000);
        }
        harness_assert_error(&e, ERR("NoSuchStorageVol"), NULL);
        sd_bus_error_free(&e);
        assert_int_equal(access(file, F_OK), -1);

        /* An old volume (written into before): what came stays, and the volume is free again. */
        old = raw_vol(member, pool, "old.img", SIZE);
        oldfile = vol_file(h, "old.img");
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        transfer_ok(member, old, "Upload", fd, 0, 0);
        close(fd);
        upload_then_disconnect(h, "old.img", pool, old);
        deadline = harness_now_usec() + 5000000;
        for (;;) {
                r = sd_bus_call_method(member, HARNESS_SERVICE, old, VOL_INTERFACE, "Resize", &e, NULL, "tt", SIZE,
                                       UINT64_C(0));
                if (r >= 0 || !sd_bus_error_has_name(&e, ERR("DeviceBusy")) || harness_now_usec() > deadline)
                        break;
                sd_bus_error_free(&e);
                usleep(50000);
        }
        assert_true(r >= 0);
        fd = open(oldfile, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, head, 4), 4);
        close(fd);
        assert_memory_equal(head, "xxxx", 4);
        sd_bus_message_unref(harness_call_ok(member, old, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* VIRTBUS_QEMU_IMG for this test's virtbusd: /usr/bin/qemu-img, held back while the file hold exists, failing
 * while the file fail exists. */
static char qemu_img_dir[] = "/tmp/virtbus-test-qemu-img-XXXXXX";

static void qemu_img_hold(bool hold) {
        harness_wrapper_flag(qemu_img_dir, "hold", hold);
}

static void qemu_img_fail(bool fail) {
        harness_wrapper_flag(qemu_img_dir, "fail", fail);
}

/* Keeps the answer of an asynchronous call. */
static int on_message_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(sd_bus_message **) userdata = sd_bus_message_ref(m);
        return 0;
}

static int on_held_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int *answered = userdata;

        *answered = sd_bus_message_is_method_error(m, NULL) ? -1 : 1;
        return 0;
}

/* method (Resize to capacity, or Wipe) on volume q while qemu-img is held: the volume answers DeviceBusy
 * (busy_message) and volume other answers a call, both before method's own answer, which comes once
 * qemu-img may run. */
static void held_call(sd_bus *bus, const char *q, const char *other, const char *method, const char *busy_message,
                      uint64_t capacity) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        int answered = 0;

        qemu_img_hold(true);
        if (streq(method, "Resize"))
                assert_true(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, q, VOL_INTERFACE, method, on_held_reply,
                                                     &answered, "tt", capacity, UINT64_C(0)) >= 0);
        else
                assert_true(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, q, VOL_INTERFACE, method, on_held_reply,
                                                     &answered, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(bus) >= 0);
        /* Until qemu-img runs the loop is free: these are answered, and method's answer is still to come. */
        harness_call_fails(bus, ERR("DeviceBusy"), busy_message, q, VOL_INTERFACE, "Delete", "t", UINT64_C(0));
        assert_string_equal(harness_get_string(bus, other, VOL_INTERFACE, "Format"), "raw");
        while (sd_bus_process(bus, NULL) > 0)
                ;
        assert_int_equal(answered, 0);
        qemu_img_hold(false);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(bus, NULL) == 0)
                        (void) sd_bus_wait(bus, 100000);
        assert_int_equal(answered, 1);
}

static void test_busy_resize_wipe(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *vol = NULL, *q = NULL, *file = NULL, *src = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        sd_bus_message *reply = NULL;
        sd_bus *conn = NULL;
        struct stat st;
        int p[2];

        assert_true(asprintf(&src, "%s/source", harness_dir(h)) > 0);
        write_random_file(src, SIZE);
        pool = setup_default_pool(h, root);
        vol = raw_vol(member, pool, "busy.img", SIZE);
        file = vol_file(h, "busy.img");

        /* While an upload waits for data, the volume is busy; its pool cannot stop. */
        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, vol, VOL_INTERFACE, "Upload", NULL, NULL,
                                             "httt", p[0], UINT64_C(0), UINT64_C(0), UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(conn) >= 0);
        close(p[0]);
        usleep(300000);
        harness_call_fails(member, ERR("DeviceBusy"), "busy with an upload", vol, VOL_INTERFACE, "Delete", "t",
                           UINT64_C(0));
        harness_call_fails(member, ERR("DeviceBusy"), NULL, vol, VOL_INTERFACE, "Wipe", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), NULL, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0));
        close(p[1]); /* end of file: the upload (length 0) is done */
        assert_true(sd_bus_call_method(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetId", NULL, NULL, "") >= 0);
        sd_bus_flush_close_unref(conn);

        upload_file_via_pipe(member, vol, src, 0, SIZE);
        /* Resize: grow, refuse to shrink without the flag, shrink with it. */
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Resize", "tt", 2 * SIZE, UINT64_C(0)));
        assert_int_equal(get_u64(member, vol, "Capacity"), 2 * SIZE);
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal((uint64_t) st.st_size, 2 * SIZE);
        assert_true(checksum(file, 0, SIZE) == checksum(src, 0, 0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, "shrink", vol, VOL_INTERFACE, "Resize", "tt", SIZE / 2,
                           UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INVALID_ARGS, NULL, vol, VOL_INTERFACE, "Resize", "tt", SIZE,
                           UINT64_C(2));
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Resize", "tt", SIZE / 2, UINT64_C(1)));
        assert_int_equal(get_u64(member, vol, "Capacity"), SIZE / 2);
        assert_true(checksum(file, 0, 0) == checksum(src, 0, SIZE / 2));

        /* Wipe: zeroes all over, with Progress. */
        w = harness_watch_signal(member, vol, VOL_INTERFACE, "Progress");
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Wipe", "t", UINT64_C(0)));
        reply = harness_watch_next(w, 2000000);
        assert_non_null(reply);
        sd_bus_message_unref(reply);
        {
                static char zero[1 << 16];
                _cleanup_free_ char *zfile = NULL;
                int fd;

                assert_true(asprintf(&zfile, "%s/zeroes", harness_dir(h)) > 0);
                fd = open(zfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                for (uint64_t i = 0; i < SIZE / 2; i += sizeof zero)
                        assert_int_equal(write(fd, zero, sizeof zero), (ssize_t) sizeof zero);
                close(fd);
                assert_true(checksum(file, 0, 0) == checksum(zfile, 0, 0));
        }

        /* qcow2: Resize through qemu-img, Wipe makes it an empty image again. qemu-img runs off the event
         * loop: while it is held back, another object's call is answered first and the volume is busy. */
        q = harness_call_path(member, pool, POOL_INTERFACE, "CreateVolume", "st",
                              "<volume><name>q.qcow2</name><capacity unit='MiB'>64</capacity>"
                              "<target><format type='qcow2'/></target></volume>");
        held_call(member, q, vol, "Resize", "busy with a resize", 128 * MiB);
        assert_int_equal(get_u64(member, q, "Capacity"), 128 * MiB);
        held_call(member, q, vol, "Wipe", "busy with a wipe", 0);
        assert_int_equal(get_u64(member, q, "Capacity"), 128 * MiB);
        assert_string_equal(harness_get_string(member, q, VOL_INTERFACE, "Format"), "qcow2");
        /* Not held: answered when qemu-img is done, as before. */
        sd_bus_message_unref(harness_call_ok(member, q, VOL_INTERFACE, "Resize", "tt", 96 * MiB, UINT64_C(1)));
        assert_int_equal(get_u64(member, q, "Capacity"), 96 * MiB);

        sd_bus_message_unref(harness_call_ok(member, q, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* CreateVolume of a qcow2 runs qemu-img off the event loop: while qemu-img is held back, other calls are
 * answered and the new volume is busy; the answer (the new volume) comes when the image is written. A
 * qemu-img that fails leaves no volume, file or record. (It ran on the loop: everything waited.) */
static void test_create_image_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *answer = NULL;
        _cleanup_free_ char *pool = NULL, *vol = NULL, *file = NULL, *bad = NULL, *records = NULL;
        const char *path = NULL;
        bool there = false;

        pool = setup_default_pool(h, root);
        file = vol_file(h, "new.qcow2");
        bad = vol_file(h, "bad.qcow2");
        assert_true(asprintf(&records, "%s/storage/filling", harness_config_dir(h)) > 0);
        assert_true(asprintf(&vol, "/org/virtbus1/storagevol/%s/new_2eqcow2", strrchr(pool, '/') + 1) > 0);

        qemu_img_hold(true);
        assert_true(sd_bus_call_method_async(member, &slot, HARNESS_SERVICE, pool, POOL_INTERFACE, "CreateVolume",
                                             on_message_reply, &answer, "st",
                                             "<volume><name>new.qcow2</name><capacity unit='MiB'>64</capacity>"
                                             "<target><format type='qcow2'/></target></volume>", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(member) >= 0);
        /* The volume appears (empty, busy) while qemu-img waits; the loop answers others meanwhile. */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !there && harness_now_usec() < end;) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;

                there = sd_bus_call_method(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "GetVolumeByName", &e, &reply, "s",
                                           "new.qcow2") >= 0;
                sd_bus_error_free(&e);
                sd_bus_message_unref(reply);
                if (!there)
                        usleep(20000);
        }
        assert_true(there);
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "ListVolumes", "t", UINT64_C(0)));
        harness_call_fails(member, ERR("DeviceBusy"), "busy with a create", vol, VOL_INTERFACE, "Delete", "t",
                           UINT64_C(0));
        assert_true(access(records, F_OK) == 0); /* recorded while its image is not written */
        while (sd_bus_process(member, NULL) > 0)
                ;
        assert_null(answer);
        qemu_img_hold(false);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !answer && harness_now_usec() < end;)
                if (sd_bus_process(member, NULL) == 0)
                        (void) sd_bus_wait(member, 100000);
        assert_non_null(answer);
        assert_false(sd_bus_message_is_method_error(answer, NULL));
        assert_int_equal(sd_bus_message_read(answer, "o", &path), 1);
        assert_string_equal(path, vol);
        assert_string_equal(harness_get_string(member, vol, VOL_INTERFACE, "Format"), "qcow2");
        assert_int_equal(get_u64(member, vol, "Capacity"), 64 * 1024 * 1024);
        assert_true(access(records, F_OK) < 0 && errno == ENOENT);
        {
                const char *info[] = { "/usr/bin/qemu-img", "info", "--output=json", file, NULL };
                HarnessResult res = {};

                assert_int_equal(harness_run(h, HARNESS_USER_ROOT, info, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
                assert_int_equal(res.status, 0);
                assert_non_null(strstr(res.out, "\"virtual-size\": 67108864"));
                assert_non_null(strstr(res.out, "\"format\": \"qcow2\""));
                harness_result_done(&res);
        }
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));

        /* qemu-img fails: an error, and nothing left. */
        qemu_img_fail(true);
        harness_call_fails(member, ERR("OperationFailed"), "qemu-img failed to create volume 'bad.qcow2'", pool,
                           POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>bad.qcow2</name><capacity unit='MiB'>64</capacity>"
                           "<target><format type='qcow2'/></target></volume>", UINT64_C(0));
        qemu_img_fail(false);
        harness_call_fails(member, ERR("NoSuchStorageVol"), NULL, pool, POOL_INTERFACE, "GetVolumeByName", "s",
                           "bad.qcow2");
        assert_true(access(bad, F_OK) < 0 && errno == ENOENT);
        assert_true(access(records, F_OK) < 0 && errno == ENOENT);
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* A clone cut short by the end of virtbusd (SIGKILL while its qemu-img is held back): after the restart the
 * half-made volume is gone, file and record, and its name can be used again. Before the record, the empty
 * clone was found again as a volume like any other. The source is a qcow2 image of root's (made here and
 * found by Refresh), so that the copy is qemu-img's. */
static void test_clone_cut_by_kill(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS), *conn = NULL;
        _cleanup_free_ char *pool = NULL, *vol = NULL, *file = NULL, *src = NULL, *records = NULL, *again = NULL,
                            *image = NULL;
        const char *xml = "<volume><name>cut.img</name><target><format type='raw'/></target></volume>";
        const char *convert[] = { "/usr/bin/qemu-img", "convert", "-f", "raw", "-O", "qcow2", NULL, NULL, NULL };
        const char *cmp[] = { "/usr/bin/qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", NULL, NULL, NULL };
        HarnessResult res = {};
        bool there = false;
        uint64_t sum;

        assert_true(asprintf(&src, "%s/source", harness_dir(h)) > 0);
        write_random_file(src, SIZE);
        pool = setup_default_pool(h, root);
        image = vol_file(h, "cut-src.qcow2");
        convert[6] = src;
        convert[7] = image;
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, convert, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
        sum = checksum(image, 0, 0);
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Refresh", ""));
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                        harness_call_ok(member, pool, POOL_INTERFACE, "GetVolumeByName", "s", "cut-src.qcow2");
                const char *o;

                assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
                vol = strdup(o);
        }
        file = vol_file(h, "cut.img");
        assert_true(asprintf(&records, "%s/storage/filling", harness_config_dir(h)) > 0);

        qemu_img_hold(true);
        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_VIRTBUS, &conn), 0);
        assert_true(sd_bus_call_method_async(conn, NULL, HARNESS_SERVICE, pool, POOL_INTERFACE, "CreateVolumeFrom", NULL,
                                             NULL, "sot", xml, vol, UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(conn) >= 0);
        /* The clone's volume is made, empty, and waits for qemu-img. */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !there && harness_now_usec() < end;) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;

                there = sd_bus_call_method(member, HARNESS_SERVICE, pool, POOL_INTERFACE, "GetVolumeByName", &e, &reply,
                                           "s", "cut.img") >= 0;
                sd_bus_error_free(&e);
                sd_bus_message_unref(reply);
                if (!there)
                        usleep(20000);
        }
        assert_true(there);
        assert_int_equal(access(file, F_OK), 0);

        (void) harness_daemon_kill(h, SIGKILL);
        sd_bus_flush_close_unref(conn);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        harness_call_fails(member, ERR("NoSuchStorageVol"), NULL, pool, POOL_INTERFACE, "GetVolumeByName", "s", "cut.img");
        assert_true(access(file, F_OK) < 0 && errno == ENOENT);
        assert_true(access(records, F_OK) < 0 && errno == ENOENT); /* no record left, nor its pool's directory */
        /* The source is untouched and free; the same clone, uncut, is whole and leaves no record. */
        qemu_img_hold(false);
        assert_true(checksum(image, 0, 0) == sum);
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                        harness_call_ok(member, pool, POOL_INTERFACE, "CreateVolumeFrom", "sot", xml, vol, UINT64_C(0));
                const char *o;

                assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
                again = strdup(o);
        }
        cmp[7] = src;
        cmp[8] = file;
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, cmp, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
        assert_true(access(records, F_OK) < 0 && errno == ENOENT);
        sd_bus_message_unref(harness_call_ok(member, again, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_upload_download),
                cmocka_unit_test(test_sparse),
                cmocka_unit_test(test_disconnect),
                cmocka_unit_test(test_disconnect_download),
                cmocka_unit_test(test_busy_resize_wipe),
                cmocka_unit_test(test_clone_cut_by_kill),
                cmocka_unit_test(test_create_image_off_loop),
        };

        _cleanup_free_ char *script = NULL;
        int r;

        harness_wrapper_make(qemu_img_dir, "qemu-img", "/usr/bin/qemu-img");
        assert_true(asprintf(&script, "%s/qemu-img", qemu_img_dir) > 0);
        assert_int_equal(setenv("VIRTBUS_QEMU_IMG", script, 1), 0);
        r = harness_run_group(tests, &(HarnessOptions) {});
        harness_wrapper_remove(qemu_img_dir, "qemu-img");
        return r;
}
