"""ATA primary channel: IDENTIFY, LBA28/LBA48/CHS PIO transfers and errors, as a guest sees them."""

from __future__ import annotations

import struct

import pytest

from vmm.devices.ata import AtaController
from vmm.disk.base import BlockDevice
from vmm.irq import IrqLine

SECTORS = 20000


class MemoryDisk(BlockDevice):
    def __init__(self, sectors: int = SECTORS, read_only: bool = False) -> None:
        self.data = bytearray(sectors * 512)
        for lba in range(sectors):
            self.data[lba * 512 : lba * 512 + 8] = struct.pack("<Q", lba)
        self.read_only = read_only
        self.flushes = 0

    @property
    def capacity(self) -> int:
        return len(self.data) // 512

    def read(self, lba: int, count: int) -> bytes:
        self.check_range(lba, count)
        return bytes(self.data[lba * 512 : (lba + count) * 512])

    def write(self, lba: int, data: bytes) -> None:
        self.check_range(lba, len(data) // 512)
        self.data[lba * 512 : lba * 512 + len(data)] = data

    def flush(self) -> None:
        self.flushes += 1


class Rig:
    def __init__(self, master: BlockDevice | None = None, slave: BlockDevice | None = None) -> None:
        self.disk = master if master is not None else MemoryDisk()
        self.irq: list[bool] = []
        self.line = IrqLine(14, lambda _n, level: self.irq.append(level))
        self.ata = AtaController(self.line, master=self.disk, slave=slave)

    def out(self, port: int, value: int, size: int = 1) -> None:
        self.ata.io_write(port, size, value)

    def inb(self, port: int) -> int:
        return self.ata.io_read(port, 1)

    def status(self) -> int:
        return self.inb(0x1F7)

    def lba28(self, command: int, lba: int, count: int, device: int = 0xE0) -> None:
        self.out(0x1F2, count & 0xFF)
        self.out(0x1F3, lba & 0xFF)
        self.out(0x1F4, (lba >> 8) & 0xFF)
        self.out(0x1F5, (lba >> 16) & 0xFF)
        self.out(0x1F6, device | ((lba >> 24) & 0x0F))
        self.out(0x1F7, command)

    def lba48(self, command: int, lba: int, count: int) -> None:
        for shift in (8, 0):
            self.out(0x1F2, (count >> shift) & 0xFF)
        self.out(0x1F3, (lba >> 24) & 0xFF)
        self.out(0x1F4, (lba >> 32) & 0xFF)
        self.out(0x1F5, (lba >> 40) & 0xFF)
        self.out(0x1F3, lba & 0xFF)
        self.out(0x1F4, (lba >> 8) & 0xFF)
        self.out(0x1F5, (lba >> 16) & 0xFF)
        self.out(0x1F6, 0x40)
        self.out(0x1F7, command)

    def read_data(self, nbytes: int, size: int = 2) -> bytes:
        return b"".join(self.ata.io_read(0x1F0, size).to_bytes(size, "little") for _ in range(nbytes // size))

    def write_data(self, data: bytes, size: int = 2) -> None:
        for i in range(0, len(data), size):
            self.ata.io_write(0x1F0, size, int.from_bytes(data[i : i + size], "little"))


def sector_numbers(data: bytes) -> list[int]:
    return [struct.unpack_from("<Q", data, i)[0] for i in range(0, len(data), 512)]


def test_identify_words() -> None:
    rig = Rig()
    rig.out(0x1F6, 0xA0)
    rig.out(0x1F7, 0xEC)
    assert rig.irq[-1] is True
    assert rig.status() == 0x58  # DRDY DSC DRQ; the status read clears INTRQ
    assert rig.irq[-1] is False
    words = struct.unpack("<256H", rig.read_data(512))
    assert rig.status() & 0x08 == 0
    assert words[0] == 0x0040
    assert (words[1], words[3], words[6]) == (SECTORS // (16 * 63), 16, 63)
    model = b"".join(struct.pack(">H", w) for w in words[27:47]).decode()
    assert model.rstrip() == "VMM HARDDISK"
    assert b"".join(struct.pack(">H", w) for w in words[10:20]).decode().strip().startswith("VMM")
    assert words[49] & 0x0200  # LBA
    assert words[60] | words[61] << 16 == SECTORS
    assert words[83] & 0x0400 and words[86] & 0x0400  # LBA48 supported and enabled
    assert words[100] | words[101] << 16 | words[102] << 32 | words[103] << 48 == SECTORS
    assert words[255] & 0xFF == 0xA5
    assert sum(struct.pack("<256H", *words)) & 0xFF == 0


def test_lba28_read_two_sectors_16_and_32_bit() -> None:
    rig = Rig()
    rig.lba28(0x20, 1000, 2)
    assert rig.status() & 0x08
    first = rig.read_data(512, size=4)
    assert rig.irq[-1] is True  # a new DRQ block: a new interrupt
    assert rig.status() & 0x08
    second = rig.read_data(512)
    assert sector_numbers(first + second) == [1000, 1001]
    assert rig.status() == 0x50
    assert rig.inb(0x1F3) == (1001 & 0xFF)  # the task file holds the last sector


def test_lba28_write_then_read_back() -> None:
    rig = Rig()
    payload = bytes(range(256)) * 4
    rig.lba28(0x30, 7, 2)
    assert rig.status() & 0x08 and rig.irq == []  # no interrupt before the first block
    rig.write_data(payload)
    assert rig.disk.data[7 * 512 : 9 * 512] == payload
    assert rig.status() == 0x50
    assert rig.irq[-2:] == [True, False]


def test_lba48_read_and_write_ext() -> None:
    rig = Rig()
    rig.lba48(0x24, 0x4000, 3)
    assert sector_numbers(rig.read_data(3 * 512)) == [0x4000, 0x4001, 0x4002]
    rig.lba48(0x34, 0x10, 1)
    rig.write_data(b"\xaa" * 512, size=4)
    assert rig.disk.data[0x10 * 512 : 0x11 * 512] == b"\xaa" * 512
    rig.out(0x3F6, 0x80)  # HOB: read the previous byte of each register
    assert rig.inb(0x1F2) == 0 and rig.inb(0x1F3) == 0


def test_lba48_beyond_disk_is_idnf() -> None:
    rig = Rig()
    rig.lba48(0x24, 1 << 40, 1)
    assert rig.status() == 0x51
    assert rig.inb(0x1F1) == 0x10


def test_chs_read_uses_geometry() -> None:
    rig = Rig()
    # Cylinder 2, head 3, sector 5 -> ((2 * 16 + 3) * 63) + 4
    rig.out(0x1F2, 1)
    rig.out(0x1F3, 5)
    rig.out(0x1F4, 2)
    rig.out(0x1F5, 0)
    rig.out(0x1F6, 0xA3)
    rig.out(0x1F7, 0x20)
    assert sector_numbers(rig.read_data(512)) == [(2 * 16 + 3) * 63 + 4]
    # INITIALIZE DEVICE PARAMETERS: 4 heads, 17 sectors per track
    rig.out(0x1F2, 17)
    rig.out(0x1F6, 0xA3)
    rig.out(0x1F7, 0x91)
    assert rig.status() == 0x50
    rig.out(0x1F2, 1)
    rig.out(0x1F3, 1)
    rig.out(0x1F4, 1)
    rig.out(0x1F6, 0xA2)
    rig.out(0x1F7, 0x20)
    assert sector_numbers(rig.read_data(512)) == [(1 * 4 + 2) * 17]
    rig.out(0x1F3, 0)  # sector 0 does not exist in CHS
    rig.out(0x1F7, 0x20)
    assert rig.status() & 0x01 and rig.inb(0x1F1) == 0x10


def test_read_multiple() -> None:
    rig = Rig()
    rig.lba28(0xC4, 0, 4)
    assert rig.status() & 0x01 and rig.inb(0x1F1) == 0x04  # before SET MULTIPLE: abort
    rig.out(0x1F2, 3)
    rig.out(0x1F7, 0xC6)
    assert rig.status() & 0x01  # not a power of two
    rig.out(0x1F2, 4)
    rig.out(0x1F7, 0xC6)
    assert rig.status() == 0x50
    rig.irq.clear()
    rig.lba28(0xC4, 100, 6)
    rig.status()  # the guest's interrupt handler reads status, dropping INTRQ
    data = rig.read_data(4 * 512)
    rig.status()
    data += rig.read_data(2 * 512)
    assert sector_numbers(data) == list(range(100, 106))
    assert rig.irq.count(True) == 2  # one interrupt per 4-sector block
    rig.lba28(0xC5, 200, 5)
    rig.write_data(b"\x11" * 5 * 512)
    assert rig.disk.data[200 * 512 : 205 * 512] == b"\x11" * 5 * 512


def test_out_of_range_read_and_write() -> None:
    rig = Rig()
    # The whole range is checked when the command is decoded: nothing moves, IDNF names
    # the first sector not found.
    rig.lba28(0x20, SECTORS - 1, 2)
    assert rig.status() == 0x51 and rig.inb(0x1F1) == 0x10
    assert rig.read_data(512) == b"\xff" * 512
    lba = rig.inb(0x1F3) | rig.inb(0x1F4) << 8 | rig.inb(0x1F5) << 16 | (rig.inb(0x1F6) & 0x0F) << 24
    assert lba == SECTORS
    rig.lba28(0x30, SECTORS, 1)
    rig.write_data(b"\0" * 512)
    assert rig.status() == 0x51 and rig.inb(0x1F1) == 0x10
    assert len(rig.disk.data) == SECTORS * 512


def test_verify_flush_set_features_and_unknown() -> None:
    rig = Rig()
    rig.lba28(0x40, 10, 10)
    assert rig.status() == 0x50
    rig.lba28(0x40, SECTORS, 1)
    assert rig.status() == 0x51
    rig.out(0x1F7, 0xE7)
    assert rig.status() == 0x50 and rig.disk.flushes == 1
    rig.out(0x1F7, 0xEA)
    assert rig.disk.flushes == 2
    rig.out(0x1F1, 0x03)
    rig.out(0x1F7, 0xEF)
    assert rig.status() == 0x50
    rig.out(0x1F7, 0xA1)  # IDENTIFY PACKET DEVICE: a disk aborts
    assert rig.status() == 0x51 and rig.inb(0x1F1) == 0x04
    rig.out(0x1F7, 0x5A)
    assert rig.inb(0x1F1) == 0x04


def test_nien_alternate_status_and_soft_reset() -> None:
    rig = Rig()
    rig.out(0x3F6, 0x02)  # nIEN
    rig.out(0x1F7, 0xEC)
    assert rig.irq == []
    rig.out(0x3F6, 0x00)
    assert rig.irq == [True]
    assert rig.ata.io_read(0x3F6, 1) == 0x58
    assert rig.irq == [True]  # alternate status leaves INTRQ alone
    rig.out(0x3F6, 0x04)  # SRST
    assert rig.ata.io_read(0x3F6, 1) & 0x80
    rig.out(0x3F6, 0x00)
    assert [rig.inb(p) for p in (0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5)] == [1, 1, 1, 0, 0]
    assert rig.status() == 0x50
    assert rig.read_data(2) == b"\xff\xff"  # no DRQ after reset


def test_absent_slave_and_empty_channel() -> None:
    rig = Rig()
    rig.out(0x1F6, 0xB0)
    assert rig.status() == 0
    rig.out(0x1F7, 0xEC)
    assert rig.status() == 0 and rig.irq == []
    empty = AtaController()
    assert empty.io_read(0x1F7, 1) == 0


def test_slave_drive() -> None:
    slave = MemoryDisk(100)
    rig = Rig(slave=slave)
    rig.lba28(0x20, 50, 1, device=0xF0)
    assert sector_numbers(rig.read_data(512)) == [50]


def test_read_only_disk_aborts_writes() -> None:
    rig = Rig(master=MemoryDisk(100, read_only=True))
    rig.lba28(0x30, 1, 1)
    assert rig.status() == 0x51 and rig.inb(0x1F1) == 0x04


@pytest.mark.parametrize("split", [0, 300])
def test_save_restore_behaves_identically(split: int) -> None:
    rig = Rig()
    rig.lba28(0x20, 10, 3)
    rig.read_data(split)
    other = Rig(master=rig.disk)
    other.ata.restore(rig.ata.save())
    assert other.ata.save() == rig.ata.save()
    a = rig.read_data(3 * 512 - split) + bytes([rig.status()])
    b_state = other.ata
    b = other.read_data(3 * 512 - split) + bytes([b_state.io_read(0x1F7, 1)])
    assert a == b
