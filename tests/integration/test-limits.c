/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* No caller holds up another: documents are parsed off the event loop, a caller other than root is asked
 * about by polkit before its document is parsed (with the name read ahead), and each caller has a bounded
 * number of calls with documents in flight (LimitsExceeded beyond). No timing is asserted: only that the
 * answers are the right ones. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define MAX_BYTES (4U * 1024U * 1024U)
#define CALL_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

/* A domain of the test driver named name, with disks until it is close to bytes long; tail (e.g. an
 * unknown element, or broken XML) comes last, after the devices. */
static char *big_domain(const char *name, size_t bytes, const char *tail) {
        size_t size = bytes + 4096, len = 0;
        char *x = malloc(size);

        assert_non_null(x);
        len += (size_t) snprintf(x, size,
                                 "<domain type='test'>\n  <name>%s</name>\n  <memory unit='MiB'>256</memory>\n"
                                 "  <vcpu>1</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n",
                                 name);
        for (unsigned i = 0; len + 512 < bytes; i++) {
                char dev[8] = "vd";
                unsigned n = i;

                /* vda ... vdz, vdaa ...: each disk its own target */
                for (size_t k = 2; k < 6; k++, n /= 26) {
                        dev[k] = (char) ('a' + n % 26);
                        if (n < 26) {
                                dev[k + 1] = 0;
                                break;
                        }
                }
                len += (size_t) snprintf(x + len, size - len,
                                         "    <disk type='file' device='disk'><source file='/var/lib/stall/%u.img'/>"
                                         "<target dev='%s' bus='virtio'/></disk>\n", i, dev);
        }
        snprintf(x + len, size - len, "  </devices>\n%s</domain>\n", tail ?: "");
        return x;
}

/* Calls DefineDomain with xml from bus without waiting; the reply goes to *slot_reply. */
static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        sd_bus_message **ret = userdata;

        *ret = sd_bus_message_ref(m);
        return 0;
}

static void define_async(sd_bus *bus, const char *xml, sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, M, "DefineDomain") >= 0);
        assert_true(sd_bus_message_append(call, "st", xml, UINT64_C(0)) >= 0);
        *ret_reply = NULL;
        assert_true(sd_bus_call_async(bus, NULL, call, on_reply, ret_reply, CALL_TIMEOUT_USEC) >= 0);
}

/* Processes bus until every reply of replies[0..n) arrived. */
static void wait_replies(sd_bus *bus, sd_bus_message **replies, size_t n) {
        uint64_t end = harness_now_usec() + 2 * CALL_TIMEOUT_USEC;

        for (;;) {
                size_t missing = 0;

                for (size_t i = 0; i < n; i++)
                        missing += !replies[i];
                if (missing == 0)
                        return;
                if (harness_now_usec() > end)
                        fail_msg("%zu replies did not arrive", missing);
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                assert_true(sd_bus_wait(bus, 100 * HARNESS_USEC_PER_MSEC) >= 0);
        }
}

static const char *error_of(sd_bus_message *reply) {
        return sd_bus_message_is_method_error(reply, NULL) ? sd_bus_message_get_error(reply)->name : NULL;
}

/* polkit is asked before the document is parsed: a maximal definition that is broken after its name is
 * refused (by a rule that sees the name) as if it were fine, and only a caller who may define domains
 * gets to hear that it is broken. */
