/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage pools and volumes as D-Bus objects (test driver, real files, real qemu-img and polkitd): the
 * pool lifecycle and its persistence across a restart, raw and qcow2 volumes checked with qemu-img,
 * deletion, the name and symlink attacks, and what the example rules let group 'virtbus' do. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define POOL_INTERFACE "org.virtbus1.StoragePool"
#define VOL_INTERFACE "org.virtbus1.StorageVol"
#define ERR(name) "org.virtbus1.Error." name

static char *pool_xml(Harness *h, const char *name, const char *uuid) {
        char *xml = NULL;

        assert_true(asprintf(&xml, "<pool type='dir'><name>%s</name><uuid>%s</uuid><target><path>%s/pool-%s</path>"
                                   "</target></pool>", name, uuid, harness_dir(h), name) > 0);
        return xml;
}

static char *pool_dir(Harness *h, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/pool-%s", harness_dir(h), name) > 0);
        return p;
}

static char *define_pool(sd_bus *bus, const char *xml) {
        return harness_call_path(bus, M, "DefineStoragePool", "st", xml);
}

static char *create_vol(sd_bus *bus, const char *pool, const char *xml) {
        return harness_call_path(bus, pool, POOL_INTERFACE, "CreateVolume", "st", xml);
}

static void call_pool(sd_bus *bus, const char *path, const char *method) {
        sd_bus_message_unref(harness_call_ok(bus, path, POOL_INTERFACE, method, "t", UINT64_C(0)));
}

static int get_bool(sd_bus *bus, const char *path, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, POOL_INTERFACE, property, &e, 'b', &b), 0);
        return b;
}

static uint64_t get_u64(sd_bus *bus, const char *path, const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t v = 0;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, interface, property, &e, 't', &v), 0);
        return v;
}

