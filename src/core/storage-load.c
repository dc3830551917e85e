/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pools found again: a pool's volumes read from its directory (Start, Refresh), and the saved
 * and active pools loaded at start-up. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/def-store.h"
#include "core/storage-internal.h"
#include "host/child-wait.h"
#include "util/fileio.h"
#include "util/hashmap.h"
#include "util/log.h"

/* Tests only: while the file VIRTBUS_TEST_STORAGE_HOLD names exists, a pool's Start, Stop and Refresh wait
 * before they touch the host (a pool on a slow or hung file system, made to order), so that a test can show
 * what is answered meanwhile. The wait ends when virtbusd stops (host_children_cancel), unless the file is
 * a FIFO: then the thread opens it, a system call that returns only when the test opens the other end
 * (a mount that never returns, which nothing in virtbusd can cut short). */
void storage_test_hold(void) {
        const char *f = getenv("VIRTBUS_TEST_STORAGE_HOLD");
        struct stat st;
        int fd;

        if (!f || f[0] != '/')
                return;
        if (stat(f, &st) >= 0 && S_ISFIFO(st.st_mode)) {
                fd = open(f, O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        close(fd);
                return;
        }
        while (access(f, F_OK) >= 0 && !host_children_cancelled())
                (void) usleep(10000);
}

/* A scan in two halves: what the pool holds is read from the host in any thread (a worker's, for Start
 * and Refresh: a large or slow directory must not hold the event loop), and the registry follows it on
 * the loop, in steps (storage_step_more): a pool of thousands of new files is announced a few hundred
 * volumes per turn of the loop. */
struct PoolScan {
        const VbStorageBackendOps *ops;
        int pool_fd;     /* the pool's (borrowed): it stays open while the pool is busy */
        char *fill_dir;  /* where the records of clones being filled are */
        char **busy;     /* the volumes a job worked on when the scan began: their records stay */
        size_t n_busy, n_busy_allocated;
        unsigned vol_changes; /* the pool's count when the scan began */
        StoragePoolInfo info;
        char **names;    /* the volumes found, sorted */
        StorageVolInfo *infos;
        bool *have_info;
        size_t n;
        Hashmap *found;  /* names -> themselves, made in the thread too */
        char **swept;    /* volumes removed: their clone was cut short */
        size_t n_swept;
        int r;
        /* Applying, on the loop: */
        enum { APPLY_BEGIN, APPLY_GONE, APPLY_FOUND, APPLY_DONE } phase;
        char **gone;     /* volumes no longer found, removed in APPLY_GONE */
        size_t n_gone;
        size_t at;       /* the next one of gone or names */
};

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

PoolScan *storage_pool_scan_free(PoolScan *s) {
        if (!s)
                return NULL;
        free(s->fill_dir);
        strv_free_n(s->busy, s->n_busy);
        hashmap_free(s->found);
        strv_free_n(s->names, s->n);
        free(s->infos);
        free(s->have_info);
        strv_free_n(s->swept, s->n_swept);
        strv_free_n(s->gone, s->n_gone);
        free(s);
        return NULL;
}

int storage_pool_scan_new(StorageRegistry *r, StoragePool *p, PoolScan **ret) {
        _cleanup_(storage_pool_scan_freep) PoolScan *s = new0(PoolScan, 1);

        if (!s)
                return -ENOMEM;
        s->ops = storage_backend_find(p->def->type);
        s->pool_fd = p->fd;
        s->vol_changes = p->vol_changes;
        if (storage_fill_dir(r, p, &s->fill_dir) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_vols; i++) {
                if (!p->vols[i]->job)
                        continue;
                if (!GREEDY_REALLOC(s->busy, s->n_busy_allocated, s->n_busy + 1) || !(s->busy[s->n_busy] = strdup(p->vols[i]->name)))
                        return -ENOMEM;
                s->n_busy++;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

void storage_pool_scan_set_fd(PoolScan *s, int pool_fd) {
        s->pool_fd = pool_fd;
}

/* Any thread: the host only, nothing of the registry. */
int storage_pool_scan_read(PoolScan *s) {
        int k = 0;

        if (!s->ops || s->pool_fd < 0)
                return s->r = 0;
        storage_fill_sweep(s->ops, s->pool_fd, s->fill_dir, (const char * const *) s->busy, s->n_busy, &s->swept,
                           &s->n_swept);
        (void) s->ops->pool_info(s->pool_fd, &s->info);
        s->r = s->ops->list_volumes(s->pool_fd, &s->names, &s->n);
        if (s->r < 0)
                return s->r;
        s->infos = new0(StorageVolInfo, s->n ?: 1);
        s->have_info = new0(bool, s->n ?: 1);
        s->found = hashmap_new();
        if (!s->infos || !s->have_info || !s->found)
                return s->r = -ENOMEM;
        for (size_t j = 0; k >= 0 && j < s->n; j++)
                k = hashmap_put(s->found, s->names[j], s->names[j]);
        if (k < 0)
                return s->r = k;
        for (size_t j = 0; j < s->n; j++)
                s->have_info[j] = s->ops->vol_info(s->pool_fd, s->names[j], &s->infos[j], NULL) >= 0;
        return 0;
}

bool storage_pool_scan_stale(const StoragePool *p, const PoolScan *s) {
        return p->vol_changes != s->vol_changes;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

void storage_step_init(StorageStep *st) {
        *st = (StorageStep) { .left = STORAGE_STEP_VOLS, .until = now_usec() + STORAGE_STEP_USEC };
}

bool storage_step_more(StorageStep *st, bool announced) {
        if (announced && st->left > 0)
                st->left--;
        if (st->left == 0)
                return false;
        return st->until == UINT64_MAX || ++st->n % 16 != 0 || now_usec() < st->until;
}

/* The first step: volumes whose clone was cut short go, the pool's sizes are taken, and the volumes no
 * longer found (not those a job works on or a clone reads) are listed for the next phase. */
static int apply_begin(StorageRegistry *r, StoragePool *p, PoolScan *s) {
        size_t n = 0;

        for (size_t i = 0; i < s->n_swept; i++) {
                StorageVol *v = storage_vol_by_name(p, s->swept[i]);

                if (v && !v->job)
                        storage_vol_remove(r, v);
        }
        if (s->r < 0)
                return s->r;
        p->info = s->info;
        s->gone = new0(char *, p->n_vols ?: 1);
        if (!s->gone)
                return -ENOMEM;
        for (size_t i = p->n_vols; i > 0; i--) { /* from the end: each removal moves least */
                StorageVol *v = p->vols[i - 1];

                if (hashmap_get(s->found, v->name) || v->job || v->n_readers > 0)
                        continue;
                if (!(s->gone[n] = strdup(v->name))) {
                        s->n_gone = n;
                        return -ENOMEM;
                }
                n++;
        }
        s->n_gone = n;
        return 0;
}

/* On the loop, one step (st): new files appear, vanished ones go. Returns 1 when more is left for the
 * next step, 0 when the registry follows the scan, < 0 on failure (what was applied stays). Looked up by
 * name in hash maps: a pool of thousands of files costs the loop no more than its volumes' signals. */
int storage_pool_scan_apply_step(StorageRegistry *r, StoragePool *p, PoolScan *s, StorageStep *st) {
        int k;

        if (s->phase == APPLY_BEGIN) {
                k = apply_begin(r, p, s);
                s->phase = k < 0 ? APPLY_DONE : APPLY_GONE;
                s->at = 0;
                if (k < 0)
                        return k;
                if (!storage_step_more(st, false))
                        return 1;
        }
        while (s->phase == APPLY_GONE && s->at < s->n_gone) {
                /* Looked up again: a job's end may have removed it since. */
                StorageVol *v = storage_vol_by_name(p, s->gone[s->at++]);
                bool announced = v && !v->job && v->n_readers == 0;

                if (announced)
                        storage_vol_remove(r, v);
                if (!storage_step_more(st, announced))
                        return 1;
        }
        if (s->phase == APPLY_GONE) {
                s->phase = APPLY_FOUND;
                s->at = 0;
        }
        while (s->phase == APPLY_FOUND && s->at < s->n) {
                size_t j = s->at++;
                StorageVol *v = s->have_info[j] ? storage_vol_by_name(p, s->names[j]) : NULL;
                bool announced = s->have_info[j] && !v;

                if (v)
                        v->info = s->infos[j];
                else if (announced)
                        (void) storage_vol_add(r, p, s->names[j], &s->infos[j], NULL);
                if (!storage_step_more(st, announced))
                        return 1;
        }
        s->phase = APPLY_DONE;
        return 0;
}

/* Both halves at once: at start-up, before the loop serves anyone. */
int storage_pool_scan(StorageRegistry *r, StoragePool *p) {
        _cleanup_(storage_pool_scan_freep) PoolScan *s = NULL;
        StorageStep all = { .left = SIZE_MAX, .until = UINT64_MAX };
        int k;

        if (!storage_backend_find(p->def->type) || p->fd < 0)
                return 0;
        k = storage_pool_scan_new(r, p, &s);
        if (k < 0)
                return k;
        (void) storage_pool_scan_read(s);
        while ((k = storage_pool_scan_apply_step(r, p, s, &all)) > 0)
                ;
        return k;
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
