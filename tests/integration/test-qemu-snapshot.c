/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal snapshots with the qemu driver:
 *  - stopped, real qemu-img: a qcow2 disk gets a marker (qemu-io), a snapshot, another marker; Revert
 *    brings the first back; Delete drops the snapshot from the image; a restart finds the snapshot again.
 *    A raw disk answers NotSupported. A disk over a backing file: the snapshot goes into its own image.
 *  - running, QMP jobs, the tiny guest (tests/guest) with a shell on its console: the guest writes a
 *    marker to its qcow2 disk and keeps a value in a shell variable; a snapshot; both change; Revert (live)
 *    and the guest goes on from the snapshot point (the old value, the old marker read from the disk, no
 *    boot banner); the same after Destroy (the domain is started from the snapshot, not booted); a restart
 *    of virtbusd, Delete on the running domain removes it from the image.
 *  - saved state, the same guest: ManagedSave writes <state>/qemu/save/<uuid>.save, Start resumes the guest
 *    from it (its shell variable still set, no boot banner) and removes it; Save into a pipe (a child
 *    copies it into a file), RestoreDomain from a pipe (a child feeds it), the guest again going on.
 *  - disk-only snapshots and hot-plug: a disk with a chain detached leaves no block node and no
 *    descriptor set in QEMU (asked over QMP while no virtbusd runs); a qcow2 overlay attached with its
 *    <backingStore> is read through to its backing image by the guest; a disk the guest released while no
 *    virtbusd ran (device_del over QMP) is gone from the live definition at reconnection, its images
 *    closed.
 *  - live merges of two disks: a pivot that fails (injected) on the first disk changes nothing, on the
 *    second leaves the first merged and recorded (definitions, snapshot metadata, files); a merge cut by
 *    kill -9 of virtbusd is settled by the next one from what QEMU runs (the overlay of a disk QEMU had
 *    pivoted removed); a merge of a paused guest over the image it started with. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console-util.h"
#include "harness.h"

#define D HARNESS_DOMAIN_INTERFACE
#define S "org.virtbus1.DomainSnapshot"
#define ERR(name) "org.virtbus1.Error." name
#define TIMEOUT (30 * HARNESS_USEC_PER_SEC)

/* Runs argv as root; its exit status, with its stdout in *ret_out (to free) when non-NULL. */
static int run(Harness *h, const char * const *argv, char **ret_out) {
        HarnessResult res = {};
        int status;

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, TIMEOUT, &res), 0);
        status = res.status;
        if (ret_out)
                *ret_out = strdup(res.out ?: "");
        harness_result_done(&res);
        return status;
}

/* Whether the first 64 KiB of the image hold byte pattern (qemu-io read -P). */
static bool has_pattern(Harness *h, const char *disk, const char *pattern) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;

        assert_true(asprintf(&cmd, "read -P %s 0 64k", pattern) > 0);
        /* qemu-io says "Pattern verification failed" (and exits 1 from 7.2 on) when it differs. */
        return run(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", cmd, disk, NULL }, &out) == 0 &&
               !strstr(out, "Pattern verification failed");
}

static void write_pattern(Harness *h, const char *disk, const char *pattern) {
        _cleanup_free_ char *cmd = NULL;

        assert_true(asprintf(&cmd, "write -P %s 0 64k", pattern) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-io", "-f", "qcow2", "-c", cmd, disk, NULL }, NULL), 0);
}

static char *sha256(Harness *h, const char *file);

static bool image_has_snapshot(Harness *h, const char *disk, const char *name) {
        _cleanup_free_ char *out = NULL;

        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "snapshot", "-l", disk, NULL }, &out), 0);
        return strstr(out, name) != NULL;
}

static char *domain_xml(const char *name, const char *format, const char *file) {
        char *x;

        assert_true(asprintf(&x, "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                                 "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                                 "<disk type='file' device='disk'><driver name='qemu' type='%s'/><source file='%s'/>"
                                 "<target dev='vda' bus='virtio'/></disk></devices></domain>", name, format, file) > 0);
        return x;
}

static void test_stopped_qcow2(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *disk = NULL, *raw = NULL, *xml = NULL, *raw_xml = NULL, *dom = NULL, *raw_dom = NULL,
                            *snap = NULL;
        sd_bus_message *reply;
        const char *o;

        assert_true(asprintf(&disk, "%s/snap-disk.qcow2", harness_dir(h)) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M", NULL },
                             NULL), 0);
        write_pattern(h, disk, "0x41");
        xml = domain_xml("snapq", "qcow2", disk);
        dom = harness_define_domain(bus, xml);

        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", "<domainsnapshot><name>before</name></domainsnapshot>",
                                UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        snap = strdup(o);
        sd_bus_message_unref(reply);
        assert_true(image_has_snapshot(h, disk, "before"));
        assert_string_equal(harness_get_string(bus, snap, S, "State"), "shutoff");

        write_pattern(h, disk, "0x42");
        assert_false(has_pattern(h, disk, "0x41"));
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Revert", "t", UINT64_C(0)));
        assert_true(has_pattern(h, disk, "0x41"));

        /* Found again after a restart, and deleted from the image. */
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        assert_string_equal(harness_get_string(bus, snap, S, "Name"), "before");
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Delete", "t", UINT64_C(0)));
        assert_false(image_has_snapshot(h, disk, "before"));

        /* A raw disk cannot hold one. */
        assert_true(asprintf(&raw, "%s/snap-disk.raw", harness_dir(h)) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "raw", raw, "1M", NULL },
                             NULL), 0);
        raw_xml = domain_xml("snapraw", "raw", raw);
        raw_dom = harness_define_domain(bus, raw_xml);
        harness_call_fails(bus, ERR("NotSupported"), "qcow2", raw_dom, D, "CreateSnapshot", "st",
                           "<domainsnapshot><name>x</name></domainsnapshot>", UINT64_C(0));
        harness_domain_call(bus, dom, "Undefine");
        harness_domain_call(bus, raw_dom, "Undefine");
}

/* Internal snapshots of a shut-off domain whose qcow2 disk has a backing file: the snapshot goes into the
 * disk's own image (qemu-img is told not to open the backing file), Revert and Delete work on it, the
 * backing image is left alone. */
