# SPDX-License-Identifier: LGPL-2.1-or-later
# What the bare-QEMU benches (migrate-bare.py, snapshot-bare.py) share: a QMP client on a UNIX socket that
# keeps the events it reads, waiting for the one a caller names, and the rounds of a bench (a count, or a
# FIFO the calling bench writes a line to before each round: "fifo:PATH").
import json
import socket
import time


def rounds(reps):
    fifo = open(reps[5:]) if reps.startswith("fifo:") else None
    i = 0
    while fifo.readline() if fifo else i < int(reps):
        yield i
        i += 1


class Qmp:
    def __init__(self, path):
        for _ in range(500):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                time.sleep(0.01)
        else:
            raise SystemExit("no QMP socket at " + path)
        self.f = self.s.makefile("rb")
        self.events = []
        self.f.readline()
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.f.readline()
        if not line:
            raise SystemExit("QEMU closed its monitor")
        return json.loads(line)

    def cmd(self, name, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.s.sendall((json.dumps(msg) + "\n").encode())
        while True:
            reply = self.read()
            if "event" in reply:
                self.events.append(reply)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise SystemExit("%s: %s" % (name, reply["error"]))

    def wait_event(self, match):
        """The first event (kept or to come) for which match(event) is true; the others stay kept."""
        while True:
            for i, e in enumerate(self.events):
                if match(e):
                    return self.events.pop(i)
            self.events.append(self.read())
