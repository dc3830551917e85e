/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pci/pci.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"
#include "host/pci.h"
#include "host/sysfs.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct pci_access *, pci_cleanup);

/* How long to wait for a driver change to show. The kernel binds and unbinds synchronously, so on the
 * real /sys the first look sees it; a fake tree's kernel (tests, the test driver) is another process. */
#define SETTLE_USEC (3 * 1000 * 1000)
#define SETTLE_STEP_USEC 2000

void host_pci_address_format(const HostPciAddress *a, char ret[HOST_PCI_ADDRESS_MAX]) {
        snprintf(ret, HOST_PCI_ADDRESS_MAX, "%04x:%02x:%02x.%x", a->domain & 0xffff, a->bus & 0xff,
                 a->slot & 0x1f, a->function & 0x7);
}

int host_pci_address_parse(const char *s, HostPciAddress *ret) {
        unsigned d, b, sl, f;
        int n = -1;

        if (!s || strlen(s) != 12 || sscanf(s, "%4x:%2x:%2x.%1x%n", &d, &b, &sl, &f, &n) != 4 || n != 12 ||
            sl > 0x1f || f > 7)
                return -EINVAL;
        *ret = (HostPciAddress) { d, b, sl, f };
        return 0;
}

bool host_pci_address_equal(const HostPciAddress *a, const HostPciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot && a->function == b->function;
}

static int address_compare(const void *x, const void *y) {
        const HostPciAddress *a = x, *b = y;
        uint64_t ka = (uint64_t) a->domain << 16 | a->bus << 8 | a->slot << 3 | a->function;
        uint64_t kb = (uint64_t) b->domain << 16 | b->bus << 8 | b->slot << 3 | b->function;

        return ka < kb ? -1 : ka > kb;
}

void host_pci_device_done(HostPciDevice *d) {
        free(d->path);
        free(d->vendor_name);
        free(d->device_name);
        free(d->driver);
        free(d->group);
        free(d->link_cap.speed);
        free(d->link_sta.speed);
        free(d->vfs);
        *d = (HostPciDevice) {};
}

void host_pci_device_list_free(HostPciDevice *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                host_pci_device_done(&l[i]);
        free(l);
}

/* Path of a file of the device. */
static char *dev_path(const HostPciAddress *a, const char *file) {
        char s[HOST_PCI_ADDRESS_MAX];

        host_pci_address_format(a, s);
        return host_sysfs_path("bus/pci/devices/%s%s%s", s, file ? "/" : "", strempty(file));
}

static bool dev_exists(const HostPciAddress *a) {
        _cleanup_free_ char *p = dev_path(a, NULL);
        return p && access(p, F_OK) == 0;
}

int host_pci_get_driver(const HostPciAddress *a, char **ret) {
        _cleanup_free_ char *p = dev_path(a, "driver");
        int r;

        if (!p)
                return -ENOMEM;
        if (!dev_exists(a))
                return -ENODEV;
        r = host_sysfs_link_name(p, ret);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}

/* Addresses of the links in dir whose names match prefix (all if NULL), sorted. */
static int read_address_links(const char *dir, const char *prefix, HostPciAddress **ret, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        _cleanup_free_ HostPciAddress *l = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL, *target = NULL;
                HostPciAddress a;

                if (de->d_name[0] == '.' || (prefix && strncmp(de->d_name, prefix, strlen(prefix)) != 0))
                        continue;
                if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                if (host_sysfs_link_name(p, &target) < 0 || host_pci_address_parse(target, &a) < 0)
                        continue;
                if (!GREEDY_REALLOC(l, allocated, n + 1))
                        return -ENOMEM;
                if (prefix) {
                        /* virtfnN: keep the index order. */
                        unsigned idx = (unsigned) atoi(de->d_name + strlen(prefix));
                        if (!GREEDY_REALLOC(l, allocated, idx + 1))
                                return -ENOMEM;
                        for (size_t k = n; k <= idx; k++)
                                l[k] = (HostPciAddress) { UINT32_MAX };
                        l[idx] = a;
                        n = n > idx + 1 ? n : idx + 1;
                        continue;
                }
                l[n++] = a;
        }
        if (!prefix && n > 1)
                qsort(l, n, sizeof(HostPciAddress), address_compare);
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

