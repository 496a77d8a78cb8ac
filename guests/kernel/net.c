/*
 * eth0 above the driver: the kernel answers ARP requests for eth0's IPv4 address and
 * ICMP echo requests sent to it (RFC 826, RFC 792), as any host's stack does; every
 * other frame waits in a small queue for a user program (netrecv). Programs send whole
 * Ethernet frames (netsend): ping builds its own ARP and ICMP packets.
 *
 * The echo reply goes back to the requester's Ethernet source address, so no ARP cache
 * is needed in the kernel.
 */
#include "kernel.h"

extern struct netinfo eth0;
int net_present(void);

#define ETH_ARP 0x0806
#define ETH_IPV4 0x0800
#define RXQ_LEN 16

static struct {
    uint32_t len;
    uint8_t data[ETH_FRAME_MAX];
} rxq[RXQ_LEN];
static int rx_head, rx_count;
static uint8_t reply[ETH_FRAME_MAX];

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = (uint8_t)v;
}

/* The Internet checksum (RFC 1071) of len bytes. */
static uint16_t checksum(const uint8_t *p, uint32_t len)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        sum += be16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/* ARP request for our address: answer with our MAC (an ARP reply, opcode 2). */
static int arp_input(const uint8_t *f, uint32_t len)
{
    const uint8_t *a = f + 14;
    if (len < 14 + 28 || be16(a) != 1 || be16(a + 2) != ETH_IPV4 || a[4] != 6 || a[5] != 4)
        return 0;
    if (be16(a + 6) != 1 || !eth0.ip || be32(a + 24) != eth0.ip)
        return 0;                                   /* not a request for us: a program's */
    memcpy(reply, f + 6, 6);                        /* to the asker */
    memcpy(reply + 6, eth0.mac, 6);
    put16(reply + 12, ETH_ARP);
    uint8_t *r = reply + 14;
    put16(r, 1);
    put16(r + 2, ETH_IPV4);
    r[4] = 6;
    r[5] = 4;
    put16(r + 6, 2);
    memcpy(r + 8, eth0.mac, 6);                     /* sender: us */
    memcpy(r + 14, a + 24, 4);
    memcpy(r + 18, a + 8, 10);                      /* target: the asker's MAC and IP */
    net_send_frame(reply, 14 + 28);
    return 1;
}

/* ICMP echo request to our address: the same packet back as an echo reply. */
static int icmp_input(const uint8_t *f, uint32_t len)
{
    const uint8_t *ip = f + 14;
    if (len < 14 + 20 || (ip[0] >> 4) != 4 || ip[9] != 1 || !eth0.ip || be32(ip + 16) != eth0.ip)
        return 0;
    uint32_t ihl = (ip[0] & 15) * 4u, total = be16(ip + 2);
    if (ihl < 20 || total < ihl + 8 || 14 + total > len || (be16(ip + 6) & 0x3FFF))
        return 0;                                   /* malformed or fragmented: not answered */
    if (ip[ihl] != 8 || checksum(ip, ihl) != 0 || checksum(ip + ihl, total - ihl) != 0)
        return 0;
    memcpy(reply, f + 6, 6);
    memcpy(reply + 6, eth0.mac, 6);
    put16(reply + 12, ETH_IPV4);
    uint8_t *r = reply + 14;
    memcpy(r, ip, total);
    memcpy(r + 12, ip + 16, 4);                     /* source: us */
    memcpy(r + 16, ip + 12, 4);                     /* destination: the asker */
    r[8] = 64;                                      /* TTL */
    put16(r + 10, 0);
    put16(r + 10, checksum(r, ihl));
    r[ihl] = 0;                                     /* echo reply */
    put16(r + ihl + 2, 0);
    put16(r + ihl + 2, checksum(r + ihl, total - ihl));
    net_send_frame(reply, 14 + total);
    return 1;
}

void net_input(const uint8_t *frame, uint32_t len)
{
    if (len < 14 || len > ETH_FRAME_MAX)
        return;
    uint16_t type = be16(frame + 12);
    if (type == ETH_ARP && arp_input(frame, len))
        return;
    if (type == ETH_IPV4 && icmp_input(frame, len))
        return;
    if (rx_count == RXQ_LEN) {                      /* full: the oldest frame goes */
        rx_head = (rx_head + 1) % RXQ_LEN;
        rx_count--;
        eth0.rx_dropped++;
    }
    int slot = (rx_head + rx_count) % RXQ_LEN;
    rxq[slot].len = len;
    memcpy(rxq[slot].data, frame, len);
    rx_count++;
}

int net_rx_pending(void)
{
    net_poll();
    return rx_count > 0;
}

long net_rx_pop(void *buf, uint64_t len)
{
    if (!rx_count)
        return 0;
    uint32_t n = rxq[rx_head].len < len ? rxq[rx_head].len : (uint32_t)len;
    memcpy(buf, rxq[rx_head].data, n);
    rx_head = (rx_head + 1) % RXQ_LEN;
    rx_count--;
    return n;
}

int net_set_ip(uint32_t ip, uint32_t mask)
{
    if (!net_present())
        return E_NOENT;
    eth0.ip = ip;
    eth0.netmask = mask;
    return 0;
}

long sys_netinfo(struct netinfo *info)
{
    if (!net_present())
        return E_NOENT;
    net_poll();
    memcpy(info, &eth0, sizeof eth0);
    return 0;
}
