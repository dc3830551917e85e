/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "host/uevent.h"
#include "util/log.h"
#include "util/macro.h"

/* The kernel's multicast group; udev's is 2. */
#define UEVENT_GROUP_KERNEL 1U
/* Room for a burst (a NIC creating 64 VFs sends a few hundred messages at once). */
#define UEVENT_RECEIVE_BUFFER (1024 * 1024)

int host_uevent_open(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = UEVENT_GROUP_KERNEL };
        int fd, size = UEVENT_RECEIVE_BUFFER;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return log_debug_errno(errno, "Failed to open a uevent socket: %m");
        /* FORCE goes past rmem_max but needs CAP_NET_ADMIN; the plain one is capped, which is fine. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = log_debug_errno(errno, "Failed to bind the uevent socket to the kernel's group: %m");
                close(fd);
                return r;
        }
        return fd;
}

/* The value of "KEY=value" if s starts with key and '='. */
static const char *key_value(const char *s, const char *key) {
        size_t n = strlen(key);

        return strncmp(s, key, n) == 0 && s[n] == '=' ? s + n + 1 : NULL;
}

int host_uevent_parse(const char *buf, size_t len, HostUevent *ret) {
        static const char udev_magic[] = "libudev"; /* with its NUL: 8 bytes */
        HostUevent u = {};
        const char *end = buf + len, *s, *nul, *at, *v;
        size_t action_len;

        if (len >= sizeof udev_magic && memcmp(buf, udev_magic, sizeof udev_magic) == 0)
                return 0;
        nul = len > 0 ? memchr(buf, 0, len) : NULL;
        if (!nul)
                return -EBADMSG;
        at = strchr(buf, '@');
        if (!at || at == buf || at[1] != '/')
                return -EBADMSG;
        /* The header's action is not NUL-terminated: ACTION= gives the string, checked against it. */
        action_len = (size_t) (at - buf);
        u.devpath = at + 1;
        for (s = nul + 1; s < end; s = nul + 1) {
                nul = memchr(s, 0, (size_t) (end - s));
                if (!nul)
                        return -EBADMSG;
                if ((v = key_value(s, "ACTION"))) {
                        if (strlen(v) != action_len || strncmp(v, buf, action_len) != 0)
                                return -EBADMSG;
                        u.action = v;
                } else if ((v = key_value(s, "DEVPATH"))) {
                        if (!streq(v, u.devpath))
                                return -EBADMSG;
                } else if ((v = key_value(s, "SUBSYSTEM")))
                        u.subsystem = v;
                else if ((v = key_value(s, "DEVTYPE")))
                        u.devtype = v;
                else if ((v = key_value(s, "SEQNUM")))
                        u.seqnum = strtoull(v, NULL, 10);
        }
        /* The kernel always sends ACTION=; without it the action would have no string of its own. */
        if (!u.action)
                return -EBADMSG;
        *ret = u;
        return 1;
}

int host_uevent_receive(int fd, char *buf, size_t size, HostUevent *ret) {
        struct sockaddr_nl sender = {};
        struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
        struct msghdr msg = { .msg_name = &sender, .msg_namelen = sizeof sender, .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;
        int r;

        if (size < 2)
                return -EINVAL;
        n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        if (msg.msg_namelen != sizeof sender || sender.nl_family != AF_NETLINK || sender.nl_pid != 0) {
                log_debug("Ignoring a uevent message from netlink port %u, not the kernel.", sender.nl_pid);
                return 0;
        }
        if (msg.msg_flags & MSG_TRUNC) {
                log_debug("Ignoring a truncated uevent message (more than %zu bytes).", size - 1);
                return 0;
        }
        buf[n] = 0; /* a last string without its NUL is refused by the parser, never read past */
        r = host_uevent_parse(buf, (size_t) n, ret);
        if (r < 0)
                log_debug_errno(r, "Ignoring a malformed uevent message: %m");
        return r > 0;
}
