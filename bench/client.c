/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark client on sd-bus for virtbusd, libvirt-dbus and the floor service. Bench-only.
 *
 *   client --address ADDR --target virtbus|libvirt|floor [--also TARGET=ADDR]... [--domain NAME] OP [ARGS]
 *
 * OPs (each prints one machine-readable line "OP target=T key=value ..."; times in microseconds):
 *   xml N                      print the bench domain XML number N (no bus)
 *   getxml                     print GetXMLDesc(0) of --domain
 *   latency COUNT              GetXMLDesc(0) one call at a time on --domain (default bench-0); with
 *                              --also, the sides take turns call by call, one line per side
 *   throughput COUNT INFLIGHT  the same with INFLIGHT calls pipelined (sd_bus_call_async), in 10
 *                              batches taking turns between sides; the median batch rate
 *   define START N [INFLIGHT]  define persistent domains bench-START .. bench-(START+N-1)
 *   list REPS                  ListDomains(0), median of REPS calls (the floor answers a fixed list of
 *                              paths, see floor --list-count); sides take turns as in latency
 *   objects REPS               virtbus/floor: GetManagedObjects on the manager; libvirt-dbus has no
 *                              ObjectManager, so its equivalent: ListDomains + GetAll(org.libvirt.Domain)
 *                              on every domain, 16 in flight
 *   startup REPS NAME -- CMD   spawn CMD, time from exec to NAME owned (NameOwnerChanged), check that
 *                              ListDomains answers, SIGTERM and reap it; REPS times
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

typedef enum { TARGET_VIRTBUS, TARGET_LIBVIRT, TARGET_FLOOR } Target;

static const char *const target_names[] = { "virtbus", "libvirt", "floor" };

static Target target;
static Target parse_target(const char *s, size_t len);
static const char *address;
static const char *domain_name = "bench-0";

/* Names, paths and signatures of each side. Flags are 't' on virtbus, 'u' on libvirt-dbus. */
#define VB_DEST "org.virtbus1"
#define VB_MANAGER "/org/virtbus1"
#define VB_MANAGER_IF "org.virtbus1.Manager"
#define VB_DOMAIN_IF "org.virtbus1.Domain"
#define LV_DEST "org.libvirt"
#define LV_CONNECT "/org/libvirt/Test"
#define LV_CONNECT_IF "org.libvirt.Connect"
#define LV_DOMAIN_IF "org.libvirt.Domain"
#define FL_DEST "org.virtbus1.bench.Floor"
#define FL_PATH "/org/virtbus1/bench/Floor"
#define FL_IF "org.virtbus1.bench.Floor"

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static _Noreturn void die(const char *what, int r, const sd_bus_error *e) {
        if (e && sd_bus_error_is_set(e))
                fprintf(stderr, "client: %s: %s: %s\n", what, e->name, e->message);
        else
                fprintf(stderr, "client: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct_us(const uint64_t *v, size_t n, double p) {
        size_t k = (size_t) (p / 100.0 * (double) n + 0.999999);
        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return (double) v[k - 1] / 1000.0;
}

static void print_stats(const char *op, uint64_t *v, size_t n, const char *extra) {
        double sum = 0;
        qsort(v, n, sizeof *v, cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double) v[i];
        printf("%s target=%s n=%zu median_us=%.1f p99_us=%.1f min_us=%.1f mean_us=%.1f%s%s\n", op,
               target_names[target], n, pct_us(v, n, 50), pct_us(v, n, 99), (double) v[0] / 1000.0,
               sum / (double) n / 1000.0, extra ? " " : "", extra ? extra : "");
}

static sd_bus *bus_connect(void) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("connecting to the bus", r, NULL);
        return bus;
}

/* Deterministic UUID for domain N: stable across runs so both sides get the same definitions. */
static void bench_uuid(unsigned n, char out[37]) {
        snprintf(out, 37, "b3c4e000-0000-4000-8000-%012x", n);
}

