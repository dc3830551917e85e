/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices that appear or go by other hands than ours (a NIC someone created, a USB stick, a driver bound
 * by hand, VFs made with echo): when the sysfs root is the real /sys, the kernel's uevents for the
 * subsystems node devices are made of start one re-scan of the host shortly after the first event of a
 * burst. Later events do not push it back, so a steady stream still re-scans every RESCAN_DELAY_USEC.
 * The host is read in a thread of the watch's own (reading sysfs for every device took 8-16 ms of the
 * event loop per re-scan); the loop then applies what it found: the re-scan announces what was added,
 * removed or changed (nodedev.c), which the bus layer turns into objects and ObjectManager signals. Events
 * during a reading start one more re-scan after it. With a fake root (tests, the test driver's simulated
 * host) no socket is opened. */
#include <inttypes.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/manager.h"
#include "core/nodedev-internal.h"
#include "host/host.h"
#include "host/sysfs.h"
#include "host/uevent.h"
#include "util/log.h"
#include "util/loop-watch.h"
#include "util/worker.h"

/* From the first event of a burst to the re-scan. */
#define RESCAN_DELAY_USEC (100ULL * 1000ULL)
#define RESCAN_ACCURACY_USEC (10ULL * 1000ULL)
/* The kernel sends "remove" just before it takes the device's directory away: a re-scan that still
 * finds the directory looks again, up to this many times. */
#define REMOVED_RECHECKS_MAX 20U
#define REMOVED_PATHS_MAX 16
/* Messages read per wake-up before the rest of the loop gets its turn. */
#define RECEIVE_BATCH 64

struct NodeDevWatch {
        Manager *manager;
        int fd;
        sd_event_source *io, *timer;
        char *removed[REMOVED_PATHS_MAX]; /* devpaths of "remove" events not yet seen gone */
        size_t n_removed;
        unsigned rechecks;
        Worker *worker;   /* reads the host for a re-scan; started at the first */
        bool scanning;    /* its thread is reading the host (scan, scan_r, scans are the thread's) */
        bool again;       /* events came meanwhile: one more re-scan after this one */
        NodeDevScan scan; /* what the thread found */
        int scan_r;
        uint64_t scans; /* manager_nodedev_scan()s begun before the thread's reading */
        char buf[HOST_UEVENT_BUFFER_SIZE];
};

/* What nodedev-host.c enumerates: PCI devices (and their drivers, VFs), USB devices, network
 * interfaces. The computer's DMI data does not change while it runs. */
static const char * const watched_subsystems[] = { "pci", "usb", "net" };
static const char * const watched_actions[] = { "add", "remove", "change", "move", "bind", "unbind" };

static bool in_list(const char *s, const char * const *l, size_t n) {
        for (size_t i = 0; s && i < n; i++)
                if (streq(s, l[i]))
                        return true;
        return false;
}

static bool uevent_is_watched(const HostUevent *u) {
        return in_list(u->subsystem, watched_subsystems, ELEMENTSOF(watched_subsystems)) &&
               in_list(u->action, watched_actions, ELEMENTSOF(watched_actions));
}

static NodeDevWatch *watch_free(NodeDevWatch *w) {
        if (!w)
                return NULL;
        /* Waits for a reading under way; its done callback (scan_done) sees the registry stopping. */
        w->worker = worker_free(w->worker);
        nodedev_scan_done(&w->scan);
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->fd >= 0)
                close(w->fd);
        for (size_t i = 0; i < w->n_removed; i++)
                free(w->removed[i]);
        free(w);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeDevWatch *, watch_free);

