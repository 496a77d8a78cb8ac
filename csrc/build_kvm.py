"""cffi builder for vmm._kvm_ffi, the KVM bindings of vmm/cpu/kvm.py.

API mode: every structure below is declared with ``...;`` and every constant as
``#define NAME ...``, so layouts and ioctl numbers come from the kernel's own
``<linux/kvm.h>`` (Debian package linux-libc-dev) through the C compiler, never from
hand-written offsets. csrc/kvm_glue.c adds the deadline timer, the cross-thread kick and
fixed-signature ioctl wrappers.

Run by setuptools (setup.py: ``cffi_modules=["csrc/build_kvm.py:ffibuilder"]``) or by
hand: ``python csrc/build_kvm.py`` builds the module in place in vmm/.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
KVM_HEADER = Path("/usr/include/linux/kvm.h")

CDEF = """
#define KVM_API_VERSION ...

/* system ioctls */
#define KVM_GET_API_VERSION ...
#define KVM_CREATE_VM ...
#define KVM_CHECK_EXTENSION ...
#define KVM_GET_VCPU_MMAP_SIZE ...
#define KVM_GET_SUPPORTED_CPUID ...
/* VM ioctls */
#define KVM_SET_TSS_ADDR ...
#define KVM_SET_IDENTITY_MAP_ADDR ...
#define KVM_SET_USER_MEMORY_REGION ...
#define KVM_CREATE_VCPU ...
#define KVM_CREATE_IRQCHIP ...
#define KVM_CREATE_PIT2 ...
#define KVM_IRQ_LINE ...
/* vCPU ioctls */
#define KVM_RUN ...
#define KVM_GET_REGS ...
#define KVM_SET_REGS ...
#define KVM_GET_SREGS ...
#define KVM_SET_SREGS ...
#define KVM_GET_FPU ...
#define KVM_SET_FPU ...
#define KVM_GET_XSAVE ...
#define KVM_SET_XSAVE ...
#define KVM_GET_XCRS ...
#define KVM_SET_XCRS ...
#define KVM_GET_MSRS ...
#define KVM_SET_MSRS ...
#define KVM_SET_CPUID2 ...
#define KVM_INTERRUPT ...
#define KVM_GET_DEBUGREGS ...
#define KVM_SET_DEBUGREGS ...
#define KVM_GET_VCPU_EVENTS ...
#define KVM_SET_VCPU_EVENTS ...
#define KVM_GET_MP_STATE ...
#define KVM_SET_MP_STATE ...
#define KVM_SET_GUEST_DEBUG ...

/* capabilities */
#define KVM_CAP_USER_MEMORY ...
#define KVM_CAP_SET_TSS_ADDR ...
#define KVM_CAP_SET_IDENTITY_MAP_ADDR ...
#define KVM_CAP_EXT_CPUID ...
#define KVM_CAP_READONLY_MEM ...
#define KVM_CAP_IMMEDIATE_EXIT ...
#define KVM_CAP_XSAVE ...
#define KVM_CAP_XCRS ...
#define KVM_CAP_DEBUGREGS ...
#define KVM_CAP_VCPU_EVENTS ...
#define KVM_CAP_MP_STATE ...
#define KVM_CAP_IRQCHIP ...
#define KVM_CAP_PIT2 ...
#define KVM_CAP_SET_GUEST_DEBUG ...
#define KVM_CAP_INTERNAL_ERROR_DATA ...

/* exits */
#define KVM_EXIT_UNKNOWN ...
#define KVM_EXIT_EXCEPTION ...
#define KVM_EXIT_IO ...
#define KVM_EXIT_HYPERCALL ...
#define KVM_EXIT_DEBUG ...
#define KVM_EXIT_HLT ...
#define KVM_EXIT_MMIO ...
#define KVM_EXIT_IRQ_WINDOW_OPEN ...
#define KVM_EXIT_SHUTDOWN ...
#define KVM_EXIT_FAIL_ENTRY ...
#define KVM_EXIT_INTR ...
#define KVM_EXIT_NMI ...
#define KVM_EXIT_INTERNAL_ERROR ...
#define KVM_EXIT_SYSTEM_EVENT ...
#define KVM_EXIT_IO_IN ...
#define KVM_EXIT_IO_OUT ...
#define KVM_INTERNAL_ERROR_EMULATION ...
#define KVM_INTERNAL_ERROR_SIMUL_EX ...
#define KVM_INTERNAL_ERROR_DELIVERY_EV ...
#define KVM_SYSTEM_EVENT_SHUTDOWN ...
#define KVM_SYSTEM_EVENT_RESET ...
#define KVM_SYSTEM_EVENT_CRASH ...

