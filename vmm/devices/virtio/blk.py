"""virtio-blk: a block device on one request queue.

Source: OASIS virtio 1.1, 5.2 (block device): configuration ``le64 capacity`` (512-byte
sectors), ``le32 size_max``, ``le32 seg_max``, geometry, ``le32 blk_size``; features
VIRTIO_BLK_F_SEG_MAX (2), VIRTIO_BLK_F_RO (5), VIRTIO_BLK_F_BLK_SIZE (6),
VIRTIO_BLK_F_FLUSH (9); a request is ``{le32 type; le32 reserved; le64 sector}`` in
device-readable memory, data, and a one-byte status in the last device-writable byte;
types IN 0, OUT 1, FLUSH 4, GET_ID 8; status OK 0, IOERR 1, UNSUPP 2.

Requests run to completion when the driver notifies the queue (deterministic: no host
threads). A request the device can parse but not serve (out of range, not whole sectors,
a write to a read-only disk, a failing image) completes with IOERR; one without room
for a status byte is dropped (returned with nothing written), as 5.2.6.1 leaves it.
A write or flush the host cannot do (``DiskIOError``: the host disk is full) is also
passed to ``on_io_error`` — the machine says so once on the host, as for ATA.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from vmm.devices.virtio.queue import Chain
from vmm.devices.virtio.transport import VirtioDevice
from vmm.disk.base import SECTOR_SIZE, BlockDevice
from vmm.errors import DiskError, DiskIOError
from vmm.memory import GuestMemory

VIRTIO_ID_BLOCK = 2
VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH = 2, 5, 6, 9
VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID = 0, 1, 4, 8
VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP = 0, 1, 2
VIRTIO_BLK_ID_BYTES = 20
HEADER = struct.Struct("<IIQ")
QUEUE_SIZE = 256
CHUNK = 1 << 20  # bytes moved between disk and guest at a time


class VirtioBlock(VirtioDevice):
    name = "virtio-blk"
    device_type = VIRTIO_ID_BLOCK
    queue_sizes = (QUEUE_SIZE,)

    def __init__(self, memory: GuestMemory, disk: BlockDevice, serial: str = "", name: str = "virtio-blk",
                 on_io_error: Callable[[DiskIOError], None] | None = None) -> None:  # fmt: skip
        self.disk = disk
        self.on_io_error = on_io_error
        self.name = name
        self.serial = serial.encode("ascii", "replace")[:VIRTIO_BLK_ID_BYTES]
        self.features = 1 << VIRTIO_BLK_F_SEG_MAX | 1 << VIRTIO_BLK_F_BLK_SIZE | 1 << VIRTIO_BLK_F_FLUSH
        if disk.read_only:
            self.features |= 1 << VIRTIO_BLK_F_RO
        super().__init__(memory)

    def config_space(self) -> bytes:
        # capacity, size_max (unused: no SIZE_MAX), seg_max, geometry (unused), blk_size
        return struct.pack("<QIIHBBI", self.disk.capacity, 0, QUEUE_SIZE - 2, 0, 0, 0, SECTOR_SIZE).ljust(0x40, b"\0")

    def process(self, queue_index: int) -> None:
        while (chain := self.pop(queue_index)) is not None:
            written = self._serve(chain)
            self.complete(queue_index, chain, written)

    def _serve(self, chain: Chain) -> int:
        """Do one request; returns the bytes written into the chain (data and status)."""
        if not chain.writable_length or chain.readable_length < HEADER.size:
            return 0  # no status byte or no header: nothing can be reported
        kind, _reserved, sector = HEADER.unpack(chain.read(self.memory, 0, HEADER.size))
        data_in = chain.writable_length - 1  # the last writable byte is the status
        try:
            if kind == VIRTIO_BLK_T_IN:
                written = self._read(chain, sector, data_in)
                return self._status(chain, VIRTIO_BLK_S_OK, written)
            if kind == VIRTIO_BLK_T_OUT:
                self._write(chain, sector)
            elif kind == VIRTIO_BLK_T_FLUSH:
                self.disk.flush()
            elif kind == VIRTIO_BLK_T_GET_ID:
                written = chain.write(self.memory, self.serial.ljust(VIRTIO_BLK_ID_BYTES, b"\0")[:data_in])
                return self._status(chain, VIRTIO_BLK_S_OK, written)
            else:
                return self._status(chain, VIRTIO_BLK_S_UNSUPP, 0)
        except DiskIOError as exc:  # the host could not write: the guest gets IOERR, the user a line
            if self.on_io_error is not None:
                self.on_io_error(exc)
            return self._status(chain, VIRTIO_BLK_S_IOERR, 0)
        except (DiskError, OSError):
            return self._status(chain, VIRTIO_BLK_S_IOERR, 0)
        return self._status(chain, VIRTIO_BLK_S_OK, 0)

    def _status(self, chain: Chain, status: int, written: int) -> int:
        chain.write(self.memory, bytes((status,)), chain.writable_length - 1)
        return written + 1

    def _read(self, chain: Chain, sector: int, length: int) -> int:
        if length % SECTOR_SIZE:
            raise DiskError(f"read of {length} bytes is not whole sectors")
        self.disk.check_range(sector, length // SECTOR_SIZE)
        done = 0
        while done < length:
            take = min(CHUNK, length - done)
            data = self.disk.read(sector + done // SECTOR_SIZE, take // SECTOR_SIZE)
            chain.write(self.memory, data, done)
            done += take
        return done

    def _write(self, chain: Chain, sector: int) -> None:
        length = chain.readable_length - HEADER.size
        if self.disk.read_only:
            raise DiskError("the disk is read-only")
        if length % SECTOR_SIZE:
            raise DiskError(f"write of {length} bytes is not whole sectors")
        self.disk.check_range(sector, length // SECTOR_SIZE)
        done = 0
        while done < length:
            take = min(CHUNK, length - done)
            self.disk.write(sector + done // SECTOR_SIZE, chain.read(self.memory, HEADER.size + done, take))
            done += take

    def save_device(self) -> dict[str, Any]:
        return {}
