/*
 * video.S — INT 10h on an 80x25 colour text screen (mode 3).
 *
 * The screen is the VGA text buffer at B800:0000: 2000 cells of (character,
 * attribute) byte pairs, row after row.  The hardware cursor is CRTC
 * registers 0Eh/0Fh (cell index, high and low byte) and its shape registers
 * 0Ah/0Bh, reached through the index/data ports 3D4h/3D5h.  The BIOS keeps
 * the mode, the cursor positions and shape in the BDA (0x449-0x489), as the
 * IBM BIOS did; programs read them there.
 *
 * vmm's text buffer is plain memory that is always in text mode.  A real VGA
 * (QEMU's, for instance) powers up with no mode set, and normally its own
 * option ROM programs it; we have no option ROM, so video_init checks whether
 * B800:0000 behaves like memory and, if not, programs the VGA registers for
 * mode 3 itself (vga_program_mode3).  No glyph font is loaded: on QEMU's
 * graphical display the text stays invisible, but the buffer, the BDA and the
 * serial mirror are all correct.
 *
 * Only page 0 exists.  Teletype (AH=0Eh) and write string (AH=13h) also send
 * every byte, unchanged, to COM1 (serial.S) unless CMOS option bit 1 is set.
 */
    .include "bios.inc"

    .section .text

COLS = 80
ROWS = 25
TEXT_SEG = 0xB800
DEFAULT_ATTR = 0x07                 /* light grey on black */

/* video_init: set mode 3 (POST). */
    .globl video_init
video_init:
    pusha
    mov al, 0x03
    call video_set_mode
    popa
    ret

/*
 * video_set_mode: AL = mode (bit 7 set: do not clear the screen).  Modes 2, 3
 * and 7 all become mode 3; others are ignored (CF = 1).
 */
video_set_mode:
    pusha
    push ds
    push es
    mov bl, al                      /* BL bit 7: keep the screen contents */
    and al, 0x7F
    cmp al, 0x13
    je 7f
    cmp al, 0x12
    je 7f
    cmp al, 0x02
    je 1f
    cmp al, 0x03
    je 1f
    cmp al, 0x07
    je 1f
    stc
    jmp 9f
1:  call vga_ensure_text_mode
    call vga_leave_graphics
    push BDA_SEG
    pop ds
    mov byte ptr ds:[BDA_VIDEO_MODE], 0x03
    mov word ptr ds:[BDA_VIDEO_COLS], COLS
    mov word ptr ds:[BDA_VIDEO_PAGESZ], 0x1000
    mov word ptr ds:[BDA_VIDEO_START], 0
    mov byte ptr ds:[BDA_VIDEO_PAGE], 0
    mov word ptr ds:[BDA_CRTC_PORT], CRTC_INDEX
    mov byte ptr ds:[BDA_VIDEO_MSR], 0x29
    mov byte ptr ds:[BDA_VIDEO_PAL], 0x30
    mov byte ptr ds:[BDA_VIDEO_ROWS], ROWS - 1
    mov word ptr ds:[BDA_VIDEO_CHARH], 16
    mov byte ptr ds:[BDA_VIDEO_CTL], 0x60
    mov byte ptr ds:[BDA_VIDEO_SW], 0x09
    mov byte ptr ds:[BDA_VIDEO_FLAGS], 0x51
    /* all 8 cursor positions to the top left corner */
    push ds
    pop es
    mov di, BDA_CURSOR_POS
    xor ax, ax
    mov cx, 8
    rep stosw
    mov cx, 0x0607                  /* underline cursor: scan lines 6-7 */
    call vga_set_cursor_shape
    call vga_update_cursor
    test bl, 0x80
    jnz 8f
    /* clear the screen: spaces in the default attribute */
    push TEXT_SEG
    pop es
    xor di, di
    mov ax, (DEFAULT_ATTR << 8) | ' '
    mov cx, COLS * ROWS
    rep stosw
8:  clc
9:  pop es
    pop ds
    popa
    ret
7:  call vga_set_graphics_mode
    jmp 8b

/*
 * vga_set_graphics_mode: AL = 12h (640x480, 16 colours, planar) or 13h
 * (320x200, 256 colours, chain-4); BL bit 7 = keep the display memory.
 * The registers from the mode's table, its DAC colours, the BDA, and the
 * 64 KiB at A000:0000 cleared (through the VGA: colour 0 in every plane).
 */
vga_set_graphics_mode:
    pusha
    push ds
    push es
    mov bh, al
    mov si, offset vga_mode13_regs
    cmp al, 0x13
    je 1f
    mov si, offset vga_mode12_regs
1:  call vga_program
    cmp bh, 0x13
    jne 2f
    call vga_load_dac256
    jmp 3f
2:  call vga_load_dac64
3:  push BDA_SEG
    pop ds
    mov ds:[BDA_VIDEO_MODE], bh
    mov word ptr ds:[BDA_VIDEO_START], 0
    mov byte ptr ds:[BDA_VIDEO_PAGE], 0
    mov word ptr ds:[BDA_CRTC_PORT], CRTC_INDEX
    push ds
    pop es
    mov di, BDA_CURSOR_POS
    xor ax, ax
    mov cx, 8
    rep stosw
    cmp bh, 0x13
    jne 4f
    mov word ptr ds:[BDA_VIDEO_COLS], 40
    mov word ptr ds:[BDA_VIDEO_PAGESZ], 0xFA00
    mov byte ptr ds:[BDA_VIDEO_ROWS], 24
    mov word ptr ds:[BDA_VIDEO_CHARH], 8
    jmp 5f
