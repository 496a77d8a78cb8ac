/*
 * keyboard.S — keystrokes from two sources into one BDA buffer, and INT 16h.
 *
 * 1. The PS/2 keyboard behind the 8042 controller: IRQ 1 -> INT 09h reads a
 *    scan code (set 1: the 8042 translates the keyboard's set 2), tracks the
 *    shift/ctrl/alt/lock state in the BDA (0x417) and turns make codes into
 *    (scan << 8 | ASCII) words.
 * 2. The serial console: bytes received on COM1 are turned into the same kind
 *    of words (CR -> 1C0Dh, "a" -> 1E61h, ...).  COM1 is polled on every timer
 *    tick and whenever INT 16h looks for a key.
 *
 * The words go into the 16-word ring buffer at 0040:001E; the head (0x41A)
 * is the oldest key, the tail (0x41C) the next free slot, head == tail means
 * empty, and one slot always stays free.
 */
    .include "bios.inc"

    .section .text

/* ------------------------------------------------------------ the 8042 */

/* kbc_wait_write: wait until the 8042 can take a byte (status bit 1 clear). */
kbc_wait_write:
    push ax
    push cx
    mov cx, 0xFFFF
1:  in al, KBC_STATUS
    test al, KBC_STAT_IBF
    jz 2f
    loop 1b
2:  pop cx
    pop ax
    ret

/*
 * keyboard_init: flush whatever the 8042 holds, then set its command byte to
 * 61h: translate to scan code set 1, "system flag" (POST passed), keyboard
 * interrupt (IRQ 1) on.  No keyboard reset: the 8042 of QEMU and vmm start
 * with a working keyboard, and a reset costs time.
 */
    .globl keyboard_init
keyboard_init:
    push cx
    mov cx, 16
1:  in al, KBC_STATUS               /* drain the output buffer */
    test al, KBC_STAT_OBF
    jz 2f
    cmp al, 0xFF                    /* no controller at all */
    je 3f
    in al, KBC_DATA
    loop 1b
2:  call kbc_wait_write
    mov al, 0x60                    /* "write command byte" */
    out KBC_CMD, al
    call kbc_wait_write
    mov al, 0x61
    out KBC_DATA, al
3:  pop cx
    ret

/*
 * kbd_enqueue: append AX (scan << 8 | ASCII) to the BDA buffer; CF = 1 if it
 * is full.  Call with interrupts off.  Preserves all registers.
 */
    .globl kbd_enqueue
kbd_enqueue:
    push bx
    push si
    push ds
    push BDA_SEG
    pop ds
    mov bx, ds:[BDA_KBD_TAIL]
    mov si, bx
    add si, 2                       /* the slot after the tail ... */
    cmp si, ds:[BDA_KBD_END]
    jb 1f
    mov si, ds:[BDA_KBD_START]      /* ... wraps to the start */
1:  cmp si, ds:[BDA_KBD_HEAD]
    je 2f                           /* would catch up with the head: full */
    mov ds:[bx], ax
    mov ds:[BDA_KBD_TAIL], si
    clc
    jmp 3f
2:  stc
3:  pop ds
    pop si
    pop bx
    ret

/*
 * serial_poll_keys: move every byte waiting in COM1 into the keyboard buffer.
 * Runs with interrupts off (INT 08h and INT 16h both call it).  Preserves all
 * registers and the caller's interrupt flag.
 *
 * Translation: printable ASCII gets the scan code of that key on a US
 * keyboard; CR or LF is Enter (1C0Dh; an LF right after a CR is dropped, so
 * CR LF is one Enter); BS and DEL are Backspace (0E08h); TAB 0F09h; ESC 011Bh;
 * other control characters are Ctrl+letter; bytes >= 80h get scan code 0.
 */
    .globl serial_poll_keys
serial_poll_keys:
    pushf
    cli
    push ax
    push bx
    push cx
    push fs
    call ebda_fs
    mov cx, 16                      /* at most a buffer's worth per call */
1:  call serial_getc                /* serial.S: AL = byte, CF = 1 if none */
    jc 9f
    mov bl, fs:[EBDA_SERIAL_ESC]    /* BL = previous byte was CR */
    mov byte ptr fs:[EBDA_SERIAL_ESC], 0
    cmp al, 0x0D
    je 10f
    cmp al, 0x0A
    je 11f
    cmp al, 0x08
    je 12f
    cmp al, 0x7F
    je 12f
    cmp al, 0x09
    je 13f
    cmp al, 0x1B
    je 14f
    cmp al, 0x80
    jae 15f
    cmp al, 0x20
    jb 16f
    movzx bx, al                    /* printable: look up its scan code */
    mov ah, cs:[ascii_to_scan - 0x20 + bx]
    jmp 8f
10: mov byte ptr fs:[EBDA_SERIAL_ESC], 1
    mov ax, 0x1C0D
    jmp 8f
11: test bl, bl                     /* LF after CR: already had the Enter */
    jnz 7f
    mov ax, 0x1C0D
    jmp 8f
12: mov ax, 0x0E08
    jmp 8f
13: mov ax, 0x0F09
    jmp 8f
