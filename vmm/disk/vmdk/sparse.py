"""Hosted sparse extents: the 512-byte header, the grain directory and the grain tables.

Source: VMware Virtual Disk Format 1.1, "Hosted Sparse Extents"; qemu block/vmdk.c
(VMDK4Header). Every field read from a file is checked here, once, against the file size,
so the rest of the code never reads outside the file on the word of a corrupt header.
"""

from __future__ import annotations

import os
import struct
from array import array
from dataclasses import dataclass

from vmm.disk.base import SECTOR_SIZE, write_all
from vmm.errors import DiskError

SPARSE_MAGIC = 0x564D444B  # "KDMV" on disk
GD_AT_END = 0xFFFFFFFFFFFFFFFF

FLAG_VALID_NEWLINE_DETECTOR = 1 << 0
FLAG_USE_REDUNDANT_GD = 1 << 1
FLAG_ZEROED_GRAIN_GTE = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
KNOWN_FLAGS = (
    FLAG_VALID_NEWLINE_DETECTOR | FLAG_USE_REDUNDANT_GD | FLAG_ZEROED_GRAIN_GTE | FLAG_COMPRESSED | FLAG_MARKERS
)
INCOMPATIBLE_FLAGS = 0xFFFF0000

COMPRESSION_NONE = 0
COMPRESSION_DEFLATE = 1
NEWLINE_CHARS = b"\n \r\n"

DEFAULT_GRAIN_SIZE = 128  # sectors: 64 KiB
DEFAULT_GTES_PER_GT = 512
MAX_GRAIN_SIZE = 1 << 17  # 64 MiB grains: far beyond anything VMware or qemu writes
MAX_CAPACITY = 1 << 41  # sectors: 1 PiB
MAX_GRAIN_SECTOR = 0xFFFFFFFF  # GT entries are 32-bit sector numbers: a sparse file ends below 2 TiB

#: GT entry meaning "this grain reads as zeros" (version >= 2 with FLAG_ZEROED_GRAIN_GTE).
GTE_ZERO_GRAIN = 1

_HEADER = struct.Struct("<IIIQQQQIQQQB4sH433x")
assert _HEADER.size == SECTOR_SIZE


