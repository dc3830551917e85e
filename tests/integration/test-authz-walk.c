/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The authorization audit, against the live service (test driver, real polkitd, the example rules):
 * every method and writable property of every object type, found by introspection, is called with
 * valid arguments
 *   - as a user in no group: each one the table (src/bus/bus-authz.c) guards answers AccessDenied or
 *     InteractiveAuthorizationRequired, and nothing changed (all objects, their definitions with secrets
 *     and their properties, compared before and after); each open read works and shows no secret;
 *   - as a user in group 'virtbus': exactly what the example rules grant (domain.manage, domain.console,
 *     network.manage;
 *     storage.manage only in a pool named 'default', which the walk's pool is not) gets past polkit; the
 *     rest is refused. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "bus/bus-authz.h"
#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define SECRET "s3cret-walk"
#define DOMAIN_XML                                                                                          \
        "<domain type='test'><name>walk</name><uuid>5a1c0000-0000-4000-8000-000000000001</uuid>"            \
        "<memory unit='MiB'>128</memory><os><type>hvm</type></os><devices>"                                 \
        "<graphics type='vnc' passwd='" SECRET "'/></devices></domain>"
#define NEW_DOMAIN_XML                                                                                      \
        "<domain type='test'><name>walk-new</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"  \
        "</domain>"
#define NETWORK_XML "<network><name>walk-net</name><bridge name='vbwalk0'/></network>"
#define DEVICE_XML "<interface type='user'><mac address='52:54:00:5a:1c:01'/></interface>"
#define VOLUME_XML "<volume><name>walk-new.img</name><capacity>1048576</capacity></volume>"

static Harness *harness;

static char *pool_xml(const char *name) {
        char *x;
        assert_true(asprintf(&x, "<pool type='dir'><name>%s</name><target><path>%s/%s</path></target></pool>", name,
                             harness_dir(harness), name) >= 0);
        return x;
}

/* Granted to group 'virtbus' by polkit/50-virtbus-example.rules. */
static const char * const granted_to_group[] = { BUS_ACTION_DOMAIN_MANAGE, BUS_ACTION_DOMAIN_CONSOLE,
                                                 BUS_ACTION_NETWORK_MANAGE, NULL };

static bool is_granted(const char *action) {
        for (size_t i = 0; granted_to_group[i]; i++)
                if (streq(granted_to_group[i], action))
                        return true;
        return false;
}

/* The objects the walk goes through, defined again as root whenever a granted call removed one. */
typedef struct Objects {
        char *domain, *network, *nodedev, *pool, *volume, *volume_file, *snapshot;
} Objects;

static char *find_or_define(sd_bus *root, const char *getter, const char *name, const char *definer, const char *xml) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *p;
        char *path;

        if (sd_bus_call_method(root, "org.virtbus1", M, getter, &e, &reply, "s", name) < 0) {
                sd_bus_error_free(&e);
                reply = harness_call_ok(root, M, definer, "st", xml, UINT64_C(0));
        }
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        path = strdup(p);
        sd_bus_message_unref(reply);
        return path;
}