static char *bench_xml(unsigned n) {
        char uuid[37], *xml = NULL;
        bench_uuid(n, uuid);
        if (asprintf(&xml,
                     "<domain type='test'>\n"
                     "  <name>bench-%u</name>\n"
                     "  <uuid>%s</uuid>\n"
                     "  <memory unit='KiB'>524288</memory>\n"
                     "  <vcpu>1</vcpu>\n"
                     "  <os>\n"
                     "    <type arch='x86_64'>hvm</type>\n"
                     "  </os>\n"
                     "  <devices>\n"
                     "    <disk type='file' device='disk'>\n"
                     "      <source file='/var/lib/bench/bench-%u.img'/>\n"
                     "      <target dev='vda' bus='virtio'/>\n"
                     "    </disk>\n"
                     "    <interface type='network'>\n"
                     "      <mac address='52:54:00:%02x:%02x:%02x'/>\n"
                     "      <source network='default'/>\n"
                     "      <model type='virtio'/>\n"
                     "    </interface>\n"
                     "  </devices>\n"
                     "</domain>\n",
                     n, uuid, n, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff) < 0)
                die("asprintf", -ENOMEM, NULL);
        return xml;
}

/* The message for GetXMLDesc(0) on the target object, to be sent (sync or async). */
static char *xml_object;

static void resolve_xml_object(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        int r = -EINVAL;

        switch (target) {
        case TARGET_FLOOR:
                xml_object = strdup(FL_PATH);
                return;
        case TARGET_VIRTBUS:
                r = sd_bus_call_method(bus, VB_DEST, VB_MANAGER, VB_MANAGER_IF, "GetDomainByName", &e, &reply, "s",
                                       domain_name);
                break;
        case TARGET_LIBVIRT:
                r = sd_bus_call_method(bus, LV_DEST, LV_CONNECT, LV_CONNECT_IF, "DomainLookupByName", &e, &reply,
                                       "s", domain_name);
                break;
        }
        if (r < 0)
                die("looking up the domain", r, &e);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                die("reading the domain path", r, NULL);
        xml_object = strdup(path);
        sd_bus_message_unref(reply);
}

static sd_bus_message *new_get_xml_desc(sd_bus *bus) {
        sd_bus_message *m = NULL;
        int r;

        switch (target) {
        case TARGET_VIRTBUS:
                r = sd_bus_message_new_method_call(bus, &m, VB_DEST, xml_object, VB_DOMAIN_IF, "GetXMLDesc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", (uint64_t) 0);
                break;
        case TARGET_LIBVIRT:
                r = sd_bus_message_new_method_call(bus, &m, LV_DEST, xml_object, LV_DOMAIN_IF, "GetXMLDesc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "u", (uint32_t) 0);
                break;
        case TARGET_FLOOR:
        default:
                r = sd_bus_message_new_method_call(bus, &m, FL_DEST, xml_object, FL_IF, "GetXMLDesc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", (uint64_t) 0);
                break;
        }
        if (r < 0)
                die("building GetXMLDesc", r, NULL);
        return m;
}

static size_t get_xml_desc_sync(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = new_get_xml_desc(bus), *reply = NULL;
        const char *s;
        int r;

        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0)
                die("GetXMLDesc", r, &e);
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                die("reading GetXMLDesc", r, NULL);
        size_t len = strlen(s);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        return len;
}

/* Several sides can be measured in one process (--also T=ADDR): calls alternate between them one by one
 * (latency) or batch by batch (throughput), so the machine's drift hits every side alike. */
typedef struct {
        Target target;
        sd_bus *bus;
        char *object;
        uint64_t *v;
        double *rates;
        size_t reply_bytes;
} Side;

static Side sides[4];
static unsigned n_sides;

static void use_side(Side *s) {
        target = s->target;
        xml_object = s->object;
}

static void resolve_sides(void) {
        for (unsigned k = 0; k < n_sides; k++) {
                target = sides[k].target;
                resolve_xml_object(sides[k].bus);
                sides[k].object = xml_object;
        }
}

static int op_latency(unsigned count) {
        char extra[64];

        resolve_sides();
        for (unsigned k = 0; k < n_sides; k++) {
                use_side(&sides[k]);
                sides[k].v = calloc(count, sizeof(uint64_t));
                for (unsigned i = 0; i < 200; i++) /* warm-up */
                        sides[k].reply_bytes = get_xml_desc_sync(sides[k].bus);
        }
        for (unsigned i = 0; i < count; i++)
                for (unsigned j = 0; j < n_sides; j++) {
                        Side *sd = &sides[(i + j) % n_sides]; /* rotate who goes first */
                        use_side(sd);
                        uint64_t t0 = now_ns();
                        get_xml_desc_sync(sd->bus);
                        sd->v[i] = now_ns() - t0;
                }
        for (unsigned k = 0; k < n_sides; k++) {
                target = sides[k].target;
                snprintf(extra, sizeof extra, "reply_bytes=%zu", sides[k].reply_bytes);
                print_stats("latency", sides[k].v, count, extra);
                free(sides[k].v);
        }
        return 0;
}

