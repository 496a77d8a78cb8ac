/*
 * mode13.S — a boot sector that draws in mode 13h (320x200, 256 colours):
 * INT 10h AX=0013h, a diagonal colour ramp written straight to A000:0000, a
 * box drawn with INT 10h AH=0Ch, DAC entry 1 changed with AH=10h AL=10h, one
 * pixel read back with AH=0Dh; then "drawn" on COM1 and a halt, so that the
 * screen can be captured.
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
    push 0xA000
    pop es
    xor di, di
    xor dx, dx                      /* DX = y */
1:  xor cx, cx                      /* CX = x */
2:  mov ax, cx
    add ax, dx
    stosb                           /* colour (x + y) & 255 */
    inc cx
    cmp cx, 320
    jb 2b
    inc dx
    cmp dx, 200
    jb 1b

    mov dx, 20                      /* a box of colour 15 at (40..119, 20..59) */
3:  mov cx, 40
4:  mov ax, 0x0C0F
    xor bh, bh
    int 0x10
    inc cx
    cmp cx, 120
    jb 4b
    inc dx
    cmp dx, 60
    jb 3b

    mov ax, 0x1010                  /* DAC 1 = orange */
    mov bx, 1
    mov dh, 63
    mov ch, 32
    mov cl, 0
    int 0x10

    mov ah, 0x0D                    /* read back (50, 30): 0F */
    mov cx, 50
    mov dx, 30
    int 0x10
    mov bl, al
    mov si, offset msg_pixel
    call print
    mov al, bl
    shr al, 4
    call hex4
    mov al, bl
    call hex4
    mov si, offset msg_drawn
    call print
5:  cli
    hlt
    jmp 5b

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

msg_pixel:  .asciz "mode 13h: pixel (50,30)="
msg_drawn:  .asciz "\r\ndrawn\r\n"
    .org 510
    .byte 0x55, 0xAA
