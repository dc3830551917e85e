/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The authorization table (src/bus/bus-authz.c) against the interfaces and the polkit policy: every
 * method and writable property in interfaces/ (every .xml there) has its row, every row names a member that exists, and
 * every action a row names is defined in polkit/org.virtbus1.policy. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "bus/bus-authz.h"
#include "util/macro.h"

static const char *source_root(void) {
        const char *r = getenv("VIRTBUS_SOURCE_ROOT");
        return r ? r : ".";
}

static xmlDoc *read_xml(const char *rel) {
        char path[4096];
        xmlDoc *doc;

        snprintf(path, sizeof path, "%s/%s", source_root(), rel);
        doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
        if (!doc)
                fail_msg("cannot read %s", path);
        return doc;
}

static char *prop(xmlNode *n, const char *name) {
        return (char *) xmlGetProp(n, (const xmlChar *) name);
}

/* Calls fn(interface, member, kind) for each method and writable property of every interface file. */
static unsigned walk_interfaces(void (*fn)(const char *, const char *, BusAuthzKind, void *), void *userdata) {
        char dir[4096];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof dir, "%s/interfaces", source_root());
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d))) {
                char rel[512];
                xmlDoc *doc;

                if (!strstr(de->d_name, ".xml"))
                        continue;
                snprintf(rel, sizeof rel, "interfaces/%s", de->d_name);
                doc = read_xml(rel);
                for (xmlNode *i = xmlDocGetRootElement(doc)->children; i; i = i->next) {
                        char *iname;
                        if (i->type != XML_ELEMENT_NODE || !xmlStrEqual(i->name, (const xmlChar *) "interface"))
                                continue;
                        iname = prop(i, "name");
                        if (strncmp(iname, "org.virtbus1.", 13) == 0)
                                for (xmlNode *m = i->children; m; m = m->next) {
                                        char *name, *access;
                                        if (m->type != XML_ELEMENT_NODE)
                                                continue;
                                        name = prop(m, "name");
                                        access = prop(m, "access");
                                        if (xmlStrEqual(m->name, (const xmlChar *) "method")) {
                                                fn(iname, name, BUS_AUTHZ_METHOD, userdata);
                                                n++;
                                        } else if (xmlStrEqual(m->name, (const xmlChar *) "property") && access &&
                                                   strstr(access, "write")) {
                                                fn(iname, name, BUS_AUTHZ_PROPERTY_WRITE, userdata);
                                                n++;
                                        }
                                        xmlFree(name);
                                        xmlFree(access);
                                }
                        xmlFree(iname);
                }
                xmlFreeDoc(doc);
        }
        closedir(d);
        return n;
}

static void check_has_row(const char *interface, const char *member, BusAuthzKind kind, void *userdata) {
        unsigned *missing = userdata;
        if (!bus_authz_find(interface, member, kind)) {
                fprintf(stderr, "%s.%s (%s) has no row in src/bus/bus-authz.c\n", interface, member,
                        kind == BUS_AUTHZ_METHOD ? "method" : "writable property");
                (*missing)++;
        }
}

static void test_every_member_has_a_row(void **state) {
        unsigned missing = 0;

        assert_true(walk_interfaces(check_has_row, &missing) > 30);
        assert_int_equal(missing, 0);
}

typedef struct Seen {
        bool *seen;
} Seen;

static void mark_seen(const char *interface, const char *member, BusAuthzKind kind, void *userdata) {
        Seen *s = userdata;
        for (size_t i = 0; i < bus_authz_n_rules; i++)
                if (bus_authz_rules[i].kind == kind && streq(bus_authz_rules[i].interface, interface) &&
                    streq(bus_authz_rules[i].member, member))
                        s->seen[i] = true;
}

static void test_every_row_has_a_member(void **state) {
        Seen s = { .seen = calloc(bus_authz_n_rules, sizeof(bool)) };
        unsigned stale = 0;

        walk_interfaces(mark_seen, &s);
        for (size_t i = 0; i < bus_authz_n_rules; i++)
                if (!s.seen[i]) {
                        fprintf(stderr, "row %s.%s names no member of interfaces/\n", bus_authz_rules[i].interface,
                                bus_authz_rules[i].member);
                        stale++;
                }
        free(s.seen);
        assert_int_equal(stale, 0);
}

static void test_actions_defined(void **state) {
        xmlDoc *doc = read_xml("polkit/org.virtbus1.policy");
        unsigned undefined = 0;

        for (size_t i = 0; i < bus_authz_n_rules; i++) {
                bool found = false;
                if (!bus_authz_rules[i].action)
                        continue;
                for (xmlNode *a = xmlDocGetRootElement(doc)->children; a && !found; a = a->next) {
                        char *id;
                        if (a->type != XML_ELEMENT_NODE || !xmlStrEqual(a->name, (const xmlChar *) "action"))
                                continue;
                        id = prop(a, "id");
                        found = id && streq(id, bus_authz_rules[i].action);
                        xmlFree(id);
                }
                if (!found) {
                        fprintf(stderr, "action %s of %s.%s is not in the policy\n", bus_authz_rules[i].action,
                                bus_authz_rules[i].interface, bus_authz_rules[i].member);
                        undefined++;
                }
        }
        xmlFreeDoc(doc);
        assert_int_equal(undefined, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_member_has_a_row),
                cmocka_unit_test(test_every_row_has_a_member),
                cmocka_unit_test(test_actions_defined),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        xmlCleanupParser();
        return r;
}
