/*
 * toyos stage 2, loaded by the boot sector at 0000:8000 (disk LBA 2..33).
 * The boot-parameters sector (LBA 1) sits just below it at 0000:7E00 (see bootparams.h).
 *
 * Steps, in the order a class steps through them:
 *   real mode (16-bit)
 *     1. INT 15h EAX=E820h: the BIOS memory map, 24-byte entries stored at 0x6000.
 *     2. A20: INT 15h AX=2401h, then the "fast A20" bit of port 0x92, then a check that
 *        0000:7DFE and FFFF:7E0E (1 MiB apart) really are different bytes.
 *     3. INT 13h AH=42h: the kernel ELF file, read in 64-sector chunks to 0x10000.
 *     4. The boot-info structure at 0x5000 (what the kernel gets in RDI).
 *     5. LGDT, CR0.PE = 1, far jump into 32-bit code.
 *   protected mode (32-bit)
 *     6. Program COM1 (115200 8N1); from here on progress goes to the serial port.
 *     7. Page tables at 0x1000-0x4FFF: one page directory of 2 MiB pages mapping the first
 *        1 GiB, reached both at virtual 0 (identity) and at 0xFFFFFFFF80000000 (the
 *        kernel's higher half).
 *     8. CR4.PAE = 1, CR3 = PML4, EFER.LME = 1, CR0.PG = 1, far jump into 64-bit code.
 *   long mode (64-bit)
 *     9. Copy each PT_LOAD program header of the kernel ELF from 0x10000 + p_offset to
 *        p_paddr and zero the rest up to p_memsz (the .bss).
 *    10. Jump to e_entry with RDI = 0x5000 (boot info).
 *
 * Low memory map while booting:
 *   0x0500        (unused)
 *   0x1000-0x1FFF PML4        0x2000 PDPT (low half)   0x3000 PDPT (high half)   0x4000 PD
 *   0x5000        boot info   0x6000 E820 entries (up to 128 x 24 bytes)
 *   0x7000-0x7BFF real-mode and 32/64-bit stack (grows down from 0x7C00)
 *   0x7C00        boot sector 0x7E00 boot-parameters sector   0x8000 stage 2
 *   0x10000-0x8FFFF kernel ELF file as read from disk
 *   0x100000      kernel (physical), linked at 0xFFFFFFFF80100000
 */
    .intel_syntax noprefix

    .set PARAMS,        0x7E00      /* boot-parameters sector */
    .set P_KERNEL_LBA,  PARAMS+16
    .set P_KERNEL_SECT, PARAMS+20
    .set P_FS_LBA,      PARAMS+24
    .set P_FS_SECT,     PARAMS+28
    .set P_DISK_SECT,   PARAMS+32
    .set P_CMDLINE,     PARAMS+64

    .set BOOTINFO,      0x5000
    .set E820_BUF,      0x6000
    .set E820_MAX,      128
    .set KFILE,         0x10000     /* kernel ELF file buffer */
    .set KFILE_MAX_SECT, 1024       /* 512 KiB: 0x10000..0x8FFFF */
    .set PML4,          0x1000
    .set PDPT_LO,       0x2000
    .set PDPT_HI,       0x3000
    .set PD,            0x4000
    .set COM1,          0x3F8

    .section .text
    .code16
    .globl _start
_start:
    mov [boot_drive], dl
    mov [serial_mirror], dh     /* boot sector: 1 if the BIOS does not copy INT 10h to COM1 */
    mov si, offset msg_stage2
    call print16

/* ---- 1. E820 memory map --------------------------------------------------------------- */
    xor ebx, ebx                /* continuation value: 0 = start */
    mov di, E820_BUF            /* ES:DI -> where the BIOS writes the entry */
    xor bp, bp                  /* entry count */
e820_next:
    mov dword ptr es:[di+20], 1 /* ACPI 3.0 extended attributes: "valid" unless BIOS says no */
    mov eax, 0xE820
    mov edx, 0x534D4150         /* "SMAP" */
    mov ecx, 24
    int 0x15
    jc e820_done                /* carry on the first call: no E820; later: end of list */
    cmp eax, 0x534D4150
    jne e820_done
    cmp dword ptr es:[di+8], 0  /* skip zero-length entries */
    jne 1f
    cmp dword ptr es:[di+12], 0
    je 2f
1:  inc bp
    add di, 24
