/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/domain-store.h"
#include "util/log.h"
#include "util/strbuf.h"

/* The file's contents: the access record, then the XML. */
static int format_file(const DomainDef *def, const DomainAccess *access, char **ret, VbError *reterr) {
        _cleanup_free_ char *xml = NULL;
        StrBuf b = STRBUF_NULL;
        int r;

        r = domain_def_format(def, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to format the definition: %s",
                                    strerror(-r));
        (void) domain_access_format(access ?: &(const DomainAccess) {}, &b);
        strbuf_append(&b, xml);
        *ret = strbuf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

int domain_store_save(const char *dir, const DomainDef *def, const DomainAccess *access, VbError *reterr) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = format_file(def, access, &text, reterr);
        if (r < 0)
                return r;
        return def_store_save(dir, domain_def_uuid(def).s, text, reterr);
}

int domain_store_stage(const char *dir, const DomainDef *def, const DomainAccess *access, DomainStoreStaged *ret,
                       VbError *reterr) {
        _cleanup_free_ char *xml = NULL, *path = NULL, *tmp = NULL;
        size_t size, done = 0;
        int fd, r;

        r = format_file(def, access, &xml, reterr);
        if (r < 0)
                return r;
        r = def_store_path(dir, domain_def_uuid(def).s, &path);
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
                int k = def_store_sync_dir(dir);
                if (k < 0)
                        log_warning_errno(k, "Failed to sync '%s', a crash now may lose recent definitions: %m", dir);
        }
        return r;
}

int domain_store_remove(const char *dir, const char *uuid, VbError *reterr) {
        return def_store_remove(dir, uuid, reterr);
}

int domain_store_set_autostart(const char *dir, const char *uuid, bool autostart, VbError *reterr) {
        return def_store_set_autostart(dir, uuid, autostart, reterr);
}

bool domain_store_get_autostart(const char *dir, const char *uuid) {
        return def_store_get_autostart(dir, uuid);
}

typedef struct LoadContext {
        DomainStoreLoadFunc cb;
        void *userdata;
} LoadContext;

static int load_one(const char *path, const char *uuid, const char *xml, void *userdata) {
        LoadContext *c = userdata;
        VbError e = VB_ERROR_NULL;
        DomainDef *def = NULL;
        DomainAccess access = {};
        int r;

        if (domain_access_parse(xml, &access, &xml) < 0) {
                log_warning("Failed to load '%s' (its owner record is damaged), ignoring; the file is kept as it is.",
                            path);
                return 0;
        }
        r = domain_def_parse_string(xml, 0, &def, &e);
        if (r < 0) {
                log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path,
                            e.message ?: strerror(-r));
                vb_error_free(&e);
                domain_access_done(&access);
                return 0;
        }
        if (!streq(uuid, domain_def_uuid(def).s)) {
                log_warning("'%s' holds the domain with UUID %s, not the one its name says, ignoring.", path,
                            domain_def_uuid(def).s);
                domain_def_free(def);
                domain_access_done(&access);
                return 0;
        }
        return c->cb(def, &access, c->userdata);
}

int domain_store_load_all(const char *dir, DomainStoreLoadFunc cb, void *userdata) {
        return def_store_load_all(dir, load_one, &(LoadContext) { cb, userdata });
}
