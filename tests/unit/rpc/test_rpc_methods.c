/* SPDX-License-Identifier: MIT */
/*
 * The RPC method layer alone: rpc_dispatch() for every method, success and
 * failure, over real bdevs and a fake tgt (fake_tgt.c); config_load_file()
 * of an SPDK vfio-user example configuration; save -> load round trip.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fake_tgt.h"
#include "rpc_check.h"
#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvmed.h"

#define NQN "nqn.2016-06.io.spdk:cnode1"

static void basic_target(void)
{
    ok_true("nvmf_create_transport", "{\"trtype\":\"VFIOUSER\"}");
    json_object_put(ok("bdev_malloc_create", "{\"name\":\"Malloc0\",\"num_blocks\":2048,\"block_size\":512}"));
    ok_true("nvmf_create_subsystem", "{\"nqn\":\"" NQN "\",\"serial_number\":\"SPDK00000000000001\","
                                     "\"model_number\":\"SPDK bdev Controller\",\"allow_any_host\":true}");
}

/* ---- bdev_* ---- */
static void test_malloc_create_names_and_errors(void **state)
{
    (void)state;
    struct json_object *r = ok("bdev_malloc_create", "{\"num_blocks\":64,\"block_size\":512}");
    assert_string_equal(json_object_get_string(r), "Malloc0");
    json_object_put(r);
    r = ok("bdev_malloc_create", "{\"num_blocks\":64,\"block_size\":4096}");
    assert_string_equal(json_object_get_string(r), "Malloc1");
    json_object_put(r);
    r = ok("bdev_malloc_create", "{\"name\":\"disk\",\"num_blocks\":8,\"block_size\":512,"
                                 "\"uuid\":\"12345678-9abc-def0-1234-56789abcdef0\",\"md_size\":0,"
                                 "\"optimal_io_boundary\":16}");
    assert_string_equal(json_object_get_string(r), "disk");
    json_object_put(r);
    assert_non_null(vnvme_bdev_get("disk"));
    assert_int_equal(vnvme_bdev_get("disk")->uuid[0], 0x12);

    err("bdev_malloc_create", "{\"name\":\"disk\",\"num_blocks\":8,\"block_size\":512}", -17, "File exists");
    err("bdev_malloc_create", "{\"num_blocks\":8}", -32602, "missing parameter: block_size");
    err("bdev_malloc_create", "{\"block_size\":512}", -32602, "missing parameter: num_blocks");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":512,\"foo\":1}", -32602, "unknown parameter: foo");
    err("bdev_malloc_create", "{\"num_blocks\":\"8\",\"block_size\":512}", -32602,
        "parameter num_blocks must be an unsigned 64-bit integer");
    err("bdev_malloc_create", "{\"num_blocks\":-8,\"block_size\":512}", -32602, "num_blocks");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":4294967296}", -32602,
        "block_size must be an unsigned 32-bit integer");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":512,\"name\":5}", -32602, "name must be a string");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":512,\"uuid\":\"nope\"}", -32602, "invalid uuid");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":512,\"md_size\":8}", -32602, "md_size");
    err("bdev_malloc_create", "{\"num_blocks\":8,\"block_size\":513}", -22, "Invalid argument");
    err("bdev_malloc_create", "[8, 512]", -32602, "params must be an object");
    err("bdev_malloc_create", NULL, -32602, "missing parameter");
}

static void test_bdev_delete_and_get(void **state)
{
    (void)state;
    json_object_put(ok("bdev_malloc_create", "{\"name\":\"m\",\"num_blocks\":8,\"block_size\":512}"));
    json_object_put(ok("bdev_null_create", "{\"name\":\"n\",\"num_blocks\":8,\"block_size\":512}"));
    err("bdev_null_create", "{\"num_blocks\":8,\"block_size\":512}", -32602, "missing parameter: name");

    struct json_object *r = ok("bdev_get_bdevs", NULL);
    assert_int_equal(json_object_array_length(r), 2);
    json_object_put(r);
    r = ok("bdev_get_bdevs", "{\"name\":\"n\"}");
    assert_int_equal(json_object_array_length(r), 1);
    assert_string_equal(str_at(json_object_array_get_idx(r, 0), "name"), "n");
    json_object_put(r);
    err("bdev_get_bdevs", "{\"name\":\"ghost\"}", -19, "No such device");

    /* Each delete method only takes its own kind. */
    err("bdev_malloc_delete", "{\"name\":\"n\"}", -19, "No such device");
    err("bdev_null_delete", "{\"name\":\"m\"}", -19, "No such device");
    err("bdev_malloc_delete", "{}", -32602, "missing parameter: name");
    ok_true("bdev_malloc_delete", "{\"name\":\"m\"}");
    ok_true("bdev_null_delete", "{\"name\":\"n\"}");
    err("bdev_null_delete", "{\"name\":\"n\"}", -19, "No such device");
    r = ok("bdev_get_bdevs", "{}");
    assert_int_equal(json_object_array_length(r), 0);
    json_object_put(r);
}

