/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Statistics of a running QEMU (GetStats): the QMP queries are sent together without waiting
 * (query-balloon, query-cpus-fast, query-blockstats, query-block), and the answer is put together when the
 * last reply is in, with what /proc says about the process and its vCPU threads and what rtnetlink says
 * about the taps. A call whose domain stops meanwhile is answered with what it has. */
#include <fcntl.h>
#include <stdio.h>
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

struct QemuStatsCall {
        QemuDriver *q;
        QemuVm *vm; /* NULL once the domain stopped */
        uint64_t groups;
        unsigned pending;
        VbDriverStatsDone done; /* NULL once cancelled */
        void *userdata;
        struct json_object *replies[_STATS_QUERY_MAX];
        /* One per query, as the reply callbacks' userdata. */
        struct StatsReply {
                QemuStatsCall *call;
                StatsQuery query;
        } slots[_STATS_QUERY_MAX];
        QemuStatsCall *next;
};

static QemuStatsCall *call_free(QemuStatsCall *c) {
        for (size_t i = 0; i < _STATS_QUERY_MAX; i++)
                json_object_put(c->replies[i]);
        free(c);
        return NULL;
}

static void call_unlink(QemuStatsCall *c) {
        for (QemuStatsCall **i = &c->q->stats_calls; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        return;
                }
}

/* The first number of a /proc file (schedstat: time on the CPU in ns). */
static int read_first_u64(const char *path, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r = read_full_file(path, 64, &s, NULL);

        if (r < 0)
                return r;
        return sscanf(s, "%" SCNu64, ret) == 1 ? 0 : -EBADMSG;
}

/* cpu.time: the process' CPU clock, in ns, of all its threads, those that ended too (QEMU's worker threads
 * come and go), as a cgroup counts. /proc/PID/schedstat would be the main thread's alone. Read after
 * /proc/PID/stat, so that cpu.time is never less than cpu.user + cpu.system. */
static void add_cpu(const QemuVm *vm, VbStats *s) {
        _cleanup_free_ char *stat = NULL;
        char path[64];
        const char *p;
        unsigned long long utime, stime;
        uint64_t ns_per_tick = 1000000000ULL / (uint64_t) sysconf(_SC_CLK_TCK), total;
        clockid_t clock;
        struct timespec ts;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) vm->pid);
        if (read_full_file(path, 4096, &stat, NULL) < 0 || !(p = strrchr(stat, ')')))
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
        _cleanup_free_ char *statm = NULL;
        char path[64];
        unsigned long long pages;

        /* Without a balloon device QEMU refuses the query: the definition's value, as libvirt does. */
        if (actual && json_object_is_type(actual, json_type_int))
                vb_stats_add_ullong(s, json_object_get_uint64(actual) / 1024, "balloon.current");
        else
                vb_stats_add_ullong(s, vm->live->current_memory_kib ?: vm->live->memory_kib, "balloon.current");
        vb_stats_add_ullong(s, vm->live->memory_kib, "balloon.maximum");
        snprintf(path, sizeof path, "/proc/%d/statm", (int) vm->pid);
        if (read_full_file(path, 256, &statm, NULL) >= 0 && sscanf(statm, "%*u %llu", &pages) == 1)
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
                char path[96];
                uint64_t ns;

                vb_stats_add_int(s, 1 /* VIR_VCPU_RUNNING */, "vcpu.%" PRId64 ".state", k);
                if (!tid)
                        continue;
                snprintf(path, sizeof path, "/proc/%d/task/%" PRId64 "/schedstat", (int) vm->pid,
                         json_object_get_int64(tid));
                if (read_first_u64(path, &ns) >= 0)
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
                        if (v)
                                vb_stats_add_ullong(s, json_object_get_uint64(v), "block.%zu.capacity", n);
                        /* The image's space on the host; a raw image without holes takes its size. */
                        vb_stats_add_ullong(s, a ? json_object_get_uint64(a) : v ? json_object_get_uint64(v) : 0,
                                            "block.%zu.physical", n);
                }
                n++;
        }
        vb_stats_add_uint(s, (uint32_t) n, "block.count");
}

/* Everything that is in, as libvirt orders the groups. NULL on allocation failure. */
static VbStats *call_build(QemuStatsCall *c) {
        VbStats *s = vb_stats_new();
        const QemuVm *vm = c->vm;

        if (!s || !vm)
                return s;
        if (c->groups & VB_STATS_GROUP_CPU)
                add_cpu(vm, s);
        if (c->groups & VB_STATS_GROUP_BALLOON) {
                add_balloon(vm, c->replies[STATS_QUERY_BALLOON], s);
                add_balloon_guest(c->replies[STATS_QUERY_BALLOON_GUEST], s);
        }
        if (c->groups & VB_STATS_GROUP_VCPU)
                add_vcpus(vm, c->replies[STATS_QUERY_CPUS], s);
        if (c->groups & VB_STATS_GROUP_INTERFACE)
                add_interfaces(vm, s);
        if (c->groups & VB_STATS_GROUP_BLOCK)
                add_blocks(vm, c->replies[STATS_QUERY_BLOCKSTATS], c->replies[STATS_QUERY_BLOCK], s);
        if (vb_stats_failed(s))
                s = vb_stats_free(s);
        return s;
}

