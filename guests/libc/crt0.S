/* User program entry. The kernel starts us with RSP 16-byte aligned and RDI pointing at the
 * argument string; main(args) gets it as its only argument, and its return value is the
 * exit status. */
    .intel_syntax noprefix
    .text
    .globl _start
_start:
    xor ebp, ebp
    call main
    mov edi, eax
    call exit
1:  jmp 1b
