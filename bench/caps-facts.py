#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""caps-facts.py: how many of one domain capabilities document's facts another states (bench/caps-facts).

Usage: caps-facts.py WANT.xml HAVE.xml [--lost N]
A fact is (element path, attribute, value) or (element path, text), counted with multiplicity, the way
../shared/tools/xml-fidelity.py counts them: N facts of WANT are kept when HAVE states them as often.
Prints "kept=K total=T pct=P" and, with --lost N, up to N facts of WANT that HAVE lacks and N that HAVE
states beyond WANT (extra=...)."""
import collections
import sys
import xml.etree.ElementTree as ET


def facts(root):
    out = collections.Counter()

    def walk(el, path):
        p = path + "/" + el.tag
        text = (el.text or "").strip()
        if text and len(el) == 0:
            out[(p, "#text", text)] += 1
        for k, v in el.attrib.items():
            out[(p, k, v)] += 1
        for child in el:
            walk(child, p)

    walk(root, "")
    return out


def main():
    args = sys.argv[1:]
    lost_n = 0
    if "--lost" in args:
        i = args.index("--lost")
        lost_n = int(args[i + 1])
        del args[i:i + 2]
    want = facts(ET.parse(args[0]).getroot())
    have = facts(ET.parse(args[1]).getroot())
    total = sum(want.values())
    kept = sum(min(n, have[k]) for k, n in want.items())
    print("kept=%d total=%d pct=%.1f" % (kept, total, 100.0 * kept / total if total else 100.0))
    if lost_n:
        lost = [(k, n - have[k]) for k, n in want.items() if have[k] < n]
        extra = [(k, n - want[k]) for k, n in have.items() if want[k] < n]
        for k, n in lost[:lost_n]:
            print("  lost %dx %s@%s=%s" % ((n,) + k))
        for k, n in extra[:lost_n]:
            print("  extra %dx %s@%s=%s" % ((n,) + k))


if __name__ == "__main__":
    main()
