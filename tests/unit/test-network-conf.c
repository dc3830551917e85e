/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network XML (data-driven xml2xml and invalid cases, the forward dev / <interface> rules), device pools
 * with usage counts, virtualport choice and the resolution of a guest interface on a network. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/network-conf.h"
#include "test-data.h"
#include "conf/network-resolve.h"
#include "util/fileio.h"

static int format_network(const char *xml, char **ret, VbError *e) {
        _cleanup_(network_def_freep) NetworkDef *def = NULL;
        int r = network_def_parse_string(xml, NETWORK_PARSE_STABLE_DEFAULTS, &def, e);

        return r < 0 ? r : network_def_format(def, ret);
}

static NetworkDef *parse(const char *xml) {
        NetworkDef *def = NULL;
        VbError e = VB_ERROR_NULL;

        if (network_def_parse_string(xml, 0, &def, &e) < 0)
                fail_msg("parse failed: %s", strempty(e.message));
        return def;
}

/* tests/data/network/<case>.xml formats to network-out/<case>.xml (or itself); the output is stable. */
static void check_case(const char *name) {
        _cleanup_free_ char *in = test_data_read("network", name), *out = NULL, *again = NULL, *expected = NULL;
        VbError e = VB_ERROR_NULL;

        assert_non_null(in);
        if (format_network(in, &out, &e) < 0)
                fail_msg("network/%s: %s", name, strempty(e.message));
        expected = test_data_read("network-out", name);
        if (getenv("VIRTBUS_TEST_REGENERATE")) {
                _cleanup_free_ char *p = test_data_path("network-out", name);

                if (!streq(out, in))
                        assert_int_equal(write_file_atomic(p, out, strlen(out), 0644), 0);
                else
                        (void) unlink(p);
        } else if (!streq(out, expected ?: in))
                fail_msg("network/%s: output differs from the expected file:\n%s", name, out);
        assert_int_equal(format_network(out, &again, &e), 0);
        assert_string_equal(out, again);
}

static void test_xml2xml(void **state) {
        _cleanup_free_ char *dir = test_data_path("network", NULL);
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, alphasort);

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                if (strstr(list[i]->d_name, ".xml"))
                        check_case(list[i]->d_name);
                free(list[i]);
        }
        free(list);
}

static const struct {
        const char *file;
        const char *fragment;
} invalid_cases[] = {
        { "forward-dev-mismatch.xml", "'dev' is 'eth1' but the first <interface> is 'eth2'" },
        { "netmask-and-prefix.xml", "both 'netmask' and 'prefix'" },
        { "two-default-portgroups.xml", "more than one default portgroup ('b'" },
        /* the first repetition in document order is named, before a later second default */
        { "portgroup-twice.xml", "portgroup 'c' is defined twice" },
        { "unknown-mode.xml", "forward" },
        { "hostdev-interface.xml", "forward mode 'hostdev' takes a pool" },
        { "dhcp-range-family.xml", "DHCP range 'fd00::2'" },
        { "unknown-element.xml", "bridge" },
        /* Would inject a line into dnsmasq's configuration. */
        { "dns-txt-newline.xml", "TXT record value 'one" },
        { "tftp-relative.xml", "<tftp root='srv/tftp'> is not an absolute path" },
        /* one dnsmasq, one tree */
        { "tftp-twice.xml", "<tftp> on more than one <ip>" },
        /* what libvirt refuses too: a pool device twice (written differently), content in a disabled <dns>,
         * a floor on outgoing traffic */
        { "forward-address-twice.xml", "line 1: element 'address': PCI device 0000:04:00.1 is listed twice" },
        { "dns-disabled-host.xml", "element 'dns': DNS is disabled (enable='no') but <dns> holds a <host>" },
        { "outbound-floor.xml", "element 'outbound': attribute 'floor' is for <inbound> only" },
        { "vepa-bridge-name.xml", "element 'bridge': a network with forward mode 'vepa' has no bridge of its own" },
        { "bridge-mode-stp.xml", "element 'bridge': the bridge options stp=, delay= and zone= are for networks" },
        { "bridge-mode-name-and-dev.xml", "names bridge 'br0' or forward devices, not both" },
        { "dhcp-range-no-end.xml", "line 6: element 'range': attribute 'end' is missing (required on <range> in <dhcp>)" },
        { "unknown-in-dhcp.xml", "line 6: element 'bogus' is not allowed in <dhcp> (allowed there: bootp, host, range)" },
};

