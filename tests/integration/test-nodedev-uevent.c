/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node devices that appear and go by other hands than virtbusd's, seen through the kernel's device
 * events (uevents), with real parts: virtbusd (test driver) reads the REAL /sys (--sysfs-root /sys); the
 * test creates a veth pair in the ROOT network namespace (the kernel sends the events of links in
 * another namespace only to that namespace's sockets), with names and MACs unique to the run, waits for
 * the ObjectManager's InterfacesAdded of both net_... node devices, checks ListNodeDevices('net') and the
 * XML, renames one end (a "move": InterfacesRemoved of the old name, InterfacesAdded of the new one),
 * deletes the pair and waits for InterfacesRemoved. The pair is deleted in the teardown, at exit and
 * on a fatal signal, whether the test passed or not.
 *
 * A second group checks that with a fake sysfs root (the test driver's simulated host) virtbusd opens no
 * uevent socket, and the first one that with /sys it has one: read from /proc/<pid>/fd and
 * /proc/net/netlink. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define ND "org.virtbus1.NodeDevice"
#define OM_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define ERR(name) "org.virtbus1.Error." name
#define IP "/usr/sbin/ip"
#define NETLINK_KOBJECT_UEVENT_PROTO 15

/* vbue<pid>a / vbue<pid>b (a is renamed vbue<pid>c), at most 12 characters (IFNAMSIZ is 16 with the NUL). */
static char link_a[16], link_b[16], link_c[16], mac_a[18], mac_b[18];
static bool links_made;
static struct sigaction old_actions[NSIG];

/* Deletes the pair (deleting one end deletes both: b, never renamed); async-signal-safe: fork, exec, wait. */
static void delete_links(void) {
        pid_t pid;

        if (!links_made)
                return;
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, STDOUT_FILENO);
                        dup2(null, STDERR_FILENO);
                }
                execl(IP, IP, "link", "del", "dev", link_b, (char *) NULL);
                _exit(127);
        }
        if (pid > 0)
                (void) waitpid(pid, NULL, 0);
}

static void on_fatal_signal(int sig) {
        delete_links();
        links_made = false;
        /* Then the harness's own clean-up, which dies of the signal. */
        sigaction(sig, &old_actions[sig], NULL);
        raise(sig);
}

/* Installed after the harness's handlers (harness_start installs them), so that both run. */
static void install_link_cleanup(void) {
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGABRT, SIGQUIT };
        static bool done;
        struct sigaction sa = { .sa_handler = on_fatal_signal };

        if (done)
                return;
        done = true;
        atexit(delete_links);
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &sa, &old_actions[sigs[i]]);
}

static int teardown_links(void **state) {
        delete_links();
        links_made = false;
        return 0;
}

static int ip(const char * const *argv) {
        HarnessResult res = {};
        int r = harness_run(NULL, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res);

        if (r >= 0 && res.status != 0)
                print_message("ip %s %s: %s", argv[1], argv[2], strempty(res.err));
        r = r < 0 ? r : res.status;
        harness_result_done(&res);
        return r;
}

static char *nodedev_name(const char *ifname, const char *mac) {
        char *s;

        assert_true(asprintf(&s, "net_%s_%s", ifname, mac) >= 0);
        for (char *c = s; *c; c++)
                if (*c == ':')
                        *c = '_';
        return s;
}

static char *nodedev_path(const char *name) {
        char *p = NULL;

        assert_true(sd_bus_path_encode("/org/virtbus1/nodedev", name, &p) >= 0);
        return p;
}

