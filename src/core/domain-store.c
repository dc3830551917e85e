/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/domain-store.h"
#include "util/fileio.h"
#include "util/log.h"

#define UUID_STRING_LEN 36

static int sync_dir(const char *dir);

static int path_of(const char *dir, const char *uuid, const char *suffix, char **ret) {
        return asprintf(ret, "%s/%s%s", dir, uuid, suffix) < 0 ? -ENOMEM : 0;
}

int domain_store_save(const char *dir, const DomainDef *def, VbError *reterr) {
        _cleanup_free_ char *xml = NULL, *path = NULL;
        int r;

        r = domain_def_format(def, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format the definition: %s",
                                    strerror(-r));
        r = path_of(dir, domain_def_uuid(def).s, ".xml", &path);
        if (r < 0)
                return r;
        r = write_file_atomic(path, xml, strlen(xml), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to save '%s': %s", path,
                                    strerror(-r));
        log_debug("Saved %s.", path);
        return 0;
}

static int sync_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int domain_store_stage(const char *dir, const DomainDef *def, DomainStoreStaged *ret, VbError *reterr) {
        _cleanup_free_ char *xml = NULL, *path = NULL, *tmp = NULL;
        size_t size, done = 0;
        int fd, r;

        r = domain_def_format(def, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format the definition: %s",
                                    strerror(-r));
        r = path_of(dir, domain_def_uuid(def).s, ".xml", &path);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s.tmp~", path) < 0)
                return -ENOMEM;
        (void) unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %m", tmp);
        size = strlen(xml);
        while (done < size) {
                ssize_t k = write(fd, xml + done, size - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        close(fd);
                        (void) unlink(tmp);
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to write '%s': %s", tmp,
                                            strerror(-r));
                }
                done += (size_t) k;
        }
        *ret = (DomainStoreStaged) { .fd = fd, .tmp_path = TAKE_PTR(tmp), .path = TAKE_PTR(path), .result = 1 };
        return 0;
}

void domain_store_staged_discard(DomainStoreStaged *s) {
        if (s->fd >= 0) {
                close(s->fd);
                if (s->tmp_path)
                        (void) unlink(s->tmp_path);
        }
        free(s->tmp_path);
        free(s->path);
        s->fd = -1;
        s->tmp_path = s->path = NULL;
}

int domain_store_commit(const char *dir, DomainStoreStaged *staged, size_t n) {
        int any = -1, r;

        for (size_t i = 0; i < n; i++)
                if (staged[i].fd >= 0) {
                        any = staged[i].fd;
                        break;
                }
        if (any < 0)
                return 0;

        /* One sync for every staged file (and whatever else is dirty on that file system): cheaper than
         * one fsync each when there are several. */
        r = (n == 1 ? fsync(any) : syncfs(any)) < 0 ? -errno : 0;
        for (size_t i = 0; i < n; i++) {
                if (staged[i].fd < 0)
                        continue;
                staged[i].result = r;
                if (r >= 0 && rename(staged[i].tmp_path, staged[i].path) < 0)
                        staged[i].result = -errno;
                if (staged[i].result >= 0) {
                        close(staged[i].fd);
                        staged[i].fd = -1; /* committed: nothing to unlink */
                }
                domain_store_staged_discard(&staged[i]);
        }
        if (r >= 0) {
                /* The files are whole and synced; the renames will very likely survive too. */
                int k = sync_dir(dir);
                if (k < 0)
                        log_warning_errno(k, "Failed to sync '%s', a crash now may lose recent definitions: %m", dir);
        }
        return r;
}

int domain_store_remove(const char *dir, const char *uuid, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r;

        (void) domain_store_set_autostart(dir, uuid, false, NULL);
        r = path_of(dir, uuid, ".xml", &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m", path);
        (void) sync_dir(dir);
        return 0;
}

int domain_store_set_autostart(const char *dir, const char *uuid, bool autostart, VbError *reterr) {
        _cleanup_free_ char *adir = NULL, *path = NULL, *target = NULL;
        int r;

        if (asprintf(&adir, "%s/autostart", dir) < 0)
                return -ENOMEM;
        r = path_of(adir, uuid, "", &path);
        if (r < 0)
                return r;
        if (!autostart) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m",
                                            path);
                return 0;
        }
        r = mkdir_p(adir, 0755);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", adir,
                                    strerror(-r));
        if (asprintf(&target, "../%s.xml", uuid) < 0)
                return -ENOMEM;
        if (symlink(target, path) < 0 && errno != EEXIST)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %m", path);
        (void) sync_dir(adir);
        return 0;
}

bool domain_store_get_autostart(const char *dir, const char *uuid) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/autostart/%s", dir, uuid) < 0)
                return false;
        return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool is_definition_file(const char *name) {
        size_t n = strlen(name);
        /* <uuid>.xml only: temporary files (<uuid>.xml.XXXXXX) of an interrupted write are not. */
        return n == UUID_STRING_LEN + 4 && streq(name + UUID_STRING_LEN, ".xml");
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

int domain_store_load_all(const char *dir, DomainStoreLoadFunc cb, void *userdata) {
        _cleanup_(closedirp) DIR *d = NULL;
        char **names = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);

                /* A definition written but never committed (virtbusd stopped before the rename): its
                 * caller never heard it was defined. */
                if (len > 5 && streq(de->d_name + len - 5, ".tmp~")) {
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                log_debug_errno(errno, "Failed to remove '%s/%s', ignoring: %m", dir, de->d_name);
                        else
                                log_debug("Removed the uncommitted '%s/%s'.", dir, de->d_name);
                        continue;
                }
                if (!is_definition_file(de->d_name))
                        continue;
                if (!GREEDY_REALLOC(names, allocated, n + 1) || !(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        /* A stable order, so that start-up is deterministic. */
        if (r >= 0 && n > 0)
                qsort(names, n, sizeof(char *), compare_names);

        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL, *xml = NULL;
                VbError e = VB_ERROR_NULL;
                DomainDef *def = NULL;
                int k;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                k = read_full_file(path, 0, &xml, NULL);
                if (k < 0) {
                        log_warning_errno(k, "Failed to read '%s', ignoring: %m", path);
                        continue;
                }
                k = domain_def_parse_string(xml, 0, &def, &e);
                if (k < 0) {
                        log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path,
                                    e.message ?: strerror(-k));
                        vb_error_free(&e);
                        continue;
                }
                if (strncmp(names[i], domain_def_uuid(def).s, UUID_STRING_LEN) != 0) {
                        log_warning("'%s' holds the domain with UUID %s, not the one its name says, ignoring.",
                                    path, domain_def_uuid(def).s);
                        domain_def_free(def);
                        continue;
                }
                r = cb(def, userdata);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}
