/*
 * pci.S — the PCI BIOS (INT 1Ah AH=B1h) and the $PIR table.  On a machine
 * without PCI (isapc) the installation check fails with AH=81h and the program
 * stops there; on `pc` with a virtio-blk at 00:02.0 (vmm --machine pc
 * --virtio-disk, or QEMU -M pc -vga none -device virtio-blk-pci,addr=2,
 * disable-legacy=on) it finds the disk, reads and writes its configuration
 * space and checks the error codes.  Nothing printed depends on BAR addresses
 * (QEMU's virtio BAR layout differs from vmm's).
 */
    .include "common.inc"

    .text
main:
    PRINTLN "pci: INT 1Ah B1xxh and $PIR"

    /* The $PIR table: on a 16-byte boundary in F0000h-FFFFFh, bytes sum to 0. */
    PRINT "$PIR:"
    push ds
    push 0xF000
    pop ds
    xor si, si
1:  cmp dword ptr ds:[si], 0x52495024   /* "$PIR" */
    je 2f
    add si, 16
    jnz 1b
    pop ds
    PRINT " not found"
    jmp 4f
2:  mov cx, ds:[si+6]                   /* table size */
    mov dx, cx
    xor al, al
3:  add al, ds:[si]
    inc si
    loop 3b
    pop ds
    PRINT " found,"
    SHOW16 "size", dx
    SHOW8 "sum", al
4:  call crlf

    PRINT "B101 install:"
    mov ax, 0xB101
    xor bx, bx
    xor cx, cx
    xor edx, edx
    xor edi, edi
    int 0x1A
    call show_cf_ah
    SHOW8 "AL", al
    SHOW16 "BX", bx
    SHOW8 "CL", cl
    SHOW32 "EDX", edx
    call crlf
    jnc 5f
    PRINTLN "no PCI BIOS"
    EXIT

5:  PRINT "B102 1AF4:1042 #0:"
    mov ax, 0xB102
    mov cx, 0x1042
    mov dx, 0x1AF4
    xor si, si
    int 0x1A
    call show_cf_ah
    SHOW16 "BX", bx
    call crlf
    mov bp, bx                          /* the disk's bus:devfn from here on */

    PRINT "B10A reg 00h:"
    mov ax, 0xB10A
    mov bx, bp
    xor di, di
    int 0x1A
    call show_cf_ah
    SHOW32 "ECX", ecx
    call crlf

    PRINT "B10A reg 08h, class:"
    mov ax, 0xB10A
    mov di, 0x08
    int 0x1A
    call show_cf_ah
    shr ecx, 8
    SHOW32 "ECX", ecx
    call crlf

    PRINT "B109 reg 3Ch, line and pin:"
    mov ax, 0xB109
    mov di, 0x3C
    int 0x1A
    call show_cf_ah
    SHOW16 "CX", cx
    call crlf

    PRINT "B10B reg 3Ch := 05h, B108:"
    mov ax, 0xB10B
    mov di, 0x3C
    mov cl, 0x05
    int 0x1A
    call show_cf_ah
    mov ax, 0xB108
    xor cx, cx
    int 0x1A
    SHOW8 "CL", cl
    call crlf

    PRINT "B10C reg 3Ch := FF0Bh (pin is read-only), B109:"
    mov ax, 0xB10C
    mov cx, 0xFF0B                      /* back to the line POST chose */
    int 0x1A
    call show_cf_ah
    mov ax, 0xB109
    xor cx, cx
    int 0x1A
    SHOW16 "CX", cx
    call crlf

    PRINT "B10D reg 0Ch := 00000010h, B10A:"
    mov ax, 0xB10D
    mov di, 0x0C                        /* cache line size (writable everywhere) */
    mov ecx, 0x00000010
    int 0x1A
    call show_cf_ah
    mov ax, 0xB10A
    int 0x1A
    and ecx, 0xFF
    SHOW32 "ECX", ecx
    call crlf

    PRINT "B103 class 010000h #0:"
    mov ax, 0xB103
    mov ecx, 0x010000
    xor si, si
    int 0x1A
    call show_cf_ah
    cmp bx, bp
    jne 6f
    PRINT " the same device"
6:  call crlf

    PRINT "B102 1AF4:1042 #1:"
    mov ax, 0xB102
    mov cx, 0x1042
    mov dx, 0x1AF4
    mov si, 1
    int 0x1A
    call show_cf_ah
    call crlf

    PRINT "B102 vendor FFFFh:"
    mov ax, 0xB102
    mov dx, 0xFFFF
    xor si, si
    int 0x1A
    call show_cf_ah
    call crlf

    PRINT "B109 reg 01h (misaligned):"
    mov ax, 0xB109
    mov bx, bp
    mov di, 0x01
    int 0x1A
    call show_cf_ah
    call crlf

    PRINT "B1FFh (unknown):"
    mov ax, 0xB1FF
    int 0x1A
    call show_cf_ah
    call crlf
    EXIT