static void read_link(const HostPciAddress *a, const char *speed_file, const char *width_file, HostPciLink *l) {
        _cleanup_free_ char *ps = dev_path(a, speed_file), *pw = dev_path(a, width_file), *s = NULL;
        uint64_t w;
        double gts;
        char buf[16];

        if (!ps || !pw || host_sysfs_read(ps, &s) < 0 || host_sysfs_read_u64(pw, &w) < 0)
                return;
        l->present = true;
        l->width = (unsigned) w;
        if (sscanf(s, "%lf GT/s", &gts) == 1 && gts > 0) {
                snprintf(buf, sizeof buf, "%g", gts);
                l->speed = strdup(buf);
        }
}

static int fill_from_sysfs(HostPciDevice *d) {
        _cleanup_free_ char *p = dev_path(&d->address, NULL), *real = NULL, *grp = NULL, *g = NULL,
                            *physfn = NULL, *pf = NULL;
        uint64_t v;
        int r;

        if (!p)
                return -ENOMEM;
        real = realpath(p, NULL);
        if (real) {
                _cleanup_free_ char *copy = strdup(real), *up = NULL;
                const char *base;

                if (!copy)
                        return -ENOMEM;
                base = basename(dirname(copy));
                if (host_pci_address_parse(base, &d->parent) >= 0)
                        d->has_parent = true;
                d->path = TAKE_PTR(real);
        }
        r = host_pci_get_driver(&d->address, &d->driver);
        if (r < 0)
                return r;

        d->iommu_group = -1;
        grp = dev_path(&d->address, "iommu_group");
        if (!grp)
                return -ENOMEM;
        if (host_sysfs_link_name(grp, &g) >= 0) {
                _cleanup_free_ char *members = NULL;

                d->iommu_group = strtoll(g, NULL, 10);
                members = host_sysfs_path("kernel/iommu_groups/%s/devices", g);
                if (!members)
                        return -ENOMEM;
                (void) read_address_links(members, NULL, &d->group, &d->n_group);
        }

        d->numa_node = -1;
        {
                _cleanup_free_ char *np = dev_path(&d->address, "numa_node"), *s = NULL;
                if (np && host_sysfs_read(np, &s) >= 0 && atoi(s) >= 0)
                        d->numa_node = atoi(s);
        }
        read_link(&d->address, "max_link_speed", "max_link_width", &d->link_cap);
        read_link(&d->address, "current_link_speed", "current_link_width", &d->link_sta);
        d->pcie = d->link_cap.present || d->link_sta.present;

        {
                /* Not sriov_numvfs: the kernel holds the device's lock while it makes or removes VFs
                 * (seconds), and a read waits for it. The virtfn links show what exists so far. */
                _cleanup_free_ char *tp = dev_path(&d->address, "sriov_totalvfs"), *dir = dev_path(&d->address, NULL);
                if (!tp || !dir)
                        return -ENOMEM;
                if (host_sysfs_read_u64(tp, &v) >= 0 && v > 0) {
                        d->is_pf = true;
                        d->total_vfs = (unsigned) v;
                        (void) read_address_links(dir, "virtfn", &d->vfs, &d->n_vfs);
                }
        }

        d->vf_index = -1;
        physfn = dev_path(&d->address, "physfn");
        if (!physfn)
                return -ENOMEM;
        if (host_sysfs_link_name(physfn, &pf) >= 0 && host_pci_address_parse(pf, &d->pf) >= 0) {
                _cleanup_free_ char *pfdir = dev_path(&d->pf, NULL);
                _cleanup_free_ HostPciAddress *vfs = NULL;
                size_t n = 0;

                d->is_vf = true;
                if (pfdir && read_address_links(pfdir, "virtfn", &vfs, &n) >= 0)
                        for (size_t i = 0; i < n; i++)
                                if (host_pci_address_equal(&vfs[i], &d->address))
                                        d->vf_index = (int) i;
        }
        return 0;
}

static void pci_quiet(char *msg, ...) {
}

