#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Refusal rules, checked as rules: refusal-variants.py VIRTBUS_XML SOURCE_ROOT [SHARED_DIR]

The corpus has one invalid document per rule (a cachetune whose two caches collide, a chardev without its
path, ...). Refusing that one document proves little: this script writes new invalid variants of each rule
(other devices and positions, other values and spellings of the same value) into valid documents, our own
test data always, and valid documents of libvirt's corpus when SHARED_DIR (default: what
tests/shared-dir.sh names) holds it, and asserts that
`virtbus-xml validate` refuses each one with a message that names the element and states the rule, and
that the valid neighbours of each variant (the same document, the rule kept) are accepted.

Prints one line per failure and a count per rule; exits 0 when every variant and neighbour behaves, 1
otherwise."""
import concurrent.futures
import copy
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

E = ET.Element


def sub(parent, tag, **attrs):
    return ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})


def el(tag, *children, **attrs):
    e = E(tag, {k.rstrip("_"): v for k, v in attrs.items()})
    e.extend(children)
    return e


# Variants ------------------------------------------------------------------------------------------------
# Each rule gives (name, mutate, expect): mutate(root) changes a parsed valid document in place; expect is
# None for a valid neighbour, else (element, words): the message must name element (as "element 'x'") and
# hold every one of words (the rule).


def devices_of(root):
    d = root.find("devices")
    if d is None:
        d = sub(root, "devices")
    return d


def add_device(dev):
    def mutate(root):
        devices_of(root).append(copy.deepcopy(dev))
    mutate.device = dev  # also checked alone, as a device document (AttachDevice's input)
    return mutate


def set_cputune(*groups):
    def mutate(root):
        vcpu = root.find("vcpu")
        if vcpu is None:
            vcpu = E("vcpu")
            root.insert(2, vcpu)
        vcpu.text = "8"
        for a in ("current",):
            vcpu.attrib.pop(a, None)
        for old in root.findall("cputune"):
            root.remove(old)
        ct = E("cputune")
        ct.extend(copy.deepcopy(g) for g in groups)
        root.insert(3, ct)
    return mutate


def cache(id_, level, type_, size="256"):
    return el("cache", id=id_, level=level, type=type_, size=size, unit="KiB")


def node(id_, bw="50"):
    return el("node", id=id_, bandwidth=bw)


def cputune_rules():
    out = []
    colliding = ("cache", ["allocated twice"])
    mem_colliding = ("node", ["allocated twice"])
    for vcpus in ("0", "2-3", "1,5", "4-7,^5"):
        # the same cache twice in one group, in every spelling of it
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("0", "3", "code"), cache("0", "3", "code", "512"), vcpus=vcpus)), colliding))
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("1", "2", "both"), cache("1", "2", "data"), vcpus=vcpus)), colliding))
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("00", "3", "data"), cache("2", "3", "both"), cache("0", "03", "both"), vcpus=vcpus)), colliding))
        out.append(("memorytune allocs", set_cputune(el("memorytune", node("0"), node("1"), node("0", "20"), vcpus=vcpus)), mem_colliding))
        out.append(("memorytune allocs", set_cputune(el("memorytune", node("3"), node("03", "10"), vcpus=vcpus)), mem_colliding))
        # neighbours: other ids, levels or types (code and data of one cache are two allocations)
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("0", "3", "code"), cache("0", "3", "data"), vcpus=vcpus)), None))
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("0", "3", "both"), cache("1", "3", "both"), cache("0", "2", "both"), vcpus=vcpus)), None))
        out.append(("memorytune allocs", set_cputune(el("memorytune", node("0"), node("1"), vcpus=vcpus)), None))
        # numbers are decimal, leading zeros and all: '010' is ten, not octal eight
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("010", "3", "both"), cache("10", "3", "code"), vcpus=vcpus)), colliding))
        out.append(("cachetune allocs", set_cputune(el("cachetune", cache("010", "3", "both"), cache("8", "3", "both"), vcpus=vcpus)), None))
        out.append(("memorytune allocs", set_cputune(el("memorytune", node("010"), node("8"), vcpus=vcpus)), None))
    # groups of one kind sharing vCPUs; groups of the two kinds sharing some but not all
    overlap = [("0-1", "1-2"), ("0,2,4", "4-6"), ("0-7", "3"), ("5", "^0,5-6,0")]
    for a, b in overlap:
        out.append(("cachetune overlap", set_cputune(el("cachetune", cache("0", "3", "code"), vcpus=a), el("cachetune", cache("0", "3", "data"), vcpus=b)), ("cachetune", ["overlap"])))
        out.append(("memorytune overlap", set_cputune(el("memorytune", node("0"), vcpus=a), el("memorytune", node("1"), vcpus=b)), ("memorytune", ["overlap"])))
        out.append(("cachetune/memorytune overlap", set_cputune(el("cachetune", cache("0", "3", "both"), vcpus=a), el("memorytune", node("0"), vcpus=b)), ("memorytune", ["overlap", "not the same"])))
    for a, b in (("0-1", "2-3"), ("0,2", "1,3"), ("0-3", "4-7")):
        out.append(("cachetune overlap", set_cputune(el("cachetune", cache("0", "3", "code"), vcpus=a), el("cachetune", cache("0", "3", "code"), vcpus=b)), None))
        out.append(("memorytune overlap", set_cputune(el("memorytune", node("0"), vcpus=a), el("memorytune", node("0"), vcpus=b)), None))
    # a cachetune and a memorytune of the very same vCPUs, however written, are one group
    for a, b in (("0-1", "0-1"), ("0-1", "1,0"), ("2-4", "2,3,4"), ("0-3,^2", "0-1,3")):
        out.append(("cachetune/memorytune overlap", set_cputune(el("cachetune", cache("0", "3", "both"), vcpus=a), el("memorytune", node("0"), vcpus=b)), None))
    # monitors outside their group
    for group, mon in (("0-1", "2"), ("0-1", "1-2"), ("4-7", "0"), ("0,2", "1")):
        out.append(("monitor", set_cputune(el("cachetune", cache("0", "3", "both"), el("monitor", level="3", vcpus=mon), vcpus=group)), ("monitor", ["not all in"])))
        out.append(("monitor", set_cputune(el("memorytune", node("0"), el("monitor", vcpus=mon), vcpus=group)), ("monitor", ["not all in"])))
    for group, mon in (("0-1", "1"), ("0-1", "0-1"), ("4-7", "5,7")):
        out.append(("monitor", set_cputune(el("cachetune", cache("0", "3", "both"), el("monitor", level="3", vcpus=mon), vcpus=group)), None))
    return out


CHR_HOLDERS = {
    # holder element -> (build(type, sources) -> element, element named in a message about a missing source)
    "serial": lambda t, s: el("serial", *s, el("target", port="1"), type=t),
    "console": lambda t, s: el("console", *s, el("target", type="virtio", port="1"), type=t),
    "parallel": lambda t, s: el("parallel", *s, el("target", port="0"), type=t),
    "channel": lambda t, s: el("channel", *s, el("target", type="virtio", name="org.example.variant"), type=t),
    "smartcard": lambda t, s: el("smartcard", *s, mode="passthrough", type=t),
    "redirdev": lambda t, s: el("redirdev", *s, bus="usb", type=t),
    "rng": lambda t, s: el("rng", el("backend", *s, model="egd", type=t), model="virtio"),
}


def src(**attrs):
    return el("source", **attrs)


def chardev_rules():
    out = []
    for holder, build in sorted(CHR_HOLDERS.items()):
        named = "backend" if holder == "rng" else holder

        def bad(rule, t, sources, element, words):
            out.append((rule, add_device(build(t, sources)), (element, words)))

        def good(rule, t, sources):
            out.append((rule, add_device(build(t, sources)), None))

        for mode in (None, "connect", "bind"):
            m = {"mode": mode} if mode else {}
            bad("chardev tcp host/service", "tcp", [src(service="4555", **m)], "source", ["tcp", "host="])
            bad("chardev tcp host/service", "tcp", [src(host="192.0.2.1", **m)], "source", ["tcp", "service="])
            bad("chardev tcp host/service", "tcp", [src(path="/tmp/x", **m)], "source", ["tcp", "host="])
            good("chardev tcp host/service", "tcp", [src(host="192.0.2.1", service="4555", **m)])
        bad("chardev tcp host/service", "tcp", [], named, ["tcp", "host="])
        bad("chardev multiple sources", "tcp", [src(host="a", service="1", mode="connect"), src(host="b", service="2", mode="connect")],
            "source", ["second"])
        bad("chardev multiple sources", "unix", [src(path="/tmp/a", mode="bind"), src(path="/tmp/b", mode="bind")], "source", ["second"])
        # udp: one source to connect to (with its service), one to bind to at most
        bad("chardev udp connect service", "udp", [src(host="192.0.2.1", mode="connect")], "source", ["udp", "service="])
        bad("chardev udp connect service", "udp", [src(host="0.0.0.0", service="1234", mode="bind")], named, ["udp", "connect"])
        bad("chardev udp connect service", "udp", [src(host="0.0.0.0", service="1234", mode="bind"), src(host="192.0.2.1")],
            "source", ["udp", "service="])
        bad("chardev udp multiple sources", "udp", [src(host="a", service="1", mode="connect"), src(host="b", service="2")], "source", ["second", "connect"])
        bad("chardev udp multiple sources", "udp", [src(service="1", mode="bind"), src(service="2", mode="bind"), src(service="3")],
            "source", ["second", "bind"])
        good("chardev udp connect service", "udp", [src(host="0.0.0.0", service="1234", mode="bind"), src(host="192.0.2.1", service="5678", mode="connect")])
        good("chardev udp connect service", "udp", [src(service="5678")])
        # paths: unix everywhere but in a channel; file, dev and pipe always
        for t in ("unix", "file", "dev", "pipe"):
            if t == "unix" and holder == "channel":
                good("chardev path", t, [src(mode="bind")])
                continue
            if holder == "rng" and t != "unix" or holder in ("smartcard", "redirdev") and t not in ("unix",):
                continue  # libvirt's schema gives these holders only some types
            bad("chardev path", t, [src(mode="bind")] if t == "unix" else [src()], "source", [t, "path="])
            good("chardev path", t, [src(path="/tmp/variant-%s" % t)])
        # reconnect only where the device connects
        for t, attrs in (("tcp", {"host": "192.0.2.1", "service": "4555"}), ("unix", {"path": "/tmp/variant.sock"})):
            rc = el("reconnect", enabled="yes", timeout="10")
            bad("chardev reconnect mode", t, [el("source", copy.deepcopy(rc), mode="bind", **attrs)], "reconnect", ["mode 'bind'", "reconnect"])
            good("chardev reconnect mode", t, [el("source", copy.deepcopy(rc), mode="connect", **attrs)])
            good("chardev reconnect mode", t, [el("source", el("reconnect", enabled="no"), mode="bind", **attrs)])
    return out


def graphics_rules():
    out = []
    for gtype in ("vnc", "spice", "rdp"):
        for listen, address in (("192.0.2.1", "192.0.2.2"), ("0.0.0.0", "::"), ("127.0.0.1", "127.0.0.2"), ("::1", "0:0::1")):
            g = el("graphics", el("listen", type="address", address=address), type=gtype, port="5901", listen=listen)
            out.append(("graphics listen mismatch", add_device(g), ("listen", ["differs", "listen="])))
        for g in (el("graphics", el("listen", type="address", address="192.0.2.1"), type=gtype, port="5901", listen="192.0.2.1"),
                  el("graphics", el("listen", type="address"), type=gtype, port="5901", listen="192.0.2.1"),
                  el("graphics", el("listen", type="address", address="192.0.2.1"), type=gtype, port="5901"),
                  el("graphics", el("listen", type="network", network="default"), type=gtype, port="5901", listen="192.0.2.9")):
            out.append(("graphics listen mismatch", add_device(g), None))
    for s1, s2 in (("/run/a.sock", "/run/b.sock"), ("/tmp/vnc", "/tmp/vnc/")):
        g = el("graphics", el("listen", type="socket", socket=s2), type="vnc", socket=s1)
        out.append(("graphics socket mismatch", add_device(g), ("listen", ["differs", "socket="])))
    out.append(("graphics socket mismatch", add_device(el("graphics", el("listen", type="socket", socket="/run/a.sock"), type="vnc", socket="/run/a.sock")), None))
    return out


def disk_rules():
    out = []
    for dev in ("cdrom", "floppy", "disk", "lun"):
        for src in (el("source", dev="/dev/sdz"), None):
            d = el("disk", *([src] if src is not None else []), type="block", device=dev)
            mutate = add_device(d)
            del mutate.device  # a <disk> document alone may be a source only (libvirt's block layer reads those)
            out.append(("disk target", mutate, ("disk", ["target dev="])))

    def twice(t1, b1, t2, b2):
        def mutate(root):
            devices_of(root).append(el("disk", el("source", file="/var/lib/a.img"), el("target", dev=t1, bus=b1), type="file", device="disk"))
            devices_of(root).append(el("disk", el("source", file="/var/lib/b.img"), el("target", dev=t2, bus=b2), type="file", device="disk"))
        return mutate
    out.append(("disk target twice", twice("vdx", "virtio", "vdx", "virtio"), ("disk", ["vdx", "two disks"])))
    out.append(("disk target twice", twice("sdx", "scsi", "sdx", "sata"), ("disk", ["sdx", "two disks"])))
    out.append(("disk target twice", twice("vdx", "virtio", "vdy", "virtio"), None))
    return out


def mac_rules():
    def two(m1, m2):
        def mutate(root):
            devices_of(root).append(el("interface", el("mac", address=m1), type="user"))
            devices_of(root).append(el("interface", el("mac", address=m2), type="user"))
        return mutate
    return [("interface mac twice", two("52:54:00:aa:bb:cc", "52:54:00:AA:BB:CC"), ("interface", ["MAC address", "two interfaces"])),
            ("interface mac twice", two("52:54:00:01:02:03", "52:54:00:1:2:3"), ("interface", ["MAC address", "two interfaces"])),
            ("interface mac twice", two("52:54:00:01:02:03", "52:54:00:01:02:04"), None)]


def boot_alias_rules():
    out = []

    def disk(target, *children):
        return el("disk", el("source", file="/var/lib/%s.img" % target), el("target", dev=target), *children,
                  type="file", device="disk")

    def devs(*devices, os_boot=None):
        def mutate(root):
            os_ = root.find("os")
            for b in os_.findall("boot"):
                os_.remove(b)
            if os_boot:
                os_.append(el("boot", dev=os_boot))
            for d in devices:
                devices_of(root).append(copy.deepcopy(d))
        return mutate
    nic = lambda *c: el("interface", el("model", type="virtio"), *c, type="user")
    for a, b in ((disk("vdx", el("boot", order="1")), disk("vdy", el("boot", order="1"))),
                 (disk("vdx", el("boot", order="2")), nic(el("boot", order="2"))),
                 (nic(el("boot", order="7")), el("hostdev", el("source", el("address", domain="0", bus="6", slot="0", function="0")),
                                                 el("boot", order="7"), mode="subsystem", type="pci"))):
        out.append(("boot order twice", devs(a, b), (b.tag, ["boot order", "two devices"])))
    out.append(("boot order twice", devs(disk("vdx", el("boot", order="1")), nic(el("boot", order="2"))), None))
    for a, b in ((disk("vdx", el("alias", name="ua-one")), disk("vdy", el("alias", name="ua-one"))),
                 (disk("vdx", el("alias", name="ua-disk")), nic(el("alias", name="ua-disk"))),
                 (nic(el("alias", name="ua-n")), el("video", el("model", type="vga"), el("alias", name="ua-n")))):
        out.append(("alias twice", devs(a, b), (b.tag, ["alias", "two devices"])))
    out.append(("alias twice", devs(disk("vdx", el("alias", name="ua-a")), nic(el("alias", name="ua-b"))), None))
    # the hypervisor's own aliases, and a <console> that is the first <serial> shown again, may repeat
    out.append(("alias twice", devs(disk("vdx", el("alias", name="virtio-disk0")), nic(el("alias", name="virtio-disk0"))), None))
    out.append(("alias twice", devs(el("serial", el("target", port="0"), el("alias", name="ua-ser"), type="pty"),
                                    el("console", el("target", type="serial", port="0"), el("alias", name="ua-ser"), type="pty")), None))
    return out


def numatune_rules():
    def nt(**attrs):
        def mutate(root):
            for old in root.findall("numatune"):
                root.remove(old)
            root.insert(3, el("numatune", el("memory", **attrs)))
        return mutate
    return [("numatune auto nodeset", nt(mode="strict", placement="auto", nodeset="0"), ("memory", ["nodeset", "placement='auto'"])),
            ("numatune auto nodeset", nt(mode="interleave", placement="auto", nodeset="0-1,^1"), ("memory", ["nodeset", "placement='auto'"])),
            ("numatune auto nodeset", nt(mode="strict", placement="auto"), None),
            ("numatune auto nodeset", nt(mode="strict", placement="static", nodeset="0"), None)]


def range_rules():
    """Numbers beyond the range libvirt's schema gives them, in attributes and in element text."""
    out = []

    def attr_on_new(dev, path, attr, value):
        def mutate(root):
            d = copy.deepcopy(dev)
            target = d.find(path) if path else d
            target.set(attr, value)
            devices_of(root).append(d)
        return mutate
    ctl = el("controller", type="scsi", index="3")
    for v, ok in (("-1", False), ("4294967296", False), ("0x3", False), ("3", True)):
        out.append(("range controller index", attr_on_new(ctl, None, "index", v), None if ok else ("controller", ["'index'", "whole number"])))
    vid = el("video", el("model", type="virtio", heads="1"))
    for v, ok in (("-1", False), ("99999999999", False), ("2", True)):
        out.append(("range video heads", attr_on_new(vid, "model", "heads", v), None if ok else ("model", ["'heads'", "whole number"])))
    nic = el("interface", el("model", type="virtio"), el("driver", name="vhost", queues="2"), type="user")
    # (a <driver queues='0'> is refused too, but the message cannot name the rule: a controller's driver
    # takes queues='0', and the hints know attributes by element name only)
    for v, ok in (("-2", False), ("many", False), ("4", True)):
        out.append(("range interface queues", attr_on_new(nic, "driver", "queues", v), None if ok else ("driver", ["'queues'", "whole number"])))
    for attr in ("rx_queue_size", "tx_queue_size"):
        for v, ok in (("0", False), ("-1", False), ("256", True)):
            out.append(("range interface queue size", attr_on_new(nic, "driver", attr, v), None if ok else ("driver", ["'%s'" % attr, "at least 1"])))

    def memory(text):
        def mutate(root):
            root.find("memory").text = text
            cur = root.find("currentMemory")
            if cur is not None:
                root.remove(cur)
        return mutate
    for v, ok in (("-1", False), ("18446744073709551616", False), ("1e6", False), ("1048576", True)):
        out.append(("range memory", memory(v), None if ok else ("memory", ["whole number"])))
    return out


def required_attr_rules():
    """An attribute every definition of an element in its place requires, left out: the message names the
    element, the attribute and the line (libxml2 itself says only that the parent's content does not fit)."""
    out = []
    cases = [
        (el("graphics", type="vnc", port="-1"), None, "type"),
        (el("graphics", type="spice", autoport="yes"), None, "type"),
        (el("controller", type="scsi", index="7", model="virtio-scsi"), None, "type"),
        (el("disk", el("source", file="/var/lib/images/r.img"), el("target", dev="vdy", bus="virtio"), type="file", device="disk"), "target", "dev"),
        (el("disk", el("source", dev="/dev/sdy"), el("target", dev="sdy", bus="scsi"), type="block", device="lun"), "target", "dev"),
        (el("input", type="tablet", bus="usb"), None, "type"),
        (el("video", el("model", type="virtio", heads="1")), "model", "type"),
        (el("sound", model="ich6"), None, "model"),
        (el("channel", el("target", type="virtio", name="org.example.r"), type="pty"), "target", "type"),
    ]
    for dev, path, attr in cases:
        tag = (path or dev.tag).split("/")[-1]
        bad = copy.deepcopy(dev)
        (bad.find(path) if path else bad).attrib.pop(attr)
        out.append(("required attribute missing", add_device(bad), (tag, ["attribute '%s' is missing" % attr])))
        out.append(("required attribute missing", add_device(dev), None))
    return out


