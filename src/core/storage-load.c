/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pools found again: a pool's volumes read from its directory (Start, Refresh), and the saved
 * and active pools loaded at start-up. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/storage-internal.h"
#include "host/child-wait.h"
#include "util/fileio.h"
#include "util/log.h"

/* Tests only: while the file VIRTBUS_TEST_STORAGE_HOLD names exists, a pool's Start, Stop and Refresh wait
 * before they touch the host (a pool on a slow or hung file system, made to order), so that a test can show
 * what is answered meanwhile. The wait ends when virtbusd stops (host_children_cancel). */
void storage_test_hold(void) {
        const char *f = getenv("VIRTBUS_TEST_STORAGE_HOLD");

        if (!f || f[0] != '/')
                return;
        while (access(f, F_OK) >= 0 && !host_children_cancelled())
                (void) usleep(10000);
}

/* Reads the pool's sizes and volumes again: new files appear, vanished ones go. */
int storage_pool_scan(StorageRegistry *r, StoragePool *p) {
        const VbStorageBackendOps *ops = storage_backend_find(p->def->type);
        char **names = NULL;
        size_t n = 0;
        int k;

        if (!ops || p->fd < 0)
                return 0;
        storage_test_hold();
        storage_pool_sweep_fills(r, p);
        (void) ops->pool_info(p->fd, &p->info);
        k = ops->list_volumes(p->fd, &names, &n);
        if (k < 0)
                return k;
        for (size_t i = p->n_vols; i > 0; i--) {
                bool found = false;

                for (size_t j = 0; j < n && !found; j++)
                        found = streq(names[j], p->vols[i - 1]->name);
                /* A volume a job works on, or a clone reads, stays until that ends. */
                if (!found && !p->vols[i - 1]->job && p->vols[i - 1]->n_readers == 0)
                        storage_vol_remove(r, p->vols[i - 1]);
        }
        for (size_t j = 0; j < n; j++) {
                StorageVolInfo info;
                StorageVol *v = storage_vol_by_name(p, names[j]);

                if (ops->vol_info(p->fd, names[j], &info, NULL) >= 0) {
                        if (v)
                                v->info = info;
                        else
                                (void) storage_vol_add(r, p, names[j], &info, NULL);
                }
                free(names[j]);
        }
        free(names);
        return 0;
}

/* Loading --------------------------------------------------------------------------------------- */

static int load_saved(const char *path, const char *uuid, const char *xml, void *userdata) {
        StorageRegistry *r = userdata;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p;
        char got[37];
        int k;

        k = storage_pool_def_parse_string(xml, 0, &def, &e);
        if (k < 0) {
                log_warning("Failed to load '%s' (%s), ignoring; the file is kept as it is.", path, e.message ?: strerror(-k));
                vb_error_free(&e);
                return 0;
        }
        storage_pool_def_get_uuid_string(def, got);
        if (!streq(got, uuid) || storage_pool_check_conflicts(r, def, NULL, NULL) < 0) {
                log_warning("'%s' holds pool %s, not the one its name says, or one that is already there; ignoring.",
                            path, got);
                storage_pool_def_free(def);
                return 0;
        }
        k = storage_pool_add(r, def, true, &p);
        if (k >= 0)
                p->autostart = def_store_get_autostart(r->dir, uuid);
        return k < 0 ? k : 0;
}

/* Pools that were active when virtbusd stopped: saved ones start again, transient ones come back. */
static int load_status(const char *path, const char *uuid, const char *xml, void *userdata) {
        StorageRegistry *r = userdata;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p = storage_pool_by_uuid(r, uuid);
        int k;

        if (p) {
                if (!storage_pool_is_active(p) && storage_pool_activate(r, p, &e) < 0)
                        log_warning("Failed to start pool '%s' again, ignoring: %s", p->name, strempty(e.message));
                vb_error_free(&e);
                return 0;
        }
        if (storage_pool_def_parse_string(xml, 0, &def, &e) < 0) {
                log_warning("Failed to read '%s', ignoring: %s", path, strempty(e.message));
                vb_error_free(&e);
                (void) unlink(path);
                return 0;
        }
        k = storage_pool_create(r, def, &p, &e);
        if (k < 0) {
                log_warning("Failed to bring back transient pool from '%s', ignoring: %s", path, strempty(e.message));
                (void) unlink(path);
        }
        vb_error_free(&e);
        return 0;
}

static int setup_test_pool(StorageRegistry *r) {
        _cleanup_free_ char *xml = NULL;
        StoragePoolDef *def = NULL;
        VbError e = VB_ERROR_NULL;
        StoragePool *p;
        int k;

        if (!r->test_pool_dir || storage_pool_by_name(r, STORAGE_TEST_POOL_NAME))
                return 0;
        if (mkdir_p(r->test_pool_dir, 0711) < 0)
                return log_warning_errno(errno, "Failed to create '%s', ignoring: %m", r->test_pool_dir);
        if (asprintf(&xml, "<pool type='dir'><name>" STORAGE_TEST_POOL_NAME "</name><target><path>%s</path></target></pool>",
                     r->test_pool_dir) < 0)
                return -ENOMEM;
        k = storage_pool_def_parse_string(xml, STORAGE_PARSE_STABLE_DEFAULTS, &def, &e);
        if (k >= 0)
                k = storage_pool_create(r, def, &p, &e);
        if (k < 0)
                log_warning("Failed to set up the test pool, ignoring: %s", e.message ?: strerror(-k));
        vb_error_free(&e);
        return 0;
}

int storage_registry_load(StorageRegistry *r) {
        int k;

        k = def_store_load_all(r->dir, load_saved, r);
        if (k < 0)
                log_warning_errno(k, "Failed to load saved storage pools, ignoring: %m");
        k = def_store_load_all(r->status_dir, load_status, r);
        if (k < 0)
                log_warning_errno(k, "Failed to find active storage pools, ignoring: %m");
        for (size_t i = 0; i < r->n_pools; i++) {
                StoragePool *p = r->pools[i];
                VbError e = VB_ERROR_NULL;

                if (p->autostart && !storage_pool_is_active(p) && storage_pool_start(r, p, &e) < 0)
                        log_warning("Failed to autostart storage pool '%s', ignoring: %s", p->name, strempty(e.message));
                vb_error_free(&e);
        }
        return setup_test_pool(r);
}
