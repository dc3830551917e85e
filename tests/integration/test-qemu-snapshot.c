/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal snapshots with the qemu driver and real qemu-img: a stopped domain's qcow2 disk gets a marker
 * (qemu-io), a snapshot, another marker; Revert brings the first back; Delete drops the snapshot from the
 * image; a restart finds the snapshot again. A raw disk answers NotSupported. */
#include <stdio.h>
#include <unistd.h>

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

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stopped_qcow2),
        };

        HARNESS_SKIP_UNLESS_ROOT();
        if (access("/usr/bin/qemu-img", X_OK) < 0 || access("/usr/bin/qemu-io", X_OK) < 0 ||
            access("/usr/bin/qemu-system-x86_64", X_OK) < 0) {
                fprintf(stderr, "test-qemu-snapshot: qemu-img, qemu-io or qemu-system-x86_64 missing (scripts/bootstrap)\n");
                return 77;
        }
        return harness_run_group(tests, &(HarnessOptions) { .daemon_args = (const char *[]) { "--driver", "qemu", NULL } });
}
