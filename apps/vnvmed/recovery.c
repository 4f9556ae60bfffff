/* SPDX-License-Identifier: MIT */
/*
 * Crash recovery records (recovery.h; docs/STATE-FORMAT.md, "Crash recovery
 * records") and the start that rebuilds from them.
 *
 * A record is a small memfd in the fd store, written in two slots: a new
 * version goes to the slot not in use, then the header names it, so a crash
 * in the middle of a write leaves the previous version whole. Its bytes name
 * descriptors by their fd store names, because after a restart the store's
 * names are all there is to find them by.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sd_notify.h"
#include "common/state.h"
#include "handover.h"
#include "recovery.h"
#include "vnvmed.h"

#define LOG_COMP "recovery"
#define REC_MAGIC 0x4352564eu /* "NVRC" */
#define REC_HEADER 4096u
#define REC_SLOT (1u << 20)
#define CONFIG_NAME "vnvme-config"
#define REC_PREFIX "vnvme-rec"

struct record {
    int fd;
    char fd_name[FDSTORE_NAME_MAX];
    uint32_t active;
    char (*names)[FDSTORE_NAME_MAX]; /* the store names the last version uses */
    int *fdnums;                     /* and the descriptor numbers they were for, as hints next time */
    uint32_t nnames;
};

struct ctrlr_record {
    struct record rec;
    struct nvmet_vfio_user_ctrlr *vc;
    char nqn[224], traddr[256], group[64];
    uint64_t gen;
};

static struct record config_rec = {.fd = -1};
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *config_last; /* the record's bytes last stored, to skip writes that change nothing */
static size_t config_last_len;

static int record_open(struct record *rec, const char *fixed_name)
{
    rec->fd = memfd_create("vnvme-recovery", MFD_CLOEXEC);
    if (rec->fd < 0)
        return -errno;
    if (ftruncate(rec->fd, REC_HEADER + 2 * (off_t)REC_SLOT) < 0)
        return -errno;
    if (fixed_name) {
        /* A fixed name: found at start without knowing any other. */
        char state[128];
        snprintf(rec->fd_name, sizeof(rec->fd_name), "%s", fixed_name);
        snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", fixed_name);
        (void)vnvme_sd_notify(state);
        snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", fixed_name);
        int rc = vnvme_sd_notify_fds(state, &rec->fd, 1);
        return rc < 0 ? rc : 0;
    }
    return fdstore_acquire(rec->fd, REC_PREFIX, NULL, rec->fd_name);
}

static void record_close(struct record *rec)
{
    for (uint32_t i = 0; i < rec->nnames; i++)
        fdstore_release(rec->names[i]);
    free(rec->names);
    free(rec->fdnums);
    rec->names = NULL;
    rec->fdnums = NULL;
    rec->nnames = 0;
    if (rec->fd >= 0) {
        fdstore_release(rec->fd_name);
        close(rec->fd);
    }
    rec->fd = -1;
}

