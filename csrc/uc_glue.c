/*
 * vmm's native completion of Unicorn 2.1.4 as the CPU of a whole PC.
 *
 * Unicorn runs QEMU's x86 translator but does not deliver exceptions or interrupts
 * through the IVT/IDT, cannot inject hardware IRQs and turns SYSCALL/SYSENTER into hooks
 * (../shared/specs/unicorn-notes.md). libunicorn still exports QEMU's own delivery code
 * (x86_cpu_do_interrupt, do_interrupt_x86_hardirq, ...); the hooks below call it
 * natively, so no Python runs per instruction, per interrupt or per exception.
 *
 * Block starts: the patched libunicorn (csrc/unicorn/0003, uc_vmm_count_insns) counts
 * instructions in the translated code, a block at a time when it starts (virtual time),
 * and calls vmm_tb_attention at a block start only when the count reaches its limit --
 * the deadline, or 0 while every block start needs a look (SYSCALL/SYSENTER to
 * complete, an IRQ the CPU accepts; see rearm) -- in blocks entered other than by a
 * direct jump while an IRQ waits for IF, and always in the blocks chosen at translation
 * (the stage breakpoint's address, CPL 3 while stop_on_user: vmm_set_watch). That call
 * stops at the deadline or the stage watch, takes a pending hardware IRQ, completes
 * SYSCALL and SYSENTER. No C call at the start of a block otherwise.
 *
 * Hooks installed by vmm_glue_new():
 *   UC_HOOK_INTR    delivers every exception and software interrupt (SDM vol. 3 ch. 6),
 *                   remembering the last ones for the triple-fault report.
 *   UC_HOOK_INSN_INVALID  emulates RDRAND, RDSEED and RDPID from machine state (they
 *                   reach it as #UD: see hide_rdrand), delivers any other #UD.
 *   UC_HOOK_INSN    IN/OUT (to Python: they are exits), SYSCALL, SYSENTER, CPUID, RDTSC,
 *                   RDTSCP.
 *
 * Nothing the guest can execute reads the host: the TSC follows retired instructions,
 * RDRAND/RDSEED come from a seeded generator in the glue, RDTSCP/RDPID read the guest's
 * IA32_TSC_AUX, and CPUID is the pinned Unicorn's Haswell model (QEMU's TCG CPUID never
 * asks the host) with vmm's edits in hook_cpuid.
 *
 * QEMU's CPUX86State is not a public type: the offsets this file uses are found at
 * start-up by writing marker values through Unicorn's register API and locating them
 * (vmm_glue_new); any mismatch refuses to start with a message naming the field.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "uc_glue.h"

/* Callbacks into Python (cffi extern "Python"; defined by the generated module). */
static uint32_t vmm_py_io_in(void *handle, uint32_t port, int size);
static void vmm_py_io_out(void *handle, uint32_t port, int size, uint32_t value);
static uint64_t vmm_py_mmio_read(void *handle, uint64_t addr, int size);
static void vmm_py_mmio_write(void *handle, uint64_t addr, int size, uint64_t value);
static int vmm_py_inta(void *handle);
static void vmm_py_data_done(void *handle, uint32_t moved);

/* ---- QEMU constants (target/i386/cpu.h of QEMU 5.0, the base of Unicorn 2) ---- */
#define CPU_INTERRUPT_HARD 0x0002
#define HF_CPL_MASK 3
#define HF_CS32_MASK (1 << 4)
#define HF_LMA_MASK (1 << 14)
#define HF_CS64_MASK (1 << 15)
#define DESC_G_MASK (1 << 23)
#define DESC_B_MASK (1 << 22)
#define DESC_L_MASK (1 << 21)
#define DESC_P_MASK (1 << 15)
#define DESC_S_MASK (1 << 12)
#define DESC_CS_MASK (1 << 11)
#define DESC_R_MASK (1 << 9)
#define DESC_W_MASK (1 << 9)
#define DESC_A_MASK (1 << 8)
#define EFER_SCE 1
#define RFLAGS_IF (1 << 9)
#define RFLAGS_RF (1 << 16)
#define RFLAGS_VM (1 << 17)
#define CR0_PE 1
#define CPUID_1_ECX_OSXSAVE (1u << 27)

/* CPUX86State layout from its start (regs[16], eip, eflags, cc_dst, cc_src, cc_src2,
 * cc_op, df, hflags, hflags2, segs[6], ldt, tr, gdt, idt, cr[5], a20_mask): checked
 * against markers at start-up. */
#define OFF_REGS 0
#define OFF_EIP 128
#define OFF_EFLAGS 136
#define OFF_HFLAGS 176
#define OFF_HFLAGS2 180
#define OFF_SEGS 184
#define SEG_SIZE 24
#define OFF_CR (OFF_SEGS + 10 * SEG_SIZE)
#define OFF_A20 (OFF_CR + 5 * 8)

struct seg_cache {
    uint32_t selector;
    uint64_t base;
    uint32_t limit;
    uint32_t flags;
};

/* ---- libunicorn entry points, resolved with dlsym ---- */
static uc_err (*p_uc_hook_add)(uc_engine *, uc_hook *, int, void *, void *, uint64_t, uint64_t, ...);
static uc_err (*p_uc_emu_stop)(uc_engine *);
static uc_err (*p_uc_ctl)(uc_engine *, uc_control_type, ...);
static uc_err (*p_uc_mmio_map)(uc_engine *, uint64_t, size_t, uc_cb_mmio_read_t, void *,
                               uc_cb_mmio_write_t, void *);
static uc_err (*p_uc_reg_read)(uc_engine *, int, void *);
static uc_err (*p_uc_reg_write)(uc_engine *, int, const void *);
static void *(*p_qemu_get_cpu)(uc_engine *, int);
static void (*p_x86_cpu_do_interrupt)(void *cs);
static void (*p_do_interrupt_x86_hardirq)(void *env, int intno, int is_hw);
static int (*p_x86_cpu_pending_interrupt)(void *cs, int request);
static void (*p_cpu_loop_exit)(void *cs);
static void (*p_raise_exception_err)(void *env, int vector, int error_code);
static void (*p_cpu_x86_cpuid)(void *env, uint32_t index, uint32_t count, uint32_t *eax,
                               uint32_t *ebx, uint32_t *ecx, uint32_t *edx);
