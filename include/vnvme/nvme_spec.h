/* SPDX-License-Identifier: MIT */
/*
 * NVMe definitions from the NVMe Base Specification 2.0 and the NVM Command
 * Set Specification 1.0: controller registers, queue entries, opcodes, status
 * codes and the data structures of Identify, Get Log Page and features.
 * Little-endian on the wire; vnvme runs on little-endian hosts only.
 */
#ifndef VNVME_NVME_SPEC_H
#define VNVME_NVME_SPEC_H

#include <stdint.h>

/* ---- Controller registers (BAR0) ---- */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_NSSR 0x20
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_CMBLOC 0x38
#define NVME_REG_CMBSZ 0x3c
#define NVME_REG_DBS 0x1000 /* doorbells: SQ y tail at 0x1000 + (2y) * (4 << DSTRD), CQ y head at +1 */

/* CAP */
#define NVME_CAP_MQES(cap) ((uint32_t)((cap) & 0xffff))
#define NVME_CAP_CQR (1ull << 16)
#define NVME_CAP_AMS_SHIFT 17
#define NVME_CAP_TO_SHIFT 24 /* 500 ms units */
#define NVME_CAP_DSTRD_SHIFT 32
#define NVME_CAP_NSSRS (1ull << 36)
#define NVME_CAP_CSS_SHIFT 37
#define NVME_CAP_CSS_NVM (1ull << 37)
#define NVME_CAP_MPSMIN_SHIFT 48
#define NVME_CAP_MPSMAX_SHIFT 52

/* CC */
#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS_SHIFT 4
#define NVME_CC_CSS_MASK (7u << 4)
#define NVME_CC_MPS_SHIFT 7
#define NVME_CC_MPS_MASK (0xfu << 7)
#define NVME_CC_AMS_SHIFT 11
#define NVME_CC_AMS_MASK (7u << 11)
#define NVME_CC_SHN_SHIFT 14
#define NVME_CC_SHN_MASK (3u << 14)
#define NVME_CC_SHN_NONE 0u
#define NVME_CC_SHN_NORMAL 1u
#define NVME_CC_SHN_ABRUPT 2u
#define NVME_CC_IOSQES_SHIFT 16
#define NVME_CC_IOSQES_MASK (0xfu << 16)
#define NVME_CC_IOCQES_SHIFT 20
#define NVME_CC_IOCQES_MASK (0xfu << 20)
#define NVME_CC_WRITABLE_MASK 0x00fffff1u

/* CSTS */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_SHIFT 2
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_NORMAL 0u
#define NVME_CSTS_SHST_OCCURRING 1u
#define NVME_CSTS_SHST_COMPLETE 2u
#define NVME_CSTS_NSSRO (1u << 4)
#define NVME_CSTS_PP (1u << 5)

#define NVME_NSSR_MAGIC 0x4e564d65u /* "NVMe" */

/* AQA */
#define NVME_AQA_ASQS(aqa) ((aqa) & 0xfffu)
#define NVME_AQA_ACQS(aqa) (((aqa) >> 16) & 0xfffu)

#define NVME_VS(maj, min, ter) (((uint32_t)(maj) << 16) | ((uint32_t)(min) << 8) | (uint32_t)(ter))

/* ---- Queue entries ---- */
struct nvme_sgl_desc {
    uint64_t addr;
    uint32_t length;
    uint8_t rsvd[3];
    uint8_t type; /* descriptor type << 4 | subtype */
};

struct nvme_sqe {
    uint8_t opc;
    uint8_t flags; /* bits 0-1 FUSE, bits 6-7 PSDT */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    union {
        struct {
            uint64_t prp1;
            uint64_t prp2;
        };
        struct nvme_sgl_desc sgl1;
    } dptr;
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
};

struct nvme_cqe {
    uint32_t cdw0;
    uint32_t cdw1;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* bit 0 phase, bits 1-15 status field */
};

_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");
_Static_assert(sizeof(struct nvme_sgl_desc) == 16, "SGL descriptor is 16 bytes");

