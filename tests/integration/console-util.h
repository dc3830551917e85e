/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* For the console tests: OpenConsole/OpenGraphics descriptors, reading them with a deadline, and
 * counting a process's descriptors. */
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The descriptor method returns (a copy of it), or -1 with *e set. */
static inline int console_open_fd(sd_bus *bus, const char *path, const char *method, const char *types,
                                  sd_bus_error *e, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;
        int fd, r;

        assert_int_equal(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, "org.virtbus1.Domain", method),
                         0);
        va_start(ap, e);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        assert_true(r >= 0);
        r = sd_bus_call(bus, m, 60 * HARNESS_USEC_PER_SEC, e, &reply);
        if (r < 0)
                return -1;
        assert_int_equal(sd_bus_message_read(reply, "h", &fd), 1);
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        assert_true(fd >= 0);
        return fd;
}

static inline int console_open(sd_bus *bus, const char *path, const char *device, uint64_t flags, sd_bus_error *e) {
        return console_open_fd(bus, path, "OpenConsole", "st", e, device, flags);
}

/* Reads from fd into buf (appending, NUL-terminated) until needle shows up (true) or end-of-file or the
 * deadline (false). */
static inline bool console_read_until(int fd, char *buf, size_t size, const char *needle, uint64_t timeout_usec) {
        uint64_t end = harness_now_usec() + timeout_usec;
        size_t n = strlen(buf);

        while (!strstr(buf, needle)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = harness_now_usec();
                ssize_t k;

                if (now >= end || poll(&p, 1, (int) ((end - now) / 1000) + 1) <= 0)
                        return false;
                if (n + 1 >= size) { /* keep the tail */
                        memmove(buf, buf + size / 2, n - size / 2 + 1);
                        n -= size / 2;
                }
                k = read(fd, buf + n, size - n - 1);
                if (k <= 0)
                        return false;
                n += (size_t) k;
                buf[n] = 0;
        }
        return true;
}

/* Whether fd reaches end-of-file (after whatever is still buffered) within the timeout. */
static inline bool console_sees_eof(int fd, uint64_t timeout_usec) {
        uint64_t end = harness_now_usec() + timeout_usec;
        char b[4096];

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = harness_now_usec();
                ssize_t k;

                if (now >= end || poll(&p, 1, (int) ((end - now) / 1000) + 1) <= 0)
                        return false;
                k = read(fd, b, sizeof b);
                if (k == 0 || (k < 0 && errno == ECONNRESET))
                        return true;
                if (k < 0)
                        return false;
        }
}

static inline void console_write(int fd, const char *s) {
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t) strlen(s));
}

static inline unsigned count_fds(pid_t pid) {
        char path[64];
        unsigned n = 0;
        DIR *d;

        snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
        d = opendir(path);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* polkit said no to a caller outside the example rules' group (no agent: one of these). */
static inline void assert_refused(const sd_bus_error *e) {
        assert_true(sd_bus_error_has_names(e, SD_BUS_ERROR_ACCESS_DENIED,
                                           SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED));
}

/* The tiny guest (tests/guest) with a shell on its serial port (serial0, also the console), a second serial
 * port into a file (serial1), VGA and a VNC display listening nowhere. */
static inline char *console_guest_xml(Harness *h, const char *name) {
        const char *g = harness_guest_dir(h);
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='qemu'>\n"
                             "  <name>%s</name>\n"
                             "  <memory unit='MiB'>192</memory>\n"
                             "  <vcpu>1</vcpu>\n"
                             "  <os>\n"
                             "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                             "    <kernel>%s/vmlinuz</kernel>\n"
                             "    <initrd>%s/initrd.gz</initrd>\n"
                             "    <cmdline>console=ttyS0 panic=-1 virtbus.shell</cmdline>\n"
                             "  </os>\n"
                             "  <features><acpi/></features>\n"
                             "  <devices>\n"
                             "    <serial type='pty'><target port='0'/></serial>\n"
                             "    <serial type='file'><source path='%s/%s.serial1'/><target port='1'/></serial>\n"
                             "    <console type='pty'><target type='serial' port='0'/></console>\n"
                             "    <graphics type='vnc'><listen type='none'/></graphics>\n"
                             "    <video><model type='vga'/></video>\n"
                             "  </devices>\n"
                             "</domain>\n",
                             name, g, g, harness_dir(h), name) >= 0);
        return x;
}

/* Screenshot of screen 0: a copy of the PNG (to free). */
static inline void *console_screenshot(sd_bus *bus, const char *path, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, "org.virtbus1.Domain", "Screenshot", "ut", 0U, UINT64_C(0));
        const void *p;
        size_t n;
        void *copy;

        assert_true(sd_bus_message_read_array(reply, 'y', &p, &n) >= 0);
        copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, p, n);
        *ret_n = n;
        return copy;
}

/* The session holder has on device is taken over: a plain open answers DeviceBusy naming the device, a
 * forced one succeeds, and holder (closed here) reads end-of-file. Returns the new session. */
static inline int console_take_over(sd_bus *bus, const char *path, const char *device, int holder) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char quoted[64];
        int fd;

        snprintf(quoted, sizeof quoted, "'%s'", device);
        assert_int_equal(console_open(bus, path, device, 0, &e), -1);
        harness_assert_error(&e, "org.virtbus1.Error.DeviceBusy", quoted);
        sd_bus_error_free(&e);
        fd = console_open(bus, path, device, 1, &e);
        assert_true(fd >= 0);
        assert_true(console_sees_eof(holder, 10 * HARNESS_USEC_PER_SEC));
        close(holder);
        return fd;
}
