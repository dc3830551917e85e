/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Upload, Download and Wipe of a volume: the kernel copies (splice, copy_file_range, sendfile,
 * fallocate), a thread of the job's own waits for it, the event loop hears progress and the end. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/param.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "core/storage-job.h"
#include "drivers/storage-backend.h"
#include "util/log.h"
#include "util/macro.h"

/* One system call moves at most this much: the bound on how late a cancel is seen. */
#define COPY_CHUNK (8U << 20)
/* A pipe we read from or write to is enlarged to this (the default pipe-max-size). */
#define PIPE_SIZE (1U << 20)
/* Wipe punches this much per call. */
#define WIPE_CHUNK (256U << 20)

static const char * const storage_job_kind_table[_STORAGE_JOB_KIND_MAX] = {
        [STORAGE_JOB_UPLOAD] = "upload",
        [STORAGE_JOB_DOWNLOAD] = "download",
        [STORAGE_JOB_WIPE] = "wipe",
        [STORAGE_JOB_CLONE] = "clone",
        [STORAGE_JOB_RESIZE] = "resize",
        [STORAGE_JOB_CREATE] = "create",
};

DEFINE_STRING_TABLE_LOOKUP(storage_job_kind, StorageJobKind);

#define copy_error(e, code, err, format, ...) \
        vb_error_set(e, code, format ": %s", ##__VA_ARGS__, strerror(err))

static bool cancelled(int cancel_fd) {
        struct pollfd p = { .fd = cancel_fd, .events = POLLIN };

        return cancel_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Waits until fd is ready for events; -ECANCELED when cancel_fd is first. */
static int wait_ready(int fd, short events, int cancel_fd) {
        struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = cancel_fd, .events = POLLIN } };

        for (;;) {
                if (poll(p, cancel_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (cancel_fd >= 0 && p[1].revents)
                        return -ECANCELED;
                if (p[0].revents)
                        return 0; /* ready, or hung up / failed: the copy call says which */
        }
}

/* Enlarges a pipe (ours or the caller's) to PIPE_SIZE, never shrinks it. A pipe left at its 64 KiB makes both
 * ends take turns every 64 KiB: a download through the caller's pipe ran at half its speed so (the reader's
 * read(2)s got 64 KiB each, a step of our splice and a wake-up of each side between them; bench/README.md,
 * issue 14). Not fatal: the copy only takes more steps. */
static void pipe_grow(int fd) {
        int size = fcntl(fd, F_GETPIPE_SZ);

        if (size >= 0 && (unsigned) size < PIPE_SIZE && fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE) < 0)
                log_debug("Failed to enlarge a pipe from %d to %u bytes, ignoring: %m", size, PIPE_SIZE);
}

/* The volume is read from start to end once: a larger readahead window (what cat(1) asks for too). */
static void read_sequentially(int fd, uint64_t offset, uint64_t length) {
        int r = posix_fadvise(fd, (off_t) offset, (off_t) length, POSIX_FADV_SEQUENTIAL);

        if (r != 0)
                log_debug("Failed to advise sequential reading, ignoring: %s", strerror(r));
}

static void add_done(uint64_t *done, uint64_t n) {
        __atomic_add_fetch(done, n, __ATOMIC_RELAXED);
}

/* Zeroes [off, off + len) of fd: a hole where the file system can, written zeroes where it cannot. */
static int zero_range(int fd, uint64_t off, uint64_t len) {
        static const char zeroes[64 * 1024];

        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len) >= 0)
                return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != ENODEV)
                return -errno;
        while (len > 0) {
                ssize_t n = pwrite(fd, zeroes, MIN(len, sizeof zeroes), (off_t) off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (uint64_t) n;
                len -= (uint64_t) n;
        }
        return 0;
}