static void objects_ensure(Harness *h, Objects *o) {
        sd_bus *root = harness_bus_root(h);
        sd_bus_message *reply;
        const char *p;

        free(o->domain);
        free(o->network);
        free(o->nodedev);
        free(o->pool);
        free(o->volume);
        free(o->volume_file);
        free(o->snapshot);
        /* By UUID: a granted Rename does not lose it. */
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                reply = NULL;
                if (sd_bus_call_method(root, "org.virtbus1", M, "GetDomainByUUID", &e, &reply, "s",
                                       "5a1c0000-0000-4000-8000-000000000001") >= 0) {
                        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
                        o->domain = strdup(p);
                        sd_bus_message_unref(reply);
                } else {
                        sd_bus_error_free(&e);
                        o->domain = harness_define_domain(root, DOMAIN_XML);
                }
        }
        /* One snapshot of the domain (any: a granted CreateSnapshot may have added more). */
        reply = harness_call_ok(root, o->domain, "org.virtbus1.Domain", "ListSnapshots", "t", UINT64_C(0));
        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        if (sd_bus_message_read(reply, "o", &p) > 0)
                o->snapshot = strdup(p);
        sd_bus_message_unref(reply);
        if (!o->snapshot) {
                reply = harness_call_ok(root, o->domain, "org.virtbus1.Domain", "CreateSnapshot", "st",
                                        "<domainsnapshot><name>walk-snap</name></domainsnapshot>", UINT64_C(0));
                assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
                o->snapshot = strdup(p);
                sd_bus_message_unref(reply);
        }
        o->network = find_or_define(root, "GetNetworkByName", "walk-net", "DefineNetwork", NETWORK_XML);
        /* Active, so that its leases can be read. */
        {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int active = 0;
                assert_true(sd_bus_get_property_trivial(root, "org.virtbus1", o->network, "org.virtbus1.Network",
                                                        "Active", &e, 'b', &active) >= 0);
                if (!active)
                        sd_bus_message_unref(harness_call_ok(root, o->network, "org.virtbus1.Network", "Start", "t",
                                                             UINT64_C(0)));
        }
        /* A built, active pool with one volume. */
        {
                _cleanup_free_ char *xml = pool_xml("walk-pool");
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int active = 0;

                o->pool = find_or_define(root, "GetStoragePoolByName", "walk-pool", "DefineStoragePool", xml);
                assert_true(sd_bus_get_property_trivial(root, "org.virtbus1", o->pool, "org.virtbus1.StoragePool",
                                                        "Active", &e, 'b', &active) >= 0);
                if (!active) {
                        sd_bus_message_unref(harness_call_ok(root, o->pool, "org.virtbus1.StoragePool", "Build", "t", UINT64_C(0)));
                        sd_bus_message_unref(harness_call_ok(root, o->pool, "org.virtbus1.StoragePool", "Start", "t", UINT64_C(0)));
                }
                reply = NULL;
                if (sd_bus_call_method(root, "org.virtbus1", o->pool, "org.virtbus1.StoragePool", "GetVolumeByName", &e,
                                       &reply, "s", "walk.img") < 0) {
                        sd_bus_error_free(&e);
                        reply = harness_call_ok(root, o->pool, "org.virtbus1.StoragePool", "CreateVolume", "st",
                                                "<volume><name>walk.img</name><capacity>1048576</capacity></volume>",
                                                UINT64_C(0));
                }
                assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
                o->volume = strdup(p);
                sd_bus_message_unref(reply);
                assert_true(asprintf(&o->volume_file, "%s/walk-pool/walk.img", harness_dir(h)) >= 0);
        }
        reply = harness_call_ok(root, M, "ListNodeDevices", "st", "", UINT64_C(0));
        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        o->nodedev = strdup(p);
        sd_bus_message_unref(reply);
}

static void objects_done(Objects *o) {
        free(o->domain);
        free(o->network);
        free(o->nodedev);
        free(o->pool);
        free(o->volume);
        free(o->volume_file);
        free(o->snapshot);
}

/* Everything a call could change, as root sees it: the lists, every definition with its secrets, and
 * the properties. */
