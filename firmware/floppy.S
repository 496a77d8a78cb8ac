/*
 * floppy.S — drive A: (INT 13h drive 00h) through the 82077AA-compatible
 * floppy controller at 3F0h, its IRQ 6 and DMA channel 2 of the 8237.
 *
 * Sources: Intel 82077AA datasheet (DOR 3F2h, MSR 3F4h, FIFO 3F5h, DIR/CCR
 * 3F7h; SPECIFY, RECALIBRATE, SEEK, SENSE INTERRUPT STATUS, READ DATA, WRITE
 * DATA and their ST0-ST2 results); Intel 8237A datasheet (mask 0Ah, mode 0Bh,
 * flip-flop 0Ch, channel 2 address 04h / count 05h, page register 81h); IBM
 * PC/AT Technical Reference for the BIOS side (INT 0Eh, BDA 43Eh-441h, the
 * diskette parameter table at INT 1Eh, INT 13h statuses).
 *
 * The drive type comes from CMOS 10h (high nibble, drive A:): 1 = 360 KiB,
 * 2 = 1.2 MiB, 3 = 720 KiB, 4 = 1.44 MiB, 5 = 2.88 MiB; 0 = no drive, and
 * then every drive-00h call fails with AH = 01h as before.
 *
 * Transfers go one sector at a time: seek if the cylinder changes, program
 * DMA channel 2 for 512 bytes, READ/WRITE DATA with EOT = that sector, wait
 * for IRQ 6 (HLT, at most 2 s by the tick count), read the 7 result bytes.
 * A sector that would cross a 64 KiB boundary fails with AH = 09h, as DMA
 * cannot carry it (the caller retries with another buffer, as on a PC).
 * A read may run across heads and cylinders: the next sector after the last
 * of a track is sector 1 of the next head, then of the next cylinder.
 * Verify (AH=04h) reads into the EBDA scratch sector.  Format (AH=05h) is
 * one FORMAT TRACK whose address fields DMA reads from the caller's table;
 * the controller fills the sectors with F6h.
 *
 * Statuses: 00h ok, 01h bad function/parameter/drive, 03h write protected,
 * 04h sector not found, 06h disk changed (AH=16h only), 08h DMA overrun,
 * 09h DMA 64 KiB boundary, 20h controller failure, 80h time-out (no answer).
 * The motor is switched on for the first access and left on.
 */
    .include "bios.inc"

FDC_DOR   = 0x3F2
FDC_MSR   = 0x3F4
FDC_FIFO  = 0x3F5
FDC_DIR   = 0x3F7                   /* read: bit 7 disk change */
FDC_CCR   = 0x3F7                   /* write: data rate */
DOR_MOTOR_A_ON = 0x1C               /* motor A, DMA/IRQ gate, not reset, drive 0 */
MSR_RQM   = 0x80
MSR_DIO   = 0x40
DMA_MASK  = 0x0A
DMA_MODE  = 0x0B
DMA_FLIPFLOP = 0x0C
DMA_CH2_ADDR = 0x04
DMA_CH2_COUNT = 0x05
DMA_CH2_PAGE = 0x81
DMA_MODE_TO_MEMORY = 0x46           /* single, increment, write (device -> memory), ch 2 */
DMA_MODE_FROM_MEMORY = 0x4A         /* single, increment, read (memory -> device), ch 2 */
FDC_READ  = 0xE6                    /* READ DATA, MT MFM SK */
FDC_WRITE = 0xC5                    /* WRITE DATA, MT MFM */
FDC_FORMAT = 0x4D                   /* FORMAT TRACK, MFM */
FDC_FILL_BYTE = 0xF6                /* the parameter tables' fill byte */
BDA_FLOPPY_RECAL = 0x3E             /* bit 7: IRQ 6 seen */
BDA_FLOPPY_MOTOR = 0x3F
BDA_FLOPPY_RESULTS = 0x42           /* 7 bytes: the controller's last result phase */
IRQ_TIMEOUT_TICKS = 37              /* 2 s */

    .section .text

