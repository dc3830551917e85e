#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes a libFuzzer dictionary (-dict=FILE) of the element names, attribute names and fixed values our
RelaxNG schemas (data/schemas/*.rng) know: byte mutations then build documents that get past the schema.
Usage: gen-dict.py OUTPUT SCHEMA..."""
import sys
import xml.etree.ElementTree as ET

RNG = '{http://relaxng.org/ns/structure/1.0}'


def escape(s):
    return ''.join(c if 32 <= ord(c) < 127 and c not in '"\\' else '\\x%02x' % ord(c) for c in s)


def main():
    tokens = set()
    for path in sys.argv[2:]:
        for el in ET.parse(path).iter():
            name = el.get('name')
            if el.tag == RNG + 'element' and name:
                tokens.update(('<%s>' % name, '<%s ' % name, '</%s>' % name))
            elif el.tag == RNG + 'attribute' and name:
                tokens.add(" %s='" % name)
            elif el.tag == RNG + 'value' and el.text and len(el.text) < 64:
                tokens.add(el.text)
    with open(sys.argv[1], 'w') as f:
        for t in sorted(tokens):
            f.write('"%s"\n' % escape(t))


main()