/* Between two regular files: data by copy_file_range, holes of the source made holes in the target. */
static int64_t copy_files(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t length, uint64_t *done,
                          int cancel_fd, VbError *e) {
        uint64_t pos = in_off, end = in_off + length;

        while (pos < end) {
                off_t data, hole;
                int r;

                if (cancelled(cancel_fd))
                        return -ECANCELED;
                data = lseek(in, (off_t) pos, SEEK_DATA);
                if (data < 0 && errno != ENXIO)
                        return copy_error(e, VB_ERROR_OPERATION_FAILED, errno, "Failed to find data at %" PRIu64, pos);
                if (data < 0 || (uint64_t) data > end)
                        data = (off_t) end;
                if ((uint64_t) data > pos) {
                        uint64_t n = (uint64_t) data - pos;

                        r = zero_range(out, out_off + (pos - in_off), n);
                        if (r < 0)
                                return copy_error(e, VB_ERROR_OPERATION_FAILED, -r, "Failed to keep a hole at %" PRIu64,
                                                  out_off + (pos - in_off));
                        pos += n;
                        add_done(done, n);
                        continue;
                }
                hole = lseek(in, (off_t) pos, SEEK_HOLE);
                if (hole < 0 || (uint64_t) hole > end)
                        hole = (off_t) end;
                while (pos < (uint64_t) hole) {
                        loff_t ipos = (loff_t) pos, opos = (loff_t) (out_off + (pos - in_off));
                        ssize_t n = copy_file_range(in, &ipos, out, &opos, MIN((uint64_t) hole - pos, COPY_CHUNK), 0);

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return copy_error(e, VB_ERROR_OPERATION_FAILED, errno, "Failed to copy at %" PRIu64, pos);
                        }
                        if (n == 0)
                                return vb_error_set(e, VB_ERROR_OPERATION_FAILED,
                                                    "The source ended at %" PRIu64 " (it shrank while copied).", pos);
                        pos += (uint64_t) n;
                        add_done(done, (uint64_t) n);
                        if (cancelled(cancel_fd))
                                return -ECANCELED;
                }
        }
        return (int64_t) length;
}

/* From a stream (pipe, socket, character device) into the volume. A pipe is spliced straight in;
 * anything else goes through a pipe of our own. Ends at length, or at EOF when until_eof. */
static int64_t upload_stream(const StorageCopy *c, bool is_pipe, uint64_t *done, int cancel_fd, VbError *e) {
        int pipefd[2] = { -1, -1 }, in = c->fd;
        _cleanup_free_ char *buf = NULL;
        uint64_t moved = 0;
        int64_t r = 0;

        if (!is_pipe) {
                if (pipe2(pipefd, O_CLOEXEC) < 0)
                        return -errno;
                pipe_grow(pipefd[1]);
        } else
                pipe_grow(in);

        while (moved < c->length) {
                loff_t opos = (loff_t) (c->offset + moved);
                size_t want = MIN(c->length - moved, COPY_CHUNK);
                ssize_t n;

                r = wait_ready(in, POLLIN, cancel_fd);
                if (r < 0)
                        break;
                if (buf)
                        n = read(in, buf, MIN(want, PIPE_SIZE));
                else
                        n = splice(in, NULL, is_pipe ? c->vol_fd : pipefd[1], is_pipe ? &opos : NULL, want,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0 && errno == EINVAL && !is_pipe && !buf) {
                        /* A character device without splice support (/dev/null): the one copy through our memory. */
                        buf = malloc(PIPE_SIZE);
                        if (!buf) {
                                r = -ENOMEM;
                                break;
                        }
                        continue;
                }
                if (n > 0 && buf) {
                        for (ssize_t w = 0, m; w < n; w += m) {
                                m = pwrite(c->vol_fd, buf + w, (size_t) (n - w), opos + w);
                                if (m < 0 && errno == EINTR)
                                        m = 0;
                                else if (m < 0) {
                                        r = copy_error(e, VB_ERROR_OPERATION_FAILED, errno,
                                                       "Failed to write the volume at %" PRIu64, (uint64_t) opos + w);
                                        goto finish;
                                }
                        }
                        moved += (uint64_t) n;
                        add_done(done, (uint64_t) n);
                        continue;
                }
                if (n < 0) {
                        r = copy_error(e, VB_ERROR_OPERATION_FAILED, errno, "Failed to write the volume at %" PRIu64,
                                       c->offset + moved);
                        break;
                }
                if (n == 0)
                        break; /* EOF */
                for (ssize_t left = is_pipe ? 0 : n; left > 0;) {
                        ssize_t m = splice(pipefd[0], NULL, c->vol_fd, &opos, (size_t) left, SPLICE_F_MOVE);

                        if (m < 0 && errno == EINTR)
                                continue;
                        if (m <= 0) {
                                r = copy_error(e, VB_ERROR_OPERATION_FAILED, m < 0 ? errno : EIO,
                                               "Failed to write the volume at %" PRIu64, (uint64_t) opos);
                                goto finish;
                        }
                        left -= m;
                }
                moved += (uint64_t) n;
                add_done(done, (uint64_t) n);
        }
        if (r >= 0 && moved < c->length && !c->until_eof)
                r = vb_error_set(e, VB_ERROR_INVALID_ARGUMENT,
                                 "The descriptor ended after %" PRIu64 " of %" PRIu64 " bytes.", moved, c->length);
finish:
        if (pipefd[0] >= 0) {
                close(pipefd[0]);
                close(pipefd[1]);
        }
        return r < 0 ? r : (int64_t) moved;
}

