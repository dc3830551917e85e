/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* copy-storage between the two "hosts" of test-qemu-migrate.c (two network namespaces, each with its own
 * dbus-daemon, polkitd and virtbusd; migrate-hosts.c, migrate-client.c), beyond what that test covers:
 *  - a user of group 'virtbus' (the example polkit rules, and a rule of this test giving the group
 *    org.virtbus1.domain.migrate on both hosts) migrates a running guest of theirs with copy-storage: the
 *    destination's new disk is made with their rights, owned by them, in a directory they may write; a
 *    directory they may not write is AccessDenied and nothing is made there;
 *  - AbortMigration while the disk is being copied (the copy held to 1 MiB/s by the option 'bandwidth', so
 *    that it lasts seconds), on the source and, separately, on the destination: the guest runs on at the
 *    source, its disk still its own image, no NBD node left in its QEMU (query-named-block-nodes, asked
 *    while virtbusd is stopped), the destination's file and export gone; and the same when the client
 *    closes its connection to the destination (which aborts by itself) or to the source (which does);
 *  - a disk on a qcow2 overlay over a base image arrives as one image (the chain flattened). */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"
#include "migrate-client.h"
#include "migrate-hosts.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define USER HARNESS_USER_VIRTBUS
#define UUID_U "6d1e0000-0000-4000-8000-0000000000b1"
#define UUID_S "6d1e0000-0000-4000-8000-0000000000b2"
#define UUID_C "6d1e0000-0000-4000-8000-0000000000b3"
#define DISK_SIZE (32ULL << 20)

static MigHost hostb;

static const char migrate_rule[] =
        "polkit.addRule(function(action, subject) {\n"
        "        if (action.id == \"org.virtbus1.domain.migrate\" && subject.isInGroup(\"virtbus\"))\n"
        "                return polkit.Result.YES;\n"
        "        return polkit.Result.NOT_HANDLED;\n"
        "});\n";

/* The rule giving group 'virtbus' the migrate action, seen by the harness's polkitd (the second host's
 * polkitd, started after, reads it at its start). */
static void allow_migrate(Harness *h) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        bool yes = false, challenge = false;

        assert_int_equal(harness_polkit_add_rules(h, "migrate", migrate_rule), 0);
        for (;;) {
                assert_int_equal(harness_polkit_check(h, USER, "org.virtbus1.domain.migrate", NULL, false, &yes,
                                                      &challenge), 0);
                if (yes)
                        return;
                if (harness_now_usec() > deadline)
                        fail_msg("polkitd did not take the migrate rule");
                usleep(50000);
        }
}

static char *xstrfmt(const char *format, ...) _printf_(1, 2);
static char *xstrfmt(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        assert_true(vasprintf(&s, format, ap) >= 0);
        va_end(ap);
        return s;
}

/* A directory at path, owned by uid/gid, with mode. */
static void make_dir(const char *path, uid_t uid, gid_t gid, mode_t mode) {
        assert_int_equal(mkdir(path, mode), 0);
        assert_int_equal(chown(path, uid, gid), 0);
        assert_int_equal(chmod(path, mode), 0);
}

/* A qcow2 image of DISK_SIZE at path with data_mib MiB of 0x41 from 1 MiB on (written before the guest
 * runs), owned by uid/gid. */
static void make_image(Harness *h, const char *path, unsigned data_mib, uid_t uid, gid_t gid) {
        _cleanup_free_ char *sz = xstrfmt("%llu", DISK_SIZE), *cmd = xstrfmt("write -P 0x41 1M %uM", data_mib);

        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", path, sz,
                                                           NULL }, NULL), 0);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", cmd, path, NULL },
                                     NULL), 0);
        assert_int_equal(chown(path, uid, gid), 0);
        assert_int_equal(chmod(path, 0600), 0);
}

/* Defines (on bus) and starts the shell guest with uuid and the qcow2 image as vda, and opens its
 * console once it booted. */
