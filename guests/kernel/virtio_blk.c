/*
 * virtio-blk driver: the first 1af4:1042 function, read synchronously.
 * Reference: virtio 1.1, 5.2: configuration `le64 capacity` (512-byte sectors) first;
 * requests on queue 0 as three descriptors: the header {le32 type (0 IN, 1 OUT),
 * le32 reserved, le64 sector} the device reads, the data, and one status byte it writes
 * (0 OK, 1 IOERR, 2 UNSUPP). Features asked for: none besides VERSION_1.
 *
 * One request at a time: descriptors 0-2, the data buffer is the caller's (kernel memory
 * below 1 GiB, physically contiguous), and the driver polls the used ring. The device's
 * INTx handler only reads the ISR so that a shared level-triggered line drops.
 */
#include "virtio.h"

#define T_IN 0
#define MAX_BYTES (64 * 1024)

static struct virtio_dev dev;
static struct virtq q;
static uint64_t capacity;
static struct {
    uint32_t type, reserved;
    uint64_t sector;
} header __attribute__((aligned(16)));
static volatile uint8_t status;

static void blk_irq(void)
{
    virtio_isr(&dev);
}

uint64_t vblk_init(void)
{
    struct pci_dev *pci = pci_find(VIRTIO_VENDOR, VIRTIO_DEVICE_BLK, 0);
    if (!pci)
        return 0;
    if (virtio_open(&dev, pci, 0, "virtio disk 0") || !dev.config)
        return 0;
    if (virtq_setup(&dev, &q, 0) || q.size < 4) {
        kprintf("kernel: virtio disk 0: cannot set up its virtqueue\n");
        return 0;
    }
    capacity = *(volatile uint32_t *)dev.config | (uint64_t) * (volatile uint32_t *)(dev.config + 4) << 32;
    if (pci->irq != 0xFF)
        irq_register(pci->irq, blk_irq);
    virtio_driver_ok(&dev);
    return capacity;
}

/* Read count sectors from lba into buf (kernel memory). 0 on success. */
int vblk_read(uint64_t lba, uint32_t count, void *buf)
{
    uint8_t *out = buf;
    while (count) {
        uint32_t n = count > MAX_BYTES / 512 ? MAX_BYTES / 512 : count;
        if (!capacity || lba >= capacity || n > capacity - lba)
            return E_FAIL;
        header.type = T_IN;
        header.reserved = 0;
        header.sector = lba;
        status = 0xFF;
        q.desc[0].addr = V2P(&header);
        q.desc[0].len = sizeof header;
        q.desc[0].flags = VIRTQ_DESC_F_NEXT;
        q.desc[0].next = 1;
        q.desc[1].addr = V2P(out);
        q.desc[1].len = n * 512;
        q.desc[1].flags = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE;
        q.desc[1].next = 2;
        q.desc[2].addr = V2P(&status);
        q.desc[2].len = 1;
        q.desc[2].flags = VIRTQ_DESC_F_WRITE;
        q.desc[2].next = 0;
        virtq_push(&q, 0);
        virtq_kick(&q);
        uint32_t id, len;
        long spins = 0;
        while (!virtq_pop(&q, &id, &len))
            if (++spins > 100000000)
                return E_FAIL;                      /* the device never answered */
        barrier();
        if (status != 0)
            return E_FAIL;
        lba += n;
        count -= n;
        out += n * 512;
    }
    return 0;
}
