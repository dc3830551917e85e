#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# data/schemas/*.rng are generated from src/conf/schema-src/*.rngs: fails when one was edited by hand or
# not generated again after its source changed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$root/src/conf/schema-src/rngs2rng.py" "$root"/src/conf/schema-src/*.rngs "$out"
for f in "$out"/*.rng; do
        cmp -s "$f" "$root/data/schemas/$(basename "$f")" || {
                echo "data/schemas/$(basename "$f") differs from what src/conf/schema-src generates:"
                diff -u "$root/data/schemas/$(basename "$f")" "$f" | head -40
                echo "run: python3 src/conf/schema-src/rngs2rng.py src/conf/schema-src/*.rngs data/schemas"
                exit 1
        }
done
echo "$(ls "$out" | wc -l) schemas match their sources"
