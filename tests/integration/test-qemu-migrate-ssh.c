/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl migrate NAME SSH-HOST, end to end over a real ssh: the two "hosts" of test-qemu-migrate.c (two
 * network namespaces, each with its own dbus-daemon, polkitd and virtbusd), and an sshd of this test in the
 * second namespace on its address, with a host key and a client key made here. The client key's line in
 * authorized_keys forces systemd-stdio-bridge onto the second host's bus (its private bus stands for that
 * host's system bus, which is what `ssh HOST systemd-stdio-bridge`, the command sd_bus_open_system_remote
 * asks for, would reach). virtbusctl finds `ssh` on its PATH as sd-bus runs it; the test puts a wrapper
 * first that only adds `-F` with its client configuration (host name, key, known host key, batch mode),
 * because ssh reads ~/.ssh/config from the password database's home, not from $HOME, and the test does not
 * write into root's home.
 * The counter guest moves: virtbusctl says so, the counter goes on at the destination without a new boot,
 * the source's domain is gone (--undefine-source). A host whose key is not the known one is refused by ssh
 * before anything starts, and the guest runs on. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"
#include "migrate-client.h"
#include "migrate-hosts.h"

#define D HARNESS_DOMAIN_INTERFACE
#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ERR(name) "org.virtbus1.Error." name
#define SSHD "/usr/sbin/sshd"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"
#define UUID "6d1e0000-0000-4000-8000-0000000000c1"

static MigHost hostb;
static pid_t sshd_pid;

static char *xstrfmt(const char *format, ...) _printf_(1, 2);
static char *xstrfmt(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        assert_true(vasprintf(&s, format, ap) >= 0);
        va_end(ap);
        return s;
}

static void write_mode(const char *path, const char *text, mode_t mode) {
        mig_write_file(path, text);
        assert_int_equal(chmod(path, mode), 0);
}

/* path's first line, to free. */
static char *first_line(const char *path) {
        char *s = harness_read_file(path), *nl;

        assert_non_null(s);
        nl = strchr(s, '\n');
        if (nl)
                *nl = 0;
        return s;
}

static void keygen(Harness *h, const char *file) {
        assert_int_equal(mig_run_out(h, (const char *[]) { SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "virtbus-test",
                                                           "-f", file, NULL }, NULL), 0);
}

/* Waits until something accepts on MIG_ADDR_B:22 (the sshd, from this namespace over the veth). */
static void wait_port(const char *log) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(22) };

        assert_int_equal(inet_pton(AF_INET, MIG_ADDR_B, &sa.sin_addr), 1);
        for (;;) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r, st;

                assert_true(fd >= 0);
                r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
                close(fd);
                if (r == 0)
                        return;
                if (waitpid(sshd_pid, &st, WNOHANG) == sshd_pid) {
                        _cleanup_free_ char *s = harness_read_file(log);
                        sshd_pid = 0;
                        fail_msg("sshd exited (%d): %s", st, strempty(s));
                }
                if (harness_now_usec() > deadline)
                        fail_msg("sshd does not listen on " MIG_ADDR_B ":22");
                usleep(20000);
        }
}

/* The sshd on MIG_ADDR_B:22 in the second namespace, and the client's side, in dir. Returns the PATH
 * virtbusctl is to run with (its ssh the wrapper), to free. */
