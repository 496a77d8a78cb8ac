/*
 * Kernel entry, interrupt stubs, the SYSCALL entry and the one way back to a process.
 *
 * Every way into the kernel (exception, IRQ, SYSCALL) ends with a struct trapframe
 * (kernel.h) on the current process's kernel stack; the C handler returns the trap frame
 * to resume, which may belong to another process (that is a context switch), and
 * trap_return restores it. Frames built by syscall_entry carry vector VEC_SYSCALL and
 * leave through SYSRETQ; all others leave through IRETQ.
 */
    .intel_syntax noprefix

    .set VEC_SYSCALL, 0x80
    .set SEL_UDATA, 0x23
    .set SEL_UCODE, 0x2B

    .section .text.entry, "ax"
    .globl _start
_start:
    /* stage 2 jumps here with RDI = physical address of the boot info, paging on, the
     * first GiB identity-mapped and mapped at 0xFFFFFFFF80000000. */
    lea rsp, [rip + boot_stack_top]
    xor ebp, ebp
    call kmain
1:  cli
    hlt
    jmp 1b

    .text
/* Exceptions that push an error code: 8, 10-14, 17, 21, 29, 30. For the others the stub
 * pushes a 0 so that every frame has the same layout. */
.macro ISR_NOERR n
isr\n:
    push 0
    push \n
    jmp isr_common
.endm
.macro ISR_ERR n
isr\n:
    push \n
    jmp isr_common
.endm

.irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
ISR_NOERR \n
.endr
.irp n, 8,10,11,12,13,14,17,21,29,30
ISR_ERR \n
.endr
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
ISR_NOERR \n
.endr

.macro PUSH_REGS
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
.endm

isr_common:
    PUSH_REGS
    cld
    mov rdi, rsp
    call trap_dispatch          /* returns the frame to resume in RAX */
    mov rdi, rax
    jmp trap_return

/* SYSCALL: RCX = user RIP, R11 = user RFLAGS, RSP still the user stack, IF cleared by
 * IA32_FMASK. Build an IRET-shaped frame on this process's kernel stack. */
    .globl syscall_entry
syscall_entry:
    mov [rip + syscall_user_rsp], rsp
    mov rsp, [rip + syscall_kernel_rsp]
    push SEL_UDATA                          /* ss */
    push qword ptr [rip + syscall_user_rsp] /* rsp */
    push r11                                /* rflags */
    push SEL_UCODE                          /* cs */
    push rcx                                /* rip */
    push 0                                  /* error */
    push VEC_SYSCALL                        /* vector: marks a SYSCALL frame */
    PUSH_REGS
    cld
    mov rdi, rsp
    call syscall_dispatch
    mov rdi, rax
    /* fall through */

/* trap_return(frame): restore a trap frame and leave the kernel. */
    .globl trap_return
trap_return:
    mov rsp, rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    cmp qword ptr [rsp], VEC_SYSCALL
    je 1f
    add rsp, 16                 /* vector and error code */
    iretq
1:  mov rcx, [rsp + 16]         /* user RIP for SYSRET */
    mov r11, [rsp + 32]         /* user RFLAGS */
    mov rsp, [rsp + 40]         /* user RSP: from here no kernel stack, IF is still 0 */
    sysretq

    .section .rodata
    .balign 8
    .globl isr_table
isr_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr\n
.endr
.irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad isr\n
.endr

    .data
    .globl syscall_kernel_rsp
syscall_kernel_rsp: .quad 0     /* top of the current process's kernel stack */
syscall_user_rsp:   .quad 0

    .bss
    .balign 16
boot_stack:
    .skip 16384
boot_stack_top:
