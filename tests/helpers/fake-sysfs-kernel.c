/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-sysfs-kernel ROOT: plays the kernel's part for a fake sysfs tree (tests/data/sysfs/make-fake-sysfs.py),
 * because this machine has no SR-IOV, IOMMU or VFIO to test against. It watches the files the kernel
 * acts on with inotify and does what the kernel would when they are written:
 *   bus/pci/drivers/D/unbind   ADDR   the device loses its driver links
 *   bus/pci/drivers/D/bind     ADDR   the device gets driver D
 *   bus/pci/drivers_probe      ADDR   an unbound device gets the driver named in its driver_override, or
 *                                     else the one whose .fake-ids list its vendor and device
 *   DEV/driver_override        ""     reads back as "(null)"
 *   DEV/sriov_numvfs           N      VFs removed / created: device dirs, virtfnN and physfn links, an
 *                                     IOMMU group each, probed when sriov_drivers_autoprobe is 1
 * The daemon under test runs unchanged: it only writes files. Prints "ready" on stdout once watching;
 * runs until SIGTERM. Files that are not regular files are left alone: a test that makes one a FIFO plays
 * the kernel's part for it itself (a write that hangs until the test reads it). Used by the unit and integration tests and by the test driver's simulated host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root;
static int ifd;

typedef struct Watch {
        int wd;
        char *path;
} Watch;
static Watch *watches;
static size_t n_watches;

static void die(const char *what) {
        fprintf(stderr, "fake-sysfs-kernel: %s: %s\n", what, strerror(errno));
        exit(1);
}

static char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                die("vasprintf");
        va_end(ap);
        return s;
}

/* Reads a regular file only. A test holds a file at a FIFO (the kernel busy with it) and plays both ends
 * itself: an open of that FIFO here, even a short one, would be the partner virtbusd's open waits for, and
 * take the data the test waits for. So the file is looked at through O_PATH (no partner) and opened
 * through that descriptor only if it is regular. */
static char *read_trim(const char *path) {
        char buf[256] = "", proc[64];
        struct stat st;
        ssize_t n;
        int fd, pfd = open(path, O_PATH | O_CLOEXEC);

        if (pfd < 0)
                return NULL;
        if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(pfd);
                return NULL;
        }
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        fd = open(proc, O_RDONLY | O_CLOEXEC);
        close(pfd);
        if (fd < 0)
                return NULL;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
                return NULL;
        buf[n] = 0;
        while (n > 0 && strchr(" \n\t", buf[n - 1]))
                buf[--n] = 0;
        return strdup(buf);
}

static void write_file(const char *path, const char *s, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0 || write(fd, s, n) != (ssize_t) n)
                die(path);
        close(fd);
}

static void write_str(const char *path, const char *s) {
        write_file(path, s, strlen(s));
}

static bool is_regular(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void watch(const char *path) {
        int wd;

        if (!is_regular(path))
                return;
        wd = inotify_add_watch(ifd, path, IN_CLOSE_WRITE);

        if (wd < 0)
                return;
        for (size_t i = 0; i < n_watches; i++)
                if (watches[i].wd == wd)
                        return;
        watches = realloc(watches, (n_watches + 1) * sizeof(Watch));
        watches[n_watches++] = (Watch) { wd, strdup(path) };
}

static const char *watch_path(int wd) {
        for (size_t i = 0; i < n_watches; i++)
                if (watches[i].wd == wd)
                        return watches[i].path;
        return NULL;
}

static char *dev_dir(const char *addr) {
        char *p = fmt("%s/bus/pci/devices/%s", root, addr), *real = realpath(p, NULL);

        free(p);
        return real;
}

static void bind_driver(const char *addr, const char *drv) {
        char *dir = dev_dir(addr), *l1, *l2, *d;

        d = fmt("%s/bus/pci/drivers/%s", root, drv);
        if (!dir || access(d, F_OK) < 0) {
                free(dir);
                free(d);
                return;
        }
        l1 = fmt("%s/driver", dir);
        l2 = fmt("%s/%s", d, addr);
        if (access(l1, F_OK) < 0) {
                (void) symlink(d, l1);
                (void) symlink(dir, l2);
        }
        free(l1);
        free(l2);
        free(d);
        free(dir);
}

static void unbind_driver(const char *addr, const char *drv) {
        char *dir = dev_dir(addr), *l1, *l2;

        if (!dir)
                return;
        l1 = fmt("%s/driver", dir);
        l2 = fmt("%s/bus/pci/drivers/%s/%s", root, drv, addr);
        (void) unlink(l1);
        (void) unlink(l2);
        free(l1);
        free(l2);
        free(dir);
}

/* The driver whose .fake-ids list vendor:device. */
static char *match_driver(const char *vendor, const char *device) {
        char *dpath = fmt("%s/bus/pci/drivers", root), *want, *found = NULL;
        DIR *d = opendir(dpath);
        struct dirent *de;

        want = fmt("%s %s", vendor + 2, device + 2); /* "0x8086" -> "8086" */
        while (d && !found && (de = readdir(d))) {
                char *ids, *p;
                FILE *f;
                char line[64];

                if (de->d_name[0] == '.')
                        continue;
                ids = fmt("%s/%s/.fake-ids", dpath, de->d_name);
                f = fopen(ids, "re");
                while (f && fgets(line, sizeof line, f)) {
                        line[strcspn(line, "\n")] = 0;
                        if (strcmp(line, want) == 0)
                                found = strdup(de->d_name);
                }
                if (f)
                        fclose(f);
                free(ids);
                (void) p;
        }
        if (d)
                closedir(d);
        free(dpath);
        free(want);
        return found;
}

static void probe(const char *addr) {
        char *dir = dev_dir(addr), *p, *ov, *vendor, *device, *drv = NULL;

        if (!dir)
                return;
        p = fmt("%s/driver", dir);
        if (access(p, F_OK) == 0)
                goto done;
        free(p);
        p = fmt("%s/driver_override", dir);
        ov = read_trim(p);
        if (ov && *ov && strcmp(ov, "(null)") != 0)
                drv = strdup(ov);
        else {
                char *vp = fmt("%s/vendor", dir), *dp = fmt("%s/device", dir);

                vendor = read_trim(vp);
                device = read_trim(dp);
                if (vendor && device)
                        drv = match_driver(vendor, device);
                free(vendor);
                free(device);
                free(vp);
                free(dp);
        }
        free(ov);
        if (drv)
                bind_driver(addr, drv);
        free(drv);
done:
        free(p);
        free(dir);
}

static void remove_tree(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                char *p;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                p = fmt("%s/%s", path, de->d_name);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_tree(p);
                else
                        (void) unlink(p);
                free(p);
        }
        if (d)
                closedir(d);
        (void) rmdir(path);
}

