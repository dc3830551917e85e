/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/macro.h"

/* The failures kept for waiters that ask after the commit has ended (a reply that waited for a driver
 * first); failures are rare, and a waiter asks right after its own changes. */
#define FAILURES_MAX 64

typedef enum OpType {
        OP_WRITE,
        OP_REMOVE,
        OP_SYMLINK,
        OP_RMDIR,
} OpType;

typedef struct Op {
        uint64_t seq;
        OpType type;
        char *path;
        char *tmp_path; /* OP_WRITE: the temporary file, written and synced by the thread */
        char *contents; /* OP_WRITE */
        size_t size;
        mode_t mode;
        char *target;   /* OP_SYMLINK */
        bool tmp_made;  /* OP_WRITE: the temporary file exists (removed unless renamed) */
        int result;
} Op;

typedef struct Batch {
        Durable *durable;
        Op *ops;
        size_t n;
} Batch;

typedef struct Waiter {
        uint64_t since, target;
        DurableDoneFunc done;
        void *userdata;
} Waiter;

typedef struct Failure {
        uint64_t seq;
        int r;
        char *path;
} Failure;

struct Durable {
        sd_event *event;
        Worker *worker;
        Op *pending;
        size_t n_pending, n_pending_allocated;
        Batch *in_flight;
        uint64_t seq;       /* of the last change queued */
        uint64_t committed; /* every change up to this one is committed (or failed) */
        uint64_t n_tmp;
        Waiter *waiters;
        size_t n_waiters, n_waiters_allocated;
        Failure failures[FAILURES_MAX];
        uint64_t n_failures;
        sd_event_source *answer_source;
};

static void op_done(Op *op) {
        if (op->tmp_made)
                (void) unlink(op->tmp_path);
        free(op->path);
        free(op->tmp_path);
        free(op->contents);
        free(op->target);
        *op = (Op) { .seq = op->seq, .result = op->result };
}

static void batch_free(Batch *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n; i++)
                op_done(&b->ops[i]);
        free(b->ops);
        free(b);
}

static int sync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        int fd, r = 0;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

static bool same_dir(const char *a, const char *b) {
        const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
        size_t na = sa ? (size_t) (sa - a) : 0, nb = sb ? (size_t) (sb - b) : 0;

        return na == nb && strncmp(a, b, na) == 0;
}

/* The temporary file of op, written and synced (a new file: its data and size are what a reader needs),
 * and closed: a batch of any size holds no descriptors. */
