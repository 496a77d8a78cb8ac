/*
 * ata.S — the ATA (IDE) driver: primary channel, polled PIO, no interrupts.
 *
 * The channel has a master and a slave, chosen by bit 4 of the device
 * register (1F6h).  A command is: wait until the status register (1F7h) says
 * not BSY, select the device, write sector count and LBA (1F2h-1F5h), write
 * the command (1F7h), then for every sector wait for BSY = 0 / DRQ = 1 and
 * move 256 words through the data port (1F0h).
 *
 *   LBA28: device = E0h | dev | LBA[27:24]; count (0 = 256); LBA[7:0], [15:8], [23:16]
 *   LBA48: device = 40h | dev; each of count/LBA0/LBA1/LBA2 written twice:
 *          first the high halves (count[15:8], LBA[31:24], [39:32], [47:40]),
 *          then the low halves (count[7:0], LBA[7:0], [15:8], [23:16])
 *
 * Reference: ATA/ATAPI-6 (T13/1410D), sections 6 (protocols) and 8 (commands).
 */
    .include "bios.inc"

    .section .text

ATA_TIMEOUT = 0x100000              /* status polls before we give up */

/* ata_delay400: four reads of the alternate status take the 400 ns a device
 * needs to put its status on the bus after being selected. */
ata_delay400:
    push ax
    push dx
    mov dx, ATA_CONTROL
    in al, dx
    in al, dx
    in al, dx
    in al, dx
    pop dx
    pop ax
    ret

/* ata_wait_not_busy: AL = status once BSY is clear.  CF = 1 on time-out, or
 * if the status reads FFh (nothing drives the bus: no controller/device). */
ata_wait_not_busy:
    push ecx
    push dx
    mov dx, ATA_STATUS
    mov ecx, ATA_TIMEOUT
1:  in al, dx
    cmp al, 0xFF
    je 3f
    test al, ATA_SR_BSY
    jz 2f
    dec ecx
    jnz 1b
3:  stc
    jmp 4f
2:  clc
4:  pop dx
    pop ecx
    ret

/* ata_reset: pulse SRST in the device control register, leaving nIEN set
 * (device interrupts off: we poll), then wait for the devices to be ready. */
    .globl ata_reset
ata_reset:
    push ax
    push dx
    mov dx, ATA_CONTROL
    mov al, 0x06                    /* SRST | nIEN */
    out dx, al
    call ata_delay400
    mov al, 0x02                    /* nIEN */
    out dx, al
    call ata_delay400
    call ata_wait_not_busy
    pop dx
    pop ax
    ret

/*
 * ata_identify: AL = device register value (A0h master, B0h slave),
 * ES:DI = 512-byte buffer.  CF = 0 and the IDENTIFY DEVICE data in the buffer
 * if an ATA disk answers; CF = 1 for no device, or an ATAPI/SATA signature.
 */
ata_identify:
    pusha
    mov dx, ATA_DEVICE
    out dx, al
    call ata_delay400
    mov dx, ATA_STATUS
    in al, dx
    test al, al                     /* 00h: nobody there (QEMU's missing slave) */
    jz 8f
    call ata_wait_not_busy          /* FFh or stuck: nobody there either */
    jc 8f
    xor al, al
    mov dx, ATA_COUNT
    out dx, al
    inc dx
    out dx, al                      /* LBA0 */
    inc dx
    out dx, al                      /* LBA1 */
    inc dx
    out dx, al                      /* LBA2 */
    mov dx, ATA_COMMAND
    mov al, ATA_CMD_IDENTIFY
    out dx, al
    call ata_delay400
    mov dx, ATA_STATUS
    in al, dx
    test al, al
    jz 8f
    call ata_wait_not_busy
    jc 8f
    mov dx, ATA_LBA1                /* packet devices put 14h/EBh here */
    in al, dx
    mov bl, al
    mov dx, ATA_LBA2
    in al, dx
    or bl, al
    jnz 8f
    mov dx, ATA_STATUS
    in al, dx
    test al, ATA_SR_ERR
    jnz 8f
    test al, ATA_SR_DRQ
    jz 8f
    mov cx, 256
    mov dx, ATA_DATA
    rep insw
    popa
    clc
    ret
8:  popa
    stc
    ret

/*
 * ata_detect: IDENTIFY the master and the slave; every ATA disk that answers
 * gets an entry in the drive table (EBDA_DRIVES), in that order, and becomes
 * INT 13h drive 80h, 81h.  Its BIOS geometry is the usual "LBA-assisted
 * translation": 63 sectors per track, and the fewest heads out of 16, 32, 64,
 * 128, 255 that keep the cylinder count at or below 1024.
 */
    .globl ata_detect