/* Pipelining: keep `inflight` calls outstanding until `total` have been answered. */
typedef struct {
        unsigned sent, done, total, errors;
        sd_bus_message *(*build)(sd_bus *bus, unsigned i, void *userdata);
        void *userdata;
} Pipeline;

static int pipeline_send(sd_bus *bus, Pipeline *p);

static int pipeline_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Pipeline *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e) {
                if (p->errors++ == 0)
                        fprintf(stderr, "client: pipelined call failed: %s: %s\n", e->name, e->message);
        }
        p->done++;
        if (p->sent < p->total)
                pipeline_send(sd_bus_message_get_bus(m), p);
        return 0;
}

static int pipeline_send(sd_bus *bus, Pipeline *p) {
        sd_bus_message *m = p->build(bus, p->sent, p->userdata);
        int r = sd_bus_call_async(bus, NULL, m, pipeline_reply, p, 0);
        if (r < 0)
                die("sd_bus_call_async", r, NULL);
        sd_bus_message_unref(m);
        p->sent++;
        return 0;
}

static void pipeline_run(sd_bus *bus, Pipeline *p, unsigned inflight) {
        int r;
        for (unsigned i = 0; i < inflight && p->sent < p->total; i++)
                pipeline_send(bus, p);
        while (p->done < p->total) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        die("sd_bus_process", r, NULL);
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0)
                        die("sd_bus_wait", r, NULL);
        }
}

static sd_bus_message *build_get_xml_desc(sd_bus *bus, unsigned i, void *userdata) {
        return new_get_xml_desc(bus);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int op_throughput(unsigned count, unsigned inflight) {
        const unsigned rounds = 10, per = count / rounds ? count / rounds : 1;
        unsigned errors = 0;

        resolve_sides();
        for (unsigned k = 0; k < n_sides; k++) {
                Pipeline warm = { .total = 200, .build = build_get_xml_desc };
                use_side(&sides[k]);
                sides[k].rates = calloc(rounds, sizeof(double));
                pipeline_run(sides[k].bus, &warm, inflight);
        }
        for (unsigned i = 0; i < rounds; i++)
                for (unsigned j = 0; j < n_sides; j++) {
                        Side *sd = &sides[(i + j) % n_sides];
                        Pipeline p = { .total = per, .build = build_get_xml_desc };
                        use_side(sd);
                        uint64_t t0 = now_ns();
                        pipeline_run(sd->bus, &p, inflight);
                        sd->rates[i] = (double) per * 1e9 / (double) (now_ns() - t0);
                        errors += p.errors;
                }
        for (unsigned k = 0; k < n_sides; k++) {
                qsort(sides[k].rates, rounds, sizeof(double), cmp_double);
                printf("throughput target=%s n=%u inflight=%u rounds=%u calls_per_s=%.0f min_calls_per_s=%.0f "
                       "max_calls_per_s=%.0f errors=%u\n",
                       target_names[sides[k].target], per * rounds, inflight, rounds,
                       (sides[k].rates[(rounds - 1) / 2] + sides[k].rates[rounds / 2]) / 2, sides[k].rates[0],
                       sides[k].rates[rounds - 1], errors);
                free(sides[k].rates);
        }
        return errors ? 1 : 0;
}

static sd_bus_message *build_define(sd_bus *bus, unsigned i, void *userdata) {
        unsigned start = *(unsigned *) userdata;
        char *xml = bench_xml(start + i);
        sd_bus_message *m = NULL;
        int r;

        if (target == TARGET_VIRTBUS) {
                r = sd_bus_message_new_method_call(bus, &m, VB_DEST, VB_MANAGER, VB_MANAGER_IF, "DefineDomain");
                if (r >= 0)
                        r = sd_bus_message_append(m, "st", xml, (uint64_t) 0);
        } else {
                r = sd_bus_message_new_method_call(bus, &m, LV_DEST, LV_CONNECT, LV_CONNECT_IF, "DomainDefineXML");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", xml);
        }
        if (r < 0)
                die("building the define call", r, NULL);
        free(xml);
        return m;
}

static int op_define(sd_bus *bus, unsigned start, unsigned n, unsigned inflight) {
        uint64_t *v = calloc(n ? n : 1, sizeof *v);
        char extra[128];
        uint64_t t0, dt;
        unsigned errors = 0;

        if (target == TARGET_FLOOR)
                return 0;
        t0 = now_ns();
        if (inflight <= 1) {
                for (unsigned i = 0; i < n; i++) {
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_message *m = build_define(bus, i, &start), *reply = NULL;
                        uint64_t c0 = now_ns();
                        int r = sd_bus_call(bus, m, 0, &e, &reply);
                        v[i] = now_ns() - c0;
                        if (r < 0)
                                die("defining a domain", r, &e);
                        sd_bus_message_unref(reply);
                        sd_bus_message_unref(m);
                }
                dt = now_ns() - t0;
                snprintf(extra, sizeof extra, "inflight=1 total_s=%.4f", (double) dt / 1e9);
                print_stats("define", v, n, extra);
        } else {
                Pipeline p = { .total = n, .build = build_define, .userdata = &start };
                pipeline_run(bus, &p, inflight);
                dt = now_ns() - t0;
                errors = p.errors;
                printf("define target=%s n=%u inflight=%u total_s=%.4f errors=%u\n", target_names[target], n,
                       inflight, (double) dt / 1e9, errors);
        }
        free(v);
        return errors ? 1 : 0;
}

static unsigned list_domains(sd_bus *bus, char ***ret_paths) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        char **paths = NULL;
        int r;

        if (target == TARGET_VIRTBUS)
                r = sd_bus_call_method(bus, VB_DEST, VB_MANAGER, VB_MANAGER_IF, "ListDomains", &e, &reply, "t",
                                       (uint64_t) 0);
        else if (target == TARGET_FLOOR)
                r = sd_bus_call_method(bus, FL_DEST, FL_PATH, FL_IF, "ListDomains", &e, &reply, "t", (uint64_t) 0);
        else
                r = sd_bus_call_method(bus, LV_DEST, LV_CONNECT, LV_CONNECT_IF, "ListDomains", &e, &reply, "u",
                                       (uint32_t) 0);
        if (r < 0)
                die("ListDomains", r, &e);
        r = sd_bus_message_read_strv(reply, &paths);
        if (r < 0)
                die("reading ListDomains", r, NULL);
        sd_bus_message_unref(reply);
        unsigned n = 0;
        while (paths && paths[n])
                n++;
        if (ret_paths)
                *ret_paths = paths;
        else {
                for (unsigned i = 0; i < n; i++)
                        free(paths[i]);
                free(paths);
        }
        return n;
}