/* From the volume into a pipe (splice) or another stream (sendfile). Holes are read as zeroes. */
static int64_t download_stream(const StorageCopy *c, bool is_pipe, uint64_t *done, int cancel_fd, VbError *e) {
        uint64_t moved = 0, next_check = COPY_CHUNK;
        bool wait = !is_pipe;

        /* The caller's pipe grows to PIPE_SIZE, as ours and an upload's do: at 64 KiB the two ends took turns
         * every 64 KiB, a wake-up of each side per turn (issue 14, 1 GiB into `cat > file`, the cases taking
         * turns: 1 MiB at 1.2x 64 KiB on a quiet machine, 1.7x at load 3). An earlier measurement that found it
         * slower came from a benchmark whose fixed order favoured one side. */
        if (is_pipe)
                pipe_grow(c->fd);
        while (moved < c->length) {
                loff_t ipos = (loff_t) (c->offset + moved);
                size_t want = MIN(c->length - moved, PIPE_SIZE);
                ssize_t n;
                int r;

                /* A pipe is spliced into at once and waited for only when full (one system call per
                 * step while its reader keeps up); anything else is waited for first, so that sendfile
                 * never blocks where a cancel would not be seen. */
                if (wait) {
                        r = wait_ready(c->fd, POLLOUT, cancel_fd);
                        if (r < 0)
                                return r;
                } else if (moved >= next_check) {
                        next_check = moved + COPY_CHUNK;
                        if (cancelled(cancel_fd))
                                return -ECANCELED;
                }
                if (is_pipe)
                        n = splice(c->vol_fd, &ipos, c->fd, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                else {
                        off_t o = (off_t) ipos;
                        n = sendfile(c->fd, c->vol_fd, &o, want);
                }
                wait = !is_pipe || (n < 0 && errno == EAGAIN);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0)
                        return copy_error(e, VB_ERROR_OPERATION_FAILED, errno, "Failed to pass on the volume at %" PRIu64,
                                          c->offset + moved);
                if (n == 0)
                        return vb_error_set(e, VB_ERROR_OPERATION_FAILED,
                                            "The volume ended at %" PRIu64 " (it shrank while read).", c->offset + moved);
                moved += (uint64_t) n;
                add_done(done, (uint64_t) n);
        }
        return (int64_t) moved;
}

static int64_t wipe(const StorageCopy *c, uint64_t *done, int cancel_fd, VbError *e) {
        for (uint64_t pos = 0; pos < c->length;) {
                uint64_t n = MIN(c->length - pos, WIPE_CHUNK);
                int r;

                if (cancelled(cancel_fd))
                        return -ECANCELED;
                r = zero_range(c->vol_fd, c->offset + pos, n);
                if (r < 0)
                        return copy_error(e, VB_ERROR_OPERATION_FAILED, -r, "Failed to wipe at %" PRIu64, c->offset + pos);
                pos += n;
                add_done(done, n);
        }
        if (fdatasync(c->vol_fd) < 0)
                return copy_error(e, VB_ERROR_OPERATION_FAILED, errno, "Failed to flush the wiped volume");
        return (int64_t) c->length;
}

