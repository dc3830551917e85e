/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Statistics of a running QEMU (GetStats). QEMU 7.2 reads its monitor one byte per main-loop turn (some
 * 14 us of its CPU a byte here): what a call costs is the bytes of the commands it sends, so a call sends
 * only what it cannot know otherwise. Answers that change only by events or by our own commands are kept
 * (QemuStatsCache: query-balloon, query-cpus-fast, query-block, the balloon's guest report) while the
 * monitor's generation (qemu-monitor.h) stays the same and their own rule holds; the disks' counters
 * (query-blockstats) are asked every time. The queries a call needs are sent together without waiting;
 * calls for the same domain while queries are on their way, none answered yet, wait for the same ones
 * (QemuStatsRound). The answer is put together when the last reply is in, with what /proc says about the
 * process and its vCPU threads, what the image files' sizes are, and what rtnetlink says about the taps.
 * A call whose domain stops meanwhile is answered with what it has. docs/dbus-api.md says what is kept. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/device-conf.h"
#include "drivers/qemu/qemu-driver-internal.h"
#include "drivers/qemu/qemu-sequence.h"
#include "host/netlink-net.h"
#include "util/fileio.h"
#include "util/log.h"
typedef enum StatsQuery {
        STATS_QUERY_BALLOON,
        STATS_QUERY_CPUS,
        STATS_QUERY_BLOCKSTATS,
        STATS_QUERY_BLOCK,
        STATS_QUERY_BALLOON_GUEST, /* qom-get of the balloon's guest-stats (a memballoon with a stats period) */
        _STATS_QUERY_MAX,
} StatsQuery;

static const char * const stats_query_command[_STATS_QUERY_MAX] = {
        [STATS_QUERY_BALLOON] = "query-balloon",
        [STATS_QUERY_CPUS] = "query-cpus-fast",
        [STATS_QUERY_BLOCKSTATS] = "query-blockstats",
        [STATS_QUERY_BLOCK] = "query-block",
        [STATS_QUERY_BALLOON_GUEST] = "qom-get",
};

typedef struct QemuStatsCall QemuStatsCall;

/* What QEMU answered before and still holds (a reply is kept with the monitor's generation when it came),
 * the time rules of two of them, and the queries on their way. One per running domain (vm->stats_cache). */
struct QemuStatsCache {
        struct json_object *reply[_STATS_QUERY_MAX];
        uint64_t generation[_STATS_QUERY_MAX]; /* 0: nothing kept */
        /* BALLOON_CHANGE: QEMU holds back those that follow one within a second and sends the last of them
         * when the second is over, so the balloon's size is asked again for that long after one. */
        uint64_t balloon_event_usec;
        /* The guest's memory report: the kept one's last-update (QEMU's real-time clock when it came, in s),
         * when the first and the latest query that found it were sent, and the time after which that report
         * came (0: unknown). QEMU asks the guest for the next one a <stats period> after it took this one in. */
        uint64_t guest_update, guest_found_usec, guest_seen_usec, guest_after_usec;
        /* The balloon's partial QOM path ("balloon0", 20 bytes shorter) was refused: the full one. */
        bool guest_path_full;
        /* The image files whose allocated size virtbusd reads itself (block.N.physical): files QEMU had open
         * as the disks' sources, with the size query-block gave, by disk alias. */
        struct StatsImage {
                char *alias;
                dev_t dev;
                ino_t ino;
        } *images;
        size_t n_images;
        /* /proc/PID/stat, /proc/PID/statm and the vCPU threads' schedstat, kept open (-1: not yet). */
        int stat_fd, statm_fd;
        struct StatsThread {
                int64_t tid;
                int fd;
        } *threads;
        size_t n_threads;
        QemuStatsRound *round; /* the latest queries on their way, none answered yet: calls may join them */
};

/* Queries sent together for one domain, and the calls waiting for them. */
struct QemuStatsRound {
        QemuDriver *q;
        QemuVm *vm; /* NULL once the domain stopped */
        unsigned sent;     /* 1 << StatsQuery */
        unsigned pending;  /* replies still to come */
        bool answered;     /* a reply came: later calls do not join */
        uint64_t sent_usec;
        uint64_t generation; /* the monitor's when they were sent */
        struct json_object *replies[_STATS_QUERY_MAX];
        struct StatsReply {
                QemuStatsRound *round;
                StatsQuery query;
        } slots[_STATS_QUERY_MAX];
        QemuStatsCall *calls;
        QemuStatsRound *next; /* in q->stats_rounds */
};

struct QemuStatsCall {
        uint64_t groups;
        VbDriverStatsDone done; /* NULL once cancelled */
        void *userdata;
        /* What it takes from the cache (references), the rest coming from its round. */
        struct json_object *kept[_STATS_QUERY_MAX];
        QemuStatsCall *next; /* in its round */
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static QemuStatsCall *call_free(QemuStatsCall *c) {
        for (size_t i = 0; i < _STATS_QUERY_MAX; i++)
                json_object_put(c->kept[i]);
        free(c);
        return NULL;
}

static void cache_images_clear(QemuStatsCache *cache) {
        for (size_t i = 0; i < cache->n_images; i++)
                free(cache->images[i].alias);
        free(cache->images);
        cache->images = NULL;
        cache->n_images = 0;
}

void qemu_stats_cache_free(QemuStatsCache *cache) {
        if (!cache)
                return;
        for (size_t i = 0; i < _STATS_QUERY_MAX; i++)
                json_object_put(cache->reply[i]);
        cache_images_clear(cache);
        if (cache->stat_fd >= 0)
                close(cache->stat_fd);
        if (cache->statm_fd >= 0)
                close(cache->statm_fd);
        for (size_t i = 0; i < cache->n_threads; i++)
                if (cache->threads[i].fd >= 0)
                        close(cache->threads[i].fd);
        free(cache->threads);
        free(cache);
}

/* A /proc file of the domain's QEMU, kept open in the cache (-1: not yet) and read again from its start
 * each time (the kernel writes it anew on each read from offset 0): no path walk per call. */
static int proc_read(int *fd, const char *path, char *buf, size_t size) {
        ssize_t n;

        if (*fd < 0) {
                *fd = open(path, O_RDONLY | O_CLOEXEC);
                if (*fd < 0)
                        return -errno;
        }
        n = pread(*fd, buf, size - 1, 0);
        if (n < 0) {
                int r = -errno;

                close(*fd);
                *fd = -1;
                return r;
        }
        buf[n] = 0;
        return 0;
}

/* The kept descriptor of /proc/PID/task/TID/schedstat (NULL on allocation failure). */
static int *thread_fd(QemuStatsCache *cache, int64_t tid) {
        struct StatsThread *t;

        for (size_t i = 0; i < cache->n_threads; i++)
                if (cache->threads[i].tid == tid)
                        return &cache->threads[i].fd;
        t = reallocarray(cache->threads, cache->n_threads + 1, sizeof *cache->threads);
        if (!t)
                return NULL;
        cache->threads = t;
        t[cache->n_threads] = (struct StatsThread) { .tid = tid, .fd = -1 };
        return &t[cache->n_threads++].fd;
}

/* cpu.time: the process' CPU clock, in ns, of all its threads, those that ended too (QEMU's worker threads
 * come and go), as a cgroup counts. /proc/PID/schedstat would be the main thread's alone. Read after
 * /proc/PID/stat, so that cpu.time is never less than cpu.user + cpu.system. */
static void add_cpu(const QemuVm *vm, VbStats *s) {
        char stat[1024], path[64];
        const char *p;
        unsigned long long utime, stime;
        uint64_t ns_per_tick = 1000000000ULL / (uint64_t) sysconf(_SC_CLK_TCK), total;
        clockid_t clock;
        struct timespec ts;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) vm->pid);
        if (proc_read(&vm->stats_cache->stat_fd, path, stat, sizeof stat) < 0 || !(p = strrchr(stat, ')')))
                return;
        /* After "pid (comm)": state is field 3; utime and stime are fields 14 and 15 (all threads). */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return;
        if (clock_getcpuclockid(vm->pid, &clock) == 0 && clock_gettime(clock, &ts) == 0)
                total = (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
        else
                total = (utime + stime) * ns_per_tick;
        vb_stats_add_ullong(s, total, "cpu.time");
        vb_stats_add_ullong(s, utime * ns_per_tick, "cpu.user");
        vb_stats_add_ullong(s, stime * ns_per_tick, "cpu.system");
}

static void add_balloon(const QemuVm *vm, struct json_object *balloon, VbStats *s) {
        struct json_object *actual = qemu_json_get(balloon, "actual");
        char statm[256], path[64];
        unsigned long long pages;

        /* Without a balloon device QEMU refuses the query: the definition's value, as libvirt does. */
        if (actual && json_object_is_type(actual, json_type_int))
                vb_stats_add_ullong(s, json_object_get_uint64(actual) / 1024, "balloon.current");
        else
                vb_stats_add_ullong(s, vm->live->current_memory_kib ?: vm->live->memory_kib, "balloon.current");
        vb_stats_add_ullong(s, vm->live->memory_kib, "balloon.maximum");
        snprintf(path, sizeof path, "/proc/%d/statm", (int) vm->pid);
        if (proc_read(&vm->stats_cache->statm_fd, path, statm, sizeof statm) >= 0 &&
            sscanf(statm, "%*u %llu", &pages) == 1)
                vb_stats_add_ullong(s, pages * (uint64_t) sysconf(_SC_PAGESIZE) / 1024, "balloon.rss");
}

/* The guest's own memory statistics, as the balloon driver last reported them (libvirt's keys: KiB for
 * sizes, counts for faults; what the guest does not report is left out). */
static void add_balloon_guest(struct json_object *reply, VbStats *s) {
        static const struct {
                const char *member, *key;
                uint64_t divisor;
        } table[] = {
                { "stat-swap-in", "balloon.swap_in", 1024 },
                { "stat-swap-out", "balloon.swap_out", 1024 },
                { "stat-major-faults", "balloon.major_fault", 1 },
                { "stat-minor-faults", "balloon.minor_fault", 1 },
                { "stat-free-memory", "balloon.unused", 1024 },
                { "stat-total-memory", "balloon.available", 1024 },
                { "stat-available-memory", "balloon.usable", 1024 },
                { "stat-disk-caches", "balloon.disk_caches", 1024 },
                { "stat-htlb-pgalloc", "balloon.hugetlb_pgalloc", 1 },
                { "stat-htlb-pgfail", "balloon.hugetlb_pgfail", 1 },
        };
        struct json_object *stats = qemu_json_get(reply, "stats"), *last = qemu_json_get(reply, "last-update");

        /* Nothing reported yet (the guest has no balloon driver, or the first period has not passed). */
        if (!stats || !last || json_object_get_uint64(last) == 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct json_object *v = qemu_json_get(stats, table[i].member);
                uint64_t x = v ? json_object_get_uint64(v) : UINT64_MAX;

                if (x != UINT64_MAX)
                        vb_stats_add_ullong(s, x / table[i].divisor, "%s", table[i].key);
        }
        vb_stats_add_ullong(s, json_object_get_uint64(last), "balloon.last-update");
}

static void add_vcpus(const QemuVm *vm, struct json_object *cpus, VbStats *s) {
        size_t n = cpus && json_object_is_type(cpus, json_type_array) ? json_object_array_length(cpus) : 0;

        vb_stats_add_uint(s, cpus ? (uint32_t) n : domain_def_get_current_vcpus(vm->live), "vcpu.current");
        vb_stats_add_uint(s, domain_def_get_vcpus(vm->live) ?: 1, "vcpu.maximum");
        for (size_t i = 0; i < n; i++) {
                struct json_object *cpu = json_object_array_get_idx(cpus, i);
                struct json_object *index = qemu_json_get(cpu, "cpu-index"), *tid = qemu_json_get(cpu, "thread-id");
                int64_t k = index ? json_object_get_int64(index) : (int64_t) i;
                char path[96], text[128];
                uint64_t ns;
                int *fd;

                vb_stats_add_int(s, 1 /* VIR_VCPU_RUNNING */, "vcpu.%" PRId64 ".state", k);
                if (!tid || !(fd = thread_fd(vm->stats_cache, json_object_get_int64(tid))))
                        continue;
                /* schedstat: the thread's time on the CPU in ns first. */
                snprintf(path, sizeof path, "/proc/%d/task/%" PRId64 "/schedstat", (int) vm->pid,
                         json_object_get_int64(tid));
                if (proc_read(fd, path, text, sizeof text) >= 0 && sscanf(text, "%" SCNu64, &ns) == 1)
                        vb_stats_add_ullong(s, ns, "vcpu.%" PRId64 ".time", k);
        }
}

static void add_interfaces(const QemuVm *vm, VbStats *s) {
        const char *names[64];
        const DeviceDef *devs[64];
        HostLinkStats st[64];
        bool found[64];
        size_t n = 0;
        int r;

        for (size_t i = 0; i < vm->live->n_devices && n < ELEMENTSOF(names); i++)
                if (vm->live->devices[i]->kind == DEVICE_INTERFACE) {
                        devs[n] = vm->live->devices[i];
                        names[n++] = device_interface_get_target_dev(vm->live->devices[i]);
                }
        vb_stats_add_uint(s, (uint32_t) n, "net.count");
        if (n == 0) /* no netlink socket for nothing */
                return;
        r = host_netlink_links_stats(names, n, st, found);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the counters of the taps of domain %s, ignoring: %m", vm->uuid);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                /* A tap counts what the guest sends as received: the guest's view is the other way round. */
                bool swap = !device_interface_shares_host_view(devs[i]);
                const HostLinkStats *l = &st[i];

                vb_stats_add_string(s, names[i], "net.%zu.name", i);
                if (!found[i])
                        continue;
                vb_stats_add_ullong(s, swap ? l->tx_bytes : l->rx_bytes, "net.%zu.rx.bytes", i);
                vb_stats_add_ullong(s, swap ? l->tx_packets : l->rx_packets, "net.%zu.rx.pkts", i);
                vb_stats_add_ullong(s, swap ? l->tx_errors : l->rx_errors, "net.%zu.rx.errs", i);
                vb_stats_add_ullong(s, swap ? l->tx_dropped : l->rx_dropped, "net.%zu.rx.drop", i);
                vb_stats_add_ullong(s, swap ? l->rx_bytes : l->tx_bytes, "net.%zu.tx.bytes", i);
                vb_stats_add_ullong(s, swap ? l->rx_packets : l->tx_packets, "net.%zu.tx.pkts", i);
                vb_stats_add_ullong(s, swap ? l->rx_errors : l->tx_errors, "net.%zu.tx.errs", i);
                vb_stats_add_ullong(s, swap ? l->rx_dropped : l->tx_dropped, "net.%zu.tx.drop", i);
        }
}

