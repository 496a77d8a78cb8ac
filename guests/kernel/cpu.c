/*
 * CPU tables and the interrupt hardware: GDT + TSS, IDT, 8259A PIC pair, 8254 PIT and the
 * SYSCALL MSRs. trap_dispatch is where every exception and IRQ lands (from entry.S).
 * References: Intel SDM vol. 3A ch. 3 (descriptors), 5.14 (SYSCALL), 6 (interrupts),
 * 7.7 (64-bit TSS); 8259A and 8254 datasheets.
 */
#include "kernel.h"

/* ---- GDT and TSS ------------------------------------------------------------------------ */

struct tss64 {
    uint32_t reserved0;
    uint64_t rsp0, rsp1, rsp2;      /* stack for entering CPL 0 from user mode */
    uint64_t reserved1;
    uint64_t ist[7];                /* IST1..IST7: known-good stacks for chosen vectors */
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

static struct tss64 tss;
static uint8_t df_stack[4096] __attribute__((aligned(16)));

static uint64_t gdt[8] = {
    0,                              /* 0x00 null */
    0x00AF9A000000FFFFull,          /* 0x08 kernel code, 64-bit */
    0x00CF92000000FFFFull,          /* 0x10 kernel data */
    0x00CFFA000000FFFFull,          /* 0x18 user code, 32-bit (unused; STAR base) */
    0x00CFF2000000FFFFull,          /* 0x20 user data (DPL 3) */
    0x00AFFA000000FFFFull,          /* 0x28 user code, 64-bit (DPL 3) */
    0, 0,                           /* 0x30 TSS (a 16-byte system descriptor) */
};

struct __attribute__((packed)) table_pointer {
    uint16_t limit;
    uint64_t base;
};

static void gdt_init(void)
{
    uint64_t base = (uint64_t)&tss;
    uint64_t limit = sizeof tss - 1;
    tss.iomap_base = sizeof tss;    /* no I/O permission bitmap: CPL 3 gets no ports */
    tss.ist[0] = (uint64_t)(df_stack + sizeof df_stack);
    gdt[6] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) /* present, 64-bit TSS */
             | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    gdt[7] = base >> 32;
    struct table_pointer gdtr = {sizeof gdt - 1, (uint64_t)gdt};
    __asm__ volatile("lgdt %0" ::"m"(gdtr));
    /* Reload CS through a far return, then the data segments and the task register. */
    __asm__ volatile("pushq %0\n"
                     "leaq 1f(%%rip), %%rax\n"
                     "pushq %%rax\n"
                     "lretq\n"
                     "1:\n"
                     "movw %w1, %%ax\n"
                     "movw %%ax, %%ds\n"
                     "movw %%ax, %%es\n"
                     "movw %%ax, %%ss\n"
                     "xorl %%eax, %%eax\n"
                     "movw %%ax, %%fs\n"
                     "movw %%ax, %%gs\n"
                     "ltr %w2\n" ::"i"(SEL_KCODE),
                     "r"(SEL_KDATA), "r"(SEL_TSS)
                     : "rax", "memory");
}

void tss_set_rsp0(uint64_t rsp0)
{
    tss.rsp0 = rsp0;
    syscall_kernel_rsp = rsp0;
}

/* ---- IDT -------------------------------------------------------------------------------- */

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t zero;
} __attribute__((packed));

static struct idt_gate idt[256];

static void idt_init(void)
{
    for (int v = 0; v < 48; v++) {
        uint64_t h = isr_table[v];
        idt[v].offset_lo = h & 0xFFFF;
        idt[v].selector = SEL_KCODE;
        idt[v].ist = v == 8 ? 1 : 0;       /* #DF always runs on its own stack (IST1) */
        idt[v].type_attr = 0x8E;           /* present, DPL 0, 64-bit interrupt gate */
        idt[v].offset_mid = (h >> 16) & 0xFFFF;
        idt[v].offset_hi = h >> 32;
    }
    struct table_pointer idtr = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(idtr));
}

static const char *const exception_names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range exceeded",
    "invalid opcode", "device not available", "double fault", "coprocessor segment overrun",
    "invalid TSS", "segment not present", "stack-segment fault", "general protection fault",
    "page fault", "reserved", "x87 floating-point error", "alignment check", "machine check",
    "SIMD floating-point error", "virtualization exception", "control protection",
    "reserved", "reserved", "reserved", "reserved", "reserved", "reserved",
    "hypervisor injection", "VMM communication", "security exception", "reserved",
};

const char *exception_name(uint64_t vector)
{
    return vector < 32 ? exception_names[vector] : "interrupt";
}