static int disk_guest_start(Harness *h, sd_bus *bus, const char *name, const char *uuid, const char *image,
                            char **ret_path) {
        _cleanup_free_ char *disk = xstrfmt("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                            "<source file='%s'/><target dev='vda' bus='virtio'/></disk>", image),
                            *xml = harness_shell_guest_xml(h, name, disk), *with_uuid = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;

        with_uuid = xstrfmt("<domain type='qemu'><uuid>%s</uuid>%s", uuid, xml + strlen("<domain type='qemu'>"));
        *ret_path = harness_define_domain(bus, with_uuid);
        harness_domain_call(bus, *ret_path, "Start");
        console = console_open(bus, *ret_path, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", MIG_GUEST_TIMEOUT_USEC));
        return console;
}

/* copy-storage as a user ------------------------------------------------------------------------------ */

static void test_copy_storage_user(void **state) {
        Harness *h = *state;
        uid_t uid = harness_user_uid(h, USER);
        gid_t gid = harness_user_gid(h, USER);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *ub = NULL;
        _cleanup_free_ char *dir_a = xstrfmt("%s/user-a", harness_dir(h)), *dir_b = xstrfmt("%s/user-b", harness_dir(h)),
                            *dir_root = xstrfmt("%s/root-b", harness_dir(h)), *disk_a = NULL, *disk_b = NULL,
                            *disk_root = NULL, *path = NULL, *live = NULL, *dest_xml = NULL, *root_xml = NULL,
                            *out = NULL;
        char *uri = NULL, *cookie = NULL, *nbd_uri = NULL, *nbd_key = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus *ua = harness_bus_as(h, USER);
        MigPending p;
        struct stat st;
        int console;

        allow_migrate(h);
        mig_host_start(h, "hostu", "qemu", mig_ns_b, &hostb);
        assert_int_equal(harness_bus_open_address_as(h, USER, hostb.address, &ub), 0);

        /* The user's own directories on each "host", and one of root's (0755) on the destination. */
        make_dir(dir_a, uid, gid, 0700);
        make_dir(dir_b, uid, gid, 0700);
        make_dir(dir_root, 0, 0, 0755);
        disk_a = xstrfmt("%s/migu.qcow2", dir_a);
        disk_b = xstrfmt("%s/migu.qcow2", dir_b);
        disk_root = xstrfmt("%s/migu.qcow2", dir_root);
        make_image(h, disk_a, 1, uid, gid);

        console = disk_guest_start(h, ua, "migu", UUID_U, disk_a, &path);
        mig_guest_say(console, "X=1; printf VIRTBUS-USER-MARK | dd of=/dev/vda conv=fsync 2>/dev/null; echo WROTE-$X\n",
                      "WROTE-1");
        /* Closed before the migration: a console nobody reads is full after 278 bytes (QEMU writes a
         * byte at a time; a loaded guest's kernel warnings filled it). A guest migrated while its serial
         * port waited to write used to arrive with the port stuck, when the destination's port started on
         * QEMU's null backend; it starts on /dev/null now, which QEMU can wait on (docs/dbus-api.md,
         * "Consoles and migration"), so the close is no longer needed, only kept. */
        close(console);
        live = harness_domain_xml(ua, path, 0);

        /* Where the user may not write: AccessDenied, nothing made, nothing started. */
        root_xml = mig_replace_all(live, disk_a, disk_root);
        assert_true(mig_prepare_storage(ub, root_xml, (const char *[]) { "listen-address", "s", MIG_ADDR_B, NULL },
                                        DISK_SIZE, &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0);
        harness_assert_error(&e, SD_BUS_ERROR_ACCESS_DENIED, disk_root);
        sd_bus_error_free(&e);
        assert_false(mig_file_exists(disk_root));
        harness_call_fails(ub, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migu");

        /* Into their own directory: through, the new file theirs. */
        dest_xml = mig_replace_all(live, disk_a, disk_b);
        if (mig_prepare_storage(ub, dest_xml, (const char *[]) { "listen-address", "s", MIG_ADDR_B, NULL }, DISK_SIZE,
                                &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration as the user failed: %s: %s", e.name, e.message);
        assert_int_equal(stat(disk_b, &st), 0);
        assert_int_equal(st.st_uid, uid);
        mig_migrate_to_async(ua, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", "copy-storage",
                                                                       "b", "true", "nbd-uri", "s", nbd_uri, "nbd-key",
                                                                       "s", nbd_key, NULL }, &p);
        mig_wait_reply(ua, &p);
        assert_null(p.error);
        sd_bus_message_unref(harness_call_ok(ub, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(ua, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(ub, path, D, "State"), "running");
        harness_call_fails(ua, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migu");

        /* The guest there reads what it wrote here; the file is still the user's. */
        console = console_open(ub, path, "", 0, &e);
        assert_true(console >= 0);
        mig_guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$(dd if=/dev/vda bs=17 count=1 2>/dev/null).\n",
                      "SEEN=VIRTBUS-USER-MARK.");
        close(console);
        harness_domain_call(ub, path, "Destroy");
        assert_int_equal(stat(disk_b, &st), 0);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "read -P 0x41 1M 1M",
                                                           disk_b, NULL }, &out), 0);
        assert_null(strstr(out, "failed"));
        free(uri);
        free(cookie);
        free(nbd_uri);
        free(nbd_key);
}

/* Abort during the disk copy ------------------------------------------------------------------------- */

/* Waits for a Progress signal of the disk phase (done < total) while MigrateTo is pending. */
static void wait_copying(sd_bus *bus, const char *path, MigPending *p) {
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, path, D, "Progress");

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = harness_watch_next(w, 60 * HARNESS_USEC_PER_SEC);
                uint64_t done, total;

                assert_non_null(sig);
                assert_int_equal(sd_bus_message_read(sig, "tt", &done, &total), 1);
                assert_false(p->done);
                if (done > 0 && done < total)
                        return;
        }
}

/* Whether process pid has file open (the same inode). */
static bool has_open(pid_t pid, const char *file) {
        char dir[64], link[PATH_MAX];
        struct stat want, st;
        struct dirent *de;
        bool found = false;
        DIR *d;

        assert_int_equal(stat(file, &want), 0);
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d)) && !found) {
                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                found = stat(link, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
        }
        closedir(d);
        return found;
}