/* The entry of query-blockstats / query-block for the disk with this alias: its qdev is the alias, or
 * /machine/peripheral/<alias>[/...] (virtio-blk: .../virtio-backend). */
static struct json_object *find_disk(struct json_object *list, const char *alias) {
        size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        size_t k = alias ? strlen(alias) : 0;

        for (size_t i = 0; alias && i < n; i++) {
                struct json_object *e = json_object_array_get_idx(list, i);
                const char *qdev = qemu_json_string(e, "qdev"), *rest;

                if (!qdev)
                        continue;
                rest = strncmp(qdev, "/machine/peripheral/", 20) == 0 ? qdev + 20 : qdev;
                if (strncmp(rest, alias, k) == 0 && (rest[k] == 0 || rest[k] == '/'))
                        return e;
        }
        return NULL;
}

static void add_counter(VbStats *s, struct json_object *stats, const char *member, size_t n, const char *key) {
        struct json_object *v = qemu_json_get(stats, member);

        if (v && json_object_is_type(v, json_type_int))
                vb_stats_add_ullong(s, json_object_get_uint64(v), "block.%zu.%s", n, key);
}

/* The allocated size of dev's image file, read from the file when it is one query-block named (the cache's
 * images) and still the same file: what QEMU's actual-size would say now. */
