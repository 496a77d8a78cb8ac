"""Creating VMDK files of every hosted type, and delta (child) disks.

Layouts follow what VMware and qemu-img write (see /work/shared/specs/vmware-files.md):
sparse extents get every GT and RGT preallocated, so qemu-img (which cannot create a grain
table) can write them too. Extent files are written first and the descriptor last, so a
disk that is interrupted while being made has no descriptor pointing at half files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from vmm.disk.base import SECTOR_SIZE, BlockDevice
from vmm.disk.vmdk.descriptor import (
    MONOLITHIC_FLAT,
    MONOLITHIC_SPARSE,
    SPLIT_FLAT,
    SPLIT_SPARSE,
    STREAM_OPTIMIZED,
    Descriptor,
    ExtentLine,
    new_descriptor,
)
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.disk.vmdk.files import new_file
from vmm.disk.vmdk.sparse import DEFAULT_GRAIN_SIZE, DEFAULT_GTES_PER_GT, SparseLayout
from vmm.disk.vmdk.stream import write_stream
from vmm.errors import DiskError

VMDK_TYPES = (MONOLITHIC_SPARSE, MONOLITHIC_FLAT, SPLIT_SPARSE, SPLIT_FLAT, STREAM_OPTIMIZED)
#: VMware's split size: 2 GiB less 1 MiB, a multiple of every usual grain size.
SPLIT_EXTENT_SECTORS = 4192256
EMBEDDED_DESCRIPTOR_SECTORS = 20


def _stem(path: str) -> str:
    return path[:-5] if path.lower().endswith(".vmdk") else path


def extent_paths(path: str, create_type: str, capacity: int, extent_sectors: int = SPLIT_EXTENT_SECTORS) -> list[str]:
    """The extent files a new disk of ``create_type`` at ``path`` will have (besides ``path``)."""
    stem = _stem(path)
    if create_type == MONOLITHIC_FLAT:
        return [f"{stem}-flat.vmdk"]
    if create_type in (SPLIT_SPARSE, SPLIT_FLAT):
        letter = "s" if create_type == SPLIT_SPARSE else "f"
        count = max(1, -(-capacity // extent_sectors))
        return [f"{stem}-{letter}{i:03d}.vmdk" for i in range(1, count + 1)]
    return []


def _refuse_existing(paths: list[str]) -> None:
    for p in paths:
        if os.path.lexists(p):
            raise DiskError(f"{p}: already exists")


def _write_new(path: str, data: bytes, size: int | None = None) -> None:
    try:
        with new_file(path) as f:
            f.write(data)
            if size is not None and size > len(data):
                f.truncate(size)
    except OSError as exc:
        raise DiskError(f"{path}: cannot create: {exc.strerror}") from None


def _sparse_file(
    path: str, capacity: int, grain_size: int, descriptor: Descriptor | None, gtes_per_gt: int = DEFAULT_GTES_PER_GT
) -> None:
    layout = SparseLayout.plan(
        capacity, grain_size, EMBEDDED_DESCRIPTOR_SECTORS if descriptor else 0, gtes_per_gt=gtes_per_gt
    )
    text = descriptor.render().encode() if descriptor else b""
    _write_new(path, layout.metadata(text))


MAX_DISK_SECTORS = 64 << 31  # 64 TiB, about VMware's largest virtual disk (62 TB)
MAX_SPARSE_EXTENT = (1 << 32) - (1 << 22)  # one sparse file: 2 TiB less room for its metadata


def _check_args(path: str, capacity: int, grain_size: int, extent_sectors: int, create_type: str) -> None:
    if capacity < 0:
        raise DiskError(f"{path}: size of {capacity} sectors is negative")
    if capacity > MAX_DISK_SECTORS:
        raise DiskError(
            f"{path}: size of {capacity * SECTOR_SIZE} bytes is beyond the {MAX_DISK_SECTORS >> 31} TiB vmm creates"
        )
    if create_type in (MONOLITHIC_SPARSE, STREAM_OPTIMIZED) and capacity > MAX_SPARSE_EXTENT:
        raise DiskError(
            f"{path}: a {create_type} disk holds up to 2 TiB (its grain tables address 32-bit sectors); "
            "use twoGbMaxExtentSparse or a flat type for more"
        )
    if grain_size < 1 or grain_size & (grain_size - 1):
        raise DiskError(f"{path}: grain size {grain_size} is not a power of two")
    if extent_sectors < 1 or (create_type == SPLIT_SPARSE and extent_sectors % grain_size):
        raise DiskError(f"{path}: extent size {extent_sectors} is not a multiple of the grain size {grain_size}")


def create_vmdk(
    path: str | os.PathLike[str],
    capacity: int,
    create_type: str = MONOLITHIC_SPARSE,
    *,
    grain_size: int = DEFAULT_GRAIN_SIZE,
    extent_sectors: int = SPLIT_EXTENT_SECTORS,
    adapter_type: str = "ide",
    parent_cid: int | None = None,
    parent_hint: str | None = None,
    gtes_per_gt: int = DEFAULT_GTES_PER_GT,
) -> None:
    """Create an empty VMDK of ``capacity`` sectors. ``extent_sectors`` sets the split size
    of the twoGbMaxExtent types and ``gtes_per_gt`` the GT size (tests use tiny values to
    exercise splits and many grain tables on small disks; qemu expects 512)."""
    path = os.fspath(path)
    _check_args(os.fspath(path), capacity, grain_size, extent_sectors, create_type)
    if create_type not in VMDK_TYPES:
        raise DiskError(f"{path}: cannot create createType {create_type!r} (one of {', '.join(VMDK_TYPES)})")
    files = extent_paths(path, create_type, capacity, extent_sectors)
    _refuse_existing([path, *files])
    names = [os.path.basename(f) for f in files]
    parent = {"parent_cid": parent_cid, "parent_hint": parent_hint} if parent_cid is not None else {}
    if create_type in (MONOLITHIC_SPARSE, STREAM_OPTIMIZED):
        line = ExtentLine("RW", capacity, "SPARSE", os.path.basename(path))
        desc = new_descriptor(create_type, [line], adapter_type=adapter_type, **parent)
        if create_type == STREAM_OPTIMIZED:
            write_stream(path, ZeroDevice(capacity), lambda: desc.render().encode(), grain_size)
        else:
            _sparse_file(path, capacity, grain_size, desc, gtes_per_gt)
        return
    if create_type == MONOLITHIC_FLAT:
        lines = [ExtentLine("RW", capacity, "FLAT", names[0], 0)]
    else:
        sizes = [min(extent_sectors, capacity - i * extent_sectors) for i in range(len(files))]
        kind = "SPARSE" if create_type == SPLIT_SPARSE else "FLAT"
        lines = [ExtentLine("RW", size, kind, name, 0) for size, name in zip(sizes, names, strict=True)]
    try:
        for line, file in zip(lines, files, strict=True):
            if line.type == "SPARSE":
                _sparse_file(file, line.sectors, grain_size, None, gtes_per_gt)
            else:
                _write_new(file, b"", line.sectors * SECTOR_SIZE)
        desc = new_descriptor(create_type, lines, adapter_type=adapter_type, **parent)
        _write_new(path, desc.render().encode())
    except BaseException:
        for file in files:
            if os.path.exists(file):
                os.unlink(file)
        raise


def create_child(
    parent_path: str | os.PathLike[str],
    child_path: str | os.PathLike[str],
    grain_size: int = DEFAULT_GRAIN_SIZE,
    gtes_per_gt: int = DEFAULT_GTES_PER_GT,
) -> None:
    """Create a monolithicSparse delta disk over ``parent_path`` (its parentCID pins the parent's CID).

    The parent must not be written afterwards: its CID would change and the child would no
    longer open (as with VMware). Snapshots freeze the parent by switching the VM to the child.
    """
    parent_path, child_path = os.fspath(parent_path), os.fspath(child_path)
    with VmdkDisk(parent_path, read_only=True) as parent:
        cid, capacity = parent.cid, parent.capacity
        adapter = parent.descriptor.ddb.get("ddb.adapterType", "ide")
    hint = os.path.relpath(os.path.abspath(parent_path), os.path.dirname(os.path.abspath(child_path)))
    create_vmdk(
        child_path,
        capacity,
        MONOLITHIC_SPARSE,
        grain_size=grain_size,
        adapter_type=adapter,
        parent_cid=cid,
        parent_hint=hint,
        gtes_per_gt=gtes_per_gt,
    )


class ZeroDevice(BlockDevice):
    """A read-only disk of zeros (the source for an empty streamOptimized file)."""

    read_only = True

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    def read(self, lba: int, count: int) -> bytes:
        self.check_range(lba, count)
        return bytes(count * SECTOR_SIZE)

    def write(self, lba: int, data: bytes) -> None:
        raise DiskError("a disk of zeros is read-only")

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        return iter(())


RAW = "raw"
DISK_TYPES = (*VMDK_TYPES, RAW)


def create_disk(
    path: str | os.PathLike[str], capacity: int, disk_type: str = MONOLITHIC_SPARSE, **options: int | str
) -> None:
    """Create an empty disk of any type vmm writes: the VMDK types, or ``raw``."""
    if disk_type == RAW:
        from vmm.disk.raw import create_raw

        _check_args(os.fspath(path), capacity, DEFAULT_GRAIN_SIZE, SPLIT_EXTENT_SECTORS, RAW)
        create_raw(path, capacity)
    else:
        create_vmdk(path, capacity, disk_type, **options)  # type: ignore[arg-type]
