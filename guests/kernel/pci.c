/*
 * PCI bus 0 through configuration mechanism #1: a dword address written to port 0xCF8
 * (bit 31 enable, bus 23:16, device 15:11, function 10:8, register 7:2), the data read
 * or written at 0xCFC. Reference: PCI Local Bus Specification 3.0, 3.2.2.3.2 and 6.1
 * (the type 0 header: vendor 0x00, device 0x02, command 0x04, class 0x08-0x0B, header
 * type 0x0E, BARs 0x10-0x24, capabilities pointer 0x34, interrupt line 0x3C).
 *
 * The firmware (vmm's BIOS, SeaBIOS) has already assigned the BARs and written the
 * Interrupt Line; the kernel only lists what is there and lets drivers find it.
 */
#include "kernel.h"

#define PCI_ADDRESS 0xCF8
#define PCI_DATA 0xCFC
#define MAX_PCI 32

static struct pci_dev devs[MAX_PCI];
static int ndevs;

static uint32_t address(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 | (off & 0xFC);
}

static uint32_t conf_read(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    outl(PCI_ADDRESS, address(bus, dev, fn, off));
    return inl(PCI_DATA);
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off) { return conf_read(d->bus, d->dev, d->fn, off); }
uint16_t pci_read16(const struct pci_dev *d, uint8_t off) { return (uint16_t)(pci_read32(d, off) >> ((off & 2) * 8)); }
uint8_t pci_read8(const struct pci_dev *d, uint8_t off) { return (uint8_t)(pci_read32(d, off) >> ((off & 3) * 8)); }

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
    outl(PCI_ADDRESS, address(d->bus, d->dev, d->fn, off));
    outl(PCI_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
    outl(PCI_ADDRESS, address(d->bus, d->dev, d->fn, off));
    outw(PCI_DATA + (off & 2), v);
}

static void probe(uint8_t dev, uint8_t fn)
{
    uint32_t id = conf_read(0, dev, fn, 0x00);
    if ((id & 0xFFFF) == 0xFFFF || ndevs == MAX_PCI)
        return;
    struct pci_dev *d = &devs[ndevs++];
    d->bus = 0;
    d->dev = dev;
    d->fn = fn;
    d->vendor = id & 0xFFFF;
    d->device = id >> 16;
    d->class_code = conf_read(0, dev, fn, 0x08) >> 8;
    uint8_t pin = pci_read8(d, 0x3D);
    uint8_t line = pci_read8(d, 0x3C);
    d->irq = pin && line < 16 ? line : 0xFF;
    if (d->irq == 0xFF)
        kprintf("kernel: pci %02x:%02x.%x %04x:%04x class %04x\n", d->bus, dev, fn, d->vendor, d->device,
                d->class_code >> 8);
    else
        kprintf("kernel: pci %02x:%02x.%x %04x:%04x class %04x irq %u\n", d->bus, dev, fn, d->vendor,
                d->device, d->class_code >> 8, d->irq);
}

int pci_init(void)
{
    /* Mechanism #1 is there if the address register keeps what was written to it. */
    outl(PCI_ADDRESS, 0x80000000u);
    if (inl(PCI_ADDRESS) != 0x80000000u) {
        outl(PCI_ADDRESS, 0);
        return -1;
    }
    for (uint8_t dev = 0; dev < 32; dev++) {
        uint32_t id = conf_read(0, dev, 0, 0x00);
        if ((id & 0xFFFF) == 0xFFFF)
            continue;
        probe(dev, 0);
        if ((conf_read(0, dev, 0, 0x0C) >> 16) & 0x80)   /* header type bit 7: multi-function */
            for (uint8_t fn = 1; fn < 8; fn++)
                probe(dev, fn);
    }
    outl(PCI_ADDRESS, 0);
    return ndevs;
}

struct pci_dev *pci_find(uint16_t vendor, uint16_t device, int index)
{
    for (int i = 0; i < ndevs; i++)
        if (devs[i].vendor == vendor && devs[i].device == device && index-- == 0)
            return &devs[i];
    return 0;
}
