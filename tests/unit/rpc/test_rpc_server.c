/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 framing through the real unix socket: the server runs on a
 * thread (as on the daemon's control thread), the test is the client.
 * Methods reach real bdevs and the fake tgt.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fake_tgt.h"
#include "vnvmed.h"

/* Guards against a hung test only; nothing asserts on time. */
#define IO_GUARD_MS 10000

static char dir[64];
static char sock_path[128];
static pthread_t server_thread;
static volatile int stop_server;

static void *serve(void *arg)
{
    (void)arg;
    rpc_server_run(&stop_server);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/vnvme-rpc-srv-XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* A missing parent directory is created by the server. */
    snprintf(sock_path, sizeof(sock_path), "%s/sub/rpc.sock", dir);
    assert_int_equal(rpc_server_start(sock_path, NULL), 0);
    stop_server = 0;
    assert_int_equal(pthread_create(&server_thread, NULL, serve, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_server = 1;
    pthread_join(server_thread, NULL);
    rpc_server_stop();
    fake_tgt_reset();
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    rmdir(sub);
    rmdir(dir);
    return 0;
}

static int connect_client(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_text(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0)
            return; /* the server may have closed on us: the reply tells */
        s += n;
        len -= (size_t)n;
    }
}

/* Read one newline-terminated reply; NULL on EOF. */
static struct json_object *read_reply(int fd)
{
    static char buf[1 << 16];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, IO_GUARD_MS), 1);
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n <= 0)
            return NULL;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            struct json_object *o = json_tokener_parse(buf);
            assert_non_null(o);
            return o;
        }
        len++;
        assert_true(len < sizeof(buf));
    }
}

/* Closed by the server: EOF, or ECONNRESET when it closed with our unread bytes still queued. */
static bool at_eof(int fd)
{
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, IO_GUARD_MS), 1);
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int error_code(struct json_object *r)
{
    struct json_object *e = NULL, *c = NULL;
    assert_true(json_object_object_get_ex(r, "error", &e));
    assert_true(json_object_object_get_ex(e, "code", &c));
    return json_object_get_int(c);
}

static const char *error_message(struct json_object *r)
{
    struct json_object *e = NULL, *m = NULL;
    json_object_object_get_ex(r, "error", &e);
    json_object_object_get_ex(e, "message", &m);
    return json_object_get_string(m);
}

static int reply_id(struct json_object *r)
{
    struct json_object *id = NULL;
    assert_true(json_object_object_get_ex(r, "id", &id));
    return id == NULL ? -1 : json_object_get_int(id);
}