/* Store body's fds, write names + body into the free slot, make it the active one, release the old names. */
static int record_write(struct record *rec, const struct vnvme_state_out *body)
{
    char(*names)[FDSTORE_NAME_MAX] = calloc(body->nfds ? body->nfds : 1, FDSTORE_NAME_MAX);
    int *fdnums = calloc(body->nfds ? body->nfds : 1, sizeof(int));
    if (!names || !fdnums) {
        free(names);
        free(fdnums);
        return -ENOMEM;
    }
    uint32_t got = 0;
    int rc = 0;
    for (; got < body->nfds && rc == 0; got++) {
        const char *hint = NULL;
        for (uint32_t j = 0; j < rec->nnames && !hint; j++)
            if (rec->fdnums[j] == body->fds[got])
                hint = rec->names[j];
        fdnums[got] = body->fds[got];
        rc = fdstore_acquire(body->fds[got], "vnvme", hint, names[got]);
    }
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    vnvme_state_put_u32(&w, HANDOVER_STATE_VERSION);
    vnvme_state_put_u32(&w, (uint32_t)body->nfds);
    for (size_t i = 0; i < body->nfds; i++)
        vnvme_state_put_str(&w, names[i]);
    vnvme_state_put_bytes(&w, body->buf, body->len);
    if (rc == 0)
        rc = vnvme_state_out_error(&w);
    if (rc == 0 && w.len > REC_SLOT)
        rc = -E2BIG;
    uint32_t slot = rec->active ^ 1;
    if (rc == 0 && pwrite(rec->fd, w.buf, w.len, REC_HEADER + (off_t)slot * REC_SLOT) != (ssize_t)w.len)
        rc = -EIO;
    uint32_t hdr[4] = {REC_MAGIC, slot, (uint32_t)w.len, 0};
    if (rc == 0 && pwrite(rec->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        rc = -EIO;
    vnvme_state_out_fini(&w);
    if (rc) {
        for (uint32_t i = 0; i < got; i++)
            fdstore_release(names[i]);
        free(names);
        free(fdnums);
        return rc;
    }
    rec->active = slot;
    for (uint32_t i = 0; i < rec->nnames; i++)
        fdstore_release(rec->names[i]);
    free(rec->names);
    free(rec->fdnums);
    rec->names = names;
    rec->fdnums = fdnums;
    rec->nnames = (uint32_t)body->nfds;
    return 0;
}

/* ---- controllers ---- */

static void ctrlr_write(struct ctrlr_record *cr)
{
    struct vnvme_state_out body;
    vnvme_state_out_init(&body);
    vnvme_state_put_str(&body, cr->nqn);
    vnvme_state_put_str(&body, cr->traddr);
    vnvme_state_put_str(&body, cr->group);
    cr->gen = nvmet_vfio_user_control_gen(cr->vc);
    int rc = nvmet_vfio_user_ctrlr_save_recovery(cr->vc, &body);
    if (rc == 0)
        rc = record_write(&cr->rec, &body);
    if (rc)
        VNVME_WARN(LOG_COMP, "%s: cannot update the crash recovery record: %s", cr->traddr, strerror(-rc));
    vnvme_state_out_fini(&body);
}

void recovery_attach(struct nvmet_vfio_user_ctrlr *vc, const char *nqn, const char *traddr, const char *group)
{
    if (!fdstore_enabled())
        return;
    struct ctrlr_record *cr = calloc(1, sizeof(*cr));
    if (!cr) {
        VNVME_WARN(LOG_COMP, "%s: no crash recovery record: out of memory", traddr);
        return;
    }
    cr->vc = vc;
    snprintf(cr->nqn, sizeof(cr->nqn), "%s", nqn);
    snprintf(cr->traddr, sizeof(cr->traddr), "%s", traddr);
    snprintf(cr->group, sizeof(cr->group), "%s", group ? group : "");
    int rc = record_open(&cr->rec, NULL);
    if (rc) {
        VNVME_WARN(LOG_COMP, "%s: no crash recovery record: %s", traddr, strerror(-rc));
        record_close(&cr->rec);
        free(cr);
        return;
    }
    nvmet_vfio_user_set_owner(vc, cr);
    ctrlr_write(cr);
}

void recovery_poll(struct nvmet_vfio_user_ctrlr *vc)
{
    struct ctrlr_record *cr = nvmet_vfio_user_owner(vc);
    if (cr && nvmet_vfio_user_control_gen(vc) != cr->gen)
        ctrlr_write(cr);
}

void recovery_detach(struct nvmet_vfio_user_ctrlr *vc)
{
    struct ctrlr_record *cr = nvmet_vfio_user_owner(vc);
    if (!cr)
        return;
    nvmet_vfio_user_set_owner(vc, NULL);
    record_close(&cr->rec);
    free(cr);
}

/* ---- the configuration ---- */

void recovery_config_changed(void)
{
    if (!fdstore_enabled() || upgrade_handed_over())
        return;
    pthread_mutex_lock(&config_lock);
    struct vnvme_state_out body;
    vnvme_state_out_init(&body);
    int rc = config_record_write(&body);
    if (rc == 0 && config_last && body.len == config_last_len && memcmp(body.buf, config_last, body.len) == 0) {
        vnvme_state_out_fini(&body); /* unchanged (fds are the bdevs', which come and go with the text) */
        pthread_mutex_unlock(&config_lock);
        return;
    }
    if (rc == 0 && config_rec.fd < 0)
        rc = record_open(&config_rec, CONFIG_NAME);
    if (rc == 0)
        rc = record_write(&config_rec, &body);
    if (rc == 0) {
        free(config_last);
        config_last = malloc(body.len);
        config_last_len = config_last ? body.len : 0;
        if (config_last)
            memcpy(config_last, body.buf, body.len);
    } else {
        VNVME_WARN(LOG_COMP, "cannot store the configuration for crash recovery: %s", strerror(-rc));
    }
    vnvme_state_out_fini(&body);
    pthread_mutex_unlock(&config_lock);
}

/* ---- start after a crash ---- */

/* The active version of a record: its body, with fds in the order it names them (-1 for missing). */
static int record_read(int fd, int nfds, char **names, uint8_t **data, size_t *len, int **fds, size_t *nfd_out,
                       const char **why)
{
    uint32_t hdr[4];
    if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || hdr[0] != REC_MAGIC || hdr[1] > 1 ||
        hdr[2] > REC_SLOT) {
        *why = "the record has no valid header";
        return -EPROTO;
    }
    uint8_t *buf = malloc(hdr[2] ? hdr[2] : 1);
    if (!buf)
        return -ENOMEM;
    if (pread(fd, buf, hdr[2], REC_HEADER + (off_t)hdr[1] * REC_SLOT) != (ssize_t)hdr[2]) {
        free(buf);
        *why = "the record is shorter than its header says";
        return -EPROTO;
    }
    struct vnvme_state_in r;
    vnvme_state_in_init(&r, buf, hdr[2], NULL, 0);
    uint32_t version = vnvme_state_get_u32(&r);
    uint32_t n = vnvme_state_get_u32(&r);
    if (vnvme_state_in_ok(&r) && (version != HANDOVER_STATE_VERSION || n > 65536))
        vnvme_state_fail(&r, "the record is of another format version");
    int *f = calloc(n ? n : 1, sizeof(int));
    for (uint32_t i = 0; f && i < n && vnvme_state_in_ok(&r); i++) {
        char name[FDSTORE_NAME_MAX];
        vnvme_state_get_str(&r, name, sizeof(name));
        f[i] = -1;
        for (int k = 0; k < nfds; k++)
            if (strcmp(names[k], name) == 0)
                f[i] = VNVME_SD_LISTEN_FDS_START + k;
        if (f[i] < 0)
            vnvme_state_fail(&r, "a descriptor the record names was not passed back");
    }
    if (!f || !vnvme_state_in_ok(&r)) {
        *why = f ? vnvme_state_in_why(&r) : "out of memory";
        free(f);
        free(buf);
        return -EPROTO;
    }
    *len = hdr[2] - r.pos;
    memmove(buf, buf + r.pos, *len);
    *data = buf;
    *fds = f;
    *nfd_out = n;
    return 0;
}

/* The passed fds stay the store's: a record's reader gets copies, which restoring owns. */
static void dup_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fds[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 0) : -1;
}

