/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration between two test-driver services, each on its own bus with its own polkitd (the harness's
 * host and a second one, migrate-hosts.h), over TCP on the loopback: the test driver's simulated state goes
 * through the cookie-checked stream.
 *  - a running domain moves: Prepare (paused, waiting), MigrateTo (MigrationStats, the answer's figures),
 *    wrong cookies refused by both Finishes without a change, Finish on both: it runs on the destination,
 *    saved there (persist), gone from the source (undefine-source); a used cookie is refused;
 *  - a destination without the guest's network refuses, naming it, before anything starts;
 *  - a stream with a wrong cookie is refused (MigrateTo fails, the source runs on) and the destination waits
 *    on for the right one;
 *  - AbortMigration on the destination: its domain goes, and a MigrateTo then fails with the source running;
 *    unknown options and copy-storage are refused;
 *  - virtbusctl migrate NAME DEST (DEST the second host's bus address): the domain moves; to a destination
 *    without its network it fails with status 4, saying why, and the guest runs on at the source. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "migrate-hosts.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name

static MigHost hostb;

static char *domain_xml(const char *name, const char *uuid, const char *devices) {
        char *x;

        assert_true(asprintf(&x, "<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
                                 "<os><type>hvm</type></os><devices>%s</devices></domain>", name, uuid, devices) > 0);
        return x;
}

/* A method call whose arguments are: the strings (n_strings of them), then options as a{sv} from
 * NULL-terminated (key, type char as string, value) triples, then flags 0. */
static sd_bus_message *new_call(sd_bus *bus, const char *path, const char *interface, const char *member) {
        sd_bus_message *m = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, "org.virtbus1", path, interface, member) >= 0);
        return m;
}

static void append_options(sd_bus_message *m, const char * const *opts) {
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        for (size_t i = 0; opts && opts[i]; i += 3) {
                const char *key = opts[i], *type = opts[i + 1], *value = opts[i + 2];
                if (streq(type, "s"))
                        assert_true(sd_bus_message_append(m, "{sv}", key, "s", value) >= 0);
                else if (streq(type, "b"))
                        assert_true(sd_bus_message_append(m, "{sv}", key, "b", (int) streq(value, "true")) >= 0);
                else if (streq(type, "t"))
                        assert_true(sd_bus_message_append(m, "{sv}", key, "t", (uint64_t) strtoull(value, NULL, 10)) >= 0);
                else
                        fail_msg("option type %s", type);
        }
        assert_true(sd_bus_message_close_container(m) >= 0);
}

/* PrepareMigration on bus; returns 0 with the domain's path, uri and cookie (to free), or the error in e. */
static int prepare(sd_bus *bus, const char *xml, const char * const *opts, char **ret_path, char **ret_uri,
                   char **ret_cookie, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(bus, M, "PrepareMigration"), *reply = NULL;
        const char *p, *u, *c;
        int r;

        assert_true(sd_bus_message_append(m, "s", xml) >= 0);
        append_options(m, opts);
        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r < 0)
                return r;
        assert_int_equal(sd_bus_message_read(reply, "oss", &p, &u, &c), 1);
        *ret_path = strdup(p);
        *ret_uri = strdup(u);
        *ret_cookie = strdup(c);
        return 0;
}

/* The "t" figure key of a MigrateTo answer or MigrationStats signal (a{sv}), and whether it says completed. */
static uint64_t stats_figure(sd_bus_message *m, const char *key, bool *ret_completed) {
        const char *k, *type;
        uint64_t found = UINT64_MAX, v;
        int b;

        assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                assert_int_equal(sd_bus_message_read(m, "s", &k), 1);
                assert_true(sd_bus_message_peek_type(m, NULL, &type) > 0);
                if (streq(type, "b")) {
                        assert_int_equal(sd_bus_message_read(m, "v", "b", &b), 1);
                        assert_true(streq(k, "completed") || streq(k, "postcopy"));
                        if (ret_completed && streq(k, "completed"))
                                *ret_completed = b;
                } else {
                        assert_string_equal(type, "t");
                        assert_int_equal(sd_bus_message_read(m, "v", "t", &v), 1);
                        if (streq(k, key))
                                found = v;
                }
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        assert_true(sd_bus_message_exit_container(m) >= 0);
        if (found == UINT64_MAX)
                fail_msg("no figure '%s'", key);
        return found;
}

/* MigrateTo on bus; 0 with the answer's transferred figure (it says completed), or the error in e. */
static int migrate_to(sd_bus *bus, const char *path, const char *uri, const char *cookie, const char * const *opts,
                      uint64_t *ret_transferred, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_call(bus, path, D, "MigrateTo"), *reply = NULL;
        bool completed = false;
        uint64_t t;
        int r;

        assert_true(sd_bus_message_append(m, "ss", uri, cookie) >= 0);
        append_options(m, opts);
        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
        r = sd_bus_call(bus, m, 0, e, &reply);
        if (r < 0)
                return r;
        t = stats_figure(reply, "transferred", &completed);
        assert_true(completed);
        if (ret_transferred)
                *ret_transferred = t;
        return 0;
}