#define KVM_MEM_READONLY ...
#define KVM_MP_STATE_RUNNABLE ...
#define KVM_MP_STATE_HALTED ...
#define KVM_GUESTDBG_ENABLE ...
#define KVM_GUESTDBG_USE_HW_BP ...
#define KVM_VCPUEVENT_VALID_NMI_PENDING ...
#define KVM_VCPUEVENT_VALID_SHADOW ...
#define KVM_NR_INTERRUPTS ...
#define KVM_MAX_XCRS ...

struct kvm_userspace_memory_region {
    uint32_t slot;
    uint32_t flags;
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    ...;
};

struct kvm_regs {
    uint64_t rax, rbx, rcx, rdx;
    uint64_t rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11;
    uint64_t r12, r13, r14, r15;
    uint64_t rip, rflags;
    ...;
};

struct kvm_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type;
    uint8_t present, dpl, db, s, l, g, avl;
    uint8_t unusable;
    ...;
};

struct kvm_dtable {
    uint64_t base;
    uint16_t limit;
    ...;
};

/* __u64 is unsigned long long: arrays of it are declared so for the type check. */
struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss;
    struct kvm_segment tr, ldt;
    struct kvm_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t apic_base;
    unsigned long long interrupt_bitmap[...];
    ...;
};

struct kvm_fpu {
    uint8_t fpr[8][16];
    uint16_t fcw;
    uint16_t fsw;
    uint8_t ftwx;
    uint16_t last_opcode;
    uint64_t last_ip;
    uint64_t last_dp;
    uint8_t xmm[16][16];
    uint32_t mxcsr;
    ...;
};

struct kvm_xsave {
    uint32_t region[1024];
    ...;
};

struct kvm_xcr {
    uint32_t xcr;
    uint64_t value;
    ...;
};

struct kvm_xcrs {
    uint32_t nr_xcrs;
    uint32_t flags;
    struct kvm_xcr xcrs[...];
    ...;
};

struct kvm_msr_entry {
    uint32_t index;
    uint64_t data;
    ...;
};

struct kvm_msrs {
    uint32_t nmsrs;
    struct kvm_msr_entry entries[];
    ...;
};

struct kvm_cpuid_entry2 {
    uint32_t function;
    uint32_t index;
    uint32_t flags;
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
    ...;
};

struct kvm_cpuid2 {
    uint32_t nent;
    struct kvm_cpuid_entry2 entries[];
    ...;
};

struct kvm_interrupt {
    uint32_t irq;
    ...;
};

struct kvm_irq_level {
    uint32_t irq;
    uint32_t level;
    ...;
};

struct kvm_pit_config {
    uint32_t flags;
    ...;
};

struct kvm_debugregs {
    unsigned long long db[4];
    uint64_t dr6;
    uint64_t dr7;
    uint64_t flags;
    ...;
};

typedef struct {
    uint8_t injected;
    uint8_t nr;
    uint8_t has_error_code;
    uint8_t pending;
    uint32_t error_code;
    ...;
} vmm_events_exception_t;
typedef struct {
    uint8_t injected;
    uint8_t nr;
    uint8_t soft;
    uint8_t shadow;
    ...;
} vmm_events_interrupt_t;
typedef struct {
    uint8_t injected;
    uint8_t pending;
    uint8_t masked;
    ...;
} vmm_events_nmi_t;

struct kvm_vcpu_events {
    vmm_events_exception_t exception;
    vmm_events_interrupt_t interrupt;
    vmm_events_nmi_t nmi;
    uint32_t sipi_vector;
    uint32_t flags;
    ...;
};

