/*
 * cursor.S — a boot sector that moves an '@' with the arrow keys, reading
 * INT 16h AH=00h: each key prints "key SSAA at RR,CC" (scan code, ASCII, the
 * new row and column); Esc ends it through port F4h.  It starts at 12,40.
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
    mov word ptr [pos], 0x0C28      /* row 12, column 40 */
    mov si, offset msg_ready
    call print
1:  call draw
    xor ah, ah
    int 0x16                        /* AH = scan code, AL = ASCII */
    mov bx, ax
    mov dx, [pos]
    cmp ah, 0x48
    jne 2f
    dec dh
2:  cmp ah, 0x50
    jne 3f
    inc dh
3:  cmp ah, 0x4B
    jne 4f
    dec dl
4:  cmp ah, 0x4D
    jne 5f
    inc dl
5:  mov [pos], dx
    mov si, offset msg_key
    call print
    mov ax, bx
    call hex16
    mov si, offset msg_at
    call print
    mov al, [pos + 1]
    call dec2
    mov al, ','
    call putc
    mov al, [pos]
    call dec2
    mov si, offset msg_crlf
    call print
    cmp bl, 0x1B                    /* Esc */
    jne 1b
    mov al, 0
    out 0xF4, al
6:  cli
    hlt
    jmp 6b

/* draw: '@' at pos (INT 10h AH=02h, AH=0Ah). */
draw:
    mov ah, 0x02
    xor bh, bh
    mov dx, [pos]
    int 0x10
    mov ax, 0x0A40
    mov cx, 1
    int 0x10
    ret

print:
    lodsb
    test al, al
    jz 1f
    call putc
    jmp print
1:  ret
putc:
    push ax
    push bx
    mov ah, 0x0E
    xor bh, bh
    int 0x10
    pop bx
    pop ax
    ret
dec2:                               /* AL < 100 as two digits */
    aam
    add ax, 0x3030
    xchg al, ah
    call putc
    mov al, ah
    jmp putc
hex16:
    push ax
    mov al, ah
    call hex8
    pop ax
hex8:
    push ax
    shr al, 4
    call hex4
    pop ax
hex4:
    push ax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 1f
    add al, 7
1:  call putc
    pop ax
    ret

pos:        .word 0
msg_ready:  .asciz "cursor: ready\r\n"
msg_key:    .asciz "key "
msg_at:     .asciz " at "
msg_crlf:   .asciz "\r\n"
    .org 510
    .byte 0x55, 0xAA