/* Waits until the source's migration of path is over: StartPostcopy, which changes nothing here (the
 * migration was not asked with postcopy), says there is none. */
static void wait_migration_over(sd_bus *a, const char *path) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                assert_true(sd_bus_call_method(a, "org.virtbus1", path, D, "StartPostcopy", &e, NULL, "t", UINT64_C(0)) < 0);
                harness_assert_error(&e, ERR("InvalidState"), NULL);
                if (strstr(e.message, "is not being migrated"))
                        return;
                if (harness_now_usec() > deadline)
                        fail_msg("the source's migration did not end: %s", e.message);
                usleep(50000);
        }
}

/* The source after an abort: running, vda still the qcow2 node on disk_a (QEMU was given it as a
 * descriptor), no NBD node nor mirror job left in its QEMU. */
static void check_source_unchanged(Harness *h, const char *path, const char *disk_a) {
        _cleanup_free_ char *nodes = NULL, *jobs = NULL;
        sd_bus *a;

        assert_string_equal(harness_get_string(harness_bus_root(h), path, D, "State"), "running");
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        nodes = harness_qmp(h, UUID_S, "{\"execute\":\"query-named-block-nodes\"}");
        jobs = harness_qmp(h, UUID_S, "{\"execute\":\"query-block-jobs\"}");
        if (strstr(nodes, "\"nbd\"") || strstr(nodes, "virtbus-mirror"))
                fail_msg("QEMU still has an NBD node: %s", nodes);
        if (!strstr(nodes, "\"node-name\": \"disk0-format\"") || !strstr(nodes, "\"drv\": \"qcow2\""))
                fail_msg("QEMU's disk is not its qcow2 node any more: %s", nodes);
        assert_true(has_open(harness_qemu_pid(h, UUID_S), disk_a));
        if (strstr(jobs, "virtbus-mirror"))
                fail_msg("QEMU still has a mirror job: %s", jobs);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        a = harness_bus_root(h);
        harness_domain_wait_connected(a, path);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
}

