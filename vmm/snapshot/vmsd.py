"""``NAME.vmsd``: the snapshot tree, in VMware's keys (the .vmx dictionary syntax).

::

    .encoding = "UTF-8"
    snapshot.lastUID = "3"            only grows
    snapshot.current = "3"            the snapshot the VM now runs on (absent: none)
    snapshot.numSnapshots = "3"
    snapshot0.uid = "1"               slots 0..numSnapshots-1 are storage slots, not an order
    snapshot0.filename = "vm-Snapshot1.vmsn"
    snapshot0.displayName = "booted"
    snapshot0.description = ""
    snapshot0.createTimeHigh = "..."  microseconds since the epoch, High << 32 | Low (unsigned)
    snapshot0.createTimeLow = "..."
    snapshot0.numDisks = "1"
    snapshot0.disk0.fileName = "vm.vmdk"     the disk frozen at this snapshot
    snapshot0.disk0.node = "ide0:0"
    snapshot1.parent = "1"            absent at a root

The file is parsed once into :class:`SnapshotTree` (every uid, parent and count checked:
one ConfigError line naming the key) and always written whole (vmm.fileio: temp file,
fsync, rename).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vmm.bundle.vmx import VmxFile
from vmm.errors import ConfigError

MAX_SNAPSHOTS = 4096
MAX_DISKS = 16


@dataclass
class Snapshot:
    uid: int
    filename: str
    display_name: str
    parent: int | None = None
    description: str = ""
    create_time_us: int = 0
    disks: list[tuple[str, str]] = field(default_factory=list)  # (node, fileName)

    @property
    def stem(self) -> str:
        return self.filename[:-5] if self.filename.lower().endswith(".vmsn") else self.filename


@dataclass
class SnapshotTree:
    snapshots: list[Snapshot] = field(default_factory=list)
    last_uid: int = 0
    current: int | None = None

    def by_uid(self, uid: int) -> Snapshot:
        for snap in self.snapshots:
            if snap.uid == uid:
                return snap
        raise KeyError(uid)

    def find(self, name: str) -> Snapshot:
        """A snapshot by display name, or by uid written as ``#N`` or a bare number that no name equals."""
        named = [s for s in self.snapshots if s.display_name == name]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            uids = ", ".join(f"#{s.uid}" for s in named)
            raise ConfigError(
                f"several snapshots are named {name!r} ({uids}): name one by its uid, e.g. #{named[0].uid}"
            )
        text = name.removeprefix("#")
        if text.isdigit():
            try:
                return self.by_uid(int(text))
            except KeyError:
                pass
        known = ", ".join(repr(s.display_name) for s in self.snapshots) or "none"
        raise ConfigError(f"no snapshot named {name!r} (snapshots: {known})")

    def children(self, uid: int | None) -> list[Snapshot]:
        return sorted((s for s in self.snapshots if s.parent == uid), key=lambda s: s.uid)

    def ancestors(self, uid: int | None) -> list[int]:
        chain = []
        while uid is not None:
            chain.append(uid)
            uid = self.by_uid(uid).parent
        return chain

    # ---- the file ----

    def render(self) -> bytes:
        vmx = VmxFile("<vmsd>")
        if not self.snapshots and self.last_uid == 0:
            return vmx.to_bytes()
        vmx.set("snapshot.lastUID", str(self.last_uid))
        if self.current is not None:
            vmx.set("snapshot.current", str(self.current))
        vmx.set("snapshot.numSnapshots", str(len(self.snapshots)))
        vmx.set("snapshot.needConsolidate", "FALSE")
        for n, snap in enumerate(self.snapshots):
            key = f"snapshot{n}"
            vmx.set(f"{key}.uid", str(snap.uid))
            vmx.set(f"{key}.filename", snap.filename)
            if snap.parent is not None:
                vmx.set(f"{key}.parent", str(snap.parent))
            vmx.set(f"{key}.displayName", snap.display_name)
            vmx.set(f"{key}.description", snap.description)
            vmx.set(f"{key}.createTimeHigh", str(snap.create_time_us >> 32))
            low = snap.create_time_us & 0xFFFFFFFF
            vmx.set(f"{key}.createTimeLow", str(low - (1 << 32) if low >= 1 << 31 else low))  # VMware: signed
            vmx.set(f"{key}.numDisks", str(len(snap.disks)))
            for k, (node, filename) in enumerate(snap.disks):
                vmx.set(f"{key}.disk{k}.fileName", filename)
                vmx.set(f"{key}.disk{k}.node", node)
        return vmx.to_bytes()

    def save(self, path: Path) -> None:
        from vmm.fileio import atomic_write

        atomic_write(path, self.render())


