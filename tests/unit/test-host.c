/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/host: PCI, SR-IOV, USB and network interfaces below a sysfs root, and the privileged changes.
 *
 * This machine has no SR-IOV, IOMMU or VFIO, so these run against a FAKE sysfs tree: a copy of
 * tests/data/sysfs/host with tests/helpers/fake-sysfs-kernel doing the kernel's part (driver binding,
 * drivers_probe with driver_override, sriov_numvfs creating VFs). The rtnetlink VF calls are tested up
 * to the kernel's answer: on a veth, in a network namespace this test creates, the kernel says
 * "Operation not supported" (no VFs), which must come back as NotSupported. */
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/host.h"
#include "host/net.h"
#include "host/pci.h"
#include "host/sysfs.h"
#include "host/usb.h"
#include "util/fileio.h"

static char tmpdir[] = "/tmp/virtbus-test-host-XXXXXX";
static char *root;
static pid_t kernel_pid;

static HostPciAddress A(const char *s) {
        HostPciAddress a;
        assert_int_equal(host_pci_address_parse(s, &a), 0);
        return a;
}

static char *driver(const char *addr) {
        char *d = NULL;
        HostPciAddress a = A(addr);

        assert_int_equal(host_pci_get_driver(&a, &d), 0);
        return d;
}

static void assert_driver(const char *addr, const char *want) {
        _cleanup_free_ char *d = driver(addr);

        if (!streq_ptr(d, want))
                fail_msg("%s: driver '%s', expected '%s'", addr, strempty(d), strempty(want));
}

static void test_pci_list(void **state) {
        HostPciDevice *l = NULL;
        size_t n = 0;
        const HostPciDevice *pf = NULL, *vf = NULL;

        assert_int_equal(host_pci_list(&l, &n), 0);
        assert_true(n >= 8);
        for (size_t i = 0; i < n; i++) {
                char s[HOST_PCI_ADDRESS_MAX];
                host_pci_address_format(&l[i].address, s);
                if (streq(s, "0000:03:00.0"))
                        pf = &l[i];
                if (streq(s, "0000:03:10.2"))
                        vf = &l[i];
        }
        assert_non_null(pf);
        assert_non_null(vf);
        assert_int_equal(pf->vendor_id, 0x8086);
        assert_int_equal(pf->device_id, 0x10c9);
        assert_string_equal(pf->vendor_name, "Intel Corporation"); /* from pci.ids, through libpci */
        assert_string_equal(pf->device_name, "82576 Gigabit Network Connection");
        assert_int_equal(pf->class_code, 0x020000);
        assert_string_equal(pf->driver, "igb");
        assert_int_equal(pf->iommu_group, 11);
        assert_int_equal(pf->n_group, 1);
        assert_int_equal(pf->numa_node, 0);
        assert_true(pf->pcie);
        assert_string_equal(pf->link_cap.speed, "2.5");
        assert_int_equal(pf->link_cap.width, 4);
        assert_true(pf->has_parent);
        assert_true(host_pci_address_equal(&pf->parent, &(HostPciAddress) { 0, 0, 0x1c, 0 }));
        assert_true(pf->is_pf);
        assert_int_equal(pf->total_vfs, 7);
        assert_int_equal(pf->n_vfs, 2);
        assert_true(host_pci_address_equal(&pf->vfs[1], &vf->address));
        assert_true(vf->is_vf);
        assert_int_equal(vf->vf_index, 1);
        assert_true(host_pci_address_equal(&vf->pf, &pf->address));
        assert_string_equal(vf->driver, "igbvf");
        host_pci_device_list_free(l, n);
}

