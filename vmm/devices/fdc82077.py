"""An Intel 82077AA-compatible floppy disk controller (PC-AT mode) with drive A:.

Source: Intel, "82077AA CHMOS Single-Chip Floppy Disk Controller" datasheet: register set
(SRA/SRB 0x3F0/0x3F1, DOR 0x3F2, TDR 0x3F3, MSR/DSR 0x3F4, FIFO 0x3F5, DIR/CCR 0x3F7;
0x3F6 belongs to the ATA channel), the command set (section 8: READ DATA, WRITE DATA,
VERIFY, READ TRACK, READ ID, FORMAT TRACK, RECALIBRATE, SEEK and relative seek, SENSE
INTERRUPT STATUS, SENSE DRIVE STATUS, SPECIFY, CONFIGURE, VERSION, DUMPREG, LOCK,
PERPENDICULAR MODE) and status registers ST0-ST3; IBM PC/AT Technical Reference for the
wiring: IRQ 6 and DMA channel 2, both gated by DOR bit 3.

Emulated: one drive (A:) holding a raw image of a standard size (360 KiB to 2.88 MiB; a
smaller file, such as a 512-byte boot sector, is drive A: with a 1.44 MB disk whose
sectors past the end of the file read as zeros and are write-protected), the command,
execution and result phases with MSR RQM/DIO/NDMA/CB, DMA transfers through the 8237
ended by its terminal count (or, without TC, at the end of the track with ST1 EN, as the
chip does), non-DMA (PIO) transfers through the FIFO, multi-track (MT) reads and writes,
the data rate checked against the medium (a wrong rate fails with ST1 MA, as a real
drive cannot read it), the reset interrupt with the four polling SENSE INTERRUPT results,
the disk-change line (DIR bit 7: active at power-on and when a medium is inserted or
removed, cleared by a step to another cylinder with a medium in, as the drive and QEMU
do), write protection (SENSE DRIVE STATUS, ST1 NW).
Commands complete at once: seeks, head settling and rotation take no virtual time.
Drives B:-D: are absent. Like QEMU, the C/H/R of a READ/WRITE command address the sector
directly (an implied seek), so code that forgets to SEEK still reads what it named.
Not emulated: SCAN commands, deleted-data marks (READ/WRITE DELETED act as READ/WRITE),
sector sizes other than 512 bytes, the FIFO threshold timing, power-down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmm.devices.base import Device
from vmm.devices.dma8237 import MODE_READ, MODE_WRITE, Dma8237Pair
from vmm.devices.ioport import read_split, write_split
from vmm.disk.base import BlockDevice
from vmm.errors import ConfigError, DiskError
from vmm.irq import IrqLine, NullIrqLine

SECTOR = 512
SECTOR_SIZE_CODE = 2  # N = 2: 128 << 2 = 512 bytes
DMA_CHANNEL = 2

# Registers (offsets from 0x3F0).
DOR_DRIVE_MASK, DOR_NRESET, DOR_DMAEN = 0x03, 0x04, 0x08
MSR_RQM, MSR_DIO, MSR_NDMA, MSR_CB = 0x80, 0x40, 0x20, 0x10
DSR_SW_RESET = 0x80
DIR_DSKCHG = 0x80
# Status registers.
ST0_ABNORMAL, ST0_INVALID, ST0_POLLING = 0x40, 0x80, 0xC0
ST0_SEEK_END, ST0_HEAD = 0x20, 0x04
ST1_EN, ST1_OR, ST1_ND, ST1_NW, ST1_MA = 0x80, 0x10, 0x04, 0x02, 0x01
ST2_MD = 0x01
ST3_WP, ST3_READY, ST3_TRACK0, ST3_TWO_SIDED = 0x40, 0x20, 0x10, 0x08
VERSION_82077 = 0x90
# Data rates (DSR/CCR bits 1-0).
RATE_500K, RATE_300K, RATE_250K, RATE_1M = 0, 1, 2, 3

# Command codes (low 5 bits; MT = 0x80, MFM = 0x40, SK = 0x20 ride on the data commands).
READ_TRACK, SPECIFY, SENSE_DRIVE, WRITE_DATA, READ_DATA, RECALIBRATE = 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
SENSE_INTERRUPT, WRITE_DELETED, READ_ID, READ_DELETED, FORMAT_TRACK = 0x08, 0x09, 0x0A, 0x0C, 0x0D
DUMPREG, SEEK, VERSION, PERPENDICULAR, CONFIGURE, LOCK, VERIFY = 0x0E, 0x0F, 0x10, 0x12, 0x13, 0x14, 0x16
COMMAND_LENGTHS = {
    READ_TRACK: 9, SPECIFY: 3, SENSE_DRIVE: 2, WRITE_DATA: 9, READ_DATA: 9, RECALIBRATE: 2,
    SENSE_INTERRUPT: 1, WRITE_DELETED: 9, READ_ID: 2, READ_DELETED: 9, FORMAT_TRACK: 6, DUMPREG: 1,
    SEEK: 3, VERSION: 1, PERPENDICULAR: 2, CONFIGURE: 4, LOCK: 1, VERIFY: 9,
}  # fmt: skip
MT = 0x80


@dataclass(frozen=True)
class FloppyFormat:
    kib: int
    cylinders: int
    heads: int
    sectors: int  # per track
    drive_type: int  # CMOS 0x10 / INT 13h AH=08h BL
    rate: int  # the data rate the medium is recorded at

    @property
    def total(self) -> int:
        return self.cylinders * self.heads * self.sectors


FORMATS = [
    FloppyFormat(360, 40, 2, 9, 1, RATE_250K),
    FloppyFormat(720, 80, 2, 9, 3, RATE_250K),
    FloppyFormat(1200, 80, 2, 15, 2, RATE_500K),
    FloppyFormat(1440, 80, 2, 18, 4, RATE_500K),
    FloppyFormat(2880, 80, 2, 36, 5, RATE_1M),
]
FORMAT_1440 = FORMATS[3]


def floppy_format(size_bytes: int, name: str = "floppy image") -> FloppyFormat:
    """The format of an image of ``size_bytes``: a standard size, or 1.44 MB for anything
    smaller (a boot sector on its own)."""
    for fmt in FORMATS:
        if size_bytes == fmt.kib * 1024:
            return fmt
    if 0 < size_bytes < FORMAT_1440.kib * 1024:
        return FORMAT_1440
    sizes = ", ".join(f"{f.kib} KiB" for f in FORMATS)
    raise ConfigError(f"{name}: {size_bytes} bytes is not a floppy size ({sizes}, or less than 1440 KiB)")


class FloppyMedia:
    """A disk in drive A:: the image and its format; sectors past a short image read as zeros."""

    def __init__(self, disk: BlockDevice) -> None:
        self.disk = disk
        self.format = floppy_format(disk.capacity * SECTOR, getattr(disk, "path", "floppy image"))

    @property
    def read_only(self) -> bool:
        return bool(self.disk.read_only)

    def writable(self, lba: int, count: int) -> bool:
        return not self.read_only and lba + count <= self.disk.capacity

    def read(self, lba: int) -> bytes:
        if lba < self.disk.capacity:
            return self.disk.read(lba, 1)
        return bytes(SECTOR)

    def write(self, lba: int, data: bytes) -> None:
        self.disk.write(lba, data)


class Fdc82077(Device):
    """The floppy controller at 0x3F0-0x3F5 and 0x3F7, IRQ 6, DMA channel 2."""

    name = "fdc"
    ports = [(0x3F0, 6), (0x3F7, 1)]

    def __init__(self, irq6: IrqLine | None = None, dma: Dma8237Pair | None = None,
                 media: FloppyMedia | None = None) -> None:  # fmt: skip
        self.irq = irq6 if irq6 is not None else NullIrqLine(6)
        self.dma = dma
        self.media = media
        self.disk_changed = True  # a disk was inserted at power-on: the line is active
        self.reset()

    # ---- state ----

    def reset(self) -> None:
        self.dor = DOR_NRESET | DOR_DMAEN  # as the PC leaves it: out of reset, DMA and IRQ gated on
        self.tdr = 0
        self.rate = RATE_500K
        self.cylinder = 0  # drive A:'s head position (present cylinder number)
        self.head = 0
        self.srt_hut, self.hlt_nd = 0, 0
        self.config, self.pretrk, self.perpendicular, self.locked = 0x20, 0, 0, False
        self._idle()
        self.sense_queue: list[tuple[int, int]] = []  # (ST0, PCN) for SENSE INTERRUPT STATUS
        self.irq.lower()

    def _idle(self) -> None:
        self.phase = "command"  # command | execution | result
        self.command: list[int] = []
        self.result: list[int] = []
        self.buffer = bytearray()  # PIO execution: the bytes of the current sector
        self.transfer: list[int] = []  # PIO execution: [opcode, C, H, R, EOT, written]

    @property
    def non_dma(self) -> bool:
        return bool(self.hlt_nd & 1)

    def _raise(self) -> None:
        if self.dor & DOR_DMAEN:  # the PC gates the FDC's interrupt with DOR bit 3
            self.irq.lower()
            self.irq.raise_()

    # ---- media (the monitor's "change floppy") ----

    def insert(self, media: FloppyMedia | None) -> None:
        """Put a disk in drive A: (None: eject). Either way the disk-change line goes active."""
        self.media = media
        self.disk_changed = True

    # ---- ports ----

    def _msr(self) -> int:
        if not self.dor & DOR_NRESET:
            return 0
        if self.phase == "command":
            return MSR_RQM | (MSR_CB if self.command else 0)
        if self.phase == "result":
            return MSR_RQM | MSR_DIO | MSR_CB
        reading = self.transfer and self.transfer[0] != WRITE_DATA
        return MSR_RQM | MSR_NDMA | MSR_CB | (MSR_DIO if reading else 0)

    def _read_byte(self, port: int) -> int:
        offset = port - 0x3F0
        if offset == 0:  # SRA (PS/2 mode only): reads as the AT's undriven bus
            return 0xFF
        if offset == 1:
            return 0xFF
        if offset == 2:
            return self.dor
        if offset == 3:
            return self.tdr
        if offset == 4:
            return self._msr()
        if offset == 5:
            return self._read_fifo()
        if offset == 7:
            selected_a = (self.dor & DOR_DRIVE_MASK) == 0
            return DIR_DSKCHG if selected_a and self.disk_changed else 0
        return 0xFF

    def _write_byte(self, port: int, value: int) -> None:
        offset = port - 0x3F0
        if offset == 2:
            was_reset = not self.dor & DOR_NRESET
            self.dor = value
            if not value & DOR_NRESET:
                self._idle()
                self.irq.lower()
            elif was_reset:
                self._controller_reset()
        elif offset == 3:
            self.tdr = value & 0x03
        elif offset == 4:  # DSR
            self.rate = value & 0x03
            if value & DSR_SW_RESET:
                self._controller_reset()
        elif offset == 5:
            self._write_fifo(value)
        elif offset == 7:  # CCR
            self.rate = value & 0x03

    def _controller_reset(self) -> None:
        """End of a reset (DOR bit 2 rising, or DSR bit 7): four polling interrupts."""
        self._idle()
        self.sense_queue = [(ST0_POLLING | drive, self.cylinder if drive == 0 else 0) for drive in range(4)]
        self._raise()

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- the FIFO ----

    def _read_fifo(self) -> int:
        if not self.dor & DOR_NRESET:
            return 0xFF
        if self.phase == "result" and self.result:
            self.irq.lower()
            value = self.result.pop(0)
            if not self.result:
                self._idle()
            return value
        if self.phase == "execution" and self.transfer and self.transfer[0] != WRITE_DATA:
            value = self.buffer.pop(0) if self.buffer else 0
            if not self.buffer:
                self._pio_next_sector()
            return value
        return 0xFF

    def _write_fifo(self, value: int) -> None:
        if not self.dor & DOR_NRESET:
            return
        if self.phase == "execution" and self.transfer and self.transfer[0] == WRITE_DATA:
            self.buffer.append(value)
            if len(self.buffer) == SECTOR:
                self._pio_next_sector()
            return
        if self.phase != "command":
            return  # the guest writes while we have a result: ignored, as RQM/DIO said
        self.irq.lower()
        self.command.append(value)
        length = self._command_length(self.command[0])
        if len(self.command) >= length:
            command, self.command = self.command, []
            self._execute(command)

    @staticmethod
    def _opcode(first: int) -> int:
        if first in (0x8F, 0xCF):  # relative seek (direction in bit 6)
            return SEEK
        if first & 0x1F == LOCK:
            return LOCK
        return first & 0x1F

    def _command_length(self, first: int) -> int:
        return COMMAND_LENGTHS.get(self._opcode(first), 1)

    # ---- commands ----

    def _finish(self, result: list[int], interrupt: bool = True) -> None:
        self.phase = "result"
        self.result = result
        if interrupt:
            self._raise()

    def _execute(self, command: list[int]) -> None:
        first = command[0]
        opcode = self._opcode(first)
        if opcode not in COMMAND_LENGTHS:
            self._finish([ST0_INVALID], interrupt=False)
            return
        drive = command[1] & 3 if len(command) > 1 else 0
        head = (command[1] >> 2) & 1 if len(command) > 1 else 0
        if opcode == SPECIFY:
            self.srt_hut, self.hlt_nd = command[1], command[2]
            self._idle()
        elif opcode == SENSE_INTERRUPT:
            if self.sense_queue:
                st0, pcn = self.sense_queue.pop(0)
                self.irq.lower()
                self._finish([st0, pcn], interrupt=False)
            else:
                self._finish([ST0_INVALID], interrupt=False)
        elif opcode == SENSE_DRIVE:
            st3 = drive | (head << 2)
            if drive == 0 and self.media is not None:
                st3 |= ST3_READY | ST3_TWO_SIDED | (ST3_WP if self.media.read_only else 0)
            if drive == 0 and self.cylinder == 0:
                st3 |= ST3_TRACK0
            self._finish([st3], interrupt=False)
        elif opcode in (SEEK, RECALIBRATE):
            self._seek(first, drive, head, command[2] if opcode == SEEK else None)
        elif opcode == VERSION:
            self._finish([VERSION_82077], interrupt=False)
        elif opcode == CONFIGURE:
            self.config, self.pretrk = command[2], command[3]
            self._idle()
        elif opcode == PERPENDICULAR:
            self.perpendicular = command[1]
            self._idle()
        elif opcode == LOCK:
            self.locked = bool(first & 0x80)
            self._finish([0x10 if self.locked else 0], interrupt=False)
        elif opcode == DUMPREG:
            self._finish([self.cylinder, 0, 0, 0, self.srt_hut, self.hlt_nd, 0,
                          (0x80 if self.locked else 0) | (self.perpendicular & 0x7F),
                          self.config, self.pretrk], interrupt=False)  # fmt: skip
        elif opcode == READ_ID:
            self._read_id(drive, head)
        elif opcode == FORMAT_TRACK:
            self._format(command, drive, head)
        else:
            self._data_command(command, opcode, drive, head)

    def _seek(self, first: int, drive: int, head: int, target: int | None) -> None:
        if drive == 0:
            if target is None:
                target = 0
            elif first in (0x8F, 0xCF):
                target = max(0, min(255, self.cylinder + (target if first & 0x40 else -target)))
            self._move_head(target)
            self.head = head
        st0 = ST0_SEEK_END | drive | (head << 2)
        if drive != 0:  # no drive there: the seek ends abnormally (equipment check)
            st0 |= ST0_ABNORMAL | 0x10
        self.sense_queue = [(st0, self.cylinder if drive == 0 else 0)]
        self._idle()
        self._raise()

    def _move_head(self, cylinder: int) -> None:
        """Step drive A:'s head to ``cylinder``; a step pulse with a disk in clears the
        disk-change line (a seek to the cylinder it is on sends none)."""
        if cylinder != self.cylinder and self.media is not None:
            self.disk_changed = False
        self.cylinder = cylinder

    def _medium_error(self, drive: int) -> tuple[int, int] | None:
        """(ST1, ST2) when drive ``drive`` cannot be read now, else None."""
        if drive != 0 or self.media is None:
            return ST1_MA, 0
        if self.rate != self.media.format.rate:
            return ST1_MA, ST2_MD
        return None

    def _status(self, drive: int, head: int, st0: int, st1: int, st2: int, chrn: tuple[int, int, int, int]) -> None:
        self._finish([st0 | drive | (head << 2), st1, st2, *chrn])

    def _read_id(self, drive: int, head: int) -> None:
        error = self._medium_error(drive)
        if error:
            self._status(drive, head, ST0_ABNORMAL, *error, (self.cylinder, head, 1, SECTOR_SIZE_CODE))
            return
        self._status(drive, head, 0, 0, 0, (self.cylinder, head, 1, SECTOR_SIZE_CODE))

    def _format(self, command: list[int], drive: int, head: int) -> None:
        _, _, size_code, count, _gap, fill = command
        error = self._medium_error(drive)
        chrn = (self.cylinder, head, 1, size_code)
        if error:
            self._status(drive, head, ST0_ABNORMAL, *error, chrn)
            return
        fmt = self.media.format
        if self.non_dma or self.dma is None or not self.dma.ready(DMA_CHANNEL, MODE_READ):
            self._status(drive, head, ST0_ABNORMAL, ST1_OR, 0, chrn)
            return
        ids = self.dma.read_memory(DMA_CHANNEL, 4 * count)
        for i in range(0, len(ids) - 3, 4):
            c, h, r, n = ids[i : i + 4]
            if n != SECTOR_SIZE_CODE or not (c < fmt.cylinders and h < fmt.heads and 1 <= r <= fmt.sectors):
                continue
            lba = (c * fmt.heads + h) * fmt.sectors + r - 1
            if not self.media.writable(lba, 1):
                self._status(drive, head, ST0_ABNORMAL, ST1_NW, 0, chrn)
                return
            self._write_sector(lba, bytes([fill]) * SECTOR)
        self._status(drive, head, 0, 0, 0, chrn)

    def _data_command(self, command: list[int], opcode: int, drive: int, head: int) -> None:
        """READ/WRITE (DELETED) DATA, READ TRACK, VERIFY."""
        first, _, c, h, r, n, eot = command[:7]
        if opcode in (WRITE_DELETED, WRITE_DATA):
            opcode = WRITE_DATA
        error = self._medium_error(drive)
        if error is None and n != SECTOR_SIZE_CODE:
            error = (ST1_ND, 0)
        if error:
            self._status(drive, head, ST0_ABNORMAL, *error, (c, h, r, n))
            return
        if drive == 0:
            self._move_head(c)  # the implied seek (see the module docstring)
            self.head = head
        multi_track = bool(first & MT) and opcode != READ_TRACK
        if opcode == READ_TRACK:
            r = 1
        if self.non_dma:
            self.phase = "execution"
            self.transfer = [opcode, c, h, r, eot, int(multi_track), drive, head]
            self.buffer = bytearray()
            self._pio_start()
            return
        self._dma_transfer(opcode, drive, head, c, h, r, eot, multi_track)

    def _lba(self, c: int, h: int, r: int) -> int | None:
        fmt = self.media.format
        if c >= fmt.cylinders or h >= fmt.heads or not 1 <= r <= fmt.sectors:
            return None
        return (c * fmt.heads + h) * fmt.sectors + r - 1

    def _advance(self, c: int, h: int, r: int, eot: int, multi_track: bool) -> tuple[int, int, int, bool]:
        """The sector after (c, h, r), and whether the end of the track (or cylinder) is passed."""
        if r < eot:
            return c, h, r + 1, False
        if multi_track and h == 0:
            return c, 1, 1, False
        return c + 1, (0 if multi_track else h), 1, True

    def _dma_transfer(self, opcode: int, drive: int, head: int, c: int, h: int, r: int, eot: int,
                      multi_track: bool) -> None:  # fmt: skip
        direction = MODE_READ if opcode == WRITE_DATA else MODE_WRITE
        dma = self.dma
        if opcode != VERIFY and (dma is None or not self.dor & DOR_DMAEN or not dma.ready(DMA_CHANNEL, direction)):
            self._status(drive, head, ST0_ABNORMAL, ST1_OR, 0, (c, h, r, SECTOR_SIZE_CODE))
            return
        st0 = st1 = 0
        while True:
            lba = self._lba(c, h, r)
            if lba is None:
                st0, st1 = ST0_ABNORMAL, ST1_ND
                break
            if opcode == WRITE_DATA:
                if not self.media.writable(lba, 1):
                    st0, st1 = ST0_ABNORMAL, ST1_NW
                    break
                data = dma.read_memory(DMA_CHANNEL, SECTOR)
                self._write_sector(lba, data.ljust(SECTOR, b"\0"))
            elif opcode == VERIFY:
                if dma is not None and dma.ready(DMA_CHANNEL, direction):
                    dma.write_memory(DMA_CHANNEL, bytes(SECTOR))
            else:
                dma.write_memory(DMA_CHANNEL, self.media.read(lba))
            c, h, r, end = self._advance(c, h, r, eot, multi_track)
            terminal = dma is None or dma.remaining(DMA_CHANNEL) == 0 or dma.channels[DMA_CHANNEL].masked
            if terminal:
                break
            if end:  # past EOT without terminal count: the chip stops with End of Cylinder
                st0, st1 = ST0_ABNORMAL, ST1_EN
                break
        self.head = h
        self._status(drive, head, st0, st1, 0, (c, h, r, SECTOR_SIZE_CODE))

    # ---- non-DMA (PIO) execution ----

    def _pio_start(self) -> None:
        opcode = self.transfer[0]
        if opcode != WRITE_DATA:
            self._pio_load()
        self._raise()  # non-DMA mode interrupts when the FIFO wants service

    def _pio_load(self) -> None:
        """Fill the buffer with the sector at the transfer's C/H/R (reads, verify)."""
        opcode, c, h, r = self.transfer[:4]
        lba = self._lba(c, h, r)
        if lba is None:
            self._pio_end(ST0_ABNORMAL, ST1_ND)
            return
        self.buffer = bytearray(self.media.read(lba) if opcode != VERIFY else bytes(SECTOR))

    def _pio_next_sector(self) -> None:
        opcode, c, h, r, eot, multi_track = self.transfer[:6]
        if opcode == WRITE_DATA:
            lba = self._lba(c, h, r)
            if lba is None or not self.media.writable(lba, 1):
                self._pio_end(ST0_ABNORMAL, ST1_ND if lba is None else ST1_NW)
                return
            self._write_sector(lba, bytes(self.buffer))
            self.buffer = bytearray()
        c, h, r, end = self._advance(c, h, r, eot, bool(multi_track))
        self.transfer[1:4] = [c, h, r]
        if end:  # without a TC line (PIO on a PC) a transfer always ends so
            self._pio_end(ST0_ABNORMAL, ST1_EN)
        elif opcode != WRITE_DATA:
            self._pio_load()

    def _pio_end(self, st0: int, st1: int) -> None:
        _, c, h, r, _, _, drive, head = self.transfer
        self.transfer = []
        self.buffer = bytearray()
        self._status(drive, head, st0, st1, 0, (c, h, r, SECTOR_SIZE_CODE))

    def _write_sector(self, lba: int, data: bytes) -> None:
        try:
            self.media.write(lba, data)
        except DiskError:
            pass  # the host refused (full disk, read-only file): the guest's data is lost

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "dor": self.dor, "tdr": self.tdr, "rate": self.rate, "cylinder": self.cylinder, "head": self.head,
            "srt_hut": self.srt_hut, "hlt_nd": self.hlt_nd, "config": self.config, "pretrk": self.pretrk,
            "perpendicular": self.perpendicular, "locked": self.locked, "phase": self.phase,
            "command": list(self.command), "result": list(self.result), "buffer": bytes(self.buffer),
            "transfer": list(self.transfer), "sense_queue": [list(entry) for entry in self.sense_queue],
            "disk_changed": self.disk_changed, "irq": self.irq.level,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self.reset()
        for name in ("dor", "tdr", "rate", "cylinder", "head", "srt_hut", "hlt_nd", "config", "pretrk",
                     "perpendicular"):  # fmt: skip
            setattr(self, name, int(state[name]) & 0xFF)
        self.rate &= 3
        self.locked = bool(state["locked"])
        self.phase = state["phase"] if state["phase"] in ("command", "execution", "result") else "command"
        self.command = [int(v) & 0xFF for v in state["command"][:9]]
        self.result = [int(v) & 0xFF for v in state["result"][:10]]
        self.buffer = bytearray(bytes(state["buffer"])[:SECTOR])
        self.transfer = [int(v) for v in state["transfer"][:8]]
        if self.phase == "execution" and len(self.transfer) != 8:
            self.phase, self.transfer = "command", []
        self.sense_queue = [(int(a) & 0xFF, int(b) & 0xFF) for a, b in state["sense_queue"][:4]]
        self.disk_changed = bool(state["disk_changed"])
        self.irq.level = bool(state["irq"])  # the PIC restores its own view of the line
