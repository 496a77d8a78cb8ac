/* Declarations shared by all kernel files. */
#ifndef KERNEL_H
#define KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include "format.h"
#include "string.h"
#include "toyos/syscall.h"

/* The kernel runs in the top 2 GiB; physical memory below 1 GiB is mapped there too, so a
 * physical address p is reached at P2V(p). */
#define KERNEL_BASE 0xFFFFFFFF80000000ull
#define P2V(p) ((void *)((uint64_t)(p) + KERNEL_BASE))
#define V2P(v) ((uint64_t)(v) - KERNEL_BASE)
#define PHYS_MAPPED_MAX 0x40000000ull   /* 1 GiB */

#define PAGE_SIZE 4096ull
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

/* GDT selectors (cpu.c). STAR relies on this order: user data just below user code. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA (0x20 | 3)
#define SEL_UCODE (0x28 | 3)
#define SEL_TSS   0x30

#define VEC_SYSCALL 0x80   /* trap-frame marker: frame built by the SYSCALL entry */
#define IRQ_BASE 0x20

/* Saved registers, in the order entry.S pushes them (lowest address first). */
struct trapframe {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;     /* as pushed by the CPU (or by syscall_entry) */
};

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
/* Orders memory accesses for the compiler; x86 keeps stores in order for the device. */
#define barrier() __asm__ volatile("" ::: "memory")
static inline uint64_t read_cr2(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}
static inline uint64_t read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}
static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

/* console.c */
void console_init(void);
void console_write(const char *s, size_t n);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void serial_poll_input(void);
int console_read_line(char *buf, size_t n);   /* -1: no complete line yet */
int console_has_line(void);
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void halt_forever(void);

/* cpu.c */
void cpu_init(void);
void tss_set_rsp0(uint64_t rsp0);
void pic_eoi(int irq);
void dump_registers(const struct trapframe *tf);
const char *exception_name(uint64_t vector);

/* mm.c */
void mm_init(uint64_t kernel_end_phys);
uint64_t frame_alloc(void);             /* zeroed page, physical address; 0 when out */
void frame_free(uint64_t pa);
uint64_t mm_free_pages(void);
uint64_t vm_new_space(void);            /* new PML4 sharing the kernel half */
int vm_map(uint64_t pml4, uint64_t va, uint64_t pa, int writable);
uint64_t vm_translate(uint64_t pml4, uint64_t va, int need_write);  /* 0: not user-mapped */
void vm_free_user(uint64_t pml4);       /* free the user half (pages and tables) */
int user_range_ok(uint64_t pml4, uint64_t va, uint64_t len, int write);
extern uint64_t kernel_pml4;
/* Device registers in the top physical GiB (PCI memory BARs: 0xC0000000-0xFFFFFFFF), mapped
 * uncached at 0xFFFFFFFF00000000 + p. NULL if [pa, pa+len) is outside that window. */
volatile void *mmio_map(uint64_t pa, uint64_t len);

/* ata.c */
uint32_t ata_init(void);                /* sector count of the primary master, 0: none */
int ata_read(uint32_t lba, uint32_t count, void *buf);

/* pci.c: configuration mechanism #1 (ports 0xCF8/0xCFC), bus 0 */
struct pci_dev {
    uint8_t bus, dev, fn, irq;      /* irq: the Interrupt Line register (0xFF: none) */
    uint16_t vendor, device;
    uint32_t class_code;            /* class, subclass, prog-if */
};
int pci_init(void);                 /* number of functions found; -1: no PCI bus */
struct pci_dev *pci_find(uint16_t vendor, uint16_t device, int index);
uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);
/* Interrupt handlers for PCI devices (INTx lines are shared and level-triggered). */
void irq_register(int irq, void (*handler)(void));

/* virtio_net.c and net.c */
int net_init(void);                 /* 1: eth0 found and up */
void net_poll(void);
long sys_netinfo(struct netinfo *info);
long net_send_frame(const void *frame, uint64_t len);
int net_rx_pending(void);
long net_rx_pop(void *buf, uint64_t len);
int net_set_ip(uint32_t ip, uint32_t mask);
void net_input(const uint8_t *frame, uint32_t len);   /* from the driver */

/* virtio_blk.c */
uint64_t vblk_init(void);           /* sectors of the first virtio disk, 0: none */
int vblk_read(uint64_t lba, uint32_t count, void *buf);

/* disk.c: where the file system lives (ATA or virtio) */
extern int (*disk_read)(uint64_t lba, uint32_t count, void *buf);

/* fs.c */
int fs_init(uint32_t lba, uint32_t sectors);
int fs_find(const char *path);
int fs_count(void);
const char *fs_name(int idx);
uint32_t fs_size(int idx);
uint32_t fs_flags(int idx);
long fs_read(int idx, uint64_t off, void *buf, uint64_t len);

/* proc.c */
void proc_init(void);
int proc_spawn(const char *path, const char *args, int parent);
struct trapframe *schedule(void);
struct trapframe *timer_tick(struct trapframe *tf);
struct trapframe *wake_from_idle(struct trapframe *tf);
struct trapframe *user_fault(struct trapframe *tf);
struct trapframe *syscall_dispatch(struct trapframe *tf);
__attribute__((noreturn)) void start_first_process(void);
extern volatile uint64_t ticks;
#define HZ 100

/* entry.S */
__attribute__((noreturn)) void trap_return(struct trapframe *tf);
extern void syscall_entry(void);
extern uint64_t isr_table[];
extern uint64_t syscall_kernel_rsp;

#endif
