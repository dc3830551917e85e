/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetDomainCapabilities timings (bench/caps-run; bench-only, not a test).
 *
 *   caps cold ADDR virtbus|libvirt EMULATOR          one call for an emulator nobody has probed:
 *                                                      prints "cold target=T ms=X bytes=N"
 *   caps lat N VIRTBUS_ADDR FLOOR_ADDR [LIBVIRT_ADDR] N calls per side, sides taking turns call by call
 *                                                      (floor, virtbusd, libvirt): prints per side
 *                                                      "lat target=T median_us=X p99_us=Y bytes=N"
 * virtbusd: org.virtbus1.Manager.GetDomainCapabilities("", "", "", "", 0) (cached after the first call);
 * libvirt-dbus: org.libvirt.Connect.GetDomainCapabilities("/usr/bin/qemu-system-x86_64", "", "", "", 0) on
 * /org/libvirt/QEMU (it hands "" on to libvirt as a path); the floor: bench/floor's
 * GetXMLDesc answering the same XML from a file. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-bus.h>

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static sd_bus *connect_to(const char *address) {
        sd_bus *bus = NULL;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_start(bus) < 0) {
                fprintf(stderr, "caps: cannot connect to %s\n", address);
                exit(1);
        }
        return bus;
}

/* One call; returns the reply's size (exits on error). */
static size_t call(sd_bus *bus, const char *target, const char *emulator) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *xml;
        int r;

        if (strcmp(target, "virtbus") == 0)
                r = sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager",
                                       "GetDomainCapabilities", &e, &reply, "sssst", emulator, "", "", "", (uint64_t) 0);
        else if (strcmp(target, "libvirt") == 0)
                r = sd_bus_call_method(bus, "org.libvirt", "/org/libvirt/QEMU", "org.libvirt.Connect",
                                       "GetDomainCapabilities", &e, &reply, "ssssu", emulator, "", "", "", (uint32_t) 0);
        else
                r = sd_bus_call_method(bus, "org.virtbus1.bench.Floor", "/org/virtbus1/bench/Floor",
                                       "org.virtbus1.bench.Floor", "GetXMLDesc", &e, &reply, "t", (uint64_t) 0);
        if (r < 0 || sd_bus_message_read(reply, "s", &xml) < 0) {
                fprintf(stderr, "caps: %s: %s\n", target, e.message ?: strerror(-r));
                exit(1);
        }
        r = (int) strlen(xml);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        return (size_t) r;
}

/* libvirt-dbus passes "" on as a path: it is given the installed emulator; virtbusd its default (""). */
static const char *emulator_of(const char *target) {
        return strcmp(target, "libvirt") == 0 ? "/usr/bin/qemu-system-x86_64" : "";
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char *argv[]) {
        if (argc == 5 && strcmp(argv[1], "cold") == 0) {
                sd_bus *bus = connect_to(argv[2]);
                double t0 = now_us();
                size_t n;

                if (strcmp(argv[3], "libvirt") == 0)
                        (void) sd_bus_set_method_call_timeout(bus, 120 * 1000000ULL);
                n = call(bus, argv[3], argv[4]);
                printf("cold target=%s ms=%.1f bytes=%zu\n", argv[3], (now_us() - t0) / 1000, n);
                return 0;
        }
        if ((argc == 5 || argc == 6) && strcmp(argv[1], "lat") == 0) {
                int n = atoi(argv[2]), sides = argc - 3;
                const char *names[] = { "virtbus", "floor", "libvirt" };
                sd_bus *bus[3];
                double *t[3];
                size_t bytes[3] = {};

                for (int s = 0; s < sides; s++) {
                        bus[s] = connect_to(argv[3 + s]);
                        t[s] = calloc((size_t) n, sizeof(double));
                        for (int i = 0; i < 50; i++) /* warm-up (and the probe, if any) */
                                bytes[s] = call(bus[s], names[s], emulator_of(names[s]));
                }
                for (int i = 0; i < n; i++)
                        for (int s = sides - 1; s >= 0; s--) { /* floor / libvirt first, then virtbusd */
                                int k = (s + i) % sides;
                                double t0 = now_us();
                                call(bus[k], names[k], emulator_of(names[k]));
                                t[k][i] = now_us() - t0;
                        }
                for (int s = 0; s < sides; s++) {
                        qsort(t[s], (size_t) n, sizeof(double), cmp_double);
                        printf("lat target=%s median_us=%.1f p99_us=%.1f bytes=%zu\n", names[s], t[s][n / 2],
                               t[s][(int) (n * 0.99)], bytes[s]);
                }
                return 0;
        }
        fprintf(stderr, "usage: caps cold ADDR virtbus|libvirt EMULATOR | caps lat N VIRTBUS_ADDR FLOOR_ADDR [LIBVIRT_ADDR]\n");
        return 2;
}
