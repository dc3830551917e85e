/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guest agent without D-Bus: GetGuestInfo, Shutdown/Reboot through the agent, GuestAgentConnected. The
 * driver talks to the agent on the event loop and answers later; core checks, and follows the state. */
#include <stdio.h>

#include "core/domain-internal.h"
#include "util/log.h"

static int require_running(Domain *d, VbError *reterr) {
        if (!domain_is_active(d) || d->state == DOMAIN_CRASHED)
                return vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is not running", d->name);
        return 0;
}

int manager_domain_guest_info(Manager *m, Domain *d, uint64_t types, VbDriverInfoDone done, void *userdata,
                              VbStats **ret, VbError *reterr) {
        int r;

        if (types & ~DOMAIN_GUEST_INFO_ALL)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Unknown guest information types 0x%llx (known: "
                                    "users 1, os 2, timezone 4, hostname 8, filesystem 16; 0 for all)",
                                    (unsigned long long) (types & ~DOMAIN_GUEST_INFO_ALL));
        r = require_running(d, reterr);
        if (r < 0)
                return r;
        if (!DRIVER_OP(m, domain_guest_info))
                return vb_driver_not_supported(m->driver, "a guest agent", reterr);
        return DRIVER_OP(m, domain_guest_info)(m->driver, d->uuid, types ?: DOMAIN_GUEST_INFO_ALL, done, userdata, ret,
                                               reterr);
}

typedef struct AgentPower {
        Manager *manager;
        char uuid[37];
        bool reboot;
        VbDriverDone done;
        void *userdata;
} AgentPower;

static void agent_power_finish(AgentPower *c, int r, const VbError *e) {
        Domain *d = manager_domain_by_uuid(c->manager, c->uuid);

        /* Asked: the guest is shutting down (its SHUTDOWN follows, as after ACPI). */
        if (r >= 0 && d && !c->reboot && d->state == DOMAIN_RUNNING)
                domain_set_state(d, DOMAIN_SHUTDOWN, d->id);
        if (r >= 0 && d)
                log_info("Domain '%s': the guest agent was asked to %s.", d->name, c->reboot ? "reboot" : "power off");
        if (c->done)
                c->done(r, e, c->userdata);
}

static void on_agent_power(int r, const VbError *e, void *userdata) {
        AgentPower *c = userdata;

        agent_power_finish(c, r, e);
        free(c);
}

int manager_domain_agent_power(Manager *m, Domain *d, bool reboot, VbDriverDone done, void *userdata, VbError *reterr) {
        AgentPower *c;
        int r;

        if (d->state != DOMAIN_RUNNING)
                return d->state == DOMAIN_SHUTDOWN && !reboot
                               ? 1 /* already asked: the caller waits like the first one */
                               : vb_error_set(reterr, VB_ERROR_INVALID_STATE, "Domain '%s' is %s; %s through the guest "
                                              "agent needs it running", d->name, domain_state_to_string(d->state),
                                              reboot ? "rebooting" : "shutting down");
        if (!DRIVER_OP(m, domain_agent_shutdown))
                return vb_driver_not_supported(m->driver, "a guest agent", reterr);
        c = new0(AgentPower, 1);
        if (!c)
                return -ENOMEM;
        *c = (AgentPower) { .manager = m, .reboot = reboot, .done = done, .userdata = userdata };
        snprintf(c->uuid, sizeof c->uuid, "%s", d->uuid);
        r = DRIVER_OP(m, domain_agent_shutdown)(m->driver, d->uuid, reboot, on_agent_power, c, reterr);
        if (r < 0 || r > 0) {
                if (r > 0) {
                        c->done = NULL;
                        agent_power_finish(c, 0, NULL);
                }
                free(c);
                return r;
        }
        return 0;
}

bool domain_agent_connected(const Domain *d) {
        Manager *m = d->manager;

        return domain_is_active(d) && DRIVER_OP(m, domain_agent_connected) &&
               DRIVER_OP(m, domain_agent_connected)(m->driver, d->uuid);
}

void manager_on_driver_agent_changed(void *userdata, const char *uuid, bool connected) {
        static const char * const props[] = { "GuestAgentConnected", NULL };
        Domain *d = manager_domain_by_uuid(userdata, uuid);

        if (!d)
                return;
        log_debug("Domain '%s': guest agent %s.", d->name, connected ? "connected" : "disconnected");
        domain_emit_changed(d, props);
}