/* Answers (if still wanted) and frees c, which is out of the list. */
static void call_finish(QemuStatsCall *c) {
        if (c->done)
                c->done(c->userdata, call_build(c));
        call_free(c);
}

static void on_reply(QemuMonitor *mon, struct json_object *ret, const char *error, void *userdata) {
        struct StatsReply *slot = userdata;
        QemuStatsCall *c = slot->call;

        if (error)
                log_debug("Domain %s: %s failed, ignoring: %s", c->vm ? c->vm->uuid : "(gone)",
                          stats_query_command[slot->query], error);
        else
                c->replies[slot->query] = json_object_get(ret);
        if (--c->pending > 0)
                return;
        call_unlink(c);
        call_finish(c);
}

/* Whether the domain has a balloon that the guest reports its memory statistics to. */
static bool balloon_reports(const QemuVm *vm) {
        for (size_t i = 0; i < vm->live->n_devices; i++)
                if (device_memballoon_get_stats_period(vm->live->devices[i]) > 0)
                        return true;
        return false;
}

static bool query_needed(const QemuVm *vm, StatsQuery query, uint64_t groups) {
        switch (query) {
        case STATS_QUERY_BALLOON:
                return groups & VB_STATS_GROUP_BALLOON;
        case STATS_QUERY_BALLOON_GUEST:
                return (groups & VB_STATS_GROUP_BALLOON) && balloon_reports(vm);
        case STATS_QUERY_CPUS:
                return groups & VB_STATS_GROUP_VCPU;
        default:
                return groups & VB_STATS_GROUP_BLOCK;
        }
}

int qemu_get_stats(VbDriver *drv, const char *uuid, uint64_t groups, VbDriverStatsDone done, void *userdata,
                   VbStats **ret, VbError *reterr) {
        QemuDriver *q = drv->priv;
        QemuVm *vm = qemu_driver_find_vm(q, uuid, reterr);
        QemuStatsCall *c;
        int r;

        if (!vm)
                return -EBUSY;
        c = new0(QemuStatsCall, 1);
        if (!c)
                return -ENOMEM;
        *c = (QemuStatsCall) { .q = q, .vm = vm, .groups = groups, .done = done, .userdata = userdata };
        /* Pipelined: all are on their way before the first reply is read. pending counts one more until
         * all are sent, so that no reply finishes the call early. */
        c->pending = 1;
        c->next = q->stats_calls;
        q->stats_calls = c;
        for (StatsQuery i = 0; i < _STATS_QUERY_MAX; i++) {
                struct json_object *args = NULL;

                if (!query_needed(vm, i, groups) || !qemu_monitor_is_open(vm->mon))
                        continue;
                if (i == STATS_QUERY_BALLOON_GUEST) {
                        args = json_object_new_object();
                        if (!args)
                                continue;
                        /* The balloon's id is always balloon0 (qemu-command-devices.c). */
                        json_object_object_add(args, "path", json_object_new_string("/machine/peripheral/balloon0"));
                        json_object_object_add(args, "property", json_object_new_string("guest-stats"));
                }
                c->slots[i] = (struct StatsReply) { .call = c, .query = i };
                r = qemu_monitor_call(vm->mon, stats_query_command[i], args, on_reply, &c->slots[i]);
                if (r < 0)
                        log_debug_errno(r, "Domain %s: failed to send %s, ignoring: %m", uuid, stats_query_command[i]);
                else
                        c->pending++;
        }
        if (--c->pending > 0)
                return 0;
        /* Nothing to ask QEMU: answered now. */
        call_unlink(c);
        *ret = call_build(c);
        call_free(c);
        return *ret ? 1 : -ENOMEM;
}

void qemu_stats_cancel(VbDriver *drv, void *userdata) {
        QemuDriver *q = drv->priv;

        for (QemuStatsCall *c = q->stats_calls; c; c = c->next)
                if (c->userdata == userdata)
                        c->done = NULL;
}

void qemu_stats_forget_vm(QemuDriver *q, QemuVm *vm, bool answer) {
        QemuStatsCall *c;

        /* The monitor goes away with the VM and drops its pending replies: answer with what is in. */
        for (c = q->stats_calls; c; c = c->next)
                if (c->vm == vm) {
                        c->vm = NULL;
                        c->pending = 0;
                }
        /* One at a time from the head: an answer may cancel other calls (core frees its query). */
        for (;;) {
                for (c = q->stats_calls; c && !(c->vm == NULL && c->pending == 0); c = c->next)
                        ;
                if (!c)
                        break;
                call_unlink(c);
                if (!answer)
                        c->done = NULL;
                call_finish(c);
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
