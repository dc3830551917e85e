/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl's snapshot verbs: Domain.CreateSnapshot / ListSnapshots and the DomainSnapshot objects
 * (found by name among ListSnapshots). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/virtbusctl.h"

/* text with &, <, >, ' and " escaped for XML (to free). */
static char *xml_escape(const char *text) {
        size_t n = 1;
        char *out, *o;

        for (const char *p = text; *p; p++)
                n += strchr("&<>'\"", *p) ? 6 : 1;
        out = o = malloc(n);
        if (!out)
                return NULL;
        for (const char *p = text; *p; p++)
                switch (*p) {
                case '&': o = stpcpy(o, "&amp;"); break;
                case '<': o = stpcpy(o, "&lt;"); break;
                case '>': o = stpcpy(o, "&gt;"); break;
                case '\'': o = stpcpy(o, "&apos;"); break;
                case '"': o = stpcpy(o, "&quot;"); break;
                default: *o++ = *p;
                }
        *o = 0;
        return out;
}

/* snapshot-create NAME [SNAPSHOT] [--description TEXT] [--disk-only (flag 1: overlays next to the images)] */
int verb_snapshot_create(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *domain = NULL, *name = NULL, *desc = NULL, *xml = NULL, *snap = NULL, *text = NULL;
        const char *path;
        int r;

        name = xml_escape(argc > 1 ? argv[1] : "");
        desc = xml_escape(strempty(arg.description));
        if (!name || !desc ||
            asprintf(&xml, "<domainsnapshot>%s%s%s%s%s%s</domainsnapshot>", argc > 1 ? "<name>" : "", name,
                     argc > 1 ? "</name>" : "", arg.description ? "<description>" : "", desc,
                     arg.description ? "</description>" : "") < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_lookup(bus, v->kind, argv[0], &domain);
        if (r >= 0)
                r = ctl_call(bus, domain, CTL_DOMAIN, "CreateSnapshot", &reply, "st", xml,
                             arg.disk_only ? UINT64_C(1) : UINT64_C(0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "o", &path) < 0)
                return -CTL_EXIT_FAILED;
        r = ctl_get_string(bus, path, CTL_SNAPSHOT, "Name", &snap);
        if (r < 0)
                return r;
        if (asprintf(&text, "Snapshot '%s' of domain '%s' created.", snap, argv[0]) < 0)
                return -CTL_EXIT_FAILED;
        ctl_print_done(snap, path, text);
        return 0;
}

int verb_snapshot_list(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(table_freep) Table *t = table_new("NAME", "CREATED", "STATE", "KIND", "PARENT", "CURRENT", NULL);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *domain = NULL;
        char **paths = NULL;
        Props *all = NULL;
        size_t n = 0;
        int r;

        if (!t)
                return -CTL_EXIT_FAILED;
        r = ctl_lookup(bus, v->kind, argv[0], &domain);
        if (r >= 0)
                r = ctl_call(bus, domain, CTL_DOMAIN, "ListSnapshots", &reply, "t", UINT64_C(0));
        if (r >= 0)
                r = ctl_read_paths(reply, &paths);
        if (r >= 0)
                r = ctl_props_of(bus, paths, CTL_SNAPSHOT, &all, &n);
        if (r < 0) {
                ctl_strv_free(paths);
                return r;
        }
        r = ctl_print_list_common(all, n);
        for (size_t i = 0; r > 0 && i < n; i++) {
                const char *parent = props_text(&all[i], "Parent");
                _cleanup_free_ char *pname = NULL;
                time_t when = (time_t) strtoull(props_text(&all[i], "CreationTime"), NULL, 10);
                char created[64] = "-";
                struct tm tm;

                if (!streq(parent, "/"))
                        (void) sd_bus_get_property_string(bus, CTL_SERVICE, parent, CTL_SNAPSHOT, "Name", NULL,
                                                          &pname);
                if (localtime_r(&when, &tm))
                        strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S", &tm);
                if (table_add_row(t, props_text(&all[i], "Name"), created, props_text(&all[i], "State"),
                                  props_text(&all[i], "Kind"), pname,
                                  props_bool(&all[i], "IsCurrent") ? "yes" : "no") < 0)
                        r = -CTL_EXIT_FAILED;
        }
        if (r > 0) {
                table_print(t, stdout);
                ctl_print_footer(n, "snapshot");
                r = 0;
        }
        ctl_strv_free(paths);
        ctl_props_free(all, n);
        return r;
}

/* The object path of the domain's snapshot called snapshot (to free). */
static int snapshot_lookup(sd_bus *bus, const Verb *v, const char *name, const char *snapshot, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *domain = NULL;
        char **paths = NULL;
        int r;

        r = ctl_lookup(bus, v->kind, name, &domain);
        if (r >= 0)
                r = ctl_call(bus, domain, CTL_DOMAIN, "ListSnapshots", &reply, "t", UINT64_C(0));
        if (r >= 0)
                r = ctl_read_paths(reply, &paths);
        if (r < 0)
                return r;
        r = -CTL_EXIT_NO_SUCH;
        for (char **p = paths; *p && r < 0; p++) {
                _cleanup_free_ char *s = NULL;

                if (sd_bus_get_property_string(bus, CTL_SERVICE, *p, CTL_SNAPSHOT, "Name", NULL, &s) >= 0 &&
                    streq(s, snapshot)) {
                        *ret = strdup(*p);
                        r = *ret ? 0 : -CTL_EXIT_FAILED;
                }
        }
        ctl_strv_free(paths);
        if (r == -CTL_EXIT_NO_SUCH)
                fprintf(stderr, "Domain '%s' has no snapshot '%s'\n", name, snapshot);
        return r;
}

static int snapshot_call(sd_bus *bus, const Verb *v, char **argv, const char *method, uint64_t flags) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = snapshot_lookup(bus, v, argv[0], argv[1], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_SNAPSHOT, method, &reply, "t", flags);
        if (r >= 0)
                ctl_print_done(argv[1], path, NULL);
        return r;
}

int verb_snapshot_revert(sd_bus *bus, const Verb *v, int argc, char **argv) {
        return snapshot_call(bus, v, argv, "Revert", 0);
}

/* --children 1 (with its descendants), --children-only 2, --metadata 4. */
int verb_snapshot_delete(sd_bus *bus, const Verb *v, int argc, char **argv) {
        if (arg.children && arg.children_only) {
                fprintf(stderr, "--children and --children-only exclude each other\n");
                return -CTL_EXIT_USAGE;
        }
        return snapshot_call(bus, v, argv, "Delete",
                             (arg.children ? 1 : 0) | (arg.children_only ? 2 : 0) | (arg.metadata ? 4 : 0));
}

int verb_snapshot_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *xml;
        int r;

        r = snapshot_lookup(bus, v, argv[0], argv[1], &path);
        if (r >= 0)
                r = ctl_call(bus, path, CTL_SNAPSHOT, "GetXMLDesc", &reply, "t", UINT64_C(0));
        if (r < 0)
                return r;
        if (sd_bus_message_read(reply, "s", &xml) < 0)
                return -CTL_EXIT_FAILED;
        return ctl_print_xml(xml);
}
