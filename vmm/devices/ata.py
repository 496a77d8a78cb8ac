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
Each command is decoded and checked once into a ``Request`` (``vmm.devices.ata_command``,
with the task file and the IDENTIFY data) before any work (the whole
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

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from vmm.devices.ata_command import (
    ABRT,
    BSY,
    DEV_SLAVE,
    DRDY,
    DRQ,
    DSC,
    ERR,
    HOB,
    MAX_MULTIPLE,
    NIEN,
    SECTOR,
    SRST,
    UNC,
    DriveState,
    RequestError,
    TaskFile,
    Transfer,
    decode,
    identify_data,
    set_task_address,
)
from vmm.devices.base import Device
from vmm.disk.base import BlockDevice
from vmm.errors import DiskError, DiskIOError
from vmm.irq import IrqLine, NullIrqLine


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

    # ---- commands ----

    def _execute(self, command: int) -> None:
        disk = self.disk
        if disk is None:
            return  # no device answers: the command is ignored
        self.irq_pending = False
        self._update_irq()
        self.transfer = Transfer()
        try:
            request = decode(command, self.task, self.drive, disk)
        except RequestError as refused:
            if refused.lba is not None:
                set_task_address(self.task, self.drive, refused.lba, refused.lba48)
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
            self._start_data_in(identify_data(disk, self.drive, self.current, self.model, self.firmware), 0)
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
            set_task_address(self.task, self.drive, xfer.lba, self._lba48)
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
            set_task_address(self.task, self.drive, xfer.lba, self._lba48)
            self._host_io_error(exc)
            return False
        except (DiskError, OSError):
            set_task_address(self.task, self.drive, xfer.lba, self._lba48)
            self._finish(ABRT)
            return False
        return True

    def _block_done(self) -> None:
        xfer = self.transfer
        if xfer.direction == "out" and not self._write_block():
            return
        xfer.lba += xfer.block
        if xfer.block:
            set_task_address(self.task, self.drive, xfer.lba - 1, self._lba48)
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
