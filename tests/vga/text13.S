/*
 * text13.S — a boot sector that writes text in mode 13h with INT 10h AH=0Eh
 * (teletype, BL = colour): 27 numbered lines in changing colours (so the picture
 * scrolls), a line of CP437 characters 80h-FFh, a backspace over a character and a
 * tab-free line; then "drawn" and a halt, so that the screen can be captured.
 */
    .code16
    .intel_syntax noprefix
    .text
    .globl start
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    cld
    mov ax, 0x0013
    int 0x10
    mov cx, 1                       /* CX = line number */
1:  mov bl, cl
    and bl, 0x0F
    jnz 2f
    mov bl, 9                       /* never colour 0 */
2:  mov si, offset msg_line
    call print
    mov al, cl
    call decimal
    mov si, offset msg_rest
    call print
    inc cx
    cmp cx, 27
    jbe 1b
    mov bl, 14
    mov al, 0x80                    /* CP437 80h-FFh */
3:  call putc
    inc al
    jnz 3b
    mov si, offset msg_crlf
    call print
    mov bl, 10
    mov si, offset msg_bs
    call print
    mov bl, 15
    mov si, offset msg_drawn
    call print
4:  cli
    hlt
    jmp 4b

/* print: the string at SI in colour BL */
print:
    push ax
5:  lodsb
    test al, al
    jz 6f
    call putc
    jmp 5b
6:  pop ax
    ret
/* putc: AL in colour BL through INT 10h AH=0Eh */
putc:
    push ax
    push bx
    mov ah, 0x0E
    xor bh, bh
    int 0x10
    pop bx
    pop ax
    ret
/* decimal: AL (0-99) as two digits */
decimal:
    push ax
    aam                             /* AH = tens, AL = units */
    add ax, 0x3030
    xchg al, ah
    call putc
    mov al, ah
    call putc
    pop ax
    ret

msg_line:  .asciz "line "
msg_rest:  .asciz ": teletype in mode 13h\r\n"
msg_crlf:  .asciz "\r\n"
msg_bs:    .asciz "backspace: X\bY\r\n"
msg_drawn: .asciz "drawn\r\n"
    .org 510
    .byte 0x55, 0xAA
