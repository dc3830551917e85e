/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf/domain-conf.h"
#include "drivers/qemu/qemu-files.h"
#include "util/error.h"

/* From a domain definition to QEMU's argument vector (no shell ever sees it). */

typedef struct QemuArgv {
        char **v;
        size_t n, allocated;
        bool oom;
} QemuArgv;

void qemu_argv_add(QemuArgv *a, const char *s);
void qemu_argv_addf(QemuArgv *a, const char *format, ...) _printf_(2, 3);
void qemu_argv_done(QemuArgv *a);
/* s with every ',' doubled, as QEMU's option syntax wants (to free). */
char *qemu_opt_escape(const char *s);

/* A tap device QEMU opens by name; after start it goes up and, with a bridge, into it. */
typedef struct QemuTap {
        char *ifname;
        char *bridge; /* NULL: none (type='ethernet') */
        size_t device;  /* index in the definition's devices */
} QemuTap;

typedef struct QemuCommandParams {
        const char *emulator;
        int monitor_fd;   /* the listening QMP socket QEMU inherits */
        bool kvm_usable;  /* /dev/kvm opens */
        /* Per device of the definition: the open macvtap or tap of an interface, the listening socket of a
         * virtio console (qemu_chardev_is_listened), -1 for none. */
        const int *tap_fds;
        size_t n_tap_fds;
        /* The host files of the definition as descriptors (qemu-files.h): QEMU is named those, never a
         * host path. NULL only in tests of the command line itself, which then show the paths. */
        const QemuFiles *files;
        /* The socket QEMU listens on for the guest agent's channel (org.qemu.guest_agent.0), which virtbusd
         * connects to (again after a restart); 0: none (tests of the command line), which gives the
         * channel a null backend. */
        int agent_fd;
} QemuCommandParams;

typedef struct QemuCommand {
        QemuArgv argv;
        char **aliases;   /* per device of the definition, NULL where it has no QEMU id */
        size_t n_aliases;
        QemuTap *taps;
        size_t n_taps, n_taps_allocated;
        bool has_vnc;
        char *vnc_password;
} QemuCommand;

void qemu_command_done(QemuCommand *c);

int qemu_command_build(const DomainDef *def, const QemuCommandParams *p, QemuCommand *ret, VbError *reterr);

/* Between qemu-command.c and qemu-command-devices.c. */
typedef struct QemuBuildState {
        const DomainDef *def;
        const QemuCommandParams *p;
        QemuCommand *cmd;
        bool q35;         /* the PCI root bus is 'pcie.0' (q35, microvm) */
        bool builtin_ahci; /* q35: its AHCI controller holds SATA disks on buses 'ide.N' */
        unsigned n_disk, n_net, n_serial, n_parallel, n_console, n_channel, n_input, n_video, n_rng, n_watchdog,
                n_controller, n_hostdev;
        bool usb_added, virtio_serial_added, scsi_added, sata_added, fdc_added, has_video;
        const char *console_serial_alias; /* a serial console is the first serial */
} QemuBuildState;

int qemu_command_add_device(QemuBuildState *s, size_t i, VbError *reterr);
/* The controllers, before the devices (qemu-command-controllers.c). */
int qemu_command_add_controllers(QemuBuildState *s, VbError *reterr);
/* Interfaces also on hotplug: the -netdev and -device option strings for device dev, alias given.
 * Fills tap (ifname/bridge to free) for tap backends. fd: the macvtap's (type='direct') or the tap's
 * descriptor, which virtbusd made (a number on the command line, a getfd name on hotplug); a tap made
 * so is the one <target dev=> names. */
int qemu_command_interface_opts(const DeviceDef *dev, const char *alias, const char *fd, bool q35,
                                char **ret_netdev, char **ret_device, QemuTap *ret_tap, VbError *reterr);
/* For type='direct': the macvtap to create (lower device, mode, name wanted or NULL); 0 if dev is not
 * a direct interface, 1 if it is. Strings point into node (from qemu_device_node). */
int qemu_interface_direct(const ConfNode *node, const char **ret_lower, const char **ret_mode,
                          const char **ret_name);
/* Whether the interface dev is backed by a tap (type bridge, ethernet, or a network's bridge). */
bool qemu_interface_is_tap(const ConfNode *node);
/* The tap's name: <target dev=> when given and usable, else a new random one (to free). */
char *qemu_interface_tap_name(const ConfNode *node);
/* A disk's options for QEMU, at start and on hot-plug: blockdev, the -blockdev option strings from the
 * bottom of its <backingStore> chain up to its own image (a storage then a format node per image, each
 * format node the backing of the next), and device, the -device option. */