4:  mov word ptr ds:[BDA_VIDEO_COLS], 80
    mov word ptr ds:[BDA_VIDEO_PAGESZ], 0xA000
    mov byte ptr ds:[BDA_VIDEO_ROWS], 29
    mov word ptr ds:[BDA_VIDEO_CHARH], 16
5:  test bl, 0x80
    jnz 6f
    push 0xA000
    pop es
    xor di, di
    xor eax, eax
    mov cx, 0x4000                  /* 64 KiB */
    rep stosd
6:  pop es
    pop ds
    popa
    ret

/* vga_leave_graphics: if the graphics controller is in a graphics mode (GC
 * register 6 bit 0), program mode 3's registers and colours again. */
vga_leave_graphics:
    push ax
    push dx
    mov dx, 0x3CE
    mov al, 0x06
    out dx, al
    inc dx
    in al, dx
    test al, 0x01
    jz 1f
    call vga_program_mode3
1:  pop dx
    pop ax
    ret

/*
 * vga_program: one mode's registers from the table at CS:SI: the
 * miscellaneous output register, 5 sequencer, 25 CRTC, 9 graphics controller
 * and 21 attribute controller registers (IBM VGA Technical Reference, "Video
 * Mode Tables").
 */
vga_program:
    pusha
    mov dx, 0x3C2
    mov al, cs:[si]
    out dx, al
    inc si
    mov dx, 0x3C4
    mov cx, 5
    call vga_write_indexed
    mov dx, CRTC_INDEX              /* CRTC: unlock registers 0-7 first */
    mov al, 0x11
    out dx, al
    inc dx
    in al, dx
    and al, 0x7F
    out dx, al
    dec dx
    mov cx, 25
    call vga_write_indexed
    mov dx, 0x3CE
    mov cx, 9
    call vga_write_indexed
    mov dx, 0x3DA                   /* attribute controller: reset the flip-flop */
    in al, dx
    mov dx, 0x3C0
    xor bl, bl
1:  mov al, bl
    out dx, al
    mov al, cs:[si]
    out dx, al
    inc si
    inc bl
    cmp bl, 21
    jb 1b
    mov al, 0x20                    /* palette address source: show video */
    out dx, al
    popa
    ret

/* vga_load_dac256: the VGA's default 256 colours (mode 13h). */
vga_load_dac256:
    pusha
    mov dx, 0x3C8
    xor al, al
    out dx, al
    inc dx
    mov si, offset vga_dac256
    mov cx, 248 * 3
1:  mov al, cs:[si]
    out dx, al
    inc si
    loop 1b
    mov cx, 8 * 3                   /* 248-255: black */
    xor al, al
2:  out dx, al
    loop 2b
    popa
    ret

/*
 * vga_ensure_text_mode: if B800:0000 does not read back what we write, the
 * VGA is not in text mode yet: program it.
 */
vga_ensure_text_mode:
    push ax
    push es
    push TEXT_SEG
    pop es
    mov word ptr es:[0], 0x1E55
    cmp word ptr es:[0], 0x1E55
    jne 1f
    mov word ptr es:[0], 0xE1AA
    cmp word ptr es:[0], 0xE1AA
    je 2f
1:  call vga_program_mode3
2:  pop es
    pop ax
    ret

/*
 * vga_program_mode3: the standard VGA register values for mode 3 (80x25
 * text, 720x400, 16 colours), written as a VGA BIOS would: miscellaneous
 * output, sequencer, CRT controller, graphics controller, attribute
 * controller, then the first 64 DAC colours (the EGA palette).
 * Reference: IBM VGA Technical Reference, "Video Mode Tables".
 */
vga_program_mode3:
    pusha
    mov dx, 0x3C2                   /* miscellaneous output: colour, 28 MHz */
    mov al, 0x67
    out dx, al

    mov dx, 0x3C4                   /* sequencer */
    mov si, offset vga_seq_regs
    mov cx, 5
    call vga_write_indexed

    mov dx, CRTC_INDEX              /* CRTC: unlock registers 0-7 first */
    mov al, 0x11
    out dx, al
    inc dx
    in al, dx
    and al, 0x7F
    out dx, al
    dec dx
    mov si, offset vga_crtc_regs
    mov cx, 25
    call vga_write_indexed

    mov dx, 0x3CE                   /* graphics controller */
    mov si, offset vga_gc_regs
    mov cx, 9
    call vga_write_indexed

    mov dx, 0x3DA                   /* attribute controller: reset flip-flop */
    in al, dx
    mov dx, 0x3C0
    mov si, offset vga_ac_regs
    xor bl, bl
1:  mov al, bl
    out dx, al                      /* index ... */
    mov al, cs:[si]
    out dx, al                      /* ... then data, on the same port */
    inc si
    inc bl
    cmp bl, 21
    jb 1b
    mov al, 0x20                    /* palette address source: show video */
    out dx, al

    call vga_load_dac64
    popa
    ret

/* vga_load_dac64: DAC colours 0-63: bits 0/1/2 = b/g/r at 2/3 intensity, 3/4/5 = b/g/r at 1/3. */
vga_load_dac64:
    pusha
    mov dx, 0x3C8
    xor al, al
    out dx, al
    inc dx                          /* 3C9h: red, green, blue of each entry */
    xor bl, bl
2:  mov cl, 2                       /* red: bits 2 and 5 */
    call dac_component
    mov cl, 1                       /* green: bits 1 and 4 */
    call dac_component
    mov cl, 0                       /* blue: bits 0 and 3 */
    call dac_component
    inc bl
    cmp bl, 64
    jb 2b
    popa
    ret

