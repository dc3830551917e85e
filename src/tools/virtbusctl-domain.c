/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl's domain verbs, and the generic ones (define, simple methods) the other kinds use too. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/virtbusctl.h"
#include "util/fileio.h"

int ctl_props_of(sd_bus *bus, char **paths, const char *interface, Props **ret, size_t *ret_n) {
        size_t n = 0, count = 0;
        Props *all;

        for (char **p = paths; p && *p; p++)
                count++;
        all = new0(Props, count);
        if (!all)
                return -CTL_EXIT_FAILED;
        for (char **p = paths; p && *p; p++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

                if (sd_bus_call_method(bus, CTL_SERVICE, *p, "org.freedesktop.DBus.Properties", "GetAll", NULL,
                                       &reply, "s", interface) < 0)
                        continue;
                if (props_read(reply, &all[n]) >= 0)
                        n++;
        }
        *ret = all;
        *ret_n = n;
        return 0;
}

void ctl_props_free(Props *all, size_t n) {
        for (size_t i = 0; i < n; i++)
                props_done(&all[i]);
        free(all);
}

int ctl_print_list_common(const Props *all, size_t n) {
        if (arg.names) {
                for (size_t i = 0; i < n; i++)
                        printf("%s\n", props_text(&all[i], "Name"));
                return 0;
        }
        if (arg.json) {
                Json j;

                json_begin(&j, stdout);
                json_array_open(&j);
                for (size_t i = 0; i < n; i++) {
                        json_object_open(&j);
                        props_json(&all[i], &j);
                        json_object_close(&j);
                }
                json_array_close(&j);
                json_end(&j);
                return 0;
        }
        return 1;
}

void ctl_print_footer(size_t n, const char *what) {
        if (arg.legend)
                printf("\n%zu %s%s listed.\n", n, what, n == 1 ? "" : "s");
}

int verb_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        char **paths = NULL;
        Props *all = NULL;
        size_t n = 0, kept = 0;
        int r;

        /* Completion wants every name; a state filter sees all too. */
        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "ListDomains", &reply, "t",
                     (uint64_t) (arg.all || arg.names || arg.state ? 0 : 1));
        if (r >= 0)
                r = ctl_read_paths(reply, &paths);
        if (r >= 0)
                r = ctl_props_of(bus, paths, CTL_DOMAIN, &all, &n);
        ctl_strv_free(paths);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) /* --state: keep only those */
                if (!arg.state || streq(props_text(&all[i], "State"), arg.state))
                        all[kept++] = all[i];
                else
                        props_done(&all[i]);
        n = kept;
        r = ctl_print_list_common(all, n);
        if (r > 0) {
                t = table_new("ID", "NAME", "STATE", "AUTOSTART", "PERSISTENT", NULL);
                for (size_t i = 0; t && i < n; i++) {
                        const char *id = props_text(&all[i], "Id");
                        if (table_add_row(t, streq(id, "0") ? "-" : id, props_text(&all[i], "Name"),
                                          props_text(&all[i], "State"), props_text(&all[i], "Autostart"),
                                          props_text(&all[i], "Persistent")) < 0)
                                t = table_free(t);
                }
                if (t) {
                        table_print(t, stdout);
                        ctl_print_footer(n, "domain");
                }
                r = t ? 0 : -CTL_EXIT_FAILED;
        }
        ctl_props_free(all, n);
        return r;
}

int verb_show(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        Props p = {};
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = props_get_all(bus, path, v->kind->interface, &p);
        if (r < 0)
                return r;
        if (arg.json) {
                Json j;

                json_begin(&j, stdout);
                json_object_open(&j);
                props_json(&p, &j);
                json_object_close(&j);
                json_end(&j);
        } else {
                size_t w = 0;

                for (size_t i = 0; i < p.n; i++)
                        w = CTL_MAX(w, strlen(p.p[i].name));
                for (size_t i = 0; i < p.n; i++)
                        printf("%*s: %s\n", (int) w, p.p[i].name, p.p[i].text);
        }
        props_done(&p);
        return 0;
}

/* define, net-define, pool-define: the Manager method in v->method with (xml, 0). */
int verb_define(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *xml = NULL, *name = NULL, *text = NULL;
        const char *path;
        int r;

        r = ctl_read_file(argv[0], &xml);
        if (r >= 0)
                r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, v->method, &reply, "st", xml, UINT64_C(0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "o", &path) < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_get_string(bus, path, v->kind->interface, "Name", &name);
        if (r < 0)
                return r;
        if (asprintf(&text, "%s '%s' defined from '%s'.", v->kind->what, name, argv[0]) < 0)
                return -CTL_EXIT_FAILED;
        ctl_print_done(name, path, text);
        return 0;
}

