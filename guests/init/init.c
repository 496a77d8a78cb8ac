/*
 * init, process 1: greets, reads the service table /etc/services, starts every service,
 * then waits for children forever, restarting the services marked "restart".
 * Its argument string is the kernel command line ("name=toyos console=ttyS0").
 */
#include "libc.h"

#define MAX_SERVICES 8

struct service {
    char name[16];
    char path[FILE_NAME_MAX];
    char args[64];
    int restart;
    int pid;
};

static struct service services[MAX_SERVICES];
static int nservices;
static char table[2048];

/* Copy the value of key=value from a space-separated command line. */
static void cmdline_value(const char *line, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = line; *p;) {
        while (*p == ' ')
            p++;
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            p += klen + 1;
            size_t i = 0;
            while (p[i] && p[i] != ' ' && i + 1 < size) {
                out[i] = p[i];
                i++;
            }
            out[i] = 0;
            return;
        }
        while (*p && *p != ' ')
            p++;
    }
}

/* Next whitespace-separated word of *cursor (which stops at the end of the line). */
static char *word(char **cursor)
{
    char *p = *cursor;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return 0;
    char *start = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = 0;
    *cursor = p;
    return start;
}

static void load_services(void)
{
    int fd = open("/etc/services");
    if (fd < 0) {
        printf("init: no /etc/services (%d)\n", fd);
        return;
    }
    long len = 0, n;
    while ((n = read(fd, table + len, sizeof table - 1 - len)) > 0)
        len += n;
    close(fd);
    table[len] = 0;
    char *line = table;
    int lineno = 0;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *cursor = line;
        char *name = word(&cursor);
        if (name && name[0] != '#') {
            char *path = word(&cursor);
            char *policy = word(&cursor);
            while (*cursor == ' ' || *cursor == '\t')
                cursor++;
            if (!path || !policy || (strcmp(policy, "restart") && strcmp(policy, "once"))) {
                printf("init: /etc/services line %d: expected \"name path restart|once\"\n", lineno);
            } else if (nservices == MAX_SERVICES) {
                printf("init: /etc/services line %d: more than %d services\n", lineno, MAX_SERVICES);
            } else {
                struct service *s = &services[nservices++];
                strncpy_z(s->name, name, sizeof s->name);
                strncpy_z(s->path, path, sizeof s->path);
                strncpy_z(s->args, cursor, sizeof s->args);
                s->restart = !strcmp(policy, "restart");
            }
        }
        line = next;
    }
}

static int prefix_mask(int prefix, unsigned int *mask)
{
    *mask = prefix <= 0 ? 0 : 0xFFFFFFFFu << (32 - prefix);
    return 0;
}

/* ---- DHCP client (RFC 2131, options RFC 2132) ---------------------------------------------
 * DISCOVER, OFFER, REQUEST, ACK, broadcast both ways (flags bit 15), three tries of 2 s each.
 * Frames: Ethernet, IPv4 from 0.0.0.0 to 255.255.255.255, UDP 68 -> 67 (no UDP checksum),
 * the 236-byte BOOTP header, the magic cookie 63 82 53 63, options. */

#define DHCP_DISCOVER 1
#define DHCP_OFFER 2
#define DHCP_REQUEST 3
#define DHCP_ACK 5
#define DHCP_NAK 6
#define BOOTP_LEN 240          /* fixed header and magic cookie */

struct lease {
    unsigned int ip, mask, router, server, seconds;
};

static unsigned char dframe[ETH_FRAME_MAX], dreply[ETH_FRAME_MAX];