/* dac_component: BL = colour index, CL = bit of the 2/3 component; writes
 * 2Ah * bit(CL) + 15h * bit(CL+3) to port DX. */
dac_component:
    mov al, bl
    shr al, cl
    mov ah, al
    and al, 1
    mov ch, 0x2A
    mul ch                          /* AX = 2Ah or 0 (AH clobbered) */
    mov ch, al
    mov al, bl
    add cl, 3
    shr al, cl
    and al, 1
    jz 1f
    add ch, 0x15
1:  mov al, ch
    out dx, al
    ret

/* vga_write_indexed: CX registers from CS:SI to index port DX / data DX+1. */
vga_write_indexed:
    xor bl, bl
1:  mov al, bl
    out dx, al
    inc dx
    mov al, cs:[si]
    out dx, al
    dec dx
    inc si
    inc bl
    loop 1b
    ret

/* vga_set_cursor_shape: CH = start scan line, CL = end scan line. */
vga_set_cursor_shape:
    push ax
    push dx
    push ds
    push BDA_SEG
    pop ds
    mov ds:[BDA_CURSOR_SHAPE], cx   /* the BDA keeps end in the low byte */
    mov dx, CRTC_INDEX
    mov al, 0x0A
    mov ah, ch
    call crtc_write
    mov al, 0x0B
    mov ah, cl
    call crtc_write
    pop ds
    pop dx
    pop ax
    ret

/* crtc_write: CRTC register AL = AH. */
crtc_write:
    push dx
    mov dx, CRTC_INDEX
    out dx, al
    inc dx
    mov al, ah
    out dx, al
    pop dx
    ret

/* vga_update_cursor: move the hardware cursor to page 0's cursor in the BDA. */
vga_update_cursor:
    push ax
    push bx
    push ds
    push BDA_SEG
    pop ds
    mov bx, ds:[BDA_CURSOR_POS]     /* BH = row, BL = column */
    mov al, bh
    mov ah, COLS
    mul ah
    xor bh, bh
    add bx, ax                      /* BX = cell index */
    mov al, 0x0E
    mov ah, bh
    call crtc_write
    mov al, 0x0F
    mov ah, bl
    call crtc_write
    pop ds
    pop bx
    pop ax
    ret

/* cell_offset: DH = row, DL = column -> DI = byte offset in the text buffer. */
cell_offset:
    push ax
    mov al, dh
    mov ah, COLS
    mul ah
    add al, dl
    adc ah, 0
    shl ax, 1
    mov di, ax
    pop ax
    ret

/*
 * vga_teletype: write AL as a terminal would, at page 0's cursor, and move
 * the cursor: CR = column 0, LF = next row, BS = one column back, BEL = no
 * sound here; any other byte is printed (keeping the cell's attribute).  Past
 * the last row the screen scrolls up one line.  Preserves all registers.
 * vga_teletype_attr: the same, but printed characters get attribute BL.
 */
    .globl vga_teletype
vga_teletype:
    push bx
    xor bh, bh                      /* BH = 0: keep the attribute */
    jmp 1f
vga_teletype_attr:
    push bx
    mov bh, 1                       /* BH = 1: write attribute BL too */
1:  pusha
    push ds
    push es
    push BDA_SEG
    pop ds
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x12
    je 30f
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    je 30f
    push TEXT_SEG
    pop es
    mov dx, ds:[BDA_CURSOR_POS]     /* DH = row, DL = column */
    cmp al, 0x0D
    je 10f
    cmp al, 0x0A
    je 11f
    cmp al, 0x08
    je 12f
    cmp al, 0x07
    je 20f
    call cell_offset                /* printable: store it */
    mov es:[di], al
    test bh, bh
    jz 2f
    mov es:[di+1], bl
2:  inc dl
    cmp dl, COLS
    jb 20f
    xor dl, dl                      /* wrap to the next line */
    jmp 11f
10: xor dl, dl                      /* CR */
    jmp 20f
11: inc dh                          /* LF */
    cmp dh, ROWS
    jb 20f
    dec dh                          /* scroll up one line, whole screen */
    push dx
    mov al, 1
    mov bh, DEFAULT_ATTR
    xor cx, cx
    mov dx, ((ROWS - 1) << 8) | (COLS - 1)
    xor bl, bl
    call vga_scroll
    pop dx
    jmp 20f
12: test dl, dl                     /* BS */
    jz 20f
    dec dl
20: mov ds:[BDA_CURSOR_POS], dx
    call vga_update_cursor
21: pop es
    pop ds
    popa
    pop bx
    ret
30: test bh, bh                     /* graphics modes (vgatext.S): BL is the colour */
    jnz 31f
    mov bl, 0x07                    /* the BIOS's own messages: light grey */
31: call gfx_teletype
    jmp 21b

/*
 * vga_scroll: scroll a window.  AL = lines (0 = clear the window),
 * BH = attribute for new lines, CH/CL = top row/left column,
 * DH/DL = bottom row/right column, BL = 0 up / 1 down.
 */
vga_scroll:
    pusha
    push ds
    push es
    push bp
    mov bp, sp
    sub sp, 8
    cmp dh, ROWS - 1                /* clip the window to the screen */
    jbe 1f
    mov dh, ROWS - 1
1:  cmp dl, COLS - 1
    jbe 2f
    mov dl, COLS - 1
2:  cmp ch, dh
    ja 90f
    cmp cl, dl
    ja 90f
    mov ah, dh
    sub ah, ch
    inc ah                          /* AH = window height */
    test al, al
    jz 3f
    cmp al, ah
    jbe 4f
