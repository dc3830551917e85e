/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "conf/domain-paths.h"
#include "util/error.h"

/* The host files of a definition as QEMU gets them: opened by virtbusd with the rights of whoever
 * vouched for each (conf/domain-paths.h, host/user-open.h) and handed over as descriptors, so that QEMU
 * itself opens no host path at all.
 *   - files: an fdset (-add-fd / QMP add-fd), named "/dev/fdset/N" in QEMU's options; a file opened for
 *     reading and writing gets a read-only twin in its set (QEMU's block layer also opens it read-only);
 *   - the kernel, initrd and a ROM <loader>: named "/proc/self/fd/N" (QEMU's loader opens them by name):
 *     the descriptor itself when the file is world-readable, else a sealed memory copy (which QEMU's user
 *     may open, and which only exists for it);
 *   - UNIX sockets: bound or connected by virtbusd, given as "fd=N". */

typedef struct QemuFile {
        char *path;        /* as the definition names it */
        size_t device;     /* DomainPath.device */
        DomainOsPath os;   /* with DOMAIN_PATH_NO_DEVICE */
        DomainPathUse use;
        int fds[2];        /* the descriptors QEMU inherits (or is sent), -1 if none */
        unsigned fdset;    /* 0: none */
        char *arg;         /* what QEMU's option names it by */
} QemuFile;

typedef struct QemuFiles {
        QemuFile *v;
        size_t n;
        unsigned next_fdset;
} QemuFiles;

/* Opens every host path of def (or of one device, with first_fdset for the sets' numbers); own_path(path)
 * says which paths the driver keeps itself for this domain (opened with the service's rights). Fails with
 * AccessDenied naming the path and whose rights did not suffice. */
int qemu_files_open(const DomainDef *def, const DomainAccess *access, bool (*own_path)(const char *path, void *userdata),
                    void *userdata, QemuFiles *ret, VbError *reterr);
int qemu_files_open_device(const DeviceDef *dev, const DomainAccess *access, unsigned first_fdset, QemuFiles *ret,
                           VbError *reterr);
void qemu_files_done(QemuFiles *f);

/* What QEMU's option names a path by; NULL if it was not opened (the caller then refuses: QEMU never
 * gets a host path). */
const char *qemu_files_arg_os(const QemuFiles *f, DomainOsPath os);
const char *qemu_files_arg_device(const QemuFiles *f, size_t device, const char *path);
/* The same, and the file itself. */
const QemuFile *qemu_files_find_device(const QemuFiles *f, size_t device, const char *path);

/* The descriptors QEMU inherits, appended to *fds; and the -add-fd options for them. */
int qemu_files_keep_fds(const QemuFiles *f, int **fds, size_t *n);