/* Sides take turns call by call, as in op_latency. */
static int op_list(unsigned reps) {
        char extra[64];
        unsigned n[4] = {};

        for (unsigned k = 0; k < n_sides; k++) {
                sides[k].v = calloc(reps, sizeof(uint64_t));
                target = sides[k].target;
                for (unsigned i = 0; i < 3; i++)
                        list_domains(sides[k].bus, NULL);
        }
        for (unsigned i = 0; i < reps; i++)
                for (unsigned j = 0; j < n_sides; j++) {
                        unsigned k = (i + j) % n_sides;
                        target = sides[k].target;
                        uint64_t t0 = now_ns();
                        n[k] = list_domains(sides[k].bus, NULL);
                        sides[k].v[i] = now_ns() - t0;
                }
        for (unsigned k = 0; k < n_sides; k++) {
                target = sides[k].target;
                snprintf(extra, sizeof extra, "domains=%u", n[k]);
                print_stats("list", sides[k].v, reps, extra);
                free(sides[k].v);
        }
        return 0;
}

/* virtbus: one GetManagedObjects. Returns the number of objects. */
static unsigned get_managed_objects(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        unsigned n = 0;
        int r;

        r = sd_bus_call_method(bus, VB_DEST, VB_MANAGER, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                               &e, &reply, NULL);
        if (r < 0)
                die("GetManagedObjects", r, &e);
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                die("reading GetManagedObjects", r, NULL);
        while ((r = sd_bus_message_skip(reply, "{oa{sa{sv}}}")) > 0)
                n++;
        if (r < 0)
                die("reading GetManagedObjects", r, NULL);
        sd_bus_message_unref(reply);
        return n;
}

typedef struct {
        char **paths;
} GetAllCtx;

