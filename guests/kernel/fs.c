/*
 * TOYFS reader: a read-only archive built by tools/mkfs.py (format described there).
 * The superblock and directory are read once at boot; file data is read on demand.
 */
#include "kernel.h"

#define SECTOR 512
#define MAX_FILES 64

struct superblock {
    char magic[8];
    uint32_t version;
    uint32_t nfiles;
    uint32_t dir_off;
    uint32_t size;
    uint8_t reserved[40];
} __attribute__((packed));

struct dirent {
    char name[48];
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint32_t reserved;
} __attribute__((packed));

static int ata_read_lba(uint64_t lba, uint32_t count, void *buf)
{
    return lba > 0xFFFFFFFFull ? E_FAIL : ata_read((uint32_t)lba, count, buf);
}

/* Where the file system is read from: the ATA disk, or a virtio disk (main.c decides). */
int (*disk_read)(uint64_t lba, uint32_t count, void *buf) = ata_read_lba;

static struct dirent files[MAX_FILES];
static int nfiles;
static uint64_t fs_lba;
static uint32_t fs_bytes;
static uint8_t sector_buf[SECTOR];
static uint8_t dir_buf[SECTOR * 9];

int fs_init(uint32_t lba, uint32_t sectors)
{
    fs_lba = lba;
    fs_bytes = sectors * SECTOR;
    if (disk_read(lba, 1, sector_buf))
        return E_FAIL;
    struct superblock *sb = (struct superblock *)sector_buf;
    if (memcmp(sb->magic, "TOYFS1\0\0", 8) || sb->version != 1)
        return E_FAIL;
    if (sb->nfiles > MAX_FILES || sb->dir_off != sizeof *sb || sb->size > fs_bytes)
        return E_FAIL;
    uint32_t dir_end = sb->dir_off + sb->nfiles * sizeof(struct dirent);
    uint32_t dir_sectors = (dir_end + SECTOR - 1) / SECTOR;
    nfiles = (int)sb->nfiles;
    if (disk_read(lba, dir_sectors, dir_buf))
        return E_FAIL;
    memcpy(files, dir_buf + sizeof *sb, nfiles * sizeof(struct dirent));
    for (int i = 0; i < nfiles; i++) {
        files[i].name[sizeof files[i].name - 1] = 0;
        if (files[i].offset + (uint64_t)files[i].size > fs_bytes)   /* checked once, here */
            files[i].size = 0;
    }
    return nfiles;
}

int fs_find(const char *path)
{
    for (int i = 0; i < nfiles; i++)
        if (!strcmp(files[i].name, path))
            return i;
    return E_NOENT;
}

int fs_count(void) { return nfiles; }
const char *fs_name(int idx) { return files[idx].name; }
uint32_t fs_size(int idx) { return files[idx].size; }
uint32_t fs_flags(int idx) { return files[idx].flags; }

long fs_read(int idx, uint64_t off, void *buf, uint64_t len)
{
    struct dirent *f = &files[idx];
    if (off >= f->size)
        return 0;
    if (len > f->size - off)
        len = f->size - off;
    uint8_t *out = buf;
    uint64_t done = 0;
    while (done < len) {
        uint64_t pos = f->offset + off + done;
        uint32_t in_sector = pos % SECTOR;
        uint64_t n = SECTOR - in_sector;
        if (n > len - done)
            n = len - done;
        if (disk_read(fs_lba + pos / SECTOR, 1, sector_buf))
            return E_FAIL;
        memcpy(out + done, sector_buf + in_sector, n);
        done += n;
    }
    return (long)done;
}