static void (*p_x86_update_hflags)(void *env);
static void (*p_tlb_flush)(void *cs);
static int (*p_cpu_memory_rw_debug)(void *cs, uint64_t addr, void *buf, uint64_t len, bool is_write);
static uint64_t (*p_qemu_ram_addr_from_host)(void *uc, void *host);
static void (*p_tb_invalidate_phys_range)(void *uc, uint64_t start, uint64_t end);
static uc_err (*p_uc_vmm_count_insns)(uc_engine *, bool (*)(uc_engine *, uint64_t, void *), void *,
                                       struct vmm_counter **);

static inline uint64_t *reg64(struct vmm_glue *g, int index) { return (uint64_t *)(g->env + OFF_REGS + 8 * index); }
static inline uint64_t *eip_of(struct vmm_glue *g) { return (uint64_t *)(g->env + OFF_EIP); }
static inline uint64_t *eflags_of(struct vmm_glue *g) { return (uint64_t *)(g->env + OFF_EFLAGS); }
static inline uint32_t *hflags_of(struct vmm_glue *g) { return (uint32_t *)(g->env + OFF_HFLAGS); }
static inline struct seg_cache *seg_of(struct vmm_glue *g, int i) { return (struct seg_cache *)(g->env + OFF_SEGS + SEG_SIZE * i); }
static inline uint64_t *cr_of(struct vmm_glue *g, int i) { return (uint64_t *)(g->env + OFF_CR + 8 * i); }
static inline int32_t *a20_of(struct vmm_glue *g) { return (int32_t *)(g->env + OFF_A20); }

/* Offsets found by markers (-1 until found). */
static long off_efer = -1, off_star, off_lstar, off_cstar, off_fmask, off_kgsbase;
static long off_sysenter_cs = -1, off_sysenter_esp, off_sysenter_eip;
static long off_error_code = -1;
static long off_old_exception = -1; /* QEMU's "exception in flight", for #DF/triple escalation */
static long off_tsc_aux = -1;
static long off_features = -1;      /* CPUX86State.features[]: FEAT_1_EDX, then FEAT_1_ECX */

static inline uint64_t *env_u64(struct vmm_glue *g, long off) { return (uint64_t *)(g->env + off); }

static void record_fault(struct vmm_glue *g, int vector, int error_code, uint64_t pc, int soft)
{
    int i = (int)(g->fault_count % VMM_FAULT_RING);
    g->fault_soft[i] = soft;
    g->fault_vector[i] = vector;
    g->fault_error[i] = error_code;
    g->fault_pc[i] = pc;
    g->fault_count++;
}

static int has_error_code(int vector)
{
    return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21;
}

/* Load a segment register's cache as SYSCALL/SYSENTER do, then recompute hflags. */
static void load_flat_segment(struct vmm_glue *g, int index, uint32_t selector, uint32_t flags)
{
    struct seg_cache *s = seg_of(g, index);
    s->selector = selector;
    s->base = 0;
    s->limit = 0xffffffff;
    s->flags = flags;
}

static void complete_syscall(struct vmm_glue *g, uint64_t return_eip)
{
    uint64_t rflags = 0;
    uint64_t star = *env_u64(g, off_star);
    uint32_t selector = (uint32_t)(star >> 32) & 0xffff;
    p_uc_reg_read(g->uc, UC_X86_REG_EFLAGS, &rflags);
    if (*hflags_of(g) & HF_LMA_MASK) {
        /* SDM vol. 2B SYSCALL: RCX <- RIP, R11 <- RFLAGS, RFLAGS &= ~FMASK. */
        int code64 = (*hflags_of(g) & HF_CS64_MASK) != 0;
        *reg64(g, 1) = return_eip;
        *reg64(g, 11) = rflags & ~(uint64_t)RFLAGS_RF;
        rflags &= ~(*env_u64(g, off_fmask) | RFLAGS_RF);
        p_uc_reg_write(g->uc, UC_X86_REG_EFLAGS, &rflags);
        load_flat_segment(g, 1, selector & 0xfffc,
                          DESC_G_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK | DESC_L_MASK);
        load_flat_segment(g, 2, (selector + 8) & 0xfffc,
                          DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_W_MASK | DESC_A_MASK);
        *eip_of(g) = code64 ? *env_u64(g, off_lstar) : *env_u64(g, off_cstar);
    } else {
        /* Legacy-mode SYSCALL (AMD): ECX <- EIP, CS:EIP from STAR. */
        *reg64(g, 1) = (uint32_t)return_eip;
        rflags &= ~(uint64_t)(RFLAGS_IF | RFLAGS_RF | RFLAGS_VM);
        p_uc_reg_write(g->uc, UC_X86_REG_EFLAGS, &rflags);
        load_flat_segment(g, 1, selector & 0xfffc,
                          DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK);
        load_flat_segment(g, 2, (selector + 8) & 0xfffc,
                          DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_W_MASK | DESC_A_MASK);
        *eip_of(g) = (uint32_t)star;
    }
    p_x86_update_hflags(g->env);
}

