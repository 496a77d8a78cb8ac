/* What stage 2 (boot/stage2.S, step 4) leaves at physical 0x5000 and passes in RDI. */
#ifndef BOOTINFO_H
#define BOOTINFO_H
#include <stdint.h>

#define BOOTINFO_MAGIC 0x544F5953u    /* "SYOT" */

struct bootinfo {
    uint32_t magic;           /*  0 */
    uint32_t boot_drive;      /*  4 BIOS drive number (0x80 = first hard disk) */
    uint32_t e820_count;      /*  8 */
    uint32_t reserved;        /* 12 */
    uint64_t e820_addr;       /* 16 physical address of e820_count struct e820_entry */
    uint64_t cmdline_addr;    /* 24 physical address of the NUL-terminated command line */
    uint32_t kernel_lba;      /* 32 where the kernel ELF sits on the disk */
    uint32_t kernel_sectors;  /* 36 */
    uint32_t fs_lba;          /* 40 where the TOYFS image starts */
    uint32_t fs_sectors;      /* 44 */
    uint32_t disk_sectors;    /* 48 size of the whole image */
    uint32_t pad;             /* 52 */
    uint64_t kernel_file;     /* 56 physical address the ELF file was read to */
};

struct e820_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;            /* 1 usable RAM, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS */
    uint32_t attributes;
} __attribute__((packed));

#endif
