/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Devices on QEMU's command line: disks (-blockdev + -device), NICs (-netdev + -device), character
 * devices (-chardev + a frontend), graphics, input, video and a few simple ones. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>

#include "conf/device-host-source.h"
#include "conf/domain-devices.h"
#include "drivers/qemu/qemu-command.h"
#include "util/strbuf.h"

static int not_supported(VbError *reterr, const char *format, ...) _printf_(2, 3);
static int not_supported(VbError *reterr, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED, "%s", m ?: "Not supported by the qemu driver");
}

/* A user alias (ua-...) if it is a valid QEMU id, else prefix + counter. */
static int pick_alias(const DeviceDef *dev, const char *prefix, unsigned *counter, char **ret) {
        if (dev->alias && strncmp(dev->alias, "ua-", 3) == 0 &&
            strspn(dev->alias, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
                    strlen(dev->alias)) {
                *ret = strdup(dev->alias);
                (*counter)++;
        } else if (asprintf(ret, "%s%u", prefix, (*counter)++) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

static void add_pair(QemuArgv *a, const char *opt, const char *value) {
        qemu_argv_add(a, opt);
        qemu_argv_add(a, value);
}

static char *boot_opt(const DeviceDef *dev) {
        char *s;
        if (dev->boot_order == 0)
                return strdup("");
        return asprintf(&s, ",bootindex=%u", dev->boot_order) < 0 ? NULL : s;
}

/* Disks ---------------------------------------------------------------------------------------- */

int qemu_disk_node_prefix(const char *alias, size_t layer, char **ret) {
        if (layer == 0)
                *ret = strdup(alias);
        else if (asprintf(ret, "%s-o%zu", alias, layer) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* The <backingStore> layers of the disk node n with a file or block source, from the top down. */
static size_t disk_backing_layers(const ConfNode *n, const ConfNode **ret, size_t max) {
        size_t k = 0;

        for (const ConfNode *b = conf_node_child(n, "backingStore"); b; b = conf_node_child(b, "backingStore")) {
                const char *type = conf_node_attr(b, "type") ?: "file";
                const ConfNode *src = conf_node_child(b, "source");

                if (!src || !(streq(type, "file") ? conf_node_attr(src, "file") :
                              streq(type, "block") ? conf_node_attr(src, "dev") : NULL))
                        break;
                if (ret && k < max)
                        ret[k] = b;
                k++;
        }
        return k;
}

int qemu_disk_depth(const DeviceDef *dev) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = qemu_device_node(dev, &n);
        return r < 0 ? r : (int) disk_backing_layers(n, NULL, 0);
}

int qemu_disk_top_node(const DeviceDef *dev, const char *alias, char **ret) {
        _cleanup_free_ char *prefix = NULL;
        int depth = qemu_disk_depth(dev);

        if (depth < 0)
                return depth;
        if (qemu_disk_node_prefix(alias, (size_t) depth, &prefix) < 0 || asprintf(ret, "%s-format", prefix) < 0)
                return -ENOMEM;
        return 0;
}

/* *ret a new formatted string; 0, or -ENOMEM with *ret NULL (asprintf leaves it undefined). */
static int fmt(char **ret, const char *format, ...) _printf_(2, 3);
static int fmt(char **ret, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(ret, format, ap);
        va_end(ap);
        if (r < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* A disk's <target bus=>, or the one its name implies (vdX virtio, sdX scsi, fdX fdc, else ide). */
static const char *disk_bus(const ConfNode *n) {
        const char *target = qemu_node_attr(n, "target", "dev") ?: "";

        return qemu_node_attr(n, "target", "bus") ?: strncmp(target, "vd", 2) == 0 ? "virtio"
                                                   : strncmp(target, "sd", 2) == 0 ? "scsi"
                                                   : strncmp(target, "fd", 2) == 0 ? "fdc"
                                                                                   : "ide";
}

/* The unit a target name gives (hda, sdb, fda: its third letter), or -1. */
static int target_unit(const char *target) {
        return strlen(target) == 3 && target[2] >= 'a' && target[2] <= 'z' ? target[2] - 'a' : -1;
}

/* The -device option of a disk on bus (QEMU's device, the bus it sits on, its id, drive, bootindex).
 * drive: its format node prefix, NULL for a drive without a medium. */
static int disk_device_opt(const char *bus, const char *device, const char *target, const char *alias,
                           const char *drive, const char *addr, const char *boot, const char *machine, char **ret,
                           VbError *reterr) {
        _cleanup_free_ char *d = NULL;
        bool cdrom = streq(device, "cdrom"), floppy = streq(device, "floppy");
        int unit = target_unit(target);

        if (drive && fmt(&d, ",drive=%s-format", drive) < 0)
                return -ENOMEM;
        if (floppy != streq(bus, "fdc"))
                return not_supported(reterr, "Disk '%s': device 'floppy' goes on bus 'fdc' and bus 'fdc' takes "
                                     "floppies only (<disk device='floppy'> with <target bus='fdc'>)", target);
        if (streq(bus, "virtio")) {
                if (cdrom || !drive)
                        return not_supported(reterr, "Disk '%s': a virtio disk needs a source", target);
                return fmt(ret, "virtio-blk-pci%s,id=%s%s%s", d, alias, addr, boot);
        }
        if (streq(bus, "ide") || (streq(bus, "sata") && domain_machine_is_q35(machine))) {
                /* hda..hdd: the two IDE buses, master and slave; on q35 the ports of its AHCI. */
                if (unit < 0 || unit > 5 || (unit > 3 && !domain_machine_is_q35(machine)))
                        return not_supported(reterr, "Disk '%s': no such %s unit", target, bus);
                if (domain_machine_is_q35(machine))
                        return fmt(ret, "%s,bus=ide.%d,id=%s%s%s", cdrom ? "ide-cd" : "ide-hd", unit, alias,
                                   strempty(d), boot);
                return fmt(ret, "%s,bus=ide.%d,unit=%d,id=%s%s%s", cdrom ? "ide-cd" : "ide-hd", unit / 2,
                           unit % 2, alias, strempty(d), boot);
        }
        if (streq(bus, "sata")) {
                /* The six ports of the AHCI controller 'sata0' (ich9-ahci), one disk each. */
                if (unit < 0 || unit > 5)
                        return not_supported(reterr, "Disk '%s': no such SATA port (sda to sdf)", target);
                return fmt(ret, "%s,bus=sata0.%d,id=%s%s%s", cdrom ? "ide-cd" : "ide-hd", unit, alias,
                           strempty(d), boot);
        }
        if (streq(bus, "scsi"))
                return fmt(ret, "%s,bus=scsi0.0,id=%s%s%s", cdrom ? "scsi-cd" : "scsi-hd", alias, strempty(d),
                           boot);
        if (streq(bus, "usb")) {
                /* usb-storage is a disk; a CD-ROM would need usb-bot with a scsi-cd behind it. */
                if (cdrom || !drive)
                        return not_supported(reterr, "Disk '%s': a USB disk needs a source and device 'disk'",
                                             target);
                return fmt(ret, "usb-storage,bus=usb.0%s,id=%s%s", d, alias, boot);
        }
        if (streq(bus, "fdc")) {
                /* fda, fdb: the two drives of the floppy controller. */
                if (domain_machine_is_microvm(machine))
                        return not_supported(reterr, "Disk '%s': a microvm machine has no floppy controller (it "
                                             "has no ISA DMA)", target);
                if (unit < 0 || unit > 1)
                        return not_supported(reterr, "Disk '%s': no such floppy unit (fda or fdb)", target);
                return fmt(ret, "floppy,unit=%d,id=%s%s%s", unit, alias, strempty(d), boot);
        }
        return not_supported(reterr, "Disk '%s': bus '%s' is not supported by the qemu driver", target, bus);
}

static int disk_opts(const DeviceDef *dev, const char *alias, const char *prefix, const char *source,
                     const char *backing, const char *machine, char **ret_file_node, char **ret_format_node,
                     char **ret_device, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *src = NULL, *addr = NULL, *boot = NULL, *file_node = NULL, *format_node = NULL,
                            *devopt = NULL;
        const char *type, *device, *format, *bus, *target;
        bool readonly;
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type") ?: "file";
        device = qemu_node_attr(n, NULL, "device") ?: "disk";
        format = qemu_node_attr(n, "driver", "type") ?: "raw";
        target = qemu_node_attr(n, "target", "dev") ?: "";
        /* As the files were opened (conf/domain-paths.c): a floppy's medium is read only, like a cdrom's. */
        readonly = conf_node_child(n, "readonly") || streq(device, "cdrom") || streq(device, "floppy");
        if (!streq(type, "file") && !streq(type, "block"))
                return not_supported(reterr, "Disk '%s': source type '%s' is not supported by the qemu driver "
                                     "(only 'file' and 'block')", target, type);
        if (!streq(device, "disk") && !streq(device, "cdrom") && !streq(device, "floppy"))
                return not_supported(reterr, "Disk '%s': device '%s' is not supported by the qemu driver", target,
                                     device);
        if (!streq(format, "raw") && !streq(format, "qcow2"))
                return not_supported(reterr, "Disk '%s': format '%s' is not supported (only 'raw' and 'qcow2')",
                                     target, format);
        bus = disk_bus(n);
        if (device_disk_get_source(dev)) {
                src = qemu_opt_escape(source ?: device_disk_get_source(dev));
                if (!src)
                        return -ENOMEM;
        }
        addr = qemu_pci_place_opts(&dev->address, domain_machine_has_pcie_root(machine));
        boot = boot_opt(dev);
        if (!addr || !boot)
                return -ENOMEM;

        /* auto-read-only=on but for usb-storage, which gives its drive to a SCSI disk of its own: the image
         * is then opened again, and the locks of QEMU's read-only and read-write descriptors of the file
         * (two fdset entries) collide ("Failed to get "write" lock"). */
        if (src &&
            (fmt(&file_node, "driver=%s,filename=%s,node-name=%s-storage,read-only=%s%s",
                 streq(type, "block") ? "host_device" : "file", src, prefix, readonly ? "on" : "off",
                 streq(bus, "usb") ? "" : ",auto-read-only=on") < 0 ||
             fmt(&format_node, "driver=%s,file=%s-storage,node-name=%s-format,read-only=%s%s%s", format, prefix,
                 prefix, readonly ? "on" : "off", backing ? ",backing=" : "", strempty(backing)) < 0))
                return -ENOMEM;
        r = disk_device_opt(bus, device, target, alias, src ? prefix : NULL, addr, boot, machine, &devopt, reterr);
        if (r < 0)
                return r;
        *ret_file_node = TAKE_PTR(file_node);
        *ret_format_node = TAKE_PTR(format_node);
        *ret_device = TAKE_PTR(devopt);
        return 0;
}

void qemu_disk_opts_done(QemuDiskOpts *o) {
        for (size_t k = 0; k < o->n_blockdev; k++)
                free(o->blockdev[k]);
        free(o->blockdev);
        free(o->device);
        *o = (QemuDiskOpts) {};
}

/* What QEMU is named for path of device i: its descriptor's name in files, or path itself without files. */
static const char *disk_file_arg(const QemuFiles *files, size_t i, const char *path, VbError *reterr) {
        const char *arg;

        if (!files)
                return path;
        arg = qemu_files_arg_device(files, i, path);
        if (!arg)
                vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "'%s' was not opened for QEMU", path);
        return arg;
}

static int opts_push(QemuDiskOpts *o, char *opt) {
        char **v;

        if (!opt)
                return -ENOMEM;
        v = realloc(o->blockdev, (o->n_blockdev + 1) * sizeof(char *));
        if (!v) {
                free(opt);
                return -ENOMEM;
        }
        o->blockdev = v;
        o->blockdev[o->n_blockdev++] = opt;
        return 0;
}

/* The images below a disk (its <backingStore> chain), as read-only nodes from the bottom up, each the
 * backing of the next: QEMU gets each as a descriptor and never opens a path a header names. *ret_top_backing:
 * the node the disk's own image is over (NULL without a chain). */
static int disk_chain(const ConfNode *n, const char *alias, const QemuFiles *files, size_t i, QemuDiskOpts *o,
                      char **ret_top_backing, VbError *reterr) {
        const ConfNode *layers[64];
        size_t depth = disk_backing_layers(n, layers, ELEMENTSOF(layers));
        _cleanup_free_ char *below = NULL;

        if (depth > ELEMENTSOF(layers))
                return not_supported(reterr, "Disk '%s': a backing chain deeper than %zu images",
                                     strempty(qemu_node_attr(n, "target", "dev")), ELEMENTSOF(layers));
        for (size_t k = 0; k < depth; k++) {
                const ConfNode *b = layers[depth - 1 - k], *src = conf_node_child(b, "source");
                const char *type = conf_node_attr(b, "type") ?: "file";
                const char *format = conf_node_child(b, "format") ? conf_node_attr(conf_node_child(b, "format"), "type") : NULL;
                const char *path = conf_node_attr(src, streq(type, "block") ? "dev" : "file"), *arg;
                _cleanup_free_ char *prefix = NULL, *esc = NULL;
                char *file = NULL, *fmt = NULL;

                format = format ?: "raw";
                if (!streq(format, "raw") && !streq(format, "qcow2"))
                        return not_supported(reterr, "Disk '%s': backing image '%s' is '%s' (only 'raw' and 'qcow2')",
                                             strempty(qemu_node_attr(n, "target", "dev")), path, format);
                arg = disk_file_arg(files, i, path, reterr);
                if (!arg)
                        return -EACCES;
                esc = qemu_opt_escape(arg);
                if (!esc || qemu_disk_node_prefix(alias, k, &prefix) < 0 ||
                    asprintf(&file, "driver=%s,filename=%s,node-name=%s-storage,read-only=on,auto-read-only=on",
                             streq(type, "block") ? "host_device" : "file", esc, prefix) < 0)
                        return -ENOMEM;
                if (opts_push(o, file) < 0 ||
                    asprintf(&fmt, "driver=%s,file=%s-storage,node-name=%s-format,read-only=on%s%s", format, prefix,
                             prefix, below ? ",backing=" : "", strempty(below)) < 0 ||
                    opts_push(o, fmt) < 0)
                        return -ENOMEM;
                free(below);
                if (asprintf(&below, "%s-format", prefix) < 0)
                        return -ENOMEM;
        }
        *ret_top_backing = TAKE_PTR(below);
        return (int) depth;
}

int qemu_command_disk(const DeviceDef *dev, const char *alias, const QemuFiles *files, size_t i,
                      const char *machine, QemuDiskOpts *ret, VbError *reterr) {
        _cleanup_(qemu_disk_opts_done) QemuDiskOpts o = {};
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *backing = NULL, *prefix = NULL;
        char *file = NULL, *format = NULL;
        const char *source = NULL;
        int r, depth = 0;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        if (device_disk_get_source(dev)) {
                source = disk_file_arg(files, i, device_disk_get_source(dev), reterr);
                if (!source)
                        return -EACCES;
                depth = disk_chain(n, alias, files, i, &o, &backing, reterr);
                if (depth < 0)
                        return depth;
        }
        r = qemu_disk_node_prefix(alias, (size_t) depth, &prefix);
        if (r >= 0)
                r = disk_opts(dev, alias, prefix, source, backing, machine, &file, &format, &o.device, reterr);
        if (r < 0)
                return r;
        if (file && opts_push(&o, file) < 0) {
                free(format);
                return -ENOMEM;
        }
        if (format && opts_push(&o, format) < 0)
                return -ENOMEM;
        *ret = o;
        o = (QemuDiskOpts) {};
        return 0;
}

static void ensure_usb(QemuBuildState *s);

static int add_disk(QemuBuildState *s, size_t i, const DeviceDef *dev, const char *alias, VbError *reterr) {
        _cleanup_(qemu_disk_opts_done) QemuDiskOpts o = {};
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        QemuArgv *a = &s->cmd->argv;
        const char *bus;
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        r = qemu_command_disk(dev, alias, s->p->files, i, s->def->os.machine, &o, reterr);
        if (r < 0)
                return r;
        /* The controller the bus needs, unless a <controller> with an address made it already. */
        bus = disk_bus(n);
        if (streq(bus, "scsi") && !s->scsi_added) {
                add_pair(a, "-device", "virtio-scsi-pci,id=scsi0");
                s->scsi_added = true;
        } else if (streq(bus, "sata") && !s->builtin_ahci && !s->sata_added) {
                add_pair(a, "-device", "ich9-ahci,id=sata0");
                s->sata_added = true;
        } else if (streq(bus, "usb"))
                ensure_usb(s);
        else if (streq(bus, "fdc") && domain_machine_is_q35(s->def->os.machine) && !s->fdc_added) {
                /* i440fx and isapc have a floppy controller built in; q35 has none. */
                add_pair(a, "-device", "isa-fdc,id=fdc0");
                s->fdc_added = true;
        }
        for (size_t k = 0; k < o.n_blockdev; k++)
                add_pair(a, "-blockdev", o.blockdev[k]);
        add_pair(a, "-device", o.device);
        return 0;
}

/* Network interfaces --------------------------------------------------------------------------- */

static const char *nic_driver(const char *model) {
        static const struct {
                const char *model, *driver;
        } table[] = {
                { "virtio", "virtio-net-pci" }, { "e1000", "e1000" },     { "e1000e", "e1000e" },
                { "rtl8139", "rtl8139" },       { "ne2k_pci", "ne2k_pci" }, { "pcnet", "pcnet" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(model, table[i].model))
                        return table[i].driver;
        return NULL;
}

int qemu_interface_direct(const ConfNode *n, const char **ret_lower, const char **ret_mode, const char **ret_name) {
        const char *type = qemu_node_attr(n, NULL, "type");

        if (!type || !streq(type, "direct"))
                return 0;
        *ret_lower = qemu_node_attr(n, "source", "dev");
        *ret_mode = qemu_node_attr(n, "source", "mode") ?: "vepa";
        *ret_name = qemu_node_attr(n, "target", "dev");
        return 1;
}

bool qemu_interface_is_tap(const ConfNode *n) {
        const char *type = qemu_node_attr(n, NULL, "type");
        return type && (streq(type, "bridge") || streq(type, "ethernet") ||
                        (streq(type, "network") && qemu_node_attr(n, "source", "bridge")));
}

char *qemu_interface_tap_name(const ConfNode *n) {
        const char *target = qemu_node_attr(n, "target", "dev");
        uint32_t rnd = 0;
        char *s;

        if (target && strlen(target) < 16)
                return strdup(target);
        (void) !getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        return asprintf(&s, "vbtap%08x", rnd) < 0 ? NULL : s;
}

int qemu_command_interface_opts(const DeviceDef *dev, const char *alias, const char *fd, bool q35,
                                char **ret_netdev, char **ret_device, QemuTap *ret_tap, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *ifname = NULL, *bridge = NULL, *netdev = NULL, *device = NULL, *addr = NULL,
                            *boot = NULL;
        const char *type, *model, *driver;
        char mac[18];
        uint8_t m[6];
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type");
        model = qemu_node_attr(n, "model", "type") ?: "virtio";
        driver = nic_driver(model);
        if (!driver)
                return not_supported(reterr, "Interface model '%s' is not supported by the qemu driver", model);
        if (!type)
                return not_supported(reterr, "Interface without a type");
        if (streq(type, "user")) {
                if (asprintf(&netdev, "user,id=host%s", alias) < 0)
                        return -ENOMEM;
        } else if (streq(type, "bridge") || streq(type, "ethernet") ||
                   /* A network's bridge, as core resolved it at start (core/network-manager.c). */
                   (streq(type, "network") && qemu_node_attr(n, "source", "bridge"))) {
                const char *br = qemu_node_attr(n, "source", "bridge");
                if (streq(type, "bridge") && !br)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "Interface of type 'bridge' needs <source bridge='...'/>");
                ifname = qemu_interface_tap_name(n);
                if (!ifname || (br && !(bridge = strdup(br))))
                        return -ENOMEM;
                /* No vhost: /dev/vhost-net may be missing, and QEMU 7.2 aborts on vhost=on then. With fd,
                 * virtbusd made the tap (named <target dev=>): an unprivileged QEMU cannot. */
                if (fd ? asprintf(&netdev, "tap,id=host%s,fd=%s", alias, fd) < 0
                       : asprintf(&netdev, "tap,id=host%s,ifname=%s,script=no,downscript=no", alias, ifname) < 0)
                        return -ENOMEM;
        } else if (streq(type, "direct")) {
                /* The macvtap was made and opened by the caller: QEMU gets its descriptor. */
                if (!fd)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Interface '%s': no macvtap", alias);
                if (asprintf(&netdev, "tap,id=host%s,fd=%s", alias, fd) < 0)
                        return -ENOMEM;
        } else if (streq(type, "network"))
                return not_supported(reterr, "Interface type 'network' on a network of forward devices (macvtap) "
                                     "or host devices is not supported by the qemu driver yet");
        else
                return not_supported(reterr, "Interface type '%s' is not supported by the qemu driver", type);

        if (!device_interface_get_mac(dev, m))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Interface '%s' has no MAC address", alias);
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        addr = qemu_pci_place_opts(&dev->address, q35);
        boot = boot_opt(dev);
        if (!addr || !boot)
                return -ENOMEM;
        if (asprintf(&device, "%s,netdev=host%s,id=%s,mac=%s%s%s", driver, alias, alias, mac, addr, boot) < 0)
                return -ENOMEM;
        *ret_netdev = TAKE_PTR(netdev);
        *ret_device = TAKE_PTR(device);
        if (ret_tap)
                *ret_tap = (QemuTap) { .ifname = TAKE_PTR(ifname), .bridge = TAKE_PTR(bridge) };
        return 0;
}

static int add_interface(QemuBuildState *s, size_t i, const char *alias, VbError *reterr) {
        _cleanup_free_ char *netdev = NULL, *device = NULL;
        QemuTap tap = {};
        char fd[16] = "";
        int r;


        if (i < s->p->n_tap_fds && s->p->tap_fds[i] >= 0)
                snprintf(fd, sizeof fd, "%d", s->p->tap_fds[i]);
        r = qemu_command_interface_opts(s->def->devices[i], alias, fd[0] ? fd : NULL, s->q35, &netdev, &device,
                                        &tap, reterr);
        if (r < 0)
                return r;
        add_pair(&s->cmd->argv, "-netdev", netdev);
        add_pair(&s->cmd->argv, "-device", device);
        if (tap.ifname) {
                if (!GREEDY_REALLOC(s->cmd->taps, s->cmd->n_taps_allocated, s->cmd->n_taps + 1)) {
                        free(tap.ifname);
                        free(tap.bridge);
                        return -ENOMEM;
                }
                tap.device = i;
                s->cmd->taps[s->cmd->n_taps++] = tap;
        }
        return 0;
}

/* Character devices ---------------------------------------------------------------------------- */

/* The -chardev value for a <serial>/<parallel>/<console>/<channel> node, with id. handover: a serial port
 * whose pty virtbusd hands out itself (OpenConsole): QEMU gets no pty but /dev/null (QEMU_CHARDEV_SINK),
 * which OpenConsole swaps for a connected socket (qemu-console.c). Not the null backend: a port that waited
 * to write when the guest was saved or migrated (a full session) waits again where it is restored, on a
 * watch of its backend; a null backend cannot be watched, and the port would wait forever. /dev/null can:
 * it is always writable, and the output goes nowhere. listen_fd (or -1): a virtio console's pty becomes a
 * socket listening there, which OpenConsole connects to. */
static int chardev_backend(const QemuBuildState *s, size_t index, const ConfNode *n, const char *id, const char *what,
                           bool handover, int listen_fd, char **ret, VbError *reterr) {
        const char *type = qemu_node_attr(n, NULL, "type") ?: "pty";
        const char *protocol = qemu_node_attr(n, "protocol", "type");
        const ConfNode *src[2] = {};
        size_t n_src = 0;
        _cleanup_free_ char *path = NULL;
        StrBuf b = STRBUF_NULL;

        for (size_t i = 0; i < n->n_children && n_src < 2; i++)
                if (conf_node_is(n->children[i], "source"))
                        src[n_src++] = n->children[i];
        if (n_src > 0 && conf_node_attr(src[0], "path") &&
            (streq(type, "file") || streq(type, "pipe") || streq(type, "dev") || streq(type, "unix"))) {
                const char *arg = qemu_command_file_arg(s->p, index, 0, conf_node_attr(src[0], "path"), reterr);
                if (!arg)
                        return -EACCES;
                path = qemu_opt_escape(arg);
                if (!path)
                        return -ENOMEM;
        }

        if (streq(type, "pty") && listen_fd >= 0)
                strbuf_appendf(&b, "socket,id=%s,fd=%d,server=on,wait=off", id, listen_fd);
        else if (streq(type, "pty") && handover)
                strbuf_appendf(&b, "file,id=%s,path=%s", id, QEMU_CHARDEV_SINK);
        else if (streq(type, "null") || streq(type, "vc") || streq(type, "pty"))
                strbuf_appendf(&b, "%s,id=%s", type, id);
        else if (streq(type, "stdio"))
                strbuf_appendf(&b, "stdio,id=%s,signal=off", id);
        else if (streq(type, "file") || streq(type, "pipe") || streq(type, "dev")) {
                const char *append = n_src > 0 ? conf_node_attr(src[0], "append") : NULL;
                if (!path)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "%s of type '%s' needs a source path",
                                            what, type);
                strbuf_appendf(&b, "%s,id=%s,path=%s", streq(type, "dev") ? "tty" : type, id, path);
                if (append && streq(type, "file"))
                        strbuf_appendf(&b, ",append=%s", streq(append, "on") ? "on" : "off");
        } else if (streq(type, "unix")) {
                const char *mode = n_src > 0 ? conf_node_attr(src[0], "mode") : NULL;
                if (!path)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "%s of type 'unix' needs a source path",
                                            what);
                if (!s->p->files)
                        strbuf_appendf(&b, "socket,id=%s,path=%s%s", id, path,
                                       mode && streq(mode, "connect") ? ",reconnect=1" : ",server=on,wait=off");
                else /* virtbusd bound or connected it */
                        strbuf_appendf(&b, "socket,id=%s,fd=%s%s", id, path,
                                       mode && streq(mode, "connect") ? "" : ",server=on,wait=off");
        } else if (streq(type, "tcp")) {
                const char *mode = n_src > 0 ? conf_node_attr(src[0], "mode") : NULL;
                const char *host = n_src > 0 ? conf_node_attr(src[0], "host") : NULL;
                const char *service = n_src > 0 ? conf_node_attr(src[0], "service") : NULL;
                if (!service)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "%s of type 'tcp' needs <source service='PORT'/>", what);
                strbuf_appendf(&b, "socket,id=%s,host=%s,port=%s%s%s", id, host ?: "127.0.0.1", service,
                               mode && streq(mode, "bind") ? ",server=on,wait=off" : ",reconnect=1",
                               protocol && streq(protocol, "telnet") ? ",telnet=on" : "");
        } else if (streq(type, "udp")) {
                const ConfNode *connect = NULL, *bind = NULL;
                for (size_t i = 0; i < n_src; i++) {
                        const char *mode = conf_node_attr(src[i], "mode");
                        if (mode && streq(mode, "bind"))
                                bind = src[i];
                        else
                                connect = src[i];
                }
                if (!connect || !conf_node_attr(connect, "service"))
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "%s of type 'udp' needs <source mode='connect' service='PORT'/>", what);
                strbuf_appendf(&b, "udp,id=%s,host=%s,port=%s", id, conf_node_attr(connect, "host") ?: "127.0.0.1",
                               conf_node_attr(connect, "service"));
                if (bind)
                        strbuf_appendf(&b, ",localaddr=%s,localport=%s", conf_node_attr(bind, "host") ?: "0.0.0.0",
                                       conf_node_attr(bind, "service") ?: "0");
        } else
                return not_supported(reterr, "%s of type '%s' is not supported by the qemu driver", what, type);
        *ret = strbuf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

static void ensure_virtio_serial(QemuBuildState *s) {
        if (s->virtio_serial_added)
                return;
        add_pair(&s->cmd->argv, "-device", "virtio-serial-pci,id=virtio-serial0");
        s->virtio_serial_added = true;
}

static int add_chardev(QemuBuildState *s, size_t i, char **alias, VbError *reterr) {
        const DeviceDef *dev = s->def->devices[i];
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *backend = NULL, *charid = NULL;
        QemuArgv *a = &s->cmd->argv;
        const char *what = device_def_kind_name(dev), *ttype;
        int listen_fd, r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        ttype = qemu_node_attr(n, "target", "type");

        switch (dev->kind) {
        case DEVICE_SERIAL:
                r = pick_alias(dev, "serial", &s->n_serial, alias);
                break;
        case DEVICE_PARALLEL:
                r = pick_alias(dev, "parallel", &s->n_parallel, alias);
                break;
        case DEVICE_CONSOLE:
                /* A serial console is the first <serial> itself, as in libvirt's format. */
                if ((!ttype || streq(ttype, "serial")) && s->n_serial > 0) {
                        *alias = strdup("serial0");
                        return *alias ? 0 : -ENOMEM;
                }
                if (!ttype || streq(ttype, "serial"))
                        r = pick_alias(dev, "serial", &s->n_serial, alias);
                else
                        r = pick_alias(dev, "console", &s->n_console, alias);
                break;
        default:
                r = pick_alias(dev, "channel", &s->n_channel, alias);
                break;
        }
        if (r < 0)
                return r;
        if (asprintf(&charid, "char%s", *alias) < 0)
                return -ENOMEM;
        listen_fd = qemu_chardev_is_listened(dev->kind, ttype) && i < s->p->n_tap_fds ? s->p->tap_fds[i] : -1;
        if (device_channel_is_guest_agent(dev)) {
                /* QEMU listens, virtbusd connects (qemu-agent.c; again after a restart). */
                r = s->p->agent_fd > 0
                            ? asprintf(&backend, "socket,id=%s,fd=%d,server=on,wait=off", charid, s->p->agent_fd)
                            : asprintf(&backend, "null,id=%s", charid);
                if (r < 0)
                        return -ENOMEM;
        } else {
                r = chardev_backend(s, i, n, charid, what, qemu_chardev_is_handed_over(dev->kind, ttype), listen_fd,
                                    &backend, reterr);
                if (r < 0)
                        return r;
        }
        add_pair(a, "-chardev", backend);

        if (dev->kind == DEVICE_PARALLEL) {
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "isa-parallel,chardev=%s,id=%s", charid, *alias);
        } else if (dev->kind == DEVICE_SERIAL || (dev->kind == DEVICE_CONSOLE && (!ttype || streq(ttype, "serial")))) {
                const char *frontend = ttype && streq(ttype, "pci-serial") ? "pci-serial" : "isa-serial";
                if (ttype && !streq(ttype, "isa-serial") && !streq(ttype, "pci-serial") && !streq(ttype, "serial"))
                        return not_supported(reterr, "Serial target type '%s' is not supported by the qemu driver",
                                             ttype);
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "%s,chardev=%s,id=%s", frontend, charid, *alias);
        } else if (dev->kind == DEVICE_CONSOLE) {
                if (!streq(ttype, "virtio"))
                        return not_supported(reterr, "Console target type '%s' is not supported by the qemu driver",
                                             ttype);
                ensure_virtio_serial(s);
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "virtconsole,chardev=%s,id=%s", charid, *alias);
        } else {
                const char *name = qemu_node_attr(n, "target", "name");
                _cleanup_free_ char *ename = name ? qemu_opt_escape(name) : NULL;
                if (!ttype || !streq(ttype, "virtio"))
                        return not_supported(reterr, "Channel target type '%s' is not supported by the qemu driver",
                                             strempty(ttype));
                ensure_virtio_serial(s);
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "virtserialport,chardev=%s,id=%s%s%s", charid, *alias, ename ? ",name=" : "",
                               strempty(ename));
        }
        return 0;
}

