/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Choosing a network backend, and the simulated one. */
#include <stdio.h>
#include <stdlib.h>

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

static int sim_get_leases(VbNetworkBackend *b, const NetworkDef *def, const char *mac, HostDhcpLease **ret,
                          size_t *ret_n, VbError *reterr) {
        *ret = NULL;
        *ret_n = 0;
        return 0;
}

const VbNetworkBackendOps vb_network_backend_simulated_ops = {
        .name = "simulated",
        .start = sim_start,
        .stop = sim_stop,
        .is_running = sim_is_running,
        .get_leases = sim_get_leases,
};
