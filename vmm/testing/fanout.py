"""Snapshot fan-out: tests that start from the same machine state share one machine per worker.

An expectation file whose ``[machine]`` is ``start = "NAME.vmsn"`` starts from that saved
state instead of power-on. Without fan-out each such test reads the state file (and its
RAM), builds a Machine and loads the state: the cost of a boot. With fan-out a worker
(the ``vmm test`` process, a ``--jobs`` process or a cluster worker) does that once per
state file, keeps the machine and the state in memory, and reverts the machine to the
state before each test: a test then costs its own steps plus one copy of guest RAM.

A reverted machine is the machine ``load_machine_state`` would build: CPU, counters,
clock, devices, stage timeline, RAM and the transcript are the state's, and what a run
leaves outside the state (the exit the guest took, a pending reset) is forgotten. A
machine started from a state writes its disks to memory (``scratch_disks``): a state does
not hold disk contents, so the disk files stay as the state saw them, and a revert drops
what the previous test wrote. Tests that share a start state cannot disturb one another.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmm.config import MachineConfig
from vmm.errors import ImageError
from vmm.machine import Machine, MachineState, Stops
from vmm.snapshot.checkpoint import MAGIC
from vmm.snapshot.machinefile import read_machine
from vmm.snapshot.statefile import read_machine_state
from vmm.snapshot.vmem import map_vmem

HELD_MACHINES = 4  # per worker: each holds its guest RAM twice (the machine and the state)

PathMap = Callable[[Path], Path]


def same_path(path: Path) -> Path:
    return path


def remap_config(config: MachineConfig, remap: PathMap) -> MachineConfig:
    """The state file names files by absolute path; a cluster worker has them elsewhere."""
    for disk in config.disks:
        disk.path = remap(disk.path)
    for key in ("bios", "kernel", "initrd"):
        value = getattr(config, key)
        if value is not None:
            setattr(config, key, remap(Path(value)))
    return config


@dataclass
class Start:
    """A machine state to start tests from, read and checked once."""

    config: MachineConfig
    state: MachineState
    serial: bytes
    vmem: Path | None = None  # a snapshot checkpoint's RAM, mapped copy-on-write (else RAM is in state)


def read_start(path: Path, accel: str | None, remap: PathMap = same_path) -> Start:
    vmem = None
    if is_checkpoint(path):  # a bundle's snapshot (NAME-SnapshotN.vmsn), vmm.snapshot's format
        saved = read_machine(Path(path))
        if saved.config is None or saved.state is None:
            raise ImageError(f"{path}: a snapshot of a powered-off VM: nothing to start tests from")
        config, state, serial, vmem = saved.config, saved.state, saved.serial, saved.vmem
    else:  # a machine state file (vmm.snapshot.statefile)
        config, state, serial = read_machine_state(path)
    config = remap_config(config, remap)
    config.scratch_disks = True  # the files stay as the state saw them; a revert drops the writes
    if accel is not None:
        config.accel = accel
    return Start(config.validate(), state, serial, vmem)


def is_checkpoint(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False  # the state-file reader names what is wrong
    return len(head) == 4 and int.from_bytes(head, "little") == MAGIC


def forget_run(machine: Machine) -> None:
    """What a run leaves on a Machine outside its saved state, as a freshly built one has it."""
    machine.exit = None
    machine._reset_requested = False
    machine._idle_pending = False
    machine._port_hit = None
    machine._stops = Stops()
    machine.debug_transcript.clear()
    machine.disk_io_errors = 0


def start_machine(start: Start) -> Machine:
    """A new machine in ``start``'s state (what a test without fan-out pays for)."""
    machine = Machine(start.config)
    restore(machine, start)
    return machine


def restore(machine: Machine, start: Start) -> None:
    if start.vmem is not None:
        map_vmem(start.vmem, machine.memory)
    machine.serial_transcript[:] = start.serial
    machine.load_state(start.state)


def revert(machine: Machine, start: Start) -> None:
    from vmm.disk.scratch import ScratchDisk

    forget_run(machine)
    for disk in machine.disks.values():
        if isinstance(disk, ScratchDisk):
            disk.written = {}
    restore(machine, start)


@dataclass
class MachinePool:
    """Machines held by one worker, keyed by start state (its file's content and the accel)."""

    fanout: bool = True
    held: OrderedDict = field(default_factory=OrderedDict)  # key -> (Start, [idle machines])
    boots: int = 0  # machines built from a state file
    reverts: int = 0  # machines reused by reverting
    lock: threading.Lock = field(default_factory=threading.Lock)

    def checkout(self, path: Path, accel: str | None, remap: PathMap = same_path) -> tuple[Machine, Callable]:
        """A machine in the state saved at ``path``; call the returned function to give it back."""
        if not self.fanout:
            machine = start_machine(read_start(path, accel, remap))
            self.boots += 1
            return machine, Machine.close
        key = (hashlib.sha256(Path(path).read_bytes()).hexdigest(), str(remap(Path(path))), accel)
        with self.lock:
            entry = self.held.get(key)
            if entry is not None:
                self.held.move_to_end(key)
                start, idle = entry
                machine = idle.pop() if idle else None
            else:
                start, machine = None, None
        if start is None:
            start = read_start(path, accel, remap)
        if machine is None:
            machine = start_machine(start)
            self.boots += 1
        else:
            revert(machine, start)
            self.reverts += 1

        def give_back(used: Machine) -> None:
            with self.lock:
                _start, idle = self.held.setdefault(key, (start, []))
                idle.append(used)
                self.held.move_to_end(key)
                while len(self.held) > HELD_MACHINES:
                    _key, (_s, machines) = self.held.popitem(last=False)
                    for old in machines:
                        old.close()

        return machine, give_back

    def close(self) -> None:
        with self.lock:
            for _start, machines in self.held.values():
                for machine in machines:
                    machine.close()
            self.held.clear()


_POOL = MachinePool()


def worker_pool(fanout: bool = True) -> MachinePool:
    """This process's pool (one per worker: the cache lives as long as the worker)."""
    if not fanout:
        return MachinePool(fanout=False)
    return _POOL
