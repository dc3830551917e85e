/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusd: arguments, sd-event, bus connection, name request, run loop. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "bus/bus-error.h"
#include "bus/bus-parse.h"
#include "bus/bus-server.h"
#include "config.h"
#include "core/manager.h"
#include "util/log.h"
#include "util/loop-watch.h"

typedef struct Args {
        ManagerMode mode;
        const char *bus_address;
        const char *driver;
        const char *config_dir;
        const char *state_dir;
        const char *runtime_dir;
        const char *sysfs_root;
        uint64_t device_removal_timeout_usec;
        const char *network_backend;
        uint64_t slow_dispatch_usec;
        uint64_t document_rate;
        /* Storage for defaults computed at start-up. */
        char *owned[3];
} Args;

static void args_done(Args *a) {
        for (size_t i = 0; i < ELEMENTSOF(a->owned); i++)
                free(a->owned[i]);
}

static void help(void) {
        printf("Usage: virtbusd [OPTIONS...]\n\n"
               "Manage virtual machines, networks and host devices over D-Bus (org.virtbus1).\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "     --system             Serve on the system bus, authorizing through polkit (default)\n"
               "     --user               Serve on the session bus, for the calling user only\n"
               "     --bus-address=ADDR   Connect to this bus instead (tests, private buses)\n"
               "     --driver=NAME        Hypervisor backend: test (simulated) or qemu\n"
               "     --config-dir=DIR     Persistent definitions (default /etc/virtbus)\n"
               "     --state-dir=DIR      Persistent state (default /var/lib/virtbus)\n"
               "     --runtime-dir=DIR    Runtime state (default /run/virtbus)\n"
               "     --sysfs-root=DIR     Read host devices below DIR instead of /sys\n"
               "     --network-backend=NAME\n"
               "                          Virtual networks: host (bridges, nftables, dnsmasq) or\n"
               "                          simulated (state only); default: simulated with the test\n"
               "                          driver, host otherwise\n"
               "     --device-removal-timeout=SEC\n"
               "                          How long DetachDevice waits for a guest (default 10)\n"
               "     --slow-dispatch=MSEC Warn when one event-loop dispatch takes longer (default 50,\n"
               "                          0: never)\n"
               "     --document-rate=KIB  Documents (definitions, devices) of each caller other than\n"
               "                          root go on at this many KiB a second after a first one of\n"
               "                          4 MiB; the excess waits (default 1024, 0: no limit)\n"
               "     --log-level=LEVEL    emerg, alert, crit, err, warning, notice, info or debug\n");
}

enum {
        ARG_VERSION = 0x100,
        ARG_SYSTEM,
        ARG_USER,
        ARG_BUS_ADDRESS,
        ARG_DRIVER,
        ARG_CONFIG_DIR,
        ARG_STATE_DIR,
        ARG_RUNTIME_DIR,
        ARG_SYSFS_ROOT,
        ARG_NETWORK_BACKEND,
        ARG_DEVICE_REMOVAL_TIMEOUT,
        ARG_LOG_LEVEL,
        ARG_SLOW_DISPATCH,
        ARG_DOCUMENT_RATE,
};

