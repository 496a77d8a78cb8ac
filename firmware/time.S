/*
 * time.S — the 8254 timer tick (INT 08h), the CMOS real-time clock, INT 1Ah.
 *
 * The 8254's counter 0 counts down from 65536 at 1.193182 MHz and raises
 * IRQ 0 on every wrap: 18.2065 times a second.  INT 08h counts these ticks in
 * the BDA (dword at 0x46C); after 0x1800B0 ticks (24 hours) the count goes
 * back to 0 and the "midnight" flag at 0x470 is set.
 *
 * The RTC (Motorola MC146818) keeps the date and time in CMOS bytes 0-9,
 * which this BIOS keeps in BCD, 24-hour format (register B = 02h).
 */
    .include "bios.inc"

    .section .text

/* pit_init: counter 0, mode 3 (square wave), reload 0 (= 65536). */
    .globl pit_init
pit_init:
    mov al, 0x36                    /* counter 0, lobyte/hibyte, mode 3, binary */
    out PIT_MODE, al
    xor al, al
    out PIT_CH0, al                 /* reload value low byte ... */
    out PIT_CH0, al                 /* ... and high byte: 0 means 65536 */
    in al, PORT_B                   /* speaker off (gate 2 and data bits) */
    and al, 0xFC
    out PORT_B, al
    ret

/* cmos_read: AL = CMOS index -> AL = value.  cmos_write: AL = index, AH = value. */
    .globl cmos_read, cmos_write
cmos_read:
    out CMOS_INDEX, al
    in al, CMOS_DATA
    ret
cmos_write:
    out CMOS_INDEX, al
    mov al, ah
    out CMOS_DATA, al
    ret

/* rtc_wait_update: wait while the RTC is updating its registers (reg A bit 7),
 * so that the time we read is consistent.  Gives up after a while. */
rtc_wait_update:
    push ax
    push cx
    mov cx, 0xFFFF
1:  mov al, CMOS_REG_A
    call cmos_read
    test al, 0x80
    jz 2f
    loop 1b
2:  pop cx
    pop ax
    ret

/* bcd_to_bin: AL (BCD) -> AL (binary). */
bcd_to_bin:
    push cx
    mov cl, al
    shr al, 4
    mov ch, 10
    mul ch                          /* AX = tens * 10 */
    and cl, 0x0F
    add al, cl
    pop cx
    ret

/*
 * rtc_init: make sure the RTC runs in BCD, 24-hour mode, and start the tick
 * count at the current time of day:  ticks = seconds * 0x1800B0 / 86400.
 */
    .globl rtc_init
rtc_init:
    pushad
    push es
    mov ax, (0x26 << 8) | CMOS_REG_A   /* 32.768 kHz time base, 1024 Hz rate */
    call cmos_write
    mov al, CMOS_REG_B
    call cmos_read
    and al, 0x02 | 0x01             /* keep 24h and DST; BCD; no interrupts */
    or al, 0x02                     /* 24-hour mode */
    mov ah, al
    mov al, CMOS_REG_B
    call cmos_write

    call rtc_wait_update
    mov al, CMOS_HOURS
    call cmos_read
    call bcd_to_bin
    movzx ebx, al
    imul ebx, ebx, 3600
    mov al, CMOS_MINUTES
    call cmos_read
    call bcd_to_bin
    movzx eax, al
    imul eax, eax, 60
    add ebx, eax
    mov al, CMOS_SECONDS
    call cmos_read
    call bcd_to_bin
    movzx eax, al
    add eax, ebx                    /* EAX = seconds since midnight */
    mov ecx, TICKS_PER_DAY
    mul ecx                         /* EDX:EAX = seconds * ticks per day */
    mov ecx, 86400
    div ecx                         /* EAX = ticks since midnight */
    push BDA_SEG
    pop es
    mov es:[BDA_TICKS], eax
    mov byte ptr es:[BDA_MIDNIGHT], 0
    pop es
    popad
    ret

/*
 * INT 08h — IRQ 0, the timer tick.  Counts the tick, gives the serial console
 * a chance to deliver typed keys (keyboard.S), calls the user hook INT 1Ch,
 * and acknowledges the interrupt at the PIC.
 */
    .globl int08_timer
int08_timer:
    push ds
    push ax
    push BDA_SEG
    pop ds
    inc dword ptr ds:[BDA_TICKS]
    cmp dword ptr ds:[BDA_TICKS], TICKS_PER_DAY
    jb 1f
    mov dword ptr ds:[BDA_TICKS], 0 /* midnight */
    mov byte ptr ds:[BDA_MIDNIGHT], 1
1:  call serial_poll_keys           /* keyboard.S */
    int 0x1C                        /* user tick hook */
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop ax
    pop ds
    iret

