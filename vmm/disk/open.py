"""open_disk: pick the backend for a disk image by its content."""

from __future__ import annotations

import os

from vmm.confine import FileScope
from vmm.disk.base import BlockDevice
from vmm.disk.raw import RawDisk
from vmm.disk.vmdk import DESCRIPTOR_MAGIC, MAGIC_BYTES
from vmm.errors import DiskError


def is_vmdk(path: str | os.PathLike[str]) -> bool:
    """True for a sparse extent (KDMV magic) or a text descriptor; anything else is raw."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise DiskError(f"{os.fspath(path)}: no such file") from None
    except OSError as exc:
        raise DiskError(f"{os.fspath(path)}: cannot open: {exc.strerror}") from None
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n\t ")
    return head.startswith(MAGIC_BYTES) or head.startswith(DESCRIPTOR_MAGIC.encode())


def open_disk(path: str | os.PathLike[str], read_only: bool = False, scope: FileScope | None = None) -> BlockDevice:
    """Open a raw image or a VMDK (any hosted type, with its parent chain).

    The files a VMDK's descriptor names must lie within ``scope`` (default: the disk's own
    folder, no symlinks): see vmm.confine.
    """
    if is_vmdk(path):
        from vmm.disk.vmdk.disk import VmdkDisk

        return VmdkDisk(path, read_only=read_only, scope=scope)
    return RawDisk(path, read_only=read_only)
