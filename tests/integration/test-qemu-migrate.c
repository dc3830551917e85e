/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live migration with the qemu driver between two "hosts" on this machine: two network namespaces joined
 * by a veth pair (10.231.0.1 and 10.231.0.2), each with its own dbus-daemon, polkitd and virtbusd (the
 * harness's in the first namespace, where this test runs; migrate-hosts.c's in the second) and its own state
 * dirs. The tiny guest (tests/guest) runs a counter in its shell on the serial console, 10 lines a second.
 *  - the destination QEMU is killed mid-migration (the stream slowed down to 1 MiB/s): MigrateTo fails, the
 *    guest keeps running on the source and its counter goes on there;
 *  - AbortMigration on the source mid-migration: MigrateTo fails, the guest runs on; the same with
 *    AbortMigration on the destination (its domain goes at once);
 *  - a migration that goes through: the counter goes on at the destination (a higher number, on the
 *    destination's console) without a new boot banner; the source's QEMU is gone, and so is the domain
 *    there (undefine-source), while the destination has it, running and saved (persist);
 *  - a guest migrated while its serial port waits to write (a session nobody reads, full) answers a new
 *    session on the destination;
 *  - copy-storage: a guest on a qcow2 disk of the first "host"'s directory, written before the start (qemu-io)
 *    and by the guest itself while it runs, moves to a destination whose definition names a file in the
 *    second host's directory: that file is made there, the export admits no client without the key (plain
 *    NBD, a wrong key: refused; the right key: served), the guest reads what it wrote after the move and
 *    the image has the early data; a destination file that exists already refuses, and AbortMigration on
 *    the destination removes the file it made;
 *  - postcopy: the counter guest switches to postcopy mid-way (StartPostcopy) and goes on at the
 *    destination; a destination whose QEMU cannot use userfaultfd refuses, saying why; AbortMigration
 *    once in postcopy leaves it running at the source. */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"
#include "migrate-client.h"
#include "migrate-hosts.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define IP "/usr/sbin/ip"
#define ADDR_B MIG_ADDR_B
#define UUID "6d1e0000-0000-4000-8000-0000000000a1"
#define UUID_D "6d1e0000-0000-4000-8000-0000000000a2"
#define GUEST_TIMEOUT_USEC MIG_GUEST_TIMEOUT_USEC

static MigHost hostb;

