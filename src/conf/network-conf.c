/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/network-conf.h"

static const char * const network_forward_mode_table[_NETWORK_FORWARD_MAX] = {
        [NETWORK_FORWARD_NONE] = "none",
        [NETWORK_FORWARD_NAT] = "nat",
        [NETWORK_FORWARD_ROUTE] = "route",
        [NETWORK_FORWARD_OPEN] = "open",
        [NETWORK_FORWARD_BRIDGE] = "bridge",
        [NETWORK_FORWARD_PRIVATE] = "private",
        [NETWORK_FORWARD_VEPA] = "vepa",
        [NETWORK_FORWARD_PASSTHROUGH] = "passthrough",
        [NETWORK_FORWARD_HOSTDEV] = "hostdev",
};
DEFINE_STRING_TABLE_LOOKUP(network_forward_mode, NetworkForwardMode);

static const char * const network_family_table[_NETWORK_FAMILY_MAX] = {
        [NETWORK_FAMILY_IPV4] = "ipv4",
        [NETWORK_FAMILY_IPV6] = "ipv6",
};
DEFINE_STRING_TABLE_LOOKUP(network_family, NetworkFamily);

void network_virtual_port_free(NetworkVirtualPort *vp) {
        if (!vp)
                return;
        free(vp->type);
        free(vp->managerid);
        free(vp->typeid);
        free(vp->typeidversion);
        free(vp->instanceid);
        free(vp->profileid);
        free(vp->interfaceid);
        free(vp);
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        return s && !(*ret = strdup(s)) ? -ENOMEM : 0;
}