/* Whether the InterfacesAdded m names path and carries org.virtbus1.NodeDevice. */
static bool added_with_interface(sd_bus_message *m, const char *path) {
        const char *p, *iface;
        bool found = false;

        if (sd_bus_message_read(m, "o", &p) <= 0 || !streq(p, path))
                return false;
        assert_true(sd_bus_message_enter_container(m, 'a', "{sa{sv}}") > 0);
        while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                assert_true(sd_bus_message_read(m, "s", &iface) > 0);
                found = found || streq(iface, ND);
                assert_true(sd_bus_message_skip(m, "a{sv}") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        return found;
}

/* Waits until each path of added (NULL-terminated) had its InterfacesAdded and each of removed its
 * InterfacesRemoved; other devices' signals (another run's links, a USB stick) pass by. */
static void wait_for(HarnessWatch *w, const char * const *added, const char * const *removed) {
        bool seen[8] = {};
        size_t n_added = 0, n = 0, left;

        while (added[n_added])
                n_added++;
        while (removed[n])
                n++;
        n += n_added;
        assert_true(n <= ELEMENTSOF(seen));
        for (left = n; left > 0;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
                bool is_added;
                const char *p;

                if (!m)
                        for (size_t i = 0; i < n; i++)
                                if (!seen[i])
                                        fail_msg("no %s for %s", i < n_added ? "InterfacesAdded" : "InterfacesRemoved",
                                                 i < n_added ? added[i] : removed[i - n_added]);
                is_added = sd_bus_message_is_signal(m, OM_INTERFACE, "InterfacesAdded");
                if (!is_added && !sd_bus_message_is_signal(m, OM_INTERFACE, "InterfacesRemoved"))
                        continue;
                for (size_t i = 0; i < n; i++) {
                        if (seen[i] || is_added != (i < n_added))
                                continue;
                        assert_true(sd_bus_message_rewind(m, true) >= 0);
                        if (is_added ? added_with_interface(m, added[i])
                                     : sd_bus_message_read(m, "o", &p) > 0 && streq(p, removed[i - n_added])) {
                                seen[i] = true;
                                left--;
                        }
                }
        }
}

static bool listed(sd_bus *bus, const char *cap, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "ListNodeDevices", "st", cap,
                                                                                 UINT64_C(0));
        const char *p;
        bool found = false;

        assert_true(sd_bus_message_enter_container(reply, 'a', "o") > 0);
        while (sd_bus_message_read(reply, "o", &p) > 0)
                found = found || streq(p, path);
        return found;
}

