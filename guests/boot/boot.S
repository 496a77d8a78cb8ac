/*
 * toyos boot sector: the 512 bytes the BIOS loads at 0000:7C00.
 *
 * What the BIOS guarantees on entry: real mode, CS:IP = 0000:7C00 (or 07C0:0000 on some
 * BIOSes, which is why we far-jump to a known CS first), DL = the drive we were booted from.
 * Nothing else: no known stack, no known segment registers.
 *
 * What this sector does:
 *   1. sets DS = ES = SS = 0 and a stack just below 0x7C00,
 *   2. prints "boot: loading stage2" through INT 10h AH=0Eh (teletype) and, unless the
 *      BIOS already mirrors teletype output to COM1, programs COM1 and writes it there too,
 *   3. checks for the INT 13h extensions (AH=41h) so it can read by LBA,
 *   4. reads 33 sectors from LBA 1 to 0000:7E00 with INT 13h AH=42h (extended read):
 *      LBA 1 is the boot-parameters sector (layout of the disk + kernel command line),
 *      LBA 2..33 is stage 2, which lands at 0000:8000,
 *   5. checks the parameter sector's magic "TOYOSBP1" and jumps to stage 2 with DL = drive
 *      and DH = 1 if stage 2 should copy its real-mode lines to COM1.
 *
 * 512 bytes are too few for E820, A20, protected mode, paging, long mode and an ELF
 * loader, so those live in stage 2 (stage2.S).
 */
    .code16
    .intel_syntax noprefix
    .section .text
    .globl _start
_start:
    cli                         /* no interrupts while the stack is being set up */
    ljmp 0, offset canonical    /* force CS = 0 so that offsets equal linear addresses */
canonical:
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00              /* stack grows down from just below the boot sector */
    sti
    cld                         /* string instructions count upwards */
    mov [boot_drive], dl        /* the BIOS told us which drive we came from */

    /* Serial console. A BIOS that already programmed COM1 (LCR = 03h, 8N1) uses it as
     * its console and copies INT 10h teletype output there itself (vmm's BIOS does);
     * then writing COM1 ourselves would print every line twice. Otherwise (SeaBIOS
     * leaves the UART at its reset value) we program COM1 and mirror our lines to it. */
    mov dx, 0x3FB
    in al, dx                   /* LCR */
    cmp al, 0x03
    je 1f
    mov byte ptr [serial_mirror], 1
    /* COM1 (16550 at 0x3F8): divisor 1 = 115200 baud, 8 data bits, no parity, 1 stop. */
    mov dx, 0x3F9
    xor al, al
    out dx, al                  /* IER = 0: polled, no UART interrupts */
    mov dl, 0xFB
    mov al, 0x80
    out dx, al                  /* LCR.DLAB = 1: 0x3F8/0x3F9 become the divisor latch */
    mov dl, 0xF8
    mov al, 1
    out dx, al                  /* divisor low byte */
    inc dx
    xor al, al
    out dx, al                  /* divisor high byte */
    mov dl, 0xFB
    mov al, 0x03
    out dx, al                  /* LCR: 8N1, DLAB = 0 */
    mov dl, 0xFA
    mov al, 0xC7
    out dx, al                  /* FCR: FIFOs on and cleared */
    mov dl, 0xFC
    mov al, 0x03
    out dx, al                  /* MCR: DTR, RTS */
1:
    mov si, offset msg_loading
    call print

    /* INT 13h AH=41h: "installation check" of the EDD extensions.
     * In: BX = 55AAh, DL = drive. Out: CF clear, BX = AA55h, CX bit 0 = packet calls work. */
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [boot_drive]
    int 0x13
    jc no_ext
    cmp bx, 0xAA55
    jne no_ext
    test cx, 1
    jz no_ext

    /* INT 13h AH=42h: extended read. DS:SI -> disk address packet (DAP, below). */
    mov ah, 0x42
    mov dl, [boot_drive]
    mov si, offset dap
    int 0x13
    jc read_error

    /* The parameter sector, now at 0x7E00, must start with "TOYOSBP1". */
    cmp dword ptr [0x7E00], 0x4F594F54     /* "TOYO" little-endian */
    jne bad_params
    cmp dword ptr [0x7E04], 0x31504253     /* "SBP1" */
    jne bad_params

    mov dl, [boot_drive]        /* stage 2 gets the boot drive in DL, like we did, */
    mov dh, [serial_mirror]     /* and in DH whether to copy its real-mode lines to COM1 */
    ljmp 0, 0x8000              /* stage 2 entry point */

no_ext:
    mov si, offset msg_noext
    jmp fail
read_error:
    mov si, offset msg_readerr
    jmp fail
bad_params:
    mov si, offset msg_badparams
fail:
    call print
halt:
    cli
    hlt
    jmp halt

/* print: write the NUL-terminated string at DS:SI with INT 10h AH=0Eh (teletype output)
 * and, if serial_mirror is set, to COM1, waiting for LSR bit 5 (transmit holding register
 * empty) before each byte. */
print:
    pusha
1:  lodsb
    test al, al
    jz 3f
    mov cl, al
    mov ah, 0x0E
    mov bx, 0x0007              /* page 0, light grey (ignored in text mode by most BIOSes) */
    int 0x10
    cmp byte ptr [serial_mirror], 0
    je 1b
    mov dx, 0x3FD               /* LSR */
2:  in al, dx
    test al, 0x20
    jz 2b
    mov dl, 0xF8                /* THR */
    mov al, cl
    out dx, al
    jmp 1b
3:  popa
    ret

msg_loading:   .asciz "boot: loading stage2\r\n"
msg_noext:     .asciz "boot: no INT 13h extensions\r\n"
msg_readerr:   .asciz "boot: disk read error\r\n"
msg_badparams: .asciz "boot: bad parameter sector\r\n"

boot_drive:    .byte 0
serial_mirror: .byte 0          /* 1: we copy our lines to COM1 (the BIOS does not) */

    .balign 4
/* Disk address packet for INT 13h AH=42h (EDD 3.0, table "Device Address Packet"). */
dap:
    .byte 16                    /* size of this packet */
    .byte 0                     /* reserved */
    .word 33                    /* sectors to read: 1 parameter sector + 32 of stage 2 */
    .word 0x7E00                /* destination offset */
    .word 0x0000                /* destination segment */
    .quad 1                     /* first LBA */

    /* Bytes 510-511: the signature the BIOS checks before it jumps to us. */
    .org 510
    .word 0xAA55
