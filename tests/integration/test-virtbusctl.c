/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl against virtbusd with the test driver on the harness's bus: every command, its --json
 * output parsed back (json-c) and checked, the exit codes, edit with a scripted $EDITOR, console through
 * a pty, and the bash completion. */
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "harness.h"

#define SERIAL "<serial type='pty'><target port='0'/></serial>"
#define TIMEOUT (60 * HARNESS_USEC_PER_SEC)

static const char *ctl_path(void) {
        const char *p = getenv("VIRTBUS_CTL");
        assert_non_null(p);
        return p;
}

/* virtbusctl --address=ADDR args... as user; returns the exit status, output in r (to free). */
static int ctlv(Harness *h, HarnessUser user, HarnessResult *r, const char * const *args, const char * const *env) {
        _cleanup_free_ char *address = NULL;
        const char *argv[40] = { ctl_path() };
        size_t n = 1;

        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        argv[n++] = address;
        for (size_t i = 0; args[i]; i++) {
                assert_true(n + 1 < ELEMENTSOF(argv));
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        assert_int_equal(harness_run(h, user, argv, env, TIMEOUT, r), 0);
        return r->status;
}
#define CTL(h, user, r, ...) ctlv(h, user, r, (const char * const[]) { __VA_ARGS__, NULL }, NULL)

/* Runs as root, expects exit 0, returns stdout (to free). */
static char *ctl_ok_argv(Harness *h, const char * const *args) {
        HarnessResult r = {};
        char *out;

        if (ctlv(h, HARNESS_USER_ROOT, &r, args, NULL) != 0)
                fail_msg("virtbusctl %s exited %d: %s%s", args[0], r.status, r.out, r.err);
        out = r.out;
        r.out = NULL;
        harness_result_done(&r);
        return out;
}
#define CTL_OK(h, ...) ctl_ok_argv(h, (const char * const[]) { __VA_ARGS__, NULL })

/* Runs as root with --json, expects exit 0 and exactly one JSON document; returns it (to put). */
static json_object *ctl_json_argv(Harness *h, const char * const *args) {
        const char *all[32] = { "--json" };
        _cleanup_free_ char *out = NULL;
        json_tokener *tok = json_tokener_new();
        json_object *o;
        size_t n = 1;

        for (size_t i = 0; args[i]; i++)
                all[n++] = args[i];
        all[n] = NULL;
        out = ctl_ok_argv(h, all);
        o = json_tokener_parse_ex(tok, out, (int) strlen(out));
        if (!o || json_tokener_get_error(tok) != json_tokener_success)
                fail_msg("Not one JSON document from %s: '%s'", args[0], out);
        /* Nothing after it but the newline (which json-c may have taken). */
        assert_true(strspn(out + json_tokener_get_parse_end(tok), "\n") == strlen(out + json_tokener_get_parse_end(tok)));
        assert_true(out[strlen(out) - 1] == '\n');
        json_tokener_free(tok);
        return o;
}
#define CTL_JSON(h, ...) ctl_json_argv(h, (const char * const[]) { __VA_ARGS__, NULL })

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                fail_msg("No key '%s' in %s", key, json_object_to_json_string(o));
        return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                fail_msg("No key '%s' in %s", key, json_object_to_json_string(o));
        return json_object_get_int64(v);
}

/* The element of a JSON array whose "Name" (or "name") is name, or NULL. */
static json_object *jfind(json_object *array, const char *key, const char *name) {
        assert_true(json_object_is_type(array, json_type_array));
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *e = json_object_array_get_idx(array, i), *v;
                if (json_object_object_get_ex(e, key, &v) && streq(json_object_get_string(v), name))
                        return e;
        }
        return NULL;
}

static char *write_temp(Harness *h, const char *name, const char *text) {
        char *p;
        FILE *f;

        assert_true(asprintf(&p, "%s/%s", harness_dir(h), name) > 0);
        f = fopen(p, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(p, 0755), 0);
        return p;
}

static const char *domain_state(Harness *h, const char *name) {
        static char state[32];
        json_object *o = CTL_JSON(h, "show", name);

        snprintf(state, sizeof state, "%s", jstr(o, "State"));
        json_object_put(o);
        return state;
}

