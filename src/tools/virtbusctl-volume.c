/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl vol-upload / vol-download: the file (or stdin/stdout) goes to StorageVol.Upload/Download as
 * a descriptor opened here, with this user's rights; the volume's Progress signals draw a bar on a
 * terminal while the call runs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/virtbusctl.h"

#define TRANSFER_TIMEOUT_USEC (7ULL * 24 * 3600 * 1000000ULL) /* a week: the transfer decides */

typedef struct Transfer {
        const char *volume, *verb;
        bool bar, done;
        int r;
        uint64_t done_bytes, total;
        sd_bus_error error;
} Transfer;

static void progress_draw(const Transfer *t) {
        char done[32], total[32], bar[31];
        unsigned pct = t->total ? (unsigned) (t->done_bytes * 100 / t->total) : 100;
        size_t fill = pct * (sizeof bar - 1) / 100;

        memset(bar, '#', fill);
        memset(bar + fill, '-', sizeof bar - 1 - fill);
        bar[sizeof bar - 1] = 0;
        format_bytes(t->done_bytes, done, sizeof done);
        format_bytes(t->total, total, sizeof total);
        fprintf(stderr, "\r%s '%s' [%s] %3u%% %s of %s\033[K", t->verb, t->volume, bar, pct, done, total);
        fflush(stderr);
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Transfer *t = userdata;

        if (sd_bus_message_read(m, "tt", &t->done_bytes, &t->total) < 0)
                return 0;
        if (t->bar)
                progress_draw(t);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Transfer *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        t->done = true;
        if (e) {
                t->r = -sd_bus_message_get_errno(m);
                (void) sd_bus_error_copy(&t->error, e);
        }
        return 0;
}

static int open_file(const char *file, bool upload, bool *ret_close) {
        int fd;

        *ret_close = false;
        if (streq(file, "-"))
                return upload ? STDIN_FILENO : STDOUT_FILENO;
        fd = upload ? open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)
                    : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                int e = errno;

                fprintf(stderr, "Failed to open '%s': %s\n", file, strerror(e));
                return -(e == ENOENT ? CTL_EXIT_NO_SUCH : e == EACCES ? CTL_EXIT_DENIED : CTL_EXIT_FAILED);
        }
        *ret_close = true;
        return fd;
}

/* Calls Upload/Download asynchronously and runs the bus until the answer, drawing Progress. */
static int transfer_run(sd_bus *bus, const char *path, int fd, Transfer *t, const char *method) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *call = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_match_signal(bus, &match, CTL_SERVICE, path, CTL_VOL, "Progress", on_progress, t);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, CTL_SERVICE, path, CTL_VOL, method);
        if (r >= 0)
                r = sd_bus_message_append(m, "httt", fd, arg.offset, arg.length, UINT64_C(0));
        if (r >= 0)
                r = sd_bus_call_async(bus, &call, m, on_reply, t, TRANSFER_TIMEOUT_USEC);
        while (r >= 0 && !t->done) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
        }
        if (r < 0) {
                fprintf(stderr, "Failed to call %s: %s\n", method, strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        return 0;
}

/* vol-upload|vol-download POOL VOLUME FILE [--offset N] [--length N] */
int verb_vol_transfer(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *pool = NULL, *path = NULL;
        bool upload = streq(v->method, "Upload"), close_fd;
        Transfer t = {
                .volume = argv[1],
                .verb = upload ? "Uploading" : "Downloading",
                .error = SD_BUS_ERROR_NULL,
        };
        const char *p;
        int fd, r;

        r = ctl_lookup(bus, v->kind, argv[0], &pool);
        if (r >= 0)
                r = ctl_call(bus, pool, CTL_POOL, "GetVolumeByName", &reply, "s", argv[1]);
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "o", &p) < 0 || !(path = strdup(p)))
                return -CTL_EXIT_FAILED;
        fd = open_file(argv[2], upload, &close_fd);
        if (fd < 0)
                return fd;
        /* A bar on a terminal only, and never into the data going to stdout. */
        t.bar = !arg.json && isatty(STDERR_FILENO);
        r = transfer_run(bus, path, fd, &t, v->method);
        if (close_fd)
                close(fd);
        if (t.bar && t.total > 0)
                fputc('\n', stderr);
        if (r >= 0 && t.r < 0)
                r = -ctl_error(&t.error, t.r, v->method);
        sd_bus_error_free(&t.error);
        if (r < 0) {
                /* Nothing half-written left behind by us: a download into a new file is removed. */
                if (!upload && close_fd)
                        (void) unlink(argv[2]);
                return r;
        }
        if (!streq(argv[2], "-") || upload)
                ctl_print_done(argv[1], path, NULL);
        return 0;
}
