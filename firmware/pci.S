/*
 * pci.S — the PCI bus at POST, the PCI BIOS (INT 1Ah AH=B1h) and the $PIR table.
 *
 * Sources: PCI Local Bus Specification 3.0, 3.2.2.3.2 (configuration mechanism
 * #1: CONFIG_ADDRESS at CF8h, CONFIG_DATA at CFCh) and 6.2.5.1 (BAR sizing);
 * PCI BIOS Specification 2.1, chapter 3 (the INT 1Ah B1xxh functions and their
 * return codes); Microsoft's "PCI IRQ Routing Table Specification" 1.0 ($PIR);
 * Intel 82371SB (PIIX3) datasheet, PIRQRC[A:D] at config 60h-63h.
 *
 * POST (pci_init): if mechanism #1 answers, walk bus 0, size every BAR of every
 * function and give it an address (I/O from C000h, memory from E0000000h, each
 * naturally aligned), turn on I/O and memory decoding where BARs were given,
 * route the four PIRQ links of a PIIX3 at 01.0 to IRQ 10, 11, 10, 11 (level
 * triggered in the ELCR), and write each function's Interrupt Line.  The same
 * slot/pin -> link wiring as QEMU's i440FX: link = (slot - 1 + pin - 1) mod 4.
 * pci_print lists what was found, one line per function, after the banner.
 *
 * Everything lives in the I/O and configuration spaces: nothing is kept in RAM
 * (the ROM is read-only), so INT 1Ah B1xxh reads the bus afresh each time.
 */
    .include "bios.inc"

PCI_ADDR        = 0xCF8
PCI_DATA        = 0xCFC
PCI_IO_START    = 0xC000
PCI_MEM_START   = 0xE0000000
PIIX3_PIRQRC    = 0x60
ELCR2           = 0x4D1     /* edge/level control of IRQ 8-15 */
PIRQ_IRQ_A      = 10
PIRQ_IRQ_B      = 11
/* PCI BIOS return codes (AH) */
PCIBIOS_SUCCESSFUL        = 0x00
PCIBIOS_FUNC_NOT_SUPPORTED = 0x81
PCIBIOS_BAD_VENDOR_ID     = 0x83
PCIBIOS_DEVICE_NOT_FOUND  = 0x86
PCIBIOS_BAD_REGISTER      = 0x87

    .section .text

/*
 * pci_cfg_addr: select a configuration register.
 * In: BX = bus:devfn (BH bus, BL device<<3|function), DI = register.
 * Out: DX = the CONFIG_DATA port for that register's byte lane.
 */
pci_cfg_addr:
    push eax
    movzx eax, bx
    shl eax, 8
    or eax, 0x80000000
    push di
    and di, 0xFC
    or ax, di
    pop di
    mov dx, PCI_ADDR
    out dx, eax
    mov dx, di
    and dx, 3
    add dx, PCI_DATA
    pop eax
    ret

/* pci_read32/16/8: EAX/AX/AL = register DI of BX.  pci_write32/16/8: from EAX/AX/AL. */
    .globl pci_read32
pci_read32:
    push dx
    call pci_cfg_addr
    in eax, dx
    pop dx
    ret
pci_read16:
    push dx
    call pci_cfg_addr
    in ax, dx
    pop dx
    ret
pci_read8:
    push dx
    call pci_cfg_addr
    in al, dx
    pop dx
    ret
pci_write32:
    push dx
    call pci_cfg_addr
    out dx, eax
    pop dx
    ret
pci_write16:
    push dx
    call pci_cfg_addr
    out dx, ax
    pop dx
    ret
pci_write8:
    push dx
    call pci_cfg_addr
    out dx, al
    pop dx
    ret

/* pci_present: ZF = 1 if configuration mechanism #1 answers. */
    .globl pci_present
pci_present:
    push eax
    push dx
    mov dx, PCI_ADDR
    mov eax, 0x80000000
    out dx, eax
    in eax, dx
    cmp eax, 0x80000000
    pop dx
    pop eax
    ret

/*
 * pci_next: step BX to the next function on bus 0 that exists.
 * In: BX = the previous one, or 0FFFFh to start.  Out: CF = 1 when there are no
 * more.  Functions 1-7 are visited only when function 0 says multi-function.
 */
pci_next:
    push eax
    push di
1:  cmp bx, 0xFFFF
    jne 2f
    xor bx, bx
    jmp 4f
2:  test bl, 7
    jnz 3f
    xor di, di                      /* function 0 absent: the slot is empty */
    call pci_read32
    cmp ax, 0xFFFF
    je 5f
    mov di, 0x0C                    /* function 0: header type bit 7 */
    call pci_read32
    test eax, 0x00800000
    jnz 3f
