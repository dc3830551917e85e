/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A QEMU that hangs or dies affects only its own domain: the real QEMU (diskless, TCG), stopped with
 * SIGSTOP or killed with SIGKILL while a call waits for it. No timing is asserted: while the call to the
 * hung domain is pending, the manager and another domain answer (the order of the answers shows it), and
 * the hung call ends with Timeout after virtbusd's own bound ($VIRTBUS_QEMU_TIMEOUT_MS, set here). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define D HARNESS_DOMAIN_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
/* Only a guard against a test that would hang: nothing is asserted about how long things take. */
#define GUARD_USEC (120 * HARNESS_USEC_PER_SEC)

static char *diskless_xml(const char *name) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
                             "<devices><memballoon model='none'/></devices></domain>",
                             name) >= 0);
        return x;
}

static const char *state_of(Harness *h, const char *path) {
        return harness_get_string(harness_bus_root(h), path, D, "State");
}

static pid_t qemu_of(Harness *h, const char *path) {
        const char *uuid = harness_get_string(harness_bus_root(h), path, D, "UUID");
        pid_t pid = harness_qemu_pid(h, uuid);

        assert_true(pid > 1);
        return pid;
}

/* The answer to a call made without waiting. */
typedef struct Pending {
        bool done;
        char *error_name, *error_message;
        sd_bus_message **keep; /* if set: the answer, kept (to unref) */
} Pending;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Pending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        p->done = true;
        if (p->keep)
                *p->keep = sd_bus_message_ref(m);
        if (e) {
                p->error_name = strdup(e->name);
                p->error_message = strdup(e->message ?: "");
        }
        return 0;
}

static sd_bus_slot *call_later(sd_bus *bus, const char *path, const char *method, Pending *p) {
        sd_bus_slot *slot = NULL;

        *p = (Pending) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, path, D, method, on_reply, p, "t",
                                                  UINT64_C(0)),
                         1);
        return slot;
}

/* Dispatches what has arrived, without waiting. */
static void drain(sd_bus *bus) {
        while (sd_bus_process(bus, NULL) > 0)
                ;
}

static void wait_for(sd_bus *bus, Pending *p) {
        uint64_t deadline = harness_now_usec() + GUARD_USEC;

        for (drain(bus); !p->done; drain(bus)) {
                if (harness_now_usec() > deadline)
                        fail_msg("no answer from virtbusd");
                (void) sd_bus_wait(bus, 100 * 1000);
        }
}

static void pending_done(Pending *p) {
        free(p->error_name);
        free(p->error_message);
}

static void wait_state(Harness *h, const char *path, const char *state) {
        uint64_t deadline = harness_now_usec() + GUARD_USEC;

        while (!streq(state_of(h, path), state)) {
                if (harness_now_usec() > deadline)
                        fail_msg("the domain is %s, not %s", state_of(h, path), state);
                usleep(20 * 1000);
        }
}

/* A QEMU that does not answer: its caller gets Timeout; everyone else is answered meanwhile. */
static void test_hung(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("hung"), *other_xml = diskless_xml("healthy");
        _cleanup_free_ char *path = harness_define_domain(bus, xml), *other = harness_define_domain(bus, other_xml);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL;
        Pending p, p2;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        harness_domain_call(bus, other, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);

        slot = call_later(bus, path, "Suspend", &p);
        /* Meanwhile: the other domain, the manager and reads of the hung domain are answered... */
        harness_domain_call(bus, other, "Suspend");
        assert_string_equal(state_of(h, other), "paused");
        harness_domain_call(bus, other, "Resume");
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        free(harness_domain_xml(bus, path, 0));
        assert_string_equal(state_of(h, path), "running");
        /* ...and a second call to it waits in core behind the first (it was answered busy before). */
        slot2 = call_later(bus, path, "Resume", &p2);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        drain(bus);
        assert_false(p.done); /* all of that while the Suspend still waited */
        assert_false(p2.done);

        wait_for(bus, &p);
        assert_non_null(p.error_name);
        assert_string_equal(p.error_name, ERR("Timeout"));
        assert_non_null(strstr(p.error_message, "Failed to pause the virtual CPUs: QEMU did not answer"));
        assert_string_equal(state_of(h, path), "running");
        pending_done(&p);
        /* The Resume ran after it, and found the domain running. */
        wait_for(bus, &p2);
        assert_non_null(p2.error_name);
        assert_string_equal(p2.error_name, ERR("InvalidState"));
        assert_non_null(strstr(p2.error_message, "is running"));
        pending_done(&p2);

        /* QEMU wakes up and carries out what it was asked: the domain follows its events. */
        assert_int_equal(kill(pid, SIGCONT), 0);
        wait_state(h, path, "paused");
        harness_domain_call(bus, path, "Resume");
        assert_string_equal(state_of(h, path), "running");

        /* Hung again: Destroy does not wait for it, and ends the call that did. */
        assert_int_equal(kill(pid, SIGSTOP), 0);
        sd_bus_slot_unref(slot);
        slot = call_later(bus, path, "Suspend", &p);
        /* Answered after the Suspend was taken (one connection: in order). */
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        harness_domain_call(bus, path, "Destroy");
        wait_for(bus, &p);
        assert_non_null(p.error_name);
        assert_string_equal(p.error_name, ERR("OperationFailed"));
        assert_non_null(strstr(p.error_message, "the domain was destroyed"));
        pending_done(&p);
        assert_string_equal(state_of(h, path), "shutoff");
        harness_domain_call(bus, other, "Destroy");
}

/* A domain with a NIC to detach and a balloon. */
static char *pluggable_xml(const char *name) {
        char *x;
        assert_true(asprintf(&x,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
                             "<devices><interface type='user'><mac address='52:54:00:fa:00:01'/>"
                             "<model type='virtio'/></interface><memballoon model='virtio'/></devices></domain>",
                             name) >= 0);
        return x;
}

#define NIC_NEW "<interface type='user'><mac address='52:54:00:fa:00:02'/><model type='virtio'/></interface>"
#define NIC_OLD "<interface type='user'><mac address='52:54:00:fa:00:01'/><model type='virtio'/></interface>"

/* A call with a string (or a number) and flags, made without waiting. */
static sd_bus_slot *call_later_st(sd_bus *bus, const char *path, const char *method, const char *s, Pending *p) {
        sd_bus_slot *slot = NULL;

        *p = (Pending) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, path, D, method, on_reply, p, "st", s,
                                                  UINT64_C(0)),
                         1);
        return slot;
}

static sd_bus_slot *call_later_tt(sd_bus *bus, const char *path, const char *method, uint64_t v, Pending *p) {
        sd_bus_slot *slot = NULL;

        *p = (Pending) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, path, D, method, on_reply, p, "tt", v,
                                                  UINT64_C(0)),
                         1);
        return slot;
}

static void assert_timeout(sd_bus *bus, Pending *p, const char *part) {
        wait_for(bus, p);
        if (!p->error_name)
                fail_msg("the call succeeded, Timeout expected");
        if (!streq(p->error_name, ERR("Timeout")) || !strstr(p->error_message, part))
                fail_msg("expected Timeout with '%s', got %s: %s", part, p->error_name, p->error_message);
        pending_done(p);
}

static uint64_t memory_of(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        if (sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, "CurrentMemoryKiB", &e, 't', &v) < 0)
                fail_msg("CurrentMemoryKiB: %s", e.message);
        return v;
}

static bool live_has(sd_bus *bus, const char *path, const char *part) {
        _cleanup_free_ char *xml = harness_domain_xml(bus, path, 0);
        return strstr(xml, part);
}

/* Hot-plug and the balloon of a hung QEMU: each call ends in Timeout, nothing changes, and another domain's
 * hot-plug, the manager and reads of the hung domain are answered meanwhile (the order shows it). */
static void test_hung_hotplug(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = pluggable_xml("hungplug"), *other_xml = pluggable_xml("plugwell");
        _cleanup_free_ char *path = harness_define_domain(bus, xml), *other = harness_define_domain(bus, other_xml);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL;
        uint64_t memory;
        Pending p, p2;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        harness_domain_call(bus, other, "Start");
        memory = memory_of(bus, path);
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);

        /* AttachDevice. */
        slot = call_later_st(bus, path, "AttachDevice", NIC_NEW, &p);
        sd_bus_message_unref(harness_call_ok(bus, other, D, "AttachDevice", "st", NIC_NEW, UINT64_C(0)));
        assert_true(live_has(bus, other, "52:54:00:fa:00:02"));
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        assert_false(live_has(bus, path, "52:54:00:fa:00:02"));
        slot2 = call_later(bus, path, "Resume", &p2); /* waits behind it (answered busy before) */
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        drain(bus);
        assert_false(p.done); /* all of that while the AttachDevice still waited */
        assert_false(p2.done);
        assert_timeout(bus, &p, "QEMU did not answer");
        wait_for(bus, &p2);
        assert_string_equal(p2.error_name, ERR("InvalidState")); /* ran after it: the domain runs */
        pending_done(&p2);
        slot2 = sd_bus_slot_unref(slot2);
        assert_false(live_has(bus, path, "52:54:00:fa:00:02"));

        /* DetachDevice: the device stays listed. */
        sd_bus_slot_unref(slot);
        slot = call_later_st(bus, path, "DetachDevice", NIC_OLD, &p);
        harness_domain_call(bus, other, "Suspend");
        harness_domain_call(bus, other, "Resume");
        assert_true(live_has(bus, path, "52:54:00:fa:00:01"));
        drain(bus);
        assert_false(p.done);
        assert_timeout(bus, &p, "release");
        assert_true(live_has(bus, path, "52:54:00:fa:00:01"));

        /* SetMemory: the balloon's target stays. */
        sd_bus_slot_unref(slot);
        slot = call_later_tt(bus, path, "SetMemory", memory / 2, &p);
        sd_bus_message_unref(harness_call_ok(bus, other, D, "SetMemory", "tt", memory / 2, UINT64_C(0)));
        assert_int_equal(memory_of(bus, other), memory / 2);
        slot2 = call_later(bus, path, "Resume", &p2);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        drain(bus);
        assert_false(p.done);
        assert_false(p2.done);
        assert_timeout(bus, &p, "Failed to set the memory balloon: QEMU did not answer");
        wait_for(bus, &p2);
        assert_string_equal(p2.error_name, ERR("InvalidState"));
        pending_done(&p2);
        assert_int_equal(memory_of(bus, path), memory);

        /* Destroy of the hung QEMU is answered once it is gone. */
        harness_domain_call(bus, path, "Destroy");
        assert_string_equal(state_of(h, path), "shutoff");
        assert_int_equal(kill(pid, 0) < 0 ? errno : 0, ESRCH);
        harness_domain_call(bus, other, "Destroy");
}

/* virtbusd restarts while a QEMU hangs: its start is not held up, both domains are listed as running at
 * once, the other one is served; a call to the hung one waits (kept in core, not answered busy) while
 * the other domain and the manager answer, and too many such calls are refused at once; once the QEMU
 * wakes up (SIGCONT) and is connected, the waiting calls run, in the order they came. */
static void test_hung_at_restart(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("frozen"), *other_xml = diskless_xml("thawed");
        _cleanup_free_ char *path = harness_define_domain(bus, xml), *other = harness_define_domain(bus, other_xml);
        enum { N_MORE = 63 }; /* with Suspend: as many as may wait for one domain */
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        sd_bus_slot *more_slots[N_MORE];
        Pending p, more[N_MORE];
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        harness_domain_call(bus, other, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);

        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_string_equal(state_of(h, path), "running");
        assert_string_equal(state_of(h, other), "running");
        slot = call_later(bus, path, "Suspend", &p);
        harness_domain_wait_connected(bus, other);
        harness_domain_call(bus, other, "Suspend");
        harness_domain_call(bus, other, "Resume");
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        /* Answers come in order on one connection: had the Suspend been refused, it would be here. */
        drain(bus);
        assert_false(p.done);
        /* Resume waits behind it; one more than may wait is refused at once. */
        for (unsigned i = 0; i < N_MORE; i++)
                more_slots[i] = call_later(bus, path, "Resume", &more[i]);
        harness_call_fails(bus, ERR("LimitsExceeded"), "Too many calls wait for domain 'frozen'", path, D, "Resume", "t",
                           UINT64_C(0));
        drain(bus);
        assert_false(p.done);

        assert_int_equal(kill(pid, SIGCONT), 0);
        wait_for(bus, &p);
        assert_null(p.error_name);
        pending_done(&p);
        /* The first Resume ran after the Suspend had been sent: it finds it in flight or done. */
        for (unsigned i = 0; i < N_MORE; i++) {
                wait_for(bus, &more[i]);
                if (more[i].error_name)
                        assert_string_equal(more[i].error_name, ERR("InvalidState"));
                pending_done(&more[i]);
                sd_bus_slot_unref(more_slots[i]);
        }
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, other, "Destroy");
}