static void test_uring_create(void **state)
{
    (void)state;
    char path[] = "/tmp/vnvme-rpc-uring-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    char params[256];
    snprintf(params, sizeof(params), "{\"name\":\"u\",\"filename\":\"%s\",\"block_size\":512}", path);
    struct json_object *r = ok("bdev_uring_create", params);
    assert_string_equal(json_object_get_string(r), "u");
    json_object_put(r);
    err("bdev_uring_create", "{\"name\":\"u2\"}", -32602, "missing parameter: filename");
    err("bdev_uring_create", "{\"name\":\"u2\",\"filename\":\"/nonexistent/x\"}", -2, "No such file");

    /* save_config finds the filename in the bdev's description. */
    struct json_object *cfg = config_save_subsystem("bdev");
    struct json_object *first = json_object_array_get_idx(cfg, 0);
    assert_string_equal(str_at(first, "method"), "bdev_uring_create");
    assert_string_equal(str_at(first, "params.filename"), path);
    json_object_put(cfg);

    ok_true("bdev_uring_delete", "{\"name\":\"u\"}");
    unlink(path);
}

/* ---- nvmf_* ---- */
static void test_transport(void **state)
{
    (void)state;
    struct json_object *r = ok("nvmf_get_transports", NULL);
    assert_int_equal(json_object_array_length(r), 0);
    json_object_put(r);
    err("nvmf_create_transport", "{\"trtype\":\"TCP\"}", -32602, "unsupported trtype: TCP");
    err("nvmf_create_transport", "{}", -32602, "missing parameter: trtype");
    err("nvmf_create_transport", "{\"trtype\":\"VFIOUSER\",\"max_qdepth\":4}", -32602, "unknown parameter: max_qdepth");
    assert_int_equal(fake_tgt_calls, 0);
    ok_true("nvmf_create_transport", "{\"trtype\":\"vfiouser\",\"max_queue_depth\":256,\"max_io_qpairs_per_ctrlr\":127,"
                                     "\"io_unit_size\":131072,\"disable_mappable_bar0\":false,\"zcopy\":false}");
    err("nvmf_create_transport", "{\"trtype\":\"VFIOUSER\"}", -17, "File exists");
    r = ok("nvmf_get_transports", NULL);
    assert_int_equal(json_object_array_length(r), 1);
    assert_string_equal(str_at(json_object_array_get_idx(r, 0), "trtype"), "VFIOUSER");
    json_object_put(r);
}

static void test_subsystem_create_delete(void **state)
{
    (void)state;
    ok_true("nvmf_create_subsystem", "{\"nqn\":\"" NQN "\"}");
    err("nvmf_create_subsystem", "{\"nqn\":\"" NQN "\"}", -17, "File exists");
    err("nvmf_create_subsystem", "{\"nqn\":\"cnode1\"}", -32602, "invalid nqn");
    err("nvmf_create_subsystem", "{\"nqn\":\"nqn.x:y\",\"serial_number\":\"123456789012345678901\"}", -32602,
        "serial_number must be 1 to 20 characters");
    err("nvmf_create_subsystem", "{\"nqn\":\"nqn.x:y\",\"allow_any_host\":1}", -32602,
        "allow_any_host must be a boolean");
    err("nvmf_create_subsystem", "{\"nqn\":\"nqn.x:y\",\"max_namespaces\":5000}", -32602, "max_namespaces");
    err("nvmf_create_subsystem", "{\"serial_number\":\"1\"}", -32602, "missing parameter: nqn");
    ok_true("nvmf_create_subsystem", "{\"nqn\":\"nqn.x:y\",\"max_namespaces\":4,\"ana_reporting\":false}");

    struct json_object *r = ok("nvmf_get_subsystems", NULL);
    assert_int_equal(json_object_array_length(r), 2);
    struct json_object *s = json_object_array_get_idx(r, 0);
    assert_string_equal(str_at(s, "nqn"), NQN);
    assert_string_equal(str_at(s, "subtype"), "NVMe");
    assert_string_equal(str_at(s, "serial_number"), "00000000000000000000");
    assert_string_equal(str_at(s, "allow_any_host"), "false");
    assert_string_equal(str_at(s, "max_namespaces"), "1024");
    assert_string_equal(str_at(json_object_array_get_idx(r, 1), "max_namespaces"), "4");
    json_object_put(r);

    ok_true("nvmf_delete_subsystem", "{\"nqn\":\"" NQN "\"}");
    err("nvmf_delete_subsystem", "{\"nqn\":\"" NQN "\"}", -19, "No such device");
    err("nvmf_get_subsystems", "{\"nqn\":\"" NQN "\"}", -19, "No such device");
}

