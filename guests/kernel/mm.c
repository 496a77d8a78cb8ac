/*
 * Physical pages and 4-level page tables.
 *
 * Physical memory: every E820 "usable" range above the kernel image, below 1 GiB, is cut
 * into 4 KiB frames kept on a free list (the link lives in the free frame itself).
 *
 * Virtual memory: one PML4 per process. The upper half (PML4 entry 511) is the kernel's
 * and is shared by all: 0xFFFFFFFF80000000 + p maps physical p for p < 1 GiB with 2 MiB
 * supervisor pages. The lower half belongs to the process; its pages carry the U bit.
 * Nothing is identity-mapped once the kernel has its own tables, so a NULL dereference
 * faults in the kernel as well as in user programs.
 */
#include "kernel.h"
#include "bootinfo.h"

#define PTE_P 0x001ull
#define PTE_W 0x002ull
#define PTE_U 0x004ull
#define PTE_PS 0x080ull
#define PTE_G 0x100ull
#define PTE_ADDR 0x000FFFFFFFFFF000ull
#define USER_TOP 0x0000800000000000ull

uint64_t kernel_pml4;
static uint64_t kernel_pdpt;
static uint64_t free_list;     /* physical address of the first free frame, 0 = none */
static uint64_t free_count;

void frame_free(uint64_t pa)
{
    *(uint64_t *)P2V(pa) = free_list;
    free_list = pa;
    free_count++;
}

uint64_t frame_alloc(void)
{
    uint64_t pa = free_list;
    if (!pa)
        return 0;
    free_list = *(uint64_t *)P2V(pa);
    free_count--;
    memset(P2V(pa), 0, PAGE_SIZE);
    return pa;
}

uint64_t mm_free_pages(void)
{
    return free_count;
}

void mm_init(uint64_t kernel_end_phys)
{
    /* Frames are handed out from the free list head, so push high addresses first and the
     * allocator returns low addresses first (easier to read in a trace). */
    extern struct bootinfo *boot_info;
    struct e820_entry *map = P2V(boot_info->e820_addr);
    for (int i = (int)boot_info->e820_count - 1; i >= 0; i--) {
        if (map[i].type != 1)
            continue;
        uint64_t start = ALIGN_UP(map[i].base, PAGE_SIZE);
        uint64_t end = (map[i].base + map[i].length) & ~(PAGE_SIZE - 1);
        if (start < kernel_end_phys)
            start = kernel_end_phys;
        if (end > PHYS_MAPPED_MAX)
            end = PHYS_MAPPED_MAX;
        for (uint64_t pa = end; pa > start; pa -= PAGE_SIZE)
            frame_free(pa - PAGE_SIZE);
    }

    /* The kernel's own tables: PML4[511] -> PDPT[510] -> a PD of 512 2 MiB pages. */
    kernel_pml4 = frame_alloc();
    uint64_t pdpt = kernel_pdpt = frame_alloc();
    uint64_t pd = frame_alloc();
    if (!pd)
        panic("mm: no memory for the kernel page tables");
    uint64_t *pde = P2V(pd);
    for (uint64_t i = 0; i < 512; i++)
        pde[i] = (i << 21) | PTE_P | PTE_W | PTE_PS | PTE_G;
    ((uint64_t *)P2V(pdpt))[510] = pd | PTE_P | PTE_W;
    ((uint64_t *)P2V(kernel_pml4))[511] = pdpt | PTE_P | PTE_W;
    write_cr3(kernel_pml4);
}

#define PTE_PWT 0x008ull
#define PTE_PCD 0x010ull
#define MMIO_BASE 0xC0000000ull
#define MMIO_END 0x100000000ull

/* PDPT[511] (virtual 0xFFFFFFFFC0000000) maps physical 0xC0000000-0xFFFFFFFF with 2 MiB
 * uncached pages, made on first use. Every PML4 shares the kernel's PDPT, so all
 * processes see it. */
volatile void *mmio_map(uint64_t pa, uint64_t len)
{
    if (pa < MMIO_BASE || len > MMIO_END - pa)
        return 0;
    uint64_t *pdpte = (uint64_t *)P2V(kernel_pdpt) + 511;
    if (!(*pdpte & PTE_P)) {
        uint64_t pd = frame_alloc();
        if (!pd)
            return 0;
        uint64_t *pde = P2V(pd);
        for (uint64_t i = 0; i < 512; i++)
            pde[i] = (MMIO_BASE + (i << 21)) | PTE_P | PTE_W | PTE_PS | PTE_G | PTE_PCD | PTE_PWT;
        *pdpte = pd | PTE_P | PTE_W;
    }
    return (volatile void *)(pa + 0xFFFFFFFF00000000ull);
}

uint64_t vm_new_space(void)
{
    uint64_t pml4 = frame_alloc();
    if (pml4)
        ((uint64_t *)P2V(pml4))[511] = ((uint64_t *)P2V(kernel_pml4))[511];
    return pml4;
}

/* The entry for va at the last level (PT), creating the intermediate tables if asked. */
static uint64_t *walk(uint64_t pml4, uint64_t va, int create)
{
    uint64_t table = pml4;
    for (int level = 3; level > 0; level--) {
        uint64_t *entry = (uint64_t *)P2V(table) + ((va >> (12 + 9 * level)) & 511);
        if (!(*entry & PTE_P)) {
            if (!create)
                return 0;
            uint64_t next = frame_alloc();
            if (!next)
                return 0;
            *entry = next | PTE_P | PTE_W | PTE_U;
        }
        table = *entry & PTE_ADDR;
    }
    return (uint64_t *)P2V(table) + ((va >> 12) & 511);
}

int vm_map(uint64_t pml4, uint64_t va, uint64_t pa, int writable)
{
    if (va >= USER_TOP)
        return E_FAIL;
    uint64_t *pte = walk(pml4, va, 1);
    if (!pte)
        return E_NOSPC;
    *pte = pa | PTE_P | PTE_U | (writable ? PTE_W : 0);
    return 0;
}

uint64_t vm_translate(uint64_t pml4, uint64_t va, int need_write)
{
    if (va >= USER_TOP)
        return 0;
    uint64_t *pte = walk(pml4, va, 0);
    if (!pte || !(*pte & PTE_P) || !(*pte & PTE_U) || (need_write && !(*pte & PTE_W)))
        return 0;
    return (*pte & PTE_ADDR) | (va & (PAGE_SIZE - 1));
}

int user_range_ok(uint64_t pml4, uint64_t va, uint64_t len, int write)
{
    if (va + len < va || va + len > USER_TOP)
        return 0;
    for (uint64_t page = va & ~(PAGE_SIZE - 1); page < va + len; page += PAGE_SIZE)
        if (!vm_translate(pml4, page, write))
            return 0;
    return 1;
}

static void free_table(uint64_t table, int level)
{
    uint64_t *entries = P2V(table);
    for (int i = 0; i < 512; i++) {
        if (!(entries[i] & PTE_P))
            continue;
        if (level > 0)
            free_table(entries[i] & PTE_ADDR, level - 1);
        else
            frame_free(entries[i] & PTE_ADDR);
        entries[i] = 0;
    }
    frame_free(table);
}

void vm_free_user(uint64_t pml4)
{
    uint64_t *entries = P2V(pml4);
    for (int i = 0; i < 256; i++) {
        if (entries[i] & PTE_P)
            free_table(entries[i] & PTE_ADDR, 2);
        entries[i] = 0;
    }
}