static void test_invalid(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
                _cleanup_free_ char *in = test_data_read("network-invalid", invalid_cases[i].file), *out = NULL;
                VbError e = VB_ERROR_NULL;

                assert_non_null(in);
                if (format_network(in, &out, &e) >= 0)
                        fail_msg("network-invalid/%s was accepted", invalid_cases[i].file);
                assert_int_equal(e.code, VB_ERROR_INVALID_XML);
                if (!strstr(strempty(e.message), invalid_cases[i].fragment))
                        fail_msg("network-invalid/%s: message '%s' lacks '%s'", invalid_cases[i].file,
                                 strempty(e.message), invalid_cases[i].fragment);
                vb_error_free(&e);
        }
}

static void test_forward_dev_rules(void **state) {
        _cleanup_(network_def_freep) NetworkDef *a = NULL, *b = NULL, *c = NULL;
        _cleanup_free_ char *xa = NULL, *xb = NULL;

        /* dev= alone, the list alone, and both agreeing all mean the same; output has both. */
        a = parse("<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a8f</uuid>"
                  "<forward mode='vepa' dev='eth1'/></network>");
        b = parse("<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a8f</uuid>"
                  "<forward mode='vepa'><interface dev='eth1'/></forward></network>");
        c = parse("<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a8f</uuid>"
                  "<forward mode='vepa' dev='eth1'><interface dev='eth1'/><interface dev='eth2'/></forward></network>");
        assert_int_equal(a->forward.n_devs, 1);
        assert_string_equal(a->forward.devs[0], "eth1");
        assert_int_equal(c->forward.n_devs, 2);
        assert_int_equal(network_def_format(a, &xa), 0);
        assert_int_equal(network_def_format(b, &xb), 0);
        assert_string_equal(xa, xb);
        assert_non_null(strstr(xa, "<forward mode='vepa' dev='eth1'>\n    <interface dev='eth1'/>"));
}

static void test_accessors_defaults(void **state) {
        _cleanup_(network_def_freep) NetworkDef *def = NULL, *copy = NULL;
        const NetworkIpDef *ip;
        char uuid[37];

        def = parse("<network><name>n</name><forward/><bridge name='vb0'/>"
                    "<ip address='10.1.2.1' netmask='255.255.255.0'><dhcp><range start='10.1.2.10' end='10.1.2.20'/></dhcp></ip>"
                    "</network>");
        assert_true(def->has_uuid); /* generated */
        assert_int_equal(def->forward.mode, NETWORK_FORWARD_NAT); /* <forward/> means nat */
        assert_true(network_def_has_own_bridge(def));
        ip = network_def_ipv4(def);
        assert_non_null(ip);
        assert_int_equal(ip->prefix, 24);
        assert_int_equal(ip->n_ranges, 1);
        assert_int_equal(network_def_copy(def, &copy), 0);
        network_def_get_uuid_string(def, uuid);
        {
                char u2[37];
                network_def_get_uuid_string(copy, u2);
                assert_string_equal(uuid, u2);
        }
        {
                _cleanup_free_ char *name = network_def_peek_name("<network><name>peek</name><bogus/></network>");
                assert_string_equal(name, "peek");
        }
}

static void test_string_tables(void **state) {
        for (size_t i = 0; i < network_forward_mode_table_size(); i++)
                assert_int_equal(network_forward_mode_from_string(network_forward_mode_to_string(i)), (int) i);
        for (size_t i = 0; i < network_family_table_size(); i++)
                assert_int_equal(network_family_from_string(network_family_to_string(i)), (int) i);
        for (size_t i = 0; i < network_actual_type_table_size(); i++)
                assert_int_equal(network_actual_type_from_string(network_actual_type_to_string(i)), (int) i);
        assert_int_equal(network_forward_mode_from_string("teleport"), -EINVAL);
}

#define PRIVATE_NET                                                                                        \
        "<network><name>priv</name><forward mode='private'><interface dev='eth1'/><interface dev='eth2'/>" \
        "</forward></network>"
#define PASS_NET                                                                                           \
        "<network><name>pass</name><forward mode='passthrough'><interface dev='eth1'/><interface dev='eth2'/>" \
        "</forward></network>"

