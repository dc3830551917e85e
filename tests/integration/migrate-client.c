/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's side of the qemu migration tests (see migrate-client.h). */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console-util.h"
#include "migrate-client.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define IP "/usr/sbin/ip"

char mig_ns_a[64], mig_ns_b[64];

int mig_run(const char * const *argv) {
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
void mig_append_options(sd_bus_message *m, const char * const *opts) {
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
int mig_prepare_storage(sd_bus *b, const char *xml, const char * const *opts, uint64_t disk_size, char **ret_uri,
                           char **ret_cookie, char **ret_nbd_uri, char **ret_nbd_key, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *p, *u, *c, *key, *value;
        int r;

        assert_true(sd_bus_message_new_method_call(b, &m, "org.virtbus1", M, "PrepareMigration") >= 0);
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
        r = sd_bus_call(b, m, 60 * HARNESS_USEC_PER_SEC, e, &reply);
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

void mig_prepare(sd_bus *b, const char *xml, const char * const *opts, char **ret_uri, char **ret_cookie) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (mig_prepare_storage(b, xml, opts, 0, ret_uri, ret_cookie, NULL, NULL, &e) < 0)
                fail_msg("PrepareMigration failed: %s: %s", e.name, e.message);
}


int mig_on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MigPending *p = userdata;
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

void mig_migrate_to_async(sd_bus *bus, const char *path, const char *uri, const char *cookie,
                             const char * const *opts, MigPending *p) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        *p = (MigPending) {};
        assert_true(sd_bus_message_new_method_call(bus, &m, "org.virtbus1", path, D, "MigrateTo") >= 0);
        assert_true(sd_bus_message_append(m, "ss", uri, cookie) >= 0);
        mig_append_options(m, opts);
        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_call_async(bus, NULL, m, mig_on_reply, p, 300 * HARNESS_USEC_PER_SEC) >= 0);
}

void mig_wait_reply(sd_bus *bus, MigPending *p) {
        uint64_t deadline = harness_now_usec() + 300 * HARNESS_USEC_PER_SEC;

        while (!p->done) {
                assert_true(harness_now_usec() < deadline);
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                (void) sd_bus_wait(bus, 100 * HARNESS_USEC_PER_MSEC);
        }
}

/* Waits for a MigrationStats signal (the stream is going) while the call is pending. */
void mig_wait_streaming(sd_bus *bus, const char *path, MigPending *p) {
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, path, D, "MigrationStats");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = harness_watch_next(w, 60 * HARNESS_USEC_PER_SEC);

        assert_non_null(sig);
        assert_false(p->done);
}

/* The last counter value in buf ("TICK-N"), or -1. */
long mig_last_tick(const char *buf) {
        long n = -1;

        for (const char *s = strstr(buf, "TICK-"); s; s = strstr(s + 1, "TICK-"))
                if (s[5] >= '0' && s[5] <= '9')
                        n = strtol(s + 5, NULL, 10);
        return n;
}

/* Reads the console until the counter passes after; returns the value seen. buf keeps what was read. */
long mig_tick_after(int console, long after, char *buf, size_t size) {
        uint64_t deadline = harness_now_usec() + MIG_GUEST_TIMEOUT_USEC;
        long n;

        buf[0] = 0;
        while ((n = mig_last_tick(buf)) <= after) {
                if (harness_now_usec() > deadline)
                        fail_msg("the counter did not pass %ld; the console said: %s", after, buf);
                (void) console_read_until(console, buf, size, "\n#NEVER#", 500 * HARNESS_USEC_PER_MSEC);
        }
        return n;
}

