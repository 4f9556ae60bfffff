/* SPDX-License-Identifier: MIT */
/*
 * SPDK-shaped configuration files: {"subsystems":[{"subsystem":"bdev",
 * "config":[{"method":..., "params":{...}}, ...]}, ...]}. Loading replays the
 * method calls through rpc_dispatch (bdevs before nvmf, whatever the file's
 * order, since namespaces need their bdevs; the host role's bdev_nvme_* calls
 * last, see load_phases); saving emits the calls that recreate the running
 * state.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "rpc_internal.h"
#include "vnvme/bdev_qos.h"
#include "vnvme/bdev_rbd.h"
#include "vnvmed.h"

#define CONFIG_MAX_SIZE (64u << 20)

static const char *const load_order[] = {"bdev", "nvmf", NULL};

const char *const *config_subsystem_names(void)
{
    return load_order;
}

/*
 * SPDK keeps bdev_nvme_attach_controller and bdev_nvme_cuse_register in the
 * "bdev" subsystem, but the controller they attach may be served by this very
 * daemon: they run after nvmf has created its subsystems and listeners.
 * Nothing depends on them in turn (they create no bdevs that namespaces use).
 */
enum which_methods { ALL_METHODS, NOT_HOST_ROLE, ONLY_HOST_ROLE };
static const struct load_phase {
    const char *subsystem;
    enum which_methods which;
} load_phases[] = {{"bdev", NOT_HOST_ROLE}, {"nvmf", ALL_METHODS}, {"bdev", ONLY_HOST_ROLE}};

static bool wanted(const char *method, enum which_methods which)
{
    bool host_role = strncmp(method, "bdev_nvme_", 10) == 0;
    return which == ALL_METHODS || host_role == (which == ONLY_HOST_ROLE);
}

static char *read_file(const char *path, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        *err = -errno;
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_MAX_SIZE) {
        *err = S_ISDIR(st.st_mode) ? -EISDIR : !S_ISREG(st.st_mode) ? -EINVAL : -EFBIG;
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    buf[got] = '\0';
    return buf;
}

static int code_to_errno(int code)
{
    return code < 0 && code > -4096 ? code : -EINVAL;
}

static int run_subsystem(const char *path, const char *name, struct json_object *config, enum which_methods which)
{
    size_t n = json_object_array_length(config);
    for (size_t i = 0; i < n; i++) {
        struct json_object *entry = json_object_array_get_idx(config, i);
        struct json_object *method = NULL, *params = NULL;
        if (!json_object_is_type(entry, json_type_object) || !json_object_object_get_ex(entry, "method", &method) ||
            !json_object_is_type(method, json_type_string)) {
            VNVME_ERR("config", "%s: %s config[%zu]: not an object with a \"method\" string", path, name, i);
            return -EINVAL;
        }
        if (!wanted(json_object_get_string(method), which))
            continue;
        json_object_object_get_ex(entry, "params", &params);
        int code = 0;
        char *msg = NULL;
        struct json_object *res = rpc_dispatch(json_object_get_string(method), params, &code, &msg);
        json_object_put(res);
        if (code != 0) {
            VNVME_ERR("config", "%s: %s config[%zu] %s failed: %s (%d)", path, name, i, json_object_get_string(method),
                      msg ? msg : "?", code);
            free(msg);
            return code_to_errno(code);
        }
    }
    return 0;
}

static bool is_loaded_subsystem(const char *name)
{
    for (size_t i = 0; load_order[i] != NULL; i++)
        if (strcmp(name, load_order[i]) == 0)
            return true;
    return false;
}