static int pci_open(struct pci_access **ret) {
        _cleanup_free_ char *bus = host_sysfs_path("bus/pci"), *devices = host_sysfs_path("bus/pci/devices");
        struct pci_access *pa;

        if (!bus || !devices)
                return -ENOMEM;
        /* libpci gives up the whole process when it finds no sysfs: check first. */
        if (access(devices, R_OK) < 0)
                return -errno;
        pa = pci_alloc();
        if (!pa)
                return -ENOMEM;
        pa->warning = pci_quiet;
        pa->debug = pci_quiet;
        pa->method = PCI_ACCESS_SYS_BUS_PCI;
        pci_set_param(pa, (char *) "sysfs.path", bus);
        pci_init(pa);
        *ret = pa;
        return 0;
}

/* The names of vendors and devices, looked up once per process. libpci reads its whole database (pci.ids,
 * over a megabyte) at the first lookup of each pci_access and frees it with it: that was most of a re-scan
 * of the host's devices (30-120 ms on the event loop for each link another program made or removed). What
 * this host's devices are called is kept here instead (a few dozen names, none for an ID the database does
 * not know); the database is read again only for an ID not seen before. Lists are read on the event loop
 * and in worker threads: a lock. */
typedef struct PciName {
        char key[sizeof "vvvv:dddd"];
        char *name; /* NULL: the database has none */
} PciName;

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static Hashmap *names;

/* A copy of the name for key (vendor "vvvv", device "vvvv:dddd"), looked up in pa's database when not known
 * yet; *ret NULL when the database has none. */