static char *state_of(Harness *h) {
        sd_bus *root = harness_bus_root(h);
        static const struct {
                const char *list, *interface, *args;
                bool secure;
        } kinds[] = {
                { "ListDomains", "org.virtbus1.Domain", "t", true },
                { "ListNetworks", "org.virtbus1.Network", "t", false },
                { "ListNodeDevices", "org.virtbus1.NodeDevice", "st", false },
                { "ListStoragePools", "org.virtbus1.StoragePool", "t", false },
        };
        char *all = strdup("");

        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                sd_bus_message *reply = streq(kinds[k].args, "t")
                                                ? harness_call_ok(root, M, kinds[k].list, "t", UINT64_C(0))
                                                : harness_call_ok(root, M, kinds[k].list, "st", "", UINT64_C(0));
                const char *p;

                assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
                while (sd_bus_message_read(reply, "o", &p) > 0) {
                        sd_bus_message *x = harness_call_ok(root, p, kinds[k].interface, "GetXMLDesc", "t",
                                                            kinds[k].secure ? UINT64_C(2) : UINT64_C(0));
                        sd_bus_message *props = NULL;
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        const char *xml;
                        char *next;

                        assert_int_equal(sd_bus_message_read(x, "s", &xml), 1);
                        /* The properties, as one message dump. */
                        assert_true(sd_bus_call_method(root, "org.virtbus1", p, "org.freedesktop.DBus.Properties",
                                                       "GetAll", &e, &props, "s", kinds[k].interface) >= 0);
                        {
                                char *dump = NULL;
                                size_t size = 0;
                                FILE *f = open_memstream(&dump, &size);
                                assert_non_null(f);
                                assert_true(sd_bus_message_dump(props, f, SD_BUS_MESSAGE_DUMP_SUBTREE_ONLY) >= 0);
                                fclose(f);
                                assert_true(asprintf(&next, "%s\n%s\n%s\n%s", all, p, xml, dump) >= 0);
                                free(dump);
                        }
                        free(all);
                        all = next;
                        sd_bus_message_unref(props);
                        sd_bus_message_unref(x);
                }
                sd_bus_message_unref(reply);
        }
        return all;
}

/* Appends a valid argument for each type of sig (the walk's samples) and calls. */
static int call_member(sd_bus *bus, const char *path, const char *interface, const char *member, const char *sig,
                       Objects *o, sd_bus_message **ret_reply, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *pool_sample = pool_xml("walk-pool-new");
        unsigned n_strings = 0;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, "org.virtbus1", path, interface, member);
        assert_true(r >= 0);
        for (const char *t = sig; *t; t++) {
                switch (*t) {
                case 's': {
                        const char *v = "";
                        if (streq(member, "DefineDomain") || streq(member, "CreateDomain") ||
                            streq(member, "RestoreDomain") || streq(member, "PrepareMigration"))
                                v = NEW_DOMAIN_XML;
                        else if (streq(member, "DefineNetwork") || streq(member, "CreateNetwork"))
                                v = NETWORK_XML;
                        else if (strstr(member, "Device") && streq(interface, "org.virtbus1.Domain"))
                                v = DEVICE_XML;
                        else if (streq(member, "MigrateTo") && n_strings == 0)
                                v = "tcp:127.0.0.1:9";
                        else if (strstr(member, "Migrat"))
                                v = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
                        else if (streq(member, "Rename"))
                                v = "walk-renamed";
                        else if (streq(member, "GetDomainByName"))
                                v = "walk";
                        else if (streq(member, "GetDomainByUUID"))
                                v = "5a1c0000-0000-4000-8000-000000000001";
                        else if (streq(member, "GetNetworkByName"))
                                v = "walk-net";
                        else if (streq(member, "GetNodeDeviceByName"))
                                v = strrchr(o->nodedev, '/') + 1;
                        else if (streq(member, "ConfigureVirtualFunction"))
                                v = "52:54:00:5a:1c:02";
                        else if (streq(member, "DefineStoragePool") || streq(member, "CreateStoragePool"))
                                v = pool_sample;
                        else if (streq(member, "CreateVolume") || streq(member, "CreateVolumeFrom"))
                                v = VOLUME_XML;
                        else if (streq(member, "CreateSnapshot"))
                                v = "<domainsnapshot><name>walk-snap-new</name></domainsnapshot>";
                        else if (streq(member, "GetVolumeByName"))
                                v = "walk.img";
                        else if (streq(member, "GetStoragePoolByName"))
                                v = "walk-pool";
                        else if (streq(member, "GetStorageVolByPath"))
                                v = o->volume_file;
                        r = sd_bus_message_append_basic(m, 's', v);
                        n_strings++;
                        break;
                }
                case 't': {
                        uint64_t v = 0;
                        r = sd_bus_message_append_basic(m, 't', &v);
                        break;
                }
                case 'u': {
                        uint32_t v = 0;
                        r = sd_bus_message_append_basic(m, 'u', &v);
                        break;
                }
                case 'b': {
                        int v = 0;
                        r = sd_bus_message_append_basic(m, 'b', &v);
                        break;
                }
                case 'o':
                        /* The source of CreateVolumeFrom: the walk's volume. */
                        r = sd_bus_message_append_basic(m, 'o', o->volume);
                        break;
                case 'a':
                        /* Options (a{sv}): none. */
                        assert_true(streq(t, "a{sv}") || strncmp(t, "a{sv}", 5) == 0);
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                        t += 4;
                        break;
                case 'h': {
                        /* An empty source and a sink: Upload reads end-of-file, Download writes nowhere. */
                        int v = open("/dev/null", O_RDWR | O_CLOEXEC);
                        assert_true(v >= 0);
                        r = sd_bus_message_append_basic(m, 'h', &v);
                        close(v);
                        break;
                }
                default:
                        fail_msg("%s.%s: no sample for argument type '%c'", interface, member, *t);
                }
                assert_true(r >= 0);
        }
        return sd_bus_call(bus, m, 0, error, ret_reply);
}

