/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

/* The event loop, with a warning in the log for every dispatch that held it longer than a threshold:
 * one such dispatch delays every other caller, so a person reading the log should see it, and what it
 * was. sd-event does not say which source it dispatched, so whoever knows notes it (loop_watch_note:
 * the bus server names each message it processes); a dispatch nobody noted is logged without a name. */

#define LOOP_WATCH_DEFAULT_USEC (50ULL * 1000ULL)

/* Runs e until it exits, as sd_event_loop() does; threshold_usec 0 turns the warnings off. Returns the
 * loop's exit code or < 0. */
int loop_watch_run(sd_event *e, uint64_t threshold_usec);

/* What the dispatch under way is doing, for its warning (kept until the dispatch ends). Event loop only. */
void loop_watch_note(const char *format, ...) _printf_(1, 2);

/* How many slow dispatches were logged (for tests and the shutdown log). */
uint64_t loop_watch_slow_count(void);