void dump_registers(const struct trapframe *tf)
{
    kprintf("  rip %016lx  cs %04lx  rflags %016lx\n", tf->rip, tf->cs, tf->rflags);
    kprintf("  rsp %016lx  ss %04lx  cr2 %016lx  cr3 %016lx\n", tf->rsp, tf->ss, read_cr2(), read_cr3());
    kprintf("  rax %016lx  rbx %016lx  rcx %016lx  rdx %016lx\n", tf->rax, tf->rbx, tf->rcx, tf->rdx);
    kprintf("  rsi %016lx  rdi %016lx  rbp %016lx  r8  %016lx\n", tf->rsi, tf->rdi, tf->rbp, tf->r8);
    kprintf("  r9  %016lx  r10 %016lx  r11 %016lx  r12 %016lx\n", tf->r9, tf->r10, tf->r11, tf->r12);
    kprintf("  r13 %016lx  r14 %016lx  r15 %016lx\n", tf->r13, tf->r14, tf->r15);
}

/* ---- 8259A PIC and 8254 PIT ---------------------------------------------------------------- */

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1

static void pic_init(void)
{
    /* ICW1: edge triggered, cascade, ICW4 follows. ICW2: vector offsets 0x20 and 0x28.
     * ICW3: slave on IRQ2. ICW4: 8086 mode. */
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE);
    outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    /* OCW1 (IMR): only IRQ0 (PIT) and IRQ4 (COM1) unmasked; the ATA driver polls. */
    outb(PIC1_DATA, (uint8_t)~((1 << 0) | (1 << 4)));
    outb(PIC2_DATA, 0xFF);
}

/* Handlers of PCI devices' interrupts: INTx lines are level-triggered and shared, so an
 * IRQ runs every handler registered on it and each asks its own device. */
#define MAX_HANDLERS 8
static struct {
    int irq;
    void (*handler)(void);
} handlers[MAX_HANDLERS];
static int nhandlers;

void irq_register(int irq, void (*handler)(void))
{
    if (irq < 0 || irq > 15 || irq == 2 || nhandlers == MAX_HANDLERS)
        return;
    handlers[nhandlers].irq = irq;
    handlers[nhandlers].handler = handler;
    nhandlers++;
    if (irq >= 8) {
        outb(PIC2_DATA, inb(PIC2_DATA) & ~(1 << (irq - 8)));
        outb(PIC1_DATA, inb(PIC1_DATA) & ~(1 << 2));   /* the cascade */
    } else {
        outb(PIC1_DATA, inb(PIC1_DATA) & ~(1 << irq));
    }
}

void pic_eoi(int irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, 0x20);      /* OCW2: non-specific EOI */
    outb(PIC1_CMD, 0x20);
}

static void pit_init(void)
{
    uint16_t divisor = 1193182 / HZ + 1;   /* 11932: 100 Hz from the 1.193182 MHz input */
    outb(0x43, 0x34);                      /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
    outb(0x40, divisor & 0xFF);
    outb(0x40, divisor >> 8);
}

/* ---- SYSCALL ------------------------------------------------------------------------------ */

#define MSR_EFER 0xC0000080
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_FMASK 0xC0000084
#define EFER_SCE 1

static void syscall_init(void)
{
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
    /* STAR[47:32]: SYSCALL loads CS = 0x08, SS = 0x10.
     * STAR[63:48]: SYSRETQ loads CS = 0x18 + 16 = 0x28 | 3, SS = 0x18 + 8 = 0x20 | 3. */
    wrmsr(MSR_STAR, ((uint64_t)0x18 << 48) | ((uint64_t)SEL_KCODE << 32));
    wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
    wrmsr(MSR_FMASK, 0x200 | 0x400 | 0x100 | 0x40000);  /* clear IF, DF, TF, AC on entry */
}

void cpu_init(void)
{
    gdt_init();
    idt_init();
    pic_init();
    pit_init();
    syscall_init();
}

/* ---- dispatch ----------------------------------------------------------------------------- */

struct trapframe *trap_dispatch(struct trapframe *tf)
{
    if (tf->vector < 32) {
        if ((tf->cs & 3) == 3)
            return user_fault(tf);
        kprintf("\nkernel exception: %s (vector %lu) error 0x%lx\n", exception_name(tf->vector),
                tf->vector, tf->error);
        if (tf->vector == 14)
            kprintf("  page fault address 0x%lx\n", read_cr2());
        dump_registers(tf);
        panic("unrecoverable exception in the kernel");
    }
    int irq = (int)(tf->vector - IRQ_BASE);
    if (irq == 7 || irq == 15) {
        /* Spurious IRQ: the in-service register (OCW3 read ISR) has no bit for it. */
        uint16_t cmd = irq == 7 ? PIC1_CMD : PIC2_CMD;
        outb(cmd, 0x0B);
        if (!(inb(cmd) & 0x80)) {
            if (irq == 15)
                outb(PIC1_CMD, 0x20);
            return tf;
        }
    }
    if (irq == 0) {
        pic_eoi(irq);
        return timer_tick(tf);
    }
    if (irq == 4) {
        pic_eoi(irq);
        serial_poll_input();
        return wake_from_idle(tf);
    }
    /* A level-triggered PCI line: the handlers make the devices drop it, then EOI. */
    for (int i = 0; i < nhandlers; i++)
        if (handlers[i].irq == irq)
            handlers[i].handler();
    pic_eoi(irq);
    return wake_from_idle(tf);
}
