/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* core/domain-migrate.c's pure parts: the URIs MigrateTo accepts (and the sentences for those it does not),
 * and the cookie comparison. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/domain-migrate.h"

static void test_uri(void **state) {
        struct sockaddr_storage sa;
        VbError e = VB_ERROR_NULL;
        char buf[INET6_ADDRSTRLEN];
        unsigned len;

        assert_int_equal(migration_parse_uri("tcp:10.231.0.2:49152", &sa, &len, &e), 0);
        assert_int_equal(sa.ss_family, AF_INET);
        assert_int_equal(len, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(((struct sockaddr_in *) &sa)->sin_port), 49152);
        assert_string_equal(inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, buf, sizeof buf), "10.231.0.2");

        assert_int_equal(migration_parse_uri("tcp:[fd00::2]:7", &sa, &len, &e), 0);
        assert_int_equal(sa.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *) &sa)->sin6_port), 7);
        assert_string_equal(inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, buf, sizeof buf), "fd00::2");

        static const struct {
                const char *uri, *says;
        } bad[] = {
                { "unix:/tmp/x", "tcp:ADDRESS:PORT" },
                { "tcp:10.0.0.1", "no :PORT" },
                { "tcp:10.0.0.1:0", "port must be" },
                { "tcp:10.0.0.1:65536", "port must be" },
                { "tcp:10.0.0.1:12x", "port must be" },
                { "tcp:host.example:22", "not a numeric" },
                { "tcp:fd00::2:22", "brackets" },
                { "tcp:[fd00::2]22", "brackets" },
                { "tcp::22", "no valid address" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_true(migration_parse_uri(bad[i].uri, &sa, &len, &e) < 0);
                assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
                if (!strstr(e.message, bad[i].says))
                        fail_msg("'%s': '%s' does not say '%s'", bad[i].uri, e.message, bad[i].says);
                vb_error_free(&e);
        }
}

static void test_cookie(void **state) {
        const char *c = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char other[65];

        assert_true(migration_cookie_equal(c, c));
        memcpy(other, c, sizeof other);
        other[63] = '0';
        assert_false(migration_cookie_equal(c, other));
        other[63] = 'f';
        other[0] = '1';
        assert_false(migration_cookie_equal(c, other));
        assert_false(migration_cookie_equal(c, ""));
        assert_false(migration_cookie_equal(c, "0123456789abcdef"));
        assert_false(migration_cookie_equal("", ""));
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_uri),
                cmocka_unit_test(test_cookie),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
