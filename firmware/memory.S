/*
 * memory.S — how much RAM there is, the memory map, A20, and INT 15h.
 *
 * The BIOS does not probe memory: the machine tells it through CMOS, the way
 * Bochs and QEMU do (and vmm does the same):
 *   15h/16h   base memory in KiB (640)
 *   30h/31h   memory between 1 MiB and 64 MiB in KiB (17h/18h hold a copy)
 *   34h/35h   memory between 16 MiB and 4 GiB in 64 KiB units
 *   5Bh-5Dh   memory above 4 GiB in 64 KiB units
 *
 * INT 15h AX=E820h hands the map out one entry at a time; POST builds it in
 * the EBDA (e820_build) from these sizes:
 *   0            .. EBDA           usable
 *   EBDA         .. 0xA0000        reserved (the EBDA itself)
 *   0xF0000      .. 0x100000       reserved (this ROM)
 *   0x100000     .. top below 4G   usable
 *   0xFFFF0000   .. 4 GiB          reserved (this ROM again, at the reset address)
 *   4 GiB        .. 4 GiB + high   usable (only if CMOS 5Bh-5Dh say so)
 */
    .include "bios.inc"

    .section .text

/* a20_enable / a20_disable: through "fast A20", bit 1 of system port 92h.
 * Bit 0 of that port resets the CPU: always write it as 0. */
    .globl a20_enable
a20_enable:
    in al, SYSCTRL_A
    or al, 0x02
    and al, 0xFE
    out SYSCTRL_A, al
    ret
a20_disable:
    in al, SYSCTRL_A
    and al, 0xFC
    out SYSCTRL_A, al
    ret

/* memory_read_cmos: AX = KiB of conventional memory (CMOS 15h/16h, at most 640;
 * a nonsensical value below 64 KiB is taken as 640). */
    .globl memory_read_cmos
memory_read_cmos:
    mov al, CMOS_BASE_HI
    call cmos_read
    mov ah, al
    mov al, CMOS_BASE_LO
    call cmos_read_keep_ah
    cmp ax, 640
    ja 1f
    cmp ax, 64
    jae 2f
1:  mov ax, 640
2:  ret

/* cmos_read_keep_ah: AL = CMOS[AL], AH unchanged. */
cmos_read_keep_ah:
    push bx
    mov bh, ah
    call cmos_read
    mov ah, bh
    pop bx
    ret

/*
 * memory_store_sizes: EBDA_RAM_TOP = end of RAM below 4 GiB,
 * EBDA_RAM_HIGH = bytes of RAM above 4 GiB.
 */
    .globl memory_store_sizes
memory_store_sizes:
    pushad
    call ebda_fs
    /* above 16 MiB, in 64 KiB units */
    mov al, CMOS_HIGH_HI
    call cmos_read
    mov ah, al
    mov al, CMOS_HIGH_LO
    call cmos_read_keep_ah
    movzx eax, ax
    test eax, eax
    jz 1f
    shl eax, 16
    add eax, 16 << 20               /* top = 16 MiB + that */
    jmp 2f
1:  mov al, CMOS_EXT_HI             /* else: above 1 MiB, in KiB */
    call cmos_read
    mov ah, al
    mov al, CMOS_EXT_LO
    call cmos_read_keep_ah
    movzx eax, ax
    shl eax, 10
    add eax, 1 << 20                /* top = 1 MiB + that */
2:  mov fs:[EBDA_RAM_TOP], eax

    /* above 4 GiB: 24-bit count of 64 KiB units -> bytes (40 bits) */
    mov al, CMOS_ABOVE4G + 2
    call cmos_read
    movzx edx, al
    shl edx, 16
    mov al, CMOS_ABOVE4G + 1
    call cmos_read
    mov dh, al
    mov al, CMOS_ABOVE4G
    call cmos_read
    mov dl, al                      /* EDX = units */
    mov eax, edx
    shl eax, 16                     /* low 32 bits of units * 65536 */
    shr edx, 16                     /* high bits */
    mov fs:[EBDA_RAM_HIGH], eax
    mov fs:[EBDA_RAM_HIGH+4], edx
    popad
    ret

