/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "vnvme/nvme_host.h"

/*
 * PRP1 may start anywhere dword aligned in its page; every further entry is
 * page aligned. max_entries bounds both the list and the transfer
 * (max_entries pages), so a caller passing its MDTS in pages gets the MDTS
 * check too: an unaligned buffer of MDTS bytes touches one page more, whose
 * entry still fits because PRP1 is not in the list.
 */
int vnvme_build_prps(uint64_t iova, uint32_t len, uint32_t page_size, uint64_t *list, uint64_t list_iova,
                     uint32_t max_entries, uint64_t *prp1, uint64_t *prp2)
{
    if (page_size < 8 || (page_size & (page_size - 1)) || (iova & 3u))
        return -EINVAL;
    if ((uint64_t)len > (uint64_t)max_entries * page_size)
        return -EINVAL;
    *prp1 = 0;
    *prp2 = 0;
    if (len == 0)
        return 0;
    uint64_t mask = page_size - 1;
    uint64_t first = page_size - (iova & mask);
    *prp1 = iova;
    if (len <= first)
        return 0;
    uint64_t rest = len - first;
    uint64_t next_page = (iova & ~mask) + page_size;
    if (rest <= page_size) {
        *prp2 = next_page;
        return 0;
    }
    uint64_t entries = (rest + page_size - 1) / page_size;
    if (!list || entries > max_entries || entries > page_size / 8 || (list_iova & mask))
        return -EINVAL;
    for (uint64_t i = 0; i < entries; i++)
        list[i] = next_page + i * page_size;
    *prp2 = list_iova;
    return 0;
}
