/* The libc's network helpers: byte order, the Internet checksum, IPv4 and MAC text. */
#include "libc.h"

void put_be16(unsigned char *p, unsigned int v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

void put_be32(unsigned char *p, unsigned int v)
{
    put_be16(p, v >> 16);
    put_be16(p + 2, v & 0xFFFF);
}

unsigned int get_be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
unsigned int get_be32(const unsigned char *p) { return get_be16(p) << 16 | get_be16(p + 2); }

unsigned int inet_checksum(const unsigned char *p, unsigned int len)
{
    unsigned long sum = 0;
    for (unsigned int i = 0; i + 1 < len; i += 2)
        sum += get_be16(p + i);
    if (len & 1)
        sum += (unsigned)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return ~sum & 0xFFFF;
}

int parse_ipv4(const char *text, unsigned int *ip, int *prefix)
{
    unsigned int value = 0;
    for (int part = 0; part < 4; part++) {
        if (*text < '0' || *text > '9')
            return -1;
        unsigned int n = 0;
        for (int digits = 0; *text >= '0' && *text <= '9'; digits++, text++) {
            if (digits == 3)
                return -1;
            n = n * 10 + (unsigned)(*text - '0');
        }
        if (n > 255)
            return -1;
        value = value << 8 | n;
        if (part < 3 && *text++ != '.')
            return -1;
    }
    *prefix = -1;
    if (*text == '/') {
        text++;
        if (*text < '0' || *text > '9')
            return -1;
        long n = atol(text);
        while (*text >= '0' && *text <= '9')
            text++;
        if (n > 32)
            return -1;
        *prefix = (int)n;
    }
    if (*text && *text != ' ' && *text != '\n')
        return -1;
    *ip = value;
    return 0;
}

char *format_ipv4(char *buf, unsigned int ip)
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return buf;
}

char *format_mac(char *buf, const unsigned char *mac)
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return buf;
}
