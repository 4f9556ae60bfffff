/* SPDX-License-Identifier: MIT */
/* Reproducible test data: the same seed gives the same bytes, different seeds differ. */
#ifndef VNVME_TEST_PATTERN_H
#define VNVME_TEST_PATTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void fill_pattern(uint8_t *p, size_t len, uint32_t seed);
bool all_zero(const uint8_t *p, size_t len);

#endif