/* A QEMU that stays stopped across virtbusd's restart: the call kept for it ends after the queue's bound
 * ($VIRTBUS_QUEUE_TIMEOUT_MS, set here below the monitor's own 30 s) with Timeout and a sentence, without
 * having been made; Destroy does not wait and ends it. */
static void test_hung_at_restart_timeout(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("asleep"), *path = harness_define_domain(bus, xml);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Pending p;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        slot = call_later(bus, path, "Suspend", &p);
        wait_for(bus, &p);
        assert_non_null(p.error_name);
        assert_string_equal(p.error_name, ERR("Timeout"));
        assert_non_null(strstr(p.error_message, "still connecting"));
        pending_done(&p);
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");
        assert_string_equal(state_of(h, path), "shutoff");
}

/* A QEMU that dies while a call waits for it: the call fails, the domain is shut off as failed. */
static void test_dies_mid_call(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("doomed"), *path = harness_define_domain(bus, xml);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        HarnessStats s = {};
        Pending p;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        slot = call_later(bus, path, "Suspend", &p);
        /* The call is on its way (ListDomains, answered in order, shows it) before QEMU is killed. */
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        assert_int_equal(kill(pid, SIGKILL), 0);

        wait_for(bus, &p);
        assert_non_null(p.error_name);
        assert_string_equal(p.error_name, ERR("OperationFailed"));
        assert_non_null(strstr(p.error_message, "Failed to pause the virtual CPUs"));
        pending_done(&p);
        wait_state(h, path, "shutoff");
        reply = harness_call_ok(bus, path, D, "GetStats", "tt", UINT64_C(1), UINT64_C(0));
        harness_stats_read(reply, &s);
        assert_int_equal(harness_stats_number(&s, "state.reason", 'i'), 6); /* failed */
        harness_stats_done(&s);

        /* It starts again as if nothing happened. */
        harness_domain_call(bus, path, "Start");
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");
}

/* A QEMU that exits while it starts: Start fails with QEMU's own words, nothing is left running. */
static void test_dies_starting(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = NULL, *path = NULL, *other_xml = diskless_xml("bystander"), *other = NULL;

        /* QEMU opens its disks after it runs: this one is gone by then (removed between Define and Start). */
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>stillborn</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
                             "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                             "<source file='/dev/null'/><target dev='vda' bus='virtio'/></disk></devices></domain>") >= 0);
        path = harness_define_domain(bus, xml);
        other = harness_define_domain(bus, other_xml);
        harness_domain_call(bus, other, "Start");
        harness_call_fails(bus, ERR("OperationFailed"), "QEMU failed to start domain 'stillborn'", path, D, "Start", "t",
                           UINT64_C(0));
        assert_string_equal(state_of(h, path), "shutoff");
        assert_string_equal(state_of(h, other), "running");
        harness_domain_call(bus, other, "Destroy");
}

/* Start's host part before QEMU runs (the files opened as the owner, taps, the spawn) is off the event
 * loop: held here by the one step of it a test can hold without a stand-in, the open of the domain's log
 * file, which the test makes a FIFO (an open for writing waits for a reader). Meanwhile the manager,
 * another domain's definition and the starting domain's own properties are answered, and a second Start
 * is refused as busy; once the test opens the FIFO, the start goes on and answers. On code that did this
 * on the loop, ListDomains got no answer. */
static void test_start_held(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("held"), *other_xml = diskless_xml("bystander2");
        _cleanup_free_ char *path = harness_define_domain(bus, xml), *other = harness_define_domain(bus, other_xml);
        _cleanup_free_ char *log_dir = NULL, *fifo = NULL;
        const char *desc = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char buf[4096];
        Pending p;
        int fd;

        harness_domain_call(bus, other, "Start");
        assert_true(asprintf(&log_dir, "%s/qemu/log", harness_state_dir(h)) >= 0);
        assert_true(asprintf(&fifo, "%s/held.log", log_dir) >= 0);
        (void) unlink(fifo);
        assert_int_equal(mkfifo(fifo, 0600), 0);

        slot = call_later(bus, path, "Start", &p);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        reply = harness_call_ok(bus, other, D, "GetXMLDesc", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "s", &desc), 1);
        assert_non_null(strstr(desc, "<name>bystander2</name>"));
        harness_call_fails(bus, ERR("InvalidState"), "busy starting", path, D, "Start", "t", UINT64_C(0));
        assert_string_equal(state_of(h, path), "shutoff");
        /* Answers come in order on one connection: a Start answered already would be here. */
        drain(bus);
        assert_false(p.done);

        /* Released: QEMU writes its output into the FIFO, which stays open (and read) until it ends. */
        fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(fd >= 0);
        wait_for(bus, &p);
        assert_null(p.error_name);
        pending_done(&p);
        assert_string_equal(state_of(h, path), "running");
        while (read(fd, buf, sizeof buf) > 0)
                ;
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, other, "Destroy");
        close(fd);
        assert_int_equal(unlink(fifo), 0);
}

/* A ManagedSave of a domain whose QEMU virtbusd is still connecting to after its restart (the QEMU
 * SIGSTOPped across it) waits in core while the manager answers (it was answered busy before), and runs
 * once the QEMU wakes up: the state is saved, the domain shut off, and it starts again from it. */
static void test_save_at_restart(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("napping"), *path = harness_define_domain(bus, xml);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int saved = 0;
        Pending p;
        pid_t pid;

        harness_domain_call(bus, path, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        slot = call_later(bus, path, "ManagedSave", &p);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        drain(bus);
        assert_false(p.done); /* answered in order: a busy answer would be here */

        assert_int_equal(kill(pid, SIGCONT), 0);
        wait_for(bus, &p);
        if (p.error_name)
                fail_msg("ManagedSave failed: %s: %s", p.error_name, p.error_message);
        pending_done(&p);
        assert_string_equal(state_of(h, path), "shutoff");
        assert_true(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, D, "HasManagedSave", &e, 'b', &saved) >= 0);
        assert_true(saved);
        harness_domain_call(bus, path, "Start");
        assert_string_equal(state_of(h, path), "running");
        harness_domain_call(bus, path, "Destroy");
}

/* An async call with arguments; its answer (kept) in *p. */
static sd_bus_slot *call_later_with(sd_bus *bus, const char *path, const char *method, Pending *p, sd_bus_message **keep,
                                    const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_slot *slot = NULL;
        va_list ap;
        int r;

        *p = (Pending) {};
        assert_int_equal(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, D, method), 0);
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        assert_true(r >= 0);
        *keep = NULL;
        p->keep = keep;
        assert_int_equal(sd_bus_call_async(bus, &slot, m, on_reply, p, 0), 1);
        return slot;
}

/* OpenConsole, OpenGraphics and Screenshot of a domain whose QEMU virtbusd is still connecting to after its
 * restart (the QEMU SIGSTOPped across it) wait in core's queue while the manager answers, and succeed once
 * the QEMU wakes up: a console socket, a VNC server saying its RFB version, a PNG. */
static void test_console_at_restart(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = NULL, *path = NULL;
        sd_bus_slot *slots[3];
        sd_bus_message *replies[3];
        Pending p[3];
        char version[12];
        const void *png;
        size_t n = 0;
        int fd, type = 0;
        socklen_t len = sizeof type;
        pid_t pid;

        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>dozing</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
                             "<devices><serial type='pty'><target port='0'/></serial>"
                             "<console type='pty'><target type='serial' port='0'/></console>"
                             "<graphics type='vnc'><listen type='none'/></graphics><video><model type='vga'/></video>"
                             "<memballoon model='none'/></devices></domain>") >= 0);
        path = harness_define_domain(bus, xml);
        harness_domain_call(bus, path, "Start");
        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        slots[0] = call_later_with(bus, path, "OpenConsole", &p[0], &replies[0], "st", "", UINT64_C(0));
        slots[1] = call_later_with(bus, path, "OpenGraphics", &p[1], &replies[1], "ut", 0U, UINT64_C(0));
        slots[2] = call_later_with(bus, path, "Screenshot", &p[2], &replies[2], "ut", 0U, UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        assert_string_equal(state_of(h, path), "running");
        drain(bus);
        /* Answered in order: a busy or failed answer would be here. */
        for (unsigned i = 0; i < 3; i++)
                assert_false(p[i].done);

        assert_int_equal(kill(pid, SIGCONT), 0);
        for (unsigned i = 0; i < 3; i++) {
                wait_for(bus, &p[i]);
                if (p[i].error_name)
                        fail_msg("call %u failed: %s: %s", i, p[i].error_name, p[i].error_message);
                assert_non_null(replies[i]);
        }
        assert_int_equal(sd_bus_message_read(replies[0], "h", &fd), 1);
        assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
        assert_int_equal(type, SOCK_STREAM);
        assert_int_equal(sd_bus_message_read(replies[1], "h", &fd), 1);
        {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };

                assert_int_equal(poll(&pfd, 1, 30000), 1);
                assert_int_equal(read(fd, version, sizeof version), (ssize_t) sizeof version);
                assert_memory_equal(version, "RFB 003.008\n", sizeof version);
        }
        assert_int_equal(sd_bus_message_read_array(replies[2], 'y', &png, &n), 1);
        assert_true(n > 8);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        for (unsigned i = 0; i < 3; i++) {
                sd_bus_message_unref(replies[i]);
                sd_bus_slot_unref(slots[i]);
                pending_done(&p[i]);
        }
        harness_domain_call(bus, path, "Destroy");
}

/* The answer to a DefineDomain made without waiting: the object path, or the error. */
typedef struct PendingDefine {
        Pending p;
        char *path;
} PendingDefine;

static int on_define_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PendingDefine *d = userdata;
        const char *path = NULL;

        if (!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "o", &path) > 0)
                d->path = strdup(path);
        return on_reply(m, &d->p, ret_error);
}

static sd_bus_slot *define_later(sd_bus *bus, const char *xml, PendingDefine *d) {
        sd_bus_slot *slot = NULL;

        *d = (PendingDefine) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, M, "DefineDomain", on_define_reply, d,
                                                  "st", xml, UINT64_C(0)),
                         1);
        return slot;
}

/* virtbusd restarted with a stand-in emulator (the real one behind a wrapper, $VIRTBUS_QEMU_EMULATOR) held
 * before it runs: the capability probe waits until harness_wrapper_flag(dir, "hold", false). Returns the
 * wrapper's directory, for probe_held_done. */
