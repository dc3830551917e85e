/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Volumes as disks with the real QEMU and the tiny guest (tests/guest), as a user of group 'virtbus'
 * (the example rules grant domain.manage, domain.console, and storage.manage for volumes in 'default'):
 *   - the qemu driver's pool 'default' at <state>/images, defined, started and autostarted, once (an
 *     administrator who removes it does not get it back at the next start);
 *   - a guest boots with <disk type='volume'> naming the user's 0600 volume of 'default' and sees a block
 *     device of the volume's size; another volume hot-plugged likewise;
 *   - deleting a volume a running domain uses is DeviceBusy naming the domain; a volume of a pool the
 *     user may not use is refused at Define. */
#include <sys/stat.h>

#include "console-util.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define POOL_INTERFACE "org.virtbus1.StoragePool"
#define VOL_INTERFACE "org.virtbus1.StorageVol"
#define ERR(name) "org.virtbus1.Error." name
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static char *volume_disk(const char *pool, const char *volume, const char *target) {
        char *x;

        assert_true(asprintf(&x, "<disk type='volume' device='disk'><source pool='%s' volume='%s'/>"
                                 "<target dev='%s' bus='virtio'/></disk>", pool, volume, target) >= 0);
        return x;
}

/* The guest's answer to "cat /sys/block/DEV/size" (512-byte sectors). */
static void assert_guest_sectors(int console, const char *dev, uint64_t sectors) {
        static char buf[65536];
        char cmd[128], want[64];

        snprintf(cmd, sizeof cmd, "echo VIRTBUS-SIZE-$(cat /sys/block/%s/size)-END\n", dev);
        snprintf(want, sizeof want, "VIRTBUS-SIZE-%" PRIu64 "-END", sectors);
        console_write(console, cmd);
        buf[0] = 0;
        if (!console_read_until(console, buf, sizeof buf, want, 30 * HARNESS_USEC_PER_SEC))
                fail_msg("the guest did not say '%s'; it said: %s", want, buf);
}

