"""Snapshots of a bundle: take, revert, delete, list, check; suspend and resume.

Files, as VMware names them (see vmm.snapshot.vmsd for the tree's keys)::

    NAME.vmsd                  the tree
    NAME-Snapshot<uid>.vmsn    checkpoint: the .vmx text, and the machine state when running
    NAME-Snapshot<uid>.vmem    RAM at the snapshot (sparse), when it was taken running
    NAME-<6 digits>.vmdk       a delta disk: the disk the VM runs on after a snapshot
    NAME.vmss + NAME.vmem      suspended state (the .vmx's checkpoint.vmState names it)

A snapshot freezes the disks the VM was running on (``snapshotN.diskK.fileName``) and puts
the VM on a new delta child of each (parentCID pinned to the frozen disk's CID); a revert
puts it on a new delta child of the snapshot's disks and drops the deltas nothing refers
to any more. Disks are never merged by a delete: the deltas stay as long as a snapshot or
the running disk's chain needs them (``vmm disk commit`` folds a chain by hand).

**Crash safety.** Each operation writes new files first (fsync, rename), then the .vmx,
then the .vmsd, and removes files last; at every instant the .vmx's disks and every
snapshot in the .vmsd open (their chains exist and their CIDs match) and every snapshot's
state files are complete. A kill between two steps leaves at most files nothing refers to,
which ``vmm snapshot check`` lists and the next operation removes. The order of each
operation is written beside it below; tests/e2e/test_snapshot_crash.py kills the CLI at
seeded file operations to check it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.bundle.vmx import VmxFile
from vmm.errors import ConfigError, VmmError
from vmm.fileio import fsync_dir
from vmm.snapshot.machinefile import SavedMachine, load_into, read_machine, vmem_path, write_machine
from vmm.snapshot.vmsd import Snapshot, SnapshotTree, read_tree

if TYPE_CHECKING:
    from vmm.machine import Machine

DISK_SLOTS = ("ide0:0", "ide0:1", *(f"virtio{n}" for n in range(8)))
PERSISTENT = {"", "persistent"}  # modes a snapshot covers (independent disks are left out, as in VMware)


class SnapshotError(VmmError):
    """A snapshot operation that cannot be done as asked (the bundle is left as it was)."""


@dataclass
class TakeResult:
    snapshot: Snapshot
    ram_bytes: int = 0
    deltas: list[str] = field(default_factory=list)


class BundleSnapshots:
    """The snapshot operations on one bundle. ``machine`` is the running VM when the caller
    is that VM's monitor (the control channel); None for a powered-off VM (the caller holds
    the bundle's lock)."""

    def __init__(self, vmx_path: Path | str, machine: Machine | None = None) -> None:
        self.vmx_path = Path(os.path.abspath(vmx_path))
        self.folder = self.vmx_path.parent
        self.stem = self.vmx_path.stem
        self.vmsd_path = self.folder / f"{self.stem}.vmsd"
        self.vmss_path = self.folder / f"{self.stem}.vmss"
        self.machine = machine
        self._cache: dict[str, tuple[tuple[int, int], SavedMachine]] = {}
        # node -> (delta file, its CID) the running machine was switched to and has not written
        self._fresh: dict[str, tuple[str, int]] = {}

    # ---- reading ----

    def vmx(self) -> VmxFile:
        return VmxFile.load(self.vmx_path)

    def tree(self) -> SnapshotTree:
        return read_tree(self.vmsd_path)

    def disks(self, vmx: VmxFile, strict: bool = True) -> list[tuple[str, str]]:
        """(node, file name) of every disk a snapshot covers: present, a hard disk, persistent
        (``strict``: a disk that cannot have deltas is an error; else it is left out)."""
        from vmm.disk.open import is_vmdk

        found = []
        for slot in DISK_SLOTS:
            if (vmx.get(f"{slot}.present") or "").lower() != "true":
                continue
            kind = (vmx.get(f"{slot}.deviceType") or "disk").lower()
            if kind not in ("disk", "ata-harddisk"):
                continue
            if (vmx.get(f"{slot}.mode") or "").lower() not in PERSISTENT:
                continue
            name = vmx.get(f"{slot}.fileName") or ""
            inside = bool(name) and os.path.basename(name) == name and (self.folder / name).is_file()
            if not strict and not (inside and is_vmdk(self.folder / name)):
                continue
            if not inside:
                raise SnapshotError(
                    f"{self.vmx_path}: {slot}.fileName {name!r}: snapshots need disks in the bundle folder"
                )
            if not is_vmdk(self.folder / name):
                raise SnapshotError(
                    f"{self.folder / name}: a raw image cannot have delta disks; convert it to VMDK "
                    f"(vmm disk convert {name} {Path(name).stem}.vmdk) and point {slot}.fileName at it"
                )
            found.append((slot, name))
        return found

    def saved(self, snap: Snapshot) -> SavedMachine:
        """A snapshot's checkpoint, parsed once per file version (reverts in a loop reuse it)."""
        path = self.folder / snap.filename
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SnapshotError(f"{path}: the state file of snapshot {snap.display_name!r} is missing") from None
        key = (st.st_ino, st.st_mtime_ns)
        cached = self._cache.get(snap.filename)
        if cached is None or cached[0] != key:
            cached = (key, read_machine(path))
            self._cache[snap.filename] = cached
        return cached[1]

    def suspended(self) -> str | None:
        """The checkpoint the VM will resume from (the .vmx's checkpoint.vmState), if any."""
        return self.vmx().get("checkpoint.vmState") or None

    # ---- take ----

    def take(self, name: str, description: str = "") -> TakeResult:
        """Order: state files (.vmem, .vmsn) -> new delta disks -> .vmx -> .vmsd -> the
        running machine switches to the deltas -> unreferenced files removed."""
        name = _check_name(name)
        vmx, tree = self.vmx(), self.tree()
        if self.machine is None and vmx.get("checkpoint.vmState"):
            raise SnapshotError(f"{self.vmx_path}: the VM is suspended; resume it (vmm run) before taking a snapshot")
        disks = self.disks(vmx)
        uid = tree.last_uid + 1
        snap = Snapshot(uid, f"{self.stem}-Snapshot{uid}.vmsn", name, tree.current, description,
                        time.time_ns() // 1000, disks)  # fmt: skip
        if self.machine is not None:
            for node, _ in disks:
                self.machine.disks[node].flush()
        result = TakeResult(snap)
        result.ram_bytes = write_machine(self.machine, self.folder / snap.filename, vmx.to_bytes())
        children = self._new_deltas([name for _, name in disks])
        result.deltas = children
        for (node, _), child in zip(disks, children, strict=True):
            vmx.set(f"{node}.fileName", child)
        vmx.save()
        tree.snapshots.append(snap)
        tree.last_uid, tree.current = uid, uid
        tree.save(self.vmsd_path)
        if self.machine is not None:
            self._switch_disks(dict(zip((n for n, _ in disks), children, strict=True)))
        self.collect_garbage()
        return result

    # ---- revert ----

    def revert(self, name: str) -> Snapshot:
        """Order: new delta disks over the snapshot's -> (powered off: the snapshot's state
        linked as NAME.vmss/.vmem) -> .vmx -> .vmsd -> the running machine loads the state
        -> unreferenced files removed (the deltas the VM ran on)."""
        tree = self.tree()
        snap = tree.find(name)
        saved = self.saved(snap)
        vmx = self.vmx()
        if self.machine is not None:
            running = {node for node, _ in self.disks(vmx)}
            if running != {node for node, _ in snap.disks}:
                raise SnapshotError(
                    f"snapshot {snap.display_name!r} has disks {sorted(n for n, _ in snap.disks)}, the running VM "
                    f"{sorted(running)}: power it off to revert"
                )
        if self.machine is not None and tree.current == snap.uid and self._unwritten(snap):
            # Reverting again to where the VM stands, and it wrote no disk since: the disks
            # stay, no file changes (a test fan-out reverts in a loop).
            if saved.powered_on:
                load_into(self.machine, saved)
            return snap
        children = self._new_deltas([filename for _, filename in snap.disks])
        for (node, _), child in zip(snap.disks, children, strict=True):
            vmx.set(f"{node}.fileName", child)
        if self.machine is None:
            if saved.powered_on:
                self._link_as_suspended(saved)
                vmx.set("checkpoint.vmState", self.vmss_path.name)
            else:
                vmx.delete("checkpoint.vmState")
        replaced = {name for _, name in self.disks(self.vmx(), strict=False)}
        vmx.save()
        tree.current = snap.uid
        tree.save(self.vmsd_path)
        if self.machine is not None:
            self._switch_disks(dict(zip((n for n, _ in snap.disks), children, strict=True)))
            if saved.powered_on:
                load_into(self.machine, saved)
        self.collect_garbage(replaced)  # the deltas the VM ran on go, with what it wrote since
        return snap

    def _unwritten(self, snap: Snapshot) -> bool:
        """The running disks are the deltas made over ``snap``'s disks, still unwritten."""
        assert self.machine is not None
        for node, frozen in snap.disks:
            fresh = self._fresh.get(node)
            disk = self.machine.disks.get(node)
            parent = getattr(disk, "parent", None)
            if fresh is None or disk is None or parent is None or os.path.basename(parent.path) != frozen:
                return False
            if (os.path.basename(disk.path), disk.cid) != fresh:
                return False
        return True

    def _link_as_suspended(self, saved: SavedMachine) -> None:
        """NAME.vmss and NAME.vmem become hard links to the snapshot's files (no copy; the
        snapshot can be deleted later and the VM still resumes)."""
        assert saved.vmem is not None
        for source, target in ((saved.vmem, self.folder / f"{self.stem}.vmem"), (saved.path, self.vmss_path)):
            temp = self.folder / f".{target.name}.{os.getpid()}.link.tmp"
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            os.link(source, temp)
            os.replace(temp, target)
        fsync_dir(self.folder)

    # ---- delete ----

    def delete(self, name: str) -> Snapshot:
        """Order: .vmsd without the snapshot (its children move to its parent) -> its files
        and the deltas nothing needs any more removed."""
        tree = self.tree()
        snap = tree.find(name)
        for child in tree.snapshots:
            if child.parent == snap.uid:
                child.parent = snap.parent
        if tree.current == snap.uid:
            tree.current = snap.parent
        tree.snapshots.remove(snap)
        tree.save(self.vmsd_path)
        self.collect_garbage({name for _, name in snap.disks})
        return snap

    # ---- suspend / resume ----

    def suspend(self) -> int:
        """Write NAME.vmss + NAME.vmem and name them in the .vmx (the machine stops after).
        Order: .vmem, .vmss, then the .vmx's checkpoint.vmState."""
        if self.machine is None:
            raise SnapshotError("only a running VM can be suspended")
        vmx = self.vmx()
        for disk in self.machine.disks.values():
            disk.flush()
        written = write_machine(self.machine, self.vmss_path, vmx.to_bytes())
        vmx.set("checkpoint.vmState", self.vmss_path.name)
        vmx.save()
        return written

    def resume_state(self) -> SavedMachine | None:
        """The state a `vmm run` of this bundle continues from, if the VM is suspended."""
        name = self.suspended()
        if name is None:
            return None
        if os.path.basename(name) != name:
            raise ConfigError(f"{self.vmx_path}: checkpoint.vmState {name!r} must name a file in the bundle folder")
        saved = read_machine(self.folder / name)
        if not saved.powered_on:
            raise ConfigError(f"{self.folder / name}: holds no machine state to resume")
        return saved

    def resumed(self) -> None:
        """After a resume: the VM is running, no longer suspended (its state files go; the
        mapping of the .vmem keeps its pages)."""
        vmx = self.vmx()
        vmx.delete("checkpoint.vmState")
        vmx.save()
        self.collect_garbage()

    # ---- files ----

    def _new_deltas(self, parents: list[str]) -> list[str]:
        from vmm.disk.vmdk.create import create_child

        used = {p.name for p in self.folder.iterdir()}
        children = []
        n = 1
        for parent in parents:
            while f"{self.stem}-{n:06d}.vmdk" in used:
                n += 1
            child = f"{self.stem}-{n:06d}.vmdk"
            used.add(child)
            create_child(self.folder / parent, self.folder / child)
            children.append(child)
        fsync_dir(self.folder)
        return children

    def _switch_disks(self, files: dict[str, str]) -> None:
        """The running machine goes on with ``files`` (node -> file) in place of its disks."""
        from vmm.disk.open import open_disk

        machine = self.machine
        assert machine is not None
        for node, filename in files.items():
            new = open_disk(self.folder / filename)
            old = machine.disks[node]
            machine.disks[node] = new
            self._fresh[node] = (filename, new.cid)
            if node.startswith("ide0:"):
                machine.ata.disks[int(node[-1])] = new
            elif machine.pci is not None:
                for device in machine.pci.blk:
                    if device.name == node:
                        device.disk = new
            for disk in machine.config.disks:
                if disk.slot == node:
                    disk.path = self.folder / filename
            old.close()

    def referenced(self) -> tuple[set[str], set[str]]:
        """(disk files, state files) that the .vmx and the tree need, by name in the folder."""
        vmx, tree = self.vmx(), self.tree()
        disks: set[str] = set()
        heads = [name for _, name in self.disks(vmx, strict=False)]
        heads += [name for snap in tree.snapshots for _, name in snap.disks]
        for head in heads:
            disks.update(self._chain(head))
        states = {snap.filename for snap in tree.snapshots}
        states |= {vmem_path(Path(f)).name for f in states}
        vmstate = vmx.get("checkpoint.vmState")
        if vmstate:
            states |= {vmstate, vmem_path(Path(vmstate)).name}
        return disks, states

    def _chain(self, name: str) -> list[str]:
        from vmm.disk.vmdk.disk import VmdkDisk

        with VmdkDisk(self.folder / name, read_only=True) as disk:
            chain = []
            node: VmdkDisk | None = disk
            while node is not None:
                chain.append(os.path.basename(node.path))
                node = node.parent
            return chain

    OWN_FILE = r"-(\d{6}\.vmdk|Snapshot\d+\.vmsn|Snapshot\d+\.vmem)"

    def unreferenced(self) -> list[Path]:
        """Files of this bundle's snapshot machinery that nothing refers to (what a killed
        operation can leave, what a revert or delete made useless), and temporary files of
        interrupted writes."""
        disks, states = self.referenced()
        own = re.compile(re.escape(self.stem) + self.OWN_FILE + "$")
        found = []
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if own.match(name) and name not in disks and name not in states:
                found.append(path)
            elif name in (self.vmss_path.name, f"{self.stem}.vmem") and name not in states:
                found.append(path)
            elif name.startswith(".") and name.endswith(".tmp") and self.stem in name:
                found.append(path)
        return found

    def collect_garbage(self, replaced: set[str] | frozenset[str] = frozenset()) -> list[Path]:
        """Remove what nothing refers to. A delta disk that holds data goes only when this
        operation made it useless (``replaced``): one the user pointed the .vmx away from by
        hand is kept (``check`` lists it); empty ones (a killed take's) always go."""
        try:
            found = self.unreferenced()
        except VmmError:
            return []  # a chain that does not open: remove nothing (`vmm snapshot check` says why)
        removed = [p for p in found if p.suffix != ".vmdk" or p.name in replaced or empty_delta(p)]
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if removed:
            fsync_dir(self.folder)
        return removed


def empty_delta(path: Path) -> bool:
    """A sparse VMDK with no grain allocated: its file ends where its metadata ends."""
    import struct

    try:
        with open(path, "rb") as f:
            header = f.read(512)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(header) < 72 or header[:4] != b"KDMV":
        return False
    (overhead,) = struct.unpack_from("<Q", header, 64)
    return size <= overhead * 512


def _check_name(name: str) -> str:
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise SnapshotError(f"snapshot name {name!r}: 1-200 printable characters")
    return name
