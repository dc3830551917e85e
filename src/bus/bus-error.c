/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/bus-error.h"

static const char * const error_name_table[_VB_ERROR_MAX] = {
        [VB_ERROR_NONE] = NULL,
        [VB_ERROR_INVALID_ARGUMENT] = SD_BUS_ERROR_INVALID_ARGS,
        [VB_ERROR_INVALID_XML] = VB_ERROR_PREFIX "InvalidXML",
        [VB_ERROR_NO_SUCH_DOMAIN] = VB_ERROR_PREFIX "NoSuchDomain",
        [VB_ERROR_NO_SUCH_NETWORK] = VB_ERROR_PREFIX "NoSuchNetwork",
        [VB_ERROR_NO_SUCH_STORAGE_POOL] = VB_ERROR_PREFIX "NoSuchStoragePool",
        [VB_ERROR_NO_SUCH_STORAGE_VOL] = VB_ERROR_PREFIX "NoSuchStorageVol",
        [VB_ERROR_NO_SUCH_DEVICE] = VB_ERROR_PREFIX "NoSuchDevice",
        [VB_ERROR_INVALID_STATE] = VB_ERROR_PREFIX "InvalidState",
        [VB_ERROR_ALREADY_EXISTS] = VB_ERROR_PREFIX "AlreadyExists",
        [VB_ERROR_DEVICE_BUSY] = VB_ERROR_PREFIX "DeviceBusy",
        [VB_ERROR_NOT_SUPPORTED] = VB_ERROR_PREFIX "NotSupported",
        [VB_ERROR_OPERATION_FAILED] = VB_ERROR_PREFIX "OperationFailed",
        [VB_ERROR_TIMEOUT] = VB_ERROR_PREFIX "Timeout",
        /* The same name as polkit's refusals: one AccessDenied for clients to handle. */
        [VB_ERROR_ACCESS_DENIED] = SD_BUS_ERROR_ACCESS_DENIED,
        [VB_ERROR_LIMITS_EXCEEDED] = VB_ERROR_PREFIX "LimitsExceeded",
};

/* So that sd-bus clients (tests, busctl) get a meaningful errno back. */
const sd_bus_error_map bus_vb_error_map[] = {
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "InvalidXML", EBADMSG),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NoSuchDomain", ENOENT),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NoSuchNetwork", ENOENT),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NoSuchStoragePool", ENOENT),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NoSuchStorageVol", ENOENT),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NoSuchDevice", ENODEV),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "InvalidState", EBUSY),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "AlreadyExists", EEXIST),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "DeviceBusy", EBUSY),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "NotSupported", EOPNOTSUPP),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "OperationFailed", EIO),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "Timeout", ETIMEDOUT),
        SD_BUS_ERROR_MAP(VB_ERROR_PREFIX "LimitsExceeded", ENOBUFS),
        SD_BUS_ERROR_MAP_END,
};

const char *bus_error_name(VbErrorCode code) {
        if (code <= VB_ERROR_NONE || code >= _VB_ERROR_MAX)
                return VB_ERROR_PREFIX "OperationFailed";
        return error_name_table[code];
}

int bus_error_from_vb(sd_bus_error *ret, const VbError *e, int r) {
        if (vb_error_is_set(e))
                return sd_bus_error_set(ret, bus_error_name(e->code), e->message ?: "Unknown error");
        if (r == -ENOMEM)
                return r;
        return sd_bus_error_setf(ret, bus_error_name(VB_ERROR_OPERATION_FAILED), "Operation failed: %s",
                                 strerror(r < 0 ? -r : EIO));
}
