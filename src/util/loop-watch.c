/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "util/log.h"
#include "util/loop-watch.h"

/* Warnings beyond the first few in a second are counted and summed up in the next one logged: a
 * caller who can make dispatches slow must not also flood the log. */
#define WARNINGS_PER_SECOND 5U

static struct {
        char note[256];
        uint64_t slow;
        uint64_t window_start;
        unsigned in_window;
        uint64_t suppressed;
} watch;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

void loop_watch_note(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(watch.note, sizeof watch.note, format, ap);
        va_end(ap);
}

uint64_t loop_watch_slow_count(void) {
        return watch.slow;
}

static void report(uint64_t busy, uint64_t threshold, uint64_t now) {
        char more[96] = "";

        watch.slow++;
        if (now - watch.window_start >= 1000000ULL) {
                watch.window_start = now;
                watch.in_window = 0;
        }
        if (watch.in_window >= WARNINGS_PER_SECOND) {
                watch.suppressed++;
                return;
        }
        watch.in_window++;
        if (watch.suppressed > 0)
                (void) snprintf(more, sizeof more, " (%llu slow dispatches before this one were not logged)",
                                (unsigned long long) watch.suppressed);
        log_warning("Slow dispatch: the event loop was held for %llu.%03llu ms (more than %llu ms) by %s; "
                    "every other caller waited.%s",
                    (unsigned long long) (busy / 1000), (unsigned long long) (busy % 1000),
                    (unsigned long long) (threshold / 1000), watch.note[0] ? watch.note : "an unnamed event source",
                    more);
        watch.suppressed = 0;
}

int loop_watch_run(sd_event *e, uint64_t threshold_usec) {
        int r, code = 0;

        while (sd_event_get_state(e) != SD_EVENT_FINISHED) {
                uint64_t start, busy;

                watch.note[0] = 0;
                start = now_usec();
                r = sd_event_prepare(e);
                busy = now_usec() - start;
                if (r == 0) {
                        r = sd_event_wait(e, UINT64_MAX);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
                if (r > 0) {
                        start = now_usec();
                        r = sd_event_dispatch(e);
                        if (r < 0)
                                return r;
                        busy += now_usec() - start;
                }
                if (threshold_usec > 0 && busy > threshold_usec)
                        report(busy, threshold_usec, now_usec());
        }
        r = sd_event_get_exit_code(e, &code);
        return r < 0 ? r : code;
}
