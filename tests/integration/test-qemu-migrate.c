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
 *  - copy-storage: a guest on a qcow2 disk of the first "host"'s directory, written before the start (qemu-io)
 *    and by the guest itself while it runs, moves to a destination whose definition names a file in the
 *    second host's directory: that file is made there, the export admits no client without the key (plain
 *    NBD, a wrong key: refused; the right key: served), the guest reads what it wrote after the move and
 *    the image has the early data; a destination file that exists already refuses, and AbortMigration on
 *    the destination removes the file it made;
 *  - postcopy: the counter guest switches to postcopy mid-way (StartPostcopy) and goes on at the
 *    destination; a destination whose QEMU cannot use userfaultfd refuses, saying why. */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"
#include "migrate-hosts.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define IP "/usr/sbin/ip"
#define ADDR_A "10.231.0.1"
#define ADDR_B "10.231.0.2"
#define UUID "6d1e0000-0000-4000-8000-0000000000a1"
#define UUID_D "6d1e0000-0000-4000-8000-0000000000a2"
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static char ns_a[64], ns_b[64];
static MigHost hostb;

static int run(const char * const *argv) {
        pid_t pid = fork();
        int st;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                if (null >= 0) {
                        dup2(null, 1);
                        dup2(null, 2);
                }
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        if (waitpid(pid, &st, 0) != pid)
                return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Options as a{sv} from (key, type, value) triples, NULL-terminated. */
static void append_options(sd_bus_message *m, const char * const *opts) {
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        for (size_t i = 0; opts && opts[i]; i += 3) {
                if (streq(opts[i + 1], "s"))
                        assert_true(sd_bus_message_append(m, "{sv}", opts[i], "s", opts[i + 2]) >= 0);
                else if (streq(opts[i + 1], "b"))
                        assert_true(sd_bus_message_append(m, "{sv}", opts[i], "b", (int) streq(opts[i + 2], "true")) >= 0);
                else
                        assert_true(sd_bus_message_append(m, "{sv}", opts[i], "t",
                                                          (uint64_t) strtoull(opts[i + 2], NULL, 10)) >= 0);
        }
        assert_true(sd_bus_message_close_container(m) >= 0);
}

/* PrepareMigration on host b; disk_size > 0: copy-storage of vda with that size, and the export's address
 * and key in *ret_nbd_uri, *ret_nbd_key. 0, or < 0 with e. */
static int prepare_storage(const char *xml, const char * const *opts, uint64_t disk_size, char **ret_uri,
                           char **ret_cookie, char **ret_nbd_uri, char **ret_nbd_key, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *p, *u, *c, *key, *value;
        int r;

        assert_true(sd_bus_message_new_method_call(hostb.bus, &m, "org.virtbus1", M, "PrepareMigration") >= 0);
        assert_true(sd_bus_message_append(m, "s", xml) >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        for (size_t i = 0; opts && opts[i]; i += 3) {
                if (streq(opts[i + 1], "s"))
                        assert_true(sd_bus_message_append(m, "{sv}", opts[i], "s", opts[i + 2]) >= 0);
                else
                        assert_true(sd_bus_message_append(m, "{sv}", opts[i], "b", (int) streq(opts[i + 2], "true")) >= 0);
        }
        if (disk_size > 0)
                assert_true(sd_bus_message_append(m, "{sv}{sv}", "copy-storage", "b", 1, "disk-sizes", "a{st}", 1, "vda",
                                                  disk_size) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
        r = sd_bus_call(hostb.bus, m, 60 * HARNESS_USEC_PER_SEC, e, &reply);
        if (r < 0)
                return r;
        assert_int_equal(sd_bus_message_read(reply, "oss", &p, &u, &c), 1);
        *ret_uri = strdup(u);
        *ret_cookie = strdup(c);
        if (!ret_nbd_uri)
                return 0;
        *ret_nbd_uri = *ret_nbd_key = NULL;
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_int_equal(sd_bus_message_read(reply, "s", &key), 1);
                assert_int_equal(sd_bus_message_read(reply, "v", "s", &value), 1);
                if (streq(key, "nbd-uri"))
                        *ret_nbd_uri = strdup(value);
                else if (streq(key, "nbd-key"))
                        *ret_nbd_key = strdup(value);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        assert_non_null(*ret_nbd_uri);
        assert_non_null(*ret_nbd_key);
        return 0;
}

static void prepare(const char *xml, const char * const *opts, char **ret_uri, char **ret_cookie) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (prepare_storage(xml, opts, 0, ret_uri, ret_cookie, NULL, NULL, &e) < 0)
                fail_msg("PrepareMigration failed: %s: %s", e.name, e.message);
}

/* MigrateTo, sent without waiting: the answer comes to on_reply. */
typedef struct Pending {
        bool done;
        char *error;            /* its name, or NULL: it worked */
        bool postcopy;          /* the answer's "postcopy" */
        uint64_t total_time_ms; /* the answer's "total-time-ms" */
} Pending;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Pending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *key;
        int b;

        p->done = true;
        p->error = e ? strdup(e->name) : NULL;
        if (e) {
                fprintf(stderr, "MigrateTo: %s: %s\n", e->name, strempty(e->message));
                return 0;
        }
        assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                assert_int_equal(sd_bus_message_read(reply, "s", &key), 1);
                if (streq(key, "postcopy")) {
                        assert_int_equal(sd_bus_message_read(reply, "v", "b", &b), 1);
                        p->postcopy = b;
                } else if (streq(key, "total-time-ms"))
                        assert_int_equal(sd_bus_message_read(reply, "v", "t", &p->total_time_ms), 1);
                else
                        assert_true(sd_bus_message_skip(reply, "v") >= 0);
                assert_true(sd_bus_message_exit_container(reply) >= 0);
        }
        return 0;
}

