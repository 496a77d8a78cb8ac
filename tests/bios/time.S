/*
 * time.S — INT 1Ah and the timer tick.  The clock's values depend on when
 * the test runs, so it prints verdicts ("valid BCD", "increased"), and exact
 * values only for what it set itself.
 */
    .include "common.inc"

/* check_bcd: CF = 0 if AL is valid BCD no greater than AH (also BCD). */
    .text
check_bcd:
    push ax
    push bx
    mov bl, al
    and bl, 0x0F
    cmp bl, 9
    ja 1f
    cmp al, 0xA0
    jae 1f
    cmp al, ah
    ja 1f
    pop bx
    pop ax
    clc
    ret
1:  pop bx
    pop ax
    stc
    ret

/* wait_ticks n: INT 15h AH=86h for n ticks' worth of microseconds. */
.macro WAIT_MS ms
    mov ah, 0x86
    mov cx, (\ms * 1000) >> 16
    mov dx, (\ms * 1000) & 0xFFFF
    int 0x15
.endm

main:
    PRINTLN "time: INT 1Ah and INT 08h"

    PRINT "00 ticks:"
    xor ax, ax
    int 0x1A
    call show_cf_ah
    mov si, dx                      /* DI:SI = first reading */
    mov di, cx
    WAIT_MS 120
    xor ax, ax
    int 0x1A
    cmp cx, di
    jne 1f
    cmp dx, si
1:  ja 2f
    PRINT " did NOT increase"
    jmp 3f
2:  PRINT " increased"
3:  call crlf

    PRINT "BDA 46Ch matches:"
    push 0
    pop es
    cli
    xor ax, ax
    int 0x1A
    cmp dx, es:[0x46C]
    jne 4f
    cmp cx, es:[0x46E]
    jne 4f
    PRINT " yes"
    jmp 5f
4:  PRINT " NO"
5:  sti
    call crlf

    PRINT "02 RTC time:"
    mov ah, 0x02
    int 0x1A
    call show_cf_ah
    mov al, ch
    mov ah, 0x23
    call check_bcd
    jc 6f
    mov al, cl
    mov ah, 0x59
    call check_bcd
    jc 6f
    mov al, dh
    call check_bcd
    jc 6f
    PRINT " valid BCD"
    jmp 7f
6:  PRINT " INVALID"
7:  call crlf

    PRINT "04 RTC date:"
    mov ah, 0x04
    int 0x1A
    call show_cf_ah
    SHOW8 "century", ch
    mov al, cl
    mov ah, 0x99
    call check_bcd
    jc 8f
    mov al, dh
    mov ah, 0x12
    call check_bcd
    jc 8f
    test dh, dh
    jz 8f
    mov al, dl
    mov ah, 0x31
    call check_bcd
    jc 8f
    test dl, dl
    jz 8f
    PRINT " valid BCD"
    jmp 9f
8:  PRINT " INVALID"
9:  call crlf

    /* two ticks before midnight, wait a few: the count wraps, the flag is set */
    PRINT "01 set 1800AEh, wait:"
    mov ah, 0x01
    mov cx, 0x0018
    mov dx, 0x00AE
    int 0x1A
    call show_cf_ah
    WAIT_MS 220
    xor ax, ax
    int 0x1A
    SHOW8 "midnight", al
    SHOW16 "CX", cx
    cmp dx, 8
    ja 10f
    PRINT " DX small"
10: xor ax, ax
    int 0x1A
    SHOW8 "then", al
    call crlf

    PRINT "03 set 12:34:56:"
    mov ah, 0x03
    mov cx, 0x1234
    mov dx, 0x5600
    int 0x1A
    call show_cf_ah
    mov ah, 0x02
    int 0x1A
    SHOW16 "read", cx
    call crlf

    PRINT "05 set 2024-02-29:"
    mov ah, 0x05
    mov cx, 0x2024
    mov dx, 0x0229
    int 0x1A
    call show_cf_ah
    mov ah, 0x04
    int 0x1A
    SHOW16 "CX", cx
    SHOW16 "DX", dx
    call crlf

    EXIT
