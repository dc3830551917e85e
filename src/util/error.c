/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/error.h"

static const char * const vb_error_code_table[_VB_ERROR_MAX] = {
        [VB_ERROR_NONE] = "none",
        [VB_ERROR_INVALID_ARGUMENT] = "invalid-argument",
        [VB_ERROR_INVALID_XML] = "invalid-xml",
        [VB_ERROR_NO_SUCH_DOMAIN] = "no-such-domain",
        [VB_ERROR_NO_SUCH_NETWORK] = "no-such-network",
        [VB_ERROR_NO_SUCH_STORAGE_POOL] = "no-such-storage-pool",
        [VB_ERROR_NO_SUCH_STORAGE_VOL] = "no-such-storage-vol",
        [VB_ERROR_NO_SUCH_DEVICE] = "no-such-device",
        [VB_ERROR_INVALID_STATE] = "invalid-state",
        [VB_ERROR_ALREADY_EXISTS] = "already-exists",
        [VB_ERROR_DEVICE_BUSY] = "device-busy",
        [VB_ERROR_NOT_SUPPORTED] = "not-supported",
        [VB_ERROR_OPERATION_FAILED] = "operation-failed",
        [VB_ERROR_TIMEOUT] = "timeout",
        [VB_ERROR_ACCESS_DENIED] = "access-denied",
        [VB_ERROR_LIMITS_EXCEEDED] = "limits-exceeded",
};
DEFINE_STRING_TABLE_LOOKUP(vb_error_code, VbErrorCode);

static const int vb_error_errno_table[_VB_ERROR_MAX] = {
        [VB_ERROR_NONE] = 0,
        [VB_ERROR_INVALID_ARGUMENT] = EINVAL,
        [VB_ERROR_INVALID_XML] = EBADMSG,
        [VB_ERROR_NO_SUCH_DOMAIN] = ENOENT,
        [VB_ERROR_NO_SUCH_NETWORK] = ENOENT,
        [VB_ERROR_NO_SUCH_STORAGE_POOL] = ENOENT,
        [VB_ERROR_NO_SUCH_STORAGE_VOL] = ENOENT,
        [VB_ERROR_NO_SUCH_DEVICE] = ENODEV,
        [VB_ERROR_INVALID_STATE] = EBUSY,
        [VB_ERROR_ALREADY_EXISTS] = EEXIST,
        [VB_ERROR_DEVICE_BUSY] = EBUSY,
        [VB_ERROR_NOT_SUPPORTED] = EOPNOTSUPP,
        [VB_ERROR_OPERATION_FAILED] = EIO,
        [VB_ERROR_TIMEOUT] = ETIMEDOUT,
        [VB_ERROR_ACCESS_DENIED] = EACCES,
        [VB_ERROR_LIMITS_EXCEEDED] = ENOBUFS,
};

int vb_error_code_to_errno(VbErrorCode code) {
        if (code < 0 || code >= _VB_ERROR_MAX)
                return EIO;
        return vb_error_errno_table[code];
}

int vb_error_set(VbError *e, VbErrorCode code, const char *format, ...) {
        if (e && e->code == VB_ERROR_NONE) {
                va_list ap;
                char *m = NULL;

                va_start(ap, format);
                if (vasprintf(&m, format, ap) < 0)
                        m = NULL;
                va_end(ap);
                e->code = code;
                e->message = m;
        }
        return -vb_error_code_to_errno(code);
}

void vb_error_free(VbError *e) {
        if (!e)
                return;
        free(e->message);
        *e = VB_ERROR_NULL;
}

bool vb_error_is_set(const VbError *e) {
        return e && e->code != VB_ERROR_NONE;
}

void vb_error_move(VbError *dst, VbError *src) {
        if (!src)
                return;
        if (dst && dst->code == VB_ERROR_NONE) {
                *dst = *src;
                *src = VB_ERROR_NULL;
        } else
                vb_error_free(src);
}