#define NVME_SQE_FUSE_MASK 0x3u
#define NVME_SQE_PSDT_SHIFT 6
#define NVME_SQE_PSDT_MASK (3u << 6)
#define NVME_PSDT_PRP 0u
#define NVME_PSDT_SGL_MPTR_CONTIG 1u
#define NVME_PSDT_SGL_MPTR_SGL 2u

/* SGL descriptor types (high nibble of type). */
#define NVME_SGL_TYPE_DATA_BLOCK 0x0
#define NVME_SGL_TYPE_BIT_BUCKET 0x1
#define NVME_SGL_TYPE_SEGMENT 0x2
#define NVME_SGL_TYPE_LAST_SEGMENT 0x3
#define NVME_SGL_TYPE_KEYED_DATA_BLOCK 0x4
#define NVME_SGL_SUBTYPE_ADDRESS 0x0
#define NVME_SGL_SUBTYPE_OFFSET 0x1

/* Status field: SCT << 8 | SC (the CQE carries it shifted left by one, with the phase tag). */
#define NVME_SCT_GENERIC 0x0
#define NVME_SCT_COMMAND_SPECIFIC 0x1
#define NVME_SCT_MEDIA 0x2
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_STATUS_DNR (1u << 14)
#define NVME_STATUS_MORE (1u << 13)

enum nvme_generic_status {
    NVME_SC_SUCCESS = 0x00,
    NVME_SC_INVALID_OPCODE = 0x01,
    NVME_SC_INVALID_FIELD = 0x02,
    NVME_SC_CID_CONFLICT = 0x03,
    NVME_SC_DATA_TRANSFER_ERROR = 0x04,
    NVME_SC_ABORTED_POWER_LOSS = 0x05,
    NVME_SC_INTERNAL = 0x06,
    NVME_SC_ABORTED_BY_REQUEST = 0x07,
    NVME_SC_ABORTED_SQ_DELETION = 0x08,
    NVME_SC_ABORTED_FAILED_FUSED = 0x09,
    NVME_SC_ABORTED_MISSING_FUSED = 0x0a,
    NVME_SC_INVALID_NAMESPACE_OR_FORMAT = 0x0b,
    NVME_SC_COMMAND_SEQUENCE_ERROR = 0x0c,
    NVME_SC_INVALID_SGL_SEG_DESCRIPTOR = 0x0d,
    NVME_SC_INVALID_NUM_SGL_DESCRIPTORS = 0x0e,
    NVME_SC_DATA_SGL_LENGTH_INVALID = 0x0f,
    NVME_SC_METADATA_SGL_LENGTH_INVALID = 0x10,
    NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x11,
    NVME_SC_INVALID_CONTROLLER_MEM_BUF = 0x12,
    NVME_SC_INVALID_PRP_OFFSET = 0x13,
    NVME_SC_ATOMIC_WRITE_UNIT_EXCEEDED = 0x14,
    NVME_SC_OPERATION_DENIED = 0x15,
    NVME_SC_INVALID_SGL_OFFSET = 0x16,
    NVME_SC_HOSTID_INCONSISTENT_FORMAT = 0x18,
    NVME_SC_KEEP_ALIVE_EXPIRED = 0x19,
    NVME_SC_KEEP_ALIVE_INVALID = 0x1a,
    NVME_SC_ABORTED_PREEMPT = 0x1b,
    NVME_SC_SANITIZE_FAILED = 0x1c,
    NVME_SC_SANITIZE_IN_PROGRESS = 0x1d,
    NVME_SC_SGL_DATA_BLOCK_GRANULARITY_INVALID = 0x1e,
    NVME_SC_COMMAND_INVALID_IN_CMB = 0x1f,
    NVME_SC_NAMESPACE_IS_WRITE_PROTECTED = 0x20,
    NVME_SC_COMMAND_INTERRUPTED = 0x21,
    NVME_SC_TRANSIENT_TRANSPORT_ERROR = 0x22,
    /* NVM command set specific generic status values */
    NVME_SC_LBA_OUT_OF_RANGE = 0x80,
    NVME_SC_CAPACITY_EXCEEDED = 0x81,
    NVME_SC_NAMESPACE_NOT_READY = 0x82,
    NVME_SC_RESERVATION_CONFLICT = 0x83,
    NVME_SC_FORMAT_IN_PROGRESS = 0x84,
};

