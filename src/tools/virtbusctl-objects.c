/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl's verbs for networks, node devices, storage pools and volumes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/virtbusctl.h"

/* Lists the objects a Manager method returns (with its arguments), for --names/--json or a table built
 * by row(). */
typedef int (*RowFunc)(Table *t, const Props *p);

static int list_objects(sd_bus *bus, sd_bus_message *reply, const char *interface, const char *what, Table *t,
                        RowFunc row) {
        char **paths = NULL;
        Props *all = NULL;
        size_t n = 0;
        int r;

        r = ctl_read_paths(reply, &paths);
        if (r >= 0)
                r = ctl_props_of(bus, paths, interface, &all, &n);
        ctl_strv_free(paths);
        if (r < 0)
                return r;
        r = ctl_print_list_common(all, n);
        if (r > 0) {
                r = 0;
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = row(t, &all[i]);
                if (r >= 0) {
                        table_print(t, stdout);
                        ctl_print_footer(n, what);
                } else
                        r = -CTL_EXIT_FAILED;
        }
        ctl_props_free(all, n);
        return r;
}

static int net_row(Table *t, const Props *p) {
        return table_add_row(t, props_text(p, "Name"), props_bool(p, "Active") ? "active" : "inactive",
                             props_text(p, "Autostart"), props_text(p, "Persistent"), props_text(p, "Bridge"),
                             props_text(p, "ForwardMode"));
}

int verb_net_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("NAME", "STATE", "AUTOSTART", "PERSISTENT", "BRIDGE", "FORWARD",
                                                    NULL);
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "ListNetworks", &reply, "t",
                     (uint64_t) (arg.all || arg.names ? 0 : 1));
        return r < 0 ? r : list_objects(bus, reply, CTL_NETWORK, "network", t, net_row);
}

int verb_net_leases(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("EXPIRY", "MAC", "ADDRESS", "HOSTNAME", "CLIENT-ID", NULL);
        _cleanup_free_ char *path = NULL;
        const char *iface, *mac, *ip, *host, *client;
        uint64_t expiry;
        uint32_t prefix;
        Json j;
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_NETWORK, "GetDHCPLeases", &reply, "s", argc > 1 ? argv[1] : "");
        if (r < 0)
                return r;
        if (sd_bus_message_enter_container(reply, 'a', "(stssuss)") < 0)
                return -CTL_EXIT_FAILED;
        if (arg.json) {
                json_begin(&j, stdout);
                json_array_open(&j);
        }
        while ((r = sd_bus_message_read(reply, "(stssuss)", &iface, &expiry, &mac, &ip, &prefix, &host, &client)) > 0) {
                char when[64] = "never", addr[128];
                time_t tt = (time_t) expiry;
                struct tm tm;

                if (arg.json) {
                        json_object_open(&j);
                        json_key(&j, "interface"), json_string(&j, iface);
                        json_key(&j, "expiry_time"), json_uint(&j, expiry);
                        json_key(&j, "mac"), json_string(&j, mac);
                        json_key(&j, "ip_address"), json_string(&j, ip);
                        json_key(&j, "prefix"), json_uint(&j, prefix);
                        json_key(&j, "hostname"), json_string(&j, host);
                        json_key(&j, "client_id"), json_string(&j, client);
                        json_object_close(&j);
                        continue;
                }
                if (expiry > 0 && localtime_r(&tt, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
                snprintf(addr, sizeof addr, "%s/%" PRIu32, ip, prefix);
                if (table_add_row(t, when, mac, addr, host, client) < 0)
                        return -CTL_EXIT_FAILED;
        }
        if (r < 0)
                return -CTL_EXIT_FAILED;
        if (arg.json) {
                json_array_close(&j);
                json_end(&j);
        } else {
                table_print(t, stdout);
                ctl_print_footer(table_rows(t), "lease");
        }
        return 0;
}

static int nodedev_row(Table *t, const Props *p) {
        return table_add_row(t, props_text(p, "Name"), props_text(p, "Parent"), props_text(p, "Driver"),
                             props_text(p, "Capabilities"));
}

int verb_nodedev_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("NAME", "PARENT", "DRIVER", "CAPABILITIES", NULL);
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "ListNodeDevices", &reply, "st", strempty(arg.cap),
                     UINT64_C(0));
        return r < 0 ? r : list_objects(bus, reply, CTL_NODEDEV, "device", t, nodedev_row);
}

int verb_nodedev_detach(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_NODEDEV, "Detach", &reply, "st", strempty(arg.driver), UINT64_C(0));
        if (r >= 0)
                ctl_print_done(argv[0], path, NULL);
        return r;
}

