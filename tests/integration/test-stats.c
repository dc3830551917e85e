/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Statistics and live tuning with the test driver: GetStats / GetAllDomainStats keys and types (libvirt's),
 * counters that move while a domain runs, one entry per domain, the running-only flag; SetMemory and
 * SetVCPUs with their properties, signals and polkit. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define D HARNESS_DOMAIN_INTERFACE
#define ERR(name) "org.virtbus1.Error." name

static const char devices[] = "<disk type='file' device='disk'><source file='/var/lib/images/a.img'/>"
                              "<target dev='vda' bus='virtio'/></disk>"
                              "<interface type='network'><source network='default'/><mac address='52:54:00:aa:00:01'/></interface>";

static void get_stats(sd_bus *bus, const char *path, uint64_t groups, HarnessStats *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, D, "GetStats", "tt", groups, UINT64_C(0));
        harness_stats_read(reply, ret);
}

static uint64_t get_u64_property(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 't', &v), 0);
        return v;
}

static uint32_t get_u32_property(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t v = 0;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 'u', &v), 0);
        return v;
}

static void test_keys_and_types(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN); /* an open read, like GetXMLDesc */
        _cleanup_free_ char *path = harness_define_test_domain(harness_bus_root(h), "counted", devices);
        HarnessStats s = {}, later = {};

        /* Shut off: the state, and what the definition says. */
        get_stats(bus, path, 0, &s);
        assert_int_equal(harness_stats_number(&s, "state.state", 'i'), 5);
        assert_int_equal(harness_stats_number(&s, "state.reason", 'i'), 0);
        assert_int_equal(harness_stats_type(&s, "cpu.time"), 0);
        assert_int_equal(harness_stats_number(&s, "vcpu.maximum", 'u'), 1);
        harness_stats_done(&s);

        harness_domain_call(harness_bus_root(h), path, "Start");
        get_stats(bus, path, 0, &s);
        assert_int_equal(harness_stats_number(&s, "state.state", 'i'), 1);
        (void) harness_stats_number(&s, "state.reason", 'i');
        (void) harness_stats_number(&s, "cpu.time", 't');
        (void) harness_stats_number(&s, "cpu.user", 't');
        (void) harness_stats_number(&s, "cpu.system", 't');
        assert_true(harness_stats_number(&s, "balloon.current", 't') > 0);
        assert_true(harness_stats_number(&s, "balloon.maximum", 't') >= harness_stats_number(&s, "balloon.current", 't'));
        (void) harness_stats_number(&s, "balloon.rss", 't');
        assert_int_equal(harness_stats_number(&s, "vcpu.current", 'u'), 1);
        assert_int_equal(harness_stats_number(&s, "vcpu.maximum", 'u'), 1);
        assert_int_equal(harness_stats_number(&s, "vcpu.0.state", 'i'), 1);
        (void) harness_stats_number(&s, "vcpu.0.time", 't');
        assert_int_equal(harness_stats_number(&s, "net.count", 'u'), 1);
        assert_non_null(harness_stats_string(&s, "net.0.name"));
        for (const char *const *k = (const char *const[]) { "rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes",
                                                             "tx.pkts", "tx.errs", "tx.drop", NULL };
             *k; k++) {
                char key[64];
                snprintf(key, sizeof key, "net.0.%s", *k);
                (void) harness_stats_number(&s, key, 't');
        }
        assert_int_equal(harness_stats_number(&s, "block.count", 'u'), 1);
        assert_string_equal(harness_stats_string(&s, "block.0.name"), "vda");
        assert_string_equal(harness_stats_string(&s, "block.0.path"), "/var/lib/images/a.img");
        for (const char *const *k = (const char *const[]) { "rd.reqs", "rd.bytes", "rd.times", "wr.reqs", "wr.bytes",
                                                             "wr.times", "fl.reqs", "fl.times", "allocation",
                                                             "capacity", "physical", NULL };
             *k; k++) {
                char key[64];
                snprintf(key, sizeof key, "block.0.%s", *k);
                (void) harness_stats_number(&s, key, 't');
        }

        /* Counters move while it runs. */
        usleep(250 * 1000);
        get_stats(bus, path, 0, &later);
        assert_true(harness_stats_number(&later, "cpu.time", 't') > harness_stats_number(&s, "cpu.time", 't'));
        assert_true(harness_stats_number(&later, "vcpu.0.time", 't') > harness_stats_number(&s, "vcpu.0.time", 't'));
        assert_true(harness_stats_number(&later, "net.0.rx.bytes", 't') > harness_stats_number(&s, "net.0.rx.bytes", 't'));
        assert_true(harness_stats_number(&later, "block.0.rd.bytes", 't') > harness_stats_number(&s, "block.0.rd.bytes", 't'));
        harness_stats_done(&s);
        harness_stats_done(&later);

        /* Paused, they stand still. */
        harness_domain_call(harness_bus_root(h), path, "Suspend");
        get_stats(bus, path, 2, &s);
        usleep(50 * 1000);
        get_stats(bus, path, 2, &later);
        assert_int_equal(harness_stats_type(&s, "state.state"), 0); /* only the groups asked for */
        assert_int_equal(harness_stats_type(&s, "balloon.current"), 0);
        assert_int_equal(harness_stats_number(&later, "cpu.time", 't'), harness_stats_number(&s, "cpu.time", 't'));
        harness_stats_done(&s);
        harness_stats_done(&later);

        /* Groups and flags it does not know. */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "Unknown statistics groups", path, D, "GetStats", "tt",
                           UINT64_C(64), UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "GetStats", "tt", UINT64_C(0), UINT64_C(1));
        harness_domain_call(harness_bus_root(h), path, "Destroy");
        get_stats(bus, path, 1, &s);
        assert_int_equal(harness_stats_number(&s, "state.state", 'i'), 5);
        assert_int_equal(harness_stats_number(&s, "state.reason", 'i'), 2); /* destroyed */
        harness_stats_done(&s);
        harness_domain_call(harness_bus_root(h), path, "Undefine");
}

