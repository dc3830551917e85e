/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From the validated <network> tree to NetworkDef. Each step consumes what it models; the remainder
 * stays in def->extra and is merged back by network_def_to_node(). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-util.h"
#include "conf/network-conf.h"

#define APPEND(array, n, allocated)                                                     \
        ({                                                                              \
                __typeof__(array) _a = GREEDY_REALLOC(array, allocated, (n) + 1);       \
                _a ? (memset(&(array)[n], 0, sizeof((array)[0])), &(array)[(n)++]) : NULL; \
        })

static int take_child_text(ConfNode *parent, const char *name, char **ret) {
        ConfNode *c = conf_node_use_child(parent, name);

        if (!c)
                return 0;
        free(*ret);
        *ret = conf_node_take_text(c);
        if (!*ret && !(*ret = strdup("")))
                return -ENOMEM;
        return 1;
}

static int take_int16(ConfNode *n, const char *attr, int32_t *ret, VbError *e) {
        uint64_t v;
        int r = conf_take_uint(n, attr, UINT16_MAX, &v, e);

        if (r < 0)
                return r;
        *ret = r > 0 ? (int32_t) v : -1;
        return 0;
}

int network_virtual_port_parse(ConfNode *node, NetworkVirtualPort **ret, VbError *reterr) {
        _cleanup_free_ NetworkVirtualPort *vp = new0(NetworkVirtualPort, 1);
        ConfNode *p;

        if (!vp)
                return -ENOMEM;
        vp->type = conf_node_take_attr(node, "type");
        p = conf_node_use_child(node, "parameters");
        if (p) {
                vp->managerid = conf_node_take_attr(p, "managerid");
                vp->typeid = conf_node_take_attr(p, "typeid");
                vp->typeidversion = conf_node_take_attr(p, "typeidversion");
                vp->instanceid = conf_node_take_attr(p, "instanceid");
                vp->profileid = conf_node_take_attr(p, "profileid");
                vp->interfaceid = conf_node_take_attr(p, "interfaceid");
        }
        *ret = TAKE_PTR(vp);
        return 0;
}

static int parse_prefix_or_netmask(ConfNode *n, char **netmask, uint32_t *prefix, bool *has_prefix, VbError *e) {
        uint64_t v;
        int r;

        r = conf_take_uint(n, "prefix", 128, &v, e);
        if (r < 0)
                return r;
        if (r > 0) {
                *prefix = (uint32_t) v;
                *has_prefix = true;
        }
        *netmask = conf_node_take_attr(n, "netmask");
        if (*netmask) {
                struct in_addr a;
                uint32_t m;

                if (*has_prefix)
                        return conf_error(e, n, "both 'netmask' and 'prefix' given (expected one of them)");
                if (inet_pton(AF_INET, *netmask, &a) != 1)
                        return conf_error(e, n, "invalid netmask '%s'", *netmask);
                m = ntohl(a.s_addr);
                if (m != 0 && (~m & (~m + 1)) != 0)
                        return conf_error(e, n, "netmask '%s' is not contiguous", *netmask);
                *prefix = (uint32_t) __builtin_popcount(m);
        }
        return 0;
}

static int parse_lease(ConfNode *parent, NetworkLease *ret, VbError *e) {
        ConfNode *c = conf_node_use_child(parent, "lease");
        int r;

        if (!c)
                return 0;
        r = conf_take_uint_base(c, "expiry", CONF_BASE_C, UINT32_MAX, &ret->expiry, e); /* as libvirt */
        if (r < 0)
                return r;
        ret->unit = conf_node_take_attr(c, "unit");
        ret->given = true;
        return 0;
}

