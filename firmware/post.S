/*
 * post.S — from the reset vector to INT 19h: the Power-On Self Test.
 *
 * The CPU leaves reset in real mode with CS:IP = F000:FFF0.  On real hardware
 * (and in QEMU) the hidden CS base is then 0xFFFF0000, so the first fetch comes
 * from the top of 4 GiB; vmm starts with CS base 0xF0000.  Both see the same
 * ROM bytes there, and the first instruction is a far jump into the F000
 * segment, after which CS base is 0xF0000 on every machine.
 *
 * POST then sets up, in this order, everything a boot sector may rely on:
 * A20 and 32-bit data addressing, memory size, the interrupt vector table,
 * the BIOS Data Area and the Extended BDA, the interrupt controllers and the
 * timer, the serial port, the screen, the keyboard controller, the clock, the
 * disks and the memory map.  Each step first writes its POST code to port 0x80
 * so that a hang shows where it happened (README.md lists the codes).
 */
    .include "bios.inc"

    .section .text
    .globl post_start
post_start:
    cli                             /* no interrupts until the IVT exists */
    cld
    POST_CODE POST_RESET

    /* A stack in low RAM: the ROM is read-only, the BIOS keeps nothing in it. */
    xor ax, ax
    mov ss, ax
    mov sp, POST_STACK_TOP
    mov ds, ax
    mov es, ax

    /* ---- A20 on, and FS/GS able to reach all 4 GiB ("unreal mode") ---- */
    POST_CODE POST_CPU
    call a20_enable                 /* memory.S */
    call enter_unreal

    /* ---- how much RAM is there?  CMOS says (memory.S) ---- */
    POST_CODE POST_MEMORY
    call memory_read_cmos           /* AX = KiB of conventional memory */
    push ax

    /* ---- interrupt vector table: a handler for every vector (ivt.S) ---- */
    POST_CODE POST_IVT
    call ivt_init

    /* ---- BIOS Data Area (0040:0000) and Extended BDA ---- */
    POST_CODE POST_BDA
    pop ax
    call bda_init
    call memory_store_sizes         /* memory.S: sizes into the EBDA */
    call read_options

    /* ---- interrupt controllers and timer (ivt.S, time.S) ---- */
    POST_CODE POST_PIC
    call pic_init
    POST_CODE POST_PIT
    call pit_init
    POST_CODE POST_APIC
    call apic_virtual_wire

    /* ---- devices ---- */
    POST_CODE POST_SERIAL
    call serial_init                /* serial.S */
    POST_CODE POST_VIDEO
    call video_init                 /* video.S */
    POST_CODE POST_KBC
    call keyboard_init              /* keyboard.S */
    POST_CODE POST_RTC
    call rtc_init                   /* time.S */
    POST_CODE POST_PCI
    call pci_init                   /* pci.S: nothing happens without a PCI bus */
    call mptable_init               /* mptable.S: the MP floating pointer, if there is an APIC */

    sti                             /* the timer now ticks (INT 08h) */

    POST_CODE POST_ATA
    call ata_detect                 /* disk.S: fills the drive table */
    POST_CODE POST_FLOPPY
    call floppy_init                /* floppy.S: drive A: from CMOS */
    POST_CODE POST_E820
    call e820_build                 /* memory.S */

    /* ---- the banner, unless CMOS asks for a quiet POST ---- */
    POST_CODE POST_BANNER
    call print_banner
    call ebda_fs
    test byte ptr fs:[EBDA_OPTIONS], OPT_QUIET
    jnz 1f
    call pci_print                  /* pci.S: one line per PCI function */
1:

    /* ---- and boot ---- */
    int 0x19
    /* INT 19h does not return; if someone patched it to, fail the boot. */
    int 0x18

/*
 * enter_unreal: give FS and GS a 4 GiB limit while staying in real mode.
 * We switch to protected mode just long enough to load FS and GS with a flat
 * data descriptor, then switch back.  Real mode keeps the cached limit, so
 * fs:[esi] can now address any byte (we need it for the local APIC at
 * 0xFEE00000).  Interrupts must be off.
 */
enter_unreal:
    push eax
    push bx
    lgdt cs:[gdt_descriptor]
    mov eax, cr0
    or al, 1                        /* CR0.PE = 1: protected mode */
    mov cr0, eax
    jmp 1f                          /* flush the prefetch queue (old CPUs) */
1:  mov bx, 0x08                    /* selector of gdt_flat_data */
    mov fs, bx
    mov gs, bx
    and al, 0xFE                    /* CR0.PE = 0: back to real mode */
    mov cr0, eax
    jmp 2f