static int guest_start(Harness *h, char **ret_path) {
        sd_bus *a = harness_bus_root(h);
        _cleanup_free_ char *xml = harness_shell_guest_xml(h, "migq", ""), *with_uuid = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;

        /* A fixed UUID: the same object path on both hosts. */
        assert_true(asprintf(&with_uuid, "<domain type='qemu'><uuid>" UUID "</uuid>%s", xml + strlen("<domain type='qemu'>")) > 0);
        *ret_path = harness_define_domain(a, with_uuid);
        harness_domain_call(a, *ret_path, "Start");
        console = console_open(a, *ret_path, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        console_write(console, "i=0; while :; do echo TICK-$i; i=$((i+1)); sleep 0.1; done &\n");
        (void) mig_tick_after(console, 5, buf, sizeof buf);
        return console;
}

static void test_migrate_qemu(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *path = NULL, *live = NULL;
        char *uri = NULL, *cookie = NULL;
        MigPending p = {};
        char buf[16384];
        pid_t qemu_a, qemu_b;
        long before, after;
        int console, console_b, persistent = 0;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        mig_host_start(h, "hostb", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        console = guest_start(h, &path);
        qemu_a = harness_qemu_pid(h, UUID);
        assert_true(qemu_a > 0);
        live = harness_domain_xml(a, path, 0);

        /* 1. The destination's QEMU dies mid-way: the source runs on. */
        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        qemu_b = mig_host_qemu_pid(&hostb, UUID);
        assert_true(qemu_b > 0);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        mig_wait_streaming(a, path, &p);
        assert_int_equal(kill(qemu_b, SIGKILL), 0);
        mig_wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        mig_wait_gone(b, "migq");
        before = mig_tick_after(console, 0, buf, sizeof buf);
        (void) mig_tick_after(console, before, buf, sizeof buf); /* it still counts, on the source */
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        assert_int_equal(kill(qemu_a, 0), 0);
        free(uri);
        free(cookie);

        /* 2. AbortMigration on the source mid-way: the same. */
        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        mig_wait_streaming(a, path, &p);
        sd_bus_message_unref(harness_call_ok(a, path, D, "AbortMigration", "t", UINT64_C(0)));
        mig_wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        /* The destination's QEMU ends itself when its stream breaks off; the domain goes there. */
        mig_wait_gone(b, "migq");
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        before = mig_tick_after(console, 0, buf, sizeof buf);
        free(uri);
        free(cookie);

        /* 3. AbortMigration on the destination mid-way: its domain goes at once, the source runs on. */
        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        mig_wait_streaming(a, path, &p);
        sd_bus_message_unref(harness_call_ok(b, path, D, "AbortMigration", "t", UINT64_C(0)));
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
        mig_wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        before = mig_tick_after(console, 0, buf, sizeof buf);
        free(uri);
        free(cookie);

        /* 4. Through: the counter goes on at the destination, no new boot. */
        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, "persist", "b", "true", NULL }, &uri, &cookie);
        assert_true(strncmp(uri, "tcp:" ADDR_B ":", strlen("tcp:" ADDR_B ":")) == 0);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", NULL }, &p);
        mig_wait_reply(a, &p);
        assert_null(p.error);
        /* QEMU's figures of the finished migration (asked after QEMU has worked them out). */
        assert_true(p.total_time_ms > 0);
        before = mig_last_tick(buf);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        assert_true(sd_bus_get_property_trivial(b, "org.virtbus1", path, D, "Persistent", &e, 'b', &persistent) >= 0);
        assert_true(persistent);
        /* The source's QEMU is gone, and so is the domain there. */
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
        assert_true(kill(qemu_a, 0) < 0);
        assert_true(console_sees_eof(console, 10 * HARNESS_USEC_PER_SEC));
        close(console);

        console_b = console_open(b, path, "", 0, &e);
        assert_true(console_b >= 0);
        after = mig_tick_after(console_b, before, buf, sizeof buf);
        assert_true(after > before);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console_b);
        harness_domain_call(b, path, "Destroy");
        harness_domain_call(b, path, "Undefine");
        free(uri);
        free(cookie);
}

/* A session nobody reads is full after 278 bytes and the guest's serial port waits to write; migrated so,
 * the port waits again on the destination, where it must go on: a new session there answers. It stayed
 * stuck when the destination's port started on QEMU's null backend, which cannot be waited on
 * (docs/dbus-api.md, "Consoles and migration"). */
static void test_migrate_console_full(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *xml = harness_shell_guest_xml(h, "migq", ""), *with_uuid = NULL, *path = NULL,
                            *live = NULL;
        char *uri = NULL, *cookie = NULL;
        MigPending p = {};
        static char buf[65536];
        int console, console_b;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        mig_host_start(h, "hostf", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        assert_true(asprintf(&with_uuid, "<domain type='qemu'><uuid>" UUID "</uuid>%s",
                             xml + strlen("<domain type='qemu'>")) > 0);
        path = harness_define_domain(a, with_uuid);
        harness_domain_call(a, path, "Start");
        console = console_open(a, path, "", 0, &e);
        assert_true(console >= 0);
        buf[0] = 0;
        assert_true(
                console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        /* 8 KB the session does not read: the port waits, the shell with it. */
        console_write(console, "head -c 8192 /dev/zero | tr '\\0' x; echo VIRTBUS-NEVER-READ\n");
        usleep(2 * HARNESS_USEC_PER_SEC);
        live = harness_domain_xml(a, path, 0);
        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri,
                    &cookie);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", NULL },
                             &p);
        mig_wait_reply(a, &p);
        assert_null(p.error);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        /* The source's session ends with the source's QEMU, read or not. */
        assert_true(console_sees_eof(console, 10 * HARNESS_USEC_PER_SEC));
        close(console);
        console_b = console_open(b, path, "", 0, &e);
        assert_true(console_b >= 0);
        console_write(console_b, "echo $((6*9))VIRTBUS-AFTER\n");
        buf[0] = 0;
        if (!console_read_until(console_b, buf, sizeof buf, "54VIRTBUS-AFTER", 60 * HARNESS_USEC_PER_SEC))
                fail_msg("the migrated guest said nothing to a new session; it said: %.200s", buf);
        close(console_b);
        harness_domain_call(b, path, "Destroy");
        free(uri);
        free(cookie);
}

