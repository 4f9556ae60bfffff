/* SPDX-License-Identifier: MIT */
/*
 * `vnvme identify`: spdk_nvme_identify's report for a vfio-user NVMe
 * controller, read through vnvme's userspace driver: CAP and VS, Identify
 * Controller with its flag fields spelled out, power states, and Identify
 * Namespace for every active namespace.
 */
#include "identify.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vnvme/nvme_host.h"

struct flag {
    unsigned bit;
    const char *name;
};

#define LABEL "%-46s "

static const char *yes_no(uint64_t v)
{
    return v ? "Yes" : "No";
}

static void print_flags(const char *title, uint64_t value, const struct flag *flags, size_t n)
{
    printf("%s (0x%" PRIx64 "):\n", title, value);
    for (size_t i = 0; i < n; i++) {
        char label[64];
        snprintf(label, sizeof(label), "  %s:", flags[i].name);
        printf(LABEL "%s\n", label, (value >> flags[i].bit) & 1 ? "Supported" : "Not Supported");
    }
}
#define PRINT_FLAGS(title, value, table) print_flags(title, value, table, sizeof(table) / sizeof(table[0]))

/* Identify strings are space padded, not terminated. */
static void print_str(const char *label, const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    printf(LABEL "%.*s\n", label, (int)len, s);
}

