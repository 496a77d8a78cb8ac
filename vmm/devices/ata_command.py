"""The ATA command block, as a device sees it: the task-file registers, each command
decoded and checked once into a ``Request``, and the IDENTIFY DEVICE data.

Source: ANSI INCITS 397-2005 (ATA/ATAPI-7) volume 1, section 6 (command descriptions;
IDENTIFY DEVICE table 16); CHS addressing and INITIALIZE DEVICE PARAMETERS from ATA-5.
The channel that moves data and raises IRQ 14 is ``vmm.devices.ata``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vmm.disk.base import BlockDevice

SECTOR = 512
MAX_MULTIPLE = 16  # IDENTIFY word 47: sectors per DRQ block for READ/WRITE MULTIPLE
HEADS, SECTORS_PER_TRACK, MAX_CYLINDERS = 16, 63, 16383
LBA28_LIMIT = 0x0FFFFFFF

# Status register.
BSY, DRDY, DF, DSC, DRQ, ERR = 0x80, 0x40, 0x20, 0x10, 0x08, 0x01
# Error register.
UNC, IDNF, ABRT = 0x40, 0x10, 0x04
# Device control register.
NIEN, SRST, HOB = 0x02, 0x04, 0x80
DEV_LBA, DEV_SLAVE = 0x40, 0x10

READ_COMMANDS = {0x20: (False, False), 0x21: (False, False), 0x24: (True, False), 0xC4: (False, True),
                 0x29: (True, True)}  # fmt: skip  # command: (LBA48, multiple)
WRITE_COMMANDS = {0x30: (False, False), 0x31: (False, False), 0x34: (True, False), 0xC5: (False, True),
                  0x39: (True, True)}  # fmt: skip
VERIFY_COMMANDS = {0x40: False, 0x41: False, 0x42: True}
NO_DATA_OK = {0xEF, 0xE0, 0xE1, 0xE2, 0xE3, 0xE6, 0x94, 0x95, 0x96, 0x97, 0x70} | set(range(0x10, 0x20))


def ata_string(text: str, length: int) -> bytes:
    """An IDENTIFY string: ASCII padded with spaces, the two bytes of each word swapped."""
    raw = text.encode("ascii", "replace")[:length].ljust(length, b" ")
    return bytes(raw[i ^ 1] for i in range(length))


@dataclass
class DriveState:
    """What one drive remembers between commands."""

    status: int = DRDY | DSC
    error: int = 0x01  # diagnostic code after power-on: no error
    heads: int = HEADS  # current CHS translation (INITIALIZE DEVICE PARAMETERS)
    sectors_per_track: int = SECTORS_PER_TRACK
    multiple: int = 0  # sectors per DRQ block for READ/WRITE MULTIPLE; 0: disabled


@dataclass
class TaskFile:
    """The command block registers; each byte register keeps its previous value (HOB)."""

    features: int = 0
    nsector: int = 1
    sector: int = 1
    lcyl: int = 0
    hcyl: int = 0
    hob_features: int = 0
    hob_nsector: int = 0
    hob_sector: int = 0
    hob_lcyl: int = 0
    hob_hcyl: int = 0
    select: int = 0
    control: int = 0


@dataclass
class Transfer:
    """A PIO command in progress: the sectors still to move and the DRQ block buffer."""

    direction: str = ""  # "in" (device to host), "out", or "" when idle
    lba: int = 0
    remaining: int = 0  # sectors after the current block
    block: int = 0  # sectors in the current block (0: IDENTIFY's 512 bytes)
    per_block: int = 1
    position: int = 0
    buffer: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Request:
    """One ATA command, decoded and validated once, before any work is done."""

    kind: str  # "read", "write", "verify", "identify", "flush", "set-multiple", "geometry",
    #            "diagnostic", "power-mode", "accept"
    lba: int = 0
    count: int = 0
    per_block: int = 1
    lba48: bool = False


class RequestError(Exception):
    """A command refused at decoding: the error register bits and, for IDNF, the sector."""

    def __init__(self, error: int, lba: int | None = None, lba48: bool = False) -> None:
        super().__init__(error)
        self.error, self.lba, self.lba48 = error, lba, lba48


def task_address(t: TaskFile, drive: DriveState, lba48: bool) -> int | None:
    """The starting sector the task file names, or None for an impossible CHS address."""
    if lba48:
        return (t.hob_hcyl << 40 | t.hob_lcyl << 32 | t.hob_sector << 24
                | t.hcyl << 16 | t.lcyl << 8 | t.sector)  # fmt: skip
    if t.select & DEV_LBA:
        return (t.select & 0x0F) << 24 | t.hcyl << 16 | t.lcyl << 8 | t.sector
    head, sector, cylinder = t.select & 0x0F, t.sector, t.hcyl << 8 | t.lcyl
    if sector == 0 or sector > drive.sectors_per_track or head >= drive.heads:
        return None
    return (cylinder * drive.heads + head) * drive.sectors_per_track + sector - 1


def task_count(t: TaskFile, lba48: bool) -> int:
    if lba48:
        return (t.hob_nsector << 8 | t.nsector) or 65536
    return t.nsector or 256


def set_task_address(t: TaskFile, drive: DriveState, lba: int, lba48: bool) -> None:
    """Leave ``lba`` in the task file: where a command stopped, as the standard requires."""
    if lba48:
        t.sector, t.lcyl, t.hcyl = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
        t.hob_sector, t.hob_lcyl, t.hob_hcyl = (lba >> 24) & 0xFF, (lba >> 32) & 0xFF, (lba >> 40) & 0xFF
    elif t.select & DEV_LBA:
        t.sector, t.lcyl, t.hcyl = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
        t.select = (t.select & 0xF0) | ((lba >> 24) & 0x0F)
    else:
        track, sector = divmod(lba, drive.sectors_per_track)
        cylinder, head = divmod(track, drive.heads)
        t.sector, t.lcyl, t.hcyl = sector + 1, cylinder & 0xFF, (cylinder >> 8) & 0xFF
        t.select = (t.select & 0xF0) | (head & 0x0F)


def checked_range(t: TaskFile, drive: DriveState, disk: BlockDevice, lba48: bool) -> tuple[int, int]:
    """The command's first sector and count, all of them on the disk."""
    lba, count = task_address(t, drive, lba48), task_count(t, lba48)
    if lba is None:
        raise RequestError(IDNF)
    if lba + count > disk.capacity:
        raise RequestError(IDNF, max(lba, disk.capacity), lba48)  # the first sector not found
    return lba, count


