/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl stats: GetStats of the named domains or GetAllDomainStats, as a table (once, or redrawn
 * every second on a terminal) or one JSON document. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/virtbusctl.h"

typedef struct DomainStats {
        char *name, *path;
        Props stats;
} DomainStats;

static void stats_free(DomainStats *d, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(d[i].name);
                free(d[i].path);
                props_done(&d[i].stats);
        }
        free(d);
}

static int stats_collect(sd_bus *bus, int argc, char **argv, DomainStats **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *all = NULL;
        DomainStats *d = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;

        if (argc == 0) {
                r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "GetAllDomainStats", &all, "tt", UINT64_C(0),
                             UINT64_C(0));
                if (r < 0)
                        return r;
                r = sd_bus_message_enter_container(all, 'a', "(oa{sv})");
        }
        for (int i = 0; r >= 0; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *path;

                if (argc == 0) {
                        r = sd_bus_message_enter_container(all, 'r', "oa{sv}");
                        if (r <= 0)
                                break;
                        r = sd_bus_message_read(all, "o", &path);
                } else {
                        _cleanup_free_ char *p = NULL;

                        if (i >= argc)
                                break;
                        r = ctl_lookup(bus, &ctl_kind_domain, argv[i], &p);
                        if (r < 0)
                                break;
                        r = ctl_call(bus, p, CTL_DOMAIN, "GetStats", &reply, "tt", UINT64_C(0), UINT64_C(0));
                        if (r < 0)
                                break;
                        path = p;
                        if (GREEDY_REALLOC(d, allocated, n + 1))
                                d[n] = (DomainStats) { .path = strdup(path) };
                }
                if (r < 0 || !GREEDY_REALLOC(d, allocated, n + 1)) {
                        r = r < 0 ? r : -1;
                        break;
                }
                if (argc == 0)
                        d[n] = (DomainStats) { .path = strdup(path) };
                n++;
                r = props_read(argc == 0 ? all : reply, &d[n - 1].stats);
                if (r >= 0 && argc == 0)
                        r = sd_bus_message_exit_container(all);
                if (r >= 0)
                        r = ctl_get_string(bus, d[n - 1].path, CTL_DOMAIN, "Name", &d[n - 1].name);
        }
        if (r < 0) {
                stats_free(d, n);
                return r < -CTL_EXIT_DENIED ? -CTL_EXIT_FAILED : r;
        }
        *ret = d;
        *ret_n = n;
        return 0;
}

static void stats_json(const DomainStats *d, size_t n) {
        Json j;

        json_begin(&j, stdout);
        json_array_open(&j);
        for (size_t i = 0; i < n; i++) {
                json_object_open(&j);
                json_key(&j, "name");
                json_string(&j, d[i].name);
                json_key(&j, "path");
                json_string(&j, d[i].path);
                json_key(&j, "stats");
                json_object_open(&j);
                props_json(&d[i].stats, &j);
                json_object_close(&j);
                json_object_close(&j);
        }
        json_array_close(&j);
        json_end(&j);
}

static const char *state_name(const char *number) {
        static const char *const names[] = { "nostate", "running", "blocked", "paused", "shutdown", "shutoff",
                                             "crashed", "pmsuspended" };
        unsigned long v = strtoul(number, NULL, 10);
        return v < ELEMENTSOF(names) ? names[v] : number;
}

static int stats_table(const DomainStats *d, size_t n) {
        _cleanup_(table_freep) Table *t = table_new("NAME", "STATE", "CPU-TIME", "VCPUS", "MEMORY", "NETS",
                                                    "DISKS", NULL);

        for (size_t i = 0; t && i < n; i++) {
                const Props *p = &d[i].stats;
                char cpu[32] = "-", mem[32] = "-";
                const char *x;

                if (!streq(x = props_text(p, "cpu.time"), "-"))
                        snprintf(cpu, sizeof cpu, "%.2fs", (double) strtoull(x, NULL, 10) / 1e9);
                if (!streq(x = props_text(p, "balloon.current"), "-"))
                        format_bytes(strtoull(x, NULL, 10) * 1024, mem, sizeof mem);
                if (table_add_row(t, d[i].name, state_name(props_text(p, "state.state")), cpu,
                                  props_text(p, "vcpu.current"), mem, props_text(p, "net.count"),
                                  props_text(p, "block.count")) < 0)
                        return -CTL_EXIT_FAILED;
        }
        if (!t)
                return -CTL_EXIT_FAILED;
        table_print(t, stdout);
        return 0;
}

int verb_stats(sd_bus *bus, const Verb *v, int argc, char **argv) {
        bool live = !arg.once && !arg.json && isatty(STDOUT_FILENO);

        for (;;) {
                DomainStats *d = NULL;
                size_t n = 0;
                int r;

                r = stats_collect(bus, argc, argv, &d, &n);
                if (r < 0)
                        return r;
                if (live)
                        fputs("\033[H\033[2J", stdout); /* top-like: redraw from the top */
                if (arg.json)
                        stats_json(d, n);
                else
                        r = stats_table(d, n);
                stats_free(d, n);
                fflush(stdout);
                if (r < 0 || !live)
                        return r;
                sleep(1);
        }
}