static void test_socket_modes(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(sock_path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_simple_call(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":1}";
    send_text(fd, req, strlen(req));
    struct json_object *r = read_reply(fd);
    struct json_object *res = NULL, *ver = NULL, *jv = NULL;
    assert_true(json_object_object_get_ex(r, "result", &res));
    assert_true(json_object_object_get_ex(res, "version", &ver));
    assert_string_equal(json_object_get_string(ver), "vnvme 0.1.0");
    assert_true(json_object_object_get_ex(r, "jsonrpc", &jv));
    assert_string_equal(json_object_get_string(jv), "2.0");
    assert_int_equal(reply_id(r), 1);
    json_object_put(r);
    close(fd);
}

static void test_split_request(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"bdev_malloc_create\","
                      "\"params\":{\"name\":\"split\",\"num_blocks\":8,\"block_size\":512},\"id\":\"abc\"}";
    /* Byte by byte: the server must wait for the rest each time. */
    for (size_t i = 0; i < strlen(req); i++)
        send_text(fd, req + i, 1);
    struct json_object *r = read_reply(fd), *res = NULL, *id = NULL;
    assert_true(json_object_object_get_ex(r, "result", &res));
    assert_string_equal(json_object_get_string(res), "split");
    assert_true(json_object_object_get_ex(r, "id", &id));
    assert_string_equal(json_object_get_string(id), "abc");
    json_object_put(r);
    close(fd);
}

static void test_two_requests_one_write(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"framework_wait_init\",\"id\":1}\n"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"rpc_get_methods\",\"id\":2}";
    send_text(fd, req, strlen(req));
    struct json_object *r1 = read_reply(fd), *r2 = read_reply(fd);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_int_equal(reply_id(r1), 1);
    assert_int_equal(reply_id(r2), 2);
    json_object_put(r1);
    json_object_put(r2);
    close(fd);
}

/*
 * What SPDK's scripts/rpc.py (v26) sends for a vfio-user set-up, byte for
 * byte in shape: json.dumps(indent=2), no newline between requests, one
 * connection, the defaults it adds on its own (no_srq, c2h_success,
 * enable_nssr, namespace.hide_metadata, allow_unrecognized_csi,
 * multipath_opts...), then the calls of its save_config. Every one must
 * succeed: rpc.py fails on any "error" and needs a "result".
 */
static const char *const rpc_py_requests[] = {
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"rpc_get_methods\",\n  \"id\": 1,\n  \"params\": {\n"
    "    \"current\": false,\n    \"include_aliases\": false\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"spdk_get_version\",\n  \"id\": 2\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"bdev_malloc_create\",\n  \"id\": 3,\n  \"params\": {\n"
    "    \"num_blocks\": 131072,\n    \"block_size\": 512,\n    \"name\": \"Malloc0\",\n"
    "    \"md_interleave\": false,\n    \"dif_is_head_of_md\": false\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"nvmf_create_transport\",\n  \"id\": 4,\n  \"params\": {\n"
    "    \"trtype\": \"VFIOUSER\",\n    \"zcopy\": false,\n    \"no_srq\": false,\n    \"c2h_success\": true,\n"
    "    \"dif_insert_or_strip\": false,\n    \"no_wr_batching\": false,\n    \"disable_mappable_bar0\": false,\n"
    "    \"disable_adaptive_irq\": false,\n    \"disable_shadow_doorbells\": false,\n"
    "    \"disable_command_passthru\": false\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"nvmf_create_subsystem\",\n  \"id\": 5,\n  \"params\": {\n"
    "    \"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n    \"allow_any_host\": true,\n    \"ana_reporting\": false,\n"
    "    \"passthrough\": false,\n    \"enable_nssr\": false\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"nvmf_subsystem_add_ns\",\n  \"id\": 6,\n  \"params\": {\n"
    "    \"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n    \"namespace\": {\n      \"bdev_name\": \"Malloc0\",\n"
    "      \"no_auto_visible\": false,\n      \"hide_metadata\": false\n    }\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"nvmf_subsystem_add_listener\",\n  \"id\": 7,\n  \"params\": {\n"
    "    \"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n    \"listen_address\": {\n      \"trtype\": \"VFIOUSER\",\n"
    "      \"traddr\": \"/var/run/vfio-user\",\n      \"trsvcid\": \"0\"\n    },\n    \"secure_channel\": false\n"
    "  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"nvmf_get_subsystems\",\n  \"id\": 8\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"bdev_get_bdevs\",\n  \"id\": 9\n}",
    /* save_config: the subsystems, then each one's config. */
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"framework_get_subsystems\",\n  \"id\": 10\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"framework_get_config\",\n  \"id\": 11,\n  \"params\": {\n"
    "    \"name\": \"bdev\"\n  }\n}",
    "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"framework_get_config\",\n  \"id\": 12,\n  \"params\": {\n"
    "    \"name\": \"nvmf\"\n  }\n}",
};

static void test_rpc_py_requests(void **state)
{
    (void)state;
    int fd = connect_client();
    size_t n = sizeof(rpc_py_requests) / sizeof(rpc_py_requests[0]);
    struct json_object *subsystems = NULL;
    for (size_t i = 0; i < n; i++) {
        send_text(fd, rpc_py_requests[i], strlen(rpc_py_requests[i]));
        struct json_object *r = read_reply(fd), *res = NULL, *err = NULL;
        assert_non_null(r);
        if (json_object_object_get_ex(r, "error", &err))
            fail_msg("request %zu refused: %s", i + 1, json_object_to_json_string(err));
        assert_true(json_object_object_get_ex(r, "result", &res));
        assert_int_equal(reply_id(r), (int)i + 1);
        if (i + 1 == 10)
            subsystems = json_object_get(res);
        json_object_put(r);
    }
    /* framework_get_subsystems: every dependency before what depends on it (rpc.py's save_config needs it). */
    assert_non_null(subsystems);
    assert_int_equal(json_object_array_length(subsystems), 2);
    struct json_object *s0 = json_object_array_get_idx(subsystems, 0), *s1 = json_object_array_get_idx(subsystems, 1);
    struct json_object *name = NULL, *deps = NULL;
    assert_true(json_object_object_get_ex(s0, "subsystem", &name));
    assert_string_equal(json_object_get_string(name), "bdev");
    assert_true(json_object_object_get_ex(s0, "depends_on", &deps));
    assert_int_equal(json_object_array_length(deps), 0);
    assert_true(json_object_object_get_ex(s1, "subsystem", &name));
    assert_string_equal(json_object_get_string(name), "nvmf");
    assert_true(json_object_object_get_ex(s1, "depends_on", &deps));
    assert_string_equal(json_object_get_string(json_object_array_get_idx(deps, 0)), "bdev");
    json_object_put(subsystems);
    /* Names SPDK does not know stay unknown, and an unknown subsystem is SPDK's invalid-params error. */
    const char *bad = "{\"jsonrpc\":\"2.0\",\"method\":\"bdev_frobnicate_set_options\",\"id\":13}";
    send_text(fd, bad, strlen(bad));
    struct json_object *r = read_reply(fd);
    assert_int_equal(error_code(r), -32601);
    json_object_put(r);
    bad = "{\"jsonrpc\":\"2.0\",\"method\":\"framework_get_config\",\"id\":14,\"params\":{\"name\":\"vhost_blk\"}}";
    send_text(fd, bad, strlen(bad));
    r = read_reply(fd);
    assert_int_equal(error_code(r), -32602);
    json_object_put(r);
    close(fd);
}

static void test_notification_gets_no_reply(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"bdev_malloc_create\","
                      "\"params\":{\"name\":\"quiet\",\"num_blocks\":8,\"block_size\":512}}"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"no_such\"}"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"bdev_get_bdevs\",\"params\":{\"name\":\"quiet\"},\"id\":9}";
    send_text(fd, req, strlen(req));
    /* The first reply is the one to id 9, and the notification did run. */
    struct json_object *r = read_reply(fd), *res = NULL;
    assert_int_equal(reply_id(r), 9);
    assert_true(json_object_object_get_ex(r, "result", &res));
    assert_int_equal(json_object_array_length(res), 1);
    json_object_put(r);
    close(fd);
}

static void test_errors(void **state)
{
    (void)state;
    int fd = connect_client();
    static const struct {
        const char *req;
        int code;
        int id;
        const char *msg;
    } cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"method\":\"frob\",\"id\":1}", -32601, 1, "Method not found: frob"},
        {"{\"jsonrpc\":\"1.0\",\"method\":\"frob\",\"id\":2}", -32600, 2, "jsonrpc"},
        {"{\"jsonrpc\":\"2.0\",\"id\":3}", -32600, 3, "method"},
        {"{\"jsonrpc\":\"2.0\",\"method\":7,\"id\":4}", -32600, 4, "method"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"params\":5,\"id\":5}", -32600, 5, "params"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":{}}", -32600, -1, "id"},
        {"42", -32600, -1, "not an object"},
        {"[]", -32600, -1, "empty batch"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"bdev_malloc_create\",\"params\":{\"num_blocks\":1},\"id\":6}", -32602, 6,
         "missing parameter: block_size"},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"bdev_get_bdevs\",\"params\":{\"name\":\"x\"},\"id\":7}", -19, 7,
         "No such device"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        send_text(fd, cases[i].req, strlen(cases[i].req));
        send_text(fd, "\n", 1); /* ends the bare number */
        struct json_object *r = read_reply(fd);
        assert_non_null(r);
        assert_int_equal(error_code(r), cases[i].code);
        assert_int_equal(reply_id(r), cases[i].id);
        if (strstr(error_message(r), cases[i].msg) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, error_message(r), cases[i].msg);
        json_object_put(r);
    }
    close(fd);
}