enum nvme_command_specific_status {
    NVME_SC_COMPLETION_QUEUE_INVALID = 0x00,
    NVME_SC_INVALID_QUEUE_IDENTIFIER = 0x01,
    NVME_SC_INVALID_QUEUE_SIZE = 0x02,
    NVME_SC_ABORT_COMMAND_LIMIT_EXCEEDED = 0x03,
    NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = 0x05,
    NVME_SC_INVALID_FIRMWARE_SLOT = 0x06,
    NVME_SC_INVALID_FIRMWARE_IMAGE = 0x07,
    NVME_SC_INVALID_INTERRUPT_VECTOR = 0x08,
    NVME_SC_INVALID_LOG_PAGE = 0x09,
    NVME_SC_INVALID_FORMAT = 0x0a,
    NVME_SC_INVALID_QUEUE_DELETION = 0x0c,
    NVME_SC_FEATURE_ID_NOT_SAVEABLE = 0x0d,
    NVME_SC_FEATURE_NOT_CHANGEABLE = 0x0e,
    NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0f,
    NVME_SC_CONFLICTING_ATTRIBUTES = 0x80, /* NVM command set: Dataset Management etc. */
    NVME_SC_INVALID_PROTECTION_INFO = 0x81,
    NVME_SC_ATTEMPTED_WRITE_TO_RO_RANGE = 0x82,
};

enum nvme_media_status {
    NVME_SC_WRITE_FAULT = 0x80,
    NVME_SC_UNRECOVERED_READ_ERROR = 0x81,
    NVME_SC_COMPARE_FAILURE = 0x85,
    NVME_SC_ACCESS_DENIED = 0x86,
    NVME_SC_DEALLOCATED_OR_UNWRITTEN_BLOCK = 0x87,
};

/* ---- Opcodes ---- */
enum nvme_admin_opcode {
    NVME_ADMIN_DELETE_IO_SQ = 0x00,
    NVME_ADMIN_CREATE_IO_SQ = 0x01,
    NVME_ADMIN_GET_LOG_PAGE = 0x02,
    NVME_ADMIN_DELETE_IO_CQ = 0x04,
    NVME_ADMIN_CREATE_IO_CQ = 0x05,
    NVME_ADMIN_IDENTIFY = 0x06,
    NVME_ADMIN_ABORT = 0x08,
    NVME_ADMIN_SET_FEATURES = 0x09,
    NVME_ADMIN_GET_FEATURES = 0x0a,
    NVME_ADMIN_ASYNC_EVENT_REQUEST = 0x0c,
    NVME_ADMIN_NS_MANAGEMENT = 0x0d,
    NVME_ADMIN_FIRMWARE_COMMIT = 0x10,
    NVME_ADMIN_FIRMWARE_IMAGE_DOWNLOAD = 0x11,
    NVME_ADMIN_DEVICE_SELF_TEST = 0x14,
    NVME_ADMIN_NS_ATTACHMENT = 0x15,
    NVME_ADMIN_KEEP_ALIVE = 0x18,
    NVME_ADMIN_DIRECTIVE_SEND = 0x19,
    NVME_ADMIN_DIRECTIVE_RECEIVE = 0x1a,
    NVME_ADMIN_VIRTUALIZATION_MANAGEMENT = 0x1c,
    NVME_ADMIN_NVME_MI_SEND = 0x1d,
    NVME_ADMIN_NVME_MI_RECEIVE = 0x1e,
    NVME_ADMIN_DOORBELL_BUFFER_CONFIG = 0x7c,
    NVME_ADMIN_FORMAT_NVM = 0x80,
    NVME_ADMIN_SECURITY_SEND = 0x81,
    NVME_ADMIN_SECURITY_RECEIVE = 0x82,
    NVME_ADMIN_SANITIZE = 0x84,
};

