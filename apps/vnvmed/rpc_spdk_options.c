/* SPDX-License-Identifier: MIT */
/*
 * Option setters of SPDK subsystems that vnvmed has no counterpart for (its
 * bdev layer's pools and caches, RAID, iSCSI, the NVMe-oF target's global
 * tuning, iobuf, sockets, accel, the keyring, the scheduler). SPDK's
 * save_config writes them into every configuration and rpc.py's load_config
 * replays them, so they are accepted with any parameters, change nothing, and
 * say so once at notice level. Names SPDK does not know stay unknown methods.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "common/log.h"
#include "rpc_internal.h"

static struct json_object *accepted_without_effect(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    const char *method = rpc_current_method();
    if (rpc_note_once(method))
        VNVME_NOTICE("rpc", "%s: SPDK option with no counterpart in vnvmed: accepted, no effect", method);
    return json_object_new_boolean(1);
}

const struct rpc_method rpc_spdk_option_methods[] = {
    {"bdev_set_options", accepted_without_effect, NULL},
    {"bdev_nvme_set_options", accepted_without_effect, NULL},
    {"bdev_nvme_set_hotplug", accepted_without_effect, NULL},
    {"bdev_raid_set_options", accepted_without_effect, NULL},
    {"bdev_iscsi_set_options", accepted_without_effect, NULL},
    {"nvmf_set_config", accepted_without_effect, NULL},
    {"nvmf_set_max_subsystems", accepted_without_effect, NULL},
    {"nvmf_set_crdt", accepted_without_effect, NULL},
    {"iobuf_set_options", accepted_without_effect, NULL},
    {"sock_set_default_impl", accepted_without_effect, NULL},
    {"sock_impl_set_options", accepted_without_effect, NULL},
    {"accel_set_options", accepted_without_effect, NULL},
    {"keyring_linux_set_options", accepted_without_effect, NULL},
    {"framework_set_scheduler", accepted_without_effect, NULL},
    {"fsdev_set_opts", accepted_without_effect, NULL},
    {NULL, NULL, NULL},
};
