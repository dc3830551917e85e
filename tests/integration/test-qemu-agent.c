/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent with real QEMUs and the tiny guest (tests/guest/build-guest): Debian's qemu-guest-agent
 * running in it (GetGuestInfo, InterfaceAddresses source 1 with the address the guest set, the agent found
 * again after a restart of virtbusd, Shutdown through the agent), a channel nobody in the guest opened, a domain
 * without the channel, and a hung agent (the port opened, nothing answered), which answers Timeout while
 * the other calls are answered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define D HARNESS_DOMAIN_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static void get_stats(sd_bus *bus, const char *path, uint64_t groups, HarnessStats *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, D, "GetStats", "tt", groups, UINT64_C(0));
        harness_stats_read(reply, ret);
}

static char *agent_domain(Harness *h, sd_bus *bus, const char *name, const char *cmdline, bool channel, const char *extra,
                          char **ret_serial) {
        const char *g = harness_guest_dir(h);
        _cleanup_free_ char *xml = NULL;
        char *serial;

        assert_true(asprintf(&serial, "%s/%s.serial", harness_dir(h), name) > 0);
        (void) unlink(serial);
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>128</memory>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd-agent.gz</initrd><cmdline>console=ttyS0 quiet %s</cmdline></os>"
                             "<features><acpi/></features><devices>%s%s"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial></devices></domain>",
                             name, g, g, cmdline,
                             channel ? "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
                                     : "",
                             strempty(extra), serial) >= 0);
        *ret_serial = serial;
        return harness_define_domain(bus, xml);
}

static int get_bool_property(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int v = -1;
        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, property, &e, 'b', &v), 0);
        return v;
}

static void wait_agent_connected(sd_bus *bus, const char *path) {
        uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;

        while (get_bool_property(bus, path, "GuestAgentConnected") != 1) {
                if (harness_now_usec() > deadline)
                        fail_msg("the guest agent did not connect");
                usleep(100 * 1000);
        }
}

typedef struct AsyncReply {
        bool done;
        char *error_name;
} AsyncReply;

static int on_async_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        AsyncReply *a = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        a->done = true;
        a->error_name = e ? strdup(e->name) : NULL;
        return 0;
}

/* A virtio NIC on QEMU's user network; the guest sets an address on it by hand (no traffic leaves). */
#define NIC_MAC "52:54:00:00:0a:51"
#define NIC "<interface type='user'><mac address='" NIC_MAC "'/><model type='virtio'/></interface>"

/* The address the agent guest sets on its NIC by hand (virtbus.ip: no DHCP, no traffic). */
#define NIC_ADDRESS "192.0.2.51"

/* InterfaceAddresses source 1 until the guest's eth0 has its address (the agent may answer before the kernel
 * probed the NIC, or before the guest's init set the address): the agent lists eth0 with the domain's MAC
 * and the address, and no loopback. */
static void check_agent_interfaces(sd_bus *bus, const char *path) {
        uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                        harness_call_ok(bus, path, D, "InterfaceAddresses", "ut", 1, UINT64_C(0));
                const char *name, *mac, *address;
                bool eth0 = false, addressed = false;
                unsigned n = 0;
                uint32_t prefix;
                uint8_t family;

                assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))"), 1);
                while (sd_bus_message_enter_container(reply, 'r', "ssa(ysu)") > 0) {
                        assert_int_equal(sd_bus_message_read(reply, "ss", &name, &mac), 1);
                        assert_string_not_equal(name, "lo");
                        print_message("agent: interface %s %s\n", name, mac);
                        if (streq(name, "eth0")) {
                                assert_string_equal(mac, NIC_MAC);
                                eth0 = true;
                        }
                        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ysu)"), 1);
                        while (sd_bus_message_read(reply, "(ysu)", &family, &address, &prefix) > 0) {
                                assert_true(family == 4 || family == 6);
                                if (eth0 && family == 4 && streq(address, NIC_ADDRESS)) {
                                        assert_int_equal(prefix, 24);
                                        addressed = true;
                                }
                        }
                        assert_int_equal(sd_bus_message_exit_container(reply), 1);
                        assert_int_equal(sd_bus_message_exit_container(reply), 1);
                        n++;
                }
                if (addressed) {
                        assert_int_equal(n, 1); /* the one NIC; the loopback left out */
                        return;
                }
                if (harness_now_usec() > deadline)
                        fail_msg("the guest agent never listed eth0 with " NIC_ADDRESS "/24");
                usleep(200 * 1000);
        }
}

/* The real qemu-guest-agent in the tiny guest: GetGuestInfo, InterfaceAddresses, the agent again after a
 * restart of virtbusd, then Shutdown through it. */
