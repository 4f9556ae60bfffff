/* SPDX-License-Identifier: MIT */
/*
 * vnvme: command line client of vnvmed's JSON-RPC socket. `vnvme rpc METHOD
 * [PARAMS]` calls any method; the other subcommands are shorthands that build
 * the SPDK-shaped parameters.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "identify.h"
#include "rpc_client.h"

#define DEFAULT_SOCKET "/var/run/vnvme/rpc.sock"

const char *socket_path = DEFAULT_SOCKET;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: vnvme [-s SOCKET] [-t SECONDS] COMMAND [ARGS]\n"
            "Control a running vnvmed through its JSON-RPC socket (default %s).\n"
            "\n"
            "Commands:\n"
            "  rpc METHOD ['{JSON params}']        call any method (vnvme rpc rpc_get_methods lists them)\n"
            "  bdev list                           list block devices\n"
            "  bdev malloc-create NAME SIZE_MB [BLOCK_SIZE]\n"
            "                                      RAM-backed bdev (block size 512 by default)\n"
            "  bdev null-create NAME SIZE_MB [BLOCK_SIZE]\n"
            "                                      bdev that discards writes and reads zeroes\n"
            "  bdev uring-create NAME FILE [BLOCK_SIZE]\n"
            "                                      file or block device through io_uring\n"
            "  bdev delete NAME                    delete a bdev (any kind)\n"
            "  transport create                    create the VFIOUSER transport\n"
            "  subsystem list                      list subsystems with namespaces and listeners\n"
            "  subsystem create NQN [SERIAL [MODEL]]\n"
            "  subsystem delete NQN\n"
            "  ns add NQN BDEV [NSID]              add a namespace (prints its NSID)\n"
            "  ns remove NQN NSID\n"
            "  listener add NQN DIR                serve a controller at DIR/cntrl\n"
            "  listener remove NQN DIR\n"
            "  config save                         print the running configuration (SPDK JSON format)\n"
            "  upgrade [VNVMED]                    replace the running vnvmed with VNVMED (default: the\n"
            "                                      binary it was started from) without disconnecting\n"
            "                                      its clients; on failure the running one keeps serving\n"
            "  iostat [-i SECONDS] [-c COUNT] [-b BDEV] [-H]\n"
            "                                      per-bdev reads, writes, MiB/s, mean and p99 latency and\n"
            "                                      queue depth every interval (default 1 s, until interrupted);\n"
            "                                      p99 for bdevs whose histogram is on (-H turns it on)\n"
            "  top [-i SECONDS]                    a live view redrawn every interval: reactors' busy %%,\n"
            "                                      then bdevs (IOPS, MiB/s, latency, rate limit use) or\n"
            "                                      controllers; keys b, c, s (sort), q\n"
            "\n"
            "Host role (NVMe controllers as CUSE devices):\n"
            "  controller attach NAME DIR          attach the vfio-user NVMe controller at DIR/cntrl with\n"
            "                                      vnvmed's userspace driver\n"
            "  controller detach NAME\n"
            "  controller list [NAME]              attached controllers, their state and CUSE devices\n"
            "  cuse register NAME                  expose the controller as /dev/vnvme/nvmeN and nvmeNnM\n"
            "                                      (prints the device paths)\n"
            "  cuse unregister NAME\n"
            "\n"
            "Without vnvmed's socket:\n"
            "  list [DIR]                          table of the CUSE namespaces in DIR (default /dev/vnvme),\n"
            "                                      like `nvme list`, from the devices' own NVMe ioctls\n"
            "  identify -r 'trtype:VFIOUSER traddr:DIR'\n"
            "                                      attach to a controller directly (not through vnvmed's\n"
            "                                      RPC) and print its registers, Identify Controller and\n"
            "                                      namespaces\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH     RPC socket of vnvmed\n"
            "  -t, --timeout SECONDS how long to wait for vnvmed's reply (default %d; 0: forever)\n"
            "  -h, --help            this text\n",
            DEFAULT_SOCKET, RPC_CLIENT_DEFAULT_TIMEOUT_MS / 1000);
}

int call_and_print(const char *method, struct json_object *params)
{
    struct json_object *result = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = rpc_client_call(socket_path, method, params, &result, &code, &msg);
    json_object_put(params);
    if (rc < 0)
        return 1;
    if (rc > 0) {
        fprintf(stderr, "vnvme: %s failed: %s (code %d)\n", method, msg, code);
        free(msg);
        return 1;
    }
    printf("%s\n", result == NULL ? "null"
                                  : json_object_to_json_string_ext(result, JSON_C_TO_STRING_PRETTY |
                                                                               JSON_C_TO_STRING_SPACED |
                                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(result);
    return 0;
}

static bool parse_u64(const char *s, const char *what, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0) {
        fprintf(stderr, "vnvme: invalid %s: %s\n", what, s);
        return false;
    }
    *out = v;
    return true;
}

struct json_object *obj_with(const char *key, const char *value)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, key, json_object_new_string(value));
    return o;
}

int need(int argc, int min, int max)
{
    if (argc < min || argc > max) {
        fprintf(stderr, "vnvme: wrong number of arguments (see vnvme --help)\n");
        return 0;
    }
    return 1;
}

static int cmd_rpc(int argc, char **argv)
{
    if (!need(argc, 1, 2))
        return 2;
    struct json_object *params = NULL;
    if (argc == 2) {
        enum json_tokener_error jerr;
        params = json_tokener_parse_verbose(argv[1], &jerr);
        if (params == NULL) {
            fprintf(stderr, "vnvme: params are not valid JSON: %s\n", json_tokener_error_desc(jerr));
            return 2;
        }
    }
    return call_and_print(argv[0], params);
}

static int sized_create(const char *method, int argc, char **argv)
{
    uint64_t size_mb, block_size = 512;
    if (!need(argc, 2, 3))
        return 2;
    if (!parse_u64(argv[1], "SIZE_MB", &size_mb) || (argc == 3 && !parse_u64(argv[2], "BLOCK_SIZE", &block_size)))
        return 2;
    if (block_size == 0 || size_mb > (UINT64_MAX >> 20) || (size_mb << 20) % block_size != 0) {
        fprintf(stderr, "vnvme: SIZE_MB must be a whole number of blocks of BLOCK_SIZE\n");
        return 2;
    }
    struct json_object *p = obj_with("name", argv[0]);
    json_object_object_add(p, "num_blocks", json_object_new_uint64((size_mb << 20) / block_size));
    json_object_object_add(p, "block_size", json_object_new_uint64(block_size));
    return call_and_print(method, p);
}

/* The delete method depends on the bdev's kind, which bdev_get_bdevs reports as product_name. */
static int bdev_delete(const char *name)
{
    struct json_object *result = NULL;
    int code = 0;
    char *msg = NULL;
    struct json_object *p = obj_with("name", name);
    int rc = rpc_client_call(socket_path, "bdev_get_bdevs", p, &result, &code, &msg);
    json_object_put(p);
    if (rc < 0)
        return 1;
    if (rc > 0) {
        fprintf(stderr, "vnvme: bdev %s: %s\n", name, msg);
        free(msg);
        return 1;
    }
    struct json_object *b = json_object_is_type(result, json_type_array) ? json_object_array_get_idx(result, 0) : NULL;
    struct json_object *product = NULL;
    const char *pn = b && json_object_object_get_ex(b, "product_name", &product) ? json_object_get_string(product) : "";
    const char *method = strcasestr(pn, "malloc") ? "bdev_malloc_delete"
                         : strcasestr(pn, "null") ? "bdev_null_delete"
                         : strcasestr(pn, "uring") ? "bdev_uring_delete"
                         : strcasestr(pn, "delay") ? "bdev_delay_delete"
                         : strcasestr(pn, "rbd")   ? "bdev_rbd_delete"
                                                   : NULL;
    if (method == NULL) {
        fprintf(stderr, "vnvme: bdev %s: do not know how to delete a \"%s\"\n", name, pn);
        json_object_put(result);
        return 1;
    }
    json_object_put(result);
    return call_and_print(method, obj_with("name", name));
}

