/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "util/macro.h"
#include "util/string-table.h"

/* What went wrong, in terms a caller can act on. The bus layer maps each code to one
 * org.virtbus1.Error.* name (src/bus/bus-error.c); lower layers never see D-Bus. */
typedef enum VbErrorCode {
        VB_ERROR_NONE,
        VB_ERROR_INVALID_ARGUMENT,
        VB_ERROR_INVALID_XML,
        VB_ERROR_NO_SUCH_DOMAIN,
        VB_ERROR_NO_SUCH_NETWORK,
        VB_ERROR_NO_SUCH_STORAGE_POOL,
        VB_ERROR_NO_SUCH_STORAGE_VOL,
        VB_ERROR_NO_SUCH_DEVICE,
        VB_ERROR_INVALID_STATE,
        VB_ERROR_ALREADY_EXISTS,
        VB_ERROR_DEVICE_BUSY,
        VB_ERROR_NOT_SUPPORTED,
        VB_ERROR_OPERATION_FAILED,
        VB_ERROR_TIMEOUT,
        VB_ERROR_ACCESS_DENIED, /* the caller (or a definition's owner) may not use what it named */
        VB_ERROR_LIMITS_EXCEEDED,
        _VB_ERROR_MAX,
        _VB_ERROR_INVALID = -EINVAL,
} VbErrorCode;

DECLARE_STRING_TABLE_LOOKUP(vb_error_code, VbErrorCode);

typedef struct VbError {
        VbErrorCode code;
        char *message;
} VbError;

#define VB_ERROR_NULL ((VbError) { .code = VB_ERROR_NONE })

/* The errno a code stands for, so that functions can return -errno and fill a VbError at once. */
int vb_error_code_to_errno(VbErrorCode code);

/* Fills *e (if e is non-NULL and not yet set: the first, most precise error wins) and returns
 * -errno of the code. */
int vb_error_set(VbError *e, VbErrorCode code, const char *format, ...) _printf_(3, 4);
void vb_error_free(VbError *e);
bool vb_error_is_set(const VbError *e);
/* Moves src into *dst unless dst is already set. */
void vb_error_move(VbError *dst, VbError *src);
