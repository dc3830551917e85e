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
#include <sys/stat.h>
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
                                        "<os><type>hvm</type></os><devices>" SERIAL "</devices></domain>");
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
        assert_non_null(strstr(r.err, "element 'domain'")); /* the service's sentence */
        harness_result_done(&r);
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "setmem", "test", "lots"), 3);
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

static void test_nodedev_ops(void **state) {
        Harness *h = *state;
        HarnessResult r = {};

        free(CTL_OK(h, "nodedev-detach", "pci_0000_03_10_2", "--driver", "vfio-pci"));
        free(CTL_OK(h, "nodedev-reset", "pci_0000_03_10_2"));
        free(CTL_OK(h, "nodedev-reattach", "pci_0000_03_10_2"));
        assert_int_equal(CTL(h, HARNESS_USER_ROOT, &r, "nodedev-reset", "pci_9999_00_00_0"), 4);
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
        };

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
        };
        static const struct CMUnitTest fake_tests[] = {
                cmocka_unit_test(test_nodedev_ops),
        };
        HarnessFakeSysfs fake = {};
        int r;

        HARNESS_SKIP_UNLESS_ROOT();
        r = harness_run_group(tests, &(HarnessOptions) {});
        return harness_run_group_on_fake_sysfs(fake_tests, &fake, "virtbusctl", NULL) || r;
}