static char *probe_held_restart(Harness *h) {
        _cleanup_free_ char *emulator = NULL;
        char *dir = NULL;

        assert_true(asprintf(&dir, "%s/emulator-XXXXXX", harness_dir(h)) > 0);
        harness_wrapper_make(dir, "qemu-system-x86_64", "/usr/bin/qemu-system-x86_64");
        assert_int_equal(chmod(dir, 0755), 0); /* the probe runs as QEMU's user */
        assert_true(asprintf(&emulator, "%s/qemu-system-x86_64", dir) > 0);
        harness_wrapper_flag(dir, "hold", true);
        assert_int_equal(setenv("VIRTBUS_QEMU_EMULATOR", emulator, 1), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        return dir;
}

/* virtbusd back on the real emulator, the wrapper gone. */
static void probe_held_done(Harness *h, const char *dir) {
        assert_int_equal(unsetenv("VIRTBUS_QEMU_EMULATOR"), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        harness_wrapper_remove(dir, "qemu-system-x86_64");
}

/* The first DefineDomain after start-up, while the driver still probes its emulator's capabilities (an
 * empty cache): the probe is held back ($VIRTBUS_QEMU_EMULATOR is a stand-in for qemu-system-x86_64 that
 * waits while a file exists). Meanwhile ListDomains and another domain's GetXMLDesc are answered and the
 * definitions and a Start (the driver needs the capabilities to start) are not; released, the good one is
 * defined, the one the capabilities refuse (an unknown machine) is refused and the domain runs. On code that
 * waited for the probe on the event loop, the calls after the first DefineDomain got no answer. */
static void test_define_waits_for_probe(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("probed"), *other_xml = diskless_xml("bystander3");
        _cleanup_free_ char *other = harness_define_domain(bus, other_xml), *dir = NULL, *emulator = NULL;
        _cleanup_free_ char *log = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL, *slot3 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *mine = NULL;
        const char *bad_xml = "<domain type='qemu'><name>unprobed</name><memory unit='MiB'>64</memory>"
                              "<os><type arch='x86_64' machine='pc-0.1'>hvm</type></os></domain>";
        const char *desc = NULL;
        PendingDefine good, bad;
        Pending start;

        dir = probe_held_restart(h);
        assert_true(asprintf(&emulator, "%s/qemu-system-x86_64", dir) > 0);
        bus = harness_bus_root(h);

        slot = define_later(bus, xml, &good);
        slot2 = define_later(bus, bad_xml, &bad);
        slot3 = call_later(bus, other, "Start", &start);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        reply = harness_call_ok(bus, other, D, "GetXMLDesc", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "s", &desc), 1);
        assert_non_null(strstr(desc, "<name>bystander3</name>"));
        /* Answers come in order on one connection: a definition answered already would be here. */
        drain(bus);
        assert_false(good.p.done);
        assert_false(bad.p.done);
        assert_false(start.done);
        assert_string_equal(state_of(h, other), "shutoff");

        harness_wrapper_flag(dir, "hold", false);
        wait_for(bus, &good.p);
        if (good.p.error_name)
                fail_msg("DefineDomain failed: %s: %s", good.p.error_name, good.p.error_message);
        assert_non_null(good.path);
        mine = harness_call_ok(bus, good.path, D, "GetXMLDesc", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(mine, "s", &desc), 1);
        assert_non_null(strstr(desc, "<name>probed</name>"));
        wait_for(bus, &bad.p);
        assert_non_null(bad.p.error_name);
        assert_string_equal(bad.p.error_name, ERR("NotSupported"));
        assert_non_null(strstr(bad.p.error_message, "has no machine 'pc-0.1'"));
        wait_for(bus, &start);
        if (start.error_name)
                fail_msg("Start failed: %s: %s", start.error_name, start.error_message);
        assert_string_equal(state_of(h, other), "running");
        harness_domain_call(bus, other, "Destroy");
        pending_done(&start);
        /* The probe ran the stand-in. */
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(log);
        assert_non_null(strstr(log, emulator));

        harness_domain_call(bus, good.path, "Undefine");
        harness_domain_call(bus, other, "Undefine");
        pending_done(&good.p);
        pending_done(&bad.p);
        free(good.path);
        probe_held_done(h, dir);
}

/* Start from a managed save and Revert to a snapshot of a running guest, of domains with <cpu
 * mode='host-model'> (the qemu driver expands it from the capabilities when QEMU starts), while the probe
 * runs after a restart (held by the stand-in emulator): both wait in core, ListDomains and GetXMLDesc are
 * answered meanwhile; once the probe ends both run (the guest from its saved state, and from the snapshot).
 * (They waited for the probe inside the driver, on the event loop: ListDomains timed out.) */
static void test_restore_waits_for_probe(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *dir = NULL, *disk = NULL, *saved_xml = NULL, *snap_xml = NULL,
                            *saved = NULL, *snapped = NULL, *snap = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *desc_reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        HarnessResult res = {};
        const char *o = NULL, *desc = NULL;
        Pending start, revert;
        int has_save = 0;

        assert_true(asprintf(&saved_xml, "<domain type='qemu'><name>hmsaved</name><memory unit='MiB'>64</memory>"
                                         "<vcpu>1</vcpu><cpu mode='host-model'/><os><type arch='x86_64' machine='pc'>"
                                         "hvm</type></os><features><acpi/></features><devices><memballoon "
                                         "model='none'/></devices></domain>") > 0);
        assert_true(asprintf(&disk, "%s/hmsnap.qcow2", harness_dir(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M",
                                                        NULL },
                                     NULL, 30 * HARNESS_USEC_PER_SEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
        assert_true(asprintf(&snap_xml, "<domain type='qemu'><name>hmsnap</name><memory unit='MiB'>64</memory>"
                                        "<vcpu>1</vcpu><cpu mode='host-model'/><os><type arch='x86_64' machine='pc'>hvm"
                                        "</type></os><features><acpi/></features><devices><disk type='file' "
                                        "device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target "
                                        "dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>",
                             disk) > 0);
        saved = harness_define_domain(bus, saved_xml);
        snapped = harness_define_domain(bus, snap_xml);
        harness_domain_call(bus, saved, "Start");
        harness_domain_call(bus, saved, "ManagedSave");
        harness_domain_call(bus, snapped, "Start");
        reply = harness_call_ok(bus, snapped, D, "CreateSnapshot", "st",
                                "<domainsnapshot><name>running</name></domainsnapshot>", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        snap = strdup(o);
        harness_domain_call(bus, snapped, "Destroy");

        dir = probe_held_restart(h);
        bus = harness_bus_root(h);
        /* The Start asks for the capabilities first: the probe begins (held). */
        slot = call_later(bus, saved, "Start", &start);
        revert = (Pending) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot2, HARNESS_SERVICE, snap, "org.virtbus1.DomainSnapshot",
                                                  "Revert", on_reply, &revert, "t", UINT64_C(0)),
                         1);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        desc_reply = harness_call_ok(bus, saved, D, "GetXMLDesc", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(desc_reply, "s", &desc), 1);
        assert_non_null(strstr(desc, "<name>hmsaved</name>"));
        drain(bus);
        assert_false(start.done);
        assert_false(revert.done);
        assert_string_equal(state_of(h, saved), "shutoff");
        assert_string_equal(state_of(h, snapped), "shutoff");

        harness_wrapper_flag(dir, "hold", false);
        wait_for(bus, &start);
        if (start.error_name)
                fail_msg("Start from the managed save failed: %s: %s", start.error_name, start.error_message);
        wait_for(bus, &revert);
        if (revert.error_name)
                fail_msg("Revert failed: %s: %s", revert.error_name, revert.error_message);
        assert_string_equal(state_of(h, saved), "running");
        assert_true(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, saved, D, "HasManagedSave", &e, 'b', &has_save) >= 0);
        assert_false(has_save);
        assert_string_equal(state_of(h, snapped), "running");
        harness_domain_call(bus, saved, "Destroy");
        harness_domain_call(bus, snapped, "Destroy");
        pending_done(&start);
        pending_done(&revert);
        probe_held_done(h, dir);
}

/* A domain of this test's migrations (<cpu mode='host-model'>: the qemu driver expands it from the
 * capabilities when QEMU starts). */
static char *host_model_xml(const char *name, const char *uuid) {
        char *x;

        assert_true(asprintf(&x, "<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
                                 "<vcpu>1</vcpu><cpu mode='host-model'/><os><type arch='x86_64' machine='pc'>hvm"
                                 "</type></os><features><acpi/></features><devices><memballoon model='none'/>"
                                 "</devices></domain>", name, uuid) > 0);
        return x;
}

/* A migration within this one virtbusd (the source and the destination are two domains of their own name
 * and UUID, the stream goes over the loopback) while the probe of its emulator runs (held by the
 * stand-in): PrepareMigration on a freshly started virtbusd waits in core, ListDomains is answered
 * meanwhile; released, the incoming domain starts, paused, and the prepare answers. The state goes over;
 * then the emulator changes (the stand-in's file touched, held again: a new probe) and FinishMigration,
 * asked to save the definition (persist), waits for that probe in core too while ListDomains is answered;
 * held past the bound, it answers Timeout and the migration stays; another FinishMigration waits again and,
 * released, the guest runs, saved. The source's FinishMigration (no undefine-source) is answered. (The
 * finish waited for the probe on the event loop: ListDomains got no answer until the probe ended; and the
 * source's Finish was never answered.) */
static void test_migrate_waits_for_probe(void **state) {
        Harness *h = *state;
        sd_bus *bus;
        _cleanup_free_ char *dir = NULL, *dst = NULL, *src = NULL, *wrapper = NULL, *uri = NULL, *cookie = NULL;
        _cleanup_free_ char *probing = NULL;
        _cleanup_free_ char *dst_xml = host_model_xml("hmincoming", "5d7e0a52-8c61-4b0e-9a53-0d1c2b3a4f5e");
        _cleanup_free_ char *src_xml = host_model_xml("hmoutgoing", "5d7e0a52-8c61-4b0e-9a53-0d1c2b3a4f5f");
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *o = NULL, *u = NULL, *c = NULL;
        Pending prepare = { .keep = &reply }, finish;
        int persistent = 0;

        dir = probe_held_restart(h);
        bus = harness_bus_root(h);
        assert_true(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, M, "PrepareMigration") >= 0);
        assert_true(sd_bus_message_append(call, "sa{sv}t", dst_xml, 2, "listen-address", "s", "127.0.0.1", "persist",
                                          "b", 1, UINT64_C(0)) >= 0);
        assert_true(sd_bus_call_async(bus, &slot, call, on_reply, &prepare, GUARD_USEC) >= 0);
        /* Authorized and parsed, it waits (polkit answers first). */
        harness_daemon_wait_log(h, "A call creating a domain waits for the capabilities", 1, GUARD_USEC);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        /* Answers come in order on one connection: a prepare answered already would be here. */
        drain(bus);
        assert_false(prepare.done);

        harness_wrapper_flag(dir, "hold", false);
        wait_for(bus, &prepare);
        if (prepare.error_name)
                fail_msg("PrepareMigration failed: %s: %s", prepare.error_name, prepare.error_message);
        assert_int_equal(sd_bus_message_read(reply, "oss", &o, &u, &c), 1);
        dst = strdup(o);
        uri = strdup(u);
        cookie = strdup(c);
        assert_string_equal(state_of(h, dst), "paused");

        src = harness_define_domain(bus, src_xml);
        harness_domain_call(bus, src, "Start");
        sd_bus_message_unref(harness_call_ok(bus, src, D, "MigrateTo", "ssa{sv}t", uri, cookie, 0, UINT64_C(0)));

        /* The emulator changed (an upgrade): its capabilities are probed again, held. */
        harness_wrapper_flag(dir, "hold", true);
        assert_true(asprintf(&wrapper, "%s/qemu-system-x86_64", dir) > 0);
        assert_int_equal(utimensat(AT_FDCWD, wrapper, NULL, 0), 0);
        finish = (Pending) {};
        assert_int_equal(sd_bus_call_method_async(bus, &slot2, HARNESS_SERVICE, dst, D, "FinishMigration", on_reply,
                                                  &finish, "st", cookie, UINT64_C(0)),
                         1);
        /* The finish asked for the capabilities: the probe of the changed file began (the first one at
         * start-up). */
        assert_true(asprintf(&probing, "Reading the capabilities of the emulator '%s'", wrapper) > 0);
        harness_daemon_wait_log(h, probing, 2, GUARD_USEC);
        sd_bus_message_unref(harness_call_ok(bus, M, "ListDomains", "t", UINT64_C(0)));
        assert_string_equal(state_of(h, dst), "paused");
        drain(bus);
        assert_false(finish.done);
        /* Held past the bound of the wait ($VIRTBUS_QUEUE_TIMEOUT_MS): Timeout, saying why; the migration
         * stays, and another Finish waits again. */
        wait_for(bus, &finish);
        assert_string_equal(finish.error_name, ERR("Timeout"));
        assert_non_null(strstr(finish.error_message, "capabilities of the hypervisor"));
        assert_string_equal(state_of(h, dst), "paused");
        pending_done(&finish);
        finish = (Pending) {};
        sd_bus_slot_unref(slot2);
        assert_int_equal(sd_bus_call_method_async(bus, &slot2, HARNESS_SERVICE, dst, D, "FinishMigration", on_reply,
                                                  &finish, "st", cookie, UINT64_C(0)),
                         1);
        harness_daemon_wait_log(h, "A call finishing a migration waits for the capabilities", 2, GUARD_USEC);
        drain(bus);
        assert_false(finish.done);

        harness_wrapper_flag(dir, "hold", false);
        wait_for(bus, &finish);
        if (finish.error_name)
                fail_msg("FinishMigration failed: %s: %s", finish.error_name, finish.error_message);
        assert_string_equal(state_of(h, dst), "running");
        assert_true(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, dst, D, "Persistent", &e, 'b', &persistent) >= 0);
        assert_true(persistent);
        sd_bus_message_unref(harness_call_ok(bus, src, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(state_of(h, src), "shutoff");

        harness_domain_call(bus, dst, "Destroy");
        harness_domain_call(bus, dst, "Undefine");
        harness_domain_call(bus, src, "Undefine");
        pending_done(&prepare);
        pending_done(&finish);
        probe_held_done(h, dir);
}

/* Definitions that wait in core for the capabilities probe still count against their caller's limits on
 * calls in flight (16 per connection): with 16 of one connection waiting, its 17th is refused at once
 * (LimitsExceeded), another connection's is taken; once the probe ends all are answered and the first
 * connection may define again. (The old code forgot a call once parsed: a caller could pile up any number
 * of definitions behind the probe.) */
static void test_waiting_defines_limited(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h), *other_bus = NULL;
        _cleanup_free_ char *dir = NULL, *extra = NULL, *other_xml = diskless_xml("heldother");
        sd_bus_slot *slots[16], *other_slot;
        PendingDefine defs[16], other;
        char *xml, *path;

        dir = probe_held_restart(h);
        bus = harness_bus_root(h);

        for (unsigned i = 0; i < 16; i++) {
                char name[16];

                snprintf(name, sizeof name, "held%u", i);
                xml = diskless_xml(name);
                slots[i] = define_later(bus, xml, &defs[i]);
                free(xml);
        }
        assert_true(sd_bus_flush(bus) >= 0);
        /* All 16 parsed and waiting in core for the probe. */
        for (uint64_t end = harness_now_usec() + GUARD_USEC;
             harness_daemon_log_count(h, "DefineDomain of 'held") < 16;) {
                assert_true(harness_now_usec() < end);
                usleep(20 * 1000);
        }
        extra = diskless_xml("held16");
        harness_call_fails(bus, ERR("LimitsExceeded"), "16 documents in flight", M, "DefineDomain", "st", extra,
                           UINT64_C(0));
        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &other_bus), 0);
        other_slot = define_later(other_bus, other_xml, &other);
        assert_true(sd_bus_flush(other_bus) >= 0);
        drain(bus);
        for (unsigned i = 0; i < 16; i++)
                assert_false(defs[i].p.done);

        harness_wrapper_flag(dir, "hold", false);
        for (unsigned i = 0; i < 16; i++) {
                wait_for(bus, &defs[i].p);
                if (defs[i].p.error_name)
                        fail_msg("DefineDomain %u failed: %s: %s", i, defs[i].p.error_name, defs[i].p.error_message);
        }
        wait_for(other_bus, &other.p);
        if (other.p.error_name)
                fail_msg("DefineDomain of the other caller failed: %s: %s", other.p.error_name, other.p.error_message);
        /* Answered: counted no more. */
        path = harness_define_domain(bus, extra);
        harness_domain_call(bus, path, "Undefine");
        free(path);
        harness_domain_call(bus, other.path, "Undefine");
        for (unsigned i = 0; i < 16; i++) {
                harness_domain_call(bus, defs[i].path, "Undefine");
                free(defs[i].path);
                pending_done(&defs[i].p);
                sd_bus_slot_unref(slots[i]);
        }
        free(other.path);
        pending_done(&other.p);
        sd_bus_slot_unref(other_slot);
        sd_bus_flush_close_unref(other_bus);
        probe_held_done(h, dir);
}