static void test_abort_during_copy(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *dir_a = xstrfmt("%s/abort-a", harness_dir(h)), *dir_b = xstrfmt("%s/abort-b", harness_dir(h)),
                            *disk_a = NULL, *disk_b = NULL, *path = NULL, *live = NULL, *dest_xml = NULL,
                            *info = NULL;
        char buf[16384];
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int console;

        mig_host_start(h, "hosts", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        make_dir(dir_a, 0, 0, 0755);
        make_dir(dir_b, 0, 0, 0755);
        disk_a = xstrfmt("%s/miga.qcow2", dir_a);
        disk_b = xstrfmt("%s/miga.qcow2", dir_b);
        /* 8 MiB of data: at 1 MiB/s the copy lasts about 8 s. */
        make_image(h, disk_a, 8, 0, 0);
        console = disk_guest_start(h, a, "miga", UUID_S, disk_a, &path);
        console_write(console, "i=0; while :; do echo TICK-$i; i=$((i+1)); sleep 0.1; done &\n");
        (void) mig_tick_after(console, 5, buf, sizeof buf);
        live = harness_domain_xml(a, path, 0);
        dest_xml = mig_replace_all(live, disk_a, disk_b);

        /* 0: AbortMigration on the source, 1: on the destination; 2: the client closes its connection to the
         * destination, 3: to the source (each on connections of its own, the other one closed after). */
        for (int round = 0; round < 4; round++) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *ca = NULL, *cb = NULL;
                char *uri = NULL, *cookie = NULL, *nbd_uri = NULL, *nbd_key = NULL;
                MigPending p;
                long before;

                if (round >= 2) {
                        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &ca), 0);
                        assert_int_equal(harness_bus_open_address_as(h, HARNESS_USER_ROOT, hostb.address, &cb), 0);
                }
                if (mig_prepare_storage(cb ?: b, dest_xml, (const char *[]) { "listen-address", "s", MIG_ADDR_B, NULL },
                                        DISK_SIZE, &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0)
                        fail_msg("PrepareMigration failed: %s: %s", e.name, e.message);
                assert_true(mig_file_exists(disk_b));
                mig_migrate_to_async(ca ?: a, path, uri, cookie, (const char *[]) { "copy-storage", "b", "true",
                                                                                    "bandwidth", "t", "1", "nbd-uri",
                                                                                    "s", nbd_uri, "nbd-key", "s",
                                                                                    nbd_key, NULL }, &p);
                wait_copying(a, path, &p);
                switch (round) {
                case 0:
                        /* MigrateTo fails; the client then ends the destination's part, unless that ended
                         * already: the source's stream to it broke off when the source gave up. */
                        sd_bus_message_unref(harness_call_ok(a, path, D, "AbortMigration", "t", UINT64_C(0)));
                        mig_wait_reply(a, &p);
                        assert_non_null(p.error);
                        {
                                _cleanup_(sd_bus_error_free) sd_bus_error gone = SD_BUS_ERROR_NULL;

                                if (sd_bus_call_method(b, "org.virtbus1", path, D, "AbortMigration", &gone, NULL, "t",
                                                       UINT64_C(0)) < 0 &&
                                    !sd_bus_error_has_name(&gone, SD_BUS_ERROR_UNKNOWN_OBJECT))
                                        fail_msg("AbortMigration at the destination: %s: %s", gone.name, gone.message);
                        }
                        break;
                case 1:
                        /* Its domain, export and file go; the source's copy fails. */
                        sd_bus_message_unref(harness_call_ok(b, path, D, "AbortMigration", "t", UINT64_C(0)));
                        mig_wait_reply(a, &p);
                        assert_non_null(p.error);
                        break;
                case 2:
                        /* The destination aborts by itself; the source's copy fails and MigrateTo says so. */
                        cb = sd_bus_flush_close_unref(cb);
                        mig_wait_gone(b, "miga");
                        mig_wait_reply(ca, &p);
                        assert_non_null(p.error);
                        break;
                case 3:
                        /* The source aborts by itself (its answer has nobody to go to); the destination's
                         * stream breaks off, and its client goes too. */
                        ca = sd_bus_flush_close_unref(ca);
                        wait_migration_over(a, path);
                        cb = sd_bus_flush_close_unref(cb);
                        break;
                }
                free(p.error);
                mig_wait_gone(b, "miga");
                mig_wait_file_gone(disk_b);
                assert_int_not_equal(mig_nbd_info(h, nbd_uri, nbd_key), 0);

                /* The guest counts on at the source, without a new boot, on its own disk. */
                before = mig_tick_after(console, 0, buf, sizeof buf);
                (void) mig_tick_after(console, before, buf, sizeof buf);
                assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
                close(console);
                check_source_unchanged(h, path, disk_a);
                a = harness_bus_root(h);
                console = console_open(a, path, "", 0, &e);
                assert_true(console >= 0);
                (void) mig_tick_after(console, before, buf, sizeof buf);
                free(uri);
                free(cookie);
                free(nbd_uri);
                free(nbd_key);
        }

        /* The image is still whole: what was written before is there. */
        close(console);
        harness_domain_call(a, path, "Destroy");
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "read -P 0x41 1M 8M",
                                                           disk_a, NULL }, &info), 0);
        assert_null(strstr(info, "failed"));
        harness_domain_call(a, path, "Undefine");
}