/* The entries of GetAllDomainStats: path -> state.state. */
static size_t get_all(sd_bus *bus, uint64_t flags, char ***ret_paths) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, M, "GetAllDomainStats", "tt", UINT64_C(0), flags);
        char **paths = NULL;
        size_t n = 0;
        int r;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(oa{sv})"), 1);
        while ((r = sd_bus_message_enter_container(reply, 'r', "oa{sv}")) > 0) {
                HarnessStats s = {};
                const char *path;

                assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
                harness_stats_read(reply, &s);
                (void) harness_stats_number(&s, "state.state", 'i');
                if (harness_stats_number(&s, "state.state", 'i') == 1)
                        (void) harness_stats_number(&s, "cpu.time", 't');
                harness_stats_done(&s);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                paths = realloc(paths, (n + 2) * sizeof(char *));
                assert_non_null(paths);
                paths[n++] = strdup(path);
                paths[n] = NULL;
        }
        assert_true(r >= 0);
        *ret_paths = paths;
        return n;
}

static void free_paths(char **paths) {
        for (size_t i = 0; paths && paths[i]; i++)
                free(paths[i]);
        free(paths);
}

static void test_all_domains(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *a = harness_define_test_domain(root, "all-a", devices),
                            *b = harness_define_test_domain(root, "all-b", ""),
                            *c = harness_define_test_domain(root, "all-c", "");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *list = harness_call_ok(root, M, "ListDomains", "t", UINT64_C(0));
        char **paths = NULL;
        size_t n_list = 0, n;
        const char *p;

        assert_int_equal(sd_bus_message_enter_container(list, 'a', "o"), 1);
        while (sd_bus_message_read_basic(list, 'o', &p) > 0)
                n_list++;
        harness_domain_call(root, a, "Start");
        harness_domain_call(root, b, "Start");
        harness_domain_call(root, b, "Suspend");

        /* One entry per domain, in the order of ListDomains. */
        n = get_all(harness_bus_as(h, HARNESS_USER_PLAIN), 0, &paths);
        assert_int_equal(n, n_list);
        assert_string_equal(paths[n - 3], a);
        assert_string_equal(paths[n - 2], b);
        assert_string_equal(paths[n - 1], c);
        free_paths(paths);

        /* Running only: the default 'test' domain and all-a; not the paused all-b or the shut-off all-c. */
        n = get_all(root, 1, &paths);
        assert_int_equal(n, 2);
        assert_string_equal(paths[1], a);
        free_paths(paths);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, M, "GetAllDomainStats", "tt", UINT64_C(0), UINT64_C(2));

        harness_domain_call(root, a, "Destroy");
        harness_domain_call(root, b, "Destroy");
        harness_domain_call(root, a, "Undefine");
        harness_domain_call(root, b, "Undefine");
        harness_domain_call(root, c, "Undefine");
}

static void test_set_memory_vcpus(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = harness_define_test_domain(root, "tuned", ""), *xml = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w =
                harness_watch_signal(root, path, HARNESS_PROPERTIES_INTERFACE, "PropertiesChanged");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        uint64_t max = get_u64_property(root, path, "MemoryKiB");
        HarnessStats s = {};

        assert_int_equal(get_u64_property(root, path, "CurrentMemoryKiB"), max);
        assert_int_equal(get_u32_property(root, path, "MaxVCPUs"), 1);

        /* Shut off: the saved definition. */
        sd_bus_message_unref(harness_call_ok(root, path, D, "SetMemory", "tt", max / 2, UINT64_C(0)));
        assert_int_equal(get_u64_property(root, path, "CurrentMemoryKiB"), max / 2);
        sig = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(sig);
        xml = harness_domain_xml(root, path, 1);
        assert_non_null(strstr(xml, "<currentMemory"));
        /* SetVCPUs: current= up to <vcpu>; flag 4 changes <vcpu> itself. */
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "at most 1 vCPUs", path, D, "SetVCPUs", "ut", 3, UINT64_C(2));
        sd_bus_message_unref(harness_call_ok(root, path, D, "SetVCPUs", "ut", 3, UINT64_C(6)));
        assert_int_equal(get_u32_property(root, path, "VCPUs"), 3);
        assert_int_equal(get_u32_property(root, path, "MaxVCPUs"), 3);
        sd_bus_message_unref(harness_call_ok(root, path, D, "SetVCPUs", "ut", 2, UINT64_C(2)));
        assert_int_equal(get_u32_property(root, path, "VCPUs"), 2);
        assert_int_equal(get_u32_property(root, path, "MaxVCPUs"), 3);
        free(xml);
        xml = harness_domain_xml(root, path, 1);
        assert_non_null(strstr(xml, "<vcpu current='2'>3</vcpu>"));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "at most", path, D, "SetMemory", "tt", max + 1, UINT64_C(0));
        harness_call_fails(root, ERR("InvalidState"), "not running", path, D, "SetMemory", "tt", max / 4, UINT64_C(1));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "SetMemory", "tt", max / 4, UINT64_C(4));

        /* Live: the balloon. */
        harness_domain_call(root, path, "Start");
        sd_bus_message_unref(harness_call_ok(root, path, D, "SetMemory", "tt", max / 4, UINT64_C(1)));
        assert_int_equal(get_u64_property(root, path, "CurrentMemoryKiB"), max / 4);
        get_stats(root, path, 4, &s);
        assert_int_equal(harness_stats_number(&s, "balloon.current", 't'), max / 4);
        harness_stats_done(&s);
        /* Live vCPUs: up to <vcpu>, and the statistics follow. */
        sd_bus_message_unref(harness_call_ok(root, path, D, "SetVCPUs", "ut", 3, UINT64_C(1)));
        assert_int_equal(get_u32_property(root, path, "VCPUs"), 3);
        get_stats(root, path, 8, &s);
        assert_int_equal(harness_stats_number(&s, "vcpu.current", 'u'), 3);
        assert_int_equal(harness_stats_number(&s, "vcpu.maximum", 'u'), 3);
        harness_stats_done(&s);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "at most 3 vCPUs while running", path, D, "SetVCPUs", "ut",
                           4, UINT64_C(1));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "flag 4", path, D, "SetVCPUs", "ut", 4, UINT64_C(5));
        harness_domain_call(root, path, "Destroy");
        /* The saved definition kept its own count. */
        assert_int_equal(get_u32_property(root, path, "VCPUs"), 2);
        /* The saved definition kept its own value. */
        assert_int_equal(get_u64_property(root, path, "CurrentMemoryKiB"), max / 2);

        /* Not for everyone. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           NULL, path, D, "SetMemory", "tt", max, UINT64_C(0));
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           NULL, path, D, "SetVCPUs", "ut", 2, UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(harness_bus_as(h, HARNESS_USER_VIRTBUS), path, D, "SetVCPUs", "ut", 2, UINT64_C(0)));
        harness_domain_call(root, path, "Undefine");
}

/* InterfaceAddresses with the test driver: its simulated network leases each connected guest an address
 * (from the first range, picked by the MAC's last two bytes); there is no host neighbour table. */
