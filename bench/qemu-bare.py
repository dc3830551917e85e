#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bare QEMU, started by hand as a manager would: fork/exec with -S and a QMP socket it inherits,
# connect, qmp_capabilities, cont (= running); then SIGTERM and wait (= destroyed). For bench/qemu-run.
#   qemu-bare.py WORKDIR REPS ACCEL QEMU-ARGS...
import os, signal, socket, statistics, subprocess, sys, time

work, reps, accel, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]

def qmp(f, sock, cmd):
    sock.sendall(('{"execute": "%s"}\n' % cmd).encode())
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("QEMU closed the monitor")
        if b'"return"' in line or b'"error"' in line:
            return line

starts, destroys = [], []
for i in range(reps):
    path = os.path.join(work, "bare.sock")
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.monotonic()
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(1)
    fd = lsock.fileno()
    os.set_inheritable(fd, True)
    p = subprocess.Popen(["/usr/bin/qemu-system-x86_64", "-S", "-accel", accel,
                          "-chardev", "socket,id=mon,fd=%d,server=on,wait=off" % fd,
                          "-mon", "chardev=mon,mode=control"] + args,
                         pass_fds=[fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    lsock.close()
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    f = c.makefile("rb")
    f.readline()  # greeting
    qmp(f, c, "qmp_capabilities")
    qmp(f, c, "cont")
    starts.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
    t1 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait()
    destroys.append((time.monotonic() - t1) * 1000)
    c.close()
print("start_median_ms=%.3f destroy_median_ms=%.3f" % (statistics.median(starts), statistics.median(destroys)))
