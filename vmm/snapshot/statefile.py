"""A whole machine state on disk: ``NAME.vmsn`` (JSON) beside ``NAME.vmem`` (raw RAM, a sparse file).

What a failed test leaves for ``vmm step`` (or any script) to open exactly where it
stopped. ``NAME.vmsn`` is one JSON object, no pickle, readable with any JSON tool::

    {"format": "vmm-machine-state", "version": 1,
     "config":  {"memory_mb": 64, "bios": null, "disks": [{"slot": "ide0:0", "path": "/abs/toyos.img",
                 "kind": "disk", "read_only": false}], "kernel": null, "initrd": null, "append": "",
                 "stage_entries": {}, "clock_mhz": 100, "nvram": null, "boot_order": ["hdd"], "name": "vm"},
     "cpu":     X86State.to_dict() (gprs, rip, rflags, segments with hidden parts, cr0-cr8, efer, msrs,
                fxsave as hex, dr, halted, a20_enabled, pending events),
     "instructions": N, "tsc_offset": N, "clock": {"mhz": .., "offset_ns": ..},
     "devices": {device name: its save() dict}, "stages": [{"stage", "instructions", "time_ns", "pc"}],
     "irq_level": false, "serial": "<hex of everything the guest wrote to COM1>",
     "memory": {"file": "NAME.vmem", "size": bytes, "sha256": "..."}}

Byte strings inside device state are written as ``{"$bytes": "<hex>"}``. Disk contents
are not copied: the state refers to the disk files by absolute path, which must not have
changed since (a test's guest that writes its disk should run on a copy).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, NicConfig
from vmm.cpu.state import X86State
from vmm.errors import ImageError
from vmm.fileio import atomic_write, atomic_write_sparse
from vmm.machine import Machine, MachineState

FORMAT = "vmm-machine-state"
VERSION = 1


def _encode(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def config_to_dict(config: MachineConfig) -> dict:
    def path(p: Path | None) -> str | None:
        return None if p is None else str(Path(p).resolve())

    return {
        "name": config.name, "memory_mb": config.memory_mb, "bios": path(config.bios),
        "disks": [{"slot": d.slot, "path": path(d.path), "kind": d.kind, "read_only": d.read_only}
                  for d in config.disks],
        "kernel": path(config.kernel), "initrd": path(config.initrd), "append": config.append,
        "stage_entries": dict(config.stage_entries), "clock_mhz": config.clock_mhz, "rng_seed": config.rng_seed,
        "nvram": None if config.nvram is None else config.nvram.hex(), "boot_order": list(config.boot_order),
        "machine": config.machine, "rng": config.rng, "balloon": config.balloon,
        "balloon_target_mb": config.balloon_target_mb,
        "nics": [{"slot": n.slot, "connection": n.connection, "mac": n.mac, "pcap": path(n.pcap),
                  "options": dict(n.options)} for n in config.nics],
    }  # fmt: skip


def config_from_dict(data: dict) -> MachineConfig:
    def path(p: str | None) -> Path | None:
        return None if p is None else Path(p)

    config = MachineConfig(
        name=data["name"], memory_mb=data["memory_mb"], bios=path(data["bios"]),
        disks=[DiskConfig(d["slot"], Path(d["path"]), d["kind"], d["read_only"]) for d in data["disks"]],
        kernel=path(data["kernel"]), initrd=path(data["initrd"]), append=data["append"],
        stage_entries=dict(data["stage_entries"]), clock_mhz=data["clock_mhz"], rng_seed=data.get("rng_seed", 0),
        nvram=None if data["nvram"] is None else bytes.fromhex(data["nvram"]), boot_order=list(data["boot_order"]),
    )  # fmt: skip
    config.serial.kind = "none"
    # The pc machine's PCI devices (absent in states written before it existed: isapc).
    config.machine = data.get("machine", "isapc")
    config.rng = data.get("rng", True)
    config.balloon, config.balloon_target_mb = data.get("balloon", False), data.get("balloon_target_mb", 0)
    # A NIC's backend options (hostfwd=, switch=...) and capture file: absent in older states.
    config.nics = [NicConfig(n["slot"], n["connection"], n["mac"], path(n.get("pcap")), dict(n.get("options", {})))
                   for n in data.get("nics", [])]  # fmt: skip
    return config


def save_machine_state(machine: Machine, path: Path | str) -> tuple[Path, Path]:
    """Write ``path`` (.vmsn) and the RAM beside it (.vmem); returns both paths."""
    path = Path(path)
    ram_path = path.with_suffix(".vmem")
    state = machine.save_state(with_ram=True)
    assert state.ram is not None
    document = {
        "format": FORMAT, "version": VERSION, "config": config_to_dict(machine.config),
        "cpu": state.cpu.to_dict(), "instructions": state.instructions, "tsc_offset": state.tsc_offset,
        "clock": state.clock, "devices": _encode(state.devices), "stages": state.stages,
        "irq_level": state.irq_level, "entropy": state.entropy, "serial": bytes(machine.serial_transcript).hex(),
        "memory": {"file": ram_path.name, "size": len(state.ram), "sha256": hashlib.sha256(state.ram).hexdigest()},
    }  # fmt: skip
    atomic_write_sparse(ram_path, state.ram)  # guest RAM is mostly zeros: holes, not 64 MiB
    atomic_write(path, json.dumps(document, indent=1).encode())
    return path, ram_path


def read_machine_state(path: Path | str) -> tuple[MachineConfig, MachineState, bytes]:
    """The config, the state and the serial transcript a .vmsn file holds (checked)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImageError(f"{path}: no such state file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{path}: not a vmm state file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImageError(f'{path}: not a vmm state file (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise ImageError(f"{path}: state format version {document.get('version')!r}, this vmm reads {VERSION}")
    memory = document["memory"]
    ram_path = path.parent / memory["file"]
    try:
        ram = ram_path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{ram_path}: cannot read the memory file: {exc.strerror}") from None
    if len(ram) != memory["size"] or hashlib.sha256(ram).hexdigest() != memory["sha256"]:
        raise ImageError(f"{ram_path}: memory file does not match {path.name} (size or checksum differs)")
    try:
        config = config_from_dict(document["config"])
        state = MachineState(
            cpu=X86State.from_dict(document["cpu"]), instructions=document["instructions"],
            tsc_offset=document["tsc_offset"], clock=document["clock"], devices=_decode(document["devices"]),
            stages=document["stages"], irq_level=document["irq_level"],
            serial_length=len(bytes.fromhex(document["serial"])), ram=ram, entropy=document.get("entropy", 0),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ImageError(f"{path}: malformed state file: {type(exc).__name__} {exc}") from None
    return config, state, bytes.fromhex(document["serial"])


def load_machine_state(path: Path | str, serial_out=None, cpu_factory=None) -> Machine:
    """A Machine that continues exactly where ``save_machine_state`` stopped."""
    config, state, serial = read_machine_state(path)
    machine = Machine(config, serial_out=serial_out, cpu_factory=cpu_factory)
    machine.serial_transcript[:] = serial
    machine.load_state(state)
    return machine