static int pci_name(struct pci_access *pa, bool device, uint16_t vendor, uint16_t product, char **ret) {
        char key[sizeof ((PciName *) NULL)->key], buf[256];
        PciName *n;
        int r = 0;

        if (device)
                (void) snprintf(key, sizeof key, "%04x:%04x", vendor, product);
        else
                (void) snprintf(key, sizeof key, "%04x", vendor);
        pthread_mutex_lock(&names_lock);
        if (!names && !(names = hashmap_new())) {
                r = -ENOMEM;
                goto out;
        }
        n = hashmap_get(names, key);
        if (!n) {
                const char *found = device ? pci_lookup_name(pa, buf, sizeof buf, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
                                                             vendor, product)
                                           : pci_lookup_name(pa, buf, sizeof buf, PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS,
                                                             vendor);

                n = new0(PciName, 1);
                if (!n || (found && !(n->name = strdup(found)))) {
                        free(n);
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(n->key, key, sizeof key);
                r = hashmap_put(names, n->key, n);
                if (r < 0) {
                        free(n->name);
                        free(n);
                        goto out;
                }
        }
        *ret = NULL;
        if (n->name && !(*ret = strdup(n->name)))
                r = -ENOMEM;
out:
        pthread_mutex_unlock(&names_lock);
        return r;
}

static int fill_device(struct pci_access *pa, struct pci_dev *pd, HostPciDevice *d) {
        uint64_t cls;
        _cleanup_free_ char *cp = NULL;
        int r;

        pci_fill_info(pd, PCI_FILL_IDENT | PCI_FILL_CLASS);
        d->address = (HostPciAddress) { (uint32_t) pd->domain, pd->bus, pd->dev, pd->func };
        d->vendor_id = pd->vendor_id;
        d->device_id = pd->device_id;
        d->class_code = (uint32_t) pd->device_class << 8;
        cp = dev_path(&d->address, "class");
        if (cp && host_sysfs_read_hex(cp, &cls) >= 0)
                d->class_code = (uint32_t) cls;
        r = pci_name(pa, false, pd->vendor_id, 0, &d->vendor_name);
        if (r >= 0)
                r = pci_name(pa, true, pd->vendor_id, pd->device_id, &d->device_name);
        if (r < 0)
                return r;
        return fill_from_sysfs(d);
}

static int device_compare(const void *x, const void *y) {
        return address_compare(&((const HostPciDevice *) x)->address, &((const HostPciDevice *) y)->address);
}

int host_pci_list(HostPciDevice **ret, size_t *ret_n) {
        _cleanup_(pci_cleanupp) struct pci_access *pa = NULL;
        HostPciDevice *l = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = pci_open(&pa);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        pci_scan_bus(pa);
        for (struct pci_dev *pd = pa->devices; pd; pd = pd->next) {
                if (!GREEDY_REALLOC(l, allocated, n + 1)) {
                        host_pci_device_list_free(l, n);
                        return -ENOMEM;
                }
                l[n] = (HostPciDevice) {};
                r = fill_device(pa, pd, &l[n++]);
                if (r < 0) {
                        host_pci_device_list_free(l, n);
                        return r;
                }
        }
        if (n > 1)
                qsort(l, n, sizeof(HostPciDevice), device_compare);
        *ret = l;
        *ret_n = n;
        return 0;
}

int host_pci_get(const HostPciAddress *a, HostPciDevice *ret) {
        _cleanup_(pci_cleanupp) struct pci_access *pa = NULL;
        struct pci_dev *pd;
        int r;

        if (!dev_exists(a))
                return -ENODEV;
        r = pci_open(&pa);
        if (r < 0)
                return r;
        pd = pci_get_dev(pa, (int) a->domain, (int) a->bus, (int) a->slot, (int) a->function);
        if (!pd)
                return -ENOMEM;
        *ret = (HostPciDevice) {};
        r = fill_device(pa, pd, ret);
        pci_free_dev(pd);
        if (r < 0)
                host_pci_device_done(ret);
        return r;
}

/* Waits until the device's driver is want (NULL: unbound; "*": any driver). */
static int settle_driver(const HostPciAddress *a, const char *want, char **ret_driver) {
        struct timespec step = { 0, SETTLE_STEP_USEC * 1000 };
        unsigned tries = host_sysfs_is_real() ? 1 : SETTLE_USEC / SETTLE_STEP_USEC;

        for (unsigned i = 0; i < tries; i++) {
                _cleanup_free_ char *drv = NULL;
                int r = host_pci_get_driver(a, &drv);

                if (r < 0)
                        return r;
                if ((!want && !drv) || (want && drv && (streq(want, "*") || streq(want, drv)))) {
                        if (ret_driver)
                                *ret_driver = TAKE_PTR(drv);
                        return 0;
                }
                if (i + 1 < tries)
                        nanosleep(&step, NULL);
        }
        return -ETIMEDOUT;
}

static int write_dev(const HostPciAddress *a, const char *file, const char *value) {
        _cleanup_free_ char *p = dev_path(a, file);
        return p ? host_sysfs_write(p, value) : -ENOMEM;
}

static int write_bus(const char *rel, const char *value) {
        _cleanup_free_ char *p = host_sysfs_path("bus/pci/%s", rel);
        return p ? host_sysfs_write(p, value) : -ENOMEM;
}

static bool is_bridge(const HostPciAddress *a) {
        _cleanup_free_ char *p = dev_path(a, "class");
        uint64_t cls;

        return p && host_sysfs_read_hex(p, &cls) >= 0 && (cls >> 16) == 0x06;
}

static bool in_list(const HostPciAddress *a, const HostPciAddress *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (host_pci_address_equal(a, &l[i]))
                        return true;
        return false;
}

static int check_group_viable(const HostPciAddress *a, const char *driver, const HostPciAddress *together,
                              size_t n_together, VbError *reterr) {
        _cleanup_free_ char *grp = dev_path(a, "iommu_group"), *g = NULL, *members = NULL;
        _cleanup_free_ HostPciAddress *l = NULL;
        char s[HOST_PCI_ADDRESS_MAX];
        size_t n = 0;
        int r;

        host_pci_address_format(a, s);
        if (!grp)
                return -ENOMEM;
        if (host_sysfs_link_name(grp, &g) < 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI device '%s' is in no IOMMU group: without an enabled IOMMU it cannot be "
                                    "given to a guest through VFIO", s);
        members = host_sysfs_path("kernel/iommu_groups/%s/devices", g);
        if (!members)
                return -ENOMEM;
        r = read_address_links(members, NULL, &l, &n);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read IOMMU group %s: %s", g,
                                    strerror(-r));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *drv = NULL;
                char o[HOST_PCI_ADDRESS_MAX];

                if (host_pci_address_equal(&l[i], a) || is_bridge(&l[i]) || in_list(&l[i], together, n_together))
                        continue;
                if (host_pci_get_driver(&l[i], &drv) < 0 || !drv || streq(drv, driver))
                        continue;
                host_pci_address_format(&l[i], o);
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY,
                                    "PCI device '%s' shares IOMMU group %s with '%s', which is bound to '%s': "
                                    "the group must be given away whole (Detach with flags 1)", s, g, o, drv);
        }
        return 0;
}

