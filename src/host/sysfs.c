/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "host/host.h"
#include "host/sysfs.h"
#include "util/fileio.h"
#include "util/log.h"

char *host_sysfs_path(const char *format, ...) {
        _cleanup_free_ char *rel = NULL;
        char *p;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&rel, format, ap);
        va_end(ap);
        if (r < 0)
                return NULL;
        if (asprintf(&p, "%s/%s", host_sysfs_root(), rel) < 0)
                return NULL;
        return p;
}

bool host_sysfs_is_real(void) {
        return streq(host_sysfs_root(), "/sys");
}

int host_sysfs_read(const char *path, char **ret) {
        char *s;
        size_t n;
        int r;

        r = read_full_file(path, 64 * 1024, &s, &n);
        if (r < 0)
                return r;
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = 0;
        *ret = s;
        return 0;
}

static int read_number(const char *path, int base, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        unsigned long long v;
        char *end;
        int r;

        r = host_sysfs_read(path, &s);
        if (r < 0)
                return r;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno != 0 || end == s || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int host_sysfs_read_u64(const char *path, uint64_t *ret) {
        return read_number(path, 0, ret);
}

int host_sysfs_read_hex(const char *path, uint64_t *ret) {
        return read_number(path, 16, ret);
}

int host_sysfs_write(const char *path, const char *value) {
        size_t n = strlen(value);
        ssize_t k;
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_debug_errno(errno, "Failed to open '%s': %m", path);
        k = write(fd, value, n);
        if (k < 0)
                r = log_debug_errno(errno, "Failed to write '%s' to '%s': %m", value, path);
        else if ((size_t) k != n)
                r = -EIO;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

int host_sysfs_link_name(const char *path, char **ret) {
        char buf[4096];
        const char *slash;
        ssize_t n;

        n = readlink(path, buf, sizeof buf - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        slash = strrchr(buf, '/');
        *ret = strdup(slash ? slash + 1 : buf);
        return *ret ? 0 : -ENOMEM;
}
