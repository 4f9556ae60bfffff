/* SPDX-License-Identifier: MIT */
/* What the vnvme subcommand files share (defined in vnvme.c). */
#ifndef VNVME_CLI_H
#define VNVME_CLI_H

struct json_object;

/* vnvmed's RPC socket (-s). */
extern const char *socket_path;

/* Calls method with params (taken; NULL: none) and prints the result (pretty JSON) or the error; the exit status. */
int call_and_print(const char *method, struct json_object *params);
/* A new object {key: value}. */
struct json_object *obj_with(const char *key, const char *value);
/* Whether min <= argc <= max; complains on stderr when not. */
int need(int argc, int min, int max);

/* iostat.c: `iostat`, rates from bdev_get_iostat every interval. */
int cmd_iostat(int argc, char **argv);
/* top.c: `top`, the live view. */
int cmd_top(int argc, char **argv);

/* cmd_host.c: `controller ...` and `cuse ...` (the host role's bdev_nvme_* methods). */
int cmd_controller(int argc, char **argv);
int cmd_cuse(int argc, char **argv);
/* list.c: `list [DIR]`, the CUSE devices' table (no RPC). */
int cmd_list(int argc, char **argv);

#endif
