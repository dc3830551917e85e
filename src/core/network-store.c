/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Saved network definitions: <dir>/<uuid>.xml written atomically, autostart links
 * <dir>/autostart/<uuid> -> ../<uuid>.xml, and the live definitions of active networks in the status
 * dir. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/network-internal.h"
#include "util/fileio.h"
#include "util/log.h"

#define UUID_STRING_LEN 36

int network_store_save(const char *dir, const NetworkDef *def, VbError *reterr) {
        _cleanup_free_ char *xml = NULL, *path = NULL;
        char uuid[37];
        int r;

        r = network_def_format(def, &xml);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format the definition: %s", strerror(-r));
        network_def_get_uuid_string(def, uuid);
        if (asprintf(&path, "%s/%s.xml", dir, uuid) < 0)
                return -ENOMEM;
        r = write_file_atomic(path, xml, strlen(xml), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to save '%s': %s", path, strerror(-r));
        return 0;
}

int network_store_remove(const char *dir, const char *uuid, VbError *reterr) {
        _cleanup_free_ char *path = NULL;

        (void) network_store_set_autostart(dir, uuid, false, NULL);
        if (asprintf(&path, "%s/%s.xml", dir, uuid) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m", path);
        return 0;
}

int network_store_set_autostart(const char *dir, const char *uuid, bool autostart, VbError *reterr) {
        _cleanup_free_ char *adir = NULL, *path = NULL, *target = NULL;
        int r;

        if (asprintf(&adir, "%s/autostart", dir) < 0 || asprintf(&path, "%s/%s", adir, uuid) < 0 ||
            asprintf(&target, "../%s.xml", uuid) < 0)
                return -ENOMEM;
        if (!autostart) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to remove '%s': %m", path);
                return 0;
        }
        r = mkdir_p(adir, 0755);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", adir, strerror(-r));
        if (symlink(target, path) < 0 && errno != EEXIST)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %m", path);
        return 0;
}

bool network_store_get_autostart(const char *dir, const char *uuid) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/autostart/%s", dir, uuid) < 0)
                return false;
        return faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool is_definition_file(const char *name) {
        size_t n = strlen(name);
        return n == UUID_STRING_LEN + 4 && streq(name + UUID_STRING_LEN, ".xml");
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

int network_store_load_all(const char *dir, NetworkStoreLoadFunc cb, void *userdata) {
        _cleanup_(closedirp) DIR *d = NULL;
        char **names = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                if (!is_definition_file(de->d_name))
                        continue;
                if (!GREEDY_REALLOC(names, allocated, n + 1) || !(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r >= 0 && n > 0)
                qsort(names, n, sizeof(char *), compare_names);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL, *xml = NULL;
                VbError e = VB_ERROR_NULL;
                NetworkDef *def = NULL;
                char uuid[37];
                int k;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                k = read_full_file(path, 0, &xml, NULL);
                if (k >= 0)
                        k = network_def_parse_string(xml, 0, &def, &e);
                if (k < 0) {
                        log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path,
                                    e.message ?: strerror(-k));
                        vb_error_free(&e);
                        continue;
                }
                network_def_get_uuid_string(def, uuid);
                if (strncmp(names[i], uuid, UUID_STRING_LEN) != 0) {
                        log_warning("'%s' holds the network with UUID %s, not the one its name says, ignoring.", path, uuid);
                        network_def_free(def);
                        continue;
                }
                r = cb(def, userdata);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}
