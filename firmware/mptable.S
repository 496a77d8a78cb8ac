/*
 * mptable.S — the Intel MultiProcessor Specification 1.4 tables of the `pc` machine.
 *
 * Source: Intel MultiProcessor Specification 1.4 (May 1997), chapter 4: the MP
 * floating pointer structure (4.1) and the MP configuration table (4.2, 4.3), with
 * the entries SeaBIOS writes for QEMU -M pc (src/fw/mptable.c):
 *   - one processor (local APIC id 0, version 14h, enabled, the BSP);
 *   - bus 0 "PCI", bus 1 "ISA";
 *   - one I/O APIC (id 0, version 20h, at FEC00000h);
 *   - I/O interrupt entries: every PCI slot 1-31 and pin A-D of bus 0 to the I/O APIC
 *     input of its PIRQ link's IRQ (link = (slot - 1 + pin - 1) mod 4, links A-D on
 *     IRQ 10, 11, 10, 11 as pci.S routes them), active high, level (PCI's trigger);
 *     ISA IRQ 0-15 to inputs 0-15, except IRQ 0 (the PIT) on input 2, no entry for
 *     IRQ 2 (the cascade), and none for IRQ 10 and 11 (they belong to PCI), as
 *     SeaBIOS leaves the PCI IRQs out;
 *   - local interrupts: ExtINT (the 8259A) on LINT0, NMI on LINT1.
 *
 * The configuration table never changes, so it lives in the ROM with its checksum
 * worked out at assembly time (the ROM is read-only under QEMU), like the $PIR
 * table; the table lists every slot as the $PIR table does, present or not. The
 * floating pointer is written at POST into the first KiB of the EBDA (one of the
 * places the specification has software search), and only when CPUID says the CPU
 * has a local APIC: `--machine pc` (QEMU -M pc); `isapc` gets none.
 */
    .include "bios.inc"

MP_LAPIC_ADDR   = 0xFEE00000
MP_IOAPIC_ADDR  = 0xFEC00000
MP_IOAPIC_ID    = 0
MP_BUS_PCI      = 0
MP_BUS_ISA      = 1
MP_PCI_SLOTS    = 31
MP_ISA_ENTRIES  = 13            /* IRQ 0, 1, 3-9, 12-15 */
MP_ENTRIES      = 1 + 2 + 1 + 4 * MP_PCI_SLOTS + MP_ISA_ENTRIES + 2
MP_LENGTH       = 44 + 20 + 8 * (MP_ENTRIES - 1)
/* The processor entry's signature and features (the ROM cannot ask CPUID): family
 * 6, and FPU, TSC, CX8, APIC, as the bits an operating system looks at. */
MP_CPU_SIGNATURE = 0x00000600
MP_CPU_FEATURES  = 0x00000331

    .section .text

/* Bytes emitted through these macros are summed for the checksum. */
    .set mp_sum, 0
.macro MPB value
    .byte (\value) & 0xFF
    .set mp_sum, mp_sum + ((\value) & 0xFF)
.endm
.macro MPW value
    MPB (\value)
    MPB ((\value) >> 8)
.endm
.macro MPD value
    MPW (\value)
    MPW ((\value) >> 16)
.endm
.macro MPSTR a, b, c, d, e, f
    MPB \a
    MPB \b
    MPB \c
    MPB \d
    MPB \e
    MPB \f
.endm
/* An I/O interrupt entry: type 3, INT, flags, source bus and IRQ, I/O APIC input. */
.macro MP_IOINT flags, bus, irq, pin
    MPB 3
    MPB 0
    MPW \flags
    MPB \bus
    MPB \irq
    MPB MP_IOAPIC_ID
    MPB \pin
.endm

    .balign 16
    .globl mp_config_table