static void test_batch(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "[{\"jsonrpc\":\"2.0\",\"method\":\"framework_wait_init\",\"id\":1},"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"framework_wait_init\"},"
                      "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2}]";
    send_text(fd, req, strlen(req));
    struct json_object *r = read_reply(fd);
    assert_true(json_object_is_type(r, json_type_array));
    assert_int_equal(json_object_array_length(r), 2);
    assert_int_equal(reply_id(json_object_array_get_idx(r, 0)), 1);
    assert_int_equal(error_code(json_object_array_get_idx(r, 1)), -32601);
    json_object_put(r);
    close(fd);
}

static void test_parse_error_closes(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *req = "{\"jsonrpc\":\"2.0\",\"method\":}";
    send_text(fd, req, strlen(req));
    struct json_object *r = read_reply(fd);
    assert_int_equal(error_code(r), -32700);
    assert_int_equal(reply_id(r), -1);
    json_object_put(r);
    assert_true(at_eof(fd));
    close(fd);
}

static void test_oversized_request(void **state)
{
    (void)state;
    int fd = connect_client();
    const char *head = "{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":1,\"pad\":\"";
    send_text(fd, head, strlen(head));
    static char chunk[65536];
    memset(chunk, 'A', sizeof(chunk));
    for (int i = 0; i < 17; i++) /* 17 x 64 KiB > 1 MiB, never closed */
        send_text(fd, chunk, sizeof(chunk));
    struct json_object *r = read_reply(fd);
    assert_non_null(r);
    assert_int_equal(error_code(r), -32600);
    json_object_put(r);
    assert_true(at_eof(fd));
    close(fd);
}

