/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libxml/xmlerror.h>

#include "util/error.h"

/* Turns libxml2's RelaxNG validation errors into one message naming line, element, attribute and
 * what was expected (internal to conf-schema.c). */
int conf_schema_report(const xmlError *errors, size_t n, VbError *reterr);