static void test_polkit_before_parse(void **state) {
        Harness *h = *state;
        const char *details[] = { "domain", "stall-denied", NULL };
        _cleanup_free_ char *broken = big_domain("stall-denied", MAX_BYTES - 1024, "<broken");
        _cleanup_free_ char *other = big_domain("stall-other", MAX_BYTES - 1024, "<broken");
        bool authorized = true, challenge = false;

        assert_true(strlen(broken) <= MAX_BYTES);
        assert_int_equal(harness_polkit_add_rules(h, "60-stall-test.rules",
                                                  "polkit.addRule(function(action, subject) {\n"
                                                  "        if (action.id == 'org.virtbus1.domain.manage' &&\n"
                                                  "            action.lookup('domain') == 'stall-denied')\n"
                                                  "                return polkit.Result.NO;\n"
                                                  "});\n"), 0);
        for (unsigned i = 0; i < 100; i++) {
                assert_int_equal(harness_polkit_check(h, HARNESS_USER_PLAIN, "org.virtbus1.domain.manage", details,
                                                      false, &authorized, &challenge), 0);
                if (!authorized && !challenge)
                        break;
                usleep(100 * 1000);
        }
        assert_false(challenge);

        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_ACCESS_DENIED, NULL, M, "DefineDomain",
                           "st", broken, UINT64_C(0));
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_ACCESS_DENIED, NULL, M, "CreateDomain",
                           "st", broken, UINT64_C(0));
        /* Another name: polkit's default for a plain user (a challenge), still without parsing. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           NULL, M, "DefineDomain", "st", other, UINT64_C(0));
        /* Who may define domains learns that it is broken. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_VIRTBUS), ERR("InvalidXML"), "malformed", M, "DefineDomain",
                           "st", other, UINT64_C(0));
        harness_call_fails(harness_bus_root(h), ERR("InvalidXML"), "malformed", M, "DefineDomain", "st", broken,
                           UINT64_C(0));
        /* A network: the same before its (much smaller) parse. */
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           NULL, M, "DefineNetwork", "st", "<network><name>stall-net</name><broken", UINT64_C(0));
        harness_call_fails(harness_bus_root(h), ERR("InvalidXML"), NULL, M, "DefineNetwork", "st",
                           "<network><name>stall-net</name><broken", UINT64_C(0));
}

/* A name further than the read-ahead goes (or none): polkit is asked without it before parsing, and
 * with the parsed name after. */
static void test_name_not_ahead(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *xml = NULL, *path = NULL;
        _cleanup_free_ char *pad = malloc(80 * 1024);

        assert_non_null(pad);
        memset(pad, 'x', 80 * 1024 - 1);
        pad[80 * 1024 - 1] = 0;
        assert_true(asprintf(&xml,
                             "<domain type='test'><memory unit='MiB'>64</memory><!-- %s --><name>late-name</name>"
                             "<os><type arch='x86_64'>hvm</type></os></domain>", pad) > 0);
        harness_call_fails(harness_bus_as(h, HARNESS_USER_PLAIN), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           NULL, M, "DefineDomain", "st", xml, UINT64_C(0));
        path = harness_define_domain(harness_bus_as(h, HARNESS_USER_VIRTBUS), xml);
        assert_string_equal(harness_get_string(harness_bus_root(h), path, HARNESS_DOMAIN_INTERFACE, "Name"),
                            "late-name");
        harness_domain_call(harness_bus_root(h), path, "Undefine");
}

/* While unprivileged callers send maximal definitions again and again, root's calls are answered. */
static void test_root_answered_under_load(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain[4] = {};
        _cleanup_free_ char *xml = big_domain("stall-load", MAX_BYTES - 1024, NULL);
        _cleanup_free_ char *path = harness_define_test_domain(root, "stall-root", "");

        for (size_t i = 0; i < ELEMENTSOF(plain); i++)
                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_PLAIN, &plain[i]), 0);
        for (unsigned round = 0; round < 5; round++) {
                sd_bus_message *replies[ELEMENTSOF(plain)] = {};

                for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                        define_async(plain[i], xml, &replies[i]);
                        assert_true(sd_bus_flush(plain[i]) >= 0);
                }
                for (unsigned k = 0; k < 5; k++) {
                        _cleanup_free_ char *desc = harness_domain_xml(root, path, 0);
                        assert_non_null(strstr(desc, "<name>stall-root</name>"));
                }
                for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                        wait_replies(plain[i], &replies[i], 1);
                        assert_string_equal(error_of(replies[i]), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
                        sd_bus_message_unref(replies[i]);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(plain); i++)
                sd_bus_flush_close_unref(plain[i]);
        harness_domain_call(root, path, "Undefine");
}

/* 40 calls at once from one connection: 16 are in flight, the others that come meanwhile hear
 * LimitsExceeded; once answered, the caller may call again. */
