"""``.vmem`` files: guest RAM as raw guest-physical bytes, sparse, restored by mmap.

Writing: all-zero 4 KiB pages become holes (a guest that touched 16 MiB of 256 MiB leaves
a file that takes 16 MiB on disk). Pages the guest never touched are skipped without being
read: ``/proc/self/pagemap`` says which pages of the RAM mapping are present (or swapped),
and for RAM mapped from a ``.vmem`` the file's own holes (SEEK_DATA/SEEK_HOLE) say which
absent pages are zeros. The rest is compared 1 MiB at a time with zeros, down to pages only
inside chunks that hold data, and written with one ``pwrite`` per run of data pages. The
file is fsync'ed and renamed into place (vmm.fileio): a killed write leaves the old file or
none.

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


def _file_data(path: str | None, size: int) -> list[tuple[int, int]]:
    """The data extents (start, end) of the file RAM is mapped from; [] when there is none."""
    if path is None:
        return []
    extents = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return [(0, size)]  # cannot tell: read everything
    try:
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                break  # ENXIO: no data past offset
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, min(end, size)))
            offset = end
    except OSError:
        return [(0, size)]
    finally:
        os.close(fd)
    return extents


def _chunks_to_read(memory: GuestMemory | None, size: int) -> bytearray | None:
    """One flag per CHUNK: 1 when it may hold data (None: read them all)."""
    if memory is None:
        return None
    pages = size // PAGE
    try:
        fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        entries = os.pread(fd, pages * 8, memory.address // PAGE * 8)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(entries) != pages * 8:
        return None
    per_chunk = CHUNK // PAGE * 8
    zero = bytes(per_chunk)
    flags = bytearray(-(-size // CHUNK))
    for n in range(len(flags)):
        if entries[n * per_chunk : (n + 1) * per_chunk] != zero[: len(entries) - n * per_chunk]:
            flags[n] = 1  # a page present (or swapped out) in this chunk
    for start, end in _file_data(memory.backing, size):
        for n in range(start // CHUNK, -(-end // CHUNK)):
            flags[n] = 1
    return flags


def data_runs(view: memoryview, memory: GuestMemory | None = None) -> list[tuple[int, int]]:
    """(offset, length) of the runs of pages of ``view`` that are not all zeros (``memory``:
    the GuestMemory ``view`` is, so pages never touched can be skipped unread)."""
    runs: list[tuple[int, int]] = []
    size = len(view)
    maybe = _chunks_to_read(memory, size)

    def add(start: int, end: int) -> None:
        if runs and runs[-1][0] + runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end - runs[-1][0])
        else:
            runs.append((start, end - start))

    for base in range(0, size, CHUNK):
        if maybe is not None and not maybe[base // CHUNK]:
            continue
        end = min(base + CHUNK, size)
        chunk = bytes(view[base:end])  # bytes compare with memcmp; memoryviews compare item by item
        if chunk == _ZERO_CHUNK[: end - base]:
            continue
        page = 0
        while page < len(chunk):
            if chunk[page : page + PAGE] != _ZERO_PAGE[: min(PAGE, len(chunk) - page)]:
                first = page
                page += PAGE
                while page < len(chunk) and chunk[page : page + PAGE] != _ZERO_PAGE[: min(PAGE, len(chunk) - page)]:
                    page += PAGE
                add(base + first, base + min(page, len(chunk)))
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
        for offset, length in data_runs(view, memory):
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
