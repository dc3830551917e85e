#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Scores virtbus-xml against the libvirt conformance corpus and fails if the fidelity figure drops
# below tests/fidelity-floor.txt (a value that only ever goes up), or if fewer of the inputs libvirt refuses are
# refused than tests/fidelity-floor-refused.txt says. Exit 77 (skip) without the corpus.
set -eu
# The scorer runs the tool once per document (thousands): under `virtbus-xml serve` each of those runs is a
# child of one process that compiled the schemas once (tests/README.md).
tool=${1:?usage: fidelity-check.sh VIRTBUS-XML [CATEGORIES FLOOR-FILE]}
here=$(cd "$(dirname "$0")" && pwd)
# Optional: other categories with their own floor (networks: tests/fidelity-floor-network.txt).
categories=${2:-domain,device}
floor_file=${3:-$here/fidelity-floor.txt}
shared=$(sh "$here/shared-dir.sh")
[ -d "$shared/corpus/libvirt" ] && [ -f "$shared/tools/xml-fidelity.py" ] || { echo "corpus not found, skipping"; exit 77; }
# Domains and devices only: there the schema compile of each run outweighs the server's fork (the small
# kinds' schemas compile faster than that).
serve=
case $categories in *domain*|*device*) serve="$tool serve --" ;; esac
out=$($serve python3 "$shared/tools/xml-fidelity.py" "$shared/corpus/libvirt" --category "$categories" --jobs 2 -- "$tool" format)
echo "$out"
got=$(echo "$out" | sed -n 's/^fidelity: \([0-9.]*\)%$/\1/p')
floor=$(cat "$floor_file")
python3 -c "import sys; g, f = float(sys.argv[1]), float(sys.argv[2]); print('fidelity %.1f%%, floor %.1f%%' % (g, f)); sys.exit(0 if g >= f else 1)" "$got" "$floor" || exit 1
# The inputs libvirt refuses: the refused count per category only goes up.
echo "$out" | python3 "$here/refused-floor.py" "$here/fidelity-floor-refused.txt"