static void test_namespaces(void **state)
{
    (void)state;
    basic_target();
    json_object_put(ok("bdev_malloc_create", "{\"name\":\"Malloc1\",\"num_blocks\":2048,\"block_size\":512}"));
    struct json_object *r = ok("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"bdev_name\":\"Malloc0\"}}");
    assert_int_equal(json_object_get_int(r), 1);
    json_object_put(r);
    r = ok("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"bdev_name\":\"Malloc1\",\"nsid\":7,"
                                    "\"nguid\":\"000102030405060708090A0B0C0D0E0F\",\"eui64\":\"0011223344556677\"}}");
    assert_int_equal(json_object_get_int(r), 7);
    json_object_put(r);

    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"bdev_name\":\"ghost\"}}", -19,
        "No such device");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"nqn.none:x\",\"namespace\":{\"bdev_name\":\"Malloc0\"}}", -19,
        "No such device");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"nsid\":3}}", -32602,
        "missing parameter: namespace.bdev_name");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"bdev_name\":\"Malloc0\",\"bogus\":1}}",
        -32602, "unknown parameter: namespace.bogus");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":{\"bdev_name\":\"Malloc0\",\"nguid\":\"12\"}}",
        -32602, "invalid namespace.nguid");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\",\"namespace\":\"Malloc0\"}", -32602,
        "namespace must be an object");
    err("nvmf_subsystem_add_ns", "{\"nqn\":\"" NQN "\"}", -32602, "missing parameter: namespace");
    /* A claimed bdev stays. */
    err("bdev_malloc_delete", "{\"name\":\"Malloc0\"}", -16, "Device or resource busy");

    r = ok("nvmf_get_subsystems", NULL);
    struct json_object *nss = NULL;
    json_object_object_get_ex(json_object_array_get_idx(r, 0), "namespaces", &nss);
    assert_int_equal(json_object_array_length(nss), 2);
    struct json_object *ns7 = json_object_array_get_idx(nss, 1);
    assert_string_equal(str_at(ns7, "nsid"), "7");
    assert_string_equal(str_at(ns7, "bdev_name"), "Malloc1");
    assert_string_equal(str_at(ns7, "name"), "Malloc1");
    assert_string_equal(str_at(ns7, "nguid"), "000102030405060708090A0B0C0D0E0F");
    assert_string_equal(str_at(ns7, "eui64"), "0011223344556677");
    assert_non_null(str_at(ns7, "uuid"));
    json_object_put(r);

    ok_true("nvmf_subsystem_remove_ns", "{\"nqn\":\"" NQN "\",\"nsid\":1}");
    err("nvmf_subsystem_remove_ns", "{\"nqn\":\"" NQN "\",\"nsid\":1}", -2, "No such file");
    err("nvmf_subsystem_remove_ns", "{\"nqn\":\"" NQN "\"}", -32602, "missing parameter: nsid");
    ok_true("bdev_malloc_delete", "{\"name\":\"Malloc0\"}");
}

