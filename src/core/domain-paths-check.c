/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which host paths of a definition (or device) a caller may not use as the domain would: checked with
 * the caller's own rights at Define and Attach (host/user-open.h), so that a guest reaches only what its
 * owner may reach. */
#include "core/domain-internal.h"
#include "host/user-open.h"
#include "util/log.h"

int manager_domain_paths_denied(Manager *m, const DomainDef *def, const DeviceDef *dev, uint32_t uid,
                                DomainPaths *ret, VbError *reterr) {
        _cleanup_(domain_paths_done) DomainPaths paths = {};
        _cleanup_free_ HostOpenRequest *reqs = NULL;
        DomainPaths denied = {};
        int r;

        r = dev ? device_def_host_paths(dev, 0, &paths) : domain_def_host_paths(def, &paths);
        if (r < 0)
                return r;
        *ret = (DomainPaths) {};
        if (paths.n == 0 || uid == 0)
                return 0;
        reqs = new0(HostOpenRequest, paths.n);
        if (!reqs)
                return -ENOMEM;
        for (size_t i = 0; i < paths.n; i++)
                reqs[i] = (HostOpenRequest) { .path = paths.v[i].path, .mode = (HostOpenMode) paths.v[i].use,
                                              .check_only = true };
        r = host_open_as(uid, reqs, paths.n);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to check the files of the definition "
                                    "as uid %u: %s", uid, strerror(-r));
        for (size_t i = 0; i < paths.n; i++) {
                int e = -reqs[i].error;
                /* Missing files are the start's business (they may be made before it); only a refusal
                 * counts. The service's own files for the domain are not the caller's to open. */
                if (e != EACCES && e != EPERM)
                        continue;
                if (def && DRIVER_OP(m, domain_path_is_own) &&
                    DRIVER_OP(m, domain_path_is_own)(m->driver, def, paths.v[i].path))
                        continue;
                if (!GREEDY_REALLOC(denied.v, denied.allocated, denied.n + 1)) {
                        domain_paths_done(&denied);
                        return -ENOMEM;
                }
                denied.v[denied.n++] = paths.v[i];
                paths.v[i] = (DomainPath) {};
        }
        *ret = denied;
        return 0;
}
