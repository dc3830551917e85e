/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A guest reaches only what its owner may reach (issue 21), with the real QEMU, the real polkitd and the
 * project's example rules (group 'virtbus' may manage domains):
 *   - a user in group virtbus cannot name /etc/shadow as a disk or have a serial port write into /etc;
 *     nothing is created there; a symlink of theirs to a root-only file does not help;
 *   - their own files work: the tiny guest boots from the user's own directory, sees the user's disk, and
 *     its console file is created by and for the user;
 *   - QEMU runs as 'virtbus-qemu' with no capabilities, and holds only descriptors it was given: a
 *     root-only image root hot-plugs works because virtbusd opened it, though QEMU's user cannot;
 *   - org.virtbus1.domain.host-files, granted by a rule for one path, lets that path through. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
#define DOMAIN_INTERFACE HARNESS_DOMAIN_INTERFACE
#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)
#define PROBE "/etc/virtbus-escalation-probe"

/* A directory of the virtbus user's own, 0700. */
static char *user_dir(Harness *h) {
        char *d;

        assert_true(asprintf(&d, "%s/user-files", harness_dir(h)) >= 0);
        if (mkdir(d, 0700) < 0)
                assert_int_equal(errno, EEXIST);
        assert_int_equal(chown(d, harness_user_uid(h, HARNESS_USER_VIRTBUS), harness_user_gid(h, HARNESS_USER_VIRTBUS)), 0);
        return d;
}

/* A raw image of 8 MiB at path, owned by uid, mode 0600. */
static void make_image(const char *path, uid_t uid, gid_t gid) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 8 << 20), 0);
        assert_int_equal(fchown(fd, uid, gid), 0);
        close(fd);
}

/* The tiny guest booted from the kernel and initrd in boot_dir (NULL: the shared, world-readable cache). */
static char *guest_domain_from(Harness *h, const char *boot_dir, const char *name, const char *serial,
                               const char *devices) {
        const char *g = boot_dir ?: harness_guest_dir(h);
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>192</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet panic=-1</cmdline></os>"
                             "<features><acpi/></features><devices>"
                             "<serial type='file'><source path='%s'/><target port='0'/></serial>%s"
                             "</devices></domain>",
                             name, g, g, serial, devices ?: "") >= 0);
        return x;
}

static char *guest_domain(Harness *h, const char *name, const char *serial, const char *devices) {
        return guest_domain_from(h, NULL, name, serial, devices);
}

/* Copies of the guest's kernel and initrd in dir, the user's own and readable by nobody else. */
static void copy_boot_files(Harness *h, const char *dir) {
        _cleanup_free_ char *cmd = NULL;
        HarnessResult res = {};

        assert_true(asprintf(&cmd, "cp %s/vmlinuz %s/initrd.gz %s/ && chown %u:%u %s/vmlinuz %s/initrd.gz && "
                                   "chmod 0600 %s/vmlinuz %s/initrd.gz",
                             harness_guest_dir(h), harness_guest_dir(h), dir, (unsigned) harness_user_uid(h, HARNESS_USER_VIRTBUS),
                             (unsigned) harness_user_gid(h, HARNESS_USER_VIRTBUS), dir, dir, dir, dir) >= 0);
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char *[]) { "/bin/sh", "-c", cmd, NULL }, NULL,
                                     30 * HARNESS_USEC_PER_SEC, &res), 0);
        assert_int_equal(res.status, 0);
        harness_result_done(&res);
}

static char *disk_xml(const char *image, const char *target, bool readonly) {
        char *x;
        assert_true(asprintf(&x, "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                                 "<target dev='%s' bus='virtio'/>%s</disk>",
                             image, target, readonly ? "<readonly/>" : "") >= 0);
        return x;
}

