/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "conf/conf-util.h"
#include "conf/domain-access.h"

DomainLifecycleAction domain_def_get_lifecycle(const DomainDef *def, DomainLifecycleEvent event) {
        switch (event) {
        case DOMAIN_LIFECYCLE_ON_POWEROFF:
                return def->on_poweroff ?: DOMAIN_LIFECYCLE_DESTROY;
        case DOMAIN_LIFECYCLE_ON_REBOOT:
                return def->on_reboot ?: DOMAIN_LIFECYCLE_RESTART;
        case DOMAIN_LIFECYCLE_ON_CRASH:
                return def->on_crash ?: DOMAIN_LIFECYCLE_DESTROY;
        default:
                return DOMAIN_LIFECYCLE_DESTROY;
        }
}

DomainUUIDString domain_def_uuid(const DomainDef *def) {
        DomainUUIDString u;
        conf_uuid_format(def->uuid, u.s);
        return u;
}

uint64_t domain_def_serial(const DomainDef *def) {
        return def->serial;
}

int domain_def_check_name(const char *name, VbError *reterr) {
        return conf_check_name(NULL, "name", name, reterr);
}

int domain_def_set_name(DomainDef *def, const char *name, VbError *reterr) {
        int r = domain_def_check_name(name, reterr);
        if (r < 0)
                return r;
        def->serial = domain_def_new_serial();
        return free_and_strdup(&def->name, name);
}

void domain_def_set_id(DomainDef *def, int64_t id) {
        def->id = id < 0 ? -1 : id;
        def->serial = domain_def_new_serial();
}

int domain_def_normalize_uuid(const char *s, char ret[37]) {
        uint8_t u[16];
        int r = conf_uuid_parse(s, u);
        if (r < 0)
                return r;
        conf_uuid_format(u, ret);
        return 0;
}
