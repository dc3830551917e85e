/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "host/process.h"
#include "drivers/driver.h"
#include "drivers/qemu/qemu-caps.h"

/* The capabilities half of the qemu driver (qemu-caps-driver.c): the emulators of this host, their
 * probed capabilities (QemuCapsCache) and the answers to the capabilities ops. */
typedef struct QemuCapsDriver QemuCapsDriver;

/* emulator: the driver's own (qemu-system-*), the one of its arch ahead of those found in /usr/bin and
 * /usr/local/bin; NULL: none. confinement: how the probing QEMUs are shut in (NULL: not at all; kept by
 * reference). */
int qemu_caps_driver_new(sd_event *event, const char *state_dir, const char *runtime_dir, const char *emulator,
                         const HostConfinement *confinement, QemuCapsDriver **ret);
QemuCapsDriver *qemu_caps_driver_free(QemuCapsDriver *d);

int qemu_caps_driver_domain_caps(QemuCapsDriver *d, const VbDomainCapsQuery *q, VbDriverCapsReady ready,
                                 void *userdata, DomainCaps **ret, VbError *reterr);
int qemu_caps_driver_host_caps(QemuCapsDriver *d, HostCaps *hc, VbDriverCapsReady ready, void *userdata,
                               VbError *reterr);
void qemu_caps_driver_cancel(QemuCapsDriver *d, void *userdata);

/* The ops (VbDriverOps of the qemu driver; priv is its QemuDriver, whose caps this is). */
int qemu_domain_capabilities(VbDriver *drv, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                             DomainCaps **ret, VbError *reterr);
int qemu_capabilities(VbDriver *drv, HostCaps *caps, VbDriverCapsReady ready, void *userdata, VbError *reterr);
void qemu_capabilities_cancel(VbDriver *drv, void *userdata);
