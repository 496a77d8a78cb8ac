/*
 * memory.S — how the BIOS describes memory: INT 12h, INT 11h, the BDA,
 * INT 15h E820 (every entry), E801, 88h, C0h, the A20 gate (2400h-2403h),
 * and INT 15h AH=86h waiting.  QEMU runs with -m 64.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "memory: INT 12h, 11h, 15h"

    PRINT "12 base memory:"
    int 0x12
    SHOW16 "AX", ax
    call crlf

    PRINT "11 equipment:"
    int 0x11
    SHOW16 "AX", ax
    call crlf

    PRINT "BDA:"
    push 0
    pop es
    SHOW16 "COM1", es:[0x400]
    SHOW16 "COM2", es:[0x402]
    SHOW16 "EBDA", es:[0x40E]
    SHOW16 "KiB", es:[0x413]
    SHOW16 "kbd_head", es:[0x41A]
    SHOW16 "kbd_tail", es:[0x41C]
    call crlf
    PRINT "EBDA:"
    mov es, es:[0x40E]
    SHOW8 "KiB", es:[0]
    call crlf

    /* the E820 map, entry by entry, until EBX comes back 0 */
    PRINTLN "E820:"
    xor ebx, ebx
    push ds
    pop es
1:  mov eax, 0xE820
    mov edx, 0x534D4150
    mov ecx, 24
    mov di, offset entry
    mov dword ptr [entry+20], 0xEEEEEEEE
    int 0x15
    jc 2f
    PRINT "  "
    push eax
    mov eax, [entry+4]
    call hex32
    mov eax, [entry]
    call hex32
    call space
    mov eax, [entry+12]
    call hex32
    mov eax, [entry+8]
    call hex32
    pop eax
    SHOW32 "type", [entry+16]
    SHOW32 "EAX", eax
    SHOW32 "ECX", ecx
    SHOW32 "next", ebx
    call crlf
    test ebx, ebx
    jnz 1b
    PRINTLN "  end"
    jmp 3f
2:  call show_cf_ah
    call crlf
3:
    PRINT "E801:"
    mov ax, 0xE801
    int 0x15
    call show_cf_ah
    SHOW16 "AX", ax
    SHOW16 "BX", bx
    SHOW16 "CX", cx
    SHOW16 "DX", dx
    call crlf

    PRINT "88 extended:"
    mov ah, 0x88
    int 0x15
    call show_cf_ah
    SHOW16 "AX", ax
    call crlf

    PRINT "C0 configuration:"
    mov ah, 0xC0
    int 0x15
    call show_cf_ah
    SHOW16 "ES", es
    mov cx, 10
4:  mov al, es:[bx]
    call space
    call hex8
    inc bx
    loop 4b
    call crlf

    PRINT "2403 A20 support:"
    mov ax, 0x2403
    int 0x15
    call show_cf_ah
    SHOW16 "BX", bx
    call crlf

    PRINT "2402 A20 state:"
    mov ax, 0x2402
    int 0x15
    call show_cf_ah
    SHOW8 "AL", al
    call a20_wraps
    call crlf

    PRINT "2400 A20 off:"
    mov ax, 0x2400
    int 0x15
    call show_cf_ah
    mov ax, 0x2402
    int 0x15
    SHOW8 "state", al
    call a20_wraps
    call crlf

    PRINT "2401 A20 on:"
    mov ax, 0x2401
    int 0x15
    call show_cf_ah
    mov ax, 0x2402
    int 0x15
    SHOW8 "state", al
    call a20_wraps
    call crlf

    PRINT "86 wait 200 ms:"
    push 0
    pop es
    mov esi, es:[0x46C]
    mov ah, 0x86
    mov cx, 0x0003                  /* CX:DX = 200000 us = 30D40h */
    mov dx, 0x0D40
    int 0x15
    call show_cf_ah
    mov eax, es:[0x46C]
    sub eax, esi
    cmp eax, 4                      /* ceil(200000 / 54925) = 4 ticks */
    jb 5f
    cmp eax, 5
    ja 5f
    PRINT " waited 4-5 ticks"
    jmp 6f
5:  PRINT " waited "
    call hex32
6:  call crlf

    PRINT "4F intercept:"
    mov ax, 0x4F1E
    clc
    int 0x15
    call show_cf_ah
    SHOW8 "AL", al
    call crlf

    PRINT "91 device post:"
    mov ax, 0x9102
    int 0x15
    call show_cf_ah
    call crlf

    EXIT

/* a20_wraps: print " wraps" if FFFF:0510 is the same byte as 0000:0500 (A20
 * off), else " no wrap". */
a20_wraps:
    push ax
    push es
    push fs
    push 0
    pop es
    push 0xFFFF
    pop fs
    mov al, es:[0x500]
    not byte ptr fs:[0x510]
    cmp al, es:[0x500]
    not byte ptr fs:[0x510]
    je 1f
    PRINT " wraps"
    jmp 2f
1:  PRINT " no wrap"
2:  pop fs
    pop es
    pop ax
    ret

    .data
    .balign 4
entry: .space 24