static int parse_dhcp(NetworkIpDef *ip, ConfNode *dhcp, VbError *e) {
        ConfNode *c, *b;
        int r;

        ip->has_dhcp = true;
        while ((c = conf_node_use_child(dhcp, "range"))) {
                NetworkDhcpRange *range = APPEND(ip->ranges, ip->n_ranges, ip->n_ranges_allocated);

                if (!range)
                        return -ENOMEM;
                range->start = conf_node_take_attr(c, "start");
                range->end = conf_node_take_attr(c, "end");
                r = parse_lease(c, &range->lease, e);
                if (r < 0)
                        return r;
        }
        while ((c = conf_node_use_child(dhcp, "host"))) {
                NetworkDhcpHost *h = APPEND(ip->hosts, ip->n_hosts, ip->n_hosts_allocated);

                if (!h)
                        return -ENOMEM;
                h->mac = conf_node_take_attr(c, "mac");
                h->id = conf_node_take_attr(c, "id");
                h->name = conf_node_take_attr(c, "name");
                h->ip = conf_node_take_attr(c, "ip");
                if (!h->mac && !h->id && !h->name)
                        return conf_error(e, c, "a DHCP host needs 'mac', 'id' or 'name'");
                r = parse_lease(c, &h->lease, e);
                if (r < 0)
                        return r;
        }
        b = conf_node_use_child(dhcp, "bootp");
        if (b) {
                ip->bootp_file = conf_node_take_attr(b, "file");
                ip->bootp_server = conf_node_take_attr(b, "server");
        }
        return 0;
}

static int parse_ip(NetworkDef *def, ConfNode *n, VbError *e) {
        NetworkIpDef *ip = APPEND(def->ips, def->n_ips, def->n_ips_allocated);
        ConfNode *c;
        int r;

        if (!ip)
                return -ENOMEM;
        r = CONF_TAKE_ENUM(n, "family", network_family, false, &ip->family, e);
        if (r < 0)
                return r;
        ip->family_given = r > 0;
        ip->address = conf_node_take_attr(n, "address");
        if (!ip->family_given && ip->address && strchr(ip->address, ':'))
                ip->family = NETWORK_FAMILY_IPV6;
        r = parse_prefix_or_netmask(n, &ip->netmask, &ip->prefix, &ip->has_prefix, e);
        if (r < 0)
                return r;
        c = conf_node_use_child(n, "tftp");
        if (c)
                ip->tftp_root = conf_node_take_attr(c, "root");
        c = conf_node_use_child(n, "dhcp");
        if (c && (r = parse_dhcp(ip, c, e)) < 0)
                return r;
        return 0;
}

static int parse_route(NetworkDef *def, ConfNode *n, VbError *e) {
        NetworkRouteDef *rt = APPEND(def->routes, def->n_routes, def->n_routes_allocated);
        uint64_t v;
        int r;

        if (!rt)
                return -ENOMEM;
        rt->family = conf_node_take_attr(n, "family");
        rt->address = conf_node_take_attr(n, "address");
        rt->gateway = conf_node_take_attr(n, "gateway");
        r = parse_prefix_or_netmask(n, &rt->netmask, &rt->prefix, &rt->has_prefix, e);
        if (r < 0)
                return r;
        r = conf_take_uint(n, "metric", UINT32_MAX, &v, e);
        if (r < 0)
                return r;
        rt->metric = (uint32_t) v;
        rt->has_metric = r > 0;
        return 0;
}

