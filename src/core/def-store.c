/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/def-store.h"
#include "util/fileio.h"
#include "util/log.h"

int def_store_path(const char *dir, const char *uuid, char **ret) {
        return asprintf(ret, "%s/%s.xml", dir, uuid) < 0 ? -ENOMEM : 0;
}

int def_store_sync_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int def_store_save(Durable *durable, const char *dir, const char *uuid, const char *xml, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = def_store_path(dir, uuid, &path);
        if (r < 0)
                return r;
        r = durable_write(durable, path, xml, strlen(xml), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to save '%s': %s", path,
                                    strerror(-r));
        log_debug("Saving %s.", path);
        return 0;
}

int def_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = def_store_path(dir, uuid, &path);
        if (r < 0)
                return r;
        /* Refused before anything is queued (the link is not to go alone). */
        if (access(dir, W_OK) < 0 && errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m", path);
        (void) def_store_set_autostart(durable, dir, uuid, false, NULL);
        /* Nothing to check first: the removal and the directory's sync follow in order. */
        r = durable_remove(durable, path);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %s", path,
                                    strerror(-r));
        return 0;
}

int def_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart, VbError *reterr) {
        _cleanup_free_ char *adir = NULL, *path = NULL, *target = NULL;
        int r;

        if (asprintf(&adir, "%s/autostart", dir) < 0 || asprintf(&path, "%s/%s", adir, uuid) < 0 ||
            asprintf(&target, "../%s.xml", uuid) < 0)
                return -ENOMEM;
        if (!autostart) {
                r = durable_remove(durable, path);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %s", path,
                                            strerror(-r));
                return 0;
        }
        /* The directory here (a failure is answered at once; it is created once); the link in order. */
        r = mkdir_p(adir, 0755);
        if (r >= 0)
                r = durable_symlink(durable, target, path);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", path,
                                    strerror(-r));
        return 0;
}

bool def_store_get_autostart(const char *dir, const char *uuid) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/autostart/%s", dir, uuid) < 0)
                return false;
        return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool is_definition_file(const char *name) {
        size_t n = strlen(name);
        return n == DEF_STORE_UUID_LEN + 4 && streq(name + DEF_STORE_UUID_LEN, ".xml");
}

static bool is_uncommitted_file(const char *name) {
        size_t n = strlen(name);
        return n > 5 && streq(name + n - 5, ".tmp~");
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* The names of the definition files in dir, sorted; removes uncommitted ones on the way. */
static int list_definitions(const char *dir, char ***ret, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = NULL;
        char **names = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;

        d = opendir(dir);
        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d))) {
                if (is_uncommitted_file(de->d_name)) {
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                log_debug_errno(errno, "Failed to remove '%s/%s', ignoring: %m", dir, de->d_name);
                        else
                                log_debug("Removed the uncommitted '%s/%s'.", dir, de->d_name);
                        continue;
                }
                if (!is_definition_file(de->d_name))
                        continue;
                if (!GREEDY_REALLOC(names, allocated, n + 1) || !(names[n] = strdup(de->d_name))) {
                        for (size_t i = 0; i < n; i++)
                                free(names[i]);
                        free(names);
                        return -ENOMEM;
                }
                n++;
        }
        if (n > 1)
                qsort(names, n, sizeof(char *), compare_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

int def_store_load_all(const char *dir, DefStoreLoadFunc cb, void *userdata) {
        char **names = NULL;
        size_t n = 0;
        int r;

        r = list_definitions(dir, &names, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL, *xml = NULL;
                char uuid[DEF_STORE_UUID_LEN + 1];
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
                snprintf(uuid, sizeof uuid, "%.*s", DEF_STORE_UUID_LEN, names[i]);
                r = cb(path, uuid, xml, userdata);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}