/* copy-storage ------------------------------------------------------------------------------------------ */

#define DISK_SIZE (32ULL << 20)

static void test_migrate_copy_storage(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *dir_a = NULL, *dir_b = NULL, *disk_a = NULL, *disk_b = NULL, *disk = NULL, *xml = NULL,
                            *with_uuid = NULL, *path = NULL, *live = NULL, *dest_xml = NULL, *out = NULL, *zeros = NULL,
                            *sz = NULL;
        char *uri = NULL, *cookie = NULL, *nbd_uri = NULL, *nbd_key = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;
        MigPending p;

        mig_host_start(h, "hostc", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        /* Each "host" its own directory: nothing is shared. */
        assert_true(asprintf(&dir_a, "%s/disks-a", harness_dir(h)) > 0);
        assert_true(asprintf(&dir_b, "%s/disks-b", harness_dir(h)) > 0);
        assert_int_equal(mkdir(dir_a, 0755), 0);
        assert_int_equal(mkdir(dir_b, 0755), 0);
        assert_true(asprintf(&disk_a, "%s/migd.qcow2", dir_a) > 0);
        assert_true(asprintf(&disk_b, "%s/migd.qcow2", dir_b) > 0);
        assert_true(asprintf(&sz, "%llu", DISK_SIZE) > 0);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk_a, sz, NULL },
                                 NULL), 0);
        /* Written before the guest ever ran. */
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "write -P 0x41 1M 64k",
                                                       disk_a, NULL }, NULL), 0);
        assert_true(asprintf(&disk, "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                    "<source file='%s'/><target dev='vda' bus='virtio'/></disk>", disk_a) > 0);
        xml = harness_shell_guest_xml(h, "migd", disk);
        assert_true(asprintf(&with_uuid, "<domain type='qemu'><uuid>" UUID_D "</uuid>%s",
                             xml + strlen("<domain type='qemu'>")) > 0);
        path = harness_define_domain(a, with_uuid);
        harness_domain_call(a, path, "Start");
        console = console_open(a, path, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        /* Written by the guest while it runs (past its page cache). */
        mig_guest_say(console, "X=1; printf VIRTBUS-LIVE-MARK | dd of=/dev/vda conv=fsync 2>/dev/null; echo WROTE-$X\n",
                  "WROTE-1");
        /* Closed before the migration: a console nobody reads is full after 278 bytes (QEMU writes a
         * byte at a time; a loaded guest's kernel warnings filled it). A guest migrated while its serial
         * port waited to write used to arrive with the port stuck, when the destination's port started on
         * QEMU's null backend; it starts on /dev/null now, which QEMU can wait on (docs/dbus-api.md,
         * "Consoles and migration"), so the close is no longer needed, only kept. */
        close(console);
        live = harness_domain_xml(a, path, 0);
        dest_xml = mig_replace_all(live, disk_a, disk_b);

        /* Sizes are needed; an existing file is never overwritten. */
        assert_true(mig_prepare_storage(hostb.bus, dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, "copy-storage", "b",
                                                                 "true", NULL }, 0, &uri, &cookie, NULL, NULL, &e) < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "disk-sizes");
        sd_bus_error_free(&e);
        mig_write_file(disk_b, "KEEP");
        assert_true(mig_prepare_storage(hostb.bus, dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, DISK_SIZE, &uri,
                                    &cookie, &nbd_uri, &nbd_key, &e) < 0);
        harness_assert_error(&e, ERR("AlreadyExists"), disk_b);
        sd_bus_error_free(&e);
        zeros = harness_read_file(disk_b);
        assert_string_equal(zeros, "KEEP");
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migd");
        assert_int_equal(unlink(disk_b), 0);

        /* virtbusctl --copy-storage keeps the paths: here both "hosts" share one file system, so the
         * destination finds the source's own file and refuses (after the sizes were read from the source's
         * statistics: without them it would be InvalidArgs); the guest runs on. */
        {
                _cleanup_free_ char *address = NULL;
                HarnessResult res = {};

                assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
                assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                             (const char *[]) { getenv("VIRTBUS_CTL"), address, "migrate", "migd",
                                                                hostb.address, "--listen-address", ADDR_B,
                                                                "--copy-storage", NULL },
                                             NULL, 60 * HARNESS_USEC_PER_SEC, &res), 0);
                assert_int_not_equal(res.status, 0);
                if (!strstr(strempty(res.err), "exists already"))
                        fail_msg("virtbusctl migrate --copy-storage said: %s%s", strempty(res.out), strempty(res.err));
                assert_non_null(strstr(res.err, "runs on at the source"));
                harness_result_done(&res);
                assert_string_equal(harness_get_string(a, path, D, "State"), "running");
                harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migd");
        }

        /* Prepared: the file is made; only a client with the key gets in. Then Abort there: it goes. */
        if (mig_prepare_storage(hostb.bus, dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, DISK_SIZE, &uri, &cookie,
                            &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration with copy-storage failed: %s: %s", e.name, e.message);
        assert_true(strncmp(nbd_uri, "tcp:" ADDR_B ":", strlen("tcp:" ADDR_B ":")) == 0);
        assert_true(mig_file_exists(disk_b));
        assert_int_not_equal(mig_nbd_info(h, nbd_uri, NULL), 0);
        assert_int_not_equal(mig_nbd_info(h, nbd_uri, "00000000000000000000000000000000000000000000000000000000000000aa"), 0);
        assert_int_equal(mig_nbd_info(h, nbd_uri, nbd_key), 0);
        sd_bus_message_unref(harness_call_ok(b, path, D, "AbortMigration", "t", UINT64_C(0)));
        mig_wait_gone(b, "migd");
        mig_wait_file_gone(disk_b);
        free(uri);
        free(cookie);
        free(nbd_uri);
        free(nbd_key);

        /* Through. */
        if (mig_prepare_storage(hostb.bus, dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, "persist", "b", "true", NULL },
                            DISK_SIZE, &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration with copy-storage failed: %s: %s", e.name, e.message);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", "copy-storage", "b",
                                                                  "true", "nbd-uri", "s", nbd_uri, "nbd-key", "s",
                                                                  nbd_key, NULL }, &p);
        mig_wait_reply(a, &p);
        assert_null(p.error);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migd");
        /* The key's file went with the export. */
        free(out);
        assert_true(asprintf(&out, "%s/run/qemu/" UUID_D ".nbd-in", hostb.dir) > 0);
        assert_false(mig_file_exists(out));
        out = mig_mfree_str(out);

        /* The guest on the destination reads what it wrote on the source, from the copied disk. */
        console = console_open(b, path, "", 0, &e);
        assert_true(console >= 0);
        mig_guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$(dd if=/dev/vda bs=17 count=1 2>/dev/null).\n",
                  "SEEN=VIRTBUS-LIVE-MARK.");
        close(console);
        harness_domain_call(b, path, "Destroy");
        /* And the image there has what was written before the guest ran. */
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "read -P 0x41 1M 64k",
                                                       disk_b, NULL }, &out), 0);
        assert_null(strstr(out, "failed"));
        harness_domain_call(b, path, "Undefine");
        free(uri);
        free(cookie);
        free(nbd_uri);
        free(nbd_key);
}

