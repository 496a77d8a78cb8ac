"""A running machine as a checkpoint file (``.vmsn`` / ``.vmss``) plus its ``.vmem``.

The checkpoint's ``vmm`` group holds the same JSON document as a test's state file
(vmm.snapshot.statefile: config, CPU, counters, clock, devices, stages, serial), without
RAM; RAM is the ``.vmem`` beside it, written sparse and restored by a copy-on-write mmap
(vmm.snapshot.vmem). Writing order: the ``.vmem`` (fsync, rename), then the checkpoint
(fsync, rename): a checkpoint on disk always has its memory complete beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.config import MachineConfig
from vmm.cpu.state import X86State
from vmm.errors import ImageError
from vmm.snapshot.checkpoint import Checkpoint, Tag, read_checkpoint
from vmm.snapshot.state import MachineState, capture
from vmm.snapshot.statefile import FORMAT, VERSION, _decode, _encode, config_from_dict, config_to_dict
from vmm.snapshot.vmem import map_vmem, write_vmem

if TYPE_CHECKING:
    from vmm.machine import Machine

PAGE = 4096


@dataclass
class SavedMachine:
    """What a checkpoint file holds, parsed and checked (RAM stays in ``vmem``)."""

    path: Path
    vmx_text: bytes
    config: MachineConfig | None  # None: a snapshot of a powered-off VM
    state: MachineState | None
    serial: bytes
    vmem: Path | None
    memory_size: int = 0

    @property
    def powered_on(self) -> bool:
        return self.state is not None


def vmem_path(path: Path) -> Path:
    return path.with_suffix(".vmem")


def write_machine(machine: Machine | None, path: Path, vmx_text: bytes) -> int:
    """Write ``path`` (and, for a machine, its .vmem first); returns the RAM bytes written."""
    checkpoint = Checkpoint({"Snapshot": [Tag("cfgFile", vmx_text)], "vmm": []})
    written = 0
    if machine is not None:
        ram = vmem_path(path)
        written = write_vmem(ram, machine.memory)
        state = capture(machine, with_ram=False)
        document = {
            "format": FORMAT, "version": VERSION, "config": config_to_dict(machine.config),
            "cpu": state.cpu.to_dict(), "instructions": state.instructions, "tsc_offset": state.tsc_offset,
            "clock": state.clock, "devices": _encode(state.devices), "stages": state.stages,
            "irq_level": state.irq_level, "entropy": state.entropy,
            "serial": bytes(machine.serial_transcript).hex(),
            "memory": {"file": ram.name, "size": machine.memory.size},
        }  # fmt: skip
        pages = machine.memory.size // PAGE
        checkpoint.groups["vmm"] = [Tag("state", json.dumps(document).encode())]
        checkpoint.groups["memory"] = [
            Tag("regionsCount", 1), Tag("regionPPN", 0, (0,)), Tag("regionPageNum", 0, (0,)),
            Tag("regionSize", pages, (0,)),
        ]  # fmt: skip
    checkpoint.save(path)
    return written


def read_machine(path: Path) -> SavedMachine:
    """Parse a checkpoint file vmm wrote (ImageError naming the file when it is not one)."""
    checkpoint = read_checkpoint(path)
    cfg = checkpoint.get("Snapshot", "cfgFile")
    if not isinstance(cfg, bytes):
        raise ImageError(f"{path}: no cfgFile in the Snapshot group (not a snapshot vmm wrote)")
    if "vmm" not in checkpoint.groups:
        raise ImageError(f"{path}: no vmm group (a VMware checkpoint: vmm reads only its own)")
    raw = checkpoint.get("vmm", "state")
    if raw is None:
        return SavedMachine(path, cfg, None, None, b"", None)
    try:
        document = json.loads(raw)
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise ValueError(f"format {document.get('format')!r} version {document.get('version')!r}")
        memory = document["memory"]
        ram = path.parent / Path(memory["file"]).name
        serial = bytes.fromhex(document["serial"])
        state = MachineState(
            cpu=X86State.from_dict(document["cpu"]), instructions=document["instructions"],
            tsc_offset=document["tsc_offset"], clock=document["clock"], devices=_decode(document["devices"]),
            stages=document["stages"], irq_level=document["irq_level"], serial_length=len(serial), ram=None,
            entropy=document.get("entropy", 0),
        )  # fmt: skip
        config = config_from_dict(document["config"])
        size = int(memory["size"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ImageError(f"{path}: malformed machine state: {type(exc).__name__} {exc}") from None
    if not ram.is_file():
        raise ImageError(f"{ram}: the memory file of {path.name} is missing")
    if ram.stat().st_size != size:
        raise ImageError(f"{ram}: {ram.stat().st_size} bytes, {path.name} says {size}")
    return SavedMachine(path, cfg, config, state, serial, ram, size)


def load_into(machine: Machine, saved: SavedMachine) -> None:
    """Put a built machine exactly where ``saved`` was taken: RAM by mmap, then devices and CPU."""
    if saved.state is None or saved.vmem is None:
        raise ImageError(f"{saved.path}: a snapshot of a powered-off VM holds no machine state")
    if saved.memory_size != machine.memory.size:
        raise ImageError(
            f"{saved.path}: the state has {saved.memory_size >> 20} MiB of RAM, the machine "
            f"{machine.memory.size >> 20} MiB (memsize changed since)"
        )
    map_vmem(saved.vmem, machine.memory)
    machine.serial_transcript[:] = saved.serial
    machine.load_state(saved.state)
