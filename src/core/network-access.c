/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a network definition may ask of the host, by who defines it.
 *
 * org.virtbus1.network.manage lets a caller define and start networks; the example rules give it to
 * the group 'virtbus'. What such a network does to the host must then stay within what its own bridge
 * and its own subnets are. For callers other than root this refuses, with AccessDenied naming the
 * element and why:
 *   - <dnsmasq:options> (dnsmasq would take them as they are);
 *   - a <bridge name=> of a link that exists on the host and is not the bridge of an active network of
 *     ours (a network with its own bridge would take it over; forward mode 'bridge' puts guests on it);
 *   - forward devices for guests (modes bridge, private, vepa, passthrough, hostdev: guests on, or
 *     taking, a host interface or its functions);
 *   - <ip> subnets and <route>s that overlap a route the host has (other than its default route), and
 *     default routes: they would take traffic of the host's own networks into the virtual one;
 *   - a <tftp root=> that is not a directory the caller owns and could read themselves (opened as that
 *     uid, host_open_as), unless polkit allows org.virtbus1.network.host-files.
 * The uid whose rights count for the TFTP root is recorded with the definition (access_uid), so that
 * a later start by the service (autostart) opens the same tree with the same rights. <nat> ranges only
 * rewrite the network's own traffic; bandwidth and virtualport parameters never reach the host (they
 * are handed to the guest's interface as they are): none of these is restricted. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/network-internal.h"
#include "host/user-open.h"
#include "util/log.h"

static bool link_exists(NetworkRegistry *r, const char *name) {
        return r->backend->ops->link_exists && r->backend->ops->link_exists(r->backend, name);
}

/* The bridge of an active network of ours with a bridge of its own. */
static bool is_our_bridge(NetworkRegistry *r, const char *name) {
        for (size_t i = 0; i < r->n_networks; i++) {
                const NetworkDef *live = r->networks[i]->live;

                if (live && network_def_has_own_bridge(live) && streq_ptr(live->bridge, name))
                        return true;
        }
        return false;
}

static int check_links(NetworkRegistry *r, const NetworkDef *def, VbError *e) {
        NetworkForwardMode m = def->has_forward ? def->forward.mode : NETWORK_FORWARD_NONE;

        if (def->bridge && link_exists(r, def->bridge) && !is_our_bridge(r, def->bridge))
                return vb_error_set(e, VB_ERROR_ACCESS_DENIED,
                                    "Network '%s': <bridge name='%s'> names an interface of the host that virtbus did not make "
                                    "(the network would %s it); only root may do that.",
                                    def->name, def->bridge, network_def_has_own_bridge(def) ? "take over" : "put guests on");
        if (network_def_has_own_bridge(def))
                return 0; /* a <forward dev=> of nat/route only names the way out */
        if (def->forward.n_devs > 0 || def->forward.pf_dev || def->forward.n_addresses > 0)
                return vb_error_set(e, VB_ERROR_ACCESS_DENIED,
                                    "Network '%s': <forward mode='%s'> with %s '%s' would give guests a host interface; only root may do that.",
                                    def->name, network_forward_mode_to_string(m),
                                    def->forward.n_devs > 0 ? "device" : def->forward.pf_dev ? "<pf dev=>" : "PCI functions from",
                                    def->forward.n_devs > 0 ? def->forward.devs[0] : def->forward.pf_dev ?: "its pool");
        return 0;
}

static int check_subnet(NetworkRegistry *r, const NetworkDef *def, const char *element, const char *address,
                        unsigned prefix, VbError *e) {
        _cleanup_free_ char *what = NULL;
        int k;

        if (prefix == 0)
                return vb_error_set(e, VB_ERROR_ACCESS_DENIED,
                                    "Network '%s': <%s address='%s'> with prefix 0 would take all of the host's traffic; only root may do that.",
                                    def->name, element, address);
        if (!r->backend->ops->route_overlap)
                return 0;
        k = r->backend->ops->route_overlap(r->backend, address, prefix, def->bridge, &what);
        if (k < 0)
                return vb_error_set(e, VB_ERROR_OPERATION_FAILED, "Failed to read the routes of the host: %s", strerror(-k));
        if (k > 0)
                return vb_error_set(e, VB_ERROR_ACCESS_DENIED,
                                    "Network '%s': <%s address='%s'> (/%u) overlaps the host's route to %s, and would take its "
                                    "traffic; only root may do that.",
                                    def->name, element, address, prefix, what);
        return 0;
}