def sectors_for(nbytes: int) -> int:
    return -(-nbytes // SECTOR_SIZE)


@dataclass
class SparseHeader:
    """The header fields, snake_case for the spec's names (grainSize → grain_size, ...)."""

    version: int = 1
    flags: int = FLAG_VALID_NEWLINE_DETECTOR | FLAG_USE_REDUNDANT_GD
    capacity: int = 0
    grain_size: int = DEFAULT_GRAIN_SIZE
    descriptor_offset: int = 0
    descriptor_size: int = 0
    num_gtes_per_gt: int = DEFAULT_GTES_PER_GT
    rgd_offset: int = 0
    gd_offset: int = 0
    overhead: int = 0
    unclean_shutdown: int = 0
    compress_algorithm: int = COMPRESSION_NONE

    @property
    def grain_bytes(self) -> int:
        return self.grain_size * SECTOR_SIZE

    @property
    def num_grains(self) -> int:
        return -(-self.capacity // self.grain_size)

    @property
    def num_gts(self) -> int:
        return -(-self.num_grains // self.num_gtes_per_gt)

    @property
    def gt_sectors(self) -> int:
        return sectors_for(self.num_gtes_per_gt * 4)

    @property
    def gd_sectors(self) -> int:
        return sectors_for(self.num_gts * 4)

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)

    @property
    def has_markers(self) -> bool:
        return bool(self.flags & FLAG_MARKERS)

    @property
    def zeroed_grain_gte(self) -> bool:
        return self.version >= 2 and bool(self.flags & FLAG_ZEROED_GRAIN_GTE)

    def pack(self) -> bytes:
        return _HEADER.pack(
            SPARSE_MAGIC,
            self.version,
            self.flags,
            self.capacity,
            self.grain_size,
            self.descriptor_offset,
            self.descriptor_size,
            self.num_gtes_per_gt,
            self.rgd_offset,
            self.gd_offset,
            self.overhead,
            self.unclean_shutdown,
            NEWLINE_CHARS,
            self.compress_algorithm,
        )

    @classmethod
    def parse(cls, data: bytes, name: str) -> SparseHeader:
        """Decode and check the fields that do not depend on the file size."""
        where = f"{name}: sparse header"
        if len(data) < _HEADER.size:
            raise DiskError(f"{where}: truncated ({len(data)} of {_HEADER.size} bytes)")
        (
            magic,
            version,
            flags,
            capacity,
            grain_size,
            desc_offset,
            desc_size,
            gtes,
            rgd_offset,
            gd_offset,
            overhead,
            unclean,
            newline,
            compress,
        ) = _HEADER.unpack_from(data)
        if magic != SPARSE_MAGIC:
            raise DiskError(f"{where}: bad magic {data[:4]!r} (expected b'KDMV')")
        if version not in (1, 2, 3):
            raise DiskError(f"{where}: version {version} is not 1, 2 or 3")
        if flags & INCOMPATIBLE_FLAGS & ~KNOWN_FLAGS:
            raise DiskError(f"{where}: flags {flags:#x} have incompatible bits vmm does not know")
        if flags & FLAG_VALID_NEWLINE_DETECTOR and newline != NEWLINE_CHARS:
            raise DiskError(f"{where}: newline test bytes {newline!r} are damaged (file transferred as text?)")
        if grain_size < 1 or grain_size & (grain_size - 1) or grain_size > MAX_GRAIN_SIZE:
            raise DiskError(f"{where}: grainSize {grain_size} is not a power of two up to {MAX_GRAIN_SIZE}")
        if not 1 <= gtes <= 1 << 16:
            raise DiskError(f"{where}: numGTEsPerGT {gtes} is out of range 1..65536")
        if capacity > MAX_CAPACITY:
            raise DiskError(f"{where}: capacity {capacity} sectors is beyond {MAX_CAPACITY}")
        if overhead > MAX_GRAIN_SECTOR:
            raise DiskError(
                f"{where}: overHead {overhead} sectors is beyond what a grain table can address ({MAX_GRAIN_SECTOR})"
            )
        if compress not in (COMPRESSION_NONE, COMPRESSION_DEFLATE):
            raise DiskError(f"{where}: compressAlgorithm {compress} is unknown (1 = deflate)")
        if flags & FLAG_COMPRESSED and compress != COMPRESSION_DEFLATE:
            raise DiskError(f"{where}: grains are compressed but compressAlgorithm is {compress}")
        return cls(
            version,
            flags,
            capacity,
            grain_size,
            desc_offset,
            desc_size,
            gtes,
            rgd_offset,
            gd_offset,
            overhead,
            unclean,
            compress,
        )

    def check_layout(self, name: str, file_size: int) -> None:
        """Check that the descriptor, GD and RGD lie inside a file of ``file_size`` bytes."""
        where = f"{name}: sparse header"
        if self.descriptor_offset:
            _check_area(where, "descriptorOffset", self.descriptor_offset, self.descriptor_size, file_size)
        _check_area(where, "gdOffset", self.gd_offset, self.gd_sectors, file_size)
        if self.flags & FLAG_USE_REDUNDANT_GD and self.rgd_offset:
            _check_area(where, "rgdOffset", self.rgd_offset, self.gd_sectors, file_size)
        if self.gd_offset == 0 and self.num_gts:
            raise DiskError(f"{where}: gdOffset is 0")


def _check_area(where: str, field_name: str, sector: int, count: int, file_size: int) -> None:
    if (sector + count) * SECTOR_SIZE > file_size:
        raise DiskError(f"{where}: {field_name} {sector} (+{count} sectors) lies outside the file ({file_size} bytes)")


def read_header(fd: int, name: str) -> SparseHeader:
    return SparseHeader.parse(os.pread(fd, min(SECTOR_SIZE, os.fstat(fd).st_size), 0), name)


@dataclass
class SparseLayout:
    """Where a new sparse extent puts its metadata: header | descriptor | RGD | RGTs | GD | GTs."""

    header: SparseHeader

    @classmethod
    def plan(
        cls,
        capacity: int,
        grain_size: int = DEFAULT_GRAIN_SIZE,
        descriptor_size: int = 0,
        version: int = 1,
        flags: int = FLAG_VALID_NEWLINE_DETECTOR | FLAG_USE_REDUNDANT_GD,
        gtes_per_gt: int = DEFAULT_GTES_PER_GT,
    ) -> SparseLayout:
        h = SparseHeader(
            version=version, flags=flags, capacity=capacity, grain_size=grain_size, num_gtes_per_gt=gtes_per_gt
        )
        h.descriptor_offset = 1 if descriptor_size else 0
        h.descriptor_size = descriptor_size
        gt_area = h.num_gts * h.gt_sectors
        h.rgd_offset = 1 + descriptor_size
        h.gd_offset = h.rgd_offset + h.gd_sectors + gt_area
        end = h.gd_offset + h.gd_sectors + gt_area
        h.overhead = -(-end // grain_size) * grain_size
        return cls(h)

    def metadata(self, descriptor: bytes = b"") -> bytes:
        """The whole metadata area (overhead sectors) with every GT and RGT preallocated."""
        h = self.header
        out = bytearray(h.overhead * SECTOR_SIZE)
        out[:SECTOR_SIZE] = h.pack()
        if descriptor:
            if len(descriptor) > h.descriptor_size * SECTOR_SIZE:
                raise DiskError(f"descriptor of {len(descriptor)} bytes does not fit {h.descriptor_size} sectors")
            out[SECTOR_SIZE : SECTOR_SIZE + len(descriptor)] = descriptor
        for gd in (h.rgd_offset, h.gd_offset):
            first_gt = gd + h.gd_sectors
            entries = array("I", (first_gt + i * h.gt_sectors for i in range(h.num_gts)))
            raw = entries.tobytes() if _LITTLE else _swapped(entries)
            out[gd * SECTOR_SIZE : gd * SECTOR_SIZE + len(raw)] = raw
        return bytes(out)


_LITTLE = array("I", [1]).tobytes() == b"\x01\0\0\0"


def _swapped(a: array) -> bytes:
    b = array(a.typecode, a)
    b.byteswap()
    return b.tobytes()


def load_u32s(fd: int, sector: int, count: int) -> array:
    a = array("I")
    a.frombytes(os.pread(fd, count * 4, sector * SECTOR_SIZE))
    if not _LITTLE:
        a.byteswap()
    return a


class GrainTables:
    """The GD and its GTs (plus the redundant copies) of one sparse extent, cached in memory.

    ``entry(grain)`` gives a GT entry; ``set_entry`` writes the GT entry, then the RGT entry
    (the order VMware documents for crash consistency). GTs are loaded lazily and checked to
    lie inside the file before they are read.
    """

    def __init__(self, fd: int, header: SparseHeader, name: str, file_size: int) -> None:
        self.fd = fd
        self.h = header
        self.name = name
        self.file_size = file_size
        self.gd = load_u32s(fd, header.gd_offset, header.num_gts) if header.num_gts else array("I")
        use_rgd = header.flags & FLAG_USE_REDUNDANT_GD and header.rgd_offset and not header.compressed
        self.rgd = load_u32s(fd, header.rgd_offset, header.num_gts) if use_rgd else None
        self._gts: dict[int, array] = {}

    def gt(self, index: int) -> array | None:
        """GT ``index`` or None when its GD entry is 0 (no table: every grain unallocated)."""
        table = self._gts.get(index)
        if table is None:
            sector = self.gd[index]
            if sector == 0:
                return None
            self._check_table(sector, f"grain directory entry {index}")
            table = load_u32s(self.fd, sector, self.h.num_gtes_per_gt)
            self._gts[index] = table
        return table

    def _check_table(self, sector: int, what: str) -> None:
        if (sector + self.h.gt_sectors) * SECTOR_SIZE > self.file_size:
            raise DiskError(
                f"{self.name}: {what}: grain table at sector {sector} lies outside the file ({self.file_size} bytes)"
            )

    def entry(self, grain: int) -> int:
        table = self.gt(grain // self.h.num_gtes_per_gt)
        return 0 if table is None else table[grain % self.h.num_gtes_per_gt]

    def set_entry(self, grain: int, value: int) -> None:
        index, slot = divmod(grain, self.h.num_gtes_per_gt)
        table = self.gt(index)
        if table is None:
            table = self._allocate_table(index)
        packed = struct.pack("<I", value)
        write_all(self.fd, packed, self.gd[index] * SECTOR_SIZE + slot * 4, self.name)
        table[slot] = value  # only once the file says so: a failed write leaves the old mapping
        if self.rgd is not None and self.rgd[index]:
            write_all(self.fd, packed, self.rgd[index] * SECTOR_SIZE + slot * 4, self.name)

    def _allocate_table(self, index: int) -> array:
        """Append a zeroed GT (and RGT) for a GD entry that is 0, then point the GD (and RGD) at it."""
        size = self.h.gt_sectors
        sector = sectors_for(self.file_size)
        blank = bytes(size * SECTOR_SIZE)
        write_all(self.fd, blank, sector * SECTOR_SIZE, self.name)
        tables = [(self.gd, self.h.gd_offset, sector)]
        if self.rgd is not None:
            write_all(self.fd, blank, (sector + size) * SECTOR_SIZE, self.name)
            tables.append((self.rgd, self.h.rgd_offset, sector + size))
        self.file_size = (sector + size * len(tables)) * SECTOR_SIZE
        for directory, gd_offset, gt_sector in tables:
            directory[index] = gt_sector
            write_all(self.fd, struct.pack("<I", gt_sector), gd_offset * SECTOR_SIZE + index * 4, self.name)
        table = array("I", bytes(self.h.num_gtes_per_gt * 4))
        self._gts[index] = table
        return table

    def redundant_table(self, index: int) -> array | None:
        if self.rgd is None or self.rgd[index] == 0:
            return None
        self._check_table(self.rgd[index], f"redundant grain directory entry {index}")
        return load_u32s(self.fd, self.rgd[index], self.h.num_gtes_per_gt)