3:  mov al, ah                      /* 0 or too many lines: clear it all */
4:  mov [bp-1], al                  /* lines */
    mov [bp-2], bh                  /* attribute */
    mov [bp-3], ch                  /* top */
    mov [bp-4], cl                  /* left */
    mov [bp-5], dh                  /* bottom */
    sub dl, cl
    inc dl
    mov [bp-6], dl                  /* width */
    push TEXT_SEG
    pop ds
    push TEXT_SEG
    pop es
    cld
    test bl, bl
    jnz 50f

    /* up: row r gets row r + lines, or blanks */
    mov dh, [bp-3]
10: cmp dh, [bp-5]
    ja 90f
    mov bl, dh
    add bl, [bp-1]                  /* source row */
    call scroll_one_row
    inc dh
    jmp 10b

    /* down: row r gets row r - lines, or blanks; bottom row first */
50: mov dh, [bp-5]
51: cmp dh, [bp-3]
    jl 90f
    cmp dh, 0
    jl 90f
    mov bl, dh
    sub bl, [bp-1]
    jc 52f                          /* source above row 0: blank */
    cmp bl, [bp-3]
    jae 53f
52: mov bl, 0xFF                    /* force a blank row */
53: call scroll_one_row
    dec dh
    jmp 51b

90: mov sp, bp
    pop bp
    pop es
    pop ds
    popa
    ret

/* scroll_one_row (inside vga_scroll's frame): DH = destination row,
 * BL = source row; if BL is outside the window, fill with blanks. */
scroll_one_row:
    push dx
    mov dl, [bp-4]
    call cell_offset                /* DI = destination */
    movzx cx, byte ptr [bp-6]
    cmp bl, [bp-5]
    ja 1f
    cmp bl, [bp-3]
    jb 1f
    mov dh, bl
    push di
    call cell_offset
    mov si, di                      /* SI = source */
    pop di
    rep movsw
    pop dx
    ret
1:  mov ah, [bp-2]
    mov al, ' '
    rep stosw
    pop dx
    ret

/*
 * console_putc: the BIOS's own output (banner, messages) and INT 10h AH=0Eh:
 * teletype on the screen, and the same byte on COM1 unless option bit 1 --
 * set by CMOS (`vmm run --no-bios-serial`, a bundle's serialConsole), or here,
 * for good, the first time COM1 is no longer as serial_init left it.
 */
    .globl console_putc
console_putc:
    call vga_teletype
    /* fall through */
serial_mirror:
    push fs
    call ebda_fs
    test byte ptr fs:[EBDA_OPTIONS], OPT_NOSERIAL
    jnz 1f
    call com1_as_the_bios_left_it
    je 2f
    or byte ptr fs:[EBDA_OPTIONS], OPT_NOSERIAL
    jmp 1f
2:  call serial_putc
1:  pop fs
    ret

/*
 * com1_as_the_bios_left_it: ZF = 1 if COM1 still has serial_init's setup: LCR
 * 03h (8N1, DLAB 0), IER 00h, MCR 03h and FIFOs off (IIR bits 7-6 = 00).  A
 * guest that programs COM1 itself (syslinux SERIAL, GRUB's serial terminal, a
 * kernel's 8250 driver) changes at least one of them -- enabling the FIFOs or
 * OUT2, or interrupts -- and then writes COM1 itself: copying the screen there
 * too would double every byte.  Reading IIR with IER = 0 has no side effect.
 */
com1_as_the_bios_left_it:
    push ax
    push dx
    mov dx, COM1 + UART_LCR
    in al, dx
    cmp al, 0x03
    jne 1f
    mov dx, COM1 + UART_IER
    in al, dx
    test al, al
    jnz 1f
    mov dx, COM1 + UART_MCR
    in al, dx
    and al, 0x1F
    cmp al, 0x03
    jne 1f
    mov dx, COM1 + UART_IIR
    in al, dx
    test al, 0xC0
1:  pop dx
    pop ax
    ret

/* ------------------------------------------------------------- INT 10h */
/*
 *   AH=00h set mode: AL = 2/3/7 -> mode 3 (bit 7: keep screen); AL returns 30h
 *   AH=01h cursor shape: CH = start line, CL = end line
 *   AH=02h set cursor: BH = page, DH = row, DL = column
 *   AH=03h get cursor: BH = page -> CX = shape, DH = row, DL = column
 *   AH=05h set active page: AL = page (only 0 exists)
 *   AH=06h/07h scroll window up/down: AL = lines (0 = clear), BH = attribute,
 *          CH,CL = top left, DH,DL = bottom right
 *   AH=08h read at cursor: BH = page -> AL = character, AH = attribute
 *   AH=09h write AL with attribute BL, CX times, at the cursor (cursor stays)
 *   AH=0Ah write AL (keep attributes), CX times, at the cursor (cursor stays)
 *   AH=0Eh teletype AL (also to COM1)
 *   AH=0Fh get mode -> AL = mode, AH = columns, BH = active page
 *   AH=11h AL=30h font information -> CX = 16 (char height), DL = rows - 1
 *   AH=12h BL=10h EGA/VGA information -> BH = 0 (colour), BL = 3 (256 KiB), CX = 0
 *   AH=13h write string: AL bit 0 = move cursor, bit 1 = string has attributes,
 *          BL = attribute, CX = length, DH,DL = position, ES:BP = string (also to COM1)
 *   AH=1Ah AL=00h display combination -> AL = 1Ah, BL = 08h (VGA colour), BH = 0
 * Anything else returns with the registers unchanged.
 */
    .globl int10_video
