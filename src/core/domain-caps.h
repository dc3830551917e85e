/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "conf/domain-conf.h"
#include "conf/domaincaps-conf.h"
#include "drivers/driver.h"
#include "util/error.h"

typedef struct Manager Manager;

/* GetDomainCapabilities (domain-caps.c). 1 with *ret (a reference) when answered; 0 when the driver is
 * finding out: ready(userdata) follows once, from the event loop, then ask again; < 0 with reterr. */
int manager_get_domain_capabilities(Manager *m, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                                    DomainCaps **ret, VbError *reterr);
/* GetCapabilities: the host capabilities XML (*ret to free); same protocol. */
int manager_get_capabilities(Manager *m, VbDriverCapsReady ready, void *userdata, char **ret, VbError *reterr);
/* Forgets ready callbacks with this userdata. */
void manager_capabilities_cancel(Manager *m, void *userdata);

/* What DefineDomain, CreateDomain and AttachDevice refuse because the capabilities say it cannot be
 * (domain-caps-check.c): a machine, arch or virt type the hypervisor lacks, a disk bus the machine has
 * not, a graphics type or video model it does not offer, PCI passthrough without VFIO. NotSupported with a sentence saying why. A driver without
 * capabilities, or an emulator that could not be probed, checks nothing. */
int domain_caps_check_definition(Manager *m, const DomainDef *def, VbError *reterr);
int domain_caps_check_device(Manager *m, const DomainDef *def, const DeviceDef *dev, VbError *reterr);
/* These never wait for a probe of the emulator: a call that checks def first asks domain_caps_pending();
 * when it is true the probe runs in the driver's thread, the call is kept (domain-queue.c; DefineDomain in
 * domain-define.c) and runs once the probe ended (the store counts as busy meanwhile). Should the probe
 * start between the two (the emulator changed), the check answers -EAGAIN, "try again". */
bool domain_caps_pending(Manager *m, const DomainDef *def);
/* The same check, waiting for the probe on the event loop (bounded by its own timeouts): start-up only,
 * before the bus is served. */
int domain_caps_check_definition_wait(Manager *m, const DomainDef *def, VbError *reterr);
/* Forgets core's wait for a probe (the service stops). */
void manager_caps_cancel(Manager *m);
/* The same against given capabilities (pure; unit tests). */
int domain_caps_check_definition_with(const DomainCaps *caps, const DomainDef *def, VbError *reterr);
/* Two devices with one guest PCI address (domain:bus:slot.function) are refused, as libvirt's qemu driver
 * refuses them at define; 0000:00:00.0 is no address (one to be chosen). Part of the check above. */
int domain_check_pci_addresses(const DomainDef *def, VbError *reterr);
int domain_caps_check_device_with(const DomainCaps *caps, const DeviceDef *dev, VbError *reterr);
