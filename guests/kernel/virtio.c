/*
 * virtio 1.x over PCI (the modern transport) and split virtqueues, as a driver sees them.
 * Reference: OASIS "Virtual I/O Device (VIRTIO) Version 1.1": 4.1.4 the vendor-specific
 * PCI capabilities (cap_vndr 0x09: cfg_type 1 common, 2 notify, 3 ISR, 4 device config;
 * bar, offset, length; notify_off_multiplier after the notify capability), 4.1.4.3 the
 * common configuration layout, 3.1.1 driver initialization (reset, ACKNOWLEDGE, DRIVER,
 * features, FEATURES_OK, queues, DRIVER_OK), 2.6 split virtqueues (descriptor table,
 * available ring, used ring, each in its own zeroed page here).
 */
#include "virtio.h"

#define CAP_VNDR 0x09
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR 3
#define CFG_DEVICE 4

/* Common configuration offsets (4.1.4.3). */
#define C_DEVICE_FEATURE_SELECT 0x00
#define C_DEVICE_FEATURE 0x04
#define C_DRIVER_FEATURE_SELECT 0x08
#define C_DRIVER_FEATURE 0x0C
#define C_NUM_QUEUES 0x12
#define C_STATUS 0x14
#define C_QUEUE_SELECT 0x16
#define C_QUEUE_SIZE 0x18
#define C_QUEUE_ENABLE 0x1C
#define C_QUEUE_NOTIFY_OFF 0x1E
#define C_QUEUE_DESC 0x20
#define C_QUEUE_DRIVER 0x28
#define C_QUEUE_DEVICE 0x30

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_FAILED 0x80

#define R8(v, off) (*(volatile uint8_t *)((v)->common + (off)))
#define R16(v, off) (*(volatile uint16_t *)((v)->common + (off)))
#define R32(v, off) (*(volatile uint32_t *)((v)->common + (off)))

static void w64(struct virtio_dev *v, int off, uint64_t value)
{
    R32(v, off) = (uint32_t)value;
    R32(v, off + 4) = (uint32_t)(value >> 32);
}

/* The physical address of BAR `bar` + offset, mapped; NULL if it is not a usable
 * memory BAR (I/O, above 4 GiB, outside the device window, or off). */
static volatile uint8_t *bar_region(struct pci_dev *pci, uint8_t bar, uint32_t offset, uint32_t length)
{
    if (bar > 5)
        return 0;
    uint32_t lo = pci_read32(pci, 0x10 + 4 * bar);
    if (lo & 1)
        return 0;                                   /* an I/O BAR */
    uint64_t base = lo & ~0xFull;
    if (((lo >> 1) & 3) == 2) {                     /* 64-bit: the upper half must be 0 here */
        if (bar == 5 || pci_read32(pci, 0x10 + 4 * (bar + 1)))
            return 0;
    }
    if (!base)
        return 0;
    return (volatile uint8_t *)mmio_map(base + offset, length);
}

