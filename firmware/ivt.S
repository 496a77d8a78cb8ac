/*
 * ivt.S — the interrupt vector table, the 8259A pair, and the handlers of
 * last resort.
 *
 * Real mode takes interrupt N through the far pointer at 0000:(N*4).  POST
 * fills all 256 vectors so that no INT lands on garbage: software vectors get
 * an IRET, unexpected hardware IRQs get an end-of-interrupt (otherwise the
 * PIC would keep that priority level in service and block every lower IRQ),
 * and the BIOS services get their handlers from the table at the end.
 *
 * 8259A reference: Intel 8259A datasheet (ICW1-ICW4, OCW1-OCW3).
 */
    .include "bios.inc"

    .section .text
    .globl ivt_init
ivt_init:
    push es
    xor ax, ax
    mov es, ax
    xor di, di

    /* every vector: IRET */
    mov cx, 256
1:  mov ax, offset int_unused
    stosw
    mov ax, 0xF000
    stosw
    loop 1b

    /* IRQ 0-7 (vectors 08h-0Fh) and IRQ 8-15 (70h-77h): EOI and return */
    mov di, 0x08 * 4
    mov bx, offset irq_unexpected_master
    call fill_8_vectors
    mov di, 0x70 * 4
    mov bx, offset irq_unexpected_slave
    call fill_8_vectors

    /* the BIOS services, from the table below */
    mov si, offset vector_table
2:  movzx di, byte ptr cs:[si]      /* vector number */
    shl di, 2
    mov ax, cs:[si+1]               /* handler offset in F000 */
    mov es:[di], ax
    mov word ptr es:[di+2], 0xF000
    add si, 3
    cmp si, offset vector_table_end
    jb 2b

    /* vectors that point to tables we do not provide: null pointers */
    mov si, offset null_vectors
3:  movzx di, byte ptr cs:[si]
    shl di, 2
    mov dword ptr es:[di], 0
    inc si
    cmp si, offset null_vectors_end
    jb 3b
    pop es
    ret

/* fill_8_vectors: ES:DI = first of 8 IVT entries, BX = handler offset. */
fill_8_vectors:
    mov cx, 8
1:  mov ax, bx
    stosw
    mov ax, 0xF000
    stosw
    loop 1b
    ret

/*
 * pic_init: remap the 8259A pair as the PC/AT BIOS does: IRQ 0-7 on vectors
 * 08h-0Fh, IRQ 8-15 on 70h-77h.  Only the timer (IRQ 0), the keyboard (IRQ 1)
 * and the cascade (IRQ 2) are unmasked: the BIOS polls the disk and the UART.
 */
    .globl pic_init
pic_init:
    mov al, 0x11                    /* ICW1: edge triggered, cascade, ICW4 follows */
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, 0x08                    /* ICW2: vector base */
    out PIC1_DATA, al
    mov al, 0x70
    out PIC2_DATA, al
    mov al, 0x04                    /* ICW3: master has a slave on IRQ 2 ... */
    out PIC1_DATA, al
    mov al, 0x02                    /* ... and the slave's cascade identity is 2 */
    out PIC2_DATA, al
    mov al, 0x01                    /* ICW4: 8086 mode, normal EOI */
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xF8                    /* OCW1: IMR, unmask IRQ 0, 1, 2 */
    out PIC1_DATA, al
    mov al, 0xFF                    /* slave: all masked */
    out PIC2_DATA, al
    ret

/* ------------------------------------------------ handlers of last resort */

    .globl int_unused
int_unused:
    iret

/*
 * An IRQ nobody asked for.  If the master's in-service register is empty the
 * interrupt was spurious (the 8259 reports IRQ 7 when a request vanished
 * before the acknowledge) and must not be acknowledged.
 */
irq_unexpected_master:
    push ax
    mov al, 0x0B                    /* OCW3: next read of port 20h returns ISR */
    out PIC1_CMD, al
    in al, PIC1_CMD
    test al, al
    jz 1f
    mov al, PIC_EOI
    out PIC1_CMD, al
1:  pop ax
    iret

irq_unexpected_slave:
    push ax
    mov al, PIC_EOI                 /* slave first, then the master's IRQ 2 */
    out PIC2_CMD, al
    out PIC1_CMD, al
    pop ax
    iret

/* INT 11h: AX = equipment word (BDA 0x410). */
int11_equipment:
    push ds
    push BDA_SEG
    pop ds
    mov ax, ds:[BDA_EQUIPMENT]
    pop ds
    iret

/* INT 12h: AX = KiB of conventional memory below the EBDA (BDA 0x413). */
int12_memory_size:
    push ds
    push BDA_SEG
    pop ds
    mov ax, ds:[BDA_MEMORY_KB]
    pop ds
    iret

/* INT 17h (printer) and INT 14h (serial) services: no printer; AH = 0x80
 * ("time-out / not busy") for the printer. */
int17_printer:
    mov ah, 0x80
    iret

    .section .rodata
/* vector, handler: the services this BIOS provides */
vector_table:
    .byte 0x08
    .word int08_timer               /* time.S */
    .byte 0x0E
    .word int0e_floppy              /* floppy.S */
    .byte 0x09
    .word int09_keyboard            /* keyboard.S */
    .byte 0x10
    .word int10_video               /* video.S */
    .byte 0x11
    .word int11_equipment
    .byte 0x12
    .word int12_memory_size
    .byte 0x13
    .word int13_disk                /* disk.S */
    .byte 0x14
    .word int14_serial              /* serial.S */
    .byte 0x15
    .word int15_system              /* memory.S */
    .byte 0x16
    .word int16_keyboard            /* keyboard.S */
    .byte 0x17
    .word int17_printer
    .byte 0x18
    .word int18_boot_failure        /* boot.S */
    .byte 0x19
    .word int19_bootstrap           /* boot.S */
    .byte 0x1A
    .word int1a_time                /* time.S */
    .byte 0x1C
    .word int_unused                /* user timer tick hook: chained by INT 08h */
vector_table_end:

/* 1Dh video parameters, 1Fh graphics font, 41h/46h fixed disk parameters,
 * 43h EGA font: none in this BIOS (1Eh, the diskette parameters: floppy.S). */
null_vectors:
    .byte 0x1D, 0x1F, 0x41, 0x43, 0x46
null_vectors_end:
