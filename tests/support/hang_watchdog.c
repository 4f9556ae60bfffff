/* SPDX-License-Identifier: MIT */
#include "hang_watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TRACKED 16

static atomic_int tracked[MAX_TRACKED];
static pthread_once_t once = PTHREAD_ONCE_INIT;

void hang_watchdog_track(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&tracked[i], &free_slot, (int)pid))
            return;
    }
}

void hang_watchdog_untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        int p = (int)pid;
        atomic_compare_exchange_strong(&tracked[i], &p, 0);
    }
}

static void dump_stacks(pid_t pid, const char *what)
{
    char pid_s[16];
    snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
    fprintf(stderr, "==== hang watchdog: threads of %s (pid %d)\n", what, (int)pid);
    fflush(stderr);
    pid_t g = fork();
    if (g == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execlp("gdb", "gdb", "-batch", "-nx", "-p", pid_s, "-ex", "info threads", "-ex", "thread apply all bt",
               (char *)NULL);
        fprintf(stderr, "hang watchdog: cannot run gdb\n");
        _exit(127);
    }
    if (g > 0)
        waitpid(g, NULL, 0);
}

static void *watch(void *arg)
{
    unsigned seconds = (unsigned)(uintptr_t)arg;
    /* sleep() may end early on a signal; the deadline is what counts. */
    for (unsigned left = seconds; left > 0;)
        left = sleep(left);
    fprintf(stderr, "==== hang watchdog: still running after %u s; stacks follow\n", seconds);
    dump_stacks(getpid(), "the test");
    for (int i = 0; i < MAX_TRACKED; i++) {
        int p = atomic_load(&tracked[i]);
        if (p > 0)
            dump_stacks(p, "a daemon it started");
    }
    fprintf(stderr, "==== hang watchdog: end of stacks\n");
    return NULL;
}

static void start(void)
{
    const char *s = getenv("VNVME_TEST_HANG_DUMP_S");
    unsigned long seconds = s ? strtoul(s, NULL, 10) : 0;
    if (seconds == 0)
        return;
    /* gdb is our child; under Yama's ptrace_scope=1 a child may trace us only when we say so. */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watch, (void *)(uintptr_t)seconds) != 0)
        fprintf(stderr, "hang watchdog: cannot start its thread\n");
    pthread_attr_destroy(&attr);
}

void hang_watchdog_arm(void)
{
    pthread_once(&once, start);
}
