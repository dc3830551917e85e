/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The devices of a domain definition, as AttachDevice, DetachDevice and UpdateDevice see them: finding
 * the device a piece of device XML describes, refusing conflicts, giving a new device its alias and guest
 * PCI address, and new definitions with a device added, removed or replaced. Pure: no I/O, no state.
 *
 * How a description finds its device (domain_def_find_device):
 *   disk       by <target dev>
 *   interface  by <mac address> or <alias>
 *   hostdev    by the host device (<source><address>, or USB <vendor>+<product>)
 *   graphics   by type (DEVICE_MATCH_IDENTITY only)
 *   any kind   by <alias>, else by guest <address>, else every device of the kind
 * With DEVICE_MATCH_EXACT, everything else the description gives must agree with the device found; a
 * difference is reported naming the element and attribute. */
#include <sys/types.h>

#include "conf/domain-conf.h"

typedef enum DeviceMatch {
        DEVICE_MATCH_EXACT,    /* detach: the whole description must agree */
        DEVICE_MATCH_IDENTITY, /* update: only what identifies the device */
} DeviceMatch;

/* A deep copy. */
int device_def_copy(const DeviceDef *dev, DeviceDef **ret);

/* The host device dev takes (hostdev, interface type='hostdev'), as text for messages and polkit:
 * "0000:06:12.2" (PCI), "usb:1234:5678" (USB vendor:product), "usb:1.2" (USB bus.device),
 * "scsi:host0:0:0:0", "mdev:<uuid>". Returns 0 (and NULL) if dev takes none, 1 with *ret to free. */
int device_def_host_device(const DeviceDef *dev, char **ret);
/* A hostdev or an interface type='hostdev' (even one whose source is not given). */
bool device_def_is_host_device(const DeviceDef *dev);
/* The network an interface type='network' is on (to free); 0 and NULL for other devices. */
int device_def_network(const DeviceDef *dev, char **ret);
/* A name for messages: "disk 'vda'", "interface '52:54:00:..'", "watchdog 'watchdog0'", "hostdev
 * '0000:06:12.2'", or just the kind. To free. */
char *device_def_describe(const DeviceDef *dev);

/* Index of the device in def that probe describes. NoSuchDevice if none (naming the differing
 * attribute when a device was identified but the rest disagrees), InvalidArgument if several. */
int domain_def_find_device(const DomainDef *def, const DeviceDef *probe, DeviceMatch how, size_t *ret,
                           VbError *reterr);
/* The device with this alias, or -ENOENT. */
ssize_t domain_def_find_alias(const DomainDef *def, const char *alias);

/* Conflicts of a new device with those of def: the same alias, disk target, interface MAC or controller
 * index (AlreadyExists); the same guest address or host device (DeviceBusy). */
int domain_def_check_device_conflicts(const DomainDef *def, const DeviceDef *dev, VbError *reterr);

/* Gives dev an alias if it has none, libvirt style (virtio-disk4, net0, hostdev0, usb0, watchdog0...),
 * unused in def. */
int domain_def_assign_device_alias(const DomainDef *def, DeviceDef *dev);
/* Gives a device that sits on PCI a guest address if it has none (or completes a partial one), free in def
 * and, if non-NULL, in other (a hot-plug, or a device added to a saved definition):
 *   q35 machines: slot 0 of a pcie-root-port (or pcie-switch-downstream-port) of def that no device uses,
 *     as the root bus pcie.0 takes no hot-plugged devices; OperationFailed saying to add <controller
 *     type='pci' model='pcie-root-port'/> when there is none. A bus naming such a port gets slot 0.
 *   other machines: the first free slot on bus 0 from slot 3 (0: host bridge, 1: ISA/IDE/USB, 2: video),
 *     OperationFailed when bus 0 is full. */
int domain_def_assign_device_address(const DomainDef *def, const DomainDef *other, DeviceDef *dev,
                                     VbError *reterr);
/* Both for every device of a definition about to run (a driver's start): the live definition names
 * every device, so that each can be detached and updated. Devices without an address go on bus 0, also on
 * q35 (integrated devices of pcie.0, which cannot be hot-unplugged). */
int domain_def_assign_device_names(DomainDef *def, VbError *reterr);
/* Whether a machine type is a q35 one ('q35', 'pc-q35-*': its PCI root bus is 'pcie.0'). */
bool domain_machine_is_q35(const char *machine);
/* Whether it is QEMU's 'microvm' (no PCI but the PCIe host it adds with pcie=on, which needs ACPI). */
bool domain_machine_is_microvm(const char *machine);
/* Whether its PCI root bus is a PCIe one, 'pcie.0' (q35, microvm) rather than 'pci.0'. */
bool domain_machine_has_pcie_root(const char *machine);
/* Whether a device of this kind and shape sits on the guest's PCI bus. */
bool device_def_wants_pci_address(const DeviceDef *dev);

/* UpdateDevice on a running domain: old with what may change in place taken from given (disk: the medium
 * of a cdrom or floppy; interface: <link state> and <bandwidth>; graphics: passwd, passwdValidTo,
 * connected); whatever else given says must agree with old (NotSupported naming the first difference), and
 * what it leaves out stays as it is. *ret to free. */
int device_def_live_update(const DeviceDef *old, const DeviceDef *given, DeviceDef **ret, VbError *reterr);
/* What an update description leaves out and the device has (alias, guest address): copied from old. */
int device_def_complete_from(DeviceDef *dev, const DeviceDef *old);

/* Controllers without an index get the first one free among the controllers of their type; PCI ones from
 * 1 up past the highest given, as index 0 is the machine's root bus (pci-root or pcie-root, implicit). At
 * parse and when a device is added. */
void domain_def_fill_controller_indexes(DomainDef *def);
/* New definitions (to free) with a copy of dev added (a controller without an index gets one), the device
 * at index removed, or replaced. */
int domain_def_with_device_added(const DomainDef *def, const DeviceDef *dev, DomainDef **ret);
int domain_def_with_device_removed(const DomainDef *def, size_t index, DomainDef **ret);
int domain_def_with_device_replaced(const DomainDef *def, size_t index, const DeviceDef *dev, DomainDef **ret);
/* In place, for a definition nobody else sees yet: appends dev (taken, also on failure) / frees one. */
int domain_def_add_device(DomainDef *def, DeviceDef *dev);
void domain_def_remove_device(DomainDef *def, size_t index);

/* The first element called name in namespace ns_href inside <metadata>, or NULL. */
const ConfNode *domain_def_get_metadata(const DomainDef *def, const char *ns_href, const char *name);