static int pool_row(Table *t, const Props *p) {
        char cap[32] = "-", alloc[32] = "-", avail[32] = "-";

        if (props_bool(p, "Active")) {
                format_bytes(strtoull(props_text(p, "Capacity"), NULL, 10), cap, sizeof cap);
                format_bytes(strtoull(props_text(p, "Allocation"), NULL, 10), alloc, sizeof alloc);
                format_bytes(strtoull(props_text(p, "Available"), NULL, 10), avail, sizeof avail);
        }
        return table_add_row(t, props_text(p, "Name"), props_bool(p, "Active") ? "active" : "inactive",
                             props_text(p, "Autostart"), props_text(p, "Type"), cap, alloc, avail,
                             props_text(p, "Path"));
}

int verb_pool_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("NAME", "STATE", "AUTOSTART", "TYPE", "CAPACITY", "ALLOCATION",
                                                    "AVAILABLE", "PATH", NULL);
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "ListStoragePools", &reply, "t",
                     (uint64_t) (arg.all || arg.names ? 0 : 1));
        return r < 0 ? r : list_objects(bus, reply, CTL_POOL, "pool", t, pool_row);
}

static int vol_row(Table *t, const Props *p) {
        char cap[32], alloc[32];

        format_bytes(strtoull(props_text(p, "Capacity"), NULL, 10), cap, sizeof cap);
        format_bytes(strtoull(props_text(p, "Allocation"), NULL, 10), alloc, sizeof alloc);
        return table_add_row(t, props_text(p, "Name"), props_text(p, "Format"), cap, alloc, props_text(p, "Path"));
}

int verb_vol_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("NAME", "FORMAT", "CAPACITY", "ALLOCATION", "PATH", NULL);
        _cleanup_free_ char *pool = NULL;
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_lookup(bus, v->kind, argv[0], &pool);
        if (r >= 0)
                r = ctl_call(bus, pool, CTL_POOL, "ListVolumes", &reply, "t", UINT64_C(0));
        return r < 0 ? r : list_objects(bus, reply, CTL_VOL, "volume", t, vol_row);
}

int verb_vol_create(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *pool = NULL, *xml = NULL, *name = NULL, *text = NULL;
        const char *path;
        int r;

        r = ctl_read_file(argv[1], &xml);
        if (r >= 0)
                r = ctl_lookup(bus, v->kind, argv[0], &pool);
        if (r >= 0)
                r = ctl_call(bus, pool, CTL_POOL, "CreateVolume", &reply, "st", xml, UINT64_C(0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "o", &path) < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_get_string(bus, path, CTL_VOL, "Name", &name);
        if (r < 0)
                return r;
        if (asprintf(&text, "Volume '%s' created in pool '%s'.", name, argv[0]) < 0)
                return -CTL_EXIT_FAILED;
        ctl_print_done(name, path, text);
        return 0;
}

int verb_vol_delete(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *done = NULL;
        _cleanup_free_ char *pool = NULL;
        const char *path;
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &pool);
        if (r >= 0)
                r = ctl_call(bus, pool, CTL_POOL, "GetVolumeByName", &reply, "s", argv[1]);
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "o", &path) < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_call(bus, path, CTL_VOL, "Delete", &done, "t", UINT64_C(0));
        if (r >= 0)
                ctl_print_done(argv[1], path, NULL);
        return r;
}

/* nodedev-sriov NAME --vfs N: NodeDevice.SetVirtualFunctions. */
int verb_nodedev_sriov(sd_bus *bus, const Verb *v, int argc, char **argv) {
        if (!arg.vfs_set) {
                fprintf(stderr, "nodedev-sriov needs --vfs N (the number of virtual functions, 0 for none)\n");
                return -CTL_EXIT_USAGE;
        }
        return ctl_call_on(bus, v, argv[0], "SetVirtualFunctions", "ut", arg.vfs, UINT64_C(0));
}

/* nodedev-vf NAME VF --mac MAC [--vlan V]: NodeDevice.ConfigureVirtualFunction on the PF. */
int verb_nodedev_vf(sd_bus *bus, const Verb *v, int argc, char **argv) {
        uint64_t vf;
        int r;

        if (!arg.mac) {
                fprintf(stderr, "nodedev-vf needs --mac MAC (and --vlan V for a VLAN; 0 for none)\n");
                return -CTL_EXIT_USAGE;
        }
        r = ctl_parse_u64(argv[1], "VF number", &vf);
        if (r < 0)
                return r;
        if (vf > UINT32_MAX) {
                fprintf(stderr, "Invalid VF number '%s' (expected a number below 2^32)\n", argv[1]);
                return -CTL_EXIT_INVALID;
        }
        return ctl_call_on(bus, v, argv[0], "ConfigureVirtualFunction", "usut", (uint32_t) vf, arg.mac, arg.vlan,
                           UINT64_C(0));
}