static void test_domains(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *file = NULL, *dev = NULL;
        json_object *o, *e;
        char *out;

        /* The test driver's running domain. */
        o = CTL_JSON(h, "list");
        e = jfind(o, "Name", "test");
        assert_non_null(e);
        assert_string_equal(jstr(e, "State"), "running");
        assert_true(json_object_get_boolean(json_object_object_get(e, "Persistent")));
        json_object_put(o);
        out = CTL_OK(h, "list");
        assert_non_null(strstr(out, "NAME"));
        assert_non_null(strstr(out, "running"));
        assert_non_null(strstr(out, "domain listed."));
        free(out);
        out = CTL_OK(h, "list", "--no-legend");
        assert_null(strstr(out, "NAME"));
        assert_null(strstr(out, "listed"));
        free(out);

        file = write_temp(h, "cli.xml", "<domain type='test'><name>cli</name><memory unit='MiB'>128</memory>"
                                        "<vcpu>2</vcpu><os><type>hvm</type></os><devices>" SERIAL "</devices></domain>");
        o = CTL_JSON(h, "define", file);
        assert_string_equal(jstr(o, "name"), "cli");
        assert_non_null(strstr(jstr(o, "path"), "/org/virtbus1/domain/"));
        json_object_put(o);
        out = CTL_OK(h, "list", "--names");
        assert_non_null(strstr(out, "cli\n"));
        free(out);
        out = CTL_OK(h, "list"); /* running only */
        assert_null(strstr(out, "cli"));
        free(out);
        o = CTL_JSON(h, "list", "--all", "--state", "shutoff");
        assert_non_null(jfind(o, "Name", "cli"));
        assert_null(jfind(o, "Name", "test"));
        json_object_put(o);
        o = CTL_JSON(h, "show", "cli");
        assert_int_equal(jint(o, "MemoryKiB"), 131072);
        assert_string_equal(jstr(o, "State"), "shutoff");
        assert_int_equal(strlen(jstr(o, "UUID")), 36);
        {
                /* A domain may be named by its UUID too. */
                json_object *by_uuid = CTL_JSON(h, "show", jstr(o, "UUID"));
                assert_string_equal(jstr(by_uuid, "Name"), "cli");
                json_object_put(by_uuid);
        }
        json_object_put(o);
        out = CTL_OK(h, "show", "cli");
        assert_non_null(strstr(out, "State: shutoff"));
        free(out);

        /* vCPUs of the saved definition (shut off: it counts at once), within <vcpu>'s 2. */
        free(CTL_OK(h, "setvcpus", "cli", "1"));
        o = CTL_JSON(h, "show", "cli");
        assert_int_equal(jint(o, "VCPUs"), 1);
        json_object_put(o);
        free(CTL_OK(h, "setvcpus", "cli", "2", "--config"));
        o = CTL_JSON(h, "show", "cli");
        assert_int_equal(jint(o, "VCPUs"), 2);
        json_object_put(o);

        free(CTL_OK(h, "start", "cli", "--paused"));
        assert_string_equal(domain_state(h, "cli"), "paused");
        free(CTL_OK(h, "resume", "cli"));
        assert_string_equal(domain_state(h, "cli"), "running");
        free(CTL_OK(h, "suspend", "cli"));
        assert_string_equal(domain_state(h, "cli"), "paused");
        free(CTL_OK(h, "resume", "cli"));
        free(CTL_OK(h, "reboot", "cli"));
        free(CTL_OK(h, "reset", "cli"));
        free(CTL_OK(h, "setmem", "cli", "65536", "--live"));
        o = CTL_JSON(h, "show", "cli");
        assert_int_equal(jint(o, "CurrentMemoryKiB"), 65536);
        json_object_put(o);

        /* Devices, live and saved. */
        dev = write_temp(h, "disk.xml", "<disk type='file' device='cdrom'><target dev='sdc' bus='sata'/><readonly/></disk>");
        free(CTL_OK(h, "attach-device", "cli", dev, "--live", "--config"));
        out = CTL_OK(h, "dumpxml", "cli");
        assert_non_null(strstr(out, "dev='sdc'"));
        free(out);
        out = CTL_OK(h, "dumpxml", "cli", "--inactive");
        assert_non_null(strstr(out, "dev='sdc'"));
        free(out);
        free(CTL_OK(h, "update-device", "cli", dev, "--config"));
        free(CTL_OK(h, "detach-device", "cli", dev, "--config"));
        out = CTL_OK(h, "dumpxml", "cli", "--inactive", "--secure");
        assert_null(strstr(out, "dev='sdc'"));
        free(out);
        o = CTL_JSON(h, "dumpxml", "cli");
        assert_non_null(strstr(jstr(o, "xml"), "<name>cli</name>"));
        json_object_put(o);

        /* Statistics. */
        o = CTL_JSON(h, "stats", "--once");
        e = jfind(o, "name", "cli");
        assert_non_null(e);
        assert_int_equal(jint(json_object_object_get(e, "stats"), "state.state"), 1);
        json_object_put(o);
        o = CTL_JSON(h, "stats", "cli", "test", "--once");
        assert_int_equal(json_object_array_length(o), 2);
        assert_non_null(jfind(o, "name", "test"));
        json_object_put(o);
        out = CTL_OK(h, "stats", "--once");
        assert_non_null(strstr(out, "CPU-TIME"));
        assert_non_null(strstr(out, "running"));
        free(out);

        free(CTL_OK(h, "shutdown", "cli"));
        assert_string_equal(domain_state(h, "cli"), "shutoff");
        free(CTL_OK(h, "start", "cli"));
        free(CTL_OK(h, "destroy", "cli"));
        assert_string_equal(domain_state(h, "cli"), "shutoff");

        free(CTL_OK(h, "autostart", "cli"));
        o = CTL_JSON(h, "show", "cli");
        assert_true(json_object_get_boolean(json_object_object_get(o, "Autostart")));
        json_object_put(o);
        free(CTL_OK(h, "autostart", "cli", "--disable"));
        o = CTL_JSON(h, "show", "cli");
        assert_false(json_object_get_boolean(json_object_object_get(o, "Autostart")));
        json_object_put(o);
        free(CTL_OK(h, "rename", "cli", "cli2"));
        assert_string_equal(domain_state(h, "cli2"), "shutoff");

        /* Capabilities. */
        o = CTL_JSON(h, "domcapabilities", "--arch", "x86_64", "--machine", "q35", "--virttype", "test");
        assert_non_null(strstr(jstr(o, "xml"), "pc-q35-test"));
        json_object_put(o);
        out = CTL_OK(h, "capabilities");
        assert_non_null(strstr(out, "<capabilities>"));
        free(out);

        free(CTL_OK(h, "undefine", "cli2"));
        out = CTL_OK(h, "list", "--all", "--names");
        assert_null(strstr(out, "cli"));
        free(out);
}

static void test_exit_codes(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *bad = write_temp(h, "bad.xml", "<domain type='test'><name>bad</name><nonsense/></domain>");
        _cleanup_free_ char *shot = NULL;
        HarnessResult r = {};

        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "show", "nosuch"), 4);
        assert_non_null(strstr(r.err, "'nosuch'"));
        assert_null(strchr(r.err, '\n') + 1 == r.err + strlen(r.err) ? NULL : "more than one line");
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "net-start", "nosuch"), 4);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "vol-list", "nosuch"), 4);
        harness_result_done(&r);
        /* Not in group virtbus: polkit refuses (no terminal: no interactive authorization). */
        assert_int_equal(CTL(h, HARNESS_USER_PLAIN, &r, "destroy", "test"), 5);
        assert_non_null(strstr(r.err, "org.virtbus1.domain.manage"));
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_PLAIN, &r, "--no-ask-password", "suspend", "test"), 5);
        harness_result_done(&r);
        /* Reading is open to everyone. */
        assert_int_equal(CTL(h, HARNESS_USER_PLAIN, &r, "show", "test"), 0);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "define", bad), 3);
        assert_non_null(strstr(r.err, "element 'nonsense' is not allowed in <domain>")); /* the service's sentence */
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "setmem", "test", "lots"), 3);
        assert_non_null(strstr(r.err, "'lots'"));
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "setvcpus", "test", "0"), 3);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "vol-upload", "nosuch", "v", "/dev/null"), 4);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "--vfs", "many", "nodedev-sriov", "x"), 3);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-sriov", "pci_0000_03_00_0"), 2); /* no --vfs */
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "domifaddr", "test", "--source", "dns"), 3);
        harness_result_done(&r);
        /* The test driver has no display: vnc says so at once and leaves nothing behind. */
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "vnc", "test"), 1);
        assert_non_null(strstr(r.err, "no display"));
        assert_string_equal(r.out, "");
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "define", "/nonexistent.xml"), 4);
        harness_result_done(&r);
        /* The test driver has no display: the service's sentence, exit 1. */
        assert_true(asprintf(&shot, "%s/shot.png", harness_dir(h)) > 0);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "screenshot", "test", shot), 1);
        assert_non_null(strstr(r.err, "no display"));
        harness_result_done(&r);
        /* Usage. */
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "frobnicate"), 2);
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "start"), 2);
        harness_result_done(&r);
}

