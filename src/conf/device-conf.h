/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "conf/conf-node.h"
#include "util/error.h"
#include "util/string-table.h"

/* One <devices> child (or a standalone device document). Kinds with typed code keep their typed
 * part in data (see device-<kind>.c); the rest of the element is kept in extra. */
typedef enum DeviceKind {
        DEVICE_DISK,
        DEVICE_CONTROLLER,
        DEVICE_LEASE,
        DEVICE_FILESYSTEM,
        DEVICE_INTERFACE,
        DEVICE_SMARTCARD,
        DEVICE_SERIAL,
        DEVICE_PARALLEL,
        DEVICE_CONSOLE,
        DEVICE_CHANNEL,
        DEVICE_INPUT,
        DEVICE_TPM,
        DEVICE_GRAPHICS,
        DEVICE_SOUND,
        DEVICE_AUDIO,
        DEVICE_VIDEO,
        DEVICE_HOSTDEV,
        DEVICE_REDIRDEV,
        DEVICE_REDIRFILTER,
        DEVICE_HUB,
        DEVICE_WATCHDOG,
        DEVICE_MEMBALLOON,
        DEVICE_RNG,
        DEVICE_NVRAM,
        DEVICE_PANIC,
        DEVICE_SHMEM,
        DEVICE_MEMORY,
        DEVICE_IOMMU,
        DEVICE_VSOCK,
        DEVICE_CRYPTO,
        DEVICE_PSTORE,
        _DEVICE_KIND_MAX,
        _DEVICE_KIND_INVALID = -EINVAL,
} DeviceKind;

DECLARE_STRING_TABLE_LOOKUP(device_kind, DeviceKind);

typedef enum DeviceAddressType {
        DEVICE_ADDRESS_NONE,
        DEVICE_ADDRESS_PCI,
        DEVICE_ADDRESS_DRIVE,
        DEVICE_ADDRESS_VIRTIO_SERIAL,
        DEVICE_ADDRESS_CCID,
        DEVICE_ADDRESS_USB,
        DEVICE_ADDRESS_SPAPR_VIO,
        DEVICE_ADDRESS_VIRTIO_S390,
        DEVICE_ADDRESS_CCW,
        DEVICE_ADDRESS_VIRTIO_MMIO,
        DEVICE_ADDRESS_ISA,
        DEVICE_ADDRESS_DIMM,
        DEVICE_ADDRESS_UNASSIGNED,
        _DEVICE_ADDRESS_TYPE_MAX,
        _DEVICE_ADDRESS_TYPE_INVALID = -EINVAL,
} DeviceAddressType;

DECLARE_STRING_TABLE_LOOKUP(device_address_type, DeviceAddressType);

/* Numbers left at UINT32_MAX were not given. */
typedef struct DeviceAddress {
        DeviceAddressType type;
        union {
                struct {
                        uint32_t domain, bus, slot, function;
                        int multifunction; /* -1 unset, 0 off, 1 on */
                } pci;
                struct {
                        uint32_t controller, bus, target, unit;
                } drive;
                struct {
                        uint32_t controller, bus, port;
                } vioserial;
                struct {
                        uint32_t bus;
                        char *port;
                } usb;
                struct {
                        uint32_t cssid, ssid, devno;
                } ccw;
                struct {
                        uint64_t reg; /* UINT64_MAX: not given */
                } spaprvio;
        };
} DeviceAddress;

typedef struct DeviceDef DeviceDef;

typedef struct DeviceOps {
        size_t data_size;
        /* Consumes what it understands from node (the device element). */
        int (*parse)(DeviceDef *dev, ConfNode *node, VbError *reterr);
        /* Fills node (already named after the kind) with the typed part. */
        int (*format)(const DeviceDef *dev, ConfNode *node, unsigned flags);
        int (*validate)(const DeviceDef *dev, const ConfNode *where, VbError *reterr);
        void (*free)(void *data);
} DeviceOps;

struct DeviceDef {
        DeviceKind kind;
        char *alias;
        DeviceAddress address;
        uint32_t boot_order; /* 0: none */
        void *data;          /* kind-specific, NULL for kinds without typed code */
        ConfNode *extra;     /* what typed code did not model, merged back on format */
        unsigned line;
};

extern const DeviceOps device_disk_ops, device_interface_ops, device_hostdev_ops, device_input_ops,
        device_graphics_ops, device_chardev_ops, device_controller_ops, device_video_ops,
        device_memballoon_ops;
/* The <source> rules of character devices, for an element no typed parser reads: <smartcard>, <redirdev>,
 * an <rng>'s <backend> (type= says what kind of source). */
int device_chardev_source_validate(const ConfNode *holder, VbError *reterr);

#define DEVICE_FORMAT_SECURE (1u << 0) /* include secrets such as graphics passwords */
#define DEVICE_PARSE_STABLE_DEFAULTS (1u << 0) /* derive a missing MAC from the content, not randomly */
#define DEVICE_PARSE_NO_DEFAULTS (1u << 1)     /* fill in nothing (a description to look a device up by) */

/* Standalone device documents (one device element, validated against device.rng). */
int device_def_parse_string(const char *xml, unsigned flags, DeviceDef **ret, VbError *reterr);
int device_def_format(const DeviceDef *def, unsigned flags, char **ret);
DeviceDef *device_def_free(DeviceDef *def);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceDef *, device_def_free);