def network_rules():
    out = []

    def forward(mode, *children, **attrs):
        def mutate(root):
            for tag in ("forward", "bridge", "ip", "dns", "domain", "mac"):
                for old in root.findall(tag):
                    root.remove(old)
            root.append(el("forward", *copy.deepcopy(list(children)), mode=mode, **attrs))
        return mutate

    def pci(bus, slot, fn, dom="0x0000"):
        return el("address", type="pci", domain=dom, bus=bus, slot=slot, function=fn)
    for mode in ("hostdev", "passthrough"):
        out.append(("network pool duplicate", forward(mode, pci("0x03", "0x00", "0x1"), pci("0x04", "0x00", "0x1"), pci("0x03", "0x00", "0x1")), ("address", ["listed twice"])))
        out.append(("network pool duplicate", forward(mode, pci("0x03", "0x00", "0x1"), pci("3", "0", "1")), ("address", ["listed twice"])))
        out.append(("network pool duplicate", forward(mode, pci("0x0a", "0x1f", "0x7", "0"), pci("0x02", "0x00", "0x0"), pci("10", "31", "7", "0x0000")), ("address", ["listed twice"])))
        out.append(("network pool duplicate", forward(mode, pci("0x03", "0x00", "0x1"), pci("0x03", "0x00", "0x2"), pci("0x03", "0x01", "0x1")), None))
    for mode in ("bridge", "private", "vepa", "passthrough"):
        out.append(("network pool duplicate", forward(mode, el("interface", dev="eth1"), el("interface", dev="eth2"), el("interface", dev="eth1")), ("interface", ["listed twice"])))
        out.append(("network pool duplicate", forward(mode, el("interface", dev="eth1"), el("interface", dev="eth2")), None))

    def dns(fwd, *children, **attrs):
        def mutate(root):
            for tag in ("forward", "dns"):
                for old in root.findall(tag):
                    root.remove(old)
            if fwd:
                root.insert(2, el("forward", mode=fwd))
            root.append(el("dns", *copy.deepcopy(list(children)), **attrs))
        return mutate
    hostname = el("hostname")
    hostname.text = "h.example"
    extras = [el("txt", name="example", value="v"), el("host", hostname, ip="192.0.2.5"),
              el("srv", service="ldap", protocol="tcp"), el("forwarder", addr="192.0.2.53")]
    for fwd in (None, "nat", "route", "open"):
        for x in extras:
            out.append(("network dns disabled extras", dns(fwd, x, enable="no"), ("dns", ["enable='no'", "empty <dns>"])))
        out.append(("network dns disabled extras", dns(fwd, enable="no"), None))
        out.append(("network dns disabled extras", dns(fwd, *extras, enable="yes"), None))
    return out