static void test_agent_real(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *serial = NULL,
                            *path = agent_domain(h, bus, "agent", "virtbus.agent virtbus.ip=" NIC_ADDRESS "/24", true,
                                                 NIC, &serial);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        HarnessStats s = {};

        harness_domain_call(bus, path, "Start");
        wait_agent_connected(bus, path);
        reply = harness_call_ok(bus, path, D, "GetGuestInfo", "tt", UINT64_C(0), UINT64_C(0));
        harness_stats_read(reply, &s);
        assert_string_equal(harness_stats_string(&s, "hostname"), "virtbus-guest");
        assert_string_equal(harness_stats_string(&s, "os.id"), "virtbus-tiny");
        assert_string_equal(harness_stats_string(&s, "os.pretty-name"), "virtbus tiny guest 1");
        assert_string_equal(harness_stats_string(&s, "os.machine"), "x86_64");
        assert_int_equal(harness_stats_number(&s, "timezone.offset", 'i'), 0);
        (void) harness_stats_number(&s, "user.count", 'u');
        (void) harness_stats_number(&s, "fs.count", 'u');
        print_message("guest agent: %zu keys, kernel %s\n", s.n, strempty(harness_stats_string(&s, "os.kernel-release")));
        harness_stats_done(&s);
        check_agent_interfaces(bus, path);
        /* virtbusd restarted: it connects to the agent's socket again and learns that the guest's agent
         * has its port open (nothing in the guest changes). */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        wait_agent_connected(bus, path);
        check_agent_interfaces(bus, path);
        /* Powered off by the agent: the reply comes once the domain stopped. */
        sd_bus_message_unref(harness_call_ok(bus, path, D, "Shutdown", "t", UINT64_C(2)));
        assert_string_equal(harness_get_string(bus, path, D, "State"), "shutoff");
        harness_domain_call(bus, path, "Undefine");
}

/* No agent: no channel at all, or one nobody in the guest opened: NotSupported at once. A hung agent (the
 * port opened, nothing answered): Timeout, while other calls go on being answered. */
static void test_agent_absent_hung(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h), *other = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL;
        _cleanup_free_ char *none = agent_domain(h, bus, "nochannel", "", false, NULL, &s1);
        _cleanup_free_ char *absent = agent_domain(h, bus, "noagent", "", true, NULL, &s2);
        _cleanup_free_ char *hung = agent_domain(h, bus, "hungagent", "virtbus.agent-hang", true, NULL, &s3);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        AsyncReply a = {};
        HarnessStats st = {};

        harness_domain_call(bus, none, "Start");
        harness_call_fails(bus, ERR("NotSupported"), "no guest agent channel", none, D, "GetGuestInfo", "tt", UINT64_C(0),
                           UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "no guest agent channel", none, D, "Shutdown", "t", UINT64_C(2));
        harness_call_fails(bus, ERR("NotSupported"), "no guest agent channel", none, D, "InterfaceAddresses", "ut", 1,
                           UINT64_C(0));
        harness_domain_call(bus, none, "Destroy");

        harness_domain_call(bus, absent, "Start");
        harness_wait_for_text(s2, "VIRTBUS-GUEST-BOOTED", 1, GUEST_TIMEOUT_USEC);
        assert_int_equal(get_bool_property(bus, absent, "GuestAgentConnected"), 0);
        harness_call_fails(bus, ERR("NotSupported"), "not connected", absent, D, "GetGuestInfo", "tt", UINT64_C(0),
                           UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "not connected", absent, D, "InterfaceAddresses", "ut", 1,
                           UINT64_C(0));
        harness_domain_call(bus, absent, "Destroy");

        harness_domain_call(bus, hung, "Start");
        wait_agent_connected(bus, hung);
        assert_true(sd_bus_call_method_async(other, &slot, HARNESS_SERVICE, hung, D, "GetGuestInfo", on_async_reply, &a,
                                             "tt", UINT64_C(0), UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(other) >= 0);
        /* Meanwhile the service answers the rest: statistics of the same domain, its properties. */
        get_stats(bus, hung, 2, &st);
        (void) harness_stats_number(&st, "cpu.time", 't');
        harness_stats_done(&st);
        assert_string_equal(harness_get_string(bus, hung, D, "State"), "running");
        while (sd_bus_process(other, NULL) > 0)
                ;
        assert_false(a.done); /* still waiting for the agent */
        while (!a.done) {
                assert_true(sd_bus_wait(other, 30 * HARNESS_USEC_PER_SEC) >= 0);
                while (sd_bus_process(other, NULL) > 0)
                        ;
        }
        assert_string_equal(strempty(a.error_name), ERR("Timeout"));
        free(a.error_name);
        harness_call_fails(bus, ERR("Timeout"), "did not answer", hung, D, "Shutdown", "t", UINT64_C(2));
        harness_call_fails(bus, ERR("Timeout"), "did not answer", hung, D, "InterfaceAddresses", "ut", 1, UINT64_C(0));
        assert_string_equal(harness_get_string(bus, hung, D, "State"), "running");
        harness_domain_call(bus, hung, "Destroy");
        harness_domain_call(bus, none, "Undefine");
        harness_domain_call(bus, absent, "Undefine");
        harness_domain_call(bus, hung, "Undefine");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_agent_real, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_agent_absent_hung, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-agent: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) {
                "--driver", "qemu", "--log-level", "debug", NULL } });
}