static void test_networks_nodedevs(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *file = NULL, *dev = NULL;
        json_object *o, *e;
        char *out;

        o = CTL_JSON(h, "net-list", "--all");
        e = jfind(o, "Name", "default");
        assert_non_null(e);
        assert_string_equal(jstr(e, "Bridge"), "virbr0");
        json_object_put(o);
        file = write_temp(h, "net.xml", "<network><name>clinet</name><bridge name='vbcli0'/>"
                                        "<ip address='10.99.0.1' netmask='255.255.255.0'/></network>");
        free(CTL_OK(h, "net-define", file));
        out = CTL_OK(h, "net-list", "--all");
        assert_non_null(strstr(out, "clinet"));
        assert_non_null(strstr(out, "inactive"));
        free(out);
        free(CTL_OK(h, "net-start", "clinet"));
        o = CTL_JSON(h, "net-list");
        assert_true(json_object_get_boolean(json_object_object_get(jfind(o, "Name", "clinet"), "Active")));
        json_object_put(o);
        o = CTL_JSON(h, "net-dhcp-leases", "clinet");
        assert_int_equal(json_object_array_length(o), 0);
        json_object_put(o);
        out = CTL_OK(h, "net-dumpxml", "clinet", "--inactive");
        assert_non_null(strstr(out, "<name>clinet</name>"));
        free(out);
        free(CTL_OK(h, "net-stop", "clinet"));
        free(CTL_OK(h, "net-undefine", "clinet"));
        out = CTL_OK(h, "net-list", "--names");
        assert_null(strstr(out, "clinet"));
        free(out);

        o = CTL_JSON(h, "nodedev-list", "--cap", "pci");
        assert_true(json_object_array_length(o) > 0);
        e = json_object_array_get_idx(o, 0);
        dev = strdup(jstr(e, "Name"));
        assert_non_null(strstr(json_object_to_json_string(json_object_object_get(e, "Capabilities")), "pci"));
        json_object_put(o);
        out = CTL_OK(h, "nodedev-dumpxml", dev);
        assert_non_null(strstr(out, dev));
        free(out);
        out = CTL_OK(h, "nodedev-list");
        assert_non_null(strstr(out, "CAPABILITIES"));
        free(out);
}

static HarnessFakeSysfs fake;

static void test_nodedev_ops(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *vf = NULL;
        HarnessResult r = {};
        json_object *o;

        free(CTL_OK(h, "nodedev-detach", "pci_0000_03_10_2", "--driver", "vfio-pci"));
        free(CTL_OK(h, "nodedev-reset", "pci_0000_03_10_2"));
        free(CTL_OK(h, "nodedev-reattach", "pci_0000_03_10_2"));
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-reset", "pci_9999_00_00_0"), 4);
        harness_result_done(&r);

        /* SR-IOV: the number of VFs, then one VF's MAC and VLAN (the fake NIC keeps them). */
        free(CTL_OK(h, "nodedev-sriov", "pci_0000_03_00_0", "--vfs", "4"));
        o = CTL_JSON(h, "nodedev-list", "--cap", "phys_function");
        assert_int_equal(json_object_array_length(o), 4);
        assert_non_null(jfind(o, "Name", "pci_0000_03_10_6"));
        json_object_put(o);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-sriov", "pci_0000_03_00_0", "--vfs", "8"), 3);
        assert_non_null(strstr(r.err, "at most 7"));
        harness_result_done(&r);
        free(CTL_OK(h, "nodedev-sriov", "pci_0000_03_00_0", "--vfs", "2"));
        o = CTL_JSON(h, "nodedev-list", "--cap", "phys_function");
        assert_int_equal(json_object_array_length(o), 2);
        json_object_put(o);
        o = CTL_JSON(h, "nodedev-vf", "pci_0000_03_00_0", "1", "--mac", "02:00:00:00:00:11", "--vlan", "11");
        assert_string_equal(jstr(o, "name"), "pci_0000_03_00_0");
        json_object_put(o);
        vf = harness_fake_sysfs_vf(&fake, 1);
        assert_string_equal(vf, "02:00:00:00:00:11 11\n");
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-vf", "pci_0000_03_00_0", "1", "--mac", "03:00:00:00:00:11"), 3);
        assert_non_null(strstr(r.err, "unicast"));
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-vf", "pci_0000_03_00_0", "1"), 2); /* no --mac */
        harness_result_done(&r);
}

static void test_storage(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *pool = NULL, *vol = NULL, *xml = NULL;
        json_object *o, *e;
        char *out;

        o = CTL_JSON(h, "pool-list");
        assert_non_null(jfind(o, "Name", "default-pool"));
        json_object_put(o);
        assert_true(asprintf(&xml, "<pool type='dir'><name>clipool</name><target><path>%s/clipool</path></target></pool>",
                             harness_dir(h)) > 0);
        pool = write_temp(h, "pool.xml", xml);
        free(CTL_OK(h, "pool-define", pool));
        free(CTL_OK(h, "pool-build", "clipool"));
        free(CTL_OK(h, "pool-start", "clipool"));
        out = CTL_OK(h, "pool-list");
        assert_non_null(strstr(out, "clipool"));
        free(out);
        vol = write_temp(h, "vol.xml", "<volume><name>a.img</name><capacity unit='MiB'>8</capacity></volume>");
        o = CTL_JSON(h, "vol-create", "clipool", vol);
        assert_string_equal(jstr(o, "name"), "a.img");
        json_object_put(o);
        o = CTL_JSON(h, "vol-list", "clipool");
        e = jfind(o, "Name", "a.img");
        assert_non_null(e);
        assert_int_equal(jint(e, "Capacity"), 8 * 1024 * 1024);
        json_object_put(o);
        out = CTL_OK(h, "vol-list", "clipool");
        assert_non_null(strstr(out, "8.0 MiB"));
        free(out);
        free(CTL_OK(h, "vol-delete", "clipool", "a.img"));
        o = CTL_JSON(h, "vol-list", "clipool");
        assert_int_equal(json_object_array_length(o), 0);
        json_object_put(o);
        free(CTL_OK(h, "pool-stop", "clipool"));
        free(CTL_OK(h, "pool-undefine", "clipool"));
        out = CTL_OK(h, "pool-list", "--all", "--names");
        assert_null(strstr(out, "clipool"));
        free(out);
}

