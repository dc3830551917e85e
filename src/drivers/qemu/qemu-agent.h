/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "util/macro.h"

/* The guest agent (qemu-ga) of one domain, over virtbusd's connection to the socket QEMU listens on as the
 * chardev of the guest's org.qemu.guest_agent.0 port (made again after a restart of virtbusd; what the
 * previous connection left half-read is skipped by the handshake below). All on the event loop: a request is written,
 * and its reply (or the timeout) arrives later. Requests go one at a time, each after a guest-sync-delimited
 * handshake, so that what a previous, timed-out request left in the channel is skipped. */
typedef struct QemuAgent QemuAgent;

/* ret: the "return" member (NULL on failure); r < 0 on failure: -ETIMEDOUT (no answer in time), -EIO
 * (the agent refused: error is its "desc"), -ECONNRESET (the channel closed), -ECANCELED (freed). */
typedef void (*QemuAgentReplyFn)(int r, struct json_object *ret, const char *error, void *userdata);

#define QEMU_AGENT_TIMEOUT_USEC (5ULL * 1000000ULL)
/* Requests waiting at most (-EBUSY past that): a hung agent makes each wait its timeout. */
#define QEMU_AGENT_QUEUE_MAX 16

/* Takes fd (non-blocking, close-on-exec) also on failure. */
int qemu_agent_new(sd_event *event, int fd, QemuAgent **ret);
/* Pending requests get -ECANCELED. */
QemuAgent *qemu_agent_free(QemuAgent *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuAgent *, qemu_agent_free);

/* Whether the guest has the port open (QEMU's VSERPORT_CHANGE), as the driver tells it. */
void qemu_agent_set_connected(QemuAgent *a, bool connected);
bool qemu_agent_is_connected(const QemuAgent *a);

/* Queues command with args (taken, may be NULL). When one request times out, those queued behind it fail
 * with -ETIMEDOUT too (the agent is hung). no_reply: the command answers nothing when it works
 * (guest-shutdown): done follows once it is written after the handshake. */
int qemu_agent_call(QemuAgent *a, const char *command, struct json_object *args, bool no_reply, QemuAgentReplyFn cb,
                    void *userdata);