struct kvm_mp_state {
    uint32_t mp_state;
    ...;
};

struct kvm_guest_debug_arch {
    unsigned long long debugreg[8];
    ...;
};

struct kvm_guest_debug {
    uint32_t control;
    struct kvm_guest_debug_arch arch;
    ...;
};

struct kvm_debug_exit_arch {
    uint32_t exception;
    uint64_t pc;
    uint64_t dr6;
    uint64_t dr7;
    ...;
};

/* kvm_run's exit union has anonymous members: kvm_glue.c names them with typedefs
   and hands out pointers to them. */
typedef struct {
    uint64_t hardware_entry_failure_reason;
    uint32_t cpu;
    ...;
} vmm_run_fail_entry_t;
typedef struct {
    uint8_t direction;
    uint8_t size;
    uint16_t port;
    uint32_t count;
    uint64_t data_offset;
    ...;
} vmm_run_io_t;
typedef struct {
    struct kvm_debug_exit_arch arch;
    ...;
} vmm_run_debug_t;
typedef struct {
    uint64_t phys_addr;
    uint8_t data[8];
    uint32_t len;
    uint8_t is_write;
    ...;
} vmm_run_mmio_t;
typedef struct {
    uint32_t suberror;
    uint32_t ndata;
    unsigned long long data[16];
    ...;
} vmm_run_internal_t;
typedef struct {
    uint32_t type;
    uint32_t ndata;
    ...;
} vmm_run_system_event_t;

struct kvm_run {
    uint8_t request_interrupt_window;
    uint8_t immediate_exit;
    uint32_t exit_reason;
    uint8_t ready_for_interrupt_injection;
    uint8_t if_flag;
    uint16_t flags;
    uint64_t cr8;
    uint64_t apic_base;
    ...;
};

vmm_run_fail_entry_t *vmm_run_fail_entry(struct kvm_run *run);
vmm_run_io_t *vmm_run_io(struct kvm_run *run);
vmm_run_debug_t *vmm_run_debug(struct kvm_run *run);
vmm_run_mmio_t *vmm_run_mmio(struct kvm_run *run);
vmm_run_internal_t *vmm_run_internal(struct kvm_run *run);
vmm_run_system_event_t *vmm_run_system_event(struct kvm_run *run);

/* csrc/kvm_glue.c */
struct vmm_kvm_vcpu {
    int fd;
    int signo;
    struct kvm_run *run;
    volatile int stop_requested;
    volatile int in_run;
    int tid;
    int has_timer;
    uint64_t last_run_ns;
    uint64_t total_run_ns;
    uint64_t runs;
    ...;
};

int vmm_kvm_signal(void);
int vmm_kvm_vcpu_init(struct vmm_kvm_vcpu *v, int fd, struct kvm_run *run);
int vmm_kvm_vcpu_run(struct vmm_kvm_vcpu *v, int64_t budget_ns);
void vmm_kvm_vcpu_kick(struct vmm_kvm_vcpu *v);
void vmm_kvm_vcpu_fini(struct vmm_kvm_vcpu *v);
int vmm_ioctl_ptr(int fd, unsigned long request, void *arg);
int vmm_ioctl_int(int fd, unsigned long request, unsigned long arg);
int vmm_open(const char *path);

#define PROT_READ ...
#define PROT_WRITE ...
#define MAP_SHARED ...
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
int close(int fd);
"""


def _check_header() -> None:
    if not KVM_HEADER.exists():
        raise SystemExit(
            f"{KVM_HEADER} not found: the KVM backend is built from the kernel's UAPI headers "
            "(Debian/Ubuntu: apt-get install linux-libc-dev)"
        )


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "vmm._kvm_ffi",
    '#include "kvm_glue.c"',
    include_dirs=[str(HERE)],
    libraries=["rt"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
    depends=[str(HERE / "kvm_glue.c")],
)

if __name__ == "__main__":
    import os

    _check_header()
    os.chdir(HERE.parent)
    ffibuilder.compile(tmpdir=".", verbose=False)