static void test_stopped_backing(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *base = NULL, *over = NULL, *xml = NULL, *dom = NULL, *snap = NULL, *sum = NULL,
                            *sum2 = NULL;
        sd_bus_message *reply;
        const char *o;

        assert_true(asprintf(&base, "%s/back-base.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&over, "%s/back-over.qcow2", harness_dir(h)) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", base, "16M", NULL },
                             NULL), 0);
        write_pattern(h, base, "0x41");
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F",
                                                   "qcow2", over, NULL }, NULL), 0);
        write_pattern(h, over, "0x42");
        sum = sha256(h, base);
        assert_true(asprintf(&xml, "<domain type='qemu'><name>snapback</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                                   "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                                   "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                                   "<backingStore type='file'><format type='qcow2'/><source file='%s'/></backingStore>"
                                   "<target dev='vda' bus='virtio'/></disk></devices></domain>", over, base) > 0);
        dom = harness_define_domain(bus, xml);

        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", "<domainsnapshot><name>inside</name></domainsnapshot>",
                                UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        snap = strdup(o);
        sd_bus_message_unref(reply);
        assert_string_equal(harness_get_string(bus, snap, S, "Kind"), "internal");
        assert_true(image_has_snapshot(h, over, "inside"));
        assert_false(image_has_snapshot(h, base, "inside"));

        write_pattern(h, over, "0x43");
        assert_false(has_pattern(h, over, "0x42"));
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Revert", "t", UINT64_C(0)));
        assert_true(has_pattern(h, over, "0x42"));
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Delete", "t", UINT64_C(0)));
        assert_false(image_has_snapshot(h, over, "inside"));
        sum2 = sha256(h, base);
        assert_string_equal(sum, sum2);
        harness_domain_call(bus, dom, "Undefine");
}

#define GUEST_TIMEOUT_USEC (120 * HARNESS_USEC_PER_SEC)

static char *guest_xml(Harness *h, const char *name, const char *disk) {
        _cleanup_free_ char *d = NULL;

        assert_true(asprintf(&d,
                             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                             "<target dev='vda' bus='virtio'/></disk>",
                             disk) >= 0);
        return harness_shell_guest_xml(h, name, d);
}

/* Sends a command line to the guest's shell and waits for want in what it prints (buf: what it printed,
 * from the command on). */
static void guest_say(int console, const char *cmd, const char *want, char *buf, size_t size) {
        buf[0] = 0;
        assert_int_equal(write(console, cmd, strlen(cmd)), (ssize_t) strlen(cmd));
        if (!console_read_until(console, buf, size, want, GUEST_TIMEOUT_USEC))
                fail_msg("the guest did not say '%s'; it said: %s", want, buf);
}

/* What the guest sees: its shell variable and the disk's first bytes, read past its page cache. */
static void guest_sees(int console, const char *value, const char *marker) {
        _cleanup_free_ char *want = NULL;
        char buf[16384];

        assert_true(asprintf(&want, "SEEN=%s,%s.", value, marker) > 0);
        guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$X,$(dd if=/dev/vda bs=10 count=1 2>/dev/null).\n",
                  want, buf, sizeof buf);
        /* It went on from where it was: no boot since. */
        if (strstr(buf, "VIRTBUS-GUEST-BOOTED"))
                fail_msg("the guest booted again: %s", buf);
}

static void guest_writes(int console, const char *value, const char *marker) {
        _cleanup_free_ char *cmd = NULL, *want = NULL;
        char buf[16384];

        assert_true(asprintf(&want, "WROTE-%s", value) > 0);
        assert_true(asprintf(&cmd, "X=%s; printf %s | dd of=/dev/vda conv=fsync 2>/dev/null; echo WROTE-$X\n", value,
                             marker) > 0);
        guest_say(console, cmd, want, buf, sizeof buf);
}

/* Defines and starts domain name on a new 16 MiB qcow2 disk (file), waits for its shell and has it write
 * word (marker) on that disk; returns the console (ret_dom: the domain's path). */
static int start_guest(Harness *h, const char *name, const char *disk, const char *word, const char *marker,
                       char **ret_dom) {
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *xml = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;

        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", disk, "16M", NULL },
                             NULL), 0);
        xml = guest_xml(h, name, disk);
        *ret_dom = harness_define_domain(bus, xml);
        harness_domain_call(bus, *ret_dom, "Start");
        console = console_open(bus, *ret_dom, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        guest_writes(console, word, marker);
        return console;
}

static void test_running_guest(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *disk = NULL, *dom = NULL, *snap = NULL;
        _cleanup_(harness_watch_freep) HarnessWatch *progress = NULL;
        uint64_t done = 0, total = 0;
        size_t n_progress = 0;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply;
        const char *o;
        int console;

        assert_true(asprintf(&disk, "%s/live-disk.qcow2", harness_dir(h)) > 0);
        console = start_guest(h, "snaplive", disk, "one", "MARKER-ONE", &dom);

        progress = harness_watch_signal(bus, dom, D, "Progress");
        reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", "<domainsnapshot><name>live</name></domainsnapshot>",
                                UINT64_C(0));
        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        snap = strdup(o);
        sd_bus_message_unref(reply);
        /* The job's progress: at least once, never past its total, the last one complete. */
        for (sd_bus_message *msg; (msg = harness_watch_next(progress, n_progress == 0 ? 10 * HARNESS_USEC_PER_SEC :
                                                                       HARNESS_USEC_PER_SEC / 2));) {
                assert_int_equal(sd_bus_message_read(msg, "tt", &done, &total), 1);
                assert_true(total > 0 && done <= total);
                n_progress++;
                sd_bus_message_unref(msg);
        }
        assert_true(n_progress >= 1 && n_progress < 100);
        assert_true(done == total);
        assert_string_equal(harness_get_string(bus, snap, S, "State"), "running");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        guest_sees(console, "one", "MARKER-ONE");

        /* Both change; a live revert brings both back, the guest going on from the snapshot. */
        guest_writes(console, "two", "MARKER-TWO");
        guest_sees(console, "two", "MARKER-TWO");
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Revert", "t", UINT64_C(0)));
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        guest_sees(console, "one", "MARKER-ONE");

        /* From a stopped domain: started from the snapshot, not booted. */
        guest_writes(console, "three", "MARKER-3ER");
        harness_domain_call(bus, dom, "Destroy");
        close(console);
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Revert", "t", UINT64_C(0)));
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees(console, "one", "MARKER-ONE");

        /* Found again after a restart; deleted from the running domain's image, the guest going on. */
        close(console);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, dom);
        assert_string_equal(harness_get_string(bus, snap, S, "Name"), "live");
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Delete", "t", UINT64_C(0)));
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees(console, "one", "MARKER-ONE");
        harness_domain_call(bus, dom, "Destroy");
        assert_false(image_has_snapshot(h, disk, "live"));
        close(console);
        harness_domain_call(bus, dom, "Undefine");
}

/* A child that copies from in to out until end-of-file; its pid. other (the pipe's other end) is closed
 * in it, or the pipe would never end. */
static pid_t copier(int in, int out, int other) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                char b[65536];
                ssize_t k;

                close(other);
                while ((k = read(in, b, sizeof b)) > 0)
                        if (write(out, b, (size_t) k) != k)
                                _exit(1);
                _exit(k < 0);
        }
        return pid;
}