/*
 * e820_add: append one entry to the EBDA table.
 * In: EAX = base (low), EDX = base (high), ECX = length (low),
 *     ESI = length (high), BL = type (1 usable, 2 reserved).  FS = EBDA.
 */
e820_add:
    push di
    movzx di, byte ptr fs:[EBDA_E820_COUNT]
    cmp di, EBDA_E820_MAX
    jae 1f
    imul di, di, 20
    add di, EBDA_E820
    mov fs:[di], eax
    mov fs:[di+4], edx
    mov fs:[di+8], ecx
    mov fs:[di+12], esi
    movzx ebx, bl
    mov fs:[di+16], ebx
    inc byte ptr fs:[EBDA_E820_COUNT]
1:  pop di
    ret

    .globl e820_build
e820_build:
    pushad
    call ebda_fs
    mov byte ptr fs:[EBDA_E820_COUNT], 0
    xor edx, edx
    xor esi, esi
    /* conventional memory below the EBDA */
    push es
    push BDA_SEG
    pop es
    movzx ecx, word ptr es:[BDA_EBDA_SEG]
    pop es
    shl ecx, 4                      /* ECX = EBDA start address */
    push ecx
    xor eax, eax
    mov bl, 1
    call e820_add
    /* the EBDA up to the 640 KiB line */
    pop eax
    mov ecx, 0xA0000
    sub ecx, eax
    mov bl, 2
    call e820_add
    /* this ROM in the first megabyte */
    mov eax, 0xF0000
    mov ecx, 0x10000
    mov bl, 2
    call e820_add
    /* extended memory up to the top below 4 GiB */
    mov eax, 0x100000
    mov ecx, fs:[EBDA_RAM_TOP]
    sub ecx, eax
    jbe 1f
    mov bl, 1
    call e820_add
1:  /* the ROM at the top of 4 GiB */
    mov eax, 0xFFFF0000
    mov ecx, 0x10000
    mov bl, 2
    call e820_add
    /* memory above 4 GiB */
    mov ecx, fs:[EBDA_RAM_HIGH]
    mov esi, fs:[EBDA_RAM_HIGH+4]
    mov eax, ecx
    or eax, esi
    jz 2f
    xor eax, eax
    mov edx, 1
    mov bl, 1
    call e820_add
2:  popad
    ret

/* ------------------------------------------------------------- INT 15h */
/*
 *   AX=E820h  EBX = continuation (0 first), ES:DI = buffer, ECX = its size (>= 20),
 *             EDX = 'SMAP' -> EAX = 'SMAP', ECX = 20, EBX = next (0 after the
 *             last entry), 20-byte entry at ES:DI; CF = 1 (AH = 86h) for a
 *             bad signature/size or a continuation past the end
 *   AX=E801h  -> AX = CX = KiB between 1 and 16 MiB, BX = DX = 64 KiB blocks
 *             between 16 MiB and 4 GiB
 *   AH=88h    -> AX = KiB above 1 MiB (at most FFFFh)
 *   AX=2400h/2401h disable/enable A20; 2402h -> AL = A20 state;
 *             2403h -> BX = 3 (8042 and port 92h supported, we use port 92h)
 *   AH=C0h    -> ES:BX = system configuration table
 *   AH=86h    wait CX:DX microseconds (rounded up to timer ticks)
 *   AH=4Fh    keyboard intercept: CF = 1, AL unchanged (keep the scan code)
 *   AH=90h/91h device busy/post: AH = 0, CF = 0
 *   anything else: CF = 1, AH = 86h (not supported)
 */
    .globl int15_system
int15_system:
    ENTER_SERVICE
    call ebda_fs
    mov ax, [bp+F_AX]
    cmp ax, 0xE820
    je s_e820
    cmp ax, 0xE801
    je s_e801
    cmp ah, 0x88
    je s_extended_size
    cmp ah, 0x24
    je s_a20
    cmp ah, 0xC0
    je s_config
    cmp ah, 0x86
    je s_wait
    cmp ah, 0x4F
    je s_intercept
    cmp ah, 0x90
    je s_ok
    cmp ah, 0x91
    je s_ok
s_unsupported:
    mov byte ptr [bp+F_AH], 0x86
    SET_CF
s_done:
    LEAVE_SERVICE
s_ok:
    mov byte ptr [bp+F_AH], 0
    CLEAR_CF
    jmp s_done