/* A probe that failed is not remembered for good: the host, not the binary, may be why it failed (QEMU that
 * did not answer in time on a loaded host). The stand-in emulator is held until the probe gives up (its
 * bound set to 8 s by $VIRTBUS_QEMU_PROBE_TIMEOUT_MS: short, yet long enough for each step of the probe
 * that follows in a sanitizer build at load 30, where 2 s was not): GetDomainCapabilities, which waits for
 * the probe, fails naming it. Released, a later call probes again and is answered. On the old code every later call
 * got the first probe's error until virtbusd restarted (and every Start of a domain of that emulator). */
static void test_probe_failure_retried(void **state) {
        Harness *h = *state;
        sd_bus *bus;
        _cleanup_free_ char *dir = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        bool answered = false;

        assert_int_equal(setenv("VIRTBUS_QEMU_PROBE_TIMEOUT_MS", "8000", 1), 0);
        dir = probe_held_restart(h);
        bus = harness_bus_root(h);

        harness_call_fails(bus, ERR("OperationFailed"), "Failed to probe the emulator", M, "GetDomainCapabilities",
                           "sssst", "", "", "", "", UINT64_C(0));
        harness_wrapper_flag(dir, "hold", false);
        /* The failure is answered for the probe's bound (8 s), then the new probe runs. */
        for (uint64_t end = harness_now_usec() + 6 * HARNESS_TIMEOUT_USEC; !answered;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *xml;

                if (sd_bus_call_method(bus, HARNESS_SERVICE, M, "GetDomainCapabilities", &e, &reply, "sssst", "", "",
                                       "", "", UINT64_C(0)) >= 0) {
                        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
                        assert_non_null(strstr(xml, "<domainCapabilities>"));
                        answered = true;
                        break;
                }
                harness_assert_error(&e, ERR("OperationFailed"), "Failed to probe the emulator");
                if (harness_now_usec() > end)
                        fail_msg("the failed probe was never tried again: %s", e.message);
                sd_bus_error_free(&e);
                usleep(200000);
        }

        assert_int_equal(unsetenv("VIRTBUS_QEMU_PROBE_TIMEOUT_MS"), 0);
        probe_held_done(h, dir);
}