static sd_bus_message *build_get_all(sd_bus *bus, unsigned i, void *userdata) {
        GetAllCtx *c = userdata;
        sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(bus, &m, LV_DEST, c->paths[i], "org.freedesktop.DBus.Properties",
                                               "GetAll");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", LV_DOMAIN_IF);
        if (r < 0)
                die("building GetAll", r, NULL);
        return m;
}

/* libvirt-dbus has no ObjectManager: a client that wants every domain with its properties lists them
 * and asks each one for its properties. */
static unsigned libvirt_all_objects(sd_bus *bus) {
        GetAllCtx c;
        unsigned n = list_domains(bus, &c.paths);
        Pipeline p = { .total = n, .build = build_get_all, .userdata = &c };
        pipeline_run(bus, &p, 16);
        if (p.errors)
                die("GetAll", -EIO, NULL);
        for (unsigned i = 0; i < n; i++)
                free(c.paths[i]);
        free(c.paths);
        return n;
}

static unsigned all_objects(sd_bus *bus) {
        return target == TARGET_VIRTBUS ? get_managed_objects(bus) : libvirt_all_objects(bus);
}

static int op_objects(unsigned reps) {
        char extra[96];
        unsigned n[4] = {};

        for (unsigned k = 0; k < n_sides; k++) {
                if (sides[k].target == TARGET_FLOOR)
                        continue;
                sides[k].v = calloc(reps, sizeof(uint64_t));
                target = sides[k].target;
                for (unsigned i = 0; i < 2; i++)
                        all_objects(sides[k].bus);
        }
        for (unsigned i = 0; i < reps; i++)
                for (unsigned j = 0; j < n_sides; j++) {
                        unsigned k = (i + j) % n_sides;
                        if (sides[k].target == TARGET_FLOOR)
                                continue;
                        target = sides[k].target;
                        uint64_t t0 = now_ns();
                        n[k] = all_objects(sides[k].bus);
                        sides[k].v[i] = now_ns() - t0;
                }
        for (unsigned k = 0; k < n_sides; k++) {
                if (sides[k].target == TARGET_FLOOR)
                        continue;
                target = sides[k].target;
                snprintf(extra, sizeof extra, "objects=%u method=%s", n[k],
                         target == TARGET_VIRTBUS ? "GetManagedObjects" : "ListDomains+GetAll*N");
                print_stats("objects", sides[k].v, reps, extra);
                free(sides[k].v);
        }
        return 0;
}

/* Start-up: exec CMD and wait for NAME to get an owner; the match is installed before the exec. */
typedef struct {
        const char *name;
        bool owned;
} OwnerWait;

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        OwnerWait *w = userdata;
        const char *name, *old, *new;
        if (sd_bus_message_read(m, "sss", &name, &old, &new) >= 0 && strcmp(name, w->name) == 0 && new[0])
                w->owned = true;
        return 0;
}

static int op_startup(sd_bus *bus, unsigned reps, const char *name, char **cmd) {
        uint64_t *v = calloc(reps, sizeof *v), *ready = calloc(reps, sizeof *ready);
        char extra[160];
        unsigned n = 0;
        int r;

        char *match = NULL;
        if (asprintf(&match, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     name) < 0)
                die("asprintf", -ENOMEM, NULL);
        for (unsigned i = 0; i < reps; i++) {
                OwnerWait w = { .name = name };
                sd_bus_slot *slot = NULL;
                int status;

                r = sd_bus_add_match(bus, &slot, match, on_name_owner_changed, &w);
                if (r < 0)
                        die("adding the NameOwnerChanged match", r, NULL);
                uint64_t t0 = now_ns();
                pid_t pid = fork();
                if (pid < 0)
                        die("fork", -errno, NULL);
                if (pid == 0) {
                        dup2(STDERR_FILENO, STDOUT_FILENO); /* keep our stdout to the result lines */
                        execvp(cmd[0], cmd);
                        _exit(127);
                }
                while (!w.owned) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                die("sd_bus_process", r, NULL);
                        if (r > 0)
                                continue;
                        if (waitpid(pid, &status, WNOHANG) == pid) {
                                fprintf(stderr, "client: the daemon exited before owning %s\n", name);
                                exit(1);
                        }
                        sd_bus_wait(bus, 100000);
                }
                v[i] = now_ns() - t0;
                sd_bus_slot_unref(slot);
                /* Owning the name is not being ready: the first answer is. */
                n = list_domains(bus, NULL);
                ready[i] = now_ns() - t0;
                kill(pid, SIGTERM);
                waitpid(pid, &status, 0);
                /* Wait for the name to be released before the next start. */
                for (int k = 0; k < 500; k++) {
                        sd_bus_message *reply = NULL;
                        int has = 0;
                        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s", name);
                        if (r >= 0)
                                sd_bus_message_read(reply, "b", &has);
                        sd_bus_message_unref(reply);
                        if (!has)
                                break;
                        usleep(2000);
                }
        }
        qsort(ready, reps, sizeof *ready, cmp_u64);
        snprintf(extra, sizeof extra, "domains=%u ready_median_us=%.1f", n, ready[reps / 2] / 1000.0);
        print_stats("startup", v, reps, extra);
        free(ready);
        free(v);
        free(match);
        return 0;
}

