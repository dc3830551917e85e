/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/stall: root's GetXMLDesc latency while unprivileged callers send maximal definitions.
 *   stall --address ADDR --domain PATH --callers N --uid UID --bytes B --seconds S
 * Forks N children that drop to UID and call DefineDomain with a definition of about B bytes (disks) in
 * a loop; the parent (root) calls GetXMLDesc on PATH one at a time for S seconds and prints
 * "calls= p50_us= p99_us= max_us= refused=" (refused: the children's answers, all errors expected). */
#define _GNU_SOURCE
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static char *big_domain(const char *name, size_t bytes, unsigned *ret_disks) {
        size_t size = bytes + 4096, len = 0;
        char *x = malloc(size);
        unsigned i;

        if (!x)
                exit(1);
        len += (size_t) snprintf(x, size,
                                 "<domain type='test'>\n  <name>%s</name>\n  <memory unit='MiB'>256</memory>\n"
                                 "  <vcpu>1</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n", name);
        for (i = 0; len + 512 < bytes; i++) {
                char dev[8] = "vd";
                unsigned n = i;

                for (size_t k = 2; k < 6; k++, n /= 26) {
                        dev[k] = (char) ('a' + n % 26);
                        if (n < 26) {
                                dev[k + 1] = 0;
                                break;
                        }
                }
                len += (size_t) snprintf(x + len, size - len,
                                         "    <disk type='file' device='disk'><source file='/var/lib/stall/%u.img'/>"
                                         "<target dev='%s' bus='virtio'/></disk>\n", i, dev);
        }
        snprintf(x + len, size - len, "  </devices>\n</domain>\n");
        *ret_disks = i;
        return x;
}

static sd_bus *connect_to(const char *address) {
        sd_bus *bus = NULL;

        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_start(bus) < 0) {
                fprintf(stderr, "stall: cannot connect to %s\n", address);
                exit(1);
        }
        return bus;
}

/* A child: as uid, DefineDomain in a loop until killed; writes how many answers it got to fd. */
static void caller(const char *address, uid_t uid, const char *xml, int fd) {
        sd_bus *bus;
        unsigned answers = 0;

        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
                perror("stall: setresuid");
                exit(1);
        }
        bus = connect_to(address);
        for (;;) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;

                (void) sd_bus_call_method(bus, "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager", "DefineDomain",
                                          &e, &reply, "st", xml, UINT64_C(0));
                answers++;
                if (write(fd, &answers, sizeof answers) < 0)
                        exit(0);
                sd_bus_error_free(&e);
                sd_bus_message_unref(reply);
        }
}

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        const char *address = NULL, *path = NULL;
        unsigned n_callers = 4, seconds = 10, disks;
        uid_t uid = 65534;
        size_t bytes = 4U * 1024U * 1024U - 1024U;
        static const struct option opts[] = {
                { "address", required_argument, NULL, 'a' }, { "domain", required_argument, NULL, 'd' },
                { "callers", required_argument, NULL, 'n' }, { "uid", required_argument, NULL, 'u' },
                { "bytes", required_argument, NULL, 'b' },   { "seconds", required_argument, NULL, 's' },
                {},
        };
        pid_t pids[64];
        int c, fds[2];
        char *xml;
        sd_bus *bus;
        uint64_t *lat, end, total_answers = 0;
        size_t n = 0, cap = 1 << 20;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 'd': path = optarg; break;
                case 'n': n_callers = (unsigned) atoi(optarg); break;
                case 'u': uid = (uid_t) atoi(optarg); break;
                case 'b': bytes = (size_t) atol(optarg); break;
                case 's': seconds = (unsigned) atoi(optarg); break;
                default: return 2;
                }
        if (!address || !path || n_callers > 64)
                return 2;
        xml = big_domain("stall-bench", bytes, &disks);
        fprintf(stderr, "stall: %u callers, definitions of %zu bytes (%u disks)\n", n_callers, strlen(xml), disks);
        if (pipe(fds) < 0)
                return 1;
        for (unsigned i = 0; i < n_callers; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        close(fds[0]);
                        caller(address, uid, xml, fds[1]);
                }
        }
        close(fds[1]);
        bus = connect_to(address);
        lat = malloc(cap * sizeof *lat);
        usleep(300 * 1000); /* the callers get going */
        end = now_us() + (uint64_t) seconds * 1000000;
        while (now_us() < end && n < cap) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                uint64_t t = now_us();

                if (sd_bus_call_method(bus, "org.virtbus1", path, "org.virtbus1.Domain", "GetXMLDesc", &e, &reply, "t",
                                       UINT64_C(0)) < 0) {
                        fprintf(stderr, "stall: GetXMLDesc failed: %s\n", e.message);
                        return 1;
                }
                lat[n++] = now_us() - t;
                sd_bus_message_unref(reply);
                usleep(2000);
        }
        for (unsigned i = 0; i < n_callers; i++)
                kill(pids[i], SIGKILL);
        for (unsigned i = 0; i < n_callers; i++)
                waitpid(pids[i], NULL, 0);
        for (unsigned a; read(fds[0], &a, sizeof a) == (ssize_t) sizeof a;)
                total_answers++;
        qsort(lat, n, sizeof *lat, cmp);
        printf("calls=%zu p50_us=%llu p99_us=%llu max_us=%llu refused=%llu\n", n,
               (unsigned long long) lat[n / 2], (unsigned long long) lat[n * 99 / 100],
               (unsigned long long) lat[n - 1], (unsigned long long) total_answers);
        return 0;
}