static void test_saved_state(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *disk = NULL, *dom = NULL, *live = NULL, *saved = NULL, *file = NULL,
                            *uuid = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        struct stat st;
        int console, p[2], fd, status;
        pid_t pid;

        assert_true(asprintf(&disk, "%s/save-disk.qcow2", harness_dir(h)) > 0);
        console = start_guest(h, "saveguest", disk, "kept", "MARKER-SAV", &dom);
        close(console);

        /* ManagedSave: the service's file, then Start resumes from it and removes it. */
        harness_domain_call(bus, dom, "ManagedSave");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        uuid = strdup(harness_get_string(bus, dom, D, "UUID"));
        assert_true(asprintf(&saved, "%s/qemu/save/%s.save", harness_state_dir(h), uuid) > 0);
        assert_int_equal(stat(saved, &st), 0);
        assert_true(st.st_size > 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        harness_domain_call(bus, dom, "Start");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        assert_int_equal(access(saved, F_OK), -1);
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees(console, "kept", "MARKER-SAV");
        close(console);

        /* Save into a pipe (a child copies it into a file), then RestoreDomain from a pipe. */
        live = harness_domain_xml(bus, dom, 0);
        assert_true(asprintf(&file, "%s/saved-through-pipe", harness_dir(h)) > 0);
        fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = copier(p[0], fd, p[1]);
        close(p[0]);
        close(fd);
        harness_call_fd(bus, dom, D, "Save", p[1], NULL, &reply, NULL);
        sd_bus_message_unref(reply);
        close(p[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "shutoff");
        assert_int_equal(stat(file, &st), 0);
        assert_true(st.st_size > 0);

        fd = open(file, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = copier(fd, p[1], p[0]);
        close(p[1]);
        close(fd);
        harness_call_fd(bus, HARNESS_MANAGER_PATH, "org.virtbus1.Manager", "RestoreDomain", p[0],
                        live, &reply, NULL);
        sd_bus_message_unref(reply);
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees(console, "kept", "MARKER-SAV");
        close(console);
        harness_domain_call(bus, dom, "Destroy");
        harness_domain_call(bus, dom, "Undefine");
}

static char *sha256(Harness *h, const char *file) {
        char *out = NULL;

        assert_int_equal(run(h, (const char *[]) { "/usr/bin/sha256sum", file, NULL }, &out), 0);
        assert_true(strlen(out) > 64);
        out[64] = 0;
        return out;
}

/* QEMU's log of the domain (its last 3000 bytes), for a failure's message. */
static char *qemu_log(Harness *h, const char *name) {
        _cleanup_free_ char *path = NULL;
        char *buf = calloc(1, 3001);
        off_t size;
        int fd;

        assert_true(asprintf(&path, "%s/qemu/log/%s.log", harness_state_dir(h), name) > 0);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || !buf)
                return buf;
        size = lseek(fd, 0, SEEK_END);
        if (pread(fd, buf, 3000, size > 3000 ? size - 3000 : 0) < 0)
                buf[0] = 0;
        close(fd);
        return buf;
}

/* The first bytes the guest sees of image (its backing chain read by qemu-img, as root, the domain shut off). */
static char *image_start(Harness *h, const char *image) {
        _cleanup_free_ char *raw = NULL;
        char buf[11] = "";
        int fd;

        assert_true(asprintf(&raw, "%s/flat.raw", harness_dir(h)) > 0);
        {
                HarnessResult res = {};

                assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char *[]) { "/usr/bin/qemu-img", "convert", "-O",
                                             "raw", image, raw, NULL }, NULL, TIMEOUT, &res), 0);
                if (res.status != 0)
                        fprintf(stderr, "QEMU's log: %s\n", qemu_log(h, "snapext"));
                if (res.status != 0)
                        fail_msg("qemu-img convert '%s' failed: %s", image, strempty(res.err));
                harness_result_done(&res);
        }
        fd = open(raw, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, 10), 10);
        close(fd);
        unlink(raw);
        return strdup(buf);
}

static char *backing_of(Harness *h, const char *image) {
        _cleanup_free_ char *out = NULL;
        const char *b;
        char *e;

        if (run(h, (const char *[]) { "/usr/bin/qemu-img", "info", "-U", image, NULL }, &out) != 0) {
                fprintf(stderr, "QEMU's log: %s\n", qemu_log(h, "snapext"));
                fail_msg("qemu-img info '%s' failed", image);
        }
        b = strstr(out, "backing file: ");
        assert_non_null(b);
        b += strlen("backing file: ");
        e = strndup(b, strcspn(b, "\n"));
        return e;
}

static int is_current(sd_bus *bus, const char *snap) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int b = -1;

        assert_int_equal(sd_bus_get_property_trivial(bus, HARNESS_SERVICE, snap, S, "IsCurrent", &e, 'b', &b), 0);
        return b;
}

static char *disk_only(sd_bus *bus, const char *dom, const char *xml, uint64_t flags) {
        sd_bus_message *reply = harness_call_ok(bus, dom, D, "CreateSnapshot", "st", xml, flags);
        const char *o;
        char *ret;

        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        ret = strdup(o);
        sd_bus_message_unref(reply);
        assert_string_equal(harness_get_string(bus, ret, S, "Kind"), "disk-only");
        assert_string_equal(harness_get_string(bus, ret, S, "State"), "disk-snapshot");
        return ret;
}

/* Disk-only snapshots of the running guest: the overlay is what the guest writes to from then on, the old
 * image stays as it was; again after a restart of virtbusd (the node names found from the definition);
 * then of the shut-off domain (the definition switched), and the guest boots from the three-image chain. */
