"""The VMDK text descriptor: header keys, extent lines and the disk database (ddb.*).

Source: VMware Virtual Disk Format 1.1, section "The Descriptor File"; qemu block/vmdk.c
for what qemu-img writes and how it parses (see /work/shared/specs/vmware-files.md).
Rendering follows qemu's quirks: ``CID=`` before ``parentCID=``, no spaces around ``=``
in header keys, a comment line (never a blank one) directly before the extent lines.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from vmm.errors import DiskError

NO_PARENT_CID = 0xFFFFFFFF
RESERVED_CIDS = (0xFFFFFFFF, 0xFFFFFFFE)

MONOLITHIC_SPARSE = "monolithicSparse"
MONOLITHIC_FLAT = "monolithicFlat"
SPLIT_SPARSE = "twoGbMaxExtentSparse"
SPLIT_FLAT = "twoGbMaxExtentFlat"
STREAM_OPTIMIZED = "streamOptimized"

#: createType values vmm opens (extent types FLAT, SPARSE, ZERO, VMFS).
SUPPORTED_CREATE_TYPES = (
    MONOLITHIC_SPARSE,
    MONOLITHIC_FLAT,
    SPLIT_SPARSE,
    SPLIT_FLAT,
    STREAM_OPTIMIZED,
    "vmfs",
    "vmfsPreallocated",
    "vmfsEagerZeroedThick",
    "vmfsThin",
    "custom",
)
#: createType values VMware documents that vmm does not open.
UNSUPPORTED_CREATE_TYPES = (
    "fullDevice",
    "partitionedDevice",
    "vmfsRaw",
    "vmfsRDM",
    "vmfsRDMP",
    "vmfsSparse",
    "seSparse",
)

EXTENT_ACCESS = ("RW", "RDONLY", "NOACCESS")
EXTENT_TYPES = ("FLAT", "SPARSE", "ZERO", "VMFS")
_EXTENT_RE = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')


def new_cid() -> int:
    """A random content ID, never one of the values VMware reserves."""
    while True:
        cid = random.getrandbits(32)
        if cid not in RESERVED_CIDS:
            return cid


@dataclass
class ExtentLine:
    access: str  # RW, RDONLY, NOACCESS
    sectors: int
    type: str  # FLAT, SPARSE, ZERO, VMFS
    filename: str | None = None
    offset: int = 0  # sectors into a FLAT file

    def render(self) -> str:
        if self.filename is None:
            return f"{self.access} {self.sectors} {self.type}"
        text = f'{self.access} {self.sectors} {self.type} "{self.filename}"'
        if self.type in ("FLAT", "VMFS"):
            text += f" {self.offset}"
        return text


@dataclass
class Descriptor:
    """A parsed descriptor. ``header`` keeps every non-ddb key in file order (values unquoted)."""

    header: dict[str, str] = field(default_factory=dict)
    extents: list[ExtentLine] = field(default_factory=list)
    ddb: dict[str, str] = field(default_factory=dict)

    @property
    def create_type(self) -> str:
        return self.header.get("createType", "")

    @property
    def cid(self) -> int:
        return int(self.header["CID"], 16)

    @cid.setter
    def cid(self, value: int) -> None:
        self.header["CID"] = f"{value:08x}"

    @property
    def parent_cid(self) -> int:
        return int(self.header.get("parentCID", "ffffffff"), 16)

    @parent_cid.setter
    def parent_cid(self, value: int) -> None:
        self.header["parentCID"] = f"{value:08x}"

    @property
    def parent_hint(self) -> str | None:
        return self.header.get("parentFileNameHint")

    @property
    def capacity(self) -> int:
        return sum(e.sectors for e in self.extents)

    def render(self) -> str:
        lines = ["# Disk DescriptorFile"]
        for key, value in self.header.items():
            if key in ("version", "CID", "parentCID"):
                lines.append(f"{key}={value}")
            else:
                lines.append(f'{key}="{value}"')
        lines += ["", "# Extent description"]
        lines += [e.render() for e in self.extents]
        lines += ["", "# The Disk Data Base", "#DDB", ""]
        lines += [f'{key} = "{value}"' for key, value in self.ddb.items()]
        return "\n".join(lines) + "\n"


def new_descriptor(
    create_type: str,
    extents: list[ExtentLine],
    *,
    parent_cid: int = NO_PARENT_CID,
    parent_hint: str | None = None,
    adapter_type: str = "ide",
    cid: int | None = None,
) -> Descriptor:
    header = {
        "version": "1",
        "encoding": "UTF-8",
        "CID": f"{new_cid() if cid is None else cid:08x}",
        "parentCID": f"{parent_cid:08x}",
        "isNativeSnapshot": "no",
        "createType": create_type,
    }
    if parent_hint is not None:
        header["parentFileNameHint"] = parent_hint
    capacity = sum(e.sectors for e in extents)
    cylinders, heads, sectors = geometry(capacity)
    ddb = {
        "ddb.virtualHWVersion": "4",
        "ddb.adapterType": adapter_type,
        "ddb.geometry.cylinders": str(cylinders),
        "ddb.geometry.heads": str(heads),
        "ddb.geometry.sectors": str(sectors),
    }
    return Descriptor(header, list(extents), ddb)


def geometry(capacity: int) -> tuple[int, int, int]:
    """CHS geometry as qemu and VMware write it for IDE: 16 heads, 63 sectors per track."""
    return min(capacity // (16 * 63), 16383), 16, 63


def parse_descriptor(text: str, name: str) -> Descriptor:
    """Parse and check a descriptor; ``name`` (the file) prefixes every error."""
    desc = Descriptor()
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.split(None, 1)[0] in EXTENT_ACCESS:
            desc.extents.append(_parse_extent(line, name, number))
            continue
        if "=" not in line:
            raise DiskError(f"{name}: descriptor line {number}: cannot parse {line[:60]!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not key:
            raise DiskError(f"{name}: descriptor line {number}: a key is missing before '='")
        (desc.ddb if key.startswith("ddb.") else desc.header)[key] = value
    _validate(desc, name)
    return desc


def _parse_extent(line: str, name: str, number: int) -> ExtentLine:
    match = _EXTENT_RE.match(line)
    if not match:
        raise DiskError(f"{name}: descriptor line {number}: malformed extent line {line[:80]!r}")
    access, sectors, kind, filename, offset = match.groups()
    kind = kind.upper()
    where = f"{name}: descriptor line {number}: extent"
    if kind not in EXTENT_TYPES:
        raise DiskError(f"{where} type {kind} is not supported (vmm reads {', '.join(EXTENT_TYPES)})")
    if kind == "ZERO":
        if filename is not None:
            raise DiskError(f"{where} type ZERO takes no file name")
    elif filename is None:
        raise DiskError(f"{where} type {kind} needs a file name")
    if kind == "FLAT" and offset is None:
        raise DiskError(f"{where} type FLAT needs an offset after the file name")
    if kind == "SPARSE" and offset not in (None, "0"):
        raise DiskError(f"{where} type SPARSE takes no offset")
    return ExtentLine(access, int(sectors), kind, filename, int(offset or 0))


def _validate(desc: Descriptor, name: str) -> None:
    create_type = desc.header.get("createType")
    if create_type is None:
        raise DiskError(f"{name}: descriptor: createType is missing")
    if create_type in UNSUPPORTED_CREATE_TYPES:
        raise DiskError(f"{name}: descriptor: createType {create_type!r} is not supported by vmm")
    if create_type not in SUPPORTED_CREATE_TYPES:
        raise DiskError(f"{name}: descriptor: createType {create_type!r} is unknown")
    version = desc.header.get("version", "1")
    if version not in ("1", "2", "3"):
        raise DiskError(f"{name}: descriptor: version {version!r} is not 1, 2 or 3")
    if "CID" not in desc.header:
        raise DiskError(f"{name}: descriptor: CID is missing")
    for key in ("CID", "parentCID"):
        value = desc.header.get(key, "ffffffff")
        if not re.fullmatch(r"[0-9a-fA-F]{1,8}", value):
            raise DiskError(f"{name}: descriptor: {key} {value!r} is not a 32-bit hexadecimal number")
    if desc.parent_cid != NO_PARENT_CID and not desc.parent_hint:
        raise DiskError(f"{name}: descriptor: parentCID is set but parentFileNameHint is missing")
    if not desc.extents:
        raise DiskError(f"{name}: descriptor: no extent lines")