def read_tree(path: Path) -> SnapshotTree:
    """The tree in ``path``; an empty tree when the file is absent or empty (no snapshot yet)."""
    if not path.exists():
        return SnapshotTree()
    vmx = VmxFile.load(path)

    def number(key: str, low: int = 0, high: int = (1 << 32) - 1, default: int | None = None) -> int:
        text = vmx.get(key)
        if text is None:
            if default is not None:
                return default
            raise ConfigError(f"{vmx.where(key)}: {key} is missing")
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(f'{vmx.where(key)}: {key} = "{text}" is not a number') from None
        if not low <= value <= high:
            raise ConfigError(f'{vmx.where(key)}: {key} = "{text}" is out of range ({low}-{high})')
        return value

    tree = SnapshotTree()
    count = number("snapshot.numSnapshots", 0, MAX_SNAPSHOTS, default=0)
    tree.last_uid = number("snapshot.lastUID", default=0)
    for n in range(count):
        key = f"snapshot{n}"
        uid = number(f"{key}.uid", 1)
        filename = vmx.get(f"{key}.filename")
        if not filename or "/" in filename or filename.startswith("."):
            raise ConfigError(f"{vmx.where(key + '.filename')}: {key}.filename must name a file in the bundle folder")
        parent = number(f"{key}.parent", 1) if f"{key}.parent" in vmx else None
        high = number(f"{key}.createTimeHigh", 0, default=0)
        low = number(f"{key}.createTimeLow", -(1 << 31), (1 << 32) - 1, default=0) & 0xFFFFFFFF
        disks = []
        for k in range(number(f"{key}.numDisks", 0, MAX_DISKS, default=0)):
            name = vmx.get(f"{key}.disk{k}.fileName")
            node = vmx.get(f"{key}.disk{k}.node")
            if not name or not node or "/" in name:
                raise ConfigError(f"{vmx.where(key)}: {key}.disk{k}.fileName and .node must name a disk in the folder")
            disks.append((node, name))
        snap = Snapshot(uid, filename, vmx.get(f"{key}.displayName") or f"Snapshot {uid}", parent,
                        vmx.get(f"{key}.description") or "", high << 32 | low, disks)  # fmt: skip
        if any(s.uid == uid for s in tree.snapshots):
            raise ConfigError(f"{vmx.where(key + '.uid')}: uid {uid} appears twice")
        tree.snapshots.append(snap)
    uids = {s.uid for s in tree.snapshots}
    for snap in tree.snapshots:
        if snap.parent is not None and snap.parent not in uids:
            raise ConfigError(f"{path}: snapshot {snap.uid}'s parent {snap.parent} is not in the tree")
        seen = set()
        uid: int | None = snap.uid
        while uid is not None:
            if uid in seen:
                raise ConfigError(f"{path}: the parents of snapshot {snap.uid} make a loop")
            seen.add(uid)
            uid = tree.by_uid(uid).parent
    if uids and max(uids) > tree.last_uid:
        tree.last_uid = max(uids)
    if "snapshot.current" in vmx:
        tree.current = number("snapshot.current", 1)
        if tree.current not in uids:
            raise ConfigError(f"{vmx.where('snapshot.current')}: current snapshot {tree.current} is not in the tree")
    return tree
