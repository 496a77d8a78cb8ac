/*
 * boot.S — INT 19h (bootstrap loader) and INT 18h (no bootable device).
 *
 * The boot order comes from CMOS, the way Bochs and QEMU store it:
 * 3Dh bits 3-0 = first device, bits 7-4 = second, 38h bits 7-4 = third,
 * each 1 = floppy, 2 = hard disk, 3 = CD-ROM, 0 = none; vmm adds 5 = the
 * second hard disk (81h) alone, so that a VM's .nvram can boot its slave disk
 * first.  A floppy entry boots drive 00h if CMOS says there is a drive A:;
 * CD-ROM entries are skipped; if the order names no hard disk at all the hard
 * disks are tried anyway.
 *
 * A disk boots if its sector 0 reads without error and ends in the signature
 * 55h AAh (bytes 510-511).  The sector is loaded at 0000:7C00 and entered
 * with CS:IP = 0000:7C00, DL = the drive number, DS = ES = SS = 0,
 * SP = 7C00h, interrupts enabled — what every boot sector expects.
 */
    .include "bios.inc"

    .section .text

BOOT_ADDRESS = 0x7C00

    .globl int19_bootstrap
int19_bootstrap:
    cli
    cld
    xor ax, ax                      /* a fresh stack: INT 19h never returns */
    mov ss, ax
    mov sp, POST_STACK_TOP
    mov ds, ax
    mov es, ax
    sti
    POST_CODE POST_INT19

    mov al, CMOS_BOOT_12
    call cmos_read
    mov dl, al                      /* DL = second:first */
    mov al, CMOS_BOOT_3
    call cmos_read
    mov dh, al
    shr dh, 4                       /* DH = third */
    xor bp, bp                      /* BP = 1 once the order named a hard disk */
    mov cx, 3
1:  mov al, dl
    and al, 0x0F
    cmp al, BOOTDEV_HDD
    jne 4f
    mov bp, 1
    call boot_hard_disks            /* returns only if none of them booted */
    jmp 2f
4:  cmp al, BOOTDEV_HDD1
    jne 5f
    mov bp, 1
    call boot_second_disk           /* returns if it did not boot */
    jmp 2f
5:  cmp al, BOOTDEV_FLOPPY
    jne 2f
    call boot_floppy                /* returns if it did not boot */
2:  shr dl, 4                       /* next entry */
    shl dh, 4
    or dl, dh
    xor dh, dh
    loop 1b
    test bp, bp
    jnz 3f
    call boot_hard_disks
3:  int 0x18

/*
 * boot_hard_disks: try 80h, 81h, ... in turn; jump to the first boot sector
 * found.  Returns if none boots.
 */
boot_hard_disks:
    pusha
    call ebda_fs
    mov cl, fs:[EBDA_HD_COUNT]
    mov dl, 0x80
    jmp try_disks

/* boot_second_disk: try 81h alone (boot device 5); returns if it does not boot. */
boot_second_disk:
    pusha
    call ebda_fs
    cmp byte ptr fs:[EBDA_HD_COUNT], 2
    jb no_second_disk
    mov cl, 1
    mov dl, 0x81
    jmp try_disks
no_second_disk:
    popa
    ret

/* boot_floppy: try drive 00h, if there is a drive A:; returns if it does not boot. */
boot_floppy:
    pusha
    call ebda_fs
    cmp byte ptr fs:[EBDA_FLOPPY_TYPE], 0
    je no_second_disk
    mov cl, 1
    xor dl, dl
    /* fall through */

/* try_disks: DL = first drive, CL = how many; called with the caller's registers pushed. */
try_disks:
1:  test cl, cl
    jz 9f
    push cx
    push dx
    call ebda_fs
    test byte ptr fs:[EBDA_OPTIONS], OPT_QUIET
    jnz 2f
    mov si, offset msg_booting
    test dl, dl
    js 4f
    mov si, offset msg_booting_floppy
4:  call print_str
2:  POST_CODE POST_BOOT_READ
    xor ax, ax
    mov es, ax
    mov bx, BOOT_ADDRESS
    mov ax, 0x0201                  /* read 1 sector ... */
    mov cx, 0x0001                  /* ... cylinder 0, sector 1 ... */
    xor dh, dh                      /* ... head 0 */
    int 0x13
    pop dx
    pop cx
    jc 3f
    cmp word ptr es:[BOOT_ADDRESS + 510], 0xAA55
    je boot_sector_jump
3:  inc dl
    dec cl
    jmp 1b
9:  popa
    ret

/* boot_sector_jump: DL = drive; the boot sector is at 0000:7C00. */
boot_sector_jump:
    call ebda_fs
    mov fs:[EBDA_BOOT_DRIVE], dl
    POST_CODE POST_BOOT_JUMP
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov sp, BOOT_ADDRESS
    xor bx, bx
    xor cx, cx
    xor si, si
    xor di, di
    xor bp, bp
    xor dh, dh
    sti
    .byte 0xEA                      /* JMP FAR 0000:7C00 */
    .word BOOT_ADDRESS
    .word 0x0000

/*
 * INT 18h: no bootable device.  Print the news and stop for good: interrupts
 * off, HLT in a loop (an NMI would only come back to the loop).
 */
    .globl int18_boot_failure
int18_boot_failure:
    mov si, offset msg_no_boot
    call print_str
    POST_CODE POST_NO_BOOT
1:  cli
    hlt
    jmp 1b

    .section .rodata
msg_booting:    .asciz "Booting from hard disk...\r\n"
msg_booting_floppy: .asciz "Booting from floppy...\r\n"
msg_no_boot:    .asciz "No bootable disk\r\n"