/* edit: a good edit, then a bad one fixed on the second try (the editor sees the error). */
static void test_edit(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *good = NULL, *bad = NULL, *env_editor = NULL, *count = NULL, *seen = NULL;
        _cleanup_free_ char *script = NULL;
        HarnessResult r = {};
        json_object *o;

        free(harness_define_test_domain(harness_bus_root(h), "edited", ""));
        good = write_temp(h, "good-editor", "#!/bin/sh\nsed -i 's|<memory unit=.KiB.>131072|<memory unit=\"KiB\">262144|' \"$1\"\n");
        assert_true(asprintf(&env_editor, "EDITOR=%s", good) > 0);
        assert_int_equal(ctlv(h, HARNESS_USER_ROOT, &r, (const char * const[]) { "edit", "edited", NULL },
                              (const char * const[]) { env_editor, "VISUAL=", NULL }), 0);
        assert_non_null(strstr(r.out, "redefined"));
        harness_result_done(&r);
        o = CTL_JSON(h, "show", "edited");
        assert_int_equal(jint(o, "MemoryKiB"), 262144);
        json_object_put(o);

        assert_true(asprintf(&count, "%s/edit-count", harness_dir(h)) > 0);
        assert_true(asprintf(&seen, "%s/edit-seen", harness_dir(h)) > 0);
        assert_true(asprintf(&script,
                             "#!/bin/sh\n"
                             "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s\n"
                             "if [ $n = 1 ]; then sed -i 's|</os>|</os><bogus/>|' \"$1\"; exit 0; fi\n"
                             "head -n 1 \"$1\" > %s\n"
                             "sed -i 's|<bogus/>||; s|<memory unit=.KiB.>262144|<memory unit=\"KiB\">393216|' \"$1\"\n",
                             count, count, seen) > 0);
        bad = write_temp(h, "bad-editor", script);
        free(env_editor);
        assert_true(asprintf(&env_editor, "EDITOR=%s", bad) > 0);
        assert_int_equal(ctlv(h, HARNESS_USER_ROOT, &r, (const char * const[]) { "edit", "edited", NULL },
                              (const char * const[]) { env_editor, "VISUAL=", NULL }), 0);
        harness_result_done(&r);
        {
                _cleanup_free_ char *n = harness_read_file(count), *first = harness_read_file(seen);
                assert_string_equal(n, "2\n");
                assert_non_null(strstr(first, "<!-- virtbusctl: error: "));
                assert_non_null(strstr(first, "bogus"));
        }
        o = CTL_JSON(h, "show", "edited");
        assert_int_equal(jint(o, "MemoryKiB"), 393216);
        json_object_put(o);
}

/* console through a pty: the simulated login prompt, typing, Ctrl+], and the terminal restored. */
static void test_console(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *address = NULL;
        char buf[16384] = "";
        struct termios before, after;
        size_t n = 0;
        int master, status;
        pid_t pid;

        free(harness_define_test_domain(harness_bus_root(h), "talkative", SERIAL));
        free(CTL_OK(h, "start", "talkative"));
        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        pid = forkpty(&master, NULL, NULL, NULL);
        assert_true(pid >= 0);
        if (pid == 0) {
                execl(ctl_path(), "virtbusctl", address, "console", "talkative", (char *) NULL);
                _exit(127);
        }
        assert_int_equal(tcgetattr(master, &before), 0);
        for (int step = 0; step < 2; step++) {
                const char *want = step == 0 ? "talkative login: " : "Login incorrect";
                uint64_t end = harness_now_usec() + 10 * HARNESS_USEC_PER_SEC;

                while (!strstr(buf, want)) {
                        struct pollfd p = { .fd = master, .events = POLLIN };
                        ssize_t k;

                        if (harness_now_usec() >= end)
                                fail_msg("No '%s' on the console: '%s'", want, buf);
                        if (poll(&p, 1, 100) <= 0)
                                continue;
                        k = read(master, buf + n, sizeof buf - n - 1);
                        assert_true(k > 0);
                        n += (size_t) k;
                        buf[n] = 0;
                }
                if (step == 0) {
                        assert_non_null(strstr(buf, "Ctrl+]"));
                        assert_int_equal(write(master, "root\r", 5), 5);
                }
        }
        /* Raw while connected. */
        assert_int_equal(tcgetattr(master, &after), 0);
        assert_false(after.c_lflag & ECHO);
        assert_int_equal(write(master, "\x1d", 1), 1);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* The slave is gone with the child; the settings it restored stayed on the pty. */
        assert_int_equal(tcgetattr(master, &after), 0);
        assert_true(after.c_lflag & ECHO);
        assert_true(after.c_lflag & ICANON);
        close(master);
        free(CTL_OK(h, "destroy", "talkative"));
}

