/* SPDX-License-Identifier: MIT */
#ifndef VNVME_APP_IDENTIFY_H
#define VNVME_APP_IDENTIFY_H

/* `vnvme identify -r TRID`: attaches with the userspace driver and prints what the controller reports. */
int cmd_identify(int argc, char **argv);

#endif
