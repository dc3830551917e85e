/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf-node.h"
#include "util/error.h"
#include "util/string-table.h"

/* A virtual network (<network>): the typed part is what the service acts on (bridge, addresses, DHCP,
 * DNS, forwarding, pools of devices, port groups); everything else is kept in extra and merged back
 * when formatting, as for domains (see conf-node.h). */

typedef enum NetworkForwardMode {
        NETWORK_FORWARD_NONE, /* isolated: no <forward> */
        NETWORK_FORWARD_NAT,
        NETWORK_FORWARD_ROUTE,
        NETWORK_FORWARD_OPEN,
        NETWORK_FORWARD_BRIDGE,
        NETWORK_FORWARD_PRIVATE,
        NETWORK_FORWARD_VEPA,
        NETWORK_FORWARD_PASSTHROUGH,
        NETWORK_FORWARD_HOSTDEV,
        _NETWORK_FORWARD_MAX,
        _NETWORK_FORWARD_INVALID = -EINVAL,
} NetworkForwardMode;

DECLARE_STRING_TABLE_LOOKUP(network_forward_mode, NetworkForwardMode);

typedef enum NetworkFamily {
        NETWORK_FAMILY_IPV4,
        NETWORK_FAMILY_IPV6,
        _NETWORK_FAMILY_MAX,
        _NETWORK_FAMILY_INVALID = -EINVAL,
} NetworkFamily;

DECLARE_STRING_TABLE_LOOKUP(network_family, NetworkFamily);

/* <virtualport>: type (may be NULL in a port group that only adds parameters) and its parameters. */
typedef struct NetworkVirtualPort {
        char *type;
        char *managerid, *typeid, *typeidversion, *instanceid, *profileid, *interfaceid;
} NetworkVirtualPort;

typedef struct NetworkPciAddress {
        uint32_t domain, bus, slot, function;
} NetworkPciAddress;

typedef struct NetworkPortGroup {
        char *name;
        bool is_default;
        NetworkVirtualPort *virtualport; /* NULL: none */
} NetworkPortGroup;

/* <lease expiry= unit=>: the lease time of a range or host. */
typedef struct NetworkLease {
        bool given;
        uint64_t expiry; /* in unit; 0: infinite */
        char *unit;      /* seconds, minutes, hours; NULL: minutes */
} NetworkLease;

typedef struct NetworkDhcpRange {
        char *start, *end;
        NetworkLease lease;
} NetworkDhcpRange;

typedef struct NetworkDhcpHost {
        char *mac, *id, *name, *ip;
        NetworkLease lease;
} NetworkDhcpHost;

typedef struct NetworkIpDef {
        NetworkFamily family;
        bool family_given; /* family='...' was written */
        char *address;
        char *netmask;   /* as given (IPv4 only); NULL if a prefix was given */
        uint32_t prefix; /* from prefix= or netmask=; 0 if neither */
        bool has_prefix; /* prefix= was written */
        char *tftp_root;
        bool has_dhcp;
        NetworkDhcpRange *ranges;
        size_t n_ranges, n_ranges_allocated;
        NetworkDhcpHost *hosts;
        size_t n_hosts, n_hosts_allocated;
        char *bootp_file, *bootp_server;
} NetworkIpDef;

typedef struct NetworkRouteDef {
        char *family, *address, *netmask, *gateway;
        uint32_t prefix, metric;
        bool has_prefix, has_metric;
} NetworkRouteDef;

typedef struct NetworkDnsHost {
        char *ip;
        char **hostnames;
        size_t n_hostnames, n_hostnames_allocated;
} NetworkDnsHost;

typedef struct NetworkDnsDef {
        int enable;              /* -1 unset, 0 no, 1 yes */
        int forward_plain_names; /* -1 unset */
        struct NetworkDnsForwarder {
                char *addr, *domain;
        } *forwarders;
        size_t n_forwarders, n_forwarders_allocated;
        struct NetworkDnsTxt {
                char *name, *value;
        } *txts;
        size_t n_txts, n_txts_allocated;
        struct NetworkDnsSrv {
                char *service, *protocol, *domain, *target;
                int32_t port, priority, weight; /* -1: not given */
        } *srvs;
        size_t n_srvs, n_srvs_allocated;
        NetworkDnsHost *hosts;
        size_t n_hosts, n_hosts_allocated;
} NetworkDnsDef;

