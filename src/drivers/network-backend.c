/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Choosing a network backend, and the simulated one. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "conf/conf-util.h"
#include "drivers/network-backend.h"
#include "util/fileio.h"
#include "util/log.h"

int vb_network_backend_new(const char *name, const char *driver, const char *runtime_dir, VbNetworkBackend **ret,
                           VbError *reterr) {
        _cleanup_(vb_network_backend_freep) VbNetworkBackend *b = NULL;
        const VbNetworkBackendOps *ops;
        int r;

        if (!name)
                name = streq_ptr(driver, "test") ? "simulated" : "host";
        if (streq(name, "simulated"))
                ops = &vb_network_backend_simulated_ops;
        else if (streq(name, "host"))
                ops = &vb_network_backend_host_ops;
        else
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Unknown network backend '%s' (expected 'simulated' or 'host').", name);
        b = new0(VbNetworkBackend, 1);
        if (!b)
                return -ENOMEM;
        b->ops = ops;
        if (asprintf(&b->runtime_dir, "%s/networks", runtime_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(b->runtime_dir, 0755);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", b->runtime_dir,
                                    strerror(-r));
        log_debug("Network backend: %s.", ops->name);
        *ret = TAKE_PTR(b);
        return 0;
}

VbNetworkBackend *vb_network_backend_free(VbNetworkBackend *b) {
        if (!b)
                return NULL;
        free(b->runtime_dir);
        free(b);
        return NULL;
}

char *vb_network_backend_path(const VbNetworkBackend *b, const NetworkDef *def, const char *suffix) {
        char *p;

        return asprintf(&p, "%s/%s.%s", b->runtime_dir, def->name, suffix) < 0 ? NULL : p;
}

/* Simulated: state only. */

static int sim_start(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        log_debug("Network '%s' started (simulated).", def->name);
        return 0;
}

static int sim_stop(VbNetworkBackend *b, const NetworkDef *def, VbError *reterr) {
        log_debug("Network '%s' stopped (simulated).", def->name);
        return 0;
}

/* The simulated host keeps its networks across restarts of virtbusd, as the test driver keeps its
 * guests: a network recorded as active still is. */
static bool sim_is_running(VbNetworkBackend *b, const NetworkDef *def) {
        return true;
}

/* The address the simulated DHCP server gives mac: one of the first IPv4 range, picked by the MAC's last
 * two bytes. 0 when the network has no range. */
static int sim_lease_address(const NetworkDef *def, const uint8_t mac[6], char ret[INET_ADDRSTRLEN]) {
        const NetworkIpDef *ip = network_def_ipv4(def);
        struct in_addr start, end, a;
        uint32_t first, last;

        if (!ip || ip->n_ranges == 0 || inet_pton(AF_INET, ip->ranges[0].start, &start) != 1 ||
            inet_pton(AF_INET, ip->ranges[0].end, &end) != 1)
                return 0;
        first = ntohl(start.s_addr);
        last = ntohl(end.s_addr);
        if (last < first)
                return 0;
        a.s_addr = htonl(first + (((uint32_t) mac[4] << 8 | mac[5]) % (last - first + 1)));
        return inet_ntop(AF_INET, &a, ret, INET_ADDRSTRLEN) ? 1 : 0;
}

static int sim_get_leases(VbNetworkBackend *b, const NetworkDef *def, const uint8_t (*ports)[6], size_t n_ports,
                          const char *mac, HostDhcpLease **ret, size_t *ret_n, VbError *reterr) {
        HostDhcpLease *l = new0(HostDhcpLease, n_ports ?: 1);
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n_ports; i++) {
                char ip[INET_ADDRSTRLEN], m[18];

                conf_mac_format(ports[i], m);
                if ((!isempty(mac) && strcasecmp(mac, m) != 0) || sim_lease_address(def, ports[i], ip) <= 0)
                        continue;
                l[n] = (HostDhcpLease) { .mac = strdup(m), .ip = strdup(ip) };
                if (!l[n].mac || !l[n].ip) {
                        host_dhcp_leases_free(l, n + 1);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

const VbNetworkBackendOps vb_network_backend_simulated_ops = {
        .name = "simulated",
        .start = sim_start,
        .stop = sim_stop,
        .is_running = sim_is_running,
        .get_leases = sim_get_leases,
};
