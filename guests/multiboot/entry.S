/*
 * A Multiboot 1 test kernel (Multiboot Specification 0.6.96, section 3.1).
 * The header must lie in the first 8 KiB of the file, 4-byte aligned. Because this is
 * an ELF file, flag bit 16 (the a.out "address fields") is not needed: the loader uses
 * the ELF program headers.
 *
 * Machine state on entry (spec 3.2): 32-bit protected mode, paging off, flat CS/DS,
 * EAX = 0x2BADB002, EBX = physical address of the Multiboot information structure,
 * ESP undefined (so we set our own), interrupts disabled.
 */
    .intel_syntax noprefix

    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, (1 << 0) | (1 << 1)   /* page-align modules; give mem_* and mmap_* */

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)         /* checksum: the three fields sum to 0 */

    .text
    .globl _start
_start:
    mov esp, offset stack_top
    push ebx                             /* mb_main(magic, info) */
    push eax
    call mb_main
1:  cli
    hlt
    jmp 1b

    .bss
    .balign 16
stack:
    .skip 8192
stack_top:
