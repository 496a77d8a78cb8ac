# 32-bit protected mode: a ring-3 `int 0x80` through a DPL-3 gate switches to the TSS's
# SS0:ESP0 stack; SYSENTER/SYSEXIT round trip; a ring-3 CLI with IOPL 0 raises #GP(0).
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov es, ax
    mov ax, 0xF000
    mov ds, ax
    mov si, offset gdt              # copy the GDT to RAM (LTR writes its busy bit)
    mov di, 0x800
    mov cx, gdt_end - gdt
    rep movsb
    xor ax, ax
    mov ds, ax
    lgdt cs:[gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    .byte 0x66, 0xEA               # jmp 0x08:pm32 (32-bit offset)
    .long pm32 + ROM
    .word 0x08

    .code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, 0x7000
    mov edi, 0x1000 + 13 * 8
    mov eax, offset gp_handler + ROM
    mov edx, 0x8E00                # interrupt gate, DPL 0
    call set_gate
    mov edi, 0x1000 + 0x80 * 8
    mov eax, offset int80 + ROM
    mov edx, 0xEE00                # interrupt gate, DPL 3
    call set_gate
    lidt [idtr + ROM]
    mov dword ptr [0x3004], 0x9000 # TSS.ESP0
    mov dword ptr [0x3008], 0x10   # TSS.SS0
    mov word ptr [0x3066], 0x68    # I/O map base past the limit: no bitmap
    mov ax, 0x28
    ltr ax
    mov ecx, 0x174                 # IA32_SYSENTER_CS/ESP/EIP
    mov eax, 0x08
    xor edx, edx
    wrmsr
    mov ecx, 0x175
    mov eax, 0x9800
    wrmsr
    mov ecx, 0x176
    mov eax, offset sysenter_entry + ROM
    wrmsr
    push 0x23                      # to ring 3: SS, ESP, EFLAGS, CS, EIP
    push 0x6000
    push 0x2
    push 0x1B
    push offset user + ROM
    iret

user:
    mov eax, 0xCAFE
    int 0x80
    mov ecx, esp
    mov edx, offset after_sysenter + ROM
    sysenter
after_sysenter:
    mov eax, 0xBEEF
    cli                            # CPL 3 > IOPL 0: #GP(0)
    jmp user

int80:
    push esi
    mov esi, offset msg_int80 + ROM
    call puts32
    mov eax, [esp + 8]             # pushed CS (after our ESI and EIP)
    call hex32
    mov esi, offset msg_ss + ROM
    call puts32
    mov eax, [esp + 20]            # pushed SS
    call hex32
    mov esi, offset msg_esp + ROM
    call puts32
    lea eax, [esp + 4]
    call hex32                     # the stack came from TSS.ESP0 = 0x9000
    mov esi, offset msg_nl + ROM
    call puts32
    pop esi
    iret

sysenter_entry:
    mov esi, offset msg_sysenter + ROM
    call puts32
    mov ax, cs
    movzx eax, ax
    call hex32
    mov esi, offset msg_esp + ROM
    call puts32
    mov eax, esp
    call hex32
    mov esi, offset msg_nl + ROM
    call puts32
    sysexit

gp_handler:
    mov esi, offset msg_gp + ROM
    call puts32
    mov eax, [esp]                 # error code
    call hex32
    mov esi, offset msg_from + ROM
    call puts32
    mov eax, [esp + 8]             # CS of the faulting code
    call hex32
    mov esi, offset msg_nl + ROM
    call puts32
    mov al, PASS
    out 0xF4, al
    hlt

# set_gate: EDI = gate address, EAX = handler, EDX = type/attribute word
set_gate:
    mov [edi], ax
    mov word ptr [edi + 2], 0x08
    mov [edi + 4], dx
    shr eax, 16
    mov [edi + 6], ax
    ret

    .p2align 3
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF       # 0x08 code, DPL 0
    .quad 0x00CF92000000FFFF       # 0x10 data, DPL 0
    .quad 0x00CFFA000000FFFF       # 0x18 code, DPL 3 (SYSEXIT: SYSENTER_CS + 16)
    .quad 0x00CFF2000000FFFF       # 0x20 data, DPL 3 (SYSEXIT: SYSENTER_CS + 24)
    .quad 0x0000890030000067       # 0x28 32-bit TSS at 0x3000
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long 0x800
idtr:
    .word 256 * 8 - 1
    .long 0x1000
msg_int80:    .asciz "pm32: int 0x80 from ring 3: cs="
msg_ss:       .asciz " ss="
msg_esp:      .asciz " esp="
msg_sysenter: .asciz "pm32: sysenter: cs="
msg_gp:       .asciz "pm32: #GP error="
msg_from:     .asciz " from cs="
msg_nl:       .asciz "\n"
    .code16
    .include "common.inc"
