/*
 * vgatext.S — teletype text in the graphics modes 12h and 13h, as the IBM VGA BIOS
 * draws it: INT 10h AH=0Eh (and the BIOS's own messages) paint the character cell at
 * page 0's cursor from the ROM font (8x16 in mode 12h: 80x30 cells; 8x8 in mode 13h:
 * 40x25 cells), the glyph's bits in the foreground colour and the rest of the cell in
 * colour 0; CR, LF, BS and BEL act as in text mode, and past the last row the picture
 * scrolls up one text row (the new row in colour 0).
 *
 * Mode 13h is plain linear memory at A000:0000.  Mode 12h goes through the graphics
 * controller: set/reset for the colour with the bit mask as the glyph row (the latches,
 * loaded by a read, keep the other pixels), write mode 1 to move whole rows of all four
 * planes when scrolling.  The fonts come from build/font.S (mkfont.py).
 */
    .include "bios.inc"

GC_INDEX    = 0x3CE
SEQ_INDEX   = 0x3C4
GFX_SEG     = 0xA000

    .section .text

/* gfx_geometry: CL = columns, CH = rows of the current graphics mode (DS = BDA). */
gfx_geometry:
    mov cx, (25 << 8) | 40
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    je 1f
    mov cx, (30 << 8) | 80
1:  ret

/*
 * gfx_teletype: AL = character, BL = colour, DS = BDA, mode 12h or 13h: print it
 * at page 0's cursor and move the cursor.  Preserves all registers.
 */
    .globl gfx_teletype
gfx_teletype:
    pusha
    push es
    mov dx, ds:[BDA_CURSOR_POS]     /* DH = row, DL = column */
    call gfx_geometry
    cmp al, 0x0D
    je 10f
    cmp al, 0x0A
    je 11f
    cmp al, 0x08
    je 12f
    cmp al, 0x07
    je 20f
    call gfx_draw_char
    inc dl
    cmp dl, cl
    jb 20f
    xor dl, dl                      /* wrap to the next line */
    jmp 11f
10: xor dl, dl                      /* CR */
    jmp 20f
11: inc dh                          /* LF */
    cmp dh, ch
    jb 20f
    dec dh
    call gfx_scroll_up
    jmp 20f
12: test dl, dl                     /* BS */
    jz 20f
    dec dl
20: mov ds:[BDA_CURSOR_POS], dx
    pop es
    popa
    ret

/* gfx_draw_char: AL = character, BL = colour, DH = row, DL = column, DS = BDA. */
gfx_draw_char:
    pusha
    push GFX_SEG
    pop es
    movzx si, al
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    jne 30f
    /* mode 13h: 8 rows of 8 bytes, 320 bytes a scan line */
    shl si, 3
    add si, offset font8x8
    movzx ax, dh
    imul di, ax, 8 * 320
    movzx ax, dl
    shl ax, 3
    add di, ax
    mov bh, 8                       /* BH = glyph rows left */
1:  mov ah, cs:[si]
    inc si
    mov cx, 8
2:  xor al, al
    shl ah, 1
    jnc 3f
    mov al, bl
3:  stosb
    loop 2b
    add di, 320 - 8
    dec bh
    jnz 1b
    popa
    ret
    /* mode 12h: 16 rows of one byte per plane, 80 bytes a scan line */
30: shl si, 4
    add si, offset font8x16
    movzx ax, dh
    imul di, ax, 16 * 80
    movzx ax, dl
    add di, ax
    mov dx, SEQ_INDEX
    mov ax, 0x0F02                  /* map mask: all planes */
    out dx, ax
    mov dx, GC_INDEX
    mov ax, 0x0F01                  /* enable set/reset on all planes */
    out dx, ax
    mov ax, 0x0003                  /* replace, no rotation */
    out dx, ax
    mov ax, 0x0005                  /* write mode 0 */
    out dx, ax
    mov cx, 16
4:  mov ax, 0x0000                  /* the whole byte in colour 0 ... */
    out dx, ax
    mov ax, 0xFF08
    out dx, ax
    mov al, es:[di]                 /* (load the latches) */
    mov es:[di], al
    mov al, 0x00                    /* ... then the glyph's bits in the colour */
    mov ah, bl
    and ah, 0x0F
    out dx, ax
    mov al, 0x08
    mov ah, cs:[si]
    out dx, ax
    mov al, es:[di]
    mov es:[di], al
    inc si
    add di, 80
    loop 4b
    mov ax, 0x0001                  /* set/reset off, bit mask all: as the BIOS leaves them */
    out dx, ax
    mov ax, 0xFF08
    out dx, ax
    popa
    ret

/* gfx_scroll_up: the picture moves up one text row; the last row is cleared. */
gfx_scroll_up:
    pusha
    push ds
    push es
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    push GFX_SEG
    pop es
    push GFX_SEG
    pop ds
    cld
    jne 30f
    mov si, 8 * 320
    xor di, di
    mov cx, 24 * 8 * 320 / 2
    rep movsw
    xor ax, ax
    mov cx, 8 * 320 / 2
    rep stosw
    jmp 90f
30: mov dx, SEQ_INDEX
    mov ax, 0x0F02                  /* map mask: all planes */
    out dx, ax
    mov dx, GC_INDEX
    mov ax, 0x0105                  /* write mode 1: each read loads, each write stores, the latches */
    out dx, ax
    mov si, 16 * 80
    xor di, di
    mov cx, 29 * 16 * 80
    rep movsb
    mov ax, 0x0005                  /* write mode 0, set/reset colour 0 for the last row */
    out dx, ax
    mov ax, 0x0000
    out dx, ax
    mov ax, 0x0F01
    out dx, ax
    mov ax, 0xFF08
    out dx, ax
    mov cx, 16 * 80
    rep stosb
    mov ax, 0x0001
    out dx, ax
90: pop es
    pop ds
    popa
    ret
