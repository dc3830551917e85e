/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Times the statistics calls a GUI makes each refresh, for bench/stats-run (not a test).
 *
 *   stats-client VB_ADDRESS LV_ADDRESS N REPS
 * takes turns call by call, REPS rounds, between
 *   virtbus:      org.virtbus1.Manager.GetAllDomainStats(0 = all groups, 1 = running)
 *   lv_bulk:      org.libvirt.Connect.GetAllDomainStats(63 = the same six groups, 16 = running)
 *   lv_each:      org.libvirt.Connect.ListDomains(16 = running), then org.libvirt.Domain.GetStats(63, 0)
 *                 of each domain one after the other (what a GUI written for libvirt-dbus does)
 *   lv_pipelined: the same, every GetStats sent at once and the replies awaited together
 * Every answer must name N domains (LV_ADDRESS '-' leaves libvirt out, VB_ADDRESS '-' virtbus). Prints one
 * line per measure with the median and the slowest in milliseconds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#define LV_CONNECT "/org/libvirt/QEMU"

enum { M_VIRTBUS, M_LV_BULK, M_LV_EACH, M_LV_PIPELINED, M_MAX };
static const char *const names[M_MAX] = { "virtbus", "lv_bulk", "lv_each", "lv_pipelined" };

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void die(const char *what, int r, const sd_bus_error *e) {
        fprintf(stderr, "stats-client: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        exit(1);
}

static sd_bus *open_bus(const char *address) {
        sd_bus *bus;
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        /* A loaded machine can make libvirt take longer than sd-bus's default 25 s. */
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, UINT64_C(300) * 1000000);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die(address, r, NULL);
        return bus;
}

/* Counts the entries of an array reply (a(oa{sv}), a(sa{sv})): each must have the stats of its domain. */
static unsigned count_entries(sd_bus_message *m, const char *contents) {
        unsigned n = 0;
        int r = sd_bus_message_enter_container(m, 'a', contents);
        while (r >= 0 && (r = sd_bus_message_at_end(m, 0)) == 0) {
                r = sd_bus_message_skip(m, contents);
                n++;
        }
        if (r < 0)
                die("reply", r, NULL);
        return n;
}

static double time_virtbus(sd_bus *bus, unsigned n) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        double t = now_ms();
        int r = sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager",
                                   "GetAllDomainStats", &e, &reply, "tt", UINT64_C(0), UINT64_C(1));
        t = now_ms() - t;
        if (r < 0)
                die("GetAllDomainStats", r, &e);
        if (count_entries(reply, "(oa{sv})") != n)
                die("virtbus: wrong number of domains", -EBADMSG, NULL);
        sd_bus_message_unref(reply);
        return t;
}

static double time_lv_bulk(sd_bus *bus, unsigned n) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        double t = now_ms();
        int r = sd_bus_call_method(bus, "org.libvirt", LV_CONNECT, "org.libvirt.Connect", "GetAllDomainStats", &e,
                                   &reply, "uu", 63u, 16u);
        t = now_ms() - t;
        if (r < 0)
                die("libvirt GetAllDomainStats", r, &e);
        if (count_entries(reply, "(sa{sv})") != n)
                die("libvirt: wrong number of domains", -EBADMSG, NULL);
        sd_bus_message_unref(reply);
        return t;
}

/* ListDomains, then GetStats of each: one after the other, or all sent at once. */
static double time_lv_each(sd_bus *bus, unsigned n, int pipelined) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        uint64_t cookies[256];
        char **paths = NULL;
        unsigned k = 0;
        double t = now_ms();
        int r = sd_bus_call_method(bus, "org.libvirt", LV_CONNECT, "org.libvirt.Connect", "ListDomains", &e,
                                   &reply, "u", 16u);
        if (r < 0)
                die("libvirt ListDomains", r, &e);
        r = sd_bus_message_read_strv(reply, &paths);
        if (r < 0)
                die("ListDomains reply", r, NULL);
        sd_bus_message_unref(reply);
        for (char **p = paths; p && *p; p++, k++) {
                sd_bus_message *m = NULL;
                if (k >= 256)
                        die("too many domains", -E2BIG, NULL);
                r = sd_bus_message_new_method_call(bus, &m, "org.libvirt", *p, "org.libvirt.Domain", "GetStats");
                if (r >= 0)
                        r = sd_bus_message_append(m, "uu", 63u, 0u);
                if (r < 0)
                        die("GetStats message", r, NULL);
                if (pipelined) {
                        /* With a cookie to fill, a reply is asked for. */
                        r = sd_bus_send(bus, m, &cookies[k]);
                        sd_bus_message_unref(m);
                } else {
                        r = sd_bus_call(bus, m, 0, &e, &reply);
                        sd_bus_message_unref(m);
                        sd_bus_message_unref(reply);
                }
                if (r < 0)
                        die("GetStats", r, &e);
        }
        if (pipelined) {
                /* The replies may come in any order (libvirt-dbus answers from several threads). */
                unsigned got = 0;
                while (got < k) {
                        sd_bus_message *m = NULL;
                        uint64_t rc = 0;
                        r = sd_bus_process(bus, &m);
                        if (r < 0)
                                die("process", r, NULL);
                        if (m && sd_bus_message_get_reply_cookie(m, &rc) >= 0)
                                for (unsigned i = 0; i < k; i++)
                                        if (cookies[i] == rc) {
                                                if (sd_bus_message_is_method_error(m, NULL))
                                                        die("GetStats", -EIO, sd_bus_message_get_error(m));
                                                got++;
                                        }
                        sd_bus_message_unref(m);
                        if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                                die("wait", -EIO, NULL);
                }
        }
        t = now_ms() - t;
        if (k != n)
                die("libvirt: wrong number of domains listed", -EBADMSG, NULL);
        for (char **p = paths; p && *p; p++)
                free(*p);
        free(paths);
        return t;
}

int main(int argc, char **argv) {
        sd_bus *vb = NULL, *lv = NULL;
        unsigned n, reps;
        double *v[M_MAX];

        if (argc != 5) {
                fprintf(stderr, "usage: stats-client VB_ADDRESS|- LV_ADDRESS|- N REPS\n");
                return 2;
        }
        n = atoi(argv[3]);
        reps = atoi(argv[4]);
        if (strcmp(argv[1], "-") != 0)
                vb = open_bus(argv[1]);
        if (strcmp(argv[2], "-") != 0)
                lv = open_bus(argv[2]);
        for (int i = 0; i < M_MAX; i++)
                v[i] = calloc(reps, sizeof(double));

        /* One warm-up round, not counted. */
        if (vb)
                (void) time_virtbus(vb, n);
        if (lv) {
                (void) time_lv_bulk(lv, n);
                (void) time_lv_each(lv, n, 0);
        }
        for (unsigned i = 0; i < reps; i++) {
                if (vb)
                        v[M_VIRTBUS][i] = time_virtbus(vb, n);
                if (!lv)
                        continue;
                v[M_LV_BULK][i] = time_lv_bulk(lv, n);
                v[M_LV_EACH][i] = time_lv_each(lv, n, 0);
                v[M_LV_PIPELINED][i] = time_lv_each(lv, n, 1);
        }
        for (int i = 0; i < M_MAX; i++) {
                if ((i == M_VIRTBUS && !vb) || (i != M_VIRTBUS && !lv))
                        continue;
                qsort(v[i], reps, sizeof(double), cmp);
                printf("measure=%s guests=%u median_ms=%.3f max_ms=%.3f\n", names[i], n, v[i][(reps - 1) / 2],
                       v[i][reps - 1]);
        }
        return 0;
}