int10_video:
    sti
    cld
    ENTER_SERVICE
    push BDA_SEG
    pop ds
    mov ah, [bp+F_AH]
    mov al, [bp+F_AL]
    cmp ah, 0x00
    je v_set_mode
    cmp ah, 0x01
    je v_cursor_shape
    cmp ah, 0x02
    je v_set_cursor
    cmp ah, 0x03
    je v_get_cursor
    cmp ah, 0x06
    je v_scroll_up
    cmp ah, 0x07
    je v_scroll_down
    cmp ah, 0x08
    je v_read_char
    cmp ah, 0x09
    je v_write_char_attr
    cmp ah, 0x0A
    je v_write_char
    cmp ah, 0x0B
    je v_background
    cmp ah, 0x0C
    je v_write_pixel
    cmp ah, 0x0D
    je v_read_pixel
    cmp ah, 0x0E
    je v_teletype
    cmp ah, 0x10
    je v_palette
    cmp ah, 0x0F
    je v_get_mode
    cmp ah, 0x11
    je v_font_info
    cmp ah, 0x12
    je v_ega_info
    cmp ah, 0x13
    je v_write_string
    cmp ah, 0x1A
    je v_display_combination
v_done:                             /* AH=05h and unknown functions land here */
    LEAVE_SERVICE

v_set_mode:
    call video_set_mode
    mov byte ptr [bp+F_AL], 0x30
    jmp v_done

v_cursor_shape:
    mov cx, [bp+F_CX]
    call vga_set_cursor_shape
    jmp v_done

v_set_cursor:
    movzx bx, byte ptr [bp+F_BH]
    and bl, 7
    shl bx, 1
    mov dx, [bp+F_DX]
    mov ds:[BDA_CURSOR_POS+bx], dx
    test bx, bx
    jnz v_done
    call vga_update_cursor
    jmp v_done

v_get_cursor:
    movzx bx, byte ptr [bp+F_BH]
    and bl, 7
    shl bx, 1
    mov dx, ds:[BDA_CURSOR_POS+bx]
    mov [bp+F_DX], dx
    mov cx, ds:[BDA_CURSOR_SHAPE]
    mov [bp+F_CX], cx
    jmp v_done

v_scroll_up:
    xor bl, bl
    jmp 1f
v_scroll_down:
    mov bl, 1
1:  mov al, [bp+F_AL]
    mov bh, [bp+F_BH]
    mov cx, [bp+F_CX]
    mov dx, [bp+F_DX]
    call vga_scroll
    jmp v_done

v_read_char:
    mov dx, ds:[BDA_CURSOR_POS]
    call cell_offset
    push TEXT_SEG
    pop es
    mov ax, es:[di]
    mov [bp+F_AX], ax
    jmp v_done

v_write_char_attr:
    mov ah, [bp+F_BL]
    mov bl, 1                       /* BL = 1: write the attribute too */
    jmp 1f
v_write_char:
    xor bl, bl
1:  mov dx, ds:[BDA_CURSOR_POS]
    call cell_offset
    push TEXT_SEG
    pop es
    mov cx, [bp+F_CX]
2:  test cx, cx
    jz 4f
    cmp di, COLS * ROWS * 2         /* stop at the end of the screen */
    jae 4f
    mov es:[di], al
    test bl, bl
    jz 3f
    mov es:[di+1], ah
3:  add di, 2
    dec cx
    jmp 2b
4:  jmp v_done

v_teletype:
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x12
    jb 1f
    mov bl, [bp+F_BL]               /* graphics modes: BL = the foreground colour */
    call vga_teletype_attr
    call serial_mirror
    jmp v_done
1:  call console_putc
    jmp v_done

/*
 * AH=0Ch write pixel: AL = colour (bit 7: XOR it in, 16-colour mode), CX = x,
 * DX = y.  AH=0Dh read pixel: CX = x, DX = y -> AL = colour.  Modes 12h and
 * 13h; other modes: nothing.  Off-screen coordinates are ignored (read 0).
 */
v_write_pixel:
    call pixel_address              /* ES:DI, AH = bit mask; CF: not a graphics mode */
    jc v_done
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    jne 1f
    mov al, [bp+F_AL]
    mov es:[di], al
    jmp v_done
1:  mov dx, 0x3CE                   /* planar: set/reset = colour, bit mask = the pixel */
    mov al, 0x00
    mov ah, [bp+F_AL]
    and ah, 0x0F
    out dx, ax
    mov ax, 0x0F01                  /* enable set/reset on all planes */
    out dx, ax
    mov ax, 0x0003                  /* replace ... */
    test byte ptr [bp+F_AL], 0x80
    jz 2f
    mov ax, 0x1803                  /* ... or XOR */
2:  out dx, ax
    call pixel_address
    mov al, 0x08
    out dx, ax                      /* bit mask */
    mov al, es:[di]                 /* fill the latches */
    mov es:[di], al
    mov ax, 0xFF08                  /* back to the defaults */
    out dx, ax
    mov ax, 0x0001
    out dx, ax
    mov ax, 0x0003
    out dx, ax
    jmp v_done

v_read_pixel:
    mov byte ptr [bp+F_AL], 0
    call pixel_address
    jc v_done
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    jne 1f
    mov al, es:[di]
    mov [bp+F_AL], al
    jmp v_done
1:  mov bl, ah                      /* the pixel's bit */
    xor bh, bh                      /* BH = colour */
    mov dx, 0x3CE
    mov cl, 3
