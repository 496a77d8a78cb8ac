"""VMware's checkpoint file envelope, as ``.vmsn`` (snapshot) and ``.vmss`` (suspend) use it.

Layout (little-endian; /work/shared/specs/vmware-files.md, after crash-utility's
``vmware_vmss.[ch]``)::

    u32 magic 0xbed2bed2, u32 version, u32 numGroups
    numGroups x {char name[64]; u64 position; u64 size}
    each group at its position: tags, ended by a u16 0
    tag: u16 (bits 15-8 name length, 7-6 index count, 5-0 value size; 63 = block)
         name, index count x u32, then the value: 1/2/4/8 bytes, or for a block
         u64 size in the file, u64 size in memory, u16 padding, padding, bytes

The groups vmm writes: ``Snapshot`` (tag ``cfgFile``: the .vmx text, as VMware embeds
it), ``vmm`` (tag ``state``: the machine state as JSON, see vmm.snapshot.statefile, or no
tag for a snapshot of a powered-off VM) and ``memory`` (``regionsCount``,
``regionPPN[i]``, ``regionPageNum[i]``, ``regionSize[i]`` in 4 KiB pages: one region,
all of RAM, in the ``.vmem`` beside the file). Every length and count read is checked
against the file's size before use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from vmm.errors import ImageError
from vmm.fileio import atomic_write

MAGIC = 0xBED2BED2
VERSION = 8
GROUP = struct.Struct("<64sQQ")
HEADER = struct.Struct("<III")
BLOCK = 63
MAX_GROUPS = 64
MAX_FILE = 1 << 30  # state files hold device state, not RAM: a larger one is not ours


@dataclass
class Tag:
    name: str
    value: int | bytes
    indices: tuple[int, ...] = ()


@dataclass
class Checkpoint:
    groups: dict[str, list[Tag]] = field(default_factory=dict)

    def get(self, group: str, name: str, indices: tuple[int, ...] = ()) -> int | bytes | None:
        for tag in self.groups.get(group, []):
            if tag.name == name and tag.indices == indices:
                return tag.value
        return None

    def to_bytes(self) -> bytes:
        bodies = [(name, b"".join(_tag_bytes(t) for t in tags) + b"\0\0") for name, tags in self.groups.items()]
        position = HEADER.size + GROUP.size * len(bodies)
        table, data = [], []
        for name, body in bodies:
            table.append(GROUP.pack(name.encode().ljust(64, b"\0"), position, len(body)))
            data.append(body)
            position += len(body)
        return HEADER.pack(MAGIC, VERSION, len(bodies)) + b"".join(table) + b"".join(data)

    def save(self, path: Path) -> None:
        atomic_write(path, self.to_bytes(), 0o600)


def _tag_bytes(tag: Tag) -> bytes:
    name = tag.name.encode()
    if not 0 < len(name) < 256 or len(tag.indices) > 3:
        raise ValueError(f"checkpoint tag {tag.name!r}: bad name or indices")
    if isinstance(tag.value, bytes):
        head = struct.pack("<H", len(name) << 8 | len(tag.indices) << 6 | BLOCK)
        value = struct.pack("<QQH", len(tag.value), len(tag.value), 0) + tag.value
    else:
        head = struct.pack("<H", len(name) << 8 | len(tag.indices) << 6 | 8)
        value = struct.pack("<Q", tag.value & 0xFFFFFFFFFFFFFFFF)
    return head + name + b"".join(struct.pack("<I", i) for i in tag.indices) + value


def read_checkpoint(path: Path) -> Checkpoint:
    """Parse a .vmsn/.vmss file (ImageError naming the file and the offset when malformed)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such state file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_checkpoint(data, str(path))


def parse_checkpoint(data: bytes, name: str = "<checkpoint>") -> Checkpoint:
    def bad(what: str) -> ImageError:
        return ImageError(f"{name}: not a checkpoint file vmm reads: {what}")

    if len(data) > MAX_FILE:
        raise bad("larger than 1 GiB")
    if len(data) < HEADER.size:
        raise bad("too short for the header")
    magic, _version, count = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise bad(f"magic {magic:#x}, expected {MAGIC:#x}")
    if count > MAX_GROUPS or HEADER.size + count * GROUP.size > len(data):
        raise bad(f"{count} groups do not fit")
    checkpoint = Checkpoint()
    for i in range(count):
        raw, position, size = GROUP.unpack_from(data, HEADER.size + i * GROUP.size)
        group = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        if position + size > len(data):
            raise bad(f"group {group!r} at {position:#x}+{size:#x} runs past the end")
        checkpoint.groups[group] = _parse_tags(data[position : position + size], group, bad)
    return checkpoint


def _parse_tags(body: bytes, group: str, bad) -> list[Tag]:
    tags: list[Tag] = []
    pos = 0
    while True:
        if pos + 2 > len(body):
            raise bad(f"group {group!r}: no end tag")
        (head,) = struct.unpack_from("<H", body, pos)
        pos += 2
        if head == 0:
            return tags
        name_len, n_indices, size = head >> 8, head >> 6 & 3, head & 63
        end = pos + name_len + 4 * n_indices
        if name_len == 0 or end > len(body):
            raise bad(f"group {group!r}: tag at {pos - 2:#x} runs past the group")
        tag_name = body[pos : pos + name_len].decode("ascii", "replace")
        indices = struct.unpack_from(f"<{n_indices}I", body, pos + name_len)
        pos = end
        if size in (62, BLOCK):
            if pos + 18 > len(body):
                raise bad(f"group {group!r}: block {tag_name!r} header runs past the group")
            length, _in_memory, pad = struct.unpack_from("<QQH", body, pos)
            pos += 18 + pad
            if size == 62 or pos + length > len(body):
                raise bad(f"group {group!r}: block {tag_name!r} is compressed or runs past the group")
            value: int | bytes = bytes(body[pos : pos + length])
            pos += length
        elif size in (1, 2, 4, 8):
            if pos + size > len(body):
                raise bad(f"group {group!r}: value of {tag_name!r} runs past the group")
            value = int.from_bytes(body[pos : pos + size], "little")
            pos += size
        else:
            raise bad(f"group {group!r}: tag {tag_name!r} has a value size of {size}")
        tags.append(Tag(tag_name, value, tuple(indices)))