int recovery_start(int nfds, char **names)
{
    int config_fd = -1;
    for (int i = 0; i < nfds; i++) {
        /* The configuration record keeps its fixed name, replaced in place: not one of the counted names. */
        if (strcmp(names[i], CONFIG_NAME) == 0)
            config_fd = VNVME_SD_LISTEN_FDS_START + i;
        else
            fdstore_adopt(VNVME_SD_LISTEN_FDS_START + i, names[i]);
    }
    if (config_fd < 0)
        return -ENOENT;
    uint8_t *data;
    size_t len, n;
    int *fds;
    const char *why = NULL;
    char msg[512];
    int rc = record_read(config_fd, nfds, names, &data, &len, &fds, &n, &why);
    if (rc) {
        VNVME_ERR(LOG_COMP, "the stored configuration: %s", why);
        return rc;
    }
    dup_fds(fds, n);
    struct vnvme_state_in r;
    vnvme_state_in_init(&r, data, len, fds, n);
    rc = config_record_apply(&r, HANDOVER_STATE_VERSION, "the stored configuration", msg, sizeof(msg));
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(data);
    if (rc) {
        VNVME_ERR(LOG_COMP, "%s", msg);
        return rc;
    }
    int recovered = 0;
    for (int i = 0; i < nfds; i++) {
        if (strncmp(names[i], REC_PREFIX "-", sizeof(REC_PREFIX)) != 0)
            continue;
        rc = record_read(VNVME_SD_LISTEN_FDS_START + i, nfds, names, &data, &len, &fds, &n, &why);
        if (rc) {
            VNVME_ERR(LOG_COMP, "record %s: %s; that controller is not recovered", names[i], why);
            continue;
        }
        dup_fds(fds, n);
        struct handover_msg m = {.type = HO_CTRLR, .data = data, .len = len, .fds = fds, .nfds = n};
        if (tgt_recover_ctrlr(&m, msg, sizeof(msg)) == 0)
            recovered++;
        else
            VNVME_ERR(LOG_COMP, "record %s: %s; that controller is not recovered", names[i], msg);
        handover_msg_free(&m);
    }
    return recovered;
}

void recovery_shutdown(void)
{
    /* A clean stop: every controller already left the store; nothing is to come back. */
    pthread_mutex_lock(&config_lock);
    if (config_rec.fd >= 0) {
        (void)vnvme_sd_notify("FDSTOREREMOVE=1\nFDNAME=" CONFIG_NAME);
        for (uint32_t i = 0; i < config_rec.nnames; i++)
            fdstore_release(config_rec.names[i]);
        free(config_rec.names);
        free(config_rec.fdnums);
        close(config_rec.fd);
        config_rec = (struct record){.fd = -1};
    }
    free(config_last);
    config_last = NULL;
    config_last_len = 0;
    pthread_mutex_unlock(&config_lock);
    fdstore_drop_unused();
}
