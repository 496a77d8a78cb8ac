"""The 82077AA floppy controller and the 8237 DMA controller, driven through their ports
as a guest drives them: reset, SPECIFY, SEEK, READ/WRITE DATA by DMA and by PIO, errors,
the disk-change line, and save/restore of both chips."""

from __future__ import annotations

import struct

import pytest

from tests.unit.devices.test_ata import MemoryDisk
from vmm.devices.dma8237 import Dma8237Pair
from vmm.devices.fdc82077 import Fdc82077, FloppyMedia, floppy_format
from vmm.errors import ConfigError
from vmm.irq import IrqLine
from vmm.memory import GuestMemory

SECTORS_1440 = 2880


class Rig:
    def __init__(self, sectors: int = SECTORS_1440, read_only: bool = False, media: bool = True) -> None:
        self.memory = GuestMemory(1 << 20)
        self.dma = Dma8237Pair(self.memory)
        self.irq_edges: list[bool] = []
        self.irq = IrqLine(6, lambda _n, level: self.irq_edges.append(level))
        self.disk = MemoryDisk(sectors, read_only=read_only)
        self.fdc = Fdc82077(self.irq, self.dma, FloppyMedia(self.disk) if media else None)

    def out(self, port: int, value: int) -> None:
        dev = self.fdc if port >= 0x3F0 else self.dma
        dev.io_write(port, 1, value)

    def inb(self, port: int) -> int:
        dev = self.fdc if port >= 0x3F0 else self.dma
        return dev.io_read(port, 1)

    def command(self, *data: int) -> None:
        for byte in data:
            assert self.inb(0x3F4) & 0xC0 == 0x80, "the FDC must want a byte"
            self.out(0x3F5, byte)

    def results(self) -> list[int]:
        out = []
        while self.inb(0x3F4) & 0xC0 == 0xC0:
            out.append(self.inb(0x3F5))
        return out

    def dma_channel2(self, address: int, length: int, mode: int) -> None:
        self.out(0x0A, 0x06)
        self.out(0x0C, 0)
        self.out(0x0B, mode)
        self.out(0x04, address & 0xFF)
        self.out(0x04, (address >> 8) & 0xFF)
        self.out(0x81, address >> 16)
        self.out(0x05, (length - 1) & 0xFF)
        self.out(0x05, (length - 1) >> 8)
        self.out(0x0A, 0x02)


def test_reset_raises_irq6_and_reports_four_polling_drives() -> None:
    rig = Rig()
    rig.out(0x3F2, 0x08)
    assert rig.inb(0x3F4) == 0  # held in reset
    rig.out(0x3F2, 0x0C)
    assert rig.irq.level
    for drive in range(4):
        rig.command(0x08)
        assert rig.results() == [0xC0 | drive, 0]
    assert not rig.irq.level
    rig.command(0x08)
    assert rig.results() == [0x80]  # nothing left to sense: invalid


def test_version_dumpreg_and_an_invalid_command() -> None:
    rig = Rig()
    rig.command(0x10)
    assert rig.results() == [0x90]
    rig.command(0x03, 0xDF, 0x02)  # SPECIFY: no result phase
    assert rig.inb(0x3F4) == 0x80
    rig.command(0x0E)
    assert rig.results()[4:6] == [0xDF, 0x02]
    rig.command(0x1F)
    assert rig.results() == [0x80]


def test_dma_read_of_two_sectors_across_the_heads() -> None:
    rig = Rig()
    rig.command(0x0F, 0x00, 5)  # SEEK cylinder 5
    assert rig.irq.level
    rig.command(0x08)
    assert rig.results() == [0x20, 5]
    rig.dma_channel2(0x12000, 1024, 0x46)
    rig.command(0xE6, 0x00, 5, 0, 18, 2, 18, 0x1B, 0xFF)  # C5 H0 R18, MT: continues on head 1
    assert rig.irq.level
    st0, st1, st2, c, h, r, n = rig.results()
    assert (st0 & 0xC0, st1, st2) == (0, 0, 0)
    assert (c, h, r, n) == (5, 1, 2, 2)
    first = (5 * 2 + 0) * 18 + 17
    assert struct.unpack_from("<Q", rig.memory.read(0x12000, 8))[0] == first
    assert struct.unpack_from("<Q", rig.memory.read(0x12200, 8))[0] == first + 1
    assert rig.inb(0x08) & 0x04  # DMA status: channel 2 reached terminal count
    assert rig.dma.channels[2].masked