/* Graphics, input, video, the rest ------------------------------------------------------------ */

static int add_graphics(QemuBuildState *s, size_t index, const DeviceDef *dev, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *type, *port, *autoport, *listen, *passwd;
        int r, p = -1;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type");
        if (!type || !streq(type, "vnc"))
                return not_supported(reterr, "Graphics type '%s' is not supported by the qemu driver (only 'vnc')",
                                     strempty(type));
        /* libvirt's rule too, checked when it builds the command line (start), not at define */
        if (s->cmd->has_vnc)
                return not_supported(reterr, "Only one graphics device of each type is supported: a second "
                                     "<graphics type='vnc'> (device %zu)", index + 1);
        port = qemu_node_attr(n, NULL, "port");
        autoport = qemu_node_attr(n, NULL, "autoport");
        listen = qemu_node_attr(n, NULL, "listen") ?: qemu_node_attr(n, "listen", "address") ?: "127.0.0.1";
        passwd = qemu_node_attr(n, NULL, "passwd");
        if (streq_ptr(qemu_node_attr(n, "listen", "type"), "none")) {
                /* Reached only through OpenGraphics (QMP add_client). */
                qemu_argv_add(&s->cmd->argv, "-vnc");
                qemu_argv_add(&s->cmd->argv, passwd ? "none,password=on" : "none");
                s->cmd->has_vnc = true;
                if (passwd && !(s->cmd->vnc_password = strdup(passwd)))
                        return -ENOMEM;
                return 0;
        }
        if (port)
                p = atoi(port);
        if (autoport && streq(autoport, "yes"))
                p = -1;
        if (p >= 0 && p < 5900)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "VNC port %d is below 5900", p);
        qemu_argv_add(&s->cmd->argv, "-vnc");
        /* Autoport: the first free display from :0 on. */
        if (p < 0)
                qemu_argv_addf(&s->cmd->argv, "%s%s%s:0,to=1000%s", strchr(listen, ':') ? "[" : "", listen,
                               strchr(listen, ':') ? "]" : "", passwd ? ",password=on" : "");
        else
                qemu_argv_addf(&s->cmd->argv, "%s%s%s:%d%s", strchr(listen, ':') ? "[" : "", listen,
                               strchr(listen, ':') ? "]" : "", p - 5900, passwd ? ",password=on" : "");
        s->cmd->has_vnc = true;
        if (passwd && !(s->cmd->vnc_password = strdup(passwd)))
                return -ENOMEM;
        return 0;
}

