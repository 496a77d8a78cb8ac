/*
 * disk.S — INT 13h, the disk services, for the ATA disks ata_detect found.
 *
 * Drive numbers: 80h is the first disk found (the primary master if there is
 * one), 81h the second.  Drive 00h (A:) is floppy.S's.
 *
 * Two ways to name a sector:
 *   CHS (AH=02h-04h): cylinder, head, sector (from 1) in the translated
 *       geometry of AH=08h:  LBA = (C * heads + H) * 63 + S - 1
 *   LBA (AH=42h-44h, the IBM/Phoenix "EDD" extensions): a Disk Address
 *       Packet at DS:SI:
 *         +0 byte  size of the packet (10h, or 18h)
 *         +1 byte  0
 *         +2 word  number of sectors (at most 127); on return: sectors done
 *         +4 dword buffer, offset then segment
 *         +8 qword first sector (LBA48 is used above 2^28)
 *
 * Every function returns AH = status and CF = 1 if AH != 0, and the status is
 * kept in the BDA (0x474) for AH=01h:
 *   00h success            01h bad function, bad parameter or no such drive
 *   04h sector not found (out of range)     10h read error
 *   20h controller failure 80h time-out     CCh write fault
 */
    .include "bios.inc"

    .section .text

    .globl int13_disk
int13_disk:
    sti
    cld
    ENTER_SERVICE
    call ebda_fs
    mov dl, [bp+F_DL]
    mov fs:[EBDA_INT13_DL], dl
    mov ah, [bp+F_AH]
    cmp dl, 0x80                    /* floppies: floppy.S */
    jb floppy_int13
    mov al, dl
    sub al, 0x80
    cmp al, fs:[EBDA_HD_COUNT]
    jae d_bad_drive
    movzx si, al                    /* SI = the drive's table entry */
    shl si, 5                       /* * DRIVE_SIZE */
    add si, EBDA_DRIVES
    mov fs:[EBDA_REQ_DRIVE], si

    mov bx, offset disk_functions   /* find AH in the table */
1:  cmp ah, cs:[bx]
    je 2f
    add bx, 3
    cmp bx, offset disk_functions_end
    jb 1b
    jmp d_bad_parameter
2:  jmp word ptr cs:[bx+1]

d_bad_drive:
d_bad_parameter:
    mov ah, 0x01
    jmp d_return
d_sector_not_found:
    mov ah, 0x04
    jmp d_return
d_success:
    xor ah, ah
/* d_return: AH = status -> caller's AH, BDA status byte, CF. */
    .globl d_return, d_leave
d_return:
    mov [bp+F_AH], ah
    push ds
    push BDA_SEG
    pop ds
    cmp byte ptr fs:[EBDA_INT13_DL], 0x80
    jb 1f
    mov ds:[BDA_DISK_STATUS], ah
    jmp 2f
1:  mov ds:[BDA_FLOPPY_STATUS], ah
2:  pop ds
    test ah, ah
    jz 3f
    SET_CF
    jmp d_leave
3:  CLEAR_CF
d_leave:
    LEAVE_SERVICE

/* AH=00h/0Dh reset: a software reset of the ATA channel. */
d_reset:
    call ata_reset
    jmp d_success

/* AH=01h status of the last operation -> AH = AL = that status. */
d_status:
    push ds
    push BDA_SEG
    pop ds
    mov ah, ds:[BDA_DISK_STATUS]
    pop ds
    mov [bp+F_AL], ah
    jmp d_return

/*
 * AH=02h read, 03h write, 04h verify: AL = sectors, CH = cylinder[7:0],
 * CL = sector (bits 5-0) | cylinder[9:8] (bits 7-6), DH = head,
 * ES:BX = buffer -> AL = sectors transferred.
 */
d_chs_read:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_READ
    jmp d_chs
d_chs_write:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_WRITE
    jmp d_chs
