"""The primary ATA (IDE) channel of a PC: task file at 0x1F0-0x1F7, control at 0x3F6, IRQ14.

Source: ANSI INCITS 397-2005, "AT Attachment with Packet Interface - 7" (ATA/ATAPI-7)
volume 1: section 6 (command descriptions: IDENTIFY DEVICE table 16, READ/WRITE
SECTORS (EXT), READ/WRITE MULTIPLE (EXT), SET MULTIPLE MODE, READ VERIFY SECTORS (EXT),
FLUSH CACHE (EXT), SET FEATURES), volume 2 (PIO data-in/data-out protocols, software
reset protocol and signatures, device control register nIEN/SRST/HOB); CHS addressing
and INITIALIZE DEVICE PARAMETERS from ATA-5.

Emulated: master and slave disks on a BlockDevice, LBA28, LBA48 (the HOB byte of each
task-file register is the value written before the last), CHS translated with the
drive's current geometry, PIO transfers through 16- and 32-bit data-port accesses one
DRQ block at a time (so at most MAX_MULTIPLE sectors are buffered whatever the guest
asks), nIEN, SRST, status BSY/DRDY/DF/DSC/DRQ/ERR and error ABRT/IDNF.
Each command is decoded and checked once into a ``Request`` before any work (the whole
sector range included): an out-of-range address ends it with ERR and IDNF before any data
moves, an unknown command, or one for a packet device, with ERR and ABRT; a failing host
read ends it with ERR and UNC, a failing host write with ERR and ABRT.
The data port moves whole DRQ blocks: ``io_read_string``/``io_write_string`` serve a
``rep insw``/``rep outsw`` at once (KVM exits), and ``on_data_window`` hands the CPU
backend the block buffer so it serves the words natively (Unicorn) and reports back once
per block through ``data_window_done``. Commands complete instantly:
BSY is never seen. Not emulated: DMA (bus-master IDE), ATAPI (IDENTIFY PACKET DEVICE is
aborted, as a disk does), power management, SMART, security, the secondary channel.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vmm.devices.base import Device
from vmm.disk.base import BlockDevice
from vmm.errors import DiskError, DiskIOError
from vmm.irq import IrqLine, NullIrqLine

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


class AtaController(Device):
    """One ATA channel with up to two disks."""

    name = "ata"

    def __init__(self, irq: IrqLine | None = None, master: BlockDevice | None = None,
                 slave: BlockDevice | None = None, base: int = 0x1F0, control: int = 0x3F6,
                 model: str = "VMM HARDDISK", firmware: str = "0.1",
                 on_io_error: Callable[[DiskIOError], None] | None = None) -> None:  # fmt: skip
        self.irq = irq if irq is not None else NullIrqLine(14)
        # A host write that failed (disk full): the command ends with ERR and ABRT, as QEMU's
        # werror=report, and the monitor is told (it says so once).
        self.on_io_error = on_io_error
        self.disks = [master, slave]
        self.base, self.control_port = base, control
        self.ports = [(base, 8), (control, 1)]
        self.model, self.firmware = model, firmware
        # Set by the machine when the CPU backend serves data-port words natively: called
        # with (port, buffer, position, writing) when a DRQ block is ready, (port, None,
        # 0, False) when none is.
        self.on_data_window: Callable[[int, bytearray | None, int, bool], None] | None = None
        self._window: tuple[int, int] | None = None  # (id of buffer, position) published
        self.reset()

    def reset(self) -> None:
        self.task = TaskFile()
        self.drives = [DriveState(), DriveState()]
        self.transfer = Transfer()
        self._lba48 = False  # the addressing of the transfer in progress
        self.irq_pending = False
        self._update_irq()
        self._publish_window()

    # ---- helpers ----

    @property
    def current(self) -> int:
        return 1 if self.task.select & DEV_SLAVE else 0

    @property
    def disk(self) -> BlockDevice | None:
        return self.disks[self.current]

    @property
    def drive(self) -> DriveState:
        return self.drives[self.current]

    def _update_irq(self) -> None:
        self.irq.set(self.irq_pending and not self.task.control & NIEN)

    def _interrupt(self) -> None:
        self.irq_pending = True
        self._update_irq()

    def _finish(self, error: int = 0) -> None:
        """End the command: DRDY, or ERR with ``error``; interrupt the host."""
        self.transfer = Transfer()
        self.drive.error = error
        self.drive.status = DRDY | DSC | (ERR if error else 0)
        self._interrupt()

    def _cylinders(self, disk: BlockDevice) -> int:
        return max(1, min(disk.capacity // (HEADS * SECTORS_PER_TRACK), MAX_CYLINDERS))

    def _address(self, lba48: bool) -> int | None:
        """The starting sector the task file names, or None for an impossible CHS address."""
        t = self.task
        if lba48:
            return (t.hob_hcyl << 40 | t.hob_lcyl << 32 | t.hob_sector << 24
                    | t.hcyl << 16 | t.lcyl << 8 | t.sector)  # fmt: skip
        if t.select & DEV_LBA:
            return (t.select & 0x0F) << 24 | t.hcyl << 16 | t.lcyl << 8 | t.sector
        drive = self.drive
        head, sector, cylinder = t.select & 0x0F, t.sector, t.hcyl << 8 | t.lcyl
        if sector == 0 or sector > drive.sectors_per_track or head >= drive.heads:
            return None
        return (cylinder * drive.heads + head) * drive.sectors_per_track + sector - 1

    def _count(self, lba48: bool) -> int:
        if lba48:
            return (self.task.hob_nsector << 8 | self.task.nsector) or 65536
        return self.task.nsector or 256

    def _set_address(self, lba: int, lba48: bool) -> None:
        """Leave ``lba`` in the task file: where a command stopped, as the standard requires."""
        t = self.task
        if lba48:
            t.sector, t.lcyl, t.hcyl = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            t.hob_sector, t.hob_lcyl, t.hob_hcyl = (lba >> 24) & 0xFF, (lba >> 32) & 0xFF, (lba >> 40) & 0xFF
        elif t.select & DEV_LBA:
            t.sector, t.lcyl, t.hcyl = lba & 0xFF, (lba >> 8) & 0xFF, (lba >> 16) & 0xFF
            t.select = (t.select & 0xF0) | ((lba >> 24) & 0x0F)
        else:
            drive = self.drive
            track, sector = divmod(lba, drive.sectors_per_track)
            cylinder, head = divmod(track, drive.heads)
            t.sector, t.lcyl, t.hcyl = sector + 1, cylinder & 0xFF, (cylinder >> 8) & 0xFF
            t.select = (t.select & 0xF0) | (head & 0x0F)

    # ---- commands ----

    def _decode(self, command: int, disk: BlockDevice) -> Request:
        """The command in the task file as a checked Request; RequestError if refused."""
        if command in READ_COMMANDS or command in WRITE_COMMANDS:
            lba48, multiple = READ_COMMANDS.get(command) or WRITE_COMMANDS[command]
            reading = command in READ_COMMANDS
            per_block = self.drive.multiple if multiple else 1
            if per_block == 0:
                raise RequestError(ABRT)  # READ/WRITE MULTIPLE before SET MULTIPLE MODE
            if not reading and disk.read_only:
                raise RequestError(ABRT)
            lba, count = self._checked_range(disk, lba48)
            return Request("read" if reading else "write", lba, count, per_block, lba48)
        if command in VERIFY_COMMANDS:
            lba48 = VERIFY_COMMANDS[command]
            lba, count = self._checked_range(disk, lba48)
            return Request("verify", lba, count, lba48=lba48)
        if command == 0xEC:
            return Request("identify")
        if command == 0xC6:  # SET MULTIPLE MODE
            count = self.task.nsector
            if count > MAX_MULTIPLE or count & (count - 1):
                raise RequestError(ABRT)
            return Request("set-multiple", count=count)
        if command == 0x91:  # INITIALIZE DEVICE PARAMETERS
            if self.task.nsector == 0:
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

    def _checked_range(self, disk: BlockDevice, lba48: bool) -> tuple[int, int]:
        """The command's first sector and count, all of them on the disk."""
        lba, count = self._address(lba48), self._count(lba48)
        if lba is None:
            raise RequestError(IDNF)
        if lba + count > disk.capacity:
            raise RequestError(IDNF, max(lba, disk.capacity), lba48)  # the first sector not found
        return lba, count

    def _execute(self, command: int) -> None:
        disk = self.disk
        if disk is None:
            return  # no device answers: the command is ignored
        self.irq_pending = False
        self._update_irq()
        self.transfer = Transfer()
        try:
            request = self._decode(command, disk)
        except RequestError as refused:
            if refused.lba is not None:
                self._set_address(refused.lba, refused.lba48)
            self._finish(refused.error)
            return
        kind = request.kind
        if kind in ("read", "write"):
            self.transfer = Transfer("in" if kind == "read" else "out", request.lba, request.count, 0,
                                     request.per_block)  # fmt: skip
            self._lba48 = request.lba48
            if kind == "read":
                self._next_read_block()
            else:
                self._next_write_block(first=True)
        elif kind == "identify":
            self._start_data_in(self._identify(disk), 0)
        elif kind == "set-multiple":
            self.drive.multiple = request.count
            self._finish()
        elif kind == "geometry":
            self.drive.heads = (self.task.select & 0x0F) + 1
            self.drive.sectors_per_track = self.task.nsector
            self._finish()
        elif kind == "flush":
            try:
                disk.flush()
            except DiskIOError as exc:
                self._host_io_error(exc)
            except (DiskError, OSError):
                self._finish(ABRT)
            else:
                self._finish()
        elif kind == "diagnostic":
            self._signature()
            self._interrupt()
        elif kind == "power-mode":
            self.task.nsector = 0xFF  # active
            self._finish()
        else:  # "verify" (the range is checked) and the accepted no-data commands
            self._finish()

    def _host_io_error(self, exc: DiskIOError) -> None:
        if self.on_io_error is not None:
            self.on_io_error(exc)
        self._finish(ABRT)

    def _next_read_block(self) -> None:
        xfer, disk = self.transfer, self.disk
        n = min(xfer.remaining, xfer.per_block)
        try:
            if disk is None:
                raise DiskError("the drive went away")
            data = disk.read(xfer.lba, n)
        except (DiskError, OSError):
            self._set_address(xfer.lba, self._lba48)
            self._finish(UNC)
            return
        self._start_data_in(data, n)

    def _start_data_in(self, data: bytes, sectors: int) -> None:
        xfer = self.transfer
        if not xfer.direction:
            self.transfer = xfer = Transfer("in", remaining=0, per_block=1)
        xfer.buffer, xfer.position, xfer.block = bytearray(data), 0, sectors
        xfer.remaining -= sectors
        self.drive.status = DRDY | DSC | DRQ
        self._interrupt()

    def _next_write_block(self, first: bool = False) -> None:
        xfer = self.transfer
        n = min(xfer.remaining, xfer.per_block)
        xfer.block, xfer.position, xfer.buffer = n, 0, bytearray(n * SECTOR)
        xfer.remaining -= n
        self.drive.status = DRDY | DSC | DRQ
        if not first:
            self._interrupt()  # PIO data-out: no interrupt before the first block

    def _write_block(self) -> bool:
        """Write the DRQ block just received; on a host failure end the command with an
        error status for the guest (ERR, ABRT) and answer False."""
        xfer, disk = self.transfer, self.disk
        try:
            if disk is None:
                raise DiskError("the drive went away")
            disk.write(xfer.lba, bytes(xfer.buffer))
        except DiskIOError as exc:  # the host could not write (disk full): the monitor says so once
            self._set_address(xfer.lba, self._lba48)
            self._host_io_error(exc)
            return False
        except (DiskError, OSError):
            self._set_address(xfer.lba, self._lba48)
            self._finish(ABRT)
            return False
        return True

    def _block_done(self) -> None:
        xfer = self.transfer
        if xfer.direction == "out" and not self._write_block():
            return
        xfer.lba += xfer.block
        if xfer.block:
            self._set_address(xfer.lba - 1, self._lba48)
        if xfer.remaining == 0:
            if xfer.direction == "out":
                self._finish()
            else:
                self.transfer = Transfer()
                self.drive.status = DRDY | DSC  # PIO data-in ends without a further interrupt
        elif xfer.direction == "out":
            self._next_write_block()
        else:
            self._next_read_block()

    def _identify(self, disk: BlockDevice) -> bytes:
        """IDENTIFY DEVICE data (ATA/ATAPI-7 table 16)."""
        words = [0] * 256
        drive = self.drive
        capacity = disk.capacity
        cylinders = self._cylinders(disk)
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
        data[20:40] = ata_string(f"VMM{self.current:017d}", 20)  # words 10-19: serial number
        data[46:54] = ata_string(self.firmware, 8)  # words 23-26
        data[54:94] = ata_string(self.model, 40)  # words 27-46
        data[510] = 0xA5  # word 255: signature and checksum (all 512 bytes sum to 0)
        data[511] = -sum(data[:511]) & 0xFF
        return bytes(data)

    def _signature(self) -> None:
        """The ATA device signature and diagnostic code after a reset or diagnostic."""
        t = self.task
        t.nsector, t.sector, t.lcyl, t.hcyl, t.select = 1, 1, 0, 0, 0
        for index, drive in enumerate(self.drives):
            present = self.disks[index] is not None
            drive.error = 0x01
            drive.status = DRDY | DSC if present else 0
        self.transfer = Transfer()

    # ---- data port ----

    def _data_read(self, size: int) -> int:
        xfer = self.transfer
        if xfer.direction != "in" or not self.drive.status & DRQ:
            return (1 << (8 * size)) - 1
        chunk = xfer.buffer[xfer.position : xfer.position + size]
        xfer.position += len(chunk)
        if xfer.position >= len(xfer.buffer):
            self._block_done()
        return int.from_bytes(bytes(chunk).ljust(size, b"\xff"), "little")

    def _data_write(self, size: int, value: int) -> None:
        xfer = self.transfer
        if xfer.direction != "out" or not self.drive.status & DRQ:
            return
        room = len(xfer.buffer) - xfer.position
        chunk = value.to_bytes(size, "little")[:room]
        xfer.buffer[xfer.position : xfer.position + len(chunk)] = chunk
        xfer.position += len(chunk)
        if xfer.position >= len(xfer.buffer):
            self._block_done()

    def io_read_string(self, port: int, size: int, count: int) -> bytes:
        """``count`` reads of ``size`` bytes (``rep ins``) at once: whole runs of the DRQ
        block are copied, so a sector costs one call, not one per word."""
        size = max(1, min(size, 4))
        if port != self.base:
            return b"".join(self.io_read(port, size).to_bytes(size, "little") for _ in range(count))
        out = bytearray()
        while count:
            xfer = self.transfer
            if xfer.direction != "in" or not self.drive.status & DRQ:
                out += b"\xff" * (size * count)
                break
            words = min(count, (len(xfer.buffer) - xfer.position) // size)
            if words == 0:  # an access straddles the block's end
                out += self._data_read(size).to_bytes(size, "little")
                count -= 1
                continue
            end = xfer.position + words * size
            out += xfer.buffer[xfer.position : end]
            xfer.position = end
            count -= words
            if end >= len(xfer.buffer):
                self._block_done()
        self._publish_window()
        return bytes(out)

    def io_write_string(self, port: int, size: int, data: bytes) -> None:
        """The writes of a ``rep outs`` (``len(data) // size`` of them) at once."""
        size = max(1, min(size, 4))
        if port != self.base:
            for at in range(0, len(data) - size + 1, size):
                self.io_write(port, size, int.from_bytes(data[at : at + size], "little"))
            return
        at = 0
        while len(data) - at >= size:
            xfer = self.transfer
            if xfer.direction != "out" or not self.drive.status & DRQ:
                break  # the rest is dropped, as word by word
            words = min((len(data) - at) // size, (len(xfer.buffer) - xfer.position) // size)
            if words == 0:
                self._data_write(size, int.from_bytes(data[at : at + size], "little"))
                at += size
                continue
            xfer.buffer[xfer.position : xfer.position + words * size] = data[at : at + words * size]
            xfer.position += words * size
            at += words * size
            if xfer.position >= len(xfer.buffer):
                self._block_done()
        self._publish_window()

    # ---- the data window served by the CPU backend ----

    def _publish_window(self) -> None:
        """Tell the backend which DRQ block buffer it may serve natively, when that changed."""
        if self.on_data_window is None:
            return
        xfer = self.transfer
        ready = xfer.direction and self.drive.status & DRQ and xfer.position < len(xfer.buffer)
        window = (id(xfer.buffer), xfer.position) if ready else None
        if window == self._window:
            return
        self._window = window
        if ready:
            self.on_data_window(self.base, xfer.buffer, xfer.position, xfer.direction == "out")
        else:
            self.on_data_window(self.base, None, 0, False)

    def attach_data_window(self, callback: Callable[[int, bytearray | None, int, bool], None] | None) -> None:
        """Hand DRQ block buffers to ``callback`` from now on (None: to nobody)."""
        self.on_data_window = callback
        self._window = None
        self._publish_window()

    def data_window_done(self, consumed: int) -> None:
        """The backend moved ``consumed`` bytes of the published block (from the position
        it was given): account for them, finishing the block when it is used up."""
        xfer = self.transfer
        if self._window is None or not consumed:
            return
        self._window = None
        xfer.position = min(len(xfer.buffer), xfer.position + consumed)
        if xfer.position >= len(xfer.buffer):
            self._block_done()
        self._publish_window()

    # ---- registers ----

    def _status(self) -> int:
        if self.task.control & SRST:
            return BSY
        if self.disks[0] is None and self.disks[1] is None:
            return 0
        return self.drive.status if self.disk is not None else 0

    def _read_register(self, offset: int) -> int:
        t = self.task
        if self.disks[0] is None and self.disks[1] is None:
            return 0  # nothing on the channel (QEMU reads 0 too)
        hob = bool(t.control & HOB)
        if offset == 1:
            return self.drive.error if self.disk is not None else 0
        if offset == 2:
            return t.hob_nsector if hob else t.nsector
        if offset == 3:
            return t.hob_sector if hob else t.sector
        if offset == 4:
            return t.hob_lcyl if hob else t.lcyl
        if offset == 5:
            return t.hob_hcyl if hob else t.hcyl
        if offset == 6:
            return t.select | 0xA0
        status = self._status()  # offset 7: reading the status register clears INTRQ
        self.irq_pending = False
        self._update_irq()
        return status

    def _write_register(self, offset: int, value: int) -> None:
        t = self.task
        t.control &= ~HOB  # a write to the command block clears HOB
        if offset == 1:
            t.hob_features, t.features = t.features, value
        elif offset == 2:
            t.hob_nsector, t.nsector = t.nsector, value
        elif offset == 3:
            t.hob_sector, t.sector = t.sector, value
        elif offset == 4:
            t.hob_lcyl, t.lcyl = t.lcyl, value
        elif offset == 5:
            t.hob_hcyl, t.hcyl = t.hcyl, value
        elif offset == 6:
            t.select = value & 0x5F
        elif offset == 7 and not t.control & SRST:
            self._execute(value)

    def _write_control(self, value: int) -> None:
        was_reset = self.task.control & SRST
        self.task.control = value & (NIEN | SRST | HOB)
        if value & SRST and not was_reset:
            self.transfer = Transfer()
            self.irq_pending = False
        elif was_reset and not value & SRST:
            self._signature()  # end of the software reset protocol
        self._update_irq()

    def io_read(self, port: int, size: int) -> int:
        size = max(1, min(size, 4))
        if port == self.base:
            value = self._data_read(size)
            self._publish_window()
            return value
        if port == self.control_port:
            return self._status()  # alternate status: INTRQ untouched
        if self.base < port < self.base + 8:
            return self._read_register(port - self.base)
        return (1 << (8 * size)) - 1

    def io_write(self, port: int, size: int, value: int) -> None:
        size = max(1, min(size, 4))
        value &= (1 << (8 * size)) - 1
        if port == self.base:
            self._data_write(size, value)
        elif port == self.control_port:
            self._write_control(value & 0xFF)
        elif self.base < port < self.base + 8:
            self._write_register(port - self.base, value & 0xFF)
        self._publish_window()

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        transfer = asdict(self.transfer)
        transfer["buffer"] = bytes(self.transfer.buffer)
        return {
            "task": asdict(self.task),
            "drives": [asdict(d) for d in self.drives],
            "transfer": transfer,
            "lba48": self._lba48,
            "irq_pending": self.irq_pending,
            "irq": self.irq.level,
        }

    def restore(self, state: dict[str, Any]) -> None:
        def build(cls: Callable[..., Any], data: dict[str, Any]) -> Any:
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})

        self.task = build(TaskFile, state["task"])
        self.drives = [build(DriveState, d) for d in state["drives"]]
        self.transfer = build(Transfer, state["transfer"])
        self.transfer.buffer = bytearray(bytes(self.transfer.buffer)[: MAX_MULTIPLE * SECTOR])
        self._lba48 = bool(state["lba48"])
        self.irq_pending = bool(state["irq_pending"])
        self.irq.level = bool(state["irq"])  # the PIC restores its own view of the line
        self._window = None
        self._publish_window()