/* The completion: commands, options, and names asked from the service. */
static void test_completion(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *compl = harness_source_path("shell-completion/bash/virtbusctl"), *env_path = NULL,
                            *env_bus = NULL, *dir = strdup(ctl_path());
        HarnessResult r = {};
        const char *cases[][2] = {
                { "virtbusctl net-st", "net-start\nnet-stop\n" },
                { "virtbusctl --no-l", "--no-legend\n" },
                { "virtbusctl start te", "test\n" },
                { "virtbusctl net-start def", "default\n" },
                { "virtbusctl vol-list default-p", "default-pool\n" },
                { "virtbusctl mon", "monitor\n" },
                { "virtbusctl snapshot-r", "snapshot-revert\n" },
                { "virtbusctl --ch", "--children\n--children-only\n" },
                { "virtbusctl domifaddr test --source a", "agent\narp\n" },
                { "virtbusctl snapshot-delete compl sn", "snapA\n" },
                { "virtbusctl nodedev-sriov pci_0000_03_00", "pci_0000_03_00_0\n" },
                { "virtbusctl migrate te", "test\n" },
                { "virtbusctl migrate test --postcopy-", "--postcopy-after\n--postcopy-bandwidth\n" },
                /* An option's value is not an argument: the domain is still the one asked for. */
                { "virtbusctl migrate --postcopy-bandwidth 8 te", "test\n" },
        };

        free(harness_define_test_domain(harness_bus_root(h), "compl", ""));
        free(CTL_OK(h, "snapshot-create", "compl", "snapA"));

        *strrchr(dir, '/') = 0;
        assert_true(asprintf(&env_path, "PATH=%s:/usr/bin:/bin", dir) > 0);
        assert_true(asprintf(&env_bus, "DBUS_SYSTEM_BUS_ADDRESS=%s", harness_bus_address(h)) > 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *cmd = NULL;

                assert_true(asprintf(&cmd,
                                     ". %s; COMP_LINE='%s'; read -a COMP_WORDS <<< \"$COMP_LINE\"; "
                                     "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _virtbusctl; "
                                     "printf '%%s\\n' \"${COMPREPLY[@]}\"",
                                     compl, cases[i][0]) > 0);
                assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char * const[]) { "/bin/bash", "-c", cmd, NULL },
                                             (const char * const[]) { env_path, env_bus, NULL }, TIMEOUT, &r),
                                 0);
                if (r.status != 0 || !streq(r.out, cases[i][1]))
                        fail_msg("Completing '%s': '%s' (want '%s'), %s", cases[i][0], r.out, cases[i][1], r.err);
                harness_result_done(&r);
        }
        free(CTL_OK(h, "snapshot-delete", "compl", "snapA"));
        free(CTL_OK(h, "undefine", "compl"));
}

/* Snapshots of a test-driver domain: create (named, unnamed, with a description), list, dumpxml, revert,
 * delete with its children, and the errors. */
static void test_snapshots(void **state) {
        Harness *h = *state;
        HarnessResult r = {};
        json_object *o, *e, *s1;
        char *out;

        free(harness_define_test_domain(harness_bus_root(h), "snappy", ""));
        o = CTL_JSON(h, "snapshot-create", "snappy", "s1", "--description", "first <one> & 'only'");
        assert_string_equal(jstr(o, "name"), "s1");
        assert_non_null(strstr(jstr(o, "path"), "/snapshot/s1"));
        json_object_put(o);
        out = CTL_OK(h, "snapshot-create", "snappy", "s2");
        assert_string_equal(out, "Snapshot 's2' of domain 'snappy' created.\n");
        free(out);
        o = CTL_JSON(h, "snapshot-create", "snappy"); /* named by the service: the creation time */
        assert_true(strspn(jstr(o, "name"), "0123456789") == strlen(jstr(o, "name")));
        free(CTL_OK(h, "snapshot-delete", "snappy", jstr(o, "name")));
        json_object_put(o);

        o = CTL_JSON(h, "snapshot-list", "snappy");
        assert_int_equal(json_object_array_length(o), 2);
        s1 = jfind(o, "Name", "s1");
        e = jfind(o, "Name", "s2");
        assert_non_null(s1);
        assert_non_null(e);
        assert_string_equal(jstr(s1, "Parent"), "/");
        assert_non_null(strstr(jstr(e, "Parent"), "/snapshot/s1"));
        assert_false(json_object_get_boolean(json_object_object_get(s1, "IsCurrent")));
        assert_true(json_object_get_boolean(json_object_object_get(e, "IsCurrent")));
        assert_string_equal(jstr(e, "State"), "shutoff");
        assert_true(jint(e, "CreationTime") > 1700000000);
        json_object_put(o);
        out = CTL_OK(h, "snapshot-list", "snappy");
        assert_non_null(strstr(out, "PARENT"));
        assert_non_null(strstr(out, "2 snapshots listed."));
        {
                /* s2's row names s1 as its parent and is the current one. */
                char *row = strstr(out, "\ns2 ");
                assert_non_null(row);
                assert_non_null(strstr(row, " s1 "));
                assert_non_null(strstr(row, "yes"));
        }
        free(out);
        out = CTL_OK(h, "snapshot-dumpxml", "snappy", "s1");
        assert_non_null(strstr(out, "<description>first &lt;one&gt; &amp; 'only'</description>"));
        free(out);

        free(CTL_OK(h, "snapshot-revert", "snappy", "s1"));
        o = CTL_JSON(h, "snapshot-list", "snappy");
        assert_true(json_object_get_boolean(json_object_object_get(jfind(o, "Name", "s1"), "IsCurrent")));
        json_object_put(o);

        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "snapshot-revert", "snappy", "nosuch"), 4);
        assert_non_null(strstr(r.err, "no snapshot 'nosuch'"));
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "snapshot-create", "snappy", "s1"), 1); /* AlreadyExists */
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "snapshot-delete", "snappy", "s1", "--children",
                             "--children-only"), 2);
        harness_result_done(&r);
        /* Undefine refuses a domain with snapshots: delete s1 with its child first. */
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "undefine", "snappy"), 1);
        harness_result_done(&r);
        free(CTL_OK(h, "snapshot-delete", "snappy", "s1", "--children"));
        o = CTL_JSON(h, "snapshot-list", "snappy");
        assert_int_equal(json_object_array_length(o), 0);
        json_object_put(o);
        /* --disk-only is flag 1: the test domain has no image disk to put an overlay over. */
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "snapshot-create", "snappy", "d1", "--disk-only"), 3);
        assert_non_null(strstr(r.err, "no writable image disk"));
        harness_result_done(&r);
        free(CTL_OK(h, "undefine", "snappy"));
}

/* console with piped input: what was piped goes in, the guest's answer comes out, and the session ends
 * once the input has ended and the console has been quiet for --idle-timeout (it never hangs). */