5:  or bl, 7                        /* single-function: skip to the next slot */
3:  inc bl
    jz 8f                           /* past slot 31: done (bus 0 only) */
4:  xor di, di
    call pci_read32
    cmp ax, 0xFFFF
    je 1b
    clc
    jmp 9f
8:  stc
9:  pop di
    pop eax
    ret

/*
 * pci_init: assign BARs, route PIRQs, write Interrupt Lines (see the top).
 * Uses ECX as the next free I/O port and ESI as the next free memory address.
 */
    .globl pci_init
pci_init:
    pushad
    call pci_present
    jne 9f
    call pirq_route
    mov ecx, PCI_IO_START
    mov esi, PCI_MEM_START
    mov bx, 0xFFFF
1:  call pci_next
    jc 9f
    mov di, 0x0C
    call pci_read32
    shr eax, 16
    test al, 0x7F                   /* only type 0 headers (no bridges) */
    jnz 1b
    xor bp, bp                      /* decode bits to turn on */
    mov di, 0x10
2:  call bar_assign
    add di, 4
    cmp di, 0x28
    jb 2b
    test bp, bp
    jz 3f
    mov di, 0x04
    call pci_read16
    or ax, bp
    call pci_write16
3:  call irq_assign
    jmp 1b
9:  popad
    ret

/*
 * bar_assign: size BAR DI of BX and give it the next aligned address.
 * In/out: ECX next I/O port, ESI next memory address, BP decode bits to set;
 * DI advances past the upper half of a 64-bit BAR.
 */
bar_assign:
    push eax
    push edx
    call pci_read32
    mov edx, eax                    /* the original value (type bits) */
    mov eax, 0xFFFFFFFF
    call pci_write32
    call pci_read32
    test eax, eax
    jz 8f                           /* no BAR here */
    test dl, 1
    jz 4f
    /* I/O: size = ~(mask & FFFCh) + 1, 16 bits */
    and eax, 0xFFFC
    or eax, 0xFFFF0000
    not eax
    inc eax
    call align_up_ecx
    mov edx, ecx
    add ecx, eax
    mov eax, edx
    call pci_write32
    or bp, 1                        /* Command: I/O space */
    jmp 9f
4:  /* memory: size = ~(mask & FFFFFFF0h) + 1 */
    push dx
    and eax, 0xFFFFFFF0
    not eax
    inc eax
    xchg ecx, esi
    call align_up_ecx
    mov edx, ecx
    add ecx, eax
    xchg ecx, esi
    mov eax, edx
    call pci_write32
    or bp, 2                        /* Command: memory space */
    pop dx
    and dl, 6
    cmp dl, 4                       /* 64-bit BAR: the next one holds bits 63:32 */
    jne 9f
    add di, 4
    xor eax, eax
    call pci_write32
    jmp 9f
8:  mov eax, edx                    /* leave an unimplemented BAR as it was */
    call pci_write32
9:  pop edx
    pop eax
    ret

/* align_up_ecx: ECX = ECX rounded up to a multiple of EAX (a power of two). */
align_up_ecx:
    push eax
    dec eax
    add ecx, eax
    not eax
    and ecx, eax
    pop eax
    ret

/* irq_assign: Interrupt Line of BX from its pin and slot (0FFh: no interrupt). */
irq_assign:
    push ax
    push cx
    push di
    mov di, 0x3D
    call pci_read8
    mov ah, 0xFF
    test al, al
    jz 8f
    cmp al, 4
    ja 8f
    call pirq_of_pin                /* AL = the ISA IRQ of pin AL */
    mov ah, al
8:  mov al, ah
    mov di, 0x3C
    call pci_write8
    pop di
    pop cx
    pop ax
    ret

/* pirq_of_pin: AL (pin 1-4) of device BX -> AL = ISA IRQ of its PIRQ link. */
pirq_of_pin:
    push bx
    dec al                          /* pin 0-3 */
    shr bl, 3                       /* slot */
    add al, bl
    dec al                          /* slot - 1 + pin */
    and al, 1                       /* links A, C -> IRQ 10; B, D -> IRQ 11 */
    add al, PIRQ_IRQ_A
    pop bx
    ret

