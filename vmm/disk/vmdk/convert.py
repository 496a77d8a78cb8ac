"""Copying a disk of any type into a new disk of any type (``vmm disk convert``).

Only what the source may hold is copied (its ``data_ranges``), and all-zero grains are
skipped, so sparse destinations stay sparse. A delta source is copied flattened: the
result reads like the whole chain and has no parent.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vmm.disk.base import BlockDevice
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import RAW, SPLIT_EXTENT_SECTORS, create_disk, extent_paths
from vmm.disk.vmdk.descriptor import MONOLITHIC_SPARSE, STREAM_OPTIMIZED, ExtentLine, new_descriptor
from vmm.disk.vmdk.sparse import DEFAULT_GRAIN_SIZE
from vmm.disk.vmdk.stream import write_stream

CHUNK_SECTORS = 2048  # 1 MiB per read
SKIP_SECTORS = DEFAULT_GRAIN_SIZE  # zero runs this long are not written

Progress = Callable[[int, int], None]


def default_type(path: str) -> str:
    return MONOLITHIC_SPARSE if path.lower().endswith(".vmdk") else RAW


def convert(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], dst_type: str | None = None,
            progress: Progress | None = None, **options: int | str) -> None:
    src_path, dst_path = os.fspath(src_path), os.fspath(dst_path)
    dst_type = dst_type or default_type(dst_path)
    with open_disk(src_path, read_only=True) as src:
        if dst_type == STREAM_OPTIMIZED:
            line = ExtentLine("RW", src.capacity, "SPARSE", os.path.basename(dst_path))
            adapter = str(options.get("adapter_type", "ide"))
            desc = new_descriptor(STREAM_OPTIMIZED, [line], adapter_type=adapter)
            write_stream(dst_path, src, lambda: desc.render().encode(),
                         int(options.get("grain_size", DEFAULT_GRAIN_SIZE)), progress)
            return
        create_disk(dst_path, src.capacity, dst_type, **options)
        try:
            with open_disk(dst_path) as dst:
                copy_data(src, dst, progress)
        except BaseException:
            # A half-written destination must not pass for a finished one.
            _remove_disk_files(dst_path, dst_type, src.capacity, options)
            raise


def copy_data(src: BlockDevice, dst: BlockDevice, progress: Progress | None = None) -> None:
    """Copy ``src``'s data into ``dst`` (which reads as zeros), skipping zero runs."""
    total = src.capacity
    for lba, count in src.data_ranges():
        for start in range(lba, lba + count, CHUNK_SECTORS):
            n = min(CHUNK_SECTORS, lba + count - start)
            data = src.read(start, n)
            for offset in range(0, n, SKIP_SECTORS):
                piece = data[offset * 512:(offset + SKIP_SECTORS) * 512]
                if piece.count(0) != len(piece):
                    dst.write(start + offset, piece)
            if progress:
                progress(start + n, total)
    dst.flush()


def _remove_disk_files(path: str, disk_type: str, capacity: int, options: dict[str, int | str]) -> None:
    """Remove the files create_disk made for this destination (and only those)."""
    files = [path]
    if disk_type != RAW:
        files += extent_paths(path, disk_type, capacity, int(options.get("extent_sectors", SPLIT_EXTENT_SECTORS)))
    for file in files:
        if os.path.exists(file):
            os.unlink(file)
