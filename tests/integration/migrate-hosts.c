/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The second host of the migration tests (see migrate-hosts.h). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate-hosts.h"

static char *xstrfmt(const char *format, ...) _printf_(1, 2);
static char *xstrfmt(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        assert_true(vasprintf(&s, format, ap) >= 0);
        va_end(ap);
        return s;
}

/* Forks argv with stdout/stderr into log, fd3 as descriptor 3 (-1: none), env DBUS_SYSTEM_BUS_ADDRESS =
 * address (NULL: unchanged), and binds ("source", "target" pairs, NULL-terminated, or NULL) bind-mounted in
 * a mount namespace of its own. */
static pid_t spawn(const char * const *argv, const char *log, int fd3, const char *address,
                   const char * const *binds) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(127);
                if (fd3 >= 0 && dup2(fd3, 3) < 0)
                        _exit(127);
                if (address)
                        setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
                if (binds && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0))
                        _exit(125);
                for (const char * const *b = binds; b && b[0] && b[1]; b += 2)
                        if (mount(b[0], b[1], NULL, MS_BIND, NULL) < 0)
                                _exit(125);
                (void) setpgid(0, 0);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        return pid;
}

static bool has_owner(sd_bus *bus, const char *name) {
        sd_bus_message *reply = NULL;
        int b = 0;

        if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", name) < 0)
                return false;
        (void) sd_bus_message_read(reply, "b", &b);
        sd_bus_message_unref(reply);
        return b;
}

static void wait_name(MigHost *host, const char *name, pid_t pid) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        int st;

        while (!has_owner(host->bus, name)) {
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        _cleanup_free_ char *log = harness_read_file(host->daemon_log);
                        fail_msg("second host: the owner of %s exited (%d); virtbusd said: %s", name, st, strempty(log));
                }
                if (harness_now_usec() > deadline)
                        fail_msg("second host: %s did not appear", name);
                usleep(5000);
        }
}

void mig_host_start(Harness *h, const char *name, const char *driver, const char *netns, MigHost *ret) {
        _cleanup_free_ char *conf_in = NULL, *conf_path = NULL, *harness_listen = NULL, *listen = NULL, *conf = NULL,
                            *config_arg = NULL, *address_arg = NULL, *driver_arg = NULL, *cfg = NULL, *state = NULL,
                            *run = NULL, *log = NULL;
        char buf[512] = "";
        size_t len = 0;
        int p[2];
        char *at;

        *ret = (MigHost) {};
        ret->dir = xstrfmt("%s/%s", harness_dir(h), name);
        assert_int_equal(mkdir(ret->dir, 0755), 0);
        /* The harness's bus config, another socket. */
        {
                _cleanup_free_ char *p_in = xstrfmt("%s/bus.conf", harness_dir(h));
                conf_in = harness_read_file(p_in);
        }
        assert_non_null(conf_in);
        harness_listen = xstrfmt("unix:path=%s/bus<", harness_dir(h));
        listen = xstrfmt("unix:path=%s/bus<", ret->dir);
        at = strstr(conf_in, harness_listen);
        assert_non_null(at);
        conf = xstrfmt("%.*s%s%s", (int) (at - conf_in), conf_in, listen, at + strlen(harness_listen));
        conf_path = xstrfmt("%s/bus.conf", ret->dir);
        {
                FILE *f = fopen(conf_path, "we");
                assert_non_null(f);
                fputs(conf, f);
                assert_int_equal(fclose(f), 0);
        }

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        config_arg = xstrfmt("--config-file=%s", conf_path);
        log = xstrfmt("%s/dbus.log", ret->dir);
        ret->dbus_pid = spawn((const char *[]) { "/usr/bin/dbus-daemon", config_arg, "--nofork", "--nopidfile",
                                                 "--print-address=3", NULL }, log, p[1], NULL, NULL);
        close(p[1]);
        while (len < sizeof buf - 1 && !memchr(buf, '\n', len)) {
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                ssize_t n;

                assert_true(poll(&pfd, 1, (int) (HARNESS_TIMEOUT_USEC / 1000)) > 0);
                n = read(p[0], buf + len, sizeof buf - 1 - len);
                assert_true(n > 0);
                len += (size_t) n;
        }
        close(p[0]);
        *strchr(buf, '\n') = 0;
        ret->address = strdup(buf);
        assert_true(sd_bus_new(&ret->bus) >= 0);
        assert_true(sd_bus_set_address(ret->bus, ret->address) >= 0);
        assert_true(sd_bus_set_bus_client(ret->bus, true) >= 0);
        assert_true(sd_bus_start(ret->bus) >= 0);

        free(log);
        log = xstrfmt("%s/polkitd.log", ret->dir);
        /* The harness's polkit files (policy, example rules and the test's own rules) here too. */
        {
                const char *actions = NULL, *rules = NULL;
                bool private = harness_polkit_private_dirs(h, &actions, &rules);
                const char *binds[] = { actions, "/usr/share/polkit-1/actions", rules, "/etc/polkit-1/rules.d", NULL };

                ret->polkit_pid = spawn((const char *[]) { "/usr/lib/polkit-1/polkitd", NULL }, log, -1, ret->address,
                                        private ? binds : NULL);
        }
        wait_name(ret, "org.freedesktop.PolicyKit1", ret->polkit_pid);

        cfg = xstrfmt("%s/config", ret->dir);
        state = xstrfmt("%s/state", ret->dir);
        run = xstrfmt("%s/run", ret->dir);
        assert_int_equal(mkdir(cfg, 0755), 0);
        assert_int_equal(mkdir(state, 0755), 0);
        assert_int_equal(mkdir(run, 0755), 0);
        address_arg = xstrfmt("--bus-address=%s", ret->address);
        driver_arg = xstrfmt("--driver=%s", driver);
        ret->daemon_log = xstrfmt("%s/virtbusd.log", ret->dir);
        {
                const char *argv[] = { "/usr/sbin/ip", "netns", "exec", netns ?: "", harness_daemon_path(), address_arg,
                                       driver_arg, "--config-dir", cfg, "--state-dir", state, "--runtime-dir", run,
                                       "--log-level=debug", NULL };
                ret->daemon_pid = spawn(netns ? argv : argv + 4, ret->daemon_log, -1, NULL, NULL);
        }
        wait_name(ret, "org.virtbus1", ret->daemon_pid);
}