int virtio_open(struct virtio_dev *v, struct pci_dev *pci, uint64_t features, const char *name)
{
    memset(v, 0, sizeof *v);
    v->pci = pci;
    /* Memory decode and bus mastering on (the device reads and writes our rings). */
    pci_write16(pci, 0x04, pci_read16(pci, 0x04) | 0x0006);
    if (!(pci_read16(pci, 0x06) & 0x10)) {
        kprintf("kernel: %s: no capabilities list\n", name);
        return E_FAIL;
    }
    uint8_t cap = pci_read8(pci, 0x34) & 0xFC;
    for (int guard = 0; cap >= 0x40 && guard < 48; guard++) {
        if (pci_read8(pci, cap) == CAP_VNDR) {
            uint8_t type = pci_read8(pci, cap + 3), bar = pci_read8(pci, cap + 4);
            uint32_t offset = pci_read32(pci, cap + 8), length = pci_read32(pci, cap + 12);
            volatile uint8_t *region = bar_region(pci, bar, offset, length ? length : 1);
            if (type == CFG_COMMON && !v->common && length >= 0x38)
                v->common = region;
            else if (type == CFG_ISR && !v->isr)
                v->isr = region;
            else if (type == CFG_DEVICE && !v->config)
                v->config = region;
            else if (type == CFG_NOTIFY && !v->notify) {
                v->notify = region;
                v->notify_multiplier = pci_read32(pci, cap + 16);
            }
        }
        cap = pci_read8(pci, cap + 1) & 0xFC;
    }
    if (!v->common || !v->isr || !v->notify) {
        kprintf("kernel: %s: not a virtio 1.x device (no common/ISR/notify capability in a memory BAR)\n", name);
        return E_FAIL;
    }
    R8(v, C_STATUS) = 0;                            /* reset; reads 0 once done */
    for (long spins = 0; R8(v, C_STATUS) != 0; spins++)
        if (spins > 1000000)
            return E_FAIL;
    R8(v, C_STATUS) = S_ACKNOWLEDGE;
    R8(v, C_STATUS) = S_ACKNOWLEDGE | S_DRIVER;
    R32(v, C_DEVICE_FEATURE_SELECT) = 0;
    uint64_t offered = R32(v, C_DEVICE_FEATURE);
    R32(v, C_DEVICE_FEATURE_SELECT) = 1;
    offered |= (uint64_t)R32(v, C_DEVICE_FEATURE) << 32;
    uint64_t wanted = (features | VIRTIO_F_VERSION_1) & offered;
    if (!(wanted & VIRTIO_F_VERSION_1)) {
        kprintf("kernel: %s: device does not offer VIRTIO_F_VERSION_1\n", name);
        R8(v, C_STATUS) = S_FAILED;
        return E_FAIL;
    }
    R32(v, C_DRIVER_FEATURE_SELECT) = 0;
    R32(v, C_DRIVER_FEATURE) = (uint32_t)wanted;
    R32(v, C_DRIVER_FEATURE_SELECT) = 1;
    R32(v, C_DRIVER_FEATURE) = (uint32_t)(wanted >> 32);
    R8(v, C_STATUS) = S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK;
    if (!(R8(v, C_STATUS) & S_FEATURES_OK)) {
        kprintf("kernel: %s: device refused the features\n", name);
        R8(v, C_STATUS) = S_FAILED;
        return E_FAIL;
    }
    return 0;
}

int virtq_setup(struct virtio_dev *v, struct virtq *q, uint16_t index)
{
    memset(q, 0, sizeof *q);
    if (index >= R16(v, C_NUM_QUEUES))
        return E_FAIL;
    R16(v, C_QUEUE_SELECT) = index;
    uint16_t max = R16(v, C_QUEUE_SIZE);
    if (!max)
        return E_FAIL;
    uint16_t size = VIRTQ_MAX;
    while (size > max)                              /* a power of two the device takes */
        size >>= 1;
    uint64_t desc = frame_alloc(), avail = frame_alloc(), used = frame_alloc();
    if (!desc || !avail || !used)
        return E_NOSPC;
    q->size = size;
    q->index = index;
    q->desc = P2V(desc);
    q->avail = P2V(avail);
    q->used = P2V(used);
    R16(v, C_QUEUE_SIZE) = size;
    w64(v, C_QUEUE_DESC, desc);
    w64(v, C_QUEUE_DRIVER, avail);
    w64(v, C_QUEUE_DEVICE, used);
    q->notify = (volatile uint16_t *)(v->notify + (uint32_t)R16(v, C_QUEUE_NOTIFY_OFF) * v->notify_multiplier);
    R16(v, C_QUEUE_ENABLE) = 1;
    return 0;
}

void virtio_driver_ok(struct virtio_dev *v)
{
    R8(v, C_STATUS) = S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
}

uint8_t virtio_isr(struct virtio_dev *v)
{
    return *v->isr;
}

void virtq_push(struct virtq *q, uint16_t head)
{
    q->avail[2 + (q->avail_idx & (q->size - 1))] = head;
    barrier();
    q->avail_idx++;
    q->avail[1] = q->avail_idx;
    barrier();
}

void virtq_kick(struct virtq *q)
{
    barrier();
    *q->notify = q->index;
}

int virtq_pop(struct virtq *q, uint32_t *id, uint32_t *len)
{
    uint16_t used_idx = (uint16_t)(q->used[0] >> 16);
    if (used_idx == q->last_used)
        return 0;
    barrier();
    uint32_t slot = q->last_used & (q->size - 1);
    *id = q->used[1 + 2 * slot];
    *len = q->used[2 + 2 * slot];
    q->last_used++;
    return 1;
}