static void test_pool_shared(void **state) {
        _cleanup_(network_def_freep) NetworkDef *def = parse(PRIVATE_NET);
        _cleanup_(network_pool_freep) NetworkPool *p = NULL;
        VbError e = VB_ERROR_NULL;
        size_t i;

        assert_int_equal(network_pool_new(def, NULL, 0, &p, &e), 0);
        assert_int_equal(p->n_entries, 2);
        /* Shared modes spread guests over the least used device. */
        assert_int_equal(network_pool_acquire(p, "priv", NULL, &i, &e), 0);
        assert_int_equal(i, 0);
        assert_int_equal(network_pool_acquire(p, "priv", NULL, &i, &e), 0);
        assert_int_equal(i, 1);
        assert_int_equal(network_pool_acquire(p, "priv", NULL, &i, &e), 0);
        assert_int_equal(i, 0);
        assert_int_equal(p->entries[0].connections, 2);
        assert_int_equal(network_pool_acquire(p, "priv", "eth2", &i, &e), 0);
        assert_int_equal(p->entries[1].connections, 2);
        assert_true(network_pool_acquire(p, "priv", "eth9", &i, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_DEVICE);
        vb_error_free(&e);
        network_pool_release(p, 0);
        network_pool_release(p, 0);
        network_pool_release(p, 0); /* never below 0 */
        assert_int_equal(p->entries[0].connections, 0);
}

static void test_pool_exclusive(void **state) {
        _cleanup_(network_def_freep) NetworkDef *def = parse(PASS_NET);
        _cleanup_(network_pool_freep) NetworkPool *p = NULL;
        VbError e = VB_ERROR_NULL;
        size_t i, j;

        assert_int_equal(network_pool_new(def, NULL, 0, &p, &e), 0);
        assert_int_equal(network_pool_acquire(p, "pass", "eth1", &i, &e), 0);
        /* A passthrough device goes to one guest only. */
        assert_int_equal(network_pool_acquire(p, "pass", "eth1", &j, &e), -EBUSY);
        assert_int_equal(e.code, VB_ERROR_DEVICE_BUSY);
        assert_non_null(strstr(e.message, "'eth1'"));
        vb_error_free(&e);
        assert_int_equal(network_pool_acquire(p, "pass", NULL, &j, &e), 0);
        assert_int_equal(j, 1);
        assert_int_equal(network_pool_acquire(p, "pass", NULL, &j, &e), -EBUSY);
        assert_non_null(strstr(e.message, "All 2 devices of network 'pass'"));
        vb_error_free(&e);
        network_pool_release(p, i);
        assert_int_equal(network_pool_acquire(p, "pass", NULL, &j, &e), 0);
        assert_int_equal(j, 0);
        assert_int_equal(network_pool_take(p, "eth9", NULL), -ENOENT);
}

static void test_pool_hostdev(void **state) {
        _cleanup_(network_def_freep) NetworkDef *pf = NULL, *addrs = NULL;
        _cleanup_(network_pool_freep) NetworkPool *p = NULL, *q = NULL;
        NetworkPciAddress vfs[] = { { 0, 3, 0x10, 1 }, { 0, 3, 0x10, 3 } };
        NetworkActual a = { .pool_index = -1 }, b = { .pool_index = -1 };
        VbError e = VB_ERROR_NULL;

        pf = parse("<network><name>vfs</name><forward mode='hostdev'><pf dev='eth2'/></forward></network>");
        assert_int_equal(network_pool_new(pf, NULL, 0, &p, &e), -ENODEV); /* no VFs found */
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_DEVICE);
        vb_error_free(&e);
        assert_int_equal(network_pool_new(pf, vfs, 2, &p, &e), 0);
        assert_int_equal(p->n_entries, 2);
        assert_int_equal(network_resolve_port(pf, p, NULL, &a, &e), 0);
        assert_int_equal(a.type, NETWORK_ACTUAL_HOSTDEV);
        assert_int_equal(a.pci.slot, 0x10);
        assert_int_equal(a.pci.function, 1);
        assert_int_equal(network_resolve_port(pf, p, NULL, &b, &e), 0);
        assert_int_equal(b.pci.function, 3);
        network_actual_done(&b);
        assert_int_equal(network_resolve_port(pf, p, NULL, &b, &e), -EBUSY);
        vb_error_free(&e);
        network_actual_done(&a);

        addrs = parse("<network><name>pool</name><forward mode='hostdev'>"
                      "<address type='pci' domain='0' bus='5' slot='0' function='2'/></forward></network>");
        assert_int_equal(network_pool_new(addrs, NULL, 0, &q, &e), 0);
        assert_int_equal(network_pool_find(q, NULL, &(NetworkPciAddress) { 0, 5, 0, 2 }), 0);
}

#define VP_NET                                                                                             \
        "<network><name>vp</name><forward mode='bridge'/><bridge name='ovsbr0'/>"                            \
        "<virtualport type='openvswitch'><parameters profileid='top'/></virtualport>"                       \
        "<portgroup name='bob' default='yes'><virtualport><parameters profileid='bob'/></virtualport></portgroup>" \
        "<portgroup name='alice'><virtualport><parameters profileid='alice'/></virtualport></portgroup>"      \
        "<portgroup name='plain'/>"                                                                         \
        "</network>"