static bool image_allocated(const QemuVm *vm, const DeviceDef *dev, uint64_t *ret) {
        const QemuStatsCache *cache = vm->stats_cache;
        const char *source = device_disk_get_source(dev);
        struct stat st;

        for (size_t k = 0; cache && source && k < cache->n_images; k++)
                if (streq_ptr(cache->images[k].alias, dev->alias)) {
                        if (stat(source, &st) < 0 || st.st_dev != cache->images[k].dev ||
                            st.st_ino != cache->images[k].ino)
                                return false;
                        *ret = (uint64_t) st.st_blocks * 512;
                        return true;
                }
        return false;
}

static void add_blocks(const QemuVm *vm, struct json_object *blockstats, struct json_object *block, VbStats *s) {
        size_t n = 0;

        for (size_t i = 0; i < vm->live->n_devices; i++) {
                const DeviceDef *dev = vm->live->devices[i];
                struct json_object *st, *image;

                if (dev->kind != DEVICE_DISK)
                        continue;
                vb_stats_add_string(s, device_disk_get_target(dev), "block.%zu.name", n);
                vb_stats_add_string(s, device_disk_get_source(dev), "block.%zu.path", n);
                st = qemu_json_get(find_disk(blockstats, dev->alias), "stats");
                add_counter(s, st, "rd_operations", n, "rd.reqs");
                add_counter(s, st, "rd_bytes", n, "rd.bytes");
                add_counter(s, st, "rd_total_time_ns", n, "rd.times");
                add_counter(s, st, "wr_operations", n, "wr.reqs");
                add_counter(s, st, "wr_bytes", n, "wr.bytes");
                add_counter(s, st, "wr_total_time_ns", n, "wr.times");
                add_counter(s, st, "flush_operations", n, "fl.reqs");
                add_counter(s, st, "flush_total_time_ns", n, "fl.times");
                add_counter(s, st, "wr_highest_offset", n, "allocation");
                image = qemu_json_get(qemu_json_get(find_disk(block, dev->alias), "inserted"), "image");
                if (image) {
                        struct json_object *v = qemu_json_get(image, "virtual-size"),
                                           *a = qemu_json_get(image, "actual-size");
                        uint64_t physical = a ? json_object_get_uint64(a) : v ? json_object_get_uint64(v) : 0;

                        if (v)
                                vb_stats_add_ullong(s, json_object_get_uint64(v), "block.%zu.capacity", n);
                        /* The image's space on the host (what QEMU reads from the file, read here from the same
                         * file); a raw image without holes takes its size. */
                        (void) image_allocated(vm, dev, &physical);
                        vb_stats_add_ullong(s, physical, "block.%zu.physical", n);
                }
                n++;
        }
        vb_stats_add_uint(s, (uint32_t) n, "block.count");
}

