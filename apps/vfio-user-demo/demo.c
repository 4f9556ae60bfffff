/* SPDX-License-Identifier: MIT */
/*
 * vfio-user-demo: the vfio-user library end to end.
 *
 *   vfio-user-demo                     server and client in two processes, one walkthrough
 *   vfio-user-demo server SOCKET       serve the copy-engine device until SIGINT/SIGTERM
 *   vfio-user-demo client SOCKET       run the walkthrough against SOCKET
 *   vfio-user-demo bench SOCKET [SEC]  REGION_WRITE/READ round trips per second
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo_device.h"
#include "demo_driver.h"
#include "vnvme/vfio_user_client.h"

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int serve(const char *path)
{
    int err = 0;
    struct demo_device *d = demo_device_create(path, &err);
    if (!d) {
        fprintf(stderr, "vfio-user-demo: cannot serve on %s: %s\n", path, strerror(-err));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("serving the copy-engine device on %s\n", path);
    fflush(stdout);
    int rc = demo_device_run(d, &stop);
    printf("server: %" PRIu64 " commands executed, exiting\n", demo_device_commands(d));
    demo_device_destroy(d);
    return rc < 0 ? 1 : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(const char *path, double seconds)
{
    int err;
    struct vfio_user_client *c = vfio_user_client_connect(path, 5000, &err);
    if (!c) {
        fprintf(stderr, "bench: connect %s: %s\n", path, strerror(-err));
        return 1;
    }
    struct {
        const char *name;
        int kind;
    } cases[] = {{"REGION_WRITE (4 bytes, with reply)", 0},
                 {"REGION_READ (4 bytes)", 1},
                 {"REGION_WRITE posted (No_reply) + final read", 2}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint64_t n = 0;
        double t0 = now_s(), t;
        uint32_t v = 0;
        do {
            for (int i = 0; i < 1000; i++, n++) {
                v++;
                int rc;
                if (cases[k].kind == 0)
                    rc = vfio_user_client_region_write(c, VFIO_PCI_BAR0_REGION_INDEX, DEMO_REG_PATTERN, &v, 4);
                else if (cases[k].kind == 1)
                    rc = vfio_user_client_region_read(c, VFIO_PCI_BAR0_REGION_INDEX, DEMO_REG_PATTERN, &v, 4);
                else
                    rc = vfio_user_client_region_write_posted(c, VFIO_PCI_BAR0_REGION_INDEX, DEMO_REG_PATTERN,
                                                              &v, 4);
                if (rc) {
                    fprintf(stderr, "bench: %s failed: %s\n", cases[k].name, strerror(-rc));
                    vfio_user_client_close(c);
                    return 1;
                }
            }
            if (cases[k].kind == 2) {
                /* A read after posted writes proves they were all applied, in order. */
                uint32_t back = 0;
                if (vfio_user_client_region_read(c, VFIO_PCI_BAR0_REGION_INDEX, DEMO_REG_PATTERN, &back, 4) ||
                    back != v) {
                    fprintf(stderr, "bench: posted writes lost (%u != %u)\n", back, v);
                    vfio_user_client_close(c);
                    return 1;
                }
            }
            t = now_s() - t0;
        } while (t < seconds);
        printf("%-46s %10.0f per second (%" PRIu64 " in %.2f s, %.2f us each)\n", cases[k].name, (double)n / t, n,
               t, t * 1e6 / (double)n);
    }
    vfio_user_client_close(c);
    return 0;
}

static int both(void)
{
    char dir[] = "/tmp/vfio-user-demo.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[sizeof(dir) + 16];
    snprintf(path, sizeof(path), "%s/cntrl", dir);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(serve(path));
    /* Wait for the socket to appear. */
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
        usleep(10000);
    int rc = demo_walkthrough(path, stdout);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    rmdir(dir);
    if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("demo: OK\n");
        return 0;
    }
    printf("demo: FAILED\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return both();
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return serve(argv[2]);
    if (argc == 3 && strcmp(argv[1], "client") == 0)
        return demo_walkthrough(argv[2], stdout) ? 1 : 0;
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "bench") == 0)
        return bench(argv[2], argc == 4 ? atof(argv[3]) : 3.0);
    fprintf(stderr,
            "usage: vfio-user-demo                    (server + client walkthrough)\n"
            "       vfio-user-demo server SOCKET\n"
            "       vfio-user-demo client SOCKET\n"
            "       vfio-user-demo bench SOCKET [SECONDS]\n");
    return 2;
}