static void test_interface_addresses(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = harness_define_test_domain(
                root, "addressed",
                "<interface type='network'><mac address='52:54:00:aa:01:05'/><source network='default'/></interface>"
                "<interface type='user'><mac address='52:54:00:aa:01:06'/></interface>");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *mac, *address;
        uint8_t family;
        uint32_t prefix;

        /* Shut off: no addresses. */
        reply = harness_call_ok(root, path, D, "InterfaceAddresses", "ut", 0, UINT64_C(0));
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))"), 1);
        assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 0);
        reply = sd_bus_message_unref(reply);
        harness_domain_call(root, path, "Start");
        /* Only the interface on a virtbus network has a lease: 0x0105 % 253 = 8 past 192.168.122.2. */
        reply = harness_call_ok(harness_bus_as(h, HARNESS_USER_PLAIN), path, D, "InterfaceAddresses", "ut", 0, UINT64_C(0));
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))"), 1);
        assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 1);
        assert_int_equal(sd_bus_message_read(reply, "ss", &name, &mac), 1);
        assert_true(strlen(name) > 0);
        assert_string_equal(mac, "52:54:00:aa:01:05");
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ysu)"), 1);
        assert_int_equal(sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix), 1);
        assert_int_equal(family, 4);
        assert_string_equal(address, "192.168.122.10");
        assert_int_equal(prefix, 24);
        assert_int_equal(sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix), 0);
        assert_int_equal(sd_bus_message_exit_container(reply), 1);
        assert_int_equal(sd_bus_message_exit_container(reply), 1);
        assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 0);
        /* The same address in the network's own list. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *leases = NULL;
                _cleanup_free_ char *net = NULL;
                const char *iface, *lmac, *ip, *host, *cid, *o;
                uint64_t expiry;
                uint32_t lprefix;

                leases = harness_call_ok(root, M, "GetNetworkByName", "s", "default");
                assert_int_equal(sd_bus_message_read(leases, "o", &o), 1);
                net = strdup(o);
                sd_bus_message_unref(leases);
                leases = harness_call_ok(root, net, "org.virtbus1.Network", "GetDHCPLeases", "s", "52:54:00:AA:01:05");
                assert_int_equal(sd_bus_message_enter_container(leases, 'a', "(stssuss)"), 1);
                assert_int_equal(sd_bus_message_read(leases, "(stssuss)", &iface, &expiry, &lmac, &ip, &lprefix, &host, &cid), 1);
                assert_string_equal(ip, "192.168.122.10");
        }
        harness_call_fails(root, ERR("NotSupported"), "neighbour table", path, D, "InterfaceAddresses", "ut", 2, UINT64_C(0));
        /* Source 1, the simulated agent: every interface as the guest's ethN with its MAC and fixed addresses;
         * it runs code in the guest, so it is for those who may manage the domain. */
        reply = sd_bus_message_unref(reply);
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL,
                           path, D, "InterfaceAddresses", "ut", 1, UINT64_C(0));
        reply = harness_call_ok(harness_bus_as(h, HARNESS_USER_VIRTBUS), path, D, "InterfaceAddresses", "ut", 1,
                                UINT64_C(0));
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))"), 1);
        for (unsigned i = 0; i < 2; i++) {
                char expect_mac[18], expect_ip[16];

                snprintf(expect_mac, sizeof expect_mac, "52:54:00:aa:01:%02x", 5 + i);
                snprintf(expect_ip, sizeof expect_ip, "192.0.2.%u", 10 + i);
                assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 1);
                assert_int_equal(sd_bus_message_read(reply, "ss", &name, &mac), 1);
                assert_string_equal(name, i == 0 ? "eth0" : "eth1");
                assert_string_equal(mac, expect_mac);
                assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ysu)"), 1);
                assert_int_equal(sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix), 1);
                assert_int_equal(family, 4);
                assert_string_equal(address, expect_ip);
                assert_int_equal(prefix, 24);
                assert_int_equal(sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix), 1);
                assert_int_equal(family, 6);
                assert_int_equal(prefix, 64);
                assert_int_equal(sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix), 0);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
        }
        assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 0);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "InterfaceAddresses", "ut", 1, UINT64_C(1));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "Unknown address source 3", path, D, "InterfaceAddresses", "ut", 3,
                           UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "InterfaceAddresses", "ut", 0, UINT64_C(1));
        harness_domain_call(root, path, "Destroy");
        harness_domain_call(root, path, "Undefine");
}

