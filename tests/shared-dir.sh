#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Prints the directory that holds libvirt's corpus (corpus/libvirt) and the scorer (tools/): ../shared
# beside the repository, or $VIRTBUS_SHARED_DIR. The one place the tests look it up: the shell checks
# call it, the C tests through tests/shared-dir.h. Whether the directory exists is for the caller to
# check (absent: the checks that need it skip).
if [ -n "${VIRTBUS_SHARED_DIR:-}" ]; then
        echo "$VIRTBUS_SHARED_DIR"
else
        echo "$(cd "$(dirname "$0")/.." && pwd)/../shared"
fi
