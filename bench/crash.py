#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/crash.py: the workload and the checks of bench/crash-run (which sets up the private bus). Starts
# virtbusd, runs THREADS clients that each define (a new memory size each time), undefine, start and
# destroy their own domains and start/stop their own network, kills virtbusd with SIGKILL at a random
# moment, starts it again and checks against what the clients were told:
#   - every domain is there with the definition last acknowledged, or with the one in flight when the
#     kill came (old or new: none torn, none lost); one acknowledged as undefined is absent (or, in
#     flight, present as before);
#   - every domain acknowledged as started (and not destroyed since) is running again; every network
#     acknowledged as started is active;
#   - no file of the store is refused at load ("Failed to load" in virtbusd's log), no child is left.
# With MODE "qemu" (bench/crash-run --qemu, run in a network namespace of its own) the domains are
# real QEMUs with the tiny test guest (GUEST_DIR), the networks real bridges with nftables and dnsmasq,
# and running domains get NICs on their client's network hot-plugged now and then; after each restart
# also:
#   - every QEMU of the run still alive belongs to a domain virtbusd reports running (found again: no
#     orphan), and every domain it reports running has its QEMU;
#   - every network's bridge, nftables table and dnsmasq exist exactly when it is active;
#   - every tap device belongs to the live definition of a running domain.
# Storage and snapshots (both modes): each client also makes volumes in the driver's pool (raw ones filled
# by an Upload, qcow2 clones of them by CreateVolumeFrom: qemu-img), deletes them, and (test driver) takes
# and deletes snapshots of its domains; after each restart:
#   - every volume acknowledged is there with its capacity, none acknowledged as deleted is, and a volume
#     of the client's that was never acknowledged exists only if its call was in flight and it is whole (a
#     clone holds its source's bytes: qemu-img compare); no record of a clone in flight is left;
#   - every snapshot acknowledged is listed, none acknowledged as deleted is (in flight: either).
# Prints one line per kill and a summary; exits 1 on the first violation.
import ctypes
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import dbus

ADDR, VIRTBUSD, WORK, KILLS, THREADS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
MODE = sys.argv[6] if len(sys.argv) > 6 else "test"
GUEST = sys.argv[7] if len(sys.argv) > 7 else None
QEMU = MODE == "qemu"
# CRASH_KEEP_GOING=1: count violations and go on (to see every kind at once) instead of stopping.
KEEP_GOING = os.environ.get("CRASH_KEEP_GOING") == "1"
SLOTS = 2 if QEMU else 3  # domains per client
M = ("org.virtbus1", "/org/virtbus1")
POOL = "default" if QEMU else "default-pool"  # the driver's own pool
VOL_MIB = 4


def domain_xml(t, j, mem):
    if QEMU:
        return ("<domain type='qemu'><name>crash-%d-%d</name><uuid>c0a50000-0000-4000-8000-%06d%06d</uuid>"
                "<memory unit='KiB'>%d</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>"
                "<kernel>%s/vmlinuz</kernel><initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline>"
                "</os><features><acpi/></features><on_poweroff>destroy</on_poweroff>"
                "<devices><memballoon model='none'/></devices></domain>" % (t, j, t, j, mem, GUEST, GUEST))
    return ("<domain type='test'><name>crash-%d-%d</name><uuid>c0a50000-0000-4000-8000-%06d%06d</uuid>"
            "<memory unit='KiB'>%d</memory><os><type>hvm</type></os></domain>" % (t, j, t, j, mem))


def memory_for(t, counter):
    if QEMU:
        # whole MiB for QEMU, a new size each time; at least 80 MiB, or the tiny guest's kernel does not
        # fit and QEMU resets it forever (bench/README.md, issue 15)
        return (96 + counter % 64) * 1024
    return 100000 + t * 1000000 + counter


def nic_xml(t):
    return ("<interface type='network'><source network='crashnet-%d'/><model type='virtio'/></interface>" % t)


def is_service_error(e):
    return e.get_dbus_name().startswith("org.virtbus1.Error.")


def uuid(t, j):
    return "c0a50000-0000-4000-8000-%06d%06d" % (t, j)


def network_xml(t):
    if QEMU:
        # In the bench's own network namespace: no traffic leaves it.
        return ("<network><name>crashnet-%d</name><forward mode='nat'/><bridge name='vbcr%d'/>"
                "<ip address='10.77.%d.1' netmask='255.255.255.0'><dhcp><range start='10.77.%d.10' "
                "end='10.77.%d.50'/></dhcp></ip></network>" % (t, t, t, t, t))
    return ("<network><name>crashnet-%d</name><bridge name='vbcr%d'/><ip address='10.77.%d.1' "
            "netmask='255.255.255.0'/></network>" % (t, t, t))