/* A probe that takes too long (held here; a loaded host or a hung emulator elsewhere) holds DefineDomain
 * for the bound only ($VIRTBUS_CAPS_DEFINE_WAIT_MS, 1.5 s here; 10 s by default, below a D-Bus client's
 * 25 s): then the definitions that waited are taken unchecked, as when a probe fails, even one the
 * capabilities would refuse (an unknown machine), and the log says so. Once the probe ended, definitions are
 * checked again. On the old code a DefineDomain waited as long as the probe, past its client's timeout. */
static void test_define_wait_bounded(void **state) {
        Harness *h = *state;
        sd_bus *bus;
        _cleanup_free_ char *dir = NULL, *xml = diskless_xml("bounded"), *log = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *slot2 = NULL;
        const char *bad_xml = "<domain type='qemu'><name>unchecked</name><memory unit='MiB'>64</memory>"
                              "<os><type arch='x86_64' machine='pc-0.1'>hvm</type></os></domain>";
        const char *bad_again = "<domain type='qemu'><name>checked</name><memory unit='MiB'>64</memory>"
                                "<os><type arch='x86_64' machine='pc-0.1'>hvm</type></os></domain>";
        PendingDefine good, bad;

        assert_int_equal(setenv("VIRTBUS_CAPS_DEFINE_WAIT_MS", "1500", 1), 0);
        dir = probe_held_restart(h);
        bus = harness_bus_root(h);

        slot = define_later(bus, xml, &good);
        slot2 = define_later(bus, bad_xml, &bad);
        /* Answered while the probe is still held. */
        wait_for(bus, &good.p);
        wait_for(bus, &bad.p);
        if (good.p.error_name || bad.p.error_name)
                fail_msg("DefineDomain failed: %s: %s", good.p.error_name ?: bad.p.error_name,
                         good.p.error_message ?: bad.p.error_message);
        assert_non_null(good.path);
        assert_non_null(bad.path);
        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(strstr(log, "definition(s) are taken without checking them"));

        harness_wrapper_flag(dir, "hold", false);
        /* Once probed, checked again: GetDomainCapabilities waits for the probe's end. */
        sd_bus_message_unref(harness_call_ok(bus, M, "GetDomainCapabilities", "sssst", "", "", "", "", UINT64_C(0)));
        harness_call_fails(bus, ERR("NotSupported"), "has no machine 'pc-0.1'", M, "DefineDomain", "st", bad_again,
                           UINT64_C(0));

        harness_domain_call(bus, good.path, "Undefine");
        harness_domain_call(bus, bad.path, "Undefine");
        pending_done(&good.p);
        pending_done(&bad.p);
        free(good.path);
        free(bad.path);
        assert_int_equal(unsetenv("VIRTBUS_CAPS_DEFINE_WAIT_MS"), 0);
        probe_held_done(h, dir);
}

