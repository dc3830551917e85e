/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "util/error.h"

/* The one map between our error codes and D-Bus error names. */
#define VB_ERROR_PREFIX "org.virtbus1.Error."

extern const sd_bus_error_map bus_vb_error_map[];

/* The D-Bus name for a code. */
const char *bus_error_name(VbErrorCode code);

/* Fills ret from e (or from r when e carries nothing) and returns r (or -EIO). */
int bus_error_from_vb(sd_bus_error *ret, const VbError *e, int r);
