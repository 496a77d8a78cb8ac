#ifndef TOYOS_FORMAT_H
#define TOYOS_FORMAT_H
#include <stdarg.h>

typedef void (*format_put)(char c, void *ctx);
void vformat(format_put put, void *ctx, const char *fmt, va_list ap);

#endif