typedef struct NetworkForwardDef {
        NetworkForwardMode mode;
        bool mode_given; /* <forward> without mode= means nat */
        int managed;     /* -1 unset */
        /* The forward devices; the first one is what <forward dev=> names. */
        char **devs;
        size_t n_devs, n_devs_allocated;
        char *pf_dev; /* hostdev/passthrough: the VFs of this PF form the pool */
        NetworkPciAddress *addresses;
        size_t n_addresses, n_addresses_allocated;
        char *nat_start, *nat_end;  /* <nat><address start= end=> */
        uint32_t nat_port_start, nat_port_end; /* 0: not given */
} NetworkForwardDef;

typedef struct NetworkDef {
        char *name;
        uint8_t uuid[16];
        bool has_uuid;
        char *uuid_text; /* as written (dashes, case), so that the user's spelling is kept */
        char *bridge; /* <bridge name=> */
        int stp;      /* -1 unset, 0 off, 1 on */
        uint32_t delay;
        bool has_delay;
        uint8_t mac[6];
        bool has_mac;
        char *mac_text; /* as written */
        char *domain_name; /* <domain name=> */
        uint32_t mtu;      /* 0: not given */
        bool has_forward;  /* a <forward> element was given */
        NetworkForwardDef forward;
        NetworkVirtualPort *virtualport;
        NetworkPortGroup *portgroups;
        size_t n_portgroups, n_portgroups_allocated;
        NetworkIpDef *ips;
        size_t n_ips, n_ips_allocated;
        NetworkRouteDef *routes;
        size_t n_routes, n_routes_allocated;
        bool has_dns;
        NetworkDnsDef dns;
        /* Whose rights the host paths of the definition (<tftp root=>) were checked with when it was
         * defined: set by the service, never taken from a caller; kept in the saved definition as
         * <metadata><virtbus:access uid='N'/></metadata> (NETWORK_VIRTBUS_NS). host-files='yes': that
         * caller could not read them, and polkit allowed org.virtbus1.network.host-files; they are then
         * opened with the service's rights, but never through a symlink. */
        bool has_access_uid;
        uint32_t access_uid;
        bool access_host_files;

        ConfNode *extra; /* everything else the user gave */
} NetworkDef;

/* Our own namespace in <metadata> (see access_uid). */
#define NETWORK_VIRTBUS_NS "https://virtbus.org/schemas/network/1.0"
#define NETWORK_DNSMASQ_NS "http://libvirt.org/schemas/network/dnsmasq/1.0"

#define NETWORK_PARSE_STABLE_DEFAULTS (1u << 0) /* derive a missing UUID from the content */

int network_def_parse_string(const char *xml, unsigned flags, NetworkDef **ret, VbError *reterr);
int network_def_format(const NetworkDef *def, char **ret);
int network_def_copy(const NetworkDef *def, NetworkDef **ret);
NetworkDef *network_def_free(NetworkDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetworkDef *, network_def_free);

/* Semantic checks beyond the schema (forward dev vs. interface list, modes vs. what they need...). */
int network_def_validate(const NetworkDef *def, VbError *reterr);

void network_def_get_uuid_string(const NetworkDef *def, char ret[37]);
/* The name in a definition, without validating it (for polkit details before parsing); caller frees. */
char *network_def_peek_name(const char *xml);

/* True for modes where guests connect to a bridge the service creates (none/nat/route/open). */
bool network_def_has_own_bridge(const NetworkDef *def);
/* The TFTP root of the definition (the first <ip> with one; validation allows one), or NULL. */
const char *network_def_tftp_root(const NetworkDef *def);
/* Whether the definition has <dnsmasq:options>. */
bool network_def_has_dnsmasq_options(const NetworkDef *def);
/* The first IPv4 <ip> with a prefix, or NULL. */
const NetworkIpDef *network_def_ipv4(const NetworkDef *def);

void network_virtual_port_free(NetworkVirtualPort *vp);
int network_virtual_port_copy(const NetworkVirtualPort *vp, NetworkVirtualPort **ret);

/* Internal to src/conf: the <network> element from a ConfNode tree (consumed) and back. */
int network_def_parse_node(ConfNode *root, unsigned flags, NetworkDef **ret, VbError *reterr);
int network_def_to_node(const NetworkDef *def, ConfNode **ret);
int network_virtual_port_parse(ConfNode *node, NetworkVirtualPort **ret, VbError *reterr);
int network_virtual_port_to_node(const NetworkVirtualPort *vp, ConfNode *parent);