static int load(const char *path, struct json_object *root, enum config_part part)
{
    struct json_object *subsystems = NULL;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "subsystems", &subsystems) ||
        !json_object_is_type(subsystems, json_type_array)) {
        VNVME_ERR("config", "%s: expected an object with a \"subsystems\" array", path);
        return -EINVAL;
    }
    size_t n = json_object_array_length(subsystems);
    for (size_t i = 0; i < n; i++) {
        struct json_object *s = json_object_array_get_idx(subsystems, i), *name = NULL, *config = NULL;
        if (!json_object_is_type(s, json_type_object) || !json_object_object_get_ex(s, "subsystem", &name) ||
            !json_object_is_type(name, json_type_string)) {
            VNVME_ERR("config", "%s: subsystems[%zu]: expected an object with a \"subsystem\" name", path, i);
            return -EINVAL;
        }
        json_object_object_get_ex(s, "config", &config);
        if (config != NULL && !json_object_is_type(config, json_type_array)) {
            VNVME_ERR("config", "%s: subsystem %s: \"config\" must be an array", path, json_object_get_string(name));
            return -EINVAL;
        }
        if (!is_loaded_subsystem(json_object_get_string(name)) && config != NULL &&
            json_object_array_length(config) > 0)
            VNVME_NOTICE("config", "%s: skipping subsystem %s (not used by vnvmed)", path,
                         json_object_get_string(name));
    }
    for (size_t o = 0; o < sizeof(load_phases) / sizeof(load_phases[0]); o++) {
        const struct load_phase *ph = &load_phases[o];
        if ((part == CONFIG_TARGET && ph->which == ONLY_HOST_ROLE) || (part == CONFIG_HOST_ROLE && ph->which != ONLY_HOST_ROLE))
            continue;
        for (size_t i = 0; i < n; i++) {
            struct json_object *s = json_object_array_get_idx(subsystems, i), *name = NULL, *config = NULL;
            json_object_object_get_ex(s, "subsystem", &name);
            if (strcmp(json_object_get_string(name), ph->subsystem) != 0 ||
                !json_object_object_get_ex(s, "config", &config) || config == NULL)
                continue;
            int rc = run_subsystem(path, ph->subsystem, config, ph->which);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int config_load_file(const char *path)
{
    int err = 0;
    char *text = read_file(path, &err);
    if (text == NULL) {
        VNVME_ERR("config", "cannot read %s: %s", path, strerror(-err));
        return err;
    }
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL) {
        free(text);
        return -ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    struct json_object *root = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        size_t at = json_tokener_get_parse_end(tok);
        size_t line = 1;
        for (size_t i = 0; i < at && text[i]; i++)
            line += text[i] == '\n';
        VNVME_ERR("config", "%s:%zu: invalid JSON: %s", path, line,
                  root == NULL && jerr == json_tokener_continue ? "unexpected end of file"
                                                                : json_tokener_error_desc(jerr));
        json_object_put(root);
        json_tokener_free(tok);
        free(text);
        return -EINVAL;
    }
    json_tokener_free(tok);
    free(text);
    int rc = load(path, root, CONFIG_ALL);
    json_object_put(root);
    return rc;
}

int config_load_json(const char *origin, struct json_object *root, enum config_part part)
{
    return load(origin, root, part);
}

/* ---- save ---- */
static void add_call(struct json_object *config, const char *method, struct json_object *params)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "method", json_object_new_string(method));
    if (params != NULL)
        json_object_object_add(o, "params", params);
    json_object_array_add(config, o);
}

void config_add_call(struct json_object *config, const char *method, struct json_object *params)
{
    add_call(config, method, params);
}

/* The uring filename lives only in the bdev's own description (driver_specific). */
static const char *find_filename(struct json_object *o)
{
    if (o == NULL)
        return NULL;
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            if (strcmp(key, "filename") == 0 && json_object_is_type(val, json_type_string))
                return json_object_get_string(val);
            const char *f = find_filename(val);
            if (f != NULL)
                return f;
        }
    }
    return NULL;
}

static void save_bdev(struct json_object *config, struct vnvme_bdev *b)
{
    const char *type = b->ops != NULL ? b->ops->type : NULL;
    char uuid[37];
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(b->name));
    vnvme_bdev_uuid_format(b->uuid, uuid);
    if (type != NULL && strcmp(type, "uring") == 0) {
        struct json_object *desc = vnvme_bdev_to_json(b), *ds = NULL;
        const char *filename = json_object_object_get_ex(desc, "driver_specific", &ds) ? find_filename(ds) : NULL;
        if (filename == NULL) {
            VNVME_WARN("config", "bdev %s: no filename in its description, not saved", b->name);
            json_object_put(desc);
            json_object_put(p);
            return;
        }
        json_object_object_add(p, "filename", json_object_new_string(filename));
        json_object_put(desc);
        json_object_object_add(p, "block_size", json_object_new_int64(b->block_size));
        json_object_object_add(p, "uuid", json_object_new_string(uuid));
        add_call(config, "bdev_uring_create", p);
        return;
    }
    if (type != NULL && strcmp(type, "delay") == 0) {
        json_object_put(p);
        add_call(config, "bdev_delay_create", vnvme_bdev_delay_save(b));
        return;
    }
    if (type != NULL && strcmp(type, "rbd") == 0) {
        json_object_put(p);
        p = vnvme_bdev_rbd_save(b);
        if (p != NULL)
            add_call(config, "bdev_rbd_create", p);
        return;
    }
    const char *method = type == NULL                ? NULL
                         : strcmp(type, "malloc") == 0 ? "bdev_malloc_create"
                         : strcmp(type, "null") == 0   ? "bdev_null_create"
                                                       : NULL;
    if (method == NULL) {
        VNVME_WARN("config", "bdev %s: type %s cannot be saved", b->name, type ? type : "(none)");
        json_object_put(p);
        return;
    }
    json_object_object_add(p, "num_blocks", json_object_new_uint64(b->num_blocks));
    json_object_object_add(p, "block_size", json_object_new_int64(b->block_size));
    json_object_object_add(p, "uuid", json_object_new_string(uuid));
    add_call(config, method, p);
}

/* A bdev's rate limits, as SPDK writes them: after the bdev, only the limits set. */
static void save_qos(struct json_object *config, struct vnvme_bdev *b)
{
    struct json_object *p = rpc_qos_save_params(__atomic_load_n(&b->qos, __ATOMIC_ACQUIRE));
    if (!p)
        return;
    json_object_object_add(p, "name", json_object_new_string(b->name));
    add_call(config, "bdev_set_qos_limit", p);
}

