/*
 * Prints the Multiboot information structure on COM1 and exits through port 0xF4 with
 * EXIT_OK (QEMU's isa-debug-exit and vmm turn that into exit status 33). The output
 * depends only on what the loader passed, never on time, so two loaders can be compared
 * byte for byte. Layout: Multiboot Specification 0.6.96, section 3.3.
 */
#include <stdint.h>

#define MB_BOOT_MAGIC 0x2BADB002u
#define EXIT_OK 0x10
#define EXIT_BAD_MAGIC 0x11

#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)

struct mb_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;       /* KiB below 640 KiB / above 1 MiB (flag 0) */
    uint32_t boot_device;
    uint32_t cmdline;                    /* flag 2 */
    uint32_t mods_count, mods_addr;      /* flag 3 */
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;     /* flag 6 */
} __attribute__((packed));

struct mb_module {
    uint32_t start, end, string, reserved;
} __attribute__((packed));

struct mb_mmap {
    uint32_t size;                       /* of the rest of this entry, not counting itself */
    uint64_t base, length;
    uint32_t type;
} __attribute__((packed));

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

#define COM1 0x3F8

static void serial_init(void)
{
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x80);
    outb(COM1 + 0, 0x01);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);
    outb(COM1 + 2, 0xC7);
    outb(COM1 + 4, 0x03);
}

static void putc(char c)
{
    if (c == '\n')
        putc('\r');
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void put_hex(uint64_t v)
{
    char buf[17];
    int i = 16;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    puts("0x");
    puts(buf + i);
}

static void put_dec(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts(buf + i);
}

/* A string from the loader, quoted, with anything unprintable as '.', at most max bytes. */
static void put_quoted(const char *s, uint32_t max)
{
    putc('"');
    for (uint32_t i = 0; i < max && s[i] && s[i] != '\n'; i++)
        putc(s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '.');
    putc('"');
}

void mb_main(uint32_t magic, const struct mb_info *mbi)
{
    serial_init();
    puts("multiboot: magic ");
    put_hex(magic);
    puts("\n");
    if (magic != MB_BOOT_MAGIC) {
        puts("multiboot: not loaded by a Multiboot loader\n");
        outb(0xF4, EXIT_BAD_MAGIC);
        return;
    }
    if (mbi->flags & MBI_MEM) {
        puts("multiboot: mem_lower ");
        put_dec(mbi->mem_lower);
        puts(" KiB, mem_upper ");
        put_dec(mbi->mem_upper);
        puts(" KiB\n");
    } else {
        puts("multiboot: no memory information\n");
    }
    puts("multiboot: cmdline ");
    if (mbi->flags & MBI_CMDLINE)
        put_quoted((const char *)mbi->cmdline, 200);
    else
        puts("(none)");
    puts("\n");
    uint32_t mods = (mbi->flags & MBI_MODS) ? mbi->mods_count : 0;
    puts("multiboot: modules ");
    put_dec(mods);
    puts("\n");
    if (mods) {
        const struct mb_module *mod = (const struct mb_module *)mbi->mods_addr;
        puts("multiboot: module 0 string ");
        put_quoted((const char *)mod->string, 200);
        puts(", size ");
        put_dec(mod->end - mod->start);
        puts(", page aligned ");
        puts(mod->start & 0xFFF ? "no" : "yes");
        puts("\nmultiboot: module 0 text ");
        put_quoted((const char *)mod->start, mod->end - mod->start < 64 ? mod->end - mod->start : 64);
        puts("\n");
    }
    if (mbi->flags & MBI_MMAP) {
        uint32_t n = 0;
        for (uint32_t off = 0; off < mbi->mmap_length; n++) {
            const struct mb_mmap *e = (const struct mb_mmap *)(mbi->mmap_addr + off);
            puts("multiboot: mmap ");
            put_dec(n);
            puts(": base ");
            put_hex(e->base);
            puts(" length ");
            put_hex(e->length);
            puts(" type ");
            put_dec(e->type);
            puts("\n");
            off += e->size + 4;
        }
    } else {
        puts("multiboot: no memory map\n");
    }
    puts("multiboot: done, exiting with 0x10\n");
    outb(0xF4, EXIT_OK);
}
