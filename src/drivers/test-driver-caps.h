/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "drivers/driver.h"

/* The test driver's capabilities (test-driver-caps.c): a fixed, documented set, not a probe. */
int test_domain_capabilities(VbDriver *drv, const VbDomainCapsQuery *q, VbDriverCapsReady ready, void *userdata,
                             DomainCaps **ret, VbError *reterr);
int test_capabilities(VbDriver *drv, HostCaps *caps, VbDriverCapsReady ready, void *userdata, VbError *reterr);