2:  xor bx, bx                      /* real-mode selectors again; limits stay */
    mov fs, bx
    mov gs, bx
    pop bx
    pop eax
    ret

    .balign 8
gdt:
    .quad 0                         /* 00h: the null descriptor */
gdt_flat_data:
    .quad 0x00CF92000000FFFF        /* 08h: base 0, limit 4 GiB, data read/write */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt + 0xF0000             /* linear address of the table in the ROM */

/*
 * apic_virtual_wire: the `pc` machine (vmm's and QEMU's) has a local APIC; whether
 * LINT0 passes the 8259's INTR after reset is the chipset's choice, so set it.
 * If CPUID says there is an APIC and it is enabled (MSR IA32_APIC_BASE bit 11),
 * program it the way the MP specification calls "virtual wire mode":
 * LINT0 = ExtINT (the PIC), LINT1 = NMI, software enable in the SVR.
 */
APIC_SVR   = 0xF0
APIC_LINT0 = 0x350
APIC_LINT1 = 0x360
apic_virtual_wire:
    pushad
    mov eax, 1
    cpuid
    test edx, 1 << 9                /* CPUID.1:EDX.APIC */
    jz 9f
    mov ecx, 0x1B                   /* IA32_APIC_BASE */
    rdmsr
    mov ecx, eax
    or ecx, edx
    jnz 1f
    mov eax, 0xFEE00800             /* reads 0 (vmm on Unicorn): the default, enabled */
1:  test ah, 0x08                   /* bit 11: APIC globally enabled */
    jz 9f
    and eax, 0xFFFFF000             /* physical base, normally 0xFEE00000 */
    mov esi, eax
    push fs
    xor ax, ax                      /* FS base 0 (its 4 GiB limit stays) */
    mov fs, ax
    mov dword ptr fs:[esi+APIC_SVR], 0x1FF    /* enable, spurious vector FFh */
    mov dword ptr fs:[esi+APIC_LINT0], 0x700  /* delivery mode ExtINT */
    mov dword ptr fs:[esi+APIC_LINT1], 0x400  /* delivery mode NMI */
    pop fs
9:  popad
    ret

/*
 * bda_init: clear the BDA and the EBDA and fill in what never changes.
 * In: AX = KiB of conventional memory reported by CMOS (at most 640).
 * The EBDA takes the top KiB of it; INT 12h reports what is left.
 */
bda_init:
    push es
    dec ax                          /* reserve 1 KiB for the EBDA */
    mov bx, ax                      /* BX = usable KiB */
    shl ax, 6                       /* KiB -> paragraphs: EBDA segment */
    mov dx, ax

    /* clear 0040:0000..0040:00FF */
    mov ax, BDA_SEG
    mov es, ax
    xor di, di
    xor ax, ax
    mov cx, 128
    rep stosw

    mov word ptr es:[BDA_COM1], COM1
    mov word ptr es:[BDA_EBDA_SEG], dx
    mov word ptr es:[BDA_MEMORY_KB], bx
    mov byte ptr es:[BDA_COM_TIMEOUT], 1

    /* Equipment word (INT 11h): bit 1 = x87 present, bits 5-4 = 10b
     * (80x25 colour), bits 11-9 = 001b (one serial port), no floppy. */
    mov ax, 0x0220
    fninit                          /* is there an FPU?  it answers FNSTSW */
    mov cx, 0x5A5A
    push cx
    mov si, sp
    fnstsw ss:[si]
    pop cx
    test cl, cl                     /* status word 0 after FNINIT = FPU */
    jnz 1f
    or al, 0x02
1:  mov word ptr es:[BDA_EQUIPMENT], ax

    /* keyboard buffer: empty (head = tail) at 0x41E..0x43D */
    mov word ptr es:[BDA_KBD_START], BDA_KBD_BUF
    mov word ptr es:[BDA_KBD_END], BDA_KBD_BUF_END
    mov word ptr es:[BDA_KBD_HEAD], BDA_KBD_BUF
    mov word ptr es:[BDA_KBD_TAIL], BDA_KBD_BUF
    mov byte ptr es:[BDA_KBD_FLAGS3], 0x10    /* 101/102-key keyboard */

    /* clear the EBDA and record its size in its first byte */
    mov es, dx
    xor di, di
    xor ax, ax
    mov cx, 512
    rep stosw
    mov byte ptr es:[0], EBDA_SIZE_KB
    pop es
    ret