/*
 * INT 1Ah — time of day.
 *   AH=00h  read ticks:  CX:DX = ticks since midnight, AL = midnight flag (then cleared)
 *   AH=01h  set ticks:   CX:DX = ticks
 *   AH=02h  read RTC time: CH = hours, CL = minutes, DH = seconds (BCD), DL = DST flag
 *   AH=03h  set RTC time:  same registers
 *   AH=04h  read RTC date: CH = century, CL = year, DH = month, DL = day (BCD)
 *   AH=05h  set RTC date:  same registers
 * CF = 0 on success; CF = 1 for an unknown function.
 */
    .globl int1a_time
int1a_time:
    cmp ah, 0xB1                    /* the PCI BIOS functions (pci.S) */
    je int1a_pci
    ENTER_SERVICE
    push BDA_SEG
    pop ds
    CLEAR_CF
    mov ah, [bp+F_AH]
    cmp ah, 0x00
    je time_read_ticks
    cmp ah, 0x01
    je time_set_ticks
    cmp ah, 0x02
    je time_read_rtc
    cmp ah, 0x03
    je time_set_rtc
    cmp ah, 0x04
    je time_read_date
    cmp ah, 0x05
    je time_set_date
    SET_CF                          /* unknown function */
time_done:
    LEAVE_SERVICE

time_read_ticks:
    cli                             /* the tick must not change mid-read */
    mov ax, ds:[BDA_TICKS]
    mov [bp+F_DX], ax
    mov ax, ds:[BDA_TICKS+2]
    mov [bp+F_CX], ax
    mov al, 0
    xchg al, ds:[BDA_MIDNIGHT]
    mov [bp+F_AL], al
    jmp time_done

time_set_ticks:
    cli
    mov ax, [bp+F_DX]
    mov ds:[BDA_TICKS], ax
    mov ax, [bp+F_CX]
    mov ds:[BDA_TICKS+2], ax
    mov byte ptr ds:[BDA_MIDNIGHT], 0
    mov byte ptr [bp+F_AH], 0
    jmp time_done

time_read_rtc:
    call rtc_wait_update
    mov al, CMOS_HOURS
    call cmos_read
    mov [bp+F_CH], al
    mov al, CMOS_MINUTES
    call cmos_read
    mov [bp+F_CL], al
    mov al, CMOS_SECONDS
    call cmos_read
    mov [bp+F_DH], al
    mov al, CMOS_REG_B
    call cmos_read
    and al, 0x01                    /* daylight saving enable bit */
    mov [bp+F_DL], al
    mov byte ptr [bp+F_AH], 0
    jmp time_done

time_set_rtc:
    call rtc_freeze
    mov ah, [bp+F_CH]
    mov al, CMOS_HOURS
    call cmos_write
    mov ah, [bp+F_CL]
    mov al, CMOS_MINUTES
    call cmos_write
    mov ah, [bp+F_DH]
    mov al, CMOS_SECONDS
    call cmos_write
    mov bl, [bp+F_DL]
    and bl, 0x01
    call rtc_thaw                   /* BL = DST bit */
    mov byte ptr [bp+F_AH], 0
    jmp time_done

time_read_date:
    call rtc_wait_update
    mov al, CMOS_CENTURY
    call cmos_read
    mov [bp+F_CH], al
    mov al, CMOS_YEAR
    call cmos_read
    mov [bp+F_CL], al
    mov al, CMOS_MONTH
    call cmos_read
    mov [bp+F_DH], al
    mov al, CMOS_DAY
    call cmos_read
    mov [bp+F_DL], al
    mov byte ptr [bp+F_AH], 0
    jmp time_done

time_set_date:
    call rtc_freeze
    mov ah, [bp+F_CH]
    mov al, CMOS_CENTURY
    call cmos_write
    mov ah, [bp+F_CL]
    mov al, CMOS_YEAR
    call cmos_write
    mov ah, [bp+F_DH]
    mov al, CMOS_MONTH
    call cmos_write
    mov ah, [bp+F_DL]
    mov al, CMOS_DAY
    call cmos_write
    mov al, CMOS_REG_B
    call cmos_read
    mov bl, al
    and bl, 0x01                    /* keep the DST bit */
    call rtc_thaw
    mov byte ptr [bp+F_AH], 0
    jmp time_done

/* rtc_freeze: set register B's SET bit so the clock stops updating while we
 * write it.  rtc_thaw: BL = DST bit; register B = 24h, BCD, running. */
rtc_freeze:
    mov al, CMOS_REG_B
    call cmos_read
    or al, 0x80
    mov ah, al
    mov al, CMOS_REG_B
    jmp cmos_write
rtc_thaw:
    mov ah, 0x02
    or ah, bl
    mov al, CMOS_REG_B
    jmp cmos_write