static void test_virtualport_choice(void **state) {
        _cleanup_(network_def_freep) NetworkDef *def = parse(VP_NET), *nodefault = NULL;
        NetworkVirtualPort own = { .type = (char *) "openvswitch", .profileid = (char *) "own" };
        const NetworkVirtualPort *vp;
        const NetworkPortGroup *pg;
        VbError e = VB_ERROR_NULL;

        /* The interface's own first. */
        assert_int_equal(network_choose_virtualport(def, &(NetworkPortRequest) { .portgroup = "alice", .virtualport = &own }, &vp, &pg, &e), 0);
        assert_string_equal(vp->profileid, "own");
        /* Else the portgroup it names. */
        assert_int_equal(network_choose_virtualport(def, &(NetworkPortRequest) { .portgroup = "alice" }, &vp, &pg, &e), 0);
        assert_string_equal(vp->profileid, "alice");
        assert_string_equal(pg->name, "alice");
        /* Else the default portgroup. */
        assert_int_equal(network_choose_virtualport(def, &(NetworkPortRequest) {}, &vp, &pg, &e), 0);
        assert_string_equal(vp->profileid, "bob");
        assert_string_equal(pg->name, "bob");
        /* A portgroup without one: the network's top-level. */
        assert_int_equal(network_choose_virtualport(def, &(NetworkPortRequest) { .portgroup = "plain" }, &vp, &pg, &e), 0);
        assert_string_equal(vp->profileid, "top");
        /* Unknown portgroup. */
        assert_int_equal(network_choose_virtualport(def, &(NetworkPortRequest) { .portgroup = "eve" }, &vp, &pg, &e), -EINVAL);
        assert_non_null(strstr(e.message, "'eve'"));
        vb_error_free(&e);
        /* No default portgroup: the top-level one. */
        nodefault = parse("<network><name>x</name><forward mode='bridge'/><bridge name='b'/>"
                          "<virtualport type='openvswitch'><parameters profileid='top'/></virtualport>"
                          "<portgroup name='alice'/></network>");
        assert_int_equal(network_choose_virtualport(nodefault, NULL, &vp, &pg, &e), 0);
        assert_string_equal(vp->profileid, "top");
        assert_null(pg);
}

static void test_resolve(void **state) {
        _cleanup_(network_def_freep) NetworkDef *nat = NULL, *hostbr = NULL, *priv = parse(PRIVATE_NET), *vp = parse(VP_NET);
        _cleanup_(network_pool_freep) NetworkPool *p = NULL;
        NetworkActual a = { .pool_index = -1 };
        VbError e = VB_ERROR_NULL;

        nat = parse("<network><name>nat</name><forward/><bridge name='vb0'/><ip address='10.0.0.1' prefix='24'/></network>");
        assert_int_equal(network_resolve_port(nat, NULL, NULL, &a, &e), 0);
        assert_int_equal(a.type, NETWORK_ACTUAL_BRIDGE);
        assert_string_equal(a.bridge, "vb0");
        assert_int_equal(a.pool_index, -1);
        network_actual_done(&a);

        hostbr = parse("<network><name>hb</name><forward mode='bridge'/><bridge name='br0'/></network>");
        assert_int_equal(network_resolve_port(hostbr, NULL, NULL, &a, &e), 0);
        assert_int_equal(a.type, NETWORK_ACTUAL_BRIDGE);
        assert_string_equal(a.bridge, "br0");
        network_actual_done(&a);

        assert_int_equal(network_resolve_port(vp, NULL, &(NetworkPortRequest) { .portgroup = "alice" }, &a, &e), 0);
        assert_string_equal(a.portgroup, "alice");
        assert_string_equal(a.virtualport->profileid, "alice");
        network_actual_done(&a);

        assert_int_equal(network_resolve_port(priv, NULL, NULL, &a, &e), -EBUSY); /* inactive: no pool */
        assert_int_equal(e.code, VB_ERROR_INVALID_STATE);
        vb_error_free(&e);
        assert_int_equal(network_pool_new(priv, NULL, 0, &p, &e), 0);
        assert_int_equal(network_resolve_port(priv, p, NULL, &a, &e), 0);
        assert_int_equal(a.type, NETWORK_ACTUAL_DIRECT);
        assert_string_equal(a.dev, "eth1");
        assert_string_equal(a.mode, "private");
        assert_int_equal(p->entries[0].connections, 1);
        network_actual_done(&a);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_xml2xml),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_forward_dev_rules),
                cmocka_unit_test(test_accessors_defaults),
                cmocka_unit_test(test_string_tables),
                cmocka_unit_test(test_pool_shared),
                cmocka_unit_test(test_pool_exclusive),
                cmocka_unit_test(test_pool_hostdev),
                cmocka_unit_test(test_virtualport_choice),
                cmocka_unit_test(test_resolve),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
