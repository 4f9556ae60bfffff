/* SPDX-License-Identifier: MIT */
/*
 * The host role end to end on this machine: real vnvmed processes (one as
 * target, one attaching it, or one attaching itself), driven by the real
 * vnvme CLI and by configuration files, including a saved configuration
 * restoring the attached controllers. CUSE itself needs the guest
 * (tests/guest/cli_e2e.sh); here cuse register must fail clearly.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cli_run.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:clihost"

static const char target_config[] =
    "{\"subsystems\": [\n"
    " {\"subsystem\": \"bdev\", \"config\": [\n"
    "  %s"
    "  {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc0\", \"num_blocks\": 2048, "
    "\"block_size\": 512}}]},\n"
    " {\"subsystem\": \"nvmf\", \"config\": [\n"
    "  {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
    "  {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"" NQN "\", \"allow_any_host\": true, "
    "\"serial_number\": \"CLIHOST0001\", \"model_number\": \"vnvme cli host test\"}},\n"
    "  {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"" NQN "\", "
    "\"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
    "  {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"" NQN "\", "
    "\"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\", \"traddr\": \"%s\", \"trsvcid\": \"\"}}}\n"
    " ]}]}\n";

/* Global so that teardown stops them when an assertion ends a test early. */
static struct vnvmed_harness t, h, d;

static int teardown(void **state)
{
    (void)state;
    vnvmed_harness_cleanup(&h);
    vnvmed_harness_cleanup(&d);
    vnvmed_harness_cleanup(&t);
    return 0;
}

static bool have_cuse(void)
{
    return access("/dev/cuse", F_OK) == 0;
}

/* vnvme -s SOCK args... ; the run is static: struct cli_run is large. */
static struct cli_run *cli(const char *sock, const char *const *args)
{
    static struct cli_run r;
    const char *argv[24] = {"-s", sock};
    int n = 2;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    assert_int_equal(cli_run(&r, argv), 0);
    return &r;
}
#define CLI(sock, ...) cli(sock, (const char *[]){__VA_ARGS__, NULL})

static struct json_object *json_out(const struct cli_run *r)
{
    struct json_object *o = json_tokener_parse(r->out);
    if (o == NULL)
        fail_msg("not JSON: %s (stderr: %s)", r->out, r->err);
    return o;
}

static const char *str_at(struct json_object *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &o))
            return NULL;
    }
    return o ? json_object_get_string(o) : NULL;
}

/* The one controller `controller list` shows: its name and traddr, enabled. */
static void expect_one_controller(const char *sock, const char *name, const char *traddr)
{
    struct cli_run *r = CLI(sock, "controller", "list");
    assert_int_equal(r->status, 0);
    struct json_object *o = json_out(r);
    assert_int_equal(json_object_array_length(o), 1);
    assert_string_equal(str_at(o, "0.name"), name);
    assert_string_equal(str_at(o, "0.ctrlrs.0.trid.traddr"), traddr);
    assert_string_equal(str_at(o, "0.ctrlrs.0.trid.trtype"), "VFIOUSER");
    assert_string_equal(str_at(o, "0.ctrlrs.0.trid.subnqn"), NQN);
    assert_string_equal(str_at(o, "0.ctrlrs.0.state"), "enabled");
    json_object_put(o);
}

/* The bdev_nvme_* calls of a saved configuration's bdev subsystem, as "method name traddr;" text. */
static void host_calls(struct json_object *cfg, char *buf, size_t size)
{
    struct json_object *subs = NULL;
    buf[0] = '\0';
    assert_true(json_object_object_get_ex(cfg, "subsystems", &subs));
    for (size_t i = 0; i < json_object_array_length(subs); i++) {
        struct json_object *s = json_object_array_get_idx(subs, i), *calls = NULL;
        if (strcmp(str_at(s, "subsystem"), "bdev") != 0 || !json_object_object_get_ex(s, "config", &calls))
            continue;
        for (size_t j = 0; j < json_object_array_length(calls); j++) {
            struct json_object *c = json_object_array_get_idx(calls, j);
            const char *m = str_at(c, "method");
            if (strncmp(m, "bdev_nvme_", 10) != 0)
                continue;
            const char *traddr = str_at(c, "params.traddr");
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s %s%s%s;", m, str_at(c, "params.name"), traddr ? " " : "",
                     traddr ? traddr : "");
        }
    }
}

static void start_target(struct vnvmed_harness *x, const char *prefix, const char *extra_bdev_calls)
{
    assert_int_equal(vnvmed_harness_init(x, prefix), 0);
    assert_int_equal(vnvmed_harness_write_config(x, target_config, extra_bdev_calls, x->listen_dir), 0);
    assert_int_equal(vnvmed_harness_start(x, NULL), 0);
}

static void expect_no_controllers(const char *sock)
{
    struct cli_run *r = CLI(sock, "controller", "list");
    assert_int_equal(r->status, 0);
    struct json_object *o = json_out(r);
    assert_true(json_object_is_type(o, json_type_array));
    assert_int_equal(json_object_array_length(o), 0);
    json_object_put(o);
}

/*
 * A host daemon from a config that attaches a controller of another daemon:
 * that daemon may still be closing the previous host's connection (one
 * client at a time), and a failed attach ends the daemon, so start again.
 */
static void start_host_from_config(struct vnvmed_harness *x)
{
    const struct vnvmed_start how = {.without_listener = true};
    for (int i = 0; i < 100; i++) {
        if (vnvmed_harness_start(x, &how) == 0)
            return;
        usleep(100000);
    }
    fail_msg("the host daemon did not start from %s", x->config_path);
}

static void test_attach_by_second_daemon_through_cli(void **state)
{
    (void)state;
    start_target(&t, "vnvme-cli-tgt", "");
    assert_int_equal(vnvmed_harness_init(&h, "vnvme-cli-host"), 0);
    assert_int_equal(vnvmed_harness_write_config(&h, "{\"subsystems\": []}\n"), 0);
    const struct vnvmed_start how = {.without_listener = true};
    assert_int_equal(vnvmed_harness_start(&h, &how), 0);
    const char *hs = h.rpc_path;

    expect_no_controllers(hs);

    struct cli_run *r = CLI(hs, "controller", "attach", "Nvme0", t.listen_dir);
    if (r->status != 0)
        fail_msg("attach: %s", r->err);
    struct json_object *o = json_out(r);
    assert_int_equal(json_object_array_length(o), 1);
    assert_string_equal(str_at(o, "0"), "Nvme0n1");
    json_object_put(o);
    expect_one_controller(hs, "Nvme0", t.listen_dir);

    r = CLI(hs, "controller", "list", "Nvme0");
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "\"Nvme0\""));
    r = CLI(hs, "controller", "list", "Nope");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "bdev_nvme_get_controllers failed: No such device"));
    r = CLI(hs, "controller", "attach", "Nvme0", t.listen_dir);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "controller Nvme0 already exists"));
    r = CLI(hs, "controller", "attach", "Nvme1", "/nonexistent/vnvme");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "cannot attach /nonexistent/vnvme: No such file or directory"));
    r = CLI(hs, "controller", "attach", "Nvme1");
    assert_int_equal(r->status, 2);

    /* No kernel CUSE here: a clear error, and the controller stays attached. */
    if (!have_cuse()) {
        r = CLI(hs, "cuse", "register", "Nvme0");
        assert_int_equal(r->status, 1);
        assert_non_null(strstr(r->err, "bdev_nvme_cuse_register failed: CUSE not available: /dev/cuse missing"));
        assert_string_equal(r->out, "");
        expect_one_controller(hs, "Nvme0", t.listen_dir);
    }
    r = CLI(hs, "cuse", "unregister", "Nvme0");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "No such device"));
    r = CLI(hs, "cuse", "register", "Nope");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "No such device"));
    r = CLI(hs, "cuse", "frobnicate");
    assert_int_equal(r->status, 2);

    /* The configuration carries the attach, in the bdev subsystem as SPDK writes it. */
    r = CLI(hs, "config", "save");
    assert_int_equal(r->status, 0);
    struct json_object *saved = json_out(r);
    char calls[512], want[512];
    host_calls(saved, calls, sizeof(calls));
    snprintf(want, sizeof(want), "bdev_nvme_attach_controller Nvme0 %s;", t.listen_dir);
    assert_string_equal(calls, want);
    r = CLI(hs, "rpc", "framework_get_config", "{\"name\": \"bdev\"}");
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "\"bdev_nvme_attach_controller\""));

    r = CLI(hs, "controller", "detach", "Nvme0");
    assert_int_equal(r->status, 0);
    expect_no_controllers(hs);
    r = CLI(hs, "controller", "detach", "Nvme0");
    assert_int_equal(r->status, 1);
    assert_true(vnvmed_harness_stop(&h) == 0);

    /* A new host daemon from the saved configuration has the controller again. */
    FILE *f = fopen(h.config_path, "w");
    assert_non_null(f);
    fputs(json_object_to_json_string_ext(saved, JSON_C_TO_STRING_PRETTY), f);
    fclose(f);
    json_object_put(saved);
    start_host_from_config(&h);
    expect_one_controller(hs, "Nvme0", t.listen_dir);
    /* Exit detaches it: a clean exit of both. */
    assert_true(vnvmed_harness_stop(&h) == 0);
    vnvmed_harness_cleanup(&h);
    assert_true(vnvmed_harness_stop(&t) == 0);
    vnvmed_harness_cleanup(&t);
}

/*
 * One daemon serving a controller and attaching it from the same config file,
 * the attach written first: it runs once nvmf has created the listener.
 */
static void test_daemon_attaches_itself_from_config(void **state)
{
    (void)state;
    assert_int_equal(vnvmed_harness_init(&d, "vnvme-cli-self"), 0);
    char attach[512];
    snprintf(attach, sizeof(attach),
             "{\"method\": \"bdev_nvme_attach_controller\", \"params\": {\"name\": \"Self\", \"trtype\": \"vfiouser\", "
             "\"traddr\": \"%s\", \"adrfam\": \"IPv4\", \"trsvcid\": \"\", \"subnqn\": \"" NQN "\", "
             "\"num_io_queues\": 2, \"prchk_reftag\": false, \"prchk_guard\": false}},\n",
             d.listen_dir);
    assert_int_equal(vnvmed_harness_write_config(&d, target_config, attach, d.listen_dir), 0);
    assert_int_equal(vnvmed_harness_start(&d, NULL), 0);
    expect_one_controller(d.rpc_path, "Self", d.listen_dir);

    /* Saved: the attach (with its queue count) after the bdevs; the nvmf subsystem as before. */
    struct cli_run *r = CLI(d.rpc_path, "config", "save");
    assert_int_equal(r->status, 0);
    struct json_object *saved = json_out(r);
    char calls[512], want[512];
    host_calls(saved, calls, sizeof(calls));
    snprintf(want, sizeof(want), "bdev_nvme_attach_controller Self %s;", d.listen_dir);
    assert_string_equal(calls, want);
    assert_non_null(strstr(r->out, "\"num_io_queues\": 2"));
    assert_true(vnvmed_harness_stop(&d) == 0);

    /* Its own saved configuration brings the whole daemon back, controller included. */
    FILE *f = fopen(d.config_path, "w");
    assert_non_null(f);
    fputs(json_object_to_json_string_ext(saved, JSON_C_TO_STRING_PRETTY), f);
    fclose(f);
    assert_int_equal(vnvmed_harness_start(&d, NULL), 0);
    expect_one_controller(d.rpc_path, "Self", d.listen_dir);
    r = CLI(d.rpc_path, "config", "save");
    struct json_object *again = json_out(r);
    if (!json_object_equal(saved, again))
        fail_msg("round trip differs:\n%s\n---\n%s", json_object_to_json_string(saved),
                 json_object_to_json_string(again));
    json_object_put(saved);
    json_object_put(again);
    assert_true(vnvmed_harness_stop(&d) == 0);
    vnvmed_harness_cleanup(&d);
}

/* `vnvme list` on this machine: no CUSE devices, so only what it skips and refuses. */
static void test_list_without_devices(void **state)
{
    (void)state;
    char dir[] = "/tmp/vnvme-list.XXXXXX", p[64];
    assert_non_null(mkdtemp(dir));
    const char *header =
        "Node             SN                   Model                                    Namespace Usage"
        "                      Format           FW Rev\n"
        "---------------- -------------------- ---------------------------------------- --------- "
        "-------------------------- ---------------- --------\n";

    /* No socket needed: -s names none that exists. */
    struct cli_run *r = CLI("/nonexistent/rpc.sock", "list", dir);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, header);
    assert_string_equal(r->err, "");
    /* A missing directory: no devices registered yet. */
    snprintf(p, sizeof(p), "%s/none", dir);
    r = CLI("/nonexistent/rpc.sock", "list", p);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, header);

    /* Names that are not namespaces, and a namespace name that is no device, are passed over. */
    snprintf(p, sizeof(p), "%s/nvme0n1", dir);
    FILE *f = fopen(p, "w");
    fclose(f);
    snprintf(p, sizeof(p), "%s/nvme0", dir);
    assert_int_equal(symlink("/dev/null", p), 0);
    snprintf(p, sizeof(p), "%s/nvme0n1p1", dir);
    assert_int_equal(symlink("/dev/null", p), 0);
    r = CLI("/nonexistent/rpc.sock", "list", dir);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, header);
    assert_string_equal(r->err, "");

    /* A character device that is not NVMe: reported, and the exit status says so. */
    snprintf(p, sizeof(p), "%s/nvme3n2", dir);
    assert_int_equal(symlink("/dev/null", p), 0);
    r = CLI("/nonexistent/rpc.sock", "list", dir);
    assert_int_equal(r->status, 1);
    assert_string_equal(r->out, header);
    char want[160];
    snprintf(want, sizeof(want), "vnvme: %s: not an NVMe namespace (NVME_IOCTL_ID: Inappropriate ioctl for device)\n",
             p);
    assert_string_equal(r->err, want);

    r = CLI("/nonexistent/rpc.sock", "list", dir, "extra");
    assert_int_equal(r->status, 2);

    const char *names[] = {"nvme0n1", "nvme0", "nvme0n1p1", "nvme3n2"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_help_lists_host_commands(void **state)
{
    (void)state;
    struct cli_run *r = CLI("/nonexistent/rpc.sock", "--help");
    assert_int_equal(r->status, 0);
    const char *lines[] = {"controller attach NAME DIR", "controller detach NAME", "controller list [NAME]",
                           "cuse register NAME", "cuse unregister NAME", "list [DIR]"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (strstr(r->out, lines[i]) == NULL)
            fail_msg("--help lacks \"%s\"", lines[i]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_attach_by_second_daemon_through_cli, teardown),
        cmocka_unit_test_teardown(test_daemon_attaches_itself_from_config, teardown),
        cmocka_unit_test(test_list_without_devices),
        cmocka_unit_test(test_help_lists_host_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
