"""The block-device interface the disk controllers (ATA, virtio-blk) use.

Sizes are in 512-byte sectors. ``read``/``write`` take a sector number and a sector
count or data whose length is a multiple of the sector size; a request past the end of
the device raises :class:`vmm.errors.DiskError` (the controller turns it into the
hardware's error status, never a traceback).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator

from vmm.errors import DiskError, DiskIOError

SECTOR_SIZE = 512


def write_all(fd: int, data: bytes, offset: int, path: str | None = None) -> None:
    """``pwrite`` all of ``data`` at ``offset``, or raise DiskIOError (a short write is an error:
    a full disk often takes part of a write and refuses the rest)."""
    view = memoryview(data)
    done = 0
    while done < len(view):
        try:
            n = os.pwrite(fd, view[done:], offset + done)
        except OSError as exc:
            raise DiskIOError(
                f"{path or 'disk'}: write of {len(view)} bytes at offset {offset} failed: {exc.strerror}"
            ) from None
        if n <= 0:
            raise DiskIOError(
                f"{path or 'disk'}: write of {len(view)} bytes at offset {offset} failed: "
                f"only {done} bytes written (disk full?)"
            )
        done += n


class BlockDevice(ABC):
    sector_size = SECTOR_SIZE
    read_only = False

    @property
    @abstractmethod
    def capacity(self) -> int:
        """Number of sectors."""

    @abstractmethod
    def read(self, lba: int, count: int) -> bytes: ...

    @abstractmethod
    def write(self, lba: int, data: bytes) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional: nothing to do by default
        """Make every completed write durable."""

    def close(self) -> None:  # noqa: B027 - optional: nothing to do by default
        """Flush and release the files."""

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        """(lba, count) runs that may hold non-zero data, in order; everything else reads as zeros.

        Copy tools (convert, commit) use it to skip holes; the default claims the whole disk.
        """
        if self.capacity:
            yield 0, self.capacity

    def check_range(self, lba: int, count: int) -> None:
        if lba < 0 or count < 0 or lba + count > self.capacity:
            raise DiskError(f"sectors {lba}+{count} are outside the disk ({self.capacity} sectors)")

    def check_data(self, data: bytes) -> int:
        """The sector count of a write buffer, or DiskError if it is not whole sectors."""
        if len(data) % SECTOR_SIZE:
            raise DiskError(f"write of {len(data)} bytes is not a multiple of the {SECTOR_SIZE}-byte sector")
        return len(data) // SECTOR_SIZE

    def __enter__(self) -> BlockDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
