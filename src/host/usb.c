/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/sysfs.h"
#include "host/usb.h"
#include "util/fileio.h"

static void usb_device_done(HostUsbDevice *d) {
        free(d->sysname);
        free(d->manufacturer);
        free(d->product);
        free(d->parent_sysname);
}

void host_usb_device_list_free(HostUsbDevice *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                usb_device_done(&l[i]);
        free(l);
}

static int read_attr_u64(const char *sysname, const char *attr, int base, uint64_t *ret) {
        _cleanup_free_ char *p = host_sysfs_path("bus/usb/devices/%s/%s", sysname, attr);

        if (!p)
                return -ENOMEM;
        return base == 16 ? host_sysfs_read_hex(p, ret) : host_sysfs_read_u64(p, ret);
}

static int fill(HostUsbDevice *d) {
        _cleanup_free_ char *pm = host_sysfs_path("bus/usb/devices/%s/manufacturer", d->sysname),
                            *pp = host_sysfs_path("bus/usb/devices/%s/product", d->sysname),
                            *dir = host_sysfs_path("bus/usb/devices/%s", d->sysname), *real = NULL;
        uint64_t v;

        if (!pm || !pp || !dir)
                return -ENOMEM;
        if (read_attr_u64(d->sysname, "busnum", 10, &v) < 0)
                return -ENOENT; /* an interface, not a device */
        d->bus = (uint32_t) v;
        if (read_attr_u64(d->sysname, "devnum", 10, &v) >= 0)
                d->device = (uint32_t) v;
        if (read_attr_u64(d->sysname, "idVendor", 16, &v) >= 0)
                d->vendor_id = (uint16_t) v;
        if (read_attr_u64(d->sysname, "idProduct", 16, &v) >= 0)
                d->product_id = (uint16_t) v;
        (void) host_sysfs_read(pm, &d->manufacturer);
        (void) host_sysfs_read(pp, &d->product);
        real = realpath(dir, NULL);
        if (real) {
                const char *parent = basename(dirname(real));

                if (host_pci_address_parse(parent, &d->pci) >= 0)
                        d->parent_is_pci = true;
                else if (!(d->parent_sysname = strdup(parent)))
                        return -ENOMEM;
        }
        return 0;
}

int host_usb_list(HostUsbDevice **ret, size_t *ret_n) {
        _cleanup_free_ char *dir = host_sysfs_path("bus/usb/devices");
        _cleanup_(closedirp) DIR *d = NULL;
        HostUsbDevice *l = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r;

        if (!dir)
                return -ENOMEM;
        *ret = NULL;
        *ret_n = 0;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || strchr(de->d_name, ':'))
                        continue;
                if (!GREEDY_REALLOC(l, allocated, n + 1)) {
                        host_usb_device_list_free(l, n);
                        return -ENOMEM;
                }
                l[n] = (HostUsbDevice) { .sysname = strdup(de->d_name) };
                if (!l[n].sysname) {
                        host_usb_device_list_free(l, n);
                        return -ENOMEM;
                }
                r = fill(&l[n]);
                if (r == -ENOENT) {
                        usb_device_done(&l[n]);
                        continue;
                }
                n++;
                if (r < 0) {
                        host_usb_device_list_free(l, n);
                        return r;
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
