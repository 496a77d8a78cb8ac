/*
 * serialcopy.S — the BIOS copies INT 10h teletype output to COM1 only while
 * COM1 is as the BIOS left it.  Once the program programs COM1 itself (FIFOs
 * on, OUT2, as GRUB's and Linux's drivers do), teletype output stays on the
 * screen, and stays there after COM1 is put back.  The log goes through INT
 * 14h, which the rule leaves alone.
 */
    LOG_TO_SERIAL = 1
    .include "common.inc"

/* TTY "text": print text through INT 10h AH=0Eh only. */
.macro TTY text
    .pushsection .rodata
tty\@: .asciz "\text"
    .popsection
    mov si, offset tty\@
    call teletype
.endm

/* OUTB port, value */
.macro OUTB port, value
    mov dx, \port
    mov al, \value
    out dx, al
.endm

main:
    PRINTLN "serialcopy: INT 10h teletype and COM1"
    TTY "copied: COM1 is as the BIOS left it\r\n"
    OUTB 0x3FA, 0xC7                /* FCR: FIFOs on and cleared */
    OUTB 0x3FC, 0x0B                /* MCR: DTR, RTS, OUT2 */
    PRINTLN "COM1 programmed: FIFOs on, OUT2"
    TTY "not copied: the program drives COM1\r\n"
    OUTB 0x3FA, 0x00                /* back to the BIOS's setup */
    OUTB 0x3FC, 0x03
    PRINTLN "COM1 set back"
    TTY "not copied either: the BIOS stopped for good\r\n"
    PRINT "screen lines after the banner:"
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW8 "cursor row", dh
    mov ax, 0x0800                  /* the last line's first cell */
    mov ah, 0x02
    dec dh
    xor dl, dl
    int 0x10
    mov ah, 0x08
    int 0x10
    SHOW8 "first char of the row above", al
    call crlf
    EXIT

teletype:
    lodsb
    test al, al
    jz 1f
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    jmp teletype
1:  ret