static int write_temp(Op *op) {
        int fd, r;

        fd = open(op->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, op->mode);
        if (fd < 0 && errno == EEXIST) { /* left by an earlier run that crashed */
                (void) unlink(op->tmp_path);
                fd = open(op->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, op->mode);
        }
        if (fd < 0)
                return -errno;
        op->tmp_made = true;
        r = write_all_fd(fd, op->contents, op->size);
        if (r >= 0 && fdatasync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        return r;
}

/* OP_REMOVE or OP_RMDIR of path: gone already, or (a directory) still in use, count as done. */
static int remove_now(OpType type, const char *path) {
        if (type == OP_REMOVE)
                return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        return rmdir(path) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST ? -errno : 0;
}

/* In the worker thread: touches only the batch and the file system. */
static void batch_work(void *userdata) {
        Batch *b = userdata;

        /* Every new file's data first: nothing is renamed before it is durable. Even creating a file may
         * wait for the file system's journal, so that too is done here, never on the loop. */
        for (size_t i = 0; i < b->n; i++)
                if (b->ops[i].type == OP_WRITE)
                        b->ops[i].result = write_temp(&b->ops[i]);
        /* Then the names, in the order they were asked for. */
        for (size_t i = 0; i < b->n; i++) {
                Op *op = &b->ops[i];

                switch (op->type) {
                case OP_WRITE:
                        if (op->result >= 0 && rename(op->tmp_path, op->path) < 0)
                                op->result = -errno;
                        if (op->result >= 0)
                                op->tmp_made = false; /* renamed: nothing to remove */
                        break;
                case OP_REMOVE:
                case OP_RMDIR:
                        op->result = remove_now(op->type, op->path);
                        break;
                case OP_SYMLINK:
                        if (symlink(op->target, op->path) < 0 && errno != EEXIST)
                                op->result = -errno;
                        break;
                }
        }
        /* One sync per directory; a failure there leaves its changes in doubt: their callers hear it. */
        for (size_t i = 0; i < b->n; i++) {
                bool seen = false;
                int k;

                if (b->ops[i].result < 0)
                        continue;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = b->ops[j].result >= 0 && same_dir(b->ops[j].path, b->ops[i].path);
                if (seen)
                        continue;
                k = sync_dir_of(b->ops[i].path);
                if (k == -ENOENT && b->ops[i].type != OP_WRITE && b->ops[i].type != OP_SYMLINK)
                        k = 0; /* a removal from a directory that does not exist: nothing to sync */
                if (k < 0)
                        for (size_t j = i; j < b->n; j++)
                                if (b->ops[j].result >= 0 && same_dir(b->ops[j].path, b->ops[i].path))
                                        b->ops[j].result = k;
        }
}

static void note_failure(Durable *d, const Op *op) {
        Failure *f = &d->failures[d->n_failures++ % FAILURES_MAX];

        free(f->path);
        *f = (Failure) { .seq = op->seq, .r = op->result, .path = strdup(op->path) };
        log_error_errno(op->result, "Failed to commit '%s', it is as it was before: %m", op->path);
}

/* The first failure among the changes (since, target] that is still known. */
static const Failure *find_failure(const Durable *d, uint64_t since, uint64_t target) {
        const Failure *first = NULL;
        uint64_t from = d->n_failures > FAILURES_MAX ? d->n_failures - FAILURES_MAX : 0;

        for (uint64_t i = from; i < d->n_failures; i++) {
                const Failure *f = &d->failures[i % FAILURES_MAX];

                if (f->seq > since && f->seq <= target && (!first || f->seq < first->seq))
                        first = f;
        }
        return first;
}

/* Answers the waiters whose changes are all committed, in the order they came. */
static void answer_waiters(Durable *d) {
        size_t kept = 0, n_ready = 0, n = d->n_waiters;
        Waiter *ready;

        ready = new0(Waiter, n ?: 1);
        if (!ready) {
                log_error("Out of memory while answering; retrying.");
                (void) sd_event_source_set_enabled(d->answer_source, SD_EVENT_ONESHOT);
                return;
        }
        /* Taken out first: a done callback may queue changes and wait again. */
        for (size_t i = 0; i < n; i++)
                if (d->waiters[i].target <= d->committed)
                        ready[n_ready++] = d->waiters[i];
                else
                        d->waiters[kept++] = d->waiters[i];
        d->n_waiters = kept;
        for (size_t i = 0; i < n_ready; i++) {
                const Failure *f = find_failure(d, ready[i].since, ready[i].target);

                ready[i].done(f ? f->r : 0, f ? f->path : NULL, ready[i].userdata);
        }
        free(ready);
}

static int on_answer(sd_event_source *s, void *userdata) {
        answer_waiters(userdata);
        return 0;
}

static void batch_start(Durable *d);

static void batch_done(void *userdata, bool cancelled) {
        Batch *b = userdata;
        Durable *d = b->durable;

        if (cancelled) /* the worker went away first: not expected, the owner flushes before */
                batch_work(b);
        for (size_t i = 0; i < b->n; i++)
                if (b->ops[i].result < 0)
                        note_failure(d, &b->ops[i]);
        if (b->n > 0)
                d->committed = b->ops[b->n - 1].seq;
        d->in_flight = NULL;
        batch_free(b);
        batch_start(d);
        answer_waiters(d);
}

/* Hands what is queued to the worker, unless a commit is in flight (its end starts the next). */
static void batch_start(Durable *d) {
        Batch *b;
        int r;

        if (d->in_flight || d->n_pending == 0)
                return;
        b = new0(Batch, 1);
        if (!b) {
                log_error("Out of memory while committing files; retrying with the next change.");
                return;
        }
        *b = (Batch) { .durable = d, .ops = TAKE_PTR(d->pending), .n = d->n_pending };
        d->n_pending = d->n_pending_allocated = 0;
        d->in_flight = b;
        r = worker_submit(d->worker, batch_work, batch_done, b);
        if (r < 0) {
                log_debug_errno(r, "Failed to hand the commit to a thread, committing here: %m");
                batch_work(b);
                batch_done(b, false);
        }
}

/* What a change needs of path's directory, asked on the loop (access() reads the cached inode, it never
 * waits for the journal as creating a file may): a directory that is read-only, immutable or not the
 * service's to write is refused at once, before the caller publishes anything. For a removal or a link
 * one that does not exist is fine (nothing to remove; a link's directory is made by the caller). */
static int check_dir(const char *path, bool may_be_missing) {
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        if (access(dirname(copy), W_OK) < 0 && !(may_be_missing && errno == ENOENT))
                return -errno;
        return 0;
}

static int check_dir_writable(const char *path) {
        return check_dir(path, true);
}

static int queue(Durable *d, Op *op) {
        if (!GREEDY_REALLOC(d->pending, d->n_pending_allocated, d->n_pending + 1)) {
                op_done(op);
                return -ENOMEM;
        }
        op->seq = ++d->seq;
        d->pending[d->n_pending++] = *op;
        batch_start(d);
        return 0;
}

int durable_write(Durable *d, const char *path, const char *contents, size_t size, mode_t mode) {
        Op op = { .type = OP_WRITE, .size = size, .mode = mode };
        int r;

        if (!d)
                return write_file_atomic(path, contents, size, mode);
        r = check_dir(path, false); /* a new file needs its directory */
        if (r < 0)
                return r;
        op.path = strdup(path);
        op.contents = malloc(size ?: 1);
        if (op.contents)
                memcpy(op.contents, contents, size);
        if (!op.path || !op.contents || asprintf(&op.tmp_path, "%s.%" PRIu64 ".tmp~", path, ++d->n_tmp) < 0) {
                op.tmp_path = NULL;
                op_done(&op);
                return -ENOMEM;
        }
        return queue(d, &op);
}

static int removal(Durable *d, OpType type, const char *path) {
        Op op = { .type = type };
        int r;

        if (!d) {
                r = remove_now(type, path);
                if (r < 0)
                        return r;
                r = sync_dir_of(path);
                return r == -ENOENT ? 0 : r;
        }
        r = check_dir_writable(path);
        if (r < 0)
                return r;
        op.path = strdup(path);
        if (!op.path)
                return -ENOMEM;
        return queue(d, &op);
}

int durable_remove(Durable *d, const char *path) {
        return removal(d, OP_REMOVE, path);
}

int durable_remove_dir(Durable *d, const char *path) {
        return removal(d, OP_RMDIR, path);
}

int durable_symlink(Durable *d, const char *target, const char *path) {
        Op op = { .type = OP_SYMLINK };
        int r;

        if (!d) {
                if (symlink(target, path) < 0 && errno != EEXIST)
                        return -errno;
                return sync_dir_of(path);
        }
        r = check_dir_writable(path);
        if (r < 0)
                return r;
        op.path = strdup(path);
        op.target = strdup(target);
        if (!op.path || !op.target) {
                op_done(&op);
                return -ENOMEM;
        }
        return queue(d, &op);
}

uint64_t durable_seq(const Durable *d) {
        return d ? d->seq : 0;
}

bool durable_busy(const Durable *d) {
        return d && (d->in_flight || d->n_pending > 0);
}

int durable_wait(Durable *d, uint64_t since, DurableDoneFunc done, void *userdata) {
        if (!d || since >= d->seq)
                return 1;
        if (!GREEDY_REALLOC(d->waiters, d->n_waiters_allocated, d->n_waiters + 1))
                return -ENOMEM;
        d->waiters[d->n_waiters++] = (Waiter) { .since = since, .target = d->seq, .done = done,
                                                .userdata = userdata };
        /* Committed already (the caller waited for something else first): answered from the loop. */
        if (d->seq <= d->committed)
                return sd_event_source_set_enabled(d->answer_source, SD_EVENT_ONESHOT) < 0 ? -EIO : 0;
        return 0;
}

void durable_flush(Durable *d) {
        if (!d)
                return;
        while (d->in_flight || d->n_pending > 0) {
                if (d->in_flight)
                        worker_wait(d->worker);
                if (!d->in_flight) {
                        if (d->n_pending == 0)
                                break;
                        batch_start(d);
                        if (!d->in_flight) /* out of memory: commit what is left here */
                                break;
                }
        }
        answer_waiters(d);
}

int durable_new(sd_event *event, Worker *worker, Durable **ret) {
        Durable *d;
        int r;

        d = new0(Durable, 1);
        if (!d)
                return -ENOMEM;
        *d = (Durable) { .event = sd_event_ref(event), .worker = worker };
        r = sd_event_add_defer(event, &d->answer_source, on_answer, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->answer_source, SD_EVENT_OFF);
        if (r < 0) {
                durable_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

Durable *durable_free(Durable *d) {
        if (!d)
                return NULL;
        durable_flush(d);
        for (size_t i = 0; i < d->n_pending; i++) /* only when memory ran out */
                op_done(&d->pending[i]);
        free(d->pending);
        for (size_t i = 0; i < d->n_waiters; i++)
                d->waiters[i].done(-ECANCELED, NULL, d->waiters[i].userdata);
        free(d->waiters);
        for (size_t i = 0; i < FAILURES_MAX; i++)
                free(d->failures[i].path);
        sd_event_source_disable_unref(d->answer_source);
        sd_event_unref(d->event);
        free(d);
        return NULL;
}
