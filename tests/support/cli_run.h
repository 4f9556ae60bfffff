/* SPDX-License-Identifier: MIT */
/* The built vnvme CLI (path in $VNVME) run as a process, its output and exit status captured. */
#ifndef VNVME_TEST_CLI_RUN_H
#define VNVME_TEST_CLI_RUN_H

struct cli_run {
    int status; /* exit status; 128 + signal when a signal ended it */
    char out[1 << 16];
    char err[1 << 14];
};

/* Runs $VNVME with args (NULL-ended); output beyond the buffers is dropped. 0, or -1 when it could not run. */
int cli_run(struct cli_run *r, const char *const *args);

#endif
