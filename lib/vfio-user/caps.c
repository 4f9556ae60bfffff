/* SPDX-License-Identifier: MIT */
/* The JSON capabilities object carried by VFIO_USER_VERSION. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "msg.h"

void vfio_user_caps_defaults(struct vfio_user_caps *c)
{
    c->max_msg_fds = VFIO_USER_DEFAULT_MAX_MSG_FDS;
    c->max_data_xfer_size = VFIO_USER_DEFAULT_MAX_DATA_XFER;
    c->max_dma_maps = VFIO_USER_DEFAULT_MAX_DMA_MAPS;
    c->pgsizes = VFIO_USER_DEFAULT_PGSIZES;
    c->twin_socket = false;
}

/* A non-negative integer no larger than max; absent keys keep *out. */
static int get_uint(struct json_object *caps, const char *key, uint64_t max, uint64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(caps, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -EINVAL;
    /* json-c stores big positives as uint64; negative numbers come back as int64 < 0. */
    errno = 0;
    int64_t s = json_object_get_int64(v);
    uint64_t u;
    if (s < 0) {
        return -EINVAL;
    } else if (s == INT64_MAX) {
        u = json_object_get_uint64(v);
    } else {
        u = (uint64_t)s;
    }
    if (u > max)
        return -EINVAL;
    *out = u;
    return 0;
}

static int parse_caps_object(struct json_object *caps, struct vfio_user_caps *out)
{
    uint64_t v;
    int rc;

    v = out->max_msg_fds;
    if ((rc = get_uint(caps, "max_msg_fds", UINT32_MAX, &v)))
        return rc;
    out->max_msg_fds = (uint32_t)v;

    v = out->max_data_xfer_size;
    if ((rc = get_uint(caps, "max_data_xfer_size", UINT32_MAX, &v)))
        return rc;
    out->max_data_xfer_size = (uint32_t)v;

    v = out->max_dma_maps;
    if ((rc = get_uint(caps, "max_dma_maps", UINT32_MAX, &v)))
        return rc;
    out->max_dma_maps = (uint32_t)v;

    v = out->pgsizes;
    if ((rc = get_uint(caps, "pgsizes", UINT64_MAX, &v)))
        return rc;
    out->pgsizes = v;

    struct json_object *twin, *sup;
    if (json_object_object_get_ex(caps, "twin_socket", &twin)) {
        if (!json_object_is_type(twin, json_type_object))
            return -EINVAL;
        if (json_object_object_get_ex(twin, "supported", &sup)) {
            if (!json_object_is_type(sup, json_type_boolean))
                return -EINVAL;
            out->twin_socket = json_object_get_boolean(sup);
        }
    }
    /* Other keys (write_multiple, migration, future ones) are not ours to judge. */
    return 0;
}

int vfio_user_caps_parse(const char *data, size_t len, struct vfio_user_caps *out)
{
    vfio_user_caps_defaults(out);
    /* The spec counts the terminating NUL in the data; tolerate its absence. */
    while (len > 0 && data[len - 1] == '\0')
        len--;
    if (len == 0)
        return 0;
    if (memchr(data, '\0', len))
        return -EINVAL;
    if (len > 65536)
        return -EINVAL;

    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    struct json_object *root = json_tokener_parse_ex(tok, data, (int)len);
    int rc = 0;
    if (!root || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len || !json_object_is_type(root, json_type_object)) {
        rc = -EINVAL;
        goto out;
    }
    struct json_object *caps;
    if (json_object_object_get_ex(root, "capabilities", &caps)) {
        if (!json_object_is_type(caps, json_type_object)) {
            rc = -EINVAL;
            goto out;
        }
        rc = parse_caps_object(caps, out);
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

int vfio_user_caps_check_reply(const char *data, size_t len, size_t request_len, const struct vfio_user_caps *c,
                               const char **why)
{
    const char *bad = NULL;
    if (len > request_len)
        bad = "reply larger than the request";
    else if (len > 0 && data[len - 1] != '\0')
        bad = "capabilities not NUL-terminated";
    else if (c->max_msg_fds > VFIO_USER_MAX_MSG_FDS_LIMIT)
        bad = "max_msg_fds above 16";
    else if (c->max_data_xfer_size > VFIO_USER_MAX_DATA_XFER_LIMIT)
        bad = "max_data_xfer_size above 64 MiB";
    else if (c->max_dma_maps > VFIO_USER_MAX_DMA_MAPS_LIMIT)
        bad = "max_dma_maps above 65535";
    else if (c->pgsizes == 0 || (c->pgsizes & (VFIO_USER_DEFAULT_PGSIZES - 1)))
        bad = "pgsizes not a multiple of 4096";
    if (why)
        *why = bad;
    return bad ? -EPROTO : 0;
}

int vfio_user_caps_format(const struct vfio_user_caps *c, char *buf, size_t buf_len)
{
    int n = snprintf(buf, buf_len,
                     "{\"capabilities\":{\"max_msg_fds\":%" PRIu32 ",\"max_data_xfer_size\":%" PRIu32
                     ",\"max_dma_maps\":%" PRIu32 ",\"pgsizes\":%" PRIu64 "}}",
                     c->max_msg_fds, c->max_data_xfer_size, c->max_dma_maps, c->pgsizes);
    if (n < 0 || (size_t)n + 1 > buf_len)
        return -ENOSPC;
    return n + 1;
}
