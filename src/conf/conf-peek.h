/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Reading ahead in a document without parsing it: for what must be known before the full parse (the
 * name a polkit rule is asked about), cheaply enough for the event loop. */

/* The longest name conf_peek_name() reports. */
#define CONF_PEEK_NAME_MAX 1024U

/* The text of the first <name> child of the root element (no namespace), read with a streaming reader
 * that stops there or once more than max_bytes of xml were consumed. Returns 1 with *ret set (to free),
 * 0 when there is no such name within max_bytes (or the document is malformed before it, or the name is
 * longer than CONF_PEEK_NAME_MAX), -ENOMEM. Nothing is validated: the full parse decides. */
int conf_peek_name(const char *xml, size_t max_bytes, char **ret);