/* Everything that is in, as libvirt orders the groups. NULL on allocation failure. */
static VbStats *call_build(QemuStatsCall *c, QemuStatsRound *round) {
        VbStats *s = vb_stats_new();
        const QemuVm *vm = round ? round->vm : NULL;
        struct json_object *r[_STATS_QUERY_MAX];

        if (!s || !vm)
                return s;
        for (size_t i = 0; i < _STATS_QUERY_MAX; i++)
                r[i] = round->replies[i] ?: c->kept[i];
        if (c->groups & VB_STATS_GROUP_CPU)
                add_cpu(vm, s);
        if (c->groups & VB_STATS_GROUP_BALLOON) {
                add_balloon(vm, r[STATS_QUERY_BALLOON], s);
                add_balloon_guest(r[STATS_QUERY_BALLOON_GUEST], s);
        }
        if (c->groups & VB_STATS_GROUP_VCPU)
                add_vcpus(vm, r[STATS_QUERY_CPUS], s);
        if (c->groups & VB_STATS_GROUP_INTERFACE)
                add_interfaces(vm, s);
        if (c->groups & VB_STATS_GROUP_BLOCK)
                add_blocks(vm, r[STATS_QUERY_BLOCKSTATS], r[STATS_QUERY_BLOCK], s);
        if (vb_stats_failed(s))
                s = vb_stats_free(s);
        return s;
}

