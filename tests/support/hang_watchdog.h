/* SPDX-License-Identifier: MIT */
/*
 * A test that hangs is killed by the test runner's timeout and leaves only
 * "TIMEOUT" behind. When $VNVME_TEST_HANG_DUMP_S is set, a watchdog thread
 * prints, after that many seconds, every thread's stack of the test process
 * and of the daemons it started (gdb -batch), so the log of a run on another
 * machine says where it was stuck. Set it below the test's timeout.
 */
#ifndef VNVME_TEST_HANG_WATCHDOG_H
#define VNVME_TEST_HANG_WATCHDOG_H

#include <sys/types.h>

/* Starts the watchdog once per process if the variable asks for it; later calls do nothing. */
void hang_watchdog_arm(void);

/* Processes whose stacks the dump includes: a started daemon, until it is reaped. */
void hang_watchdog_track(pid_t pid);
void hang_watchdog_untrack(pid_t pid);

#endif