2:  mov al, 0x04                    /* read map select = plane CL */
    mov ah, cl
    out dx, ax
    shl bh, 1
    test es:[di], bl
    jz 3f
    or bh, 1
3:  dec cl
    jns 2b
    mov ax, 0x0004
    out dx, ax
    mov [bp+F_AL], bh
    jmp v_done

/* pixel_address: for CX = x, DX = y (frame) in mode 12h/13h: ES = A000h,
 * DI = byte offset, AH = the pixel's bit (mode 12h); CF = 1 if not such a mode
 * or off screen. */
pixel_address:
    push bx
    push 0xA000
    pop es
    mov cx, [bp+F_CX]
    mov bx, [bp+F_DX]
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x13
    jne 1f
    cmp cx, 320
    jae 8f
    cmp bx, 200
    jae 8f
    imul di, bx, 320
    add di, cx
    jmp 7f
1:  cmp byte ptr ds:[BDA_VIDEO_MODE], 0x12
    jne 8f
    cmp cx, 640
    jae 8f
    cmp bx, 480
    jae 8f
    imul di, bx, 80
    mov ax, cx
    shr ax, 3
    add di, ax
    and cl, 7
    mov ah, 0x80
    shr ah, cl
7:  clc
    pop bx
    ret
8:  stc
    pop bx
    ret

/* AH=0Bh BH=00h: border (overscan) colour BL, and in mode 12h the background
 * (palette register 0); BH=01h (CGA palettes): nothing on a VGA mode. */
v_background:
    cmp byte ptr [bp+F_BH], 0
    jne v_done
    mov bh, [bp+F_BL]
    mov bl, 0x11
    call ac_write
    cmp byte ptr ds:[BDA_VIDEO_MODE], 0x12
    jne v_done
    mov bh, [bp+F_BL]
    and bh, 0x0F
    test byte ptr [bp+F_BL], 0x10   /* intensity */
    jz 1f
    or bh, 0x38
1:  xor bl, bl
    call ac_write
    jmp v_done

/* ac_write: attribute controller register BL = BH (video stays on). */
ac_write:
    push ax
    push dx
    mov dx, 0x3DA
    in al, dx
    mov dx, 0x3C0
    mov al, bl
    out dx, al
    mov al, bh
    out dx, al
    mov al, 0x20
    out dx, al
    pop dx
    pop ax
    ret

/* ac_read: BH = attribute controller register BL. */
ac_read:
    push ax
    push dx
    mov dx, 0x3DA
    in al, dx
    mov dx, 0x3C0
    mov al, bl
    out dx, al
    inc dx
    in al, dx
    mov bh, al
    mov dx, 0x3DA
    in al, dx
    mov dx, 0x3C0
    mov al, 0x20
    out dx, al
    pop dx
    pop ax
    ret

/*
 * AH=10h palette registers and DAC:
 *   AL=00h palette register BL = BH     01h overscan = BH
 *   AL=02h registers 0-15 and overscan from the 17 bytes at ES:DX
 *   AL=07h BH = palette register BL     08h BH = overscan
 *   AL=09h registers 0-15 and overscan into the 17 bytes at ES:DX
 *   AL=10h DAC entry BX = DH red, CH green, CL blue
 *   AL=12h DAC entries BX.. (CX of them) from ES:DX (3 bytes each)
 *   AL=15h DH, CH, CL = DAC entry BX
 *   AL=17h DAC entries BX.. (CX of them) into ES:DX
 */
v_palette:
    mov al, [bp+F_AL]
    cmp al, 0x00
    je p_set_register
    cmp al, 0x01
    je p_set_overscan
    cmp al, 0x02
    je p_set_all
    cmp al, 0x07
    je p_get_register
    cmp al, 0x08
    je p_get_overscan
    cmp al, 0x09
    je p_get_all
    cmp al, 0x10
    je p_set_dac
    cmp al, 0x12
    je p_set_dac_block
    cmp al, 0x15
    je p_get_dac
    cmp al, 0x17
    je p_get_dac_block
    jmp v_done
p_set_register:
    mov bx, [bp+F_BX]
    and bl, 0x0F
    call ac_write
    jmp v_done
p_set_overscan:
    mov bh, [bp+F_BH]
    mov bl, 0x11
    call ac_write
    jmp v_done
p_set_all:
    mov es, [bp+F_ES]
    mov si, [bp+F_DX]
    xor bl, bl
1:  mov bh, es:[si]
    call ac_write
    inc si
    inc bl
    cmp bl, 16
    jb 1b
    mov bh, es:[si]
    mov bl, 0x11
    call ac_write
    jmp v_done
p_get_register:
    mov bl, [bp+F_BL]
    and bl, 0x1F
    call ac_read
    mov [bp+F_BH], bh
    jmp v_done
p_get_overscan:
    mov bl, 0x11
    call ac_read
    mov [bp+F_BH], bh
    jmp v_done
p_get_all:
    mov es, [bp+F_ES]
    mov di, [bp+F_DX]
    xor bl, bl
1:  call ac_read
    mov es:[di], bh
    inc di
    inc bl
    cmp bl, 16
    jb 1b
    mov bl, 0x11
    call ac_read
    mov es:[di], bh
    jmp v_done
p_set_dac:
    mov dx, 0x3C8
    mov al, [bp+F_BL]
    out dx, al
    inc dx
    mov al, [bp+F_DH]
    out dx, al
    mov al, [bp+F_CH]
    out dx, al
    mov al, [bp+F_CL]
    out dx, al
    jmp v_done
