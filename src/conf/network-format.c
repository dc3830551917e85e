/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From NetworkDef to a ConfNode tree: the typed part is generated, then the extra the parser kept is
 * merged in (conf_node_merge), which also puts children in a canonical order (conf-order.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/network-conf.h"

static int set_yesno(ConfNode *n, const char *attr, int v) {
        return v < 0 ? 0 : conf_node_set_attr(n, attr, v ? "yes" : "no");
}

static int set_u32(ConfNode *n, const char *attr, uint32_t v) {
        return conf_node_set_attrf(n, attr, "%" PRIu32, v);
}

int network_virtual_port_to_node(const NetworkVirtualPort *vp, ConfNode *parent) {
        ConfNode *n = conf_node_add(parent, "virtualport"), *p;

        if (!n || conf_node_set_attr(n, "type", vp->type) < 0)
                return -ENOMEM;
        if (!vp->managerid && !vp->typeid && !vp->typeidversion && !vp->instanceid && !vp->profileid &&
            !vp->interfaceid)
                return 0;
        p = conf_node_add(n, "parameters");
        if (!p || conf_node_set_attr(p, "managerid", vp->managerid) < 0 ||
            conf_node_set_attr(p, "typeid", vp->typeid) < 0 ||
            conf_node_set_attr(p, "typeidversion", vp->typeidversion) < 0 ||
            conf_node_set_attr(p, "instanceid", vp->instanceid) < 0 ||
            conf_node_set_attr(p, "profileid", vp->profileid) < 0 ||
            conf_node_set_attr(p, "interfaceid", vp->interfaceid) < 0)
                return -ENOMEM;
        return 0;
}

static int format_forward(const NetworkDef *def, ConfNode *root) {
        const NetworkForwardDef *f = &def->forward;
        ConfNode *n, *c;

        if (!def->has_forward)
                return 0;
        n = conf_node_add(root, "forward");
        if (!n || conf_node_set_attr(n, "mode", network_forward_mode_to_string(f->mode)) < 0 ||
            set_yesno(n, "managed", f->managed) < 0)
                return -ENOMEM;
        /* Both forms on output: dev= and the list, whose first entry it is. */
        if (f->n_devs > 0 && conf_node_set_attr(n, "dev", f->devs[0]) < 0)
                return -ENOMEM;
        if (f->nat_start || f->nat_port_start || f->nat_port_end) {
                ConfNode *nat = conf_node_add(n, "nat");

                if (!nat)
                        return -ENOMEM;
                if (f->nat_start) {
                        c = conf_node_add(nat, "address");
                        if (!c || conf_node_set_attr(c, "start", f->nat_start) < 0 ||
                            conf_node_set_attr(c, "end", f->nat_end) < 0)
                                return -ENOMEM;
                }
                if (f->nat_port_start || f->nat_port_end) {
                        c = conf_node_add(nat, "port");
                        if (!c || set_u32(c, "start", f->nat_port_start) < 0 || set_u32(c, "end", f->nat_port_end) < 0)
                                return -ENOMEM;
                }
        }
        if (f->pf_dev) {
                c = conf_node_add(n, "pf");
                if (!c || conf_node_set_attr(c, "dev", f->pf_dev) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < f->n_devs; i++) {
                c = conf_node_add(n, "interface");
                if (!c || conf_node_set_attr(c, "dev", f->devs[i]) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < f->n_addresses; i++) {
                const NetworkPciAddress *a = &f->addresses[i];

                c = conf_node_add(n, "address");
                if (!c || conf_node_set_attr(c, "type", "pci") < 0 ||
                    conf_node_set_attrf(c, "domain", "0x%04" PRIx32, a->domain) < 0 ||
                    conf_node_set_attrf(c, "bus", "0x%02" PRIx32, a->bus) < 0 ||
                    conf_node_set_attrf(c, "slot", "0x%02" PRIx32, a->slot) < 0 ||
                    conf_node_set_attrf(c, "function", "0x%" PRIx32, a->function) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_identity(const NetworkDef *def, ConfNode *root) {
        char buf[37];
        ConfNode *c;

        if (conf_node_add_text(root, "name", def->name) < 0)
                return -ENOMEM;
        if (def->has_uuid) {
                conf_uuid_format(def->uuid, buf);
                if (conf_node_add_text(root, "uuid", def->uuid_text ?: buf) < 0)
                        return -ENOMEM;
        }
        if (def->bridge || def->stp >= 0 || def->has_delay) {
                c = conf_node_add(root, "bridge");
                if (!c || conf_node_set_attr(c, "name", def->bridge) < 0 ||
                    (def->stp >= 0 && conf_node_set_attr(c, "stp", def->stp ? "on" : "off") < 0) ||
                    (def->has_delay && set_u32(c, "delay", def->delay) < 0))
                        return -ENOMEM;
        }
        if (def->mtu > 0 && (!(c = conf_node_add(root, "mtu")) || set_u32(c, "size", def->mtu) < 0))
                return -ENOMEM;
        if (def->has_mac) {
                conf_mac_format(def->mac, buf);
                c = conf_node_add(root, "mac");
                if (!c || conf_node_set_attr(c, "address", def->mac_text ?: buf) < 0)
                        return -ENOMEM;
        }
        if (def->domain_name && (!(c = conf_node_add(root, "domain")) || conf_node_set_attr(c, "name", def->domain_name) < 0))
                return -ENOMEM;
        return 0;
}

static int set_i16(ConfNode *n, const char *attr, int32_t v) {
        return v < 0 ? 0 : conf_node_set_attrf(n, attr, "%" PRIi32, v);
}

static int format_dns(const NetworkDef *def, ConfNode *root) {
        const NetworkDnsDef *dns = &def->dns;
        ConfNode *n, *c;

        if (!def->has_dns)
                return 0;
        n = conf_node_add(root, "dns");
        if (!n || set_yesno(n, "enable", dns->enable) < 0 || set_yesno(n, "forwardPlainNames", dns->forward_plain_names) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < dns->n_forwarders; i++) {
                c = conf_node_add(n, "forwarder");
                if (!c || conf_node_set_attr(c, "addr", dns->forwarders[i].addr) < 0 ||
                    conf_node_set_attr(c, "domain", dns->forwarders[i].domain) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < dns->n_txts; i++) {
                c = conf_node_add(n, "txt");
                if (!c || conf_node_set_attr(c, "name", dns->txts[i].name) < 0 ||
                    conf_node_set_attr(c, "value", dns->txts[i].value) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < dns->n_srvs; i++) {
                const struct NetworkDnsSrv *s = &dns->srvs[i];

                c = conf_node_add(n, "srv");
                if (!c || conf_node_set_attr(c, "service", s->service) < 0 ||
                    conf_node_set_attr(c, "protocol", s->protocol) < 0 || conf_node_set_attr(c, "domain", s->domain) < 0 ||
                    conf_node_set_attr(c, "target", s->target) < 0 || set_i16(c, "port", s->port) < 0 ||
                    set_i16(c, "priority", s->priority) < 0 || set_i16(c, "weight", s->weight) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < dns->n_hosts; i++) {
                c = conf_node_add(n, "host");
                if (!c || conf_node_set_attr(c, "ip", dns->hosts[i].ip) < 0)
                        return -ENOMEM;
                for (size_t j = 0; j < dns->hosts[i].n_hostnames; j++)
                        if (conf_node_add_text(c, "hostname", dns->hosts[i].hostnames[j]) < 0)
                                return -ENOMEM;
        }
        return 0;
}

static int format_lease(const NetworkLease *l, ConfNode *parent) {
        ConfNode *c;

        if (!l->given)
                return 0;
        c = conf_node_add(parent, "lease");
        if (!c || conf_node_set_attrf(c, "expiry", "%" PRIu64, l->expiry) < 0 || conf_node_set_attr(c, "unit", l->unit) < 0)
                return -ENOMEM;
        return 0;
}

static int format_dhcp(const NetworkIpDef *ip, ConfNode *n) {
        ConfNode *d = conf_node_add(n, "dhcp"), *c;

        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < ip->n_ranges; i++) {
                c = conf_node_add(d, "range");
                if (!c || conf_node_set_attr(c, "start", ip->ranges[i].start) < 0 ||
                    conf_node_set_attr(c, "end", ip->ranges[i].end) < 0 || format_lease(&ip->ranges[i].lease, c) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < ip->n_hosts; i++) {
                const NetworkDhcpHost *h = &ip->hosts[i];

                c = conf_node_add(d, "host");
                if (!c || conf_node_set_attr(c, "mac", h->mac) < 0 || conf_node_set_attr(c, "id", h->id) < 0 ||
                    conf_node_set_attr(c, "name", h->name) < 0 || conf_node_set_attr(c, "ip", h->ip) < 0 ||
                    format_lease(&h->lease, c) < 0)
                        return -ENOMEM;
        }
        if (ip->bootp_file) {
                c = conf_node_add(d, "bootp");
                if (!c || conf_node_set_attr(c, "file", ip->bootp_file) < 0 ||
                    conf_node_set_attr(c, "server", ip->bootp_server) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_ips_routes(const NetworkDef *def, ConfNode *root) {
        ConfNode *n, *c;

        for (size_t i = 0; i < def->n_ips; i++) {
                const NetworkIpDef *ip = &def->ips[i];

                n = conf_node_add(root, "ip");
                if (!n || (ip->family_given && conf_node_set_attr(n, "family", network_family_to_string(ip->family)) < 0) ||
                    conf_node_set_attr(n, "address", ip->address) < 0 || conf_node_set_attr(n, "netmask", ip->netmask) < 0 ||
                    (ip->has_prefix && set_u32(n, "prefix", ip->prefix) < 0))
                        return -ENOMEM;
                if (ip->tftp_root && (!(c = conf_node_add(n, "tftp")) || conf_node_set_attr(c, "root", ip->tftp_root) < 0))
                        return -ENOMEM;
                if (ip->has_dhcp && format_dhcp(ip, n) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < def->n_routes; i++) {
                const NetworkRouteDef *rt = &def->routes[i];

                n = conf_node_add(root, "route");
                if (!n || conf_node_set_attr(n, "family", rt->family) < 0 || conf_node_set_attr(n, "address", rt->address) < 0 ||
                    conf_node_set_attr(n, "netmask", rt->netmask) < 0 || (rt->has_prefix && set_u32(n, "prefix", rt->prefix) < 0) ||
                    conf_node_set_attr(n, "gateway", rt->gateway) < 0 || (rt->has_metric && set_u32(n, "metric", rt->metric) < 0))
                        return -ENOMEM;
        }
        return 0;
}

static int format_portgroups(const NetworkDef *def, ConfNode *root) {
        if (def->virtualport && network_virtual_port_to_node(def->virtualport, root) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_portgroups; i++) {
                const NetworkPortGroup *pg = &def->portgroups[i];
                ConfNode *n = conf_node_add(root, "portgroup");

                if (!n || conf_node_set_attr(n, "name", pg->name) < 0 ||
                    (pg->is_default && conf_node_set_attr(n, "default", "yes") < 0))
                        return -ENOMEM;
                if (pg->virtualport && network_virtual_port_to_node(pg->virtualport, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int format_access(const NetworkDef *def, ConfNode *root) {
        ConfNode *md, *c;

        if (!def->has_access_uid)
                return 0;
        md = conf_node_add(root, "metadata");
        c = md ? conf_node_add(md, "access") : NULL;
        if (!c || !(c->ns_href = strdup(NETWORK_VIRTBUS_NS)) || set_u32(c, "uid", def->access_uid) < 0 ||
            (def->access_host_files && conf_node_set_attr(c, "host-files", "yes") < 0))
                return -ENOMEM;
        return 0;
}

int network_def_to_node(const NetworkDef *def, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL, *residue = NULL;
        int r;

        n = conf_node_new("network");
        if (!n)
                return -ENOMEM;
        if ((r = format_identity(def, n)) < 0 || (r = format_forward(def, n)) < 0 || (r = format_dns(def, n)) < 0 ||
            (r = format_portgroups(def, n)) < 0 || (r = format_ips_routes(def, n)) < 0 || (r = format_access(def, n)) < 0)
                return r;
        if (def->extra && !(residue = conf_node_copy(def->extra)))
                return -ENOMEM;
        r = conf_node_merge(n, residue);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

int network_def_format(const NetworkDef *def, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = network_def_to_node(def, &n);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}