static bool refused_by_polkit(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
}

/* The in-arguments' signature of every org.virtbus1.* method of path, and its writable properties. */
typedef struct Member {
        char *interface, *name, *sig;
        bool property;
} Member;

static size_t members_of(Harness *h, const char *path, Member *ret, size_t max) {
        sd_bus_message *reply = harness_call_ok(harness_bus_root(h), path, "org.freedesktop.DBus.Introspectable",
                                                "Introspect", "");
        const char *xml;
        xmlDoc *doc;
        size_t n = 0;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        doc = xmlReadMemory(xml, (int) strlen(xml), NULL, NULL, XML_PARSE_NONET);
        assert_non_null(doc);
        for (xmlNode *i = xmlDocGetRootElement(doc)->children; i; i = i->next) {
                xmlChar *iname = i->type == XML_ELEMENT_NODE ? xmlGetProp(i, (const xmlChar *) "name") : NULL;
                if (!iname || strncmp((const char *) iname, "org.virtbus1.", 13) != 0) {
                        xmlFree(iname);
                        continue;
                }
                for (xmlNode *m = i->children; m && n < max; m = m->next) {
                        xmlChar *name, *access;
                        char sig[64] = "";
                        if (m->type != XML_ELEMENT_NODE)
                                continue;
                        name = xmlGetProp(m, (const xmlChar *) "name");
                        access = xmlGetProp(m, (const xmlChar *) "access");
                        if (xmlStrEqual(m->name, (const xmlChar *) "method")) {
                                for (xmlNode *a = m->children; a; a = a->next) {
                                        xmlChar *dir, *type;
                                        if (a->type != XML_ELEMENT_NODE || !xmlStrEqual(a->name, (const xmlChar *) "arg"))
                                                continue;
                                        dir = xmlGetProp(a, (const xmlChar *) "direction");
                                        type = xmlGetProp(a, (const xmlChar *) "type");
                                        if (!dir || xmlStrEqual(dir, (const xmlChar *) "in"))
                                                strncat(sig, (const char *) type, sizeof sig - strlen(sig) - 1);
                                        xmlFree(dir);
                                        xmlFree(type);
                                }
                                ret[n++] = (Member) { strdup((const char *) iname), strdup((const char *) name),
                                                      strdup(sig), false };
                        } else if (xmlStrEqual(m->name, (const xmlChar *) "property") && access &&
                                   xmlStrEqual(access, (const xmlChar *) "readwrite"))
                                ret[n++] = (Member) { strdup((const char *) iname), strdup((const char *) name),
                                                      (char *) xmlGetProp(m, (const xmlChar *) "type"), true };
                        xmlFree(name);
                        xmlFree(access);
                }
                xmlFree(iname);
        }
        xmlFreeDoc(doc);
        sd_bus_message_unref(reply);
        return n;
}

static void members_done(Member *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].interface);
                free(m[i].name);
                if (m[i].property)
                        xmlFree(m[i].sig);
                else
                        free(m[i].sig);
        }
}

