/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Virtual networks as D-Bus objects, in two groups:
 *
 * "simulated": virtbusd with the test driver as it ships (simulated network backend): the default NAT
 *   network, the Manager's network methods, org.virtbus1.Network, signals, polkit, persistence.
 * "host": virtbusd with --network-backend=host, run inside a network namespace this test creates (the
 *   test process enters it before the harness starts, so that dbus-daemon, polkitd and virtbusd run in
 *   it; the bus is a path socket and works across namespaces). Real bridges (rtnetlink), nftables
 *   tables and dnsmasq; a second namespace is the "guest" and gets a DHCP lease with busybox udhcpc
 *   through a veth on the bridge; macvtaps on veth forward devices (this kernel has no dummy or vlan
 *   links and no SR-IOV, so forward devices are veths). */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define NET_INTERFACE "org.virtbus1.Network"
#define DOMAIN_INTERFACE "org.virtbus1.Domain"
#define OM_INTERFACE "org.freedesktop.DBus.ObjectManager"
#define ERR(name) "org.virtbus1.Error." name
#define IP "/usr/sbin/ip"
#define NFT "/usr/sbin/nft"
#define BUSYBOX "/bin/busybox"

static char ns_daemon[64], ns_guest[64];

static char *get_path(sd_bus *bus, const char *method, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, method, "s", arg);
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

static char *define_net(sd_bus *bus, const char *method, const char *xml) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, method, "st", xml, UINT64_C(0));
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

static void call_net(sd_bus *bus, const char *path, const char *method) {
        sd_bus_message_unref(harness_call_ok(bus, path, NET_INTERFACE, method, "t", UINT64_C(0)));
}

static int get_bool(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, NET_INTERFACE, property, &e, 'b', &b), 0);
        return b;
}

static char *get_xml(sd_bus *bus, const char *path, const char *interface, uint64_t flags) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, path, interface, "GetXMLDesc", "t", flags);
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static size_t count_list(sd_bus *bus, uint64_t flags, const char *must_contain) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "ListNetworks", "t", flags);
        const char *p;
        size_t n = 0;
        bool found = !must_contain;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "o"), 1);
        while (sd_bus_message_read(reply, "o", &p) > 0) {
                n++;
                found = found || streq(p, must_contain);
        }
        assert_true(found);
        return n;
}

/* The leases for mac ('' all): returns how many, and checks that one has ip_prefix as address start. */
static size_t count_leases(sd_bus *bus, const char *path, const char *mac, const char *want_mac, const char *ip_prefix) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, path, NET_INTERFACE, "GetDHCPLeases", "s", mac);
        const char *iface, *lmac, *ip, *host, *cid;
        uint64_t expiry;
        uint32_t prefix;
        size_t n = 0;
        bool found = !want_mac;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(stssuss)"), 1);
        while (sd_bus_message_read(reply, "(stssuss)", &iface, &expiry, &lmac, &ip, &prefix, &host, &cid) > 0) {
                n++;
                if (want_mac && strcasecmp(lmac, want_mac) == 0) {
                        found = true;
                        assert_int_equal(strncmp(ip, ip_prefix, strlen(ip_prefix)), 0);
                        assert_int_equal(prefix, 24);
                        /* The range's <lease> of 2 hours reached dnsmasq. */
                        assert_true(expiry > (uint64_t) time(NULL) + 3600);
                        assert_string_equal(iface, "vbt0");
                }
        }
        assert_true(found);
        return n;
}

#define SIMPLE_NET(name, uuid, extra)                                                                    \
        "<network><name>" name "</name><uuid>" uuid "</uuid>" extra "</network>"

/* Simulated backend ----------------------------------------------------------------------------- */

static void test_default_network(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *path = get_path(bus, "GetNetworkByName", "default"), *xml = NULL;

        assert_string_equal(path, "/org/virtbus1/network/dd8fe8846c02601e7551cca97df1c5df");
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "Name"), "default");
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "UUID"), "dd8fe884-6c02-601e-7551-cca97df1c5df");
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "Bridge"), "virbr0");
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "ForwardMode"), "nat");
        assert_int_equal(get_bool(bus, path, "Active"), 1);
        assert_int_equal(get_bool(bus, path, "Persistent"), 1);
        assert_int_equal(get_bool(bus, path, "Autostart"), 1);
        xml = get_xml(bus, path, NET_INTERFACE, 0);
        assert_non_null(strstr(xml, "<ip address='192.168.122.1' netmask='255.255.255.0'>"));
        assert_true(count_list(bus, 1, path) >= 1);
        assert_int_equal(count_leases(bus, path, "", NULL, NULL), 0); /* simulated: no leases */
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "'zz'", path, NET_INTERFACE, "GetDHCPLeases", "s", "zz");
        harness_call_fails(bus, ERR("NoSuchNetwork"), "'nope'", M, "GetNetworkByName", "s", "nope");
        harness_assert_introspection(bus, path, "interfaces/org.virtbus1.Network.xml");
        harness_assert_introspection(bus, HARNESS_MANAGER_PATH, "interfaces/org.virtbus1.Manager.xml");
}

static void test_lifecycle(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(harness_watch_freep) HarnessWatch *added = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesAdded");
        _cleanup_(harness_watch_freep) HarnessWatch *removed = harness_watch_signal(bus, HARNESS_MANAGER_PATH, OM_INTERFACE, "InterfacesRemoved");
        _cleanup_free_ char *path = NULL, *xml = NULL, *other = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        HarnessWatch *changed;
        const char *p;

        path = define_net(bus, "DefineNetwork",
                          SIMPLE_NET("lab", "0a1b2c3d-0000-4000-8000-0000000000aa",
                                     "<forward mode='route'/><ip address='10.9.0.1' prefix='24'/>"));
        assert_string_equal(path, "/org/virtbus1/network/0a1b2c3d0000400080000000000000aa");
        sig = harness_watch_next(added, HARNESS_TIMEOUT_USEC);
        assert_non_null(sig);
        assert_int_equal(sd_bus_message_read(sig, "o", &p), 1);
        assert_string_equal(p, path);
        /* No bridge given: one is chosen, not virbr0 (the default network's). */
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "Bridge"), "virbr1");
        assert_int_equal(get_bool(bus, path, "Active"), 0);
        assert_true(count_list(bus, 2, path) >= 1);

        changed = harness_watch_signal(bus, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
        call_net(bus, path, "Start");
        sd_bus_message_unref(harness_watch_next(changed, HARNESS_TIMEOUT_USEC));
        assert_int_equal(get_bool(bus, path, "Active"), 1);
        harness_call_fails(bus, ERR("InvalidState"), "already active", path, NET_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", path, NET_INTERFACE, "Start", "t", UINT64_C(2));
        call_net(bus, path, "Stop");
        assert_int_equal(get_bool(bus, path, "Active"), 0);
        harness_call_fails(bus, ERR("InvalidState"), "not active", path, NET_INTERFACE, "Stop", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidState"), "not active", path, NET_INTERFACE, "GetDHCPLeases", "s", "");
        harness_watch_free(changed);

        /* Errors on define. */
        harness_call_fails(bus, ERR("AlreadyExists"), "'lab'", M, "DefineNetwork", "st",
                           SIMPLE_NET("lab", "0a1b2c3d-0000-4000-8000-0000000000bb", ""), UINT64_C(0));
        harness_call_fails(bus, ERR("AlreadyExists"), "'virbr0'", M, "DefineNetwork", "st",
                           SIMPLE_NET("clash", "0a1b2c3d-0000-4000-8000-0000000000cc", "<bridge name='virbr0'/>"), UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidXML"), "the first <interface> is 'eth2'", M, "DefineNetwork", "st",
                           SIMPLE_NET("bad", "0a1b2c3d-0000-4000-8000-0000000000dd",
                                      "<forward mode='private' dev='eth1'><interface dev='eth2'/></forward>"),
                           UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidXML"), NULL, M, "DefineNetwork", "st", "<network><name>x</name><bogus/></network>",
                           UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "empty", M, "DefineNetwork", "st", "", UINT64_C(0));
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "flags", M, "ListNetworks", "t", UINT64_C(4));

        /* Redefine: same name and UUID, new saved definition. */
        sd_bus_message_unref(harness_call_ok(bus, M, "DefineNetwork", "st",
                                             SIMPLE_NET("lab", "0a1b2c3d-0000-4000-8000-0000000000aa",
                                                        "<forward mode='nat'/><bridge name='labbr'/><ip address='10.9.0.1' prefix='24'/>"),
                                             UINT64_C(0)));
        assert_string_equal(harness_get_string(bus, path, NET_INTERFACE, "ForwardMode"), "nat");
        xml = get_xml(bus, path, NET_INTERFACE, 1);
        assert_non_null(strstr(xml, "<bridge name='labbr'/>"));

        /* Transient: goes away on Stop. */
        other = define_net(bus, "CreateNetwork", SIMPLE_NET("tmp", "0a1b2c3d-0000-4000-8000-0000000000ee", "<bridge name='tmpbr'/>"));
        assert_int_equal(get_bool(bus, other, "Active"), 1);
        assert_int_equal(get_bool(bus, other, "Persistent"), 0);
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                harness_set_property(bus, other, NET_INTERFACE, "Autostart", &e, "b", 1);
                harness_assert_error(&e, ERR("InvalidState"), "transient");
        }
        call_net(bus, other, "Stop");
        harness_call_fails(bus, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "tmp");
        harness_call_fails(bus, SD_BUS_ERROR_UNKNOWN_OBJECT, NULL, other, NET_INTERFACE, "Start", "t", UINT64_C(0));

        /* Undefine an inactive network: gone. */
        call_net(bus, path, "Undefine");
        harness_call_fails(bus, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "lab");
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(removed, HARNESS_TIMEOUT_USEC);

                assert_non_null(s);
                assert_int_equal(sd_bus_message_read(s, "o", &p), 1);
                if (streq(p, path))
                        break;
        }
}