enum nvme_nvm_opcode {
    NVME_NVM_FLUSH = 0x00,
    NVME_NVM_WRITE = 0x01,
    NVME_NVM_READ = 0x02,
    NVME_NVM_WRITE_UNCORRECTABLE = 0x04,
    NVME_NVM_COMPARE = 0x05,
    NVME_NVM_WRITE_ZEROES = 0x08,
    NVME_NVM_DATASET_MANAGEMENT = 0x09,
    NVME_NVM_VERIFY = 0x0c,
    NVME_NVM_RESERVATION_REGISTER = 0x0d,
    NVME_NVM_RESERVATION_REPORT = 0x0e,
    NVME_NVM_RESERVATION_ACQUIRE = 0x11,
    NVME_NVM_RESERVATION_RELEASE = 0x15,
    NVME_NVM_COPY = 0x19,
};

/* Data transfer direction: opcode bits 1:0 (01 host to controller, 10 controller to host, 11 both). */
#define NVME_OPC_XFER(opc) ((opc) & 3u)
#define NVME_XFER_NONE 0u
#define NVME_XFER_TO_CTRL 1u
#define NVME_XFER_FROM_CTRL 2u
#define NVME_XFER_BIDIR 3u

/* Read/Write cdw12 */
#define NVME_RW_NLB_MASK 0xffffu
#define NVME_RW_FUA (1u << 30)
#define NVME_RW_LR (1u << 31)
/* Write Zeroes cdw12 */
#define NVME_WZ_DEAC (1u << 25)
/* Dataset Management cdw11 */
#define NVME_DSM_IDR (1u << 0)
#define NVME_DSM_IDW (1u << 1)
#define NVME_DSM_AD (1u << 2)

struct nvme_dsm_range {
    uint32_t attributes;
    uint32_t nlb;
    uint64_t slba;
};
_Static_assert(sizeof(struct nvme_dsm_range) == 16, "DSM range is 16 bytes");

/* ---- Identify ---- */
enum nvme_identify_cns {
    NVME_ID_CNS_NS = 0x00,
    NVME_ID_CNS_CTRL = 0x01,
    NVME_ID_CNS_ACTIVE_NS_LIST = 0x02,
    NVME_ID_CNS_NS_DESC_LIST = 0x03,
    NVME_ID_CNS_NVMSET_LIST = 0x04,
    NVME_ID_CNS_CS_NS = 0x05,
    NVME_ID_CNS_CS_CTRL = 0x06,
    NVME_ID_CNS_CS_ACTIVE_NS_LIST = 0x07,
    NVME_ID_CNS_ALLOCATED_NS_LIST = 0x10,
    NVME_ID_CNS_ALLOCATED_NS = 0x11,
    NVME_ID_CNS_CTRL_LIST_NS = 0x12,
    NVME_ID_CNS_CTRL_LIST = 0x13,
};

struct nvme_power_state {
    uint16_t mp; /* centiwatts */
    uint8_t rsvd2;
    uint8_t flags;
    uint32_t enlat;
    uint32_t exlat;
    uint8_t rrt, rrl, rwt, rwl;
    uint16_t idlp;
    uint8_t ips;
    uint8_t rsvd19;
    uint16_t actp;
    uint8_t apw_aps;
    uint8_t rsvd23[9];
};
_Static_assert(sizeof(struct nvme_power_state) == 32, "power state is 32 bytes");

