#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every element, attribute and listed value that libvirt's schemas (in the shared corpus) define for the
# kinds virtbus serves must be defined by ours too (tests/schema-coverage.py). Exit 77 without the corpus.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
shared=$(sh "$here/shared-dir.sh")
[ -f "$shared/corpus/libvirt/schemas/domain.rng" ] || { echo "libvirt's schemas not found, skipping"; exit 77; }
# No kind takes a value beyond libvirt's lists and ranges, nor any text where libvirt's is a number range.
exec python3 "$here/schema-coverage.py" "$here/../data/schemas" "$shared/corpus/libvirt/schemas"
