/*
 * mptable.S — walk the Intel MultiProcessor Specification 1.4 tables as an
 * operating system does (MP spec 4.1-4.3): search the first KiB of the EBDA, the
 * last KiB of base memory and F0000h-FFFFFh for the floating pointer "_MP_" on a
 * 16-byte boundary, check both checksums, then print every entry of the
 * configuration table (PCI interrupt entries as a count and the first slot's), and
 * read the local APIC's version and the I/O APIC's version register at the
 * addresses the table gives (FS has a 4 GiB limit after the BIOS's POST).
 * On isapc it finds no table and says so.
 */
    .include "common.inc"

    .text
main:
    PRINTLN "mptable: walk"
    /* the first KiB of the EBDA */
    push 0x40
    pop es
    mov ax, es:[0x0E]
    mov es, ax
    xor di, di
    mov cx, 1024 / 16
    call scan
    jnc found
    /* the last KiB of base memory */
    push 0x40
    pop es
    mov ax, es:[0x13]
    dec ax
    shl ax, 6
    mov es, ax
    xor di, di
    mov cx, 1024 / 16
    call scan
    jnc found
    push 0xF000
    pop es
    xor di, di
    mov cx, 0x10000 / 16
    call scan
    jnc found
    PRINTLN "no MP floating pointer"
    EXIT

/* scan: ES:DI, CX paragraphs -> CF=0 and ES:DI at "_MP_" with a good checksum */
scan:
1:  cmp dword ptr es:[di], 0x5F504D5F
    jne 2f
    xor al, al
    xor bx, bx
3:  add al, es:[di+bx]
    inc bx
    cmp bx, 16
    jb 3b
    test al, al
    jz 4f
2:  add di, 16
    loop 1b
    stc
    ret
4:  clc
    ret

found:
    PRINT "_MP_ found"
    mov ax, es
    cmp ax, 0xF000
    jne 1f
    PRINT " in the ROM"
    jmp 2f
1:  PRINT " in RAM below 1 MiB"
2:  SHOW8 "length", es:[di+8]
    SHOW8 "rev", es:[di+9]
    SHOW8 "feature1", es:[di+11]
    SHOW8 "feature2", es:[di+12]
    call crlf
    mov esi, es:[di+4]              /* the configuration table, physical */
    xor ax, ax
    mov fs, ax
    cmp dword ptr fs:[esi], 0x504D4350      /* "PCMP" */
    je 1f
    PRINTLN "no PCMP signature"
    EXIT
1:  movzx ecx, word ptr fs:[esi+4]
    xor al, al
    xor ebx, ebx
2:  add al, fs:[esi+ebx]
    inc ebx
    cmp ebx, ecx
    jb 2b
    PRINT "PCMP"
    SHOW16 "length", cx
    SHOW8 "sum", al
    SHOW8 "rev", fs:[esi+6]
    SHOW16 "entries", fs:[esi+34]
    SHOW32 "lapic", fs:[esi+36]
    SHOW16 "ext", fs:[esi+40]
    call crlf
    mov ebx, fs:[esi+36]
    mov eax, fs:[ebx+0x30]
    PRINT "lapic version register"
    SHOW32 "v", eax
    mov eax, fs:[ebx+0x20]
    shr eax, 24
    SHOW8 "id", al
    call crlf
    mov cx, fs:[esi+34]
    add esi, 44
    xor bp, bp                      /* PCI interrupt entries */
entry:
    test cx, cx
    jz walked
    mov al, fs:[esi]
    cmp al, 0
    je cpu
    cmp al, 1
    je bus
    cmp al, 2
    je ioapic
    cmp al, 3
    je ioint
    cmp al, 4
    je lint
    PRINT "unknown entry type"
    SHOW8 "t", al
    call crlf
    jmp walked
cpu:
    PRINT "cpu"
    SHOW8 "apic", fs:[esi+1]
    SHOW8 "ver", fs:[esi+2]
    SHOW8 "flags", fs:[esi+3]
    call crlf
    add esi, 20
    dec cx
    jmp entry
bus:
    PRINT "bus"
    SHOW8 "id", fs:[esi+1]
    PRINT " "
    mov ebx, 2
1:  mov al, fs:[esi+ebx]
    call putc
    inc ebx
    cmp ebx, 8
    jb 1b
    call crlf
    jmp next8
ioapic:
    PRINT "ioapic"
    SHOW8 "id", fs:[esi+1]
    SHOW8 "ver", fs:[esi+2]
    SHOW8 "flags", fs:[esi+3]
    SHOW32 "addr", fs:[esi+4]
    mov ebx, fs:[esi+4]
    mov dword ptr fs:[ebx], 1       /* IOREGSEL: the version register */
    mov eax, fs:[ebx+0x10]
    SHOW32 "reg1", eax
    call crlf
    jmp next8
ioint:
    cmp byte ptr fs:[esi+4], 0      /* bus 0: PCI */
    jne 2f
    inc bp
    cmp byte ptr fs:[esi+5], 8      /* slot 2 (2 << 2): print its four pins */
    jb next8
    cmp byte ptr fs:[esi+5], 12
    jae next8
    PRINT "pci int"
    jmp 3f
2:  PRINT "isa int"
3:  SHOW8 "type", fs:[esi+1]
    SHOW16 "flags", fs:[esi+2]
    SHOW8 "bus", fs:[esi+4]
    SHOW8 "irq", fs:[esi+5]
    SHOW8 "apic", fs:[esi+6]
    SHOW8 "pin", fs:[esi+7]
    call crlf
    jmp next8
lint:
    PRINT "local int"
    SHOW8 "type", fs:[esi+1]
    SHOW16 "flags", fs:[esi+2]
    SHOW8 "bus", fs:[esi+4]
    SHOW8 "irq", fs:[esi+5]
    SHOW8 "apic", fs:[esi+6]
    SHOW8 "lint", fs:[esi+7]
    call crlf
next8:
    add esi, 8
    dec cx
    jmp entry
walked:
    PRINT "pci interrupt entries"
    SHOW16 "n", bp
    call crlf
    EXIT