ata_detect:
    pushad
    push es
    call ebda_fs
    call ata_reset
    mov byte ptr fs:[EBDA_HD_COUNT], 0
    mov bp, EBDA_DRIVES             /* BP = next free table entry (FS-relative) */
    mov al, 0xA0
    call detect_one
    mov al, 0xB0
    call detect_one
    mov al, fs:[EBDA_HD_COUNT]
    push BDA_SEG
    pop es
    mov es:[BDA_DISK_COUNT], al
    pop es
    popad
    ret

/* detect_one: AL = device register value; BP = table entry to fill. */
detect_one:
    push fs
    pop es
    mov di, EBDA_SCRATCH
    mov bl, al
    call ata_identify
    jc 9f
    mov fs:[bp+DRIVE_SELECT], bl
    /* capacity: word 83 bit 10 = 48-bit LBA, words 100-103; else words 60-61 */
    test byte ptr fs:[EBDA_SCRATCH + 83*2 + 1], 0x04
    jz 1f
    mov byte ptr fs:[bp+DRIVE_LBA48], 1
    mov eax, fs:[EBDA_SCRATCH + 100*2]
    mov edx, fs:[EBDA_SCRATCH + 102*2]
    jmp 2f
1:  mov byte ptr fs:[bp+DRIVE_LBA48], 0
    mov eax, fs:[EBDA_SCRATCH + 60*2]
    xor edx, edx
2:  mov ecx, eax
    or ecx, edx
    jz 9f                           /* no LBA capacity: not a disk we can use */
    mov fs:[bp+DRIVE_SECTORS], eax
    mov fs:[bp+DRIVE_SECTORS+4], edx

    /* translated geometry */
    mov word ptr fs:[bp+DRIVE_SPT], 63
    mov ebx, 16                     /* heads */
    test edx, edx
    jnz 5f                          /* beyond 2^32 sectors: 255 heads */
3:  imul ecx, ebx, 1024 * 63        /* sectors addressable with this many heads */
    cmp eax, ecx
    jbe 6f
    shl ebx, 1
    cmp ebx, 256
    jb 3b
5:  mov ebx, 255
6:  mov fs:[bp+DRIVE_HEADS], bx
    mov ecx, 1024                   /* cylinders = sectors / (heads * 63), max 1024 */
    test edx, edx
    jnz 7f
    imul ebx, ebx, 63
    xor edx, edx
    div ebx
    cmp eax, ecx
    jae 7f
    mov ecx, eax
    test ecx, ecx
    jnz 7f
    inc ecx                         /* a disk smaller than one cylinder */
7:  mov fs:[bp+DRIVE_CYLS], cx
    inc byte ptr fs:[EBDA_HD_COUNT]
    add bp, DRIVE_SIZE
9:  ret

/*
 * ata_rw: carry out the request in the EBDA (EBDA_REQ_*: drive, LBA, count,
 * buffer, read/write/verify).  FS = EBDA.  The caller has checked the range.
 * Out: AH = INT 13h status (00h done, 04h sector not found, 10h read error,
 * 20h controller failure, 80h time-out, CCh write fault), CF = (AH != 0);
 * EBDA_REQ_DONE = sectors transferred.
 */
    .globl ata_rw
ata_rw:
    pushad
    push ds
    push es
    mov byte ptr fs:[EBDA_REQ_STATUS], 0
    mov word ptr fs:[EBDA_REQ_DONE], 0
    mov si, fs:[EBDA_REQ_DRIVE]
    movzx ecx, word ptr fs:[EBDA_REQ_COUNT]
    test ecx, ecx                   /* nothing to do */
    jz 90f
    call ata_wait_not_busy
    jc 80f
    mov ebp, fs:[EBDA_REQ_LBA]      /* EBP = LBA[31:0] */
    mov edx, fs:[EBDA_REQ_LBA+4]    /* DX = LBA[47:32] */
    /* LBA28 reaches sectors below 2^28, at most 256 at a time */
    mov ebx, ebp
    add ebx, ecx                    /* EBX = first sector after the request */
    jc 20f
    test edx, edx
    jnz 20f
    cmp ebx, 0x10000000
    ja 20f
    cmp ecx, 256
    ja 20f

    mov di, offset ata_commands_28
    mov eax, ebp
    shr eax, 24
    and al, 0x0F                    /* LBA[27:24] go in the device register */
    mov ah, fs:[si+DRIVE_SELECT]
    and ah, 0x10                    /* with the master/slave bit */
    or al, ah
    or al, 0xE0                     /* and LBA mode (bits 7, 5: always 1) */
    mov dx, ATA_DEVICE
    out dx, al
    call ata_delay400
    call ata_wait_not_busy
    jc 80f
    mov dx, ATA_COUNT
    mov al, cl                      /* 256 sectors is written as 0 */
    out dx, al
    mov eax, ebp
    inc dx
    out dx, al                      /* LBA0 = LBA[7:0] */
    inc dx
    mov al, ah
    out dx, al                      /* LBA1 = LBA[15:8] */
    inc dx
    shr eax, 16
    out dx, al                      /* LBA2 = LBA[23:16] */
    jmp 30f

