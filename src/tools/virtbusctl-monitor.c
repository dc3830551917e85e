/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl monitor: what changes on the service as it happens, one line per event (or one JSON object
 * per line): objects appearing and going (ObjectManager), property changes (PropertiesChanged), and a
 * domain's device signals; the service stopping and starting again. Runs until SIGINT/SIGTERM. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "tools/virtbusctl.h"

#define OM_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define PROPS_INTERFACE "org.freedesktop.DBus.Properties"

/* What we know of each object: its kind and name, to say which one an event is about. */
typedef struct Known {
        char *path, *kind, *name;
        struct Known *next;
} Known;

static Known *known;

static const char *kind_of(const char *interface) {
        static const char *const kinds[][2] = {
                { CTL_DOMAIN, "domain" }, { CTL_NETWORK, "network" },   { CTL_POOL, "pool" },
                { CTL_VOL, "volume" },    { CTL_NODEDEV, "nodedev" },   { CTL_SNAPSHOT, "snapshot" },
                { CTL_MANAGER, "manager" },
        };

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(interface, kinds[i][0]))
                        return kinds[i][1];
        return NULL;
}

static Known *known_find(const char *path) {
        for (Known *k = known; k; k = k->next)
                if (streq(k->path, path))
                        return k;
        return NULL;
}

static void known_set(const char *path, const char *kind, const char *name) {
        Known *k = known_find(path);

        if (!k) {
                k = new0(Known, 1);
                if (!k || !(k->path = strdup(path))) {
                        free(k);
                        return;
                }
                k->next = known;
                known = k;
        }
        if (kind && (!k->kind || !streq(k->kind, kind))) {
                free(k->kind);
                k->kind = strdup(kind);
        }
        if (name && (!k->name || !streq(k->name, name))) {
                free(k->name);
                k->name = strdup(name);
        }
}

static void known_forget(const char *path) {
        for (Known **k = &known; *k; k = &(*k)->next)
                if (streq((*k)->path, path)) {
                        Known *gone = *k;

                        *k = gone->next;
                        free(gone->path);
                        free(gone->kind);
                        free(gone->name);
                        free(gone);
                        return;
                }
}

static void known_free_all(void) {
        while (known)
                known_forget(known->path);
}

/* The start of a line: time, then kind and name (text), or the common keys (JSON). */
static void event_begin(Json *j, const char *event, const char *path, const char *kind) {
        const Known *k = known_find(path);
        const char *name = k && k->name ? k->name : NULL;
        struct timeval tv;
        struct tm tm;
        char when[32] = "";

        (void) gettimeofday(&tv, NULL);
        if (!kind)
                kind = k && k->kind ? k->kind : "object";
        if (arg.json) {
                json_begin(j, stdout);
                json_object_open(j);
                json_key(j, "time_usec"), json_uint(j, (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec);
                json_key(j, "event"), json_string(j, event);
                json_key(j, "kind"), json_string(j, kind);
                json_key(j, "name");
                if (name)
                        json_string(j, name);
                else
                        json_null(j);
                json_key(j, "path"), json_string(j, path);
                return;
        }
        if (localtime_r(&tv.tv_sec, &tm))
                strftime(when, sizeof when, "%H:%M:%S", &tm);
        if (name)
                printf("%s.%03ld %s '%s' %s", when, (long) tv.tv_usec / 1000, kind, name, event);
        else if (streq(path, CTL_MANAGER_PATH))
                printf("%s.%03ld %s %s", when, (long) tv.tv_usec / 1000, kind, event);
        else
                printf("%s.%03ld %s %s %s", when, (long) tv.tv_usec / 1000, kind, path, event);
}

static void event_end(Json *j) {
        if (arg.json) {
                json_object_close(j);
                json_end(j);
        } else
                putchar('\n');
        fflush(stdout);
}

/* "Key=value" pairs after a text line. */
static void props_text_line(const Props *p) {
        for (size_t i = 0; i < p->n; i++)
                printf("%s%s=%s", i == 0 ? ": " : " ", p->p[i].name, p->p[i].text);
}

/* Reads the a{sa{sv}} of InterfacesAdded or GetManagedObjects for one object: the kind and the
 * properties of the org.virtbus1 interface among them. */
static int read_interfaces(sd_bus_message *m, const char **ret_kind, Props *ret_props) {
        const char *interface;
        int r;

        *ret_kind = NULL;
        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                r = sd_bus_message_read(m, "s", &interface);
                if (r < 0)
                        return r;
                if (!*ret_kind && kind_of(interface)) {
                        *ret_kind = kind_of(interface);
                        r = props_read(m, ret_props);
                } else
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* The names of the objects there now (GetManagedObjects), so that events can name them. */
static int monitor_load_names(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path, *kind;
        int r;

        r = ctl_call(bus, CTL_MANAGER_PATH, OM_INTERFACE, "GetManagedObjects", &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                Props p = {};

                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = read_interfaces(reply, &kind, &p);
                if (r >= 0 && kind)
                        known_set(path, kind, streq(props_text(&p, "Name"), "-") ? NULL : props_text(&p, "Name"));
                props_done(&p);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                fprintf(stderr, "Failed to read the service's objects: %s\n", strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        return 0;
}

/* The service going away or coming (again): said, and the names read again when it comes. */
static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name, *old_owner, *new_owner;
        Json j;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, CTL_SERVICE))
                return 0;
        if (!isempty(old_owner)) {
                event_begin(&j, "stopped", CTL_MANAGER_PATH, "service");
                event_end(&j);
                known_free_all();
        }
        if (!isempty(new_owner)) {
                (void) monitor_load_names(sd_bus_message_get_bus(m));
                event_begin(&j, "started", CTL_MANAGER_PATH, "service");
                event_end(&j);
        }
        return 0;
}

static int on_added(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *path, *kind;
        Props p = {};
        Json j;

        if (sd_bus_message_read(m, "o", &path) < 0 || read_interfaces(m, &kind, &p) < 0 || !kind) {
                props_done(&p);
                return 0;
        }
        known_set(path, kind, streq(props_text(&p, "Name"), "-") ? NULL : props_text(&p, "Name"));
        event_begin(&j, "added", path, kind);
        if (arg.json) {
                json_key(&j, "properties");
                json_object_open(&j);
                props_json(&p, &j);
                json_object_close(&j);
        }
        event_end(&j);
        props_done(&p);
        return 0;
}

static int on_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        char **interfaces = NULL;
        const char *path, *kind = NULL;
        Json j;

        if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_read_strv(m, &interfaces) < 0)
                return 0;
        for (char **i = interfaces; i && *i && !kind; i++)
                kind = kind_of(*i);
        if (kind) {
                event_begin(&j, "removed", path, kind);
                event_end(&j);
                known_forget(path);
        }
        ctl_strv_free(interfaces);
        return 0;
}

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *interface, *path = sd_bus_message_get_path(m), *kind;
        char **invalidated = NULL;
        Props p = {};
        Json j;

        if (sd_bus_message_read(m, "s", &interface) < 0 || !(kind = kind_of(interface)) || props_read(m, &p) < 0)
                return 0;
        if (sd_bus_message_read_strv(m, &invalidated) < 0)
                invalidated = NULL;
        if (!streq(props_text(&p, "Name"), "-"))
                known_set(path, kind, props_text(&p, "Name")); /* renamed */
        event_begin(&j, "changed", path, kind);
        if (arg.json) {
                json_key(&j, "properties");
                json_object_open(&j);
                props_json(&p, &j);
                json_object_close(&j);
                json_key(&j, "invalidated");
                json_array_open(&j);
                for (char **i = invalidated; i && *i; i++)
                        json_string(&j, *i);
                json_array_close(&j);
        } else {
                props_text_line(&p);
                for (char **i = invalidated; i && *i; i++)
                        printf("%s%s changed", p.n == 0 && i == invalidated ? ": " : " ", *i);
        }
        event_end(&j);
        ctl_strv_free(invalidated);
        props_done(&p);
        return 0;
}