int network_virtual_port_copy(const NetworkVirtualPort *vp, NetworkVirtualPort **ret) {
        NetworkVirtualPort *c = new0(NetworkVirtualPort, 1);

        if (!c)
                return -ENOMEM;
        if (dup_opt(vp->type, &c->type) < 0 || dup_opt(vp->managerid, &c->managerid) < 0 ||
            dup_opt(vp->typeid, &c->typeid) < 0 || dup_opt(vp->typeidversion, &c->typeidversion) < 0 ||
            dup_opt(vp->instanceid, &c->instanceid) < 0 || dup_opt(vp->profileid, &c->profileid) < 0 ||
            dup_opt(vp->interfaceid, &c->interfaceid) < 0) {
                network_virtual_port_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void ip_done(NetworkIpDef *ip) {
        free(ip->address);
        free(ip->netmask);
        free(ip->tftp_root);
        for (size_t i = 0; i < ip->n_ranges; i++) {
                free(ip->ranges[i].start);
                free(ip->ranges[i].end);
                free(ip->ranges[i].lease.unit);
        }
        free(ip->ranges);
        for (size_t i = 0; i < ip->n_hosts; i++) {
                free(ip->hosts[i].mac);
                free(ip->hosts[i].id);
                free(ip->hosts[i].name);
                free(ip->hosts[i].ip);
                free(ip->hosts[i].lease.unit);
        }
        free(ip->hosts);
        free(ip->bootp_file);
        free(ip->bootp_server);
}

static void dns_done(NetworkDnsDef *dns) {
        for (size_t i = 0; i < dns->n_forwarders; i++) {
                free(dns->forwarders[i].addr);
                free(dns->forwarders[i].domain);
        }
        free(dns->forwarders);
        for (size_t i = 0; i < dns->n_txts; i++) {
                free(dns->txts[i].name);
                free(dns->txts[i].value);
        }
        free(dns->txts);
        for (size_t i = 0; i < dns->n_srvs; i++) {
                free(dns->srvs[i].service);
                free(dns->srvs[i].protocol);
                free(dns->srvs[i].domain);
                free(dns->srvs[i].target);
        }
        free(dns->srvs);
        for (size_t i = 0; i < dns->n_hosts; i++) {
                free(dns->hosts[i].ip);
                for (size_t j = 0; j < dns->hosts[i].n_hostnames; j++)
                        free(dns->hosts[i].hostnames[j]);
                free(dns->hosts[i].hostnames);
        }
        free(dns->hosts);
}

NetworkDef *network_def_free(NetworkDef *def) {
        if (!def)
                return NULL;
        free(def->name);
        free(def->uuid_text);
        free(def->mac_text);
        free(def->bridge);
        free(def->domain_name);
        for (size_t i = 0; i < def->forward.n_devs; i++)
                free(def->forward.devs[i]);
        free(def->forward.devs);
        free(def->forward.pf_dev);
        free(def->forward.addresses);
        free(def->forward.nat_start);
        free(def->forward.nat_end);
        network_virtual_port_free(def->virtualport);
        for (size_t i = 0; i < def->n_portgroups; i++) {
                free(def->portgroups[i].name);
                network_virtual_port_free(def->portgroups[i].virtualport);
        }
        free(def->portgroups);
        for (size_t i = 0; i < def->n_ips; i++)
                ip_done(&def->ips[i]);
        free(def->ips);
        for (size_t i = 0; i < def->n_routes; i++) {
                free(def->routes[i].family);
                free(def->routes[i].address);
                free(def->routes[i].netmask);
                free(def->routes[i].gateway);
        }
        free(def->routes);
        dns_done(&def->dns);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

int network_def_parse_string(const char *xml, unsigned flags, NetworkDef **ret, VbError *reterr) {
        ConfNode *root;
        int r;

        r = conf_node_parse_string(xml, "network.rng", &root, reterr);
        if (r < 0)
                return r;
        return network_def_parse_node(root, flags, ret, reterr);
}

int network_def_copy(const NetworkDef *def, NetworkDef **ret) {
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = network_def_format(def, &xml);
        if (r < 0)
                return r;
        r = network_def_parse_string(xml, 0, ret, &e);
        vb_error_free(&e);
        return r;
}

void network_def_get_uuid_string(const NetworkDef *def, char ret[37]) {
        conf_uuid_format(def->uuid, ret);
}

char *network_def_peek_name(const char *xml) {
        xmlDocPtr doc;
        char *name = NULL;

        if (!xml)
                return NULL;
        doc = xmlReadMemory(xml, (int) strnlen(xml, 16 * 1024 * 1024), "input.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc)
                return NULL;
        for (xmlNode *n = xmlDocGetRootElement(doc) ? xmlDocGetRootElement(doc)->children : NULL; n; n = n->next)
                if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, (const xmlChar *) "name")) {
                        xmlChar *t = xmlNodeGetContent(n);
                        name = t ? strdup((const char *) t) : NULL;
                        xmlFree(t);
                        break;
                }
        xmlFreeDoc(doc);
        return name;
}

bool network_def_has_own_bridge(const NetworkDef *def) {
        NetworkForwardMode m = def->has_forward ? def->forward.mode : NETWORK_FORWARD_NONE;

        return m == NETWORK_FORWARD_NONE || m == NETWORK_FORWARD_NAT || m == NETWORK_FORWARD_ROUTE ||
               m == NETWORK_FORWARD_OPEN;
}

const char *network_def_tftp_root(const NetworkDef *def) {
        for (size_t i = 0; i < def->n_ips; i++)
                if (def->ips[i].tftp_root)
                        return def->ips[i].tftp_root;
        return NULL;
}

bool network_def_has_dnsmasq_options(const NetworkDef *def) {
        for (size_t i = 0; def->extra && i < def->extra->n_children; i++)
                if (streq_ptr(def->extra->children[i]->ns_href, NETWORK_DNSMASQ_NS))
                        return true;
        return false;
}

const NetworkIpDef *network_def_ipv4(const NetworkDef *def) {
        for (size_t i = 0; i < def->n_ips; i++)
                if (def->ips[i].family == NETWORK_FAMILY_IPV4 && def->ips[i].prefix > 0)
                        return &def->ips[i];
        return NULL;
}

/* Validation ---------------------------------------------------------------------------------- */

static bool ip_parse(const char *s, int *family, unsigned char buf[16]) {
        if (s && inet_pton(AF_INET, s, buf) == 1) {
                *family = AF_INET;
                return true;
        }
        if (s && inet_pton(AF_INET6, s, buf) == 1) {
                *family = AF_INET6;
                return true;
        }
        return false;
}

static int validate_ip(const NetworkIpDef *ip, const ConfNode *where, VbError *e) {
        unsigned char a[16];
        int fam;

        if (!ip_parse(ip->address, &fam, a))
                return conf_error(e, where, "invalid IP address '%s'", strempty(ip->address));
        if ((fam == AF_INET) != (ip->family == NETWORK_FAMILY_IPV4))
                return conf_error(e, where, "address '%s' is not of family '%s'", ip->address,
                                  network_family_to_string(ip->family));
        if (ip->prefix > (fam == AF_INET ? 32u : 128u))
                return conf_error(e, where, "prefix %u too long for '%s'", ip->prefix, ip->address);
        for (size_t i = 0; i < ip->n_ranges; i++) {
                unsigned char s[16], t[16];
                int fs, ft;

                if (!ip_parse(ip->ranges[i].start, &fs, s) || !ip_parse(ip->ranges[i].end, &ft, t) || fs != fam ||
                    ft != fam)
                        return conf_error(e, where, "DHCP range '%s' - '%s' is not of the family of '%s'",
                                          strempty(ip->ranges[i].start), strempty(ip->ranges[i].end), ip->address);
                if (memcmp(s, t, fam == AF_INET ? 4 : 16) > 0)
                        return conf_error(e, where, "DHCP range starts at '%s' after its end '%s'",
                                          ip->ranges[i].start, ip->ranges[i].end);
        }
        return 0;
}

/* The <bridge> element, whether typed code has looked at it or not. */
static const ConfNode *bridge_node(const ConfNode *extra) {
        for (size_t i = 0; extra && i < extra->n_children; i++)
                if (conf_node_is(extra->children[i], "bridge"))
                        return extra->children[i];
        return NULL;
}

/* Forward modes bridge, private, vepa, passthrough and hostdev connect guests to a bridge or to devices that
 * virtbus does not make: the bridge options (STP, delay, firewall zone) are not its to set, and only mode
 * 'bridge' names a bridge at all, instead of forward devices. */
static int validate_layer2_forward(const NetworkDef *def, const ConfNode *where, VbError *e) {
        const char *mode = network_forward_mode_to_string(def->forward.mode);
        const ConfNode *bridge = bridge_node(where);

        if (def->forward.mode != NETWORK_FORWARD_BRIDGE) {
                if (def->bridge)
                        return conf_error(e, bridge ?: where, "a network with forward mode '%s' has no bridge of its "
                                          "own (expected no name='%s')", mode, def->bridge);
                if (conf_node_attr(bridge, "macTableManager"))
                        return conf_error(e, bridge, "a network with forward mode '%s' has no bridge of its own "
                                          "(expected no macTableManager=)", mode);
        }
        if (def->stp >= 0 || def->has_delay || conf_node_attr(bridge, "zone"))
                return conf_error(e, bridge ?: where, "the bridge options stp=, delay= and zone= are for networks "
                                  "whose bridge virtbus makes (forward mode nat, route, open or none), not '%s'", mode);
        if (def->bridge && (def->forward.n_devs > 0 || def->forward.pf_dev))
                return conf_error(e, bridge ?: where, "a network with forward mode '%s' names bridge '%s' or forward "
                                  "devices, not both", mode, def->bridge);
        return 0;
}

static int validate_forward(const NetworkDef *def, const ConfNode *where, VbError *e) {
        const NetworkForwardDef *f = &def->forward;

        if (!def->has_forward)
                return 0;
        switch (f->mode) {
        case NETWORK_FORWARD_NAT:
        case NETWORK_FORWARD_ROUTE:
        case NETWORK_FORWARD_OPEN:
                if (f->n_addresses > 0 || f->pf_dev)
                        return conf_error(e, where, "forward mode '%s' takes no <address> or <pf> (expected a device pool only with 'hostdev' or 'passthrough')",
                                          network_forward_mode_to_string(f->mode));
                if (f->n_devs > 1)
                        return conf_error(e, where, "forward mode '%s' takes at most one forward device",
                                          network_forward_mode_to_string(f->mode));
                break;
        case NETWORK_FORWARD_HOSTDEV:
                if (f->n_devs > 0)
                        return conf_error(e, where, "forward mode 'hostdev' takes a pool of <address> or <pf>, not <interface>");
                __attribute__((fallthrough));
        case NETWORK_FORWARD_PASSTHROUGH:
                if (f->pf_dev && (f->n_addresses > 0 || f->n_devs > 0))
                        return conf_error(e, where, "<pf> cannot be combined with <address> or <interface>");
                break;
        case NETWORK_FORWARD_BRIDGE:
        case NETWORK_FORWARD_PRIVATE:
        case NETWORK_FORWARD_VEPA:
                if (f->n_addresses > 0 || f->pf_dev)
                        return conf_error(e, where, "forward mode '%s' takes <interface> devices, not <address> or <pf>",
                                          network_forward_mode_to_string(f->mode));
                break;
        default:
                break;
        }
        if (f->mode == NETWORK_FORWARD_BRIDGE || f->mode == NETWORK_FORWARD_PRIVATE || f->mode == NETWORK_FORWARD_VEPA ||
            f->mode == NETWORK_FORWARD_PASSTHROUGH || f->mode == NETWORK_FORWARD_HOSTDEV) {
                int r = validate_layer2_forward(def, where, e);

                if (r < 0)
                        return r;
        }
        if (f->mode != NETWORK_FORWARD_NAT && (f->nat_start || f->nat_port_start))
                return conf_error(e, where, "<nat> is only for forward mode 'nat'");
        if (f->nat_start) {
                unsigned char s[16], t[16];
                int fs, ft;

                if (!ip_parse(f->nat_start, &fs, s) || !ip_parse(f->nat_end, &ft, t) || fs != AF_INET || ft != AF_INET ||
                    memcmp(s, t, 4) > 0)
                        return conf_error(e, where, "invalid NAT address range '%s' - '%s'", f->nat_start,
                                          strempty(f->nat_end));
        }
        if (f->nat_port_start > f->nat_port_end)
                return conf_error(e, where, "NAT port range starts at %u after its end %u", f->nat_port_start,
                                  f->nat_port_end);
        return 0;
}

/* Values that end up in a dnsmasq configuration line: one line each, so no control characters. */
static int check_line(const ConfNode *where, const char *what, const char *s, VbError *e) {
        for (const char *p = s; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return conf_error(e, where, "%s '%s' contains a control character", what, s);
        return 0;
}

static int validate_dnsmasq_values(const NetworkDef *def, const ConfNode *where, VbError *e) {
        const NetworkDnsDef *dns = &def->dns;
        int r = check_line(where, "domain name", def->domain_name, e);

        for (size_t i = 0; r >= 0 && i < dns->n_forwarders; i++)
                r = check_line(where, "forwarder domain", dns->forwarders[i].domain, e);
        for (size_t i = 0; r >= 0 && i < dns->n_txts; i++)
                if ((r = check_line(where, "TXT record name", dns->txts[i].name, e)) >= 0)
                        r = check_line(where, "TXT record value", dns->txts[i].value, e);
        for (size_t i = 0; r >= 0 && i < dns->n_srvs; i++)
                if ((r = check_line(where, "SRV service", dns->srvs[i].service, e)) >= 0 &&
                    (r = check_line(where, "SRV domain", dns->srvs[i].domain, e)) >= 0)
                        r = check_line(where, "SRV target", dns->srvs[i].target, e);
        for (size_t i = 0; r >= 0 && i < dns->n_hosts; i++)
                for (size_t j = 0; r >= 0 && j < dns->hosts[i].n_hostnames; j++)
                        r = check_line(where, "host name", dns->hosts[i].hostnames[j], e);
        for (size_t i = 0; r >= 0 && i < def->n_ips; i++) {
                const NetworkIpDef *ip = &def->ips[i];

                if ((r = check_line(where, "TFTP root", ip->tftp_root, e)) >= 0 &&
                    (r = check_line(where, "bootp file", ip->bootp_file, e)) >= 0)
                        r = check_line(where, "bootp server", ip->bootp_server, e);
                for (size_t j = 0; r >= 0 && j < ip->n_hosts; j++)
                        if ((r = check_line(where, "DHCP host name", ip->hosts[j].name, e)) >= 0)
                                r = check_line(where, "DHCP host id", ip->hosts[j].id, e);
        }
        return r;
}

static int validate_portgroups(const NetworkDef *def, const ConfNode *where, VbError *reterr) {
        _cleanup_free_ ConfKey *keys = new0(ConfKey, def->n_portgroups);
        size_t first, second;
        bool have_default = false;

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_portgroups; i++)
                keys[i] = (ConfKey) { .s = strempty(def->portgroups[i].name), .index = i };
        if (!conf_keys_find_duplicate(keys, def->n_portgroups, &first, &second))
                second = SIZE_MAX;
        for (size_t i = 0; i < def->n_portgroups; i++) {
                if (def->portgroups[i].is_default) {
                        if (have_default)
                                return conf_error(reterr, where, "more than one default portgroup ('%s' is the second)",
                                                  def->portgroups[i].name);
                        have_default = true;
                }
                if (i == second)
                        return conf_error(reterr, where, "portgroup '%s' is defined twice", def->portgroups[i].name);
        }
        return 0;
}

int network_def_validate(const NetworkDef *def, VbError *reterr) {
        const ConfNode *where = def->extra;
        size_t n_v4_dhcp = 0, n_tftp = 0;
        int r;

        r = validate_forward(def, where, reterr);
        if (r >= 0)
                r = conf_check_bandwidth(where, reterr);
        if (r < 0)
                return r;
        r = validate_dnsmasq_values(def, where, reterr);
        if (r < 0)
                return r;
        r = validate_portgroups(def, where, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < def->n_ips; i++) {
                r = validate_ip(&def->ips[i], where, reterr);
                if (r < 0)
                        return r;
                if (def->ips[i].family == NETWORK_FAMILY_IPV4 && def->ips[i].has_dhcp && ++n_v4_dhcp > 1)
                        return conf_error(reterr, where, "DHCP on more than one IPv4 address (expected at most one)");
                /* One dnsmasq per network serves one TFTP tree. */
                if (def->ips[i].tftp_root && ++n_tftp > 1)
                        return conf_error(reterr, where, "<tftp> on more than one <ip> (expected at most one)");
                if (def->ips[i].tftp_root && def->ips[i].tftp_root[0] != '/')
                        return conf_error(reterr, where, "<tftp root='%s'> is not an absolute path", def->ips[i].tftp_root);
        }
        return 0;
}
