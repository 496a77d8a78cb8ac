# The local APIC (Intel SDM vol. 3A ch. 10), seen from real mode: registers after
# reset, the timer one-shot and periodic with the divide register, TPR masking of a
# self-IPI (IRR/PPR), and priority nesting with EOI (ISR/PPR inside a handler).
# Nothing printed depends on how fast virtual time runs. Expected output: see
# test_apic_roms.py; the same bytes under vmm --machine pc and QEMU -M pc.
    .include "apic.inc"
    call apic_setup
    # ---- after reset ----
    PUTS "apic: id="
    LAPIC_R 0x20
    HEX32 eax
    PUTS " version="
    LAPIC_R 0x30
    HEX32 eax
    PUTS " svr="
    LAPIC_R 0xF0
    HEX32 eax
    PUTS " tpr="
    LAPIC_R 0x80
    HEX32 eax
    PUTS "\napic: lvt timer="
    LAPIC_R 0x320
    HEX32 eax
    PUTS " lint0="
    LAPIC_R 0x350
    HEX32 eax
    PUTS " lint1="
    LAPIC_R 0x360
    HEX32 eax
    PUTS " error="
    LAPIC_R 0x370
    HEX32 eax
    PUTS "\n"
    # software enable, spurious vector FFh; LINT0 masked (the 8259A is not used)
    LAPIC_W 0xF0, 0x1FF
    LAPIC_W 0x350, 0x10700
    VECTOR 0x40, oneshot_irq
    VECTOR 0x41, periodic_irq
    VECTOR 0x45, ipi45
    VECTOR 0x46, ipi46
    VECTOR 0x56, ipi56
    VECTOR 0x36, ipi36

    # ---- the divide configuration register ----
    PUTS "divide:"
    LAPIC_W 0x3E0, 0x0B
    LAPIC_R 0x3E0
    HEX32 eax
    LAPIC_W 0x3E0, 0x03
    LAPIC_R 0x3E0
    PUTS " "
    HEX32 eax
    PUTS "\n"

    # ---- one-shot: divide by 16, 6250 counts ----
    LAPIC_W 0x320, 0x40
    LAPIC_W 0x380, 6250
    LAPIC_R 0x390
    xor dx, dx
    test eax, eax
    jz 1f
    cmp eax, 6250
    ja 1f
    inc dx                         # counting down from the initial count
1:  sti
    WAIT_FOR 0x500, 1
    mov cx, 2000                   # long past a second expiry, if there were one
2:  loop 2b
    cli
    PUTS "one-shot: counting="
    mov ax, dx
    call hex16
    PUTS " irqs="
    mov ax, [0x500]
    call hex16
    PUTS " current="
    LAPIC_R 0x390
    HEX32 eax
    PUTS " initial="
    LAPIC_R 0x380
    HEX32 eax
    PUTS "\n"

    # ---- periodic: five periods ----
    LAPIC_W 0x320, 0x20041
    LAPIC_W 0x380, 3000
    sti
    WAIT_FOR 0x502, 5
    cli
    mov dx, [0x502]
    LAPIC_R 0x390
    xor bx, bx
    cmp eax, 3000
    ja 3f
    inc bx                         # the current count stays within the period
3:  LAPIC_W 0x320, 0x30041         # masked
    LAPIC_R 0x320
    mov ecx, eax
    LAPIC_W 0x380, 0               # stopped
    sti
    SETTLE                         # a period that ended meanwhile is taken here
    cli
    PUTS "periodic: irqs="
    mov ax, dx
    call hex16
    PUTS " current<=initial="
    mov ax, bx
    call hex16
    PUTS " lvt="
    HEX32 ecx
    PUTS " stopped current="
    LAPIC_R 0x390
    HEX32 eax
    PUTS "\n"

    # ---- TPR masking of a self-IPI ----
    LAPIC_W 0x80, 0x50
    sti
    LAPIC_W 0x300, 0x00040045      # fixed, vector 45h, shorthand self
    SETTLE
    PUTS "tpr=50: ipi 45 taken="
    mov ax, [0x504]
    call hex16
    PUTS " irr[40-5F]="
    LAPIC_R 0x220
    HEX32 eax
    PUTS " ppr="
    LAPIC_R 0xA0
    HEX32 eax
    PUTS " icr="
    LAPIC_R 0x300
    HEX32 eax
    PUTS "\n"
    LAPIC_W 0x80, 0x40
    SETTLE
    PUTS "tpr=40: taken="
    mov ax, [0x504]
    call hex16
    LAPIC_W 0x80, 0x30
    SETTLE
    PUTS " tpr=30: taken="
    mov ax, [0x504]
    call hex16
    PUTS " irr[40-5F]="
    LAPIC_R 0x220
    HEX32 eax
    PUTS "\n"
    LAPIC_W 0x80, 0

    # ---- priorities and EOI: 46h sends 36h (lower) and 56h (higher) ----
    mov word ptr [0x510], 0x520    # where the handlers log their vectors
    LAPIC_W 0x300, 0x00040046
    SETTLE
    cli
    PUTS "nesting: order="
    mov si, 0x520
4:  cmp si, [0x510]
    jae 5f
    mov al, [si]
    call hex8
    inc si
    jmp 4b
5:  PUTS " isr[40-5F] in 46h="
    HEX32 [0x530]
    PUTS " ppr in 46h="
    HEX32 [0x534]
    PUTS " isr[40-5F] in 56h="
    HEX32 [0x538]
    PUTS " isr after="
    LAPIC_R 0x120
    HEX32 eax
    PUTS " ppr after="
    LAPIC_R 0xA0
    HEX32 eax
    PUTS "\n"
    mov al, PASS
    jmp exit16

hex8:
    push ax
    push cx
    mov ah, al
    mov cx, 2
    mov dx, COM1
1:  rol ax, 4
    push ax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 2f
    add al, 'A' - '0' - 10
2:  out dx, al
    pop ax
    loop 1b
    pop cx
    pop ax
    ret

.macro LOG vector
    push si
    mov si, [0x510]
    mov byte ptr [si], \vector
    inc word ptr [0x510]
    pop si
.endm

oneshot_irq:
    inc word ptr [0x500]
    LAPIC_W EOI, 0
    iret
periodic_irq:
    inc word ptr [0x502]
    LAPIC_W EOI, 0
    iret
ipi45:
    inc word ptr [0x504]
    LAPIC_W EOI, 0
    iret
ipi46:
    push eax
    LOG 0x46
    LAPIC_R 0x120
    mov [0x530], eax
    LAPIC_R 0xA0
    mov [0x534], eax
    LAPIC_W 0x300, 0x00040036      # lower class: waits for our EOI
    LAPIC_W 0x300, 0x00040056      # higher class: nests
    sti
    SETTLE
    cli
    LAPIC_W EOI, 0
    pop eax
    iret
ipi56:
    push eax
    LOG 0x56
    LAPIC_R 0x120
    mov [0x538], eax
    LAPIC_W EOI, 0
    pop eax
    iret
ipi36:
    LOG 0x36
    LAPIC_W EOI, 0
    iret

    .include "common.inc"