static void test_console_piped(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *cmd = NULL;
        HarnessResult r = {};

        free(harness_define_test_domain(harness_bus_root(h), "piped", SERIAL));
        free(CTL_OK(h, "start", "piped"));
        assert_true(asprintf(&cmd, "printf 'root\r' | %s --address=%s console piped --idle-timeout 0.5",
                             ctl_path(), harness_bus_address(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char * const[]) { "/bin/sh", "-c", cmd, NULL },
                                     NULL, TIMEOUT, &r), 0);
        if (r.status != 0 || !strstr(r.out, "root") || !strstr(r.out, "Login incorrect"))
                fail_msg("piped console: status %d, out '%s', err '%s'", r.status, r.out, r.err);
        /* Not a terminal: no banner, no raw mode. */
        assert_null(strstr(r.err, "Ctrl+]"));
        harness_result_done(&r);
        free(cmd);
        /* Nothing piped at all: the session ends too. */
        assert_true(asprintf(&cmd, "%s --address=%s console piped --idle-timeout 0.2 </dev/null", ctl_path(),
                             harness_bus_address(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char * const[]) { "/bin/sh", "-c", cmd, NULL },
                                     NULL, TIMEOUT, &r), 0);
        assert_int_equal(r.status, 0);
        harness_result_done(&r);
        free(CTL_OK(h, "destroy", "piped"));
}

/* Reads fd until want appears in buf (or fails after 30 s); returns the bytes read so far. */
static size_t read_until(int fd, char *buf, size_t size, size_t n, const char *want) {
        uint64_t end = harness_now_usec() + 30 * HARNESS_USEC_PER_SEC;

        while (!strstr(buf, want)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                if (harness_now_usec() >= end)
                        fail_msg("No '%s' in '%s'", want, buf);
                if (poll(&p, 1, 100) <= 0)
                        continue;
                k = read(fd, buf + n, size - n - 1);
                if (k <= 0)
                        fail_msg("End of output before '%s': '%s'", want, buf);
                n += (size_t) k;
                buf[n] = 0;
        }
        return n;
}

/* vol-upload / vol-download: files, stdin and stdout, offsets, the progress bar on a terminal only. */
static void test_vol_transfer(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *pool = NULL, *vol = NULL, *xml = NULL, *data = NULL, *in = NULL, *outf = NULL,
                            *back = NULL, *cmd = NULL, *address = NULL, *part = NULL;
        HarnessResult r = {};
        size_t size = 3 * 1024 * 1024;
        char buf[8192] = "";
        int master, status;
        pid_t pid;

        assert_true(asprintf(&xml, "<pool type='dir'><name>xfer</name><target><path>%s/xfer</path></target></pool>",
                             harness_dir(h)) > 0);
        pool = write_temp(h, "xfer-pool.xml", xml);
        free(CTL_OK(h, "pool-define", pool));
        free(CTL_OK(h, "pool-build", "xfer"));
        free(CTL_OK(h, "pool-start", "xfer"));
        vol = write_temp(h, "xfer-vol.xml", "<volume><name>v.img</name><capacity unit='MiB'>4</capacity></volume>");
        free(CTL_OK(h, "vol-create", "xfer", vol));

        /* 3 MiB of text (so that it may pass through stdout as a string too). */
        data = malloc(size + 1);
        assert_non_null(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (char) ('a' + (i * 7 + i / 4096) % 26);
        data[size] = 0;
        in = write_temp(h, "xfer-in", data);
        assert_true(asprintf(&outf, "%s/xfer-out", harness_dir(h)) > 0);
        {
                json_object *o = CTL_JSON(h, "vol-upload", "xfer", "v.img", in);
                assert_string_equal(jstr(o, "name"), "v.img");
                assert_non_null(strstr(jstr(o, "path"), "/org/virtbus1/storagevol/"));
                json_object_put(o);
        }
        free(CTL_OK(h, "vol-download", "xfer", "v.img", outf, "--length", "3145728"));
        back = harness_read_file(outf);
        assert_non_null(back);
        assert_int_equal(strlen(back), size);
        assert_memory_equal(back, data, size);

        /* Through pipes: stdin at an offset, then stdout. */
        assert_true(asprintf(&cmd, "printf 'HELLO-VIRTBUS' | %s --address=%s vol-upload xfer v.img - --offset 1048576 "
                                   "--length 13 && %s --address=%s vol-download xfer v.img - --offset 1048570 --length 20",
                             ctl_path(), harness_bus_address(h), ctl_path(), harness_bus_address(h)) > 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char * const[]) { "/bin/sh", "-c", cmd, NULL },
                                     NULL, TIMEOUT, &r), 0);
        if (r.status != 0)
                fail_msg("pipes: %d %s", r.status, r.err);
        part = strndup(data + 1048570, 6);
        assert_true(strncmp(r.out, part, 6) == 0);
        assert_true(strncmp(r.out + 6, "HELLO-VIRTBUS", 13) == 0);
        assert_int_equal(strlen(r.out), 20);
        assert_string_equal(r.err, ""); /* no bar without a terminal */
        harness_result_done(&r);

        /* Past the end: the service's sentence, exit 3, and no file left by the failed download. */
        (void) unlink(outf);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "vol-download", "xfer", "v.img", outf, "--offset", "8388608"), 3);
        assert_true(access(outf, F_OK) < 0);
        harness_result_done(&r);

        /* On a terminal: a progress bar from the volume's Progress signals. */
        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        pid = forkpty(&master, NULL, NULL, NULL);
        assert_true(pid >= 0);
        if (pid == 0) {
                execl(ctl_path(), "virtbusctl", address, "vol-download", "xfer", "v.img", outf, (char *) NULL);
                _exit(127);
        }
        (void) read_until(master, buf, sizeof buf, 0, "100%");
        assert_non_null(strstr(buf, "Downloading 'v.img' ["));
        assert_non_null(strstr(buf, "4.0 MiB of 4.0 MiB"));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(master);

        free(CTL_OK(h, "vol-delete", "xfer", "v.img"));
        free(CTL_OK(h, "pool-stop", "xfer"));
        free(CTL_OK(h, "pool-undefine", "xfer"));
}