static void migrate_to_async(sd_bus *bus, const char *path, const char *uri, const char *cookie,
                             const char * const *opts, Pending *p) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        *p = (Pending) {};
        assert_true(sd_bus_message_new_method_call(bus, &m, "org.virtbus1", path, D, "MigrateTo") >= 0);
        assert_true(sd_bus_message_append(m, "ss", uri, cookie) >= 0);
        append_options(m, opts);
        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_call_async(bus, NULL, m, on_reply, p, 300 * HARNESS_USEC_PER_SEC) >= 0);
}

static void wait_reply(sd_bus *bus, Pending *p) {
        uint64_t deadline = harness_now_usec() + 300 * HARNESS_USEC_PER_SEC;

        while (!p->done) {
                assert_true(harness_now_usec() < deadline);
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                (void) sd_bus_wait(bus, 100 * HARNESS_USEC_PER_MSEC);
        }
}

/* Waits for a MigrationStats signal (the stream is going) while the call is pending. */
static void wait_streaming(sd_bus *bus, const char *path, Pending *p) {
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, path, D, "MigrationStats");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = harness_watch_next(w, 60 * HARNESS_USEC_PER_SEC);

        assert_non_null(sig);
        assert_false(p->done);
}

/* The last counter value in buf ("TICK-N"), or -1. */
static long last_tick(const char *buf) {
        long n = -1;

        for (const char *s = strstr(buf, "TICK-"); s; s = strstr(s + 1, "TICK-"))
                if (s[5] >= '0' && s[5] <= '9')
                        n = strtol(s + 5, NULL, 10);
        return n;
}

/* Reads the console until the counter passes after; returns the value seen. buf keeps what was read. */
static long tick_after(int console, long after, char *buf, size_t size) {
        uint64_t deadline = harness_now_usec() + GUEST_TIMEOUT_USEC;
        long n;

        buf[0] = 0;
        while ((n = last_tick(buf)) <= after) {
                if (harness_now_usec() > deadline)
                        fail_msg("the counter did not pass %ld; the console said: %s", after, buf);
                (void) console_read_until(console, buf, size, "\n#NEVER#", 500 * HARNESS_USEC_PER_MSEC);
        }
        return n;
}