static int parse_dns(NetworkDef *def, ConfNode *n, VbError *e) {
        NetworkDnsDef *dns = &def->dns;
        ConfNode *c, *hn;
        int r;

        def->has_dns = true;
        if ((r = conf_take_yesno(n, "enable", &dns->enable, e)) < 0 ||
            (r = conf_take_yesno(n, "forwardPlainNames", &dns->forward_plain_names, e)) < 0)
                return r;
        while ((c = conf_node_use_child(n, "forwarder"))) {
                struct NetworkDnsForwarder *f = APPEND(dns->forwarders, dns->n_forwarders, dns->n_forwarders_allocated);

                if (!f)
                        return -ENOMEM;
                f->addr = conf_node_take_attr(c, "addr");
                f->domain = conf_node_take_attr(c, "domain");
                if (!f->addr && !f->domain)
                        return conf_error(e, c, "a forwarder needs 'addr' or 'domain'");
        }
        while ((c = conf_node_use_child(n, "txt"))) {
                struct NetworkDnsTxt *t = APPEND(dns->txts, dns->n_txts, dns->n_txts_allocated);

                if (!t)
                        return -ENOMEM;
                t->name = conf_node_take_attr(c, "name");
                t->value = conf_node_take_attr(c, "value");
        }
        while ((c = conf_node_use_child(n, "srv"))) {
                struct NetworkDnsSrv *s = APPEND(dns->srvs, dns->n_srvs, dns->n_srvs_allocated);

                if (!s)
                        return -ENOMEM;
                s->service = conf_node_take_attr(c, "service");
                s->protocol = conf_node_take_attr(c, "protocol");
                s->domain = conf_node_take_attr(c, "domain");
                s->target = conf_node_take_attr(c, "target");
                if ((r = take_int16(c, "port", &s->port, e)) < 0 || (r = take_int16(c, "priority", &s->priority, e)) < 0 ||
                    (r = take_int16(c, "weight", &s->weight, e)) < 0)
                        return r;
        }
        while ((c = conf_node_use_child(n, "host"))) {
                NetworkDnsHost *h = APPEND(dns->hosts, dns->n_hosts, dns->n_hosts_allocated);

                if (!h)
                        return -ENOMEM;
                h->ip = conf_node_take_attr(c, "ip");
                while ((hn = conf_node_use_child(c, "hostname"))) {
                        char **slot = APPEND(h->hostnames, h->n_hostnames, h->n_hostnames_allocated);

                        if (!slot)
                                return -ENOMEM;
                        *slot = conf_node_take_text(hn);
                        if (!*slot)
                                return conf_error(e, hn, "empty host name");
                }
        }
        /* A network without a DNS server has nothing to serve or forward. */
        if (dns->enable == 0 && (dns->n_forwarders > 0 || dns->n_txts > 0 || dns->n_srvs > 0 || dns->n_hosts > 0))
                return conf_error(e, n, "DNS is disabled (enable='no') but <dns> holds %s (expected an empty <dns>)",
                                  dns->n_forwarders > 0 ? "a <forwarder>" : dns->n_txts > 0 ? "a <txt> record" :
                                  dns->n_srvs > 0 ? "an <srv> record" : "a <host>");
        return 0;
}

static int take_pci_address(ConfNode *n, NetworkPciAddress *a, VbError *e) {
        uint64_t v;
        int r;

        *a = (NetworkPciAddress) {};
        free(conf_node_take_attr(n, "type"));
        if ((r = conf_take_uint_base(n, "domain", CONF_BASE_C, 0xffff, &v, e)) < 0)
                return r;
        a->domain = (uint32_t) v * (r > 0);
        if ((r = conf_take_uint_base(n, "bus", CONF_BASE_C, 0xff, &v, e)) < 0)
                return r;
        a->bus = (uint32_t) v * (r > 0);
        if ((r = conf_take_uint_base(n, "slot", CONF_BASE_C, 0x1f, &v, e)) < 0)
                return r;
        a->slot = (uint32_t) v * (r > 0);
        if ((r = conf_take_uint_base(n, "function", CONF_BASE_C, 7, &v, e)) < 0)
                return r;
        a->function = (uint32_t) v * (r > 0);
        return 0;
}