/* copy-storage of a backing chain ------------------------------------------------------------------- */

/* xml without its (first disk's) <backingStore> chain. */
static char *drop_chain(const char *xml) {
        const char *from = strstr(xml, "<backingStore"), *to = from ? strstr(from, "</backingStore>") : NULL;
        const char *last = to;

        assert_non_null(to);
        /* The outermost one ends at the last end tag before the disk's own end. */
        while ((to = strstr(to + 1, "</backingStore>")) && to < strstr(from, "</disk>"))
                last = to;
        return xstrfmt("%.*s%s", (int) (from - xml), xml, last + strlen("</backingStore>"));
}

/* A guest on a qcow2 overlay over a qcow2 base moves with copy-storage: the copy is the chain flattened
 * into one image at the destination (which then needs none of the source's images), with what the base
 * holds, what the overlay holds and what the guest wrote. A destination definition that keeps the
 * <backingStore> is refused, saying why. */
static void test_copy_storage_chain(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *dir_a = xstrfmt("%s/chain-a", harness_dir(h)), *dir_b = xstrfmt("%s/chain-b", harness_dir(h)),
                            *base = NULL, *top = NULL, *disk_b = NULL, *disk = NULL, *xml = NULL, *with_uuid = NULL,
                            *path = NULL, *live = NULL, *moved = NULL, *dest_xml = NULL, *out = NULL,
                            *sz = xstrfmt("%llu", DISK_SIZE);
        char *uri = NULL, *cookie = NULL, *nbd_uri = NULL, *nbd_key = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        MigPending p;
        int console;

        mig_host_start(h, "hostc", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        make_dir(dir_a, 0, 0, 0755);
        make_dir(dir_b, 0, 0, 0755);
        base = xstrfmt("%s/base.qcow2", dir_a);
        top = xstrfmt("%s/top.qcow2", dir_a);
        disk_b = xstrfmt("%s/flat.qcow2", dir_b);
        make_image(h, base, 1, 0, 0);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-b", base,
                                                           "-F", "qcow2", top, sz, NULL }, NULL), 0);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "write -P 0x42 4M 64k",
                                                           top, NULL }, NULL), 0);
        disk = xstrfmt("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                       "<backingStore type='file'><format type='qcow2'/><source file='%s'/></backingStore>"
                       "<target dev='vda' bus='virtio'/></disk>", top, base);
        xml = harness_shell_guest_xml(h, "migc", disk);
        with_uuid = xstrfmt("<domain type='qemu'><uuid>" UUID_C "</uuid>%s", xml + strlen("<domain type='qemu'>"));
        path = harness_define_domain(a, with_uuid);
        harness_domain_call(a, path, "Start");
        console = console_open(a, path, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", MIG_GUEST_TIMEOUT_USEC));
        mig_guest_say(console, "X=1; printf VIRTBUS-CHAIN-MARK | dd of=/dev/vda conv=fsync 2>/dev/null; echo WROTE-$X\n",
                      "WROTE-1");
        /* Closed before the migration: a console nobody reads is full after 278 bytes (QEMU writes a
         * byte at a time; a loaded guest's kernel warnings filled it). A guest migrated while its serial
         * port waited to write used to arrive with the port stuck, when the destination's port started on
         * QEMU's null backend; it starts on /dev/null now, which QEMU can wait on (docs/dbus-api.md,
         * "Consoles and migration"), so the close is no longer needed, only kept. */
        close(console);
        live = harness_domain_xml(a, path, 0);
        moved = mig_replace_all(live, top, disk_b);

        /* The chain kept in the destination's definition: refused, nothing made. */
        assert_true(mig_prepare_storage(b, moved, (const char *[]) { "listen-address", "s", MIG_ADDR_B, NULL }, DISK_SIZE,
                                        &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0);
        harness_assert_error(&e, ERR("NotSupported"), "flattened");
        sd_bus_error_free(&e);
        assert_false(mig_file_exists(disk_b));

        /* One image there. */
        dest_xml = drop_chain(moved);
        assert_null(strstr(dest_xml, base));
        if (mig_prepare_storage(b, dest_xml, (const char *[]) { "listen-address", "s", MIG_ADDR_B, NULL }, DISK_SIZE, &uri,
                                &cookie, &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration failed: %s: %s", e.name, e.message);
        mig_migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", "copy-storage", "b",
                                                                      "true", "nbd-uri", "s", nbd_uri, "nbd-key", "s",
                                                                      nbd_key, NULL }, &p);
        mig_wait_reply(a, &p);
        assert_null(p.error);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        console = console_open(b, path, "", 0, &e);
        assert_true(console >= 0);
        mig_guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$(dd if=/dev/vda bs=18 count=1 2>/dev/null).\n",
                      "SEEN=VIRTBUS-CHAIN-MARK.");
        close(console);
        harness_domain_call(b, path, "Destroy");

        /* A single image with the base's and the overlay's data. */
        out = harness_qemu_img_info(h, disk_b);
        if (strstr(out, "backing"))
                fail_msg("the copy has a backing file: %s", out);
        free(out);
        assert_int_equal(mig_run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "read -P 0x41 1M 1M",
                                                           "-c", "read -P 0x42 4M 64k", disk_b, NULL }, &out), 0);
        assert_null(strstr(out, "failed"));
        free(uri);
        free(cookie);
        free(nbd_uri);
        free(nbd_key);
}

static int teardown(void **state) {
        mig_host_stop(&hostb, getenv("VIRTBUS_TEST_VERBOSE"));
        return harness_teardown_qemus(state);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_copy_storage_user, teardown),
                cmocka_unit_test_teardown(test_abort_during_copy, teardown),
                cmocka_unit_test_teardown(test_copy_storage_chain, teardown),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0 || access("/usr/sbin/ip", X_OK) < 0) {
                fprintf(stderr, "test-qemu-migrate-storage: qemu-system-x86_64 or ip missing (scripts/bootstrap)\n");
                return 77;
        }
        if (mig_setup_tests() < 0)
                return 1;
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