/* Waits until the domain called name is gone from bus. */
static void wait_gone(sd_bus *bus, const char *name) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

                if (sd_bus_call_method(bus, "org.virtbus1", M, "GetDomainByName", &e, &reply, "s", name) < 0) {
                        harness_assert_error(&e, ERR("NoSuchDomain"), NULL);
                        return;
                }
                if (harness_now_usec() > deadline)
                        fail_msg("domain '%s' is still there", name);
                usleep(50000);
        }
}

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
        (void) tick_after(console, 5, buf, sizeof buf);
        return console;
}

static void test_migrate_qemu(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *path = NULL, *live = NULL;
        char *uri = NULL, *cookie = NULL;
        Pending p = {};
        char buf[16384];
        pid_t qemu_a, qemu_b;
        long before, after;
        int console, console_b, persistent = 0;
        sd_bus_error e = SD_BUS_ERROR_NULL;

        mig_host_start(h, "hostb", "qemu", ns_b, &hostb);
        b = hostb.bus;
        console = guest_start(h, &path);
        qemu_a = harness_qemu_pid(h, UUID);
        assert_true(qemu_a > 0);
        live = harness_domain_xml(a, path, 0);

        /* 1. The destination's QEMU dies mid-way: the source runs on. */
        prepare(live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        qemu_b = mig_host_qemu_pid(&hostb, UUID);
        assert_true(qemu_b > 0);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        wait_streaming(a, path, &p);
        assert_int_equal(kill(qemu_b, SIGKILL), 0);
        wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        wait_gone(b, "migq");
        before = tick_after(console, 0, buf, sizeof buf);
        (void) tick_after(console, before, buf, sizeof buf); /* it still counts, on the source */
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        assert_int_equal(kill(qemu_a, 0), 0);
        free(uri);
        free(cookie);

        /* 2. AbortMigration on the source mid-way: the same. */
        prepare(live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        wait_streaming(a, path, &p);
        sd_bus_message_unref(harness_call_ok(a, path, D, "AbortMigration", "t", UINT64_C(0)));
        wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        /* The destination's QEMU ends itself when its stream breaks off; the domain goes there. */
        wait_gone(b, "migq");
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        before = tick_after(console, 0, buf, sizeof buf);
        free(uri);
        free(cookie);

        /* 3. AbortMigration on the destination mid-way: its domain goes at once, the source runs on. */
        prepare(live, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, &uri, &cookie);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "bandwidth", "t", "1", NULL }, &p);
        wait_streaming(a, path, &p);
        sd_bus_message_unref(harness_call_ok(b, path, D, "AbortMigration", "t", UINT64_C(0)));
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
        wait_reply(a, &p);
        assert_non_null(p.error);
        free(p.error);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        before = tick_after(console, 0, buf, sizeof buf);
        free(uri);
        free(cookie);

        /* 4. Through: the counter goes on at the destination, no new boot. */
        prepare(live, (const char *[]) { "listen-address", "s", ADDR_B, "persist", "b", "true", NULL }, &uri, &cookie);
        assert_true(strncmp(uri, "tcp:" ADDR_B ":", strlen("tcp:" ADDR_B ":")) == 0);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", NULL }, &p);
        wait_reply(a, &p);
        assert_null(p.error);
        /* QEMU's figures of the finished migration (asked after QEMU has worked them out). */
        assert_true(p.total_time_ms > 0);
        before = last_tick(buf);
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
        after = tick_after(console_b, before, buf, sizeof buf);
        assert_true(after > before);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console_b);
        harness_domain_call(b, path, "Destroy");
        harness_domain_call(b, path, "Undefine");
        free(uri);
        free(cookie);
}

/* copy-storage ------------------------------------------------------------------------------------------ */

#define DISK_SIZE (32ULL << 20)

/* Runs argv as root; its exit status (output in *ret_out when asked). */
static int run_out(Harness *h, const char * const *argv, char **ret_out) {
        HarnessResult res = {};
        int status;

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        status = res.status;
        if (ret_out)
                *ret_out = strdup(strempty(res.out));
        harness_result_done(&res);
        return status;
}

