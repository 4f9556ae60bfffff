/* SPDX-License-Identifier: MIT */
/*
 * `vnvme controller ...` and `vnvme cuse ...`: the host role of vnvmed
 * (attaching vfio-user NVMe controllers with the userspace driver and
 * exposing them as CUSE devices), as shorthands for the SPDK-named
 * bdev_nvme_* methods.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rpc_client.h"

/* The controller's CUSE device paths, one a line, as bdev_nvme_get_controllers reports them. */
static void print_cuse_devices(const char *name)
{
    struct json_object *params = obj_with("name", name), *result = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = rpc_client_call(socket_path, "bdev_nvme_get_controllers", params, &result, &code, &msg);
    json_object_put(params);
    free(msg);
    if (rc != 0)
        return; /* registered all the same; only the listing is missing */
    struct json_object *ctrlrs = NULL, *devs = NULL;
    struct json_object *c = json_object_array_get_idx(result, 0);
    if (c && json_object_object_get_ex(c, "ctrlrs", &ctrlrs) &&
        json_object_object_get_ex(json_object_array_get_idx(ctrlrs, 0), "cuse_devices", &devs))
        for (size_t i = 0; i < json_object_array_length(devs); i++)
            printf("%s\n", json_object_get_string(json_object_array_get_idx(devs, i)));
    json_object_put(result);
}

int cmd_controller(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "attach") == 0) {
        if (!need(argc, 3, 3))
            return 2;
        struct json_object *p = obj_with("name", argv[1]);
        json_object_object_add(p, "trtype", json_object_new_string("VFIOUSER"));
        json_object_object_add(p, "traddr", json_object_new_string(argv[2]));
        return call_and_print("bdev_nvme_attach_controller", p);
    }
    if (argc >= 1 && strcmp(argv[0], "detach") == 0)
        return need(argc, 2, 2) ? call_and_print("bdev_nvme_detach_controller", obj_with("name", argv[1])) : 2;
    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        if (!need(argc, 1, 2))
            return 2;
        return call_and_print("bdev_nvme_get_controllers", argc == 2 ? obj_with("name", argv[1]) : NULL);
    }
    fprintf(stderr, "vnvme: controller: expected attach, detach or list\n");
    return 2;
}

int cmd_cuse(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "register") == 0) {
        if (!need(argc, 2, 2))
            return 2;
        struct json_object *result = NULL;
        int code = 0;
        char *msg = NULL;
        struct json_object *p = obj_with("name", argv[1]);
        int rc = rpc_client_call(socket_path, "bdev_nvme_cuse_register", p, &result, &code, &msg);
        json_object_put(p);
        json_object_put(result);
        if (rc < 0)
            return 1;
        if (rc > 0) {
            fprintf(stderr, "vnvme: bdev_nvme_cuse_register failed: %s (code %d)\n", msg, code);
            free(msg);
            return 1;
        }
        /* What the operator wants to know next is where the devices are. */
        print_cuse_devices(argv[1]);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "unregister") == 0)
        return need(argc, 2, 2) ? call_and_print("bdev_nvme_cuse_unregister", obj_with("name", argv[1])) : 2;
    fprintf(stderr, "vnvme: cuse: expected register or unregister\n");
    return 2;
}