static void test_authorization_persistence(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *path = NULL, *file = NULL, *link = NULL;
        struct stat st;

        path = define_net(root, "DefineNetwork", SIMPLE_NET("kept", "0a1b2c3d-0000-4000-8000-0000000000f1", "<bridge name='keptbr'/>"));
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, "org.virtbus1.network.manage", M,
                           "DefineNetwork", "st", SIMPLE_NET("sneaky", "0a1b2c3d-0000-4000-8000-0000000000f2", ""), UINT64_C(0));
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, path, NET_INTERFACE, "Start", "t",
                           UINT64_C(0));
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                harness_set_property(plain, path, NET_INTERFACE, "Autostart", &e, "b", 1);
                harness_assert_error(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
                assert_int_equal(get_bool(root, path, "Autostart"), 0);
        }
        assert_int_equal(get_bool(root, path, "Active"), 0);

        /* Saved atomically under the config dir, autostart as a link. */
        assert_int_equal(harness_set_property(root, path, NET_INTERFACE, "Autostart", NULL, "b", 1), 1);
        assert_true(asprintf(&file, "%s/networks/0a1b2c3d-0000-4000-8000-0000000000f1.xml", harness_config_dir(h)) > 0);
        assert_true(asprintf(&link, "%s/networks/autostart/0a1b2c3d-0000-4000-8000-0000000000f1", harness_config_dir(h)) > 0);
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISLNK(st.st_mode));

        /* A restart: the network comes back, autostarted. */
        assert_int_equal(harness_daemon_restart(h), 0);
        root = harness_bus_root(h);
        assert_int_equal(get_bool(root, path, "Autostart"), 1);
        assert_int_equal(get_bool(root, path, "Active"), 1);
        assert_string_equal(harness_get_string(root, path, NET_INTERFACE, "Bridge"), "keptbr");
        call_net(root, path, "Stop");
        assert_int_equal(harness_set_property(root, path, NET_INTERFACE, "Autostart", NULL, "b", 0), 1);
        assert_true(lstat(link, &st) < 0);
        call_net(root, path, "Undefine");
        assert_true(stat(file, &st) < 0);
}

/* Makes dir immutable (on) or not: root itself can then create, rename or remove nothing in it. */
static void set_immutable(const char *dir, bool on) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0;

        assert_true(fd >= 0);
        assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
        flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        assert_int_equal(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
        close(fd);
}

static char *read_text(const char *file) {
        char *text = NULL;
        size_t n = 0;
        FILE *f = fopen(file, "re");

        assert_non_null(f);
        assert_true(getdelim(&text, &n, 0, f) > 0);
        fclose(f);
        return text;
}

static size_t count_temporary(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                n += strlen(de->d_name) > 5 && streq(de->d_name + strlen(de->d_name) - 5, ".tmp~");
        closedir(d);
        return n;
}

/* Saves are answered once durable (the sync runs off the event loop); when the directory cannot be
 * written, each change is refused with the file named, the definition stays as it was (on disk and on
 * the bus), and nothing half-written is left. */
static void test_save_errors(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = NULL, *dir = NULL, *adir = NULL, *file = NULL, *before = NULL, *after = NULL,
                            *want = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        path = define_net(root, "DefineNetwork", SIMPLE_NET("durable", "0a1b2c3d-0000-4000-8000-0000000000d1",
                                                             "<bridge name='durbr0'/>"));
        assert_true(asprintf(&dir, "%s/networks", harness_config_dir(h)) > 0);
        assert_true(asprintf(&file, "%s/0a1b2c3d-0000-4000-8000-0000000000d1.xml", dir) > 0);
        /* Answered: the file is there already, whole. */
        before = read_text(file);
        assert_non_null(strstr(before, "durbr0"));
        assert_true(asprintf(&want, "Failed to save '%s'", file) > 0);

        assert_true(asprintf(&adir, "%s/autostart", dir) > 0);
        assert_true(mkdir(adir, 0755) == 0 || errno == EEXIST);
        set_immutable(dir, true);
        set_immutable(adir, true);
        harness_call_fails(root, ERR("OperationFailed"), want, M, "DefineNetwork", "st",
                           SIMPLE_NET("durable", "0a1b2c3d-0000-4000-8000-0000000000d1", "<bridge name='durbr1'/>"),
                           UINT64_C(0));
        assert_string_equal(harness_get_string(root, path, NET_INTERFACE, "Bridge"), "durbr0");
        harness_set_property(root, path, NET_INTERFACE, "Autostart", &e, "b", 1);
        harness_assert_error(&e, ERR("OperationFailed"), "autostart");
        assert_int_equal(get_bool(root, path, "Autostart"), 0);
        free(want);
        assert_true(asprintf(&want, "Failed to remove '%s'", file) > 0);
        harness_call_fails(root, ERR("OperationFailed"), want, path, NET_INTERFACE, "Undefine", "t", UINT64_C(0));
        assert_int_equal(get_bool(root, path, "Persistent"), 1);
        set_immutable(adir, false);
        set_immutable(dir, false);

        after = read_text(file);
        assert_string_equal(before, after);
        assert_int_equal(count_temporary(dir), 0);
        /* And the service goes on saving once it can. */
        call_net(root, path, "Undefine");
        assert_true(access(file, F_OK) < 0);
}

/* Host backend in network namespaces -------------------------------------------------------------- */

static int run(const char * const *argv, char **ret_out) {
        HarnessResult res = {};
        int r = harness_run(NULL, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res);

        if (r < 0)
                return r;
        r = res.status;
        if (ret_out)
                *ret_out = TAKE_PTR(res.out);
        if (r != 0)
                print_message("%s %s: %s", argv[0], argv[1] ?: "", strempty(res.err));
        harness_result_done(&res);
        return r;
}

static void ip_ok(const char * const *argv) {
        if (run(argv, NULL) != 0)
                fail_msg("%s %s %s failed", argv[0], argv[1], argv[2] ?: "");
}

static bool link_exists(const char *name) {
        return run((const char *[]) { IP, "link", "show", "dev", name, NULL }, NULL) == 0;
}

static bool nft_table_exists(const char *name) {
        return run((const char *[]) { NFT, "list", "table", "inet", name, NULL }, NULL) == 0;
}

static pid_t dnsmasq_pid(Harness *h, const char *network) {
        _cleanup_free_ char *path = NULL, *s = NULL;

        assert_true(asprintf(&path, "%s/networks/%s.ourpid", harness_runtime_dir(h), network) > 0);
        s = harness_read_file(path);
        return s ? (pid_t) atoi(s) : 0;
}

static bool is_dnsmasq(pid_t pid) {
        _cleanup_free_ char *path = NULL, *comm = NULL;

        assert_true(asprintf(&path, "/proc/%d/comm", (int) pid) > 0);
        comm = harness_read_file(path);
        return comm && strncmp(comm, "dnsmasq", 7) == 0;
}

/* A field of /proc/PID/status as a number (base 16 for the Cap* masks), or -1. */
static long long proc_status(pid_t pid, const char *field, int base) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *p;

        assert_true(asprintf(&path, "/proc/%d/status", (int) pid) > 0);
        text = harness_read_file(path);
        p = text ? strstr(text, field) : NULL;
        return p ? strtoll(p + strlen(field), NULL, base) : -1;
}