/* postcopy ---------------------------------------------------------------------------------------------- */

#define UFFD_SYSCTL "/proc/sys/vm/unprivileged_userfaultfd"
static char uffd_old[8];

static void uffd_write(const char *v) {
        int fd = open(UFFD_SYSCTL, O_WRONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, v, strlen(v)), (ssize_t) strlen(v));
        close(fd);
}

static void uffd_restore(void) {
        if (*uffd_old)
                uffd_write(uffd_old);
}

/* The counter guest moves in postcopy: MigrateTo with postcopy at 1 MiB/s (precopy would take minutes),
 * StartPostcopy once the stream goes, the answer says postcopy; the counter goes on at the destination.
 * QEMU runs unprivileged: the destination needs vm.unprivileged_userfaultfd=1, and says so when it is 0. */
static void test_migrate_postcopy(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *path = NULL, *live = NULL, *old = NULL;
        char *uri = NULL, *cookie = NULL, buf[16384];
        sd_bus_error e = SD_BUS_ERROR_NULL;
        long before, after;
        int console, console_b;
        MigPending p;

        mig_host_start(h, "hostd", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        console = guest_start(h, &path);
        live = harness_domain_xml(a, path, 0);

        old = harness_read_file(UFFD_SYSCTL);
        snprintf(uffd_old, sizeof uffd_old, "%c", old[0]);
        if (old[0] == '0') {
                assert_true(mig_prepare_storage(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, "postcopy", "b",
                                                                     "true", NULL }, 0, &uri, &cookie, NULL, NULL, &e) < 0);
                harness_assert_error(&e, ERR("NotSupported"), "unprivileged_userfaultfd");
                sd_bus_error_free(&e);
                harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
                uffd_write("1");
        }

        mig_prepare(hostb.bus, live, (const char *[]) { "listen-address", "s", ADDR_B, "postcopy", "b", "true", NULL }, &uri, &cookie);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "postcopy", "b", "true", "bandwidth", "t", "1",
                                                                  "undefine-source", "b", "true", NULL }, &p);
        mig_wait_streaming(a, path, &p);
        before = mig_tick_after(console, 0, buf, sizeof buf);
        sd_bus_message_unref(harness_call_ok(a, path, D, "StartPostcopy", "t", UINT64_C(0)));
        mig_wait_reply(a, &p);
        assert_null(p.error);
        assert_true(p.postcopy);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
        close(console);

        console_b = console_open(b, path, "", 0, &e);
        assert_true(console_b >= 0);
        after = mig_tick_after(console_b, before, buf, sizeof buf);
        assert_true(after > before);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console_b);
        harness_domain_call(b, path, "Destroy");
        uffd_restore();
        free(uri);
        free(cookie);
}

