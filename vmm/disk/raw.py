"""Raw disk images: the file is the disk, sector for sector.

Holes in the host file (SEEK_HOLE/SEEK_DATA) tell copy tools where the zeros are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from vmm.disk.base import SECTOR_SIZE, BlockDevice, write_all
from vmm.errors import DiskError


class RawDisk(BlockDevice):
    """A raw image; its capacity is the file size rounded down to whole sectors."""

    def __init__(self, path: str | os.PathLike[str], read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        try:
            self._fd = os.open(self.path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
        except OSError as exc:
            raise DiskError(f"{self.path}: cannot open: {exc.strerror}") from None
        self._capacity = os.fstat(self._fd).st_size // SECTOR_SIZE

    @property
    def capacity(self) -> int:
        return self._capacity

    def read(self, lba: int, count: int) -> bytes:
        self.check_range(lba, count)
        want = count * SECTOR_SIZE
        data = os.pread(self._fd, want, lba * SECTOR_SIZE)
        # A file shrunk under us reads short: the missing tail is zeros, as in a hole.
        return data if len(data) == want else data.ljust(want, b"\0")

    def write(self, lba: int, data: bytes) -> None:
        if self.read_only:
            raise DiskError(f"{self.path}: the disk is open read-only")
        self.check_range(lba, self.check_data(data))
        write_all(self._fd, data, lba * SECTOR_SIZE, self.path)

    def flush(self) -> None:
        if not self.read_only and self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            self.flush()
            os.close(self._fd)
            self._fd = -1

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        end = self._capacity * SECTOR_SIZE
        pos = 0
        while pos < end:
            try:
                start = os.lseek(self._fd, pos, os.SEEK_DATA)
                stop = os.lseek(self._fd, start, os.SEEK_HOLE)
            except OSError:  # ENXIO: no data after pos; other errors: no hole support
                if pos == 0 and not _has_seek_data(self._fd):
                    yield 0, self._capacity
                return
            first = start // SECTOR_SIZE
            last = min(-(-stop // SECTOR_SIZE), self._capacity)
            if last > first:
                yield first, last - first
            pos = max(stop, last * SECTOR_SIZE)

    def info(self) -> dict[str, object]:
        st = os.stat(self.path)
        return {
            "filename": self.path,
            "type": "raw",
            "virtual_size": self._capacity * SECTOR_SIZE,
            "disk_size": st.st_blocks * 512,
            "extents": [{"filename": self.path, "type": "raw", "sectors": self._capacity}],
            "chain": [self.path],
        }


def _has_seek_data(fd: int) -> bool:
    try:
        os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:
        return False
    return True


def create_raw(path: str | os.PathLike[str], capacity: int) -> None:
    """Create a raw image of ``capacity`` sectors (a host-sparse file)."""
    try:
        with open(path, "xb") as f:
            f.truncate(capacity * SECTOR_SIZE)
    except FileExistsError:
        raise DiskError(f"{os.fspath(path)}: already exists") from None
    except OSError as exc:
        raise DiskError(f"{os.fspath(path)}: cannot create: {exc.strerror}") from None