static int parse_forward(NetworkDef *def, ConfNode *n, VbError *e) {
        NetworkForwardDef *f = &def->forward;
        _cleanup_free_ char *dev = NULL;
        ConfNode *c;
        uint64_t v;
        int r;

        def->has_forward = true;
        f->mode = NETWORK_FORWARD_NAT;
        r = CONF_TAKE_ENUM(n, "mode", network_forward_mode, false, &f->mode, e);
        if (r < 0)
                return r;
        f->mode_given = r > 0;
        if ((r = conf_take_yesno(n, "managed", &f->managed, e)) < 0)
                return r;
        dev = conf_node_take_attr(n, "dev");
        while ((c = conf_node_use_child(n, "interface"))) {
                char **slot = APPEND(f->devs, f->n_devs, f->n_devs_allocated);

                if (!slot)
                        return -ENOMEM;
                *slot = conf_node_take_attr(c, "dev");
                for (size_t i = 0; i + 1 < f->n_devs; i++)
                        if (streq(f->devs[i], *slot))
                                return conf_error(e, c, "forward device '%s' is listed twice", *slot);
        }
        /* The first <interface> stands for dev=: either may be given, both must agree. */
        if (dev && f->n_devs > 0 && !streq(dev, f->devs[0]))
                return conf_error(e, n, "'dev' is '%s' but the first <interface> is '%s' (expected the same device)",
                                  dev, f->devs[0]);
        if (dev && f->n_devs == 0) {
                char **slot = APPEND(f->devs, f->n_devs, f->n_devs_allocated);

                if (!slot)
                        return -ENOMEM;
                *slot = TAKE_PTR(dev);
        }
        c = conf_node_use_child(n, "pf");
        if (c)
                f->pf_dev = conf_node_take_attr(c, "dev");
        while ((c = conf_node_use_child(n, "address"))) {
                NetworkPciAddress *a = APPEND(f->addresses, f->n_addresses, f->n_addresses_allocated);

                if (!a)
                        return -ENOMEM;
                r = take_pci_address(c, a, e);
                if (r < 0)
                        return r;
                for (size_t i = 0; i + 1 < f->n_addresses; i++)
                        if (memcmp(&f->addresses[i], a, sizeof(*a)) == 0)
                                return conf_error(e, c, "PCI device %04x:%02x:%02x.%x is listed twice "
                                                  "(expected each device of the pool once)",
                                                  a->domain, a->bus, a->slot, a->function);
        }
        c = conf_node_use_child(n, "nat");
        if (c) {
                ConfNode *a = conf_node_use_child(c, "address"), *p = conf_node_use_child(c, "port");

                if (a) {
                        f->nat_start = conf_node_take_attr(a, "start");
                        f->nat_end = conf_node_take_attr(a, "end");
                }
                if (p) {
                        if ((r = conf_take_uint(p, "start", UINT16_MAX, &v, e)) < 0)
                                return r;
                        f->nat_port_start = (uint32_t) v;
                        if ((r = conf_take_uint(p, "end", UINT16_MAX, &v, e)) < 0)
                                return r;
                        f->nat_port_end = (uint32_t) v;
                }
        }
        return 0;
}

static int parse_portgroups(NetworkDef *def, ConfNode *root, VbError *e) {
        ConfNode *c, *vp;
        int b, r;

        while ((c = conf_node_use_child(root, "portgroup"))) {
                NetworkPortGroup *pg = APPEND(def->portgroups, def->n_portgroups, def->n_portgroups_allocated);

                if (!pg)
                        return -ENOMEM;
                pg->name = conf_node_take_attr(c, "name");
                b = -1;
                if ((r = conf_take_yesno(c, "default", &b, e)) < 0)
                        return r;
                pg->is_default = b > 0;
                vp = conf_node_use_child(c, "virtualport");
                if (vp && (r = network_virtual_port_parse(vp, &pg->virtualport, e)) < 0)
                        return r;
        }
        return 0;
}

static int parse_identity(NetworkDef *def, ConfNode *root, VbError *e) {
        ConfNode *c;
        uint64_t v;
        int r;

        if ((r = take_child_text(root, "name", &def->name)) < 0)
                return r;
        r = conf_check_name(root, "network name", def->name, e);
        if (r < 0)
                return r;
        r = conf_take_uuid(root, def->uuid, &def->uuid_text, e);
        if (r < 0)
                return r;
        if (r > 0)
                def->has_uuid = true;
        c = conf_node_use_child(root, "bridge");
        if (c) {
                def->bridge = conf_node_take_attr(c, "name");
                if ((r = conf_take_yesno(c, "stp", &def->stp, e)) < 0)
                        return r;
                if ((r = conf_take_uint(c, "delay", UINT32_MAX, &v, e)) < 0)
                        return r;
                def->delay = (uint32_t) v;
                def->has_delay = r > 0;
        }
        c = conf_node_use_child(root, "mac");
        if (c) {
                _cleanup_free_ char *mac = conf_node_take_attr(c, "address");

                if (!mac || conf_mac_parse(mac, def->mac) < 0)
                        return conf_error(e, c, "invalid MAC address '%s'", strempty(mac));
                def->has_mac = true;
                def->mac_text = TAKE_PTR(mac);
        }
        c = conf_node_use_child(root, "domain");
        if (c)
                def->domain_name = conf_node_take_attr(c, "name");
        c = conf_node_use_child(root, "mtu");
        if (c) {
                if ((r = conf_take_uint(c, "size", UINT32_MAX, &v, e)) < 0)
                        return r;
                def->mtu = (uint32_t) v;
        }
        return 0;
}