/* Internal to src/conf: from a ConfNode (consumed), to a ConfNode. */
int device_def_parse_node(ConfNode *node, DeviceDef **ret, VbError *reterr);
int device_def_to_node(const DeviceDef *def, unsigned flags, ConfNode **ret);
int device_def_validate(const DeviceDef *def, VbError *reterr);

/* Shared parts: <address>, <alias>, <boot order>. */
int device_address_parse(ConfNode *node, DeviceAddress *ret, VbError *reterr);
int device_address_format(const DeviceAddress *a, ConfNode *parent, const char *name);
int device_address_validate(const DeviceAddress *a, const ConfNode *where, VbError *reterr);
void device_address_done(DeviceAddress *a);

/* Accessors for the typed kinds the service needs. */
const char *device_def_kind_name(const DeviceDef *def);

/* Kind-specific accessors (device-disk.c, device-interface.c). */
const char *device_disk_get_target(const DeviceDef *def);
const char *device_disk_get_source(const DeviceDef *def);
/* <disk type='volume'><source pool='P' volume='V'/>: true with both names. */
bool device_disk_get_volume(const DeviceDef *def, const char **ret_pool, const char **ret_volume);
/* The guest cannot write to the disk: <readonly/>, or a cdrom or floppy (as domain-paths.c reads it). */
bool device_disk_is_readonly(const DeviceDef *def);
/* What a volume disk is to a hypervisor: type='file' with the volume's path, and the volume's format as
 * <driver type> unless one was given. */
int device_disk_set_volume_file(DeviceDef *def, const char *path, const char *format);
/* <driver type=> (the image format), NULL when not given. */
const char *device_disk_get_format(const DeviceDef *def);
/* A writable image a snapshot can cover: a file or block disk (not a cdrom, floppy or lun), with a source,
 * not read-only nor shared. */
bool device_disk_is_writable_image(const DeviceDef *def);
/* The image at path (of format) becomes the disk's source, over the one it had: that one (with its type and
 * format) becomes the first <backingStore>, the chain it had below it. The disk is type='file' then. */
int device_disk_push_overlay(DeviceDef *def, const char *path, const char *format);
/* The undoing of that: the first <backingStore> (file or block) becomes the disk's source, with its format
 * and the chain below it. -ENOENT: the disk has no <backingStore>; -EINVAL: the layer names no image. */
int device_disk_pop_overlay(DeviceDef *def);
/* <target bus=>, NULL when not given. */
const char *device_disk_get_bus(const DeviceDef *def);
/* Returns true and fills mac if the interface has one. */
/* <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>: the guest agent's channel,
 * which the service connects to itself (its source path, if any, is not used). */
#define DEVICE_GUEST_AGENT_CHANNEL "org.qemu.guest_agent.0"
bool device_channel_is_guest_agent(const DeviceDef *dev);
/* <memballoon><stats period='N'/>: how often (s) the guest reports its memory statistics; 0 if never. */
unsigned device_memballoon_get_stats_period(const DeviceDef *dev);
bool device_interface_get_mac(const DeviceDef *def, uint8_t ret[6]);
void device_interface_set_mac(DeviceDef *def, const uint8_t mac[6]);
/* Gives an interface without a MAC one in 52:54:00:xx:xx:xx (derived from seed when non-NULL). */
void device_interface_ensure_mac(DeviceDef *def, const char *seed, unsigned salt);
/* A controller's type ('pci', 'usb'...), model (NULL if not given) and index (UINT32_MAX if not given);
 * false if dev is not a controller. Strings point into dev. */
bool device_controller_get(const DeviceDef *dev, const char **ret_type, const char **ret_model, uint32_t *ret_index);
/* Gives a controller its index (a definition's defaults: domain-parse.c). */
void device_controller_set_index(DeviceDef *dev, uint32_t index);
/* <target dev=>: the host side of the interface (a tap or macvtap of a running domain), NULL if none. */
const char *device_interface_get_target_dev(const DeviceDef *def);
/* Whether the host link counts what the guest sends as sent (type 'direct', a macvtap, and 'ethernet'), as
 * opposed to a tap on a bridge, whose transmit counter is the guest's receive. */
bool device_interface_shares_host_view(const DeviceDef *def);
/* type='network': the network named in <source network=>; NULL for other types. */
const char *device_interface_get_network(const DeviceDef *def);
/* type='network': what it actually uses, shown in the live definition as <source bridge=> or
 * <source dev= mode=> next to network= (networks, core/network.h). */
int device_interface_set_network_actual(DeviceDef *def, const char *bridge, const char *dev, const char *mode);
/* type='network' on a network of forward devices: becomes <interface type='direct'> with <source dev=
 * mode=> (a macvtap, which the hypervisor driver makes), keeping source network=. */
int device_interface_set_network_direct(DeviceDef *def, const char *dev, const char *mode);
/* type='network' on a network of host devices: becomes <interface type='hostdev' managed=...> with the
 * PCI function as <source><address/></source>, keeping source network= to say where it came from. */
int device_interface_set_network_hostdev(DeviceDef *def, uint32_t domain, uint32_t bus, uint32_t slot,
                                         uint32_t function, int managed);
