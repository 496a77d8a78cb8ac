"""VmdkDisk: a VMDK (descriptor + extents, optionally a delta over a parent chain) as a BlockDevice.

Source: VMware Virtual Disk Format 1.1 ("The Descriptor File", "Delta Links"). A child
names its parent by ``parentFileNameHint`` and pins the parent's content by ``parentCID``;
vmm refuses a chain whose CIDs disagree, as VMware does. The CID is replaced on the first
write after each open, before any data is written, so a child of this disk can tell.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator

from vmm.confine import FileScope, ScopeRefusal, printable
from vmm.disk.base import SECTOR_SIZE, BlockDevice, write_all
from vmm.disk.vmdk import DESCRIPTOR_MAGIC, MAGIC_BYTES
from vmm.disk.vmdk.descriptor import (
    MONOLITHIC_SPARSE,
    NO_PARENT_CID,
    Descriptor,
    ExtentLine,
    new_cid,
    parse_descriptor,
)
from vmm.disk.vmdk.extents import Backing, Extent, SparseExtent, open_extent
from vmm.disk.vmdk.files import write_file_atomic
from vmm.disk.vmdk.sparse import SparseHeader
from vmm.errors import DiskError

MAX_DESCRIPTOR_FILE = 1 << 20
# A child's DDB key naming the CID a commit in progress gives its parent (vmm's own key;
# VMware and QEMU ignore DDB keys they do not know).
PENDING_PARENT_CID_KEY = "ddb.vmm.commitParentCID"
MAX_CHAIN_DEPTH = 64


def read_descriptor_source(path: str, fd: int) -> tuple[str, SparseHeader | None]:
    """The descriptor text of a VMDK file and, for a sparse file, its header."""
    head = os.pread(fd, min(SECTOR_SIZE, os.fstat(fd).st_size), 0)
    if head[:4] == MAGIC_BYTES:
        header = SparseHeader.parse(head, path)
        if not header.descriptor_offset or not header.descriptor_size:
            return "", header
        size = os.fstat(fd).st_size
        if (header.descriptor_offset + header.descriptor_size) * SECTOR_SIZE > size:
            raise DiskError(
                f"{path}: sparse header: descriptorOffset {header.descriptor_offset} "
                f"(+{header.descriptor_size} sectors) lies outside the file ({size} bytes)"
            )
        raw = os.pread(fd, header.descriptor_size * SECTOR_SIZE, header.descriptor_offset * SECTOR_SIZE)
        return _decode(raw.split(b"\0", 1)[0]), header
    size = os.fstat(fd).st_size
    if size > MAX_DESCRIPTOR_FILE:
        raise DiskError(f"{path}: neither a sparse extent (no KDMV magic) nor a descriptor (file of {size} bytes)")
    raw = os.pread(fd, size, 0).split(b"\0", 1)[0]
    text = _decode(raw)
    if DESCRIPTOR_MAGIC not in text[:200] and "createType" not in text:
        raise DiskError(f"{path}: not a VMDK: no KDMV magic and no '{DESCRIPTOR_MAGIC}'")
    return text, None


def _decode(raw: bytes) -> str:
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class VmdkDisk(BlockDevice):
    """Open ``path`` (a descriptor file or a sparse file with an embedded descriptor).

    ``path`` is the file the user named. The files its descriptor names (extents, the parent
    chain) must lie in its own folder unless ``scope`` (the paths named on the command line,
    whether symlinks may be followed) allows them: see vmm.confine.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        read_only: bool = False,
        *,
        scope: FileScope | None = None,
        _chain: tuple[str, ...] = (),
        _named_by: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        self.directory = os.path.dirname(os.path.abspath(self.path))
        # The files this disk names must lie in its own folder (or be named by the user).
        self.scope = (scope or FileScope(self.directory)).within(self.directory)
        self.extents: list[Extent] = []
        self.parent: VmdkDisk | None = None
        self._fd = -1
        self._cid_refreshed = False
        flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC
        try:
            self._fd = self.scope.open(self.path, flags) if _named_by else os.open(self.path, flags)
        except ScopeRefusal as exc:
            raise DiskError(f"{_named_by}: {exc}") from None
        except FileNotFoundError:
            raise DiskError(f"{printable(self.path)}: no such file") from None
        except OSError as exc:
            raise DiskError(f"{printable(self.path)}: cannot open: {exc.strerror}") from None
        try:
            self._open(_chain)
        except BaseException:
            self.close()
            raise

    def _open(self, chain: tuple[str, ...]) -> None:
        text, self.embedded_header = read_descriptor_source(self.path, self._fd)
        if self.embedded_header is not None and not text.strip():
            # A bare sparse extent (an s001 file, or a descriptor area left empty): read it as itself.
            line = ExtentLine("RW", self.embedded_header.capacity, "SPARSE", os.path.basename(self.path))
            self.descriptor = Descriptor(
                {"version": "1", "CID": f"{new_cid():08x}", "parentCID": "ffffffff", "createType": MONOLITHIC_SPARSE},
                [line],
                {},
            )
            self._descriptor_writable = False
        else:
            self.descriptor = parse_descriptor(text, self.path)
            self._descriptor_writable = True
        me = os.path.realpath(self.path)
        if self.embedded_header is not None:
            # A sparse file is its own one extent, whatever file name its embedded descriptor
            # gives (a renamed monolithicSparse still opens, as in QEMU), and it never opens
            # other files through that descriptor.
            first = next((line for line in self.descriptor.extents if line.type == "SPARSE"), None)
            access = first.access if first is not None else "RW"
            line = ExtentLine(access, self.embedded_header.capacity, "SPARSE", os.path.basename(self.path))
            self.extents.append(open_extent(line, self.directory, self.read_only, os.dup(self._fd)))
        else:
            for line in self.descriptor.extents:
                self.extents.append(
                    open_extent(
                        line,
                        self.directory,
                        self.read_only,
                        None,
                        self.scope,
                        f"{printable(self.path)}: extent {printable(line.filename or '')!r}",
                    )
                )
        self._starts = []
        total = 0
        for extent in self.extents:
            self._starts.append(total)
            total += extent.sectors
        self._capacity = total
        if self.descriptor.parent_cid != NO_PARENT_CID:
            self._open_parent(chain + (me,))

    def _open_parent(self, chain: tuple[str, ...]) -> None:
        hint = self.descriptor.parent_hint or ""
        shown = f"{printable(self.path)}: descriptor: parentFileNameHint {printable(hint)!r}"
        parent_path = os.path.join(self.directory, hint)
        if os.path.realpath(parent_path) in chain:
            raise DiskError(f"{shown} makes a loop in the parent chain")
        if len(chain) >= MAX_CHAIN_DEPTH:
            raise DiskError(f"{printable(self.path)}: parent chain is deeper than {MAX_CHAIN_DEPTH} disks")
        try:
            self.scope.check(parent_path)
        except ScopeRefusal as exc:
            raise DiskError(f"{shown}: {exc}") from None
        if not os.path.exists(parent_path):
            raise DiskError(f"{shown}: parent disk is missing")
        self.parent = VmdkDisk(parent_path, read_only=True, scope=self.scope, _chain=chain, _named_by=shown)
        if self.parent.cid not in (self.descriptor.parent_cid, self.pending_parent_cid):
            raise DiskError(
                f"{self.path}: descriptor: parentCID {self.descriptor.parent_cid:08x} does not match "
                f"CID {self.parent.cid:08x} of parent {parent_path} (the parent changed since)"
            )

    # --- BlockDevice -----------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def cid(self) -> int:
        return self.descriptor.cid

    @property
    def create_type(self) -> str:
        return self.descriptor.create_type

    def _pieces(self, lba: int, count: int) -> Iterator[tuple[int, Extent, int, int]]:
        """(extent start, extent, sector in extent, count) for a range, in order."""
        index = bisect.bisect_right(self._starts, lba) - 1
        while count:
            start = self._starts[index]
            extent = self.extents[index]
            n = min(count, start + extent.sectors - lba)
            if n > 0:
                yield start, extent, lba - start, n
                lba += n
                count -= n
            index += 1

    def _backing(self, start: int) -> Backing:
        def backing(sector: int, count: int) -> bytes:
            return self.backing_read(start + sector, count)

        return backing

    def backing_read(self, lba: int, count: int) -> bytes:
        """What the parent chain holds at ``lba`` (zeros with no parent, or past the parent's end)."""
        if self.parent is None or lba >= self.parent.capacity:
            return bytes(count * SECTOR_SIZE)
        n = min(count, self.parent.capacity - lba)
        data = self.parent.read(lba, n)
        return data if n == count else data + bytes((count - n) * SECTOR_SIZE)

    def read(self, lba: int, count: int) -> bytes:
        self.check_range(lba, count)
        parts = [
            extent.read(sector, n, self._backing(start)) if extent.access != "NOACCESS" else self._no_access(extent)
            for start, extent, sector, n in self._pieces(lba, count)
        ]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _no_access(self, extent: Extent) -> bytes:
        raise DiskError(f"{self.path}: extent {extent.filename} is NOACCESS")

    def write(self, lba: int, data: bytes) -> None:
        if self.read_only:
            raise DiskError(f"{self.path}: the disk is open read-only")
        count = self.check_data(data)
        self.check_range(lba, count)
        pieces = list(self._pieces(lba, count))
        for _, extent, _, _ in pieces:
            if getattr(extent, "compressed", False):
                raise DiskError(
                    f"{self.path}: streamOptimized extents are read-only in vmm; "
                    "convert the disk to another type to write it"
                )
            if extent.access != "RW" or extent.read_only:
                raise DiskError(f"{self.path}: extent {extent.filename or extent.kind} is read-only")
        if not self._cid_refreshed:
            self.refresh_cid()
        pos = 0
        for start, extent, sector, n in pieces:
            extent.write(sector, data[pos : pos + n * SECTOR_SIZE], self._backing(start))
            pos += n * SECTOR_SIZE

    def refresh_cid(self) -> None:
        """Give the disk a new CID (VMware does this on the first write after an open)."""
        old = self.descriptor.cid
        cid = new_cid()
        while cid == old:
            cid = new_cid()
        self.descriptor.cid = cid
        self._cid_refreshed = True
        self.write_descriptor()

    def set_parent_cid(self, cid: int) -> None:
        """Re-pin this delta to its parent's current CID (after a commit changed the parent)."""
        self.descriptor.parent_cid = cid
        self.descriptor.ddb.pop(PENDING_PARENT_CID_KEY, None)
        self.write_descriptor()

    @property
    def pending_parent_cid(self) -> int | None:
        """The CID a commit in progress gives the parent (see vmm.disk.vmdk.commit), if any."""
        text = self.descriptor.ddb.get(PENDING_PARENT_CID_KEY)
        try:
            return int(text, 16) if text else None
        except ValueError:
            raise DiskError(
                f"{printable(self.path)}: descriptor: {PENDING_PARENT_CID_KEY} {text!r} is not a CID"
            ) from None

    def begin_commit(self, new_parent_cid: int) -> None:
        """Note in this child, before the parent changes, the CID the parent will get: the chain
        then opens whether the parent still has its old CID or already has the new one."""
        if self.parent is None:
            raise DiskError(f"{self.path}: not a delta disk")
        self.descriptor.parent_cid = self.parent.cid
        self.descriptor.ddb[PENDING_PARENT_CID_KEY] = f"{new_parent_cid:08x}"
        self.write_descriptor()

    def keep_cid(self) -> None:
        """Write without changing the CID (a commit sets the parent's CID itself, last)."""
        self._cid_refreshed = True

    def set_cid(self, cid: int) -> None:
        self.descriptor.cid = cid
        self._cid_refreshed = True
        self.write_descriptor()

    def write_descriptor(self) -> None:
        if not self._descriptor_writable or self.read_only:
            return
        text = self.descriptor.render().encode("utf-8")
        header = self.embedded_header
        if header is not None:
            area = header.descriptor_size * SECTOR_SIZE
            if len(text) > area:
                raise DiskError(
                    f"{self.path}: descriptor of {len(text)} bytes does not fit descriptorSize "
                    f"{header.descriptor_size} sectors"
                )
            write_all(self._fd, text.ljust(area, b"\0"), header.descriptor_offset * SECTOR_SIZE, self.path)
            return
        write_file_atomic(self.path, text)
        # The rename replaced the file: keep a descriptor of the new one.
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)

    def flush(self) -> None:
        for extent in self.extents:
            extent.flush()
        if not self.read_only and self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        for extent in self.extents:
            extent.close()
        self.extents = []
        if self.parent is not None:
            self.parent.close()
            self.parent = None
        if self._fd >= 0:
            if not self.read_only:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    # --- Layers and reports -----------------------------------------------------------------

    def own_ranges(self) -> Iterator[tuple[int, int]]:
        """(lba, count) runs this disk holds itself, not counting its parents."""
        for start, extent in zip(self._starts, self.extents, strict=True):
            for sector, n in extent.own_ranges():
                yield start + sector, n

    def data_ranges(self) -> Iterator[tuple[int, int]]:
        ranges = list(self.own_ranges())
        if self.parent is not None:
            ranges += [
                (lba, min(n, self._capacity - lba)) for lba, n in self.parent.data_ranges() if lba < self._capacity
            ]
            ranges.sort()
        merged: list[tuple[int, int]] = []
        for lba, n in ranges:
            if merged and lba <= merged[-1][0] + merged[-1][1]:
                last_lba, last_n = merged[-1]
                merged[-1] = (last_lba, max(last_n, lba + n - last_lba))
            else:
                merged.append((lba, n))
        return iter(merged)

    def files(self) -> list[str]:
        paths = [self.path]
        for extent in self.extents:
            if extent.path and os.path.realpath(extent.path) != os.path.realpath(self.path):
                paths.append(extent.path)
        return paths

    def chain(self) -> list[str]:
        disk: VmdkDisk | None = self
        out = []
        while disk is not None:
            out.append(disk.path)
            disk = disk.parent
        return out

    def info(self) -> dict[str, object]:
        return {
            "filename": self.path,
            "type": self.create_type,
            "virtual_size": self._capacity * SECTOR_SIZE,
            "disk_size": sum(os.stat(p).st_blocks * 512 for p in self.files()),
            "allocated_size": sum(e.allocated_bytes() for e in self.extents),
            "cid": f"{self.cid:08x}",
            "parent_cid": f"{self.descriptor.parent_cid:08x}",
            "parent": self.parent.path if self.parent else None,
            "extents": [e.describe() for e in self.extents],
            "chain": self.chain(),
        }

    def sparse_extents(self) -> list[SparseExtent]:
        return [e for e in self.extents if isinstance(e, SparseExtent)]
