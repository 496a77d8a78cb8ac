"""Snapshots of a Machine from Python, without a bundle (test fan-out, scripts).

::

    machine = Machine(MachineConfig(disks=[...], scratch_disks=True))
    machine.run(max_instructions=50_000_000)           # boot once
    snap = machine.take_snapshot(tmp / "booted.vmsn")   # booted.vmsn + booted.vmem (sparse)
    for case in cases:
        machine.revert_snapshot(snap)                   # RAM by mmap (copy-on-write), devices, CPU, disks
        ...
    other = Machine.from_snapshot(tmp / "booted.vmsn")  # a second VM; shares the unwritten pages

Disk contents are part of a snapshot only for disks whose writes stay in memory
(``MachineConfig.scratch_disks``, vmm.disk.scratch): their written sectors are kept in the
:class:`LiveSnapshot` object (not in the files) and put back by a revert. A machine with a
disk it writes through to a file is refused (use a bundle's snapshots, which make delta
disks), unless ``disks="ignore"`` says the guest's disk writes do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.errors import VmmError
from vmm.snapshot.machinefile import SavedMachine, load_into, read_machine, write_machine

if TYPE_CHECKING:
    from vmm.machine import Machine


@dataclass
class LiveSnapshot:
    """A snapshot of one machine: its files and the scratch disks' sectors at that moment."""

    path: Path
    saved: SavedMachine
    scratch: dict[str, dict[int, bytes]] = field(default_factory=dict)
    memory_bytes: int = 0  # RAM bytes that held data (what the .vmem takes on disk)


def take(machine: Machine, path: Path | str, disks: str = "keep") -> LiveSnapshot:
    """Write ``path`` (.vmsn) and its .vmem; returns the handle :func:`revert` takes."""
    from vmm.disk.scratch import ScratchDisk

    path = Path(path)
    scratch: dict[str, dict[int, bytes]] = {}
    for slot, disk in machine.disks.items():
        if isinstance(disk, ScratchDisk):
            scratch[slot] = dict(disk.written)
        elif not disk.read_only and disks != "ignore":
            raise VmmError(
                f"{slot}: the disk is written through to its file, so a snapshot could not bring it back; "
                "use scratch_disks=True, a bundle's snapshots (vmm snapshot), or disks='ignore'"
            )
    written = write_machine(machine, path, b"")
    return LiveSnapshot(path, read_machine(path), scratch, written)


def revert(machine: Machine, snapshot: LiveSnapshot) -> None:
    """Put ``machine`` back exactly at ``snapshot`` (RAM by copy-on-write mmap of its .vmem)."""
    from vmm.disk.scratch import ScratchDisk

    load_into(machine, snapshot.saved)
    for slot, sectors in snapshot.scratch.items():
        disk = machine.disks.get(slot)
        if isinstance(disk, ScratchDisk):
            disk.written = dict(sectors)


def load(path: Path | str, serial_out=None, cpu_factory=None, scratch_disks: bool = True) -> Machine:
    """A new Machine continuing from the snapshot at ``path`` (its config is the snapshot's;
    disks are opened under a throwaway in-memory delta unless ``scratch_disks`` is False)."""
    from vmm.machine import Machine

    saved = read_machine(Path(path))
    if saved.config is None:
        raise VmmError(f"{path}: a snapshot of a powered-off VM holds no machine to load")
    saved.config.scratch_disks = scratch_disks
    machine = Machine(saved.config, serial_out=serial_out, cpu_factory=cpu_factory)
    load_into(machine, saved)
    return machine
