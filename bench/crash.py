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
# Prints one line per kill and a summary; exits 1 on the first violation.
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
SLOTS = 3  # domains per client
M = ("org.virtbus1", "/org/virtbus1")


def domain_xml(t, j, mem):
    return ("<domain type='test'><name>crash-%d-%d</name><uuid>c0a50000-0000-4000-8000-%06d%06d</uuid>"
            "<memory unit='KiB'>%d</memory><os><type>hvm</type></os></domain>" % (t, j, t, j, mem))


def uuid(t, j):
    return "c0a50000-0000-4000-8000-%06d%06d" % (t, j)


def network_xml(t):
    return ("<network><name>crashnet-%d</name><bridge name='vbcr%d'/><ip address='10.77.%d.1' "
            "netmask='255.255.255.0'/></network>" % (t, t, t))


class Slot:
    def __init__(self):
        self.defined = None       # acknowledged memory size, None: not defined
        self.running = False      # acknowledged
        self.inflight = None      # (op, value) sent, not answered


class Client(threading.Thread):
    def __init__(self, t, stop):
        super().__init__(daemon=True)
        self.t, self.stop, self.slots = t, stop, [Slot() for _ in range(SLOTS)]
        self.net_active, self.net_inflight = False, None
        self.counter, self.ops = 0, 0
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
            except dbus.DBusException:
                return  # the daemon is gone: what was in flight stays in flight

    def step(self, bus, mgr):
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
            mem = 100000 + self.t * 1000000 + self.counter
            s.inflight = ("define", mem)
            mgr.DefineDomain(domain_xml(self.t, j, mem), dbus.UInt64(0))
            s.defined, s.inflight = mem, None
        else:
            path = mgr.GetDomainByUUID(uuid(self.t, j))
            dom = dbus.Interface(bus.get_object("org.virtbus1", path, introspect=False), "org.virtbus1.Domain")
            if s.running:
                op = "destroy"
            else:
                op = self.rng.choice(["start", "start", "undefine"])
            s.inflight = (op, None)
            getattr(dom, {"destroy": "Destroy", "start": "Start", "undefine": "Undefine"}[op])(dbus.UInt64(0))
            if op == "start":
                s.running = True
            elif op == "destroy":
                s.running = False
            else:
                s.defined = None
            s.inflight = None
        self.ops += 1


def start_daemon(log):
    p = subprocess.Popen([VIRTBUSD, "--bus-address=" + ADDR, "--driver", "test", "--config-dir", WORK + "/config",
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
            state = str(prop(bus, path, "org.virtbus1.Domain", "State"))
            if s.running and op != "destroy" and state != "running":
                problems.append("crash-%d-%d is %s, acknowledged as running" % (c.t, j, state))
            if not s.running and op != "start" and state == "running":
                problems.append("crash-%d-%d is running, acknowledged as shut off" % (c.t, j))
            # Go on from what is true now.
            s.defined, s.running, s.inflight = mem, state == "running", None
        npath = mgr.GetNetworkByName("crashnet-%d" % c.t)
        active = bool(prop(bus, npath, "org.virtbus1.Network", "Active"))
        if active != c.net_active and c.net_inflight is None:
            problems.append("crashnet-%d active=%s, acknowledged %s" % (c.t, active, c.net_active))
        c.net_active, c.net_inflight = active, None
    return problems


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return f.read().split()
    except OSError:
        return []


def main():
    logpath = WORK + "/virtbusd.log"
    log = open(logpath, "ab")
    daemon, bus = start_daemon(log)
    mgr = dbus.Interface(bus.get_object(*M, introspect=False), "org.virtbus1.Manager")
    clients = []
    for t in range(THREADS):
        mgr.DefineNetwork(network_xml(t), dbus.UInt64(0))
    total_ops = 0
    rng = random.Random(18)
    for k in range(KILLS):
        stop = threading.Event()
        fresh = []
        for t in range(THREADS):
            c = clients[t] if clients else Client(t, stop)
            n = Client(t, stop)
            n.slots, n.net_active, n.counter = c.slots, c.net_active, c.counter
            fresh.append(n)
        clients = fresh
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.05, 0.6))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        stop.set()
        for c in clients:
            c.join(10)
        ops = sum(c.ops for c in clients)
        total_ops += ops
        daemon, bus = start_daemon(log)
        problems = check(bus, clients)
        print("kill %d: %d calls answered before it; %s" % (k + 1, ops, "ok" if not problems else "; ".join(problems)),
              flush=True)
        if problems:
            daemon.kill()
            daemon.wait()
            sys.exit(1)
    log.flush()
    with open(logpath, errors="replace") as f:
        torn = [line for line in f if "Failed to load" in line]
    kids = children(daemon.pid)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    if torn:
        sys.exit("crash-run: files refused at load: %s" % torn[:3])
    if kids:
        sys.exit("crash-run: virtbusd has children: %s" % kids)
    print("crash kills=%d calls=%d violations=0 torn=0" % (KILLS, total_ops))


main()