pid_t mig_host_qemu_pid(MigHost *host, const char *uuid) {
        _cleanup_free_ char *path = xstrfmt("%s/run/qemu/%s.state", host->dir, uuid), *s = harness_read_file(path);
        int pid = 0;

        if (!s || sscanf(s, "pid=%d", &pid) != 1)
                return 0;
        return pid;
}

/* Returns the wait status (0 when there was nothing to stop). */
static int stop_pid(pid_t *pid, int sig) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        int st = 0;

        if (*pid <= 0)
                return 0;
        (void) kill(*pid, sig);
        while (waitpid(*pid, &st, WNOHANG) != *pid) {
                if (harness_now_usec() > deadline) {
                        (void) kill(*pid, SIGKILL);
                        (void) waitpid(*pid, &st, 0);
                        break;
                }
                usleep(5000);
        }
        *pid = 0;
        return st;
}

void mig_host_stop(MigHost *host, bool print_log) {
        _cleanup_free_ char *qdir = NULL;
        bool clean;
        DIR *d;

        if (!host->dir)
                return;
        host->bus = sd_bus_flush_close_unref(host->bus);
        /* virtbusd ends cleanly on SIGTERM (a sanitizer's report makes the status non-zero). */
        {
                int st = stop_pid(&host->daemon_pid, SIGTERM);
                clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        if (print_log || !clean) {
                _cleanup_free_ char *log = host->daemon_log ? harness_read_file(host->daemon_log) : NULL;
                fprintf(stderr, "---- second host's virtbusd (%s) ----\n%s---- end ----\n", strempty(host->daemon_log),
                        strempty(log));
        }
        /* QEMUs it left running (virtbusd leaves them on purpose when it stops). */
        qdir = xstrfmt("%s/run/qemu", host->dir);
        d = opendir(qdir);
        for (struct dirent *de; d && (de = readdir(d));) {
                if (strlen(de->d_name) == 42 && strstr(de->d_name, ".state")) {
                        char uuid[37];
                        pid_t pid;
                        snprintf(uuid, sizeof uuid, "%.36s", de->d_name);
                        pid = mig_host_qemu_pid(host, uuid);
                        if (pid > 1 && kill(pid, SIGKILL) == 0)
                                fprintf(stderr, "second host: killed leftover QEMU %d\n", (int) pid);
                }
        }
        if (d)
                closedir(d);
        (void) stop_pid(&host->polkit_pid, SIGTERM);
        (void) stop_pid(&host->dbus_pid, SIGTERM);
        free(host->dir);
        free(host->address);
        free(host->daemon_log);
        *host = (MigHost) {};
        if (!clean)
                fail_msg("the second host's virtbusd did not end cleanly (its log is above)");
}