typedef struct QemuDiskOpts {
        char **blockdev;
        size_t n_blockdev;
        char *device;
} QemuDiskOpts;
void qemu_disk_opts_done(QemuDiskOpts *o);
/* The options of disk dev (device i of files: its images are named by their descriptors there; files
 * NULL: by their paths) on a domain of this machine type. The controller its bus needs is not in them
 * (at start: qemu-command-devices.c adds it): 'sata0' (ich9-ahci) for SATA but on q35, 'usb' for USB,
 * 'scsi0' for SCSI, an isa-fdc on q35 for a floppy. */
int qemu_command_disk(const DeviceDef *dev, const char *alias, const QemuFiles *files, size_t i,
                      const char *machine, QemuDiskOpts *ret, VbError *reterr);
/* The block nodes of a disk with a <backingStore> chain are named after their layer, counted from the
 * bottom image (0): "<alias>-storage"/"<alias>-format" for it (so for a disk without a chain), then
 * "<alias>-o<N>-..." for the overlays above it; a snapshot's new overlay on a running domain gets the next
 * number, so that the names stay the ones a start from the same definition gives. qemu_disk_depth: the
 * disk's layers below its own image (< 0: no memory); qemu_disk_top_node: its own image's format node. */
int qemu_disk_node_prefix(const char *alias, size_t layer, char **ret);
int qemu_disk_depth(const DeviceDef *dev);
int qemu_disk_top_node(const DeviceDef *dev, const char *alias, char **ret);
/* What QEMU is named for path of device i (or of <os>, i = DOMAIN_PATH_NO_DEVICE, with os): the
 * descriptor's name from p->files, or path itself without files. NULL with an error when the file was
 * not opened (QEMU never gets a host path). */
const char *qemu_command_file_arg(const QemuCommandParams *p, size_t i, DomainOsPath os, const char *path,
                                  VbError *reterr);

/* Where a device with a guest PCI address goes in QEMU, on the command line and on hot-plug alike, for
 * every kind of device. bus: the QEMU id of <address bus='N'>: bus 0 is the machine's root bus ('pcie.0'
 * on q35, 'pci.0' otherwise), bus N > 0 the one made by <controller type='pci' index='N'>, whose QEMU id
 * is 'pci.N'. addr: "0xS.0xF". */
typedef struct QemuPciPlace {
        char bus[24];
        char addr[24];
        bool multifunction;
} QemuPciPlace;

void qemu_pci_bus_id(uint32_t bus, bool q35, char ret[static 24]);
/* false if a gives no PCI slot (QEMU then picks one on the root bus). */
bool qemu_pci_place(const DeviceAddress *a, bool q35, QemuPciPlace *ret);
/* The same as device options: ",bus=B,addr=A[,multifunction=on]", "" without a PCI slot (to free). */
char *qemu_pci_place_opts(const DeviceAddress *a, bool q35);

/* What a serial port handed out by OpenConsole writes into while no session holds it (QEMU opens it in
 * its own /dev, host/process.c): a 'file' backend, which query-chardev names "file". */
#define QEMU_CHARDEV_SINK "/dev/null"

/* Whether a device of this kind and target type with a pty (the default) is a serial port whose
 * character device OpenConsole hands out: QEMU starts it on QEMU_CHARDEV_SINK instead of a pty. */
static inline bool qemu_chardev_is_handed_over(DeviceKind kind, const char *target_type) {
        return kind == DEVICE_SERIAL ||
               (kind == DEVICE_CONSOLE && (!target_type || streq(target_type, "serial")));
}

/* Whether a device of this kind and target type with a pty (the default) is a virtio console, a virtio
 * channel or a parallel port, whose character device QEMU cannot swap: it gets a socket virtbusd listens
 * on for it instead of a pty (in virtbusd's own runtime directory: qemu_vm_console_socket_path), and
 * OpenConsole connects to that. (The guest agent's channel is virtbusd's own: qemu-agent.c.) */
static inline bool qemu_chardev_is_listened(DeviceKind kind, const char *target_type) {
        return ((kind == DEVICE_CONSOLE || kind == DEVICE_CHANNEL) && target_type && streq(target_type, "virtio")) ||
               kind == DEVICE_PARALLEL;
}

/* Reads a device's XML tree (device_def_to_node), for the attribute lookups below. */
int qemu_device_node(const DeviceDef *dev, ConfNode **ret);
/* The attribute attr of child (NULL: of n itself); NULL if absent. */
const char *qemu_node_attr(const ConfNode *n, const char *child, const char *attr);
