/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tap devices a hypervisor opened: bring them up and, with a bridge, enslave them (libnl-3, in the
 * current network namespace). */
int host_tap_attach(const char *ifname, const char *bridge);

/* Makes the tap device ifname (a new one: an existing device of that name is refused) and returns its
 * descriptor, for a hypervisor that may not open /dev/net/tun itself; the tap goes away with the last
 * descriptor. */
int host_tap_create(const char *ifname, int *ret_fd);
