/* SPDX-License-Identifier: MIT */
/*
 * The configuration record (docs/STATE-FORMAT.md, OFFER): the running
 * configuration as save_config writes it, without listeners (controllers
 * travel as state of their own), and every RAM bdev's memory as an fd. A
 * live upgrade sends it to the new process; crash recovery keeps it in the
 * service manager's fd store. Applying it builds the bdevs, subsystems and
 * namespaces, each RAM bdev on the memory it had.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover.h"
#include "vnvme/bdev.h"
#include "vnvmed.h"

#define MAX_BDEV_FDS 4096u

static struct {
    char name[64];
    int fd;
} bdev_fds[MAX_BDEV_FDS];
static uint32_t nr_bdev_fds;

static struct json_object *host_role_cfg;

int config_record_apply_host_role(const char *origin)
{
    if (!host_role_cfg)
        return 0;
    int rc = config_load_json(origin, host_role_cfg, CONFIG_HOST_ROLE);
    json_object_put(host_role_cfg);
    host_role_cfg = NULL;
    return rc;
}

int takeover_bdev_fd(const char *name)
{
    for (uint32_t i = 0; i < nr_bdev_fds; i++)
        if (bdev_fds[i].fd >= 0 && strcmp(bdev_fds[i].name, name) == 0) {
            int fd = bdev_fds[i].fd;
            bdev_fds[i].fd = -1;
            return fd;
        }
    return -1;
}

int config_record_write(struct vnvme_state_out *w)
{
    struct json_object *cfg = config_save();
    struct json_object *subsystems = NULL;
    if (cfg && json_object_object_get_ex(cfg, "subsystems", &subsystems)) {
        for (size_t i = 0; i < json_object_array_length(subsystems); i++) {
            struct json_object *s = json_object_array_get_idx(subsystems, i), *config = NULL;
            if (!json_object_object_get_ex(s, "config", &config) || !json_object_is_type(config, json_type_array))
                continue;
            for (size_t k = json_object_array_length(config); k-- > 0;) {
                struct json_object *call = json_object_array_get_idx(config, k), *m = NULL;
                if (json_object_object_get_ex(call, "method", &m) &&
                    strcmp(json_object_get_string(m), "nvmf_subsystem_add_listener") == 0)
                    json_object_array_del_idx(config, k, 1);
            }
        }
    }
    vnvme_state_put_u32(w, HANDOVER_STATE_VERSION);
    vnvme_state_put_str(w, cfg ? json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN) : "{}");
    json_object_put(cfg);
    uint32_t n = 0;
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b; b = vnvme_bdev_next(b))
        n += vnvme_bdev_malloc_fd(b) >= 0;
    vnvme_state_put_u32(w, n);
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b; b = vnvme_bdev_next(b)) {
        int fd = vnvme_bdev_malloc_fd(b);
        if (fd < 0)
            continue;
        vnvme_state_put_str(w, b->name);
        vnvme_state_put_fd(w, fd);
    }
    return vnvme_state_out_error(w);
}

int config_record_apply(struct vnvme_state_in *r, uint32_t reads_version, const char *origin, char *why,
                        size_t why_len)
{
    uint32_t version = vnvme_state_get_u32(r);
    if (vnvme_state_in_ok(r) && version != reads_version) {
        snprintf(why, why_len, "state format version %u is not one this vnvmed reads (it reads %u)", version,
                 reads_version);
        return -EPROTO;
    }
    uint32_t len = vnvme_state_get_u32(r);
    r->pos -= 4 * vnvme_state_in_ok(r); /* get_str reads the length itself */
    char *text = vnvme_state_in_ok(r) && len < (64u << 20) ? malloc((size_t)len + 1) : NULL;
    if (!text) {
        snprintf(why, why_len, "the configuration is unreadable");
        return -EPROTO;
    }
    vnvme_state_get_str(r, text, (size_t)len + 1);
    uint32_t n = vnvme_state_get_u32(r);
    if (n > MAX_BDEV_FDS)
        vnvme_state_fail(r, "too many RAM bdevs");
    for (uint32_t i = 0; i < n && vnvme_state_in_ok(r); i++) {
        vnvme_state_get_str(r, bdev_fds[i].name, sizeof(bdev_fds[i].name));
        bdev_fds[i].fd = vnvme_state_get_fd(r);
        nr_bdev_fds = i + 1;
    }
    vnvme_state_expect_end(r);
    if (!vnvme_state_in_ok(r)) {
        snprintf(why, why_len, "the configuration record is malformed: %s", vnvme_state_in_why(r));
        free(text);
        return -EPROTO;
    }
    struct json_object *cfg = json_tokener_parse(text);
    free(text);
    if (!cfg) {
        snprintf(why, why_len, "the configuration is not JSON");
        return -EPROTO;
    }
    int rc = config_load_json(origin, cfg, CONFIG_TARGET);
    if (rc == 0) {
        json_object_put(host_role_cfg);
        host_role_cfg = cfg; /* config_record_apply_host_role, once the target side serves */
    } else {
        json_object_put(cfg);
    }
    if (rc) {
        snprintf(why, why_len, "the configuration does not load here: %s", strerror(-rc));
        return rc;
    }
    for (uint32_t i = 0; i < nr_bdev_fds; i++)
        if (bdev_fds[i].fd >= 0) {
            snprintf(why, why_len, "RAM bdev %s's memory came with the configuration, which has no such bdev",
                     bdev_fds[i].name);
            return -EPROTO;
        }
    return 0;
}