/* pirq_route: a PIIX3 at 01.0 routes PIRQ A-D to IRQ 10, 11, 10, 11, level-triggered. */
pirq_route:
    push eax
    push bx
    push dx
    push di
    mov bx, 0x0008                  /* bus 0, device 1, function 0 */
    xor di, di
    call pci_read32
    cmp eax, 0x70008086
    jne 9f
    mov di, PIIX3_PIRQRC
    mov eax, (PIRQ_IRQ_B << 24) | (PIRQ_IRQ_A << 16) | (PIRQ_IRQ_B << 8) | PIRQ_IRQ_A
    call pci_write32
    mov dx, ELCR2
    in al, dx
    or al, (1 << (PIRQ_IRQ_A - 8)) | (1 << (PIRQ_IRQ_B - 8))
    out dx, al
9:  pop di
    pop dx
    pop bx
    pop eax
    ret

/*
 * pci_print: one line per function, e.g.
 *     PCI 00:02.0 1AF4:1042 class 0100 IRQ 11
 */
    .globl pci_print
pci_print:
    pushad
    call pci_present
    jne 9f
    mov bx, 0xFFFF
1:  call pci_next
    jc 9f
    mov si, offset msg_pci
    call print_str
    mov al, bh
    call print_hex8
    mov al, ':'
    call console_putc
    mov al, bl
    shr al, 3
    call print_hex8
    mov al, '.'
    call console_putc
    mov al, bl
    and al, 7
    add al, '0'
    call console_putc
    mov al, ' '
    call console_putc
    xor di, di
    call pci_read32
    mov ecx, eax
    mov al, ch
    call print_hex8
    mov al, cl
    call print_hex8
    mov al, ':'
    call console_putc
    shr ecx, 16
    mov al, ch
    call print_hex8
    mov al, cl
    call print_hex8
    mov si, offset msg_class
    call print_str
    mov di, 0x08
    call pci_read32
    shr eax, 16
    mov cx, ax
    mov al, ch
    call print_hex8
    mov al, cl
    call print_hex8
    mov di, 0x3C
    call pci_read16
    test ah, ah                     /* no interrupt pin */
    jz 2f
    cmp al, 0xFF
    je 2f
    mov si, offset msg_irq
    call print_str
    movzx eax, al
    call print_dec
2:  mov si, offset msg_crlf
    call print_str
    jmp 1b
9:  popad
    ret

/*
 * INT 1Ah AH=B1h — PCI BIOS 2.1, real-mode interface.
 *   B101h installation check: AH = 0, AL = 01h (mechanism #1), BX = 0210h,
 *         CL = last bus (0), EDX = "PCI ", EDI = 0 (no protected-mode entry)
 *   B102h find device: CX = device, DX = vendor, SI = index -> BH:BL bus:devfn
 *   B103h find class code: ECX = class (24 bits), SI = index -> BH:BL
 *   B108h/B109h/B10Ah read config byte/word/dword: BH:BL, DI -> CL/CX/ECX
 *   B10Bh/B10Ch/B10Dh write config byte/word/dword: BH:BL, DI, CL/CX/ECX
 * AH = status (00h, 81h unsupported, 83h bad vendor, 86h not found, 87h bad
 * register), CF = 1 on error.
 */
    .globl int1a_pci
int1a_pci:
    ENTER_SERVICE
    push cs
    pop ds
    call pci_present
    jne pci_unsupported
    mov al, [bp+F_AL]
    cmp al, 0x01
    je pci_install_check
    cmp al, 0x02
    je pci_find_device
    cmp al, 0x03
    je pci_find_class
    cmp al, 0x08
    jb pci_unsupported
    cmp al, 0x0D
    jbe pci_config_access
pci_unsupported:
    mov ah, PCIBIOS_FUNC_NOT_SUPPORTED
pci_fail:
    mov [bp+F_AH], ah
    SET_CF
    LEAVE_SERVICE
pci_ok:
    mov byte ptr [bp+F_AH], PCIBIOS_SUCCESSFUL
    CLEAR_CF
    LEAVE_SERVICE

pci_install_check:
    mov byte ptr [bp+F_AL], 0x01
    mov word ptr [bp+F_BX], 0x0210
    mov byte ptr [bp+F_CL], 0
    mov dword ptr [bp+F_EDX], 0x20494350
    mov dword ptr [bp+F_EDI], 0
    jmp pci_ok

pci_find_device:
    mov ah, PCIBIOS_BAD_VENDOR_ID
    cmp word ptr [bp+F_DX], 0xFFFF
    je pci_fail
    mov ecx, [bp+F_ECX]
    shl ecx, 16
    mov cx, [bp+F_DX]               /* ECX = device:vendor as register 0 reads */
    xor di, di
    mov edx, 0xFFFFFFFF             /* compare all 32 bits */
    jmp pci_search