/* Waits until the domain called name is gone from bus. */
void mig_wait_gone(sd_bus *bus, const char *name) {
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

int mig_run_out(Harness *h, const char * const *argv, char **ret_out) {
        HarnessResult res = {};
        int status;

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        status = res.status;
        if (ret_out)
                *ret_out = strdup(strempty(res.out));
        harness_result_done(&res);
        return status;
}

void mig_guest_say(int console, const char *cmd, const char *want) {
        char buf[16384] = "";

        console_write(console, cmd);
        if (!console_read_until(console, buf, sizeof buf, want, MIG_GUEST_TIMEOUT_USEC))
                fail_msg("the guest did not say '%s'; it said: %s", want, buf);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
}

void mig_write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

/* qemu-img info of the export vda at nbd_uri ("tcp:ADDR:PORT"): with key (hex) over TLS-PSK, or plain
 * NBD without one. Its exit status. */
int mig_nbd_info(Harness *h, const char *nbd_uri, const char *key) {
        _cleanup_free_ char *host = strdup(nbd_uri + 4), *dir = NULL, *file = NULL, *obj = NULL, *opts = NULL,
                            *url = NULL, *line = NULL;
        char *colon = strrchr(host, ':');

        *colon = 0;
        if (!key) {
                assert_true(asprintf(&url, "nbd://%s:%s/vda", host, colon + 1) > 0);
                return mig_run_out(h, (const char *[]) { "/usr/bin/qemu-img", "info", url, NULL }, NULL);
        }
        assert_true(asprintf(&dir, "%s/nbd-client-key", harness_dir(h)) > 0);
        (void) mkdir(dir, 0700);
        assert_true(asprintf(&file, "%s/keys.psk", dir) > 0);
        assert_true(asprintf(&line, "virtbus:%s\n", key) > 0);
        mig_write_file(file, line);
        assert_true(asprintf(&obj, "tls-creds-psk,id=tls0,endpoint=client,dir=%s,username=virtbus", dir) > 0);
        assert_true(asprintf(&opts, "driver=nbd,host=%s,port=%s,export=vda,tls-creds=tls0", host, colon + 1) > 0);
        return mig_run_out(h, (const char *[]) { "/usr/bin/qemu-img", "info", "--object", obj, "--image-opts", opts, NULL },
                       NULL);
}

char *mig_mfree_str(char *p) {
        free(p);
        return NULL;
}

bool mig_file_exists(const char *path) {
        return access(path, F_OK) == 0;
}

void mig_wait_file_gone(const char *path) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;

        while (mig_file_exists(path)) {
                if (harness_now_usec() > deadline)
                        fail_msg("'%s' is still there", path);
                usleep(50000);
        }
}

/* xml with every occurrence of from replaced by to. */
char *mig_replace_all(const char *xml, const char *from, const char *to) {
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

void mig_del_netns(void) {
        if (*mig_ns_b)
                (void) mig_run((const char *[]) { IP, "netns", "del", mig_ns_b, NULL });
        if (*mig_ns_a)
                (void) mig_run((const char *[]) { IP, "netns", "del", mig_ns_a, NULL });
}

/* Two namespaces joined by a veth pair; this process (and so the harness's daemons) goes into the first. */
int mig_enter_netns(void) {
        _cleanup_free_ char *path = NULL, *va = NULL, *vb = NULL;
        int fd, r;

        snprintf(mig_ns_a, sizeof mig_ns_a, "vbmig-a-%d", (int) getpid());
        snprintf(mig_ns_b, sizeof mig_ns_b, "vbmig-b-%d", (int) getpid());
        if (asprintf(&va, "vbma%d", (int) getpid() % 100000) < 0 || asprintf(&vb, "vbmb%d", (int) getpid() % 100000) < 0)
                return -ENOMEM;
        if (mig_run((const char *[]) { IP, "netns", "add", mig_ns_a, NULL }) != 0 ||
            mig_run((const char *[]) { IP, "netns", "add", mig_ns_b, NULL }) != 0)
                return -EIO;
        atexit(mig_del_netns);
        if (mig_run((const char *[]) { IP, "link", "add", va, "netns", mig_ns_a, "type", "veth", "peer", "name", vb, "netns",
                                   mig_ns_b, NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_a, "addr", "add", MIG_ADDR_A "/24", "dev", va, NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_b, "addr", "add", MIG_ADDR_B "/24", "dev", vb, NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_a, "link", "set", va, "up", NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_b, "link", "set", vb, "up", NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_a, "link", "set", "lo", "up", NULL }) != 0 ||
            mig_run((const char *[]) { IP, "-n", mig_ns_b, "link", "set", "lo", "up", NULL }) != 0)
                return -EIO;
        if (asprintf(&path, "/run/netns/%s", mig_ns_a) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = setns(fd, CLONE_NEWNET);
        close(fd);
        return r < 0 ? -errno : 0;
}

int mig_setup_tests(void) {
        _cleanup_free_ char *script = harness_source_path("tests/guest/build-guest"), *cmd = NULL;

        if (!script || asprintf(&cmd, "%s >/dev/null", script) < 0 || system(cmd) != 0)
                fprintf(stderr, "tests/guest/build-guest failed: the test will fail\n");
        if (mig_enter_netns() < 0) {
                fprintf(stderr, "Failed to set up the network namespaces\n");
                return -1;
        }
        return 0;
}