int host_pci_group_endpoints(const HostPciAddress *a, HostPciAddress **ret, size_t *ret_n) {
        _cleanup_free_ char *grp = dev_path(a, "iommu_group"), *g = NULL, *members = NULL;
        HostPciAddress *l = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!grp)
                return -ENOMEM;
        r = host_sysfs_link_name(grp, &g);
        if (r < 0)
                return r;
        members = host_sysfs_path("kernel/iommu_groups/%s/devices", g);
        if (!members)
                return -ENOMEM;
        r = read_address_links(members, NULL, &l, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!is_bridge(&l[i]))
                        l[k++] = l[i];
        *ret = l;
        *ret_n = k;
        return 0;
}

int host_pci_detach(const HostPciAddress *a, const char *driver, const HostPciAddress *together, size_t n_together,
                    char **ret_previous, VbError *reterr) {
        _cleanup_free_ char *cur = NULL, *got = NULL, *override = NULL, *drvdir = NULL;
        char s[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(a, s);
        r = host_pci_get_driver(a, &cur);
        if (r == -ENODEV)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", s);
        if (r < 0)
                return r;
        if (cur && streq(cur, driver)) {
                if (ret_previous)
                        *ret_previous = TAKE_PTR(cur);
                return 1;
        }
        if (is_bridge(a))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "PCI device '%s' is a bridge and cannot be "
                                    "given to a guest", s);
        drvdir = host_sysfs_path("bus/pci/drivers/%s", driver);
        if (!drvdir)
                return -ENOMEM;
        if (access(drvdir, F_OK) < 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "Driver '%s' is not available on this host",
                                    driver);
        r = check_group_viable(a, driver, together, n_together, reterr);
        if (r < 0)
                return r;

        r = write_dev(a, "driver_override", driver);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to set driver_override of '%s': %s",
                                    s, strerror(-r));
        if (cur) {
                _cleanup_free_ char *rel = NULL;

                if (asprintf(&rel, "drivers/%s/unbind", cur) < 0)
                        return -ENOMEM;
                r = write_bus(rel, s);
                if (r >= 0)
                        r = settle_driver(a, NULL, NULL);
                if (r < 0) {
                        (void) write_dev(a, "driver_override", "\n");
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to unbind '%s' from '%s': %s",
                                            s, cur, strerror(-r));
                }
        }
        r = write_bus("drivers_probe", s);
        if (r >= 0)
                r = settle_driver(a, driver, &got);
        if (r < 0) {
                /* Give it back to where it was. */
                (void) write_dev(a, "driver_override", "\n");
                (void) write_bus("drivers_probe", s);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to bind '%s' to %s: %s", s, driver,
                                    strerror(-r));
        }
        if (ret_previous)
                *ret_previous = TAKE_PTR(cur);
        return 0;
}

int host_pci_reattach(const HostPciAddress *a, char **ret_driver, VbError *reterr) {
        _cleanup_free_ char *cur = NULL, *rel = NULL;
        char s[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(a, s);
        r = host_pci_get_driver(a, &cur);
        if (r == -ENODEV)
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", s);
        if (r < 0)
                return r;
        if (!cur || !streq(cur, HOST_PCI_VFIO_DRIVER))
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE,
                                    "PCI device '%s' is not detached (its driver is '%s', not vfio-pci)", s,
                                    cur ?: "none");
        r = write_dev(a, "driver_override", "\n");
        if (r >= 0 && asprintf(&rel, "drivers/%s/unbind", cur) < 0)
                return -ENOMEM;
        if (r >= 0)
                r = write_bus(rel, s);
        if (r >= 0)
                r = settle_driver(a, NULL, NULL);
        if (r < 0) {
                (void) write_dev(a, "driver_override", HOST_PCI_VFIO_DRIVER);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to unbind '%s' from vfio-pci: %s", s,
                                    strerror(-r));
        }
        r = write_bus("drivers_probe", s);
        if (r < 0 && r != -ENODEV) /* -ENODEV: no driver wants it; it stays unbound */
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to probe a driver for '%s': %s", s,
                                    strerror(-r));
        /* Until the host driver took it (a device no driver wants stays unbound). */
        if (ret_driver)
                *ret_driver = NULL;
        (void) settle_driver(a, "*", ret_driver);
        return 0;
}