static void ip_link(Harness *h, const char * const *argv) {
        HarnessResult res = {};

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
        if (res.status != 0)
                fail_msg("%s %s %s failed: %s", argv[0], argv[1], argv[2], strempty(res.err));
        harness_result_done(&res);
}

#define NET "org.virtbus1.Network"

/* A hot-plug of a NIC on a network (a bridge of the test's, forward mode 'bridge') that a kill of virtbusd
 * cut short: QEMU SIGSTOPped while virtbusd sent it the first command (the network's port taken, the
 * hot-plug recorded ahead), then virtbusd killed, so QEMU never got the device. The next virtbusd undoes
 * the hot-plug when it connects to the QEMU, and gives the network's port back: the network, which the
 * domain no longer uses, stops. On code that kept the port, Stop answered InvalidState ("in use by 1 guest
 * interface(s)") until the domain stopped. */
static void test_cut_hotplug_network_port(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = diskless_xml("cutport"), *path = harness_define_domain(bus, xml);
        _cleanup_free_ char *net_xml = NULL, *net = NULL, *nic = NULL, *plug = NULL, *live = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_slot *slot;
        const char *o = NULL;
        char br[16], name[32];
        Pending pend;
        pid_t pid;

        snprintf(br, sizeof br, "vbcp%d", (int) (getpid() % 100000));
        snprintf(name, sizeof name, "cutport-%d", (int) getpid());
        ip_link(h, (const char *[]) { "/usr/sbin/ip", "link", "add", "name", br, "type", "bridge", NULL });
        ip_link(h, (const char *[]) { "/usr/sbin/ip", "link", "set", br, "up", NULL });
        assert_true(asprintf(&net_xml, "<network><name>%s</name><forward mode='bridge'/><bridge name='%s'/></network>",
                             name, br) > 0);
        reply = harness_call_ok(bus, M, "DefineNetwork", "st", net_xml, UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        net = strdup(o);
        sd_bus_message_unref(harness_call_ok(bus, net, NET, "Start", "t", UINT64_C(0)));
        harness_domain_call(bus, path, "Start");
        assert_true(asprintf(&plug, "%s/qemu/%s.plug", harness_runtime_dir(h),
                             harness_get_string(bus, path, D, "UUID")) > 0);

        pid = qemu_of(h, path);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_true(asprintf(&nic, "<interface type='network'><source network='%s'/><mac address='52:54:00:aa:bb:79'/>"
                                   "<model type='virtio'/></interface>", name) > 0);
        slot = call_later_st(bus, path, "AttachDevice", nic, &pend);
        /* Recorded ahead, the first command sent: QEMU, stopped, has not read it. */
        for (uint64_t end = harness_now_usec() + GUARD_USEC; access(plug, F_OK) < 0;) {
                if (harness_now_usec() > end)
                        fail_msg("no hot-plug record");
                drain(bus);
                usleep(10 * 1000);
        }
        assert_false(pend.done);
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        sd_bus_slot_unref(slot);
        pending_done(&pend);
        assert_int_equal(kill(pid, SIGCONT), 0);

        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, path);
        for (uint64_t end = harness_now_usec() + GUARD_USEC; access(plug, F_OK) == 0;) {
                if (harness_now_usec() > end)
                        fail_msg("the hot-plug record is still there");
                usleep(20 * 1000);
        }
        live = harness_domain_xml(bus, path, 0);
        if (strstr(live, "52:54:00:aa:bb:79"))
                fail_msg("the cut NIC is in the live XML:\n%s", live);
        assert_string_equal(state_of(h, path), "running");
        /* The port went with the NIC: nothing of the domain uses the network. */
        sd_bus_message_unref(harness_call_ok(bus, net, NET, "Stop", "t", UINT64_C(0)));
        harness_domain_call(bus, path, "Destroy");
        harness_domain_call(bus, path, "Undefine");
        sd_bus_message_unref(harness_call_ok(bus, net, NET, "Undefine", "t", UINT64_C(0)));
        ip_link(h, (const char *[]) { "/usr/sbin/ip", "link", "del", br, NULL });
}

/* A failed run of the test above leaves no bridge behind. */
static int teardown_cut_port(void **state) {
        char br[16];
        pid_t pid;

        snprintf(br, sizeof br, "vbcp%d", (int) (getpid() % 100000));
        pid = fork();
        if (pid == 0) {
                int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC); /* usually gone already: quietly */

                if (null_fd >= 0)
                        (void) dup2(null_fd, STDERR_FILENO);
                execl("/usr/sbin/ip", "ip", "link", "del", br, (char *) NULL);
                _exit(127);
        }
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);
        return harness_teardown_qemus(state);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_hung, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_hung_hotplug, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_hung_at_restart, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_hung_at_restart_timeout, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_dies_mid_call, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_dies_starting, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_start_held, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_save_at_restart, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_console_at_restart, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_define_waits_for_probe, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_restore_waits_for_probe, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_migrate_waits_for_probe, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_waiting_defines_limited, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_probe_failure_retried, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_define_wait_bounded, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_cut_hotplug_network_port, teardown_cut_port),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-faults: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        /* virtbusd's bound on a command list: long enough for the calls made meanwhile on a loaded machine. */
        setenv("VIRTBUS_QEMU_TIMEOUT_MS", "10000", 1);
        /* The bound on a call kept for a QEMU still being connected to: below the monitor's 30 s, above
         * what test_hung_at_restart takes before its SIGCONT. */
        setenv("VIRTBUS_QUEUE_TIMEOUT_MS", "15000", 1);
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", "--log-level", "debug", NULL } });
}