static char *ssh_setup(Harness *h, const char *dir) {
        _cleanup_free_ char *host_key = xstrfmt("%s/host_key", dir), *client_key = xstrfmt("%s/client_key", dir),
                            *host_pub = NULL, *client_pub = NULL, *text = NULL, *path = NULL, *log = NULL,
                            *bin = xstrfmt("%s/bin", dir);

        assert_int_equal(mkdir(dir, 0700), 0);
        keygen(h, host_key);
        keygen(h, client_key);
        path = xstrfmt("%s.pub", host_key);
        host_pub = first_line(path);
        free(path);
        path = xstrfmt("%s.pub", client_key);
        client_pub = first_line(path);
        free(path);

        /* Server: this key may only bridge to the second host's bus. */
        text = xstrfmt("command=\"/usr/bin/systemd-stdio-bridge --bus-path=%s\",restrict %s\n", hostb.address, client_pub);
        path = xstrfmt("%s/authorized_keys", dir);
        write_mode(path, text, 0600);
        free(text);
        text = xstrfmt("ListenAddress " MIG_ADDR_B ":22\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\nUsePAM no\n"
                       "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                       "KbdInteractiveAuthentication no\nLogLevel VERBOSE\n", host_key, path);
        free(path);
        path = xstrfmt("%s/sshd_config", dir);
        write_mode(path, text, 0600);
        /* sshd's privilege separation directory (what the package's service makes at its start). */
        assert_true(mkdir("/run/sshd", 0755) == 0 || errno == EEXIST);
        log = xstrfmt("%s/sshd.log", dir);
        sshd_pid = fork();
        assert_true(sshd_pid >= 0);
        if (sshd_pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

                if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(127);
                execl("/usr/sbin/ip", "ip", "netns", "exec", mig_ns_b, SSHD, "-D", "-e", "-f", path, (char *) NULL);
                _exit(127);
        }
        wait_port(log);

        /* Client: the host by name, its key known, no questions. */
        free(text);
        free(path);
        text = xstrfmt(MIG_ADDR_B " %s\n", host_pub);
        path = xstrfmt("%s/known_hosts", dir);
        write_mode(path, text, 0600);
        free(text);
        text = xstrfmt("Host migdest\n  HostName " MIG_ADDR_B "\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n"
                       "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
                       "  BatchMode yes\n"
                       "Host migdest-unknown\n  HostName " MIG_ADDR_B "\n  User root\n  IdentityFile %s\n"
                       "  IdentitiesOnly yes\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n"
                       "  StrictHostKeyChecking yes\n  BatchMode yes\n", client_key, path, client_key);
        free(path);
        path = xstrfmt("%s/ssh_config", dir);
        write_mode(path, text, 0600);
        free(text);
        assert_int_equal(mkdir(bin, 0755), 0);
        text = xstrfmt("#!/bin/sh\nexec /usr/bin/ssh -F %s \"$@\"\n", path);
        free(path);
        path = xstrfmt("%s/ssh", bin);
        write_mode(path, text, 0755);
        return xstrfmt("PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin", bin);
}

static int guest_start(Harness *h, char **ret_path) {
        sd_bus *a = harness_bus_root(h);
        _cleanup_free_ char *xml = harness_shell_guest_xml(h, "migs", ""), *with_uuid = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;

        with_uuid = xstrfmt("<domain type='qemu'><uuid>" UUID "</uuid>%s", xml + strlen("<domain type='qemu'>"));
        *ret_path = harness_define_domain(a, with_uuid);
        harness_domain_call(a, *ret_path, "Start");
        console = console_open(a, *ret_path, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", MIG_GUEST_TIMEOUT_USEC));
        console_write(console, "i=0; while :; do echo TICK-$i; i=$((i+1)); sleep 0.1; done &\n");
        (void) mig_tick_after(console, 5, buf, sizeof buf);
        return console;
}

static void migrate_ctl(Harness *h, const char *path_env, const char *dest, HarnessResult *res) {
        _cleanup_free_ char *address = xstrfmt("--address=%s", harness_bus_address(h));

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT,
                                     (const char *[]) { getenv("VIRTBUS_CTL"), address, "migrate", "migs", dest,
                                                        "--listen-address", MIG_ADDR_B, "--undefine-source", NULL },
                                     (const char *[]) { path_env, NULL }, 120 * HARNESS_USEC_PER_SEC, res), 0);
}