static void dhcp_send(const struct netinfo *ni, unsigned int xid, int type, const struct lease *offer)
{
    static const unsigned char broadcast[6] = {255, 255, 255, 255, 255, 255};
    memset(dframe, 0, 14 + 20 + 8 + 300);
    memcpy(dframe, broadcast, 6);
    memcpy(dframe + 6, ni->mac, 6);
    put_be16(dframe + 12, 0x0800);
    unsigned char *ip = dframe + 14, *udp = ip + 20, *b = udp + 8, *o = b + BOOTP_LEN;
    b[0] = 1;                                   /* BOOTREQUEST */
    b[1] = 1;                                   /* Ethernet */
    b[2] = 6;
    put_be32(b + 4, xid);
    put_be16(b + 10, 0x8000);                   /* answer by broadcast: we have no address yet */
    memcpy(b + 28, ni->mac, 6);                 /* chaddr */
    put_be32(b + 236, 0x63825363);
    *o++ = 53, *o++ = 1, *o++ = (unsigned char)type;
    if (type == DHCP_REQUEST) {
        *o++ = 50, *o++ = 4;                    /* requested address */
        put_be32(o, offer->ip), o += 4;
        *o++ = 54, *o++ = 4;                    /* the server that offered it */
        put_be32(o, offer->server), o += 4;
    }
    *o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 51;   /* ask for mask, router, lease time */
    *o++ = 255;
    unsigned int blen = (unsigned)(o - b) < 300 ? 300 : (unsigned)(o - b);   /* BOOTP's minimum */
    put_be16(udp, 68);
    put_be16(udp + 2, 67);
    put_be16(udp + 4, 8 + blen);
    ip[0] = 0x45;
    put_be16(ip + 2, 20 + 8 + blen);
    ip[8] = 64;
    ip[9] = 17;                                 /* UDP */
    put_be32(ip + 16, 0xFFFFFFFFu);
    put_be16(ip + 10, inet_checksum(ip, 20));
    netsend(dframe, 14 + 20 + 8 + blen);
}

/* Wait up to ms for a DHCP answer of xid; its message type, 0 on timeout. */
static int dhcp_wait(unsigned int xid, long ms, struct lease *lease)
{
    long deadline = uptime_ms() + ms;
    for (long left = ms; left > 0; left = deadline - uptime_ms()) {
        long n = netrecv(dreply, sizeof dreply, left);
        if (n <= 0)
            return 0;
        const unsigned char *ip = dreply + 14;
        unsigned int ihl = (ip[0] & 15) * 4u;
        if (n < 14 + 20 || get_be16(dreply + 12) != 0x0800 || ip[9] != 17 || ihl < 20)
            continue;
        const unsigned char *udp = ip + ihl, *b = udp + 8;
        long end = 14 + (long)get_be16(ip + 2);
        if (end > n || 14 + ihl + 8 + BOOTP_LEN > (unsigned long)end || get_be16(udp + 2) != 68)
            continue;
        if (b[0] != 2 || get_be32(b + 4) != xid || get_be32(b + 236) != 0x63825363)
            continue;
        memset(lease, 0, sizeof *lease);
        lease->ip = get_be32(b + 16);
        int type = 0;
        for (const unsigned char *o = b + BOOTP_LEN; o < dreply + end && *o != 255;) {
            if (*o == 0) {
                o++;
                continue;
            }
            if (o + 2 > dreply + end || o + 2 + o[1] > dreply + end)
                break;
            if (o[0] == 53 && o[1] == 1)
                type = o[2];
            else if (o[1] == 4 && (o[0] == 1 || o[0] == 3 || o[0] == 51 || o[0] == 54)) {
                unsigned int v = get_be32(o + 2);
                if (o[0] == 1)
                    lease->mask = v;
                else if (o[0] == 3)
                    lease->router = v;
                else if (o[0] == 51)
                    lease->seconds = v;
                else
                    lease->server = v;
            }
            o += 2 + o[1];
        }
        if (type)
            return type;
    }
    return 0;
}

static int dhcp(const struct netinfo *ni, struct lease *lease)
{
    unsigned int xid = 0x544F0000u | (unsigned)ni->mac[4] << 8 | ni->mac[5];
    for (int attempt = 0; attempt < 3; attempt++, xid++) {
        struct lease offer;
        dhcp_send(ni, xid, DHCP_DISCOVER, 0);
        if (dhcp_wait(xid, 2000, &offer) != DHCP_OFFER || !offer.ip || !offer.server)
            continue;
        dhcp_send(ni, xid, DHCP_REQUEST, &offer);
        int answer = dhcp_wait(xid, 2000, lease);
        if (answer == DHCP_ACK && lease->ip) {
            if (!lease->server)
                lease->server = offer.server;
            return 0;
        }
    }
    return -1;
}

