/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "host/tap.h"
#include "util/log.h"

int host_tap_attach(const char *ifname, const char *bridge) {
        struct nl_sock *sk = NULL;
        struct rtnl_link *link = NULL, *change = NULL;
        int r, master = 0;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                r = -EIO;
                goto finish;
        }
        if (bridge) {
                master = (int) if_nametoindex(bridge);
                if (master == 0) {
                        r = -errno ?: -ENODEV;
                        goto finish;
                }
        }
        r = rtnl_link_get_kernel(sk, 0, ifname, &link);
        if (r < 0) {
                r = -ENODEV;
                goto finish;
        }
        change = rtnl_link_alloc();
        if (!change) {
                r = -ENOMEM;
                goto finish;
        }
        rtnl_link_set_flags(change, IFF_UP);
        if (master > 0)
                rtnl_link_set_master(change, master);
        r = rtnl_link_change(sk, link, change, 0);
        if (r < 0) {
                log_debug("Failed to set up '%s': %s", ifname, nl_geterror(r));
                r = r == -NLE_PERM ? -EPERM : r == -NLE_NODEV ? -ENODEV : -EIO;
        }
finish:
        rtnl_link_put(change);
        rtnl_link_put(link);
        nl_socket_free(sk);
        return r;
}