/* The source volume's image into the new volume (made empty with the same capacity). */
static int64_t clone_image(const StorageCopy *c, uint64_t *done, int cancel_fd, VbError *e) {
        int r;

        if (c->from_format == STORAGE_VOL_FORMAT_RAW && c->to_format == STORAGE_VOL_FORMAT_RAW) {
                read_sequentially(c->fd, 0, c->length);
                return copy_files(c->fd, 0, c->vol_fd, 0, c->length, done, cancel_fd, e);
        }
        r = storage_image_convert(c->fd, c->from_format, c->vol_fd, c->to_format, c->length, done, cancel_fd, e);
        return r < 0 ? r : (int64_t) c->length;
}

int64_t storage_copy_run(const StorageCopy *c, uint64_t *done, int cancel_fd, VbError *reterr) {
        struct stat st;
        int fl;

        if (c->prepare) {
                int r = c->prepare(c->vol_fd, c->prepare_arg, reterr);

                if (r < 0 || c->kind == STORAGE_JOB_CREATE)
                        return r < 0 ? r : 0;
        }
        if (c->run)
                return c->run(c->fd, c->arg, reterr);
        if (c->kind == STORAGE_JOB_WIPE)
                return wipe(c, done, cancel_fd, reterr);
        if (c->kind == STORAGE_JOB_CLONE)
                return clone_image(c, done, cancel_fd, reterr);
        if (fstat(c->fd, &st) < 0 || (fl = fcntl(c->fd, F_GETFL)) < 0)
                return copy_error(reterr, VB_ERROR_INVALID_ARGUMENT, errno, "Cannot use the descriptor");
        if (c->kind == STORAGE_JOB_UPLOAD) {
                if ((fl & O_ACCMODE) == O_WRONLY)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The descriptor is not open for reading.");
                if (S_ISREG(st.st_mode)) {
                        off_t at = lseek(c->fd, 0, SEEK_CUR);
                        uint64_t n = c->length;

                        if (at < 0)
                                return -errno;
                        /* A file gives what it has from its position on: to the volume's end, or less with until_eof. */
                        if ((uint64_t) st.st_size < (uint64_t) at + n) {
                                if (!c->until_eof)
                                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                                            "The file holds %" PRIu64 " bytes after its position, not %" PRIu64 ".",
                                                            (uint64_t) st.st_size - MIN((uint64_t) st.st_size, (uint64_t) at), n);
                                n = (uint64_t) st.st_size - MIN((uint64_t) st.st_size, (uint64_t) at);
                        }
                        return copy_files(c->fd, (uint64_t) at, c->vol_fd, c->offset, n, done, cancel_fd, reterr);
                }
                return upload_stream(c, S_ISFIFO(st.st_mode), done, cancel_fd, reterr);
        }
        if ((fl & O_ACCMODE) == O_RDONLY)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The descriptor is not open for writing.");
        if (fl & O_APPEND && S_ISREG(st.st_mode))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "The file is open for appending only.");
        read_sequentially(c->vol_fd, c->offset, c->length);
        if (S_ISREG(st.st_mode)) {
                off_t at = lseek(c->fd, 0, SEEK_CUR);

                if (at < 0)
                        return -errno;
                /* The file grows to hold the whole range first, so that the volume's holes stay holes in it. */
                if ((uint64_t) st.st_size < (uint64_t) at + c->length &&
                    ftruncate(c->fd, (off_t) ((uint64_t) at + c->length)) < 0)
                        return copy_error(reterr, VB_ERROR_OPERATION_FAILED, errno, "Failed to extend the file");
                return copy_files(c->vol_fd, c->offset, c->fd, (uint64_t) at, c->length, done, cancel_fd, reterr);
        }
        return download_stream(c, S_ISFIFO(st.st_mode), done, cancel_fd, reterr);
}

