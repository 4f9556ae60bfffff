/* SPDX-License-Identifier: MIT */
/*
 * vnvme_unix_listen: a socket name that exists accepts connections, stale
 * sockets are replaced, live ones and other files are refused, nothing is
 * left behind, long paths still work.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/unix_listen.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/vnvme-listen.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    return rmdir(dir);
}

static int dir_entries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int try_connect(const char *path)
{
    struct sockaddr_un a;
    assert_int_equal(vnvme_unix_addr(&a, path), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

struct watcher {
    const char *path;
    atomic_bool stop;
    atomic_int seen, refused;
    atomic_int round; /* bumped before each listener is taken down */
};

/* What a client waiting for the daemon does: wait for the file, then connect at once. */
static void *watch(void *arg)
{
    struct watcher *w = arg;
    struct stat st;
    while (!atomic_load(&w->stop)) {
        int round = atomic_load(&w->round);
        if (stat(w->path, &st) != 0)
            continue;
        int rc = try_connect(w->path);
        if (rc == 0)
            atomic_fetch_add(&w->seen, 1);
        else if (rc == -ECONNREFUSED && atomic_load(&w->round) == round)
            atomic_fetch_add(&w->refused, 1);
        /* Otherwise the round's listener was taken down while we connected: not what is tested. */
    }
    return NULL;
}

/*
 * Runs first (the temporary names count calls per process): a socket file
 * left under the temporary name by a crashed process that had our pid does
 * not stop the listener, and is gone afterwards.
 */
static void test_stale_temporary_name(void **state)
{
    (void)state;
    char tmp[128], path[128];
    snprintf(tmp, sizeof(tmp), "%s/.vnvme-listen-%d-0", dir, (int)getpid());
    snprintf(path, sizeof(path), "%s/t", dir);
    struct sockaddr_un a;
    assert_int_equal(vnvme_unix_addr(&a, tmp), 0);
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(stale, (struct sockaddr *)&a, sizeof(a)), 0);
    close(stale);
    int fd = vnvme_unix_listen(path, 4, NULL, "test");
    assert_true(fd >= 0);
    assert_int_equal(try_connect(path), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(dir_entries(), 1);
    close(fd);
    unlink(path);
}

static void test_visible_name_accepts(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/s", dir);
    struct watcher w = {.path = path};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, watch, &w), 0);
    for (int round = 0; round < 2000; round++) {
        int fd = vnvme_unix_listen(path, 4, NULL, "test");
        assert_true(fd >= 0);
        atomic_fetch_add(&w.round, 1);
        unlink(path);
        close(fd);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    printf("connected %d times, refused %d times\n", atomic_load(&w.seen), atomic_load(&w.refused));
    assert_int_equal(atomic_load(&w.refused), 0);
    assert_int_equal(dir_entries(), 0);
}

static void test_mode_and_nothing_left_behind(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/mode", dir);
    int fd = vnvme_unix_listen(path, 4, NULL, "test");
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(dir_entries(), 1);
    assert_int_equal(try_connect(path), 0);
    close(fd);
    unlink(path);
}

/* A group grant: 0660 and the group, whatever the umask, already on the name clients see. */
static void test_group_access(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/grp", dir);
    gid_t group = 4321;
    mode_t old = umask(027);
    int fd = vnvme_unix_listen(path, 4, &group, "test");
    umask(old);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    if (geteuid() == 0)
        assert_int_equal(st.st_gid, 4321);
    assert_int_equal(try_connect(path), 0);
    assert_int_equal(dir_entries(), 1);
    close(fd);
    unlink(path);
}

static void test_stale_live_and_foreign(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/x", dir);
    int live = vnvme_unix_listen(path, 4, NULL, "test");
    assert_true(live >= 0);
    /* A second server on a live name is refused and does not disturb the first. */
    assert_int_equal(vnvme_unix_listen(path, 4, NULL, "test"), -EADDRINUSE);
    assert_int_equal(try_connect(path), 0);
    assert_int_equal(dir_entries(), 1);
    /* The first one dies without removing its file: the next server replaces it. */
    close(live);
    assert_int_equal(try_connect(path), -ECONNREFUSED);
    int fd = vnvme_unix_listen(path, 4, NULL, "test");
    assert_true(fd >= 0);
    assert_int_equal(try_connect(path), 0);
    close(fd);
    unlink(path);
    /* A regular file is not ours to remove. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("keep", f);
    fclose(f);
    assert_int_equal(vnvme_unix_listen(path, 4, NULL, "test"), -EEXIST);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 4);
    assert_int_equal(dir_entries(), 1);
    unlink(path);
}

static void test_path_lengths(void **state)
{
    (void)state;
    struct sockaddr_un a;
    const size_t max = sizeof(a.sun_path) - 1;
    char path[sizeof(a.sun_path) + 8];
    /* The longest name that fits: no room for a temporary name beside it, still served. */
    int n = snprintf(path, sizeof(path), "%s/", dir);
    memset(path + n, 'l', max - (size_t)n);
    path[max] = '\0';
    int fd = vnvme_unix_listen(path, 4, NULL, "test");
    assert_true(fd >= 0);
    assert_int_equal(try_connect(path), 0);
    assert_int_equal(dir_entries(), 1);
    close(fd);
    unlink(path);
    /* One byte more cannot be a socket address. */
    path[max] = 'l';
    path[max + 1] = '\0';
    assert_int_equal(vnvme_unix_listen(path, 4, NULL, "test"), -ENAMETOOLONG);
    assert_int_equal(vnvme_unix_addr(&a, path), -ENAMETOOLONG);
    assert_int_equal(dir_entries(), 0);
    /* A missing directory is an error, not a crash or a file elsewhere. */
    snprintf(path, sizeof(path), "%s/no/such", dir);
    assert_int_equal(vnvme_unix_listen(path, 4, NULL, "test"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_temporary_name),
        cmocka_unit_test(test_visible_name_accepts),
        cmocka_unit_test(test_mode_and_nothing_left_behind),
        cmocka_unit_test(test_group_access),
        cmocka_unit_test(test_stale_live_and_foreign),
        cmocka_unit_test(test_path_lengths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