static void test_pool_lifecycle(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = pool_xml(h, "life", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c01"), *dir = pool_dir(h, "life");
        _cleanup_free_ char *path = NULL, *raw = NULL, *qcow = NULL, *info = NULL, *file = NULL, *again = NULL;
        struct stat st;

        /* The test driver's simulated pool is there, active, in its runtime directory. */
        free(harness_call_path(root, M, "GetStoragePoolByName", "s", "default-pool"));

        path = define_pool(root, xml);
        harness_assert_introspection(root, path, "interfaces/org.virtbus1.StoragePool.xml");
        assert_int_equal(get_bool(root, path, "Active"), 0);
        assert_int_equal(get_bool(root, path, "Persistent"), 1);
        assert_string_equal(harness_get_string(root, path, POOL_INTERFACE, "Type"), "dir");
        assert_string_equal(harness_get_string(root, path, POOL_INTERFACE, "Path"), dir);
        harness_call_fails(root, ERR("InvalidState"), "Build makes it", path, POOL_INTERFACE, "Start", "t", UINT64_C(0));
        call_pool(root, path, "Build");
        assert_int_equal(stat(dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        call_pool(root, path, "Start");
        assert_int_equal(get_bool(root, path, "Active"), 1);
        assert_true(get_u64(root, path, POOL_INTERFACE, "Capacity") > 0);
        assert_int_equal(harness_set_property(root, path, POOL_INTERFACE, "Autostart", NULL, "b", 1), 1);

        /* A raw volume is a sparse file of the capacity. */
        raw = create_vol(root, path, "<volume><name>disk.img</name><capacity unit='MiB'>64</capacity></volume>");
        harness_assert_introspection(root, raw, "interfaces/org.virtbus1.StorageVol.xml");
        assert_true(asprintf(&file, "%s/disk.img", dir) > 0);
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_size, 64 << 20);
        assert_true(st.st_blocks < 64);
        info = harness_qemu_img_info(h, file);
        assert_non_null(strstr(info, "\"format\": \"raw\""));
        assert_non_null(strstr(info, "\"virtual-size\": 67108864"));
        free(info);
        assert_string_equal(harness_get_string(root, raw, VOL_INTERFACE, "Format"), "raw");
        assert_string_equal(harness_get_string(root, raw, VOL_INTERFACE, "Path"), file);
        again = harness_call_path(root, M, "GetStorageVolByPath", "s", file);
        assert_string_equal(again, raw);

        /* qcow2 by qemu-img. */
        qcow = create_vol(root, path, "<volume><name>vm.qcow2</name><capacity unit='GiB'>2</capacity>"
                                      "<target><format type='qcow2'/></target></volume>");
        free(file);
        assert_true(asprintf(&file, "%s/vm.qcow2", dir) > 0);
        info = harness_qemu_img_info(h, file);
        assert_non_null(strstr(info, "\"format\": \"qcow2\""));
        assert_non_null(strstr(info, "\"virtual-size\": 2147483648"));
        assert_int_equal(get_u64(root, qcow, VOL_INTERFACE, "Capacity"), UINT64_C(2147483648));
        assert_string_equal(harness_get_string(root, qcow, VOL_INTERFACE, "Format"), "qcow2");
        harness_call_fails(root, ERR("AlreadyExists"), "vm.qcow2", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>vm.qcow2</name><capacity>1</capacity></volume>", UINT64_C(0));
        harness_call_fails(root, ERR("NotSupported"), "vmdk", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>x.vmdk</name><capacity>1</capacity><target><format type='vmdk'/></target></volume>",
                           UINT64_C(0));

        /* Restart: the pool comes back active (autostart), with its volumes. */
        assert_int_equal(harness_daemon_restart(h), 0);
        root = harness_bus_root(h);
        assert_int_equal(get_bool(root, path, "Active"), 1);
        assert_int_equal(get_bool(root, path, "Autostart"), 1);
        assert_string_equal(harness_get_string(root, qcow, VOL_INTERFACE, "Name"), "vm.qcow2");

        /* Files others add appear at Refresh. */
        {
                _cleanup_free_ char *extra = NULL;
                int fd;

                assert_true(asprintf(&extra, "%s/added.img", dir) > 0);
                fd = open(extra, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                close(fd);
                sd_bus_message_unref(harness_call_ok(root, path, POOL_INTERFACE, "Refresh", ""));
                free(harness_call_path(root, path, POOL_INTERFACE, "GetVolumeByName", "s", "added.img"));
        }

        /* Delete removes the file; a pool with files cannot be deleted. */
        sd_bus_message_unref(harness_call_ok(root, qcow, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        assert_true(stat(file, &st) < 0);
        harness_call_fails(root, ERR("NoSuchStorageVol"), NULL, M, "GetStorageVolByPath", "s", file);
        call_pool(root, path, "Stop");
        harness_call_fails(root, ERR("InvalidState"), "not empty", path, POOL_INTERFACE, "Delete", "t", UINT64_C(0));
        call_pool(root, path, "Undefine");
        harness_call_fails(root, ERR("NoSuchStoragePool"), NULL, M, "GetStoragePoolByName", "s", "life");
}

static void test_attacks(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = pool_xml(h, "attack", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c02"), *dir = pool_dir(h, "attack");
        _cleanup_free_ char *path = NULL, *outside = NULL, *link = NULL;
        struct stat st;
        int fd;

        path = define_pool(root, xml);
        call_pool(root, path, "Build");
        call_pool(root, path, "Start");

        /* Names that are not plain file names. */
        harness_call_fails(root, ERR("InvalidXML"), "name", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>../escape.img</name><capacity>1</capacity></volume>", UINT64_C(0));
        harness_call_fails(root, SD_BUS_ERROR_INVALID_ARGS, "starts with '.'", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>.hidden</name><capacity>1</capacity></volume>", UINT64_C(0));
        harness_call_fails(root, ERR("InvalidXML"), "control", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>tab\there</name><capacity>1</capacity></volume>", UINT64_C(0));

        /* A symlink planted in the pool, to a file outside: not a volume, never written through. */
        assert_true(asprintf(&outside, "%s/outside.img", harness_dir(h)) > 0);
        fd = open(outside, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "secret", 6), 6);
        close(fd);
        assert_true(asprintf(&link, "%s/planted.img", dir) > 0);
        assert_int_equal(symlink(outside, link), 0);
        sd_bus_message_unref(harness_call_ok(root, path, POOL_INTERFACE, "Refresh", ""));
        harness_call_fails(root, ERR("NoSuchStorageVol"), NULL, path, POOL_INTERFACE, "GetVolumeByName", "s", "planted.img");
        harness_call_fails(root, ERR("AlreadyExists"), "already exists", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>planted.img</name><capacity unit='MiB'>1</capacity></volume>", UINT64_C(0));
        harness_call_fails(root, ERR("AlreadyExists"), "already exists", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>planted.img</name><capacity unit='MiB'>1</capacity>"
                           "<target><format type='qcow2'/></target></volume>", UINT64_C(0));
        assert_int_equal(stat(outside, &st), 0);
        assert_int_equal(st.st_size, 6);
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(unlink(link), 0);
        assert_int_equal(unlink(outside), 0);
        call_pool(root, path, "Stop");
        call_pool(root, path, "Delete");
        call_pool(root, path, "Undefine");
}

/* The example rules: group 'virtbus' creates and deletes volumes in pool 'default' only. */
static void test_group_virtbus(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *member = harness_bus_as(h, HARNESS_USER_VIRTBUS),
               *plain = harness_bus_as(h, HARNESS_USER_PLAIN);
        _cleanup_free_ char *dxml = pool_xml(h, "default", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c03"),
                            *oxml = pool_xml(h, "other", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c04");
        _cleanup_free_ char *def = NULL, *other = NULL, *vol = NULL;
        const char *vxml = "<volume><name>mine.qcow2</name><capacity unit='GiB'>1</capacity>"
                           "<target><format type='qcow2'/></target></volume>";

        def = define_pool(root, dxml);
        other = define_pool(root, oxml);
        call_pool(root, def, "Build");
        call_pool(root, def, "Start");
        call_pool(root, other, "Build");
        call_pool(root, other, "Start");

        vol = create_vol(member, def, vxml);
        harness_call_fails(member, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, other, POOL_INTERFACE,
                           "CreateVolume", "st", vxml, UINT64_C(0));
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, def, POOL_INTERFACE,
                           "CreateVolume", "st", vxml, UINT64_C(0));
        /* Nothing on the pools themselves. */
        harness_call_fails(member, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, def, POOL_INTERFACE, "Stop",
                           "t", UINT64_C(0));
        harness_call_fails(member, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, M, "DefineStoragePool", "st",
                           "<pool type='dir'><name>mine</name><target><path>/etc</path></target></pool>", UINT64_C(0));
        harness_call_fails(plain, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL, vol, VOL_INTERFACE, "Delete",
                           "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(member, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        for (const char *p, *const *pp = (const char *const[]) { def, other, NULL }; (p = *pp); pp++) {
                call_pool(root, p, "Stop");
                call_pool(root, p, "Delete");
                call_pool(root, p, "Undefine");
        }
}

/* VIRTBUS_TEST_STORAGE_HOLD for this test's virtbusd: while the file exists, pool Start, Stop and Refresh
 * wait before they touch the host (as on a slow or hung file system). */
static char hold_dir[] = "/tmp/virtbus-test-pool-hold-XXXXXX";
static char hold_file[sizeof hold_dir + 8];

static void pool_hold(bool hold) {
        harness_wrapper_flag(hold_dir, "hold", hold);
}

typedef struct Answer {
        int answered; /* 1 done, -1 an error */
        sd_bus_error error;
        char *path;   /* an "o" answer */
} Answer;

static int on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Answer *a = userdata;
        const char *o;

        if (sd_bus_message_is_method_error(m, NULL)) {
                a->answered = -1;
                (void) sd_bus_error_copy(&a->error, sd_bus_message_get_error(m));
                return 0;
        }
        if (strcmp(sd_bus_message_get_signature(m, true), "o") == 0 && sd_bus_message_read(m, "o", &o) > 0)
                a->path = strdup(o);
        a->answered = 1;
        return 0;
}

static void answer_wait(sd_bus *bus, Answer *a) {
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; a->answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(bus, NULL) == 0)
                        (void) sd_bus_wait(bus, 100000);
        if (a->answered < 0)
                fail_msg("%s: %s", a->error.name, a->error.message);
        assert_int_equal(a->answered, 1);
}

/* Not answered yet: what arrived so far is dispatched, and no answer is among it. */
static void answer_none(sd_bus *bus, const Answer *a) {
        while (sd_bus_process(bus, NULL) > 0)
                ;
        assert_int_equal(a->answered, 0);
}

/* A PropertiesChanged of the pool naming property, with value b. */
static void wait_changed_bool(HarnessWatch *w, const char *property, int b) {
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = harness_watch_next(w, HARNESS_TIMEOUT_USEC);
                const char *iface, *name;

                assert_non_null(s);
                assert_int_equal(sd_bus_message_read(s, "s", &iface), 1);
                assert_int_equal(sd_bus_message_enter_container(s, 'a', "{sv}"), 1);
                while (sd_bus_message_enter_container(s, 'e', "sv") > 0) {
                        int v = -1;

                        assert_int_equal(sd_bus_message_read(s, "s", &name), 1);
                        if (strcmp(name, property) != 0) {
                                assert_true(sd_bus_message_skip(s, "v") >= 0);
                        } else {
                                assert_int_equal(sd_bus_message_read(s, "v", "b", &v), 1);
                                assert_int_equal(v, b);
                                return;
                        }
                        assert_true(sd_bus_message_exit_container(s) >= 0);
                }
        }
}

static void touch(const char *dir, const char *name) {
        _cleanup_free_ char *f = NULL;

        assert_true(asprintf(&f, "%s/%s", dir, name) > 0);
        assert_int_equal(close(open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
}

/* Calls path's method (args: types "t" or "" or "st" with xml) until it answers error_name (DeviceBusy: the
 * work held meanwhile has been taken), failing the test on any other error. */
static void wait_for_error(sd_bus *bus, const char *path, const char *interface, const char *method, const char *types,
                           const char *xml, const char *error_name) {
        for (int i = 0;; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                assert_true(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, interface, method) >= 0);
                if (strcmp(types, "t") == 0)
                        assert_true(sd_bus_message_append(m, "t", UINT64_C(0)) >= 0);
                else if (strcmp(types, "st") == 0)
                        assert_true(sd_bus_message_append(m, "st", xml, UINT64_C(0)) >= 0);
                if (sd_bus_call(bus, m, 0, &e, NULL) < 0) {
                        if (sd_bus_error_has_name(&e, error_name))
                                return;
                        fail_msg("%s: %s %s", method, e.name, e.message);
                }
                assert_true(i < 500);
                usleep(10000);
        }
}

/* Start, Refresh and Stop (and CreateStoragePool) run off the event loop: while their host work is held
 * back, other calls are answered, the pool answers DeviceBusy to what would conflict, and its state and
 * signals change only when the work is done; then the call is answered. (They ran on the loop: every
 * caller waited for the pool's file system.) */
static void test_pool_work_off_loop(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = pool_xml(h, "slow", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c07"), *dir = pool_dir(h, "slow");
        _cleanup_free_ char *path = NULL, *vol = NULL, *txml = NULL, *tdir = pool_dir(h, "slowt");
        _cleanup_free_ char *vm = NULL, *hot = NULL;
        const char *disk = "<disk type='volume' device='disk'><source pool='slow' volume='there.img'/>"
                           "<target dev='vda' bus='virtio'/></disk>";
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        sd_bus *watcher = NULL;
        Answer a = { .error = SD_BUS_ERROR_NULL };

        path = define_pool(root, xml);
        call_pool(root, path, "Build");
        touch(dir, "there.img");
        assert_int_equal(harness_bus_open_as(h, HARNESS_USER_ROOT, &watcher), 0);
        w = harness_watch_signal(watcher, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");

        /* Start, held. */
        pool_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, path, POOL_INTERFACE, "Start", on_answer, &a,
                                             "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* Busy from the moment the call is taken: the next ones see it. */
        wait_for_error(root, path, POOL_INTERFACE, "Build", "t", NULL, ERR("DeviceBusy"));
        harness_call_fails(root, ERR("DeviceBusy"), "being started", path, POOL_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being started", path, POOL_INTERFACE, "Undefine", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being started", path, POOL_INTERFACE, "Delete", "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(root, M, "ListStoragePools", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, path, POOL_INTERFACE, "GetXMLDesc", "t", UINT64_C(0)));
        assert_int_equal(get_bool(root, path, "Active"), 0);
        answer_none(root, &a);
        assert_null(harness_watch_next(w, 0));
        pool_hold(false);
        answer_wait(root, &a);
        wait_changed_bool(w, "Active", 1);
        assert_int_equal(get_bool(root, path, "Active"), 1);
        free(harness_call_path(root, path, POOL_INTERFACE, "GetVolumeByName", "s", "there.img"));
        slot = sd_bus_slot_unref(slot);

        /* Refresh, held: the volumes stay as they were, none is made or deleted meanwhile. */
        touch(dir, "new.img");
        vol = harness_call_path(root, path, POOL_INTERFACE, "GetVolumeByName", "s", "there.img");
        a = (Answer) { .error = SD_BUS_ERROR_NULL };
        pool_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, path, POOL_INTERFACE, "Refresh", on_answer, &a,
                                             "") >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        wait_for_error(root, path, POOL_INTERFACE, "Refresh", "", NULL, ERR("DeviceBusy"));
        harness_call_fails(root, ERR("DeviceBusy"), "being refreshed", path, POOL_INTERFACE, "CreateVolume", "st",
                           "<volume><name>made.img</name><capacity>1</capacity></volume>", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being refreshed", vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being refreshed", path, POOL_INTERFACE, "Stop", "t", UINT64_C(0));
        harness_call_fails(root, ERR("NoSuchStorageVol"), NULL, path, POOL_INTERFACE, "GetVolumeByName", "s", "new.img");
        sd_bus_message_unref(harness_call_ok(root, path, POOL_INTERFACE, "ListVolumes", "t", UINT64_C(0)));
        answer_none(root, &a);
        pool_hold(false);
        answer_wait(root, &a);
        free(harness_call_path(root, path, POOL_INTERFACE, "GetVolumeByName", "s", "new.img"));
        slot = sd_bus_slot_unref(slot);

        /* Stop, held: still active, its volumes unusable, until it is done; also by domains (a start, a
         * hot-plug: the disk's file is about to go with the pool). */
        vm = harness_define_test_domain(root, "slowvm", disk);
        hot = harness_define_test_domain(root, "slowhot", "");
        harness_domain_call(root, hot, "Start");
        a = (Answer) { .error = SD_BUS_ERROR_NULL };
        pool_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, path, POOL_INTERFACE, "Stop", on_answer, &a,
                                             "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        wait_for_error(root, path, POOL_INTERFACE, "Stop", "t", NULL, ERR("DeviceBusy"));
        harness_call_fails(root, ERR("DeviceBusy"), "being stopped", vol, VOL_INTERFACE, "Resize", "tt", UINT64_C(4096),
                           UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "being stopped", path, POOL_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "Pool 'slow' is busy: it is being stopped", vm,
                           HARNESS_DOMAIN_INTERFACE, "Start", "t", UINT64_C(0));
        harness_call_fails(root, ERR("DeviceBusy"), "Pool 'slow' is busy: it is being stopped", hot,
                           HARNESS_DOMAIN_INTERFACE, "AttachDevice", "st", disk, UINT64_C(1));
        assert_string_equal(harness_get_string(root, vm, HARNESS_DOMAIN_INTERFACE, "State"), "shutoff");
        assert_int_equal(get_bool(root, path, "Active"), 1);
        sd_bus_message_unref(harness_call_ok(root, M, "ListStoragePools", "t", UINT64_C(0)));
        answer_none(root, &a);
        pool_hold(false);
        answer_wait(root, &a);
        wait_changed_bool(w, "Active", 0);
        assert_int_equal(get_bool(root, path, "Active"), 0);
        slot = sd_bus_slot_unref(slot);
        harness_call_fails(root, ERR("InvalidState"), "Pool 'slow' is not active", vm, HARNESS_DOMAIN_INTERFACE,
                           "Start", "t", UINT64_C(0));
        harness_domain_call(root, hot, "Destroy");
        harness_domain_call(root, hot, "Undefine");
        harness_domain_call(root, vm, "Undefine");

        /* CreateStoragePool (a transient pool started at once), held: answered with its path when started. */
        assert_int_equal(mkdir(tdir, 0700), 0);
        assert_true(asprintf(&txml, "<pool type='dir'><name>slowt</name><target><path>%s</path></target></pool>", tdir) > 0);
        a = (Answer) { .error = SD_BUS_ERROR_NULL };
        pool_hold(true);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE,
                                             "CreateStoragePool", on_answer, &a, "st", txml, UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        wait_for_error(root, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE, "CreateStoragePool", "st", txml,
                       ERR("AlreadyExists"));
        sd_bus_message_unref(harness_call_ok(root, M, "ListStoragePools", "t", UINT64_C(0)));
        answer_none(root, &a);
        pool_hold(false);
        answer_wait(root, &a);
        assert_non_null(a.path);
        assert_int_equal(get_bool(root, a.path, "Active"), 1);
        call_pool(root, a.path, "Stop");
        harness_call_fails(root, ERR("NoSuchStoragePool"), NULL, M, "GetStoragePoolByName", "s", "slowt");
        free(a.path);
        slot = sd_bus_slot_unref(slot);

        call_pool(root, path, "Undefine");
        sd_bus_flush_close_unref(watcher);
}

/* What one connection saw of a pool's volumes, in the order virtbusd sent it. */
typedef struct VolumeSignals {
        unsigned added, removed;
        int active_at_added;   /* the added count when Active changed (-1: not yet) */
        int active_at_removed; /* the removed count when it changed back */
        HarnessAnswer answer;
        unsigned added_at_answer, removed_at_answer;
} VolumeSignals;

static int on_vol_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        VolumeSignals *v = userdata;
        const char *path = NULL;

        if (sd_bus_message_read(m, "o", &path) < 0 || strncmp(path, "/org/virtbus1/storagevol/", 25) != 0)
                return 0;
        if (sd_bus_message_is_signal(m, NULL, "InterfacesAdded"))
                v->added++;
        else
                v->removed++;
        return 0;
}

static int on_pool_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        VolumeSignals *v = userdata;
        const char *iface, *name;

        if (sd_bus_message_read(m, "s", &iface) < 0 || sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                int b = -1;

                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (strcmp(name, "Active") == 0 && sd_bus_message_read(m, "v", "b", &b) > 0) {
                        if (b)
                                v->active_at_added = (int) v->added;
                        else
                                v->active_at_removed = (int) v->removed;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int on_vol_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        VolumeSignals *v = userdata;

        v->added_at_answer = v->added;
        v->removed_at_answer = v->removed;
        return harness_on_answer(m, &v->answer, ret_error);
}

static void call_counted(sd_bus *bus, const char *path, const char *method, VolumeSignals *v) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;

        v->answer = (HarnessAnswer) { .error = SD_BUS_ERROR_NULL };
        assert_true(sd_bus_call_method_async(bus, &slot, HARNESS_SERVICE, path, POOL_INTERFACE, method, on_vol_answer, v,
                                             "t", UINT64_C(0)) >= 0);
        harness_answer_wait(bus, &v->answer, HARNESS_TIMEOUT_USEC);
        if (v->answer.answered < 0)
                fail_msg("%s: %s: %s", method, v->answer.error.name, v->answer.error.message);
        assert_int_equal(v->answer.answered, 1);
}

/* A pool of 1500 files (several steps of the loop): Start announces every volume before Active changes and
 * before the answer; ListVolumes then lists them all; Stop removes every one before Active changes back
 * and before its answer. */
static void test_many_volumes_in_steps(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = pool_xml(h, "many", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c09"), *dir = pool_dir(h, "many");
        _cleanup_free_ char *path = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *removed = NULL, *changed = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *list = NULL;
        VolumeSignals v = { .active_at_added = -1, .active_at_removed = -1 };
        const char *o;
        unsigned n = 0;

        path = define_pool(root, xml);
        call_pool(root, path, "Build");
        for (unsigned i = 0; i < 1500; i++) {
                char name[32];

                snprintf(name, sizeof name, "v%04u.img", i);
                touch(dir, name);
        }
        assert_true(sd_bus_match_signal(root, &added, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_vol_signal, &v) >= 0);
        assert_true(sd_bus_match_signal(root, &removed, HARNESS_SERVICE, HARNESS_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", on_vol_signal, &v) >= 0);
        assert_true(sd_bus_match_signal(root, &changed, HARNESS_SERVICE, path, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_pool_changed, &v) >= 0);

        call_counted(root, path, "Start", &v);
        assert_int_equal(v.added_at_answer, 1500);
        assert_int_equal(v.active_at_added, 1500);
        list = harness_call_ok(root, path, POOL_INTERFACE, "ListVolumes", "t", UINT64_C(0));
        assert_int_equal(sd_bus_message_enter_container(list, 'a', "o"), 1);
        while (sd_bus_message_read(list, "o", &o) > 0)
                n++;
        assert_int_equal(n, 1500);
        free(harness_call_path(root, path, POOL_INTERFACE, "GetVolumeByName", "s", "v1499.img"));

        call_counted(root, path, "Stop", &v);
        assert_int_equal(v.removed_at_answer, 1500);
        assert_int_equal(v.active_at_removed, 1500);
        call_pool(root, path, "Undefine");
}

/* SIGTERM while a pool's Start is held in a system call that never returns (the hold is a FIFO that the
 * pool's thread opens: as a mount that hangs, nothing in virtbusd can cut it short): once virtbusd's stop has
 * waited its bound, the caller is answered "still running in the kernel" before virtbusd leaves the bus,
 * and virtbusd exits. (On the old code the thread was left to itself unanswered: the caller got NoReply
 * when virtbusd was gone.) */
/* Whether a thread of pid waits in the kernel for the other end of a FIFO it opens. */
static bool thread_in_fifo_open(pid_t pid) {
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        bool found = false;
        DIR *d;

        assert_true(asprintf(&dir, "/proc/%d/task", (int) pid) > 0);
        d = opendir(dir);
        if (!d)
                return false;
        while (!found && (de = readdir(d))) {
                _cleanup_free_ char *f = NULL, *w = NULL;

                if (de->d_name[0] == '.')
                        continue;
                assert_true(asprintf(&f, "%s/%s/wchan", dir, de->d_name) > 0);
                w = harness_read_file(f);
                found = w && strcmp(w, "wait_for_partner") == 0;
        }
        closedir(d);
        return found;
}

static void test_stop_answers_hung_start(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h);
        _cleanup_free_ char *xml = pool_xml(h, "hung", "5a0e3c1d-2b4f-4e6a-8c7d-9e0f1a2b3c08"), *path = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        HarnessAnswer a = { .error = SD_BUS_ERROR_NULL };
        int status;

        path = define_pool(root, xml);
        call_pool(root, path, "Build");
        (void) unlink(hold_file);
        assert_int_equal(mkfifo(hold_file, 0600), 0);
        assert_true(sd_bus_call_method_async(root, &slot, HARNESS_SERVICE, path, POOL_INTERFACE, "Start",
                                             harness_on_answer, &a, "t", UINT64_C(0)) >= 0);
        assert_true(sd_bus_flush(root) >= 0);
        /* Taken: busy, then its thread in the open of the FIFO (not merely queued: that would be answered
         * "not begun" at once). */
        wait_for_error(root, path, POOL_INTERFACE, "Build", "t", NULL, ERR("DeviceBusy"));
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC; !thread_in_fifo_open(harness_daemon_pid(h));) {
                assert_true(harness_now_usec() < end);
                usleep(10000);
        }
        while (sd_bus_process(root, NULL) > 0)
                ;
        assert_int_equal(a.answered, 0);

        assert_int_equal(kill(harness_daemon_pid(h), SIGTERM), 0);
        harness_answer_wait(root, &a, HARNESS_TIMEOUT_USEC);
        assert_int_equal(a.answered, -1);
        assert_string_equal(a.error.name, ERR("OperationFailed"));
        assert_non_null(strstr(a.error.message, "still running in the kernel"));
        assert_non_null(strstr(a.error.message, "'hung'"));
        status = harness_daemon_kill(h, 0);
        assert_true(status == 0 || status == -ESRCH);
        sd_bus_error_free(&a.error);
        assert_int_equal(unlink(hold_file), 0);
        slot = sd_bus_slot_unref(slot);

        /* Never started on the host: after a restart the pool is defined, inactive, and starts. */
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        root = harness_bus_root(h);
        assert_int_equal(get_bool(root, path, "Active"), 0);
        call_pool(root, path, "Start");
        call_pool(root, path, "Stop");
        call_pool(root, path, "Undefine");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pool_lifecycle),
                cmocka_unit_test(test_attacks),
                cmocka_unit_test(test_group_virtbus),
                cmocka_unit_test(test_pool_work_off_loop),
                cmocka_unit_test(test_many_volumes_in_steps),
                cmocka_unit_test(test_stop_answers_hung_start),
        };
        int r;

        assert_non_null(mkdtemp(hold_dir));
        snprintf(hold_file, sizeof hold_file, "%s/hold", hold_dir);
        assert_int_equal(setenv("VIRTBUS_TEST_STORAGE_HOLD", hold_file, 1), 0);
        r = harness_run_group(tests, &(HarnessOptions) {});
        (void) unlink(hold_file);
        (void) rmdir(hold_dir);
        return r;
}