static _Noreturn void usage(void) {
        fprintf(stderr, "usage: client --address ADDR --target virtbus|libvirt|floor [--also TARGET=ADDR]... [--domain NAME]\n"
                        "              OP [ARGS]\n"
                        "  OP: xml N | getxml | latency COUNT | throughput COUNT INFLIGHT | define START N [INFLIGHT]\n"
                        "      | list REPS | objects REPS | startup REPS NAME -- CMD...\n");
        exit(2);
}

static Target parse_target(const char *s, size_t len) {
        for (unsigned t = 0; t < 3; t++)
                if (strlen(target_names[t]) == len && strncmp(s, target_names[t], len) == 0)
                        return (Target) t;
        usage();
}

static unsigned arg_u(char **argv, int argc, int i, unsigned def) {
        return i < argc ? (unsigned) strtoul(argv[i], NULL, 10) : def;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "target", required_argument, NULL, 't' },
                { "domain", required_argument, NULL, 'd' },
                { "also", required_argument, NULL, 'A' },
                {},
        };
        const char *tname = NULL, *also[3];
        unsigned n_also = 0;
        int c;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 't': tname = optarg; break;
                case 'd': domain_name = optarg; break;
                case 'A':
                        if (n_also >= 3 || !strchr(optarg, '='))
                                usage();
                        also[n_also++] = optarg;
                        break;
                default: usage();
                }
        if (optind >= argc)
                usage();
        const char *op = argv[optind];
        char **a = argv + optind + 1;
        int n = argc - optind - 1;

        if (strcmp(op, "xml") == 0) {
                char *xml = bench_xml(arg_u(a, n, 0, 0));
                fputs(xml, stdout);
                free(xml);
                return 0;
        }
        if (!address || !tname)
                usage();
        target = parse_target(tname, strlen(tname));
        sd_bus *bus = bus_connect();
        sides[n_sides++] = (Side) { .target = target, .bus = bus };
        for (unsigned k = 0; k < n_also; k++) {
                const char *eq = strchr(also[k], '=');
                address = eq + 1;
                sides[n_sides++] = (Side) { .target = parse_target(also[k], eq - also[k]), .bus = bus_connect() };
        }
        target = sides[0].target;
        int r;
        if (strcmp(op, "latency") == 0)
                r = op_latency(arg_u(a, n, 0, 2000));
        else if (strcmp(op, "getxml") == 0) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *m, *reply = NULL;
                const char *xml;
                resolve_xml_object(bus);
                m = new_get_xml_desc(bus);
                r = sd_bus_call(bus, m, 0, &e, &reply);
                if (r < 0)
                        die("GetXMLDesc", r, &e);
                r = sd_bus_message_read(reply, "s", &xml);
                if (r >= 0)
                        fputs(xml, stdout);
                r = r < 0;
        } else if (strcmp(op, "throughput") == 0)
                r = op_throughput(arg_u(a, n, 0, 20000), arg_u(a, n, 1, 16));
        else if (strcmp(op, "define") == 0)
                r = op_define(bus, arg_u(a, n, 0, 0), arg_u(a, n, 1, 1000), arg_u(a, n, 2, 1));
        else if (strcmp(op, "list") == 0)
                r = op_list(arg_u(a, n, 0, 50));
        else if (strcmp(op, "objects") == 0)
                r = op_objects(arg_u(a, n, 0, 20));
        else if (strcmp(op, "startup") == 0) {
                if (n < 4 || strcmp(a[2], "--") != 0)
                        usage();
                r = op_startup(bus, arg_u(a, n, 0, 5), a[1], a + 3);
        } else
                usage();
        fflush(stdout);
        sd_bus_flush_close_unref(bus);
        return r;
}