static int cmd_bdev(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "vnvme: bdev: expected list, malloc-create, null-create, uring-create or delete\n");
        return 2;
    }
    if (strcmp(argv[0], "list") == 0)
        return need(argc, 1, 1) ? call_and_print("bdev_get_bdevs", NULL) : 2;
    if (strcmp(argv[0], "malloc-create") == 0)
        return sized_create("bdev_malloc_create", argc - 1, argv + 1);
    if (strcmp(argv[0], "null-create") == 0)
        return sized_create("bdev_null_create", argc - 1, argv + 1);
    if (strcmp(argv[0], "uring-create") == 0) {
        uint64_t bs = 0;
        if (!need(argc, 3, 4) || (argc == 4 && !parse_u64(argv[3], "BLOCK_SIZE", &bs)))
            return 2;
        struct json_object *p = obj_with("name", argv[1]);
        json_object_object_add(p, "filename", json_object_new_string(argv[2]));
        if (argc == 4)
            json_object_object_add(p, "block_size", json_object_new_uint64(bs));
        return call_and_print("bdev_uring_create", p);
    }
    if (strcmp(argv[0], "delete") == 0)
        return need(argc, 2, 2) ? bdev_delete(argv[1]) : 2;
    fprintf(stderr, "vnvme: unknown bdev command: %s\n", argv[0]);
    return 2;
}

static int cmd_subsystem(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return need(argc, 1, 1) ? call_and_print("nvmf_get_subsystems", NULL) : 2;
    if (argc >= 1 && strcmp(argv[0], "create") == 0) {
        if (!need(argc, 2, 4))
            return 2;
        struct json_object *p = obj_with("nqn", argv[1]);
        json_object_object_add(p, "allow_any_host", json_object_new_boolean(1));
        if (argc >= 3)
            json_object_object_add(p, "serial_number", json_object_new_string(argv[2]));
        if (argc >= 4)
            json_object_object_add(p, "model_number", json_object_new_string(argv[3]));
        return call_and_print("nvmf_create_subsystem", p);
    }
    if (argc >= 1 && strcmp(argv[0], "delete") == 0)
        return need(argc, 2, 2) ? call_and_print("nvmf_delete_subsystem", obj_with("nqn", argv[1])) : 2;
    fprintf(stderr, "vnvme: subsystem: expected list, create or delete\n");
    return 2;
}

