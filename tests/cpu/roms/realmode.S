# Real mode: a software interrupt through the IVT, and PIT IRQ0 through the 8259A PIC
# waking the CPU from HLT. Expected output: see test_conformance.py.
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000

    # IVT entry 0x42 -> int42 (segment F000)
    mov word ptr [0x42 * 4], offset int42
    mov word ptr [0x42 * 4 + 2], 0xF000
    mov ax, 0x1234
    stc                            # CF must come back as the handler left it on the stack
    int 0x42
    mov si, offset msg_int
    call puts16
    call hex16                     # AX incremented by the handler
    mov si, offset msg_flags
    call puts16
    mov ax, bx                     # FLAGS image the handler saw on its stack
    and ax, 0x0201                 # IF and CF
    call hex16
    mov si, offset msg_nl
    call puts16

    # 8259A: ICW1..ICW4, IRQ0-7 at vectors 8-15, IRQ8-15 at 0x70; only IRQ0 unmasked
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x08
    out 0x21, al
    mov al, 0x70
    out 0xA1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xA1, al
    mov al, 0x01
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al
    # IVT entry 8 -> timer
    mov word ptr [8 * 4], offset timer
    mov word ptr [8 * 4 + 2], 0xF000
    mov word ptr [0x500], 0
    # 8254 channel 0, mode 2, divisor 1193 (about 1 ms)
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
wait_ticks:
    hlt                            # woken by IRQ0
    cmp word ptr [0x500], 3
    jb wait_ticks
    cli
    mov si, offset msg_timer
    call puts16
    mov ax, [0x500]
    call hex16
    mov si, offset msg_nl
    call puts16
    mov al, PASS
    jmp exit16

int42:
    push bp
    mov bp, sp
    mov bx, [bp + 6]               # the FLAGS pushed by INT
    inc ax
    pop bp
    iret

timer:
    inc word ptr [0x500]
    push ax
    mov al, 0x20                   # non-specific EOI
    out 0x20, al
    pop ax
    iret

msg_int:   .asciz "real: int 0x42 through the IVT returned ax="
msg_flags: .asciz " flags(IF,CF)="
msg_timer: .asciz "real: IRQ0 woke hlt, ticks="
msg_nl:    .asciz "\n"
    .include "common.inc"
