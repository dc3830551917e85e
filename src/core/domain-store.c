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

int domain_store_save(Durable *durable, const char *dir, const DomainDef *def, const DomainAccess *access, VbError *reterr) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = format_file(def, access, &text, reterr);
        if (r < 0)
                return r;
        return def_store_save(durable, dir, domain_def_uuid(def).s, text, reterr);
}

int domain_store_prepare(const char *dir, const DomainDef *def, const DomainAccess *access, DomainStoreStaged *ret,
                         VbError *reterr) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        int r;

        r = format_file(def, access, &text, reterr);
        if (r < 0)
                return r;
        r = def_store_path(dir, domain_def_uuid(def).s, &path);
        if (r < 0)
                return r;
        *ret = (DomainStoreStaged) { .fd = -1, .path = TAKE_PTR(path), .text = TAKE_PTR(text), .result = 1 };
        return 0;
}

void domain_store_staged_done(DomainStoreStaged *s) {
        if (s->fd >= 0) {
                close(s->fd);
                if (s->tmp_path)
                        (void) unlink(s->tmp_path);
        }
        free(s->tmp_path);
        free(s->path);
        free(s->text);
        *s = (DomainStoreStaged) { .fd = -1, .result = s->result };
}

/* Writes s's text to <path>.tmp~ and makes it durable; the file stays open (s->fd) until renamed. */
static int write_synced(DomainStoreStaged *s) {
        size_t size = strlen(s->text), done = 0;

        if (asprintf(&s->tmp_path, "%s.tmp~", s->path) < 0) {
                s->tmp_path = NULL;
                return -ENOMEM;
        }
        (void) unlink(s->tmp_path);
        s->fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (s->fd < 0)
                return -errno;
        while (done < size) {
                ssize_t k = write(s->fd, s->text + done, size - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        /* The data and the size: what a reader needs after a crash (a new file, so no other metadata). */
        return fdatasync(s->fd) < 0 ? -errno : 0;
}

int domain_store_commit(const char *dir, DomainStoreStaged *staged, size_t n) {
        bool renamed = false;
        int r = 0;

        /* Each file is synced on its own: syncfs() would also wait for whatever else is dirty on that file
         * system, which here is unbounded. Nothing is renamed before all are durable, so a crash leaves
         * each definition old or new. */
        for (size_t i = 0; i < n; i++)
                if (staged[i].path && staged[i].result > 0)
                        staged[i].result = write_synced(&staged[i]);
        for (size_t i = 0; i < n; i++) {
                if (!staged[i].path || staged[i].result > 0)
                        continue;
                if (staged[i].result >= 0 && rename(staged[i].tmp_path, staged[i].path) < 0)
                        staged[i].result = -errno;
                if (staged[i].result >= 0) {
                        close(staged[i].fd);
                        staged[i].fd = -1; /* committed: nothing to unlink */
                        renamed = true;
                } else if (r >= 0)
                        r = staged[i].result;
                domain_store_staged_done(&staged[i]);
        }
        if (renamed) {
                /* The files are whole and synced; the renames will very likely survive too. */
                int k = def_store_sync_dir(dir);
                if (k < 0)
                        log_warning_errno(k, "Failed to sync '%s', a crash now may lose recent definitions: %m", dir);
        }
        return r;
}

int domain_store_remove(Durable *durable, const char *dir, const char *uuid, VbError *reterr) {
        return def_store_remove(durable, dir, uuid, reterr);
}

int domain_store_set_autostart(Durable *durable, const char *dir, const char *uuid, bool autostart,
                               VbError *reterr) {
        return def_store_set_autostart(durable, dir, uuid, autostart, reterr);
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