2:  test ebx, ebx               /* EBX = 0: that was the last entry */
    jz e820_done
    cmp bp, E820_MAX
    jb e820_next
e820_done:
    mov [e820_count], bp
    mov si, offset msg_e820
    call print16
    mov ax, bp
    call print_dec16
    mov si, offset msg_entries
    call print16

/* ---- 2. A20 ----------------------------------------------------------------------------- */
    mov ax, 0x2401              /* INT 15h AX=2401h: "enable A20 gate" */
    int 0x15
    in al, 0x92                 /* port 0x92 bit 1: fast A20 (bit 0 would reset the CPU) */
    test al, 2
    jnz 1f
    or al, 2
    and al, 0xFE
    out 0x92, al
1:  call a20_check
    jnz a20_ok
    mov si, offset msg_a20fail
    jmp fail16
a20_ok:
    mov si, offset msg_a20
    call print16

/* ---- 3. read the kernel ELF file ----------------------------------------------------------- */
    mov si, offset msg_kernel
    call print16
    mov eax, [P_KERNEL_SECT]
    cmp eax, KFILE_MAX_SECT
    jbe 1f
    mov si, offset msg_toobig
    jmp fail16
1:  mov [sectors_left], eax
    mov eax, [P_KERNEL_LBA]
    mov [dap_lba], eax
    mov word ptr [dap_seg], KFILE >> 4
read_loop:
    mov eax, [sectors_left]
    test eax, eax
    jz read_done
    cmp eax, 64                 /* 64 sectors = 32 KiB per call: stays inside one segment */
    jbe 1f
    mov eax, 64
1:  mov [dap_count], ax
    mov ah, 0x42
    mov dl, [boot_drive]
    mov si, offset dap
    int 0x13
    jc read_fail
    movzx eax, word ptr [dap_count]
    sub [sectors_left], eax
    add [dap_lba], eax
    shl ax, 5                   /* sectors * 512 / 16 = paragraphs to advance the segment */
    add [dap_seg], ax
    jmp read_loop
read_fail:
    mov si, offset msg_readerr
    jmp fail16
read_done:

/* ---- 4. boot info for the kernel (layout: guests/kernel/bootinfo.h) ----------------------- */
    mov di, BOOTINFO
    xor eax, eax
    mov cx, 64 / 4
    rep stosd                   /* zero 64 bytes */
    mov dword ptr [BOOTINFO+0], 0x544F5953      /* magic "SYOT" = BOOTINFO_MAGIC */
    movzx eax, byte ptr [boot_drive]
    mov [BOOTINFO+4], eax
    movzx eax, word ptr [e820_count]
    mov [BOOTINFO+8], eax
    mov dword ptr [BOOTINFO+16], E820_BUF
    mov dword ptr [BOOTINFO+24], P_CMDLINE
    mov eax, [P_KERNEL_LBA]
    mov [BOOTINFO+32], eax
    mov eax, [P_KERNEL_SECT]
    mov [BOOTINFO+36], eax
    mov eax, [P_FS_LBA]
    mov [BOOTINFO+40], eax
    mov eax, [P_FS_SECT]
    mov [BOOTINFO+44], eax
    mov eax, [P_DISK_SECT]
    mov [BOOTINFO+48], eax
    mov dword ptr [BOOTINFO+56], KFILE

/* ---- 5. protected mode ------------------------------------------------------------------- */
    mov si, offset msg_pmode
    call print16
    cli                         /* from here on no BIOS: its real-mode IVT is useless */
    lgdt [gdt_descriptor]
    mov eax, cr0
    or eax, 1                   /* CR0.PE */
    mov cr0, eax
    ljmp 0x08, offset pm32      /* reload CS with the 32-bit code descriptor */

/* a20_check: ZF clear if A20 is on. Compares 0000:7DFE (boot signature 0xAA55) with
 * FFFF:7E0E, the same address + 1 MiB; with A20 off they are the same byte. */
a20_check:
    push ds
    push es
    xor ax, ax
    mov ds, ax
    not ax
    mov es, ax                  /* ES = 0xFFFF */
    mov ax, [0x7DFE]
    mov bx, es:[0x7E0E]
    cmp ax, bx
    jne 1f                      /* different: A20 on (ZF = 0) */
    mov word ptr [0x7DFE], 0x1234   /* same value by chance? change one and look again */
    mov bx, es:[0x7E0E]
    mov word ptr [0x7DFE], ax
    cmp bx, 0x1234              /* still equal after the write: wrapped, A20 off (ZF = 1) */