static void test_migrate_ssh(void **state) {
        Harness *h = *state;
        sd_bus *a = harness_bus_root(h), *b;
        _cleanup_free_ char *dir = xstrfmt("%s/ssh", harness_dir(h)), *path_env = NULL, *path = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        HarnessResult res = {};
        char buf[16384];
        long before, after;
        int console, console_b;

        mig_host_start(h, "hostssh", "qemu", mig_ns_b, &hostb);
        b = hostb.bus;
        path_env = ssh_setup(h, dir);
        console = guest_start(h, &path);

        /* A host key ssh does not know: refused there, nothing started anywhere. */
        migrate_ctl(h, path_env, "migdest-unknown", &res);
        assert_int_not_equal(res.status, 0);
        if (!strstr(strempty(res.err), "Host key verification failed") ||
            !strstr(strempty(res.err), "Failed to connect to the destination 'migdest-unknown'"))
                fail_msg("virtbusctl migrate to an unknown host said: %s%s", strempty(res.out), strempty(res.err));
        harness_result_done(&res);
        assert_string_equal(harness_get_string(a, path, D, "State"), "running");
        harness_call_fails(b, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migs");

        /* Through. */
        before = mig_tick_after(console, 0, buf, sizeof buf);
        migrate_ctl(h, path_env, "migdest", &res);
        if (res.status != 0 || !strstr(strempty(res.out), "Domain 'migs' migrated to 'migdest'")) {
                _cleanup_free_ char *sshd_log = NULL, *log_path = xstrfmt("%s/sshd.log", dir);
                sshd_log = harness_read_file(log_path);
                fail_msg("virtbusctl migrate over ssh (%d): %s%s; sshd said: %s", res.status, strempty(res.out),
                         strempty(res.err), strempty(sshd_log));
        }
        harness_result_done(&res);
        /* It went through the sshd, with the test's key. */
        {
                _cleanup_free_ char *log_path = xstrfmt("%s/sshd.log", dir), *sshd_log = harness_read_file(log_path);
                if (!strstr(strempty(sshd_log), "Accepted publickey for root"))
                        fail_msg("sshd did not see the login: %s", strempty(sshd_log));
        }
        assert_string_equal(harness_get_string(b, path, D, "State"), "running");
        harness_call_fails(a, ERR("NoSuchDomain"), NULL, M, "GetDomainByName", "s", "migs");
        assert_true(console_sees_eof(console, 10 * HARNESS_USEC_PER_SEC));
        close(console);
        console_b = console_open(b, path, "", 0, &e);
        assert_true(console_b >= 0);
        after = mig_tick_after(console_b, before, buf, sizeof buf);
        assert_true(after > before);
        assert_null(strstr(buf, "VIRTBUS-GUEST-BOOTED"));
        close(console_b);
        harness_domain_call(b, path, "Destroy");
}

static void sshd_stop(void) {
        int st;

        if (sshd_pid <= 0)
                return;
        (void) kill(sshd_pid, SIGTERM);
        (void) waitpid(sshd_pid, &st, 0);
        sshd_pid = 0;
}

static int teardown(void **state) {
        sshd_stop();
        mig_host_stop(&hostb, getenv("VIRTBUS_TEST_VERBOSE"));
        return harness_teardown_qemus(state);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_migrate_ssh, teardown),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0 || access("/usr/sbin/ip", X_OK) < 0 ||
            access(SSHD, X_OK) < 0 || access(SSH_KEYGEN, X_OK) < 0 || access("/usr/bin/ssh", X_OK) < 0 ||
            access("/usr/bin/systemd-stdio-bridge", X_OK) < 0) {
                fprintf(stderr, "test-qemu-migrate-ssh: qemu-system-x86_64, ip, sshd, ssh or systemd-stdio-bridge "
                                "missing (scripts/bootstrap)\n");
                return 77;
        }
        if (mig_setup_tests() < 0)
                return 1;
        atexit(sshd_stop);
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