struct nvme_id_ctrl {
    uint16_t vid;
    uint16_t ssvid;
    char sn[20];
    char mn[40];
    char fr[8];
    uint8_t rab;
    uint8_t ieee[3];
    uint8_t cmic;
    uint8_t mdts;
    uint16_t cntlid;
    uint32_t ver;
    uint32_t rtd3r;
    uint32_t rtd3e;
    uint32_t oaes;
    uint32_t ctratt;
    uint16_t rrls;
    uint8_t rsvd102[9];
    uint8_t cntrltype;
    uint8_t fguid[16];
    uint16_t crdt1, crdt2, crdt3;
    uint8_t rsvd134[119];
    uint8_t nvmsr;
    uint8_t vwci;
    uint8_t mec;
    /* admin command set attributes */
    uint16_t oacs;
    uint8_t acl;
    uint8_t aerl;
    uint8_t frmw;
    uint8_t lpa;
    uint8_t elpe;
    uint8_t npss;
    uint8_t avscc;
    uint8_t apsta;
    uint16_t wctemp;
    uint16_t cctemp;
    uint16_t mtfa;
    uint32_t hmpre;
    uint32_t hmmin;
    uint8_t tnvmcap[16];
    uint8_t unvmcap[16];
    uint32_t rpmbs;
    uint16_t edstt;
    uint8_t dsto;
    uint8_t fwug;
    uint16_t kas;
    uint16_t hctma;
    uint16_t mntmt;
    uint16_t mxtmt;
    uint32_t sanicap;
    uint32_t hmminds;
    uint16_t hmmaxd;
    uint16_t nsetidmax;
    uint16_t endgidmax;
    uint8_t anatt;
    uint8_t anacap;
    uint32_t anagrpmax;
    uint32_t nanagrpid;
    uint32_t pels;
    uint16_t domainid;
    uint8_t rsvd358[10];
    uint8_t megcap[16];
    uint8_t rsvd384[128];
    /* NVM command set attributes */
    uint8_t sqes;
    uint8_t cqes;
    uint16_t maxcmd;
    uint32_t nn;
    uint16_t oncs;
    uint16_t fuses;
    uint8_t fna;
    uint8_t vwc;
    uint16_t awun;
    uint16_t awupf;
    uint8_t icsvscc;
    uint8_t nwpc;
    uint16_t acwu;
    uint16_t ocfs;
    uint32_t sgls;
    uint32_t mnan;
    uint8_t maxdna[16];
    uint32_t maxcna;
    uint8_t rsvd564[204];
    char subnqn[256];
    uint8_t rsvd1024[768];
    uint8_t ioccsz_etc[256];
    struct nvme_power_state psd[32];
    uint8_t vs[1024];
};
_Static_assert(sizeof(struct nvme_id_ctrl) == 4096, "Identify Controller is 4096 bytes");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, oacs) == 256, "OACS at 256");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, sqes) == 512, "SQES at 512");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, sgls) == 536, "SGLS at 536");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, subnqn) == 768, "SUBNQN at 768");
_Static_assert(__builtin_offsetof(struct nvme_id_ctrl, psd) == 2048, "PSD0 at 2048");

/* OACS, ONCS, etc. bits used here. */
#define NVME_CTRL_ONCS_COMPARE (1u << 0)
#define NVME_CTRL_ONCS_WRITE_UNCORRECTABLE (1u << 1)
#define NVME_CTRL_ONCS_DSM (1u << 2)
#define NVME_CTRL_ONCS_WRITE_ZEROES (1u << 3)
#define NVME_CTRL_ONCS_SAVE_FEATURES (1u << 4)
#define NVME_CTRL_ONCS_TIMESTAMP (1u << 6)
#define NVME_CTRL_LPA_SMART_PER_NS (1u << 0)
#define NVME_CTRL_LPA_CMD_EFFECTS (1u << 1)
#define NVME_CTRL_LPA_EXTENDED (1u << 2)
#define NVME_CTRL_OAES_NS_ATTR (1u << 8)
#define NVME_CTRL_OACS_DBBUF (1u << 8) /* Doorbell Buffer Config */
#define NVME_CTRL_SGLS_SUPPORTED (1u << 0) /* byte-aligned contiguous physical buffers */
#define NVME_CTRL_VWC_PRESENT (1u << 0)
#define NVME_CTRL_VWC_NSID_FFFFFFFF (3u << 1) /* Flush with NSID FFFFFFFFh supported */

