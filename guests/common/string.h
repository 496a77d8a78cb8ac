#ifndef TOYOS_STRING_H
#define TOYOS_STRING_H
#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Copies at most size-1 bytes and always NUL-terminates (unlike strncpy). */
char *strncpy_z(char *dst, const char *src, size_t size);
char *strchr(const char *s, int c);

#endif
