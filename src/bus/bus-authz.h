/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who may do what: the polkit actions, and for every method and writable property of every interface the
 * action that guards it (or that it is an open read) with the details polkit's rules get. The handlers
 * ask polkit with these names; bus_property_gate() takes the writable properties' rows as they are; a
 * unit test (tests/unit/test-bus-authz.c) fails when a member of interfaces/ has no row or a row names an
 * action polkit/org.virtbus1.policy does not define; the documents (docs/dbus-api.md) say the same. */

#include <stdbool.h>
#include <stddef.h>

#define BUS_ACTION_MANAGE "org.virtbus1.manage"
#define BUS_ACTION_DOMAIN_MANAGE "org.virtbus1.domain.manage"
#define BUS_ACTION_DOMAIN_READ_SECURE "org.virtbus1.domain.read-secure"
#define BUS_ACTION_DOMAIN_HOST_FILES "org.virtbus1.domain.host-files"
#define BUS_ACTION_DOMAIN_MIGRATE "org.virtbus1.domain.migrate"
#define BUS_ACTION_DOMAIN_CONSOLE "org.virtbus1.domain.console"
#define BUS_ACTION_NETWORK_MANAGE "org.virtbus1.network.manage"
#define BUS_ACTION_NETWORK_HOST_FILES "org.virtbus1.network.host-files"
#define BUS_ACTION_HOSTDEV_ASSIGN "org.virtbus1.hostdev.assign"
#define BUS_ACTION_NODEDEV_MANAGE "org.virtbus1.nodedev.manage"
#define BUS_ACTION_SRIOV_CONFIGURE "org.virtbus1.sriov.configure"
#define BUS_ACTION_STORAGE_MANAGE "org.virtbus1.storage.manage"

typedef enum BusAuthzKind {
        BUS_AUTHZ_METHOD,
        BUS_AUTHZ_PROPERTY_WRITE,
} BusAuthzKind;

typedef struct BusAuthzRule {
        const char *interface;
        const char *member;
        BusAuthzKind kind;
        /* NULL: an open read (anyone may call it). */
        const char *action;
        /* The details polkit's rules get, comma-separated ("domain", "domain,path"). */
        const char *details;
        /* Other actions that may be asked on top, and when (NULL: none). */
        const char *also;
} BusAuthzRule;

extern const BusAuthzRule bus_authz_rules[];
extern const size_t bus_authz_n_rules;

const BusAuthzRule *bus_authz_find(const char *interface, const char *member, BusAuthzKind kind);