p_set_dac_block:
    mov es, [bp+F_ES]
    mov si, [bp+F_DX]
    mov dx, 0x3C8
    mov al, [bp+F_BL]
    out dx, al
    inc dx
    mov cx, [bp+F_CX]
    cmp cx, 256
    jbe 1f
    mov cx, 256
1:  imul cx, cx, 3
    jcxz 3f
2:  mov al, es:[si]
    out dx, al
    inc si
    loop 2b
3:  jmp v_done
p_get_dac:
    mov dx, 0x3C7
    mov al, [bp+F_BL]
    out dx, al
    mov dx, 0x3C9
    in al, dx
    mov [bp+F_DH], al
    in al, dx
    mov [bp+F_CH], al
    in al, dx
    mov [bp+F_CL], al
    jmp v_done
p_get_dac_block:
    mov es, [bp+F_ES]
    mov di, [bp+F_DX]
    mov dx, 0x3C7
    mov al, [bp+F_BL]
    out dx, al
    mov dx, 0x3C9
    mov cx, [bp+F_CX]
    cmp cx, 256
    jbe 1f
    mov cx, 256
1:  imul cx, cx, 3
    jcxz 3f
2:  in al, dx
    mov es:[di], al
    inc di
    loop 2b
3:  jmp v_done

v_get_mode:
    mov al, ds:[BDA_VIDEO_MODE]
    mov ah, ds:[BDA_VIDEO_COLS]
    mov [bp+F_AX], ax
    mov al, ds:[BDA_VIDEO_PAGE]
    mov [bp+F_BH], al
    jmp v_done

v_font_info:
    cmp al, 0x30
    jne v_done
    mov word ptr [bp+F_CX], 16
    mov byte ptr [bp+F_DL], ROWS - 1
    jmp v_done

v_ega_info:
    cmp byte ptr [bp+F_BL], 0x10
    jne v_done
    mov word ptr [bp+F_BX], 0x0003  /* BH = 0 colour, BL = 3: 256 KiB */
    mov word ptr [bp+F_CX], 0x0009  /* feature bits 0, switch setting 9 */
    jmp v_done

v_display_combination:
    test al, al
    jnz v_done
    mov byte ptr [bp+F_AL], 0x1A    /* function supported */
    mov word ptr [bp+F_BX], 0x0008  /* active: VGA with colour display */
    jmp v_done

v_write_string:
    mov dx, ds:[BDA_CURSOR_POS]
    push dx                         /* the cursor to restore if AL bit 0 = 0 */
    mov dx, [bp+F_DX]
    mov ds:[BDA_CURSOR_POS], dx
    mov es, [bp+F_ES]
    mov si, [bp+F_BP]
    mov cx, [bp+F_CX]
    mov bl, [bp+F_BL]
1:  jcxz 3f
    mov al, es:[si]
    inc si
    test byte ptr [bp+F_AL], 0x02
    jz 2f
    mov bl, es:[si]                 /* (character, attribute) pairs */
    inc si
2:  call vga_teletype_attr
    call serial_mirror
    dec cx
    jmp 1b
3:  pop dx
    test byte ptr [bp+F_AL], 0x01
    jnz 4f
    mov ds:[BDA_CURSOR_POS], dx
4:  call vga_update_cursor
    jmp v_done

    .section .rodata
vga_seq_regs:   .byte 0x03, 0x00, 0x03, 0x00, 0x02
vga_crtc_regs:  .byte 0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F
                .byte 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00
                .byte 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF
vga_gc_regs:    .byte 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF
vga_ac_regs:    .byte 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07
                .byte 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F
                .byte 0x0C, 0x00, 0x0F, 0x08, 0x00

/* The graphics modes, in vga_program's order: misc, sequencer, CRTC, GC, AC. */
vga_mode13_regs:                    /* 320x200, 256 colours, chain-4 */
    .byte 0x63
    .byte 0x03, 0x01, 0x0F, 0x00, 0x0E
    .byte 0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F
    .byte 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
    .byte 0x9C, 0x8E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF
    .byte 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF
    .byte 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
    .byte 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
    .byte 0x41, 0x00, 0x0F, 0x00, 0x00
vga_mode12_regs:                    /* 640x480, 16 colours, planar */
    .byte 0xE3
    .byte 0x03, 0x01, 0x0F, 0x00, 0x06
    .byte 0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0x0B, 0x3E
    .byte 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
    .byte 0xEA, 0x8C, 0xDF, 0x28, 0x00, 0xE7, 0x04, 0xE3, 0xFF
    .byte 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0F, 0xFF
    .byte 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07
    .byte 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F
    .byte 0x01, 0x00, 0x0F, 0x00, 0x00

/* The VGA's default 256-colour DAC (6 bits per component), entries 0-247: the
 * 16 EGA colours, 16 greys, then 9 rings of 24 hues (3 intensities x 3
 * saturations). */