static void test_disk_only(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *base = NULL, *over = NULL, *over2 = NULL, *over3 = NULL, *dom = NULL, *a = NULL,
                            *b = NULL, *c = NULL, *sum = NULL, *sum2 = NULL, *xml = NULL, *live = NULL, *x = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        int console;

        assert_true(asprintf(&base, "%s/ext-base.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&over, "%s/ext-over.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&over2, "%s/ext-over.second", harness_dir(h)) > 0);
        assert_true(asprintf(&over3, "%s/ext-over.third", harness_dir(h)) > 0);
        console = start_guest(h, "snapext", base, "one", "MARKER-ONE", &dom);

        assert_true(asprintf(&xml, "<domainsnapshot><name>first</name><disks><disk name='vda'><source file='%s'/>"
                                   "</disk></disks></domainsnapshot>", over) > 0);
        a = disk_only(bus, dom, xml, 1 | 8);
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "running");
        sum = sha256(h, base);
        free(x);
        x = backing_of(h, over);
        assert_string_equal(x, base);
        live = harness_domain_xml(bus, dom, 0);
        assert_non_null(strstr(live, over));
        assert_true(strstr(live, "<backingStore type='file'>") && strstr(live, over) < strstr(live, base));

        /* The guest goes on, writing to the overlay; the old image stays as it was. */
        guest_sees(console, "one", "MARKER-ONE");
        guest_writes(console, "two", "MARKER-TWO");
        guest_sees(console, "two", "MARKER-TWO");
        sum2 = sha256(h, base);
        assert_string_equal(sum, sum2);
        /* An overlay that exists is not overwritten. */
        free(xml);
        assert_true(asprintf(&xml, "<domainsnapshot><name>again</name><disks><disk name='vda'><source file='%s'/>"
                                   "</disk></disks></domainsnapshot>", base) > 0);
        harness_call_fails(bus, SD_BUS_ERROR_INVALID_ARGS, "a file of the domain already", dom, D, "CreateSnapshot",
                           "st", xml, UINT64_C(1));
        free(x);
        assert_true(asprintf(&x, "%s/ext-exists.qcow2", harness_dir(h)) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/touch", x, NULL }, NULL), 0);
        free(xml);
        assert_true(asprintf(&xml, "<domainsnapshot><name>again</name><disks><disk name='vda'><source file='%s'/>"
                                   "</disk></disks></domainsnapshot>", x) > 0);
        harness_call_fails(bus, ERR("AlreadyExists"), "exists already", dom, D, "CreateSnapshot", "st", xml, UINT64_C(1));
        free(x);
        x = NULL;

        /* After a restart: the same, and another snapshot over the overlay (its node found by name again). */
        close(console);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, dom);
        assert_string_equal(harness_get_string(bus, a, S, "Kind"), "disk-only");
        b = disk_only(bus, dom, "<domainsnapshot><name>second</name></domainsnapshot>", 1);
        free(x);
        x = backing_of(h, over2);
        assert_string_equal(x, over);
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_writes(console, "three", "MARKER-3ER");
        guest_sees(console, "three", "MARKER-3ER");
        close(console);
        harness_domain_call(bus, dom, "Destroy");
        free(sum2);
        sum2 = sha256(h, base);
        assert_string_equal(sum, sum2);
        free(x);
        x = image_start(h, base);
        assert_string_equal(x, "MARKER-ONE");
        free(x);
        x = image_start(h, over);
        assert_string_equal(x, "MARKER-TWO");
        free(x);
        x = image_start(h, over2);
        assert_string_equal(x, "MARKER-3ER");

        /* Shut off: the definition takes the third overlay; the guest boots from the chain of four images. */
        c = disk_only(bus, dom, "<domainsnapshot><name>third</name></domainsnapshot>", 1);
        free(x);
        x = backing_of(h, over3);
        assert_string_equal(x, over2);
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_non_null(strstr(live, over3));
        harness_domain_call(bus, dom, "Start");
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        guest_sees(console, "", "MARKER-3ER");
        guest_writes(console, "four", "MARKER-4UR");
        close(console);
        harness_domain_call(bus, dom, "Destroy");
        free(x);
        x = image_start(h, over3);
        assert_string_equal(x, "MARKER-4UR");
        free(x);
        x = image_start(h, over2);
        assert_string_equal(x, "MARKER-3ER");

        /* Delete merges: not under a snapshot that stays. */
        harness_call_fails(bus, ERR("NotSupported"), "child snapshot 'second'", a, S, "Delete", "t", UINT64_C(0));
        harness_call_fails(bus, ERR("NotSupported"), "child snapshot 'third'", b, S, "Delete", "t", UINT64_C(0));

        /* Shut off (qemu-img commit): the third overlay goes into the second, with what was written after
         * the snapshot; the chain is one image shorter, the overlay file gone, 'second' is current. */
        sd_bus_message_unref(harness_call_ok(bus, c, S, "Delete", "t", UINT64_C(0)));
        assert_int_equal(access(over3, F_OK), -1);
        free(x);
        x = image_start(h, over2);
        assert_string_equal(x, "MARKER-4UR");
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over3));
        assert_true(strstr(live, over2) && strstr(live, over2) < strstr(live, over));
        assert_int_equal(is_current(bus, b), 1);
        free(sum2);
        sum2 = sha256(h, base);
        assert_string_equal(sum, sum2);

        /* Running (block-commit of the active layer): the guest goes on from the second overlay, then it is
         * merged into the first while the guest runs; what the guest wrote survives, the chain shrinks. */
        harness_domain_call(bus, dom, "Start");
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        guest_say(console, "echo 3 >/proc/sys/vm/drop_caches; echo SEEN=$(dd if=/dev/vda bs=10 count=1 2>/dev/null).\n",
                  "SEEN=MARKER-4UR.", buf, sizeof buf);
        guest_writes(console, "five", "MARKER-5VE");
        {
                _cleanup_(harness_watch_freep) HarnessWatch *progress = harness_watch_signal(bus, dom, D, "Progress");
                uint64_t done = 0, total = 0;
                size_t n = 0;

                sd_bus_message_unref(harness_call_ok(bus, b, S, "Delete", "t", UINT64_C(0)));
                /* The merge's progress: at least once, never past its total, the last one complete. */
                for (sd_bus_message *msg; (msg = harness_watch_next(progress, n == 0 ? 10 * HARNESS_USEC_PER_SEC :
                                                                               HARNESS_USEC_PER_SEC / 2));) {
                        assert_int_equal(sd_bus_message_read(msg, "tt", &done, &total), 1);
                        assert_true(total > 0 && done <= total);
                        n++;
                        sd_bus_message_unref(msg);
                }
                assert_true(n >= 1);
                assert_true(done == total);
        }
        assert_int_equal(access(over2, F_OK), -1);
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over2));
        assert_true(strstr(live, over) && strstr(live, over) < strstr(live, base));
        guest_sees(console, "five", "MARKER-5VE");
        guest_writes(console, "six", "MARKER-6IX");
        close(console);
        assert_int_equal(is_current(bus, a), 1);
        harness_domain_call(bus, dom, "Destroy");
        free(x);
        x = image_start(h, over);
        assert_string_equal(x, "MARKER-6IX");
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over2));
        free(sum2);
        sum2 = sha256(h, base);
        assert_string_equal(sum, sum2);

        /* Revert: not supported; the metadata goes, the overlay stays the disk's image. */
        harness_call_fails(bus, ERR("NotSupported"), "disk-only", a, S, "Revert", "t", UINT64_C(0));
        sd_bus_message_unref(harness_call_ok(bus, a, S, "Delete", "t", UINT64_C(4 | 1)));
        assert_int_equal(access(over, F_OK), 0);
        harness_domain_call(bus, dom, "Undefine");
}

/* A live merge of a paused domain over the image it started with: Delete merges the overlay while the guest
 * is paused (QEMU keeps the nodes it opened at start; the image below must be reopened read-write all the
 * same), and the guest, resumed, reads what it wrote to the overlay, from the image it started with. */
