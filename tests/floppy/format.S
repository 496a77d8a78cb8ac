/*
 * format.S — a boot sector for a floppy: INT 13h AH=05h formats cylinder 2,
 * head 1 of drive 00h from an address-field table (C, H, R, N per sector),
 * then reads sectors of that track and of its neighbours back with AH=02h;
 * asks for a cylinder past the disk's last (AH=04h). Sector N of the image
 * (from 0) holds the 32-bit word N, so a read shows which sector arrived and
 * whether formatting filled it. Leaves through port F4h.
 */
    .code16
    .intel_syntax noprefix
    .text
    .globl start
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    cld
    mov [drive], dl
    mov ah, 0x08                    /* sectors per track of this disk */
    int 0x13                        /* (ES:DI comes back at the parameter table) */
    xor ax, ax
    mov es, ax
    and cl, 0x3F
    mov [spt], cl
    mov di, 0x1000                  /* the address fields: C=2, H=1, R=1.., N=2 */
    mov bl, 1
1:  mov al, 2
    stosb
    mov al, 1
    stosb
    mov al, bl
    stosb
    mov al, 2
    stosb
    inc bl
    cmp bl, cl
    jbe 1b

    mov si, offset msg_format
    call print
    mov ax, 0x0500
    mov al, [spt]
    mov cx, 0x0201                  /* cylinder 2 */
    mov dh, 1
    mov dl, [drive]
    mov bx, 0x1000
    int 0x13
    call cf_ah
    call crlf

    mov si, offset msg_bad
    call print
    mov ax, 0x0500
    mov al, [spt]
    mov cx, 0x5001                  /* cylinder 80: past the last */
    mov dh, 0
    mov dl, [drive]
    mov bx, 0x1000
    int 0x13
    call cf_ah
    call crlf

    mov bp, offset reads
2:  mov cx, [bp]
    test cx, cx
    jz 3f
    mov si, offset msg_read
    call print
    mov ax, cx
    call hex16
    call space
    mov al, [bp+2]
    call hex8
    mov ax, 0x0201
    mov dh, [bp+2]
    mov dl, [drive]
    mov bx, 0x2000
    int 0x13
    call cf_ah
    call space
    mov eax, [0x2000]
    call hex32
    call space
    mov eax, [0x21FC]
    call hex32
    call crlf
    add bp, 3
    jmp 2b
3:  mov si, offset msg_bye
    call print
    mov al, 0
    out 0xF4, al
4:  cli
    hlt
    jmp 4b

cf_ah:
    pushf
    push ax
    push bp
    mov bp, sp                      /* [bp+2] = AX, [bp+4] = FLAGS */
    mov si, offset msg_cf
    call print
    mov al, [bp+4]
    and al, 1
    add al, '0'
    call putc
    mov si, offset msg_ah
    call print
    mov al, [bp+3]
    call hex8
    pop bp
    pop ax
    popf
    ret
print:
    lodsb
    test al, al
    jz 1f
    call putc
    jmp print
1:  ret
crlf:
    mov al, 13
    call putc
    mov al, 10
    jmp putc
space:
    mov al, ' '
putc:
    push ax
    push bx
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    pop bx
    pop ax
    ret
hex32:
    push eax
    shr eax, 16
    call hex16
    pop eax
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

msg_format: .asciz "05h C2 H1"
msg_bad:    .asciz "05h C80 H0"
msg_read:   .asciz "02h "
msg_bye:    .asciz "bye\r\n"
msg_cf:     .asciz " CF="
msg_ah:     .asciz " AH="
drive:      .byte 0
spt:        .byte 0
/* cylinder:sector word, head */
reads:
    .word 0x0201
    .byte 1                         /* the formatted track's first sector */
    .word 0x0205
    .byte 1
    .word 0x0201
    .byte 0                         /* head 0 of the same cylinder: untouched */
    .word 0x0301
    .byte 1                         /* the next cylinder: untouched */
    .word 0
    .org 510
    .byte 0x55, 0xAA