/* dnsmasq runs as its own user, with at most CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_NET_RAW. It
 * starts as root and drops that itself once its sockets are open: give it up to 5 s. */
static void assert_dnsmasq_unprivileged(pid_t pid) {
        long long uid = 0, caps = -1;
        long long allowed = (1LL << 10) | (1LL << 12) | (1LL << 13);

        for (int i = 0; i < 500 && uid == 0; i++) {
                uid = proc_status(pid, "\nUid:", 10);
                if (uid == 0)
                        usleep(10 * 1000);
        }
        caps = proc_status(pid, "\nCapEff:", 16);

        if (uid <= 0 || caps < 0 || (caps & ~allowed) != 0 || proc_status(pid, "\nCapPrm:", 16) != caps)
                fail_msg("dnsmasq (pid %d) runs as uid %lld with capabilities %llx", (int) pid, uid, caps);
        print_message("dnsmasq pid %d: uid %lld, CapEff %llx\n", (int) pid, uid, caps);
}

#define NAT_NET                                                                                          \
        SIMPLE_NET("natnet", "0a1b2c3d-0000-4000-8000-00000000a001",                                     \
                   "<forward mode='nat'/><bridge name='vbt0' stp='on' delay='4'/><mtu size='1400'/>"        \
                   "<ip address='10.77.0.1' netmask='255.255.255.0'><dhcp>"                              \
                   "<range start='10.77.0.100' end='10.77.0.120'><lease expiry='2' unit='hours'/></range>"   \
                   "</dhcp></ip>"                                                                          \
                   "<ip family='ipv6' address='fd00:77::1' prefix='64'/>"                                  \
                   "<route address='10.99.0.0' prefix='16' gateway='10.77.0.9'/>")

static void test_nat_dhcp(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *path = define_net(bus, "DefineNetwork", NAT_NET), *addr = NULL, *lease_out = NULL;
        const char *guest_mac = "52:54:00:77:00:42";
        pid_t pid;

        call_net(bus, path, "Start");
        /* The bridge with its address, up; our nftables table; a running dnsmasq. */
        assert_int_equal(run((const char *[]) { IP, "-o", "addr", "show", "dev", "vbt0", NULL }, &addr), 0);
        assert_non_null(strstr(addr, "inet 10.77.0.1/24"));
        assert_non_null(strstr(addr, "inet6 fd00:77::1/64"));
        {
                _cleanup_free_ char *routes = NULL;

                assert_int_equal(run((const char *[]) { IP, "route", "show", "10.99.0.0/16", NULL }, &routes), 0);
                assert_non_null(strstr(routes, "via 10.77.0.9 dev vbt0"));
        }
        assert_int_equal(run((const char *[]) { IP, "-o", "link", "show", "dev", "vbt0", NULL }, &lease_out), 0);
        assert_non_null(strstr(lease_out, ",UP"));
        free(TAKE_PTR(lease_out));
        /* stp, delay (in hundredths of a second) and mtu as defined. */
        assert_int_equal(run((const char *[]) { IP, "-d", "-o", "link", "show", "dev", "vbt0", NULL }, &lease_out), 0);
        assert_non_null(strstr(lease_out, "stp_state 1"));
        assert_non_null(strstr(lease_out, "forward_delay 400"));
        assert_non_null(strstr(lease_out, "mtu 1400"));
        free(TAKE_PTR(lease_out));
        assert_true(nft_table_exists("virtbus_vbt0"));
        {
                _cleanup_free_ char *rules = NULL;

                /* Forwarding for both subnets, masquerading for the IPv4 one. */
                assert_int_equal(run((const char *[]) { NFT, "list", "table", "inet", "virtbus_vbt0", NULL }, &rules), 0);
                assert_non_null(strstr(rules, "ip saddr 10.77.0.0/24 accept"));
                assert_non_null(strstr(rules, "ip6 saddr fd00:77::/64 accept"));
                assert_non_null(strstr(rules, "ip daddr != 10.77.0.0/24 masquerade"));
        }
        pid = dnsmasq_pid(h, "natnet");
        assert_true(pid > 0);
        assert_true(is_dnsmasq(pid));
        assert_dnsmasq_unprivileged(pid);

        /* A "guest": a veth whose peer is on the bridge, in a second namespace; busybox udhcpc. */
        ip_ok((const char *[]) { IP, "link", "add", "vbtg-host", "type", "veth", "peer", "name", "vbtg-guest", "netns", ns_guest, NULL });
        ip_ok((const char *[]) { IP, "link", "set", "vbtg-host", "master", "vbt0", "up", NULL });
        ip_ok((const char *[]) { IP, "-n", ns_guest, "link", "set", "vbtg-guest", "address", guest_mac, "up", NULL });
        ip_ok((const char *[]) { IP, "netns", "exec", ns_guest, BUSYBOX, "udhcpc", "-i", "vbtg-guest", "-n", "-q", "-f",
                                 "-t", "10", "-T", "1", "-s", "/bin/true", NULL });
        assert_int_equal(count_leases(bus, path, "", guest_mac, "10.77.0."), 1);
        assert_int_equal(count_leases(bus, path, "52:54:00:77:00:42", guest_mac, "10.77.0."), 1);
        assert_int_equal(count_leases(bus, path, "52:54:00:00:00:01", NULL, NULL), 0);

        /* Stop: bridge, table and dnsmasq are gone. */
        ip_ok((const char *[]) { IP, "link", "del", "vbtg-host", NULL });
        call_net(bus, path, "Stop");
        assert_false(link_exists("vbt0"));
        assert_false(nft_table_exists("virtbus_vbt0"));
        assert_false(is_dnsmasq(pid));
        call_net(bus, path, "Undefine");
}

/* As a member of 'virtbus' (network.manage by the example rules): what a network may ask of the host. */
#define USER_NET(name, uuid, extra)                                                                      \
        SIMPLE_NET(name, uuid, "<bridge name='vbu0'/><ip address='10.78.0.1' prefix='24'>" extra "</ip>")