14: mov ax, 0x011B
    jmp 8f
15: xor ah, ah
    jmp 8f
16: movzx bx, al                    /* Ctrl+A .. Ctrl+Z: scan code of the letter */
    mov ah, cs:[ascii_to_scan - 0x20 + 0x40 + bx]
8:  call kbd_enqueue
7:  loop 1b
9:  pop fs
    pop cx
    pop bx
    pop ax
    popf
    ret

/* ------------------------------------------------------------- INT 09h */

KF_RSHIFT = 0x01                    /* BDA 0x417 bits */
KF_LSHIFT = 0x02
KF_CTRL   = 0x04
KF_ALT    = 0x08
KF_SCROLL = 0x10
KF_NUM    = 0x20
KF_CAPS   = 0x40
KF3_E0    = 0x02                    /* BDA 0x496: last byte was the E0 prefix */

/*
 * INT 09h — IRQ 1.  Reads a scan code from the 8042, offers it to INT 15h
 * AH=4Fh (which may change or swallow it), updates the shift state, and
 * queues a key for every make code that means one.
 */
    .globl int09_keyboard
int09_keyboard:
    pusha
    push ds
    push BDA_SEG
    pop ds
    in al, KBC_DATA
    mov ah, 0x4F                    /* keyboard intercept: CF = 1 means "use it" */
    stc
    int 0x15
    jnc 90f
    cmp al, 0xE0                    /* extended-key prefix: remember it */
    jne 1f
    or byte ptr ds:[BDA_KBD_FLAGS3], KF3_E0
    jmp 90f
1:  mov bl, ds:[BDA_KBD_FLAGS3]     /* BL bit 1 = this code had an E0 prefix */
    and byte ptr ds:[BDA_KBD_FLAGS3], ~KF3_E0 & 0xFF
    mov ah, al
    and ah, 0x7F                    /* AH = key, AL bit 7 = released */

    /* the modifiers: shift, ctrl, alt (held) and the locks (toggled) */
    mov cl, KF_LSHIFT
    cmp ah, 0x2A
    je 20f
    mov cl, KF_RSHIFT
    cmp ah, 0x36
    je 20f
    mov cl, KF_CTRL
    cmp ah, 0x1D
    je 20f
    mov cl, KF_ALT
    cmp ah, 0x38
    je 20f
    test al, 0x80                   /* other releases mean nothing */
    jnz 90f
    mov cl, KF_CAPS
    cmp ah, 0x3A
    je 21f
    mov cl, KF_NUM
    cmp ah, 0x45
    je 21f
    mov cl, KF_SCROLL
    cmp ah, 0x46
    je 21f

    /* a key: (scan << 8 | ASCII) */
    test bl, KF3_E0                 /* grey arrows and friends: ASCII E0h */
    jnz 30f
    cmp ah, 0x39
    ja 31f                          /* F-keys, keypad: ASCII 0 */
    movzx si, ah
    mov cl, ds:[BDA_KBD_FLAGS0]
    test cl, KF_ALT
    jnz 31f                         /* Alt+key: ASCII 0 */
    mov al, cs:[scan_to_ascii + si]
    test cl, KF_LSHIFT | KF_RSHIFT
    jz 2f
    mov al, cs:[scan_to_ascii_shift + si]
2:  test cl, KF_CAPS                /* Caps Lock flips the case of letters */
    jz 3f
    mov ch, al
    or ch, 0x20
    cmp ch, 'a'
    jb 3f
    cmp ch, 'z'
    ja 3f
    xor al, 0x20
3:  test cl, KF_CTRL                /* Ctrl+letter: 01h-1Ah */
    jz 4f
    mov ch, al
    or ch, 0x20
    cmp ch, 'a'
    jb 4f
    cmp ch, 'z'
    ja 4f
    and al, 0x1F
4:  jmp 40f
30: mov al, 0xE0
    cmp ah, 0x35                    /* keypad "/" sends E0 35: ASCII "/" */
    jne 40f
    mov al, '/'
    jmp 40f
31: xor al, al
    cmp ah, 0x57                    /* F11/F12 have scan words 85h/86h */
    jne 32f
    mov ah, 0x85
32: cmp ah, 0x58
    jne 40f
    mov ah, 0x86
40: call kbd_enqueue
    jmp 90f

20: test al, 0x80                   /* held modifier: set on make, clear on break */
    jnz 22f
    or ds:[BDA_KBD_FLAGS0], cl
    jmp 90f
22: not cl
    and ds:[BDA_KBD_FLAGS0], cl
    jmp 90f
21: xor ds:[BDA_KBD_FLAGS0], cl      /* lock key: toggle on make */

90: mov al, PIC_EOI
    out PIC1_CMD, al
    pop ds
    popa
    iret

/* ------------------------------------------------------------- INT 16h */
/*
 *   AH=00h/10h wait for a key -> AH = scan code, AL = ASCII (removed from buffer)
 *   AH=01h/11h check for a key -> ZF = 1 if none, else ZF = 0 and AX = key
 *              (left in the buffer)
 *   AH=02h shift flags -> AL = BDA 0x417;  AH=12h -> AX = 0x418:0x417
 *   AH=05h store key CX in the buffer -> AL = 0 stored, 1 buffer full
 *   AH=03h typematic rate, AH=0Ah keyboard ID (-> BX = 41ABh): accepted
 * Functions 00h/01h report the grey-key ASCII code E0h as 00h, as the
 * 83-key BIOS did; 10h/11h keep it.
 */
    .globl int16_keyboard
