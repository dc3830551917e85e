/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network registry with the simulated backend (no host access): define, start, stop, undefine,
 * persistence and autostart in a temporary config dir, the default networks seeded once, guest ports
 * with pool usage, ports found again after a "restart". Also dnsmasq's lease file parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/network.h"
#include "host/dnsmasq.h"
#include "util/fileio.h"

static char dir[] = "/tmp/virtbus-netcore-XXXXXX";
static char *config, *runtime, *marker;

static int setup(void **state) {
        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&config, "%s/config", dir) > 0);
        assert_true(asprintf(&runtime, "%s/run", dir) > 0);
        assert_true(asprintf(&marker, "%s/seeded", dir) > 0);
        return 0;
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = NULL;

        assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
        assert_int_equal(system(cmd), 0);
        free(config);
        free(runtime);
        free(marker);
        return 0;
}

static NetworkRegistry *registry(const char * const *defaults) {
        NetworkRegistry *r = NULL;
        VbError e = VB_ERROR_NULL;

        if (network_registry_new(config, runtime, NULL, "test", &r, &e) < 0)
                fail_msg("%s", strempty(e.message));
        assert_string_equal(r->backend->ops->name, "simulated");
        assert_int_equal(network_registry_load(r, defaults, marker), 0);
        return r;
}

static const char * const defaults[] = {
        "<network><name>default</name><uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid><forward/>"
        "<ip address='192.168.122.1' prefix='24'/></network>",
        NULL,
};

static void test_registry(void **state) {
        _cleanup_(network_registry_freep) NetworkRegistry *r = registry(defaults);
        _cleanup_free_ char *path = NULL, *xml = NULL;
        VbError e = VB_ERROR_NULL;
        Network *def, *n;
        bool created;
        struct stat st;

        /* Seeded once: active, autostarted, given a bridge. */
        def = network_registry_by_name(r, "default");
        assert_non_null(def);
        assert_true(network_is_active(def));
        assert_true(def->autostart);
        assert_string_equal(network_current_def(def)->bridge, "virbr0");
        assert_int_equal(access(marker, F_OK), 0);

        assert_int_equal(network_define(r, "<network><name>a</name><uuid>0a1b2c3d-0000-4000-8000-000000000001</uuid>"
                                           "<forward mode='private'><interface dev='eth1'/></forward></network>",
                                        NULL, &n, &created, &e), 0);
        assert_true(created);
        assert_null(network_current_def(n)->bridge); /* no bridge of its own */
        assert_string_equal(network_forward_mode_name(n), "private");
        assert_true(asprintf(&path, "%s/networks/0a1b2c3d-0000-4000-8000-000000000001.xml", config) > 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(network_define(r, "<network><name>a</name><uuid>0a1b2c3d-0000-4000-8000-000000000002</uuid></network>",
                                        NULL, &n, &created, &e), -EEXIST);
        assert_int_equal(e.code, VB_ERROR_ALREADY_EXISTS);
        vb_error_free(&e);
        n = network_registry_by_name(r, "a");
        assert_int_equal(network_stop(r, n, &e), -EBUSY);
        vb_error_free(&e);
        assert_int_equal(network_start(r, n, &e), 0);
        assert_int_equal(network_start(r, n, &e), -EBUSY);
        vb_error_free(&e);
        assert_int_equal(network_get_xml(r, n, 0, &xml, &e), 0);
        assert_non_null(strstr(xml, "<forward mode='private' dev='eth1'>"));
        assert_int_equal(network_set_autostart(r, n, true, &e), 0);

        /* Undefine while active: transient; stop: gone. */
        assert_int_equal(network_undefine(r, n, &e), 0);
        assert_false(network_is_persistent(n));
        assert_true(stat(path, &st) < 0);
        assert_int_equal(network_stop(r, n, &e), 0);
        assert_null(network_registry_by_name(r, "a"));
}

static bool runs(const char *owner, void *userdata) {
        return streq(owner, userdata);
}

static void test_ports_and_restart(void **state) {
        NetworkRegistry *r = registry(defaults);
        VbError e = VB_ERROR_NULL;
        const NetworkPort *p;
        Network *n;
        uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };

        assert_int_equal(network_define(r, "<network><name>pass</name><uuid>0a1b2c3d-0000-4000-8000-000000000003</uuid>"
                                           "<forward mode='passthrough'><interface dev='eth1'/><interface dev='eth2'/></forward></network>",
                                        NULL, &n, NULL, &e), 0);
        assert_int_equal(network_port_acquire(r, "pass", NULL, "owner-1", mac, &p, &e), -EBUSY); /* inactive */
        vb_error_free(&e);
        assert_int_equal(network_port_acquire(r, "nope", NULL, "owner-1", mac, &p, &e), -ENOENT);
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_NETWORK);
        vb_error_free(&e);
        assert_int_equal(network_start(r, n, &e), 0);
        assert_int_equal(network_port_acquire(r, "pass", NULL, "owner-1", mac, &p, &e), 0);
        assert_int_equal(p->actual.type, NETWORK_ACTUAL_DIRECT);
        assert_string_equal(p->actual.dev, "eth1");
        assert_int_equal(network_port_acquire(r, "pass", NULL, "owner-2", mac, &p, &e), 0);
        assert_string_equal(p->actual.dev, "eth2");
        assert_int_equal(network_port_acquire(r, "pass", NULL, "owner-3", mac, &p, &e), -EBUSY);
        assert_int_equal(e.code, VB_ERROR_DEVICE_BUSY);
        vb_error_free(&e);
        /* The bridge of the default network. */
        assert_int_equal(network_port_acquire(r, "default", NULL, "owner-1", mac, &p, &e), 0);
        assert_int_equal(p->actual.type, NETWORK_ACTUAL_BRIDGE);
        assert_string_equal(p->actual.bridge, "virbr0");

        /* "Restart": a new registry on the same dirs finds the ports again; owner-2 is gone by then. */
        network_registry_free(r);
        r = registry(defaults);
        n = network_registry_by_name(r, "pass");
        assert_true(network_is_active(n));
        assert_int_equal(n->n_ports, 2);
        assert_int_equal(n->pool->entries[0].connections, 1);
        assert_int_equal(n->pool->entries[1].connections, 1);
        network_ports_prune(r, runs, (void *) "owner-1");
        assert_int_equal(n->n_ports, 1);
        assert_int_equal(n->pool->entries[1].connections, 0);
        assert_int_equal(network_port_acquire(r, "pass", NULL, "owner-3", mac, &p, &e), 0);
        assert_string_equal(p->actual.dev, "eth2");
        network_ports_release_owner(r, "owner-1");
        network_ports_release_owner(r, "owner-3");
        assert_int_equal(n->n_ports, 0);
        assert_int_equal(network_registry_by_name(r, "default")->n_ports, 0);
        assert_int_equal(network_stop(r, n, &e), 0);
        network_registry_free(r);
}

static void test_leases(void **state) {
        _cleanup_free_ char *path = NULL;
        HostDhcpLease *l = NULL;
        size_t n = 0;
        const char *text = "1764230000 52:54:00:77:00:42 10.77.0.110 guest 01:52:54:00:77:00:42\n"
                           "0 52:54:00:77:00:43 10.77.0.111 * *\n"
                           "duid 00:01:00:01:2c:aa:bb:cc\n";

        assert_true(asprintf(&path, "%s/leases", dir) > 0);
        assert_int_equal(host_dnsmasq_read_leases(path, "", &l, &n), 0); /* no file yet: none */
        assert_int_equal(n, 0);
        assert_int_equal(write_file_atomic(path, text, strlen(text), 0600), 0);
        assert_int_equal(host_dnsmasq_read_leases(path, NULL, &l, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(l[0].expiry, 1764230000);
        assert_string_equal(l[0].ip, "10.77.0.110");
        assert_string_equal(l[0].hostname, "guest");
        assert_null(l[1].hostname);
        assert_null(l[1].client_id);
        host_dhcp_leases_free(l, n);
        assert_int_equal(host_dnsmasq_read_leases(path, "52:54:00:77:00:43", &l, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(l[0].mac, "52:54:00:77:00:43");
        host_dhcp_leases_free(l, n);
        assert_int_equal(host_dnsmasq_read_leases(path, "52:54:00:77:00:99", &l, &n), 0);
        assert_int_equal(n, 0);
        free(l);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_registry),
                cmocka_unit_test(test_ports_and_restart),
                cmocka_unit_test(test_leases),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