d_chs_verify:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_VERIFY
d_chs:
    movzx cx, byte ptr [bp+F_AL]
    jcxz d_bad_parameter
    mov fs:[EBDA_REQ_COUNT], cx
    movzx ebx, byte ptr [bp+F_CL]
    and bl, 0x3F                    /* EBX = sector, from 1 */
    jz d_sector_not_found
    cmp bx, fs:[si+DRIVE_SPT]
    ja d_sector_not_found
    movzx edx, byte ptr [bp+F_DH]   /* EDX = head */
    cmp dx, fs:[si+DRIVE_HEADS]
    jae d_sector_not_found
    movzx eax, byte ptr [bp+F_CL]   /* EAX = cylinder */
    shl ax, 2
    and ax, 0x300
    mov al, [bp+F_CH]
    cmp ax, fs:[si+DRIVE_CYLS]
    jae d_sector_not_found
    movzx ecx, word ptr fs:[si+DRIVE_HEADS]
    mul ecx                         /* cylinder * heads (EDX clobbered) */
    movzx edx, byte ptr [bp+F_DH]
    add eax, edx                    /* + head */
    movzx ecx, word ptr fs:[si+DRIVE_SPT]
    mul ecx                         /* * sectors per track */
    lea eax, [eax+ebx-1]            /* + sector - 1 */
    mov fs:[EBDA_REQ_LBA], eax
    mov dword ptr fs:[EBDA_REQ_LBA+4], 0
    mov ax, [bp+F_BX]
    mov fs:[EBDA_REQ_BUF], ax
    mov ax, [bp+F_ES]
    mov fs:[EBDA_REQ_BUF+2], ax
    mov byte ptr [bp+F_AL], 0
    call d_check_range
    jc d_sector_not_found
    call ata_rw                     /* AH = status */
    mov al, fs:[EBDA_REQ_DONE]
    mov [bp+F_AL], al
    jmp d_return

/* d_check_range: CF = 1 if the request runs past the end of the disk. */
d_check_range:
    push eax
    push ecx
    push edx
    mov eax, fs:[EBDA_REQ_LBA]
    mov edx, fs:[EBDA_REQ_LBA+4]
    movzx ecx, word ptr fs:[EBDA_REQ_COUNT]
    add eax, ecx                    /* EDX:EAX = end of the request */
    adc edx, 0
    cmp edx, fs:[si+DRIVE_SECTORS+4]
    ja 2f
    jb 1f
    cmp eax, fs:[si+DRIVE_SECTORS]
    ja 2f
1:  clc
    jmp 3f
2:  stc
3:  pop edx
    pop ecx
    pop eax
    ret

/*
 * AH=08h drive parameters -> CH = last cylinder[7:0], CL = sectors per track
 * | last cylinder[9:8] << 6, DH = last head, DL = number of hard disks, AL = 0.
 */
d_parameters:
    mov ax, fs:[si+DRIVE_CYLS]
    dec ax                          /* the last cylinder */
    mov [bp+F_CH], al
    shl ah, 6
    or ah, fs:[si+DRIVE_SPT]
    mov [bp+F_CL], ah
    mov al, fs:[si+DRIVE_HEADS]
    dec al
    mov [bp+F_DH], al
    mov al, fs:[EBDA_HD_COUNT]
    mov [bp+F_DL], al
    mov byte ptr [bp+F_AL], 0
    jmp d_success

/* AH=15h disk type -> AH = 03h (hard disk), CX:DX = sectors reachable by CHS. */
d_type:
    movzx eax, word ptr fs:[si+DRIVE_CYLS]
    movzx ecx, word ptr fs:[si+DRIVE_HEADS]
    mul ecx
    movzx ecx, word ptr fs:[si+DRIVE_SPT]
    mul ecx
    mov [bp+F_DX], ax
    shr eax, 16
    mov [bp+F_CX], ax
    mov byte ptr [bp+F_AH], 0x03
    CLEAR_CF
    jmp d_leave

/* AH=41h extensions present?  BX = 55AAh -> BX = AA55h, AH = 30h (EDD 3.0),
 * CX = 0005h: bit 0 = AH=42h-44h,47h,48h; bit 2 = EDD (AH=48h). */
d_check_extensions:
    cmp word ptr [bp+F_BX], 0x55AA
    jne d_bad_parameter
    mov word ptr [bp+F_BX], 0xAA55
    mov word ptr [bp+F_CX], 0x0005
    mov byte ptr [bp+F_AH], 0x30
    CLEAR_CF
    jmp d_leave

/* AH=42h extended read, 43h extended write (AL = verify flag, ignored),
 * 44h extended verify, 47h extended seek: Disk Address Packet at DS:SI. */
d_ext_read:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_READ
    jmp d_ext
d_ext_write:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_WRITE
    jmp d_ext
