# A triple fault: with the IVT limit at 0, INT 3 cannot be delivered (#GP), nor can the
# #GP (#DF), nor the #DF: the CPU shuts down.
    cli
    mov dx, 0x3F8
    mov si, offset msg
    call puts16
    lidt cs:[empty_idt]
    int 3
    mov al, FAIL
    jmp exit16
empty_idt:
    .word 0
    .long 0
msg: .asciz "triple: loading an empty IVT and raising int 3\n"
    .include "common.inc"