static void test_disk_only_paused(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *base = NULL, *over = NULL, *dom = NULL, *a = NULL, *xml = NULL, *live = NULL,
                            *x = NULL;
        int console;

        assert_true(asprintf(&base, "%s/paused-base.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&over, "%s/paused-over.qcow2", harness_dir(h)) > 0);
        console = start_guest(h, "snappaused", base, "one", "MARKER-ONE", &dom);
        assert_true(asprintf(&xml, "<domainsnapshot><name>p</name><disks><disk name='vda'><source file='%s'/>"
                                   "</disk></disks></domainsnapshot>", over) > 0);
        a = disk_only(bus, dom, xml, 1);
        guest_writes(console, "two", "MARKER-TWO");
        harness_domain_call(bus, dom, "Suspend");
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "paused");

        sd_bus_message_unref(harness_call_ok(bus, a, S, "Delete", "t", UINT64_C(0)));
        assert_int_equal(access(over, F_OK), -1);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over));
        assert_null(strstr(live, "backingStore"));
        assert_string_equal(harness_get_string(bus, dom, D, "State"), "paused");

        harness_domain_call(bus, dom, "Resume");
        guest_sees(console, "two", "MARKER-TWO");
        guest_writes(console, "three", "MARKER-3EE");
        close(console);
        harness_domain_call(bus, dom, "Destroy");
        x = image_start(h, base);
        assert_string_equal(x, "MARKER-3EE");
        harness_domain_call(bus, dom, "Undefine");
}

/* The guest writes marker at the start of disk dev (vda, vdb) and reads it back past its page cache. */
static void guest_writes_on(int console, const char *dev, const char *marker) {
        _cleanup_free_ char *cmd = NULL, *want = NULL;
        char buf[16384];

        assert_true(asprintf(&want, "ON-%s=%s.", dev, marker) > 0);
        assert_true(asprintf(&cmd, "printf %s | dd of=/dev/%s conv=fsync 2>/dev/null; echo 3 >/proc/sys/vm/drop_caches; "
                                   "echo ON-%s=$(dd if=/dev/%s bs=10 count=1 2>/dev/null).\n",
                             marker, dev, dev, dev) > 0);
        guest_say(console, cmd, want, buf, sizeof buf);
}

static void guest_sees_on(int console, const char *dev, const char *marker) {
        _cleanup_free_ char *cmd = NULL, *want = NULL;
        char buf[16384];

        assert_true(asprintf(&want, "ON-%s=%s.", dev, marker) > 0);
        assert_true(asprintf(&cmd, "echo 3 >/proc/sys/vm/drop_caches; echo ON-%s=$(dd if=/dev/%s bs=10 count=1 "
                                   "2>/dev/null).\n", dev, dev) > 0);
        guest_say(console, cmd, want, buf, sizeof buf);
        if (strstr(buf, "VIRTBUS-GUEST-BOOTED"))
                fail_msg("the guest booted again: %s", buf);
}

static char *snap_xml(sd_bus *bus, const char *snap) {
        sd_bus_message *reply = harness_call_ok(bus, snap, S, "GetXMLDesc", "t", UINT64_C(0));
        const char *x;
        char *ret;

        assert_int_equal(sd_bus_message_read(reply, "s", &x), 1);
        ret = strdup(x);
        sd_bus_message_unref(reply);
        assert_non_null(ret);
        return ret;
}

/* Restarts virtbusd with VIRTBUS_QEMU_MERGE_FAULT set to disk (NULL: unset); the guest runs on. */
static sd_bus *restart_with_fault(Harness *h, const char *dom, const char *disk) {
        sd_bus *bus;

        if (disk)
                assert_int_equal(setenv("VIRTBUS_QEMU_MERGE_FAULT", disk, 1), 0);
        else
                assert_int_equal(unsetenv("VIRTBUS_QEMU_MERGE_FAULT"), 0);
        assert_int_equal(harness_daemon_restart(h), 0);
        bus = harness_bus_root(h);
        if (dom)
                harness_domain_wait_connected(bus, dom);
        return bus;
}

/* Two disks' domain for the merge tests: qcow2 images <word>-a/-b.qcow2 (paths in ret_files[0..1], their
 * overlays' <word>-a/-b.over in [2..3]), virtbusd restarted with VIRTBUS_QEMU_MERGE_FAULT=fault, the guest
 * booted and writing MARKER-A1./-B1., a disk-only snapshot named word over both, then MARKER-A2./-B2.
 * written to the overlays. Returns the root's bus (ret_dom, ret_snap: the paths). */
static sd_bus *pair_with_snapshot(Harness *h, const char *word, const char *fault, char *ret_files[4], char **ret_dom,
                                  char **ret_snap) {
        static const char * const suffix[4] = { "a.qcow2", "b.qcow2", "a.over", "b.over" };
        _cleanup_free_ char *disks = NULL, *xml = NULL, *name = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char buf[16384] = "";
        sd_bus *bus;
        int console;

        for (size_t i = 0; i < 4; i++)
                assert_true(asprintf(&ret_files[i], "%s/%s-%s", harness_dir(h), word, suffix[i]) > 0);
        for (size_t i = 0; i < 2; i++)
                assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2",
                                                           ret_files[i], "16M", NULL }, NULL), 0);
        assert_true(asprintf(&disks,
                             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                             "<target dev='vda' bus='virtio'/></disk>"
                             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                             "<target dev='vdb' bus='virtio'/></disk>", ret_files[0], ret_files[1]) > 0);
        bus = restart_with_fault(h, NULL, fault);
        assert_true(asprintf(&name, "snap%s", word) > 0);
        xml = harness_shell_guest_xml(h, name, disks);
        *ret_dom = harness_define_domain(bus, xml);
        harness_domain_call(bus, *ret_dom, "Start");
        console = console_open(bus, *ret_dom, "", 0, &e);
        assert_true(console >= 0);
        assert_true(console_read_until(console, buf, sizeof buf, "VIRTBUS-GUEST-BOOTED", GUEST_TIMEOUT_USEC));
        guest_writes_on(console, "vda", "MARKER-A1.");
        guest_writes_on(console, "vdb", "MARKER-B1.");
        free(xml);
        assert_true(asprintf(&xml, "<domainsnapshot><name>%s</name><disks><disk name='vda'><source file='%s'/></disk>"
                                   "<disk name='vdb'><source file='%s'/></disk></disks></domainsnapshot>",
                             word, ret_files[2], ret_files[3]) > 0);
        *ret_snap = disk_only(bus, *ret_dom, xml, 1);
        guest_writes_on(console, "vda", "MARKER-A2.");
        guest_writes_on(console, "vdb", "MARKER-B2.");
        close(console);
        return bus;
}

/* A live merge of two disks whose second pivot fails is all or nothing as far as QEMU allows: a failure at
 * the first disk's pivot cancels the second's job and changes nothing; at the second's, after the first
 * pivoted, the first stays merged and the definition, the snapshot's metadata and the files say so; the
 * rest merges on a second Delete. The failure is injected: job-complete of the disk named by
 * VIRTBUS_QEMU_MERGE_FAULT goes to a job QEMU does not have (QEMU 7.2 gives no other way to make a pivot
 * fail on demand). */