static void test_unprivileged_limits(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_as(h, HARNESS_USER_VIRTBUS), *root = harness_bus_root(h);
        uid_t uid = harness_user_uid(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *tree = NULL, *file = NULL, *link = NULL, *xml = NULL, *path = NULL, *got = NULL;
        _cleanup_free_ char *got_path = NULL, *content = NULL;
        pid_t pid;

        /* A system directory as TFTP root: refused, naming it; nothing is started. */
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "<tftp root='/etc'>", M, "CreateNetwork", "st",
                           USER_NET("tftpetc", "0a1b2c3d-0000-4000-8000-00000000d001", "<tftp root='/etc'/>"), UINT64_C(0));
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "'/etc'", M, "DefineNetwork", "st",
                           USER_NET("tftpetc", "0a1b2c3d-0000-4000-8000-00000000d001", "<tftp root='/etc'/>"), UINT64_C(0));
        harness_call_fails(bus, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "tftpetc");
        assert_false(link_exists("vbu0"));
        /* <dnsmasq:options> are root's. */
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "<dnsmasq:options>", M, "DefineNetwork", "st",
                           SIMPLE_NET("dnsopt", "0a1b2c3d-0000-4000-8000-00000000d002",
                                      "<dnsmasq:options xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>"
                                      "<dnsmasq:option value='dhcp-script=/tmp/x'/></dnsmasq:options>"), UINT64_C(0));

        /* Existing host links: not a bridge of the user's network, nor a host bridge for guests; root may
         * define it, and a start that finds the link leaves it alone. */
        ip_ok((const char *[]) { IP, "link", "add", "vbtx0", "type", "veth", "peer", "name", "vbtx1", NULL });
        ip_ok((const char *[]) { IP, "addr", "add", "10.66.0.1/24", "dev", "vbtx0", NULL });
        ip_ok((const char *[]) { IP, "link", "set", "vbtx0", "up", NULL });
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "<bridge name='vbtx0'>", M, "DefineNetwork", "st",
                           SIMPLE_NET("takeover", "0a1b2c3d-0000-4000-8000-00000000d003", "<bridge name='vbtx0'/>"), UINT64_C(0));
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "'vbtx0'", M, "DefineNetwork", "st",
                           SIMPLE_NET("hostbr", "0a1b2c3d-0000-4000-8000-00000000d004",
                                      "<forward mode='bridge'/><bridge name='vbtx0'/>"), UINT64_C(0));
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "'vbtx1'", M, "DefineNetwork", "st",
                           SIMPLE_NET("macvtap", "0a1b2c3d-0000-4000-8000-00000000d005",
                                      "<forward mode='vepa' dev='vbtx1'/>"), UINT64_C(0));
        /* Subnets and routes over the host's own (10.66.0.0/24 on vbtx0), and a default route. */
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "overlaps the host's route to 10.66.0.0/24 dev vbtx0", M,
                           "DefineNetwork", "st",
                           SIMPLE_NET("overlap", "0a1b2c3d-0000-4000-8000-00000000d006",
                                      "<ip address='10.66.0.5' prefix='16'/>"), UINT64_C(0));
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "<route address='10.66.0.128'>", M, "DefineNetwork", "st",
                           SIMPLE_NET("hijack", "0a1b2c3d-0000-4000-8000-00000000d007",
                                      "<ip address='10.78.0.1' prefix='24'/><route address='10.66.0.128' prefix='25' gateway='10.78.0.9'/>"),
                           UINT64_C(0));
        harness_call_fails(bus, "org.freedesktop.DBus.Error.AccessDenied", "prefix 0", M, "DefineNetwork", "st",
                           SIMPLE_NET("dflt", "0a1b2c3d-0000-4000-8000-00000000d008",
                                      "<ip address='10.78.0.1' prefix='24'/><route address='0.0.0.0' prefix='0' gateway='10.78.0.9'/>"),
                           UINT64_C(0));
        path = define_net(root, "DefineNetwork", SIMPLE_NET("takeover", "0a1b2c3d-0000-4000-8000-00000000d003",
                                                            "<bridge name='vbtx0'/><ip address='10.66.0.5' prefix='16'/>"
                                                            "<ip address='10.79.0.1' prefix='24'><tftp root='/etc'/></ip>"));
        harness_call_fails(root, ERR("AlreadyExists"), "'vbtx0'", path, NET_INTERFACE, "Start", "t", UINT64_C(0));
        assert_true(link_exists("vbtx0"));
        call_net(root, path, "Undefine");
        free(TAKE_PTR(path));

        /* A tree of the user's own: served over TFTP by an unprivileged dnsmasq; a symlink out of it is not
         * followed. */
        assert_true(asprintf(&tree, "%s/tftp-%d", harness_dir(h), (int) getpid()) > 0);
        assert_int_equal(mkdir(tree, 0755), 0);
        assert_int_equal(chown(tree, uid, (gid_t) -1), 0);
        assert_true(asprintf(&file, "%s/hello.txt", tree) > 0);
        assert_true(asprintf(&link, "%s/passwd", tree) > 0);
        {
                FILE *f = fopen(file, "we");

                assert_non_null(f);
                fputs("hello over tftp\n", f);
                assert_int_equal(fclose(f), 0);
        }
        assert_int_equal(symlink("/etc/passwd", link), 0);
        assert_true(asprintf(&xml, USER_NET("tftpown", "0a1b2c3d-0000-4000-8000-00000000d009", "<tftp root='%s'/>"), tree) > 0);
        path = define_net(bus, "CreateNetwork", xml);
        free(TAKE_PTR(xml));
        xml = get_xml(bus, path, NET_INTERFACE, 0);
        assert_true(asprintf(&got, "<virtbus:access xmlns:virtbus='https://virtbus.org/schemas/network/1.0' uid='%u'/>",
                             (unsigned) uid) > 0);
        if (!strstr(xml, got))
                fail_msg("the caller's uid is not recorded:\n%s", xml);
        pid = dnsmasq_pid(h, "tftpown");
        assert_true(pid > 0 && is_dnsmasq(pid));
        assert_dnsmasq_unprivileged(pid);
        ip_ok((const char *[]) { IP, "link", "add", "vbug-host", "type", "veth", "peer", "name", "vbug-guest", "netns", ns_guest, NULL });
        ip_ok((const char *[]) { IP, "link", "set", "vbug-host", "master", "vbu0", "up", NULL });
        ip_ok((const char *[]) { IP, "-n", ns_guest, "addr", "add", "10.78.0.50/24", "dev", "vbug-guest", NULL });
        ip_ok((const char *[]) { IP, "-n", ns_guest, "link", "set", "vbug-guest", "up", NULL });
        assert_true(asprintf(&got_path, "%s/got-%d", harness_dir(h), (int) getpid()) > 0);
        ip_ok((const char *[]) { IP, "netns", "exec", ns_guest, BUSYBOX, "tftp", "-g", "-r", "hello.txt", "-l", got_path,
                                 "10.78.0.1", NULL });
        content = harness_read_file(got_path);
        assert_string_equal(strempty(content), "hello over tftp\n");
        (void) unlink(got_path);
        assert_int_not_equal(run((const char *[]) { IP, "netns", "exec", ns_guest, BUSYBOX, "tftp", "-g", "-r", "passwd", "-l",
                                                   got_path, "10.78.0.1", NULL }, NULL), 0);
        free(TAKE_PTR(content));
        content = harness_read_file(got_path);
        assert_true(!content || !strstr(content, "root:"));
        (void) unlink(got_path);
        ip_ok((const char *[]) { IP, "link", "del", "vbug-host", NULL });
        call_net(bus, path, "Stop");
        assert_false(is_dnsmasq(pid));
        ip_ok((const char *[]) { IP, "link", "del", "vbtx0", NULL });
        (void) unlink(link);
        (void) unlink(file);
        (void) rmdir(tree);
}

static char *domain_with_nic(const char *name, const char *network, const char *mac) {
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='test'><name>%s</name><memory unit='MiB'>64</memory>"
                             "<os><type arch='x86_64'>hvm</type></os><devices>"
                             "<interface type='network'><mac address='%s'/><source network='%s'/></interface>"
                             "</devices></domain>",
                             name, mac, network) > 0);
        return x;
}

static char *define_domain(sd_bus *bus, const char *xml) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "DefineDomain", "st", xml, UINT64_C(0));
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

/* Networks of forward devices with the test driver: the guests get their devices as <interface
 * type='direct'> (the hypervisor driver makes the macvtap: see test_qemu_macvtap), shared or, with
 * passthrough, one guest per device. */
static void test_direct_ports(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *priv = NULL, *pass = NULL, *d1 = NULL, *d2 = NULL, *d3 = NULL, *live = NULL;
        _cleanup_free_ char *x1 = domain_with_nic("vm1", "privnet", "52:54:00:77:01:01");
        _cleanup_free_ char *x2 = domain_with_nic("vm2", "passnet", "52:54:00:77:01:02");
        _cleanup_free_ char *x3 = domain_with_nic("vm3", "passnet", "52:54:00:77:01:03");

        priv = define_net(bus, "DefineNetwork", SIMPLE_NET("privnet", "0a1b2c3d-0000-4000-8000-00000000b001",
                                                           "<forward mode='private' dev='vbtf1'/>"
                                                           "<virtualport type='802.1Qbh'><parameters profileid='prof'/></virtualport>"));
        pass = define_net(bus, "DefineNetwork", SIMPLE_NET("passnet", "0a1b2c3d-0000-4000-8000-00000000b002",
                                                           "<forward mode='passthrough'><interface dev='vbtf2'/></forward>"));
        call_net(bus, priv, "Start");
        call_net(bus, pass, "Start");
        assert_string_equal(harness_get_string(bus, priv, NET_INTERFACE, "Bridge"), "");

        d1 = define_domain(bus, x1);
        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        live = get_xml(bus, d1, DOMAIN_INTERFACE, 0);
        if (!strstr(live, "<interface type='direct'>") || !strstr(live, "dev='vbtf1'") || !strstr(live, "mode='private'") ||
            !strstr(live, "network='privnet'"))
                fail_msg("no direct interface on vbtf1 in the live definition:\n%s", live);
        assert_non_null(strstr(live, "<parameters profileid='prof'/>")); /* the network's virtualport applies */
        harness_call_fails(bus, ERR("InvalidState"), "in use", priv, NET_INTERFACE, "Stop", "t", UINT64_C(0));

        /* Passthrough: one guest per device. */
        d2 = define_domain(bus, x2);
        d3 = define_domain(bus, x3);
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        harness_call_fails(bus, ERR("DeviceBusy"), "passnet", d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        assert_string_equal(harness_get_string(bus, d3, DOMAIN_INTERFACE, "State"), "shutoff");
        /* A restart of virtbusd finds the networks and their ports again: still busy, still in use. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_int_equal(get_bool(bus, pass, "Active"), 1);
        harness_call_fails(bus, ERR("DeviceBusy"), "passnet", d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidState"), "in use", priv, NET_INTERFACE, "Stop", "t", UINT64_C(0));

        /* Stopping the guest gives the device back: the third one starts now. */
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        free(TAKE_PTR(live));
        live = get_xml(bus, d3, DOMAIN_INTERFACE, 0);
        assert_non_null(strstr(live, "mode='passthrough'"));
        sd_bus_message_unref(harness_call_ok(bus, d3, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        call_net(bus, priv, "Stop");
        call_net(bus, pass, "Stop");
}

static char *qemu_guest_xml(const char *name, const char *network, const char *mac) {
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                             "<interface type='network'><mac address='%s'/><source network='%s'/>"
                             "<model type='e1000'/></interface></devices></domain>",
                             name, mac, network) > 0);
        return x;
}

/* QEMU guests on networks of forward devices (veths: no dummy links here) get macvtaps. */
static void test_qemu_macvtap(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *priv = NULL, *pass = NULL, *d1 = NULL, *d2 = NULL, *d3 = NULL, *links = NULL;
        _cleanup_free_ char *x1 = qemu_guest_xml("qm1", "qpriv", "52:54:00:78:01:01");
        _cleanup_free_ char *x2 = qemu_guest_xml("qm2", "qpass", "52:54:00:78:01:02");
        _cleanup_free_ char *x3 = qemu_guest_xml("qm3", "qpass", "52:54:00:78:01:03");

        ip_ok((const char *[]) { IP, "link", "add", "vbtq1", "type", "veth", "peer", "name", "vbtq1p", NULL });
        ip_ok((const char *[]) { IP, "link", "add", "vbtq2", "type", "veth", "peer", "name", "vbtq2p", NULL });
        ip_ok((const char *[]) { IP, "link", "set", "vbtq1", "up", NULL });
        ip_ok((const char *[]) { IP, "link", "set", "vbtq2", "up", NULL });
        priv = define_net(bus, "DefineNetwork", SIMPLE_NET("qpriv", "0a1b2c3d-0000-4000-8000-00000000d002",
                                                           "<forward mode='private'><interface dev='vbtq1'/></forward>"));
        pass = define_net(bus, "DefineNetwork", SIMPLE_NET("qpass", "0a1b2c3d-0000-4000-8000-00000000d003",
                                                           "<forward mode='passthrough' dev='vbtq2'/>"));
        call_net(bus, priv, "Start");
        call_net(bus, pass, "Start");

        d1 = define_domain(bus, x1);
        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        assert_int_equal(run((const char *[]) { IP, "-d", "-o", "link", "show", "type", "macvtap", NULL }, &links), 0);
        if (!strstr(links, "@vbtq1") || !strstr(links, "macvtap mode private") || !strstr(links, "52:54:00:78:01:01"))
                fail_msg("no private macvtap on vbtq1 with the guest's MAC: %s", links);

        d2 = define_domain(bus, x2);
        d3 = define_domain(bus, x3);
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        free(TAKE_PTR(links));
        assert_int_equal(run((const char *[]) { IP, "-d", "-o", "link", "show", "type", "macvtap", NULL }, &links), 0);
        if (!strstr(links, "@vbtq2") || !strstr(links, "macvtap mode passthru"))
                fail_msg("no passthrough macvtap on vbtq2: %s", links);
        harness_call_fails(bus, ERR("DeviceBusy"), "'qpass'", d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));

        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        free(TAKE_PTR(links));
        assert_int_equal(run((const char *[]) { IP, "-o", "link", "show", "type", "macvtap", NULL }, &links), 0);
        assert_null(strstr(links, "macvtap"));
        call_net(bus, priv, "Stop");
        call_net(bus, pass, "Stop");
}

/* QEMU on a NAT network (qemu driver, whose network backend is the host one) --------------------------- */

static void test_qemu_guest(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *net = NULL, *dom = NULL, *live = NULL, *links = NULL, *tap = NULL;
        const char *p;

        net = define_net(bus, "DefineNetwork",
                         SIMPLE_NET("qnat", "0a1b2c3d-0000-4000-8000-00000000d001",
                                    "<forward mode='nat'/><bridge name='vbtq0'/>"
                                    "<ip address='10.78.0.1' prefix='24'><dhcp><range start='10.78.0.10' end='10.78.0.20'/></dhcp></ip>"));
        call_net(bus, net, "Start");
        assert_true(link_exists("vbtq0"));
        dom = define_domain(bus, "<domain type='qemu'><name>qguest</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                                 "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                                 "<interface type='network'><mac address='52:54:00:78:00:01'/><source network='qnat'/>"
                                 "<model type='e1000'/></interface></devices></domain>");
        sd_bus_message_unref(harness_call_ok(bus, dom, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        /* The live definition says which bridge; QEMU's tap is on it. */
        live = get_xml(bus, dom, DOMAIN_INTERFACE, 0);
        if (!strstr(live, "network='qnat'") || !strstr(live, "bridge='vbtq0'"))
                fail_msg("no bridge in the live definition:\n%s", live);
        p = strstr(live, "<target dev='");
        assert_non_null(p);
        p += strlen("<target dev='");
        tap = strndup(p, strcspn(p, "'"));
        assert_int_equal(run((const char *[]) { IP, "-o", "link", "show", "master", "vbtq0", NULL }, &links), 0);
        if (!strstr(links, tap))
                fail_msg("tap '%s' is not on vbtq0: %s", tap, links);
        harness_call_fails(bus, ERR("InvalidState"), "in use", net, NET_INTERFACE, "Stop", "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, dom, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        assert_false(link_exists(tap));
        call_net(bus, net, "Stop");
        assert_false(link_exists("vbtq0"));
}

/* The first interface of an InterfaceAddresses reply: its name, MAC and first address (family, prefix). */
static void first_address(sd_bus_message *reply, char **ret_name, char **ret_mac, uint8_t *ret_family, char **ret_address,
                          uint32_t *ret_prefix) {
        const char *name, *mac, *address;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ssa(ysu))"), 1);
        assert_int_equal(sd_bus_message_enter_container(reply, 'r', "ssa(ysu)"), 1);
        assert_int_equal(sd_bus_message_read(reply, "ss", &name, &mac), 1);
        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "(ysu)"), 1);
        assert_int_equal(sd_bus_message_read(reply, "(ysu)", ret_family, &address, ret_prefix), 1);
        *ret_name = strdup(name);
        *ret_mac = strdup(mac);
        *ret_address = strdup(address);
}

/* The tiny guest asks the network's dnsmasq for an address and pings the bridge: InterfaceAddresses finds
 * the address in the leases (source 0) and in the host's neighbour table (source 2), and the tap's
 * counters moved. */
