"""Expectation files: a declarative test of a guest image, in TOML.

A file names the machine, then a list of steps run in order against one boot::

    name = "toy OS: boot to the shell"     # optional (default: the file name)

    [machine]                # paths are relative to this file
    image = "../../guests/build/toyos.img" # or bundle = "vm.vmx", or kernel = "k.elf"
    # bios = "rom.bin"  mem = "64M"  append = "..."  initrd = "..."  accel = "unicorn"
    # disks = ["second.img"]  floppy = "a.img" (drive A:, booted first)
    # start = "prompt.vmsn"  (instead of the keys above: start from a saved machine state;
    #                         tests that share one boot it once per worker, then revert)
    # bundle = "vm.vmx"  snapshot = "booted"  (start from a snapshot in the bundle's tree)

    [keep]                   # what a failure keeps (all on by default)
    state = true             # NAME.vmsn + NAME.vmem for `vmm step`
    screenshot = true        # screen.png
    trace = 16               # how many of the last instructions to replay and list

    [[step]]
    expect = 'toyos\\$ '     # a regex on the serial output, after the previous match
    within = "50M"           # instructions (50M, 2_000_000) or virtual time (5s, 20ms)

    [[step]]
    send = "echo hi\\r"      # typed on COM1, byte for byte

    [[step]]
    send-keys = ["Down", "Down", "Enter"]   # pressed on the PS/2 keyboard (tmux's key names)

Step kinds (exactly one per step; ``within`` applies to those that run the guest):
``expect`` (regex), ``send`` (text on COM1), ``send-keys`` (keys on the keyboard: a list
of tmux key names such as "Up", "F1", "Escape", "C-c", "M-x"; an entry that names no key is
typed as text), ``stage`` (run until it is reached), ``stages``
(the timeline so far, in order), ``exit`` (run until the guest ends: a status number,
or "halted" / "triple-fault"), ``screen`` (the VGA text contains this, waiting up to
``within``), ``serial_equals`` (the whole transcript equals a file, CR LF read as LF
unless ``raw = true``), ``run`` (run a budget, expect nothing), ``snapshot`` (keep the
machine state under this name).

Everything is checked when the file is read: a bad key or value is one ConfigError naming
the file, the step and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import regex

from vmm.config import DiskConfig, MachineConfig
from vmm.debug.stages import STAGES
from vmm.errors import ConfigError, VmmError, hide_for_vmm_errors
from vmm.sizes import parse_count, parse_memory_mb

__tracebackhide__ = hide_for_vmm_errors  # a bad value in a test shows the test's line

STEP_KINDS = ("expect", "send", "send-keys", "stage", "stages", "exit", "screen", "serial_equals", "run", "snapshot")
STEP_MODIFIERS = {"within", "raw", "note"}
MACHINE_KEYS = {"image", "bundle", "bios", "mem", "kernel", "append", "initrd", "accel", "disks", "floppy",
                "stage_entries", "start", "snapshot"}  # fmt: skip
START_KEYS = {"start", "accel"}  # a start snapshot holds the rest of the machine
SNAPSHOT_KEYS = {"bundle", "snapshot", "accel"}  # a bundle's named snapshot: the same
KEEP_KEYS = {"state", "screenshot", "trace"}
TOP_KEYS = {"name", "machine", "keep", "step", "timeout"}
EXIT_WORDS = ("halted", "triple-fault")
DEFAULT_WITHIN = "1s"  # of virtual time: 100 M instructions at the default 100 MHz
DEFAULT_TIMEOUT = 120.0  # wall seconds for the whole test: a guard, not a budget
TIME_BUDGET = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*(ns|us|ms|s)\s*$", re.I)
NUMBER_FIRST = re.compile(r"\s*[-+]?[0-9]")
INSN_WORDS = re.compile(r"\s*(insns?|instructions)\s*$", re.I)
TIME_UNITS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9}


@dataclass(frozen=True)
class Budget:
    """How far a step may run the guest: instructions, or nanoseconds of virtual time."""

    instructions: int | None = None
    time_ns: int | None = None

    def describe(self) -> str:
        if self.instructions is not None:
            return f"{self.instructions:,} instructions"
        assert self.time_ns is not None
        return f"{self.time_ns / 1e9:g} s of virtual time"


def parse_budget(value: object, where: str) -> Budget:
    """``2000000`` / ``"50M"`` / ``"50M insns"`` → instructions; ``"5s"`` / ``"20ms"`` → virtual time.

    Instruction counts are read by vmm.sizes.parse_count, as ``--max-insns`` is.
    """
    what = f"{where}: within"
    match = TIME_BUDGET.match(value) if isinstance(value, str) else None
    if match is not None:
        budget = Budget(time_ns=int(float(match[1].replace("_", "")) * TIME_UNITS[match[2].lower()]))
    elif isinstance(value, int | str) and not isinstance(value, bool) and NUMBER_FIRST.match(str(value)):
        count = INSN_WORDS.sub("", value) if isinstance(value, str) else value
        budget = Budget(instructions=parse_count(count, what))
    else:
        raise ConfigError(f"{what} = {value!r}: expected instructions (50M, 2_000_000) or time (5s, 20ms)")
    if not (budget.instructions or budget.time_ns):
        raise ConfigError(f"{what} = {value!r} must be more than zero")
    return budget


@dataclass
class Step:
    kind: str  # one of STEP_KINDS
    value: object  # str, int, list[str] or Path, as the kind needs
    within: Budget
    raw: bool = False
    index: int = 0  # 1-based, as the report names it
    line: str = ""  # how the file wrote it, for reports

    def describe(self) -> str:
        return f"step {self.index}: {self.line}"


@dataclass
class Keep:
    state: bool = True
    screenshot: bool = True
    trace: int = 16


@dataclass
class TestSpec:
    path: Path
    name: str
    machine: dict
    steps: list[Step]
    keep: Keep = field(default_factory=Keep)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def slug(self) -> str:
        """A file-name-safe name for this test's report folder and golden file."""
        stem = self.path.name.removesuffix(".toml").removesuffix(".vmm")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)

    @property
    def golden_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".toml") + ".golden.json")

    @property
    def start(self) -> Path | None:
        """The machine state file (``.vmsn``) the test starts from, if it names one: ``start``
        directly, or ``snapshot`` = the name of a snapshot in ``bundle``'s tree (its checkpoint
        file, NAME-SnapshotN.vmsn; a ConfigError when the bundle has no such snapshot)."""
        if "snapshot" in self.machine:
            from vmm.snapshot.bundle import BundleSnapshots

            vmx = self.path.parent / self.machine["bundle"]
            try:
                snapshots = BundleSnapshots(vmx)
                return snapshots.folder / snapshots.tree().find(self.machine["snapshot"]).filename
            except VmmError as exc:
                raise ConfigError(f"{self.path}: [machine] snapshot = {self.machine['snapshot']!r}: {exc}") from None
        return self.path.parent / self.machine["start"] if "start" in self.machine else None

    def machine_config(self) -> MachineConfig:
        """The MachineConfig the [machine] table describes (files must exist by now)."""
        return machine_config(self.machine, self.path)

    def required_files(self) -> list[Path]:
        """Built artifacts the test needs (image, bundle, ROM, kernel): a caller may skip without them."""
        base = self.path.parent
        keys = ("image", "bundle", "bios", "kernel", "initrd", "floppy")
        found = [base / self.machine[k] for k in keys if k in self.machine]
        try:
            start = self.start
        except ConfigError:
            start = None  # the bundle (listed above) is missing or has no such snapshot
        if start is not None:
            found += [start, start.with_suffix(".vmem")]
        return found + [base / d for d in self.machine.get("disks", [])]