int16_keyboard:
    ENTER_SERVICE
    push BDA_SEG
    pop ds
    mov ah, [bp+F_AH]
    cmp ah, 0x00
    je k_read
    cmp ah, 0x10
    je k_read
    cmp ah, 0x01
    je k_check
    cmp ah, 0x11
    je k_check
    cmp ah, 0x02
    je k_shift
    cmp ah, 0x12
    je k_shift_ext
    cmp ah, 0x05
    je k_store
    cmp ah, 0x0A
    je k_id
k_done:
    LEAVE_SERVICE

k_read:
    cli
    call serial_poll_keys
    mov bx, ds:[BDA_KBD_HEAD]
    cmp bx, ds:[BDA_KBD_TAIL]
    jne 1f
    sti                             /* nothing yet: sleep until an interrupt */
    hlt                             /* (timer, keyboard) and look again */
    jmp k_read
1:  mov ax, ds:[bx]                 /* take the oldest key */
    add bx, 2
    cmp bx, ds:[BDA_KBD_END]
    jb 2f
    mov bx, ds:[BDA_KBD_START]
2:  mov ds:[BDA_KBD_HEAD], bx
    call k_translate
    mov [bp+F_AX], ax
    jmp k_done

k_check:
    cli
    call serial_poll_keys
    mov bx, ds:[BDA_KBD_HEAD]
    cmp bx, ds:[BDA_KBD_TAIL]
    jne 1f
    or byte ptr [bp+F_FLAGS], FLAG_ZF   /* no key */
    jmp k_done
1:  and byte ptr [bp+F_FLAGS], ~FLAG_ZF & 0xFF
    mov ax, ds:[bx]
    call k_translate
    mov [bp+F_AX], ax
    jmp k_done

/* k_translate: for AH=00h/01h, ASCII E0h (grey key) becomes 00h. */
k_translate:
    test byte ptr [bp+F_AH], 0x10
    jnz 1f
    cmp al, 0xE0
    jne 1f
    xor al, al
1:  ret

k_shift:
    mov al, ds:[BDA_KBD_FLAGS0]
    mov [bp+F_AL], al
    jmp k_done

k_shift_ext:
    mov al, ds:[BDA_KBD_FLAGS0]
    mov ah, ds:[BDA_KBD_FLAGS1]
    mov [bp+F_AX], ax
    jmp k_done

k_store:
    cli
    mov ax, [bp+F_CX]
    call kbd_enqueue
    setc al                         /* AL = 1 if the buffer was full */
    mov [bp+F_AL], al
    jmp k_done

k_id:
    mov word ptr [bp+F_BX], 0x41AB  /* MF2 keyboard, translated */
    jmp k_done

    .section .rodata
/* Set 1 scan code -> ASCII, US layout, codes 00h-39h. */
scan_to_ascii:
    .byte 0, 0x1B
    .ascii "1234567890-="
    .byte 0x08, 0x09
    .ascii "qwertyuiop[]"
    .byte 0x0D, 0
    .ascii "asdfghjkl;'`"
    .byte 0
    .ascii "\\zxcvbnm,./"
    .byte 0, '*', 0, ' '
scan_to_ascii_shift:
    .byte 0, 0x1B
    .ascii "!@#$%^&*()_+"
    .byte 0x08, 0
    .ascii "QWERTYUIOP{}"
    .byte 0x0D, 0
    .ascii "ASDFGHJKL:\"~"
    .byte 0
    .ascii "|ZXCVBNM<>?"
    .byte 0, '*', 0, ' '

/* ASCII 20h-7Eh -> set 1 scan code of the key that types it (US layout). */
ascii_to_scan:
    .byte 0x39, 0x02, 0x28, 0x04, 0x05, 0x06, 0x08, 0x28   /*  !"#$%&' */
    .byte 0x0A, 0x0B, 0x09, 0x0D, 0x33, 0x0C, 0x34, 0x35   /* ()*+,-./ */
    .byte 0x0B, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08   /* 01234567 */
    .byte 0x09, 0x0A, 0x27, 0x27, 0x33, 0x0D, 0x34, 0x35   /* 89:;<=>? */
    .byte 0x03, 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22   /* @ABCDEFG */
    .byte 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18   /* HIJKLMNO */
    .byte 0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11   /* PQRSTUVW */
    .byte 0x2D, 0x15, 0x2C, 0x1A, 0x2B, 0x1B, 0x07, 0x0C   /* XYZ[\]^_ */
    .byte 0x29, 0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22   /* `abcdefg */
    .byte 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18   /* hijklmno */
    .byte 0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11   /* pqrstuvw */
    .byte 0x2D, 0x15, 0x2C, 0x1A, 0x2B, 0x1B, 0x29         /* xyz{|}~  */
