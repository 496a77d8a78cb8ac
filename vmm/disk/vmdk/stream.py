"""streamOptimized extents: deflate-compressed grains, markers and the footer.

Source: VMware Virtual Disk Format 1.1, "Stream-Optimized Compressed Sparse Extents";
qemu block/vmdk.c (vmdk_read_extent, the footer read at EOF-1536). vmm reads both
VMware's layout (GD at the end, found through the footer) and qemu's (GD/GTs at the front,
grains appended), and writes VMware's, in one pass, from any BlockDevice.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator

from vmm.disk.base import SECTOR_SIZE, BlockDevice
from vmm.disk.vmdk.files import new_file
from vmm.disk.vmdk.sparse import (
    COMPRESSION_DEFLATE,
    FLAG_COMPRESSED,
    FLAG_MARKERS,
    FLAG_VALID_NEWLINE_DETECTOR,
    GD_AT_END,
    SparseHeader,
)
from vmm.errors import DiskError

MARKER_EOS = 0
MARKER_GT = 1
MARKER_GD = 2
MARKER_FOOTER = 3

_GRAIN_MARKER = struct.Struct("<QI")  # lba, compressed size
_MARKER = struct.Struct("<QII")  # numSectors, size (0), type

STREAM_DESCRIPTOR_SECTORS = 20


def read_footer(fd: int, name: str, file_size: int) -> SparseHeader:
    """The header copy before the end-of-stream marker, for files whose gdOffset is GD_AT_END."""
    if file_size < 3 * SECTOR_SIZE:
        raise DiskError(f"{name}: stream footer: file of {file_size} bytes is too short for a footer")
    tail = os.pread(fd, 3 * SECTOR_SIZE, file_size - 3 * SECTOR_SIZE)
    _, _, marker_type = _MARKER.unpack_from(tail, 0)
    if marker_type != MARKER_FOOTER:
        raise DiskError(f"{name}: stream footer: footer marker type is {marker_type}, expected {MARKER_FOOTER}")
    header = SparseHeader.parse(tail[SECTOR_SIZE : 2 * SECTOR_SIZE], f"{name} (footer)")
    if header.gd_offset == GD_AT_END:
        raise DiskError(f"{name}: stream footer: gdOffset is still GD_AT_END")
    return header


def read_compressed_grain(
    fd: int, sector: int, header: SparseHeader, file_size: int, name: str, expected_lba: int
) -> bytes:
    """Inflate the grain stored at ``sector``; always exactly one grain of bytes."""
    offset = sector * SECTOR_SIZE
    grain_bytes = header.grain_bytes
    where = f"{name}: compressed grain at sector {sector}"
    if header.has_markers:
        head = os.pread(fd, _GRAIN_MARKER.size, offset)
        if len(head) < _GRAIN_MARKER.size:
            raise DiskError(f"{where}: lies outside the file ({file_size} bytes)")
        lba, size = _GRAIN_MARKER.unpack(head)
        if lba != expected_lba:
            raise DiskError(f"{where}: grain marker says lba {lba}, the grain table says {expected_lba}")
        if offset + _GRAIN_MARKER.size + size > file_size:
            raise DiskError(f"{where}: compressed size {size} runs past the end of the file")
        payload = os.pread(fd, size, offset + _GRAIN_MARKER.size)
    else:
        # No marker: the deflate stream ends itself; a grain compresses to less than 2 grains.
        payload = os.pread(fd, min(2 * grain_bytes + 1024, file_size - offset), offset)
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload, grain_bytes)
    except zlib.error as exc:
        raise DiskError(f"{where}: cannot inflate: {exc}") from None
    if len(data) < grain_bytes:
        # qemu stores the last, partial grain of a disk short; the rest reads as zeros.
        data = data.ljust(grain_bytes, b"\0")
    return data


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % SECTOR_SIZE)


def _marker(num_sectors: int, marker_type: int) -> bytes:
    return _pad(_MARKER.pack(num_sectors, 0, marker_type))


def write_stream(
    path: str,
    source: BlockDevice,
    descriptor_text: Callable[[], bytes],
    grain_size: int = 128,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``source`` as a VMware-layout streamOptimized file at ``path`` (which must not exist).

    Grains that are all zeros are left out (their GT entries stay 0). ``descriptor_text``
    gives the embedded descriptor, padded with NULs to fit STREAM_DESCRIPTOR_SECTORS.
    """
    capacity = source.capacity
    header = SparseHeader(
        version=3,
        flags=FLAG_VALID_NEWLINE_DETECTOR | FLAG_COMPRESSED | FLAG_MARKERS,
        capacity=capacity,
        grain_size=grain_size,
        descriptor_offset=1,
        descriptor_size=STREAM_DESCRIPTOR_SECTORS,
        gd_offset=GD_AT_END,
        compress_algorithm=COMPRESSION_DEFLATE,
    )
    header.overhead = -(-(1 + STREAM_DESCRIPTOR_SECTORS) // grain_size) * grain_size
    desc = descriptor_text()
    if len(desc) > STREAM_DESCRIPTOR_SECTORS * SECTOR_SIZE:
        raise DiskError(f"{path}: descriptor of {len(desc)} bytes does not fit the stream header area")
    gtes = header.num_gtes_per_gt
    gd = [0] * header.num_gts
    with new_file(path) as f:
        f.write(header.pack())
        f.write(desc.ljust(STREAM_DESCRIPTOR_SECTORS * SECTOR_SIZE, b"\0"))
        f.write(bytes((header.overhead - 1 - STREAM_DESCRIPTOR_SECTORS) * SECTOR_SIZE))
        position = header.overhead
        zero = bytes(header.grain_bytes)
        for table_index, slots in _grains_with_data(source, grain_size, gtes):
            table = [0] * gtes
            for slot in slots:
                lba = (table_index * gtes + slot) * grain_size
                count = min(grain_size, capacity - lba)
                data = source.read(lba, count)
                if data != zero[: len(data)]:
                    compressed = zlib.compress(data.ljust(header.grain_bytes, b"\0"), 6)
                    record = _pad(_GRAIN_MARKER.pack(lba, len(compressed)) + compressed)
                    f.write(record)
                    table[slot] = position
                    position += len(record) // SECTOR_SIZE
                if progress:
                    progress(lba + count, capacity)
            if any(table):
                f.write(_marker(header.gt_sectors, MARKER_GT))
                f.write(_pad(struct.pack(f"<{gtes}I", *table)))
                gd[table_index] = position + 1
                position += 1 + header.gt_sectors
        f.write(_marker(header.gd_sectors, MARKER_GD))
        f.write(_pad(struct.pack(f"<{len(gd)}I", *gd)))
        gd_offset = position + 1
        position += 1 + header.gd_sectors
        footer = SparseHeader(**{**header.__dict__, "gd_offset": gd_offset})
        f.write(_marker(1, MARKER_FOOTER))
        f.write(footer.pack())
        f.write(_marker(0, MARKER_EOS))


def _grains_with_data(source: BlockDevice, grain_size: int, gtes: int) -> Iterator[tuple[int, list[int]]]:
    """(GT index, [slots]) for the grains that ``source.data_ranges()`` says may hold data."""
    current, slots = -1, []
    last = -1
    for lba, count in source.data_ranges():
        for grain in range(max(lba // grain_size, last + 1), (lba + count - 1) // grain_size + 1):
            table, slot = divmod(grain, gtes)
            if table != current:
                if slots:
                    yield current, slots
                current, slots = table, []
            slots.append(slot)
            last = grain
    if slots:
        yield current, slots