static int cmd_ns(int argc, char **argv)
{
    uint64_t nsid = 0;
    if (argc >= 1 && strcmp(argv[0], "add") == 0) {
        if (!need(argc, 3, 4) || (argc == 4 && !parse_u64(argv[3], "NSID", &nsid)))
            return 2;
        struct json_object *p = obj_with("nqn", argv[1]);
        struct json_object *ns = obj_with("bdev_name", argv[2]);
        if (argc == 4)
            json_object_object_add(ns, "nsid", json_object_new_uint64(nsid));
        json_object_object_add(p, "namespace", ns);
        return call_and_print("nvmf_subsystem_add_ns", p);
    }
    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        if (!need(argc, 3, 3) || !parse_u64(argv[2], "NSID", &nsid))
            return 2;
        struct json_object *p = obj_with("nqn", argv[1]);
        json_object_object_add(p, "nsid", json_object_new_uint64(nsid));
        return call_and_print("nvmf_subsystem_remove_ns", p);
    }
    fprintf(stderr, "vnvme: ns: expected add or remove\n");
    return 2;
}

static int cmd_listener(int argc, char **argv)
{
    bool add = argc >= 1 && strcmp(argv[0], "add") == 0;
    if (!(add || (argc >= 1 && strcmp(argv[0], "remove") == 0))) {
        fprintf(stderr, "vnvme: listener: expected add or remove\n");
        return 2;
    }
    if (!need(argc, 3, 3))
        return 2;
    struct json_object *p = obj_with("nqn", argv[1]);
    struct json_object *la = obj_with("trtype", "VFIOUSER");
    json_object_object_add(la, "adrfam", json_object_new_string("IPv4"));
    json_object_object_add(la, "traddr", json_object_new_string(argv[2]));
    json_object_object_add(la, "trsvcid", json_object_new_string(""));
    json_object_object_add(p, "listen_address", la);
    return call_and_print(add ? "nvmf_subsystem_add_listener" : "nvmf_subsystem_remove_listener", p);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    /* "+": stop at the command so its arguments (e.g. JSON) are never taken for options. */
    while ((opt = getopt_long(argc, argv, "+s:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket_path = optarg;
            break;
        case 't': {
            /* Seconds, fractions allowed, as rpc.py's -t. */
            char *end = NULL;
            errno = 0;
            double sec = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(sec >= 0) || sec > 86400.0 * 365) {
                fprintf(stderr, "vnvme: bad timeout '%s': expected seconds (0 waits forever)\n", optarg);
                return 2;
            }
            int ms = (int)(sec * 1000.0 + 0.5);
            rpc_client_set_timeout_ms(sec > 0 && ms == 0 ? 1 : ms);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int n = argc - optind - 1;
    char **args = argv + optind + 1;
    if (strcmp(cmd, "rpc") == 0)
        return cmd_rpc(n, args);
    if (strcmp(cmd, "bdev") == 0)
        return cmd_bdev(n, args);
    if (strcmp(cmd, "subsystem") == 0)
        return cmd_subsystem(n, args);
    if (strcmp(cmd, "ns") == 0)
        return cmd_ns(n, args);
    if (strcmp(cmd, "listener") == 0)
        return cmd_listener(n, args);
    if (strcmp(cmd, "controller") == 0)
        return cmd_controller(n, args);
    if (strcmp(cmd, "cuse") == 0)
        return cmd_cuse(n, args);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(n, args);
    if (strcmp(cmd, "iostat") == 0)
        return cmd_iostat(n, args);
    if (strcmp(cmd, "top") == 0)
        return cmd_top(n, args);
    if (strcmp(cmd, "transport") == 0 && n == 1 && strcmp(args[0], "create") == 0)
        return call_and_print("nvmf_create_transport", obj_with("trtype", "VFIOUSER"));
    if (strcmp(cmd, "config") == 0 && n == 1 && strcmp(args[0], "save") == 0)
        return call_and_print("save_config", NULL);
    if (strcmp(cmd, "upgrade") == 0 && n <= 1) {
        /* vnvmed starts it from its own working directory: name it absolutely. */
        char path[PATH_MAX];
        if (n == 1 && !realpath(args[0], path)) {
            fprintf(stderr, "vnvme: upgrade: %s: %s\n", args[0], strerror(errno));
            return 1;
        }
        return call_and_print("framework_upgrade", n == 1 ? obj_with("binary", path) : NULL);
    }
    if (strcmp(cmd, "identify") == 0)
        return cmd_identify(argc - optind, argv + optind);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vnvme: unknown command: %s (see vnvme --help)\n", cmd);
    return 2;
}