static int check_routes(NetworkRegistry *r, const NetworkDef *def, VbError *e) {
        int k;

        if (!network_def_has_own_bridge(def))
                return 0; /* nothing of these goes to the host */
        for (size_t i = 0; i < def->n_ips; i++) {
                const NetworkIpDef *ip = &def->ips[i];

                k = check_subnet(r, def, "ip", ip->address, ip->prefix ?: (ip->family == NETWORK_FAMILY_IPV4 ? 24 : 64), e);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < def->n_routes; i++) {
                const NetworkRouteDef *rt = &def->routes[i];

                /* as the host backend adds it */
                k = check_subnet(r, def, "route", rt->address, rt->has_prefix || rt->netmask ? rt->prefix : (strchr(rt->address, ':') ? 64 : 24), e);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* A TFTP root publishes a tree on the network: it must be a directory the caller owns, opened with
 * the caller's own rights (in a child that becomes them), so that neither a system directory nor
 * somebody else's tree can be served on their word. */
static int check_tftp_root(NetworkDef *def, NetworkCaller *c, VbError *e) {
        const char *root = network_def_tftp_root(def);
        HostOpenRequest q = { .path = root, .mode = HOST_OPEN_DIRECTORY, .fd = -1 };
        struct stat st;
        int k;

        if (!root)
                return 0;
        k = host_open_as(c->uid, &q, 1);
        if (k >= 0)
                k = q.error;
        if (k >= 0)
                k = fstat(q.fd, &st) < 0 ? -errno : st.st_uid != c->uid ? -EPERM : 0;
        host_open_requests_close(&q, 1);
        def->has_access_uid = true;
        def->access_uid = (uint32_t) c->uid;
        if (k >= 0)
                return 0;
        if (c->host_files) {
                def->access_host_files = true;
                log_notice("Network '%s': TFTP root '%s' is served with the service's rights for uid %u (%s), "
                           "as polkit allowed org.virtbus1.network.host-files.", def->name, root, (unsigned) c->uid,
                           k == -EPERM ? "not theirs" : strerror(-k));
                return 0;
        }
        free(c->denied_path);
        c->denied_path = strdup(root);
        if (!c->denied_path)
                return -ENOMEM;
        return vb_error_set(e, VB_ERROR_ACCESS_DENIED,
                            "Network '%s': <tftp root='%s'> is not a directory of uid %u's own that it may read (%s); "
                            "serving it needs org.virtbus1.network.host-files.",
                            def->name, root, (unsigned) c->uid, k == -EPERM ? "owned by another user" : strerror(-k));
}

int network_access_check(NetworkRegistry *r, NetworkDef *def, NetworkCaller *c, VbError *reterr) {
        int k;

        /* Never what the caller wrote. */
        def->has_access_uid = def->access_host_files = false;
        def->access_uid = 0;
        /* The service itself, root, or (virtbusd --user) the user the service runs as. */
        if (!c || c->uid == 0 || c->uid == geteuid()) {
                def->has_access_uid = !!network_def_tftp_root(def);
                return 0;
        }
        if (network_def_has_dnsmasq_options(def))
                return vb_error_set(reterr, VB_ERROR_ACCESS_DENIED,
                                    "Network '%s': <dnsmasq:options> are for root only (dnsmasq would take them as they are).",
                                    def->name);
        if ((k = check_links(r, def, reterr)) < 0 || (k = check_routes(r, def, reterr)) < 0)
                return k;
        /* Last: the only refusal polkit can lift. */
        return check_tftp_root(def, c, reterr);
}

bool network_bridge_name_free(NetworkRegistry *r, const char *name) {
        return !link_exists(r, name);
}
