/*
 * A small printf engine shared by the kernel (kprintf) and the user libc (printf).
 * Supports %d %i %u %x %X %p %s %c %% with the l / ll / z length modifiers, a field width
 * and the 0 and - flags. No floating point (the kernel is built without SSE).
 */
#include "format.h"

static void put_str(format_put put, void *ctx, const char *s, int width, int left, char padc)
{
    int len = 0;
    while (s[len])
        len++;
    if (!left)
        for (int i = len; i < width; i++)
            put(padc, ctx);
    for (int i = 0; i < len; i++)
        put(s[i], ctx);
    if (left)
        for (int i = len; i < width; i++)
            put(' ', ctx);
}

void vformat(format_put put, void *ctx, const char *fmt, va_list ap)
{
    char buf[32];
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(*fmt, ctx);
            continue;
        }
        fmt++;
        int left = 0;
        char padc = ' ';
        int width = 0;
        int longs = 0;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                padc = '0';
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            longs++;
            fmt++;
        }
        if (left)
            padc = ' ';
        switch (*fmt) {
        case 'd':
        case 'i': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
            int i = sizeof buf - 1;
            buf[i] = 0;
            do {
                buf[--i] = '0' + u % 10;
                u /= 10;
            } while (u);
            if (v < 0)
                buf[--i] = '-';
            put_str(put, ctx, buf + i, width, left, padc);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'p': {
            unsigned long long u;
            unsigned base = *fmt == 'u' ? 10 : 16;
            const char *digits = *fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            if (*fmt == 'p')
                u = (unsigned long long)va_arg(ap, void *);
            else
                u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
            int i = sizeof buf - 1;
            buf[i] = 0;
            do {
                buf[--i] = digits[u % base];
                u /= base;
            } while (u);
            if (*fmt == 'p') {
                buf[--i] = 'x';
                buf[--i] = '0';
            }
            put_str(put, ctx, buf + i, width, left, padc);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            put_str(put, ctx, s ? s : "(null)", width, left, ' ');
            break;
        }
        case 'c':
            put((char)va_arg(ap, int), ctx);
            break;
        case '%':
            put('%', ctx);
            break;
        case 0:
            return;
        default:
            put('%', ctx);
            put(*fmt, ctx);
        }
    }
}