static void ensure_usb(QemuBuildState *s) {
        if (s->usb_added)
                return;
        add_pair(&s->cmd->argv, "-device", s->q35 ? "qemu-xhci,id=usb" : "piix3-usb-uhci,id=usb");
        s->usb_added = true;
}

static int add_input(QemuBuildState *s, const DeviceDef *dev, const char *alias, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *type, *bus;
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        type = qemu_node_attr(n, NULL, "type") ?: "mouse";
        bus = qemu_node_attr(n, NULL, "bus") ?: (streq(type, "tablet") ? "usb" : "ps2");
        if (streq(bus, "ps2"))
                return 0; /* built into the PC */
        if (!streq(type, "mouse") && !streq(type, "tablet") && !streq(type, "keyboard"))
                return not_supported(reterr, "Input type '%s' is not supported by the qemu driver", type);
        if (streq(bus, "usb")) {
                ensure_usb(s);
                qemu_argv_add(&s->cmd->argv, "-device");
                qemu_argv_addf(&s->cmd->argv, "usb-%s,id=%s,bus=usb.0", streq(type, "keyboard") ? "kbd" : type, alias);
        } else if (streq(bus, "virtio")) {
                _cleanup_free_ char *addr = qemu_pci_place_opts(&dev->address, s->q35);
                if (!addr)
                        return -ENOMEM;
                qemu_argv_add(&s->cmd->argv, "-device");
                qemu_argv_addf(&s->cmd->argv, "virtio-%s-pci,id=%s%s", type, alias, addr);
        } else
                return not_supported(reterr, "Input bus '%s' is not supported by the qemu driver", bus);
        return 0;
}