/* AbortMigration on the source once the migration is in postcopy (MigrationStats says so): QEMU 7.2 takes
 * migrate_cancel then and leaves the source's guest stopped; it goes on there (virtbus resumes it: the
 * destination never ran it), counting on without a new boot; MigrateTo fails, and the client ends the
 * destination's part. (Should the migration have completed first, the Abort resumes it here as well.)
 * Option postcopy-bandwidth first: virtbusctl migrate --postcopy-bandwidth beyond the limit fails (status
 * 3, naming the option and its limit) and the guest runs on; MigrateTo with it refuses the same way and
 * the prepared destination waits on; the value the migration is then asked with is the one QEMU holds
 * (its query-migrate-parameters, in virtbusd's log). */
static void test_migrate_postcopy_abort(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *path = NULL, *live = NULL, *old = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_free_ char *address = NULL, *log = NULL;
        char *uri = NULL, *cookie = NULL, buf[16384];
        HarnessResult res = {};
        long before;
        int console;
        MigPending p;

        mig_host_start(h, "hoste", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        console = guest_start(h, &path);
        live = harness_domain_xml(a, path, 0);
        old = harness_read_file(UFFD_SYSCTL);
        snprintf(uffd_old, sizeof uffd_old, "%c", old[0]);
        uffd_write("1");

        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { getenv("VIRTBUS_CTL"), address, "migrate", "migq", hostb.address,
                                                        "--listen-address", ADDR_B, "--postcopy-bandwidth",
                                                        "1099511627777", NULL },
                                     NULL, 60 * HARNESS_USEC_PER_SEC, &res), 0);
        if (res.status != 3 || !strstr(strempty(res.err), "Option 'postcopy-bandwidth' is 1099511627777 MiB/s; at most "
                                                          "1099511627776 MiB/s"))
                fail_msg("virtbusctl migrate --postcopy-bandwidth exited %d: %s%s", res.status, strempty(res.out),
                         strempty(res.err));
        assert_non_null(strstr(res.err, "runs on at the source"));
        harness_result_done(&res);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        mig_wait_gone(b, "migq");

        mig_prepare(b, live, (const char *[]) { "listen-address", "s", ADDR_B, "postcopy", "b", "true", NULL }, &uri,
                    &cookie);
        harness_call_fails(a, SD_BUS_ERROR_INVALID_ARGS, "Option 'postcopy-bandwidth' is 1099511627777 MiB/s; at most "
                           "1099511627776 MiB/s", path, D, "MigrateTo", "ssa{sv}t", uri, cookie, 2, "postcopy", "b", 1,
                           "postcopy-bandwidth", "t", UINT64_C(1099511627777), UINT64_C(0));
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        /* Slow after the switch too (QEMU's default there is no limit): on a fast host the rest of the
         * memory would be there before AbortMigration. */
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "postcopy", "b", "true", "bandwidth", "t", "1",
                                                                      "postcopy-bandwidth", "t", "1", NULL }, &p);
        mig_wait_streaming(a, path, &p);
        /* QEMU holds 1 MiB/s, in bytes (its answer comes before the stream's first statistics). */
        log = harness_read_file(harness_daemon_log_path(h));
        if (!strstr(strempty(log), "QEMU migrates with max-bandwidth 1048576 B/s, max-postcopy-bandwidth 1048576 B/s"))
                fail_msg("virtbusd's log does not say QEMU's migration parameters:\n%s", strempty(log));
        w = harness_watch_signal(a, path, D, "MigrationStats");
        sd_bus_message_unref(harness_call_ok(a, path, D, "StartPostcopy", "t", UINT64_C(0)));
        for (bool in_postcopy = false; !in_postcopy && !p.done;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = harness_watch_next(w, 60 * HARNESS_USEC_PER_SEC);
                const char *key;
                int v;

                if (!sig)
                        break; /* over meanwhile (the answer came) */
                assert_true(sd_bus_message_enter_container(sig, 'a', "{sv}") > 0);
                while (sd_bus_message_enter_container(sig, 'e', "sv") > 0) {
                        assert_int_equal(sd_bus_message_read(sig, "s", &key), 1);
                        if (streq(key, "postcopy")) {
                                assert_int_equal(sd_bus_message_read(sig, "v", "b", &v), 1);
                                in_postcopy = v;
                        } else
                                assert_true(sd_bus_message_skip(sig, "v") >= 0);
                        assert_true(sd_bus_message_exit_container(sig) >= 0);
                }
        }
        sd_bus_message_unref(harness_call_ok(a, path, D, "AbortMigration", "t", UINT64_C(0)));
        mig_wait_reply(a, &p);
        free(p.error);
        /* The client ends the destination's part (unless it ended already: its stream broke off). */
        (void) sd_bus_call_method(b, "org.virtbus1", path, D, "AbortMigration", NULL, NULL, "t", UINT64_C(0));
        mig_wait_gone(b, "migq");
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        before = mig_tick_after(console, 0, buf, sizeof buf);
        (void) mig_tick_after(console, before, buf, sizeof buf);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console);
        harness_domain_call(a, path, "Destroy");
        harness_domain_call(a, path, "Undefine");
        uffd_restore();
        free(uri);
        free(cookie);
}

static int teardown(void **state) {
        uffd_restore();
        mig_host_stop(&hostb, getenv("VIRTBUS_TEST_VERBOSE"));
        return harness_teardown_qemus(state);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_migrate_qemu, teardown),
                cmocka_unit_test_teardown(test_migrate_console_full, teardown),
                cmocka_unit_test_teardown(test_migrate_copy_storage, teardown),
                cmocka_unit_test_teardown(test_migrate_postcopy, teardown),
                cmocka_unit_test_teardown(test_migrate_postcopy_abort, teardown),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0 || access(IP, X_OK) < 0) {
                fprintf(stderr, "test-qemu-migrate: qemu-system-x86_64 or ip missing (scripts/bootstrap)\n");
                return 77;
        }
        if (mig_setup_tests() < 0)
                return 1;
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