static void test_listeners_and_hosts(void **state)
{
    (void)state;
    ok_true("nvmf_create_subsystem", "{\"nqn\":\"" NQN "\"}");
    const char *la = "{\"nqn\":\"" NQN "\",\"listen_address\":{\"trtype\":\"VFIOUSER\",\"adrfam\":\"IPv4\","
                     "\"traddr\":\"/var/run/vfio-user\",\"trsvcid\":\"0\"}}";
    err("nvmf_subsystem_add_listener", la, -32602, "nvmf_create_transport first");
    ok_true("nvmf_create_transport", "{\"trtype\":\"VFIOUSER\"}");
    ok_true("nvmf_subsystem_add_listener", la);
    err("nvmf_subsystem_add_listener", la, -98, "Address already in use");
    err("nvmf_subsystem_add_listener",
        "{\"nqn\":\"" NQN "\",\"listen_address\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4420\"}}",
        -32602, "unsupported trtype");
    err("nvmf_subsystem_add_listener", "{\"nqn\":\"" NQN "\",\"listen_address\":{\"trtype\":\"VFIOUSER\"}}", -32602,
        "missing parameter: listen_address.traddr");
    err("nvmf_subsystem_add_listener", "{\"nqn\":\"" NQN "\"}", -32602, "missing parameter: listen_address");
    err("nvmf_subsystem_add_listener",
        "{\"nqn\":\"" NQN "\",\"socket_group\":\"no-such-group-vnvme\",\"listen_address\":{\"trtype\":\"VFIOUSER\","
        "\"traddr\":\"/var/run/vfio-user-g\"}}",
        -32602, "socket_group: no group 'no-such-group-vnvme'");
    ok_true("nvmf_subsystem_add_listener",
            "{\"nqn\":\"" NQN "\",\"socket_group\":\"4321\",\"listen_address\":{\"trtype\":\"VFIOUSER\","
            "\"traddr\":\"/var/run/vfio-user-g\"}}");

    struct json_object *r = ok("nvmf_get_subsystems", NULL);
    struct json_object *las = NULL;
    json_object_object_get_ex(json_object_array_get_idx(r, 0), "listen_addresses", &las);
    assert_int_equal(json_object_array_length(las), 2);
    assert_string_equal(str_at(json_object_array_get_idx(las, 0), "traddr"), "/var/run/vfio-user");
    assert_string_equal(str_at(json_object_array_get_idx(las, 0), "trtype"), "VFIOUSER");
    json_object_put(r);
    /* save_config keeps a listener's own group, and writes none for the one that named none. */
    r = ok("framework_get_config", "{\"name\":\"nvmf\"}");
    int with_group = 0, listeners = 0;
    for (size_t i = 0; i < json_object_array_length(r); i++) {
        struct json_object *call = json_object_array_get_idx(r, i), *p = NULL, *g = NULL;
        if (strcmp(str_at(call, "method"), "nvmf_subsystem_add_listener") != 0)
            continue;
        listeners++;
        json_object_object_get_ex(call, "params", &p);
        if (json_object_object_get_ex(p, "socket_group", &g)) {
            with_group++;
            assert_string_equal(json_object_get_string(g), "4321");
        }
    }
    assert_int_equal(listeners, 2);
    assert_int_equal(with_group, 1);
    json_object_put(r);
    ok_true("nvmf_subsystem_remove_listener",
            "{\"nqn\":\"" NQN "\",\"listen_address\":{\"trtype\":\"VFIOUSER\",\"traddr\":\"/var/run/vfio-user-g\"}}");

    ok_true("nvmf_subsystem_remove_listener", la);
    err("nvmf_subsystem_remove_listener", la, -2, "No such file");

    ok_true("nvmf_subsystem_add_host", "{\"nqn\":\"" NQN "\",\"host\":\"nqn.2014-08.org.nvmexpress:uuid:1\"}");
    err("nvmf_subsystem_add_host", "{\"nqn\":\"" NQN "\",\"host\":\"nqn.2014-08.org.nvmexpress:uuid:1\"}", -17,
        "File exists");
    ok_true("nvmf_subsystem_allow_any_host", "{\"nqn\":\"" NQN "\",\"allow_any_host\":true}");
    r = ok("nvmf_get_subsystems", "{\"nqn\":\"" NQN "\"}");
    struct json_object *s = json_object_array_get_idx(r, 0), *hosts = NULL;
    assert_string_equal(str_at(s, "allow_any_host"), "true");
    json_object_object_get_ex(s, "hosts", &hosts);
    assert_int_equal(json_object_array_length(hosts), 1);
    assert_string_equal(str_at(json_object_array_get_idx(hosts, 0), "nqn"), "nqn.2014-08.org.nvmexpress:uuid:1");
    json_object_put(r);
    ok_true("nvmf_subsystem_remove_host", "{\"nqn\":\"" NQN "\",\"host\":\"nqn.2014-08.org.nvmexpress:uuid:1\"}");
    err("nvmf_subsystem_remove_host", "{\"nqn\":\"" NQN "\",\"host\":\"nqn.2014-08.org.nvmexpress:uuid:1\"}", -2,
        "No such file");
}

/* ---- application methods ---- */
static void test_app_methods(void **state)
{
    (void)state;
    err("no_such_method", NULL, -32601, "Method not found: no_such_method");

    struct json_object *r = ok("rpc_get_methods", NULL);
    bool saw_add_ns = false, saw_save = false;
    for (size_t i = 0; i < json_object_array_length(r); i++) {
        const char *m = json_object_get_string(json_object_array_get_idx(r, i));
        saw_add_ns |= strcmp(m, "nvmf_subsystem_add_ns") == 0;
        saw_save |= strcmp(m, "save_config") == 0;
    }
    assert_true(saw_add_ns && saw_save);
    json_object_put(r);

    r = ok("spdk_get_version", NULL);
    assert_string_equal(str_at(r, "version"), "vnvme 0.1.0");
    json_object_put(r);
    err("spdk_get_version", "{\"x\":1}", -32602, "unknown parameter: x");

    ok_true("framework_start_init", NULL);
    ok_true("framework_wait_init", "{}");

    ok_true("log_set_level", "{\"level\":\"DEBUG\"}");
    r = ok("log_get_level", NULL);
    assert_string_equal(json_object_get_string(r), "DEBUG");
    json_object_put(r);
    ok_true("log_set_level", "{\"level\":\"WARNING\"}");
    r = ok("log_get_level", NULL);
    assert_string_equal(json_object_get_string(r), "WARNING");
    json_object_put(r);
    err("log_set_level", "{\"level\":\"LOUD\"}", -32602, "invalid level: LOUD");
    err("log_set_level", "{}", -32602, "missing parameter: level");
    ok_true("log_set_level", "{\"level\":\"NOTICE\"}");

    basic_target();
    r = ok("framework_get_config", "{\"name\":\"bdev\"}");
    assert_true(json_object_is_type(r, json_type_array));
    assert_string_equal(str_at(json_object_array_get_idx(r, 0), "method"), "bdev_malloc_create");
    json_object_put(r);
    /* As SPDK answers for a subsystem it does not have. */
    err("framework_get_config", "{\"name\":\"iscsi\"}", -32602, "Subsystem 'iscsi' not found");
    r = ok("save_config", NULL);
    struct json_object *subs = NULL;
    assert_true(json_object_object_get_ex(r, "subsystems", &subs));
    assert_int_equal(json_object_array_length(subs), 2);
    json_object_put(r);
}

