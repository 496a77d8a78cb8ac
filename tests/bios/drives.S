/*
 * drives.S — which drives INT 13h offers: AH=08h (parameters) and AH=15h (type)
 * for the hard disks 80h-81h.  Booted with one disk it lists 80h only; with a
 * second disk (`vmm run IMG --disk IMG2`, QEMU -hdb) it lists 80h and 81h.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "drives: INT 13h AH=08h and AH=15h"
    mov dl, 0x80
1:  PRINT "drive "
    mov al, dl
    call hex8
    PRINT " 08h:"
    push dx
    mov ah, 0x08
    xor cx, cx
    int 0x13
    call show_cf_ah
    jc 2f
    SHOW8 "disks", dl
    SHOW8 "heads", dh
    SHOW16 "CX", cx
2:  pop dx
    PRINT " 15h:"
    push dx
    mov ah, 0x15
    int 0x13
    call show_cf_ah
    pop dx
    call crlf
    inc dl
    cmp dl, 0x82
    jb 1b
    EXIT
