/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* What each fuzz target does with one input, shared by the libFuzzer harnesses (tests/fuzz/fuzz-*.c,
 * built with -Dfuzz=true) and the regression replay (tests/unit/test-fuzz-regressions.c, in the regular
 * suite). Each returns 1 if the input was accepted, 0 if refused; a broken promise (a refusal without a
 * message, a definition whose own output is refused or formats differently) aborts with a description
 * on stderr, so that the fuzzer records it as a crash. */

/* The bytes as a D-Bus string argument: everything up to the first NUL. */
int fuzz_domain(const uint8_t *data, size_t size);  /* DefineDomain/CreateDomain: parse, validate, format, parse again */
int fuzz_device(const uint8_t *data, size_t size);  /* AttachDevice */
int fuzz_network(const uint8_t *data, size_t size); /* DefineNetwork/CreateNetwork */
int fuzz_nodedev(const uint8_t *data, size_t size); /* node device documents */
/* Bytes QEMU writes on its monitor socket (greeting, replies, events), read by qemu-monitor.c. */
int fuzz_qmp(const uint8_t *data, size_t size);
/* One message from the kernel's uevent socket, as host_uevent_parse() gets it. */
int fuzz_uevent(const uint8_t *data, size_t size);

/* D-Bus method calls (path, interface, member, arguments for its signature) to an in-process virtbusd
 * with the test driver, started on first use (fuzz-dbus-target.c; needs the bus library). */
int fuzz_dbus(const uint8_t *data, size_t size);
/* Starts that daemon (in temporary directories) now rather than on the first call. */
void fuzz_dbus_start(void);

/* Quiet logging, once (the harnesses call it at start-up; VIRTBUS_FUZZ_DEBUG=1 keeps debug logs). */
void fuzz_setup(void);

/* The two libFuzzer entry points of a harness that runs target on each input. */
#define FUZZ_LIBFUZZER_TARGET(target)                                                                   \
        int LLVMFuzzerInitialize(int *argc, char ***argv);                                              \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                   \
        int LLVMFuzzerInitialize(int *argc, char ***argv) {                                             \
                fuzz_setup();                                                                           \
                return 0;                                                                               \
        }                                                                                               \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                  \
                (void) target(data, size);                                                              \
                return 0;                                                                               \
        }