static void print_hex_bytes(const char *label, const uint8_t *b, size_t n)
{
    printf(LABEL, label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
}

static void print_u128(const char *label, const uint8_t b[16])
{
    uint64_t lo, hi;
    memcpy(&lo, b, 8);
    memcpy(&hi, b + 8, 8);
    if (hi)
        printf(LABEL "0x%016" PRIx64 "%016" PRIx64 "\n", label, hi, lo);
    else
        printf(LABEL "%" PRIu64 "\n", label, lo);
}

static void print_version(const char *label, uint32_t ver)
{
    if (ver == 0)
        printf(LABEL "not reported\n", label);
    else
        printf(LABEL "%u.%u.%u\n", label, ver >> 16, (ver >> 8) & 0xff, ver & 0xff);
}

static void print_cap(uint64_t cap, uint32_t vs)
{
    printf("Controller registers\n====================\n");
    print_version("NVMe Specification Version (VS):", vs);
    printf("Controller Capabilities (CAP): 0x%016" PRIx64 "\n", cap);
    printf(LABEL "%u\n", "  Maximum Queue Entries Supported:", NVME_CAP_MQES(cap) + 1);
    printf(LABEL "%s\n", "  Contiguous Queues Required:", yes_no(cap & NVME_CAP_CQR));
    printf(LABEL "%s%s\n", "  Arbitration Mechanisms Supported:", "Round Robin",
           (cap >> 17) & 1 ? ", Weighted Round Robin" : "");
    if ((cap >> 18) & 1)
        printf(LABEL "%s\n", "  Vendor Specific Arbitration:", "Yes");
    printf(LABEL "%" PRIu64 " ms\n", "  Ready Timeout:", ((cap >> NVME_CAP_TO_SHIFT) & 0xff) * 500);
    printf(LABEL "%u bytes\n", "  Doorbell Stride:", 4u << ((cap >> NVME_CAP_DSTRD_SHIFT) & 0xf));
    printf(LABEL "%s\n", "  NVM Subsystem Reset:", cap & NVME_CAP_NSSRS ? "Supported" : "Not Supported");
    unsigned css = (unsigned)((cap >> NVME_CAP_CSS_SHIFT) & 0xff);
    printf(LABEL "%s%s%s\n", "  Command Sets Supported:", css & 1 ? "NVM " : "", css & (1u << 6) ? "I/O-sets " : "",
           css & (1u << 7) ? "admin-only" : "");
    printf(LABEL "%s\n", "  Boot Partition Support:", yes_no((cap >> 45) & 1));
    printf(LABEL "%u bytes\n", "  Memory Page Size Minimum:", 4096u << ((cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf));
    printf(LABEL "%u bytes\n", "  Memory Page Size Maximum:", 4096u << ((cap >> NVME_CAP_MPSMAX_SHIFT) & 0xf));
    printf(LABEL "%s\n", "  Persistent Memory Region:", yes_no((cap >> 56) & 1));
    printf(LABEL "%s\n", "  Controller Memory Buffer:", yes_no((cap >> 57) & 1));
    printf("\n");
}

static const struct flag cmic_flags[] = {
    {0, "May have multiple subsystem ports"},
    {1, "May have multiple controllers"},
    {2, "Associated with SR-IOV VF"},
    {3, "Asymmetric Namespace Access Reporting"},
};
static const struct flag oaes_flags[] = {
    {8, "Namespace Attribute Notices"},       {9, "Firmware Activation Notices"},
    {11, "ANA Change Notices"},               {12, "PLE Aggregate Log Change Notices"},
    {13, "LBA Status Info Alert Notices"},    {14, "EGE Aggregate Log Change Notices"},
    {15, "Normal NVM Subsystem Shutdown"},    {27, "Discovery Log Change Notices"},
};
static const struct flag ctratt_flags[] = {
    {0, "128-bit Host Identifier"},       {1, "Non-Operational Power State Permissive"},
    {2, "NVM Sets"},                      {3, "Read Recovery Levels"},
    {4, "Endurance Groups"},              {5, "Predictable Latency Mode"},
    {6, "Traffic Based Keep Alive"},      {7, "Namespace Granularity"},
    {8, "SQ Associations"},               {9, "UUID List"},
    {15, "Extended LBA Formats"},
};
static const struct flag oacs_flags[] = {
    {0, "Security Send/Receive"},  {1, "Format NVM"},           {2, "Firmware Activate/Download"},
    {3, "Namespace Management"},   {4, "Device Self-Test"},     {5, "Directives"},
    {6, "NVMe-MI"},                {7, "Virtualization Management"}, {8, "Doorbell Buffer Config"},
    {9, "Get LBA Status"},         {10, "Command and Feature Lockdown"},
};
static const struct flag lpa_flags[] = {
    {0, "SMART/Health Log per Namespace"}, {1, "Commands Supported and Effects Log"},
    {2, "Extended Data for Get Log Page"}, {3, "Telemetry Log"},
    {4, "Persistent Event Log"},
};
static const struct flag oncs_flags[] = {
    {0, "Compare"},    {1, "Write Uncorrectable"}, {2, "Dataset Management"},
    {3, "Write Zeroes"}, {4, "Save/Select in Set/Get Features"}, {5, "Reservations"},
    {6, "Timestamp"},  {7, "Verify"},              {8, "Copy"},
};
static const struct flag fna_flags[] = {
    {0, "Format applies to all namespaces"},
    {1, "Secure erase applies to all namespaces"},
    {2, "Cryptographic erase"},
};
static const struct flag sgls_flags[] = {
    {2, "Keyed SGL Data Block descriptor"},
    {16, "SGL Bit Bucket descriptor"},
    {17, "Byte-aligned contiguous metadata buffer"},
    {18, "SGL longer than the data transfer"},
    {19, "Metadata pointer holding an SGL descriptor"},
    {20, "Address field as an offset"},
    {21, "Transport SGL Data Block descriptor"},
};

static void print_power_states(const struct nvme_id_ctrl *id)
{
    printf("Power States (NPSS %u: %u state%s)\n", id->npss, id->npss + 1u, id->npss ? "s" : "");
    for (unsigned i = 0; i <= id->npss && i < 32; i++) {
        const struct nvme_power_state *ps = &id->psd[i];
        double scale = (ps->flags & 1) ? 0.0001 : 0.01; /* MXPS: 0.0001 W units instead of 0.01 W */
        printf("  Power State #%u: Max Power %.4f W, %s, entry latency %u us, exit latency %u us, "
               "RRT %u RRL %u RWT %u RWL %u\n",
               i, ps->mp * scale, (ps->flags & 2) ? "non-operational" : "operational", ps->enlat, ps->exlat,
               ps->rrt & 0x1f, ps->rrl & 0x1f, ps->rwt & 0x1f, ps->rwl & 0x1f);
    }
    printf("\n");
}

static void print_ctrlr(const struct nvme_id_ctrl *id, uint64_t cap)
{
    uint32_t mps_min = 4096u << ((cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf);
    printf("Identify Controller\n===================\n");
    printf(LABEL "0x%04x\n", "Vendor ID (VID):", id->vid);
    printf(LABEL "0x%04x\n", "Subsystem Vendor ID (SSVID):", id->ssvid);
    print_str("Serial Number (SN):", id->sn, sizeof(id->sn));
    print_str("Model Number (MN):", id->mn, sizeof(id->mn));
    print_str("Firmware Revision (FR):", id->fr, sizeof(id->fr));
    printf(LABEL "%u\n", "Recommended Arbitration Burst (RAB):", 1u << id->rab);
    printf(LABEL "%02x-%02x-%02x\n", "IEEE OUI Identifier:", id->ieee[2], id->ieee[1], id->ieee[0]);
    PRINT_FLAGS("Multi-path I/O and Namespace Sharing (CMIC)", id->cmic, cmic_flags);
    if (id->mdts)
        printf(LABEL "%" PRIu64 " bytes (MDTS %u)\n", "Max Data Transfer Size:", (uint64_t)mps_min << id->mdts,
               id->mdts);
    else
        printf(LABEL "unlimited\n", "Max Data Transfer Size:");
    printf(LABEL "%u\n", "Controller ID (CNTLID):", id->cntlid);
    print_version("Version (VER):", id->ver);
    printf(LABEL "%u us / %u us\n", "RTD3 Resume / Entry Latency:", id->rtd3r, id->rtd3e);
    PRINT_FLAGS("Optional Asynchronous Events (OAES)", id->oaes, oaes_flags);
    PRINT_FLAGS("Controller Attributes (CTRATT)", id->ctratt, ctratt_flags);
    printf(LABEL "%s\n", "Controller Type:",
           id->cntrltype == 1   ? "I/O controller"
           : id->cntrltype == 2 ? "discovery controller"
           : id->cntrltype == 3 ? "administrative controller"
                                : "not reported");
    print_hex_bytes("FRU Globally Unique Identifier:", id->fguid, sizeof(id->fguid));
    printf("\n");
    PRINT_FLAGS("Optional Admin Command Support (OACS)", id->oacs, oacs_flags);
    printf(LABEL "%u\n", "Abort Command Limit (ACL):", id->acl + 1u);
    printf(LABEL "%u\n", "Async Event Request Limit (AERL):", id->aerl + 1u);
    printf("Firmware Updates (FRMW 0x%02x):\n", id->frmw);
    printf(LABEL "%s\n", "  Slot 1 Read-Only:", yes_no(id->frmw & 1));
    printf(LABEL "%u\n", "  Firmware Slots:", (id->frmw >> 1) & 7);
    printf(LABEL "%s\n", "  Activation Without Reset:", yes_no((id->frmw >> 4) & 1));
    PRINT_FLAGS("Log Page Attributes (LPA)", id->lpa, lpa_flags);
    printf(LABEL "%u\n", "Error Log Page Entries (ELPE):", id->elpe + 1u);
    printf(LABEL "%u\n", "Number of Power States (NPSS):", id->npss + 1u);
    printf(LABEL "%u K (%d C)\n", "Warning Composite Temperature (WCTEMP):", id->wctemp, (int)id->wctemp - 273);
    printf(LABEL "%u K (%d C)\n", "Critical Composite Temperature (CCTEMP):", id->cctemp, (int)id->cctemp - 273);
    print_u128("Total NVM Capacity (TNVMCAP):", id->tnvmcap);
    print_u128("Unallocated NVM Capacity (UNVMCAP):", id->unvmcap);
    if (id->kas)
        printf(LABEL "%u ms\n", "Keep Alive Granularity (KAS):", id->kas * 100u);
    else
        printf(LABEL "Not Supported\n", "Keep Alive (KAS):");
    printf("\nNVM Command Set Attributes\n==========================\n");
    printf(LABEL "%u bytes (required), %u bytes (maximum)\n", "Submission Queue Entry Size (SQES):",
           1u << (id->sqes & 0xf), 1u << (id->sqes >> 4));
    printf(LABEL "%u bytes (required), %u bytes (maximum)\n", "Completion Queue Entry Size (CQES):",
           1u << (id->cqes & 0xf), 1u << (id->cqes >> 4));
    printf(LABEL "%u\n", "Maximum Outstanding Commands (MAXCMD):", id->maxcmd);
    printf(LABEL "%u\n", "Number of Namespaces (NN):", id->nn);
    PRINT_FLAGS("Optional NVM Command Support (ONCS)", id->oncs, oncs_flags);
    printf("Fused Operations (FUSES 0x%04x):\n", id->fuses);
    printf(LABEL "%s\n", "  Compare and Write:", id->fuses & 1 ? "Supported" : "Not Supported");
    PRINT_FLAGS("Format NVM Attributes (FNA)", id->fna, fna_flags);
    printf("Volatile Write Cache (VWC 0x%02x):\n", id->vwc);
    printf(LABEL "%s\n", "  Present:", yes_no(id->vwc & NVME_CTRL_VWC_PRESENT));
    static const char *const flush_all[] = {"not reported", "reserved", "not supported", "supported"};
    printf(LABEL "%s\n", "  Flush with broadcast NSID:", flush_all[(id->vwc >> 1) & 3]);
    printf(LABEL "%u blocks\n", "Atomic Write Unit Normal (AWUN):", id->awun + 1u);
    printf(LABEL "%u blocks\n", "Atomic Write Unit Power Fail (AWUPF):", id->awupf + 1u);
    printf(LABEL "%u blocks\n", "Atomic Compare & Write Unit (ACWU):", id->acwu + 1u);
    static const char *const sgl_support[] = {"Not Supported", "Supported (any alignment)",
                                              "Supported (dword alignment)", "reserved"};
    printf("SGL Support (SGLS 0x%08x):\n", id->sgls);
    printf(LABEL "%s\n", "  SGLs:", sgl_support[id->sgls & 3]);
    if (id->sgls & 3)
        for (size_t i = 0; i < sizeof(sgls_flags) / sizeof(sgls_flags[0]); i++) {
            char label[64];
            snprintf(label, sizeof(label), "  %s:", sgls_flags[i].name);
            printf(LABEL "%s\n", label, (id->sgls >> sgls_flags[i].bit) & 1 ? "Supported" : "Not Supported");
        }
    printf(LABEL "%u\n", "Maximum Number of Allowed Namespaces (MNAN):", id->mnan);
    print_str("NVM Subsystem NQN (SUBNQN):", id->subnqn, sizeof(id->subnqn));
    printf("\n");
    print_power_states(id);
}

static void print_ns(const struct vnvme_ns *ns)
{
    const struct nvme_id_ns *id = vnvme_ns_data(ns);
    unsigned fmt = (id->flbas & 0xf) | ((id->flbas >> 1) & 0x30);
    uint32_t bs = vnvme_ns_block_size(ns);
    char title[64];
    int n = snprintf(title, sizeof(title), "Namespace ID %u", vnvme_ns_id(ns));
    printf("%s\n%.*s\n", title, n, "==============================================================");
    printf(LABEL "%" PRIu64 " blocks (%" PRIu64 " MiB)\n", "Size (NSZE):", id->nsze, id->nsze * bs >> 20);
    printf(LABEL "%" PRIu64 " blocks\n", "Capacity (NCAP):", id->ncap);
    printf(LABEL "%" PRIu64 " blocks\n", "Utilization (NUSE):", id->nuse);
    printf("Features (NSFEAT 0x%02x):\n", id->nsfeat);
    printf(LABEL "%s\n", "  Thin Provisioning:", id->nsfeat & 1 ? "Supported" : "Not Supported");
    printf(LABEL "%s\n", "  Per-namespace Atomic Units:", id->nsfeat & 2 ? "Supported" : "Not Supported");
    printf(LABEL "%s\n", "  Deallocated/Unwritten Error:", id->nsfeat & 4 ? "Supported" : "Not Supported");
    printf(LABEL "%s\n", "  NGUID/EUI64 Never Reused:", yes_no(id->nsfeat & 8));
    printf(LABEL "%s\n", "  Optimal I/O Fields:", id->nsfeat & 16 ? "Supported" : "Not Supported");
    printf(LABEL "%u\n", "Number of LBA Formats (NLBAF):", id->nlbaf + 1u);
    printf(LABEL "0x%02x (format #%02u%s)\n", "Formatted LBA Size (FLBAS):", id->flbas, fmt,
           id->flbas & 0x10 ? ", metadata at the end of each block" : "");
    static const char *const dealloc_read[] = {"not reported", "zeroes", "all bytes 0xff", "reserved"};
    printf("Deallocate Features (DLFEAT 0x%02x):\n", id->dlfeat);
    printf(LABEL "%s\n", "  Deallocated blocks read as:", dealloc_read[id->dlfeat & 3]);
    printf(LABEL "%s\n", "  Write Zeroes can deallocate:", yes_no(id->dlfeat & 8));
    printf(LABEL "%s\n", "  Multi-path I/O (NMIC):", id->nmic & 1 ? "may be shared" : "private");
    if (id->nawun || id->nawupf)
        printf(LABEL "%u / %u blocks\n", "Atomic Write Unit Normal/Power Fail:", id->nawun + 1u, id->nawupf + 1u);
    print_hex_bytes("NGUID:", id->nguid, sizeof(id->nguid));
    print_hex_bytes("EUI64:", id->eui64, sizeof(id->eui64));
    printf("LBA Formats:\n");
    for (unsigned i = 0; i <= id->nlbaf && i < 64; i++) {
        static const char *const perf[] = {"best", "better", "good", "degraded"};
        printf("  LBA Format #%02u: Data Size %5u  Metadata Size %3u  Relative Performance %s%s\n", i,
               id->lbaf[i].lbads < 32 ? 1u << id->lbaf[i].lbads : 0, id->lbaf[i].ms, perf[id->lbaf[i].rp & 3],
               i == fmt ? "  (in use)" : "");
    }
    printf("\n");
}

static void identify_usage(FILE *out)
{
    fprintf(out, "Usage: vnvme identify -r 'trtype:VFIOUSER traddr:DIR'\n"
                 "Attach to a vfio-user NVMe controller (socket DIR/cntrl, or -r SOCKET) and print\n"
                 "its registers, Identify Controller and every active namespace.\n");
}

int cmd_identify(int argc, char **argv)
{
    static const struct option options[] = {
        {"transport-id", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *trid = NULL;
    int opt;
    /* argv[0] is "identify"; options follow. */
    optind = 0; /* 0: glibc re-initialises its state after the top-level parse */
    while ((opt = getopt_long(argc, argv, "r:h", options, NULL)) != -1) {
        switch (opt) {
        case 'r':
            trid = optarg;
            break;
        case 'h':
            identify_usage(stdout);
            return 0;
        default:
            identify_usage(stderr);
            return 2;
        }
    }
    if (!trid && optind < argc)
        trid = argv[optind++];
    if (!trid || optind != argc) {
        identify_usage(stderr);
        return 2;
    }

    struct vnvme_ctrlr_opts opts = {.num_io_queues = 1, .dma_pool_size = 4u << 20};
    struct vnvme_ctrlr *c = NULL;
    int rc = vnvme_ctrlr_attach(trid, &opts, &c);
    if (rc < 0) {
        fprintf(stderr, "vnvme: cannot attach to %s: %s\n", trid, strerror(-rc));
        return 1;
    }
    printf("=====================================================\n");
    printf("NVMe Controller at %s\n", vnvme_ctrlr_path(c));
    printf("=====================================================\n");
    print_cap(vnvme_ctrlr_cap(c), vnvme_ctrlr_vs(c));
    print_ctrlr(vnvme_ctrlr_data(c), vnvme_ctrlr_cap(c));
    unsigned count = 0;
    for (struct vnvme_ns *ns = vnvme_ctrlr_first_ns(c); ns; ns = vnvme_ctrlr_next_ns(c, ns), count++)
        print_ns(ns);
    if (count == 0)
        printf("No active namespaces\n");
    vnvme_ctrlr_detach(c);
    return 0;
}
