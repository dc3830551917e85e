#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Schema coverage: which element and attribute names libvirt's schemas define that ours do not.

Usage: schema-coverage.py OUR_SCHEMA_DIR LIBVIRT_SCHEMA_DIR [--verbose]

For each kind virtbus serves (domain, network, nodedev, domaincaps, storage pool and volume, snapshot) both
grammars are walked from their start pattern. What is compared is the set of names each grammar gives in
context: 'parent>child' for an element that may appear inside an element called parent, and
'element@attribute' for an attribute an element called element may carry. Definitions are followed
through <ref>, <include> (with overriding defines) and <externalRef>; an element or attribute named by a
<name> choice counts under each name. Wildcards (anyName, nsName) are not names and are left out.

Values are compared too: where both grammars give an attribute or an element's text as a list of values
or numeric ranges (an integer <data> type with its bounds; patterns on it only narrow how a number is
written), each value of libvirt's list must be in ours (keys 'element@attribute' and 'element#text',
merged over every element of that name), and every value and range of ours must be within libvirt's: a
value virtbus takes beyond libvirt's list or range fails, for every kind, and so does any text of ours where
libvirt's is a number range (a number's range belongs in the schema, which names it in the error). Told
apart and not failed (listed with --verbose): a range of libvirt's that ours narrows (its schemas often
take a wider type than its parser), and a list where libvirt takes any text.

Prints each name or value libvirt defines and we do not, or we take beyond libvirt's, one a line, as
'kind: name' or 'kind: value key=v1|v2', and exits 1 when there is one; exits 0 when the list is empty;
77 (skip) when libvirt's schemas are not there."""
import os
import sys
import xml.etree.ElementTree as ET

RNG = "{http://relaxng.org/ns/structure/1.0}"

# kind -> (our start file, libvirt's start file)
KINDS = {
    "domain": ("domain.rng", "domain.rng"),
    "network": ("network.rng", "network.rng"),
    "nodedev": ("nodedev.rng", "nodedev.rng"),
    "domaincaps": ("domaincaps.rng", "domaincaps.rng"),
    "storagepool": ("storagepool.rng", "storagepool.rng"),
    "storagevol": ("storagevol.rng", "storagevol.rng"),
    "snapshot": ("domainsnapshot.rng", "domainsnapshot.rng"),
}


class Grammar:
    def __init__(self, path=None, element=None, base=None):
        self.defines = {}
        self.starts = []
        if element is not None:
            self.take(element, base, set(), frozenset())
        else:
            self.load(path, set())

    def load(self, path, seen, overridden=frozenset()):
        if path in seen:
            return
        seen.add(path)
        root = ET.parse(path).getroot()
        self.take(root, os.path.dirname(path), seen, overridden)

    def take(self, grammar, base, seen, overridden):
        self.base = base
        for child in grammar:
            tag = child.tag.replace(RNG, "")
            if tag == "start":
                if "start" not in overridden:
                    self.starts.extend(list(child))
            elif tag == "define":
                name = child.get("name")
                if name in overridden:
                    continue
                self.defines.setdefault(name, []).extend(list(child))
            elif tag == "include":
                # defines given inside the include replace those of the included file
                inner = {d.get("name") for d in child if d.tag == RNG + "define"}
                if any(d.tag == RNG + "start" for d in child):
                    inner.add("start")
                self.load(os.path.join(base, child.get("href")), seen, overridden | inner)
                self.take(child, base, seen, overridden)
            elif tag == "div":
                self.take(child, base, seen, overridden)


def qualified(name, ns):
    """'name', or '{x}name' in a namespace whose URI's next-to-last segment is x (.../qemu/1.0)."""
    name = name.split(":")[-1]
    if not ns:
        return name
    return "{%s}%s" % (ns.rstrip("/").split("/")[-2], name)


def names_of(node, ns):
    """Names an element or attribute pattern gives: '{*}' for any name outside the default namespace,
    nothing for other wildcards."""
    ns = node.get("ns", ns)
    if node.get("name") is not None:
        return [qualified(node.get("name"), ns if node.tag == RNG + "element" else "")]
    out = []
    for c in node:
        tag = c.tag.replace(RNG, "")
        if tag == "name":
            out.append(qualified(c.text.strip(), c.get("ns", ns)))
        elif tag == "choice":
            out.extend(names_of(c, ns))
        elif tag == "anyName":
            if any(e.tag == RNG + "except" and any(n.tag == RNG + "nsName" and n.get("ns") == ""
                                                   for n in e) for e in c):
                out.append("{*}")
            return out
        elif tag == "nsName":
            return out
        else:
            break
    return out


OPEN = None  # a value that may be any text (or any value of a datatype other than a plain number)