/* How many NETLINK_KOBJECT_UEVENT sockets process pid holds (its fds' inodes in /proc/net/netlink). */
static unsigned uevent_sockets_of(pid_t pid) {
        _cleanup_free_ char *table = harness_read_file("/proc/net/netlink"), *dirname = NULL;
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(table);
        assert_true(asprintf(&dirname, "/proc/%d/fd", (int) pid) >= 0);
        d = opendir(dirname);
        assert_non_null(d);
        while ((de = readdir(d))) {
                char link[PATH_MAX], target[64];
                unsigned long inode;
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(link, sizeof link, "%s/%s", dirname, de->d_name);
                k = readlink(link, target, sizeof target - 1);
                if (k < 0)
                        continue;
                target[k] = 0;
                if (sscanf(target, "socket:[%lu]", &inode) != 1)
                        continue;
                /* sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode */
                for (char *line = strchr(table, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
                        unsigned long ino;
                        int proto;

                        if (sscanf(line + 1, "%*s %d %*s %*s %*s %*s %*s %*s %*s %lu", &proto, &ino) == 2 &&
                            ino == inode && proto == NETLINK_KOBJECT_UEVENT_PROTO)
                                n++;
                }
        }
        closedir(d);
        return n;
}

static void test_veth_appears_and_goes(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_(harness_watch_freep) HarnessWatch *w = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE,
                                                                             NULL);
        _cleanup_free_ char *name_a = nodedev_name(link_a, mac_a), *name_b = nodedev_name(link_b, mac_b),
                            *name_c = nodedev_name(link_c, mac_a);
        _cleanup_free_ char *path_a = nodedev_path(name_a), *path_b = nodedev_path(name_b), *path_c = nodedev_path(name_c),
                            *xml = NULL, *log = NULL, *appeared = NULL, *went = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *x;

        /* (virtbusd owns its name before it loads; a call answered means it has loaded.) */
        harness_call_fails(bus, ERR("NoSuchDevice"), name_a, M, "GetNodeDeviceByName", "s", name_a);
        /* virtbusd listens to the kernel, with one socket. */
        assert_int_equal(uevent_sockets_of(harness_daemon_pid(h)), 1);

        install_link_cleanup();
        links_made = true;
        assert_int_equal(ip((const char *[]) { IP, "link", "add", link_a, "address", mac_a, "type", "veth", "peer",
                                               "name", link_b, "address", mac_b, NULL }),
                         0);
        wait_for(w, (const char *[]) { path_a, path_b, NULL }, (const char *[]) { NULL });

        assert_true(listed(plain, "net", path_a));
        assert_true(listed(plain, "net", path_b));
        assert_string_equal(harness_get_string(plain, path_a, ND, "Parent"), "computer");
        reply = harness_call_ok(plain, path_a, ND, "GetXMLDesc", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "s", &x), 1);
        xml = strdup(x);
        if (!strstr(xml, "<parent>computer</parent>") || !strstr(xml, "<capability type='net'>") ||
            !strstr(xml, link_a) || !strstr(xml, mac_a))
                fail_msg("unexpected XML of %s:\n%s", name_a, xml);
        assert_true(asprintf(&appeared, "Node device '%s' appeared.", name_a) >= 0);
        assert_true(asprintf(&went, "Node device '%s' went away.", name_a) >= 0);

        /* A rename ("move"): the name, hence the object, changes. */
        assert_int_equal(ip((const char *[]) { IP, "link", "set", "dev", link_a, "name", link_c, NULL }), 0);
        wait_for(w, (const char *[]) { path_c, NULL }, (const char *[]) { path_a, NULL });
        assert_false(listed(plain, "net", path_a));
        assert_true(listed(plain, "net", path_c));

        assert_int_equal(ip((const char *[]) { IP, "link", "del", "dev", link_b, NULL }), 0);
        links_made = false;
        wait_for(w, (const char *[]) { NULL }, (const char *[]) { path_b, path_c, NULL });
        assert_false(listed(plain, "net", path_c));
        harness_call_fails(bus, ERR("NoSuchDevice"), name_b, M, "GetNodeDeviceByName", "s", name_b);

        log = harness_read_file(harness_daemon_log_path(h));
        assert_non_null(log);
        assert_non_null(strstr(log, appeared));
        assert_non_null(strstr(log, went));
}

static void test_fake_root_no_socket(void **state) {
        Harness *h = *state;

        /* The test driver's simulated host is a fake tree: nothing to listen to. (A call answered: loaded.) */
        assert_non_null(harness_get_string(harness_bus_root(h), M, "Driver"));
        assert_int_equal(uevent_sockets_of(harness_daemon_pid(h)), 0);
}

int main(void) {
        static const struct CMUnitTest real[] = {
                cmocka_unit_test_teardown(test_veth_appears_and_goes, teardown_links),
        };
        static const struct CMUnitTest fake[] = {
                cmocka_unit_test(test_fake_root_no_socket),
        };
        unsigned pid = (unsigned) getpid();
        int r;

        HARNESS_SKIP_UNLESS_ROOT();
        snprintf(link_a, sizeof link_a, "vbue%ua", pid);
        snprintf(link_b, sizeof link_b, "vbue%ub", pid);
        snprintf(link_c, sizeof link_c, "vbue%uc", pid);
        snprintf(mac_a, sizeof mac_a, "02:76:62:%02x:%02x:0a", (pid >> 8) & 0xff, pid & 0xff);
        snprintf(mac_b, sizeof mac_b, "02:76:62:%02x:%02x:0b", (pid >> 8) & 0xff, pid & 0xff);
        r = harness_run_group(real, &(HarnessOptions) {
                .daemon_args = (const char * const[]) { "--sysfs-root", "/sys", "--log-level", "debug", NULL },
        });
        delete_links();
        return harness_run_group(fake, &(HarnessOptions) {}) || r;
}
