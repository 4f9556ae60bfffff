/* SPDX-License-Identifier: MIT */
#include "common/owner.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>

/* A whole decimal number below 2^32 - 1 (that one is the "no change" id of chown). */
static int parse_id(const char *s, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v >= 0xfffffffful)
        return -EINVAL;
    *out = v;
    return 0;
}

static int user_id(const char *name, unsigned long *id)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return -ENOENT;
    *id = pw.pw_uid;
    return 0;
}

static int group_id(const char *name, unsigned long *id)
{
    struct group gr, *res = NULL;
    char buf[16384];
    if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
        return -ENOENT;
    *id = gr.gr_gid;
    return 0;
}

/* A number is an id; anything else a name the database must know. */
static int parse_owner(const char *s, int (*by_name)(const char *, unsigned long *), unsigned long *id)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    return parse_id(s, id) == 0 ? 0 : by_name(s, id);
}

int vnvme_parse_user(const char *s, uid_t *out)
{
    unsigned long id;
    int rc = parse_owner(s, user_id, &id);
    if (rc == 0)
        *out = (uid_t)id;
    return rc;
}

int vnvme_parse_group(const char *s, gid_t *out)
{
    unsigned long id;
    int rc = parse_owner(s, group_id, &id);
    if (rc == 0)
        *out = (gid_t)id;
    return rc;
}

int vnvme_parse_mode(const char *s, mode_t *out)
{
    if (s == NULL || *s < '0' || *s > '7')
        return -EINVAL;
    char *end;
    unsigned long v = strtoul(s, &end, 8);
    if (*end != '\0' || v > 07777ul)
        return -EINVAL;
    *out = (mode_t)v;
    return 0;
}