static void complete_sysenter(struct vmm_glue *g)
{
    /* SDM vol. 2B SYSENTER: flat CPL-0 CS/SS from IA32_SYSENTER_CS, RSP/RIP from MSRs. */
    uint64_t rflags = 0;
    uint32_t cs_sel = (uint32_t)*env_u64(g, off_sysenter_cs) & 0xffff;
    p_uc_reg_read(g->uc, UC_X86_REG_EFLAGS, &rflags);
    rflags &= ~(uint64_t)(RFLAGS_IF | RFLAGS_RF | RFLAGS_VM);
    p_uc_reg_write(g->uc, UC_X86_REG_EFLAGS, &rflags);
    if (*hflags_of(g) & HF_LMA_MASK)
        load_flat_segment(g, 1, cs_sel & 0xfffc,
                          DESC_G_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK | DESC_L_MASK);
    else
        load_flat_segment(g, 1, cs_sel & 0xfffc,
                          DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_CS_MASK | DESC_R_MASK | DESC_A_MASK);
    load_flat_segment(g, 2, (cs_sel + 8) & 0xfffc,
                      DESC_G_MASK | DESC_B_MASK | DESC_P_MASK | DESC_S_MASK | DESC_W_MASK | DESC_A_MASK);
    *reg64(g, 4) = *env_u64(g, off_sysenter_esp);
    *eip_of(g) = *env_u64(g, off_sysenter_eip);
    if (!(*hflags_of(g) & HF_LMA_MASK)) {
        *reg64(g, 4) &= 0xffffffff;
        *eip_of(g) &= 0xffffffff;
    }
    p_x86_update_hflags(g->env);
}

/* ---- hooks ---- */

static int emulate_undefined(struct vmm_glue *g);

static inline int irq_accepted(struct vmm_glue *g)
{
    /* IF is tested inline first: with the line high and interrupts off (a PIC nobody
     * programmed yet, a long cli section) this is asked often. */
    return (*eflags_of(g) & RFLAGS_IF) && p_x86_cpu_pending_interrupt(g->cs, CPU_INTERRUPT_HARD);
}

/* What the translated code compares the count with at a block start: 0 while the glue
 * must look at every block start (SYSCALL to complete, an IRQ the CPU accepts), else
 * the deadline. An IRQ line high while the CPU refuses it (IF clear, STI/MOV SS
 * shadow) needs a look only where that can change: after STI, POPF, IRET, a task
 * switch, an exception..., whose blocks QEMU's translator ends with a return to the
 * execution loop or an indirect jump, never a direct jump to the next block (gen_eob,
 * gen_jr in target/i386/translate.c). So unchained block starts look then, as the
 * former block hook did at every block start, with the same result. */
static void rearm(struct vmm_glue *g)
{
    int every = g->pending_syscall || (g->irq_line && irq_accepted(g));
    g->c->limit = every ? 0 : g->deadline;
    g->c->unchained_limit = g->irq_line && !every ? 0 : ~0ull;
}

/* A block at linear address 'address' starts and insns >= limit (uc_vmm_count_insns).
 * Returns true: the block is counted and runs; false after uc_emu_stop: it is neither
 * counted nor run (EIP stays at its start); or leaves through cpu_loop_exit after
 * changing the CPU's course (the block is not counted: it did not run). The checks and
 * their order are those of vmm's former block hook, so counts and stops are the same. */
static bool vmm_tb_attention(uc_engine *uc, uint64_t address, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    g->attentions++;
    if (g->pending_syscall) {
        int kind = g->pending_syscall;
        g->pending_syscall = 0;
        if (kind == 1)
            complete_syscall(g, address - seg_of(g, 1)->base);
        else
            complete_sysenter(g);
        rearm(g);
        p_cpu_loop_exit(g->cs);
    }
    if (address == g->break_pc) {
        g->break_pc = ~0ull;
        g->stop_reason = VMM_STOP_BREAKPOINT;
        p_uc_emu_stop(g->uc);
        rearm(g);
        return false;
    }
    if (g->stop_on_user && (*hflags_of(g) & HF_CPL_MASK) == 3) {
        g->stop_on_user = 0;
        g->stop_reason = VMM_STOP_USER;
        p_uc_emu_stop(g->uc);
        rearm(g);
        return false;
    }
    if (g->irq_line && irq_accepted(g)) {
        /* The INTA cycle: the PIC answers with the vector (and may answer spurious). */
        int vector = vmm_py_inta(g->py_handle);
        if (vector >= 0) {
            *eip_of(g) = address - seg_of(g, 1)->base;
            g->irqs_delivered++;
            g->delivering = vector;
            p_do_interrupt_x86_hardirq(g->env, vector, 1);
            g->delivering = -1;
            rearm(g);
            p_cpu_loop_exit(g->cs);
        }
    }
    /* Stop at the first block boundary at or past the deadline. A block that crosses
     * it still runs whole (it may be longer than the budget left: refusing it would
     * never make progress), so a slice overshoots by less than one block. */
    if (g->c->insns >= g->deadline) {
        g->stop_reason = VMM_STOP_DEADLINE;
        p_uc_emu_stop(g->uc);
        rearm(g);
        return false;
    }
    rearm(g);
    return true;
}

static void hook_intr(uc_engine *uc, uint32_t intno, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    int error_code = has_error_code((int)intno) && off_error_code >= 0
                         ? *(int32_t *)(g->env + off_error_code) : -1;
    /* QEMU's exception_is_int follows error_code: set for INT n, INT3 and INTO, whose
     * vectors would otherwise read as exceptions (INT 10h is not an x87 #MF). */
    int soft = off_error_code >= 0 && *(int32_t *)(g->env + off_error_code + 4) != 0;
    record_fault(g, (int)intno, error_code, *eip_of(g) + seg_of(g, 1)->base, soft);
    g->exceptions_delivered++;
    /* If this delivery faults, QEMU escalates (contributory -> #DF -> triple fault) and
     * longjmps out of here; 'delivering' then still names the vector. */
    g->delivering = (int)intno;
    p_x86_cpu_do_interrupt(g->cs);
    g->delivering = -1;
}

static bool hook_invalid(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    if (emulate_undefined(g))
        return true; /* handled: Unicorn's loop goes on at the next instruction */
    /* #UD: QEMU has set exception_index = 6, error code 0 and EIP at the opcode; Unicorn
     * calls this hook instead of UC_HOOK_INTR and stops emulation afterwards whatever it
     * returns, so deliver here and let the run loop resume at the handler. A fault
     * during delivery longjmps into QEMU's loop and escalates as usual. */
    record_fault(g, 6, -1, *eip_of(g) + seg_of(g, 1)->base, 0);
    g->exceptions_delivered++;
    g->delivering = 6;
    p_x86_cpu_do_interrupt(g->cs);
    g->delivering = -1;
    g->stop_reason = VMM_STOP_RESUME;
    return true;
}

