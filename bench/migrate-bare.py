#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bare QEMU's own live migration between two network namespaces, for bench/migrate-run: a guest booted in
# one QEMU (namespace A), then REPS times: a second QEMU started with -incoming on the other namespace's
# address, QMP migrate to it (no bandwidth limit, the default downtime limit, as virtbusd asks), its end
# seen from QEMU's MIGRATION event (capability "events", as virtbusd follows it), one query-migrate for the
# figures, cont on the destination, quit on the source; the next round goes back.
# Prints per round: wall ms (destination start to the guest running there and the source gone), QEMU's
# total-time, downtime and setup-time. With a FIFO as REPS ("fifo:PATH"), it waits for a line on it before
# each round (the caller interleaves its own rounds), and ends at end-of-file.
#   migrate-bare.py WORKDIR REPS|fifo:PATH NS_A ADDR_A NS_B ADDR_B QEMU-ARGS...
import os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp_bare import Qmp, rounds  # noqa: E402

work, reps, ns_a, addr_a, ns_b, addr_b, args = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5],
                                                 sys.argv[6], sys.argv[7:])
def start(ns, name, extra):
    sock = os.path.join(work, name + ".qmp")
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/qemu-system-x86_64", "-qmp",
                          "unix:%s,server=on,wait=off" % sock, "-serial", "file:%s/%s.serial" % (work, name)]
                         + args + extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, name + ".log"), "ab"))
    return p, Qmp(sock)


src, src_qmp = start(ns_a, "bare0", [])
for _ in range(600):
    try:
        if "VIRTBUS-GUEST-BOOTED" in open(os.path.join(work, "bare0.serial")).read():
            break
    except OSError:
        pass
    time.sleep(0.1)
time.sleep(2)
where = [(ns_a, addr_a), (ns_b, addr_b)]
print("booted", flush=True)
for i in rounds(reps):
    ns, addr = where[(i + 1) % 2]
    port = 49152 + i
    t0 = time.monotonic()
    dst, dst_qmp = start(ns, "bare%d" % (i + 1), ["-incoming", "tcp:%s:%d" % (addr, port)])
    src_qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 2**62})
    src_qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    src_qmp.events.clear()
    src_qmp.cmd("migrate", uri="tcp:%s:%d" % (addr, port))
    src_qmp.wait_event(lambda e: e["event"] == "MIGRATION" and
                       e["data"]["status"] in ("completed", "failed", "cancelled"))
    info = src_qmp.cmd("query-migrate")
    if info.get("status") != "completed":
        raise SystemExit("migration %s: %s" % (info.get("status"), info.get("error-desc")))
    while dst_qmp.cmd("query-status").get("status") not in ("paused", "running", "postmigrate"):
        time.sleep(0.01)
    while dst_qmp.cmd("query-migrate").get("status") not in ("completed", None):
        time.sleep(0.01)
    dst_qmp.cmd("cont")
    src_qmp.cmd("quit")
    src.wait()
    wall = (time.monotonic() - t0) * 1000
    print("round=%d wall_ms=%.1f total_ms=%d downtime_ms=%d setup_ms=%d" %
          (i + 1, wall, info.get("total-time", 0), info.get("downtime", 0), info.get("setup-time", 0)), flush=True)
    src, src_qmp = dst, dst_qmp
src_qmp.cmd("quit")
src.wait()