mp_config_table:
    MPB 'P'
    MPB 'C'
    MPB 'M'
    MPB 'P'
    MPW MP_LENGTH                          /* base table length */
    MPB 4                                  /* specification revision 1.4 */
    .byte (0x100 - (mp_sum_total & 0xFF)) & 0xFF   /* checksum: all bytes add up to 0 */
    MPSTR 'V', 'M', 'M', ' ', ' ', ' '     /* OEM ID (8 bytes) */
    MPB ' '
    MPB ' '
    MPSTR 'v', 'm', 'm', ' ', 'P', 'C'     /* product ID (12 bytes) */
    MPSTR ' ', ' ', ' ', ' ', ' ', ' '
    MPD 0                                  /* OEM table pointer */
    MPW 0                                  /* OEM table size */
    MPW MP_ENTRIES
    MPD MP_LAPIC_ADDR
    MPW 0                                  /* extended table length */
    MPB 0                                  /* extended table checksum */
    MPB 0
    /* processor */
    MPB 0
    MPB 0                                  /* local APIC id */
    MPB 0x14                               /* local APIC version */
    MPB 3                                  /* enabled, bootstrap processor */
    MPD MP_CPU_SIGNATURE
    MPD MP_CPU_FEATURES
    MPD 0
    MPD 0
    /* buses */
    MPB 1
    MPB MP_BUS_PCI
    MPSTR 'P', 'C', 'I', ' ', ' ', ' '
    MPB 1
    MPB MP_BUS_ISA
    MPSTR 'I', 'S', 'A', ' ', ' ', ' '
    /* the I/O APIC */
    MPB 2
    MPB MP_IOAPIC_ID
    MPB 0x20                               /* version */
    MPB 1                                  /* usable */
    MPD MP_IOAPIC_ADDR
    /* PCI interrupts: bus IRQ = slot << 2 | pin (0 = INTA#) */
    .set mp_slot, 1
    .rept MP_PCI_SLOTS
    .set mp_pin, 0
    .rept 4
    MP_IOINT 1, MP_BUS_PCI, (mp_slot << 2) | mp_pin, 10 + ((mp_slot - 1 + mp_pin) & 1)
    .set mp_pin, mp_pin + 1
    .endr
    .set mp_slot, mp_slot + 1
    .endr
    /* ISA interrupts: conforming to the bus (edge, active high) */
    MP_IOINT 0, MP_BUS_ISA, 0, 2
    .irp irq, 1, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15
    MP_IOINT 0, MP_BUS_ISA, \irq, \irq
    .endr
    /* local interrupts: type 4, ExtINT to LINT0 of the BSP, NMI to LINT1 of all */
    MPB 4
    MPB 3
    MPW 0
    MPB MP_BUS_ISA
    MPB 0
    MPB 0
    MPB 0
    MPB 4
    MPB 1
    MPW 0
    MPB MP_BUS_ISA
    MPB 0
    MPB 0xFF
    MPB 1
mp_config_end:
    .set mp_sum_total, mp_sum
    .if mp_config_end - mp_config_table - MP_LENGTH
    .error "the MP configuration table's length is not MP_LENGTH"
    .endif

/*
 * mptable_init: publish the MP floating pointer in the EBDA if the CPU has a local
 * APIC (CPUID.1:EDX bit 9). The pointer names the table in the ROM.
 */
MP_FLOATING     = 0x160         /* EBDA offset, 16-byte aligned */
    .globl mptable_init
mptable_init:
    pushad
    push fs
    mov eax, 1
    cpuid
    test edx, 1 << 9
    jz 9f
    call ebda_fs
    mov dword ptr fs:[MP_FLOATING], 0x5F504D5F      /* "_MP_" */
    mov eax, offset mp_config_table
    add eax, 0xF0000                                /* its linear address */
    mov dword ptr fs:[MP_FLOATING + 4], eax
    mov dword ptr fs:[MP_FLOATING + 8], 0x00000401  /* length 1 (16 bytes), rev 1.4 */
    mov dword ptr fs:[MP_FLOATING + 12], 0          /* table present, no IMCR */
    xor ax, ax
    mov si, MP_FLOATING
    mov cx, 16
1:  add al, fs:[si]
    inc si
    loop 1b
    neg al
    mov fs:[MP_FLOATING + 10], al
9:  pop fs
    popad
    ret
