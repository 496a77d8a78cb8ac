/*
 * console.S — printing helpers for the BIOS's own messages.  Every byte goes
 * through console_putc (video.S): the screen, and COM1 unless disabled.
 */
    .include "bios.inc"

    .section .text

/* print_str: print the zero-terminated string at CS:SI.  Preserves registers. */
    .globl print_str
print_str:
    push ax
    push si
1:  mov al, cs:[si]
    test al, al
    jz 2f
    call console_putc
    inc si
    jmp 1b
2:  pop si
    pop ax
    ret

/* print_hex8: print AL as two hex digits.  Preserves registers. */
    .globl print_hex8
print_hex8:
    push ax
    push ax
    shr al, 4
    call print_nibble
    pop ax
    call print_nibble
    pop ax
    ret
print_nibble:
    push ax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 1f
    add al, 'A' - '9' - 1
1:  call console_putc
    pop ax
    ret

/* print_dec: print EAX in decimal.  Preserves registers. */
    .globl print_dec
print_dec:
    pushad
    mov ebx, 10
    xor cx, cx
1:  xor edx, edx                    /* push the digits, least significant first */
    div ebx
    push dx
    inc cx
    test eax, eax
    jnz 1b
2:  pop ax                          /* and print them most significant first */
    add al, '0'
    call console_putc
    loop 2b
    popad
    ret
