/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image files: a whole image copied by qemu-img convert in a job's thread (its progress read from its
 * output), and the backing file a qcow2 header names. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/storage-backend.h"
#include "host/process.h"
#include "util/log.h"
#include "util/macro.h"

/* The QCOW2 header fields we read (all big-endian). */
#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_BACKING_OFFSET 8 /* u64 offset of the backing file name */
#define QCOW2_BACKING_SIZE 16  /* u32 its length */
#define QCOW2_V2_HEADER 72
#define QCOW2_V3_HEADER_LENGTH 100 /* u32 */
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_END 0
#define QCOW2_MAX_EXTENSIONS 64

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static uint64_t get_be(const uint8_t *p, size_t n) {
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

/* The backing format header extension, if there is one: its text into fmt (NUL-ended). */
static void read_backing_format(int fd, uint64_t header_end, uint64_t limit, char *fmt, size_t size) {
        uint64_t pos = header_end;

        for (int i = 0; i < QCOW2_MAX_EXTENSIONS && pos + 8 <= limit; i++) {
                uint8_t ext[8];
                uint32_t type, len;

                if (pread(fd, ext, sizeof ext, (off_t) pos) != (ssize_t) sizeof ext)
                        return;
                type = (uint32_t) get_be(ext, 4);
                len = (uint32_t) get_be(ext + 4, 4);
                if (type == QCOW2_EXT_END)
                        return;
                if (type == QCOW2_EXT_BACKING_FORMAT && len > 0 && len < size) {
                        if (pread(fd, fmt, len, (off_t) pos + 8) == (ssize_t) len)
                                fmt[len] = 0;
                        return;
                }
                pos += 8 + (((uint64_t) len + 7) & ~UINT64_C(7));
        }
}

int storage_image_read_backing(int fd, char **ret_path, StorageVolFormat *ret_format) {
        uint8_t header[QCOW2_V3_HEADER_LENGTH + 4];
        char fmt[32] = "";
        uint64_t offset, header_end;
        uint32_t size, version;
        char *path;

        *ret_path = NULL;
        *ret_format = STORAGE_VOL_FORMAT_NONE;
        if (pread(fd, header, sizeof header, 0) != (ssize_t) sizeof header || memcmp(header, QCOW2_MAGIC, 4) != 0)
                return 0;
        version = (uint32_t) get_be(header + 4, 4);
        offset = get_be(header + QCOW2_BACKING_OFFSET, 8);
        size = (uint32_t) get_be(header + QCOW2_BACKING_SIZE, 4);
        if (offset == 0 || size == 0)
                return 0;
        if (size > 1023) /* qcow2's own limit */
                return -EBADMSG;
        header_end = version >= 3 ? get_be(header + QCOW2_V3_HEADER_LENGTH, 4) : QCOW2_V2_HEADER;
        read_backing_format(fd, header_end, offset, fmt, sizeof fmt);
        path = malloc(size + 1);
        if (!path)
                return -ENOMEM;
        if (pread(fd, path, size, (off_t) offset) != (ssize_t) size || memchr(path, 0, size)) {
                free(path);
                return -EBADMSG;
        }
        path[size] = 0;
        *ret_path = path;
        if (fmt[0]) {
                StorageVolFormat f = storage_vol_format_from_string(fmt);

                *ret_format = f < 0 ? STORAGE_VOL_FORMAT_NONE : f;
        }
        return 1;
}

/* qemu-img -p writes "    (12.34/100%)\r"; the last such figure in buf, or -1. */
static double last_percent(const char *buf) {
        const char *p = buf, *q;
        double v = -1;

        while ((q = strchr(p, '('))) {
                double x;

                if (sscanf(q, "(%lf/100%%)", &x) == 1)
                        v = x;
                p = q + 1;
        }
        return v;
}

/* Keeps the last line of what qemu-img said that is not progress, for the error message. */
static void keep_message(char *out, size_t size, const char *buf) {
        const char *line = buf;

        for (const char *p = buf;; p++)
                if (*p == '\n' || *p == '\r' || *p == 0) {
                        size_t n = (size_t) (p - line);

                        if (n > 0 && !memchr(line, '(', MIN(n, (size_t) 8)) && n < size) {
                                memcpy(out, line, n);
                                out[n] = 0;
                        }
                        if (*p == 0)
                                return;
                        line = p + 1;
                }
}

int storage_image_convert(int in_fd, StorageVolFormat in_format, int out_fd, StorageVolFormat out_format,
                          uint64_t total, uint64_t *done, int cancel_fd, VbError *reterr) {
        char in[32], out[32], message[256] = "";
        const char *argv[] = { storage_qemu_img_path(), "convert", "-p", "-n", "--target-is-zero",
                               "-f", storage_vol_format_to_string(in_format), "-O",
                               storage_vol_format_to_string(out_format), in, out, NULL };
        _cleanup_close_ int pidfd = -EBADF, rd = -EBADF, wr = -EBADF;
        int pipefd[2], keep[] = { in_fd, out_fd }, status = 0, r;
        bool gone = false, cancel = false;
        char buf[4096];
        pid_t pid;

        snprintf(in, sizeof in, "/dev/fd/%d", in_fd);
        snprintf(out, sizeof out, "/dev/fd/%d", out_fd);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make a pipe: %s", strerror(errno));
        rd = pipefd[0];
        wr = pipefd[1];
        r = host_process_spawn(argv, wr, keep, ELEMENTSOF(keep), &pid);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", argv[0], strerror(-r));
        close(wr);
        wr = -EBADF;
        pidfd = host_process_open_fd(pid);
        while (!gone) {
                struct pollfd p[2] = { { .fd = rd, .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
                ssize_t n;
                double pc;

                if (poll(p, cancel_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (cancel_fd >= 0 && p[1].revents) {
                        cancel = true;
                        break;
                }
                n = read(rd, buf, sizeof buf - 1);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0) {
                        gone = true; /* qemu-img closed its output: it is ending */
                        break;
                }
                buf[n] = 0;
                pc = last_percent(buf);
                if (pc >= 0)
                        __atomic_store_n(done, (uint64_t) ((double) total * MIN(pc, 100.0) / 100.0), __ATOMIC_RELAXED);
                keep_message(message, sizeof message, buf);
        }
        if (!gone) {
                (void) host_process_terminate(pid, pidfd, 1000000);
                return cancel ? -ECANCELED
                              : vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to follow qemu-img: %s",
                                             strerror(errno));
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to wait for qemu-img: %s",
                                            strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "qemu-img convert failed (status %d)%s%s", status,
                                    message[0] ? ": " : ".", message);
        __atomic_store_n(done, total, __ATOMIC_RELAXED);
        return 0;
}
