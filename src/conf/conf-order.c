/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "conf/conf-node.h"

/* The order in which children of some elements are written: libvirt's own output order, so that
 * what we write is what libvirt users expect to read. Elements not listed keep their place after
 * the listed sibling that preceded them in the input. */

static const char * const domain_order[] = {
        "name", "uuid", "genid", "title", "description", "metadata", "maxMemory", "memory",
        "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu", "vcpus", "iothreads",
        "iothreadids", "defaultiothread", "throttlegroups", "cputune", "numatune", "resource",
        "sysinfo", "bootloader", "bootloader_args", "os", "idmap", "features", "cpu", "clock",
        "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm", "perf", "devices", "seclabel",
        "keywrap", "launchSecurity",
};

static const char * const devices_order[] = {
        "emulator", "disk", "controller", "lease", "filesystem", "interface", "smartcard", "serial",
        "parallel", "console", "channel", "input", "tpm", "graphics", "sound", "audio", "video",
        "hostdev", "redirdev", "redirfilter", "hub", "watchdog", "memballoon", "rng", "nvram",
        "panic", "shmem", "memory", "iommu", "vsock", "crypto", "pstore",
};

static const char * const os_order[] = {
        "type", "firmware", "init", "initarg", "initenv", "initdir", "inituser", "initgroup",
        "loader", "nvram", "varstore", "kernel", "initrd", "cmdline", "shim", "dtb", "acpi", "boot",
        "bootmenu", "smbios", "bios",
};

static const char * const network_order[] = {
        "name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu", "mac", "domain",
        "dns", "bandwidth", "vlan", "port", "virtualport", "portgroup", "ip", "route", "options",
};

static const char * const pool_order[] = {
        "name", "uuid", "capacity", "allocation", "available", "features", "source", "target", "refresh",
};

static const char * const volume_order[] = {
        "name", "key", "source", "capacity", "allocation", "physical", "target", "backingStore",
};

static const char * const snapshot_order[] = {
        "name", "description", "state", "parent", "creationTime", "memory", "disks", "revertDisks", "domain",
        "inactiveDomain", "cookie", "active",
};

static const char * const forward_order[] = {
        "nat", "pf", "interface", "address", "driver",
};

static const struct {
        const char *parent;
        const char * const *order;
        size_t n;
} order_tables[] = {
        { "network", network_order, ELEMENTSOF(network_order) },
        { "forward", forward_order, ELEMENTSOF(forward_order) },
        { "domain", domain_order, ELEMENTSOF(domain_order) },
        { "devices", devices_order, ELEMENTSOF(devices_order) },
        { "os", os_order, ELEMENTSOF(os_order) },
        { "pool", pool_order, ELEMENTSOF(pool_order) },
        { "volume", volume_order, ELEMENTSOF(volume_order) },
        { "domainsnapshot", snapshot_order, ELEMENTSOF(snapshot_order) },
};

bool conf_order_has_table(const char *parent) {
        for (size_t i = 0; i < ELEMENTSOF(order_tables); i++)
                if (streq(order_tables[i].parent, parent))
                        return true;
        return false;
}

int conf_order_rank(const char *parent, const char *child) {
        for (size_t i = 0; i < ELEMENTSOF(order_tables); i++) {
                if (!streq(order_tables[i].parent, parent))
                        continue;
                for (size_t j = 0; j < order_tables[i].n; j++)
                        if (streq(order_tables[i].order[j], child))
                                return (int) j;
                return -1;
        }
        return -1;
}