static int prefix_of(unsigned int mask)
{
    int n = 0;
    while (n < 32 && (mask << n) & 0x80000000u)
        n++;
    return n;
}

/* Bring up eth0: its address comes from ip=A.B.C.D[/N] on the kernel command line, from a
 * DHCP server with ip=dhcp, or, without ip=, is 10.0.0.X where X is the last byte of the
 * MAC address (so VMs on one switch with MACs ...:01, ...:02 are 10.0.0.1 and 10.0.0.2). */
static void network_up(const char *args)
{
    struct netinfo ni;
    if (netinfo(&ni) < 0) {
        printf("init: no network interfaces\n");
        return;
    }
    char text[32] = "", mac[18], addr[16];
    unsigned int ip = 0, mask = 0;
    int prefix = 24;
    cmdline_value(args, "ip", text, sizeof text);
    if (!strcmp(text, "dhcp")) {
        struct lease lease;
        char server[16], router[16];
        if (dhcp(&ni, &lease) == 0) {
            ip = lease.ip;
            prefix = lease.mask ? prefix_of(lease.mask) : 24;
            printf("init: eth0 DHCP lease from %s: router %s, %u s\n", format_ipv4(server, lease.server),
                   lease.router ? format_ipv4(router, lease.router) : "none", lease.seconds);
        } else {
            printf("init: eth0 no answer from a DHCP server\n");
        }
    } else if (text[0]) {
        if (parse_ipv4(text, &ip, &prefix) < 0) {
            printf("init: ip=%s: not an IPv4 address (A.B.C.D or A.B.C.D/N)\n", text);
            ip = 0;
        } else if (prefix < 0) {
            prefix = 24;
        }
    } else if (ni.mac[5] != 0 && ni.mac[5] != 255) {
        ip = 0x0A000000u | ni.mac[5];
    }
    prefix_mask(prefix, &mask);
    format_mac(mac, ni.mac);
    if (ip && netconf(ip, mask) == 0)
        printf("init: eth0 up, MAC %s, link %s, inet %s/%d\n", mac, ni.link ? "up" : "down",
               format_ipv4(addr, ip), prefix);
    else
        printf("init: eth0 up, MAC %s, link %s, no IPv4 address\n", mac, ni.link ? "up" : "down");
}

static void start(struct service *s)
{
    s->pid = spawn(s->path, s->args);
    if (s->pid < 0)
        printf("init: cannot start %s (%s): error %d\n", s->name, s->path, s->pid);
    else
        printf("init: started %s (pid %d)\n", s->name, s->pid);
}

int main(const char *args)
{
    char name[32] = "unknown";
    cmdline_value(args, "name", name, sizeof name);
    printf("init: toyos ready on %s\n", name);
    char team[32] = "";
    cmdline_value(args, "team", team, sizeof team);
    if (team[0])
        printf("init: team ID %s\n", team);
    else
        printf("init: team ID not set (team=N on the kernel command line)\n");
    network_up(args);
    load_services();
    for (int i = 0; i < nservices; i++)
        start(&services[i]);
    for (;;) {
        int status;
        int pid = wait(-1, &status, 0);
        if (pid < 0) {
            /* No children left at all: nothing will ever happen again. */
            printf("init: no services left, powering off\n");
            poweroff(0);
        }
        for (int i = 0; i < nservices; i++) {
            struct service *s = &services[i];
            if (s->pid != pid)
                continue;
            if (status >= STATUS_FAULT_BASE)
                printf("init: %s (pid %d) killed by exception %d\n", s->name, pid, status - STATUS_FAULT_BASE);
            else
                printf("init: %s (pid %d) exited with status %d\n", s->name, pid, status);
            s->pid = -1;
            if (s->restart)
                start(s);
        }
    }
}