# The bounds of XML Schema's integer types; a <data> of one of them (with minInclusive/maxInclusive/
# minExclusive/maxExclusive, and patterns, which narrow only how a number is written) is a numeric range, kept as ('range', low, high) among the
# values, so that ranges are compared as lists are.
INF = float("inf")
INTEGER_TYPES = {
    "byte": (-2 ** 7, 2 ** 7 - 1), "short": (-2 ** 15, 2 ** 15 - 1), "int": (-2 ** 31, 2 ** 31 - 1),
    "long": (-2 ** 63, 2 ** 63 - 1), "unsignedByte": (0, 2 ** 8 - 1), "unsignedShort": (0, 2 ** 16 - 1),
    "unsignedInt": (0, 2 ** 32 - 1), "unsignedLong": (0, 2 ** 64 - 1), "integer": (-INF, INF),
    "nonNegativeInteger": (0, INF), "positiveInteger": (1, INF), "nonPositiveInteger": (-INF, 0),
    "negativeInteger": (-INF, -1),
}


def data_range(p):
    """('range', low, high) for a <data> of an integer type (bounds and patterns as parameters); OPEN else."""
    bounds = INTEGER_TYPES.get(p.get("type"))
    if bounds is None:
        return OPEN
    low, high = bounds
    for param in p:
        if param.tag != RNG + "param":
            return OPEN  # an <except>
        name, text = param.get("name"), (param.text or "").strip()
        if name == "pattern":
            continue  # a pattern narrows only how the number is written, not which numbers
        try:
            v = int(text, 0)
        except ValueError:
            return OPEN
        if name == "minInclusive":
            low = max(low, v)
        elif name == "maxInclusive":
            high = min(high, v)
        elif name == "minExclusive":
            low = max(low, v + 1)
        elif name == "maxExclusive":
            high = min(high, v - 1)
        else:
            return OPEN  # a length: not a plain number
    return ("range", low, high)


def is_range(v):
    return isinstance(v, tuple)


def as_int(v):
    try:
        return int(v, 10)
    except ValueError:
        return None


def covers(side, v):
    """Whether the values of side (a set of strings and ranges) take v (a string or a range)."""
    ranges = [r for r in side if is_range(r)]
    if is_range(v):
        # a range is covered by the ranges of side joined end to end, and by the numbers side lists
        low, high = v[1], v[2]
        for r in sorted(ranges, key=lambda r: r[1]):
            if r[1] <= low <= r[2]:
                if r[2] == INF:
                    return True  # an unbounded range takes all above low
                low = r[2] + 1
        while low <= high and low != INF and str(low) in side:
            low += 1
        return low > high
    if v in side:
        return True
    n = as_int(v)
    return n is not None and any(r[1] <= n <= r[2] for r in ranges)


def show(v):
    if not is_range(v):
        return v
    return "[%s..%s]" % ("" if v[1] == -INF else v[1], "" if v[2] == INF else v[2])


def add_values(values, key, vals):
    if vals is OPEN or values.get(key, set()) is OPEN:
        values[key] = OPEN
    else:
        values.setdefault(key, set()).update(vals)


def values_of(grammar, pats, visiting=frozenset()):
    """The literal values a value pattern allows, or OPEN when it allows other text too; None of the
    attributes or child elements it holds count."""
    out = set()
    for p in pats:
        tag = p.tag.replace(RNG, "")
        if tag == "value":
            out.add((p.text or "").strip())
        elif tag == "data":
            r = data_range(p)
            if r is OPEN:
                return OPEN
            out.add(r)
        elif tag == "text":
            return OPEN
        elif tag in ("ref", "parentRef"):
            if p.get("name") in visiting:
                continue
            v = values_of(grammar, grammar.defines.get(p.get("name"), []), visiting | {p.get("name")})
            if v is OPEN:
                return OPEN
            out |= v
        elif tag in ("element", "attribute", "name", "anyName", "nsName", "param", "except", "empty",
                     "notAllowed", "grammar", "externalRef"):
            continue
        else:
            v = values_of(grammar, list(p), visiting)
            if v is OPEN:
                return OPEN
            out |= v
    return out


