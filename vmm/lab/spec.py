"""LAB.toml: several VMs, the switches between them, and what each VM should print.

::

    name = "two toy OS guests on one switch"
    slice = "1ms"            # the lockstep slice, in virtual time (default 1ms)
    run = "30s"              # stop after this much virtual time (default 60s)

    [[switch]]
    name = "sw0"
    ageing = "300s"          # default 300s (of the lab's virtual time)

    [[vm]]
    name = "a"               # machine keys as `vmm test`'s [machine]: image, bundle, kernel,
    kernel = "vmlinuz"       # initrd, append, mem, bios, disks, floppy, accel; paths are
    initrd = "a.cpio.gz"     # relative to this file; the machine type is always pc
    nic = [{ switch = "sw0", vlan = 10, mac = "52:54:00:00:00:0a", pcap = true }]

    [[step]]                 # optional: checked in order, each on one VM's serial output
    vm = "a"
    expect = "64 bytes from 10.0.0.2"
    within = "20s"           # virtual time (or instructions of that VM: "500M")

A NIC is ``switch = NAME`` with ``vlan = N`` or ``trunk = [N, M]`` (and ``native = N``).
``pcap = true`` records the NIC (virtual timestamps) as OUT/VM-ethN.pcap; every switch port
is recorded as OUT/SWITCH-portN-VM.pcap when the lab runs with ``--out``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from vmm.config import MachineConfig, NicConfig
from vmm.errors import ConfigError
from vmm.net.switch import DEFAULT_AGEING_NS, PortMode
from vmm.sizes import parse_memory_mb
from vmm.testing.spec import MACHINE_KEYS, Budget, machine_config, parse_budget

TOP_KEYS = {"name", "slice", "run", "switch", "vm", "step"}
VM_KEYS = MACHINE_KEYS | {"name", "nic"}
NIC_KEYS = {"switch", "vlan", "trunk", "native", "mac", "pcap"}
STEP_KEYS = {"vm", "expect", "send", "within", "exit"}
DEFAULT_SLICE_NS = 1_000_000
DEFAULT_RUN_NS = 60 * 10**9
MIN_SLICE_NS = 10_000


@dataclass
class LabNic:
    switch: str
    mode: PortMode
    mac: str | None
    pcap: bool


@dataclass
class LabVm:
    name: str
    config: MachineConfig
    nics: list[LabNic]


@dataclass
class LabStep:
    vm: str
    kind: str  # expect | send | exit
    value: object
    within: Budget


@dataclass
class LabSpec:
    path: Path
    name: str
    slice_ns: int
    run_ns: int
    switches: dict[str, int]  # name -> ageing ns
    vms: list[LabVm]
    steps: list[LabStep] = field(default_factory=list)


def _time(value: object, where: str) -> int:
    budget = parse_budget(value, where)
    if budget.time_ns is None:
        raise ConfigError(f"{where}: a virtual time such as 1ms or 30s")
    return budget.time_ns


def _only(table: object, allowed: set[str], where: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return table


def _check_types(machine: dict, where: str) -> None:
    """A VM's machine keys have the types they are used as (one line, not a traceback later)."""
    if not {"image", "bundle", "kernel", "floppy"} & machine.keys():
        raise ConfigError(f"{where}: needs one of image, bundle, kernel or floppy")
    for key in ("image", "bundle", "bios", "kernel", "initrd", "accel", "floppy", "append"):
        if key in machine and not (isinstance(machine[key], str) and (machine[key] or key == "append")):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    disks = machine.get("disks", [])
    if not isinstance(disks, list) or not all(isinstance(d, str) and d for d in disks):
        raise ConfigError(f"{where}: disks must be a list of file names")
    if "mem" in machine:
        if isinstance(machine["mem"], bool) or not isinstance(machine["mem"], str | int):
            raise ConfigError(f'{where}: mem must be a size such as "128M"')
        parse_memory_mb(machine["mem"], f"{where}: mem")
    if "stage_entries" in machine:
        raise ConfigError(f"{where}: stage_entries are not used in a lab")


