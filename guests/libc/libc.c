#include "libc.h"
#include "format.h"

static long syscall5(long n, long a, long b, long c, long d, long e)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

#define SC0(n) syscall5((n), 0, 0, 0, 0, 0)
#define SC1(n, a) syscall5((n), (long)(a), 0, 0, 0, 0)
#define SC2(n, a, b) syscall5((n), (long)(a), (long)(b), 0, 0, 0)
#define SC3(n, a, b, c) syscall5((n), (long)(a), (long)(b), (long)(c), 0, 0)

void exit(int status)
{
    SC1(SYS_EXIT, status);
    for (;;)
        ;
}
long write(int fd, const void *buf, size_t len) { return SC3(SYS_WRITE, fd, buf, len); }
long read(int fd, void *buf, size_t len) { return SC3(SYS_READ, fd, buf, len); }
int open(const char *path) { return (int)SC1(SYS_OPEN, path); }
int close(int fd) { return (int)SC1(SYS_CLOSE, fd); }
int spawn(const char *path, const char *args) { return (int)SC2(SYS_SPAWN, path, args); }
int wait(int pid, int *status, int flags) { return (int)SC3(SYS_WAIT, pid, status, flags); }
int getpid(void) { return (int)SC0(SYS_GETPID); }
int sleep_ms(long ms) { return (int)SC1(SYS_SLEEP, ms); }
long uptime_ms(void) { return SC0(SYS_UPTIME); }
int procinfo(int slot, struct procinfo *info) { return (int)SC2(SYS_PROCINFO, slot, info); }
int fsinfo(int index, struct fileinfo *info) { return (int)SC2(SYS_FSINFO, index, info); }
int kill(int pid) { return (int)SC1(SYS_KILL, pid); }
void reboot(void)
{
    SC0(SYS_REBOOT);
    for (;;)
        ;
}
void poweroff(int code)
{
    SC1(SYS_POWEROFF, code);
    for (;;)
        ;
}
long cmdline(char *buf, size_t len) { return SC2(SYS_CMDLINE, buf, len); }
long send(int chan, const void *buf, size_t len) { return SC3(SYS_SEND, chan, buf, len); }
long recv(int chan, void *buf, size_t len) { return SC3(SYS_RECV, chan, buf, len); }

int netinfo(struct netinfo *info) { return (int)SC1(SYS_NETINFO, info); }
long netsend(const void *frame, size_t len) { return SC2(SYS_NETSEND, frame, len); }
long netrecv(void *buf, size_t len, long timeout_ms) { return SC3(SYS_NETRECV, buf, len, timeout_ms); }
int netconf(unsigned int ip, unsigned int netmask) { return (int)SC2(SYS_NETCONF, ip, netmask); }

struct sbuf {
    char *buf;
    size_t size, len;
};

static void sput(char c, void *ctx)
{
    struct sbuf *s = ctx;
    if (s->len + 1 < s->size)
        s->buf[s->len] = c;
    s->len++;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sbuf s = {buf, size, 0};
    vformat(sput, &s, fmt, ap);
    if (size)
        buf[s.len < size ? s.len : size - 1] = 0;
    return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    write(1, buf, (size_t)n);
    return n;
}

int puts(const char *s)
{
    printf("%s\n", s);
    return 0;
}

long atol(const char *s)
{
    long v = 0;
    int neg = *s == '-';
    if (neg)
        s++;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}
