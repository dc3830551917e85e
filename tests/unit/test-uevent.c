/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/host/uevent: the kernel's device event messages. The parser on messages written as the kernel
 * writes them; the socket with real parts: a veth pair created in a network namespace of this test
 * (the kernel sends its events to the uevent sockets of that namespace only) must arrive as an "add" of
 * subsystem net from the kernel, and a message another process sends to the socket must be ignored
 * (its netlink port is not the kernel's 0). */
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/uevent.h"
#include "util/macro.h"

/* A message as the kernel sends it: the strings given, each with its NUL. */
static size_t message(char *buf, size_t size, ...) {
        size_t n = 0;
        va_list ap;

        va_start(ap, size);
        for (const char *s; (s = va_arg(ap, const char *));) {
                size_t l = strlen(s) + 1;

                assert_true(n + l <= size);
                memcpy(buf + n, s, l);
                n += l;
        }
        va_end(ap);
        return n;
}

static void test_parse_kernel(void **state) {
        char buf[1024];
        HostUevent u;
        size_t n;

        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "ACTION=add",
                    "DEVPATH=/devices/virtual/net/veth0", "SUBSYSTEM=net", "INTERFACE=veth0", "IFINDEX=7",
                    "SEQNUM=4242", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), 1);
        assert_string_equal(u.action, "add");
        assert_string_equal(u.devpath, "/devices/virtual/net/veth0");
        assert_string_equal(u.subsystem, "net");
        assert_null(u.devtype);
        assert_int_equal(u.seqnum, 4242);

        n = message(buf, sizeof buf, "bind@/devices/pci0000:00/0000:00:1c.0/0000:03:10.2", "ACTION=bind",
                    "DEVPATH=/devices/pci0000:00/0000:00:1c.0/0000:03:10.2", "SUBSYSTEM=pci", "DRIVER=vfio-pci",
                    "PCI_SLOT_NAME=0000:03:10.2", "SEQNUM=1", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), 1);
        assert_string_equal(u.action, "bind");
        assert_string_equal(u.subsystem, "pci");

        n = message(buf, sizeof buf, "remove@/devices/pci0000:00/0000:00:01.2/usb1/1-2", "ACTION=remove",
                    "DEVPATH=/devices/pci0000:00/0000:00:01.2/usb1/1-2", "SUBSYSTEM=usb", "DEVTYPE=usb_device",
                    "SEQNUM=77", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), 1);
        assert_string_equal(u.action, "remove");
        assert_string_equal(u.subsystem, "usb");
        assert_string_equal(u.devtype, "usb_device");

        /* No SUBSYSTEM= and no SEQNUM=: parsed, with neither. */
        n = message(buf, sizeof buf, "change@/devices/system/cpu/cpu0", "ACTION=change",
                    "DEVPATH=/devices/system/cpu/cpu0", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), 1);
        assert_null(u.subsystem);
        assert_int_equal(u.seqnum, 0);
}

static void test_parse_refused(void **state) {
        static const char udev[] = "libudev\0\xfe\xed\xca\xfe(binary header)";
        char buf[1024];
        HostUevent u = {};
        size_t n;

        /* udev's re-sent events are not ours. */
        assert_int_equal(host_uevent_parse(udev, sizeof udev, &u), 0);
        /* Malformed. */
        assert_int_equal(host_uevent_parse(buf, 0, &u), -EBADMSG);
        n = message(buf, sizeof buf, "add /devices/virtual/net/veth0", "ACTION=add", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        n = message(buf, sizeof buf, "@/devices/virtual/net/veth0", "ACTION=add", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        n = message(buf, sizeof buf, "add@devices", "ACTION=add", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        /* The header without ACTION=, or keys contradicting it. */
        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "SUBSYSTEM=net", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "ACTION=remove", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "ACTION=addx", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "ACTION=add",
                    "DEVPATH=/devices/virtual/net/veth1", NULL);
        assert_int_equal(host_uevent_parse(buf, n, &u), -EBADMSG);
        /* A header or a last string without its NUL: nothing past len is read. */
        n = message(buf, sizeof buf, "add@/devices/virtual/net/veth0", "ACTION=add", "SUBSYSTEM=net", NULL);
        buf[n] = 'X';
        assert_int_equal(host_uevent_parse(buf, n - 1, &u), -EBADMSG);
        assert_int_equal(host_uevent_parse(buf, 10, &u), -EBADMSG);
        assert_int_equal(host_uevent_parse(buf, n, &u), 1);
}

/* Waits for the next message that parses, up to 5 s: 1, 0 (ignored), or -ETIMEDOUT. */
static int receive(int fd, char *buf, size_t size, HostUevent *u) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        for (;;) {
                r = host_uevent_receive(fd, buf, size, u);
                if (r != -EAGAIN)
                        return r;
                if (poll(&p, 1, 5000) <= 0)
                        return -ETIMEDOUT;
        }
}

/* In a child in a new network namespace: exits 0 when every check passed, else a number saying which. */
static int socket_checks(void) {
        static char buf[HOST_UEVENT_BUFFER_SIZE];
        struct sockaddr_nl self = {}, to = { .nl_family = AF_NETLINK };
        socklen_t len = sizeof self;
        struct nl_sock *sk;
        struct rtnl_link *veth;
        HostUevent u;
        char msg[256];
        size_t n;
        bool added = false;
        int fd, other, r;

        if (unshare(CLONE_NEWNET) < 0)
                return 10;
        fd = host_uevent_open();
        if (fd < 0)
                return 11;
        /* A message from a process, in the kernel's format, sent straight to our socket: ignored. */
        if (getsockname(fd, (struct sockaddr *) &self, &len) < 0)
                return 12;
        other = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
        if (other < 0)
                return 13;
        to.nl_pid = self.nl_pid;
        n = message(msg, sizeof msg, "add@/devices/virtual/net/fake0", "ACTION=add",
                    "DEVPATH=/devices/virtual/net/fake0", "SUBSYSTEM=net", NULL);
        if (sendto(other, msg, n, 0, (struct sockaddr *) &to, sizeof to) != (ssize_t) n)
                return 14;
        r = receive(fd, buf, sizeof buf, &u);
        if (r != 0) {
                fprintf(stderr, "a process's message: %d\n", r);
                return 15;
        }
        close(other);

        /* The kernel's own, for a veth pair made here. */
        sk = nl_socket_alloc();
        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                return 16;
        veth = rtnl_link_veth_alloc();
        rtnl_link_set_name(veth, "vbt-ue0");
        rtnl_link_set_name(rtnl_link_veth_get_peer(veth), "vbt-ue1");
        if (rtnl_link_add(sk, veth, NLM_F_CREATE) < 0)
                return 17;
        while (!added) {
                r = receive(fd, buf, sizeof buf, &u);
                if (r < 0) {
                        fprintf(stderr, "waiting for the veth's add: %s\n", strerror(-r));
                        return 18;
                }
                added = r == 1 && streq(u.action, "add") && streq_ptr(u.subsystem, "net") &&
                        streq(u.devpath, "/devices/virtual/net/vbt-ue0");
        }
        rtnl_link_put(veth);
        nl_socket_free(sk);
        close(fd);
        return 0;
}

static void test_socket(void **state) {
        pid_t pid;
        int status;

        if (geteuid() != 0) {
                print_message("not root: skipping the uevent socket checks (they need a network namespace)\n");
                return;
        }
        /* In a child, so that this process keeps its namespace. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(socket_checks());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_kernel),
                cmocka_unit_test(test_parse_refused),
                cmocka_unit_test(test_socket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
