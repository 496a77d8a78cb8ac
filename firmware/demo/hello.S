/*
 * hello.S — a demo boot sector for the vmm BIOS.
 *
 * The BIOS loads this sector at 0000:7C00 and jumps here with DL = boot
 * drive.  It prints a few lines through INT 10h teletype (which the BIOS
 * mirrors to the serial port), then asks the machine to stop by writing to
 * the exit port F4h: QEMU's isa-debug-exit (and vmm) end the run with status
 * (value << 1) | 1, so writing 0 exits with status 1.
 */
    .code16
    .intel_syntax noprefix
    .text
    .globl start
start:
    xor ax, ax
    mov ds, ax
    mov es, ax
    cld
    mov [boot_drive], dl

    mov si, offset hello
    call print
    mov al, [boot_drive]            /* show the drive number the BIOS gave us */
    call print_hex8
    mov si, offset crlf
    call print
    mov si, offset bye
    call print

    mov al, 0                       /* exit status (0 << 1) | 1 = 1 */
    out 0xF4, al
1:  cli                             /* if there is no exit port: stop here */
    hlt
    jmp 1b

/* print: the zero-terminated string at DS:SI, with INT 10h AH=0Eh. */
print:
    lodsb
    test al, al
    jz 2f
    mov ah, 0x0E
    mov bx, 0x0007                  /* page 0, grey (graphics modes only) */
    int 0x10
    jmp print
2:  ret

/* print_hex8: AL as two hexadecimal digits. */
print_hex8:
    push ax
    shr al, 4
    call print_nibble
    pop ax
print_nibble:
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 3f
    add al, 7
3:  mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    ret

hello:  .asciz "Hello from the boot sector!\r\nLoaded at 0000:7C00 from drive "
crlf:   .asciz "h\r\n"
bye:    .asciz "Goodbye: writing 0 to port F4h.\r\n"
boot_drive: .byte 0

    .org 510
    .byte 0x55, 0xAA