d_ext_verify:
d_ext_seek:
    mov byte ptr fs:[EBDA_REQ_CMD], REQ_VERIFY
d_ext:
    mov es, [bp+F_DS]
    mov di, [bp+F_SI]               /* ES:DI = the packet */
    cmp byte ptr es:[di], 0x10
    jb d_bad_parameter
    mov cx, es:[di+2]
    cmp cx, 127
    ja d_bad_parameter
    mov fs:[EBDA_REQ_COUNT], cx
    mov eax, es:[di+4]
    cmp eax, 0xFFFFFFFF             /* "use the 64-bit address at +10h": no */
    je d_bad_parameter
    mov fs:[EBDA_REQ_BUF], eax
    mov eax, es:[di+8]
    mov fs:[EBDA_REQ_LBA], eax
    mov eax, es:[di+12]
    mov fs:[EBDA_REQ_LBA+4], eax
    mov word ptr es:[di+2], 0       /* nothing transferred yet */
    call d_check_range
    jc d_sector_not_found
    cmp byte ptr [bp+F_AH], 0x47    /* seek: the range check is all */
    je d_success
    call ata_rw
    mov cx, fs:[EBDA_REQ_DONE]
    mov es:[di+2], cx
    jmp d_return

/*
 * AH=48h drive parameters (EDD) into the buffer at DS:SI, whose first word
 * is its size (at least 1Ah):
 *   +00h word size written (1Ah, or 1Eh if there was room)   +02h word flags
 *   +04h dword cylinders  +08h dword heads  +0Ch dword sectors per track
 *   +10h qword total sectors  +18h word bytes per sector (512)
 *   +1Ah dword EDD configuration parameters: FFFF:FFFF (none)
 * Flag bit 1 (geometry valid) is set only for disks of at most 15,482,880
 * sectors; bigger disks report 16383/16/63, as EDD asks.
 */
d_ext_parameters:
    mov es, [bp+F_DS]
    mov di, [bp+F_SI]
    mov ax, es:[di]
    cmp ax, 0x1A
    jb d_bad_parameter
    mov cx, 0x1A
    cmp ax, 0x1E
    jb 1f
    mov cx, 0x1E
    mov dword ptr es:[di+0x1A], 0xFFFFFFFF
1:  mov es:[di], cx
    mov eax, fs:[si+DRIVE_SECTORS]
    mov edx, fs:[si+DRIVE_SECTORS+4]
    mov es:[di+0x10], eax
    mov es:[di+0x14], edx
    mov word ptr es:[di+0x18], 512
    test edx, edx
    jnz 2f
    cmp eax, 15482880
    ja 2f
    mov word ptr es:[di+2], 0x0002
    movzx eax, word ptr fs:[si+DRIVE_CYLS]
    mov es:[di+4], eax
    movzx eax, word ptr fs:[si+DRIVE_HEADS]
    mov es:[di+8], eax
    movzx eax, word ptr fs:[si+DRIVE_SPT]
    mov es:[di+12], eax
    jmp d_success
2:  mov word ptr es:[di+2], 0
    mov dword ptr es:[di+4], 16383
    mov dword ptr es:[di+8], 16
    mov dword ptr es:[di+12], 63
    jmp d_success

    .section .rodata
/* function, handler */
disk_functions:
    .byte 0x00
    .word d_reset
    .byte 0x01
    .word d_status
    .byte 0x02
    .word d_chs_read
    .byte 0x03
    .word d_chs_write
    .byte 0x04
    .word d_chs_verify
    .byte 0x08
    .word d_parameters
    .byte 0x09                      /* initialise drive parameters */
    .word d_success
    .byte 0x0C                      /* seek */
    .word d_success
    .byte 0x0D                      /* alternate reset */
    .word d_reset
    .byte 0x10                      /* test drive ready */
    .word d_success
    .byte 0x11                      /* recalibrate */
    .word d_success
    .byte 0x14                      /* controller diagnostic */
    .word d_success
    .byte 0x15
    .word d_type
    .byte 0x41
    .word d_check_extensions
    .byte 0x42
    .word d_ext_read
    .byte 0x43
    .word d_ext_write
    .byte 0x44
    .word d_ext_verify
    .byte 0x47
    .word d_ext_seek
    .byte 0x48
    .word d_ext_parameters
disk_functions_end:
