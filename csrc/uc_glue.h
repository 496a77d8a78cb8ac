/*
 * vmm's native completion of Unicorn as the CPU of a whole PC (see csrc/uc_glue.c).
 * This header is shared by the C source and the cffi builder (csrc/build_uc_glue.py):
 * everything between the CDEF markers is also fed to ffibuilder.cdef().
 */
#ifndef VMM_UC_GLUE_H
#define VMM_UC_GLUE_H
#include <stdint.h>

/* CDEF-BEGIN */
#define VMM_FAULT_RING 8

/* Why the glue stopped emulation (vmm_glue.stop_reason). */
#define VMM_STOP_NONE 0
#define VMM_STOP_DEADLINE 1
#define VMM_STOP_REQUESTED 2
#define VMM_STOP_RESUME 3      /* a #UD was delivered: just run again */
#define VMM_STOP_BREAKPOINT 4
#define VMM_STOP_USER 5        /* first block at CPL 3 (stop_on_user) */

struct vmm_seg {
    uint32_t selector;
    uint64_t base;
    uint32_t limit;
    uint32_t flags;            /* QEMU's layout: descriptor bits 32-63 */
};

/* The instruction counter of the patched libunicorn (struct uc_vmm_counter of
 * csrc/unicorn/0003), in Unicorn's CPU state, read and written by the translated code:
 * insns: guest progress, instructions of every block entered, counted by the
 *   translated code itself when the block starts.
 * limit: a block starts without calling the glue while insns < limit. Whoever changes
 *   what the glue must look at a block start (deadline, irq_line) sets it to 0; the
 *   glue recomputes it (vmm_tb_attention).
 * unchained_limit, unchained_word, unchained_mask: lower limit when a block is entered
 *   other than by a direct jump with EFLAGS.IF set (0 while an IRQ waits for the CPU
 *   to accept it: only such entries can follow a change of IF).
 * watch_pc, watch_flags_mask, watch_flags: blocks that always call the glue (the stage
 *   breakpoint; CPL 3 while stop_on_user), set by vmm_set_watch. */
struct vmm_counter {
    uint64_t insns;
    uint64_t limit;
    uint64_t unchained_limit;
    const uint64_t *unchained_word;
    uint64_t unchained_mask;
    uint64_t watch_pc;
    uint64_t watch_flags_mask;
    uint64_t watch_flags;
};

struct vmm_glue {
    struct vmm_counter *c;
    /* Stop at the first block boundary where insns would pass this. */
    uint64_t deadline;
    /* The interrupt controller's INTR output. */
    int irq_line;
    int stop_reason;
    /* Vector whose delivery is under way, -1 when none (triple-fault detection). */
    int delivering;
    /* 1 after SYSCALL, 2 after SYSENTER: completed at the next block start. */
    int pending_syscall;
    /* TSC ticks per instruction retired (RDTSC follows virtual time). */
    uint64_t tsc_per_insn;
    uint64_t tsc_offset;
    /* The last exceptions entered, oldest overwritten first. */
    int fault_vector[VMM_FAULT_RING];
    int fault_error[VMM_FAULT_RING];   /* -1: no error code */
    int fault_soft[VMM_FAULT_RING];    /* 1: a software interrupt (INT n, INT3, INTO) */
    uint64_t fault_pc[VMM_FAULT_RING];
    uint64_t fault_count;
    uint64_t irqs_delivered;
    uint64_t exceptions_delivered;
    uint64_t attentions;               /* block starts that called the glue */
    uint64_t unclaimed_accesses;
    /* The last unbacked physical accesses: address | 1 << 63 for writes. */
    uint64_t unclaimed_ring[VMM_FAULT_RING];
    /* Linear address that stops the run before its block executes, or ~0; and stop
     * before the first block run at CPL 3: both set with vmm_set_watch. */
    uint64_t break_pc;
    int stop_on_user;
    int hide_apic;                     /* clear CPUID's APIC bits: vmm has no local APIC */
    /* RDRAND and RDSEED answer from this generator (splitmix64), part of the machine
     * state: a restored machine continues the same sequence. */
    uint64_t rng_state;
    uint64_t random_reads;             /* RDRAND/RDSEED executed */
    void *py_handle;                   /* the owning Python backend */
    /* A device's data port served from its block buffer (ATA PIO): IN/OUT of data_port
     * of a size that fits move bytes between the guest and data_buf[data_pos, data_len)
     * with no Python; vmm_py_data_done reports the bytes moved (data_moved) once, when
     * the block is used up, when an access does not fit, or at the end of a run.
     * data_port > 0xFFFF: no window. */
    uint32_t data_port;
    int data_writing;
    uint8_t *data_buf;
    uint32_t data_pos;
    uint32_t data_len;
    uint32_t data_moved;
    /* private to the C side */
    void *uc;
    void *cs;
    char *env;
};

struct vmm_glue *vmm_glue_new(const char *libunicorn_path, void *uc, char *err, int errlen);
void vmm_glue_free(struct vmm_glue *g);
int vmm_get_seg(struct vmm_glue *g, int index, struct vmm_seg *out);
int vmm_set_seg(struct vmm_glue *g, int index, const struct vmm_seg *seg);
void vmm_update_hflags(struct vmm_glue *g);
void vmm_reset_exception_state(struct vmm_glue *g);
uint64_t vmm_get_env_u64(struct vmm_glue *g, int field);
void vmm_set_env_u64(struct vmm_glue *g, int field, uint64_t value);
void vmm_set_a20(struct vmm_glue *g, int enabled);
int vmm_get_a20(struct vmm_glue *g);
int vmm_invalidate_host_range(struct vmm_glue *g, void *host, uint64_t len);
int vmm_map_hole(struct vmm_glue *g, uint64_t base, uint64_t size);
int vmm_map_device(struct vmm_glue *g, uint64_t base, uint64_t size);
int vmm_pending_interrupt(struct vmm_glue *g);
void vmm_set_watch(struct vmm_glue *g, uint64_t break_pc, int stop_on_user);
const char *vmm_glue_layout(struct vmm_glue *g);

/* Fields for vmm_get_env_u64 / vmm_set_env_u64. */
#define VMM_ENV_EFER 0
#define VMM_ENV_STAR 1
#define VMM_ENV_LSTAR 2
#define VMM_ENV_CSTAR 3
#define VMM_ENV_FMASK 4
#define VMM_ENV_KERNELGSBASE 5
#define VMM_ENV_SYSENTER_CS 6
#define VMM_ENV_SYSENTER_ESP 7
#define VMM_ENV_SYSENTER_EIP 8
#define VMM_ENV_HFLAGS 9
#define VMM_ENV_HFLAGS2 10
#define VMM_ENV_EIP 11
/* CDEF-END */

#endif
