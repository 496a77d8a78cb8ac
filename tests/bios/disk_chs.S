/*
 * disk_chs.S — INT 13h with cylinder/head/sector addresses on drive 80h.
 * The disk has 8192 sectors (4 MiB): the BIOS geometry is 8 cylinders,
 * 16 heads, 63 sectors per track; sector N holds the dword N everywhere.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "disk_chs: INT 13h CHS services on drive 80h"

    PRINT "08 parameters:"
    mov ah, 0x08
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    SHOW16 "CX", cx
    SHOW16 "DX", dx
    call crlf

    PRINT "15 disk type:"
    mov ah, 0x15
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    SHOW16 "CX", cx
    SHOW16 "DX", dx
    call crlf

    /* C=0 H=1 S=1 is LBA 63 */
    PRINT "02 read C=0 H=1 S=1, 2 sectors:"
    push 0x1000
    pop es
    xor bx, bx
    mov ax, 0x0202
    mov cx, 0x0001
    mov dx, 0x0180
    int 0x13
    call show_cf_ah
    SHOW8 "AL", al
    xor di, di
    mov eax, 63
    mov cx, 2
    call check_pattern
    call crlf

    /* C=7 H=15 S=63 is the last CHS sector: (7*16+15)*63+62 = 8063 */
    PRINT "02 read C=7 H=15 S=63:"
    mov ax, 0x0201
    mov cx, 0x073F
    mov dx, 0x0F80
    xor bx, bx
    int 0x13
    call show_cf_ah
    SHOW8 "AL", al
    xor di, di
    mov eax, 8063
    mov cx, 1
    call check_pattern
    call crlf

    /* 120 sectors from LBA 100 (C=0 H=1 S=38) to 1000:F000: the buffer
     * crosses a 64 KiB segment boundary */
    PRINT "02 read 120 sectors at LBA 100 to 1000:F000:"
    mov ax, 0x0278
    mov cx, 0x0026
    mov dx, 0x0180
    mov bx, 0xF000
    int 0x13
    call show_cf_ah
    SHOW8 "AL", al
    mov di, 0xF000
    mov eax, 100
    mov cx, 120
    call check_pattern
    call crlf

    /* write C=1 H=0 S=1 (LBA 1008) with "vmm!" and read it back */
    PRINT "03 write C=1 H=0 S=1:"
    push 0x2000
    pop es
    xor di, di
    mov eax, 0x216D6D76             /* "vmm!" */
    mov cx, 128
    rep stosd
    xor bx, bx
    mov ax, 0x0301
    mov cx, 0x0101
    mov dx, 0x0080
    int 0x13
    call show_cf_ah
    SHOW8 "AL", al
    call crlf

    PRINT "02 read it back:"
    push 0x3000
    pop es
    xor di, di
    xor eax, eax
    mov cx, 128
    rep stosd
    xor bx, bx
    mov ax, 0x0201
    mov cx, 0x0101
    mov dx, 0x0080
    int 0x13
    call show_cf_ah
    SHOW32 "first", es:[0]
    SHOW32 "last", es:[508]
    push ds
    push 0x2000
    pop ds
    xor si, si
    xor di, di
    mov cx, 128
    repe cmpsd
    pop ds
    jne 1f
    PRINT " same"
    jmp 2f
1:  PRINT " DIFFERENT"
2:  call crlf

    PRINT "02 neighbours unchanged:"
    mov ax, 0x0203                  /* LBA 1007-1009: C=0 H=15 S=63 */
    mov cx, 0x003F
    mov dx, 0x0F80
    xor bx, bx
    int 0x13
    call show_cf_ah
    SHOW32 "1007", es:[0]
    SHOW32 "1008", es:[512]
    SHOW32 "1009", es:[1024]
    call crlf

    PRINT "04 verify C=0 H=2 S=1, 5 sectors:"
    mov ax, 0x0405
    mov cx, 0x0001
    mov dx, 0x0280
    int 0x13
    call show_cf_ah
    SHOW8 "AL", al
    call crlf

    PRINT "00 reset:"
    mov ah, 0x00
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "01 status:"
    mov ah, 0x01
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "BDA 475h disks:"
    push 0
    pop es
    SHOW8 "count", es:[0x475]
    call crlf

    EXIT