pci_find_class:
    mov ecx, [bp+F_ECX]
    shl ecx, 8                      /* class code in bits 31:8 of register 8 */
    mov di, 0x08
    mov edx, 0xFFFFFF00
pci_search:
    mov si, [bp+F_SI]               /* how many matches to skip */
    mov bx, 0xFFFF
1:  call pci_next
    jc 8f
    call pci_read32
    and eax, edx
    cmp eax, ecx
    jne 1b
    sub si, 1
    jnc 1b
    mov [bp+F_BX], bx
    jmp pci_ok
8:  mov ah, PCIBIOS_DEVICE_NOT_FOUND
    jmp pci_fail

pci_config_access:
    mov bx, [bp+F_BX]
    mov di, [bp+F_DI]
    mov ah, PCIBIOS_BAD_REGISTER
    cmp di, 0xFF
    ja pci_fail
    mov cl, al                      /* 08h-0Ah read, 0Bh-0Dh write */
    sub cl, 0x08
    cmp cl, 3
    jb 1f
    sub cl, 3
1:  /* CL = 0 byte, 1 word, 2 dword: the register must be aligned to it */
    mov dx, 1
    shl dx, cl
    dec dx
    test di, dx
    jnz pci_fail
    cmp al, 0x0B
    jae 5f
    cmp cl, 0
    jne 2f
    call pci_read8
    mov [bp+F_CL], al
    jmp pci_ok
2:  cmp cl, 1
    jne 3f
    call pci_read16
    mov [bp+F_CX], ax
    jmp pci_ok
3:  call pci_read32
    mov [bp+F_ECX], eax
    jmp pci_ok
5:  mov eax, [bp+F_ECX]
    cmp cl, 0
    jne 6f
    call pci_write8
    jmp pci_ok
6:  cmp cl, 1
    jne 7f
    call pci_write16
    jmp pci_ok
7:  call pci_write32
    jmp pci_ok

    .section .rodata
msg_pci:    .asciz "PCI "
msg_class:  .asciz " class "
msg_irq:    .asciz " IRQ "

/*
 * The PCI IRQ routing table, found by a search of F0000h-FFFFFh for "$PIR" on a
 * 16-byte boundary.  One entry per slot 1-31 of bus 0 (a slot with nothing in
 * it is harmless); each pin's link value is the PIIX3 register that routes it
 * (60h + link), the IRQ bitmap the IRQs a PIRQ register accepts.  The checksum
 * is worked out here at assembly time.
 */
PIR_SLOTS  = 31
PIR_BITMAP = 0xDEB8                 /* IRQ 3-5, 7, 9-12, 14, 15 */
/* The byte sum of the table without its checksum: the header, then per slot its
 * devfn and number, the four link values 60h-63h (each slot's pins use each link
 * once) and four bitmaps. */
PIR_HEADER_SUM = '$' + 'P' + 'I' + 'R' + 0x01 + ((32 + 16 * PIR_SLOTS) & 0xFF) + ((32 + 16 * PIR_SLOTS) >> 8) + 0x08 + 0x86 + 0x80 + 0x70
PIR_SLOT_SUM = 9 * (PIR_SLOTS * (PIR_SLOTS + 1) / 2) + PIR_SLOTS * (4 * 0x60 + 6)
PIR_SUM = PIR_HEADER_SUM + PIR_SLOT_SUM + PIR_SLOTS * 4 * ((PIR_BITMAP & 0xFF) + (PIR_BITMAP >> 8))
    .balign 16
    .globl pir_table
pir_table:
    .ascii "$PIR"
    .word 0x0100                    /* version 1.0 */
    .word 32 + 16 * PIR_SLOTS       /* table size */
    .byte 0                         /* router bus */
    .byte 0x08                      /* router devfn: 01.0 */
    .word 0                         /* PCI-exclusive IRQs: none */
    .long 0x70008086                /* compatible router: PIIX3 */
    .long 0                         /* miniport data */
    .fill 11, 1, 0
    .byte (0x100 - (PIR_SUM & 0xFF)) & 0xFF    /* checksum: all bytes add up to 0 */
    .set pir_slot, 1
    .rept PIR_SLOTS
    .byte 0, pir_slot << 3          /* bus, devfn */
    .set pir_pin, 0
    .rept 4
    .byte 0x60 + ((pir_slot - 1 + pir_pin) & 3)
    .word PIR_BITMAP
    .set pir_pin, pir_pin + 1
    .endr
    .byte pir_slot, 0               /* physical slot number, reserved */
    .set pir_slot, pir_slot + 1
    .endr