struct nvme_lbaf {
    uint16_t ms;
    uint8_t lbads; /* log2 of the LBA data size */
    uint8_t rp;
};

struct nvme_id_ns {
    uint64_t nsze;
    uint64_t ncap;
    uint64_t nuse;
    uint8_t nsfeat;
    uint8_t nlbaf; /* zero based */
    uint8_t flbas;
    uint8_t mc;
    uint8_t dpc;
    uint8_t dps;
    uint8_t nmic;
    uint8_t rescap;
    uint8_t fpi;
    uint8_t dlfeat;
    uint16_t nawun;
    uint16_t nawupf;
    uint16_t nacwu;
    uint16_t nabsn;
    uint16_t nabo;
    uint16_t nabspf;
    uint16_t noiob;
    uint8_t nvmcap[16];
    uint16_t npwg;
    uint16_t npwa;
    uint16_t npdg;
    uint16_t npda;
    uint16_t nows;
    uint16_t mssrl;
    uint32_t mcl;
    uint8_t msrc;
    uint8_t rsvd81;
    uint8_t nulbaf;
    uint8_t rsvd83[9];
    uint32_t anagrpid;
    uint8_t rsvd96[3];
    uint8_t nsattr;
    uint16_t nvmsetid;
    uint16_t endgid;
    uint8_t nguid[16];
    uint8_t eui64[8];
    struct nvme_lbaf lbaf[64];
    uint8_t vs[3712];
};
_Static_assert(sizeof(struct nvme_id_ns) == 4096, "Identify Namespace is 4096 bytes");
_Static_assert(__builtin_offsetof(struct nvme_id_ns, nguid) == 104, "NGUID at 104");
_Static_assert(__builtin_offsetof(struct nvme_id_ns, lbaf) == 128, "LBAF0 at 128");

/* Namespace identification descriptor types (CNS 03h). */
#define NVME_NIDT_EUI64 0x1
#define NVME_NIDT_NGUID 0x2
#define NVME_NIDT_UUID 0x3
#define NVME_NIDT_CSI 0x4

/* ---- Features ---- */
enum nvme_feature_id {
    NVME_FEAT_ARBITRATION = 0x01,
    NVME_FEAT_POWER_MANAGEMENT = 0x02,
    NVME_FEAT_LBA_RANGE_TYPE = 0x03,
    NVME_FEAT_TEMPERATURE_THRESHOLD = 0x04,
    NVME_FEAT_ERROR_RECOVERY = 0x05,
    NVME_FEAT_VOLATILE_WRITE_CACHE = 0x06,
    NVME_FEAT_NUMBER_OF_QUEUES = 0x07,
    NVME_FEAT_INTERRUPT_COALESCING = 0x08,
    NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION = 0x09,
    NVME_FEAT_WRITE_ATOMICITY = 0x0a,
    NVME_FEAT_ASYNC_EVENT_CONFIGURATION = 0x0b,
    NVME_FEAT_AUTONOMOUS_POWER_STATE_TRANSITION = 0x0c,
    NVME_FEAT_HOST_MEM_BUFFER = 0x0d,
    NVME_FEAT_TIMESTAMP = 0x0e,
    NVME_FEAT_KEEP_ALIVE_TIMER = 0x0f,
    NVME_FEAT_HOST_CONTROLLED_THERMAL_MGMT = 0x10,
    NVME_FEAT_NON_OPERATIONAL_POWER_STATE = 0x11,
    NVME_FEAT_HOST_BEHAVIOR_SUPPORT = 0x16,
    NVME_FEAT_HOST_IDENTIFIER = 0x81,
    NVME_FEAT_RESERVATION_NOTIFICATION_MASK = 0x82,
    NVME_FEAT_RESERVATION_PERSISTENCE = 0x83,
};