static void test_calls_in_flight(void **state) {
        Harness *h = *state;
        sd_bus *bus = NULL;
        sd_bus_message *replies[40] = {};
        /* valid XML that the schema refuses at its end: parsed in full, and nothing is defined */
        _cleanup_free_ char *xml = big_domain("stall-many", 256 * 1024, "<no-such-element/>");
        _cleanup_free_ char *path = NULL;
        unsigned limited = 0, invalid = 0;

        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &bus), 0);
        for (size_t i = 0; i < ELEMENTSOF(replies); i++)
                define_async(bus, xml, &replies[i]);
        wait_replies(bus, replies, ELEMENTSOF(replies));
        for (size_t i = 0; i < ELEMENTSOF(replies); i++) {
                const char *e = error_of(replies[i]);

                assert_non_null(e);
                if (streq(e, ERR("LimitsExceeded")))
                        limited++;
                else if (streq(e, ERR("InvalidXML")))
                        invalid++;
                else
                        fail_msg("unexpected error %s", e);
                sd_bus_message_unref(replies[i]);
        }
        print_message("%u InvalidXML, %u LimitsExceeded\n", invalid, limited);
        assert_true(invalid >= 16);
        assert_true(limited >= 1);
        /* Nothing is left counted against the caller. */
        path = harness_define_test_domain(bus, "stall-after", "");
        harness_domain_call(bus, path, "Undefine");
        sd_bus_flush_close_unref(bus);
}

/* polkitd hangs: a caller who needs its answer is refused after a bounded wait (never allowed), and root,
 * who needs none, is answered meanwhile. Then polkitd goes away: a refusal at once. */
static void test_polkitd_hung_then_gone(void **state) {
        Harness *h = *state;
        sd_bus *plain = harness_bus_as(h, HARNESS_USER_PLAIN), *root = harness_bus_root(h);
        pid_t polkitd = harness_polkitd_pid(h);
        const char *xml = "<domain type='test'><name>hung</name><memory unit='MiB'>64</memory>"
                          "<os><type>hvm</type></os></domain>";
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t t0, t1;
        int r;

        assert_true(polkitd > 0);
        assert_int_equal(kill(polkitd, SIGSTOP), 0);
        t0 = harness_now_usec();
        {
                /* Root in the meantime: answered, polkit is not its business. */
                sd_bus_message *reply = harness_call_ok(root, M, "ListDomains", "t", UINT64_C(0));
                sd_bus_message_unref(reply);
        }
        r = sd_bus_call_method(plain, "org.virtbus1", M, "DefineDomain", &e, NULL, "st", xml, UINT64_C(0));
        t1 = harness_now_usec();
        assert_int_equal(kill(polkitd, SIGCONT), 0);
        assert_true(r < 0);
        assert_true(sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED));
        assert_non_null(strstr(e.message, "polkit"));
        /* Bounded: well before the caller's own 25 s. */
        assert_true(t1 - t0 < 20 * HARNESS_USEC_PER_SEC);
        sd_bus_error_free(&e);

        /* polkitd gone for good: refused at once, with the reason. */
        assert_int_equal(kill(polkitd, SIGKILL), 0);
        usleep(200 * 1000);
        r = sd_bus_call_method(plain, "org.virtbus1", M, "DefineDomain", &e, NULL, "st", xml, UINT64_C(0));
        assert_true(r < 0);
        assert_true(sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED));
        sd_bus_error_free(&e);
        /* Nothing was defined either time. */
        r = sd_bus_call_method(root, "org.virtbus1", M, "GetDomainByName", &e, NULL, "s", "hung");
        assert_true(r < 0);
        sd_bus_error_free(&e);
}

/* The arguments are read in a worker thread now: what is wrong with them is still said, to root and to
 * others alike, before anything is asked or parsed. */
