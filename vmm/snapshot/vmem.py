"""``.vmem`` files: guest RAM as raw guest-physical bytes, sparse, restored by mmap.

Writing: all-zero 4 KiB pages become holes (a guest that touched 16 MiB of 256 MiB leaves
a file that takes 16 MiB on disk). The scan compares 1 MiB at a time with zeros and goes
down to pages only inside chunks that hold data, so it costs a memcmp of RAM, and the
writes are one ``pwrite`` per run of data pages. The file is fsync'ed and renamed into
place (vmm.fileio): a killed write leaves the old file or none.

Reading: :func:`map_vmem` opens the file and maps it over guest RAM, copy-on-write
(vmm.memory.GuestMemory.map_file). Nothing is copied, so the time of a restore does not
grow with RAM; pages the guest never writes stay in the page cache, shared by every VM
that restored the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmm.errors import ImageError
from vmm.fileio import replacing
from vmm.memory import GuestMemory

PAGE = 4096
CHUNK = 1 << 20
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_PAGE = bytes(PAGE)


def data_runs(view: memoryview) -> list[tuple[int, int]]:
    """(offset, length) of the runs of pages of ``view`` that are not all zeros."""
    runs: list[tuple[int, int]] = []
    size = len(view)

    def add(start: int, end: int) -> None:
        if runs and runs[-1][0] + runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end - runs[-1][0])
        else:
            runs.append((start, end - start))

    for base in range(0, size, CHUNK):
        end = min(base + CHUNK, size)
        if view[base:end] == _ZERO_CHUNK[: end - base]:
            continue
        page = base
        while page < end:
            if view[page : page + PAGE] != _ZERO_PAGE[: min(PAGE, end - page)]:
                first = page
                page += PAGE
                while page < end and view[page : page + PAGE] != _ZERO_PAGE[: min(PAGE, end - page)]:
                    page += PAGE
                add(first, min(page, end))
            else:
                page += PAGE
    return runs


def write_vmem(path: Path, memory: GuestMemory) -> int:
    """Write guest RAM to ``path`` (sparse, atomic); returns the bytes of data written."""
    view = memory.view
    written = 0
    with replacing(path, 0o600) as out:
        fd = out.fileno()
        os.ftruncate(fd, memory.size)
        for offset, length in data_runs(view):
            done = 0
            while done < length:
                done += os.pwrite(fd, view[offset + done : offset + length], offset + done)
            written += length
    return written


def map_vmem(path: Path, memory: GuestMemory) -> None:
    """Guest RAM becomes a copy-on-write view of ``path`` (see the module docstring)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise ImageError(f"{path}: cannot open the memory file: {exc.strerror}") from None
    try:
        memory.map_file(fd, str(path))
    finally:
        os.close(fd)  # the mapping keeps the file


def disk_usage(path: Path) -> int:
    """Bytes a file takes on disk (its allocated blocks), holes not counted."""
    return os.stat(path).st_blocks * 512