static void test_detach_reattach(void **state) {
        HostPciAddress vf = A("0000:03:10.2"), gpu = A("0000:05:00.0"), audio = A("0000:05:00.1"),
                       bridge = A("0000:00:1c.0"), usbc = A("0000:00:14.0"), nope = A("0000:09:00.0");
        HostPciAddress group[] = { gpu, audio };
        _cleanup_free_ char *prev = NULL, *got = NULL, *ov = NULL, *ovp = NULL;
        VbError e = VB_ERROR_NULL;

        assert_int_equal(host_pci_detach(&vf, HOST_PCI_VFIO_DRIVER, NULL, 0, &prev, &e), 0);
        assert_string_equal(prev, "igbvf");
        assert_driver("0000:03:10.2", "vfio-pci");
        ovp = host_sysfs_path("bus/pci/devices/0000:03:10.2/driver_override");
        assert_int_equal(host_sysfs_read(ovp, &ov), 0);
        assert_string_equal(ov, "vfio-pci");
        assert_int_equal(host_pci_detach(&vf, HOST_PCI_VFIO_DRIVER, NULL, 0, NULL, &e), 1);
        assert_int_equal(host_pci_reset(&vf, &e), 0);
        assert_int_equal(host_pci_reattach(&vf, &got, &e), 0);
        assert_string_equal(got, "igbvf");
        free(ov);
        assert_int_equal(host_sysfs_read(ovp, &ov), 0);
        assert_string_equal(ov, "(null)");
        assert_true(host_pci_reattach(&vf, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_STATE);
        vb_error_free(&e);

        /* A group with another device on a host driver is not viable... */
        assert_true(host_pci_detach(&gpu, HOST_PCI_VFIO_DRIVER, NULL, 0, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_DEVICE_BUSY);
        assert_non_null(strstr(e.message, "'0000:05:00.1', which is bound to 'snd_hda_intel'"));
        vb_error_free(&e);
        assert_driver("0000:05:00.0", "nouveau");
        /* ... unless given away together. */
        assert_int_equal(host_pci_detach(&gpu, HOST_PCI_VFIO_DRIVER, group, 2, NULL, &e), 0);
        assert_int_equal(host_pci_detach(&audio, HOST_PCI_VFIO_DRIVER, group, 2, NULL, &e), 0);
        assert_driver("0000:05:00.1", "vfio-pci");
        assert_int_equal(host_pci_reattach(&gpu, NULL, &e), 0);
        assert_int_equal(host_pci_reattach(&audio, NULL, &e), 0);
        assert_driver("0000:05:00.0", "nouveau");
        assert_driver("0000:05:00.1", "snd_hda_intel");

        assert_true(host_pci_detach(&bridge, HOST_PCI_VFIO_DRIVER, NULL, 0, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        vb_error_free(&e);
        assert_true(host_pci_detach(&nope, HOST_PCI_VFIO_DRIVER, NULL, 0, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_DEVICE);
        vb_error_free(&e);
        /* Without an IOMMU group there is no VFIO. */
        {
                _cleanup_free_ char *g = host_sysfs_path("bus/pci/devices/0000:00:14.0/iommu_group");
                assert_int_equal(unlink(g), 0);
        }
        assert_true(host_pci_detach(&usbc, HOST_PCI_VFIO_DRIVER, NULL, 0, NULL, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        assert_non_null(strstr(e.message, "no IOMMU group"));
        vb_error_free(&e);
        assert_driver("0000:00:14.0", "xhci_hcd");
}

static size_t count_vfs(void) {
        _cleanup_free_ char *p = host_sysfs_path("bus/pci/devices/0000:03:00.0/sriov_numvfs");
        HostPciDevice d;
        HostPciAddress pf = A("0000:03:00.0");
        uint64_t numvfs;
        size_t n;

        assert_int_equal(host_pci_get(&pf, &d), 0);
        n = d.n_vfs;
        host_pci_device_done(&d);
        /* The VFs there are match what sriov_numvfs says. */
        assert_int_equal(host_sysfs_read_u64(p, &numvfs), 0);
        assert_int_equal(numvfs, n);
        return n;
}

static void test_num_vfs(void **state) {
        HostPciAddress pf = A("0000:03:00.0"), vf = A("0000:03:10.0");
        VbError e = VB_ERROR_NULL;

        assert_int_equal(host_pci_set_num_vfs(&pf, 4, &e), 0);
        assert_int_equal(count_vfs(), 4);
        assert_driver("0000:03:10.6", "igbvf");
        assert_int_equal(host_pci_set_num_vfs(&pf, 4, &e), 1);
        assert_true(host_pci_set_num_vfs(&pf, 8, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_INVALID_ARGUMENT);
        vb_error_free(&e);
        assert_true(host_pci_set_num_vfs(&vf, 1, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NOT_SUPPORTED);
        vb_error_free(&e);
        assert_int_equal(host_pci_set_num_vfs(&pf, 0, &e), 0);
        assert_int_equal(count_vfs(), 0);
        assert_int_equal(host_pci_set_num_vfs(&pf, 2, &e), 0);
        assert_int_equal(count_vfs(), 2);
}

static void test_usb_net(void **state) {
        HostUsbDevice *u = NULL;
        HostNetInterface *n = NULL;
        size_t nu = 0, nn = 0;
        bool found = false;
        HostVfConfig c = {}, set = { .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .vlan = 42 };
        VbError e = VB_ERROR_NULL;

        assert_int_equal(host_usb_list(&u, &nu), 0);
        assert_int_equal(nu, 2);
        for (size_t i = 0; i < nu; i++)
                if (streq(u[i].sysname, "1-2")) {
                        found = true;
                        assert_int_equal(u[i].bus, 1);
                        assert_int_equal(u[i].device, 3);
                        assert_int_equal(u[i].vendor_id, 0x046d);
                        assert_int_equal(u[i].product_id, 0xc52b);
                        assert_string_equal(u[i].parent_sysname, "usb1");
                }
        assert_true(found);
        host_usb_device_list_free(u, nu);

        assert_int_equal(host_net_list(&n, &nn), 0);
        assert_int_equal(nn, 1);
        assert_string_equal(n[0].name, "enp3s0f0");
        assert_string_equal(n[0].mac, "00:1b:21:3a:5c:10");
        assert_string_equal(n[0].state, "up");
        assert_int_equal(n[0].speed, 1000);
        assert_true(n[0].has_pci);
        assert_true(host_pci_address_equal(&n[0].pci, &(HostPciAddress) { 0, 3, 0, 0 }));
        host_net_interface_list_free(n, nn);

        /* The fake NIC remembers VF settings. */
        assert_int_equal(host_net_vf_get("enp3s0f0", 1, &c, &e), 0);
        assert_int_equal(c.vlan, 0);
        assert_int_equal(host_net_vf_set("enp3s0f0", 1, &set, &e), 0);
        assert_int_equal(host_net_vf_get("enp3s0f0", 1, &c, &e), 0);
        assert_memory_equal(c.mac, set.mac, 6);
        assert_int_equal(c.vlan, 42);
        assert_true(host_net_vf_get("eth9", 1, &c, &e) < 0);
        assert_int_equal(e.code, VB_ERROR_NO_SUCH_DEVICE);
        vb_error_free(&e);
}

/* The real rtnetlink path, on a veth in a network namespace of our own: the kernel has no VFs to offer
 * and answers "Operation not supported". */
static void test_vf_netlink_veth(void **state) {
        struct nl_sock *sk;
        struct rtnl_link *veth;
        HostVfConfig c = { .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .vlan = 42 };
        VbError e = VB_ERROR_NULL;
        pid_t pid;
        int status;

        if (geteuid() != 0) {
                print_message("not root: skipping the netlink VF check\n");
                return;
        }
        /* In a child, so that this process keeps its namespace. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(10);
                sk = nl_socket_alloc();
                if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                        _exit(11);
                veth = rtnl_link_veth_alloc();
                rtnl_link_set_name(veth, "vbt-pf0");
                rtnl_link_set_name(rtnl_link_veth_get_peer(veth), "vbt-pf1");
                if (rtnl_link_add(sk, veth, NLM_F_CREATE) < 0)
                        _exit(12);
                if (host_net_vf_set_netlink("vbt-pf0", 0, &c, &e) >= 0)
                        _exit(13);
                if (e.code != VB_ERROR_NOT_SUPPORTED || !strstr(e.message, "Operation not supported")) {
                        fprintf(stderr, "set: %d %s\n", e.code, e.message);
                        _exit(14);
                }
                vb_error_free(&e);
                if (host_net_vf_get_netlink("vbt-pf0", 0, &c, &e) >= 0 || e.code != VB_ERROR_NOT_SUPPORTED) {
                        fprintf(stderr, "get: %d %s\n", e.code, strempty(e.message));
                        _exit(15);
                }
                vb_error_free(&e);
                if (host_net_vf_set_netlink("vbt-none", 0, &c, &e) >= 0 || e.code != VB_ERROR_NO_SUCH_DEVICE)
                        _exit(16);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static int setup(void **state) {
        _cleanup_free_ char *cmd = NULL;
        const char *kernel = getenv("VIRTBUS_FAKE_SYSFS_KERNEL");
        char ready[16] = "";
        int pfd[2];

        if (!kernel || !mkdtemp(tmpdir) || asprintf(&root, "%s/sysfs", tmpdir) < 0 ||
            asprintf(&cmd, "cp -a '%s/tests/data/sysfs/host' '%s'", getenv("VIRTBUS_SOURCE_ROOT"), root) < 0 ||
            system(cmd) != 0 || pipe2(pfd, O_CLOEXEC) < 0)
                return -1;
        kernel_pid = fork();
        if (kernel_pid == 0) {
                dup2(pfd[1], STDOUT_FILENO);
                execl(kernel, kernel, root, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        if (read(pfd[0], ready, sizeof ready - 1) <= 0 || !strstr(ready, "ready"))
                return -1;
        close(pfd[0]);
        return host_set_sysfs_root(root);
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = NULL;

        if (kernel_pid > 0) {
                kill(kernel_pid, SIGTERM);
                (void) waitpid(kernel_pid, NULL, 0);
        }
        if (asprintf(&cmd, "rm -rf '%s'", tmpdir) >= 0)
                (void) system(cmd);
        free(root);
        return 0;
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pci_list),
                cmocka_unit_test(test_detach_reattach),
                cmocka_unit_test(test_num_vfs),
                cmocka_unit_test(test_usb_net),
                cmocka_unit_test(test_vf_netlink_veth),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