def _nic(raw: object, where: str, switches: dict[str, int]) -> LabNic:
    table = _only(raw, NIC_KEYS, where)
    switch = table.get("switch")
    if switch not in switches:
        raise ConfigError(f"{where}: switch {switch!r} is not one of the lab's [[switch]] names")
    try:
        if "trunk" in table:
            trunk = table["trunk"]
            trunk = [trunk] if isinstance(trunk, int) else trunk
            if not isinstance(trunk, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in trunk):
                raise ConfigError("trunk: a list of VLAN IDs")
            if "vlan" in table:
                raise ConfigError("vlan and trunk exclude each other")
            mode = PortMode.trunk_of(trunk, table.get("native"))
        else:
            if "native" in table:
                raise ConfigError("native goes with trunk")
            vlan = table.get("vlan", 1)
            if not isinstance(vlan, int) or isinstance(vlan, bool):
                raise ConfigError("vlan: a VLAN ID 1..4094")
            mode = PortMode.access(vlan)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    mac = table.get("mac")
    if mac is not None:
        from vmm.devices.pci.options import MAC

        if not isinstance(mac, str) or not MAC.match(mac):
            raise ConfigError(f"{where}: mac {mac!r} is not six hex pairs with ':'")
        mac = mac.lower()
    pcap = table.get("pcap", False)
    if not isinstance(pcap, bool):
        raise ConfigError(f"{where}: pcap is true or false")
    return LabNic(str(switch), mode, mac, pcap)


def load_lab(path: Path | str) -> LabSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such lab file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _only(data, TOP_KEYS, str(path))
    slice_ns = _time(data.get("slice", "1ms"), f"{path}: slice")
    if slice_ns < MIN_SLICE_NS:
        raise ConfigError(f"{path}: slice: at least 10us (each slice costs a round over every VM)")
    run_ns = _time(data.get("run", "60s"), f"{path}: run")
    switches: dict[str, int] = {}
    for i, raw in enumerate(data.get("switch", [])):
        table = _only(raw, {"name", "ageing"}, f"{path}: switch #{i + 1}")
        name = table.get("name")
        if not isinstance(name, str) or not name or name in switches:
            raise ConfigError(f"{path}: switch #{i + 1}: a unique name is required")
        switches[name] = _time(table["ageing"], f"{path}: switch {name}: ageing") if "ageing" in table \
            else DEFAULT_AGEING_NS  # fmt: skip
    vms: list[LabVm] = []
    raw_vms = data.get("vm", [])
    if not isinstance(raw_vms, list) or not raw_vms:
        raise ConfigError(f"{path}: name at least one [[vm]]")
    for i, raw in enumerate(raw_vms):
        where = f"{path}: vm #{i + 1}"
        table = _only(raw, VM_KEYS, where)
        name = table.get("name")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}: name: letters, digits, - and _ (it names the VM's output files)")
        if any(vm.name == name for vm in vms):
            raise ConfigError(f"{where}: the name {name!r} is taken")
        where = f"{path}: vm {name}"
        machine = {k: v for k, v in table.items() if k in MACHINE_KEYS}
        _check_types(machine, where)
        config = machine_config(machine, path)
        config.name = name
        config.machine = "pc"
        raw_nics = table.get("nic", [])
        if not isinstance(raw_nics, list):
            raise ConfigError(f"{where}: nic: a list of tables")
        nics = [_nic(n, f"{where}: nic #{j + 1}", switches) for j, n in enumerate(raw_nics)]
        config.nics = [NicConfig(f"ethernet{j}", "null", nic.mac) for j, nic in enumerate(nics)]
        vms.append(LabVm(name, config, nics))
    steps = [_step(raw, i, path, {vm.name for vm in vms}) for i, raw in enumerate(data.get("step", []))]
    return LabSpec(path, str(data.get("name", path.stem)), slice_ns, run_ns, switches, vms, steps)


def _step(raw: object, index: int, path: Path, names: set[str]) -> LabStep:
    where = f"{path}: step #{index + 1}"
    table = _only(raw, STEP_KEYS, where)
    if table.get("vm") not in names:
        raise ConfigError(f"{where}: vm {table.get('vm')!r} is not one of the lab's VMs")
    kinds = [k for k in ("expect", "send", "exit") if k in table]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: exactly one of expect, send, exit")
    kind = kinds[0]
    value = table[kind]
    if kind in ("expect", "send") and not isinstance(value, str):
        raise ConfigError(f"{where}: {kind} is a string")
    if kind == "exit" and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: exit is the status the guest leaves with (a number)")
    within = parse_budget(table.get("within", "10s"), f"{where}: within")
    return LabStep(table["vm"], kind, value, within)