static void round_unlink(QemuStatsRound *round) {
        for (QemuStatsRound **i = &round->q->stats_rounds; *i; i = &(*i)->next)
                if (*i == round) {
                        *i = round->next;
                        break;
                }
        if (round->vm && round->vm->stats_cache && round->vm->stats_cache->round == round)
                round->vm->stats_cache->round = NULL;
}

/* Answers its calls (those still wanted) and frees round, which is out of the list. One call at a time from
 * the head: an answer may cancel other calls (core frees its query). */
static void round_finish(QemuStatsRound *round) {
        QemuStatsCall *c;

        while ((c = round->calls)) {
                round->calls = c->next;
                if (c->done)
                        c->done(c->userdata, call_build(c, round));
                call_free(c);
        }
        for (size_t i = 0; i < _STATS_QUERY_MAX; i++)
                json_object_put(round->replies[i]);
        free(round);
}

/* The answer to the guest's memory report: which report it is tells when the next can come (the cache's
 * guest_* fields). */
static void cache_guest_report(QemuStatsCache *cache, struct json_object *reply, uint64_t sent_usec) {
        struct json_object *last = qemu_json_get(reply, "last-update");
        uint64_t update = last ? json_object_get_uint64(last) : 0;

        if (cache->reply[STATS_QUERY_BALLOON_GUEST] && update == cache->guest_update) {
                if (sent_usec > cache->guest_seen_usec)
                        cache->guest_seen_usec = sent_usec;
                return;
        }
        /* A new report: it came after the latest query that found the one before (if any did). */
        cache->guest_after_usec = cache->reply[STATS_QUERY_BALLOON_GUEST] ? cache->guest_seen_usec : 0;
        cache->guest_update = update;
        cache->guest_found_usec = cache->guest_seen_usec = sent_usec;
}

/* Whether QEMU has the file st describes open (one of /proc/PID/fd/'s links leads to it): virtbusd hands
 * QEMU most images by descriptor, so query-block names them /dev/fdset/N, not by path. */
static bool qemu_has_open(const QemuVm *vm, const struct stat *st) {
        _cleanup_(closedirp) DIR *d = NULL;
        char path[64];
        struct dirent *de;

        snprintf(path, sizeof path, "/proc/%d/fd", (int) vm->pid);
        d = opendir(path);
        if (!d)
                return false;
        while ((de = readdir(d))) {
                struct stat o;

                if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &o, 0) >= 0 && o.st_dev == st->st_dev &&
                    o.st_ino == st->st_ino)
                        return true;
        }
        return false;
}

/* The image files virtbusd may read the allocated size of itself: a disk's own source file, a regular file
 * QEMU has open, whose size matches what query-block gave. */
