/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Times virtbusd's domain calls for bench/qemu-run (not a test).
 *
 *   qemu-client ADDRESS cycle XMLFILE N            define, then N x (Start, Destroy)
 *   qemu-client ADDRESS hotplug XMLFILE NICFILE N  define + Start, wait for the guest, N x (AttachDevice,
 *                                                  DetachDevice until DeviceRemoved), Destroy
 *
 * Prints key=value lines with the median (and min) of each phase in milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define DOMAIN_IFACE "org.virtbus1.Domain"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void report(const char *key, double *v, int n) {
        qsort(v, n, sizeof *v, cmp);
        printf("%s_median_ms=%.3f %s_min_ms=%.3f\n", key, v[(n - 1) / 2], key, v[0]);
}

static char *slurp(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;
        if (!f || getdelim(&buf, &n, 0, f) < 0) {
                fprintf(stderr, "cannot read %s\n", path);
                exit(1);
        }
        fclose(f);
        return buf;
}

static void check(int r, sd_bus_error *e, const char *what) {
        if (r < 0) {
                fprintf(stderr, "%s failed: %s\n", what, e && e->message ? e->message : strerror(-r));
                exit(1);
        }
}

static char *define(sd_bus *bus, const char *xml) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *p;
        char *path;
        int r = sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager", "DefineDomain", &e,
                                   &reply, "st", xml, (uint64_t) 0);
        check(r, &e, "DefineDomain");
        sd_bus_message_read(reply, "o", &p);
        path = strdup(p);
        sd_bus_message_unref(reply);
        return path;
}

static void call(sd_bus *bus, const char *path, const char *method) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, method, &e, NULL, "t", (uint64_t) 0);
        check(r, &e, method);
}

static void call_xml(sd_bus *bus, const char *path, const char *method, const char *xml) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, method, &e, NULL, "st", xml, (uint64_t) 0);
        check(r, &e, method);
}

static int removed;
static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        removed = 1;
        return 0;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        int r, n;

        if (argc < 5) {
                fprintf(stderr, "usage: see the header of qemu-client.c\n");
                return 2;
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        check(r, NULL, "connect");

        if (strcmp(argv[2], "cycle") == 0) {
                char *path = define(bus, slurp(argv[3]));
                double *start, *destroy;
                n = atoi(argv[4]);
                start = calloc(n, sizeof(double));
                destroy = calloc(n, sizeof(double));
                for (int i = 0; i < n; i++) {
                        double t0 = now_ms(), t1, t2;
                        call(bus, path, "Start");
                        t1 = now_ms();
                        usleep(50 * 1000);
                        t2 = now_ms();
                        call(bus, path, "Destroy");
                        destroy[i] = now_ms() - t2;
                        start[i] = t1 - t0;
                }
                report("start", start, n);
                report("destroy", destroy, n);
        } else if (strcmp(argv[2], "hotplug") == 0 && argc >= 6) {
                char *path = define(bus, slurp(argv[3])), *nic = slurp(argv[4]);
                double *attach, *detach;
                n = atoi(argv[5]);
                attach = calloc(n, sizeof(double));
                detach = calloc(n, sizeof(double));
                r = sd_bus_match_signal(bus, NULL, "org.virtbus1", path, DOMAIN_IFACE, "DeviceRemoved", on_removed, NULL);
                check(r, NULL, "match");
                call(bus, path, "Start");
                sleep(4); /* the guest boots (TCG) */
                for (int i = 0; i < n; i++) {
                        double t0 = now_ms(), t1;
                        call_xml(bus, path, "AttachDevice", nic);
                        attach[i] = now_ms() - t0;
                        usleep(300 * 1000); /* the guest takes the device */
                        removed = 0;
                        t1 = now_ms();
                        call_xml(bus, path, "DetachDevice", nic);
                        while (!removed) {
                                r = sd_bus_process(bus, NULL);
                                check(r, NULL, "process");
                                if (r == 0)
                                        sd_bus_wait(bus, 5000000);
                        }
                        detach[i] = now_ms() - t1;
                        usleep(100 * 1000);
                }
                call(bus, path, "Destroy");
                report("attach", attach, n);
                report("detach", detach, n);
        } else {
                fprintf(stderr, "unknown operation %s\n", argv[2]);
                return 2;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}