static void test_disk_only_partial(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_free_ char *base_a = NULL, *base_b = NULL, *over_a = NULL, *over_b = NULL, *dom = NULL, *snap = NULL,
                            *live = NULL, *sx = NULL, *x = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *files[4];
        int console;

        bus = pair_with_snapshot(h, "pair", "vda", files, &dom, &snap);
        base_a = files[0];
        base_b = files[1];
        over_a = files[2];
        over_b = files[3];

        /* The first disk's pivot fails: the second's job is cancelled, nothing changed. */
        harness_call_fails(bus, ERR("OperationFailed"), "no disk was changed", snap, S, "Delete", "t", UINT64_C(0));
        live = harness_domain_xml(bus, dom, 0);
        assert_true(strstr(live, over_a) && strstr(live, over_b));
        sx = snap_xml(bus, snap);
        assert_true(strstr(sx, over_a) && strstr(sx, over_b));
        assert_int_equal(access(over_a, F_OK), 0);
        assert_int_equal(access(over_b, F_OK), 0);
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees_on(console, "vda", "MARKER-A2.");
        guest_sees_on(console, "vdb", "MARKER-B2.");
        guest_writes_on(console, "vda", "MARKER-A3.");
        guest_writes_on(console, "vdb", "MARKER-B3.");
        close(console);

        /* The second disk's pivot fails after the first pivoted: the first stays merged, and says so. */
        bus = restart_with_fault(h, dom, "vdb");
        harness_call_fails(bus, ERR("OperationFailed"), "disk(s) 'vda' had pivoted", snap, S, "Delete", "t", UINT64_C(0));
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over_a));
        assert_non_null(strstr(live, base_a));
        assert_true(strstr(live, over_b) && strstr(live, over_b) < strstr(live, base_b));
        free(sx);
        sx = snap_xml(bus, snap);
        assert_null(strstr(sx, over_a));
        assert_non_null(strstr(sx, "<disk name='vda' snapshot='no'"));
        assert_non_null(strstr(sx, over_b));
        assert_int_equal(access(over_a, F_OK), -1);
        assert_int_equal(access(over_b, F_OK), 0);
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees_on(console, "vda", "MARKER-A3.");
        guest_sees_on(console, "vdb", "MARKER-B3.");
        guest_writes_on(console, "vda", "MARKER-A4.");
        guest_writes_on(console, "vdb", "MARKER-B4.");
        close(console);

        /* A restart keeps that; then the rest merges. */
        bus = restart_with_fault(h, dom, NULL);
        free(sx);
        sx = snap_xml(bus, snap);
        assert_null(strstr(sx, over_a));
        assert_non_null(strstr(sx, over_b));
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Delete", "t", UINT64_C(0)));
        assert_int_equal(access(over_b, F_OK), -1);
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over_b));
        harness_domain_call(bus, dom, "Destroy");
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over_a));
        assert_null(strstr(live, over_b));
        free(x);
        x = image_start(h, base_a);
        assert_string_equal(x, "MARKER-A4.");
        free(x);
        x = image_start(h, base_b);
        assert_string_equal(x, "MARKER-B4.");
        harness_domain_call(bus, dom, "Undefine");
}

/* The alias of the live definition's disk vda. */
static char *vda_alias(const char *live) {
        const char *t = strstr(live, "<target dev='vda'"), *a = t ? strstr(t, "<alias name='") : NULL;

        assert_non_null(a);
        a += strlen("<alias name='");
        return strndup(a, strcspn(a, "'"));
}

/* Waits for the guest to see /dev/vda (there true) or not. */
static void guest_waits_vda(int console, bool there) {
        char buf[16384];

        guest_say(console, there ? "V=VDA; while [ ! -b /dev/vda ]; do sleep 1; done; echo HAS-$V\n" :
                                   "V=VDA; while [ -b /dev/vda ]; do sleep 1; done; echo NO-$V\n",
                  there ? "HAS-VDA" : "NO-VDA", buf, sizeof buf);
}

/* Whether process pid has file open, compared by inode (an overlay is opened before it has its name). */
static bool has_open(pid_t pid, const char *file) {
        char dir[64], link[PATH_MAX];
        struct stat want, st;
        struct dirent *de;
        bool found = false;
        DIR *d;

        assert_int_equal(stat(file, &want), 0);
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d)) && !found) {
                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                found = stat(link, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
        }
        closedir(d);
        return found;
}

/* Waits (up to the guest timeout) until QEMU no longer has file open. */
static void wait_closed(Harness *h, const char *uuid, const char *file) {
        uint64_t end = harness_now_usec() + GUEST_TIMEOUT_USEC;

        while (has_open(harness_qemu_pid(h, uuid), file)) {
                if (harness_now_usec() > end)
                        fail_msg("QEMU still has '%s' open", file);
                usleep(50000);
        }
}

/* Hot-plug and disk chains: DetachDevice of a disk with a snapshot's overlay removes every node of the
 * chain and every descriptor set; AttachDevice of a qcow2 overlay with its <backingStore> hands QEMU the
 * whole chain, and the guest reads the backing image's data through it; a disk the guest released while no
 * virtbusd ran leaves the live definition when virtbusd connects again, and QEMU lets its images go. */
