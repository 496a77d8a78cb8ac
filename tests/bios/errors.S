/*
 * errors.S — the error paths of INT 13h, INT 15h and INT 1Ah: every failing
 * call must come back with CF = 1 and the documented status in AH.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "errors: BIOS error paths"

    PRINT "13h/02 DL=81 (no slave):    "
    mov ax, 0x0201
    mov cx, 0x0001
    mov dx, 0x0081
    mov bx, 0x1000
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/02 DL=00 (no floppy):   "
    mov ax, 0x0201
    mov cx, 0x0001
    mov dx, 0x0000
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/08 DL=81:               "
    mov ah, 0x08
    mov dl, 0x81
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/15 DL=00:               "
    mov ah, 0x15
    mov dl, 0x00
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/77 DL=80 (unknown):     "
    mov ah, 0x77
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/01 after it:            "
    mov ah, 0x01
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    /* the disk has 8192 sectors: LBA 8191 is the last one */
    PRINT "13h/42 LBA 8191, 2 sectors: "
    mov word ptr [dap_count], 2
    mov dword ptr [dap_lba], 8191
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW16 "count", [dap_count]
    call crlf

    PRINT "13h/42 LBA 8192, 1 sector:  "
    mov word ptr [dap_count], 1
    mov dword ptr [dap_lba], 8192
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/42 LBA 2^32:            "
    mov word ptr [dap_count], 1
    mov dword ptr [dap_lba], 0
    mov dword ptr [dap_lba+4], 1
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    call crlf
    mov dword ptr [dap_lba+4], 0

    PRINT "13h/01 after it:            "
    mov ah, 0x01
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/42 LBA 8191, 1 sector:  "
    mov word ptr [dap_count], 1
    mov dword ptr [dap_lba], 8191
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    SHOW32 "data", [buffer]
    call crlf

    PRINT "13h/42 128 sectors:         "
    mov word ptr [dap_count], 128
    mov dword ptr [dap_lba], 100
    mov ah, 0x42
    mov dl, 0x80
    mov si, offset dap
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/02 cylinder 8 (of 8):   "
    mov ax, 0x0201
    mov cx, 0x0801                  /* CH = cylinder 8, CL = sector 1 */
    mov dx, 0x0080
    mov bx, offset buffer
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/02 sector 0:            "
    mov ax, 0x0201
    mov cx, 0x0000
    mov dx, 0x0080
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/02 head 16:             "
    mov ax, 0x0201
    mov cx, 0x0001
    mov dx, 0x1080
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/02 0 sectors:           "
    mov ax, 0x0200
    mov cx, 0x0001
    mov dx, 0x0080
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/41 BX=1234:             "
    mov ah, 0x41
    mov bx, 0x1234
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/48 buffer size 10h:     "
    mov word ptr [buffer], 0x10
    mov ah, 0x48
    mov dl, 0x80
    mov si, offset buffer
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "13h/00 reset:               "
    mov ah, 0x00
    mov dl, 0x80
    int 0x13
    call show_cf_ah
    call crlf

    PRINT "15h/EE (unknown):           "
    mov ah, 0xEE
    int 0x15
    call show_cf_ah
    call crlf

    PRINT "15h/E820 bad signature:     "
    mov eax, 0xE820
    mov edx, 0x12345678
    xor ebx, ebx
    mov ecx, 20
    mov di, offset buffer
    int 0x15
    call show_cf_ah
    call crlf

    PRINT "15h/E820 EBX=99:            "
    mov eax, 0xE820
    mov edx, 0x534D4150
    mov ebx, 99
    mov ecx, 20
    mov di, offset buffer
    int 0x15
    call show_cf_ah
    call crlf

    PRINT "1Ah/77 (unknown):           "
    mov ah, 0x77
    clc
    int 0x1A
    call show_cf_ah
    call crlf

    EXIT

    .data
    .balign 4
dap:
    .byte 0x10, 0
dap_count:
    .word 1
    .word offset buffer, 0
dap_lba:
    .quad 0
    .balign 16
buffer:
    .space 512 * 2