static int get_bool_property(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int v = -1;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 'b', &v), 0);
        return v;
}

/* The test driver's guest agent: fixed answers while the domain runs; only for domain.manage. */
static void test_guest_agent(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = harness_define_test_domain(root, "agented", "");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        HarnessStats s = {};

        assert_int_equal(get_bool_property(root, path, "GuestAgentConnected"), 0);
        harness_call_fails(root, ERR("InvalidState"), "not running", path, D, "GetGuestInfo", "tt", UINT64_C(0), UINT64_C(0));
        harness_domain_call(root, path, "Start");
        assert_int_equal(get_bool_property(root, path, "GuestAgentConnected"), 1);
        reply = harness_call_ok(root, path, D, "GetGuestInfo", "tt", UINT64_C(0), UINT64_C(0));
        harness_stats_read(reply, &s);
        assert_string_equal(harness_stats_string(&s, "hostname"), "agented");
        assert_string_equal(harness_stats_string(&s, "os.id"), "virtbus-test");
        assert_string_equal(harness_stats_string(&s, "timezone.name"), "UTC");
        assert_int_equal(harness_stats_number(&s, "user.count", 'u'), 1);
        assert_int_equal(harness_stats_number(&s, "fs.count", 'u'), 1);
        assert_true(harness_stats_number(&s, "fs.0.used-bytes", 't') < harness_stats_number(&s, "fs.0.total-bytes", 't'));
        harness_stats_done(&s);
        reply = sd_bus_message_unref(reply);
        /* Only the groups asked for. */
        reply = harness_call_ok(root, path, D, "GetGuestInfo", "tt", UINT64_C(8), UINT64_C(0));
        harness_stats_read(reply, &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(harness_stats_string(&s, "hostname"), "agented");
        harness_stats_done(&s);
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "Unknown guest information types 0x20", path, D, "GetGuestInfo",
                           "tt", UINT64_C(32), UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, NULL, path, D, "GetGuestInfo", "tt", UINT64_C(0), UINT64_C(1));
        /* It runs code in the guest: not for everyone. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL,
                           path, D, "GetGuestInfo", "tt", UINT64_C(0), UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(harness_bus_as(h, HARNESS_USER_VIRTBUS), path, D, "GetGuestInfo", "tt",
                                             UINT64_C(0), UINT64_C(0)));
        /* Reboot and Shutdown through the agent. */
        sd_bus_message_unref(harness_call_ok(root, path, D, "Reboot", "t", UINT64_C(2)));
        sd_bus_message_unref(harness_call_ok(root, path, D, "Shutdown", "t", UINT64_C(2)));
        assert_string_equal(harness_get_string(root, path, D, "State"), "shutoff");
        assert_int_equal(get_bool_property(root, path, "GuestAgentConnected"), 0);
        harness_domain_call(root, path, "Undefine");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_and_types),
                cmocka_unit_test(test_all_domains),
                cmocka_unit_test(test_set_memory_vcpus),
                cmocka_unit_test(test_interface_addresses),
                cmocka_unit_test(test_guest_agent),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
