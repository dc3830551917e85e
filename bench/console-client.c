/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Times virtbusd's console calls for bench/console-run (not a test).
 *
 *   console-client ADDRESS XMLFILE N
 * defines the domain (the tiny guest with virtbus.shell, a pty serial port, VNC listening nowhere),
 * starts it paused, opens its console, resumes and waits for the guest's shell; then N times each:
 *   console:    OpenConsole (force) until the first byte back after a newline typed on it
 *   console_call: the OpenConsole call alone
 *   console_echo: on a console already open, a newline until the first byte back (the guest's part)
 *   bus_floor:  org.freedesktop.DBus.Peer.Ping to virtbusd (a D-Bus round trip doing nothing)
 *   graphics:   OpenGraphics until the RFB greeting (12 bytes) is read
 *   screenshot: Screenshot until the PNG is in hand
 * and destroys it. Prints key=value lines with the median and min in milliseconds. */
#include <errno.h>
#include <poll.h>
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

static void die(const char *what, int r, const sd_bus_error *e) {
        fprintf(stderr, "%s: %s\n", what, e && e->message ? e->message : strerror(-r));
        exit(1);
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

static int call_fd(sd_bus *bus, const char *path, const char *method, const char *types, const void *arg,
                   uint64_t flags) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int fd, r;

        if (types[0] == 's')
                r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, method, &e, &reply, "st",
                                       (const char *) arg, flags);
        else
                r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, method, &e, &reply, "ut",
                                       *(const unsigned *) arg, flags);
        if (r < 0)
                die(method, r, &e);
        if (sd_bus_message_read(reply, "h", &fd) < 0)
                die(method, -EBADMSG, NULL);
        fd = dup(fd);
        sd_bus_message_unref(reply);
        return fd;
}

static void simple(sd_bus *bus, const char *path, const char *method, uint64_t flags) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, method, &e, NULL, "t", flags);
        if (r < 0)
                die(method, r, &e);
}

/* Reads until needle (or any byte, needle NULL) arrives; false on EOF or after 120 s. */
static int wait_for(int fd, const char *needle) {
        static char buf[1 << 16];
        size_t n = 0;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                if (poll(&p, 1, 120000) <= 0)
                        return 0;
                if (n + 4096 > sizeof buf)
                        n = 0;
                k = read(fd, buf + n, sizeof buf - n - 1);
                if (k <= 0)
                        return 0;
                n += (size_t) k;
                buf[n] = 0;
                if (!needle || strstr(buf, needle))
                        return 1;
        }
}

/* Reads until nothing came for 50 ms. */
static void quiet(int fd) {
        char buf[4096];

        while (poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 50) == 1)
                if (read(fd, buf, sizeof buf) <= 0)
                        die("console", -EIO, NULL);
}

static int read_n(int fd, char *buf, size_t n) {
        size_t got = 0;
        while (got < n) {
                ssize_t k = read(fd, buf + got, n - got);
                if (k <= 0)
                        return 0;
                got += (size_t) k;
        }
        return 1;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path, *xml;
        int n, fd, r;
        double *con, *con_call, *con_echo, *gfx, *shot, *ping, t;
        unsigned zero = 0;
        size_t png_size = 0;

        if (argc != 4) {
                fprintf(stderr, "usage: %s ADDRESS XMLFILE N\n", argv[0]);
                return 2;
        }
        n = atoi(argv[3]);
        con = calloc(n, sizeof(double));
        con_call = calloc(n, sizeof(double));
        con_echo = calloc(n, sizeof(double));
        gfx = calloc(n, sizeof(double));
        shot = calloc(n, sizeof(double));
        ping = calloc(n, sizeof(double));
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_negotiate_fds(bus, 1) < 0 || sd_bus_start(bus) < 0)
                die("connect", -EIO, NULL);
        xml = slurp(argv[2]);
        r = sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager", "DefineDomain", &e, &reply,
                               "st", xml, UINT64_C(0));
        if (r < 0)
                die("DefineDomain", r, &e);
        sd_bus_message_read(reply, "o", &path);
        path = strdup(path);
        sd_bus_message_unref(reply);

        simple(bus, path, "Start", 1);
        fd = call_fd(bus, path, "OpenConsole", "st", "", 0);
        simple(bus, path, "Resume", 0);
        if (!wait_for(fd, "VIRTBUS-GUEST-BOOTED"))
                die("the guest's boot", -ETIMEDOUT, NULL);
        /* The shell is up once it answers. */
        if (write(fd, "echo $((2*21))READY\n", 20) != 20 || !wait_for(fd, "42READY"))
                die("the guest's shell", -ETIMEDOUT, NULL);
        close(fd);

        /* Each round starts with a quiet guest: what it still prints for the round before (the rest of
         * its prompt, at the serial port's pace) must not count as the answer. */
        fd = call_fd(bus, path, "OpenConsole", "st", "", 1);
        for (int i = 0; i < n; i++) {
                double t1;
                quiet(fd);
                close(fd);
                t = now_ms();
                fd = call_fd(bus, path, "OpenConsole", "st", "", 1);
                t1 = now_ms();
                if (write(fd, "\n", 1) != 1 || !wait_for(fd, NULL))
                        die("console first byte", -EIO, NULL);
                con[i] = now_ms() - t;
                con_call[i] = t1 - t;
        }
        for (int i = 0; i < n; i++) {
                quiet(fd);
                t = now_ms();
                if (write(fd, "\n", 1) != 1 || !wait_for(fd, NULL))
                        die("console echo", -EIO, NULL);
                con_echo[i] = now_ms() - t;
        }
        close(fd);
        /* The floor of any call: a round trip to virtbusd through dbus-daemon that does nothing. */
        for (int i = 0; i < n; i++) {
                t = now_ms();
                r = sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.freedesktop.DBus.Peer", "Ping", &e,
                                       NULL, "");
                if (r < 0)
                        die("Ping", r, &e);
                ping[i] = now_ms() - t;
        }
        for (int i = 0; i < n; i++) {
                char greeting[12];
                t = now_ms();
                fd = call_fd(bus, path, "OpenGraphics", "ut", &zero, 0);
                if (!read_n(fd, greeting, 12) || memcmp(greeting, "RFB ", 4) != 0)
                        die("RFB greeting", -EIO, NULL);
                gfx[i] = now_ms() - t;
                close(fd);
        }
        for (int i = 0; i < n; i++) {
                const void *p;
                t = now_ms();
                r = sd_bus_call_method(bus, "org.virtbus1", path, DOMAIN_IFACE, "Screenshot", &e, &reply, "ut", 0U,
                                       UINT64_C(0));
                if (r < 0)
                        die("Screenshot", r, &e);
                if (sd_bus_message_read_array(reply, 'y', &p, &png_size) < 0)
                        die("Screenshot", -EBADMSG, NULL);
                shot[i] = now_ms() - t;
                sd_bus_message_unref(reply);
        }
        simple(bus, path, "Destroy", 0);
        simple(bus, path, "Undefine", 0);
        report("console", con, n);
        report("console_call", con_call, n);
        report("console_echo", con_echo, n);
        report("bus_floor", ping, n);
        report("graphics", gfx, n);
        report("screenshot", shot, n);
        printf("png_bytes=%zu\n", png_size);
        return 0;
}
