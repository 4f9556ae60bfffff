/* SPDX-License-Identifier: MIT */
/* `vnvme list`'s table from hand-made Identify data: exact text of every column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "list_format.h"
#include "vnvme/nvme_spec.h"

/* An Identify string field: space padded, as a controller fills it. */
static void pad(char *field, size_t len, const char *s)
{
    memset(field, ' ', len);
    memcpy(field, s, strlen(s));
}

static struct nvme_id_ns ns_of(uint64_t nsze, uint64_t nuse, uint8_t lbads, uint16_t ms)
{
    struct nvme_id_ns ns;
    memset(&ns, 0, sizeof(ns));
    ns.nsze = ns.ncap = nsze;
    ns.nuse = nuse;
    ns.lbaf[0].lbads = lbads;
    ns.lbaf[0].ms = ms;
    return ns;
}

static char *print_table(const struct list_row *rows, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    list_print(f, rows, n);
    fclose(f);
    return text;
}

static void test_usage_units(void **state)
{
    (void)state;
    char buf[64];
    struct nvme_id_ns ns = ns_of(2097152, 2097152, 9, 0); /* 1 GiB of 512-byte blocks */
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  1.07 GB /   1.07 GB");
    ns = ns_of(4096, 100, 12, 0); /* 409600 of 16777216 bytes */
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "409.60 kB /  16.78 MB");
    ns = ns_of(1, 0, 9, 0);
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  0.00  B / 512.00  B");
    /* 2^64 - 1 blocks of 4 KiB: more than 64 bits of bytes, still printed. */
    ns = ns_of(UINT64_MAX, 1000000, 12, 0);
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  4.10 GB /  75.56 ZB");
    /* An LBA data size no 64-bit count can hold: unknown rather than nonsense. */
    ns = ns_of(8, 8, 64, 0);
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "     ?  B /      ?  B");
}

static void test_lba_format(void **state)
{
    (void)state;
    char buf[64];
    struct nvme_id_ns ns = ns_of(8, 8, 9, 0);
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "512   B +  0 B");
    ns.lbaf[0].lbads = 12;
    ns.lbaf[0].ms = 8;
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  4 KiB +  8 B");
    ns.lbaf[0].lbads = 16;
    ns.lbaf[0].ms = 64;
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, " 64 KiB + 64 B");
    ns.lbaf[0].lbads = 21;
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  2 MiB + 64 B");
    ns.lbaf[0].lbads = 70;
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  ?   B + 64 B");
}

/* FLBAS bits 3:0 pick the format; bits 6:5 add 16 or more only when there are more than 16 formats. */
static void test_format_in_use(void **state)
{
    (void)state;
    char buf[64];
    struct nvme_id_ns ns = ns_of(8, 8, 9, 0);
    ns.lbaf[1].lbads = 12;
    ns.lbaf[17].lbads = 13;
    ns.nlbaf = 1;
    ns.flbas = 0x21; /* bit 5 set, but only two formats: format 1 */
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  4 KiB +  0 B");
    list_usage(buf, sizeof(buf), &ns);
    assert_string_equal(buf, " 32.77 kB /  32.77 kB");
    ns.nlbaf = 17; /* 18 formats: 1 | 1 << 4 */
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "  8 KiB +  0 B");
    ns.flbas = 0x10; /* bit 4 is "metadata at the end of the data", not part of the index */
    list_lba_format(buf, sizeof(buf), &ns);
    assert_string_equal(buf, "512   B +  0 B");
}

static void test_id_strings(void **state)
{
    (void)state;
    char sn[21], buf[21];
    pad(sn, sizeof(sn) - 1, "ABC  DEF");
    list_id_string(buf, sn, 20);
    assert_string_equal(buf, "ABC  DEF"); /* inner blanks kept, padding gone */
    memcpy(sn, "12345678901234567890", 20); /* all 20 bytes used, no terminator */
    list_id_string(buf, sn, 20);
    assert_string_equal(buf, "12345678901234567890");
    memset(sn, 0, sizeof(sn));
    memcpy(sn, "nul\033[2Jx\xff", 9); /* NUL padded, with an escape sequence and a high byte */
    list_id_string(buf, sn, 20);
    assert_string_equal(buf, "nul?[2Jx?");
    memset(sn, ' ', 20);
    list_id_string(buf, sn, 20);
    assert_string_equal(buf, "");
}

static void test_table(void **state)
{
    (void)state;
    struct nvme_id_ctrl c0, c1;
    memset(&c0, 0, sizeof(c0));
    memset(&c1, 0, sizeof(c1));
    pad(c0.sn, sizeof(c0.sn), "VNVMEGUEST0001");
    pad(c0.mn, sizeof(c0.mn), "vnvme guest e2e");
    pad(c0.fr, sizeof(c0.fr), "0.1.0");
    pad(c1.sn, sizeof(c1.sn), "SPDK0");
    pad(c1.mn, sizeof(c1.mn), "SPDK bdev Controller");
    pad(c1.fr, sizeof(c1.fr), "24.01");
    struct nvme_id_ns n1 = ns_of(2097152, 2097152, 9, 0), n2 = ns_of(4096, 100, 12, 8);

    /* Short nodes: the Node column keeps its 16 characters. */
    struct list_row rows[] = {
        {.node = "/dev/vnvme/n1", .nsid = 1, .ctrl = &c0, .ns = &n1},
        {.node = "/dev/vnvme/n2", .nsid = 2, .ctrl = &c0, .ns = &n2},
    };
    char *text = print_table(rows, 2);
    assert_string_equal(text,
        "Node             SN                   Model                                    Namespace Usage                      Format           FW Rev\n"
        "---------------- -------------------- ---------------------------------------- --------- -------------------------- ---------------- --------\n"
        "/dev/vnvme/n1    VNVMEGUEST0001       vnvme guest e2e                          1           1.07 GB /   1.07 GB      512   B +  0 B   0.1.0\n"
        "/dev/vnvme/n2    VNVMEGUEST0001       vnvme guest e2e                          2         409.60 kB /  16.78 MB        4 KiB +  8 B   0.1.0\n");
    free(text);

    /* A longer node widens the column for every row. */
    struct list_row rows2[] = {
        {.node = "/dev/vnvme/nvme0n1", .nsid = 1, .ctrl = &c0, .ns = &n1},
        {.node = "/dev/vnvme/nvme10n12", .nsid = 12, .ctrl = &c1, .ns = &n2},
    };
    text = print_table(rows2, 2);
    assert_string_equal(text,
        "Node                 SN                   Model                                    Namespace Usage                      Format           FW Rev\n"
        "-------------------- -------------------- ---------------------------------------- --------- -------------------------- ---------------- --------\n"
        "/dev/vnvme/nvme0n1   VNVMEGUEST0001       vnvme guest e2e                          1           1.07 GB /   1.07 GB      512   B +  0 B   0.1.0\n"
        "/dev/vnvme/nvme10n12 SPDK0                SPDK bdev Controller                     12        409.60 kB /  16.78 MB        4 KiB +  8 B   24.01\n");
    free(text);

    /* No devices: the header alone. */
    text = print_table(NULL, 0);
    assert_string_equal(text,
        "Node             SN                   Model                                    Namespace Usage                      Format           FW Rev\n"
        "---------------- -------------------- ---------------------------------------- --------- -------------------------- ---------------- --------\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_units),
        cmocka_unit_test(test_lba_format),
        cmocka_unit_test(test_format_in_use),
        cmocka_unit_test(test_id_strings),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