static void guest_say(int console, const char *cmd, const char *want) {
        char buf[16384] = "";

        console_write(console, cmd);
        if (!console_read_until(console, buf, sizeof buf, want, GUEST_TIMEOUT_USEC))
                fail_msg("the guest did not say '%s'; it said: %s", want, buf);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
}

static void write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

/* qemu-img info of the export vda at nbd_uri ("tcp:ADDR:PORT"): with key (hex) over TLS-PSK, or plain
 * NBD without one. Its exit status. */
static int nbd_info(Harness *h, const char *nbd_uri, const char *key) {
        _cleanup_free_ char *host = strdup(nbd_uri + 4), *dir = NULL, *file = NULL, *obj = NULL, *opts = NULL,
                            *url = NULL, *line = NULL;
        char *colon = strrchr(host, ':');

        *colon = 0;
        if (!key) {
                assert_true(asprintf(&url, "nbd://%s:%s/vda", host, colon + 1) > 0);
                return run_out(h, (const char *[]) { "/usr/bin/qemu-img", "info", url, NULL }, NULL);
        }
        assert_true(asprintf(&dir, "%s/nbd-client-key", harness_dir(h)) > 0);
        (void) mkdir(dir, 0700);
        assert_true(asprintf(&file, "%s/keys.psk", dir) > 0);
        assert_true(asprintf(&line, "virtbus:%s\n", key) > 0);
        write_file(file, line);
        assert_true(asprintf(&obj, "tls-creds-psk,id=tls0,endpoint=client,dir=%s,username=virtbus", dir) > 0);
        assert_true(asprintf(&opts, "driver=nbd,host=%s,port=%s,export=vda,tls-creds=tls0", host, colon + 1) > 0);
        return run_out(h, (const char *[]) { "/usr/bin/qemu-img", "info", "--object", obj, "--image-opts", opts, NULL },
                       NULL);
}

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static bool file_exists(const char *path) {
        return access(path, F_OK) == 0;
}

static void wait_file_gone(const char *path) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;

        while (file_exists(path)) {
                if (harness_now_usec() > deadline)
                        fail_msg("'%s' is still there", path);
                usleep(50000);
        }
}

/* xml with every occurrence of from replaced by to. */
static char *replace_all(const char *xml, const char *from, const char *to) {
        size_t nf = strlen(from), nt = strlen(to), n = 0;
        char *out = malloc(strlen(xml) * (nt > nf ? nt / nf + 2 : 1) + 1), *o = out;

        assert_non_null(out);
        for (const char *p = xml; *p;) {
                if (strncmp(p, from, nf) == 0) {
                        memcpy(o, to, nt);
                        o += nt;
                        p += nf;
                        n++;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        assert_true(n > 0);
        return out;
}

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
        Pending p;

        mig_host_start(h, "hostc", "qemu", ns_b, &hostb);
        b = hostb.bus;
        /* Each "host" its own directory: nothing is shared. */
        assert_true(asprintf(&dir_a, "%s/disks-a", harness_dir(h)) > 0);
        assert_true(asprintf(&dir_b, "%s/disks-b", harness_dir(h)) > 0);
        assert_int_equal(mkdir(dir_a, 0755), 0);
        assert_int_equal(mkdir(dir_b, 0755), 0);
        assert_true(asprintf(&disk_a, "%s/migd.qcow2", dir_a) > 0);
        assert_true(asprintf(&disk_b, "%s/migd.qcow2", dir_b) > 0);
        assert_true(asprintf(&sz, "%llu", DISK_SIZE) > 0);
        assert_int_equal(run_out(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk_a, sz, NULL },
                                 NULL), 0);
        /* Written before the guest ever ran. */
        assert_int_equal(run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "write -P 0x41 1M 64k",
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
        guest_say(console, "X=1; printf VIRTBUS-LIVE-MARK | dd of=/dev/vda conv=fsync 2>/dev/null; echo WROTE-$X\n",
                  "WROTE-1");
        live = harness_domain_xml(a, path, 0);
        dest_xml = replace_all(live, disk_a, disk_b);

        /* Sizes are needed; an existing file is never overwritten. */
        assert_true(prepare_storage(dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, "copy-storage", "b",
                                                                 "true", NULL }, 0, &uri, &cookie, NULL, NULL, &e) < 0);
        harness_assert_error(&e, SD_BUS_ERROR_INVALID_ARGS, "disk-sizes");
        sd_bus_error_free(&e);
        write_file(disk_b, "KEEP");
        assert_true(prepare_storage(dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, DISK_SIZE, &uri,
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
        if (prepare_storage(dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, NULL }, DISK_SIZE, &uri, &cookie,
                            &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration with copy-storage failed: %s: %s", e.name, e.message);
        assert_true(strncmp(nbd_uri, "tcp:" ADDR_B ":", strlen("tcp:" ADDR_B ":")) == 0);
        assert_true(file_exists(disk_b));
        assert_int_not_equal(nbd_info(h, nbd_uri, NULL), 0);
        assert_int_not_equal(nbd_info(h, nbd_uri, "00000000000000000000000000000000000000000000000000000000000000aa"), 0);
        assert_int_equal(nbd_info(h, nbd_uri, nbd_key), 0);
        sd_bus_message_unref(harness_call_ok(b, path, D, "AbortMigration", "t", UINT64_C(0)));
        wait_gone(b, "migd");
        wait_file_gone(disk_b);
        free(uri);
        free(cookie);
        free(nbd_uri);
        free(nbd_key);

        /* Through. */
        if (prepare_storage(dest_xml, (const char *[]) { "listen-address", "s", ADDR_B, "persist", "b", "true", NULL },
                            DISK_SIZE, &uri, &cookie, &nbd_uri, &nbd_key, &e) < 0)
                fail_msg("PrepareMigration with copy-storage failed: %s: %s", e.name, e.message);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "undefine-source", "b", "true", "copy-storage", "b",
                                                                  "true", "nbd-uri", "s", nbd_uri, "nbd-key", "s",
                                                                  nbd_key, NULL }, &p);
        wait_reply(a, &p);
        assert_null(p.error);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migd");
        close(console);
        /* The key's file went with the export. */
        free(out);
        assert_true(asprintf(&out, "%s/run/qemu/" UUID_D ".nbd-in", hostb.dir) > 0);
        assert_false(file_exists(out));
        out = mfree_str(out);

        /* The guest on the destination reads what it wrote on the source, from the copied disk. */
        console = console_open(b, path, "", 0, &e);
        assert_true(console >= 0);
        guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$(dd if=/dev/vda bs=17 count=1 2>/dev/null).\n",
                  "SEEN=VIRTBUS-LIVE-MARK.");
        close(console);
        harness_domain_call(b, path, "Destroy");
        /* And the image there has what was written before the guest ran. */
        assert_int_equal(run_out(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", "read -P 0x41 1M 64k",
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
        Pending p;

        mig_host_start(h, "hostd", "qemu", ns_b, &hostb);
        b = hostb.bus;
        console = guest_start(h, &path);
        live = harness_domain_xml(a, path, 0);

        old = harness_read_file(UFFD_SYSCTL);
        snprintf(uffd_old, sizeof uffd_old, "%c", old[0]);
        if (old[0] == '0') {
                assert_true(prepare_storage(live, (const char *[]) { "listen-address", "s", ADDR_B, "postcopy", "b",
                                                                     "true", NULL }, 0, &uri, &cookie, NULL, NULL, &e) < 0);
                harness_assert_error(&e, ERR("NotSupported"), "unprivileged_userfaultfd");
                sd_bus_error_free(&e);
                harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
                uffd_write("1");
        }

        prepare(live, (const char *[]) { "listen-address", "s", ADDR_B, "postcopy", "b", "true", NULL }, &uri, &cookie);
        migrate_to_async(a, path, uri, cookie, (const char *[]) { "postcopy", "b", "true", "bandwidth", "t", "1",
                                                                  "undefine-source", "b", "true", NULL }, &p);
        wait_streaming(a, path, &p);
        before = tick_after(console, 0, buf, sizeof buf);
        sd_bus_message_unref(harness_call_ok(a, path, D, "StartPostcopy", "t", UINT64_C(0)));
        wait_reply(a, &p);
        assert_null(p.error);
        assert_true(p.postcopy);
        sd_bus_message_unref(harness_call_ok(b, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(a, path, D, "FinishMigration", "st", cookie, UINT64_C(0)));
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migq");
        close(console);

        console_b = console_open(b, path, "", 0, &e);
        assert_true(console_b >= 0);
        after = tick_after(console_b, before, buf, sizeof buf);
        assert_true(after > before);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console_b);
        harness_domain_call(b, path, "Destroy");
        uffd_restore();
        free(uri);
        free(cookie);
}

static int teardown(void **state) {
        uffd_restore();
        mig_host_stop(&hostb, getenv("VIRTBUS_TEST_VERBOSE"));
        return harness_teardown_qemus(state);
}

static void del_netns(void) {
        if (*ns_b)
                (void) run((const char *[]) { IP, "netns", "del", ns_b, NULL });
        if (*ns_a)
                (void) run((const char *[]) { IP, "netns", "del", ns_a, NULL });
}

/* Two namespaces joined by a veth pair; this process (and so the harness's daemons) goes into the first. */
static int enter_netns(void) {
        _cleanup_free_ char *path = NULL, *va = NULL, *vb = NULL;
        int fd, r;

        snprintf(ns_a, sizeof ns_a, "vbmig-a-%d", (int) getpid());
        snprintf(ns_b, sizeof ns_b, "vbmig-b-%d", (int) getpid());
        if (asprintf(&va, "vbma%d", (int) getpid() % 100000) < 0 || asprintf(&vb, "vbmb%d", (int) getpid() % 100000) < 0)
                return -ENOMEM;
        if (run((const char *[]) { IP, "netns", "add", ns_a, NULL }) != 0 ||
            run((const char *[]) { IP, "netns", "add", ns_b, NULL }) != 0)
                return -EIO;
        atexit(del_netns);
        if (run((const char *[]) { IP, "link", "add", va, "netns", ns_a, "type", "veth", "peer", "name", vb, "netns",
                                   ns_b, NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_a, "addr", "add", ADDR_A "/24", "dev", va, NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_b, "addr", "add", ADDR_B "/24", "dev", vb, NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_a, "link", "set", va, "up", NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_b, "link", "set", vb, "up", NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_a, "link", "set", "lo", "up", NULL }) != 0 ||
            run((const char *[]) { IP, "-n", ns_b, "link", "set", "lo", "up", NULL }) != 0)
                return -EIO;
        if (asprintf(&path, "/run/netns/%s", ns_a) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = setns(fd, CLONE_NEWNET);
        close(fd);
        return r < 0 ? -errno : 0;
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_migrate_qemu, teardown),
                cmocka_unit_test_teardown(test_migrate_copy_storage, teardown),
                cmocka_unit_test_teardown(test_migrate_postcopy, teardown),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0 || access(IP, X_OK) < 0) {
                fprintf(stderr, "test-qemu-migrate: qemu-system-x86_64 or ip missing (scripts/bootstrap)\n");
                return 77;
        }
        /* The tiny guest is built (or found in its cache) before the namespaces, which reach no archive. */
        {
                _cleanup_free_ char *script = harness_source_path("tests/guest/build-guest"), *cmd = NULL;

                if (asprintf(&cmd, "%s >/dev/null", script) < 0 || system(cmd) != 0)
                        fprintf(stderr, "tests/guest/build-guest failed: the test will fail\n");
        }
        if (enter_netns() < 0) {
                fprintf(stderr, "Failed to set up the network namespaces\n");
                return 1;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
