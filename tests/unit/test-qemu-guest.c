/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent's guest-network-get-interfaces answer as InterfaceAddresses source 1 lists it
 * (drivers/qemu/qemu-guest.c). The real agent in the tiny guest is asked in
 * tests/integration/test-qemu-agent.c; its NIC has no address there, so the address mapping is checked here
 * on answers shaped as the agent's schema describes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drivers/qemu/qemu-driver-internal.h"

static void parse(const char *text, DomainIfAddresses **ret, size_t *ret_n) {
        struct json_object *o = json_tokener_parse(text);

        assert_non_null(o);
        assert_int_equal(qemu_agent_interfaces_parse(o, ret, ret_n), 0);
        json_object_put(o);
}

static void test_interfaces(void **state) {
        DomainIfAddresses *l = NULL;
        size_t n = 0;

        parse("[{\"name\":\"lo\",\"hardware-address\":\"00:00:00:00:00:00\",\"ip-addresses\":["
              "{\"ip-address-type\":\"ipv4\",\"ip-address\":\"127.0.0.1\",\"prefix\":8},"
              "{\"ip-address-type\":\"ipv6\",\"ip-address\":\"::1\",\"prefix\":128}]},"
              "{\"name\":\"eth0\",\"hardware-address\":\"52:54:00:12:34:56\",\"ip-addresses\":["
              "{\"ip-address-type\":\"ipv4\",\"ip-address\":\"192.0.2.7\",\"prefix\":24},"
              "{\"ip-address-type\":\"ipv6\",\"ip-address\":\"fe80::5054:ff:fe12:3456\",\"prefix\":64},"
              "{\"ip-address-type\":\"other\",\"ip-address\":\"x\",\"prefix\":1}],"
              "\"statistics\":{\"rx-bytes\":1}},"
              "{\"name\":\"eth1\",\"hardware-address\":\"52:54:00:12:34:57\"},"
              "{\"name\":\"tun0\"}]",
              &l, &n);
        assert_int_equal(n, 3);
        assert_string_equal(l[0].name, "eth0");
        assert_string_equal(l[0].mac, "52:54:00:12:34:56");
        assert_int_equal(l[0].n_addrs, 2);
        assert_int_equal(l[0].addrs[0].family, 4);
        assert_string_equal(l[0].addrs[0].address, "192.0.2.7");
        assert_int_equal(l[0].addrs[0].prefix, 24);
        assert_int_equal(l[0].addrs[1].family, 6);
        assert_string_equal(l[0].addrs[1].address, "fe80::5054:ff:fe12:3456");
        assert_int_equal(l[0].addrs[1].prefix, 64);
        assert_string_equal(l[1].name, "eth1");
        assert_string_equal(l[1].mac, "52:54:00:12:34:57");
        assert_int_equal(l[1].n_addrs, 0);
        /* No hardware address (a tunnel): an empty MAC. */
        assert_string_equal(l[2].name, "tun0");
        assert_string_equal(l[2].mac, "");
        domain_if_addresses_free(l, n);

        /* Only the loopback, or not a list at all: nothing. */
        parse("[{\"name\":\"lo\",\"hardware-address\":\"00:00:00:00:00:00\"}]", &l, &n);
        assert_int_equal(n, 0);
        domain_if_addresses_free(l, n);
        parse("{}", &l, &n);
        assert_int_equal(n, 0);
        domain_if_addresses_free(l, n);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_interfaces),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