vga_dac256:
    .byte 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x2A, 0x00, 0x00, 0x2A, 0x2A
    .byte 0x2A, 0x00, 0x00, 0x2A, 0x00, 0x2A, 0x2A, 0x15, 0x00, 0x2A, 0x2A, 0x2A
    .byte 0x15, 0x15, 0x15, 0x15, 0x15, 0x3F, 0x15, 0x3F, 0x15, 0x15, 0x3F, 0x3F
    .byte 0x3F, 0x15, 0x15, 0x3F, 0x15, 0x3F, 0x3F, 0x3F, 0x15, 0x3F, 0x3F, 0x3F
    .byte 0x00, 0x00, 0x00, 0x05, 0x05, 0x05, 0x08, 0x08, 0x08, 0x0B, 0x0B, 0x0B
    .byte 0x0E, 0x0E, 0x0E, 0x11, 0x11, 0x11, 0x14, 0x14, 0x14, 0x18, 0x18, 0x18
    .byte 0x1C, 0x1C, 0x1C, 0x20, 0x20, 0x20, 0x24, 0x24, 0x24, 0x28, 0x28, 0x28
    .byte 0x2D, 0x2D, 0x2D, 0x32, 0x32, 0x32, 0x38, 0x38, 0x38, 0x3F, 0x3F, 0x3F
    .byte 0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F, 0x00, 0x3F
    .byte 0x3F, 0x00, 0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10
    .byte 0x3F, 0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F, 0x00
    .byte 0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10, 0x3F, 0x00
    .byte 0x00, 0x3F, 0x00, 0x00, 0x3F, 0x10, 0x00, 0x3F, 0x1F, 0x00, 0x3F, 0x2F
    .byte 0x00, 0x3F, 0x3F, 0x00, 0x2F, 0x3F, 0x00, 0x1F, 0x3F, 0x00, 0x10, 0x3F
    .byte 0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37, 0x1F, 0x3F
    .byte 0x3F, 0x1F, 0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27
    .byte 0x3F, 0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37, 0x1F
    .byte 0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27, 0x3F, 0x1F
    .byte 0x1F, 0x3F, 0x1F, 0x1F, 0x3F, 0x27, 0x1F, 0x3F, 0x2F, 0x1F, 0x3F, 0x37
    .byte 0x1F, 0x3F, 0x3F, 0x1F, 0x37, 0x3F, 0x1F, 0x2F, 0x3F, 0x1F, 0x27, 0x3F
    .byte 0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A, 0x2D, 0x3F
    .byte 0x3F, 0x2D, 0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31
    .byte 0x3F, 0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A, 0x2D
    .byte 0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31, 0x3F, 0x2D
    .byte 0x2D, 0x3F, 0x2D, 0x2D, 0x3F, 0x31, 0x2D, 0x3F, 0x36, 0x2D, 0x3F, 0x3A
    .byte 0x2D, 0x3F, 0x3F, 0x2D, 0x3A, 0x3F, 0x2D, 0x36, 0x3F, 0x2D, 0x31, 0x3F
    .byte 0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15, 0x00, 0x1C
    .byte 0x1C, 0x00, 0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07
    .byte 0x1C, 0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15, 0x00
    .byte 0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07, 0x1C, 0x00
    .byte 0x00, 0x1C, 0x00, 0x00, 0x1C, 0x07, 0x00, 0x1C, 0x0E, 0x00, 0x1C, 0x15
    .byte 0x00, 0x1C, 0x1C, 0x00, 0x15, 0x1C, 0x00, 0x0E, 0x1C, 0x00, 0x07, 0x1C
    .byte 0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18, 0x0E, 0x1C
    .byte 0x1C, 0x0E, 0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11
    .byte 0x1C, 0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18, 0x0E
    .byte 0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11, 0x1C, 0x0E
    .byte 0x0E, 0x1C, 0x0E, 0x0E, 0x1C, 0x11, 0x0E, 0x1C, 0x15, 0x0E, 0x1C, 0x18
    .byte 0x0E, 0x1C, 0x1C, 0x0E, 0x18, 0x1C, 0x0E, 0x15, 0x1C, 0x0E, 0x11, 0x1C
    .byte 0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A, 0x14, 0x1C
    .byte 0x1C, 0x14, 0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16
    .byte 0x1C, 0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A, 0x14
    .byte 0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16, 0x1C, 0x14
    .byte 0x14, 0x1C, 0x14, 0x14, 0x1C, 0x16, 0x14, 0x1C, 0x18, 0x14, 0x1C, 0x1A
    .byte 0x14, 0x1C, 0x1C, 0x14, 0x1A, 0x1C, 0x14, 0x18, 0x1C, 0x14, 0x16, 0x1C
    .byte 0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C, 0x00, 0x10
    .byte 0x10, 0x00, 0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04
    .byte 0x10, 0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C, 0x00
    .byte 0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04, 0x10, 0x00
    .byte 0x00, 0x10, 0x00, 0x00, 0x10, 0x04, 0x00, 0x10, 0x08, 0x00, 0x10, 0x0C
    .byte 0x00, 0x10, 0x10, 0x00, 0x0C, 0x10, 0x00, 0x08, 0x10, 0x00, 0x04, 0x10
    .byte 0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E, 0x08, 0x10
    .byte 0x10, 0x08, 0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A
    .byte 0x10, 0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E, 0x08
    .byte 0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A, 0x10, 0x08
    .byte 0x08, 0x10, 0x08, 0x08, 0x10, 0x0A, 0x08, 0x10, 0x0C, 0x08, 0x10, 0x0E
    .byte 0x08, 0x10, 0x10, 0x08, 0x0E, 0x10, 0x08, 0x0C, 0x10, 0x08, 0x0A, 0x10
    .byte 0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F, 0x0B, 0x10
    .byte 0x10, 0x0B, 0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C
    .byte 0x10, 0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F, 0x0B
    .byte 0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C, 0x10, 0x0B
    .byte 0x0B, 0x10, 0x0B, 0x0B, 0x10, 0x0C, 0x0B, 0x10, 0x0D, 0x0B, 0x10, 0x0F
    .byte 0x0B, 0x10, 0x10, 0x0B, 0x0F, 0x10, 0x0B, 0x0D, 0x10, 0x0B, 0x0C, 0x10

