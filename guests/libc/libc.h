/* The toyos user libc: system-call wrappers plus a few string and formatting helpers. */
#ifndef TOYOS_LIBC_H
#define TOYOS_LIBC_H

#include <stdarg.h>
#include <stddef.h>
#include "string.h"
#include "toyos/syscall.h"

__attribute__((noreturn)) void exit(int status);
long write(int fd, const void *buf, size_t len);
long read(int fd, void *buf, size_t len);
int open(const char *path);
int close(int fd);
int spawn(const char *path, const char *args);
int wait(int pid, int *status, int flags);
int getpid(void);
int sleep_ms(long ms);
long uptime_ms(void);
int procinfo(int slot, struct procinfo *info);
int fsinfo(int index, struct fileinfo *info);
int kill(int pid);
__attribute__((noreturn)) void reboot(void);
__attribute__((noreturn)) void poweroff(int code);
long cmdline(char *buf, size_t len);
long send(int chan, const void *buf, size_t len);
long recv(int chan, void *buf, size_t len);
int netinfo(struct netinfo *info);
long netsend(const void *frame, size_t len);
long netrecv(void *buf, size_t len, long timeout_ms);
int netconf(unsigned int ip, unsigned int netmask);

/* Network byte order and the Internet checksum (RFC 1071), for programs that build packets. */
void put_be16(unsigned char *p, unsigned int v);
void put_be32(unsigned char *p, unsigned int v);
unsigned int get_be16(const unsigned char *p);
unsigned int get_be32(const unsigned char *p);
unsigned int inet_checksum(const unsigned char *p, unsigned int len);
/* "10.0.0.1" or "10.0.0.1/24" -> *ip (host order) and *prefix (-1 if absent); 0 if valid. */
int parse_ipv4(const char *text, unsigned int *ip, int *prefix);
/* "10.0.0.1" into buf (at least 16 bytes). */
char *format_ipv4(char *buf, unsigned int ip);
/* "52:54:00:12:34:56" into buf (at least 18 bytes). */
char *format_mac(char *buf, const unsigned char *mac);

/* printf formats into a buffer and writes it with one write(): a line from one process is
 * never interleaved with another's. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int puts(const char *s);
long atol(const char *s);

#define ECHO_CHANNEL 0

#endif