def machine_config(table: dict, spec_path: Path) -> MachineConfig:
    base = spec_path.parent
    where = f"{spec_path}: [machine]"
    if "bundle" in table:
        from vmm.bundle.config import load_bundle

        config, _ignored = load_bundle(base / table["bundle"])
    else:
        config = MachineConfig()
    disks = ([table["image"]] if "image" in table else []) + list(table.get("disks", []))
    for disk in disks:
        config.disks.append(DiskConfig(f"ide0:{len(config.disks)}", base / disk))
    if "floppy" in table:
        config.disks.append(DiskConfig("floppy0", base / table["floppy"], kind="floppy"))
        config.boot_order = ["floppy", "hdd"]
    for key in ("bios", "kernel", "initrd"):
        if key in table:
            setattr(config, key, base / table[key])
    if "append" in table:
        config.append = table["append"]
    if "mem" in table:
        config.memory_mb = parse_memory_mb(table["mem"], f"{where}: mem")
    if "accel" in table:
        config.accel = table["accel"]
    for stage, addr in table.get("stage_entries", {}).items():
        config.stage_entries[stage] = int(addr, 0) if isinstance(addr, str) else addr
    config.serial.kind = "none"
    for path in (config.bios, config.kernel, config.initrd, *(d.path for d in config.disks)):
        if path is not None and not path.exists():
            raise ConfigError(f"{where}: {path}: no such file")
    try:
        return config.validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_spec(path: Path | str) -> TestSpec:
    """Read and check one expectation file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such expectation file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return spec_from_dict(data, path)


def spec_from_dict(data: dict, path: Path) -> TestSpec:
    _only(data, TOP_KEYS, f"{path}")
    machine = data.get("machine")
    if not isinstance(machine, dict):
        raise ConfigError(f"{path}: a [machine] table is required (image, bundle or kernel)")
    _only(machine, MACHINE_KEYS, f"{path}: [machine]")
    if "start" in machine:
        extra = sorted(set(machine) - START_KEYS)
        if extra:
            raise ConfigError(f"{path}: [machine] start = a saved machine state: {extra[0]!r} comes from that state")
    elif "snapshot" in machine:
        if "bundle" not in machine:
            raise ConfigError(f"{path}: [machine] snapshot = NAME needs bundle = the .vmx whose snapshot it is")
        extra = sorted(set(machine) - SNAPSHOT_KEYS)
        if extra:
            raise ConfigError(f"{path}: [machine] snapshot = NAME: {extra[0]!r} comes from that snapshot")
    elif not {"image", "bundle", "kernel", "floppy"} & machine.keys():
        raise ConfigError(f"{path}: [machine] needs one of image, bundle, kernel, floppy or start")
    _check_machine_types(machine, f"{path}: [machine]")
    keep_table = data.get("keep", {})
    _only(keep_table, KEEP_KEYS, f"{path}: [keep]")
    keep = Keep(**keep_table)
    if not isinstance(keep.trace, int) or not 0 <= keep.trace <= 4096:
        raise ConfigError(f"{path}: [keep] trace must be a number of instructions from 0 to 4096")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f"{path}: no [[step]] tables: a test needs at least one step")
    steps = [_parse_step(raw, i + 1, path) for i, raw in enumerate(raw_steps)]
    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{path}: timeout must be a positive number of wall seconds")
    name = data.get("name", path.name.removesuffix(".toml").removesuffix(".vmm"))
    return TestSpec(path, str(name), machine, steps, keep, float(timeout))


def _check_machine_types(machine: dict, where: str) -> None:
    """The [machine] values have the types they are used as (a number where a file name goes
    is one line here, not a traceback when the machine is built)."""
    for key in ("image", "bundle", "bios", "kernel", "initrd", "accel", "floppy", "start"):
        if key in machine and not (isinstance(machine[key], str) and machine[key]):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    if "append" in machine and not isinstance(machine["append"], str):
        raise ConfigError(f"{where}: append must be a string")
    disks = machine.get("disks", [])
    if not isinstance(disks, list) or not all(isinstance(d, str) and d for d in disks):
        raise ConfigError(f"{where}: disks must be a list of file names")
    if "mem" in machine:
        if isinstance(machine["mem"], bool) or not isinstance(machine["mem"], str | int):
            raise ConfigError(f'{where}: mem must be a size such as "64M"')
        parse_memory_mb(machine["mem"], f"{where}: mem")
    entries = machine.get("stage_entries", {})
    if not isinstance(entries, dict):
        raise ConfigError(f"{where}: stage_entries must be a table of stage = address")
    for stage, addr in entries.items():
        if stage not in STAGES:
            raise ConfigError(f"{where}: stage_entries: {stage!r} is not one of {', '.join(STAGES)}")
        try:
            value = int(addr, 0) if isinstance(addr, str) else addr
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
            raise ConfigError(f"{where}: stage_entries: {stage} = {addr!r} is not an address")


def _only(table: object, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _parse_step(raw: object, index: int, path: Path) -> Step:
    where = f"{path}: step {index}"
    _only(raw, set(STEP_KINDS) | STEP_MODIFIERS, where)
    assert isinstance(raw, dict)
    kinds = [k for k in STEP_KINDS if k in raw]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: a step has exactly one of {', '.join(STEP_KINDS)} (found {kinds or 'none'})")
    kind = kinds[0]
    value = raw[kind]
    within = parse_budget(raw.get("within", DEFAULT_WITHIN), where)
    if kind in ("expect", "send", "screen", "snapshot") and not (isinstance(value, str) and value):
        raise ConfigError(f"{where}: {kind} must be a non-empty string")
    if kind == "expect":
        try:
            regex.compile(value.encode("latin-1"))  # the engine the session matches with (time-bounded)
        except (regex.error, UnicodeEncodeError) as exc:
            raise ConfigError(f"{where}: expect = {value!r} is not a usable regex: {exc}") from None
    if kind == "send-keys":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(k, str) and k for k in value):
            raise ConfigError(f'{where}: send-keys must be a list of key names, e.g. ["Up", "Enter"]')
        from vmm.keys import scancodes_for_keys

        scancodes_for_keys(value)  # every entry is a key or typeable text
    if kind == "snapshot" and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ConfigError(f"{where}: snapshot name {value!r} must be letters, digits, '.', '_' or '-'")
    if kind == "stage" and value not in STAGES:
        raise ConfigError(f"{where}: stage {value!r} is not one of {', '.join(STAGES)}")
    if kind == "stages":
        if not isinstance(value, list) or not value or any(s not in STAGES for s in value):
            raise ConfigError(f"{where}: stages must be a list of {', '.join(STAGES)}")
    if kind == "exit" and not (
        (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255) or value in EXIT_WORDS
    ):
        raise ConfigError(f'{where}: exit must be a status 0-255, "halted" or "triple-fault", not {value!r}')
    if kind == "serial_equals":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: serial_equals must be a file path")
        value = path.parent / value
    if kind == "run":
        within = parse_budget(value, where)
    line = f"{kind} = {raw[kind]!r}" + (f" within {raw['within']}" if "within" in raw else "")
    return Step(kind, value, within, bool(raw.get("raw", False)), index, line)
