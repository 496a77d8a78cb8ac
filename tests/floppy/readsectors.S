/*
 * readsectors.S — a boot sector for a floppy: it asks INT 13h about drive
 * 00h and reads sectors through it (CHS, across a head and a cylinder, a
 * multi-sector read, an out-of-range sector, the change line), printing what
 * it got through INT 10h, then leaves through port F4h.  Sector N of the image
 * (from 0) is filled with the 32-bit word N, so the printed data names the
 * sector that really arrived.
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
    mov si, offset msg_hello
    call print
    mov al, [drive]
    call hex8
    call crlf
    call change_line

    mov si, offset msg_params       /* AH=08h */
    call print
    mov ah, 0x08
    mov dl, [drive]
    int 0x13
    call cf_ah
    call space
    mov al, bl
    call hex8
    call space
    mov ax, cx
    call hex16
    call space
    mov ax, dx
    call hex16
    call crlf

    mov si, offset msg_type         /* AH=15h */
    call print
    mov ah, 0x15
    mov dl, [drive]
    int 0x13
    call cf_ah
    call crlf

    /* one sector each: C/H/S -> the LBA it should be */
    mov bp, offset reads
1:  mov cx, [bp]                    /* CH = cylinder, CL = sector */
    mov dh, [bp+2]                  /* head */
    mov al, [bp+3]                  /* count */
    test al, al
    jz 2f
    push ax
    mov si, offset msg_read
    call print
    mov ax, cx
    call hex16
    call space
    mov al, dh
    call hex8
    call space
    pop ax
    push ax
    call hex8
    pop ax
    mov ah, 0x02
    mov dl, [drive]
    mov bx, 0x1000
    push es
    mov es, bx
    xor bx, bx
    int 0x13
    call cf_ah
    push ax
    call space
    pop ax
    push ax
    call hex8                       /* AL = sectors read */
    pop ax
    /* print the first dword of each sector read */
    movzx cx, al
    xor bx, bx
3:  jcxz 4f
    call space
    mov eax, es:[bx]
    call hex32
    add bx, 512
    dec cx
    jmp 3b
4:  pop es
    call crlf
    add bp, 4
    jmp 1b

2:  call change_line
    mov si, offset msg_bye
    call print
    mov al, 0
    out 0xF4, al
5:  cli
    hlt
    jmp 5b

/* change_line: AH=16h, "16h: CF=c AH=hh" (06h: the disk was changed). */
change_line:
    mov si, offset msg_change
    call print
    mov ah, 0x16
    mov dl, [drive]
    int 0x13
    call cf_ah
    jmp crlf

/* cf_ah: print " CF=c AH=hh" for the flags and AH an INT 13h returned (keeps both). */
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

msg_hello:  .asciz "floppy boot, DL="
msg_params: .asciz "08h:"
msg_type:   .asciz "15h:"
msg_read:   .asciz "02h "
msg_change: .asciz "16h:"
msg_bye:    .asciz "bye\r\n"
msg_cf:     .asciz " CF="
msg_ah:     .asciz " AH="
drive:      .byte 0
/* cylinder:sector word, head, count */
reads:
    .word 0x0002
    .byte 0, 1                      /* LBA 1 */
    .word 0x0012
    .byte 0, 1                      /* sector 18 of head 0: LBA 17 */
    .word 0x0001
    .byte 1, 1                      /* head 1, sector 1: LBA 18 */
    .word 0x0101
    .byte 0, 1                      /* cylinder 1: LBA 36 */
    .word 0x4F12
    .byte 1, 1                      /* the last sector: LBA 2879 */
    .word 0x0011
    .byte 0, 4                      /* four from LBA 16, across the head */
    .word 0x0013
    .byte 0, 1                      /* sector 19: not found */
    .word 0
    .byte 0, 0
    .org 510
    .byte 0x55, 0xAA
