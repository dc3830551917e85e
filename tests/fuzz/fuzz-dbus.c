/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: D-Bus method calls to an in-process virtbusd (test driver), started once here; see
 * tests/fuzz/README.md and fuzz-dbus-target.c. */
#include "tests/fuzz/fuzz-targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        fuzz_dbus_start();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        (void) fuzz_dbus(data, size);
        return 0;
}