/* ---- configuration files ---- */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/vnvme-rpc-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load_text(const char *text)
{
    char *path = write_temp(text);
    int rc = config_load_file(path);
    unlink(path);
    free(path);
    return rc;
}

/* As in SPDK's vfio-user documentation, plus sections SPDK itself writes (order: nvmf before bdev on purpose). */
static const char spdk_example[] =
    "{\n"
    "  \"subsystems\": [\n"
    "    {\"subsystem\": \"accel\", \"config\": [{\"method\": \"accel_set_options\", \"params\": {}}]},\n"
    "    {\"subsystem\": \"nvmf\", \"config\": [\n"
    "      {\"method\": \"nvmf_set_config\", \"params\": {\"discovery_filter\": \"match_any\"}},\n"
    "      {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\", \"max_queue_depth\": 256,\n"
    "        \"max_io_qpairs_per_ctrlr\": 127, \"in_capsule_data_size\": 0, \"max_io_size\": 131072,\n"
    "        \"io_unit_size\": 131072, \"max_aq_depth\": 32, \"num_shared_buffers\": 0, \"buf_cache_size\": 0,\n"
    "        \"dif_insert_or_strip\": false, \"zcopy\": false, \"abort_timeout_sec\": 1,\n"
    "        \"disable_mappable_bar0\": false, \"disable_adaptive_irq\": false, \"disable_shadow_doorbells\": false}},\n"
    "      {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n"
    "        \"allow_any_host\": true, \"serial_number\": \"SPDK0\", \"model_number\": \"SPDK bdev Controller\",\n"
    "        \"max_namespaces\": 32, \"ana_reporting\": false}},\n"
    "      {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n"
    "        \"namespace\": {\"nsid\": 1, \"bdev_name\": \"Malloc0\"}}},\n"
    "      {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\",\n"
    "        \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\", \"traddr\": \"/var/run\",\n"
    "        \"trsvcid\": \"\"}}}\n"
    "    ]},\n"
    "    {\"subsystem\": \"bdev\", \"config\": [\n"
    "      {\"method\": \"bdev_set_options\", \"params\": {\"bdev_io_pool_size\": 65535}},\n"
    "      {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc0\", \"num_blocks\": 131072,\n"
    "        \"block_size\": 512, \"physical_block_size\": 512, \"uuid\": \"2b6d5e8b-8a0a-4c2c-bf1a-5b1c7d3e9f01\",\n"
    "        \"optimal_io_boundary\": 0, \"md_size\": 0, \"dif_type\": 0, \"dif_is_head_of_md\": false}},\n"
    "      {\"method\": \"bdev_wait_for_examine\"}\n"
    "    ]}\n"
    "  ]\n"
    "}\n";

static void test_config_load_spdk_example(void **state)
{
    (void)state;
    assert_int_equal(load_text(spdk_example), 0);
    struct vnvme_bdev *b = vnvme_bdev_get("Malloc0");
    assert_non_null(b);
    assert_int_equal(b->num_blocks, 131072);
    assert_true(tgt_transport_created());
    struct tgt_subsystem *ts = tgt_subsystem_find("nqn.2019-07.io.spdk:cnode0");
    assert_non_null(ts);
    assert_string_equal(ts->ss->serial, "SPDK0");
    assert_non_null(ts->ss->ns[1]);
    assert_ptr_equal(ts->ss->ns[1]->bdev, b);
    assert_non_null(ts->listeners);
    assert_string_equal(ts->listeners->traddr, "/var/run");
}

/*
 * A configuration as SPDK v26's nvmf_tgt save_config writes one, every field
 * present: the sections of subsystems vnvmed lacks, their option setters
 * inside bdev and nvmf, and the newer parameters (numa_id, iobuf caches,
 * disable_command_passthru, kas, min_kato, dmrsl, wzsl, enable_nssr,
 * adrfam "unknown").
 */
