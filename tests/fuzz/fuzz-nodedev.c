/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: see tests/fuzz/README.md and fuzz_nodedev() in fuzz-targets.c. */
#include "tests/fuzz/fuzz-targets.h"

FUZZ_LIBFUZZER_TARGET(fuzz_nodedev)