def test_read_to_the_end_of_the_track_without_terminal_count_ends_with_en() -> None:
    rig = Rig()
    rig.dma_channel2(0x20000, 4096, 0x46)
    rig.command(0x66, 0x00, 0, 0, 17, 2, 18, 0x1B, 0xFF)  # two sectors to EOT, DMA wants 8
    st0, st1, *_ = rig.results()
    assert (st0 & 0xC0, st1) == (0x40, 0x80)


def test_write_then_read_back_and_write_protection() -> None:
    rig = Rig()
    rig.memory.write(0x3000, b"A" * 512)
    rig.dma_channel2(0x3000, 512, 0x4A)
    rig.command(0xC5, 0x04, 1, 1, 3, 2, 3, 0x1B, 0xFF)
    assert rig.results()[:3] == [0x04, 0, 0]
    lba = (1 * 2 + 1) * 18 + 2
    assert rig.disk.data[lba * 512 : lba * 512 + 512] == b"A" * 512
    protected = Rig(read_only=True)
    protected.dma_channel2(0x3000, 512, 0x4A)
    protected.command(0xC5, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF)
    st0, st1, *_ = protected.results()
    assert (st0 & 0xC0, st1) == (0x40, 0x02)
    protected.command(0x04, 0x00)
    assert protected.results()[0] & 0x40  # ST3: write protected


def test_wrong_data_rate_sector_out_of_range_and_no_disk() -> None:
    rig = Rig()
    rig.out(0x3F7, 3)  # 1 Mbit/s: a 2.88 MB rate for a 1.44 MB disk
    rig.dma_channel2(0x3000, 512, 0x46)
    rig.command(0xE6, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF)
    assert rig.results()[:3] == [0x40, 0x01, 0x01]
    rig.out(0x3F7, 0)
    rig.dma_channel2(0x3000, 512, 0x46)
    rig.command(0xE6, 0x00, 0, 0, 19, 2, 19, 0x1B, 0xFF)
    assert rig.results()[:2] == [0x40, 0x04]
    empty = Rig(media=False)
    empty.dma_channel2(0x3000, 512, 0x46)
    empty.command(0xE6, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF)
    assert empty.results()[:2] == [0x40, 0x01]


def test_pio_read_through_the_fifo() -> None:
    rig = Rig()
    rig.command(0x03, 0xDF, 0x03)  # SPECIFY with ND: non-DMA
    rig.command(0x46, 0x00, 0, 0, 2, 2, 2, 0x1B, 0xFF)
    assert rig.inb(0x3F4) == 0xF0  # RQM DIO NDMA CB: execution, data for the CPU
    data = bytes(rig.inb(0x3F5) for _ in range(512))
    assert struct.unpack_from("<Q", data)[0] == 1
    st0, st1, *_ = rig.results()
    assert (st0 & 0xC0, st1) == (0x40, 0x80)  # no TC without DMA: ends at EOT


def test_disk_change_line_clears_only_on_a_step_with_a_disk_in() -> None:
    rig = Rig()
    assert rig.inb(0x3F7) & 0x80  # power-on: active
    rig.command(0x07, 0x00)  # recalibrate to cylinder 0, where the head is: no step
    rig.command(0x08)
    rig.results()
    assert rig.inb(0x3F7) & 0x80
    rig.command(0x0F, 0x00, 1)
    rig.command(0x08)
    rig.results()
    assert not rig.inb(0x3F7) & 0x80
    rig.fdc.insert(None)
    assert rig.inb(0x3F7) & 0x80
    rig.command(0x0F, 0x00, 2)
    assert rig.inb(0x3F7) & 0x80  # no disk: stays active
    rig.fdc.insert(FloppyMedia(MemoryDisk(SECTORS_1440)))
    rig.command(0x0F, 0x00, 3)
    assert not rig.inb(0x3F7) & 0x80