static void running_domain(sd_bus *bus, const char *xml, char **ret_path) {
        *ret_path = harness_define_domain(bus, xml);
        harness_domain_call(bus, *ret_path, "Start");
}

static char *live_xml(sd_bus *bus, const char *path) {
        return harness_domain_xml(bus, path, 0);
}

static void test_migrate(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b = hostb.bus;
        _cleanup_free_ char *xml = domain_xml("mig", "6d1e0000-0000-4000-8000-000000000001", ""), *src = NULL,
                            *dst = NULL, *uri = NULL, *cookie = NULL, *live = NULL, *wrong = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t transferred = 0;
        int persistent = 0;

        running_domain(a, xml, &src);
        live = live_xml(a, src);
        assert_int_equal(prepare(b, live, (const char *[]) { "listen-address", "s", "127.0.0.1", "persist", "b", "true",
                                                             NULL }, &dst, &uri, &cookie, &e), 0);
        assert_string_equal(dst, src); /* the same UUID, the same path */
        assert_true(strncmp(uri, "tcp:127.0.0.1:", 14) == 0);
        assert_int_equal(strlen(cookie), 64);
        assert_int_equal(strspn(cookie, "0123456789abcdef"), 64);
        assert_string_equal(harness_get_string(b, dst, D, "State"), "paused");

        /* Not yet: nothing arrived. */
        harness_call_fails(b, ERR("InvalidState"), "MigrateTo", dst, D, "FinishMigration", "st", cookie, UINT64_C(0));

        w = harness_watch_signal(a, src, D, "MigrationStats");
        assert_int_equal(migrate_to(a, src, uri, cookie, (const char *[]) { "undefine-source", "b", "true", "max-downtime",
                                                                            "t", "100", NULL }, &transferred, &e), 0);
        assert_true(transferred > 0);
        sig = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
        assert_non_null(sig);
        assert_int_equal(stats_figure(sig, "transferred", NULL), transferred);
        /* The source waits, paused, for the outcome. */
        assert_string_equal(harness_get_string(a, src, D, "State"), "paused");

        /* Another cookie changes nothing, on either side. */
        wrong = strdup(cookie);
        wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
        harness_call_fails(b, SD_BUS_ERROR_ACCESS_DENIED, "cookie", dst, D, "FinishMigration", "st", wrong, UINT64_C(0));
        harness_call_fails(a, SD_BUS_ERROR_ACCESS_DENIED, "cookie", src, D, "FinishMigration", "st", wrong, UINT64_C(0));
        assert_string_equal(harness_get_string(b, dst, D, "State"), "paused");

        sd_bus_message_unref(harness_call_ok(b, dst, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, dst, D, "State"), "running");
        assert_true(sd_bus_get_property_trivial(b, "org.virtbus1", dst, D, "Persistent", &e, 'b', &persistent) >= 0);
        assert_true(persistent);
        sd_bus_message_unref(harness_call_ok(a, src, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "mig");

        /* Used. */
        harness_call_fails(b, ERR("InvalidState"), "not being migrated", dst, D, "FinishMigration", "st", cookie,
                           UINT64_C(0));
        harness_domain_call(b, dst, "Destroy");
        harness_domain_call(b, dst, "Undefine");
}

static void test_network_missing(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b = hostb.bus;
        _cleanup_free_ char *xml = domain_xml("mig-net", "6d1e0000-0000-4000-8000-000000000002",
                                              "<interface type='network'><source network='only-a'/></interface>"),
                            *net = NULL, *src = NULL, *live = NULL, *p = NULL, *u = NULL, *c = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *o;

        reply = harness_call_ok(a, M, "CreateNetwork", "st",
                                "<network><name>only-a</name><bridge name='vbmigA0'/></network>", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        net = strdup(o);
        running_domain(a, xml, &src);
        live = live_xml(a, src);
        assert_true(prepare(b, live, NULL, &p, &u, &c, &e) < 0);
        harness_assert_error(&e, ERR("NoSuchNetwork"), "'only-a'");
        sd_bus_error_free(&e);
        /* Nothing started there. */
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "mig-net");
        assert_string_equal(harness_get_string(a, src, D, "State"), "running");
        harness_domain_call(a, src, "Destroy");
        harness_domain_call(a, src, "Undefine");
        sd_bus_message_unref(harness_call_ok(a, net, "org.virtbus1.Network", "Stop", "t", UINT64_C(0)));
}

static void test_wrong_cookie_and_abort(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b = hostb.bus;
        _cleanup_free_ char *xml = domain_xml("mig-ab", "6d1e0000-0000-4000-8000-000000000003", ""), *src = NULL,
                            *live = NULL, *dst = NULL, *uri = NULL, *cookie = NULL, *wrong = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        running_domain(a, xml, &src);
        live = live_xml(a, src);
        assert_int_equal(prepare(b, live, (const char *[]) { "listen-address", "s", "127.0.0.1", NULL }, &dst, &uri,
                                 &cookie, &e), 0);

        /* A stream with another cookie: refused, the source runs on, the destination waits on. */
        wrong = strdup(cookie);
        wrong[63] = wrong[63] == '0' ? '1' : '0';
        assert_true(migrate_to(a, src, uri, wrong, NULL, NULL, &e) < 0);
        harness_assert_error(&e, ERR("OperationFailed"), "refused");
        sd_bus_error_free(&e);
        assert_string_equal(harness_get_string(a, src, D, "State"), "running");
        assert_string_equal(harness_get_string(b, dst, D, "State"), "paused");

        /* Options: unknown ones are refused, naming them; copy-storage needs the destination's export, and
         * the test driver has none. */
        assert_true(migrate_to(a, src, uri, cookie, (const char *[]) { "speed", "t", "1", NULL }, NULL, &e) < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "'speed'");
        sd_bus_error_free(&e);
        assert_true(migrate_to(a, src, uri, cookie, (const char *[]) { "copy-storage", "b", "true", NULL }, NULL, &e) < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "nbd-key");
        sd_bus_error_free(&e);
        assert_true(migrate_to(a, src, uri, cookie, (const char *[]) { "copy-storage", "b", "true", "nbd-uri", "s",
                                                                       "tcp:10.0.0.1:1", "nbd-key", "s", "00", NULL },
                               NULL, &e) < 0);
        harness_assert_error(&e, ERR("NotSupported"), "copy-storage");
        sd_bus_error_free(&e);

        /* Abort on the destination: its domain goes; the source, told to go there, runs on. */
        sd_bus_message_unref(harness_call_ok(b, dst, D, "AbortMigration", "t", UINT64_C(0)));
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "mig-ab");
        assert_true(migrate_to(a, src, uri, cookie, NULL, NULL, &e) < 0);
        harness_assert_error(&e, ERR("OperationFailed"), NULL);
        sd_bus_error_free(&e);
        assert_string_equal(harness_get_string(a, src, D, "State"), "running");
        harness_call_fails(a, ERR("InvalidState"), "not being migrated", src, D, "AbortMigration", "t", UINT64_C(0));
        harness_domain_call(a, src, "Destroy");
        harness_domain_call(a, src, "Undefine");
}

