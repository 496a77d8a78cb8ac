/*
 * kmain: the kernel's C entry, called by entry.S with the boot info stage 2 left at
 * physical 0x5000. Brings the machine up in dependency order and starts /bin/init.
 */
#include "kernel.h"
#include "bootinfo.h"

struct bootinfo *boot_info;
char cmdline[256];

extern char _kernel_end[];

void kmain(uint64_t bootinfo_phys)
{
    boot_info = P2V(bootinfo_phys);
    console_init();
    kprintf("kernel: toyos 0.1 starting\n");
    if (boot_info->magic != BOOTINFO_MAGIC)
        panic("bad boot info magic 0x%x", boot_info->magic);
    strncpy_z(cmdline, (const char *)P2V(boot_info->cmdline_addr), sizeof cmdline);
    kprintf("kernel: command line \"%s\"\n", cmdline);

    cpu_init();
    kprintf("kernel: GDT, TSS, IDT loaded; PIC remapped to 0x20/0x28; PIT at %d Hz\n", HZ);

    struct e820_entry *map = P2V(boot_info->e820_addr);
    uint64_t usable = 0;
    for (uint32_t i = 0; i < boot_info->e820_count; i++) {
        kprintf("kernel: e820 %016lx-%016lx type %u\n", map[i].base, map[i].base + map[i].length - 1,
                map[i].type);
        if (map[i].type == 1)
            usable += map[i].length;
    }
    kprintf("kernel: memory %lu MiB usable\n", usable >> 20);
    mm_init(ALIGN_UP(V2P(_kernel_end), PAGE_SIZE));
    kprintf("kernel: paging on, %lu free pages\n", mm_free_pages());

    int npci = pci_init();
    if (npci < 0)
        kprintf("kernel: pci: no configuration mechanism #1 (an ISA-only machine)\n");
    else
        kprintf("kernel: pci: %d functions on bus 0\n", npci);
    if (npci > 0 && net_init()) {
        extern struct netinfo eth0;
        const uint8_t *m = eth0.mac;
        kprintf("kernel: eth0: virtio-net at 00:%02x.0 irq %u, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s\n",
                eth0.pci_dev, eth0.irq, m[0], m[1], m[2], m[3], m[4], m[5], eth0.link ? "up" : "down");
    }

    /* The boot disk is the BIOS's (ATA). The file system lives there, unless the first
     * virtio disk holds a TOYFS image from sector 0: then it is read from that disk. */
    uint32_t sectors = ata_init();
    if (sectors)
        kprintf("kernel: disk 0: %u sectors\n", sectors);
    uint64_t vsectors = npci > 0 ? vblk_init() : 0;
    int nfiles = -1;
    if (vsectors) {
        kprintf("kernel: virtio disk 0: %lu sectors\n", vsectors);
        int (*ata)(uint64_t, uint32_t, void *) = disk_read;
        disk_read = vblk_read;
        nfiles = fs_init(0, vsectors > 0x7FFFFF ? 0x7FFFFF : (uint32_t)vsectors);
        if (nfiles >= 0) {
            kprintf("kernel: fs: %d files on virtio disk 0\n", nfiles);
        } else {
            kprintf("kernel: virtio disk 0: no TOYFS file system at sector 0\n");
            disk_read = ata;
        }
    }
    if (nfiles < 0) {
        if (!sectors)
            panic("no file system: no ATA disk on the primary channel and none on a virtio disk");
        nfiles = fs_init(boot_info->fs_lba, boot_info->fs_sectors);
        if (nfiles < 0)
            panic("no TOYFS file system at LBA %u", boot_info->fs_lba);
        kprintf("kernel: fs: %d files\n", nfiles);
    }

    proc_init();
    kprintf("kernel: starting /bin/init\n");
    int pid = proc_spawn("/bin/init", cmdline, 0);
    if (pid != 1)
        panic("cannot start /bin/init (%d)", pid);
    start_first_process();
}