def test_dma_autoinit_decrement_and_readback() -> None:
    rig = Rig()
    rig.dma_channel2(0x4000, 512, 0x56)  # auto-init
    assert rig.dma.remaining(2) == 512
    rig.out(0x0C, 0)
    assert rig.inb(0x04) | rig.inb(0x04) << 8 == 0x4000
    rig.command(0x66, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF)
    rig.results()
    assert not rig.dma.channels[2].masked and rig.dma.remaining(2) == 512  # reloaded
    rig.dma_channel2(0x51FF, 512, 0x66)  # decrement from 0x51FF down to 0x5000
    rig.command(0x66, 0x00, 0, 0, 3, 2, 3, 0x1B, 0xFF)
    rig.results()
    sector2 = rig.disk.data[2 * 512 : 3 * 512]
    assert rig.memory.read(0x5000, 512) == sector2[::-1]


def test_floppy_sizes() -> None:
    assert floppy_format(1440 * 1024).sectors == 18
    assert floppy_format(2880 * 1024).sectors == 36
    assert floppy_format(512).kib == 1440  # a boot sector on its own
    with pytest.raises(ConfigError, match="not a floppy size"):
        floppy_format(3000 * 1024)


def test_save_restore_round_trip_mid_command() -> None:
    rig = Rig()
    rig.command(0x0F, 0x00, 7)
    rig.dma_channel2(0x6000, 512, 0x46)
    rig.command(0xE6, 0x00)  # half a READ DATA command
    fdc_state, dma_state = rig.fdc.save(), rig.dma.save()
    copy = Rig()
    copy.memory = rig.memory
    copy.fdc.restore(fdc_state)
    copy.dma.memory = rig.memory
    copy.dma.restore(dma_state)
    copy.disk.data[:] = rig.disk.data
    for byte in (7, 0, 1, 2, 1, 0x1B, 0xFF):
        copy.out(0x3F5, byte)
        rig.out(0x3F5, byte)
    assert copy.results() == rig.results()
    assert copy.fdc.save() == rig.fdc.save() and copy.dma.save() == rig.dma.save()


def test_random_port_traffic_never_raises() -> None:
    """A hostile guest: seeded random writes and reads on every FDC and DMA port, with
    commands of any opcode and parameters; the chips answer, never a Python exception."""
    import random

    from vmm.devices.vga import Vga
    from vmm.devices.vga_display import render_graphics

    rng = random.Random(20)
    rig = Rig(sectors=100)  # a short image: sectors past its end
    vga = Vga(rig.memory)
    ports = [*range(0x00, 0x10), *range(0x81, 0x90), *range(0xC0, 0xE0), *range(0x3F0, 0x3F6), 0x3F7]
    for _ in range(20000):
        port = rng.choice(ports)
        if rng.random() < 0.6:
            rig.out(port, rng.randrange(256))
        else:
            rig.inb(port)
        if rng.random() < 0.05:
            vga.io_write(rng.choice([0x3C0, 0x3C4, 0x3C5, 0x3CE, 0x3CF, 0x3D4, 0x3D5]), 1, rng.randrange(256))
            vga.mmio_write(rng.randrange(0x10000), rng.choice([1, 2, 4]), rng.randrange(1 << 32))
            vga.mmio_read(rng.randrange(0x10000), rng.choice([1, 2, 4]))
    vga.crtc[0x01], vga.crtc[0x12], vga.crtc[0x09] = 0x4F, 0xFF, 0x1F  # a big picture with repeats
    width, height, rows, _ = render_graphics(vga)
    assert len(rows) == height and all(len(row) == width for row in rows)