static int ctl(Harness *h, const char *name, const char *extra, HarnessResult *r) {
        _cleanup_free_ char *address = NULL;
        const char *ctl_path = getenv("VIRTBUS_CTL");

        assert_non_null(ctl_path);
        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { ctl_path, address, "migrate", name, hostb.address,
                                                        "--listen-address", "127.0.0.1", extra, NULL },
                                     NULL, 60 * HARNESS_USEC_PER_SEC, r), 0);
        return r->status;
}

static void test_virtbusctl(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b = hostb.bus;
        _cleanup_free_ char *xml = domain_xml("mig-ctl", "6d1e0000-0000-4000-8000-000000000004", ""),
                            *xml_net = domain_xml("mig-ctl-net", "6d1e0000-0000-4000-8000-000000000005",
                                                  "<interface type='network'><source network='only-a2'/></interface>"),
                            *src = NULL, *src_net = NULL, *net = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        HarnessResult r = {};
        const char *o;

        running_domain(a, xml, &src);
        if (ctl(h, "mig-ctl", "--undefine-source", &r) != 0)
                fail_msg("virtbusctl migrate exited %d: %s%s", r.status, strempty(r.out), strempty(r.err));
        assert_non_null(strstr(r.out, "Domain 'mig-ctl' migrated"));
        harness_result_done(&r);
        assert_string_equal(harness_get_string(b, src, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "mig-ctl");
        harness_domain_call(b, src, "Destroy");

        reply = harness_call_ok(a, M, "CreateNetwork", "st",
                                "<network><name>only-a2</name><bridge name='vbmigA1'/></network>", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        net = strdup(o);
        running_domain(a, xml_net, &src_net);
        assert_int_equal(ctl(h, "mig-ctl-net", "--persistent", &r), 4); /* no such network */
        assert_non_null(strstr(r.err, "only-a2"));
        assert_non_null(strstr(r.err, "runs on at the source"));
        harness_result_done(&r);
        assert_string_equal(harness_get_string(a, src_net, D, "State"), "running");
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "mig-ctl-net");
        harness_domain_call(a, src_net, "Destroy");
        harness_domain_call(a, src_net, "Undefine");
        sd_bus_message_unref(harness_call_ok(a, net, "org.virtbus1.Network", "Stop", "t", UINT64_C(0)));
}

static int setup(void **state) {
        mig_host_start(*state, "hostb", "test", NULL, &hostb);
        return 0;
}

static int teardown(void **state) {
        mig_host_stop(&hostb, getenv("VIRTBUS_TEST_VERBOSE"));
        return 0;
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_migrate, setup),
                cmocka_unit_test(test_network_missing),
                cmocka_unit_test(test_wrong_cookie_and_abort),
                cmocka_unit_test_teardown(test_virtbusctl, teardown),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        return harness_run_group(tests, &(HarnessOptions) {});
}