static int add_video(QemuBuildState *s, const DeviceDef *dev, const char *alias, VbError *reterr) {
        static const struct {
                const char *model, *device;
        } table[] = {
                { "vga", "VGA" }, { "cirrus", "cirrus-vga" }, { "virtio", "virtio-vga" }, { "bochs", "bochs-display" },
                { "qxl", "qxl-vga" }, { "ramfb", "ramfb" },
        };
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *addr = NULL;
        const char *model;
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        addr = qemu_pci_place_opts(&dev->address, s->q35);
        if (!addr)
                return -ENOMEM;
        model = qemu_node_attr(n, "model", "type") ?: "vga";
        if (streq(model, "none"))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(model, table[i].model)) {
                        qemu_argv_add(&s->cmd->argv, "-device");
                        qemu_argv_addf(&s->cmd->argv, "%s,id=%s%s", table[i].device, alias,
                                       streq(model, "ramfb") ? "" : addr); /* ramfb is no PCI device */
                        s->has_video = true;
                        return 0;
                }
        return not_supported(reterr, "Video model '%s' is not supported by the qemu driver", model);
}

static int add_simple(QemuBuildState *s, const DeviceDef *dev, char **alias, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *addr = NULL;
        const char *model;
        QemuArgv *a = &s->cmd->argv;
        char stats[48];
        int r;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        addr = qemu_pci_place_opts(&dev->address, s->q35);
        if (!addr)
                return -ENOMEM;
        model = qemu_node_attr(n, NULL, "model");
        switch (dev->kind) {
        case DEVICE_MEMBALLOON:
                if (model && streq(model, "none"))
                        return 0;
                if (model && !streq(model, "virtio"))
                        return not_supported(reterr, "Memballoon model '%s' is not supported", model);
                *alias = strdup("balloon0");
                if (!*alias)
                        return -ENOMEM;
                qemu_argv_add(a, "-device");
                /* <stats period=>: the guest reports its memory statistics that often (GetStats reads them).
                 * freePageReporting='on': the guest tells which of its pages are free and QEMU drops them
                 * (they read as zeroes, and snapshots, saves and migrations skip them); autodeflate='on':
                 * the balloon gives memory back when the guest runs out. */
                stats[0] = 0;
                if (device_memballoon_get_stats_period(dev) > 0)
                        snprintf(stats, sizeof stats, ",guest-stats-polling-interval=%u",
                                 device_memballoon_get_stats_period(dev));
                qemu_argv_addf(a, "virtio-balloon-pci,id=balloon0%s%s%s%s", stats,
                               streq_ptr(qemu_node_attr(n, NULL, "freePageReporting"), "on") ? ",free-page-reporting=on" : "",
                               streq_ptr(qemu_node_attr(n, NULL, "autodeflate"), "on") ? ",deflate-on-oom=on" : "", addr);
                return 0;
        case DEVICE_RNG:
                if (model && !streq(model, "virtio"))
                        return not_supported(reterr, "RNG model '%s' is not supported", model);
                r = pick_alias(dev, "rng", &s->n_rng, alias);
                if (r < 0)
                        return r;
                qemu_argv_add(a, "-object");
                qemu_argv_addf(a, "rng-random,id=obj%s,filename=/dev/urandom", *alias);
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "virtio-rng-pci,rng=obj%s,id=%s%s", *alias, *alias, addr);
                return 0;
        case DEVICE_WATCHDOG:
                if (!model || (!streq(model, "i6300esb") && !streq(model, "ib700")))
                        return not_supported(reterr, "Watchdog model '%s' is not supported", strempty(model));
                r = pick_alias(dev, "watchdog", &s->n_watchdog, alias);
                if (r < 0)
                        return r;
                qemu_argv_add(a, "-device");
                qemu_argv_addf(a, "%s,id=%s%s", model, *alias, streq(model, "i6300esb") ? addr : "");
                return 0;
        case DEVICE_PANIC:
                if (model && !streq(model, "isa"))
                        return not_supported(reterr, "Panic model '%s' is not supported", model);
                *alias = strdup("panic");
                if (!*alias)
                        return -ENOMEM;
                add_pair(a, "-device", "pvpanic,id=panic");
                return 0;
        default:
                return not_supported(reterr, "Device '%s' is not supported by the qemu driver",
                                     device_def_kind_name(dev));
        }
}

