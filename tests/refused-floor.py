#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""refused-floor.py FLOOR_FILE < SCORER_OUTPUT: fails when, for a category the scorer printed, fewer of the
inputs that must be refused were refused than the floor file says ('category count' lines)."""
import re
import sys

floor = {}
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        cat, n = line.split()
        floor[cat] = int(n)
ok = True
for line in sys.stdin:
    m = re.match(r"^(\w+)\s.*\|\s*invalid=(\d+) rejected=(\d+)", line)
    if not m:
        continue
    cat, invalid, rejected = m.group(1), int(m.group(2)), int(m.group(3))
    want = floor.get(cat, 0)
    print("%s: refused %d of %d that must be refused, floor %d" % (cat, rejected, invalid, want))
    ok = ok and rejected >= want
sys.exit(0 if ok else 1)