/* DeviceAdded(s alias), DeviceRemoved(s alias), DeviceRemovalFailed(s alias, s reason). */
static int on_domain_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        static const char *const events[][2] = {
                { "DeviceAdded", "device-added" },
                { "DeviceRemoved", "device-removed" },
                { "DeviceRemovalFailed", "device-removal-failed" },
        };
        const char *member = sd_bus_message_get_member(m), *event = NULL, *alias = NULL, *reason = NULL;
        Json j;

        for (size_t i = 0; i < ELEMENTSOF(events); i++)
                if (streq_ptr(member, events[i][0]))
                        event = events[i][1];
        if (!event || sd_bus_message_read(m, "s", &alias) < 0)
                return 0;
        if (streq(member, "DeviceRemovalFailed") && sd_bus_message_read(m, "s", &reason) < 0)
                reason = NULL;
        event_begin(&j, event, sd_bus_message_get_path(m), "domain");
        if (arg.json) {
                json_key(&j, "alias"), json_string(&j, alias);
                if (reason)
                        json_key(&j, "reason"), json_string(&j, reason);
        } else
                printf(": '%s'%s%s", alias, reason ? ": " : "", strempty(reason));
        event_end(&j);
        return 0;
}

int verb_monitor(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        int r;

        r = ctl_event_new(&event);
        /* Subscribed before the names are read: nothing falls between the two. */
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, CTL_SERVICE, NULL, OM_INTERFACE, "InterfacesAdded", on_added,
                                        NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, CTL_SERVICE, NULL, OM_INTERFACE, "InterfacesRemoved",
                                        on_removed, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, CTL_SERVICE, NULL, PROPS_INTERFACE, "PropertiesChanged",
                                        on_changed, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, CTL_SERVICE, NULL, CTL_DOMAIN, NULL, on_domain_signal, NULL);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" CTL_SERVICE "'",
                                     on_owner_changed, NULL);
        if (r < 0) {
                fprintf(stderr, "Failed to subscribe to the service's signals: %s\n", strerror(-r));
                return -CTL_EXIT_FAILED;
        }
        r = monitor_load_names(bus);
        if (r < 0) {
                known_free_all();
                return r;
        }
        r = sd_bus_attach_event(bus, event, 0);
        if (r < 0)
                return -CTL_EXIT_FAILED;
        /* Said once subscribed, so that a script may wait for it. */
        fprintf(stderr, "Monitoring %s; Ctrl+C to stop.\n", CTL_SERVICE);
        r = sd_event_loop(event);
        sd_bus_detach_event(bus);
        known_free_all();
        return r < 0 ? -CTL_EXIT_FAILED : 0;
}