/* floppy_init (POST): drive A: from CMOS; IRQ 6 on; controller reset. */
    .globl floppy_init
floppy_init:
    push es
    call ebda_fs
    mov al, 0x10
    call cmos_read
    shr al, 4
    cmp al, 5
    jbe 1f
    xor al, al                      /* an unknown type: no drive */
1:  mov fs:[EBDA_FLOPPY_TYPE], al
    mov byte ptr fs:[EBDA_FLOPPY_CYL], 0xFF
    xor bx, bx
    mov es, bx
    mov word ptr es:[0x1E * 4], offset dpt_1440  /* INT 1Eh: diskette parameters */
    mov word ptr es:[0x1E * 4 + 2], 0xF000
    test al, al
    jz 9f
    cmp al, 5
    jne 2f
    mov word ptr es:[0x1E * 4], offset dpt_2880
2:  or byte ptr es:[0x400 + BDA_EQUIPMENT], 0x01  /* one floppy drive (bits 7-6 = 0) */
    in al, PIC1_DATA                /* unmask IRQ 6 */
    and al, 0xBF
    out PIC1_DATA, al
    call fdc_reset
9:  pop es
    ret

/* INT 0Eh (IRQ 6): note it for fdc_wait_irq, end of interrupt. */
    .globl int0e_floppy
int0e_floppy:
    push ax
    push ds
    push BDA_SEG
    pop ds
    or byte ptr ds:[BDA_FLOPPY_RECAL], 0x80
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop ds
    pop ax
    iret

/* fdc_irq_clear: forget an earlier IRQ 6 before starting a command. */
fdc_irq_clear:
    push ds
    push BDA_SEG
    pop ds
    and byte ptr ds:[BDA_FLOPPY_RECAL], 0x7F
    pop ds
    ret

/* fdc_wait_irq: wait for IRQ 6 (at most 2 s of ticks); CF = 1 on time-out. */
fdc_wait_irq:
    push ds
    push eax
    push BDA_SEG
    pop ds
    mov eax, ds:[BDA_TICKS]
    add eax, IRQ_TIMEOUT_TICKS
1:  cli
    test byte ptr ds:[BDA_FLOPPY_RECAL], 0x80
    jnz 2f
    cmp eax, ds:[BDA_TICKS]
    jb 3f
    sti
    hlt                             /* STI's shadow: the IRQ cannot slip in before HLT */
    jmp 1b
2:  and byte ptr ds:[BDA_FLOPPY_RECAL], 0x7F
    sti
    clc
    jmp 4f
3:  sti
    stc
4:  pop eax
    pop ds
    ret

/* fdc_send: AL to the FIFO when the controller asks for a byte; CF = 1 on time-out. */
fdc_send:
    push cx
    push dx
    push ax
    mov dx, FDC_MSR
    mov cx, 0xFFFF
1:  in al, dx
    and al, MSR_RQM | MSR_DIO
    cmp al, MSR_RQM
    je 2f
    loop 1b
    pop ax
    stc
    jmp 3f
2:  pop ax
    mov dx, FDC_FIFO
    out dx, al
    clc
3:  pop dx
    pop cx
    ret

/* fdc_recv: AL = the next result byte; CF = 1 on time-out. */
fdc_recv:
    push cx
    push dx
    mov dx, FDC_MSR
    mov cx, 0xFFFF
1:  in al, dx
    and al, MSR_RQM | MSR_DIO
    cmp al, MSR_RQM | MSR_DIO
    je 2f
    loop 1b
    stc
    jmp 3f
2:  mov dx, FDC_FIFO
    in al, dx
    clc
3:  pop dx
    pop cx
    ret

/* fdc_sense: SENSE INTERRUPT STATUS -> AL = ST0, AH = cylinder; CF on time-out. */
fdc_sense:
    mov al, 0x08
    call fdc_send
    jc 1f
    call fdc_recv
    jc 1f
    mov ah, al
    call fdc_recv
    xchg al, ah
1:  ret

/* fdc_reset: reset pulse, the 4 polling interrupts, SPECIFY, RECALIBRATE.
 * AH = 00h, or 80h (CF = 1) if the controller does not answer. */
