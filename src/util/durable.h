/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "util/worker.h"

/* Durable file changes without touching the disk on the event loop. A change is queued on the loop, after
 * a check that its directory may be written (access(): a read-only, immutable or missing directory is
 * answered there, before anything is published), and everything that may wait for the disk (writing a
 * new file's contents to a fresh temporary file and syncing it, the rename over the old file, the
 * removal of a file or the creation of a link, the syncs of the directories) runs in a worker thread, in
 * the order the changes were queued. Changes that arrive while one commit is in flight are committed together (one sync per
 * directory for all of them).
 *
 * A crash at any moment leaves each file old or new, never torn: a temporary file is renamed only
 * once it is synced, and one left over ends in ".tmp~" (loaders remove those). Whoever must answer only
 * once the change is durable (a D-Bus reply) waits with durable_wait(). */
typedef struct Durable Durable;

/* The worker must have exactly one thread (the order of the changes) and outlive d; other jobs may
 * share it, and are ordered with the changes. */
int durable_new(sd_event *event, Worker *worker, Durable **ret);
/* Commits what is queued (blocking), answers the waiters and frees d. */
Durable *durable_free(Durable *d);

/* Replaces path with contents (copied; mode for a new file). Returns -errno when path's directory cannot
 * be written: nothing is queued then, and path is untouched (a full disk is heard by the waiter). A NULL d
 * writes and syncs here and now. */
int durable_write(Durable *d, const char *path, const char *contents, size_t size, mode_t mode);
/* These three check on the loop that path's directory may be written (-errno, nothing queued, when not). */
/* Removes path (absent is fine) and syncs its directory. */
int durable_remove(Durable *d, const char *path);
/* Removes the directory path if it is empty (absent or not empty is fine) and syncs its parent. */
int durable_remove_dir(Durable *d, const char *path);
/* Creates the symbolic link path -> target (present is fine) and syncs its directory. */
int durable_symlink(Durable *d, const char *target, const char *path);

/* The number of changes queued so far: what durable_wait() calls since. */
uint64_t durable_seq(const Durable *d);
/* Whether changes are queued or being committed. */
bool durable_busy(const Durable *d);

/* Calls done on the event loop once every change queued so far is durable, with r < 0 and the path
 * when one of those queued after since failed (the file is then as it was before that change: old,
 * or absent). Returns 1 without calling done when nothing was queued after since (NULL d too), 0 when
 * done follows, < 0 on failure. */
typedef void (*DurableDoneFunc)(int r, const char *path, void *userdata);
int durable_wait(Durable *d, uint64_t since, DurableDoneFunc done, void *userdata);

/* Blocks until everything queued is committed and the waiters answered: for start-up, shutdown and tests. */
void durable_flush(Durable *d);