# Documents ---------------------------------------------------------------------------------------------------

class Tool:
    def __init__(self, path):
        self.path = path

    def run(self, kind, text):
        with tempfile.NamedTemporaryFile("w", suffix=".xml", prefix="refusal-variant-") as f:
            f.write(text)
            f.flush()
            p = subprocess.run([self.path, "validate", kind, f.name], capture_output=True, text=True)
        return p.returncode, p.stderr.strip()


def serialize(root):
    return ET.tostring(root, encoding="unicode")


def bases(kind, root_dir, shared):
    """(label, text) of valid documents to mutate: our own test data, then some of the corpus."""
    out = []
    own = os.path.join(root_dir, "tests", "data", kind)
    for name in sorted(os.listdir(own)):
        if name.endswith(".xml"):
            out.append(("tests/data/%s/%s" % (kind, name), open(os.path.join(own, name)).read()))
    if shared:
        corpus = os.path.join(shared, "corpus", "libvirt")
        picked = CORPUS_BASES.get(kind, [])
        for rel in picked:
            p = os.path.join(corpus, rel)
            if os.path.exists(p):
                out.append(("corpus " + rel, open(p).read()))
    return out


# Valid documents of libvirt's corpus that the variants are also written into: domains of several machine
# kinds and device sets, networks of several forward modes.
CORPUS_BASES = {
    "domain": ["domain/input/genericxml2xmlindata/cachetune.xml",
               "domain/input/genericxml2xmlindata/graphics-vnc-socket.xml",
               "domain/input/qemuxmlconfdata/chardev-reconnect.xml",
               "domain/input/qemuxmlconfdata/q35-pcie-autoadd.xml",
               "domain/input/qemuxmlconfdata/channel-unix-source-path.xml"],
    "network": ["network/input/networkxml2xmlin/hostdev-pf.xml",
                "network/input/networkxml2xmlin/nat-network-dns-hosts.xml",
                "network/input/networkxml2xmlin/open-network.xml",
                "network/input/networkxml2xmlin/routed-network.xml"],
}


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    # Some hundreds of runs of the tool: under `virtbus-xml serve` (tests/README.md) each is a child of one
    # process that compiled the schemas once, and runs the same code as a plain run.
    # (A sanitizer build's serve runs the script plainly: no server variable then, and no second try.)
    if not os.environ.get("VIRTBUS_XML_SERVER") and not os.environ.get("VIRTBUS_XML_SERVE_TRIED"):
        os.environ["VIRTBUS_XML_SERVE_TRIED"] = "1"
        os.execv(args[0], [args[0], "serve", "--", sys.executable] + sys.argv)
    tool, root_dir = Tool(args[0]), args[1]
    shared = args[2] if len(args) > 2 else subprocess.run(
        ["sh", os.path.join(root_dir, "tests", "shared-dir.sh")], capture_output=True, text=True).stdout.strip()
    if not os.path.isdir(os.path.join(shared, "corpus", "libvirt")):
        shared = None
    if not shared:
        print("libvirt's corpus not found: variants of our own test data only")
    rules = {"domain": cputune_rules() + chardev_rules() + graphics_rules() + disk_rules() + mac_rules() +
             numatune_rules() + range_rules() + boot_alias_rules() + required_attr_rules(),
             "network": network_rules()}
    jobs = []
    # The devices of the domain rules alone, as a device document.
    rules["device"] = [(rule, mutate, expect) for rule, mutate, expect in rules["domain"] if hasattr(mutate, "device")]
    for kind, variants in rules.items():
        if kind == "device":
            for rule, mutate, expect in variants:
                jobs.append((kind, "device document", rule, serialize(mutate.device), expect))
            continue
        usable = []
        for label, text in bases(kind, root_dir, shared):
            try:
                base = ET.fromstring(text)
            except ET.ParseError:
                continue
            if tool.run(kind, text)[0] == 0:  # else a document the variants cannot start from
                usable.append((label, base))
        # Each variant goes into one document, the next one along, so that the same rule is met in
        # documents of every shape without running every variant against every document.
        for i, (rule, mutate, expect) in enumerate(variants):
            label, base = usable[i % len(usable)]
            root = copy.deepcopy(base)
            mutate(root)
            jobs.append((kind, label, rule, serialize(root), expect))

    def one(job):
        kind, label, rule, text, expect = job
        rc, msg = tool.run(kind, text)
        if expect is None:
            return None if rc == 0 else "%s: %s: a valid neighbour was refused: %s\n%s" % (rule, label, msg, text)
        element, words = expect
        if rc == 0:
            return "%s: %s: accepted\n%s" % (rule, label, text)
        missing = [w for w in ["element '%s'" % element] + words if w not in msg]
        if missing:
            return "%s: %s: message lacks %s: %s" % (rule, label, ", ".join(repr(w) for w in missing), msg)
        return None

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, jobs))
    counts = {}
    failed = 0
    for job, err in zip(jobs, results):
        c = counts.setdefault(job[2], [0, 0, 0])
        c[0 if job[4] is not None else 1] += 1
        if err:
            c[2] += 1
            failed += 1
            print("FAIL " + err)
    for rule in sorted(counts):
        refused, neighbours, bad = counts[rule]
        print("%-32s %4d invalid variants, %4d valid neighbours, %d wrong" % (rule, refused, neighbours, bad))
    total = sum(c[0] for c in counts.values())
    print("%d invalid variants and %d valid neighbours of %d rules, %d wrong"
          % (total, sum(c[1] for c in counts.values()), len(counts), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