static void schedule_rescan(NodeDevWatch *w) {
        int enabled = SD_EVENT_OFF, r;

        (void) sd_event_source_get_enabled(w->timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return; /* one is coming: not pushed back */
        r = sd_event_source_set_time_relative(w->timer, RESCAN_DELAY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_warning_errno(r, "Failed to schedule a re-scan of the host's devices, re-scanning now: %m");
                (void) manager_nodedev_scan(w->manager);
        }
}

static void remember_removed(NodeDevWatch *w, const char *devpath) {
        char *p;

        for (size_t i = 0; i < w->n_removed; i++)
                if (streq(w->removed[i], devpath))
                        return;
        if (w->n_removed >= REMOVED_PATHS_MAX || !(p = strdup(devpath)))
                return; /* only the re-check after a too early re-scan is lost */
        w->removed[w->n_removed++] = p;
}

/* Added again (a link deleted and made anew under its name): its directory is no sign of a late removal. */
static void forget_removed(NodeDevWatch *w, const char *devpath) {
        for (size_t i = 0; i < w->n_removed; i++)
                if (streq(w->removed[i], devpath)) {
                        free(w->removed[i]);
                        w->removed[i] = w->removed[--w->n_removed];
                        return;
                }
}

/* Devices whose directory was still there at the re-scan are on their way out: look again shortly. */
static void recheck_removed(NodeDevWatch *w) {
        size_t k = 0;

        for (size_t i = 0; i < w->n_removed; i++) {
                _cleanup_free_ char *p = host_sysfs_path("%s", w->removed[i] + 1);

                if (p && access(p, F_OK) >= 0 && w->rechecks < REMOVED_RECHECKS_MAX)
                        w->removed[k++] = w->removed[i];
                else
                        free(w->removed[i]);
        }
        w->n_removed = k;
        if (k == 0) {
                w->rechecks = 0;
                return;
        }
        log_debug("'%s' is still in sysfs after its removal event, re-scanning again.", w->removed[0]);
        w->rechecks++;
        schedule_rescan(w);
}

/* In the watch's thread. */
static void scan_work(void *userdata) {
        NodeDevWatch *w = userdata;

        w->scans = __atomic_load_n(&w->manager->nodedev.scans, __ATOMIC_SEQ_CST);
        w->scan_r = nodedev_host_enumerate(&w->scan);
}

/* On the event loop: the thread's reading applied, unless a scan of our own (manager_nodedev_scan) began
 * after it started: that one read the host later. */
static void scan_done(void *userdata, bool cancelled) {
        NodeDevWatch *w = userdata;
        Manager *m = w->manager;

        loop_watch_note("the re-scan of host devices after kernel device events (its result)");
        w->scanning = false;
        if (cancelled || m->nodedev.stopping) {
                nodedev_scan_done(&w->scan);
                return;
        }
        if (w->scan_r < 0)
                log_warning_errno(w->scan_r, "Failed to read the host's devices below '%s': %m", host_sysfs_root());
        else if (w->scans == m->nodedev.scans)
                (void) nodedev_scan_apply(m, &w->scan);
        nodedev_scan_done(&w->scan);
        recheck_removed(w);
        if (w->again) {
                w->again = false;
                schedule_rescan(w);
        }
}

static int on_rescan(sd_event_source *s, uint64_t usec, void *userdata) {
        NodeDevWatch *w = userdata;
        int r;

        loop_watch_note("the re-scan of host devices after kernel device events");
        if (w->scanning) {
                w->again = true;
                return 0;
        }
        log_debug("Re-reading the host's devices after kernel device events.");
        r = w->worker ? 0 : worker_new(w->manager->event, 1, 1, 0, &w->worker);
        if (r >= 0)
                r = worker_submit(w->worker, scan_work, scan_done, w);
        if (r >= 0) {
                w->scanning = true;
                return 0;
        }
        log_debug_errno(r, "Failed to hand the re-scan to a thread, reading the host here: %m");
        (void) manager_nodedev_scan(w->manager);
        recheck_removed(w);
        return 0;
}

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        NodeDevWatch *w = userdata;
        bool rescan = false;

        loop_watch_note("the kernel's device events");

        for (unsigned i = 0; i < RECEIVE_BATCH; i++) {
                HostUevent u;
                int r = host_uevent_receive(w->fd, w->buf, sizeof w->buf, &u);

                if (r == -EAGAIN)
                        break;
                if (r == -EINTR || r == 0)
                        continue;
                if (r == -ENOBUFS) {
                        /* A re-scan reads everything anyway: nothing lost but the log line. */
                        log_debug("Kernel device events were lost (receive queue overflow), re-scanning.");
                        rescan = true;
                        continue;
                }
                if (r < 0) {
                        log_warning_errno(r, "Failed to receive kernel device events, no longer watching them: %m");
                        (void) sd_event_source_set_enabled(w->io, SD_EVENT_OFF);
                        break;
                }
                log_debug("Kernel device event %" PRIu64 ": %s %s (%s)%s", u.seqnum, u.action, u.devpath,
                          strempty(u.subsystem), uevent_is_watched(&u) ? "" : ", ignored");
                if (!uevent_is_watched(&u))
                        continue;
                rescan = true;
                if (streq(u.action, "remove"))
                        remember_removed(w, u.devpath);
                else if (streq(u.action, "add"))
                        forget_removed(w, u.devpath);
        }
        if (rescan)
                schedule_rescan(w);
        return 0;
}

int manager_nodedev_watch_start(Manager *m) {
        _cleanup_(watch_freep) NodeDevWatch *w = NULL;
        int r;

        if (m->nodedev.watch)
                return 0;
        if (!host_sysfs_is_real()) {
                log_debug("Not watching kernel device events: host devices are read below '%s'.", host_sysfs_root());
                return 0;
        }
        w = new0(NodeDevWatch, 1);
        if (!w)
                return log_oom();
        w->manager = m;
        w->fd = host_uevent_open();
        if (w->fd < 0)
                return log_warning_errno(w->fd, "Failed to listen to kernel device events, host devices are re-read "
                                         "only after our own changes: %m");
        r = sd_event_add_io(m->event, &w->io, w->fd, EPOLLIN, on_uevent, w);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &w->timer, CLOCK_MONOTONIC, RESCAN_DELAY_USEC,
                                               RESCAN_ACCURACY_USEC, on_rescan, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0)
                return log_warning_errno(r, "Failed to watch kernel device events: %m");
        (void) sd_event_source_set_description(w->io, "nodedev-uevent");
        (void) sd_event_source_set_description(w->timer, "nodedev-rescan");
        m->nodedev.watch = TAKE_PTR(w);
        log_debug("Watching kernel device events of PCI, USB and network devices.");
        return 0;
}

void manager_nodedev_watch_stop(Manager *m) {
        m->nodedev.watch = watch_free(m->nodedev.watch);
}