static void test_arguments_refused(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *huge = big_domain("stall-huge", MAX_BYTES + 4096, NULL);
        sd_bus *buses[] = { harness_bus_root(h), harness_bus_as(h, HARNESS_USER_PLAIN) };

        for (size_t i = 0; i < ELEMENTSOF(buses); i++) {
                harness_call_fails(buses[i], SD_BUS_ERROR_INVALID_ARGS, "Unknown flags 0x80", M, "DefineDomain", "st",
                                   "<domain type='test'><name>x</name></domain>", UINT64_C(0x80));
                harness_call_fails(buses[i], SD_BUS_ERROR_INVALID_ARGS, "The definition is empty", M, "DefineDomain",
                                   "st", "", UINT64_C(0));
                harness_call_fails(buses[i], SD_BUS_ERROR_INVALID_ARGS, "The definition is larger than", M,
                                   "CreateDomain", "st", huge, UINT64_C(0));
        }
}

/* Every dispatch longer than the threshold is logged with the message it processed (a threshold of a
 * microsecond makes every dispatch slow, so this needs no slow machine and asserts no timing). */
static void test_slow_dispatch_logged(void **state) {
        Harness *h = *state;
        const char *args[] = { "--slow-dispatch=0.001", NULL };
        bool found = false;

        assert_int_equal(harness_daemon_stop(h), 0);
        assert_int_equal(harness_daemon_start(h, args), 0);
        /* At most a few warnings a second are logged: call until one names the call. */
        for (unsigned i = 0; i < 100 && !found; i++) {
                _cleanup_free_ char *log = NULL;

                sd_bus_message_unref(harness_call_ok(harness_bus_root(h), M, "ListDomains", "t", UINT64_C(0)));
                log = harness_read_file(harness_daemon_log_path(h));
                assert_non_null(log);
                found = strstr(log, "Slow dispatch: the event loop was held for ") &&
                        strstr(log, "by the D-Bus call org.virtbus1.Manager.ListDomains on /org/virtbus1 from :");
                if (!found)
                        usleep(100 * 1000);
        }
        assert_true(found);
        assert_int_equal(harness_daemon_stop(h), 0);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
}

/* A uid other than root has a budget of document bytes a second: a document over it waits, unanswered,
 * and is then handled as any other (here: polkit's challenge for a plain user); root's calls never wait. */
static void test_document_budget(void **state) {
        Harness *h = *state;
        const char *args[] = { "--document-rate=1024", "--log-level=debug", NULL };
        _cleanup_free_ char *xml = big_domain("stall-budget", 3U * 1024U * 1024U, NULL);
        _cleanup_free_ char *log = NULL, *path = NULL;
        sd_bus *plain[2] = {};
        sd_bus_message *replies[ELEMENTSOF(plain)] = {};

        assert_int_equal(harness_daemon_stop(h), 0);
        assert_int_equal(harness_daemon_start(h, args), 0);
        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                assert_int_equal(harness_bus_open_as(h, HARNESS_USER_PLAIN, &plain[i]), 0);
                define_async(plain[i], xml, &replies[i]);
                assert_true(sd_bus_flush(plain[i]) >= 0);
        }
        path = harness_define_test_domain(harness_bus_root(h), "budget-root", "");
        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                wait_replies(plain[i], &replies[i], 1);
                assert_string_equal(error_of(replies[i]), SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
                sd_bus_message_unref(replies[i]);
                sd_bus_flush_close_unref(plain[i]);
        }
        harness_domain_call(harness_bus_root(h), path, "Undefine");
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(log);
        /* 6 MiB of documents against a first 4 MiB: the second one waited. */
        assert_non_null(strstr(log, "for its budget."));
        assert_int_equal(harness_daemon_stop(h), 0);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_polkit_before_parse),
                cmocka_unit_test(test_name_not_ahead),
                cmocka_unit_test(test_root_answered_under_load),
                cmocka_unit_test(test_calls_in_flight),
                cmocka_unit_test(test_arguments_refused),
                cmocka_unit_test(test_slow_dispatch_logged),
                cmocka_unit_test(test_document_budget),
                cmocka_unit_test(test_polkitd_hung_then_gone), /* last: polkitd does not come back */
        };
        HARNESS_SKIP_UNLESS_ROOT();
        /* The budget of document bytes is tested on its own: the other tests send floods on purpose. */
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char * const[]) {
                                                                    "--document-rate=0", NULL } });
}