/* ---- the data window: string port I/O of a device served natively ---- */

static void data_window_done(struct vmm_glue *g)
{
    uint32_t moved = g->data_moved;
    g->data_port = 0x10000;
    g->data_moved = 0;
    vmm_py_data_done(g->py_handle, moved); /* the device may give the next block */
}

static inline int data_window_fits(struct vmm_glue *g, uint32_t port, int size, int writing)
{
    return port == g->data_port && g->data_writing == writing && g->data_pos + (uint32_t)size <= g->data_len;
}

static uint32_t hook_in(uc_engine *uc, uint32_t port, int size, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    if (port == g->data_port) {
        if (!data_window_fits(g, port, size, 0))
            data_window_done(g);
        if (data_window_fits(g, port, size, 0)) {
            uint32_t value = 0;
            memcpy(&value, g->data_buf + g->data_pos, (size_t)size); /* little-endian host */
            g->data_pos += (uint32_t)size;
            g->data_moved += (uint32_t)size;
            if (g->data_pos == g->data_len)
                data_window_done(g);
            return value;
        }
    }
    return vmm_py_io_in(g->py_handle, port, size);
}

static void hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    if (port == g->data_port) {
        if (!data_window_fits(g, port, size, 1))
            data_window_done(g);
        if (data_window_fits(g, port, size, 1)) {
            memcpy(g->data_buf + g->data_pos, &value, (size_t)size);
            g->data_pos += (uint32_t)size;
            g->data_moved += (uint32_t)size;
            if (g->data_pos == g->data_len)
                data_window_done(g);
            return;
        }
    }
    vmm_py_io_out(g->py_handle, port, size, value);
}

static void hook_syscall(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    if (!(*env_u64(g, off_efer) & EFER_SCE))
        p_raise_exception_err(g->env, 6, 0); /* #UD with RIP at the instruction */
    g->pending_syscall = 1;
    g->c->limit = 0; /* completed at the next block start */
}

static void hook_sysenter(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    if (!(*cr_of(g, 0) & CR0_PE) || (*env_u64(g, off_sysenter_cs) & 0xfffc) == 0)
        p_raise_exception_err(g->env, 13, 0);
    g->pending_syscall = 2;
    g->c->limit = 0;
}

static int hook_cpuid(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    uint32_t eax, ebx, ecx, edx;
    uint32_t leaf = (uint32_t)*reg64(g, 0), sub = (uint32_t)*reg64(g, 1);
    (void)uc;
    p_cpu_x86_cpuid(g->env, leaf, sub, &eax, &ebx, &ecx, &edx);
    if (g->hide_apic) {
        if (leaf == 1) {
            edx &= ~(1u << 9);   /* APIC */
            ecx &= ~(1u << 21);  /* x2APIC */
            ecx &= ~(1u << 24);  /* TSC deadline */
        } else if (leaf == 0x80000001) {
            edx &= ~(1u << 9);
        }
    }
    if (leaf == 1)
        ecx |= 1u << 31 | 1u << 30; /* running under a hypervisor; RDRAND (see hide_rdrand) */
    if (leaf == 7 && sub == 0) {
        ebx |= 1u << 18; /* RDSEED */
        ecx |= 1u << 22; /* RDPID */
    }
    if (leaf >= 0x80000002 && leaf <= 0x80000004) {
        /* The brand string: vmm's, 48 bytes with the NULs. */
        static const char brand[48] = "vmm virtual x86-64 CPU";
        const uint32_t *words = (const uint32_t *)(brand + 16 * (leaf - 0x80000002));
        eax = words[0], ebx = words[1], ecx = words[2], edx = words[3];
    }
    *reg64(g, 0) = eax;
    *reg64(g, 3) = ebx;
    *reg64(g, 1) = ecx;
    *reg64(g, 2) = edx;
    return 1; /* skip Unicorn's own CPUID */
}

static int hook_rdtsc(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    (void)uc;
    uint64_t tsc = g->c->insns * g->tsc_per_insn + g->tsc_offset;
    *reg64(g, 0) = (uint32_t)tsc;
    *reg64(g, 2) = tsc >> 32;
    return 1;
}