static const char spdk_v26_config[] =
    "{\"subsystems\": [\n"
    " {\"subsystem\": \"keyring\", \"config\": []},\n"
    " {\"subsystem\": \"iobuf\", \"config\": [{\"method\": \"iobuf_set_options\", \"params\": {\"small_pool_count\": 8192,"
    "   \"large_pool_count\": 1024, \"small_bufsize\": 8192, \"large_bufsize\": 135168, \"enable_numa\": false}}]},\n"
    " {\"subsystem\": \"sock\", \"config\": [{\"method\": \"sock_set_default_impl\", \"params\": {\"impl_name\": \"posix\"}},\n"
    "   {\"method\": \"sock_impl_set_options\", \"params\": {\"impl_name\": \"posix\", \"recv_buf_size\": 2097152,"
    "   \"send_buf_size\": 2097152, \"enable_recv_pipe\": true, \"enable_quickack\": false, \"enable_placement_id\": 0,"
    "   \"enable_zerocopy_send_server\": true, \"enable_zerocopy_send_client\": false, \"zerocopy_threshold\": 0,"
    "   \"tls_version\": 0, \"enable_ktls\": false}}]},\n"
    " {\"subsystem\": \"vmd\", \"config\": []},\n"
    " {\"subsystem\": \"accel\", \"config\": [{\"method\": \"accel_set_options\", \"params\": {\"small_cache_size\": 128,"
    "   \"large_cache_size\": 16, \"task_count\": 2048, \"sequence_count\": 2048, \"buf_count\": 2048}}]},\n"
    " {\"subsystem\": \"bdev\", \"config\": [\n"
    "   {\"method\": \"bdev_set_options\", \"params\": {\"bdev_io_pool_size\": 65535, \"bdev_io_cache_size\": 256,"
    "   \"bdev_auto_examine\": true, \"iobuf_small_cache_size\": 128, \"iobuf_large_cache_size\": 16}},\n"
    "   {\"method\": \"bdev_raid_set_options\", \"params\": {\"process_window_size_kb\": 1024, \"process_max_bandwidth_mb_sec\": 0}},\n"
    "   {\"method\": \"bdev_iscsi_set_options\", \"params\": {\"timeout_sec\": 30}},\n"
    "   {\"method\": \"bdev_nvme_set_options\", \"params\": {\"action_on_timeout\": \"none\", \"timeout_us\": 0,"
    "   \"keep_alive_timeout_ms\": 10000, \"transport_retry_count\": 4, \"bdev_retry_count\": 3}},\n"
    "   {\"method\": \"bdev_nvme_set_hotplug\", \"params\": {\"period_us\": 100000, \"enable\": false}},\n"
    "   {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc0\", \"num_blocks\": 131072, \"block_size\": 512,"
    "   \"physical_block_size\": 512, \"uuid\": \"7f3a1c2e-0b4d-4e5f-8a6b-9c0d1e2f3a4b\", \"optimal_io_boundary\": 0,"
    "   \"md_size\": 0, \"dif_type\": 0, \"dif_is_head_of_md\": false, \"dif_pi_format\": 0, \"numa_id\": -1}},\n"
    "   {\"method\": \"bdev_wait_for_examine\"}]},\n"
    " {\"subsystem\": \"scheduler\", \"config\": [{\"method\": \"framework_set_scheduler\", \"params\": {\"name\": \"static\"}}]},\n"
    " {\"subsystem\": \"nvmf\", \"config\": [\n"
    "   {\"method\": \"nvmf_set_config\", \"params\": {\"discovery_filter\": \"match_any\", \"admin_cmd_passthru\":"
    "   {\"identify_ctrlr\": false}, \"dhchap_digests\": [\"sha256\"], \"dhchap_dhgroups\": [\"null\"]}},\n"
    "   {\"method\": \"nvmf_set_max_subsystems\", \"params\": {\"max_subsystems\": 1024}},\n"
    "   {\"method\": \"nvmf_set_crdt\", \"params\": {\"crdt1\": 0, \"crdt2\": 0, \"crdt3\": 0}},\n"
    "   {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\", \"max_queue_depth\": 256,"
    "   \"max_io_qpairs_per_ctrlr\": 255, \"in_capsule_data_size\": 0, \"max_io_size\": 131072, \"io_unit_size\": 131072,"
    "   \"max_aq_depth\": 32, \"num_shared_buffers\": 0, \"buf_cache_size\": 0, \"iobuf_small_cache_size\": 0,"
    "   \"iobuf_large_cache_size\": 0, \"dif_insert_or_strip\": false, \"zcopy\": false, \"abort_timeout_sec\": 1,"
    "   \"ack_timeout\": 0, \"data_wr_pool_size\": 0, \"disable_command_passthru\": false, \"kas\": 10,"
    "   \"min_kato\": 10000, \"disable_mappable_bar0\": false, \"disable_adaptive_irq\": false,"
    "   \"disable_shadow_doorbells\": false, \"enable_intr_mode_sq_spreading\": false}},\n"
    "   {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\", \"allow_any_host\": true,"
    "   \"serial_number\": \"SPDK00000000000001\", \"model_number\": \"SPDK bdev Controller\", \"max_namespaces\": 32,"
    "   \"min_cntlid\": 1, \"max_cntlid\": 65519, \"ana_reporting\": false, \"dmrsl\": 0, \"wzsl\": 0,"
    "   \"passthrough\": false, \"enable_nssr\": false}},\n"
    "   {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\", \"namespace\": {\"nsid\": 1,"
    "   \"bdev_name\": \"Malloc0\", \"uuid\": \"7f3a1c2e-0b4d-4e5f-8a6b-9c0d1e2f3a4b\", \"no_auto_visible\": false,"
    "   \"hide_metadata\": false}}},\n"
    "   {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2019-07.io.spdk:cnode0\", \"listen_address\":"
    "   {\"trtype\": \"VFIOUSER\", \"adrfam\": \"unknown\", \"traddr\": \"/var/run/vfio-user\", \"trsvcid\": \"0\"},"
    "   \"secure_channel\": false, \"numa_id\": -1}}]}]}\n";