fdc_reset:
    push cx
    push dx
    call fdc_irq_clear
    mov dx, FDC_DOR
    mov al, 0x08                    /* reset asserted, DMA/IRQ gate on */
    out dx, al
    mov al, 0x0C
    out dx, al
    call fdc_wait_irq
    jc 8f
    mov cx, 4
1:  call fdc_sense
    jc 8f
    loop 1b
    mov al, 0x03                    /* SPECIFY: step rate D, head unload F, head load 1, DMA */
    call fdc_send
    mov al, 0xDF
    call fdc_send
    mov al, 0x02
    call fdc_send
    jc 8f
    call fdc_motor_on
    call fdc_irq_clear
    mov al, 0x07                    /* RECALIBRATE drive 0 */
    call fdc_send
    xor al, al
    call fdc_send
    jc 8f
    call fdc_wait_irq
    jc 8f
    call fdc_sense
    jc 8f
    push fs
    call ebda_fs
    mov byte ptr fs:[EBDA_FLOPPY_CYL], 0
    pop fs
    xor ah, ah
    clc
    jmp 9f
8:  mov ah, 0x80
    stc
9:  pop dx
    pop cx
    ret

/* fdc_motor_on: drive A: selected with its motor on; data rate for its type. */
fdc_motor_on:
    push ax
    push bx
    push dx
    push ds
    push BDA_SEG
    pop ds
    or byte ptr ds:[BDA_FLOPPY_MOTOR], 0x01
    pop ds
    mov dx, FDC_DOR
    mov al, DOR_MOTOR_A_ON
    out dx, al
    call floppy_geometry            /* BX = its table entry */
    mov al, cs:[bx+3]
    mov dx, FDC_CCR
    out dx, al
    pop dx
    pop bx
    pop ax
    ret

/* floppy_geometry: BX = offset of the geometry entry for drive A:'s type. */
floppy_geometry:
    push fs
    call ebda_fs
    movzx bx, byte ptr fs:[EBDA_FLOPPY_TYPE]
    pop fs
    shl bx, 2
    add bx, offset floppy_geometries
    ret

/* fdc_seek: to cylinder CH with head DH (skipped if already there); AH = status. */
fdc_seek:
    push fs
    call ebda_fs
    cmp ch, fs:[EBDA_FLOPPY_CYL]
    je 7f
    call fdc_irq_clear
    mov al, 0x0F
    call fdc_send
    mov al, dh
    shl al, 2
    call fdc_send
    mov al, ch
    call fdc_send
    jc 8f
    call fdc_wait_irq
    jc 8f
    call fdc_sense
    jc 8f
    and al, 0xE0
    cmp al, 0x20                    /* seek end, normal termination */
    jne 6f
    cmp ah, ch
    jne 6f
    mov fs:[EBDA_FLOPPY_CYL], ch
7:  xor ah, ah
    jmp 9f
6:  mov byte ptr fs:[EBDA_FLOPPY_CYL], 0xFF
    mov ah, 0x40                    /* seek failed */
    jmp 9f
8:  mov byte ptr fs:[EBDA_FLOPPY_CYL], 0xFF
    mov ah, 0x80
9:  pop fs
    ret

/*
 * fdc_transfer: one sector.  CH = cylinder, DH = head, CL = sector,
 * EDI = physical buffer address, BL = FDC command (FDC_READ/FDC_WRITE),
 * BH = DMA mode.  AH = INT 13h status.
 */
fdc_transfer:
    push ecx
    push edx
    push edi
    call fdc_seek
    test ah, ah
    jnz 9f
    mov eax, edi                    /* does the sector cross a 64 KiB boundary? */
    and eax, 0xFFFF
    cmp eax, 0x10000 - 512
    jbe 1f
    mov ah, 0x09
    jmp 9f