static unsigned read_uint(const char *dir, const char *file) {
        char *p = fmt("%s/%s", dir, file), *s = read_trim(p);
        unsigned v = s ? (unsigned) strtoul(s, NULL, 0) : 0;

        free(p);
        free(s);
        return v;
}

static void remove_vfs(const char *pf) {
        for (unsigned i = 0;; i++) {
                char *l = fmt("%s/virtfn%u", pf, i), *vf = realpath(l, NULL), *grp, *g, *addr, *drv, *dl;

                if (!vf) {
                        free(l);
                        return;
                }
                addr = basename(vf);
                dl = fmt("%s/driver", vf);
                drv = realpath(dl, NULL);
                if (drv)
                        unbind_driver(addr, basename(drv));
                grp = fmt("%s/iommu_group", vf);
                g = realpath(grp, NULL);
                if (g) {
                        char *m = fmt("%s/devices/%s", g, addr), *dd = fmt("%s/devices", g);

                        (void) unlink(m);
                        (void) rmdir(dd);
                        (void) rmdir(g);
                        free(m);
                        free(dd);
                }
                free(grp);
                free(g);
                free(dl);
                free(drv);
                {
                        char *b = fmt("%s/bus/pci/devices/%s", root, addr);
                        (void) unlink(b);
                        free(b);
                }
                remove_tree(vf);
                (void) unlink(l);
                free(l);
                free(vf);
        }
}

static void copy_file(const char *from, const char *to) {
        char buf[8192];
        ssize_t n;
        int in = open(from, O_RDONLY | O_CLOEXEC), out;

        if (in < 0)
                return;
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t) n) != n)
                        break;
        close(in);
        if (out >= 0)
                close(out);
}

static void create_vfs(const char *pf, unsigned n) {
        char *pfcopy = strdup(pf), *pfaddr = basename(pfcopy), *parent = strdup(pf);
        unsigned d, b, s, f, offset = read_uint(pf, "sriov_offset"), stride = read_uint(pf, "sriov_stride"),
                                base = read_uint(pf, ".fake-vf-group-base"), autoprobe;
        char *vfdev_p = fmt("%s/sriov_vf_device", pf), *vfdev = read_trim(vfdev_p);

        autoprobe = read_uint(pf, "sriov_drivers_autoprobe");
        sscanf(pfaddr, "%x:%x:%x.%x", &d, &b, &s, &f);
        dirname(parent);
        for (unsigned i = 0; i < n; i++) {
                unsigned rid = (b << 8 | s << 3 | f) + offset + i * stride;
                char *addr = fmt("%04x:%02x:%02x.%x", d, rid >> 8, (rid >> 3) & 0x1f, rid & 7);
                char *vf = fmt("%s/%s", parent, addr), *p, *g;
                static const char *const copied[] = { "vendor", "class", "config", "resource", "irq", "numa_node",
                                                      "subsystem_vendor", "subsystem_device", "max_link_speed",
                                                      "max_link_width", "current_link_speed", "current_link_width" };

                mkdir(vf, 0755);
                for (size_t k = 0; k < sizeof copied / sizeof copied[0]; k++) {
                        char *from = fmt("%s/%s", pf, copied[k]), *to = fmt("%s/%s", vf, copied[k]);
                        copy_file(from, to);
                        free(from);
                        free(to);
                }
                {
                        char *dp = fmt("%s/device", vf), *v = fmt("0x%s\n", vfdev ? vfdev : "0000");
                        write_str(dp, v);
                        free(dp);
                        free(v);
                }
#define WR(name, val)                                   \
        do {                                            \
                char *_p = fmt("%s/" name, vf);         \
                write_str(_p, val);                     \
                free(_p);                               \
        } while (0)
                WR("driver_override", "(null)\n");
                WR("reset", "");
                WR("enable", "0\n");
#undef WR
#define LN(target, fmtpath, ...)                        \
        do {                                            \
                char *_l = fmt(fmtpath, __VA_ARGS__);   \
                (void) symlink(target, _l);             \
                free(_l);                               \
        } while (0)
                LN(pf, "%s/physfn", vf);
                LN(vf, "%s/bus/pci/devices/%s", root, addr);
                {
                        char *bus = fmt("%s/bus/pci", root);
                        LN(bus, "%s/subsystem", vf);
                        free(bus);
                }
                g = fmt("%s/kernel/iommu_groups/%u", root, base + i);
                mkdir(g, 0755);
                p = fmt("%s/devices", g);
                mkdir(p, 0755);
                LN(vf, "%s/%s", p, addr);
                LN(g, "%s/iommu_group", vf);
                if (autoprobe)
                        probe(addr);
                /* Last: the VF is complete once the PF links to it. */
                LN(vf, "%s/virtfn%u", pf, i);
#undef LN
                free(p);
                free(g);
                free(vf);
                free(addr);
        }
        free(vfdev_p);
        free(vfdev);
        free(pfcopy);
        free(parent);
}

static void on_numvfs(const char *pf) {
        unsigned want = read_uint(pf, "sriov_numvfs"), have = 0;

        for (;; have++) {
                char *l = fmt("%s/virtfn%u", pf, have);
                int ok = access(l, F_OK) == 0;
                free(l);
                if (!ok)
                        break;
        }
        if (want == have)
                return;
        remove_vfs(pf);
        create_vfs(pf, want);
}

static void handle(const char *path) {
        char *copy = strdup(path), *dir = strdup(path), *name = basename(copy), *value;

        dirname(dir);
        value = is_regular(path) ? read_trim(path) : NULL;
        if (!value)
                goto done;
        if (strcmp(name, "sriov_numvfs") == 0)
                on_numvfs(dir);
        else if (strcmp(name, "driver_override") == 0) {
                if (!*value)
                        write_str(path, "(null)\n");
        } else if (*value) {
                /* bind, unbind, drivers_probe: act, then clear for the next write */
                write_str(path, "");
                if (strcmp(name, "drivers_probe") == 0)
                        probe(value);
                else if (strcmp(name, "bind") == 0)
                        bind_driver(value, basename(dir));
                else if (strcmp(name, "unbind") == 0)
                        unbind_driver(value, basename(dir));
        }
done:
        free(value);
        free(copy);
        free(dir);
}

static void watch_devices(void) {
        char *p = fmt("%s/bus/pci/devices", root);
        DIR *d = opendir(p);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                char *dir = dev_dir(de->d_name), *f;

                if (de->d_name[0] == '.' || !dir) {
                        free(dir);
                        continue;
                }
                f = fmt("%s/sriov_numvfs", dir);
                watch(f);
                free(f);
                f = fmt("%s/driver_override", dir);
                watch(f);
                free(f);
                free(dir);
        }
        if (d)
                closedir(d);
        free(p);
}

static void watch_drivers(void) {
        char *p = fmt("%s/bus/pci/drivers", root);
        DIR *d = opendir(p);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                char *f;

                if (de->d_name[0] == '.')
                        continue;
                f = fmt("%s/%s/bind", p, de->d_name);
                watch(f);
                free(f);
                f = fmt("%s/%s/unbind", p, de->d_name);
                watch(f);
                free(f);
        }
        if (d)
                closedir(d);
        free(p);
        p = fmt("%s/bus/pci/drivers_probe", root);
        watch(p);
        free(p);
}

int main(int argc, char *argv[]) {
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

        if (argc != 2) {
                fprintf(stderr, "Usage: fake-sysfs-kernel ROOT\n");
                return 2;
        }
        root = realpath(argv[1], NULL);
        if (!root)
                die(argv[1]);
        ifd = inotify_init1(IN_CLOEXEC);
        if (ifd < 0)
                die("inotify_init1");
        watch_drivers();
        watch_devices();
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                ssize_t n = read(ifd, buf, sizeof buf);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("read");
                }
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *ev = (struct inotify_event *) p;
                        const char *path = watch_path(ev->wd);

                        if (path && (ev->mask & IN_CLOSE_WRITE))
                                handle(path);
                        p += sizeof(struct inotify_event) + ev->len;
                }
                /* New VFs have their own driver_override to watch. */
                watch_devices();
        }
}