class Slot:
    def __init__(self):
        self.defined = None       # acknowledged memory size, None: not defined
        self.running = False      # acknowledged
        self.inflight = None      # (op, value) sent, not answered
        self.was_paused = False   # found paused (a start cut short) and not started again since
        self.snaps = set()        # snapshot names acknowledged (test driver)
        self.snap_inflight = None  # (op, name)
        self.snap_counter = 0


class Volumes:
    def __init__(self):
        self.acked = {}       # name -> ("raw", None) filled, or ("qcow2", source name): acknowledged
        self.inflight = None  # (op, name, source) sent, not answered
        self.counter = 0


class Client(threading.Thread):
    def __init__(self, t, stop):
        super().__init__(daemon=True)
        self.t, self.stop, self.slots = t, stop, [Slot() for _ in range(SLOTS)]
        self.vols = Volumes()
        self.net_active, self.net_inflight = False, None
        self.counter, self.ops, self.refused, self.vol_ops, self.snap_ops = 0, 0, 0, 0, 0
        self.rng = random.Random(t * 7919 + int(time.time()))

    def run(self):
        try:
            bus = dbus.bus.BusConnection(ADDR)
            mgr = dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager")
        except dbus.DBusException:
            return
        while not self.stop.is_set():
            try:
                self.step(bus, mgr)
            except dbus.DBusException as e:
                if not is_service_error(e):
                    return  # the daemon is gone: what was in flight stays in flight
                # Refused (a network busy, a NIC on a stopped network...): nothing changed.
                self.refused += 1
                self.net_inflight = None
                self.vols.inflight = None
                for slot in self.slots:
                    slot.inflight = None
                    slot.snap_inflight = None

    def volume_step(self, bus, mgr):
        v = self.vols
        pool = dbus.Interface(bus.get_object("org.virtbus1", mgr.GetStoragePoolByName(POOL), introspect=False),
                              "org.virtbus1.StoragePool")
        raws = [n for n, (fmt, _) in v.acked.items() if fmt == "raw"]
        r = self.rng.random()
        if v.acked and (r < 0.3 or len(v.acked) >= 6):
            name = self.rng.choice(sorted(v.acked))
            v.inflight = ("delete", name, None)
            vol = dbus.Interface(bus.get_object("org.virtbus1", pool.GetVolumeByName(name), introspect=False),
                                 "org.virtbus1.StorageVol")
            vol.Delete(dbus.UInt64(0))
            del v.acked[name]
        elif raws and r < 0.65:
            v.counter += 1
            name, source = "crashvol-%d-%d.qcow2" % (self.t, v.counter), self.rng.choice(raws)
            v.inflight = ("clone", name, source)
            pool.CreateVolumeFrom("<volume><name>%s</name><target><format type='qcow2'/></target></volume>" % name,
                                  pool.GetVolumeByName(source), dbus.UInt64(0))
            v.acked[name] = ("qcow2", source)
        else:
            v.counter += 1
            name = "crashvol-%d-%d.img" % (self.t, v.counter)
            v.inflight = ("create", name, None)
            path = pool.CreateVolume("<volume><name>%s</name><capacity unit='MiB'>%d</capacity></volume>" %
                                     (name, VOL_MIB), dbus.UInt64(0))
            vol = dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.StorageVol")
            with open(WORK + "/vol-data", "rb") as f:
                vol.Upload(dbus.types.UnixFd(f), dbus.UInt64(0), dbus.UInt64(0), dbus.UInt64(0))
            v.acked[name] = ("raw", None)
        v.inflight = None
        self.ops += 1
        self.vol_ops += 1

    def snapshot_step(self, bus, mgr):
        j = self.rng.randrange(SLOTS)
        s = self.slots[j]
        if s.defined is None:
            return
        dom = dbus.Interface(bus.get_object("org.virtbus1", mgr.GetDomainByUUID(uuid(self.t, j)), introspect=False),
                             "org.virtbus1.Domain")
        if s.snaps and self.rng.random() < 0.4:
            name = self.rng.choice(sorted(s.snaps))
            s.snap_inflight = ("delete", name)
            path = [p for p in dom.ListSnapshots(dbus.UInt64(0)) if p.endswith("/" + name)]
            snap = dbus.Interface(bus.get_object("org.virtbus1", path[0], introspect=False),
                                  "org.virtbus1.DomainSnapshot")
            snap.Delete(dbus.UInt64(0))
            s.snaps.discard(name)
        else:
            s.snap_counter += 1
            name = "snap%d" % s.snap_counter
            s.snap_inflight = ("create", name)
            dom.CreateSnapshot("<domainsnapshot><name>%s</name></domainsnapshot>" % name, dbus.UInt64(0))
            s.snaps.add(name)
        s.snap_inflight = None
        self.ops += 1
        self.snap_ops += 1

    def step(self, bus, mgr):
        r = self.rng.random()
        if r < 0.15:
            self.volume_step(bus, mgr)
            return
        if not QEMU and r < 0.25:
            self.snapshot_step(bus, mgr)
            return
        if self.rng.random() < 0.15:
            op = "net-stop" if self.net_active else "net-start"
            self.net_inflight = op
            net = dbus.Interface(bus.get_object("org.virtbus1", mgr.GetNetworkByName("crashnet-%d" % self.t),
                                                introspect=False),
                                 "org.virtbus1.Network")
            if op == "net-start":
                net.Start(dbus.UInt64(0))
            else:
                net.Stop(dbus.UInt64(0))
            self.net_active = op == "net-start"
            self.net_inflight = None
            self.ops += 1
            return
        j = self.rng.randrange(SLOTS)
        s = self.slots[j]
        if s.defined is None or self.rng.random() < 0.4:
            self.counter += 1
            mem = memory_for(self.t, self.counter)
            s.inflight = ("define", mem)
            mgr.DefineDomain(domain_xml(self.t, j, mem), dbus.UInt64(0))
            s.defined, s.inflight = mem, None
        else:
            path = mgr.GetDomainByUUID(uuid(self.t, j))
            dom = dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
            if s.running and QEMU and self.rng.random() < 0.3:
                dom.AttachDevice(nic_xml(self.t), dbus.UInt64(1))  # live; nothing to check afterwards
                self.ops += 1
                return
            if s.running:
                op = "destroy"
            else:
                op = self.rng.choice(["start", "start", "undefine"])
            s.inflight = (op, None)
            getattr(dom, {"destroy": "Destroy", "start": "Start", "undefine": "Undefine"}[op])(dbus.UInt64(0))
            if op == "start":
                s.running, s.was_paused = True, False
            elif op == "destroy":
                s.running, s.was_paused = False, False
            else:
                s.defined = None
            s.inflight = None
        self.ops += 1


