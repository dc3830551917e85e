#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`virtbus-xml serve` answers as the plain command does: xml-server-test.py VIRTBUS_XML SOURCE_ROOT

Runs each case twice, plainly and through a server (this script runs itself again under
`virtbus-xml serve -- ...`), and compares stdout, stderr and the exit status: a valid document formatted,
refused documents (message and status 1), a relative path (the caller's directory), a missing file, bad
usage (status 2), a command ended by a signal (the caller ends by the same signal), a caller killed while
its command runs (the command goes too), and the server's own exit status (its command's)."""
import os
import signal
import subprocess
import sys
import tempfile
import time

ENV = "VIRTBUS_XML_SERVER"
failures = []


def check(what, ok, detail=""):
    print("%s %s%s" % ("ok  " if ok else "FAIL", what, (": " + detail) if detail and not ok else ""))
    if not ok:
        failures.append(what)


def plain_env():
    env = dict(os.environ)
    env.pop(ENV, None)
    return env


def run(tool, args, served, cwd=None):
    p = subprocess.run([tool] + args, capture_output=True, env=None if served else plain_env(), cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def same(what, tool, args, cwd=None):
    plain, served = run(tool, args, False, cwd), run(tool, args, True, cwd)
    check(what, plain == served, "plain %r, served %r" % (plain, served))
    return plain


def holders(path):
    """The processes other than this one that have path open."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == path:
                    out.append(int(pid))
                    break
            except OSError:
                pass
    return out


def wait_for(cond, what):
    # Bounded by the test's meson timeout, not by a figure here: a loaded machine only makes it slower.
    while True:
        r = cond()
        if r:
            return r
        time.sleep(0.01)


def blocked_run(tool, served, fifo):
    """Starts `validate domain FIFO`: the command blocks reading the FIFO, which this script holds open
    for writing. Returns the caller's process and the command's pid (the caller itself when plain)."""
    wfd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    p = subprocess.Popen([tool, "validate", "domain", fifo], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=None if served else plain_env())
    pids = wait_for(lambda: holders(fifo), "the command opening the FIFO")
    return p, pids[0], wfd


def crash_like(tool, tmp):
    """A command ended by SIGSEGV: a plain run dies of it, a served caller dies of it too."""
    results = []
    for served in (False, True):
        fifo = os.path.join(tmp, "fifo-%d" % served)
        os.mkfifo(fifo)
        p, pid, wfd = blocked_run(tool, served, fifo)
        check("the command is %s" % ("a child of the server" if served else "the caller"),
              (pid != p.pid) == served, "pid %d, caller %d" % (pid, p.pid))
        os.kill(pid, signal.SIGSEGV)
        out, err = p.communicate()
        os.close(wfd)
        results.append((p.returncode, out, err))
    check("a command ended by SIGSEGV ends its caller alike", results[0] == results[1] and
          results[0][0] == -signal.SIGSEGV, repr(results))


def caller_killed(tool, tmp):
    """The caller killed while its command runs (a scorer's timeout): the command does not stay behind."""
    fifo = os.path.join(tmp, "fifo-killed")
    os.mkfifo(fifo)
    p, pid, wfd = blocked_run(tool, True, fifo)
    p.kill()
    p.communicate()
    wait_for(lambda: not holders(fifo), "the command to go")
    check("a killed caller's command is killed too", not os.path.exists("/proc/%d/fd" % pid) or
          pid not in holders(fifo))
    os.close(wfd)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tool, root = os.path.abspath(sys.argv[1]), sys.argv[2]
    if not os.environ.get(ENV) and not os.environ.get("VIRTBUS_XML_SERVE_TRIED"):
        # The server's exit status is its command's; then the cases, under a server.
        rc = subprocess.run([tool, "serve", "--", "sh", "-c", "exit 7"]).returncode
        check("serve exits with its command's status", rc == 7, "got %d" % rc)
        rc = subprocess.run([tool, "serve", "--", sys.executable] + sys.argv,
                            env=dict(os.environ, VIRTBUS_XML_SERVE_TRIED="1")).returncode
        return 1 if failures or rc not in (0, 77) else rc
    if not os.environ.get(ENV):
        print("this build's serve runs its command plainly (AddressSanitizer, see tests/README.md): "
              "no server to compare with")
        return 77

    data = os.path.join(root, "tests", "data")
    valid = sorted(os.path.join(data, "domain", f) for f in os.listdir(os.path.join(data, "domain"))
                   if f.endswith(".xml"))[:3]
    for f in valid:
        rc, out, _ = same("format %s" % os.path.basename(f), tool, ["format", "domain", f])
        check("format %s printed a domain" % os.path.basename(f), rc == 0 and b"<domain" in out)
    same("validate a network", tool, ["validate", "network",
                                      os.path.join(data, "network", sorted(os.listdir(os.path.join(data, "network")))[0])])
    refused = sorted(os.path.join(data, "domain-invalid", f)
                     for f in os.listdir(os.path.join(data, "domain-invalid")) if f.endswith(".xml"))[:5]
    for f in refused:
        rc, _, err = same("refused %s" % os.path.basename(f), tool, ["validate", "domain", f])
        check("refused %s: status 1 and a message" % os.path.basename(f), rc == 1 and b"element" in err or
              rc == 1 and len(err) > 0)
    same("a path relative to the caller's directory", tool,
         ["format", "domain", os.path.basename(valid[0])], cwd=os.path.dirname(valid[0]))
    same("a missing file", tool, ["validate", "domain", "/nonexistent/virtbus-xml-test.xml"])
    same("an unknown kind", tool, ["validate", "nosuchkind", valid[0]])
    rc, _, _ = same("bad usage", tool, ["format"])
    check("bad usage: status 2", rc == 2)
    with tempfile.TemporaryDirectory(prefix="virtbus-xml-server-test-") as tmp:
        crash_like(tool, tmp)
        caller_killed(tool, tmp)
    # A server that is gone: the command runs in the caller.
    env = dict(os.environ, **{ENV: "/nonexistent/virtbus-xml-socket"})
    p = subprocess.run([tool, "format", "domain", valid[0]], capture_output=True, env=env)
    check("no server: the caller runs the command", (p.returncode, p.stdout, p.stderr) ==
          run(tool, ["format", "domain", valid[0]], False))
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
