/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Short-lived helper programs (nft; mkfs of a storage pool's Build) that threads start and wait for, bounded once virtbusd stops: a
 * helper that hangs (held, or stuck on a lock) must not keep the service from answering its callers and
 * exiting. The child is started in a process group of its own, so that what it started goes with it. */

/* After host_children_cancel(), a child still running (or started later) gets this long, then SIGKILL. */
#define HOST_CHILD_CANCEL_GRACE_USEC (500ULL * 1000ULL)

/* Waits for child pid (a process group leader) and returns its wait status in *ret_status; 0 or -errno. */
int host_child_wait(pid_t pid, int *ret_status);
/* The same, and killed (with its group) after timeout_usec (0: no bound): then -ETIMEDOUT, once reaped. */
int host_child_wait_timeout(pid_t pid, uint64_t timeout_usec, int *ret_status);
/* From any thread: children being waited for, and later ones, are killed after the grace above. */
void host_children_cancel(void);
bool host_children_cancelled(void);