int ctl_call_on(sd_bus *bus, const Verb *v, const char *name, const char *method, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        va_list ap;
        int r;

        r = ctl_lookup(bus, v->kind, name, &path);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, CTL_SERVICE, path, v->kind->interface, method);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return -CTL_EXIT_FAILED;
        r = sd_bus_call(bus, m, CTL_CALL_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                return -ctl_error(&e, r, method);
        ctl_print_done(name, path, NULL);
        return 0;
}

/* A method taking only flags (0): undefine, shutdown, net-start, pool-stop, nodedev-reset ... */
int verb_simple(sd_bus *bus, const Verb *v, int argc, char **argv) {
        return ctl_call_on(bus, v, argv[0], v->method, "t", UINT64_C(0));
}

int verb_start(sd_bus *bus, const Verb *v, int argc, char **argv) {
        return ctl_call_on(bus, v, argv[0], "Start", "t", (uint64_t) (arg.paused ? 1 : 0));
}

int verb_rename(sd_bus *bus, const Verb *v, int argc, char **argv) {
        return ctl_call_on(bus, v, argv[0], "Rename", "st", argv[1], UINT64_C(0));
}

/* --live 1, --config 2; neither: 0 (live when running, else the saved definition). */
static uint64_t live_config_flags(void) {
        return (arg.live ? 1 : 0) | (arg.config ? 2 : 0);
}

int verb_setmem(sd_bus *bus, const Verb *v, int argc, char **argv) {
        uint64_t kib;
        int r;

        r = ctl_parse_u64(argv[1], "memory size (KiB)", &kib);
        if (r < 0)
                return r;
        return ctl_call_on(bus, v, argv[0], "SetMemory", "tt", kib, live_config_flags());
}

int verb_setvcpus(sd_bus *bus, const Verb *v, int argc, char **argv) {
        uint64_t count;
        int r;

        r = ctl_parse_u64(argv[1], "vCPU count", &count);
        if (r < 0)
                return r;
        if (count == 0 || count > UINT32_MAX) {
                fprintf(stderr, "Invalid vCPU count '%s' (expected a number from 1)\n", argv[1]);
                return -CTL_EXIT_INVALID;
        }
        /* --maximum: <vcpu> itself, in the saved definition (SetVCPUs flag 4). */
        return ctl_call_on(bus, v, argv[0], "SetVCPUs", "ut", (uint32_t) count,
                           live_config_flags() | (arg.maximum ? 4 : 0));
}

int verb_device(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_free_ char *xml = NULL;
        int r;

        r = ctl_read_file(argv[1], &xml);
        if (r < 0)
                return r;
        return ctl_call_on(bus, v, argv[0], v->method, "st", xml, live_config_flags());
}

int verb_autostart(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r < 0)
                return r;
        r = sd_bus_set_property(bus, CTL_SERVICE, path, v->kind->interface, "Autostart", &e, "b", !arg.disable);
        if (r < 0)
                return -ctl_error(&e, r, "Autostart");
        ctl_print_done(argv[0], path, NULL);
        return 0;
}

static int get_xml(sd_bus *bus, const Verb *v, const char *name, uint64_t flags, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *xml;
        int r;

        r = ctl_lookup(bus, v->kind, name, &path);
        if (r >= 0)
                r = ctl_call(bus, path, v->kind->interface, "GetXMLDesc", &reply, "t", flags);
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) < 0 || !(*ret = strdup(xml)))
                return -CTL_EXIT_FAILED;
        return 0;
}

int ctl_domain_xml(sd_bus *bus, const char *name, uint64_t flags, char **ret) {
        static const Verb v = { .kind = &ctl_kind_domain };
        return get_xml(bus, &v, name, flags, ret);
}

int verb_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_free_ char *xml = NULL;
        int r;

        r = get_xml(bus, v, argv[0], (arg.inactive ? 1 : 0) | (arg.secure ? 2 : 0), &xml);
        return r < 0 ? r : ctl_print_xml(xml);
}

/* net-dumpxml, pool-dumpxml (--inactive = 1), nodedev-dumpxml (0). */
int verb_object_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_free_ char *xml = NULL;
        int r;

        r = get_xml(bus, v, argv[0], v->kind != &ctl_kind_nodedev && arg.inactive ? 1 : 0, &xml);
        return r < 0 ? r : ctl_print_xml(xml);
}

