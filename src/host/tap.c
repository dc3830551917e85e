/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "host/tap.h"
#include "util/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put);

static int nl_errno(int r) {
        switch (-r) {
        case NLE_PERM:
                return -EPERM;
        case NLE_NODEV:
        case NLE_OBJ_NOTFOUND:
                return -ENODEV;
        case NLE_NOMEM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

int host_tap_attach(const char *ifname, const char *bridge) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL, *change = NULL;
        int r, master = 0;

        if (bridge) {
                master = (int) if_nametoindex(bridge);
                if (master == 0)
                        return -ENODEV;
        }
        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nl_errno(r);
        r = rtnl_link_get_kernel(sk, 0, ifname, &link);
        if (r < 0)
                return nl_errno(r);
        change = rtnl_link_alloc();
        if (!change)
                return -ENOMEM;
        rtnl_link_set_flags(change, IFF_UP);
        if (master > 0)
                rtnl_link_set_master(change, master);
        r = rtnl_link_change(sk, link, change, 0);
        if (r < 0) {
                log_debug("Failed to set up '%s': %s", ifname, nl_geterror(r));
                return nl_errno(r);
        }
        return 0;
}

int host_tap_create(const char *ifname, int *ret_fd) {
        struct ifreq ifr = {};
        int fd;

        if (strlen(ifname) >= IFNAMSIZ)
                return -ENAMETOOLONG;
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        /* IFF_TUN_EXCL: never take over a tap that exists already (another domain's). */
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
        memcpy(ifr.ifr_name, ifname, strlen(ifname));
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}