1:  pop es
    pop ds
    ret

fail16:
    call print16
1:  cli
    hlt
    jmp 1b

/* print16: NUL-terminated string at DS:SI through INT 10h AH=0Eh, and to COM1 when the
 * BIOS does not do that itself (serial_mirror, decided by the boot sector). */
print16:
    pusha
1:  lodsb
    test al, al
    jz 2f
    call putc16
    jmp 1b
2:  popa
    ret

/* putc16: AL to the screen (INT 10h AH=0Eh) and to COM1. */
putc16:
    pusha
    mov cl, al
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    cmp byte ptr [serial_mirror], 0
    je 2f
    mov dx, COM1+5              /* LSR: wait for THR empty */
1:  in al, dx
    test al, 0x20
    jz 1b
    mov dx, COM1
    mov al, cl
    out dx, al
2:  popa
    ret

/* print_dec16: AX as an unsigned decimal number. */
print_dec16:
    pusha
    mov bx, 10
    xor cx, cx
1:  xor dx, dx
    div bx
    push dx
    inc cx
    test ax, ax
    jnz 1b
2:  pop ax
    add al, '0'
    call putc16
    loop 2b
    popa
    ret

/* ======================================================================================= */
    .code32
pm32:
    mov ax, 0x10                /* flat 4 GiB data descriptor */
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, 0x7C00

/* ---- 6. COM1: 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on ------------------ */
    mov dx, COM1+1
    xor al, al
    out dx, al                  /* IER = 0: no UART interrupts */
    mov dx, COM1+3
    mov al, 0x80
    out dx, al                  /* LCR.DLAB = 1: ports 0/1 are the divisor latch */
    mov dx, COM1+0
    mov al, 1
    out dx, al                  /* divisor 1 = 115200 baud */
    mov dx, COM1+1
    xor al, al
    out dx, al
    mov dx, COM1+3
    mov al, 0x03
    out dx, al                  /* LCR: 8N1, DLAB = 0 */
    mov dx, COM1+2
    mov al, 0xC7
    out dx, al                  /* FCR: enable and clear FIFOs */
    mov dx, COM1+4
    mov al, 0x0B
    out dx, al                  /* MCR: DTR, RTS, OUT2 */

    mov esi, offset msg_pm32
    call print32

/* ---- 7. page tables ---------------------------------------------------------------------- */
    mov edi, PML4
    xor eax, eax
    mov ecx, (0x5000 - PML4) / 4
    rep stosd                                   /* zero PML4, both PDPTs and the PD */
    mov dword ptr [PML4 + 0*8],   PDPT_LO | 3   /* present | writable */
    mov dword ptr [PML4 + 511*8], PDPT_HI | 3   /* 0xFFFF_FF80_0000_0000 .. */
    mov dword ptr [PDPT_LO + 0*8],   PD | 3     /* virtual 0 .. 1 GiB */
    mov dword ptr [PDPT_HI + 510*8], PD | 3     /* virtual 0xFFFFFFFF80000000 .. +1 GiB */
    mov edi, PD
    mov eax, 0x83                               /* present | writable | PS (2 MiB page) */
    mov ecx, 512
1:  mov [edi], eax
    add eax, 0x200000
    add edi, 8
    loop 1b

/* ---- 8. long mode ------------------------------------------------------------------------ */
    mov eax, cr4
    or eax, 1 << 5              /* CR4.PAE */
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xC0000080         /* IA32_EFER */
    rdmsr
    or eax, 1 << 8              /* EFER.LME */
    wrmsr
    mov eax, cr0
    or eax, 1 << 31             /* CR0.PG: with LME set this activates IA-32e mode */
    mov cr0, eax
    ljmp 0x18, offset lm64      /* 64-bit code descriptor (L = 1) */

/* print32: NUL-terminated string at ESI to COM1, polling LSR.THRE (bit 5). */
print32:
    push eax
    push edx
1:  lodsb
    test al, al
    jz 3f
    mov ah, al
    mov dx, COM1+5
2:  in al, dx
    test al, 0x20
    jz 2b
    mov al, ah
    mov dx, COM1
    out dx, al
    jmp 1b
3:  pop edx
    pop eax
    ret

/* ======================================================================================= */
    .code64
lm64:
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x7C00