s_e820:
    cmp dword ptr [bp+F_EDX], 0x534D4150   /* 'SMAP' */
    jne s_unsupported
    cmp dword ptr [bp+F_ECX], 20
    jb s_unsupported
    mov ebx, [bp+F_EBX]
    movzx eax, byte ptr fs:[EBDA_E820_COUNT]
    cmp ebx, eax
    jae s_unsupported
    imul si, bx, 20                 /* copy the entry to ES:DI */
    add si, EBDA_E820
    mov es, [bp+F_ES]
    mov di, [bp+F_DI]
    mov cx, 20
1:  mov al, fs:[si]
    mov es:[di], al
    inc si
    inc di
    loop 1b
    inc ebx                         /* next entry, or 0 after the last */
    movzx eax, byte ptr fs:[EBDA_E820_COUNT]
    cmp ebx, eax
    jb 2f
    xor ebx, ebx
2:  mov [bp+F_EBX], ebx
    mov dword ptr [bp+F_EAX], 0x534D4150
    mov dword ptr [bp+F_ECX], 20
    CLEAR_CF
    jmp s_done

s_e801:
    mov eax, fs:[EBDA_RAM_TOP]
    xor ebx, ebx
    cmp eax, 16 << 20
    jbe 1f
    mov ebx, eax                    /* 64 KiB blocks above 16 MiB */
    sub ebx, 16 << 20
    shr ebx, 16
    mov eax, 16 << 20
1:  sub eax, 1 << 20                /* KiB between 1 and 16 MiB (max 15360) */
    shr eax, 10
    mov [bp+F_AX], ax
    mov [bp+F_CX], ax
    mov [bp+F_BX], bx
    mov [bp+F_DX], bx
    CLEAR_CF
    jmp s_done

s_extended_size:
    mov eax, fs:[EBDA_RAM_TOP]
    sub eax, 1 << 20
    shr eax, 10
    cmp eax, 0xFFFF
    jbe 1f
    mov eax, 0xFFFF
1:  mov [bp+F_AX], ax
    CLEAR_CF
    jmp s_done

s_a20:
    cmp al, 0x00
    je 1f
    cmp al, 0x01
    je 2f
    cmp al, 0x02
    je 3f
    cmp al, 0x03
    je 4f
    jmp s_unsupported
1:  call a20_disable
    jmp s_ok
2:  call a20_enable
    jmp s_ok
3:  in al, SYSCTRL_A
    shr al, 1
    and al, 1
    mov [bp+F_AL], al
    jmp s_ok
4:  mov word ptr [bp+F_BX], 0x0003
    jmp s_ok

s_config:
    mov word ptr [bp+F_ES], 0xF000
    mov word ptr [bp+F_BX], offset system_config_table
    jmp s_ok

/* Wait: ticks = ceil(microseconds / 54925), with interrupts on. */
s_wait:
    mov ax, [bp+F_DX]
    mov dx, [bp+F_CX]
    shl edx, 16
    mov dx, ax                      /* EDX = microseconds */
    mov eax, edx
    xor edx, edx
    add eax, 54924
    adc edx, 0
    mov ecx, 54925
    div ecx
    mov ecx, eax                    /* ECX = ticks to wait */
    push BDA_SEG
    pop ds
    sti
1:  jecxz 3f
    mov eax, ds:[BDA_TICKS]
2:  hlt                             /* until the next interrupt ... */
    cmp eax, ds:[BDA_TICKS]         /* ... that was a tick */
    je 2b
    dec ecx
    jmp 1b
3:  jmp s_ok

s_intercept:
    SET_CF
    jmp s_done

    .section .rodata
/* INT 15h AH=C0h: the system configuration table (IBM PS/2 format). */
    .globl system_config_table
system_config_table:
    .word 8                         /* bytes that follow */
    .byte 0xFC                      /* model: AT */
    .byte 0x00                      /* submodel */
    .byte 0x01                      /* BIOS revision */
    .byte 0x70                      /* feature 1: 2nd 8259 (bit 6), RTC (bit 5),
                                       INT 09h calls INT 15h AH=4Fh (bit 4) */
    .byte 0x00                      /* feature 2: nothing extra */
    .byte 0x00, 0x00, 0x00          /* features 3-5 */