/* Calls every member of every object type as user; returns how many were called. */
static unsigned walk(Harness *h, HarnessUser user) {
        sd_bus *bus = harness_bus_as(h, user);
        Objects o = {};
        unsigned called = 0;
        const char *kinds[] = { "manager", "domain", "network", "nodedev", "pool", "volume", "snapshot" };

        objects_ensure(h, &o);
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                Member members[64];
                size_t n;
                const char *path = k == 0 ? HARNESS_MANAGER_PATH : k == 1 ? o.domain : k == 2 ? o.network : k == 3 ? o.nodedev
                                   : k == 4 ? o.pool : k == 5 ? o.volume : o.snapshot;

                n = members_of(h, path, members, ELEMENTSOF(members));
                assert_true(n > 0);
                for (size_t i = 0; i < n; i++) {
                        const BusAuthzRule *rule = bus_authz_find(members[i].interface, members[i].name,
                                                                  members[i].property ? BUS_AUTHZ_PROPERTY_WRITE
                                                                                      : BUS_AUTHZ_METHOD);
                        _cleanup_free_ char *before = NULL, *after = NULL;
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = NULL;
                        const char *p = k == 0 ? HARNESS_MANAGER_PATH : k == 1 ? o.domain : k == 2 ? o.network : k == 3 ? o.nodedev
                                : k == 4 ? o.pool : k == 5 ? o.volume : o.snapshot;
                        int r;

                        if (!rule)
                                fail_msg("%s.%s has no row in the authorization table", members[i].interface,
                                         members[i].name);
                        if (user == HARNESS_USER_PLAIN)
                                before = state_of(h);
                        if (members[i].property) {
                                if (streq(members[i].sig, "b"))
                                        r = harness_set_property(bus, p, members[i].interface, members[i].name, &e, "b", 1);
                                else
                                        r = harness_set_property(bus, p, members[i].interface, members[i].name, &e, "s", "debug");
                        } else
                                r = call_member(bus, p, members[i].interface, members[i].name, members[i].sig, &o,
                                                &reply, &e);
                        called++;
                        if (!rule->action) {
                                /* An open read: it works for anyone, and shows no secret. */
                                if (r < 0)
                                        fail_msg("open read %s.%s failed for %s: %s", members[i].interface,
                                                 members[i].name, harness_user_name(h, user), e.message);
                                if (reply && sd_bus_message_has_signature(reply, "s")) {
                                        const char *s;
                                        assert_int_equal(sd_bus_message_read(reply, "s", &s), 1);
                                        if (strstr(s, SECRET))
                                                fail_msg("%s.%s shows the display password", members[i].interface,
                                                         members[i].name);
                                }
                        } else if (user == HARNESS_USER_PLAIN || !is_granted(rule->action)) {
                                if (r >= 0 || !refused_by_polkit(&e))
                                        fail_msg("%s.%s (needs %s) was not refused for %s: %s", members[i].interface,
                                                 members[i].name, rule->action, harness_user_name(h, user),
                                                 r >= 0 ? "it worked" : e.name);
                        } else if (r < 0 && refused_by_polkit(&e))
                                fail_msg("%s.%s (needs %s, granted to the group) was refused: %s", members[i].interface,
                                         members[i].name, rule->action, e.message);
                        if (before) {
                                after = state_of(h);
                                if (!streq(before, after))
                                        fail_msg("%s.%s as %s changed something", members[i].interface,
                                                 members[i].name, harness_user_name(h, user));
                        }
                        sd_bus_error_free(&e);
                        sd_bus_message_unref(reply);
                        /* A granted call may have removed or stopped an object: back to the start. */
                        if (user != HARNESS_USER_PLAIN)
                                objects_ensure(h, &o);
                }
                members_done(members, n);
        }
        objects_done(&o);
        return called;
}

static void test_plain_user(void **state) {
        harness = *state;
        unsigned n = walk(*state, HARNESS_USER_PLAIN);
        /* Every row was reached (the manager's LogLevel, the domain's and network's Autostart included). */
        assert_true(n >= bus_authz_n_rules - 0);
}

static void test_group_virtbus(void **state) {
        harness = *state;
        assert_true(walk(*state, HARNESS_USER_VIRTBUS) > 0);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_user),
                cmocka_unit_test(test_group_virtbus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