static void test_qemu_addresses(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        const char *g = harness_guest_dir(h), *guest_mac = "52:54:00:81:00:07";
        _cleanup_free_ char *net = NULL, *dom = NULL, *xml = NULL, *serial = NULL, *console = NULL, *ip = NULL;
        _cleanup_free_ char *name = NULL, *mac = NULL, *address = NULL, *name2 = NULL, *mac2 = NULL, *address2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *reply2 = NULL, *stats = NULL;
        HarnessStats st = {};
        uint8_t family, family2;
        uint32_t prefix, prefix2;
        const char *p;

        assert_true(asprintf(&serial, "%s/addresses.serial", harness_dir(h)) > 0);
        (void) unlink(serial);
        net = define_net(bus, "DefineNetwork",
                         SIMPLE_NET("qaddr", "0a1b2c3d-0000-4000-8000-00000000d081",
                                    "<forward mode='nat'/><bridge name='vbta0'/>"
                                    "<ip address='10.81.0.1' prefix='24'><dhcp><range start='10.81.0.50' end='10.81.0.60'/></dhcp></ip>"));
        call_net(bus, net, "Start");
        assert_true(asprintf(&xml,
                             "<domain type='qemu'><name>qaddr</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet virtbus.dhcp</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<interface type='network'><mac address='%s'/><source network='qaddr'/><model type='virtio'/></interface>"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial></devices></domain>",
                             g, g, guest_mac, serial) >= 0);
        dom = define_domain(bus, xml);
        sd_bus_message_unref(harness_call_ok(bus, dom, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        harness_wait_for_text(serial, "VIRTBUS-GUEST-ADDRESS: 10.81.0.", 1, 120 * HARNESS_USEC_PER_SEC);
        {
                FILE *f = fopen(serial, "re");
                size_t n = 0;

                assert_non_null(f);
                console = calloc(1, 1 << 20);
                assert_non_null(console);
                n = fread(console, 1, (1 << 20) - 1, f);
                fclose(f);
                assert_true(n > 0);
        }
        p = strstr(console, "VIRTBUS-GUEST-ADDRESS: ") + strlen("VIRTBUS-GUEST-ADDRESS: ");
        ip = strndup(p, strspn(p, "0123456789."));
        print_message("the guest leased %s\n", ip);

        /* Source 0: the lease, with the network's prefix, named after the tap. */
        reply = harness_call_ok(harness_bus_as(h, HARNESS_USER_PLAIN), dom, DOMAIN_INTERFACE, "InterfaceAddresses", "ut",
                                0, UINT64_C(0));
        first_address(reply, &name, &mac, &family, &address, &prefix);
        assert_string_equal(mac, guest_mac);
        assert_int_equal(family, 4);
        assert_string_equal(address, ip);
        assert_int_equal(prefix, 24);
        assert_true(strlen(name) > 0);
        /* Source 2: the host learnt the guest's address when it pinged the bridge. */
        reply2 = harness_call_ok(bus, dom, DOMAIN_INTERFACE, "InterfaceAddresses", "ut", 2, UINT64_C(0));
        first_address(reply2, &name2, &mac2, &family2, &address2, &prefix2);
        assert_string_equal(name2, name);
        assert_string_equal(mac2, guest_mac);
        assert_int_equal(family2, 4);
        assert_string_equal(address2, ip);
        assert_int_equal(prefix2, 0);
        /* The DHCP exchange and the ping went through the tap: the guest's counters moved both ways. */
        stats = harness_call_ok(bus, dom, DOMAIN_INTERFACE, "GetStats", "tt", UINT64_C(16), UINT64_C(0));
        harness_stats_read(stats, &st);
        assert_int_equal(harness_stats_number(&st, "net.count", 'u'), 1);
        assert_string_equal(harness_stats_string(&st, "net.0.name"), name);
        assert_true(harness_stats_number(&st, "net.0.tx.bytes", 't') > 0);
        assert_true(harness_stats_number(&st, "net.0.rx.bytes", 't') > 0);
        assert_true(harness_stats_number(&st, "net.0.tx.pkts", 't') >= 2);
        harness_stats_done(&st);
        sd_bus_message_unref(harness_call_ok(bus, dom, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        call_net(bus, net, "Stop");
        sd_bus_message_unref(harness_call_ok(bus, dom, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        call_net(bus, net, "Undefine");
}

/* A pool of host devices (simulated backend, fake sysfs) ------------------------------------------- */

/* The VF pool group runs on the fake sysfs tree: this machine has no SR-IOV, so the VFs are those of the
 * fake NIC. */
static HarnessFakeSysfs fake;
#define vf_sysfs (fake.root)

static void test_hostdev_pool(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *net = NULL, *d1 = NULL, *d2 = NULL, *d3 = NULL, *live = NULL;
        _cleanup_free_ char *x1 = domain_with_nic("vf1", "vfpool", "52:54:00:77:02:01");
        _cleanup_free_ char *x2 = domain_with_nic("vf2", "vfpool", "52:54:00:77:02:02");
        _cleanup_free_ char *x3 = domain_with_nic("vf3", "vfpool", "52:54:00:77:02:03");

        /* The VFs of the fake NIC's PF (enp3s0f0: 0000:03:10.0 and 0000:03:10.2) form the pool. */
        net = define_net(bus, "DefineNetwork", SIMPLE_NET("vfpool", "0a1b2c3d-0000-4000-8000-00000000c001",
                                                          "<forward mode='hostdev' managed='yes'><pf dev='enp3s0f0'/></forward>"));
        call_net(bus, net, "Start");
        assert_string_equal(harness_get_string(bus, net, NET_INTERFACE, "ForwardMode"), "hostdev");
        d1 = define_domain(bus, x1);
        d2 = define_domain(bus, x2);
        d3 = define_domain(bus, x3);
        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        live = get_xml(bus, d1, DOMAIN_INTERFACE, 0);
        if (!strstr(live, "<interface type='hostdev' managed='yes'>") ||
            !strstr(live, "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x0'/>"))
                fail_msg("the first VF is not in the live definition:\n%s", live);
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        free(TAKE_PTR(live));
        live = get_xml(bus, d2, DOMAIN_INTERFACE, 0);
        assert_non_null(strstr(live, "slot='0x10' function='0x2'"));
        /* Two VFs, two guests: the third finds none. */
        harness_call_fails(bus, ERR("DeviceBusy"), "'vfpool'", d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("InvalidState"), "in use", net, NET_INTERFACE, "Stop", "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, d1, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, d3, DOMAIN_INTERFACE, "Start", "t", UINT64_C(0)));
        free(TAKE_PTR(live));
        live = get_xml(bus, d3, DOMAIN_INTERFACE, 0);
        assert_non_null(strstr(live, "slot='0x10' function='0x0'"));
        sd_bus_message_unref(harness_call_ok(bus, d2, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(bus, d3, DOMAIN_INTERFACE, "Destroy", "t", UINT64_C(0)));
        call_net(bus, net, "Stop");
}

static int run_vf_group(void) {
        static const struct CMUnitTest vf[] = {
                cmocka_unit_test(test_hostdev_pool),
        };
        return harness_run_group_on_fake_sysfs(vf, &fake, "netvf", NULL);
}

/* Stops what is still active (the default network of the test host runs a dnsmasq in this namespace). */
/* Alive and not a zombie (what a killed virtbusd leaves is reparented to a PID 1 that may not reap). */
static bool dnsmasq_alive(pid_t pid) {
        _cleanup_free_ char *path = NULL, *stat = NULL;
        const char *p;

        if (pid <= 0 || !is_dnsmasq(pid))
                return false;
        assert_true(asprintf(&path, "/proc/%d/stat", (int) pid) > 0);
        stat = harness_read_file(path);
        p = stat ? strrchr(stat, ')') : NULL;
        return p && p[1] == ' ' && p[2] != 'Z';
}

/* virtbusd killed in the middle of a start or a stop: at its next start a network found with its bridge
 * is completed (table, dnsmasq), one found without has its leftovers removed. Played by killing
 * virtbusd and removing the parts by hand. */
static void test_crash_reconcile(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *path = define_net(harness_bus_root(h), "DefineNetwork", NAT_NET);
        pid_t pid, again;

        call_net(harness_bus_root(h), path, "Start");
        pid = dnsmasq_pid(h, "natnet");
        assert_true(dnsmasq_alive(pid));

        /* A start cut short after the bridge: no table, no dnsmasq yet. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(run((const char *[]) { NFT, "delete", "table", "inet", "virtbus_vbt0", NULL }, NULL), 0);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        assert_int_equal(get_bool(harness_bus_root(h), path, "Active"), 1);
        assert_true(nft_table_exists("virtbus_vbt0"));
        again = dnsmasq_pid(h, "natnet");
        assert_true(again != pid && dnsmasq_alive(again));

        /* A stop cut short after the bridge went: the table and dnsmasq are removed too. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        ip_ok((const char *[]) { IP, "link", "del", "vbt0", NULL });
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        assert_int_equal(get_bool(harness_bus_root(h), path, "Active"), 0);
        assert_false(nft_table_exists("virtbus_vbt0"));
        assert_false(dnsmasq_alive(again));
        call_net(harness_bus_root(h), path, "Undefine");
}

/* VIRTBUS_NFT for the host group's virtbusd: /usr/sbin/nft, held back while the file hold exists, and
 * failing to load rules (-f) while the file fail exists. */
static char nft_dir[] = "/tmp/virtbus-test-nft-XXXXXX";

static void nft_wrapper(void) {
        _cleanup_free_ char *script = NULL;
        FILE *f;

        if (!mkdtemp(nft_dir))
                return;
        if (asprintf(&script, "%s/nft", nft_dir) < 0 || !(f = fopen(script, "we")))
                return;
        fprintf(f, "#!/bin/sh\nwhile [ -e %s/hold ]; do sleep 0.02; done\n"
                   "if [ -e %s/fail ] && [ \"$1\" = -f ]; then echo 'nft: held to fail' >&2; exit 1; fi\n"
                   "exec " NFT " \"$@\"\n", nft_dir, nft_dir);
        if (fclose(f) == 0 && chmod(script, 0755) == 0)
                (void) setenv("VIRTBUS_NFT", script, 1);
}

static void nft_flag(const char *name, bool on) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/%s", nft_dir, name) > 0);
        if (on)
                assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
        else
                assert_int_equal(unlink(path), 0);
}

static int on_held_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int *answered = userdata;

        *answered = sd_bus_message_is_method_error(m, NULL) ? -1 : 1;
        return 0;
}

/* method (Start or Stop) on path while nft is held back: another caller's reads are answered and the
 * network answers DeviceBusy, all before method's own answer, which comes once nft may run. */
static void held_call(Harness *h, const char *path, const char *method, const char *busy_message) {
        sd_bus *root = harness_bus_root(h), *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *list = NULL;
        _cleanup_free_ char *xml = NULL;
        int answered = 0;

        nft_flag("hold", true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, path, NET_INTERFACE, method, on_held_reply,
                                             &answered, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* Until nft has run, the loop is free. */
        list = harness_call_ok(plain, M, "ListNetworks", "t", UINT64_C(0));
        xml = get_xml(plain, path, NET_INTERFACE, 0);
        assert_non_null(strstr(xml, "<name>heldnet</name>"));
        harness_call_fails(root, ERR("DeviceBusy"), busy_message, path, NET_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), busy_message, path, NET_INTERFACE, "Stop", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), busy_message, path, NET_INTERFACE, "Undefine", "t", UINT64_C(0));
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(answered, 0);
        nft_flag("hold", false);
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        assert_int_equal(answered, 1);
}

#define HELD_NET                                                                                         \
        SIMPLE_NET("heldnet", "0a1b2c3d-0000-4000-8000-00000000a005",                                    \
                   "<forward mode='nat'/><bridge name='vbt5'/>"                                            \
                   "<ip address='10.78.0.1' netmask='255.255.255.0'><dhcp>"                              \
                   "<range start='10.78.0.100' end='10.78.0.120'/></dhcp></ip>")

#define HELD_NET2                                                                                        \
        SIMPLE_NET("heldnet2", "0a1b2c3d-0000-4000-8000-00000000a006",                                   \
                   "<forward mode='nat'/><bridge name='vbt6'/><ip address='10.79.0.1' prefix='24'/>")

/* Start, Stop and CreateNetwork take the host's steps (bridge, nft, dnsmasq) in a thread: the event loop
 * is free while nft is held back (on the old code the other caller's ListNetworks timed out), and a start that fails
 * at nft leaves nothing behind. */
static void test_start_stop_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *path = define_net(root, "DefineNetwork", HELD_NET), *status = NULL;
        pid_t pid;

        assert_non_null(getenv("VIRTBUS_NFT"));
        held_call(h, path, "Start", "busy starting");
        assert_int_equal(get_bool(root, path, "Active"), 1);
        assert_true(nft_table_exists("virtbus_vbt5"));
        assert_int_equal(run((const char *[]) { IP, "link", "show", "dev", "vbt5", NULL }, NULL), 0);
        pid = dnsmasq_pid(h, "heldnet");
        assert_true(pid > 0 && is_dnsmasq(pid));

        held_call(h, path, "Stop", "busy stopping");
        assert_int_equal(get_bool(root, path, "Active"), 0);
        assert_false(nft_table_exists("virtbus_vbt5"));
        assert_int_not_equal(run((const char *[]) { IP, "link", "show", "dev", "vbt5", NULL }, NULL), 0);
        assert_false(dnsmasq_alive(pid));

        /* nft fails in the thread: the bridge it made is gone again, no dnsmasq, no record, inactive. */
        nft_flag("fail", true);
        harness_call_fails(root, ERR("OperationFailed"), "Failed to load the firewall rules of network 'heldnet'", path,
                           NET_INTERFACE, "Start", "t", UINT64_C(0));
        nft_flag("fail", false);
        assert_int_equal(get_bool(root, path, "Active"), 0);
        assert_int_not_equal(run((const char *[]) { IP, "link", "show", "dev", "vbt5", NULL }, NULL), 0);
        assert_int_equal(dnsmasq_pid(h, "heldnet"), 0);
        assert_true(asprintf(&status, "%s/networks/0a1b2c3d-0000-4000-8000-00000000a005.xml", harness_runtime_dir(h)) > 0);
        assert_int_equal(access(status, F_OK), -1);
        call_net(root, path, "Undefine");

        /* CreateNetwork the same way: its name is taken while it starts, and it joins the registry when it
         * runs; a transient network's Stop makes it go. */
        {
                sd_bus *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *list = NULL;
                _cleanup_free_ char *created = NULL;
                int answered = 0;

                nft_flag("hold", true);
                assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                                     HARNESS_MANAGER_INTERFACE, "CreateNetwork", on_held_reply, &answered,
                                                     "st", HELD_NET2, UINT64_C(0)) >= 0);
                assert_true(sd_bus_flush(root) >= 0);
                list = harness_call_ok(plain, M, "ListNetworks", "t", UINT64_C(0));
                harness_call_fails(root, ERR("DeviceBusy"), "is being created", M, "CreateNetwork", "st", HELD_NET2,
                                   UINT64_C(0));
                harness_call_fails(root, ERR("DeviceBusy"), "is being created", M, "DefineNetwork", "st", HELD_NET2,
                                   UINT64_C(0));
                harness_call_fails(root, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "heldnet2");
                while (sd_bus_process(root, NULL) > 0)
                        ;
                assert_int_equal(answered, 0);
                nft_flag("hold", false);
                for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; answered == 0 && harness_now_usec() < end;)
                        if (sd_bus_process(root, NULL) == 0)
                                (void) sd_bus_wait(root, 100000);
                assert_int_equal(answered, 1);
                created = get_path(root, "GetNetworkByName", "heldnet2");
                assert_int_equal(get_bool(root, created, "Active"), 1);
                assert_true(nft_table_exists("virtbus_vbt6"));
                call_net(root, created, "Stop");
                harness_call_fails(root, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "heldnet2");
                assert_false(nft_table_exists("virtbus_vbt6"));
        }
}

static void create_async(sd_bus *bus, sd_bus_slot **slot, const char *xml, HarnessAnswer *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        assert_true(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                                   HARNESS_MANAGER_INTERFACE, "CreateNetwork") >= 0);
        assert_true(sd_bus_message_append(m, "st", xml, UINT64_C(0)) >= 0);
        assert_true(sd_bus_call_async(bus, slot, m, harness_on_answer, a, 3 * HARNESS_TIMEOUT_USEC) >= 0);
}

/* heldnet3 with a DNS host table large enough that its definition takes far longer to read and parse
 * than a small one. */
static char *big_held_net(void) {
        char *xml = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&xml, &size);

        assert_non_null(f);
        fputs("<network><name>heldnet3</name><uuid>0a1b2c3d-0000-4000-8000-00000000a007</uuid>"
              "<forward mode='nat'/><bridge name='vbt7'/><dns>", f);
        for (unsigned i = 0; i < 2000; i++)
                fprintf(f, "<host ip='10.80.%u.%u'><hostname>h%u.example</hostname></host>", 1 + i / 250, 1 + i % 250, i);
        fputs("</dns><ip address='10.80.0.1' prefix='16'/></network>", f);
        assert_int_equal(fclose(f), 0);
        return xml;
}

