/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bench-only: N concurrent clients, each its own bus connection, run a mix of reads and writes against
 * virtbusd (test driver) for a bounded time, one call in flight each, all on one event loop:
 *   reads:  GetXMLDesc of a shared domain, ListDomains, GetAll of the domain's properties;
 *   writes: DefineDomain of the client's own domain (a new memory size each time), Start and Destroy of
 *           it, Autostart on and off.
 * Prints the number of calls, errors (with the first error's name), and latency percentiles per kind.
 *
 *   load --address ADDR --clients N --seconds S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define M "org.virtbus1", "/org/virtbus1", "org.virtbus1.Manager"
#define DOMAIN_IFACE "org.virtbus1.Domain"
#define MAX_SAMPLES 2000000

typedef enum Kind { K_READ, K_WRITE, _K_MAX } Kind;

typedef struct Client {
        unsigned index;
        sd_bus *bus;
        char *own_path;
        unsigned step;
        uint64_t sent_ns;
        Kind kind;
} Client;

static const char *address;
static const char *shared_path;
static uint64_t deadline_ns;
static uint64_t *samples[_K_MAX];
static size_t n_samples[_K_MAX];
static unsigned long errors;
static char first_error[256];
static unsigned running;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static char *domain_xml(unsigned client, unsigned mib) {
        char *x;
        if (asprintf(&x, "<domain type='test'><name>load-%u</name><uuid>10ad0000-0000-4000-8000-%012x</uuid>"
                         "<memory unit='MiB'>%u</memory>"
                         "<os><type>hvm</type></os><devices><disk type='file' device='disk'>"
                         "<source file='/var/lib/load-%u.img'/><target dev='vda' bus='virtio'/></disk>"
                         "</devices></domain>",
                     client, client, mib, client) < 0)
                abort();
        return x;
}

static int send_next(Client *c);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Client *c = userdata;
        uint64_t t = now_ns() - c->sent_ns;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                /* Start of a running or Destroy of a stopped domain can't happen: one call at a time. */
                if (errors++ == 0)
                        snprintf(first_error, sizeof first_error, "%s: %s", e->name, e->message);
        } else if (c->step == 1 && !c->own_path) {
                const char *p;
                if (sd_bus_message_read(m, "o", &p) > 0)
                        c->own_path = strdup(p);
        }
        if (n_samples[c->kind] < MAX_SAMPLES)
                samples[c->kind][n_samples[c->kind]++] = t;
        /* A client leaves its own domain shut off: a started one is destroyed first. */
        if (now_ns() >= deadline_ns && c->step % 8 != 5) {
                running--;
                if (running == 0)
                        sd_event_exit(sd_bus_get_event(c->bus), 0);
                return 0;
        }
        return send_next(c);
}

static int send_next(Client *c) {
        sd_bus_message *m = NULL;
        unsigned s = c->step++ % 8;
        int r;

        c->sent_ns = now_ns();
        switch (s) {
        case 0:
        case 1: {
                char *x = domain_xml(c->index, 64 + (c->step % 64));
                c->kind = K_WRITE;
                r = sd_bus_message_new_method_call(c->bus, &m, M, "DefineDomain");
                if (r >= 0)
                        r = sd_bus_message_append(m, "st", x, UINT64_C(0));
                free(x);
                break;
        }
        case 2:
                c->kind = K_READ;
                r = sd_bus_message_new_method_call(c->bus, &m, "org.virtbus1", shared_path, DOMAIN_IFACE, "GetXMLDesc");
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", UINT64_C(0));
                break;
        case 3:
                c->kind = K_READ;
                r = sd_bus_message_new_method_call(c->bus, &m, M, "ListDomains");
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", UINT64_C(0));
                break;
        case 4:
        case 5:
                c->kind = K_WRITE;
                r = sd_bus_message_new_method_call(c->bus, &m, "org.virtbus1", c->own_path, DOMAIN_IFACE,
                                                   s == 4 ? "Start" : "Destroy");
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", UINT64_C(0));
                break;
        case 6:
                c->kind = K_READ;
                r = sd_bus_message_new_method_call(c->bus, &m, "org.virtbus1", shared_path,
                                                   "org.freedesktop.DBus.Properties", "GetAll");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", DOMAIN_IFACE);
                break;
        default:
                c->kind = K_WRITE;
                r = sd_bus_message_new_method_call(c->bus, &m, "org.virtbus1", c->own_path,
                                                   "org.freedesktop.DBus.Properties", "Set");
                if (r >= 0)
                        r = sd_bus_message_append(m, "ssv", DOMAIN_IFACE, "Autostart", "b", (int) (c->step / 8 % 2));
                break;
        }
        if (r >= 0)
                r = sd_bus_call_async(c->bus, NULL, m, on_reply, c, 30 * 1000000ULL);
        sd_bus_message_unref(m);
        if (r < 0) {
                fprintf(stderr, "load: client %u could not call: %s\n", c->index, strerror(-r));
                exit(1);
        }
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p) {
        size_t i;
        if (n == 0)
                return 0;
        i = (size_t) (p * (double) (n - 1));
        return (double) v[i] / 1e6;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "shared", required_argument, NULL, 'd' },
                {},
        };
        unsigned n_clients = 64, seconds = 20;
        sd_event *event = NULL;
        Client *clients;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 'c': n_clients = (unsigned) atoi(optarg); break;
                case 's': seconds = (unsigned) atoi(optarg); break;
                case 'd': shared_path = optarg; break;
                default: return 2;
                }
        if (!address || !shared_path) {
                fprintf(stderr, "usage: load --address ADDR --shared DOMAIN_PATH [--clients N] [--seconds S]\n");
                return 2;
        }
        for (Kind k = 0; k < _K_MAX; k++)
                samples[k] = calloc(MAX_SAMPLES, sizeof(uint64_t));
        clients = calloc(n_clients, sizeof(Client));
        if (sd_event_default(&event) < 0)
                return 1;
        for (unsigned i = 0; i < n_clients; i++) {
                Client *cl = &clients[i];
                cl->index = i;
                if ((r = sd_bus_new(&cl->bus)) < 0 || (r = sd_bus_set_address(cl->bus, address)) < 0 ||
                    (r = sd_bus_set_bus_client(cl->bus, 1)) < 0 || (r = sd_bus_start(cl->bus)) < 0 ||
                    (r = sd_bus_attach_event(cl->bus, event, 0)) < 0) {
                        fprintf(stderr, "load: client %u cannot connect: %s\n", i, strerror(-r));
                        return 1;
                }
        }
        deadline_ns = now_ns() + (uint64_t) seconds * 1000000000ULL;
        running = n_clients;
        for (unsigned i = 0; i < n_clients; i++)
                send_next(&clients[i]);
        r = sd_event_loop(event);
        for (Kind k = 0; k < _K_MAX; k++) {
                qsort(samples[k], n_samples[k], sizeof(uint64_t), cmp_u64);
                printf("load kind=%s calls=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", k == K_READ ? "read" : "write",
                       n_samples[k], pct_ms(samples[k], n_samples[k], 0.5), pct_ms(samples[k], n_samples[k], 0.99),
                       pct_ms(samples[k], n_samples[k], 1.0));
        }
        printf("load clients=%u seconds=%u errors=%lu%s%s\n", n_clients, seconds, errors, errors ? " first=" : "",
               errors ? first_error : "");
        return errors ? 1 : 0;
}