static void test_several_clients(void **state)
{
    (void)state;
    int a = connect_client(), b = connect_client();
    const char *part1 = "{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_";
    const char *part2 = "version\",\"id\":1}";
    const char *full = "{\"jsonrpc\":\"2.0\",\"method\":\"rpc_get_methods\",\"id\":2}";
    /* A half-sent request on one connection does not hold up another. */
    send_text(a, part1, strlen(part1));
    send_text(b, full, strlen(full));
    struct json_object *rb = read_reply(b);
    assert_int_equal(reply_id(rb), 2);
    send_text(a, part2, strlen(part2));
    struct json_object *ra = read_reply(a);
    assert_int_equal(reply_id(ra), 1);
    json_object_put(ra);
    json_object_put(rb);
    close(a);
    close(b);
}

/* Outside the running server: start refuses a live socket and replaces a stale one. */
static void test_stale_and_live_sockets(void **state)
{
    (void)state;
    char d[] = "/tmp/vnvme-rpc-sock-XXXXXX";
    assert_non_null(mkdtemp(d));
    char path[128];
    snprintf(path, sizeof(path), "%s/rpc.sock", d);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);

    int live = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(live, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(live, 1), 0);
    assert_int_equal(rpc_server_start(path, NULL), -EADDRINUSE);
    close(live); /* the file stays behind: now stale */
    assert_int_equal(rpc_server_start(path, NULL), 0);
    rpc_server_stop();
    assert_int_equal(access(path, F_OK), -1);

    /* Not a socket: never unlinked. */
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(rpc_server_start(path, NULL), -EEXIST);
    unlink(path);
    rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socket_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simple_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_requests_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notification_gets_no_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_error_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_py_requests, setup, teardown),
        cmocka_unit_test(test_stale_and_live_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