/* Host devices ------------------------------------------------------------------------------- */

/* A PCI function given to the guest (a <hostdev type='pci'> or an <interface type='hostdev'> on a VF),
 * passed through VFIO. Core has bound it to vfio-pci before the start (core/hostdev.c) and set a VF's
 * MAC through its PF, so QEMU only needs the host address. Returns 0 if dev is not a host PCI device. */
static int add_vfio_pci(QemuBuildState *s, const DeviceDef *dev, const char *prefix, unsigned *counter,
                        char **alias, VbError *reterr) {
        _cleanup_free_ char *addr = NULL, *boot = NULL;
        DeviceHostSource src;
        int r;

        if (device_def_get_host_source(dev, &src) < 0)
                return 0;
        switch (src.kind) {
        case DEVICE_HOST_SOURCE_PCI:
        case DEVICE_HOST_SOURCE_NET_PCI:
                break;
        case DEVICE_HOST_SOURCE_NET_USB:
                return not_supported(reterr, "An <interface type='hostdev'> on a USB device is not supported: "
                                     "its MAC address cannot be set");
        case DEVICE_HOST_SOURCE_OTHER:
                return not_supported(reterr, "Host devices other than PCI are not supported by the qemu driver "
                                     "yet");
        default:
                return 0;
        }
        r = pick_alias(dev, prefix, counter, alias);
        if (r < 0)
                return r;
        addr = qemu_pci_place_opts(&dev->address, s->q35);
        boot = boot_opt(dev);
        if (!addr || !boot)
                return -ENOMEM;
        qemu_argv_add(&s->cmd->argv, "-device");
        qemu_argv_addf(&s->cmd->argv, "vfio-pci,host=%04x:%02x:%02x.%x,id=%s%s%s", src.domain, src.bus, src.slot,
                       src.function, *alias, addr, boot);
        return 1;
}

