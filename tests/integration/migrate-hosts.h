/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A second "host" for the migration tests, next to the harness's: its own dbus-daemon (the same policy as
 * the harness's bus, another socket), its own polkitd on it, and its own virtbusd with its own state
 * dirs, optionally inside a network namespace (ip netns exec). The harness's bus and this one are two
 * hosts' system buses; a client holds a connection to each. */
#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"

typedef struct MigHost {
        char *dir;
        char *address;
        char *daemon_log;
        pid_t dbus_pid, polkit_pid, daemon_pid;
        sd_bus *bus; /* root's connection to its bus */
} MigHost;

/* driver: "test" or "qemu"; netns: NULL or the name of a namespace (ip netns) virtbusd runs in. Fails the
 * test on error. */
void mig_host_start(Harness *h, const char *name, const char *driver, const char *netns, MigHost *ret);
/* Stops it (virtbusd first, with SIGTERM, then polkitd and dbus-daemon) and prints virtbusd's log when
 * print_log. QEMUs it left behind are killed by their pidfiles under its runtime dir. */
void mig_host_stop(MigHost *host, bool print_log);
/* The pid of the QEMU of uuid on that host, or 0. */
pid_t mig_host_qemu_pid(MigHost *host, const char *uuid);
