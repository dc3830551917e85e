#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bare QEMU's own internal snapshot of a running guest, for bench/snapshot-run: the floor under virtbusd's
# CreateSnapshot. A guest booted in one QEMU (TCG, the bench's kernel + initrd, 512 MiB, a qcow2 disk on
# virtio), then per round: QMP `snapshot-save` (the job virtbusd starts, on the disk's format node), its end
# seen from QEMU's JOB_STATUS_CHANGE event "concluded", one query-jobs for how it ended and job-dismiss, as
# virtbusd does. No service around it: this is what QEMU alone takes.
# Prints per round: wall ms (the command sent to the job dismissed) and the image's growth in bytes. With a
# FIFO as REPS ("fifo:PATH"), it waits for a line on it before each round (the caller interleaves its own
# rounds), and ends at end-of-file.
#   snapshot-bare.py WORKDIR REPS|fifo:PATH DISK QEMU-ARGS...
import os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp_bare import Qmp, rounds  # noqa: E402

work, reps, disk, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sock = os.path.join(work, "bare.qmp")
if os.path.exists(sock):
    os.unlink(sock)
qemu = subprocess.Popen(["/usr/bin/qemu-system-x86_64", "-qmp", "unix:%s,server=on,wait=off" % sock,
                         "-serial", "file:%s/bare.serial" % work,
                         "-blockdev", "driver=file,filename=%s,node-name=file0" % disk,
                         "-blockdev", "driver=qcow2,file=file0,node-name=fmt0",
                         "-device", "virtio-blk-pci,drive=fmt0"] + args,
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=open(os.path.join(work, "bare.log"), "ab"))
open(os.path.join(work, "bare.pid"), "w").write("%d\n" % qemu.pid)
qmp = Qmp(sock)
for _ in range(600):
    try:
        if "VIRTBUS-GUEST-BOOTED" in open(os.path.join(work, "bare.serial")).read():
            break
    except OSError:
        pass
    time.sleep(0.1)
time.sleep(2)
print("booted", flush=True)
for i in rounds(reps):
    size = os.stat(disk).st_blocks * 512
    job = "bare-snap-%d" % (i + 1)
    t0 = time.monotonic()
    qmp.cmd("snapshot-save", **{"job-id": job, "tag": "s%d" % (i + 1), "vmstate": "fmt0", "devices": ["fmt0"]})
    qmp.wait_event(lambda e: e["event"] == "JOB_STATUS_CHANGE" and e["data"]["id"] == job and
                   e["data"]["status"] == "concluded")
    jobs = [j for j in qmp.cmd("query-jobs") if j["id"] == job]
    qmp.cmd("job-dismiss", id=job)
    wall = (time.monotonic() - t0) * 1000
    if not jobs or jobs[0].get("error"):
        raise SystemExit("snapshot-save failed: %s" % (jobs[0].get("error") if jobs else "job gone"))
    print("round=%d wall_ms=%.1f grew=%d" % (i + 1, wall, os.stat(disk).st_blocks * 512 - size), flush=True)
qmp.cmd("quit")
qemu.wait()