/* Get Features SEL (cdw10 bits 10:8). */
#define NVME_FEAT_SEL_CURRENT 0u
#define NVME_FEAT_SEL_DEFAULT 1u
#define NVME_FEAT_SEL_SAVED 2u
#define NVME_FEAT_SEL_SUPPORTED 3u
/* Supported capabilities (SEL=3 result). */
#define NVME_FEAT_CAP_SAVEABLE (1u << 0)
#define NVME_FEAT_CAP_NS_SPECIFIC (1u << 1)
#define NVME_FEAT_CAP_CHANGEABLE (1u << 2)

/* ---- Log pages ---- */
enum nvme_log_page_id {
    NVME_LOG_ERROR = 0x01,
    NVME_LOG_SMART = 0x02,
    NVME_LOG_FIRMWARE_SLOT = 0x03,
    NVME_LOG_CHANGED_NS_LIST = 0x04,
    NVME_LOG_COMMAND_EFFECTS = 0x05,
    NVME_LOG_DEVICE_SELF_TEST = 0x06,
};

struct nvme_error_log_entry {
    uint64_t error_count;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status; /* status field << 1 | phase, as in the CQE */
    uint16_t parm_error_location;
    uint64_t lba;
    uint32_t nsid;
    uint8_t vs;
    uint8_t trtype;
    uint8_t rsvd30[2];
    uint64_t cs;
    uint16_t trtype_specific;
    uint8_t rsvd42[22];
};
_Static_assert(sizeof(struct nvme_error_log_entry) == 64, "error log entry is 64 bytes");

struct nvme_smart_log {
    uint8_t critical_warning;
    uint16_t temperature; /* Kelvin, unaligned in the spec */
    uint8_t avail_spare;
    uint8_t avail_spare_threshold;
    uint8_t percentage_used;
    uint8_t endurance_group_critical;
    uint8_t rsvd7[25];
    uint8_t data_units_read[16];
    uint8_t data_units_written[16];
    uint8_t host_read_commands[16];
    uint8_t host_write_commands[16];
    uint8_t controller_busy_time[16];
    uint8_t power_cycles[16];
    uint8_t power_on_hours[16];
    uint8_t unsafe_shutdowns[16];
    uint8_t media_errors[16];
    uint8_t num_error_log_entries[16];
    uint32_t warning_temp_time;
    uint32_t critical_comp_time;
    uint16_t temp_sensor[8];
    uint32_t thm_temp1_trans_count;
    uint32_t thm_temp2_trans_count;
    uint32_t thm_temp1_total_time;
    uint32_t thm_temp2_total_time;
    uint8_t rsvd232[280];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_smart_log) == 512, "SMART log is 512 bytes");

struct nvme_fw_slot_log {
    uint8_t afi;
    uint8_t rsvd1[7];
    char frs[7][8];
    uint8_t rsvd64[448];
};
_Static_assert(sizeof(struct nvme_fw_slot_log) == 512, "firmware slot log is 512 bytes");

struct nvme_cmd_effects_log {
    uint32_t acs[256];
    uint32_t iocs[256];
    uint8_t rsvd2048[2048];
};
_Static_assert(sizeof(struct nvme_cmd_effects_log) == 4096, "commands supported and effects log is 4096 bytes");
#define NVME_CMD_EFFECTS_CSUPP (1u << 0)
#define NVME_CMD_EFFECTS_LBCC (1u << 1)
#define NVME_CMD_EFFECTS_NCC (1u << 2)
#define NVME_CMD_EFFECTS_NIC (1u << 3)
#define NVME_CMD_EFFECTS_CCC (1u << 4)

/* ---- Asynchronous events ---- */
#define NVME_AER_TYPE_ERROR 0x0
#define NVME_AER_TYPE_SMART 0x1
#define NVME_AER_TYPE_NOTICE 0x2
#define NVME_AER_INFO_ERR_INVALID_DB_REGISTER 0x0 /* invalid doorbell register */
#define NVME_AER_INFO_ERR_INVALID_DB_VALUE 0x1    /* invalid doorbell write value */
#define NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED 0x0
#define NVME_AER_LOG_PAGE_SHIFT 16
#define NVME_AEN_CFG_NS_ATTR (1u << 8)

#endif