def start_daemon(log):
    p = subprocess.Popen([VIRTBUSD, "--bus-address=" + ADDR, "--driver", MODE, "--config-dir", WORK + "/config",
                          "--state-dir", WORK + "/state", "--runtime-dir", WORK + "/run"],
                         stderr=log, stdout=subprocess.DEVNULL)
    bus = dbus.bus.BusConnection(ADDR)
    dbus_if = dbus.Interface(bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus", introspect=False), "org.freedesktop.DBus")
    for _ in range(1000):
        if dbus_if.NameHasOwner("org.virtbus1"):
            # Answers once loaded.
            dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager").ListDomains(dbus.UInt64(0))
            return p, bus
        if p.poll() is not None:
            sys.exit("crash-run: virtbusd exited with %d" % p.returncode)
        time.sleep(0.01)
    sys.exit("crash-run: virtbusd did not take its name")


def prop(bus, path, iface, name):
    return bus.get_object("org.virtbus1", path, introspect=False).Get(iface, name, dbus_interface="org.freedesktop.DBus.Properties")


def check(bus, clients):
    mgr = dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager")
    problems = []
    for c in clients:
        for j, s in enumerate(c.slots):
            try:
                path = mgr.GetDomainByUUID(uuid(c.t, j))
            except dbus.DBusException:
                path = None
            op, val = s.inflight or (None, None)
            if path is None:
                if s.defined is not None and op != "undefine":
                    problems.append("crash-%d-%d lost (acknowledged with memory %s, in flight: %s)" %
                                    (c.t, j, s.defined, s.inflight))
                s.defined, s.running = None, False
                s.inflight = None
                continue
            xml = str(dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
                      .GetXMLDesc(dbus.UInt64(1)))
            mem = int(re.search(r"<memory unit='KiB'>(\d+)</memory>", xml).group(1))
            allowed = {s.defined} | ({val} if op == "define" else set())
            if s.defined is None and op not in ("define", "undefine"):
                problems.append("crash-%d-%d present but acknowledged as undefined" % (c.t, j))
            elif mem not in allowed:
                problems.append("crash-%d-%d has memory %d, expected one of %s" % (c.t, j, mem, sorted(
                    x for x in allowed if x is not None)))
            if QEMU:
                # Listed at once with the state last recorded; QEMU's own once its monitor answers.
                wait_connected(bus, path)
            state = str(prop(bus, path, "org.virtbus1.Domain", "State"))
            if s.running and op != "destroy" and state != "running" and not (state == "paused" and s.was_paused):
                problems.append("crash-%d-%d is %s, acknowledged as running" % (c.t, j, state))
            if not s.running and op != "start" and state == "running":
                problems.append("crash-%d-%d is running, acknowledged as shut off" % (c.t, j))
            # Go on from what is true now (paused: a start cut short; it runs, to be destroyed).
            s.defined, s.running, s.inflight = mem, state in ("running", "paused"), None
            s.was_paused = state == "paused"
        problems += check_volumes(bus, mgr, c)
        if not QEMU:
            problems += check_snapshots(bus, mgr, c)
        npath = mgr.GetNetworkByName("crashnet-%d" % c.t)
        active = bool(prop(bus, npath, "org.virtbus1.Network", "Active"))
        if active != c.net_active and c.net_inflight is None:
            problems.append("crashnet-%d active=%s, acknowledged %s" % (c.t, active, c.net_active))
        c.net_active, c.net_inflight = active, None
    return problems


def same_image(source, clone):
    """Whether the qcow2 clone holds the raw source's bytes (qemu-img compare, read-only, shared locks)."""
    r = subprocess.run(["qemu-img", "compare", "-q", "-U", "-f", "raw", "-F", "qcow2", source, clone],
                       capture_output=True)
    return r.returncode == 0


def check_volumes(bus, mgr, c):
    v, problems = c.vols, []
    pool_path = mgr.GetStoragePoolByName(POOL)
    pool = dbus.Interface(bus.get_object("org.virtbus1", pool_path, introspect=False), "org.virtbus1.StoragePool")
    found = {}
    for path in pool.ListVolumes(dbus.UInt64(0)):
        name = str(prop(bus, path, "org.virtbus1.StorageVol", "Name"))
        if name.startswith("crashvol-%d-" % c.t):
            found[name] = str(prop(bus, path, "org.virtbus1.StorageVol", "Path"))
    op, iname, isource = v.inflight or (None, None, None)
    for name, (fmt, source) in sorted(v.acked.items()):
        if name not in found and not (op == "delete" and iname == name):
            problems.append("volume %s lost (acknowledged)" % name)
    for name in sorted(set(found) - set(v.acked)):
        if iname != name or op not in ("create", "clone"):
            problems.append("volume %s is there but was never acknowledged (in flight: %s)" % (name, v.inflight))
        elif op == "clone" and not same_image(found[isource], found[name]):
            problems.append("volume %s, a clone in flight, is there but not whole" % name)
    # Go on from what is true now: a volume in flight that is there is kept (a create may be half-filled:
    # it is deleted rather than cloned).
    for name in found:
        if name not in v.acked:
            v.acked[name] = ("qcow2", isource) if op == "clone" else ("partial", None)
    for name in list(v.acked):
        if name not in found:
            del v.acked[name]
    v.inflight = None
    records = os.path.join(WORK, "config", "storage", "filling")
    if os.path.exists(records) and any(os.scandir(records)):
        problems.append("records of clones in flight left in %s: %s" % (records, os.listdir(records)))
    return problems


def check_snapshots(bus, mgr, c):
    problems = []
    for j, s in enumerate(c.slots):
        try:
            path = mgr.GetDomainByUUID(uuid(c.t, j))
        except dbus.DBusException:
            s.snaps, s.snap_inflight = set(), None
            continue
        dom = dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
        names = {str(p).rsplit("/", 1)[1] for p in dom.ListSnapshots(dbus.UInt64(0))}
        op, name = s.snap_inflight or (None, None)
        for n in sorted(s.snaps - names):
            if not (op == "delete" and n == name):
                problems.append("snapshot %s of crash-%d-%d lost (acknowledged)" % (n, c.t, j))
        for n in sorted(names - s.snaps):
            if not (op == "create" and n == name):
                problems.append("snapshot %s of crash-%d-%d is there but was never acknowledged" % (n, c.t, j))
        s.snaps, s.snap_inflight = names, None
    return problems


OUR_NETNS = os.readlink("/proc/self/ns/net")


def processes():
    """(pid, ppid, state, argv) of every process in our network namespace."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/ns/net" % d) != OUR_NETNS:
                continue
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        out.append((int(d), int(rest[1]), rest[0], argv))
    return out


def qemus():
    """name -> pids of the live (not zombie) QEMUs of this run."""
    found = {}
    for pid, _, state, argv in processes():
        if state == "Z" or not argv or "qemu-system" not in os.path.basename(argv[0]):
            continue
        for a in argv:
            m = re.match(r"guest=(crash-\d+-\d+),", a)
            if m:
                found.setdefault(m.group(1), []).append(pid)
    return found


def probes():
    """pid -> ppid of the capability probes (QEMU with -machine none) in our namespace."""
    found = {}
    for pid, ppid, state, argv in processes():
        if state != "Z" and argv and "qemu-system" in os.path.basename(argv[0]) and \
                any(a == "-machine" and b == "none" for a, b in zip(argv, argv[1:])):
            found[pid] = ppid
    return found


def dnsmasqs():
    """network name -> pid of the live dnsmasq processes in our namespace."""
    found = {}
    for pid, _, state, argv in processes():
        if state != "Z" and argv and os.path.basename(argv[0]) == "dnsmasq":
            m = re.search(r"(crashnet-\d+)\.dnsmasq/conf", " ".join(argv))
            if m:
                found[m.group(1)] = pid
    return found


def links():
    """name -> kind ("bridge", "tap", other) of the links in our namespace."""
    out = subprocess.run(["ip", "-o", "-d", "link"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        found[name] = "bridge" if " bridge forward_delay " in line else "tap" if " tun type tap " in line else "other"
    return found


def nft_tables():
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table ")}


DAEMON_PID = [0]


def reaper():
    """Orphans of a killed virtbusd come to us (a subreaper): reap those that exit (PID 1 here does not)."""
    while True:
        me = os.getpid()
        for pid, ppid, state, _ in processes():
            if ppid == me and state == "Z" and pid != DAEMON_PID[0]:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        time.sleep(0.2)


def wait_connected(bus, path):
    """A QEMU found again is listed at once and its monitor connects in the background (calls answer busy
    meanwhile; what a hot-plug cut short is finished or undone then): waits until the domain answers
    (SetMemory to what it is), bounded."""
    dom = dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
    for _ in range(3000):
        try:
            kib = prop(bus, path, "org.virtbus1.Domain", "CurrentMemoryKiB")
            dom.SetMemory(dbus.UInt64(kib), dbus.UInt64(1))
            return
        except dbus.DBusException as e:
            if "still connecting" not in (e.get_dbus_message() or ""):
                return
        time.sleep(0.02)


def host_check(bus, clients, before):
    """The qemu mode's checks against the host; returns (problems, QEMUs alive from before, found again)."""
    mgr = dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager")
    problems, running, taps_in_use, states = [], set(), set(), {}
    for c in clients:
        for j in range(SLOTS):
            name = "crash-%d-%d" % (c.t, j)
            try:
                path = mgr.GetDomainByUUID(uuid(c.t, j))
            except dbus.DBusException:
                continue
            states[name] = str(prop(bus, path, "org.virtbus1.Domain", "State"))
            if states[name] not in ("running", "paused"):
                continue
            wait_connected(bus, path)
            running.add(name)
            xml = str(dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
                      .GetXMLDesc(dbus.UInt64(0)))
            taps_in_use |= set(re.findall(r"<target dev='([^']+)'", xml))
    alive = qemus()
    for name, pids in sorted(alive.items()):
        if name not in running:
            problems.append("orphan QEMU %s of %s (%s for virtbusd)" % (pids, name, states.get(name, "undefined")))
        elif len(pids) > 1:
            problems.append("%d QEMUs of %s (%s): all but one orphans" % (len(pids), name, pids))
    for name in sorted(running - set(alive)):
        problems.append("%s is running for virtbusd but has no QEMU" % name)
    for pid, ppid in sorted(probes().items()):
        if ppid != DAEMON_PID[0]:
            problems.append("orphan capability probe QEMU %d (parent %d, virtbusd %d)" % (pid, ppid, DAEMON_PID[0]))
    carried = [n for n in before if n in alive]
    found = [n for n in carried if n in running]
    ls, tables, dns = links(), nft_tables(), dnsmasqs()
    for c in clients:
        net, bridge = "crashnet-%d" % c.t, "vbcr%d" % c.t
        active = bool(prop(bus, mgr.GetNetworkByName(net), "org.virtbus1.Network", "Active"))
        for what, present in (("bridge " + bridge, bridge in ls), ("nftables table virtbus_" + bridge,
                              "virtbus_" + bridge in tables), ("dnsmasq", net in dns)):
            if present != active:
                problems.append("%s: %s %s" % (net, what, "missing while active" if active else "left while inactive"))
    for name, kind in sorted(ls.items()):
        if kind == "tap" and name not in taps_in_use:
            problems.append("orphan tap %s" % name)
    return problems, len(carried), len(found)


def end_run_processes():
    """The QEMUs and dnsmasq of this run (virtbusd leaves them running on purpose)."""
    for pid in [p for pids in qemus().values() for p in pids] + list(dnsmasqs().values()) + list(probes()):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return f.read().split()
    except OSError:
        return []


def main():
    logpath = WORK + "/virtbusd.log"
    log = open(logpath, "ab")
    if QEMU:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        threading.Thread(target=reaper, daemon=True).start()
    carried_total, found_total, refused_total, violations = 0, 0, 0, 0
    with open(WORK + "/vol-data", "wb") as f:  # what each raw volume gets by Upload
        f.write(os.urandom(VOL_MIB << 20))
    daemon, bus = start_daemon(log)
    DAEMON_PID[0] = daemon.pid
    mgr = dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager")
    clients = []
    for t in range(THREADS):
        mgr.DefineNetwork(network_xml(t), dbus.UInt64(0))
    total_ops, vol_ops, snap_ops = 0, 0, 0
    rng = random.Random(18)
    for k in range(KILLS):
        stop = threading.Event()
        fresh = []
        for t in range(THREADS):
            c = clients[t] if clients else Client(t, stop)
            n = Client(t, stop)
            n.slots, n.net_active, n.counter, n.vols = c.slots, c.net_active, c.counter, c.vols
            fresh.append(n)
        clients = fresh
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.3, 2.5) if QEMU else rng.uniform(0.05, 0.6))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        stop.set()
        for c in clients:
            c.join(30)
        ops = sum(c.ops for c in clients)
        total_ops += ops
        vol_ops += sum(c.vol_ops for c in clients)
        snap_ops += sum(c.snap_ops for c in clients)
        refused_total += sum(c.refused for c in clients)
        before = qemus() if QEMU else {}
        daemon, bus = start_daemon(log)
        DAEMON_PID[0] = daemon.pid
        problems = check(bus, clients)
        extra = ""
        if QEMU:
            more, carried, found = host_check(bus, clients, before)
            problems += more
            carried_total += carried
            found_total += found
            extra = ", %d of %d QEMUs found again" % (found, carried)
        print("kill %d: %d calls answered before it%s; %s" % (k + 1, ops, extra,
                                                             "ok" if not problems else "; ".join(problems)),
              flush=True)
        violations += len(problems)
        if problems and not KEEP_GOING:
            daemon.kill()
            daemon.wait()
            if QEMU:
                end_run_processes()
            sys.exit(1)
    log.flush()
    with open(logpath, errors="replace") as f:
        lines = f.readlines()
    torn = [line for line in lines if "Failed to load" in line]
    swept = sum("cut short" in line and "Removing volume" in line for line in lines)
    print("storage: %d volume calls answered, %d snapshot calls; %d volumes cut short found and removed at a restart" %
          (vol_ops, snap_ops, swept), flush=True)
    kids = [k for k in children(daemon.pid) if not QEMU]  # QEMUs and dnsmasq are its children there
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    if QEMU:
        end_run_processes()
    if torn:
        sys.exit("crash-run: files refused at load: %s" % torn[:3])
    if kids:
        sys.exit("crash-run: virtbusd has children: %s" % kids)
    if QEMU:
        print("crash mode=qemu kills=%d calls=%d refused=%d violations=%d torn=0 qemus_found_again=%d/%d" %
              (KILLS, total_ops, refused_total, violations, found_total, carried_total))
        if violations:
            sys.exit(1)
    else:
        print("crash kills=%d calls=%d refused=%d violations=%d torn=0" % (KILLS, total_ops, refused_total, violations))
        if violations:
            sys.exit(1)


main()