/* <metadata><virtbus:access uid=/>: taken out of the metadata into access_uid. The metadata element is
 * marked used, so that formatting puts the access element back into the same element. */
static int parse_access(NetworkDef *def, ConfNode *root, VbError *e) {
        ConfNode *md = conf_node_use_child(root, "metadata");
        uint64_t v;
        int r, host_files = -1;

        for (size_t i = 0; md && i < md->n_children; i++) {
                _cleanup_(conf_node_freep) ConfNode *c = NULL;

                if (!streq(md->children[i]->name, "access") || !streq_ptr(md->children[i]->ns_href, NETWORK_VIRTBUS_NS))
                        continue;
                c = conf_node_detach_child(md, i);
                r = conf_take_uint(c, "uid", UINT32_MAX - 1, &v, e);
                if (r < 0 || (r = conf_take_yesno(c, "host-files", &host_files, e)) < 0)
                        return r;
                def->has_access_uid = true;
                def->access_uid = (uint32_t) v;
                def->access_host_files = host_files > 0;
                break;
        }
        return 0;
}

/* A missing UUID: random, or derived from the canonical text (NETWORK_PARSE_STABLE_DEFAULTS). */
static int fill_defaults(NetworkDef *def, unsigned flags) {
        _cleanup_free_ char *seed = NULL;
        int r;

        if (def->has_uuid)
                return 0;
        if (flags & NETWORK_PARSE_STABLE_DEFAULTS) {
                r = network_def_format(def, &seed);
                if (r < 0)
                        return r;
        }
        conf_fill_bytes(def->uuid, 16, seed, 0);
        def->uuid[6] = (def->uuid[6] & 0x0f) | 0x40;
        def->uuid[8] = (def->uuid[8] & 0x3f) | 0x80;
        def->has_uuid = true;
        return 0;
}

int network_def_parse_node(ConfNode *root, unsigned flags, NetworkDef **ret, VbError *reterr) {
        _cleanup_(network_def_freep) NetworkDef *def = NULL;
        ConfNode *c;
        int r;

        def = new0(NetworkDef, 1);
        if (!def) {
                conf_node_free(root);
                return -ENOMEM;
        }
        def->extra = root;
        def->stp = -1;
        def->forward.managed = -1;
        def->dns.enable = def->dns.forward_plain_names = -1;
        r = parse_identity(def, root, reterr);
        if (r < 0)
                return r;
        r = parse_access(def, root, reterr);
        if (r < 0)
                return r;
        c = conf_node_use_child(root, "forward");
        if (c && (r = parse_forward(def, c, reterr)) < 0)
                return r;
        c = conf_node_use_child(root, "virtualport");
        if (c && (r = network_virtual_port_parse(c, &def->virtualport, reterr)) < 0)
                return r;
        if ((r = parse_portgroups(def, root, reterr)) < 0)
                return r;
        c = conf_node_use_child(root, "dns");
        if (c && (r = parse_dns(def, c, reterr)) < 0)
                return r;
        while ((c = conf_node_use_child(root, "ip")))
                if ((r = parse_ip(def, c, reterr)) < 0)
                        return r;
        while ((c = conf_node_use_child(root, "route")))
                if ((r = parse_route(def, c, reterr)) < 0)
                        return r;
        r = network_def_validate(def, reterr);
        if (r < 0)
                return r;
        r = fill_defaults(def, flags);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}