static void test_disk_only_detach(void **state) {
        Harness *h = *state;
        sd_bus *bus = harness_bus_root(h);
        _cleanup_(harness_watch_freep) HarnessWatch *w = NULL;
        _cleanup_free_ char *base = NULL, *over = NULL, *back = NULL, *top = NULL, *dom = NULL, *uuid = NULL,
                            *snap = NULL, *live = NULL, *alias = NULL, *nodes = NULL, *sets = NULL, *disk = NULL,
                            *cmd = NULL, *pattern = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int console;

        assert_true(asprintf(&base, "%s/det-base.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&over, "%s/det-base.s1", harness_dir(h)) > 0);
        console = start_guest(h, "snapdet", base, "one", "MARKER-ONE", &dom);
        uuid = strdup(harness_get_string(bus, dom, D, "UUID"));
        snap = disk_only(bus, dom, "<domainsnapshot><name>s1</name></domainsnapshot>", 1);
        assert_true(has_open(harness_qemu_pid(h, uuid), over));
        assert_true(has_open(harness_qemu_pid(h, uuid), base));
        live = harness_domain_xml(bus, dom, 0);
        alias = vda_alias(live);

        /* Detached: the guest lets it go; QEMU holds neither image, no node, no set of the disk. */
        w = harness_watch_signal(bus, dom, D, "DeviceRemoved");
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "DetachDevice", "st",
                                             "<disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>",
                                             UINT64_C(0)));
        sd_bus_message_unref(harness_watch_next(w, GUEST_TIMEOUT_USEC));
        guest_waits_vda(console, false);
        close(console);
        w = harness_watch_free(w);
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        nodes = harness_qmp(h, uuid, "{\"execute\":\"query-named-block-nodes\"}");
        if (strstr(nodes, alias))
                fail_msg("QEMU still has nodes of '%s': %s", alias, nodes);
        sets = harness_qmp(h, uuid, "{\"execute\":\"query-fdsets\"}");
        if (strstr(sets, alias))
                fail_msg("QEMU still has descriptor sets of '%s': %s", alias, sets);
        assert_false(has_open(harness_qemu_pid(h, uuid), over));
        assert_false(has_open(harness_qemu_pid(h, uuid), base));
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, dom);

        /* A qcow2 overlay over a backing image that holds the data: the guest reads it through the chain. */
        assert_true(asprintf(&back, "%s/det-back.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&top, "%s/det-top.qcow2", harness_dir(h)) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", back, "16M", NULL },
                             NULL), 0);
        write_pattern(h, back, "0x5a");
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", "-b", back, "-F",
                                                   "qcow2", top, NULL }, NULL), 0);
        assert_true(asprintf(&disk, "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                                    "<source file='%s'/><backingStore type='file'><format type='qcow2'/>"
                                    "<source file='%s'/></backingStore><target dev='vda' bus='virtio'/></disk>",
                             top, back) > 0);
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "AttachDevice", "st", disk, UINT64_C(0)));
        assert_true(has_open(harness_qemu_pid(h, uuid), top));
        assert_true(has_open(harness_qemu_pid(h, uuid), back));
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_waits_vda(console, true);
        guest_sees(console, "one", "ZZZZZZZZZZ");
        close(console);
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_true(strstr(live, top) && strstr(live, back));
        free(alias);
        alias = vda_alias(live);

        /* Released by the guest while no virtbusd runs: gone from the live definition at reconnection. */
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        assert_true(asprintf(&cmd, "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"%s\"}}", alias) > 0);
        free(harness_qmp(h, uuid, cmd));
        free(cmd);
        assert_true(asprintf(&cmd, "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/machine/peripheral\"}}") > 0);
        assert_true(asprintf(&pattern, "\"%s\"", alias) > 0);
        for (uint64_t end = harness_now_usec() + GUEST_TIMEOUT_USEC;;) {
                _cleanup_free_ char *list = harness_qmp(h, uuid, cmd);

                if (!strstr(list, pattern))
                        break;
                if (harness_now_usec() > end)
                        fail_msg("the guest did not release '%s': %s", alias, list);
                usleep(100000);
        }
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, dom);
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        if (strstr(live, top))
                fail_msg("the released disk is still in the live XML:\n%s", live);
        wait_closed(h, uuid, top);
        wait_closed(h, uuid, back);
        harness_domain_call(bus, dom, "Destroy");
        sd_bus_message_unref(harness_call_ok(bus, dom, D, "Undefine", "t", UINT64_C(2)));
}

/* The overlay is made with the domain owner's rights: not where the owner may not create files. */
static void test_disk_only_owner(void **state) {
        Harness *h = *state;
        sd_bus *user = harness_bus_as(h, HARNESS_USER_VIRTBUS);
        uid_t uid = harness_user_uid(h, HARNESS_USER_VIRTBUS);
        _cleanup_free_ char *dir = NULL, *image = NULL, *image2 = NULL, *xml = NULL, *dom = NULL, *snap = NULL,
                            *bad = NULL, *overlay = NULL;
        struct stat st;

        assert_true(asprintf(&dir, "%s/owner-files", harness_dir(h)) > 0);
        assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
        assert_int_equal(chown(dir, uid, harness_user_gid(h, HARNESS_USER_VIRTBUS)), 0);
        assert_true(asprintf(&image, "%s/own.qcow2", dir) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", image, "4M", NULL },
                             NULL), 0);
        assert_int_equal(chown(image, uid, harness_user_gid(h, HARNESS_USER_VIRTBUS)), 0);
        assert_int_equal(chmod(image, 0600), 0);
        assert_true(asprintf(&image2, "%s/own2.qcow2", dir) > 0);
        assert_int_equal(run(h, (const char *[]) { "/usr/bin/qemu-img", "create", "-q", "-f", "qcow2", image2, "4M", NULL },
                             NULL), 0);
        assert_int_equal(chown(image2, uid, harness_user_gid(h, HARNESS_USER_VIRTBUS)), 0);
        assert_true(asprintf(&xml, "<domain type='qemu'><name>snapowner</name><memory unit='MiB'>64</memory>"
                                   "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                                   "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                                   "<target dev='vda' bus='virtio'/></disk>"
                                   "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
                                   "<target dev='vdb' bus='virtio'/></disk></devices></domain>", image, image2) > 0);
        dom = harness_define_domain(user, xml);

        /* harness_dir() is root's: the user cannot create a file there, so neither may its snapshot; the
         * overlay of the other disk, made first, goes again (all disks or none). */
        free(xml);
        assert_true(asprintf(&bad, "%s/not-yours.qcow2", harness_dir(h)) > 0);
        assert_true(asprintf(&xml, "<domainsnapshot><name>bad</name><disks><disk name='vdb'><source file='%s'/>"
                                   "</disk></disks></domainsnapshot>", bad) > 0);
        harness_call_fails(user, SD_BUS_ERROR_ACCESS_DENIED, "with the rights of uid", dom, D, "CreateSnapshot", "st", xml,
                           UINT64_C(1 | 8));
        assert_int_equal(access(bad, F_OK), -1);
        {
                _cleanup_free_ char *first = NULL;

                assert_true(asprintf(&first, "%s/own.bad", dir) > 0);
                assert_int_equal(access(first, F_OK), -1);
        }
        free(xml);
        xml = harness_domain_xml(user, dom, 0);
        assert_null(strstr(xml, "not-yours"));

        /* Next to its image: made by and for the user. */
        snap = disk_only(user, dom, "<domainsnapshot><name>mine</name></domainsnapshot>", 1);
        assert_true(asprintf(&overlay, "%s/own.mine", dir) > 0);
        assert_int_equal(stat(overlay, &st), 0);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* Merged by qemu-img running as the user: what was written to the overlay is in the image, still the
         * user's, and the overlay is gone. */
        write_pattern(h, overlay, "0x5c");
        /* Where the user may not write the image below, nothing changes: the overlay stays the disk's. */
        assert_int_equal(chmod(image, 0400), 0);
        harness_call_fails(user, SD_BUS_ERROR_ACCESS_DENIED, "with the rights of uid", snap, S, "Delete", "t",
                           UINT64_C(0));
        assert_int_equal(access(overlay, F_OK), 0);
        free(xml);
        xml = harness_domain_xml(user, dom, 0);
        assert_non_null(strstr(xml, "own.mine"));
        assert_false(has_pattern(h, image, "0x5c"));
        assert_int_equal(chmod(image, 0600), 0);
        sd_bus_message_unref(harness_call_ok(user, snap, S, "Delete", "t", UINT64_C(0)));
        assert_int_equal(access(overlay, F_OK), -1);
        assert_true(has_pattern(h, image, "0x5c"));
        assert_int_equal(stat(image, &st), 0);
        assert_int_equal(st.st_uid, uid);
        free(xml);
        xml = harness_domain_xml(user, dom, 0);
        assert_null(strstr(xml, "own.mine"));
        assert_null(strstr(xml, "backingStore"));
        sd_bus_message_unref(harness_call_ok(user, dom, D, "Undefine", "t", UINT64_C(2)));
}

