/*
 * video.S — INT 10h: mode, cursor, writing and reading cells, scrolling,
 * teletype control characters, write string, VGA identification.
 * Cells are read back with AH=08h, so what the screen holds is checked too,
 * not only what reaches the serial port.  The test logs through INT 14h so
 * that its own messages leave the screen alone; the teletype and write-string
 * calls under test still reach the serial port through the BIOS's mirror.
 */
    LOG_TO_SERIAL = 1               /* log through INT 14h: the screen is under test */
    .include "common.inc"

/* AT row, col: move the page 0 cursor. */
.macro AT row, col
    mov ah, 0x02
    xor bh, bh
    mov dx, (\row << 8) | \col
    int 0x10
.endm

/* READ_CELL row, col: print " (row,col)=AAAA" with AH=08h's attribute:char. */
.macro READ_CELL row, col
    AT \row, \col
    mov ah, 0x08
    xor bh, bh
    int 0x10
    PRINT " \row,\col="
    call hex16
.endm

    .text
main:
    PRINTLN "video: INT 10h services"

    PRINT "0F get mode:"
    mov ah, 0x0F
    int 0x10
    SHOW16 "AX", ax
    SHOW8 "BH", bh
    call crlf

    PRINT "BDA:"
    push 0
    pop es
    SHOW8 "mode", es:[0x449]
    SHOW16 "cols", es:[0x44A]
    SHOW8 "rows-1", es:[0x484]
    SHOW16 "crtc", es:[0x463]
    SHOW16 "pagesize", es:[0x44C]
    call crlf

    PRINT "00 set mode 3:"
    mov ax, 0x0003
    int 0x10
    SHOW8 "AL", al
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW16 "cursor", dx
    SHOW16 "shape", cx
    READ_CELL 0, 0
    READ_CELL 24, 79
    call crlf

    PRINT "01 cursor shape 0D0E:"
    mov ah, 0x01
    mov cx, 0x0D0E
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW16 "shape", cx
    call crlf

    PRINT "02/03 cursor at 10,20:"
    AT 10, 20
    mov dx, 0
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW16 "DX", dx
    call crlf

    /* 09h: three 'X' in white on blue at 10,20; 0Ah: one 'Y' keeping them */
    PRINT "09/0A write at the cursor:"
    mov ax, 0x0958
    mov bx, 0x001F
    mov cx, 3
    int 0x10
    AT 10, 21
    mov ax, 0x0A59
    mov cx, 1
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW16 "cursor", dx
    READ_CELL 10, 20
    READ_CELL 10, 21
    READ_CELL 10, 22
    READ_CELL 10, 23
    call crlf

    /* teletype: "ab", backspace, "c" at 5,0 leaves "ac" and the cursor at 5,2 */
    PRINT "0E teletype BS:"
    AT 5, 0
    mov ax, 0x0E61
    int 0x10
    mov ax, 0x0E62
    int 0x10
    mov ax, 0x0E08
    int 0x10
    mov ax, 0x0E63
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    push dx
    READ_CELL 5, 0
    READ_CELL 5, 1
    pop dx
    SHOW16 "cursor", dx
    call crlf

    /* a line feed on the last row scrolls the screen up */
    PRINT "0E scroll at the bottom:"
    AT 24, 0
    mov ax, 0x0E51                  /* "Q" at 24,0 */
    int 0x10
    mov ax, 0x0E0A
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    SHOW16 "cursor", dx
    READ_CELL 23, 0
    READ_CELL 24, 0
    READ_CELL 9, 20                 /* the 'X' of row 10 moved up */
    call crlf

    /* a window: rows 2-4, columns 40-42 */
    PRINT "06/07 window scroll:"
    AT 2, 40
    mov ax, 0x0931                  /* "1" on row 2 */
    mov bx, 0x0007
    mov cx, 3
    int 0x10
    AT 3, 40
    mov ax, 0x0932                  /* "2" on row 3 */
    int 0x10
    mov ax, 0x0601                  /* up 1, new line attribute 4Eh */
    mov bh, 0x4E
    mov cx, 0x0228
    mov dx, 0x042A
    int 0x10
    READ_CELL 2, 40
    READ_CELL 3, 40
    READ_CELL 4, 42
    READ_CELL 2, 43                 /* outside the window */
    call crlf
    PRINT "  "
    mov ax, 0x0702                  /* down 2 */
    mov bh, 0x07
    mov cx, 0x0228
    mov dx, 0x042A
    int 0x10
    READ_CELL 2, 40
    READ_CELL 4, 40
    call crlf
    PRINT "  "
    mov ax, 0x0600                  /* AL = 0: clear the window */
    mov bh, 0x70
    mov cx, 0x0228
    mov dx, 0x042A
    int 0x10
    READ_CELL 4, 40
    call crlf

    /* write string with attributes, cursor moved (AL = 1) */
    PRINT "13 write string: "
    mov ax, 0x1301
    mov bx, 0x002E
    mov cx, 5
    mov dx, (20 << 8) | 70
    push ds
    pop es
    mov bp, offset greeting
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    push dx
    READ_CELL 20, 70
    READ_CELL 20, 74
    pop dx
    SHOW16 "cursor", dx
    call crlf

    PRINT "13 (char, attr) pairs, cursor kept: "
    AT 1, 1
    mov ax, 0x1302
    mov cx, 2
    mov dx, (21 << 8) | 0
    mov bp, offset pairs
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    push dx
    READ_CELL 21, 1
    pop dx
    SHOW16 "cursor", dx
    call crlf

    PRINT "12 EGA info:"
    mov ah, 0x12
    mov bl, 0x10
    int 0x10
    SHOW16 "BX", bx
    call crlf

    PRINT "1A display combination:"
    mov ax, 0x1A00
    int 0x10
    SHOW8 "AL", al
    SHOW16 "BX", bx
    call crlf

    PRINT "BEL:"
    mov ax, 0x0E07
    int 0x10
    call crlf

    EXIT

    .data
greeting: .ascii "Hello"
pairs:    .byte 'O', 0x1E, 'K', 0x2F
