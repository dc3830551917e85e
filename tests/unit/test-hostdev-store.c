/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The record of what a running domain took from the host (core/hostdev-store.c): its text both ways, and
 * that anything torn or damaged is refused (never half-read). The restart behaviour itself is tested on
 * the bus in tests/integration/test-hostdev-restart.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/hostdev-internal.h"

static HostdevLeases *sample(void) {
        HostdevLeases *set = hostdev_leases_new("0b3c6e0a-1111-4222-8333-444455556666", "web\nserver");

        assert_non_null(set);
        set->leases = calloc(2, sizeof(HostdevLease));
        assert_non_null(set->leases);
        set->allocated = 2;
        set->leases[0] = (HostdevLease) {
                .address = { 0, 3, 0x10, 0 },
                .detach = HOSTDEV_STEP_TAKEN,
                .driver = strdup("igbvf"),
                .vf = HOSTDEV_STEP_INTENT,
                .pf_ifname = strdup("enp3s0f0"),
                .vf_index = 3,
                .old = { .mac = { 0x02, 0, 0, 0, 0, 0x07 }, .vlan = 7 },
        };
        set->leases[1] = (HostdevLease) { .address = { 0, 5, 0, 1 }, .detach = HOSTDEV_STEP_INTENT };
        set->n = 2;
        return set;
}

static const char sample_text[] =
        "virtbus-hostdev-leases 1\n"
        "domain 0b3c6e0a-1111-4222-8333-444455556666 web server\n"
        "lease 0000:03:10.0 detach=taken driver=igbvf vf=intent pf=enp3s0f0 index=3 mac=02:00:00:00:00:07 vlan=7\n"
        "lease 0000:05:00.1 detach=intent driver=- vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=0\n"
        "end\n";

static void test_round_trip(void **state) {
        _cleanup_(hostdev_leases_freep) HostdevLeases *set = sample(), *back = NULL;
        _cleanup_free_ char *text = NULL, *again = NULL;

        assert_int_equal(hostdev_leases_format(set, &text), 0);
        assert_string_equal(text, sample_text);
        assert_int_equal(hostdev_leases_parse(text, &back), 0);
        assert_string_equal(back->uuid, set->uuid);
        assert_string_equal(back->name, "web server");
        assert_int_equal(back->n, 2);
        assert_int_equal(back->leases[0].detach, HOSTDEV_STEP_TAKEN);
        assert_int_equal(back->leases[0].vf, HOSTDEV_STEP_INTENT);
        assert_string_equal(back->leases[0].driver, "igbvf");
        assert_string_equal(back->leases[0].pf_ifname, "enp3s0f0");
        assert_int_equal(back->leases[0].vf_index, 3);
        assert_memory_equal(back->leases[0].old.mac, set->leases[0].old.mac, 6);
        assert_int_equal(back->leases[0].old.vlan, 7);
        assert_true(host_pci_address_equal(&back->leases[1].address, &set->leases[1].address));
        assert_null(back->leases[1].driver);
        assert_null(back->leases[1].pf_ifname);
        assert_int_equal(back->leases[1].vf, HOSTDEV_STEP_NONE);
        assert_int_equal(hostdev_leases_format(back, &again), 0);
        assert_string_equal(again, sample_text);
}

/* A crash can leave any prefix of a file (on a file system that tears a write): every one is refused. */
static void test_every_prefix_refused(void **state) {
        size_t n = strlen(sample_text);

        for (size_t len = 0; len < n; len++) {
                _cleanup_free_ char *t = strndup(sample_text, len);
                HostdevLeases *set = NULL;

                assert_non_null(t);
                if (hostdev_leases_parse(t, &set) != -EBADMSG)
                        fail_msg("a record cut after %zu bytes was accepted", len);
                assert_null(set);
        }
}

static void test_damaged_refused(void **state) {
        static const char * const bad[] = {
                "",
                "end\n",
                "virtbus-hostdev-leases 2\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\nend\n",
                "virtbus-hostdev-leases 1\nend\n",
                "virtbus-hostdev-leases 1\ndomain not-a-uuid x\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\nend\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=maybe driver=- vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=0\nend\n",
                /* a VF to restore without its PF */
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=none driver=- vf=taken pf=- index=0 mac=00:00:00:00:00:00 vlan=0\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=none driver=- vf=none pf=- index=0 mac=00:00:00:00:00 vlan=0\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=none driver=- vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=9999\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=none driver=- vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=0 more=1\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease 0000:03:10.0 detach=taken driver=../../x vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=0\nend\n",
                "virtbus-hostdev-leases 1\ndomain 0b3c6e0a-1111-4222-8333-444455556666 x\n"
                "lease zzzz detach=none driver=- vf=none pf=- index=0 mac=00:00:00:00:00:00 vlan=0\nend\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                HostdevLeases *set = NULL;

                if (hostdev_leases_parse(bad[i], &set) != -EBADMSG)
                        fail_msg("damaged record %zu was accepted:\n%s", i, bad[i]);
                assert_null(set);
        }
}

static void test_step_table(void **state) {
        for (HostdevStep s = 0; s < _HOSTDEV_STEP_MAX; s++) {
                assert_non_null(hostdev_step_to_string(s));
                assert_int_equal(hostdev_step_from_string(hostdev_step_to_string(s)), s);
        }
        assert_int_equal(hostdev_step_from_string("later"), -EINVAL);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_every_prefix_refused),
                cmocka_unit_test(test_damaged_refused),
                cmocka_unit_test(test_step_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
