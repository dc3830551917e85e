/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tap devices a hypervisor opened: bring them up and, with a bridge, enslave them (libnl-3, in the
 * current network namespace). */
int host_tap_attach(const char *ifname, const char *bridge);