#define SMALL_HELD_NET3                                                                                  \
        SIMPLE_NET("heldnet3", "0a1b2c3d-0000-4000-8000-00000000a007",                                   \
                   "<forward mode='nat'/><bridge name='vbt7'/><ip address='10.80.0.1' prefix='16'/>")

/* Documents are parsed in two threads, but one caller's calls reach core in the order they were sent: a
 * CreateNetwork with a large definition, and right behind it one with a small definition of the same
 * network. The first is the one started (held at nft), the second answers "is being created". On the
 * old code the small one, parsed first, took the network and the large one was answered busy (and a
 * caller waiting for the second as the busy one waited for as long as nft was held). */
static void test_create_order(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot_big = NULL, *slot_small = NULL;
        _cleanup_free_ char *big = big_held_net(), *created = NULL;
        HarnessAnswer a_big = { .error = SD_BUS_ERROR_NULL }, a_small = { .error = SD_BUS_ERROR_NULL };
        int answered_big_while_held;

        nft_flag("hold", true);
        /* A large document takes long to parse under a sanitizer on a loaded machine: bounded waits of a
         * minute (sd-bus's own default, 25 s, is too short there). */
        create_async(root, &slot_big, big, &a_big);
        create_async(root, &slot_small, SMALL_HELD_NET3, &a_small);
        assert_true(sd_bus_flush(root) >= 0);
        /* One of the two is held at nft, the other answered busy. */
        for (uint64_t end = harness_now_usec() + 3 * HARNESS_TIMEOUT_USEC;
             a_big.answered == 0 && a_small.answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(root, NULL) == 0)
                        (void) sd_bus_wait(root, 100000);
        answered_big_while_held = a_big.answered;
        nft_flag("hold", false);
        harness_answer_wait(root, &a_big, 3 * HARNESS_TIMEOUT_USEC);
        harness_answer_wait(root, &a_small, 3 * HARNESS_TIMEOUT_USEC);
        assert_int_equal(answered_big_while_held, 0);
        assert_int_equal(a_small.answered, -1);
        assert_string_equal(a_small.error.name, ERR("DeviceBusy"));
        assert_non_null(strstr(a_small.error.message, "is being created"));
        assert_int_equal(a_big.answered, 1);
        created = get_path(root, "GetNetworkByName", "heldnet3");
        assert_int_equal(get_bool(root, created, "Active"), 1);
        call_net(root, created, "Stop");
        sd_bus_error_free(&a_big.error);
        sd_bus_error_free(&a_small.error);
}