/* Jobs ------------------------------------------------------------------------------------------ */

struct StorageJob {
        StorageCopy copy;
        uint64_t total;
        uint64_t done;     /* written by the thread */
        uint64_t reported; /* last Progress */
        int cancel_fd, done_fd;
        pthread_t thread;
        bool running;
        int64_t result;
        VbError error;
        sd_event_source *timer, *finished;
        StorageJobCallbacks cb;
        void *userdata;
};

StorageJobKind storage_job_kind(const StorageJob *j) {
        return j->copy.kind;
}

static void *job_main(void *userdata) {
        StorageJob *j = userdata;
        sigset_t pipe_set;

        /* A reader that goes away makes our write fail with EPIPE; the signal stays with this thread. */
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
        j->result = storage_copy_run(&j->copy, &j->done, j->cancel_fd, &j->error);
        (void) eventfd_write(j->done_fd, 1);
        return NULL;
}

static void job_free(StorageJob *j) {
        if (j->running)
                pthread_join(j->thread, NULL);
        sd_event_source_disable_unref(j->timer);
        sd_event_source_disable_unref(j->finished);
        if (j->copy.fd >= 0)
                close(j->copy.fd);
        if (j->copy.vol_fd >= 0)
                close(j->copy.vol_fd);
        free(j->copy.arg);
        free(j->copy.prepare_arg);
        if (j->cancel_fd >= 0)
                close(j->cancel_fd);
        if (j->done_fd >= 0)
                close(j->done_fd);
        vb_error_free(&j->error);
        free(j);
}

static void report(StorageJob *j) {
        uint64_t d = __atomic_load_n(&j->done, __ATOMIC_RELAXED);

        if (d != j->reported && j->cb.progress) {
                j->reported = d;
                j->cb.progress(j, d, j->total, j->userdata);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        report(userdata);
        return sd_event_source_set_time_relative(s, 1000000 / STORAGE_JOB_PROGRESS_HZ);
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StorageJob *j = userdata;

        pthread_join(j->thread, NULL);
        j->running = false;
        report(j);
        if (j->result == -ECANCELED && !j->error.message)
                vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "The %s was cancelled.",
                             storage_job_kind_to_string(j->copy.kind));
        else if (j->result < 0 && !j->error.message)
                vb_error_set(&j->error, VB_ERROR_OPERATION_FAILED, "The %s failed: %s",
                             storage_job_kind_to_string(j->copy.kind), strerror((int) -j->result));
        j->cb.done(j, j->result, &j->error, j->userdata);
        job_free(j);
        return 0;
}

int storage_job_start(sd_event *event, const StorageCopy *c, uint64_t total, const StorageJobCallbacks *cb,
                      void *userdata, StorageJob **ret) {
        StorageJob *j = new0(StorageJob, 1);
        int r;

        if (!j) {
                if (c->fd >= 0)
                        close(c->fd);
                if (c->vol_fd >= 0)
                        close(c->vol_fd);
                free(c->arg);
                free(c->prepare_arg);
                return -ENOMEM;
        }
        *j = (StorageJob) { .copy = *c, .total = total, .cb = *cb, .userdata = userdata, .error = VB_ERROR_NULL };
        j->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        j->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->cancel_fd < 0 || j->done_fd < 0) {
                r = -errno;
                job_free(j);
                return r;
        }
        r = sd_event_add_io(event, &j->finished, j->done_fd, EPOLLIN, on_finished, j);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &j->timer, CLOCK_MONOTONIC, 1000000 / STORAGE_JOB_PROGRESS_HZ, 0,
                                               on_timer, j);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->timer, SD_EVENT_ON);
        if (r >= 0)
                r = -pthread_create(&j->thread, NULL, job_main, j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        j->running = true;
        *ret = j;
        return 0;
}

void storage_job_cancel(StorageJob *j) {
        (void) eventfd_write(j->cancel_fd, 1);
}

void storage_job_abandon(StorageJob *j) {
        storage_job_cancel(j);
        job_free(j);
}