1:  mov al, 0x06                    /* mask channel 2 while programming it */
    out DMA_MASK, al
    out DMA_FLIPFLOP, al
    mov al, bh
    out DMA_MODE, al
    mov eax, edi
    out DMA_CH2_ADDR, al
    mov al, ah
    out DMA_CH2_ADDR, al
    shr eax, 16
    out DMA_CH2_PAGE, al
    mov al, 0xFF                    /* 512 - 1 */
    out DMA_CH2_COUNT, al
    mov al, 0x01
    out DMA_CH2_COUNT, al
    mov al, 0x02                    /* unmask channel 2 */
    out DMA_MASK, al
    call fdc_irq_clear
    mov al, bl                      /* the command and its 8 parameters */
    call fdc_send
    mov al, dh
    shl al, 2                       /* head, drive 0 */
    call fdc_send
    mov al, ch
    call fdc_send
    mov al, dh
    call fdc_send
    mov al, cl
    call fdc_send
    mov al, 2                       /* 512-byte sectors */
    call fdc_send
    mov al, cl                      /* EOT: this sector */
    call fdc_send
    mov al, 0x1B                    /* gap length */
    call fdc_send
    mov al, 0xFF                    /* data length (unused with N = 2) */
    call fdc_send
    jc 8f
fdc_finish:                         /* (fdc_format joins here, with the same pushes) */
    call fdc_wait_irq
    jc 8f
    push es
    push BDA_SEG
    pop es
    mov di, BDA_FLOPPY_RESULTS
    mov cx, 7
2:  call fdc_recv
    jc 7f
    stosb
    loop 2b
    pop es
    push ds
    push BDA_SEG
    pop ds
    mov al, ds:[BDA_FLOPPY_RESULTS]     /* ST0 */
    mov ah, ds:[BDA_FLOPPY_RESULTS + 1] /* ST1 */
    pop ds
    test al, 0xC0
    jz 6f
    mov al, ah
    mov ah, 0x03                    /* ST1 NW: write protected */
    test al, 0x02
    jnz 9f
    mov ah, 0x04                    /* ST1 ND/MA: sector not found */
    test al, 0x05
    jnz 9f
    mov ah, 0x08                    /* ST1 OR: DMA overrun */
    test al, 0x10
    jnz 9f
    mov ah, 0x20
    jmp 9f
6:  xor ah, ah
    jmp 9f
7:  pop es
fdc_fail:
8:  call fdc_reset                  /* no answer: start the controller afresh */
    mov ah, 0x80
fdc_done:
9:  pop edi
    pop edx
    pop ecx
    ret

/*
 * fdc_format: FORMAT TRACK.  CH = cylinder, DH = head, DL = sectors per track,
 * EDI = physical address of the address fields (C, H, R, N per sector, read by
 * DMA channel 2).  Gap and fill byte as the diskette parameter table gives
 * them for drive A:'s type.  AH = INT 13h status.
 */
fdc_format:
    push ecx
    push edx
    push edi
    call fdc_seek
    test ah, ah
    jnz fdc_done
    movzx ebx, dl
    shl ebx, 2                      /* EBX = bytes of address fields */
    mov eax, edi                    /* may not cross a 64 KiB boundary */
    and eax, 0xFFFF
    add eax, ebx
    cmp eax, 0x10000
    jbe 1f
    mov ah, 0x09
    jmp fdc_done
1:  mov al, 0x06                    /* mask channel 2 while programming it */
    out DMA_MASK, al
    out DMA_FLIPFLOP, al
    mov al, DMA_MODE_FROM_MEMORY
    out DMA_MODE, al
    mov eax, edi
    out DMA_CH2_ADDR, al
    mov al, ah
    out DMA_CH2_ADDR, al
    shr eax, 16
    out DMA_CH2_PAGE, al
    mov ax, bx
    dec ax
    out DMA_CH2_COUNT, al
    mov al, ah
    out DMA_CH2_COUNT, al
    mov al, 0x02                    /* unmask channel 2 */
    out DMA_MASK, al
    call fdc_irq_clear
    mov al, FDC_FORMAT
    call fdc_send
    mov al, dh
    shl al, 2                       /* head, drive 0 */
    call fdc_send
    mov al, 2                       /* 512-byte sectors */
    call fdc_send
    mov al, dl                      /* sectors per track */
    call fdc_send
    push fs
    call ebda_fs
    movzx bx, byte ptr fs:[EBDA_FLOPPY_TYPE]
    pop fs
    mov al, cs:[floppy_format_gaps + bx]
    call fdc_send
    mov al, FDC_FILL_BYTE
    call fdc_send
    jc fdc_fail
    jmp fdc_finish