static int hook_rdtscp(uc_engine *uc, void *user)
{
    struct vmm_glue *g = user;
    hook_rdtsc(uc, user);
    *reg64(g, 1) = (uint32_t)*env_u64(g, off_tsc_aux); /* SDM: ECX <- IA32_TSC_AUX[31:0] */
    return 1;
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit state word, every value reachable. */
static uint64_t next_random(struct vmm_glue *g)
{
    uint64_t z = (g->rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define EFLAGS_STATUS 0x8d5 /* CF PF AF ZF SF OF */

/* RDRAND, RDSEED (0F C7 /6, /7 with mod = 3) and RDPID (F3 0F C7 /7): QEMU would read
 * host entropy for the first two and lacks the third, so the translator is told the CPU
 * has no RDRAND (hide_rdrand) and all three arrive here as #UD. Returns 1 if the
 * instruction at CS:EIP was one of them and has been executed. */
static int emulate_undefined(struct vmm_glue *g)
{
    uint32_t hflags = *hflags_of(g);
    int long64 = (hflags & HF_CS64_MASK) != 0, code32 = long64 || (hflags & HF_CS32_MASK);
    uint64_t eip = *eip_of(g), pc = eip + seg_of(g, 1)->base;
    uint8_t b[15];
    int n = 0, opsize16 = 0, rep = 0, rex = 0;
    for (;;) {
        if (n == 15 || p_cpu_memory_rw_debug(g->cs, pc + n, &b[n], 1, false) != 0)
            return 0;
        uint8_t byte = b[n];
        if (byte == 0x66)
            opsize16 = 1;
        else if (byte == 0xF3)
            rep = 1;
        else if (byte == 0xF2 || byte == 0xF0)
            return 0; /* REPNE and LOCK make all three #UD */
        else if (byte != 0x26 && byte != 0x2E && byte != 0x36 && byte != 0x3E && byte != 0x64 &&
                 byte != 0x65 && byte != 0x67)
            break;
        n++;
    }
    if (long64 && (b[n] & 0xF0) == 0x40) { /* REX, right before the opcode */
        rex = b[n++];
        if (n == 15 || p_cpu_memory_rw_debug(g->cs, pc + n, &b[n], 1, false) != 0)
            return 0;
    }
    if (n + 3 > 15 || b[n] != 0x0F || p_cpu_memory_rw_debug(g->cs, pc + n + 1, &b[n + 1], 2, false) != 0 ||
        b[n + 1] != 0xC7 || (b[n + 2] >> 6) != 3)
        return 0;
    int op = (b[n + 2] >> 3) & 7, rm = (b[n + 2] & 7) | ((rex & 1) << 3);
    int bits = (rex & 8) ? 64 : (code32 ? (opsize16 ? 16 : 32) : (opsize16 ? 32 : 16));
    uint64_t value;
    if (op == 7 && rep) { /* RDPID: IA32_TSC_AUX, 64-bit in 64-bit mode */
        value = (uint32_t)*env_u64(g, off_tsc_aux);
        bits = long64 ? 64 : 32;
    } else if ((op == 6 || op == 7) && !rep) { /* RDRAND, RDSEED: always a value, CF = 1 */
        uint64_t flags = 0;
        value = next_random(g);
        g->random_reads++;
        p_uc_reg_read(g->uc, UC_X86_REG_EFLAGS, &flags);
        flags = (flags & ~(uint64_t)EFLAGS_STATUS) | 1;
        p_uc_reg_write(g->uc, UC_X86_REG_EFLAGS, &flags);
    } else {
        return 0;
    }
    uint64_t *reg = reg64(g, rm);
    if (bits == 64)
        *reg = value;
    else if (bits == 32)
        *reg = (uint32_t)value;
    else
        *reg = (*reg & ~0xffffull) | (value & 0xffff);
    eip += n + 3;
    *eip_of(g) = long64 ? eip : (code32 ? (uint32_t)eip : (eip & 0xffff));
    return 1;
}

/* Holes: the user data is a hole_window, so the log gets absolute addresses. */
struct hole_window {
    struct vmm_glue *g;
    uint64_t base;
};

static void log_unclaimed(struct vmm_glue *g, uint64_t addr, int write)
{
    g->unclaimed_ring[g->unclaimed_accesses % VMM_FAULT_RING] = addr | ((uint64_t)write << 63);
    g->unclaimed_accesses++;
}

static uint64_t hole_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    struct hole_window *w = user;
    (void)uc;
    log_unclaimed(w->g, w->base + offset, 0);
    return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static void hole_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    struct hole_window *w = user;
    (void)uc;
    (void)size;
    (void)value;
    log_unclaimed(w->g, w->base + offset, 1);
}

/* Device windows: the user data is the window's base, so Python gets absolute addresses. */
struct device_window {
    struct vmm_glue *g;
    uint64_t base;
};

static uint64_t device_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    struct device_window *w = user;
    (void)uc;
    return vmm_py_mmio_read(w->g->py_handle, w->base + offset, (int)size);
}

static void device_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    struct device_window *w = user;
    (void)uc;
    vmm_py_mmio_write(w->g->py_handle, w->base + offset, (int)size, value);
}

/* ---- set-up ---- */

#define RESOLVE(ptr, name)                                                          \
    do {                                                                            \
        *(void **)&(ptr) = dlsym(lib, name);                                        \
        if (!(ptr)) {                                                               \
            snprintf(err, errlen, "libunicorn lacks the symbol %s (is unicorn 2.1.4 installed?)", name); \
            return -1;                                                              \
        }                                                                           \
    } while (0)

static int resolve(const char *path, char *err, int errlen)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
        lib = dlopen(path, RTLD_NOW);
    if (!lib) {
        snprintf(err, errlen, "cannot open %s: %s", path, dlerror());
        return -1;
    }
    RESOLVE(p_uc_hook_add, "uc_hook_add");
    RESOLVE(p_uc_emu_stop, "uc_emu_stop");
    RESOLVE(p_uc_ctl, "uc_ctl");
    RESOLVE(p_uc_mmio_map, "uc_mmio_map");
    RESOLVE(p_uc_reg_read, "uc_reg_read");
    RESOLVE(p_uc_reg_write, "uc_reg_write");
    RESOLVE(p_qemu_get_cpu, "qemu_get_cpu_x86_64");
    RESOLVE(p_x86_cpu_do_interrupt, "x86_cpu_do_interrupt_x86_64");
    RESOLVE(p_do_interrupt_x86_hardirq, "do_interrupt_x86_hardirq_x86_64");
    RESOLVE(p_x86_cpu_pending_interrupt, "x86_cpu_pending_interrupt_x86_64");
    RESOLVE(p_cpu_loop_exit, "cpu_loop_exit_x86_64");
    RESOLVE(p_raise_exception_err, "raise_exception_err_x86_64");
    RESOLVE(p_cpu_x86_cpuid, "cpu_x86_cpuid_x86_64");
    RESOLVE(p_x86_update_hflags, "x86_update_hflags_x86_64");
    RESOLVE(p_tlb_flush, "tlb_flush_x86_64");
    RESOLVE(p_cpu_memory_rw_debug, "cpu_memory_rw_debug_x86_64");
    RESOLVE(p_qemu_ram_addr_from_host, "qemu_ram_addr_from_host_x86_64");
    RESOLVE(p_tb_invalidate_phys_range, "tb_invalidate_phys_range_x86_64");
    *(void **)&p_uc_vmm_count_insns = dlsym(lib, "uc_vmm_count_insns");
    if (!p_uc_vmm_count_insns) {
        snprintf(err, errlen, "%s is not vmm's patched libunicorn (no uc_vmm_count_insns): run `make`", path);
        return -1;
    }
    return 0;
}

