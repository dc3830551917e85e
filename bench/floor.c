/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The floor of a bus round trip: a bare sd-bus service that owns one name and answers
 * org.virtbus1.bench.Floor.GetXMLDesc(t flags) -> s with a fixed string (the contents of a file, so the
 * reply carries as many bytes as a real domain description), and ListDomains(t flags) -> ao with a fixed
 * list of --list-count domain-like paths (the floor of a list reply of that size). Nothing else: no object
 * tree, no polkit, no parsing. Bench-only.
 *
 *   floor --bus-address ADDR --reply-file FILE [--list-count N] [--name NAME] */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static char *reply_text;
static char **list_paths; /* NULL-terminated */

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        return buf;
}

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", reply_text);
}

static int method_list_domains(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "t", &flags);
        if (r >= 0)
                r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (char **p = list_paths; r >= 0 && *p; p++)
                r = sd_bus_message_append(reply, "o", *p);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r;
}

static const sd_bus_vtable floor_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListDomains", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("ao", domains),
                                method_list_domains, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "bus-address", required_argument, NULL, 'a' },
                { "name", required_argument, NULL, 'n' },
                { "reply-file", required_argument, NULL, 'f' },
                { "list-count", required_argument, NULL, 'l' },
                {},
        };
        const char *address = NULL, *name = "org.virtbus1.bench.Floor", *file = NULL;
        unsigned list_count = 0;
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 'n': name = optarg; break;
                case 'f': file = optarg; break;
                case 'l': list_count = (unsigned) strtoul(optarg, NULL, 10); break;
                default: return 2;
                }
        if (!address || !file) {
                fprintf(stderr, "usage: floor --bus-address ADDR --reply-file FILE [--name NAME]\n");
                return 2;
        }
        reply_text = read_file(file);
        if (!reply_text) {
                fprintf(stderr, "floor: cannot read %s: %m\n", file);
                return 1;
        }

        list_paths = calloc(list_count + 1, sizeof(char *));
        for (unsigned i = 0; i < list_count; i++)
                if (asprintf(&list_paths[i], "/org/virtbus1/domain/b3c4e000000040008000%012x", i) < 0)
                        return 1;

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/virtbus1/bench/Floor", "org.virtbus1.bench.Floor",
                                             floor_vtable, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "floor: %s\n", strerror(-r));
                return 1;
        }
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);

        r = sd_event_loop(event);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        free(reply_text);
        return r < 0 ? 1 : 0;
}
