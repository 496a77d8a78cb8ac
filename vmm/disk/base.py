"""The block-device interface the disk controllers (ATA, virtio-blk) use.

Sizes are in 512-byte sectors. ``read``/``write`` take a sector number and a sector
count or data whose length is a multiple of the sector size; a request past the end of
the device raises :class:`vmm.errors.DiskError` (the controller turns it into the
hardware's error status, never a traceback).
"""

from __future__ import annotations

from vmm.errors import DiskError

SECTOR_SIZE = 512


class BlockDevice:
    sector_size = SECTOR_SIZE
    read_only = False

    @property
    def capacity(self) -> int:
        """Number of sectors."""
        raise NotImplementedError

    def read(self, lba: int, count: int) -> bytes:
        raise NotImplementedError

    def write(self, lba: int, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make every completed write durable."""

    def close(self) -> None:
        """Flush and release the files."""

    def check_range(self, lba: int, count: int) -> None:
        if lba < 0 or count < 0 or lba + count > self.capacity:
            raise DiskError(f"sectors {lba}+{count} are outside the disk ({self.capacity} sectors)")

    def __enter__(self) -> BlockDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
