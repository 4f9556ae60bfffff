/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
