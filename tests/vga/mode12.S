/*
 * mode12.S — a boot sector that draws in mode 12h (640x480, 16 colours in
 * four planes): INT 10h AX=0012h, sixteen colour bars written through write
 * mode 2, a box drawn with INT 10h AH=0Ch and XORed over, palette register 9
 * changed with AH=10h AL=00h, a pixel read back with AH=0Dh; then "drawn" on
 * COM1 and a halt.
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
    mov ax, 0x0012
    int 0x10
    mov dx, 0x3CE
    mov ax, 0x0205                  /* write mode 2: the byte written is a colour */
    out dx, ax
    push 0xA000
    pop es
    xor di, di
    xor bx, bx                      /* BX = line */
1:  mov cx, 80
    xor al, al
2:  mov ah, es:[di]                 /* load the latches */
    push ax
    mov ax, 80
    sub ax, cx
    shr ax, 2                       /* colour = column / 4 ... */
    add ax, bx
    shr ax, 3                       /* ... plus line / 8, mixed */
    and al, 0x0F
    stosb
    pop ax
    loop 2b
    inc bx
    cmp bx, 480
    jb 1b
    mov ax, 0x0005                  /* write mode 0 again */
    out dx, ax

    mov dx, 100                     /* a box of colour 14 at (100..299, 100..199) */
3:  mov cx, 100
4:  mov ax, 0x0C0E
    xor bh, bh
    int 0x10
    inc cx
    cmp cx, 300
    jb 4b
    inc dx
    cmp dx, 200
    jb 3b
    mov dx, 150                     /* and XOR colour 3 over part of it */
5:  mov cx, 200
6:  mov ax, 0x0C83
    int 0x10
    inc cx
    cmp cx, 400
    jb 6b
    inc dx
    cmp dx, 250
    jb 5b

    mov ax, 0x1000                  /* palette register 9 = 3Fh (white) */
    mov bx, 0x3F09
    int 0x10

    mov ah, 0x0D                    /* read back (250, 160): 0Eh ^ 3 = 0Dh */
    mov cx, 250
    mov dx, 160
    int 0x10
    mov bl, al
    mov si, offset msg_pixel
    call print
    mov al, bl
    call hex4
    mov si, offset msg_drawn
    call print
7:  cli
    hlt
    jmp 7b

print:
    lodsb
    test al, al
    jz 1f
    call putc
    jmp print
1:  ret
hex4:
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe putc
    add al, 7
putc:
    mov ah, 0x0E
    xor bh, bh
    int 0x10
    ret

msg_pixel:  .asciz "mode 12h: pixel (250,160)="
msg_drawn:  .asciz "\r\ndrawn\r\n"
    .org 510
    .byte 0x55, 0xAA
