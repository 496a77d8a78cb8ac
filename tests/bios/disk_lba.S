/*
 * disk_lba.S — the INT 13h extensions (AH=41h-48h) on drive 80h, a disk of
 * 2^28 + 2048 sectors (128 GiB + 1 MiB, sparse): sectors from 2^28 on can
 * only be reached with 48-bit LBA commands.  Sector N holds the dword N.
 */
    .include "common.inc"

/* READ count, lba: extended read into 1000:0000, then check the pattern. */
.macro EXT_READ count, lba
    mov word ptr [dap_count], \count
    mov word ptr [dap_buffer], 0
    mov word ptr [dap_buffer+2], 0x1000
    mov dword ptr [dap_lba], \lba
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW16 "count", [dap_count]
    push 0x1000
    pop es
    xor di, di
    mov eax, \lba
    mov cx, \count
    call check_pattern
    call crlf
.endm

    .text
main:
    PRINTLN "disk_lba: INT 13h extensions on drive 80h"

    PRINT "41 check extensions:"
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    SHOW16 "BX", bx
    SHOW16 "CX", cx
    call crlf

    PRINT "48 parameters:"
    mov word ptr [params], 0x1E
    mov ah, 0x48
    mov dl, 0x80
    mov si, offset params
    int 0x13
    call show_cf_ah
    SHOW16 "size", [params]
    SHOW16 "flags", [params+2]
    call crlf
    PRINT "   "
    SHOW32 "cyls", [params+4]
    SHOW32 "heads", [params+8]
    SHOW32 "spt", [params+12]
    call crlf
    PRINT "   "
    SHOW32 "sectors_hi", [params+20]
    SHOW32 "sectors_lo", [params+16]
    SHOW16 "bytes", [params+24]
    SHOW32 "dpte", [params+26]
    call crlf

    PRINT "48 with a 1Ah buffer:"
    mov dword ptr [params+26], 0x12345678
    mov word ptr [params], 0x1A
    mov ah, 0x48
    mov dl, 0x80
    mov si, offset params
    int 0x13
    call show_cf_ah
    SHOW16 "size", [params]
    SHOW32 "after", [params+26]
    call crlf

    PRINT "08 parameters:"
    mov ah, 0x08
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    SHOW16 "CX", cx
    SHOW16 "DX", dx
    call crlf

    PRINT "42 LBA 16, 4 sectors:"
    EXT_READ 4, 16
    PRINT "42 LBA 0FFFFFFE, 4 sectors (LBA48):"
    EXT_READ 4, 0x0FFFFFFE
    PRINT "42 LBA 10000005, 127 sectors:"
    EXT_READ 127, 0x10000005
    PRINT "42 last sector 100007FF:"
    EXT_READ 1, 0x100007FF

    /* write two sectors above 2^28 and read them back */
    PRINT "43 write LBA 10000010, 2 sectors:"
    push 0x2000
    pop es
    xor di, di
    mov eax, 0x34383441             /* "A484" */
    mov cx, 256
    rep stosd
    mov word ptr [dap_count], 2
    mov word ptr [dap_buffer], 0
    mov word ptr [dap_buffer+2], 0x2000
    mov dword ptr [dap_lba], 0x10000010
    mov ax, 0x4300
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW16 "count", [dap_count]
    call crlf

    PRINT "42 read LBA 1000000F-10000012:"
    mov word ptr [dap_count], 4
    mov word ptr [dap_buffer+2], 0x3000
    mov dword ptr [dap_lba], 0x1000000F
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    push 0x3000
    pop es
    SHOW32 "s0", es:[0]
    SHOW32 "s1", es:[512]
    SHOW32 "s2", es:[1024+508]
    SHOW32 "s3", es:[1536]
    call crlf

    PRINT "44 verify LBA 0FFFFFF0, 100 sectors:"
    mov word ptr [dap_count], 100
    mov dword ptr [dap_lba], 0x0FFFFFF0
    mov ah, 0x44
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW16 "count", [dap_count]
    call crlf

    PRINT "47 seek LBA 10000000:"
    mov dword ptr [dap_lba], 0x10000000
    mov word ptr [dap_count], 1
    mov ah, 0x47
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "42 LBA 10000800 (past the end):"
    mov dword ptr [dap_lba], 0x10000800
    mov word ptr [dap_count], 1
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW16 "count", [dap_count]
    call crlf

    EXIT

    .data
    .balign 4
dap:
    .byte 0x10, 0
dap_count:
    .word 0
dap_buffer:
    .word 0, 0
dap_lba:
    .quad 0
params:
    .space 0x42
