/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/qemu/qemu-files.h"
#include "host/user-open.h"
#include "util/log.h"

/* A kernel or initrd larger than this is refused (it is copied into memory). */
#define QEMU_BOOT_FILE_MAX (1024ULL * 1024ULL * 1024ULL)

void qemu_files_done(QemuFiles *f) {
        for (size_t i = 0; i < f->n; i++) {
                for (size_t k = 0; k < 2; k++)
                        if (f->v[i].fds[k] >= 0)
                                close(f->v[i].fds[k]);
                free(f->v[i].path);
                free(f->v[i].arg);
        }
        free(f->v);
        *f = (QemuFiles) {};
}

/* A sealed memory copy of the file open at fd (QEMU's loader reads it by name). */
static int memory_copy(int fd, const char *path, int *ret, VbError *reterr) {
        struct stat st;
        off_t off = 0;
        int m;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "'%s' is not a regular file", path);
        if ((unsigned long long) st.st_size > QEMU_BOOT_FILE_MAX)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "'%s' is larger than %llu bytes", path,
                                    QEMU_BOOT_FILE_MAX);
        m = memfd_create("virtbus-boot-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (m < 0)
                return -errno;
        while (off < st.st_size) {
                ssize_t k = sendfile(m, fd, &off, (size_t) (st.st_size - off));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int e = k < 0 ? errno : EIO;
                        close(m);
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to read '%s': %s", path,
                                            strerror(e));
                }
        }
        (void) fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        *ret = m;
        return 0;
}

/* What QEMU gets for the freshly opened file e. */
static int finish_file(QemuFile *e, unsigned *next_fdset, VbError *reterr) {
        bool boot = e->device == DOMAIN_PATH_NO_DEVICE &&
                    (e->os == DOMAIN_OS_PATH_KERNEL || e->os == DOMAIN_OS_PATH_INITRD || e->os == DOMAIN_OS_PATH_BIOS);
        char twin[64];
        int r;

        if (boot) {
                struct stat st;
                int m = -1;
                /* A file everyone may read, QEMU's user may reopen through the descriptor itself (the
                 * magic link bypasses the hidden path, the inode's mode lets it read): no copy needed.
                 * Any other is copied, so that QEMU's user never gets more than these bytes. */
                if (fstat(e->fds[0], &st) >= 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IROTH))
                        return asprintf(&e->arg, "/proc/self/fd/%d", e->fds[0]) < 0 ? -ENOMEM : 0;
                r = memory_copy(e->fds[0], e->path, &m, reterr);
                if (r < 0)
                        return r;
                close(e->fds[0]);
                e->fds[0] = m;
                return asprintf(&e->arg, "/proc/self/fd/%d", m) < 0 ? -ENOMEM : 0;
        }
        /* A listening socket that never blocks: OpenConsole empties its backlog on a copy of it
         * (qemu-console.c); QEMU only accepts when it is readable. */
        if (e->use == DOMAIN_PATH_SOCKET_LISTEN && fcntl(e->fds[0], F_SETFL, O_NONBLOCK) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make the socket '%s' non-blocking: %m",
                                    e->path);
        if (e->use == DOMAIN_PATH_SOCKET_LISTEN || e->use == DOMAIN_PATH_SOCKET_CONNECT)
                return asprintf(&e->arg, "%d", e->fds[0]) < 0 ? -ENOMEM : 0;
        if (e->use == DOMAIN_PATH_READ_WRITE) {
                /* The same file read-only: QEMU's block layer opens it so too. Ours, so root's rights do. */
                snprintf(twin, sizeof twin, "/proc/self/fd/%d", e->fds[0]);
                e->fds[1] = open(twin, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (e->fds[1] < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to reopen '%s' read-only: %m",
                                            e->path);
                (void) fcntl(e->fds[1], F_SETFL, 0);
        }
        e->fdset = (*next_fdset)++;
        return asprintf(&e->arg, "/dev/fdset/%u", e->fdset) < 0 ? -ENOMEM : 0;
}