static void test_escalation_refused(void **state) {
        Harness *h = *state;
        sd_bus *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *dir = user_dir(h), *serial = NULL, *shadow_disk = disk_xml("/etc/shadow", "vda", true);
        _cleanup_free_ char *x1 = NULL, *x2 = NULL, *x3 = NULL, *link = NULL, *link_disk = NULL;

        (void) unlink(PROBE);
        assert_true(asprintf(&serial, "%s/console.log", dir) >= 0);
        /* A serial port writing into /etc. */
        x1 = guest_domain(h, "esc-serial", PROBE, NULL);
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", PROBE, M, "DefineDomain", "st", x1,
                           UINT64_C(0));
        /* /etc/shadow as a disk, even read-only. */
        x2 = guest_domain(h, "esc-disk", serial, shadow_disk);
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", "/etc/shadow", M, "DefineDomain", "st", x2,
                           UINT64_C(0));
        /* Nor through a symlink of the user's own. */
        assert_true(asprintf(&link, "%s/innocent.img", dir) >= 0);
        (void) unlink(link);
        assert_int_equal(symlink("/etc/shadow", link), 0);
        assert_int_equal(lchown(link, harness_user_uid(h, HARNESS_USER_VIRTBUS), harness_user_gid(h, HARNESS_USER_VIRTBUS)), 0);
        link_disk = disk_xml(link, "vda", true);
        x3 = guest_domain(h, "esc-link", serial, link_disk);
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", link, M, "DefineDomain", "st", x3,
                           UINT64_C(0));
        /* CreateDomain (define and start at once) is held to the same. */
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", "/etc/shadow", M, "CreateDomain", "st", x2,
                           UINT64_C(0));
        assert_int_equal(access(PROBE, F_OK), -1);
        assert_int_equal(errno, ENOENT);
}

/* Every capability set of pid is empty, and its uid is QEMU's user. */
static void assert_unprivileged(pid_t pid) {
        char path[64];
        _cleanup_free_ char *status = NULL;
        struct passwd *pw = getpwnam("virtbus-qemu");
        unsigned uid[4];
        const char *p;

        assert_non_null(pw);
        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        status = harness_read_file(path);
        assert_non_null(status);
        p = strstr(status, "\nUid:");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "\nUid: %u %u %u %u", &uid[0], &uid[1], &uid[2], &uid[3]), 4);
        for (size_t i = 0; i < 4; i++)
                assert_int_equal(uid[i], pw->pw_uid);
        for (const char *const *cap = (const char *const[]) { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", NULL };
             *cap; cap++) {
                char key[32];
                snprintf(key, sizeof key, "\n%s:\t0000000000000000", *cap);
                if (!strstr(status, key))
                        fail_msg("%s of QEMU is not empty:\n%s", *cap, status);
        }
        assert_non_null(strstr(status, "\nNoNewPrivs:\t1"));
}

/* Every open file of pid is a descriptor it was given: the allowed paths, memory files, devices, sockets
 * and pipes; nothing it opened by a path of its own outside /usr. */
static void assert_only_given(pid_t pid, const char * const *allowed) {
        char dir[64], link[PATH_MAX], target[PATH_MAX];
        DIR *d;
        struct dirent *de;

        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d))) {
                bool ok = false;
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                n = readlink(link, target, sizeof target - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                if (target[0] != '/' || strncmp(target, "/memfd:", 7) == 0 || strncmp(target, "/dev/", 5) == 0 ||
                    strncmp(target, "/usr/", 5) == 0)
                        ok = true;
                for (size_t i = 0; allowed[i] && !ok; i++)
                        ok = streq(target, allowed[i]);
                if (!ok)
                        fail_msg("QEMU has '%s' open, which it was not given", target);
        }
        closedir(d);
}

