/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "conf/domain-conf.h"
#include "util/error.h"

/* The test driver's simulated serial consoles: the caller's end of a socket pair, whose other end a small
 * non-blocking handler on the event loop serves like a guest would: a boot banner, a login prompt, and
 * an echo of what is typed. One session per console; a forced open ends the previous one (end-of-file). */
typedef struct TestConsole TestConsole;

/* Opens the console device ("": the first) of the running guest live; *list holds the guest's sessions. */
int test_console_open(sd_event *event, TestConsole **list, const DomainDef *live, const char *device, bool force,
                      int *ret_fd, VbError *reterr);
/* Ends every session (the guest stopped): their holders read end-of-file. */
void test_console_close_all(TestConsole **list);
