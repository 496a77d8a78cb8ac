"""A disk whose writes stay in memory: the image underneath is opened read-only and never
changes (as ``qemu -snapshot``). ``vmm run --check-determinism`` runs the same machine
twice, so both runs must start from the same disk contents."""

from __future__ import annotations

from vmm.disk.base import SECTOR_SIZE, BlockDevice


class ScratchDisk(BlockDevice):
    def __init__(self, base: BlockDevice) -> None:
        self.base = base
        self.written: dict[int, bytes] = {}  # lba -> the sector as the guest last wrote it

    @property
    def capacity(self) -> int:
        return self.base.capacity

    def read(self, lba: int, count: int) -> bytes:
        self.check_range(lba, count)
        if not self.written:
            return self.base.read(lba, count)
        data = bytearray(self.base.read(lba, count))
        for i in range(count):
            sector = self.written.get(lba + i)
            if sector is not None:
                data[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE] = sector
        return bytes(data)

    def write(self, lba: int, data: bytes) -> None:
        count = self.check_data(data)
        self.check_range(lba, count)
        for i in range(count):
            self.written[lba + i] = bytes(data[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE])

    def close(self) -> None:
        self.written.clear()
        self.base.close()