static void cache_images(QemuStatsCache *cache, const QemuVm *vm, struct json_object *block) {
        cache_images_clear(cache);
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                const DeviceDef *dev = vm->live->devices[i];
                const char *source = dev->kind == DEVICE_DISK ? device_disk_get_source(dev) : NULL;
                struct json_object *image, *actual;
                struct StatsImage *img;
                struct stat st;

                if (!source || source[0] != '/' || !dev->alias)
                        continue;
                image = qemu_json_get(qemu_json_get(find_disk(block, dev->alias), "inserted"), "image");
                actual = qemu_json_get(image, "actual-size");
                if (!actual || stat(source, &st) < 0 || !S_ISREG(st.st_mode) ||
                    (uint64_t) st.st_blocks * 512 != json_object_get_uint64(actual) || !qemu_has_open(vm, &st))
                        continue;
                img = reallocarray(cache->images, cache->n_images + 1, sizeof *cache->images);
                if (!img)
                        return;
                cache->images = img;
                img = &cache->images[cache->n_images];
                *img = (struct StatsImage) { .alias = strdup(dev->alias), .dev = st.st_dev, .ino = st.st_ino };
                if (!img->alias)
                        return;
                cache->n_images++;
        }
}

/* A reply is kept when nothing changed in QEMU between its query and its coming (the same generation). */
static void cache_reply(QemuStatsRound *round, StatsQuery query, struct json_object *ret) {
        QemuVm *vm = round->vm;
        QemuStatsCache *cache = vm ? vm->stats_cache : NULL;
        uint64_t generation = vm ? qemu_monitor_generation(vm->mon) : 0;

        if (!cache)
                return;
        if (query == STATS_QUERY_BALLOON_GUEST)
                cache_guest_report(cache, ret, round->sent_usec);
        if (query == STATS_QUERY_BLOCK)
                cache_images(cache, vm, ret);
        json_object_put(cache->reply[query]);
        cache->reply[query] = NULL;
        cache->generation[query] = 0;
        if (generation != round->generation || query == STATS_QUERY_BLOCKSTATS)
                return;
        cache->reply[query] = json_object_get(ret);
        cache->generation[query] = generation;
}

static void round_send(QemuStatsRound *round, StatsQuery query);

static void on_reply(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        struct StatsReply *slot = userdata;
        QemuStatsRound *round = slot->round;
        QemuStatsCache *cache = round->vm ? round->vm->stats_cache : NULL;

        /* The balloon's short path refused (another object has its name): asked again by its full path, in
         * this round, and from now on. */
        if (error && slot->query == STATS_QUERY_BALLOON_GUEST && cache && !cache->guest_path_full &&
            qemu_monitor_is_open(mon)) {
                log_debug("Domain %s: qom-get of 'balloon0' failed, asking by its full path: %s", round->vm->uuid,
                          error);
                cache->guest_path_full = true;
                round_send(round, slot->query);
                if (--round->pending > 0)
                        return;
                round_unlink(round);
                round_finish(round);
                return;
        }
        round->answered = true;
        if (round->vm && round->vm->stats_cache && round->vm->stats_cache->round == round)
                round->vm->stats_cache->round = NULL; /* answered in part: later calls ask anew */
        if (error) {
                log_debug("Domain %s: %s failed, ignoring: %s", round->vm ? round->vm->uuid : "(gone)",
                          stats_query_command[slot->query], error);
                /* A domain without a balloon device: that is kept too (an empty answer, the definition's
                 * size then), so that it is not asked each time. */
                if (slot->query == STATS_QUERY_BALLOON && qemu_monitor_is_open(mon)) {
                        _cleanup_(json_object_putp) struct json_object *none = json_object_new_object();

                        if (none)
                                cache_reply(round, slot->query, none);
                }
        } else {
                round->replies[slot->query] = json_object_get(ret);
                cache_reply(round, slot->query, ret);
        }
        if (--round->pending > 0)
                return;
        round_unlink(round);
        round_finish(round);
}

/* Whether the domain has a balloon that the guest reports its memory statistics to: its period in s. */
static unsigned balloon_period(const QemuVm *vm) {
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                unsigned p = device_memballoon_get_stats_period(vm->live->devices[i]);

                if (p > 0)
                        return p;
        }
        return 0;
}

static bool has_disks(const QemuVm *vm) {
        for (size_t i = 0; i < vm->live->n_devices; i++)
                if (vm->live->devices[i]->kind == DEVICE_DISK)
                        return true;
        return false;
}

static bool query_needed(const QemuVm *vm, StatsQuery query, uint64_t groups) {
        switch (query) {
        case STATS_QUERY_BALLOON:
                return groups & VB_STATS_GROUP_BALLOON;
        case STATS_QUERY_BALLOON_GUEST:
                return (groups & VB_STATS_GROUP_BALLOON) && balloon_period(vm) > 0;
        case STATS_QUERY_CPUS:
                return groups & VB_STATS_GROUP_VCPU;
        default:
                return (groups & VB_STATS_GROUP_BLOCK) && has_disks(vm);
        }
}