static struct json_object *save_bdevs(void)
{
    struct json_object *config = json_object_new_array();
    /* Clusters first: rbd bdevs may share their connections. */
    struct json_object *clusters = vnvme_bdev_rbd_clusters_save();
    for (size_t i = 0; i < json_object_array_length(clusters); i++)
        add_call(config, "bdev_rbd_register_cluster", json_object_get(json_object_array_get_idx(clusters, i)));
    json_object_put(clusters);
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b != NULL; b = vnvme_bdev_next(b)) {
        save_bdev(config, b);
        save_qos(config, b);
    }
    rpc_host_save_config(config);
    add_call(config, "bdev_wait_for_examine", NULL);
    return config;
}

static struct json_object *nqn_params(const char *nqn)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "nqn", json_object_new_string(nqn));
    return p;
}

static void save_namespace(struct json_object *config, const char *nqn, const struct nvmet_ns *ns)
{
    struct json_object *p = nqn_params(nqn);
    struct json_object *o = rpc_namespace_json(ns, false);
    json_object_object_add(p, "namespace", o);
    add_call(config, "nvmf_subsystem_add_ns", p);
    /* Its own rate limits, right after it. */
    p = rpc_qos_save_params(__atomic_load_n(&ns->qos, __ATOMIC_ACQUIRE));
    if (p) {
        json_object_object_add(p, "nqn", json_object_new_string(nqn));
        json_object_object_add(p, "nsid", json_object_new_int64(ns->nsid));
        add_call(config, "nvmf_ns_set_qos_limit", p);
    }
}

static void save_subsystem(struct json_object *config, const struct tgt_subsystem *ts)
{
    const struct nvmet_subsys *ss = ts->ss;
    struct json_object *p = nqn_params(ss->nqn);
    json_object_object_add(p, "serial_number", json_object_new_string(ss->serial));
    json_object_object_add(p, "model_number", json_object_new_string(ss->model));
    json_object_object_add(p, "allow_any_host", json_object_new_boolean(ss->allow_any_host));
    json_object_object_add(p, "max_namespaces", json_object_new_int64(ss->max_namespaces));
    add_call(config, "nvmf_create_subsystem", p);

    struct json_object *hosts = rpc_nvmf_hosts_json(ss->nqn);
    for (size_t i = 0; i < json_object_array_length(hosts); i++) {
        p = nqn_params(ss->nqn);
        json_object_object_add(p, "host", json_object_get(json_object_array_get_idx(hosts, i)));
        add_call(config, "nvmf_subsystem_add_host", p);
    }
    json_object_put(hosts);

    /* Namespaces before listeners: a client connecting as soon as the socket exists sees them all. */
    for (uint32_t nsid = 1; nsid <= NVMET_MAX_NSID; nsid++)
        if (ss->ns[nsid] != NULL)
            save_namespace(config, ss->nqn, ss->ns[nsid]);

    for (const struct tgt_listener *l = ts->listeners; l != NULL; l = l->next) {
        p = nqn_params(ss->nqn);
        struct json_object *la = json_object_new_object();
        json_object_object_add(la, "trtype", json_object_new_string("VFIOUSER"));
        json_object_object_add(la, "adrfam", json_object_new_string("IPv4"));
        json_object_object_add(la, "traddr", json_object_new_string(l->traddr));
        json_object_object_add(la, "trsvcid", json_object_new_string(""));
        json_object_object_add(p, "listen_address", la);
        if (l->socket_group[0])
            json_object_object_add(p, "socket_group", json_object_new_string(l->socket_group));
        add_call(config, "nvmf_subsystem_add_listener", p);
    }
}

static struct json_object *save_nvmf(void)
{
    struct json_object *config = json_object_new_array();
    if (tgt_transport_created()) {
        struct json_object *p = json_object_new_object();
        json_object_object_add(p, "trtype", json_object_new_string("VFIOUSER"));
        add_call(config, "nvmf_create_transport", p);
    }
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts != NULL; ts = ts->next)
        save_subsystem(config, ts);
    return config;
}

struct json_object *config_save_subsystem(const char *name)
{
    if (strcmp(name, "bdev") == 0)
        return save_bdevs();
    if (strcmp(name, "nvmf") == 0)
        return save_nvmf();
    return NULL;
}

struct json_object *config_save(void)
{
    struct json_object *subsystems = json_object_new_array();
    for (size_t i = 0; load_order[i] != NULL; i++) {
        struct json_object *s = json_object_new_object();
        json_object_object_add(s, "subsystem", json_object_new_string(load_order[i]));
        json_object_object_add(s, "config", config_save_subsystem(load_order[i]));
        json_object_array_add(subsystems, s);
    }
    struct json_object *root = json_object_new_object();
    json_object_object_add(root, "subsystems", subsystems);
    return root;
}
