"""Atomic file replacement, for every file vmm writes (DESIGN.md principle 7).

The new contents go to a temporary file in the same folder (so the rename stays on one
file system), are flushed and fsync'ed, then renamed over the target; the folder is
fsync'ed too so the rename itself survives a crash. An interrupted write leaves either
the old file or the new one, never half of one. Bundles, VMDK descriptors, machine
state files, test reports and screenshots all write through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or link in ``folder`` durable (best effort where it cannot be)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # some file systems do not let a folder be opened; the rename still happened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def default_mode(path: Path) -> int:
    """The mode a replacement keeps: the old file's, else what open() would give a new one."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def temp_beside(path: Path, mode: int | None = None) -> tuple[int, Path]:
    """An open temporary file in ``path``'s folder, with the mode ``path`` will have."""
    import tempfile  # loaded when a file is written, not at every start

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, default_mode(path) if mode is None else mode)
    return fd, Path(tmp)


@contextlib.contextmanager
def replacing(path: Path | str, mode: int | None = None) -> Iterator[BinaryIO]:
    """Write a file that replaces ``path`` only once the block ended without error: the
    temporary file is fsync'ed, renamed over ``path`` and the folder fsync'ed."""
    path = Path(os.path.abspath(path))
    fd, tmp = temp_beside(path, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path | str, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``; ``mode`` defaults to the old file's, else the umask's."""
    with replacing(path, mode) as out:
        out.write(data)


SPARSE_CHUNK = 64 * 1024


def atomic_write_sparse(path: Path | str, data: bytes | bytearray | memoryview, mode: int | None = None) -> None:
    """``atomic_write`` for mostly-zero data (guest RAM): zero 64 KiB runs become holes, so a
    64 MiB memory file of a small guest takes what the guest used, and reads back the same."""
    view = memoryview(data).cast("B")
    zero = bytes(SPARSE_CHUNK)
    with replacing(path, mode) as out:
        for start in range(0, len(view), SPARSE_CHUNK):
            chunk = view[start : start + SPARSE_CHUNK]
            if chunk == zero[: len(chunk)]:
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
        out.truncate(len(view))