int verb_domcapabilities(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *xml;
        int r;

        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "GetDomainCapabilities", &reply, "sssst", "",
                     strempty(arg.arch), strempty(arg.machine), strempty(arg.virttype), UINT64_C(0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) < 0)
                return -CTL_EXIT_FAILED;
        return ctl_print_xml(xml);
}

int verb_capabilities(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *xml;
        int r;

        r = ctl_call(bus, CTL_MANAGER_PATH, CTL_MANAGER, "GetCapabilities", &reply, NULL);
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) < 0)
                return -CTL_EXIT_FAILED;
        return ctl_print_xml(xml);
}

int verb_screenshot(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const void *png;
        size_t size;
        int r;

        r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r < 0)
                return r;
        r = ctl_call(bus, path, CTL_DOMAIN, "Screenshot", &reply, "ut", 0U, UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(reply, 'y', &png, &size);
        if (r < 0)
                return -CTL_EXIT_FAILED;
        r = write_file_atomic(argv[1], png, size, 0644);
        if (r < 0) {
                fprintf(stderr, "Failed to write '%s': %s\n", argv[1], strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        ctl_print_done(argv[0], path, NULL);
        return 0;
}

/* managedsave, managedsave-remove: Domain.ManagedSave / ManagedSaveRemove (t flags). */
int verb_managedsave(sd_bus *bus, const Verb *v, int argc, char **argv) {
        return ctl_call_on(bus, v, argv[0], v->method, "t", UINT64_C(0));
}

static int domifaddr_source(uint32_t *ret) {
        static const char *const names[] = { "lease", "agent", "arp" };

        if (!arg.source) {
                *ret = 0;
                return 0;
        }
        for (uint32_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(arg.source, names[i])) {
                        *ret = i;
                        return 0;
                }
        fprintf(stderr, "Invalid --source '%s' (expected lease, agent or arp)\n", arg.source);
        return -CTL_EXIT_INVALID;
}

/* One interface (name, MAC, addresses) of InterfaceAddresses' a(ssa(ysu)), as JSON or table rows. */
static int domifaddr_one(sd_bus_message *reply, Json *j, Table *t) {
        const char *ifname, *mac, *address;
        uint32_t prefix;
        uint8_t family;
        int r, n = 0;

        r = sd_bus_message_read(reply, "ss", &ifname, &mac);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ysu)");
        if (r < 0)
                return r;
        if (arg.json) {
                json_object_open(j);
                json_key(j, "name"), json_string(j, ifname);
                json_key(j, "mac"), json_string(j, mac);
                json_key(j, "addresses"), json_array_open(j);
        }
        while ((r = sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix)) > 0) {
                _cleanup_free_ char *cidr = NULL;

                if (arg.json) {
                        json_object_open(j);
                        json_key(j, "family"), json_uint(j, family);
                        json_key(j, "address"), json_string(j, address);
                        json_key(j, "prefix"), json_uint(j, prefix);
                        json_object_close(j);
                        continue;
                }
                if (asprintf(&cidr, "%s/%" PRIu32, address, prefix) < 0 ||
                    table_add_row(t, n == 0 ? ifname : "-", n == 0 ? mac : "-", family == 6 ? "ipv6" : "ipv4",
                                  cidr) < 0)
                        return -ENOMEM;
                n++;
        }
        if (r >= 0 && n == 0 && !arg.json)
                r = table_add_row(t, ifname, mac, "-", "-");
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (arg.json) {
                json_array_close(j);
                json_object_close(j);
        }
        return r;
}

/* domifaddr: Domain.InterfaceAddresses(u source, t flags) -> a(ssa(ysu)). */
int verb_domifaddr(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = table_new("NAME", "MAC", "PROTOCOL", "ADDRESS", NULL);
        _cleanup_free_ char *path = NULL;
        uint32_t source;
        Json j;
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = domifaddr_source(&source);
        if (r >= 0)
                r = ctl_lookup(bus, v->kind, argv[0], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_DOMAIN, "InterfaceAddresses", &reply, "ut", source, UINT64_C(0));
        if (r < 0)
                return r;
        if (arg.json) {
                json_begin(&j, stdout);
                json_array_open(&j);
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "ssa(ysu)")) > 0) {
                r = domifaddr_one(reply, &j, t);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                fprintf(stderr, "Failed to read the addresses: %s\n", strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        if (arg.json) {
                json_array_close(&j);
                json_end(&j);
        } else
                table_print(t, stdout);
        return 0;
}