#define HELD_NET4                                                                                        \
        SIMPLE_NET("heldnet4", "0a1b2c3d-0000-4000-8000-00000000a008",                                   \
                   "<forward mode='nat'/><bridge name='vbt8'/>"                                            \
                   "<ip address='10.82.0.1' prefix='24'><dhcp>"                                          \
                   "<range start='10.82.0.100' end='10.82.0.120'/></dhcp></ip>")

/* SIGTERM while a CreateNetwork is held at nft: virtbusd waits a bounded time, then kills the helper
 * (the test's nft wrapper) so that the start fails and undoes its steps; the caller is answered "virtbusd
 * is stopping", virtbusd exits, and nothing is left: no bridge, nft table, dnsmasq or record. After a
 * restart the network does not exist and can be created. On the old code virtbusd never answered and
 * never exited (its exit waited for the thread, the thread for nft). */
static void test_stop_while_held(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *status = NULL, *created = NULL;
        HarnessAnswer a = { .error = SD_BUS_ERROR_NULL };
        int exited, bridge_seen = 0;

        nft_flag("hold", true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                             HARNESS_MANAGER_INTERFACE, "CreateNetwork", harness_on_answer, &a, "st", HELD_NET4,
                                             UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        harness_call_fails(root, ERR("DeviceBusy"), "is being created", M, "CreateNetwork", "st", HELD_NET4,
                           UINT64_C(0));
        /* The thread made the bridge: it is at nft now (held). */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !bridge_seen && harness_now_usec() < end;) {
                bridge_seen = run((const char *[]) { IP, "link", "show", "dev", "vbt8", NULL }, NULL) == 0;
                if (!bridge_seen)
                        (void) usleep(20000);
        }
        assert_int_equal(kill(harness_daemon_pid(h), SIGTERM), 0);
        harness_answer_wait(root, &a, 3 * HARNESS_TIMEOUT_USEC);
        exited = harness_daemon_kill(h, 0);
        nft_flag("hold", false);
        assert_true(bridge_seen);
        assert_int_equal(a.answered, -1);
        assert_string_equal(a.error.name, ERR("OperationFailed"));
        assert_non_null(strstr(a.error.message, "virtbusd is stopping"));
        assert_int_equal(exited, 0);
        /* Nothing half-made is left. */
        assert_int_not_equal(run((const char *[]) { IP, "link", "show", "dev", "vbt8", NULL }, NULL), 0);
        assert_false(nft_table_exists("virtbus_vbt8"));
        assert_int_equal(dnsmasq_pid(h, "heldnet4"), 0);
        assert_true(asprintf(&status, "%s/networks/0a1b2c3d-0000-4000-8000-00000000a008.xml", harness_runtime_dir(h)) > 0);
        assert_int_equal(access(status, F_OK), -1);
        sd_bus_error_free(&a.error);

        /* Consistent after a restart: no such network, and it can be created now. */
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        harness_call_fails(root, ERR("NoSuchNetwork"), NULL, M, "GetNetworkByName", "s", "heldnet4");
        created = define_net(root, "CreateNetwork", HELD_NET4);
        assert_int_equal(get_bool(root, created, "Active"), 1);
        assert_true(nft_table_exists("virtbus_vbt8"));
        call_net(root, created, "Stop");
        assert_false(nft_table_exists("virtbus_vbt8"));
}

static void test_cleanup(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = harness_call_ok(bus, M, "ListNetworks", "t", UINT64_C(1));
        const char *p;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "o"), 1);
        while (sd_bus_message_read(reply, "o", &p) > 0)
                call_net(bus, p, "Stop");
}

/* Networks outlive virtbusd: if a test died before test_cleanup, the dnsmasq processes virtbusd started
 * in our namespace are still there; they end with it (by pid, only those inside it). */
static void kill_netns_pids(const char *ns) {
        _cleanup_free_ char *out = NULL;
        char *save = NULL;

        if (run((const char *[]) { IP, "netns", "pids", ns, NULL }, &out) != 0 || !out)
                return;
        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (atoi(l) > 1 && (pid_t) atoi(l) != getpid()) /* this test runs in it too */
                        (void) kill((pid_t) atoi(l), SIGKILL);
}

static void del_netns(void) {
        if (*ns_daemon)
                kill_netns_pids(ns_daemon);
        if (*ns_guest)
                (void) run((const char *[]) { IP, "netns", "del", ns_guest, NULL }, NULL);
        if (*ns_daemon)
                (void) run((const char *[]) { IP, "netns", "del", ns_daemon, NULL }, NULL);
}

/* Creates the namespaces and moves this process (and so everything the harness starts) into the first. */
static int enter_netns(void) {
        _cleanup_free_ char *path = NULL;
        int fd, r;

        snprintf(ns_daemon, sizeof ns_daemon, "vbtest-net-%d", (int) getpid());
        snprintf(ns_guest, sizeof ns_guest, "vbtest-guest-%d", (int) getpid());
        if (run((const char *[]) { IP, "netns", "add", ns_daemon, NULL }, NULL) != 0 ||
            run((const char *[]) { IP, "netns", "add", ns_guest, NULL }, NULL) != 0)
                return -EIO;
        atexit(del_netns);
        if (asprintf(&path, "/run/netns/%s", ns_daemon) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = setns(fd, CLONE_NEWNET);
        close(fd);
        if (r < 0)
                return -errno;
        return run((const char *[]) { IP, "link", "set", "lo", "up", NULL }, NULL) == 0 ? 0 : -EIO;
}

int main(void) {
        static const struct CMUnitTest simulated[] = {
                cmocka_unit_test(test_default_network),
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_authorization_persistence),
                cmocka_unit_test(test_save_errors),
        };
        static const struct CMUnitTest host[] = {
                cmocka_unit_test(test_nat_dhcp),
                cmocka_unit_test(test_unprivileged_limits),
                cmocka_unit_test(test_direct_ports),
                cmocka_unit_test(test_crash_reconcile),
                cmocka_unit_test(test_start_stop_off_loop),
                cmocka_unit_test(test_create_order),
                cmocka_unit_test(test_stop_while_held),
                cmocka_unit_test(test_cleanup),
        };
        int failed;

        HARNESS_SKIP_UNLESS_ROOT();
        failed = harness_run_group(simulated, &(HarnessOptions) {});
        failed += run_vf_group();
        if (access(IP, X_OK) < 0 || access(NFT, X_OK) < 0 || access(BUSYBOX, X_OK) < 0 ||
            access("/usr/sbin/dnsmasq", X_OK) < 0) {
                printf("ip, nft, busybox or dnsmasq missing (scripts/bootstrap installs them): skipping the host group\n");
                return failed;
        }
        /* The tiny guest is built (or found in its cache) before the namespaces, which reach no package
         * archive. */
        if (access("/usr/bin/qemu-system-x86_64", X_OK) == 0) {
                _cleanup_free_ char *script = harness_source_path("tests/guest/build-guest"), *cmd = NULL;

                if (asprintf(&cmd, "%s >/dev/null", script) < 0 || system(cmd) != 0)
                        printf("tests/guest/build-guest failed: the qemu group will fail\n");
        }
        if (enter_netns() < 0) {
                printf("Failed to set up the network namespaces\n");
                return failed + 1;
        }
        nft_wrapper();
        failed += harness_run_group(host, &(HarnessOptions) { .daemon_args = (const char *[]) { "--network-backend=host", NULL } });
        (void) unsetenv("VIRTBUS_NFT");
        {
                _cleanup_free_ char *script = NULL;

                if (asprintf(&script, "%s/nft", nft_dir) > 0)
                        (void) unlink(script);
                (void) rmdir(nft_dir);
        }
        if (access("/usr/bin/qemu-system-x86_64", X_OK) == 0) {
                static const struct CMUnitTest qemu[] = {
                        cmocka_unit_test(test_qemu_guest),
                        cmocka_unit_test_teardown(test_qemu_addresses, harness_teardown_qemus),
                        cmocka_unit_test(test_qemu_macvtap),
                };
                failed += harness_run_group(qemu, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
        } else
                printf("qemu-system-x86_64 missing: skipping the qemu group\n");
        return failed;
}