/* Find a 64-bit marker in [start, start+len); -1 if absent or found twice. */
static long find_u64(const char *start, long len, uint64_t marker)
{
    long found = -1;
    for (long off = 0; off + 8 <= len; off += 4) {
        if (*(const uint64_t *)(start + off) == marker) {
            if (found >= 0)
                return -1;
            found = off;
        }
    }
    return found;
}

static int write_msr(struct vmm_glue *g, uint32_t msr, uint64_t value)
{
    uc_x86_msr m = {.rid = msr, .value = value};
    return p_uc_reg_write(g->uc, UC_X86_REG_MSR, &m);
}

/* How far the layout search may read from CPUX86State: at most ENV_SCAN bytes, and never
 * past the end of the X86CPU object that holds it (env_scan, set by locate_layout). The
 * state ends a few KiB after env in Unicorn 2.1.4's 42 KiB X86CPU: a fixed 16 KiB scan
 * read past the allocation, and crashed when the heap ended there. */
#define ENV_SCAN 0x4000
static long env_scan = ENV_SCAN;

static long locate_msr(struct vmm_glue *g, uint32_t msr, uint64_t marker, char *err, int errlen)
{
    long off;
    if (write_msr(g, msr, marker) != UC_ERR_OK) {
        snprintf(err, errlen, "unicorn refused to write MSR %#x", msr);
        return -1;
    }
    off = find_u64(g->env, env_scan, marker);
    if (off < 0)
        snprintf(err, errlen, "cannot locate MSR %#x in QEMU's CPU state (unicorn layout changed?)", msr);
    write_msr(g, msr, 0);
    return off;
}

static int locate_layout(struct vmm_glue *g, char *err, int errlen)
{
    /* The CPU state follows CPUState inside X86CPU: find regs[] by two markers. */
    uint64_t m1 = 0x5a17c0de5a17c0deull, m2 = 0x0ddba11c0ffee000ull, zero = 0;
    p_uc_reg_write(g->uc, UC_X86_REG_RAX, &m1);
    p_uc_reg_write(g->uc, UC_X86_REG_RCX, &m2);
    /* CPUState.env_ptr points into the same X86CPU object, after CPUState (which holds
     * the 32 KiB tb_jmp_cache): look among CPUState's first words for a pointer there
     * whose target holds the markers. */
    /* Unicorn allocates the X86CPU (CPUState first) on its own: every read below stays
     * inside that allocation. */
    uintptr_t object_end = (uintptr_t)g->cs + malloc_usable_size(g->cs);
    g->env = NULL;
    for (long off = 0; off < 0x2000 && (uintptr_t)g->cs + off + 8 <= object_end && !g->env; off += 8) {
        uintptr_t p = *(uintptr_t *)((char *)g->cs + off);
        if (p > (uintptr_t)g->cs + 0x1000 && p + 16 <= object_end && (p & 7) == 0 &&
            ((uint64_t *)p)[0] == m1 && ((uint64_t *)p)[1] == m2)
            g->env = (char *)p;
    }
    if (!g->env) {
        snprintf(err, errlen, "cannot locate QEMU's CPUX86State (CPUState.env_ptr with RAX/RCX markers)");
        return -1;
    }
    p_uc_reg_write(g->uc, UC_X86_REG_RAX, &zero);
    p_uc_reg_write(g->uc, UC_X86_REG_RCX, &zero);
    env_scan = (long)(object_end - (uintptr_t)g->env);
    if (env_scan > ENV_SCAN)
        env_scan = ENV_SCAN;

    uint64_t rip = 0x1234567;
    p_uc_reg_write(g->uc, UC_X86_REG_RIP, &rip);
    if (*eip_of(g) != rip) {
        snprintf(err, errlen, "CPUX86State.eip is not where vmm expects it (offset %d)", OFF_EIP);
        return -1;
    }
    uint64_t cr3 = 0x7654000;
    p_uc_reg_write(g->uc, UC_X86_REG_CR3, &cr3);
    if (*cr_of(g, 3) != cr3) {
        snprintf(err, errlen, "CPUX86State.cr[3] is not where vmm expects it (offset %d)", OFF_CR + 24);
        return -1;
    }
    cr3 = 0;
    p_uc_reg_write(g->uc, UC_X86_REG_CR3, &cr3);
    if ((off_star = locate_msr(g, 0xC0000081, 0x5354415253544152ull, err, errlen)) < 0 ||
        (off_lstar = locate_msr(g, 0xC0000082, 0xffff80004c535441ull, err, errlen)) < 0 ||
        (off_cstar = locate_msr(g, 0xC0000083, 0xffff800043535441ull, err, errlen)) < 0 ||
        (off_fmask = locate_msr(g, 0xC0000084, 0x00000000000f4d41ull, err, errlen)) < 0 ||
        (off_kgsbase = locate_msr(g, 0xC0000102, 0xffff80004b475342ull, err, errlen)) < 0 ||
        (off_sysenter_cs = locate_msr(g, 0x174, 0x0000000000005343ull, err, errlen)) < 0 ||
        (off_sysenter_esp = locate_msr(g, 0x175, 0xffff800053455350ull, err, errlen)) < 0 ||
        (off_sysenter_eip = locate_msr(g, 0x176, 0xffff800053454950ull, err, errlen)) < 0 ||
        (off_tsc_aux = locate_msr(g, 0xC0000103, 0x0000000054535841ull, err, errlen)) < 0)
        return -1;
    /* EFER keeps only the bits the CPU model supports, so no free marker: toggle SCE
     * (every x86-64 model has it) and find the one 64-bit field that changed by it. */
    {
        static char before[ENV_SCAN];
        uint64_t saved = 0, toggled;
        memcpy(before, g->env, env_scan);
        uc_x86_msr m = {.rid = 0xC0000080};
        p_uc_reg_read(g->uc, UC_X86_REG_MSR, &m);
        saved = m.value;
        toggled = saved ^ EFER_SCE;
        write_msr(g, 0xC0000080, toggled);
        off_efer = -1;
        for (long off = 0; off + 8 <= env_scan; off += 8) {
            if (*(uint64_t *)(before + off) == saved && *(uint64_t *)(g->env + off) == toggled) {
                off_efer = off_efer == -1 ? off : -2;
            }
        }
        write_msr(g, 0xC0000080, saved);
        if (off_efer < 0) {
            snprintf(err, errlen, "cannot locate CPUX86State.efer (SCE toggle matched %s)",
                     off_efer == -1 ? "nothing" : "several fields");
            return -1;
        }
    }
    uint64_t saved_efer = *env_u64(g, off_efer);
    write_msr(g, 0xC0000080, saved_efer);
    /* QEMU keeps {int error_code; int exception_is_int; target_ulong
     * exception_next_eip;} just before dr[8]: find dr[0] by a marker. */
    uint64_t dr0 = 0xdeb0deb0deb0dead, saved_dr0 = 0;
    p_uc_reg_read(g->uc, UC_X86_REG_DR0, &saved_dr0);
    p_uc_reg_write(g->uc, UC_X86_REG_DR0, &dr0);
    long off_dr0 = find_u64(g->env, env_scan, dr0);
    p_uc_reg_write(g->uc, UC_X86_REG_DR0, &saved_dr0);
    if (off_dr0 < 16) {
        snprintf(err, errlen, "cannot locate CPUX86State.dr[0] (unicorn layout changed?)");
        return -1;
    }
    off_error_code = off_dr0 - 16;
    /* After dr[8] comes a union of four breakpoint pointers, then old_exception. */
    off_old_exception = off_dr0 + 8 * 8 + 4 * 8;
    int32_t old = *(int32_t *)(g->env + off_old_exception);
    if (old != -1 && old != 0) {
        snprintf(err, errlen, "CPUX86State.old_exception is not where vmm expects it (reads %d)", old);
        return -1;
    }
    /* features[FEAT_1_EDX], features[FEAT_1_ECX]: what CPUID leaf 1 answers (ECX less
     * OSXSAVE, which CPUID adds from CR4). */
    uint32_t eax, ebx, ecx, edx;
    p_cpu_x86_cpuid(g->env, 1, 0, &eax, &ebx, &ecx, &edx);
    if (off_features < 0) /* the layout is the same for every engine: found once */
        off_features = find_u64(g->env, env_scan, edx);
    if (off_features < 0 || *env_u64(g, off_features) != edx ||
        ((*env_u64(g, off_features + 8) ^ ecx) & ~(uint64_t)CPUID_1_ECX_OSXSAVE) != 0) {
        off_features = -1;
        snprintf(err, errlen, "cannot locate CPUX86State.features (CPUID leaf 1 EDX %#x, ECX %#x)", edx, ecx);
        return -1;
    }
    return 0;
}