/*
 * ebda_fs: FS = segment of the EBDA, read from the BDA as every BIOS routine
 * must (a boot loader may move the EBDA and update 0x40E).
 */
    .globl ebda_fs
ebda_fs:
    push ax
    xor ax, ax
    mov fs, ax
    mov ax, fs:[0x400 + BDA_EBDA_SEG]
    mov fs, ax
    pop ax
    ret

/* read_options: copy the CMOS option byte (CMOS_OPTIONS, see README) to the EBDA. */
read_options:
    call ebda_fs
    mov al, CMOS_OPTIONS
    call cmos_read                  /* time.S */
    mov fs:[EBDA_OPTIONS], al
    ret

/*
 * print_banner:
 *     vmm BIOS 0.1
 *     Memory: 639 KiB base, 64512 KiB extended
 *     Disk 80h: 1 MiB, LBA48
 * (a disk under 1 MiB in KiB: "Disk 81h: 64 KiB, LBA48")
 */
print_banner:
    call ebda_fs
    test byte ptr fs:[EBDA_OPTIONS], OPT_QUIET
    jnz 9f
    mov si, offset msg_banner
    call print_str
    mov si, offset msg_memory
    call print_str
    xor eax, eax
    push es
    mov ax, BDA_SEG
    mov es, ax
    movzx eax, word ptr es:[BDA_MEMORY_KB]
    pop es
    call print_dec
    mov si, offset msg_kib_base
    call print_str
    mov eax, fs:[EBDA_RAM_TOP]      /* KiB above 1 MiB (below 4 GiB) */
    sub eax, 0x100000
    shr eax, 10
    call print_dec
    mov si, offset msg_kib_ext
    call print_str

    /* drive A:, if any */
    movzx bx, byte ptr fs:[EBDA_FLOPPY_TYPE]
    test bx, bx
    jz 5f
    mov si, offset msg_floppy
    call print_str
    shl bx, 1
    movzx eax, word ptr cs:[floppy_kib + bx]
    call print_dec
    mov si, offset msg_kib
    call print_str
    mov si, offset msg_crlf
    call print_str
5:
    /* one line per hard disk */
    xor cx, cx
    mov bx, EBDA_DRIVES
1:  cmp cl, fs:[EBDA_HD_COUNT]
    jae 9f
    mov si, offset msg_disk
    call print_str
    mov al, cl
    add al, 0x80
    call print_hex8
    mov si, offset msg_disk_colon
    call print_str
    mov eax, fs:[bx+DRIVE_SECTORS]
    mov edx, fs:[bx+DRIVE_SECTORS+4]
    test edx, edx
    jnz 3f
    cmp eax, 2048                   /* under 1 MiB: sectors / 2 = KiB */
    jae 3f
    shr eax, 1
    call print_dec
    mov si, offset msg_kib
    jmp 4f
3:  shrd eax, edx, 11               /* sectors / 2048 = MiB */
    call print_dec
    mov si, offset msg_mib
4:  call print_str
    cmp byte ptr fs:[bx+DRIVE_LBA48], 0
    je 2f
    mov si, offset msg_lba48
    call print_str
2:  mov si, offset msg_crlf
    call print_str
    inc cx
    add bx, DRIVE_SIZE
    jmp 1b
9:  ret

    .section .rodata
msg_banner:     .asciz "vmm BIOS 0.1\r\n"
msg_memory:     .asciz "Memory: "
msg_kib_base:   .asciz " KiB base, "
msg_kib_ext:    .asciz " KiB extended\r\n"
msg_disk:       .asciz "Disk "
msg_disk_colon: .asciz "h: "
msg_mib:        .asciz " MiB"
msg_kib:        .asciz " KiB"
msg_floppy:     .asciz "Floppy 00h: "
floppy_kib:     .word 0, 360, 1200, 720, 1440, 2880
msg_lba48:      .asciz ", LBA48"
    .globl msg_crlf
msg_crlf:       .asciz "\r\n"

/*
 * The last 16 bytes of the ROM: the reset vector, the BIOS date and the
 * PC/AT model byte, at the addresses where IBM put them (F000:FFF0, FFF5, FFFE).
 */
    .section .reset, "ax"
    .globl reset_vector
reset_vector:
    .byte 0xEA                      /* JMP FAR F000:post_start */
    .word post_start
    .word 0xF000
    .ascii "11/22/25"               /* F000:FFF5 BIOS date (mm/dd/yy) */
    .byte 0
    .byte 0xFC                      /* F000:FFFE model: PC/AT */
    .byte 0