/* ------------------------------------------------------------ INT 13h */
/*
 * floppy_int13: INT 13h for DL < 80h, entered from disk.S with the service
 * frame at BP and FS = EBDA; leaves through d_return (AH = status).
 */
    .globl floppy_int13
floppy_int13:
    cmp byte ptr [bp+F_DL], 0
    jne f_bad
    cmp byte ptr fs:[EBDA_FLOPPY_TYPE], 0
    je f_bad
    mov ah, [bp+F_AH]
    cmp ah, 0x00
    je f_reset
    cmp ah, 0x01
    je f_status
    cmp ah, 0x02
    je f_read
    cmp ah, 0x03
    je f_write
    cmp ah, 0x04
    je f_verify
    cmp ah, 0x05
    je f_format
    cmp ah, 0x08
    je f_parameters
    cmp ah, 0x15
    je f_type
    cmp ah, 0x16
    je f_change_line
    cmp ah, 0x17
    je f_success
    cmp ah, 0x18
    je f_set_media
f_bad:
    mov ah, 0x01
    jmp d_return
f_success:
    xor ah, ah
    jmp d_return

f_reset:
    call fdc_reset
    jmp d_return

f_status:
    push ds
    push BDA_SEG
    pop ds
    mov ah, ds:[BDA_FLOPPY_STATUS]
    pop ds
    mov [bp+F_AL], ah
    jmp d_return

/* AH=08h: BL = type, CH/CL/DH = last cylinder/sectors/last head, DL = 1 drive,
 * ES:DI = the diskette parameter table, AX = 0. */
f_parameters:
    call floppy_geometry
    mov al, fs:[EBDA_FLOPPY_TYPE]
    mov [bp+F_BL], al
    mov al, cs:[bx]
    mov [bp+F_CH], al
    mov al, cs:[bx+2]
    mov [bp+F_CL], al
    mov al, cs:[bx+1]
    mov [bp+F_DH], al
    mov byte ptr [bp+F_DL], 1
    mov word ptr [bp+F_ES], 0xF000
    mov word ptr [bp+F_DI], offset dpt_1440
    cmp byte ptr fs:[EBDA_FLOPPY_TYPE], 5
    jne 1f
    mov word ptr [bp+F_DI], offset dpt_2880
1:  mov byte ptr [bp+F_AL], 0
    jmp f_success

/* AH=15h: AH = 02h, a floppy drive that reports disk changes. */
f_type:
    mov byte ptr [bp+F_AH], 0x02
    CLEAR_CF
    jmp d_leave

/* AH=16h: AH = 06h (CF = 1) if the disk was changed since the last access. */
f_change_line:
    call fdc_motor_on
    mov dx, FDC_DIR
    in al, dx
    test al, 0x80
    jz f_success
    mov byte ptr fs:[EBDA_FLOPPY_CYL], 0xFF  /* the next access seeks, which clears it */
    mov ah, 0x06
    jmp d_return

/* AH=18h: set media type for format -> ES:DI = the parameter table. */
f_set_media:
    mov word ptr [bp+F_ES], 0xF000
    mov word ptr [bp+F_DI], offset dpt_1440
    jmp f_success

f_read:
    mov bx, (DMA_MODE_TO_MEMORY << 8) | FDC_READ
    jmp f_rw
f_write:
    mov bx, (DMA_MODE_FROM_MEMORY << 8) | FDC_WRITE
    jmp f_rw
f_verify:
    mov bx, (DMA_MODE_TO_MEMORY << 8) | FDC_READ
/*
 * AH=02h/03h/04h: AL = sectors, CH = cylinder, CL = sector, DH = head,
 * ES:BX = buffer -> AL = sectors done.
 */
f_rw:
    movzx si, byte ptr [bp+F_AL]
    mov byte ptr [bp+F_AL], 0
    test si, si
    jz f_bad
    mov cx, [bp+F_CX]
    mov dh, [bp+F_DH]
    push bx
    call floppy_geometry
    mov di, bx
    pop bx
    mov al, cl                      /* sector 1..sectors per track */
    and al, 0x3F
    jz f_not_found
    cmp al, cs:[di+2]
    ja f_not_found
    cmp dh, cs:[di+1]
    ja f_not_found
    test cl, 0xC0
    jnz f_not_found
    cmp ch, cs:[di]
    ja f_not_found
    movzx edi, word ptr [bp+F_ES]   /* EDI = the buffer's physical address */
    shl edi, 4
    movzx eax, word ptr [bp+F_BX]
    add edi, eax
    cmp byte ptr [bp+F_AH], 0x04
    jne 1f
    mov di, fs                      /* verify: into the EBDA scratch sector */
    movzx edi, di
    shl edi, 4
    add edi, EBDA_SCRATCH
1:  call fdc_motor_on
2:  call fdc_transfer
    test ah, ah
    jnz d_return
    inc byte ptr [bp+F_AL]
    dec si
    jz d_return
    cmp byte ptr [bp+F_AH], 0x04
    je 3f
    add edi, 512
3:  push bx                         /* the next sector: sector, head, cylinder */
    call floppy_geometry
    inc cl
    cmp cl, cs:[bx+2]
    jbe 4f
    mov cl, 1
    inc dh
    cmp dh, cs:[bx+1]
    jbe 4f
    xor dh, dh
    inc ch
    cmp ch, cs:[bx]
    jbe 4f
    pop bx
    jmp f_not_found
4:  pop bx
    jmp 2b
f_not_found:
    mov ah, 0x04
    jmp d_return

/*
 * AH=05h: format cylinder CH, head DH with the address fields at ES:BX
 * (C, H, R, N for each sector).  AL is ignored: the track gets the medium's
 * sectors per track, as the diskette parameter table says.
 */
f_format:
    mov cx, [bp+F_CX]
    mov dh, [bp+F_DH]
    call floppy_geometry
    cmp dh, cs:[bx+1]
    ja f_not_found
    cmp ch, cs:[bx]
    ja f_not_found
    mov dl, cs:[bx+2]
    movzx edi, word ptr [bp+F_ES]   /* EDI = the table's physical address */
    shl edi, 4
    movzx eax, word ptr [bp+F_BX]
    add edi, eax
    call fdc_motor_on
    call fdc_format
    jmp d_return

    .section .rodata
/* per CMOS type 0-5: last cylinder, last head, sectors per track, data rate */
floppy_geometries:
    .byte 0, 0, 0, 0
    .byte 39, 1, 9, 2                /* 1: 360 KiB, 250 kbit/s */
    .byte 79, 1, 15, 0               /* 2: 1.2 MiB, 500 kbit/s */
    .byte 79, 1, 9, 2                /* 3: 720 KiB, 250 kbit/s */
    .byte 79, 1, 18, 0               /* 4: 1.44 MiB, 500 kbit/s */
    .byte 79, 1, 36, 3               /* 5: 2.88 MiB, 1 Mbit/s */

/* FORMAT TRACK's gap length per CMOS type (as the parameter tables' format gap) */
floppy_format_gaps:
    .byte 0, 0x50, 0x54, 0x50, 0x6C, 0x54

/* The diskette parameter tables (INT 1Eh): specify bytes, motor-off delay,
 * bytes per sector code, sectors per track, gap, data length, format gap,
 * fill byte, head settle (ms), motor start (1/8 s). */
dpt_1440:
    .byte 0xDF, 0x02, 0x25, 0x02, 18, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08
dpt_2880:
    .byte 0xDF, 0x02, 0x25, 0x02, 36, 0x1B, 0xFF, 0x54, 0xF6, 0x0F, 0x08
