/* The virtio 1.x PCI transport and split virtqueues, shared by the net and block drivers. */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "kernel.h"

#define VIRTIO_VENDOR 0x1AF4
#define VIRTIO_DEVICE_NET 0x1041       /* 0x1040 + virtio device ID 1 */
#define VIRTIO_DEVICE_BLK 0x1042       /* 0x1040 + 2 */

#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} __attribute__((packed));

struct virtq {
    uint16_t size;                      /* a power of two, at most VIRTQ_MAX */
    uint16_t last_used;                 /* used ring entries consumed so far */
    uint16_t avail_idx;                 /* our copy of avail->idx */
    volatile struct virtq_desc *desc;
    volatile uint16_t *avail;           /* flags, idx, ring[size], used_event */
    volatile uint32_t *used;            /* flags|idx, then {id, len} pairs */
    volatile uint16_t *notify;
    uint16_t index;
};
#define VIRTQ_MAX 64

struct virtio_dev {
    struct pci_dev *pci;
    volatile uint8_t *common;
    volatile uint8_t *isr;
    volatile uint8_t *config;
    volatile uint8_t *notify;
    uint32_t notify_multiplier;
};

/* Find the capabilities, map the registers, reset, negotiate `features` (VERSION_1 is
 * always asked for). 0 on success; a message on failure. */
int virtio_open(struct virtio_dev *v, struct pci_dev *pci, uint64_t features, const char *name);
int virtq_setup(struct virtio_dev *v, struct virtq *q, uint16_t index);
void virtio_driver_ok(struct virtio_dev *v);
uint8_t virtio_isr(struct virtio_dev *v);            /* reading clears it (drops INTx) */
void virtq_push(struct virtq *q, uint16_t head);     /* offer a chain, not yet notified */
void virtq_kick(struct virtq *q);
int virtq_pop(struct virtq *q, uint32_t *id, uint32_t *len);  /* 1: a used entry */

#endif