static void test_volume_disks(void **state) {
        Harness *h = *state;
        sd_bus *root = harness_bus_root(h), *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *pool = NULL, *images = NULL, *vol = NULL, *hot = NULL, *disk = NULL, *hot_disk = NULL,
                            *xml = NULL, *path = NULL, *other = NULL, *other_xml = NULL, *bad = NULL, *bad_disk = NULL,
                            *other_dir = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        static char buf[65536];
        struct stat st;
        int console;

        /* The qemu driver's pool. */
        pool = harness_call_path(root, M, "GetStoragePoolByName", "s", "default");
        assert_true(asprintf(&images, "%s/images", harness_state_dir(h)) >= 0);
        assert_string_equal(harness_get_string(root, pool, POOL_INTERFACE, "Path"), images);
        {
                int active = 0, autostart = 0;
                assert_true(sd_bus_get_property_trivial(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "Active", &e, 'b',
                                                        &active) >= 0);
                assert_true(sd_bus_get_property_trivial(root, HARNESS_SERVICE, pool, POOL_INTERFACE, "Autostart", &e, 'b',
                                                        &autostart) >= 0);
                assert_true(active && autostart);
        }

        /* A volume made by the user through the service: the user's file, 0600, in root's directory. */
        vol = harness_call_path(user, pool, POOL_INTERFACE, "CreateVolume", "st",
                                "<volume><name>guest.img</name><capacity unit='MiB'>24</capacity></volume>");
        assert_int_equal(stat(harness_get_string(root, vol, VOL_INTERFACE, "Path"), &st), 0);
        assert_int_equal(st.st_uid, harness_user_uid(h, HARNESS_USER_VIRTBUS));
        assert_int_equal(st.st_mode & 0777, 0600);

        /* A volume of a pool the rules do not give the user: refused at Define. */
        assert_true(asprintf(&other_dir, "%s/pool-other", harness_dir(h)) >= 0);
        assert_true(mkdir(other_dir, 0711) >= 0 || errno == EEXIST);
        assert_true(asprintf(&other_xml, "<pool type='dir'><name>other</name><target><path>%s</path></target></pool>",
                             other_dir) >= 0);
        other = harness_call_path(root, M, "CreateStoragePool", "st", other_xml);
        sd_bus_message_unref(harness_call_ok(root, other, POOL_INTERFACE, "CreateVolume", "st",
                                             "<volume><name>root.img</name><capacity>1048576</capacity></volume>",
                                             UINT64_C(0)));
        bad_disk = volume_disk("other", "root.img", "vda");
        bad = harness_shell_guest_xml(h, "vol-refused", bad_disk);
        harness_call_fails(user, SD_BUS_ERROR_ACCESS_DENIED, "volume 'root.img' of pool 'other'", M, "DefineDomain",
                           "st", bad, UINT64_C(0));

        /* The user's guest with the volume as vda. */
        disk = volume_disk("default", "guest.img", "vda");
        xml = harness_shell_guest_xml(h, "vol-guest", disk);
        path = harness_define_domain(user, xml);
        sd_bus_message_unref(harness_call_ok(user, path, HARNESS_DOMAIN_INTERFACE, "Start", "t", UINT64_C(1)));
        console = console_open(user, path, "", 0, &e);
        assert_true(console >= 0);
        harness_domain_call(user, path, "Resume");
        buf[0] = 0;
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        assert_guest_sectors(console, "vda", 24 * 2048);

        /* In use: not deleted. */
        harness_call_fails(user, ERR("DeviceBusy"), "'vol-guest'", vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0));
        harness_call_fails(user, ERR("DeviceBusy"), "'vol-guest'", vol, VOL_INTERFACE, "Wipe", "t", UINT64_C(0));
        harness_call_fails(user, ERR("DeviceBusy"), "'vol-guest'", vol, VOL_INTERFACE, "Resize", "tt", UINT64_C(1) << 30,
                           UINT64_C(0));

        /* Hot-plugged by pool and volume name. */
        hot = harness_call_path(user, pool, POOL_INTERFACE, "CreateVolume", "st",
                                "<volume><name>hot.img</name><capacity unit='MiB'>8</capacity></volume>");
        hot_disk = volume_disk("default", "hot.img", "vdb");
        sd_bus_message_unref(harness_call_ok(user, path, HARNESS_DOMAIN_INTERFACE, "AttachDevice", "st", hot_disk,
                                             UINT64_C(1)));
        buf[0] = 0;
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-DISKS: vda vdb", GUEST_TIMEOUT_USEC));
        assert_guest_sectors(console, "vdb", 8 * 2048);
        harness_call_fails(user, ERR("DeviceBusy"), "'vol-guest'", hot, VOL_INTERFACE, "Delete", "t", UINT64_C(0));

        harness_domain_call(user, path, "Destroy");
        close(console);
        sd_bus_message_unref(harness_call_ok(user, vol, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(user, hot, VOL_INTERFACE, "Delete", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(user, path, HARNESS_DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(root, other, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
}

/* The pool 'default' comes once: kept over a restart, and not made again after an administrator
 * removed it. */
static void test_default_pool_once(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *pool = NULL;

        assert_int_equal(harness_daemon_restart(h), 0);
        pool = harness_call_path(harness_bus_root(h), M, "GetStoragePoolByName", "s", "default");
        sd_bus_message_unref(harness_call_ok(harness_bus_root(h), pool, POOL_INTERFACE, "Stop", "t", UINT64_C(0)));
        sd_bus_message_unref(harness_call_ok(harness_bus_root(h), pool, POOL_INTERFACE, "Undefine", "t", UINT64_C(0)));
        assert_int_equal(harness_daemon_restart(h), 0);
        harness_call_fails(harness_bus_root(h), ERR("NoSuchStoragePool"), NULL, M, "GetStoragePoolByName", "s",
                           "default");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_volume_disks, harness_teardown_qemus),
                cmocka_unit_test(test_default_pool_once),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-storage: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
