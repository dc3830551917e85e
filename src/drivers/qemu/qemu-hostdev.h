/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

#include "conf/domain-conf.h"
#include "util/error.h"

/* Host PCI functions on a running QEMU (qemu-hostdev.c): a <hostdev type='pci'> or an
 * <interface type='hostdev'> on a VF, hot-plugged as vfio-pci. Core has taken the device from the host
 * before (bound it to vfio-pci, set a VF's MAC through its PF) and gives it back after a failure or once
 * the guest released it. */

/* Whether dev is passed to QEMU as vfio-pci: 1, 0 if not a host device at all; host devices QEMU cannot
 * be given that way (USB, SCSI, an interface on a USB device) answer NotSupported. */
int qemu_hostdev_is_vfio(const DeviceDef *dev, VbError *reterr);

/* The arguments of device_add for dev with id alias: driver vfio-pci, host (the function's host address),
 * id, and the guest's bus and addr where core gave a PCI address (qemu_pci_place: 'pci.N' behind the PCI
 * controller of index N, the root bus 'pcie.0' on q35, 'pci.0' otherwise), bootindex for a <boot order>. 0 and *ret NULL if dev is not a host PCI device. */
int qemu_hostdev_device_add_args(const DeviceDef *dev, const char *alias, bool q35, struct json_object **ret,
                                 VbError *reterr);

