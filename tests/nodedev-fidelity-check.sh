#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Scores `virtbus-xml format nodedev` against the nodedev category of the libvirt conformance corpus
# and fails below tests/fidelity-floor-nodedev.txt (a value that only ever goes up). The category is
# small (about 40 documents, under a second), so this runs in every test run. Exit 77 without the corpus.
set -eu
tool=${1:?usage: nodedev-fidelity-check.sh VIRTBUS-XML}
here=$(cd "$(dirname "$0")" && pwd)
shared=$(sh "$here/shared-dir.sh")
[ -d "$shared/corpus/libvirt" ] && [ -f "$shared/tools/xml-fidelity.py" ] || { echo "corpus not found, skipping"; exit 77; }
out=$(python3 "$shared/tools/xml-fidelity.py" "$shared/corpus/libvirt" --category nodedev --jobs 2 -- "$tool" format)
echo "$out"
got=$(echo "$out" | sed -n 's/^fidelity: \([0-9.]*\)%$/\1/p')
floor=$(cat "$here/fidelity-floor-nodedev.txt")
python3 -c "import sys; g, f = float(sys.argv[1]), float(sys.argv[2]); print('nodedev fidelity %.1f%%, floor %.1f%%' % (g, f)); sys.exit(0 if g >= f else 1)" "$got" "$floor" || exit 1
# The inputs libvirt refuses: the refused count per category only goes up.
echo "$out" | python3 "$here/refused-floor.py" "$here/fidelity-floor-refused.txt"
