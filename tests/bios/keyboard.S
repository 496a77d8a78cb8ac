/*
 * keyboard.S — INT 16h with keys typed on the serial console.  The test
 * harness sends  a Z 1 CR ESC TAB BS ~ LF x CR LF y  to COM1; the BIOS turns
 * each byte into a (scan code, ASCII) word as a US keyboard would give it.
 * CR LF is one Enter, a lone LF is Enter too.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "keyboard: INT 16h from the serial console"

    PRINT "02 shift flags:"
    mov ah, 0x02
    int 0x16
    SHOW8 "AL", al
    call crlf

    /* 13 bytes, 12 keys: a Z 1 Enter Esc Tab Backspace ~ Enter x Enter y */
    PRINT "00 keys:"
    mov cx, 12
1:  mov ah, 0x00
    int 0x16
    call space
    call hex16
    loop 1b
    call crlf

    PRINT "01 nothing left:"
    mov ah, 0x01
    int 0x16
    jz 2f
    PRINT " ZF=0"
    jmp 3f
2:  PRINT " ZF=1"
3:  call crlf

    PRINT "05 store F1 and 'q':"
    mov ah, 0x05
    mov cx, 0x3B00
    int 0x16
    SHOW8 "AL", al
    mov ah, 0x05
    mov cx, 0x1071
    int 0x16
    SHOW8 "AL", al
    call crlf

    PRINT "11 peek:"
    mov ah, 0x11
    int 0x16
    jz 4f
    PRINT " ZF=0"
    SHOW16 "AX", ax
    jmp 5f
4:  PRINT " ZF=1"
5:  call crlf

    PRINT "10 read twice:"
    mov ah, 0x10
    int 0x16
    SHOW16 "AX", ax
    mov ah, 0x10
    int 0x16
    SHOW16 "AX", ax
    call crlf

    /* fill the 16-slot ring: 15 keys fit, the 16th does not */
    PRINT "05 fill the buffer:"
    mov cx, 16
6:  push cx
    mov ah, 0x05
    mov cx, 0x1E61
    int 0x16
    pop cx
    call space
    call hex8
    loop 6b
    call crlf
    PRINT "00 drain:"
    xor bx, bx
7:  mov ah, 0x01
    int 0x16
    jz 8f
    mov ah, 0x00
    int 0x16
    inc bx
    jmp 7b
8:  SHOW16 "keys", bx
    call crlf

    PRINT "0A keyboard ID:"
    mov ah, 0x0A
    int 0x16
    SHOW16 "BX", bx
    call crlf

    EXIT