/* Waits (up to the guest timeout) until QEMU's query-jobs answer, asked over the test's own connection,
 * holds want. */
static void wait_jobs(Harness *h, const char *uuid, const char *want) {
        uint64_t end = harness_now_usec() + GUEST_TIMEOUT_USEC;

        for (;;) {
                _cleanup_free_ char *jobs = harness_qmp(h, uuid, "{\"execute\":\"query-jobs\"}");

                if (strstr(jobs, want))
                        return;
                if (harness_now_usec() > end)
                        fail_msg("QEMU's jobs never showed '%s': %s", want, jobs);
                usleep(50000);
        }
}

/* A live merge cut by a kill of virtbusd: the two disks' block-commit jobs are ready (virtbusd told to
 * hold them there, VIRTBUS_QEMU_MERGE_FAULT=hold) when virtbusd is killed; while none runs, the first disk
 * is pivoted by hand (job-complete over QMP). The next virtbusd cancels the job left on the second disk,
 * dismisses both, and its live definition and the snapshot's metadata follow what QEMU runs: the first disk
 * on the image below, out of the snapshot; the second on its overlay, in it. The data is all there, and a
 * Delete merges the rest (the job's name is free again). */
static void test_disk_only_cut(void **state) {
        Harness *h = *state;
        sd_bus *bus;
        _cleanup_free_ char *base_a = NULL, *base_b = NULL, *over_a = NULL, *over_b = NULL, *dom = NULL, *snap = NULL,
                            *live = NULL, *sx = NULL, *x = NULL, *uuid = NULL, *alias = NULL, *cmd = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char *files[4];
        uint64_t end;
        int console;

        bus = pair_with_snapshot(h, "cut", "hold", files, &dom, &snap);
        base_a = files[0];
        base_b = files[1];
        over_a = files[2];
        over_b = files[3];
        uuid = strdup(harness_get_string(bus, dom, D, "UUID"));
        live = harness_domain_xml(bus, dom, 0);
        alias = vda_alias(live);

        /* Delete, not waited for; the jobs get ready and are held there; virtbusd is killed. */
        {
                _cleanup_(harness_watch_freep) HarnessWatch *progress = harness_watch_signal(bus, dom, D, "Progress");
                uint64_t done = 0, total = 0;

                assert_true(sd_bus_call_method_async(bus, NULL, "org.virtbus1", snap, S, "Delete", NULL, NULL, "t",
                                                     UINT64_C(0)) >= 0);
                assert_true(sd_bus_flush(bus) >= 0);
                end = harness_now_usec() + GUEST_TIMEOUT_USEC;
                while (done == 0 || done != total) {
                        sd_bus_message *msg = harness_watch_next(progress, GUEST_TIMEOUT_USEC);

                        assert_non_null(msg);
                        assert_int_equal(sd_bus_message_read(msg, "tt", &done, &total), 1);
                        sd_bus_message_unref(msg);
                        assert_true(harness_now_usec() < end);
                }
        }
        assert_int_equal(harness_daemon_kill(h, SIGKILL), 128 + SIGKILL);
        wait_jobs(h, uuid, "\"status\": \"ready\"");
        assert_true(asprintf(&cmd, "{\"execute\":\"job-complete\",\"arguments\":{\"id\":\"vb-merge-%s\"}}", alias) > 0);
        free(x);
        x = harness_qmp(h, uuid, cmd);
        wait_jobs(h, uuid, "\"status\": \"concluded\"");

        /* virtbusd again: the jobs settled, the definition and the snapshot follow QEMU. */
        assert_int_equal(unsetenv("VIRTBUS_QEMU_MERGE_FAULT"), 0);
        assert_int_equal(harness_daemon_start(h, NULL), 0);
        bus = harness_bus_root(h);
        harness_domain_wait_connected(bus, dom);
        end = harness_now_usec() + GUEST_TIMEOUT_USEC;
        for (;;) {
                free(live);
                live = harness_domain_xml(bus, dom, 0);
                if (!strstr(live, over_a))
                        break;
                if (harness_now_usec() > end)
                        fail_msg("the live definition still has '%s': %s", over_a, live);
                usleep(50000);
        }
        assert_non_null(strstr(live, base_a));
        assert_true(strstr(live, over_b) && strstr(live, over_b) < strstr(live, base_b));
        /* The merged disk's overlay file goes too (from a worker thread: waited for); the other stays. */
        while (access(over_a, F_OK) == 0) {
                if (harness_now_usec() > end)
                        fail_msg("the overlay '%s' of the disk merged while virtbusd was down is still there", over_a);
                usleep(50000);
        }
        assert_int_equal(access(over_b, F_OK), 0);
        sx = snap_xml(bus, snap);
        assert_null(strstr(sx, over_a));
        assert_non_null(strstr(sx, "<disk name='vda' snapshot='no'"));
        assert_non_null(strstr(sx, over_b));
        console = console_open(bus, dom, "", 0, &e);
        assert_true(console >= 0);
        guest_sees_on(console, "vda", "MARKER-A2.");
        guest_sees_on(console, "vdb", "MARKER-B2.");
        guest_writes_on(console, "vdb", "MARKER-B3.");
        close(console);

        /* The rest merges. */
        sd_bus_message_unref(harness_call_ok(bus, snap, S, "Delete", "t", UINT64_C(0)));
        assert_int_equal(access(over_b, F_OK), -1);
        harness_domain_call(bus, dom, "Destroy");
        free(live);
        live = harness_domain_xml(bus, dom, 0);
        assert_null(strstr(live, over_a));
        assert_null(strstr(live, over_b));
        free(x);
        x = image_start(h, base_a);
        assert_string_equal(x, "MARKER-A2.");
        free(x);
        x = image_start(h, base_b);
        assert_string_equal(x, "MARKER-B3.");
        harness_domain_call(bus, dom, "Undefine");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stopped_qcow2),
                cmocka_unit_test(test_stopped_backing),
                cmocka_unit_test_teardown(test_running_guest, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_saved_state, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_disk_only, harness_teardown_qemus),
                cmocka_unit_test(test_disk_only_owner),
                cmocka_unit_test_teardown(test_disk_only_detach, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_disk_only_paused, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_disk_only_partial, harness_teardown_qemus),
                cmocka_unit_test_teardown(test_disk_only_cut, harness_teardown_qemus),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-img", X_OK) < 0 || access("/usr/bin/qemu-io", X_OK) < 0 ||
            access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-snapshot: qemu-img, qemu-io or qemu-system-x86_64 missing (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