def walk(grammar, found=None, parent_names=("",), ns="", values=None):
    """Returns the set of 'parent>child' and 'element@attribute' names the grammar defines; fills values
    with what each 'element@attribute' and 'element#text' may hold (see values_of)."""
    found = set() if found is None else found
    values = {} if values is None else values
    done = set()
    pending = []

    def content(pats, parent_names, ns, visiting):
        for p in pats:
            tag = p.tag.replace(RNG, "")
            pns = p.get("ns", ns)
            if tag == "element":
                if [c.tag for c in p if c.tag not in (RNG + "name", RNG + "choice")] == [RNG + "notAllowed"]:
                    continue  # an element that may never appear (libvirt's private data placeholders)
                names = names_of(p, ns)
                for n in names:
                    for parent in parent_names:
                        found.add("%s>%s" % (parent, n))
                names = [n for n in names if n != "{*}"]
                if names and id(p) not in done:
                    done.add(id(p))
                    pending.append((p, tuple(names), pns))
            elif tag == "attribute":
                body = list(p) if p.get("name") is not None else list(p)[1:]
                vals = values_of(grammar, body) if body else OPEN
                for n in names_of(p, ""):
                    for parent in parent_names:
                        found.add("%s@%s" % (parent, n))
                        add_values(values, "%s@%s" % (parent, n), vals)
            elif tag in ("ref", "parentRef"):
                name = p.get("name")
                if (name, parent_names) in visiting:
                    continue
                content(grammar.defines.get(name, []), parent_names, pns,
                        visiting | {(name, parent_names)})
            elif tag == "grammar":
                walk(Grammar(element=p, base=grammar.base), found, parent_names, pns, values)
            elif tag in ("name", "anyName", "nsName", "value", "data", "param", "text", "empty",
                         "notAllowed", "except", "externalRef"):
                continue
            else:
                content(list(p), parent_names, pns, visiting)

    content(grammar.starts, parent_names, ns, frozenset())
    while pending:
        el, names, ens = pending.pop()
        body = list(el) if el.get("name") is not None else list(el)[1:]
        content(body, names, ens, frozenset())
        vals = values_of(grammar, body)
        if vals is OPEN or vals:
            for n in names:
                add_values(values, "%s#text" % n, vals)
    return found


def gap(want, have):
    """Names of want that have lacks. An element in another namespace counts as defined where ours takes
    any element outside the default namespace ('{*}'), and then so does all that it holds."""
    covered = set()
    for n in want:
        parent, sep, child = n.partition(">")
        if sep and child.startswith("{") and not parent.startswith("{") and "%s>{*}" % parent in have:
            covered.add(child[1:child.index("}")])
    out = []
    for n in want - have:
        parent = n.split(">")[0].split("@")[0]
        child = n.partition(">")[2]
        space = parent if parent.startswith("{") else child
        if space.startswith("{") and space[1:space.index("}")] in covered:
            continue
        out.append(n)
    return sorted(out)


def value_gaps(want, have):
    """Values libvirt allows and we refuse: for each name both grammars close to a list of values, the
    values of libvirt's list missing from ours. Where libvirt takes any text and we a list, that is told
    apart as 'ours closed' (libvirt often writes a list as a pattern)."""
    missing, closed, wider, numbers = [], [], [], []
    for key in sorted(want.keys() & have.keys()):
        theirs, ours = want[key], have[key]
        if ours is OPEN:
            if theirs is not OPEN and all(is_range(v) for v in theirs):
                numbers.append(key)  # a number range of libvirt's that ours leaves as text
            elif theirs is not OPEN:
                wider.append(key)
            continue
        if theirs is OPEN:
            closed.append(key)
            continue
        # A range of libvirt's that ours narrows is told apart like a list where libvirt's is open: its
        # schemas often take a wider type (integer) than its parser (unsigned); a value of a list is not.
        lacking = sorted((v for v in theirs if not is_range(v) and not covers(ours, v)), key=str)
        narrowed = sorted((show(v) for v in theirs if is_range(v) and not covers(ours, v)), key=str)
        beyond = sorted((show(v) for v in ours if not covers(theirs, v)), key=str)
        if lacking:
            missing.append("%s=%s" % (key, "|".join(lacking)))
        if narrowed:
            closed.append("%s=%s" % (key, "|".join(narrowed)))
        if beyond:
            wider.append("%s=%s" % (key, "|".join(beyond)))
    return missing, closed, wider, numbers


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ours, theirs = args
    if not os.path.isfile(os.path.join(theirs, "domain.rng")):
        print("libvirt's schemas not found in %s, skipping" % theirs)
        return 77
    missing = []
    for kind, (our_file, their_file) in KINDS.items():
        have_values, want_values = {}, {}
        have = walk(Grammar(os.path.join(ours, our_file)), values=have_values)
        want = walk(Grammar(os.path.join(theirs, their_file)), values=want_values)
        lacking = gap(want, have)
        lacking_values, closed, wider, numbers = value_gaps(want_values, have_values)
        missing.extend("%s: %s" % (kind, n) for n in lacking)
        missing.extend("%s: value %s" % (kind, n) for n in lacking_values)
        missing.extend("%s: ours accepts beyond libvirt's list or range: %s" % (kind, n) for n in wider)
        missing.extend("%s: ours takes any text where libvirt's is a number range: %s" % (kind, n) for n in numbers)
        print("%-11s libvirt %5d names, ours %5d, missing %d; values missing %d, ours wider %d, ours any text "
              "where libvirt's is a number range %d (ours narrower: %d)"
              % (kind, len(want), len(have), len(lacking), len(lacking_values), len(wider), len(numbers),
                 len(closed)))
        if verbose:
            for n in closed:
                print("  ours narrower: %s" % n)
    for line in missing:
        print(line)
    print("%d names or values missing or beyond libvirt's" % len(missing))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
