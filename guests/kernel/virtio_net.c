/*
 * virtio-net driver for eth0: the first 1af4:1041 function on the PCI bus.
 * Reference: virtio 1.1, 5.1: features MAC (5) and STATUS (16); configuration
 * `u8 mac[6]; le16 status` (bit 0 link up); receiveq 0 and transmitq 1; every buffer
 * starts with the 12-byte virtio_net_hdr (all zero when sent: no offloads negotiated).
 *
 * Receive: RX_BUFS buffers of 2 KiB stay posted, one descriptor each; a used one is
 * handed to net_input() and posted again. Transmit: TX_BUFS buffers, descriptor i owns
 * buffer i; a buffer is reused once the device returned it in the used ring.
 * Both run from the device's INTx handler and from the timer tick (net_poll).
 */
#include "virtio.h"

#define F_MAC (1ull << 5)
#define F_STATUS (1ull << 16)
#define HDR 12
#define BUF_SIZE 2048
#define RX_BUFS 32
#define TX_BUFS 16

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t *rx_buf[RX_BUFS], *tx_buf[TX_BUFS];
static uint8_t tx_busy[TX_BUFS];
static int present;
static uint64_t features;

struct netinfo eth0;

static void post_rx(uint16_t i)
{
    rxq.desc[i].addr = V2P(rx_buf[i]);
    rxq.desc[i].len = BUF_SIZE;
    rxq.desc[i].flags = VIRTQ_DESC_F_WRITE;
    rxq.desc[i].next = 0;
    virtq_push(&rxq, i);
}

static void read_link(void)
{
    eth0.link = (features & F_STATUS) ? (dev.config[6] & 1) : 1;
}

static void reap_tx(void)
{
    uint32_t id, len;
    while (virtq_pop(&txq, &id, &len))
        if (id < TX_BUFS)
            tx_busy[id] = 0;
}

/* Hand received frames to net_input and post their buffers again. net_input may send
 * (an ARP or echo reply), and sending reaps again: `in_rx` keeps that from nesting, the
 * outer loop picks up whatever arrived meanwhile. */
static void reap(void)
{
    static int in_rx;
    uint32_t id, len;
    if (!in_rx) {
        in_rx = 1;
        int posted = 0;
        while (virtq_pop(&rxq, &id, &len)) {
            if (id >= RX_BUFS)
                continue;                               /* not ours: ignore */
            if (len > HDR && len <= BUF_SIZE) {
                eth0.rx_frames++;
                net_input(rx_buf[id] + HDR, len - HDR);
            }
            post_rx((uint16_t)id);
            posted = 1;
        }
        if (posted)
            virtq_kick(&rxq);
        in_rx = 0;
    }
    reap_tx();
}

static void net_irq(void)
{
    uint8_t isr = virtio_isr(&dev);
    if (isr & 2)
        read_link();
    reap();
}

void net_poll(void)
{
    if (present)
        reap();
}

long net_send_frame(const void *frame, uint64_t len)
{
    if (!present)
        return E_NOENT;
    if (len < 14 || len > ETH_FRAME_MAX)
        return E_FAIL;
    reap_tx();
    int slot = -1;
    for (int i = 0; i < TX_BUFS && slot < 0; i++)
        if (!tx_busy[i])
            slot = i;
    if (slot < 0)
        return E_NOSPC;                                 /* every buffer still in flight */
    memset(tx_buf[slot], 0, HDR);
    memcpy(tx_buf[slot] + HDR, frame, len);
    tx_busy[slot] = 1;
    txq.desc[slot].addr = V2P(tx_buf[slot]);
    txq.desc[slot].len = (uint32_t)(HDR + len);
    txq.desc[slot].flags = 0;
    txq.desc[slot].next = 0;
    virtq_push(&txq, (uint16_t)slot);
    virtq_kick(&txq);
    eth0.tx_frames++;
    reap();                                             /* frames the backend answered at once */
    return (long)len;
}

int net_init(void)
{
    struct pci_dev *pci = pci_find(VIRTIO_VENDOR, VIRTIO_DEVICE_NET, 0);
    if (!pci)
        return 0;
    if (virtio_open(&dev, pci, F_MAC | F_STATUS, "eth0"))
        return 0;
    /* What was negotiated: the device took the features we asked for that it offers. */
    volatile uint32_t *common = (volatile uint32_t *)dev.common;
    common[2] = 0;                                      /* driver_feature_select = 0 */
    features = common[3];
    if (virtq_setup(&dev, &rxq, 0) || virtq_setup(&dev, &txq, 1)) {
        kprintf("kernel: eth0: cannot set up the virtqueues\n");
        return 0;
    }
    for (int i = 0; i < RX_BUFS; i += 2) {
        uint64_t page = frame_alloc();
        if (!page)
            return 0;
        rx_buf[i] = P2V(page);
        rx_buf[i + 1] = (uint8_t *)P2V(page) + BUF_SIZE;
    }
    for (int i = 0; i < TX_BUFS; i += 2) {
        uint64_t page = frame_alloc();
        if (!page)
            return 0;
        tx_buf[i] = P2V(page);
        tx_buf[i + 1] = (uint8_t *)P2V(page) + BUF_SIZE;
    }
    int nrx = RX_BUFS < rxq.size ? RX_BUFS : rxq.size;
    for (int i = 0; i < nrx; i++)
        post_rx((uint16_t)i);
    if (txq.size < TX_BUFS)
        for (int i = txq.size; i < TX_BUFS; i++)
            tx_busy[i] = 1;                             /* never used: no descriptor */
    if (features & F_MAC)
        for (int i = 0; i < 6; i++)
            eth0.mac[i] = dev.config[i];
    strncpy_z(eth0.driver, "virtio-net", sizeof eth0.driver);
    eth0.pci_dev = pci->dev;
    eth0.irq = pci->irq;
    if (pci->irq != 0xFF)
        irq_register(pci->irq, net_irq);
    virtio_driver_ok(&dev);
    virtq_kick(&rxq);
    read_link();
    present = 1;
    return 1;
}

int net_present(void) { return present; }