static void test_config_load_spdk_v26(void **state)
{
    (void)state;
    assert_int_equal(load_text(spdk_v26_config), 0);
    struct vnvme_bdev *b = vnvme_bdev_get("Malloc0");
    assert_non_null(b);
    assert_int_equal(b->num_blocks, 131072);
    struct tgt_subsystem *ts = tgt_subsystem_find("nqn.2019-07.io.spdk:cnode0");
    assert_non_null(ts);
    assert_string_equal(ts->ss->serial, "SPDK00000000000001");
    assert_non_null(ts->ss->ns[1]);
    assert_ptr_equal(ts->ss->ns[1]->bdev, b);
    assert_non_null(ts->listeners);
    assert_string_equal(ts->listeners->traddr, "/var/run/vfio-user");
    /* What has no effect here is still refused when SPDK would not accept it either. */
    err("bdev_malloc_create", "{\"name\": \"M2\", \"num_blocks\": 8, \"block_size\": 512, \"numa_idx\": 0}", -32602,
        "unknown parameter: numa_idx");
    err("nvmf_frobnicate_set_options", "{}", -32601, "Method not found");
}

static void test_config_load_errors(void **state)
{
    (void)state;
    char *missing = write_temp("");
    unlink(missing);
    assert_int_equal(config_load_file(missing), -ENOENT);
    free(missing);
    assert_int_equal(load_text("{\"subsystems\": [ {\"subsystem\": \"bdev\", "), -EINVAL);
    assert_int_equal(load_text("[1,2]"), -EINVAL);
    assert_int_equal(load_text("{\"subsystems\": {}}"), -EINVAL);
    assert_int_equal(load_text("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": {}}]}"), -EINVAL);
    assert_int_equal(load_text("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [{\"params\": {}}]}]}"),
                     -EINVAL);
    /* Unknown method inside a known subsystem: refused, later entries not run. */
    assert_int_equal(load_text("{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": ["
                               "{\"method\": \"bdev_frobnicate\"},"
                               "{\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"late\", "
                               "\"num_blocks\": 8, \"block_size\": 512}}]}]}"),
                     -EINVAL);
    assert_null(vnvme_bdev_get("late"));
    /* An operation failure reports its errno. */
    assert_int_equal(load_text("{\"subsystems\": [{\"subsystem\": \"nvmf\", \"config\": ["
                               "{\"method\": \"nvmf_subsystem_remove_ns\", \"params\": {\"nqn\": \"nqn.a:b\", "
                               "\"nsid\": 1}}]}]}"),
                     -ENODEV);
    /* Unknown subsystems are skipped, an empty file's subsystems are fine. */
    assert_int_equal(load_text("{\"subsystems\": [{\"subsystem\": \"iscsi\", \"config\": [{\"method\": \"x\"}]},"
                               "{\"subsystem\": \"bdev\", \"config\": null}]}"),
                     0);
}

static void test_config_round_trip(void **state)
{
    (void)state;
    assert_int_equal(load_text(spdk_example), 0);
    json_object_put(ok("bdev_null_create", "{\"name\":\"Null0\",\"num_blocks\":1024,\"block_size\":4096}"));
    ok_true("nvmf_create_subsystem", "{\"nqn\":\"nqn.2019-07.io.spdk:cnode1\",\"max_namespaces\":8}");
    json_object_put(ok("nvmf_subsystem_add_ns",
                       "{\"nqn\":\"nqn.2019-07.io.spdk:cnode1\",\"namespace\":{\"bdev_name\":\"Null0\",\"nsid\":3,"
                       "\"nguid\":\"00112233445566778899AABBCCDDEEFF\",\"eui64\":\"0102030405060708\"}}"));
    ok_true("nvmf_subsystem_add_listener", "{\"nqn\":\"nqn.2019-07.io.spdk:cnode1\",\"listen_address\":"
                                           "{\"trtype\":\"VFIOUSER\",\"traddr\":\"/tmp/cnode1\"}}");
    ok_true("nvmf_subsystem_add_host", "{\"nqn\":\"nqn.2019-07.io.spdk:cnode1\",\"host\":\"nqn.h:1\"}");

    struct json_object *saved = config_save();
    const char *text = json_object_to_json_string_ext(saved, JSON_C_TO_STRING_PRETTY);
    char *path = write_temp(text);

    fake_tgt_reset();
    assert_null(vnvme_bdev_get("Malloc0"));
    assert_int_equal(config_load_file(path), 0);
    struct json_object *again = config_save();
    if (!json_object_equal(saved, again))
        fail_msg("round trip differs:\n%s\n---\n%s", json_object_to_json_string(saved),
                 json_object_to_json_string(again));
    /* The state itself, not just its description. */
    assert_int_equal(vnvme_bdev_get("Null0")->block_size, 4096);
    assert_int_equal(tgt_subsystem_find("nqn.2019-07.io.spdk:cnode1")->ss->ns[3]->eui64[7], 8);
    json_object_put(saved);
    json_object_put(again);
    unlink(path);
    free(path);
}