static int parse_argv(int argc, char *argv[], Args *a) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "driver", required_argument, NULL, ARG_DRIVER },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "sysfs-root", required_argument, NULL, ARG_SYSFS_ROOT },
                { "network-backend", required_argument, NULL, ARG_NETWORK_BACKEND },
                { "device-removal-timeout", required_argument, NULL, ARG_DEVICE_REMOVAL_TIMEOUT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "slow-dispatch", required_argument, NULL, ARG_SLOW_DISPATCH },
                { "document-rate", required_argument, NULL, ARG_DOCUMENT_RATE },
                {},
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("virtbusd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_SYSTEM:
                        a->mode = MANAGER_SYSTEM;
                        break;
                case ARG_USER:
                        a->mode = MANAGER_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        a->bus_address = optarg;
                        break;
                case ARG_DRIVER:
                        if (!vb_driver_ops_find(optarg)) {
                                log_error("Unknown driver '%s' (expected 'test' or 'qemu').", optarg);
                                return -EINVAL;
                        }
                        a->driver = optarg;
                        break;
                case ARG_CONFIG_DIR:
                        a->config_dir = optarg;
                        break;
                case ARG_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        a->runtime_dir = optarg;
                        break;
                case ARG_SYSFS_ROOT:
                        a->sysfs_root = optarg;
                        break;
                case ARG_NETWORK_BACKEND:
                        if (!streq(optarg, "host") && !streq(optarg, "simulated")) {
                                log_error("Unknown network backend '%s' (expected 'host' or 'simulated').", optarg);
                                return -EINVAL;
                        }
                        a->network_backend = optarg;
                        break;
                case ARG_DEVICE_REMOVAL_TIMEOUT: {
                        char *end;
                        double sec = strtod(optarg, &end);

                        if (end == optarg || *end || !(sec > 0 && sec <= 3600)) {
                                log_error("Invalid device removal timeout '%s' (expected seconds, up to 3600).", optarg);
                                return -EINVAL;
                        }
                        a->device_removal_timeout_usec = (uint64_t) (sec * 1e6);
                        break;
                }
                case ARG_SLOW_DISPATCH: {
                        char *end;
                        double ms = strtod(optarg, &end);

                        if (end == optarg || *end || !(ms >= 0 && ms <= 60000)) {
                                log_error("Invalid slow dispatch threshold '%s' (expected milliseconds, up to 60000).",
                                          optarg);
                                return -EINVAL;
                        }
                        a->slow_dispatch_usec = (uint64_t) (ms * 1000);
                        break;
                }
                case ARG_DOCUMENT_RATE: {
                        char *end;
                        unsigned long long kib;

                        errno = 0;
                        kib = strtoull(optarg, &end, 10);
                        if (end == optarg || *end || errno != 0 || optarg[0] == '-' || kib > 16ULL * 1024 * 1024) {
                                log_error("Invalid document rate '%s' (expected KiB a second, up to 16777216).",
                                          optarg);
                                return -EINVAL;
                        }
                        a->document_rate = kib * 1024;
                        break;
                }
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                log_error("Invalid log level '%s'.", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(level);
                        break;
                case '?':
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'; see --help.", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int xdg_dir(const char *env, const char *fallback_below_home, char **ret) {
        const char *e = getenv(env), *home;

        if (!isempty(e))
                return asprintf(ret, "%s/virtbus", e) < 0 ? -ENOMEM : 0;
        home = getenv("HOME");
        if (isempty(home) || !fallback_below_home) {
                log_error("Neither $%s nor $HOME is set; pass the directory explicitly.", env);
                return -EINVAL;
        }
        return asprintf(ret, "%s/%s/virtbus", home, fallback_below_home) < 0 ? -ENOMEM : 0;
}

static int fill_defaults(Args *a) {
        int r;

        if (!a->driver)
                a->driver = "test";
        if (a->mode == MANAGER_SYSTEM) {
                a->config_dir = a->config_dir ?: VB_SYSCONFDIR;
                a->state_dir = a->state_dir ?: VB_LOCALSTATEDIR;
                a->runtime_dir = a->runtime_dir ?: "/run/virtbus";
                return 0;
        }
        if (!a->config_dir) {
                r = xdg_dir("XDG_CONFIG_HOME", ".config", &a->owned[0]);
                if (r < 0)
                        return r;
                a->config_dir = a->owned[0];
        }
        if (!a->state_dir) {
                r = xdg_dir("XDG_STATE_HOME", ".local/state", &a->owned[1]);
                if (r < 0)
                        return r;
                a->state_dir = a->owned[1];
        }
        if (!a->runtime_dir) {
                r = xdg_dir("XDG_RUNTIME_DIR", NULL, &a->owned[2]);
                if (r < 0)
                        return r;
                a->runtime_dir = a->owned[2];
        }
        return 0;
}

static int connect_bus(const Args *a, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (a->bus_address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, a->bus_address);
                if (r < 0)
                        return log_error_errno(r, "Invalid bus address '%s': %m", a->bus_address);
                r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_negotiate_creds(bus, true, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else if (a->mode == MANAGER_USER)
                r = sd_bus_open_user(&bus);
        else
                r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m",
                                       a->bus_address ?: a->mode == MANAGER_USER ? "session" : "system");
        *ret = TAKE_PTR(bus);
        return 0;
}

static int request_name(sd_bus *bus) {
        int r = sd_bus_request_name(bus, VB_BUS_NAME, 0);

        if (r == -EEXIST || r == -EALREADY)
                return log_error_errno(r, "The name %s is already taken on this bus: is another virtbusd "
                                       "running?", VB_BUS_NAME);
        if (r == -EACCES || r == -EPERM)
                return log_error_errno(r, "The bus policy does not allow this user to own %s (only root may, "
                                       "see org.virtbus1.conf).", VB_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to request the name %s: %m", VB_BUS_NAME);
        return 0;
}

/* Changes running at SIGTERM (network starts and stops, host device changes, storage pools' Build, Start,
 * Stop and Refresh, in their threads) get
 * STOP_WAIT_USEC to finish; then the helper processes they wait for are killed, so that they fail, undo
 * their steps and are answered; after STOP_CUT_WAIT_USEC more virtbusd exits whatever still runs. */
#define STOP_WAIT_USEC (3ULL * 1000ULL * 1000ULL)
#define STOP_CUT_WAIT_USEC (5ULL * 1000ULL * 1000ULL)
#define STOP_TICK_USEC (20ULL * 1000ULL)

typedef struct Stop {
        Manager *manager;
        sd_event_source *tick;
        uint64_t since;
        bool cut;
} Stop;

static void stop_cut(Stop *st, const char *why) {
        if (st->cut)
                return;
        log_notice("%u change(s) of networks, host devices or storage pools still running %s: killing the helper "
                   "processes they wait for.", manager_stop_pending(st->manager), why);
        manager_stop_cut(st->manager);
        st->cut = true;
}

static int on_stop_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Stop *st = userdata;
        sd_event *event = sd_event_source_get_event(s);

        if (manager_stop_pending(st->manager) == 0)
                return sd_event_exit(event, 0);
        if (usec >= st->since + STOP_WAIT_USEC)
                stop_cut(st, "after 3 s");
        if (usec >= st->since + STOP_WAIT_USEC + STOP_CUT_WAIT_USEC) {
                log_warning("%u change(s) of networks, host devices or storage pools still running: exiting without them.",
                            manager_stop_pending(st->manager));
                manager_stop_abandon(st->manager);
                return sd_event_exit(event, 0);
        }
        (void) sd_event_source_set_time(s, usec + STOP_TICK_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Stop *st = userdata;
        sd_event *event = sd_event_source_get_event(s);
        int r;

        if (st->tick) { /* again: no more waiting */
                stop_cut(st, "at a second signal");
                return 0;
        }
        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        if (!st->manager)
                return sd_event_exit(event, 0);
        manager_stop_begin(st->manager);
        if (manager_stop_pending(st->manager) == 0)
                return sd_event_exit(event, 0);
        log_info("Waiting for %u change(s) of networks, host devices or storage pools to finish.", manager_stop_pending(st->manager));
        (void) sd_event_now(event, CLOCK_MONOTONIC, &st->since);
        r = sd_event_add_time(event, &st->tick, CLOCK_MONOTONIC, st->since + STOP_TICK_USEC, 1000, on_stop_tick, st);
        if (r < 0) {
                log_error_errno(r, "Failed to wait for the changes running, exiting at once: %m");
                return sd_event_exit(event, 0);
        }
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *manager = NULL;
        _cleanup_(bus_server_freep) BusServer *server = NULL;
        Stop stop = {};
        _cleanup_(args_done) Args a = { .mode = MANAGER_SYSTEM, .slow_dispatch_usec = LOOP_WATCH_DEFAULT_USEC,
                                      .document_rate = BUS_PARSE_RATE_DEFAULT };
        VbError e = VB_ERROR_NULL;
        ManagerConfig cfg;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv, &a);
        if (r <= 0)
                return r;
        r = fill_defaults(&a);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, &stop);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_signal, &stop);

        cfg = (ManagerConfig) {
                .mode = a.mode,
                .driver = a.driver,
                .config_dir = a.config_dir,
                .state_dir = a.state_dir,
                .runtime_dir = a.runtime_dir,
                .sysfs_root = a.sysfs_root,
                .device_removal_timeout_usec = a.device_removal_timeout_usec,
                .network_backend = a.network_backend,
        };
        r = manager_new(&cfg, event, &manager, &e);
        if (r < 0) {
                log_error_errno(r, "Failed to start: %s", e.message ?: strerror(-r));
                vb_error_free(&e);
                return r;
        }

        stop.manager = manager;

        r = connect_bus(&a, &bus);
        if (r < 0)
                return r;
        /* The name first: a second virtbusd must fail before it starts anything. Calls that arrive
         * meanwhile wait in the queue until the loop runs, after loading. */
        r = request_name(bus);
        if (r < 0)
                return r;
        /* Loading announces nothing: nobody can have seen these domains go missing. */
        r = manager_load(manager, &e);
        if (r < 0) {
                log_error_errno(r, "Failed to load: %s", e.message ?: strerror(-r));
                vb_error_free(&e);
                return r;
        }
        r = bus_server_new(bus, manager, &server);
        if (r < 0)
                return r;
        bus_parse_set_rate(server->parse, a.document_rate);
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return r;

        log_info("virtbusd %s ready on the %s bus with the '%s' driver.", PACKAGE_VERSION,
                 a.bus_address ? "given" : a.mode == MANAGER_USER ? "session" : "system", a.driver);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s with the '%s' driver.", VB_BUS_NAME, a.driver);

        r = loop_watch_run(event, a.slow_dispatch_usec);
        stop.tick = sd_event_source_disable_unref(stop.tick);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
