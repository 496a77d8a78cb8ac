/*
 * serial.S — COM1, a 16550 UART at 0x3F8: the BIOS's second console.
 *
 * Everything written through INT 10h teletype/write-string is also sent to
 * COM1 byte for byte (unless CMOS option bit 1 says not to), and bytes
 * received on COM1 become keystrokes (keyboard.S), so a VM with only a serial
 * line can be driven through boot menus.
 *
 * The UART is used in polled mode, with its FIFOs left off (16450 behaviour):
 * enabling them would discard a byte that arrived before POST, and polling
 * one byte at a time means the host side is never asked to hold more than one
 * byte in the UART.  Its IRQ 4 stays masked.
 *
 * 16550 reference: TI/National PC16550D datasheet (RBR, THR, IER, LCR, LSR).
 */
    .include "bios.inc"

    .section .text

/* serial_init: 115200 baud (divisor 1), 8 data bits, no parity, 1 stop bit. */
    .globl serial_init
serial_init:
    mov dx, COM1 + UART_LCR
    mov al, 0x80                    /* DLAB = 1: ports 0/1 are the divisor */
    out dx, al
    mov dx, COM1 + UART_DLL
    mov al, 1
    out dx, al
    mov dx, COM1 + UART_DLM
    xor al, al
    out dx, al
    mov dx, COM1 + UART_LCR
    mov al, 0x03                    /* DLAB = 0, 8N1 */
    out dx, al
    mov dx, COM1 + UART_IER
    xor al, al                      /* no UART interrupts: we poll */
    out dx, al
    mov dx, COM1 + UART_MCR
    mov al, 0x03                    /* DTR and RTS on, OUT2 (IRQ gate) off */
    out dx, al
    ret

/*
 * serial_putc: send AL to COM1, waiting (a bounded time) for the transmit
 * holding register to be empty.  Preserves all registers.
 */
    .globl serial_putc
serial_putc:
    push ax
    push cx
    push dx
    mov ah, al
    mov dx, COM1 + UART_LSR
    mov cx, 0xFFFF
1:  in al, dx
    test al, UART_LSR_THRE
    jnz 2f
    loop 1b
2:  mov dx, COM1 + UART_THR
    mov al, ah
    out dx, al
    pop dx
    pop cx
    pop ax
    ret

/*
 * serial_getc: if COM1 holds a received byte, return it in AL with CF = 0;
 * otherwise CF = 1.  A line status of FFh means no UART at all.
 */
    .globl serial_getc
serial_getc:
    push dx
    mov dx, COM1 + UART_LSR
    in al, dx
    cmp al, 0xFF
    je 1f
    test al, UART_LSR_DR
    jz 1f
    mov dx, COM1 + UART_RBR
    in al, dx
    pop dx
    clc
    ret
1:  pop dx
    stc
    ret

/*
 * INT 14h — serial port services, COM1 only (DX = 0).
 *   AH=00h initialise (AL = IBM parameter byte; we always use 115200 8N1)
 *   AH=01h send AL           -> AH = line status (bit 7 = time-out)
 *   AH=02h receive           -> AL = byte, AH = line status (bit 7 = nothing came)
 *   AH=03h status            -> AH = line status, AL = modem status
 * Other ports: AH = 80h.
 */
    .globl int14_serial
int14_serial:
    ENTER_SERVICE
    cmp word ptr [bp+F_DX], 0
    jne 8f
    mov bl, [bp+F_AH]               /* BL = function */
    cmp bl, 0x00
    je 3f
    cmp bl, 0x01
    je 1f
    cmp bl, 0x02
    je 2f
    cmp bl, 0x03
    je 3f
    jmp 8f
1:  mov al, [bp+F_AL]               /* send */
    call serial_putc
    jmp 3f
2:  call serial_getc                /* receive: wait a bounded time */
    jnc 21f
    mov cx, 0xFFFF
20: call serial_getc
    jnc 21f
    loop 20b
    mov byte ptr [bp+F_AH], 0x80    /* time-out */
    jmp 9f
21: mov [bp+F_AL], al
    mov dx, COM1 + UART_LSR
    in al, dx
    and al, 0x7F
    mov [bp+F_AH], al
    jmp 9f
3:  mov dx, COM1 + UART_LSR         /* status */
    in al, dx
    and al, 0x7F
    mov [bp+F_AH], al
    mov dx, COM1 + 6                /* modem status register */
    in al, dx
    cmp bl, 0x01                    /* AH=01h keeps AL (the byte sent) */
    je 9f
    mov [bp+F_AL], al
    jmp 9f
8:  mov byte ptr [bp+F_AH], 0x80
9:  LEAVE_SERVICE