/* Whether every disk's image file is one virtbusd reads the size of itself, still the same file. */
static bool images_known(const QemuVm *vm, const QemuStatsCache *cache) {
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                const DeviceDef *dev = vm->live->devices[i];
                const struct StatsImage *img = NULL;
                struct stat st;

                if (dev->kind != DEVICE_DISK)
                        continue;
                for (size_t k = 0; k < cache->n_images && !img; k++)
                        if (streq_ptr(cache->images[k].alias, dev->alias))
                                img = &cache->images[k];
                if (!img || stat(device_disk_get_source(dev), &st) < 0 || st.st_dev != img->dev ||
                    st.st_ino != img->ino)
                        return false;
        }
        return true;
}

static uint64_t real_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

/* Whether the next memory report cannot have come yet (it comes a period after the kept one came, at the
 * earliest): the kept report came after the latest query that found the one before it; and it came no
 * earlier than its last-update, a second count of the real-time clock that QEMU and we share. The second
 * rule holds from the first report on, but trusts that clock not to have stepped back since the report
 * came: it is never followed longer than a period after the report was first found. */
static bool guest_report_holds(const QemuStatsCache *cache, uint64_t period_usec, uint64_t now) {
        if (cache->guest_update == 0 || period_usec == 0)
                return false;
        if (cache->guest_after_usec > 0 && now < cache->guest_after_usec + period_usec)
                return true;
        return now < cache->guest_found_usec + period_usec &&
               real_usec() < cache->guest_update * 1000000ULL + period_usec;
}

/* The kept reply to query, if it still holds now (QEMU sent nothing we have not read yet). */
static struct json_object *cache_lookup(const QemuVm *vm, StatsQuery query, uint64_t now) {
        const QemuStatsCache *cache = vm->stats_cache;

        if (!cache || !cache->reply[query] || cache->generation[query] != qemu_monitor_generation(vm->mon))
                return NULL;
        switch (query) {
        case STATS_QUERY_BALLOON:
                if (cache->balloon_event_usec > 0 && now < cache->balloon_event_usec + QEMU_STATS_BALLOON_HOLD_USEC)
                        return NULL;
                break;
        case STATS_QUERY_BALLOON_GUEST:
                /* Not before the guest's first report, nor once the next may be in. */
                if (!guest_report_holds(cache, balloon_period(vm) * 1000000ULL, now))
                        return NULL;
                break;
        case STATS_QUERY_BLOCK:
                if (!images_known(vm, cache))
                        return NULL;
                break;
        default:
                break;
        }
        return cache->reply[query];
}

static QemuStatsRound *round_new(QemuDriver *q, QemuVm *vm) {
        QemuStatsRound *round = new0(QemuStatsRound, 1);

        if (!round)
                return NULL;
        *round = (QemuStatsRound) { .q = q, .vm = vm, .sent_usec = now_usec(),
                                    .generation = qemu_monitor_generation(vm->mon) };
        round->next = q->stats_rounds;
        q->stats_rounds = round;
        return round;
}

static void round_send(QemuStatsRound *round, StatsQuery query) {
        QemuVm *vm = round->vm;
        struct json_object *args = NULL;
        int r;

        if (query == STATS_QUERY_BALLOON_GUEST) {
                args = json_object_new_object();
                if (!args)
                        return;
                /* The balloon's id is always balloon0 (qemu-command-devices.c); QOM finds it by that name
                 * alone while no other object is called so (each byte sent costs QEMU ~12 us). */
                json_object_object_add(args, "path",
                                       json_object_new_string(vm->stats_cache->guest_path_full
                                                                      ? "/machine/peripheral/balloon0"
                                                                      : "balloon0"));
                json_object_object_add(args, "property", json_object_new_string("guest-stats"));
        }
        round->slots[query] = (struct StatsReply) { .round = round, .query = query };
        r = qemu_monitor_call(vm->mon, stats_query_command[query], args, on_reply, &round->slots[query]);
        if (r < 0) {
                log_debug_errno(r, "Domain %s: failed to send %s, ignoring: %m", vm->uuid, stats_query_command[query]);
                return;
        }
        round->sent |= 1U << query;
        round->pending++;
}

int qemu_get_stats(VbDriver *drv, const char *uuid, uint64_t groups, VbDriverStatsDone done, void *userdata,
                   VbStats **ret, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        QemuStatsCall *c;
        QemuStatsRound *round;
        unsigned needed = 0;
        uint64_t now = now_usec();
        bool unread;

        if (!vm)
                return -EBUSY;
        if (!vm->stats_cache) {
                vm->stats_cache = new0(QemuStatsCache, 1);
                if (!vm->stats_cache)
                        return -ENOMEM;
                vm->stats_cache->stat_fd = vm->stats_cache->statm_fd = -1;
        }
        c = new0(QemuStatsCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (QemuStatsCall) { .groups = groups, .done = done, .userdata = userdata };
        /* What QEMU sent and we did not read yet may change the generation: nothing kept is taken then. */
        unread = qemu_monitor_has_unread(vm->mon);
        for (StatsQuery i = 0; i < _STATS_QUERY_MAX; i++) {
                struct json_object *kept;

                if (!query_needed(vm, i, groups))
                        continue;
                kept = unread ? NULL : cache_lookup(vm, i, now);
                if (kept)
                        c->kept[i] = json_object_get(kept);
                else if (qemu_monitor_is_open(vm->mon))
                        needed |= 1U << i;
        }
        round = vm->stats_cache->round;
        if (needed == 0) {
                /* Nothing to ask QEMU: answered now. */
                QemuStatsRound now_round = { .vm = vm };

                *ret = call_build(c, &now_round);
                call_free(c);
                return *ret ? 1 : -ENOMEM;
        }
        /* Queries on their way and none answered yet: this call waits for them, with those it needs besides. */
        if (!round || round->answered || round->generation != qemu_monitor_generation(vm->mon)) {
                round = round_new(q, vm);
                if (!round) {
                        call_free(c);
                        return -ENOMEM;
                }
                vm->stats_cache->round = round;
        }
        c->next = round->calls;
        round->calls = c;
        /* pending counts one more until all are sent, so that no reply finishes the round early. */
        round->pending++;
        for (StatsQuery i = 0; i < _STATS_QUERY_MAX; i++)
                if ((needed & (1U << i)) && !(round->sent & (1U << i)))
                        round_send(round, i);
        if (--round->pending > 0)
                return 0;
        /* Nothing could be sent (the monitor closed): answered with what there is. */
        round_unlink(round);
        round->calls = c->next;
        *ret = call_build(c, round);
        call_free(c);
        round_finish(round);
        return *ret ? 1 : -ENOMEM;
}

void qemu_stats_cancel(VbDriver *drv, void *userdata) {
        QemuDriver *q = drv->priv;

        for (QemuStatsRound *round = q->stats_rounds; round; round = round->next)
                for (QemuStatsCall *c = round->calls; c; c = c->next)
                        if (c->userdata == userdata)
                                c->done = NULL;
}

void qemu_stats_event(QemuVm *vm, const char *name) {
        if (vm->stats_cache && streq(name, "BALLOON_CHANGE"))
                vm->stats_cache->balloon_event_usec = now_usec();
}

void qemu_stats_forget_vm(QemuDriver *q, QemuVm *vm, bool answer) {
        QemuStatsRound *round;

        /* The monitor goes away with the VM and drops its pending replies: answer with what is in. */
        for (round = q->stats_rounds; round; round = round->next)
                if (round->vm == vm) {
                        round->vm = NULL;
                        round->pending = 0;
                }
        if (vm->stats_cache)
                vm->stats_cache->round = NULL;
        for (;;) {
                for (round = q->stats_rounds; round && !(round->vm == NULL && round->pending == 0); round = round->next)
                        ;
                if (!round)
                        break;
                round_unlink(round);
                if (!answer)
                        for (QemuStatsCall *c = round->calls; c; c = c->next)
                                c->done = NULL;
                round_finish(round);
        }
}

/* A balloon target on its way to QEMU. */
typedef struct BalloonCall {
        QemuDriver *q;
        char uuid[37];
        uint64_t kib;
        VbDriverDone done;
        void *userdata;
} BalloonCall;

static void on_balloon_set(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        _cleanup_free_ BalloonCall *c = userdata;
        QemuVm *vm = hashmap_get(c->q->vms, c->uuid);

        if (r >= 0 && vm) {
                vm->live->current_memory_kib = c->kib;
                vm->live->serial = domain_def_new_serial();
                (void) qemu_vm_save(vm);
        }
        c->done(r, e, c->userdata);
}

int qemu_set_memory(VbDriver *drv, const char *uuid, uint64_t kib, VbDriverDone done, void *userdata,
                    VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        _cleanup_free_ BalloonCall *c = NULL;
        struct json_object *args;
        int r;

        if (!vm)
                return -EBUSY;
        c = new0(BalloonCall, 1);
        seq = qemu_seq_new(vm);
        args = json_object_new_object();
        if (!c || !seq || !args) {
                json_object_put(args);
                return -ENOMEM;
        }
        *c = (BalloonCall) { .q = q, .kib = kib, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
        json_object_object_add(args, "value", json_object_new_uint64(kib * 1024));
        (void) qemu_seq_add(seq, "set the memory balloon", "balloon", args);
        r = qemu_seq_run(TAKE_PTR(seq), qemu_vm_command_timeout(vm), on_balloon_set, c, reterr);
        if (r < 0)
                return r;
        TAKE_PTR(c);
        return 0;
}