int qemu_command_add_device(QemuBuildState *s, size_t i, VbError *reterr) {
        const DeviceDef *dev = s->def->devices[i];
        char **alias = &s->cmd->aliases[i];
        int r;

        switch (dev->kind) {
        case DEVICE_DISK:
                r = pick_alias(dev, "disk", &s->n_disk, alias);
                return r < 0 ? r : add_disk(s, i, dev, *alias, reterr);
        case DEVICE_INTERFACE:
                r = add_vfio_pci(s, dev, "hostdev", &s->n_hostdev, alias, reterr);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = pick_alias(dev, "net", &s->n_net, alias);
                return r < 0 ? r : add_interface(s, i, *alias, reterr);
        case DEVICE_HOSTDEV:
                r = add_vfio_pci(s, dev, "hostdev", &s->n_hostdev, alias, reterr);
                if (r != 0)
                        return r < 0 ? r : 0;
                return not_supported(reterr, "This host device is not supported by the qemu driver");
        case DEVICE_SERIAL:
        case DEVICE_PARALLEL:
        case DEVICE_CONSOLE:
        case DEVICE_CHANNEL:
                return add_chardev(s, i, alias, reterr);
        case DEVICE_GRAPHICS:
                return add_graphics(s, i, dev, reterr);
        case DEVICE_INPUT:
                r = pick_alias(dev, "input", &s->n_input, alias);
                return r < 0 ? r : add_input(s, dev, *alias, reterr);
        case DEVICE_VIDEO:
                r = pick_alias(dev, "video", &s->n_video, alias);
                return r < 0 ? r : add_video(s, dev, *alias, reterr);
        case DEVICE_CONTROLLER:
                /* Made before the other devices (qemu_command_add_controllers). */
                return 0;
        default:
                return add_simple(s, dev, alias, reterr);
        }
}