/* Opens paths (already filled into f->v) as their uids say. */
static int open_all(QemuFiles *f, const DomainAccess *access, const bool *own, VbError *reterr) {
        _cleanup_free_ HostOpenRequest *reqs = new0(HostOpenRequest, f->n);
        _cleanup_free_ size_t *which = new0(size_t, f->n);
        _cleanup_free_ bool *done = new0(bool, f->n);
        _cleanup_free_ uint32_t *uids = new0(uint32_t, f->n);
        int r;

        if (!reqs || !which || !done || !uids)
                return -ENOMEM;
        for (size_t i = 0; i < f->n; i++)
                uids[i] = own[i] || !access ? 0 : domain_access_uid_for(access, f->v[i].path);
        /* One helper per uid: usually just the owner's. */
        for (size_t first = 0; first < f->n; first++) {
                uint32_t uid;
                size_t n = 0;

                if (done[first])
                        continue;
                uid = uids[first];
                for (size_t i = first; i < f->n; i++) {
                        if (done[i] || uids[i] != uid)
                                continue;
                        done[i] = true;
                        which[n] = i;
                        reqs[n++] = (HostOpenRequest) {
                                .path = f->v[i].path,
                                .mode = (HostOpenMode) f->v[i].use,
                                /* Root opening a path for somebody else (an administrator's grant): no
                                 * symlink may lead it elsewhere. */
                                .no_symlinks = uid == 0 && !own[i] && access && access->owner != 0,
                        };
                }
                r = host_open_as(uid, reqs, n);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to open the domain's files as uid %u: %s",
                                            uid, strerror(-r));
                for (size_t k = 0; k < n; k++) {
                        QemuFile *e = &f->v[which[k]];
                        e->fds[0] = reqs[k].fd;
                        reqs[k].fd = -1;
                        if (reqs[k].error < 0) {
                                int e_no = -reqs[k].error;
                                bool denied = e_no == EACCES || e_no == EPERM || e_no == ELOOP;
                                char whose[64] = "";
                                if (uid != 0)
                                        snprintf(whose, sizeof whose, " with the rights of uid %u", uid);
                                host_open_requests_close(reqs, n);
                                return vb_error_set(reterr, denied ? VB_ERROR_ACCESS_DENIED : VB_ERROR_OPERATION_FAILED,
                                                    "Cannot %s '%s'%s: %s", host_open_mode_to_string(reqs[k].mode),
                                                    e->path, whose,
                                                    e_no == ELOOP ? "a symbolic link is in the way" : strerror(e_no));
                        }
                }
        }
        for (size_t i = 0; i < f->n; i++) {
                r = finish_file(&f->v[i], &f->next_fdset, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int from_paths(DomainPaths *paths, const DomainAccess *access, bool (*own_path)(const char *, void *),
                      void *userdata, unsigned first_fdset, QemuFiles *ret, VbError *reterr) {
        QemuFiles f = { .next_fdset = first_fdset };
        _cleanup_free_ bool *own = NULL;
        int r;

        f.v = new0(QemuFile, paths->n);
        own = new0(bool, paths->n);
        if (!f.v || !own) {
                free(f.v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < paths->n; i++) {
                DomainPath *p = &paths->v[i];
                f.v[f.n++] = (QemuFile) { .path = TAKE_PTR(p->path), .device = p->device, .os = p->os, .use = p->use,
                                          .fds = { -1, -1 } };
                own[i] = own_path && own_path(f.v[i].path, userdata);
        }
        r = open_all(&f, access, own, reterr);
        if (r < 0) {
                qemu_files_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}

int qemu_files_open(const DomainDef *def, const DomainAccess *access, bool (*own_path)(const char *, void *),
                    void *userdata, QemuFiles *ret, VbError *reterr) {
        _cleanup_(domain_paths_done) DomainPaths paths = {};
        int r;

        r = domain_def_host_paths(def, &paths);
        if (r < 0)
                return r;
        return from_paths(&paths, access, own_path, userdata, 1, ret, reterr);
}

int qemu_files_open_device(const DeviceDef *dev, const DomainAccess *access, unsigned first_fdset, QemuFiles *ret,
                           VbError *reterr) {
        _cleanup_(domain_paths_done) DomainPaths paths = {};
        int r;

        r = device_def_host_paths(dev, 0, &paths);
        if (r < 0)
                return r;
        return from_paths(&paths, access, NULL, NULL, first_fdset, ret, reterr);
}

const char *qemu_files_arg_os(const QemuFiles *f, DomainOsPath os) {
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].device == DOMAIN_PATH_NO_DEVICE && f->v[i].os == os)
                        return f->v[i].arg;
        return NULL;
}

const QemuFile *qemu_files_find_device(const QemuFiles *f, size_t device, const char *path) {
        for (size_t i = 0; i < f->n; i++)
                if (f->v[i].device == device && (!path || streq(f->v[i].path, path)))
                        return &f->v[i];
        return NULL;
}

const char *qemu_files_arg_device(const QemuFiles *f, size_t device, const char *path) {
        const QemuFile *e = qemu_files_find_device(f, device, path);
        return e ? e->arg : NULL;
}

int qemu_files_keep_fds(const QemuFiles *f, int **fds, size_t *n) {
        for (size_t i = 0; i < f->n; i++)
                for (size_t k = 0; k < 2; k++) {
                        int *v;
                        if (f->v[i].fds[k] < 0)
                                continue;
                        v = realloc(*fds, (*n + 1) * sizeof(int));
                        if (!v)
                                return -ENOMEM;
                        *fds = v;
                        v[(*n)++] = f->v[i].fds[k];
                }
        return 0;
}
