/*
 * Console: COM1 (16550 UART at 0x3F8) and the VGA text screen at 0xB8000.
 * Output goes to both; input comes from COM1 only, through a small line discipline
 * (echo, backspace, CR or LF ends a line) into a buffer that read(0, ...) drains.
 */
#include "kernel.h"

#define COM1 0x3F8
#define UART_RBR 0   /* receive buffer (read)  */
#define UART_THR 0   /* transmit holding (write) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR   0x01   /* data ready */
#define LSR_THRE 0x20   /* transmit holding register empty */

#define VGA_COLS 80
#define VGA_ROWS 25

static uint16_t *const vga = (uint16_t *)P2V(0xB8000);
static int vga_row, vga_col;

void console_init(void)
{
    outb(COM1 + UART_IER, 0);
    outb(COM1 + UART_LCR, 0x80);       /* DLAB */
    outb(COM1 + 0, 1);                 /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0);
    outb(COM1 + UART_LCR, 0x03);       /* 8N1 */
    outb(COM1 + UART_FCR, 0xC7);
    outb(COM1 + UART_MCR, 0x0B);       /* DTR, RTS, OUT2 (OUT2 gates the IRQ line) */
    outb(COM1 + UART_IER, 0x01);       /* interrupt on received data */
    for (int i = 0; i < VGA_COLS * VGA_ROWS; i++)
        vga[i] = 0x0700 | ' ';
}

static void serial_putc(char c)
{
    while (!(inb(COM1 + UART_LSR) & LSR_THRE))
        ;
    outb(COM1 + UART_THR, (uint8_t)c);
}

static void vga_putc(char c)
{
    if (c == '\n') {
        vga_col = 0;
        vga_row++;
    } else if (c == '\b') {
        if (vga_col)
            vga_col--;
    } else if (c != '\r') {
        vga[vga_row * VGA_COLS + vga_col] = 0x0700 | (uint8_t)c;
        if (++vga_col == VGA_COLS) {
            vga_col = 0;
            vga_row++;
        }
    }
    if (vga_row == VGA_ROWS) {
        memmove(vga, vga + VGA_COLS, (VGA_ROWS - 1) * VGA_COLS * 2);
        for (int i = 0; i < VGA_COLS; i++)
            vga[(VGA_ROWS - 1) * VGA_COLS + i] = 0x0700 | ' ';
        vga_row = VGA_ROWS - 1;
    }
}

static void console_putc(char c)
{
    if (c == '\n')
        serial_putc('\r');
    serial_putc(c);
    vga_putc(c);
}

void console_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        console_putc(s[i]);
}

static void kput(char c, void *ctx)
{
    (void)ctx;
    console_putc(c);
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(kput, 0, fmt, ap);
    va_end(ap);
}

void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

void panic(const char *fmt, ...)
{
    __asm__ volatile("cli");
    kprintf("PANIC: ");
    va_list ap;
    va_start(ap, fmt);
    vformat(kput, 0, fmt, ap);
    va_end(ap);
    kprintf("\nkernel halted\n");
    halt_forever();
}

/* ---- input ------------------------------------------------------------------------------ */

#define LINE_MAX 128
static char line[LINE_MAX];          /* the line being typed */
static size_t line_len;
static char ready[1024];             /* completed lines waiting for read(0) */
static size_t ready_len;
static char last_char;

static void input_char(char c)
{
    if (c == '\n' && last_char == '\r') {   /* CR LF from a terminal: one line end */
        last_char = c;
        return;
    }
    last_char = c;
    if (c == '\r' || c == '\n') {
        console_putc('\n');
        if (ready_len + line_len + 1 <= sizeof ready) {
            memcpy(ready + ready_len, line, line_len);
            ready_len += line_len;
            ready[ready_len++] = '\n';
        }
        line_len = 0;
    } else if (c == 0x7F || c == '\b') {
        if (line_len) {
            line_len--;
            console_write("\b \b", 3);
        }
    } else if ((unsigned char)c >= 0x20 && line_len < LINE_MAX - 1) {
        line[line_len++] = c;
        console_putc(c);
    }
}

/* Called from the COM1 interrupt and from every timer tick (so polling alone works too). */
void serial_poll_input(void)
{
    while (inb(COM1 + UART_LSR) & LSR_DR)
        input_char((char)inb(COM1 + UART_RBR));
}

/* Copy at most one complete line (with its '\n') to buf. */
int console_read_line(char *buf, size_t n)
{
    if (!ready_len)
        return -1;
    size_t len = 0;
    while (len < ready_len && ready[len] != '\n')
        len++;
    len++;                                 /* include the newline */
    if (len > n)
        len = n;
    memcpy(buf, ready, len);
    memmove(ready, ready + len, ready_len - len);
    ready_len -= len;
    return (int)len;
}

int console_has_line(void)
{
    return ready_len != 0;
}
