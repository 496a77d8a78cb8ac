# The I/O APIC (82093AA) routing ISA interrupts to the local APIC, from real mode with
# the 8259A masked: its registers after reset, the PIT's IRQ 0 arriving on input 2
# (the MP table's interrupt source override; input 0 stays quiet), and IRQ 14 from an
# ATA IDENTIFY, edge-triggered and then level-triggered (remote IRR set while the CPU
# holds it, the line re-sent on EOI while the drive still asserts it, cleared by the
# EOI once the status read drops the line). Expected output: see test_apic_roms.py;
# the same bytes under vmm --machine pc and QEMU -M pc, each with a disk on ide0:0.
    .include "apic.inc"
    call apic_setup
    LAPIC_W 0xF0, 0x1FF            # software enable
    LAPIC_W 0x350, 0x10700         # LINT0 masked: nothing from the 8259A
    PUTS "ioapic: id="
    IOAPIC_R 0
    HEX32 eax
    PUTS " version="
    IOAPIC_R 1
    HEX32 eax
    PUTS " pin0="
    IOAPIC_R 0x10
    HEX32 eax
    PUTS ":"
    IOAPIC_R 0x11
    HEX32 eax
    PUTS " pin23="
    IOAPIC_R 0x3E
    HEX32 eax
    PUTS "\n"
    VECTOR 0x50, pit_irq
    VECTOR 0x51, pin0_irq
    VECTOR 0x5E, ata_edge_irq
    VECTOR 0x5F, ata_level_irq

    # ---- the PIT on input 2 ----
    IOAPIC_W 0x14, 0x00000050      # input 2: vector 50h, fixed, physical, edge, high
    IOAPIC_W 0x15, 0x00000000      # destination: APIC id 0
    IOAPIC_W 0x10, 0x00000051      # input 0: vector 51h (nothing may arrive there)
    IOAPIC_W 0x11, 0x00000000
    mov al, 0x34                   # 8254 counter 0: mode 2, divisor 1193 (about 1 ms)
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
    WAIT_FOR 0x500, 3
    cli
    mov dx, [0x500]
    IOAPIC_W 0x14, 0x00010050      # masked
    IOAPIC_R 0x14
    mov ecx, eax
    sti
    SETTLE
    cli
    PUTS "pit: input 2 irqs="
    mov ax, dx
    call hex16
    PUTS " input 0 irqs="
    mov ax, [0x502]
    call hex16
    PUTS " pin2 masked="
    HEX32 ecx
    PUTS "\n"
    mov al, 0x30                   # counter 0 to mode 0 (one count, then quiet)
    out 0x43, al
    mov al, 0xFF
    out 0x40, al
    out 0x40, al

    # ---- IRQ 14, edge-triggered ----
    IOAPIC_W 0x2C, 0x0000005E      # input 14: vector 5Eh, edge
    IOAPIC_W 0x2D, 0x00000000
    call identify
    mov cx, 0x4000
1:  cmp word ptr [0x504], 1
    jae 2f
    loop 1b
2:  cli
    call drain
    PUTS "ata edge: irqs="
    mov ax, [0x504]
    call hex16
    PUTS " status in handler="
    mov ax, [0x506]
    call hex16
    PUTS "\n"

    # ---- IRQ 14, level-triggered ----
    IOAPIC_W 0x2C, 0x0000805F      # input 14: vector 5Fh, level
    IOAPIC_R 0x2C
    mov [0x510], eax
    call identify
    mov cx, 0x4000
1:  cmp word ptr [0x508], 2
    jae 2f
    loop 1b
2:  SETTLE
    cli
    call drain
    PUTS "ata level: entry="
    HEX32 [0x510]
    PUTS " irqs="
    mov ax, [0x508]
    call hex16
    PUTS " entry in 1st handler="
    HEX32 [0x50C]
    PUTS " after="
    IOAPIC_R 0x2C
    HEX32 eax
    PUTS " isr[40-5F]="
    LAPIC_R 0x120
    HEX32 eax
    PUTS " tmr[40-5F]="
    LAPIC_R 0x1A0
    HEX32 eax
    PUTS "\n"
    mov al, PASS
    jmp exit16

# identify: ATA IDENTIFY DEVICE to the master of the primary channel, nIEN clear
identify:
    mov dx, 0x3F6
    mov al, 0x00
    out dx, al
    mov dx, 0x1F6
    mov al, 0xA0
    out dx, al
    mov dx, 0x1F7
1:  in al, dx
    test al, 0x80                  # BSY
    jnz 1b
    mov al, 0xEC
    sti
    out dx, al
    ret

# drain: read the 256 words of IDENTIFY data
drain:
    mov dx, 0x1F0
    mov cx, 256
1:  in ax, dx
    loop 1b
    ret

pit_irq:
    inc word ptr [0x500]
    LAPIC_W EOI, 0
    iret
pin0_irq:
    inc word ptr [0x502]
    LAPIC_W EOI, 0
    iret
ata_edge_irq:
    push ax
    push dx
    mov dx, 0x1F7
    in al, dx                      # the status read drops INTRQ
    mov [0x506], al
    inc word ptr [0x504]
    LAPIC_W EOI, 0
    pop dx
    pop ax
    iret
ata_level_irq:
    push eax
    push dx
    inc word ptr [0x508]
    cmp word ptr [0x508], 1
    jne 1f
    IOAPIC_R 0x2C                  # remote IRR is set while we hold it
    mov [0x50C], eax
    LAPIC_W EOI, 0                 # the line is still high: sent again
    jmp 2f
1:  mov dx, 0x1F7
    in al, dx                      # drop INTRQ, then EOI: remote IRR clears for good
    LAPIC_W EOI, 0
2:  pop dx
    pop eax
    iret

    .include "common.inc"