20: /* LBA48 */
    cmp byte ptr fs:[si+DRIVE_LBA48], 0
    je 81f
    mov di, offset ata_commands_48
    mov bx, dx                      /* BX = LBA[47:32] */
    mov al, fs:[si+DRIVE_SELECT]
    and al, 0x10
    or al, 0x40                     /* LBA mode, no address bits here */
    mov dx, ATA_DEVICE
    out dx, al
    call ata_delay400
    call ata_wait_not_busy
    jc 80f
    mov dx, ATA_COUNT               /* first the high halves ... */
    mov al, ch
    out dx, al                      /* count[15:8] */
    inc dx
    mov eax, ebp
    shr eax, 24
    out dx, al                      /* LBA[31:24] */
    inc dx
    mov al, bl
    out dx, al                      /* LBA[39:32] */
    inc dx
    mov al, bh
    out dx, al                      /* LBA[47:40] */
    mov dx, ATA_COUNT               /* ... then the low halves */
    mov al, cl
    out dx, al                      /* count[7:0] */
    inc dx
    mov eax, ebp
    out dx, al                      /* LBA[7:0] */
    inc dx
    mov al, ah
    out dx, al                      /* LBA[15:8] */
    inc dx
    shr eax, 16
    out dx, al                      /* LBA[23:16] */

30: /* the command (from the table DI points to), then the data */
    movzx bx, byte ptr fs:[EBDA_REQ_CMD]
    mov al, cs:[di+bx]
    mov dx, ATA_COMMAND
    out dx, al
    call ata_delay400
    cmp byte ptr fs:[EBDA_REQ_CMD], REQ_VERIFY
    jne 31f
    call ata_wait_not_busy
    jc 80f
    test al, ATA_SR_ERR | ATA_SR_DF
    jnz 82f
    mov fs:[EBDA_REQ_DONE], cx
    jmp 90f

31: mov di, fs:[EBDA_REQ_BUF]       /* BX:DI = buffer */
    mov bx, fs:[EBDA_REQ_BUF+2]
32: call ata_wait_not_busy
    jc 80f
    test al, ATA_SR_ERR | ATA_SR_DF
    jnz 82f
    test al, ATA_SR_DRQ
    jz 83f
    mov ax, di                      /* normalise BX:DI so DI + 512 cannot wrap */
    shr ax, 4
    add bx, ax
    and di, 0x0F
    push cx
    mov cx, 256
    mov dx, ATA_DATA
    cmp byte ptr fs:[EBDA_REQ_CMD], REQ_WRITE
    je 33f
    mov es, bx
    rep insw                        /* 256 words from the device to ES:DI */
    jmp 34f
33: push si
    mov ds, bx
    mov si, di
    rep outsw                       /* 256 words from DS:SI to the device */
    add di, 512
    pop si
34: pop cx
    inc word ptr fs:[EBDA_REQ_DONE]
    dec ecx
    jnz 32b
    call ata_wait_not_busy          /* the device finishes the last sector */
    jc 80f
    test al, ATA_SR_ERR | ATA_SR_DF
    jnz 82f
    jmp 90f

80: mov byte ptr fs:[EBDA_REQ_STATUS], 0x80  /* time-out */
    jmp 90f
81: mov byte ptr fs:[EBDA_REQ_STATUS], 0x01  /* LBA48 needed, not supported */
    jmp 90f
83: mov byte ptr fs:[EBDA_REQ_STATUS], 0x20  /* no data when data was due */
    jmp 90f
82: mov ah, 0xCC                    /* device fault: write fault */
    test al, ATA_SR_DF
    jnz 84f
    mov dx, ATA_ERROR
    in al, dx
    mov ah, 0x04                    /* ID not found: sector not found */
    test al, ATA_ER_IDNF
    jnz 84f
    mov ah, 0x10                    /* uncorrectable data error */
    test al, 0x40
    jnz 84f
    mov ah, 0x20                    /* anything else: controller failure */
84: mov fs:[EBDA_REQ_STATUS], ah

90: pop es
    pop ds
    popad
    mov ah, fs:[EBDA_REQ_STATUS]
    test ah, ah
    jz 91f
    stc
    ret
91: clc
    ret

    .section .rodata
/* indexed by REQ_READ, REQ_WRITE, REQ_VERIFY */
ata_commands_28: .byte ATA_CMD_READ, ATA_CMD_WRITE, ATA_CMD_VERIFY
ata_commands_48: .byte ATA_CMD_READ_EXT, ATA_CMD_WRITE_EXT, ATA_CMD_VERIFY_EXT
