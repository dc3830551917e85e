/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* core/storage-job.c: the copy itself, without a bus: pipe into a file and back, file to file with its
 * holes kept, offsets, a pipe that ends early (with and without until_eof), cancel through the eventfd,
 * Wipe, a clone (raw to raw; raw to qcow2 by qemu-img, whose cancel ends it), and the kind table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/storage-job.h"

#define MiB (1U << 20)

static char dir[] = "/tmp/virtbus-storage-job-XXXXXX";

static int file_of(const char *name, uint64_t size) {
        char path[128];
        int fd;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) size), 0);
        return fd;
}

static void test_kind_table(void **state) {
        for (int i = 0; i < (int) storage_job_kind_table_size(); i++) {
                assert_non_null(storage_job_kind_to_string(i));
                assert_int_equal(storage_job_kind_from_string(storage_job_kind_to_string(i)), i);
        }
        assert_null(storage_job_kind_to_string(_STORAGE_JOB_KIND_MAX));
        assert_int_equal(storage_job_kind_from_string("nope"), -EINVAL);
}

static void test_pipe_round_trip(void **state) {
        static char data[3 * MiB], back[3 * MiB];
        int vol = file_of("vol", 4 * MiB), p[2];
        VbError e = VB_ERROR_NULL;
        uint64_t done = 0;
        pid_t pid;

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (char) (i * 7 + i / 4096);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                _exit(write(p[1], data, sizeof data) == (ssize_t) sizeof data ? 0 : 1);
        }
        close(p[1]);
        /* Up to the end of the volume (4 MiB from 512 KiB: room), but the pipe ends at 3 MiB: fine with until_eof. */
        assert_int_equal(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_UPLOAD, .fd = p[0], .vol_fd = vol,
                                                           .offset = MiB / 2, .length = 4 * MiB - MiB / 2,
                                                           .until_eof = true },
                                          &done, -1, &e),
                         (int64_t) sizeof data);
        assert_int_equal(done, sizeof data);
        close(p[0]);
        assert_int_equal(pread(vol, back, sizeof back, MiB / 2), (ssize_t) sizeof back);
        assert_memory_equal(back, data, sizeof data);

        /* Back through a pipe. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        if (pid == 0) {
                close(p[0]);
                _exit(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_DOWNLOAD, .fd = p[1], .vol_fd = vol,
                                                        .offset = MiB / 2, .length = sizeof data },
                                       &done, -1, NULL) == (int64_t) sizeof data ? 0 : 1);
        }
        close(p[1]);
        memset(back, 0, sizeof back);
        for (size_t got = 0; got < sizeof back;) {
                ssize_t n = read(p[0], back + got, sizeof back - got);
                assert_true(n > 0);
                got += (size_t) n;
        }
        close(p[0]);
        assert_memory_equal(back, data, sizeof data);
        close(vol);
        vb_error_free(&e);
}

static void test_pipe_short(void **state) {
        int vol = file_of("short", MiB), p[2];
        VbError e = VB_ERROR_NULL;
        uint64_t done = 0;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], "abc", 3), 3);
        close(p[1]);
        assert_true(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_UPLOAD, .fd = p[0], .vol_fd = vol,
                                                      .length = 100 },
                                     &done, -1, &e) < 0);
        assert_non_null(strstr(e.message, "ended after 3 of 100 bytes"));
        vb_error_free(&e);
        close(p[0]);
        close(vol);
}

static void test_sparse_files(void **state) {
        int src = file_of("sparse-src", 16 * MiB), vol = file_of("sparse-vol", 16 * MiB), out = file_of("sparse-out", 0);
        VbError e = VB_ERROR_NULL;
        uint64_t done = 0;
        struct stat st;
        char c = 0;

        assert_int_equal(pwrite(src, "data", 4, 8 * MiB), 4);
        assert_int_equal(pwrite(vol, "old", 3, 0), 3); /* where the source has a hole */
        assert_int_equal(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_UPLOAD, .fd = src, .vol_fd = vol,
                                                           .length = 16 * MiB },
                                          &done, -1, &e),
                         16 * MiB);
        assert_int_equal(done, 16 * MiB);
        assert_int_equal(pread(vol, &c, 1, 0), 1);
        assert_int_equal(c, 0);
        assert_int_equal(fstat(vol, &st), 0);
        assert_true((uint64_t) st.st_blocks * 512 <= MiB);
        assert_int_equal(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_DOWNLOAD, .fd = out, .vol_fd = vol,
                                                           .length = 16 * MiB },
                                          &done, -1, &e),
                         16 * MiB);
        assert_int_equal(fstat(out, &st), 0);
        assert_int_equal(st.st_size, 16 * MiB);
        assert_true((uint64_t) st.st_blocks * 512 <= MiB);
        {
                char buf[4];
                assert_int_equal(pread(out, buf, 4, 8 * MiB), 4);
                assert_memory_equal(buf, "data", 4);
        }
        close(src);
        close(vol);
        close(out);
}

static void test_cancel_and_wipe(void **state) {
        int vol = file_of("cancel", 8 * MiB), p[2], efd = eventfd(0, EFD_CLOEXEC);
        VbError e = VB_ERROR_NULL;
        uint64_t done = 0;
        char c = 1;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        /* Nothing comes through the pipe (its writer stays): only the cancel ends the wait. */
        assert_int_equal(eventfd_write(efd, 1), 0);
        assert_int_equal(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_UPLOAD, .fd = p[0], .vol_fd = vol,
                                                           .length = MiB },
                                          &done, efd, &e),
                         -ECANCELED);
        close(p[0]);
        close(p[1]);
        close(efd);

        assert_int_equal(pwrite(vol, "xyz", 3, 5 * MiB), 3);
        assert_int_equal(storage_copy_run(&(StorageCopy) { .kind = STORAGE_JOB_WIPE, .fd = -1, .vol_fd = vol,
                                                           .length = 8 * MiB },
                                          &done, -1, &e),
                         8 * MiB);
        assert_int_equal(pread(vol, &c, 1, 5 * MiB), 1);
        assert_int_equal(c, 0);
        close(vol);
}

/* A clone copies the whole image; a cancel stops it, qemu-img's included. */
static void test_clone(void **state) {
        static char data[MiB], back[MiB];
        int src = file_of("clone-src", 4 * MiB), dst = file_of("clone-dst", 4 * MiB), q, efd;
        VbError e = VB_ERROR_NULL;
        uint64_t done = 0;
        StorageCopy c = { .kind = STORAGE_JOB_CLONE, .fd = src, .vol_fd = dst, .length = 4 * MiB,
                          .from_format = STORAGE_VOL_FORMAT_RAW, .to_format = STORAGE_VOL_FORMAT_RAW };

        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (char) (i * 13 + 5);
        assert_int_equal(pwrite(src, data, sizeof data, 2 * MiB), (ssize_t) sizeof data);
        assert_int_equal(storage_copy_run(&c, &done, -1, &e), 4 * MiB);
        assert_int_equal(done, 4 * MiB);
        assert_int_equal(pread(dst, back, sizeof back, 2 * MiB), (ssize_t) sizeof back);
        assert_memory_equal(data, back, sizeof data);

        efd = eventfd(0, EFD_CLOEXEC);
        assert_int_equal(eventfd_write(efd, 1), 0);
        assert_int_equal(storage_copy_run(&c, &done, efd, &e), -ECANCELED);
        if (access("/usr/bin/qemu-img", X_OK) == 0) {
                /* qemu-img is started, then ended by the cancel; the target stays what it was. */
                q = file_of("clone-q", 0);
                c.vol_fd = q;
                c.to_format = STORAGE_VOL_FORMAT_QCOW2;
                assert_int_equal(storage_copy_run(&c, &done, efd, &e), -ECANCELED);
                close(q);
        }
        close(efd);
        close(src);
        close(dst);
        vb_error_free(&e);
}

static int setup(void **state) {
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[128];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kind_table),
                cmocka_unit_test(test_pipe_round_trip),
                cmocka_unit_test(test_pipe_short),
                cmocka_unit_test(test_sparse_files),
                cmocka_unit_test(test_cancel_and_wipe),
                cmocka_unit_test(test_clone),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
