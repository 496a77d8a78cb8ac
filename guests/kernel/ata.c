/*
 * ATA/IDE PIO driver for the primary channel master (ports 0x1F0-0x1F7), LBA28, polling.
 * Reference: ATA/ATAPI-6, 8.15 IDENTIFY DEVICE and 8.27 READ SECTORS; the drive's IRQ 14
 * stays masked at the PIC, and the status register is polled instead.
 */
#include "kernel.h"

#define ATA_DATA 0x1F0
#define ATA_ERROR 0x1F1
#define ATA_COUNT 0x1F2
#define ATA_LBA0 0x1F3
#define ATA_LBA1 0x1F4
#define ATA_LBA2 0x1F5
#define ATA_DRIVE 0x1F6
#define ATA_STATUS 0x1F7   /* read */
#define ATA_COMMAND 0x1F7  /* write */

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_BSY 0x80

#define CMD_READ_SECTORS 0x20
#define CMD_IDENTIFY 0xEC

static uint32_t disk_sectors;

static void delay400ns(void)
{
    for (int i = 0; i < 4; i++)
        inb(ATA_STATUS);
}

/* Wait for BSY to clear, then for DRQ (data ready) or an error. 0 on success. */
static int wait_drq(void)
{
    for (long spins = 0; spins < 10000000; spins++) {
        uint8_t st = inb(ATA_STATUS);
        if (st & ST_BSY)
            continue;
        if (st & (ST_ERR | ST_DF))
            return -1;
        if (st & ST_DRQ)
            return 0;
    }
    return -1;
}

uint32_t ata_init(void)
{
    outb(ATA_DRIVE, 0xA0);                 /* select master */
    delay400ns();
    outb(ATA_COUNT, 0);
    outb(ATA_LBA0, 0);
    outb(ATA_LBA1, 0);
    outb(ATA_LBA2, 0);
    outb(ATA_COMMAND, CMD_IDENTIFY);
    if (inb(ATA_STATUS) == 0)              /* no drive at all */
        return 0;
    while (inb(ATA_STATUS) & ST_BSY)
        ;
    if (inb(ATA_LBA1) || inb(ATA_LBA2))    /* ATAPI or SATA signature: not an ATA disk */
        return 0;
    if (wait_drq())
        return 0;
    uint16_t id[256];
    for (int i = 0; i < 256; i++)
        id[i] = inw(ATA_DATA);
    disk_sectors = id[60] | ((uint32_t)id[61] << 16);   /* words 60-61: LBA28 capacity */
    return disk_sectors;
}

int ata_read(uint32_t lba, uint32_t count, void *buf)
{
    uint16_t *out = buf;
    while (count) {
        uint32_t n = count > 255 ? 255 : count;
        if (lba + n > disk_sectors || lba >= (1u << 28))
            return E_FAIL;
        outb(ATA_DRIVE, 0xE0 | ((lba >> 24) & 0x0F));   /* master, LBA mode, LBA bits 24-27 */
        delay400ns();
        outb(ATA_COUNT, (uint8_t)n);
        outb(ATA_LBA0, lba & 0xFF);
        outb(ATA_LBA1, (lba >> 8) & 0xFF);
        outb(ATA_LBA2, (lba >> 16) & 0xFF);
        outb(ATA_COMMAND, CMD_READ_SECTORS);
        for (uint32_t s = 0; s < n; s++) {
            delay400ns();
            if (wait_drq())
                return E_FAIL;
            for (int i = 0; i < 256; i++)
                *out++ = inw(ATA_DATA);
        }
        lba += n;
        count -= n;
    }
    return 0;
}
