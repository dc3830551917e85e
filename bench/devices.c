/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/devices: AttachDevice + DetachDevice pairs per second against a virtbusd with the test driver.
 *
 *   devices --address ADDR [--pairs N] [--inflight K]
 *
 * Defines domain "bench-devices" (and starts it for the live rounds), then, for the saved definition
 * (flags 2) and for the running domain (flags 1): N pairs one at a time, and N pairs with K in flight
 * (K NICs with different MACs, each attached and detached again as soon as the previous call of its
 * chain returns). Prints one key=value line per measure. A live detach waits for the simulated guest,
 * which answers after 20 ms: one pair at a time is bounded by that, not by virtbusd. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#define SERVICE "org.virtbus1"
#define MANAGER_PATH "/org/virtbus1"
#define DOMAIN_INTERFACE "org.virtbus1.Domain"

static const char *address;
static char *domain_path;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static _Noreturn void die(const char *what, int r, const sd_bus_error *e) {
        fprintf(stderr, "devices: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        exit(1);
}

static char *nic_xml(unsigned i) {
        char *x;
        if (asprintf(&x, "<interface type='network'><mac address='52:54:00:be:%02x:%02x'/><source network='default'/>"
                         "<model type='virtio'/></interface>", (i >> 8) & 0xff, i & 0xff) < 0)
                die("asprintf", -ENOMEM, NULL);
        return x;
}

static void call(sd_bus *bus, const char *path, const char *iface, const char *member, const char *types,
                 const char *s, uint64_t t, sd_bus_message **ret) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SERVICE, path, iface, member, &e, ret, types, s, t);
        if (r < 0)
                die(member, r, &e);
        sd_bus_error_free(&e);
}

static void setup_domain(sd_bus *bus) {
        static const char xml[] = "<domain type='test'><name>bench-devices</name><memory unit='MiB'>64</memory>"
                                  "<os><type>hvm</type></os><devices/></domain>";
        sd_bus_message *reply = NULL;
        const char *p;

        call(bus, MANAGER_PATH, "org.virtbus1.Manager", "DefineDomain", "st", xml, 0, &reply);
        if (sd_bus_message_read(reply, "o", &p) < 0)
                die("DefineDomain reply", -EBADMSG, NULL);
        domain_path = strdup(p);
        sd_bus_message_unref(reply);
}

static double pairs_sequential(sd_bus *bus, uint64_t flags, unsigned n) {
        char *xml = nic_xml(0);
        uint64_t t0 = now_ns();

        for (unsigned i = 0; i < n; i++) {
                call(bus, domain_path, DOMAIN_INTERFACE, "AttachDevice", "st", xml, flags, NULL);
                call(bus, domain_path, DOMAIN_INTERFACE, "DetachDevice", "st", xml, flags, NULL);
        }
        free(xml);
        return n / ((now_ns() - t0) / 1e9);
}

typedef struct Chain {
        sd_bus *bus;
        char *xml;
        uint64_t flags;
        unsigned left;   /* pairs still to start */
        bool attached;   /* the call in flight is a detach */
        unsigned *done;  /* pairs completed, all chains */
} Chain;

static int chain_next(Chain *c);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Chain *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e)
                die(c->attached ? "DetachDevice" : "AttachDevice", -EIO, e);
        if (c->attached)
                (*c->done)++;
        c->attached = !c->attached;
        return chain_next(c);
}

static int chain_next(Chain *c) {
        int r;

        if (!c->attached) {
                if (c->left == 0)
                        return 0;
                c->left--;
        }
        r = sd_bus_call_method_async(c->bus, NULL, SERVICE, domain_path, DOMAIN_INTERFACE,
                                     c->attached ? "DetachDevice" : "AttachDevice", on_reply, c, "st", c->xml, c->flags);
        if (r < 0)
                die("sd_bus_call_method_async", r, NULL);
        return 0;
}

static double pairs_inflight(sd_bus *bus, uint64_t flags, unsigned n, unsigned k) {
        Chain *chains = calloc(k, sizeof(Chain));
        unsigned done = 0;
        uint64_t t0;

        for (unsigned i = 0; i < k; i++)
                chains[i] = (Chain) { .bus = bus, .xml = nic_xml(i + 1), .flags = flags, .left = n / k, .done = &done };
        t0 = now_ns();
        for (unsigned i = 0; i < k; i++)
                chain_next(&chains[i]);
        while (done < (n / k) * k) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        die("sd_bus_process", r, NULL);
                if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0)
                        die("sd_bus_wait", r, NULL);
        }
        for (unsigned i = 0; i < k; i++)
                free(chains[i].xml);
        free(chains);
        return done / ((now_ns() - t0) / 1e9);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "pairs", required_argument, NULL, 'n' },
                { "inflight", required_argument, NULL, 'k' },
                {},
        };
        unsigned n = 1000, k = 16, n_live;
        sd_bus *bus = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        address = optarg;
                        break;
                case 'n':
                        n = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'k':
                        k = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (!address || n == 0 || k == 0) {
                fprintf(stderr, "usage: devices --address ADDR [--pairs N] [--inflight K]\n");
                return 2;
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("connect", r, NULL);

        setup_domain(bus);
        /* warm-up */
        pairs_sequential(bus, 2, 20);
        printf("config_sequential_pairs_per_s=%.0f\n", pairs_sequential(bus, 2, n));
        printf("config_inflight%u_pairs_per_s=%.0f\n", k, pairs_inflight(bus, 2, n, k));
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                r = sd_bus_call_method(bus, SERVICE, domain_path, DOMAIN_INTERFACE, "Start", &e, NULL, "t", UINT64_C(0));
                if (r < 0)
                        die("Start", r, &e);
        }
        /* One at a time, each detach waits ~20 ms for the simulated guest: fewer pairs suffice. */
        n_live = n / 10 ?: 1;
        printf("live_sequential_pairs_per_s=%.1f\n", pairs_sequential(bus, 1, n_live));
        printf("live_inflight%u_pairs_per_s=%.0f\n", k, pairs_inflight(bus, 1, n, k));
        printf("live_config_inflight%u_pairs_per_s=%.0f\n", k, pairs_inflight(bus, 3, n, k));
        sd_bus_flush_close_unref(bus);
        free(domain_path);
        return 0;
}
