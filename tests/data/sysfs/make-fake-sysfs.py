#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""make-fake-sysfs.py OUTDIR: writes a fake sysfs tree of a small host, as the kernel shows one.

This machine (and CI) has no SR-IOV, IOMMU or VFIO, so the host modules are tested against this tree,
and the test driver's simulated host uses it (data/test-host-sysfs). What is in it:
  0000:00:1c.0  PCIe root port (pcieport), IOMMU group 10
  0000:03:00.0  Intel 82576 SR-IOV NIC, physical function (igb), net enp3s0f0, 7 VFs possible, 2 enabled
  0000:03:10.0  its VF 0 (igbvf), IOMMU group 20;  0000:03:10.2  its VF 1 (igbvf), IOMMU group 21
  0000:05:00.0  GPU (nouveau) and 0000:05:00.1 its audio function (snd_hda_intel): one IOMMU group, 15
  0000:00:14.0  USB controller (xhci_hcd), IOMMU group 16, with root hub usb1 and a Logitech receiver 1-2
  class/dmi/id  the computer
Files only the fake kernel (tests/helpers/fake-sysfs-kernel.c) reads start with '.fake': the ids a
driver binds to (.fake-ids), and a VF's template. Regenerate with this script; don't edit by hand."""
import os
import shutil
import struct
import sys

DRIVERS = {
    "igb": ["8086 10c9"],
    "igbvf": ["8086 10ca"],
    "pcieport": ["8086 1e10"],
    "nouveau": ["10de 1c82"],
    "snd_hda_intel": ["10de 0fb9"],
    "xhci_hcd": ["8086 a12f"],
    "vfio-pci": [],
}


def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def link(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(os.path.relpath(target, os.path.dirname(path)), path)


def config_space(vendor, device, cls, pcie=False, sriov=None, bridge=False):
    c = bytearray(4096 if pcie else 256)
    struct.pack_into("<HH", c, 0, vendor, device)
    c[0x08] = 1  # revision
    c[0x09], c[0x0a], c[0x0b] = cls & 0xff, (cls >> 8) & 0xff, cls >> 16
    c[0x0e] = 1 if bridge else 0
    if pcie:
        struct.pack_into("<H", c, 0x06, 0x10)  # status: capability list
        c[0x34] = 0x40
        c[0x40], c[0x41] = 0x10, 0  # PCI Express capability, last
        struct.pack_into("<H", c, 0x42, 0x0002 | ((4 if bridge else 0) << 4))
    if sriov:
        total, offset, stride, vfdev = sriov
        struct.pack_into("<I", c, 0x100, 0x0010 | (1 << 16))  # SR-IOV extended capability, last
        struct.pack_into("<HHHHHH", c, 0x10c, total, total, 0, 0, offset, stride)
        struct.pack_into("<H", c, 0x11a, vfdev)
    return bytes(c)


class Tree:
    def __init__(self, root):
        self.root = root

    def p(self, rel):
        return os.path.join(self.root, rel)

    def pci(self, parent, addr, vendor, device, cls, driver=None, group=None, pcie=False, sriov=None,
            bridge=False, numa=0, extra=None):
        d = "%s/%s" % (parent, addr)
        full = self.p(d)
        write(full + "/vendor", "0x%04x\n" % vendor)
        write(full + "/device", "0x%04x\n" % device)
        write(full + "/class", "0x%06x\n" % cls)
        write(full + "/subsystem_vendor", "0x%04x\n" % vendor)
        write(full + "/subsystem_device", "0x0000\n")
        write(full + "/config", config_space(vendor, device, cls, pcie, sriov, bridge), "wb")
        write(full + "/resource", "0x0000000000000000 0x0000000000000000 0x0000000000000000\n" * 6)
        write(full + "/irq", "0\n")
        write(full + "/numa_node", "%d\n" % numa)
        write(full + "/driver_override", "(null)\n")
        write(full + "/reset", "")
        write(full + "/enable", "1\n")
        if pcie:
            write(full + "/max_link_speed", "2.5 GT/s PCIe\n")
            write(full + "/max_link_width", "4\n")
            write(full + "/current_link_speed", "2.5 GT/s PCIe\n")
            write(full + "/current_link_width", "4\n")
        link(self.p("bus/pci/devices/" + addr), full)
        link(full + "/subsystem", self.p("bus/pci"))
        if group is not None:
            g = self.p("kernel/iommu_groups/%d" % group)
            link(g + "/devices/" + addr, full)
            link(full + "/iommu_group", g)
        if driver:
            link(full + "/driver", self.p("bus/pci/drivers/" + driver))
            link(self.p("bus/pci/drivers/%s/%s" % (driver, addr)), full)
        for k, v in (extra or {}).items():
            write(full + "/" + k, v)
        return d


def main():
    out = sys.argv[1]
    if os.path.exists(out):
        shutil.rmtree(out)
    t = Tree(out)
    write(t.p("bus/pci/drivers_probe"), "")
    write(t.p("bus/pci/rescan"), "")
    for name, ids in DRIVERS.items():
        d = t.p("bus/pci/drivers/" + name)
        for f in ("bind", "unbind", "new_id", "remove_id"):
            write(d + "/" + f, "")
        write(d + "/.fake-ids", "".join(i + "\n" for i in ids))
    for k, v in {"sys_vendor": "Virtbus Labs", "product_name": "Simulated host", "product_version": "1.0",
                 "product_serial": "VB-0001", "product_uuid": "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
                 "bios_vendor": "Virtbus Labs", "bios_version": "0.1", "bios_date": "11/27/2026"}.items():
        write(t.p("devices/virtual/dmi/id/" + k), v + "\n")
    link(t.p("class/dmi/id"), t.p("devices/virtual/dmi/id"))

    root = "devices/pci0000:00"
    rp = t.pci(root, "0000:00:1c.0", 0x8086, 0x1e10, 0x060400, "pcieport", 10, pcie=True, bridge=True)
    pf = t.pci(rp, "0000:03:00.0", 0x8086, 0x10c9, 0x020000, "igb", 11, pcie=True, sriov=(7, 128, 2, 0x10ca),
               extra={"sriov_totalvfs": "7\n", "sriov_numvfs": "2\n", "sriov_offset": "128\n",
                      "sriov_stride": "2\n", "sriov_vf_device": "10ca\n", "sriov_drivers_autoprobe": "1\n",
                      ".fake-vf-group-base": "20\n"})
    n = t.p(pf + "/net/enp3s0f0")
    write(n + "/address", "00:1b:21:3a:5c:10\n")
    write(n + "/operstate", "up\n")
    write(n + "/speed", "1000\n")
    write(n + "/ifindex", "4\n")
    link(n + "/device", t.p(pf))
    link(t.p("class/net/enp3s0f0"), n)
    gpu = t.pci(root, "0000:00:01.0", 0x8086, 0x1e10, 0x060400, "pcieport", 14, pcie=True, bridge=True)
    t.pci(gpu, "0000:05:00.0", 0x10de, 0x1c82, 0x030000, "nouveau", 15, pcie=True)
    t.pci(gpu, "0000:05:00.1", 0x10de, 0x0fb9, 0x040300, "snd_hda_intel", 15, pcie=True)
    usbc = t.pci(root, "0000:00:14.0", 0x8086, 0xa12f, 0x0c0330, "xhci_hcd", 16)
    for name, busnum, devnum, vid, pid, man, prod in (
            ("usb1", 1, 1, 0x1d6b, 0x0002, "Linux Foundation", "2.0 root hub"),
            ("1-2", 1, 3, 0x046d, 0xc52b, "Logitech, Inc.", "Unifying Receiver")):
        parent = t.p(usbc + "/usb1") if name != "usb1" else t.p(usbc)
        d = os.path.join(parent, name)
        write(d + "/busnum", "%d\n" % busnum)
        write(d + "/devnum", "%d\n" % devnum)
        write(d + "/idVendor", "%04x\n" % vid)
        write(d + "/idProduct", "%04x\n" % pid)
        write(d + "/manufacturer", man + "\n")
        write(d + "/product", prod + "\n")
        write(d + "/bDeviceClass", "00\n" if name != "usb1" else "09\n")
        link(t.p("bus/usb/devices/" + name), d)
    # Two VFs enabled, as the fake kernel makes them on a write to sriov_numvfs: routing ID of the PF +
    # offset + i * stride, the PF's vendor and sriov_vf_device, one IOMMU group each from the base.
    for i in range(2):
        rid = 0x300 + 128 + i * 2
        vf = t.pci(rp, "0000:%02x:%02x.%x" % (rid >> 8, (rid >> 3) & 0x1f, rid & 7), 0x8086, 0x10ca, 0x020000,
                   "igbvf", 20 + i, pcie=True)
        link(t.p(vf + "/physfn"), t.p(pf))
        link(t.p(pf + "/virtfn%d" % i), t.p(vf))


if __name__ == "__main__":
    main()
