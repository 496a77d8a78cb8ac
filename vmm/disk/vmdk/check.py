"""Consistency check of a VMDK chain: what ``vmm disk check`` reports.

For every sparse extent: the GD and RGD lie in the file; every GT and RGT lies in the file
and the two copies agree; every allocated grain lies in the file, past the metadata, and
no two grains, tables or directories overlap. Space past the last used sector that no
table references (a write interrupted after the grain and before its GT entry) is leaked,
not damage. Flat extent files must be as long as their extents.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from vmm.confine import FileScope
from vmm.disk.base import SECTOR_SIZE
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.disk.vmdk.extents import FlatExtent, SparseExtent
from vmm.disk.vmdk.sparse import FLAG_USE_REDUNDANT_GD, GTE_ZERO_GRAIN, load_u32s, sectors_for
from vmm.errors import DiskError


@dataclass
class CheckReport:
    path: str
    errors: list[str] = field(default_factory=list)
    leaked_bytes: int = 0
    allocated_grains: int = 0
    raw: bool = False  # a raw image: nothing to check

    @property
    def ok(self) -> bool:
        return not self.errors


def check_disk(path: str | os.PathLike[str], scope: FileScope | None = None) -> CheckReport:
    """Check ``path`` and its parent chain; errors that stop the disk from opening are reported too."""
    report = CheckReport(os.fspath(path))
    from vmm.disk.open import is_vmdk

    try:
        if not is_vmdk(path):
            if os.fspath(path).lower().endswith(".vmdk"):
                report.errors.append(f"{os.fspath(path)}: not a VMDK (no sparse header, no descriptor): "
                                     "vmm would read it as a raw image")  # fmt: skip
            else:
                report.raw = True  # a raw image has no metadata to be inconsistent
            return report

        disk = VmdkDisk(path, read_only=True, scope=scope)
    except DiskError as exc:
        report.errors.append(str(exc))
        return report
    with disk:
        layer: VmdkDisk | None = disk
        while layer is not None:
            for extent in layer.extents:
                if isinstance(extent, SparseExtent):
                    _check_sparse(extent, report)
                elif isinstance(extent, FlatExtent):
                    need = (extent.offset + extent.sectors) * SECTOR_SIZE
                    if extent.file_size < need:
                        report.errors.append(
                            f"{extent.path}: flat extent file is {extent.file_size} bytes, its extent needs {need}"
                        )
            layer = layer.parent
    return report


def _check_sparse(extent: SparseExtent, report: CheckReport) -> None:
    h = extent.header
    name = extent.path
    fd = extent.fd
    # Whole sectors only: a table that runs past the end of the file is damage.
    file_sectors = os.fstat(fd).st_size // SECTOR_SIZE
    regions: list[tuple[int, int, str]] = [(0, 1, "header")]
    if h.descriptor_offset:
        regions.append((h.descriptor_offset, h.descriptor_offset + h.descriptor_size, "descriptor"))

    def table_area(sector: int, count: int, what: str) -> bool:
        if sector + count > file_sectors:
            report.errors.append(f"{name}: {what} at sector {sector} lies outside the file ({file_sectors} sectors)")
            return False
        regions.append((sector, sector + count, what))
        return True

    if not table_area(h.gd_offset, h.gd_sectors, "grain directory"):
        return
    gd = load_u32s(fd, h.gd_offset, h.num_gts)
    rgd = None
    if h.flags & FLAG_USE_REDUNDANT_GD and h.rgd_offset and not h.compressed:
        if table_area(h.rgd_offset, h.gd_sectors, "redundant grain directory"):
            rgd = load_u32s(fd, h.rgd_offset, h.num_gts)
    gtes = h.num_gtes_per_gt
    seen: dict[int, int] = {}
    for index in range(h.num_gts):
        gt = rgt = None
        if gd[index] in seen:
            report.errors.append(
                f"{name}: grain directory entries {seen[gd[index]]} and {index} share the "
                f"grain table at sector {gd[index]}"
            )
            continue
        if gd[index]:
            seen[gd[index]] = index
        if gd[index] and table_area(gd[index], h.gt_sectors, f"grain table {index}"):
            gt = load_u32s(fd, gd[index], gtes)
        if rgd is not None:
            if bool(rgd[index]) != bool(gd[index]):
                report.errors.append(
                    f"{name}: grain directory entry {index} is {gd[index]} but the redundant one is {rgd[index]}"
                )
            if rgd[index] and table_area(rgd[index], h.gt_sectors, f"redundant grain table {index}"):
                rgt = load_u32s(fd, rgd[index], gtes)
        if gt is None:
            continue
        if rgt is not None and gt != rgt:
            slot = next(i for i in range(gtes) if gt[i] != rgt[i])
            report.errors.append(
                f"{name}: grain table {index} entry {slot} is {gt[slot]} but the redundant table says {rgt[slot]}"
            )
        for slot, entry in enumerate(gt):
            grain = index * gtes + slot
            if entry == 0 or (entry == GTE_ZERO_GRAIN and h.zeroed_grain_gte):
                continue
            if grain * h.grain_size >= h.capacity:
                report.errors.append(f"{name}: grain table {index} entry {slot} is set past the capacity")
                continue
            length = _grain_sectors(fd, h, entry, file_sectors, grain, name, report)
            if length is None:
                continue
            if entry < h.overhead:
                report.errors.append(
                    f"{name}: grain {grain} at sector {entry} lies inside the metadata (overHead {h.overhead})"
                )
            elif entry + length > file_sectors:
                report.errors.append(
                    f"{name}: grain {grain} at sector {entry} runs past the end of the file ({file_sectors} sectors)"
                )
            regions.append((entry, entry + length, f"grain {grain}"))
            report.allocated_grains += 1
    regions.sort()
    used_end = 0
    last: tuple[int, int, str] | None = None
    for region in regions:
        if last is not None and region[0] < last[1]:
            report.errors.append(
                f"{name}: {region[2]} (sectors {region[0]}..{region[1]}) overlaps "
                f"{last[2]} (sectors {last[0]}..{last[1]})"
            )
        if last is None or region[1] > last[1]:
            last = region
        used_end = max(used_end, region[1])
    if not h.compressed:
        report.leaked_bytes += max(0, file_sectors - max(used_end, h.overhead)) * SECTOR_SIZE


def _grain_sectors(fd: int, h, entry: int, file_sectors: int, grain: int, name: str, report: CheckReport) -> int | None:
    """Sectors a grain occupies in the file (compressed grains: marker + data, padded)."""
    if not h.compressed:
        return h.grain_size
    if entry >= file_sectors:
        report.errors.append(f"{name}: compressed grain {grain} at sector {entry} lies outside the file")
        return None
    if not h.has_markers:
        return 1
    lba, size = struct.unpack("<QI", os.pread(fd, 12, entry * SECTOR_SIZE))
    if lba != grain * h.grain_size:
        report.errors.append(f"{name}: compressed grain {grain} at sector {entry} says lba {lba}")
    return sectors_for(12 + size)
