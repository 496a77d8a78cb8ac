"""Whole-or-nothing file writes for VMDK files (DESIGN principle 7).

``write_file_atomic`` replaces a descriptor through vmm.fileio.atomic_write (temp file
beside it, fsync, rename, fsync the directory). ``new_file`` creates a file that must not
exist yet the same way, but links the finished temp file into place, so it never
replaces a file someone made meanwhile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vmm.errors import DiskError, DiskIOError
from vmm.fileio import atomic_write, fsync_dir, temp_beside


def _temp_beside(path: str) -> tuple[int, str, str]:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = temp_beside(Path(os.path.abspath(path)))
    except OSError as exc:
        raise DiskError(f"{path}: cannot create: {exc.strerror}") from None
    return fd, str(tmp), directory


def write_file_atomic(path: str, data: bytes) -> None:
    """Replace (or create) ``path`` with ``data`` so that a crash leaves the old or the new file."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise DiskIOError(f"{path}: cannot write: {exc.strerror}") from None


@contextlib.contextmanager
def new_file(path: str) -> Iterator[BinaryIO]:
    """Yield a file to write; on success it appears at ``path`` complete, else nothing appears."""
    if os.path.lexists(path):
        raise DiskError(f"{path}: already exists")
    fd, tmp, directory = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise DiskError(f"{path}: already exists") from None
        except OSError:  # no hard links on this file system: rename, after checking again
            if os.path.lexists(path):
                raise DiskError(f"{path}: already exists") from None
            os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(directory)
