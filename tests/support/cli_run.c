/* SPDX-License-Identifier: MIT */
#include "cli_run.h"

#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Both pipes at once: a child blocked on a full stderr pipe would never finish its stdout. */
static void drain(int out_fd, char *out, size_t out_cap, int err_fd, char *err, size_t err_cap)
{
    struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    char *buf[2] = {out, err};
    size_t cap[2] = {out_cap - 1, err_cap - 1}, len[2] = {0, 0};
    int open_fds = 2;
    while (open_fds > 0 && poll(p, 2, -1) > 0) {
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            char scratch[4096];
            size_t room = cap[i] - len[i];
            ssize_t n = room ? read(p[i].fd, buf[i] + len[i], room) : read(p[i].fd, scratch, sizeof(scratch));
            if (n <= 0) {
                p[i].fd = -1;
                open_fds--;
            } else if (room) {
                len[i] += (size_t)n;
            }
        }
    }
    out[len[0]] = '\0';
    err[len[1]] = '\0';
}

int cli_run(struct cli_run *r, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = getenv("VNVME");
    if (argv[0] == NULL)
        return -1;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int out[2], err[2];
    if (pipe(out) < 0)
        return -1;
    if (pipe(err) < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    if (rc == 0)
        drain(out[0], r->out, sizeof(r->out), err[0], r->err, sizeof(r->err));
    close(out[0]);
    close(err[0]);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}