/* QEMU's translator decodes RDRAND/RDSEED only when the model has RDRAND, and then reads
 * host entropy: without the bit they raise #UD, which hook_invalid turns into vmm's own
 * RDRAND/RDSEED (hook_cpuid still advertises both). Nothing else reads that bit. */
static void hide_rdrand(struct vmm_glue *g)
{
    *env_u64(g, off_features + 8) &= ~(uint64_t)(1u << 30);
}

struct vmm_glue *vmm_glue_new(const char *libunicorn_path, void *uc, char *err, int errlen)
{
    uc_hook h;
    struct vmm_glue *g;
    if (resolve(libunicorn_path, err, errlen) < 0)
        return NULL;
    g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->uc = uc;
    g->delivering = -1;
    g->deadline = ~0ull;
    g->break_pc = ~0ull;
    g->data_port = 0x10000; /* no data window */
    g->tsc_per_insn = 1;
    g->hide_apic = 1;
    g->cs = p_qemu_get_cpu(uc, -1);
    if (!g->cs)
        g->cs = p_qemu_get_cpu(uc, 0);
    if (!g->cs) {
        snprintf(err, errlen, "cannot find Unicorn's CPU (qemu_get_cpu)");
        vmm_glue_free(g);
        return NULL;
    }
    if (locate_layout(g, err, errlen) < 0) {
        vmm_glue_free(g);
        return NULL;
    }
    /* Unicorn leaves a20_mask 0 until its CPU is first reset; QEMU uses -1 or ~bit20. */
    if (*a20_of(g) != 0 && *a20_of(g) != -1 && *a20_of(g) != (int32_t)~(1 << 20)) {
        snprintf(err, errlen, "CPUX86State.a20_mask is not where vmm expects it (reads %#x)", *a20_of(g));
        vmm_glue_free(g);
        return NULL;
    }
    hide_rdrand(g);
#define ADD_HOOK(type, cb, ...)                                                           \
    if (p_uc_hook_add(uc, &h, type, (void *)(cb), g, 1, 0, ##__VA_ARGS__) != UC_ERR_OK) { \
        snprintf(err, errlen, "unicorn refused the hook %s", #cb);                        \
        vmm_glue_free(g);                                                                 \
        return NULL;                                                                      \
    }
    ADD_HOOK(UC_HOOK_INTR, hook_intr);
    ADD_HOOK(UC_HOOK_INSN_INVALID, hook_invalid);
    ADD_HOOK(UC_HOOK_INSN, hook_in, UC_X86_INS_IN);
    ADD_HOOK(UC_HOOK_INSN, hook_out, UC_X86_INS_OUT);
    ADD_HOOK(UC_HOOK_INSN, hook_syscall, UC_X86_INS_SYSCALL);
    ADD_HOOK(UC_HOOK_INSN, hook_sysenter, UC_X86_INS_SYSENTER);
    ADD_HOOK(UC_HOOK_INSN, hook_cpuid, UC_X86_INS_CPUID);
    ADD_HOOK(UC_HOOK_INSN, hook_rdtsc, UC_X86_INS_RDTSC);
    ADD_HOOK(UC_HOOK_INSN, hook_rdtscp, UC_X86_INS_RDTSCP);
#undef ADD_HOOK
    if (p_uc_vmm_count_insns(uc, vmm_tb_attention, g, &g->c) != UC_ERR_OK || !g->c) {
        snprintf(err, errlen, "unicorn refused instruction counting (uc_vmm_count_insns)");
        vmm_glue_free(g);
        return NULL;
    }
    g->c->unchained_word = eflags_of(g); /* entries with IF set can take a waiting IRQ */
    g->c->unchained_mask = RFLAGS_IF;
    rearm(g);
    return g;
}

void vmm_glue_free(struct vmm_glue *g)
{
    if (!g)
        return;
    free(g);
}

int vmm_get_seg(struct vmm_glue *g, int index, struct vmm_seg *out)
{
    if (index < 0 || index > 9)
        return -1;
    struct seg_cache *s = seg_of(g, index);
    out->selector = s->selector;
    out->base = s->base;
    out->limit = s->limit;
    out->flags = s->flags;
    return 0;
}

int vmm_set_seg(struct vmm_glue *g, int index, const struct vmm_seg *seg)
{
    if (index < 0 || index > 9)
        return -1;
    struct seg_cache *s = seg_of(g, index);
    s->selector = seg->selector;
    s->base = seg->base;
    s->limit = seg->limit;
    s->flags = seg->flags;
    return 0;
}

void vmm_reset_exception_state(struct vmm_glue *g)
{
    /* A reset forgets any exception in flight (QEMU's cpu reset sets it to -1). */
    *(int32_t *)(g->env + off_old_exception) = -1;
    g->delivering = -1;
}

void vmm_update_hflags(struct vmm_glue *g)
{
    p_x86_update_hflags(g->env);
    p_tlb_flush(g->cs);
}

static long env_field(int field)
{
    switch (field) {
    case VMM_ENV_EFER: return off_efer;
    case VMM_ENV_STAR: return off_star;
    case VMM_ENV_LSTAR: return off_lstar;
    case VMM_ENV_CSTAR: return off_cstar;
    case VMM_ENV_FMASK: return off_fmask;
    case VMM_ENV_KERNELGSBASE: return off_kgsbase;
    case VMM_ENV_SYSENTER_CS: return off_sysenter_cs;
    case VMM_ENV_SYSENTER_ESP: return off_sysenter_esp;
    case VMM_ENV_SYSENTER_EIP: return off_sysenter_eip;
    case VMM_ENV_EIP: return OFF_EIP;
    default: return -1;
    }
}

uint64_t vmm_get_env_u64(struct vmm_glue *g, int field)
{
    if (field == VMM_ENV_HFLAGS)
        return *hflags_of(g);
    if (field == VMM_ENV_HFLAGS2)
        return *(uint32_t *)(g->env + OFF_HFLAGS2);
    long off = env_field(field);
    return off < 0 ? 0 : *env_u64(g, off);
}

void vmm_set_env_u64(struct vmm_glue *g, int field, uint64_t value)
{
    if (field == VMM_ENV_HFLAGS2) {
        *(uint32_t *)(g->env + OFF_HFLAGS2) = (uint32_t)value;
        return;
    }
    long off = env_field(field);
    if (off >= 0)
        *env_u64(g, off) = value;
}

void vmm_set_a20(struct vmm_glue *g, int enabled)
{
    int32_t mask = enabled ? -1 : (int32_t)~(1 << 20);
    if (*a20_of(g) != mask) {
        *a20_of(g) = mask;
        p_tlb_flush(g->cs);
    }
}

int vmm_get_a20(struct vmm_glue *g)
{
    return *a20_of(g) == -1;
}

/* Drop the translated code of guest RAM the monitor wrote (device DMA, loaders), found by
 * its host address. Unicorn's uc_ctl(UC_CTL_TB_REMOVE_CACHE) takes a guest *virtual*
 * address and walks the guest's page tables for it (filling the TLB for an instruction
 * fetch, setting accessed bits): with paging on, a physical address given there names
 * another page, and the walk's side effects left a Linux guest re-faulting on one
 * instruction forever. Returns -1 if the range is not RAM Unicorn knows. */
int vmm_invalidate_host_range(struct vmm_glue *g, void *host, uint64_t len)
{
    uint64_t start = p_qemu_ram_addr_from_host(g->uc, host);
    if (start == ~0ull)
        return -1;
    p_tb_invalidate_phys_range(g->uc, start, start + len);
    return 0;
}

int vmm_map_hole(struct vmm_glue *g, uint64_t base, uint64_t size)
{
    struct hole_window *w = malloc(sizeof *w); /* lives as long as the engine */
    if (!w)
        return -1;
    w->g = g;
    w->base = base;
    return p_uc_mmio_map(g->uc, base, size, hole_read, w, hole_write, w);
}

int vmm_map_device(struct vmm_glue *g, uint64_t base, uint64_t size)
{
    struct device_window *w = malloc(sizeof *w); /* lives as long as the engine */
    if (!w)
        return -1;
    w->g = g;
    w->base = base;
    return p_uc_mmio_map(g->uc, base, size, device_read, w, device_write, w);
}

/* The stage watch: stop before the block at break_pc (~0: none) runs, and before the
 * first block at CPL 3. Blocks that must call the glue for them are chosen when they
 * are translated, so a change drops the translated code. */
void vmm_set_watch(struct vmm_glue *g, uint64_t break_pc, int stop_on_user)
{
    uint64_t mask = stop_on_user ? HF_CPL_MASK : 0;
    g->break_pc = break_pc;
    g->stop_on_user = stop_on_user != 0;
    if (g->c->watch_pc != break_pc || g->c->watch_flags_mask != mask) {
        g->c->watch_pc = break_pc;
        g->c->watch_flags_mask = mask;
        g->c->watch_flags = 3;
        p_uc_ctl(g->uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
    }
}

int vmm_pending_interrupt(struct vmm_glue *g)
{
    return p_x86_cpu_pending_interrupt(g->cs, CPU_INTERRUPT_HARD) != 0;
}

const char *vmm_glue_layout(struct vmm_glue *g)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "env=+%#lx efer=%ld star=%ld lstar=%ld sysenter_cs=%ld",
             (long)(g->env - (char *)g->cs), off_efer, off_star, off_lstar, off_sysenter_cs);
    return buf;
}