/* ---- 9. load the kernel's PT_LOAD segments ----------------------------------------------- */
    mov rbx, KFILE
    cmp dword ptr [rbx], 0x464C457F     /* "\x7FELF" */
    jne bad_elf
    cmp byte ptr [rbx+4], 2             /* ELFCLASS64 */
    jne bad_elf
    mov r8, [rbx+0x20]                  /* e_phoff */
    add r8, rbx                         /* r8 -> first program header */
    movzx r9, word ptr [rbx+0x36]       /* e_phentsize */
    movzx r10, word ptr [rbx+0x38]      /* e_phnum */
ph_loop:
    test r10, r10
    jz ph_done
    cmp dword ptr [r8], 1               /* p_type == PT_LOAD */
    jne ph_next
    mov rsi, [r8+0x08]                  /* p_offset */
    add rsi, rbx
    mov rdi, [r8+0x18]                  /* p_paddr */
    mov rcx, [r8+0x20]                  /* p_filesz */
    rep movsb
    mov rcx, [r8+0x28]                  /* p_memsz */
    sub rcx, [r8+0x20]                  /* bytes past the file image: .bss */
    xor eax, eax
    rep stosb
ph_next:
    add r8, r9
    dec r10
    jmp ph_loop
ph_done:

/* ---- 10. jump ----------------------------------------------------------------------------- */
    mov esi, offset msg_jump
    call print64
    mov rax, [rbx+0x18]                 /* e_entry */
    call print_hex64
    mov esi, offset msg_nl
    call print64
    mov rax, [rbx+0x18]
    mov rdi, BOOTINFO                   /* System V ABI: first argument */
    jmp rax

bad_elf:
    mov esi, offset msg_badelf
    call print64
1:  cli
    hlt
    jmp 1b

/* print64: NUL-terminated string at RSI to COM1. */
print64:
    push rax
    push rdx
1:  lodsb
    test al, al
    jz 3f
    mov ah, al
    mov dx, COM1+5
2:  in al, dx
    test al, 0x20
    jz 2b
    mov al, ah
    mov dx, COM1
    out dx, al
    jmp 1b
3:  pop rdx
    pop rax
    ret

/* print_hex64: RAX as 16 hex digits to COM1. */
print_hex64:
    push rcx
    push rdx
    push rbx
    mov rbx, rax
    mov rcx, 16
1:  rol rbx, 4
    mov al, bl
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 2f
    add al, 'a' - '0' - 10
2:  mov ah, al
    mov dx, COM1+5
3:  in al, dx
    test al, 0x20
    jz 3b
    mov al, ah
    mov dx, COM1
    out dx, al
    loop 1b
    pop rbx
    pop rdx
    pop rcx
    ret

/* ---- data --------------------------------------------------------------------------------- */
    .balign 8
gdt:
    .quad 0                             /* 0x00: null descriptor */
    .quad 0x00CF9A000000FFFF            /* 0x08: 32-bit code, base 0, limit 4 GiB */
    .quad 0x00CF92000000FFFF            /* 0x10: 32-bit data, base 0, limit 4 GiB */
    .quad 0x00AF9A000000FFFF            /* 0x18: 64-bit code (L = 1) */
    .quad 0x00CF92000000FFFF            /* 0x20: data for long mode */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .balign 4
dap:
    .byte 16, 0
dap_count: .word 0
dap_off:   .word 0
dap_seg:   .word 0
dap_lba:   .quad 0

sectors_left: .long 0
e820_count:   .word 0
boot_drive:   .byte 0
serial_mirror: .byte 0

msg_stage2:   .asciz "boot: stage2 running at 0x8000\r\n"
msg_e820:     .asciz "boot: E820 map: "
msg_entries:  .asciz " entries\r\n"
msg_a20:      .asciz "boot: A20 on\r\n"
msg_a20fail:  .asciz "boot: A20 could not be enabled\r\n"
msg_kernel:   .asciz "boot: loading kernel\r\n"
msg_toobig:   .asciz "boot: kernel too big\r\n"
msg_readerr:  .asciz "boot: disk read error\r\n"
msg_pmode:    .asciz "boot: entering protected mode\r\n"
msg_pm32:     .asciz "boot: protected mode, building page tables\r\n"
msg_jump:     .asciz "boot: long mode, jumping to kernel at 0x"
msg_badelf:   .asciz "boot: kernel is not an ELF64 file\r\n"
msg_nl:       .asciz "\r\n"