def decode(command: int, t: TaskFile, drive: DriveState, disk: BlockDevice) -> Request:
    """The command in the task file as a checked Request; RequestError if refused."""
    if command in READ_COMMANDS or command in WRITE_COMMANDS:
        lba48, multiple = READ_COMMANDS.get(command) or WRITE_COMMANDS[command]
        reading = command in READ_COMMANDS
        per_block = drive.multiple if multiple else 1
        if per_block == 0:
            raise RequestError(ABRT)  # READ/WRITE MULTIPLE before SET MULTIPLE MODE
        if not reading and disk.read_only:
            raise RequestError(ABRT)
        lba, count = checked_range(t, drive, disk, lba48)
        return Request("read" if reading else "write", lba, count, per_block, lba48)
    if command in VERIFY_COMMANDS:
        lba48 = VERIFY_COMMANDS[command]
        lba, count = checked_range(t, drive, disk, lba48)
        return Request("verify", lba, count, lba48=lba48)
    if command == 0xEC:
        return Request("identify")
    if command == 0xC6:  # SET MULTIPLE MODE
        count = t.nsector
        if count > MAX_MULTIPLE or count & (count - 1):
            raise RequestError(ABRT)
        return Request("set-multiple", count=count)
    if command == 0x91:  # INITIALIZE DEVICE PARAMETERS
        if t.nsector == 0:
            raise RequestError(ABRT)
        return Request("geometry")
    if command in (0xE7, 0xEA):  # FLUSH CACHE (EXT)
        return Request("flush")
    if command == 0x90:
        return Request("diagnostic")
    if command == 0xE5:
        return Request("power-mode")
    if command in NO_DATA_OK:
        return Request("accept")  # SET FEATURES, idle/standby, recalibrate, seek
    raise RequestError(ABRT)  # includes IDENTIFY PACKET DEVICE and DEVICE RESET


def identify_data(disk: BlockDevice, drive: DriveState, index: int, model: str, firmware: str) -> bytes:
    """IDENTIFY DEVICE data (ATA/ATAPI-7 table 16)."""
    words = [0] * 256
    capacity = disk.capacity
    cylinders = max(1, min(capacity // (HEADS * SECTORS_PER_TRACK), MAX_CYLINDERS))
    words[0] = 0x0040  # fixed, non-removable ATA device
    words[1], words[3], words[6] = cylinders, HEADS, SECTORS_PER_TRACK
    words[4], words[5] = SECTOR * SECTORS_PER_TRACK, SECTOR  # obsolete, as QEMU reports
    words[20], words[21], words[22] = 3, SECTOR, 4
    words[47] = 0x8000 | MAX_MULTIPLE
    words[49] = 1 << 9 | 1 << 11  # LBA, IORDY
    words[50] = 0x4000
    words[51] = words[52] = 0x0200  # PIO mode 2 timing
    words[53] = 0x0003  # words 54-58 and 64-70 are valid
    current_cyl = min(capacity // max(1, drive.heads * drive.sectors_per_track), 0xFFFF)
    words[54], words[55], words[56] = current_cyl, drive.heads, drive.sectors_per_track
    current = current_cyl * drive.heads * drive.sectors_per_track
    words[57], words[58] = current & 0xFFFF, (current >> 16) & 0xFFFF
    words[59] = 0x0100 | drive.multiple if drive.multiple else 0
    lba28 = min(capacity, LBA28_LIMIT)
    words[60], words[61] = lba28 & 0xFFFF, lba28 >> 16
    words[64] = 0x0003  # PIO modes 3 and 4
    words[65] = words[66] = words[67] = words[68] = 120
    words[80] = 0x00F0  # ATA/ATAPI-4 to -7
    words[82], words[83], words[84] = 1 << 5, 0x4000 | 1 << 13 | 1 << 12 | 1 << 10, 0x4000
    words[85], words[86], words[87] = 1 << 5, 1 << 13 | 1 << 12 | 1 << 10, 0x4000
    for i in range(4):
        words[100 + i] = (capacity >> (16 * i)) & 0xFFFF
    data = bytearray(struct.pack("<256H", *words))
    data[20:40] = ata_string(f"VMM{index:017d}", 20)  # words 10-19: serial number
    data[46:54] = ata_string(firmware, 8)  # words 23-26
    data[54:94] = ata_string(model, 40)  # words 27-46
    data[510] = 0xA5  # word 255: signature and checksum (all 512 bytes sum to 0)
    data[511] = -sum(data[:511]) & 0xFF
    return bytes(data)
