/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: see tests/fuzz/README.md and fuzz_device() in fuzz-targets.c. */
#include "tests/fuzz/fuzz-targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        (void) fuzz_device(data, size);
        return 0;
}