int host_pci_reset(const HostPciAddress *a, VbError *reterr) {
        char s[HOST_PCI_ADDRESS_MAX];
        int r;

        host_pci_address_format(a, s);
        if (!dev_exists(a))
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", s);
        r = write_dev(a, "reset", "1");
        if (r == -ENOENT)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "PCI device '%s' cannot be reset", s);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to reset '%s': %s", s, strerror(-r));
        return 0;
}

static int settle_num_vfs(const HostPciAddress *a, unsigned n) {
        struct timespec step = { 0, SETTLE_STEP_USEC * 1000 };
        unsigned tries = host_sysfs_is_real() ? 1 : SETTLE_USEC / SETTLE_STEP_USEC;
        _cleanup_free_ char *dir = dev_path(a, NULL);

        if (!dir)
                return -ENOMEM;
        for (unsigned i = 0; i < tries; i++) {
                _cleanup_free_ HostPciAddress *l = NULL;
                size_t k = 0;

                if (read_address_links(dir, "virtfn", &l, &k) >= 0 && k == n)
                        return 0;
                if (i + 1 < tries)
                        nanosleep(&step, NULL);
        }
        return -ETIMEDOUT;
}

int host_pci_set_num_vfs(const HostPciAddress *a, unsigned n, VbError *reterr) {
        _cleanup_free_ char *tp = dev_path(a, "sriov_totalvfs"), *np = dev_path(a, "sriov_numvfs");
        char s[HOST_PCI_ADDRESS_MAX], v[16];
        uint64_t total, cur;
        int r;

        host_pci_address_format(a, s);
        if (!tp || !np)
                return -ENOMEM;
        if (!dev_exists(a))
                return vb_error_set(reterr, VB_ERROR_NO_SUCH_DEVICE, "No PCI device '%s' on this host", s);
        if (host_sysfs_read_u64(tp, &total) < 0 || total == 0)
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "PCI device '%s' is not an SR-IOV physical function", s);
        if (n > total)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "PCI device '%s' supports at most %" PRIu64 " virtual functions, not %u", s,
                                    total, n);
        r = host_sysfs_read_u64(np, &cur);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read sriov_numvfs of '%s': %s", s,
                                    strerror(-r));
        if (cur == n)
                return 1;
        if (cur != 0 && n != 0) {
                r = host_sysfs_write(np, "0");
                if (r >= 0)
                        r = settle_num_vfs(a, 0);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                            "Failed to remove the virtual functions of '%s': %s", s, strerror(-r));
        }
        snprintf(v, sizeof v, "%u", n);
        r = host_sysfs_write(np, v);
        if (r >= 0)
                r = settle_num_vfs(a, n);
        if (r == -EBUSY)
                return vb_error_set(reterr, VB_ERROR_DEVICE_BUSY, "Virtual functions of '%s' are in use", s);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "Failed to set %u virtual functions on '%s': %s", n, s, strerror(-r));
        return 0;
}

int host_pci_net_names(const HostPciAddress *a, char ***ret) {
        _cleanup_free_ char *dir = dev_path(a, "net");
        _cleanup_(closedirp) DIR *d = NULL;
        char **l;
        size_t n = 0;
        struct dirent *de;

        if (!dir)
                return -ENOMEM;
        l = new0(char *, 1);
        if (!l)
                return -ENOMEM;
        d = opendir(dir);
        while (d && (de = readdir(d))) {
                char **nl;

                if (de->d_name[0] == '.')
                        continue;
                nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        break;
                l = nl;
                l[n] = strdup(de->d_name);
                if (!l[n])
                        break;
                l[++n] = NULL;
        }
        *ret = l;
        return 0;
}
