# 64-bit long mode: #PF error codes and CR2 (not present, write to read-only, user
# access to a supervisor page), SYSCALL/SYSRET round trips from ring 3, and a #PF whose
# delivery faults becoming #DF, delivered on IST1.
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov es, ax
    mov ax, 0xF000
    mov ds, ax
    mov si, offset gdt
    mov di, 0x800
    mov cx, gdt_end - gdt
    rep movsb
    # page tables at 0x10000: PML4, PDPT, PD, PT (4 KiB pages below 2 MiB)
    mov ax, 0x1000
    mov es, ax
    xor di, di
    xor eax, eax
    mov cx, 0x4000 / 4
    rep stosd
    mov dword ptr es:[0x0000], 0x11007     # PML4[0] -> PDPT (user allowed)
    mov dword ptr es:[0x1000], 0x12007     # PDPT[0] -> PD
    mov dword ptr es:[0x2000], 0x13007     # PD[0] -> PT
    mov dword ptr es:[0x2008], 0x200083    # PD[1]: 2 MiB page, supervisor only
    mov di, 0x3000                         # PT: identity, supervisor read/write
    mov eax, 0x3
    mov cx, 512
1:  mov es:[di], eax
    add eax, 0x1000
    add di, 8
    loop 1b
    mov dword ptr es:[0x3000 + 5 * 8], 0x5001     # 0x5000 read-only
    or dword ptr es:[0x3000 + 6 * 8], 4           # 0x6000 user stack
    mov di, 0x3000 + 0xF0 * 8                     # the ROM: user-executable
    mov cx, 16
2:  or dword ptr es:[di], 4
    add di, 8
    loop 2b
    xor ax, ax
    mov ds, ax
    mov es, ax
    lgdt cs:[gdtr]
    mov eax, 0x20                   # CR4.PAE
    mov cr4, eax
    mov eax, 0x10000
    mov cr3, eax
    mov ecx, 0xC0000080             # EFER.LME | EFER.SCE
    rdmsr
    or eax, 0x101
    wrmsr
    mov eax, cr0
    or eax, 0x80010001              # PG | WP | PE: long mode is active
    mov cr0, eax
    .byte 0x66, 0xEA
    .long long64 + ROM
    .word 0x18

    .code64
long64:
    mov ax, 0x20
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x9000
    mov edi, 14
    mov rax, offset pf_handler + ROM
    mov dx, 0x8E00                 # interrupt gate, DPL 0, IST 0
    call set_gate
    mov edi, 8
    mov rax, offset df_handler + ROM
    mov dx, 0x8E01                 # IST 1
    call set_gate
    lidt [idtr + ROM]
    mov qword ptr [0x3104], 0x9000   # TSS64.RSP0
    mov qword ptr [0x3124], 0xA000   # TSS64.IST1
    mov word ptr [0x3166], 0x68
    mov ax, 0x40
    ltr ax

    mov qword ptr [0x8100], offset after1 + ROM
    mov rax, [0x400000]             # not present: #PF error 0
after1:
    mov qword ptr [0x8100], offset after2 + ROM
    mov qword ptr [0x5008], rax     # read-only: #PF error 3
after2:
    mov ecx, 0xC0000081             # STAR: SYSCALL CS 0x18, SYSRET base 0x28
    xor eax, eax
    mov edx, 0x00280018
    wrmsr
    mov ecx, 0xC0000082             # LSTAR
    mov rax, offset syscall_entry + ROM
    xor edx, edx
    wrmsr
    mov ecx, 0xC0000084             # FMASK: IF, DF
    mov eax, 0x600
    xor edx, edx
    wrmsr
    push 0x33                       # iretq to ring 3: SS, RSP, RFLAGS, CS, RIP
    push 0x7000
    push 0x2
    push 0x3B
    mov rax, offset user64 + ROM
    push rax
    iretq

user64:
    mov edi, 1
    syscall
    mov edi, 2
    syscall
    mov rax, [0x200000]             # supervisor page from ring 3: #PF error 5
    jmp user64

syscall_entry:
    mov [0x8000], rsp               # the user stack, restored before SYSRET
    mov rsp, 0x8800
    mov rsi, offset msg_syscall + ROM
    call puts64
    mov rax, rdi
    call hex64
    mov rsi, offset msg_rcx + ROM
    call puts64
    mov rax, rcx
    call hex64
    mov rsi, offset msg_r11 + ROM
    call puts64
    mov rax, r11
    call hex64
    mov rsi, offset msg_cs + ROM
    call puts64
    mov ax, cs
    movzx eax, ax
    call hex64
    mov rsi, offset msg_nl + ROM
    call puts64
    mov rsp, [0x8000]
    sysretq

pf_handler:
    mov rsi, offset msg_pf + ROM
    call puts64
    mov rax, [rsp]                  # error code
    call hex64
    mov rsi, offset msg_cr2 + ROM
    call puts64
    mov rax, cr2
    call hex64
    mov rsi, offset msg_cs + ROM
    call puts64
    mov rax, [rsp + 16]             # CS of the faulting code
    call hex64
    mov rsi, offset msg_nl + ROM
    call puts64
    test qword ptr [rsp + 16], 3
    jnz double_fault_test
    mov rax, [0x8100]               # resume after the faulting instruction
    mov [rsp + 8], rax
    add rsp, 8
    iretq

double_fault_test:
    mov rsp, 0x500000               # below it is unmapped: delivering the #PF faults again
    mov rax, [0x400000]
    hlt

df_handler:
    mov rsi, offset msg_df + ROM
    call puts64
    mov rax, [rsp]
    call hex64
    mov rsi, offset msg_rsp + ROM
    call puts64
    lea rax, [rsp + 8]
    call hex64
    mov rsi, offset msg_nl + ROM
    call puts64
    mov al, PASS
    jmp exit64

# set_gate: EDI = vector, RAX = handler, DX = type/attribute (high byte) and IST (low)
set_gate:
    shl edi, 4
    add edi, 0x1000
    mov [rdi], ax
    mov word ptr [rdi + 2], 0x18
    mov [rdi + 4], dx
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    mov dword ptr [rdi + 12], 0
    ret

    .p2align 3
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF       # 0x08 code32, DPL 0
    .quad 0x00CF92000000FFFF       # 0x10 data, DPL 0
    .quad 0x00AF9A000000FFFF       # 0x18 code64, DPL 0 (SYSCALL CS)
    .quad 0x00CF92000000FFFF       # 0x20 data, DPL 0 (SYSCALL SS)
    .quad 0x00CFFA000000FFFF       # 0x28 code32, DPL 3 (SYSRET base)
    .quad 0x00CFF2000000FFFF       # 0x30 data, DPL 3 (SYSRET SS)
    .quad 0x00AFFA000000FFFF       # 0x38 code64, DPL 3 (SYSRET CS)
    .quad 0x0000890031000067       # 0x40 64-bit TSS at 0x3100 (low half)
    .quad 0                        #      (high half)
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long 0x800
idtr:
    .word 256 * 16 - 1
    .quad 0x1000
msg_syscall: .asciz "long: syscall "
msg_rcx:     .asciz " rcx="
msg_r11:     .asciz " r11="
msg_cs:      .asciz " cs="
msg_pf:      .asciz "long: #PF error="
msg_cr2:     .asciz " cr2="
msg_df:      .asciz "long: #DF error="
msg_rsp:     .asciz " on IST1 stack rsp="
msg_nl:      .asciz "\n"
    .code16
    .include "common.inc"