/* Every field SPDK's rpc.py sends passes the parameter check; the attach itself then fails on the missing socket. */
static void test_attach_controller_params(void **state)
{
    (void)state;
    err("bdev_nvme_attach_controller",
        "{\"name\":\"Nvme0\",\"trtype\":\"VfioUser\",\"traddr\":\"/nonexistent/vnvme\",\"adrfam\":\"IPv4\","
        "\"trsvcid\":\"\",\"priority\":0,\"subnqn\":\"nqn.a:b\",\"hostnqn\":\"nqn.h:1\",\"hostaddr\":\"\","
        "\"hostsvcid\":\"\",\"prchk_reftag\":false,\"prchk_guard\":false,\"hdgst\":false,\"ddgst\":false,"
        "\"fabrics_connect_timeout_us\":0,\"multipath\":\"failover\",\"num_io_queues\":4,"
        "\"ctrlr_loss_timeout_sec\":0,\"reconnect_delay_sec\":0,\"fast_io_fail_timeout_sec\":0,\"psk\":\"key0\","
        "\"max_bdevs\":128,\"dhchap_key\":\"k1\",\"dhchap_ctrlr_key\":\"k2\"}",
        -ENOENT, "cannot attach /nonexistent/vnvme: No such file or directory");
    err("bdev_nvme_attach_controller", "{\"name\":\"Nvme0\",\"trtype\":\"tcp\",\"traddr\":\"10.0.0.1\"}", -EINVAL,
        "unsupported trtype tcp (only VFIOUSER)");
    err("bdev_nvme_attach_controller", "{\"name\":\"Nvme0\",\"trtype\":\"vfiouser\"}", -32602, "traddr");
    err("bdev_nvme_attach_controller",
        "{\"name\":\"Nvme0\",\"trtype\":\"vfiouser\",\"traddr\":\"/x\",\"frobnicate\":1}", -32602, "frobnicate");
    err("bdev_nvme_attach_controller", "{\"name\":\"Nvme0\",\"trtype\":\"vfiouser\",\"traddr\":\"/x\",\"num_io_queues\":\"4\"}",
        -32602, "num_io_queues");
    /* SPDK's detach may name the path too. */
    err("bdev_nvme_detach_controller",
        "{\"name\":\"Nvme0\",\"trtype\":\"VFIOUSER\",\"traddr\":\"/x\",\"adrfam\":\"IPv4\",\"trsvcid\":\"\","
        "\"subnqn\":\"nqn.a:b\",\"hostaddr\":\"\",\"hostsvcid\":\"\"}",
        -ENODEV, "No such device");
    /* Nothing attached: the bdev section of the configuration has no host-role calls. */
    struct json_object *cfg = ok("framework_get_config", "{\"name\":\"bdev\"}");
    assert_null(strstr(json_object_to_json_string(cfg), "bdev_nvme_"));
    json_object_put(cfg);
}

/*
 * A configuration's host-role calls run after nvmf, wherever the file puts
 * them (the controller may be this daemon's own): the failing attach below
 * comes first in the file, yet the subsystem and the later bdev exist.
 */
static void test_config_host_role_runs_last(void **state)
{
    (void)state;
    assert_int_equal(load_text("{\"subsystems\": [\n"
                               " {\"subsystem\": \"bdev\", \"config\": [\n"
                               "  {\"method\": \"bdev_nvme_set_options\", \"params\": {}},\n"
                               "  {\"method\": \"bdev_nvme_attach_controller\", \"params\": {\"name\": \"Nvme0\", "
                               "\"trtype\": \"VFIOUSER\", \"traddr\": \"/nonexistent/vnvme\"}},\n"
                               "  {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"After\", "
                               "\"num_blocks\": 8, \"block_size\": 512}}]},\n"
                               " {\"subsystem\": \"nvmf\", \"config\": [\n"
                               "  {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"" NQN "\"}}]}]}\n"),
                     -ENOENT);
    assert_non_null(vnvme_bdev_get("After"));
    assert_non_null(tgt_subsystem_find(NQN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_malloc_create_names_and_errors, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_bdev_delete_and_get, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_uring_create, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_transport, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_subsystem_create_delete, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_namespaces, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_listeners_and_hosts, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_app_methods, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_config_load_spdk_example, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_config_load_spdk_v26, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_config_load_errors, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_config_round_trip, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_attach_controller_params, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_config_host_role_runs_last, rpc_clean_slate, rpc_clean_slate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