static void test_own_files(void **state) {
        Harness *h = *state;
        sd_bus *user = harness_bus_as(h, HARNESS_USER_VIRTBUS), *root = harness_bus_root(h);
        uid_t uid = harness_user_uid(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *dir = user_dir(h), *serial = NULL, *image = NULL, *disk = NULL, *xml = NULL,
                            *path = NULL, *uuid = NULL, *secret = NULL, *secret_disk = NULL, *qemu_cat = NULL;
        struct stat st;
        pid_t pid;

        assert_true(asprintf(&serial, "%s/console.log", dir) >= 0);
        assert_true(asprintf(&image, "%s/disk.img", dir) >= 0);
        (void) unlink(serial);
        make_image(image, uid, harness_user_gid(h, HARNESS_USER_VIRTBUS));
        /* Kernel and initrd only the user may read: QEMU gets memory copies. */
        copy_boot_files(h, dir);
        disk = disk_xml(image, "vda", false);
        xml = guest_domain_from(h, dir, "own-files", serial, disk);
        path = harness_define_domain(user, xml);
        harness_domain_call(user, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda", 1, GUEST_TIMEOUT_USEC);
        /* The console file was made by and for the user. */
        assert_int_equal(stat(serial, &st), 0);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_mode & 0777, 0600);

        uuid = strdup(harness_get_string(root, path, DOMAIN_INTERFACE, "UUID"));
        pid = harness_qemu_pid(h, uuid);
        assert_true(pid > 0);
        assert_unprivileged(pid);
        {
                _cleanup_free_ char *log = NULL;
                assert_true(asprintf(&log, "%s/qemu/log/own-files.log", harness_state_dir(h)) >= 0);
                /* log: its stdout; the kernel and initrd: memory copies (/memfd:) */
                assert_only_given(pid, (const char *[]) { image, serial, log, NULL });
        }

        /* Root hot-plugs a file only root may read: it works, because virtbusd opened it... */
        assert_true(asprintf(&secret, "%s/root-only.img", harness_dir(h)) >= 0);
        make_image(secret, 0, 0);
        secret_disk = disk_xml(secret, "vdb", true);
        sd_bus_message_unref(harness_call_ok(root, path, DOMAIN_INTERFACE, "AttachDevice", "st", secret_disk,
                                             UINT64_C(1)));
        harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda vdb", 1, GUEST_TIMEOUT_USEC);
        assert_true(harness_process_has_open(pid, secret));
        /* ...while QEMU's user may not open it by path. */
        {
                HarnessResult res = {};
                const char *argv[] = { "/usr/sbin/runuser", "-u", "virtbus-qemu", "--", "/bin/cat", secret, NULL };
                assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, 10 * HARNESS_USEC_PER_SEC, &res), 0);
                assert_int_not_equal(res.status, 0);
                harness_result_done(&res);
        }
        /* The user may not hot-plug it. */
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", secret, path, DOMAIN_INTERFACE,
                           "AttachDevice", "st", secret_disk, UINT64_C(1));
        harness_domain_call(root, path, "Destroy");
        sd_bus_message_unref(harness_call_ok(user, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        unlink(secret);
}

/* An administrator's rule allows one root-only path to the group: that path goes through, no other. */
static void test_host_files_grant(void **state) {
        Harness *h = *state;
        sd_bus *user = harness_bus_as(h, HARNESS_USER_VIRTBUS), *root = harness_bus_root(h);
        _cleanup_free_ char *dir = user_dir(h), *serial = NULL, *allowed = NULL, *rule = NULL, *disk = NULL,
                            *xml = NULL, *path = NULL, *other = NULL, *other_xml = NULL;

        assert_true(asprintf(&serial, "%s/grant.log", dir) >= 0);
        assert_true(asprintf(&allowed, "%s/shared-iso.img", harness_dir(h)) >= 0);
        make_image(allowed, 0, 0);
        assert_true(asprintf(&rule,
                             "polkit.addRule(function(action, subject) {\n"
                             "  if (action.id == 'org.virtbus1.domain.host-files' && subject.isInGroup('virtbus') &&\n"
                             "      action.lookup('path') == '%s' && action.lookup('domain') == 'granted')\n"
                             "    return polkit.Result.YES;\n"
                             "});\n",
                             allowed) >= 0);
        assert_int_equal(harness_polkit_add_rules(h, "host-files", rule), 0);
        disk = disk_xml(allowed, "vda", true);
        xml = guest_domain(h, "granted", serial, disk);
        /* Rules take effect within a second. */
        for (int i = 0; i < 50; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                if (sd_bus_call_method(user, "org.virtbus1", M, "DefineDomain", &e, &reply, "st", xml, UINT64_C(0)) >= 0) {
                        const char *p;
                        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
                        path = strdup(p);
                        sd_bus_message_unref(reply);
                        break;
                }
                sd_bus_error_free(&e);
                usleep(100 * 1000);
        }
        assert_non_null(path);
        harness_domain_call(user, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda", 1, GUEST_TIMEOUT_USEC);
        harness_domain_call(root, path, "Destroy");
        /* Autostart's way: started again by the service alone, with what was recorded at Define. */
        harness_domain_call(root, path, "Start");
        harness_wait_for_text(serial, "VIRTBUS-GUEST-DISKS: vda", 1, GUEST_TIMEOUT_USEC);
        harness_domain_call(root, path, "Destroy");
        /* The rule names one path: another root-only file is still refused. */
        assert_true(asprintf(&other, "%s/other.img", harness_dir(h)) >= 0);
        make_image(other, 0, 0);
        free(disk);
        disk = disk_xml(other, "vda", true);
        other_xml = guest_domain(h, "granted", serial, disk);
        harness_call_fails(user, "org.freedesktop.DBus.Error.AccessDenied", other, M, "DefineDomain", "st", other_xml,
                           UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(user, path, DOMAIN_INTERFACE, "Undefine", "t", UINT64_C(0)));
        unlink(allowed);
        unlink(other);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_escalation_refused, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_own_files, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_host_files_grant, harness_teardown_qemus),
        };
        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-confine: qemu-system-x86_64 is not installed (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