/* virtbusctl args... in the background as root: its pid, stdout and stderr as pipes. */
static pid_t spawn_ctl(Harness *h, const char * const *args, int *ret_out, int *ret_err) {
        _cleanup_free_ char *address = NULL;
        const char *argv[16] = { ctl_path() };
        int out[2], err[2];
        size_t n = 1;
        pid_t pid;

        assert_true(asprintf(&address, "--address=%s", harness_bus_address(h)) > 0);
        argv[n++] = address;
        for (size_t i = 0; args[i]; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        *ret_out = out[0];
        *ret_err = err[0];
        return pid;
}

static int stop_child(pid_t pid) {
        int status;

        assert_int_equal(kill(pid, SIGTERM), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* monitor, text and --json side by side: a domain defined, started, given a device, destroyed and
 * undefined, each seen as it happens. */
static void test_monitor(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *dev = NULL;
        static char jbuf[65536], tbuf[65536], ebuf[4096];
        int jout, jerr, tout, terr;
        size_t jn = 0, tn = 0;
        pid_t jpid, tpid;
        bool added = false, running = false, device = false, removed = false;

        jpid = spawn_ctl(h, (const char * const[]) { "--json", "monitor", NULL }, &jout, &jerr);
        tpid = spawn_ctl(h, (const char * const[]) { "monitor", NULL }, &tout, &terr);
        /* Subscribed once it says so. */
        ebuf[0] = 0;
        (void) read_until(jerr, ebuf, sizeof ebuf, 0, "Monitoring");
        ebuf[0] = 0;
        (void) read_until(terr, ebuf, sizeof ebuf, 0, "Monitoring");

        free(harness_define_test_domain(harness_bus_root(h), "watched", ""));
        free(CTL_OK(h, "start", "watched"));
        dev = write_temp(h, "mon-disk.xml", "<disk type='file' device='cdrom'><target dev='sdd' bus='sata'/><readonly/></disk>");
        free(CTL_OK(h, "attach-device", "watched", dev, "--live"));
        free(CTL_OK(h, "destroy", "watched"));
        free(CTL_OK(h, "undefine", "watched"));

        tn = read_until(tout, tbuf, sizeof tbuf, tn, "domain 'watched' removed");
        assert_non_null(strstr(tbuf, "domain 'watched' added\n"));
        assert_non_null(strstr(tbuf, "domain 'watched' changed: "));
        assert_non_null(strstr(tbuf, "State=running"));
        assert_non_null(strstr(tbuf, "domain 'watched' device-added: '"));
        jn = read_until(jout, jbuf, sizeof jbuf, jn, "\"event\":\"removed\"");
        (void) read_until(jout, jbuf, sizeof jbuf, jn, "\n");
        /* One JSON object per line. */
        for (char *line = jbuf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
                json_object *o, *props;

                *nl = 0;
                o = json_tokener_parse(line);
                if (!o)
                        fail_msg("Not JSON: '%s'", line);
                if (json_object_get_type(json_object_object_get(o, "name")) == json_type_string &&
                    streq(jstr(o, "name"), "watched")) {
                        const char *ev = jstr(o, "event");

                        assert_string_equal(jstr(o, "kind"), "domain");
                        assert_non_null(strstr(jstr(o, "path"), "/org/virtbus1/domain/"));
                        assert_true(jint(o, "time_usec") > 0);
                        if (streq(ev, "added")) {
                                props = json_object_object_get(o, "properties");
                                assert_string_equal(jstr(props, "State"), "shutoff");
                                added = true;
                        } else if (streq(ev, "changed")) {
                                props = json_object_object_get(o, "properties");
                                json_object *st;
                                if (json_object_object_get_ex(props, "State", &st) &&
                                    streq(json_object_get_string(st), "running"))
                                        running = added;
                        } else if (streq(ev, "device-added"))
                                device = running && strlen(jstr(o, "alias")) > 0;
                        else if (streq(ev, "removed"))
                                removed = device;
                }
                json_object_put(o);
        }
        assert_true(added && running && device && removed);

        /* The service restarting is seen too, and objects are named again afterwards. */
        assert_int_equal(harness_daemon_restart(h), 0);
        tn = read_until(tout, tbuf, sizeof tbuf, tn, "service started");
        assert_non_null(strstr(tbuf, "service stopped\n"));
        jbuf[0] = 0; /* the lines above were cut at their newlines */
        jn = read_until(jout, jbuf, sizeof jbuf, 0, "\"event\":\"started\"");
        jn = read_until(jout, jbuf, sizeof jbuf, jn, "}\n");
        {
                char *line = strstr(jbuf, "\"event\":\"started\""), *nl;
                json_object *o;

                assert_non_null(strstr(jbuf, "\"event\":\"stopped\""));
                assert_non_null(line);
                while (line > jbuf && line[-1] != '\n')
                        line--;
                nl = strchr(line, '\n');
                assert_non_null(nl);
                *nl = 0;
                o = json_tokener_parse(line);
                assert_non_null(o);
                assert_string_equal(jstr(o, "kind"), "service");
                json_object_put(o);
        }
        free(CTL_OK(h, "suspend", "test"));
        tn = read_until(tout, tbuf, sizeof tbuf, tn, "domain 'test' changed: State=paused");
        free(CTL_OK(h, "resume", "test"));
        assert_int_equal(stop_child(jpid), 0);
        assert_int_equal(stop_child(tpid), 0);
        close(jout), close(jerr), close(tout), close(terr);
}

/* domifaddr gives a running domain's leased address on network "default", the very lease
 * net-dhcp-leases lists for that network; managedsave stops a domain and managedsave-remove drops its saved state; setvcpus
 * --maximum changes <vcpu>. */
static void test_addresses_and_saves(void **state) {
        Harness *h = *state;
        json_object *o, *iface, *addr, *leases, *lease = NULL;
        const char *mac, *ip;

        free(harness_define_test_domain(harness_bus_root(h), "addr",
                                        "<interface type='network'><source network='default'/></interface>"));
        free(CTL_OK(h, "start", "addr"));
        o = CTL_JSON(h, "domifaddr", "addr", "--source", "lease");
        assert_true(json_object_array_length(o) >= 1);
        iface = json_object_array_get_idx(o, 0);
        mac = jstr(iface, "mac");
        assert_true(json_object_array_length(json_object_object_get(iface, "addresses")) >= 1);
        addr = json_object_array_get_idx(json_object_object_get(iface, "addresses"), 0);
        assert_int_equal(jint(addr, "family"), 4);
        ip = jstr(addr, "address");
        assert_true(jint(addr, "prefix") > 0);
        leases = CTL_JSON(h, "net-dhcp-leases", "default");
        for (size_t i = 0; i < json_object_array_length(leases); i++)
                if (streq(jstr(json_object_array_get_idx(leases, i), "mac"), mac))
                        lease = json_object_array_get_idx(leases, i);
        assert_non_null(lease);
        assert_string_equal(jstr(lease, "ip_address"), ip);
        json_object_put(leases);
        json_object_put(o);
        /* The default source is the leases too. */
        o = CTL_JSON(h, "domifaddr", "addr");
        assert_true(json_object_array_length(o) >= 1);
        json_object_put(o);
        free(CTL_OK(h, "destroy", "addr"));
        free(CTL_OK(h, "undefine", "addr"));

        free(harness_define_test_domain(harness_bus_root(h), "saved", ""));
        free(CTL_OK(h, "start", "saved"));
        free(CTL_OK(h, "managedsave", "saved"));
        assert_string_equal(domain_state(h, "saved"), "shutoff");
        o = CTL_JSON(h, "show", "saved");
        assert_true(json_object_get_boolean(json_object_object_get(o, "HasManagedSave")));
        json_object_put(o);
        free(CTL_OK(h, "managedsave-remove", "saved"));
        o = CTL_JSON(h, "show", "saved");
        assert_false(json_object_get_boolean(json_object_object_get(o, "HasManagedSave")));
        json_object_put(o);

        free(CTL_OK(h, "setvcpus", "saved", "3", "--maximum"));
        o = CTL_JSON(h, "show", "saved");
        assert_int_equal(jint(o, "MaxVCPUs"), 3);
        json_object_put(o);
        free(CTL_OK(h, "undefine", "saved"));
}

/* vnc with the qemu driver: a display that listens nowhere, reached through virtbusctl's socket (a
 * fresh OpenGraphics connection per viewer), in a directory of mode 0700; both gone at SIGTERM. */
static void test_vnc_qemu(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *path = harness_define_domain(harness_bus_root(h),
                "<domain type='qemu'><name>vncd</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                "<graphics type='vnc'><listen type='none'/></graphics><video><model type='vga'/></video>"
                "</devices></domain>");
        char out[4096] = "", err[4096] = "", dir[4096];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int sout, serr;
        pid_t pid;

        harness_domain_call(harness_bus_root(h), path, "Start");
        pid = spawn_ctl(h, (const char * const[]) { "vnc", "vncd", NULL }, &sout, &serr);
        (void) read_until(sout, out, sizeof out, 0, "\n");
        (void) read_until(serr, err, sizeof err, 0, "Ctrl+C");
        *strchr(out, '\n') = 0;
        assert_true(strlen(out) < sizeof sa.sun_path);
        strcpy(sa.sun_path, out);
        snprintf(dir, sizeof dir, "%s", out);
        *strrchr(dir, '/') = 0;
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(stat(out, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));

        /* Two viewers one after the other, and two at once: each gets the server's greeting. */
        for (int round = 0; round < 2; round++) {
                int fds[2];

                for (int i = 0; i <= round; i++) {
                        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        assert_true(fds[i] >= 0);
                        assert_int_equal(connect(fds[i], (struct sockaddr *) &sa, sizeof sa), 0);
                }
                for (int i = 0; i <= round; i++) {
                        char greeting[64] = "";

                        (void) read_until(fds[i], greeting, sizeof greeting, 0, "\n");
                        assert_string_equal(greeting, "RFB 003.008\n");
                        close(fds[i]);
                }
        }
        assert_int_equal(stop_child(pid), 0);
        assert_true(access(out, F_OK) < 0);
        assert_true(access(dir, F_OK) < 0);
        close(sout);
        close(serr);

        /* --json: one object naming the socket, which a viewer reaches too. */
        pid = spawn_ctl(h, (const char * const[]) { "--json", "vnc", "vncd", NULL }, &sout, &serr);
        out[0] = 0;
        (void) read_until(sout, out, sizeof out, 0, "\n");
        {
                json_object *o = json_tokener_parse(out);
                char greeting[64] = "";
                int fd;

                assert_non_null(o);
                assert_string_equal(jstr(o, "name"), "vncd");
                assert_string_equal(jstr(o, "path"), path);
                assert_true(strlen(jstr(o, "socket")) < sizeof sa.sun_path);
                strcpy(sa.sun_path, jstr(o, "socket"));
                json_object_put(o);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
                (void) read_until(fd, greeting, sizeof greeting, 0, "\n");
                assert_string_equal(greeting, "RFB 003.008\n");
                close(fd);
        }
        assert_int_equal(stop_child(pid), 0);
        assert_true(access(sa.sun_path, F_OK) < 0);
        close(sout);
        close(serr);
        harness_domain_call(harness_bus_root(h), path, "Destroy");
}


int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domains),
                cmocka_unit_test(test_exit_codes),
                cmocka_unit_test(test_networks_nodedevs),
                cmocka_unit_test(test_storage),
                cmocka_unit_test(test_edit),
                cmocka_unit_test(test_console),
                cmocka_unit_test(test_completion),
                cmocka_unit_test(test_snapshots),
                cmocka_unit_test(test_console_piped),
                cmocka_unit_test(test_vol_transfer),
                cmocka_unit_test(test_monitor),
                cmocka_unit_test(test_addresses_and_saves),
        };
        static const struct CMUnitTest fake_tests[] = {
                cmocka_unit_test(test_nodedev_ops),
        };
        int r;

        HARNESS_SKIP_UNLESS_ROOT();
        static const struct CMUnitTest qemu_tests[] = {
                cmocka_unit_test_teardown(test_vnc_qemu, harness_teardown_qemus),
        };
        int q = 0;

        r = harness_run_group(tests, &(HarnessOptions) {});
        r = harness_run_group_on_fake_sysfs(fake_tests, &fake, "virtbusctl", NULL) || r;
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0)
                fprintf(stderr, "test-virtbusctl: qemu-system-x86_64 is not installed: vnc with QEMU not tested\n");
        else
                q = harness_run_group(qemu_tests, &(HarnessOptions) {
                        .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
        return r || q;
}
