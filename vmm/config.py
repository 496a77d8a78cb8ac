"""MachineConfig: the typed, validated description of one VM.

Built from command-line flags (vmm.cli) or from a bundle's .vmx (vmm.bundle); consumed by
vmm.machine.Machine. Nothing here touches the guest; validation that needs the file
system (a disk file exists) happens where the config is built.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.errors import ConfigError

if TYPE_CHECKING:  # vmm.config is loaded by `vmm --help`: nothing more than it needs
    from vmm.confine import FileScope

MIB = 1 << 20
MIN_MEMORY_MB = 1
MACHINE_TYPES = ("isapc", "pc")  # QEMU's -M names; pc adds the PCI bus (and its devices)
MAX_MEMORY_MB = 3072  # below the 32-bit PCI/ROM hole; vmm has no high RAM yet


IDE_SLOTS = ("ide0:0", "ide0:1")  # primary master, primary slave: INT 13h 80h, 81h
VIRTIO_DISK_SLOTS = tuple(f"virtio{n}" for n in range(8))  # virtio-blk on the pc machine's PCI bus
FLOPPY_SLOTS = ("floppy0",)  # drive A: (INT 13h 00h), VMware's name for it


@dataclass
class DiskConfig:
    slot: str  # one of IDE_SLOTS or FLOPPY_SLOTS, or "virtio0", "virtio1"... (virtio-blk on PCI)
    path: Path
    kind: str = "disk"  # "disk", "cdrom" or "floppy"
    read_only: bool = False


@dataclass
class SerialConfig:
    kind: str = "stdio"  # stdio | file | socket | pipe | none
    path: str | None = None  # file path, socket HOST:PORT, or pipe path
    scope: FileScope | None = None  # a file named by a bundle: opened under its rule (vmm.confine)


@dataclass
class NicConfig:
    slot: str = "ethernet0"
    connection: str = "user"  # user | loopback | null | switch (backends in vmm.net.backend)
    mac: str | None = None  # None: derived from the VM's name and the slot (stable per bundle)
    pcap: Path | None = None  # record the NIC's frames here
    # The backend's own options (user: net=, hostfwd=...; switch: switch=PATH, vlan=N...).
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class MachineConfig:
    name: str = "vm"
    machine: str = "isapc"
    memory_mb: int = 64
    bios: Path | None = None  # None: firmware/build/bios.bin
    disks: list[DiskConfig] = field(default_factory=list)
    serial: SerialConfig = field(default_factory=SerialConfig)
    nics: list[NicConfig] = field(default_factory=list)
    accel: str = "unicorn"  # unicorn | kvm | auto
    irqchip: str = "user"  # user: vmm's PIC and PIT; kernel: KVM's (with accel kvm only)
    clock_mhz: int = 100  # virtual instructions per microsecond
    realtime: bool = False
    # RDRAND/RDSEED's generator starts from this seed at power-on (a machine setting, so
    # two runs see the same "random" numbers).
    rng_seed: int = 0
    # The RTC's time at power-on: None is a fixed date (DEFAULT_RTC_BASE), "host" the
    # host's clock (also what --realtime implies), or an ISO 8601 date and time.
    rtc_base: str | None = None
    # Writes to the disks stay in memory and are dropped at power-off (qemu -snapshot).
    scratch_disks: bool = False
    kernel: Path | None = None  # Multiboot ELF for direct boot
    initrd: Path | None = None
    append: str = ""
    # Stage entry points named by the user or bundle: {"kernel": 0x100000}.
    stage_entries: dict[str, int] = field(default_factory=dict)
    # CMOS bytes and boot order from the bundle's .nvram (None: power-on defaults).
    nvram: bytes | None = None
    boot_order: list[str] = field(default_factory=lambda: ["hdd"])
    # pc machine: virtio devices besides the disks (slot virtioN) and NICs.
    rng: bool = True  # virtio-rng: bytes from a stream seeded with rng_seed (like RDRAND's)
    balloon: bool = False
    balloon_target_mb: int = 0  # what the balloon asks the guest for at power-on

    @property
    def virtio_disks(self) -> list[DiskConfig]:
        return [disk for disk in self.disks if disk.slot.startswith("virtio")]

    # False: the BIOS does not copy INT 10h teletype output to COM1 (CMOS 0x60 bit 1,
    # for this run only); None: as the CMOS/.nvram says.
    bios_serial: bool | None = None
    # Paths outside a bundle or disk folder the user named (--allow-path), and whether
    # symlinks a bundle or disk descriptor leads to are followed (--follow-symlinks).
    allowed_paths: list[Path] = field(default_factory=list)
    follow_symlinks: bool = False

    @property
    def floppy(self) -> DiskConfig | None:
        """The image in drive A:, if any."""
        return next((disk for disk in self.disks if disk.slot in FLOPPY_SLOTS), None)

    def next_ide_slot(self, path: Path) -> str:
        """The first free IDE slot (master, then slave), for one more --disk."""
        taken = {disk.slot for disk in self.disks}
        for slot in IDE_SLOTS:
            if slot not in taken:
                return slot
        raise ConfigError(f"{path}: no free IDE slot (vmm has two disks at most: {', '.join(IDE_SLOTS)})")

    def file_scope(self, folder: Path | str) -> FileScope:
        from vmm.confine import FileScope

        return FileScope.of(folder, self.allowed_paths, self.follow_symlinks)

    def validate(self) -> MachineConfig:
        if not MIN_MEMORY_MB <= self.memory_mb <= MAX_MEMORY_MB:
            raise ConfigError(f"memory size {self.memory_mb} MB is out of range ({MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB)")
        if self.accel not in ("unicorn", "kvm", "auto"):
            raise ConfigError(f"unknown accelerator {self.accel!r} (choose unicorn, kvm or auto)")
        if self.irqchip not in ("user", "kernel"):
            raise ConfigError(f"unknown irqchip {self.irqchip!r} (choose user or kernel)")
        if self.irqchip == "kernel" and self.accel != "kvm":
            raise ConfigError("the in-kernel irqchip needs --accel kvm")
        if self.clock_mhz <= 0:
            raise ConfigError(f"virtual clock rate must be positive, not {self.clock_mhz}")
        if not 0 <= self.rng_seed < 1 << 64:
            raise ConfigError(f"the RDRAND seed must be a 64-bit unsigned number, not {self.rng_seed}")
        rtc_start_time(self)  # checks rtc_base
        slots = set()
        for disk in self.disks:
            if disk.slot not in IDE_SLOTS + FLOPPY_SLOTS + VIRTIO_DISK_SLOTS:
                raise ConfigError(
                    f"{disk.path}: no disk slot {disk.slot!r} (vmm has {', '.join(IDE_SLOTS + FLOPPY_SLOTS)})"
                )
            if disk.slot in slots:
                raise ConfigError(f"two disks on slot {disk.slot}")
            if (disk.slot in FLOPPY_SLOTS) != (disk.kind == "floppy"):
                raise ConfigError(f"{disk.path}: a {disk.kind} cannot go on slot {disk.slot}")
            slots.add(disk.slot)
        if self.machine not in MACHINE_TYPES:
            raise ConfigError(f"unknown machine type {self.machine!r} (choose {' or '.join(MACHINE_TYPES)})")
        if self.machine != "pc" and (self.virtio_disks or self.balloon):
            raise ConfigError("virtio devices sit on PCI: they need the pc machine (--machine pc)")
        if not 0 <= self.balloon_target_mb <= self.memory_mb:
            raise ConfigError(f"balloon target {self.balloon_target_mb} MB is outside 0-{self.memory_mb} MB")
        if self.serial.kind not in ("stdio", "file", "socket", "pipe", "none"):
            raise ConfigError(f"unknown serial kind {self.serial.kind!r}")
        return self


def rtc_start_time(config: MachineConfig) -> dt.datetime | None:
    """The RTC's start time for ``config``: None for the fixed default, the host's time
    for "host" (or --realtime without an rtc base), else the ISO date given (UTC unless
    it names a zone)."""
    base = config.rtc_base
    if base is None:
        return dt.datetime.now(dt.UTC) if config.realtime else None
    if base.strip().lower() == "host":
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(base.strip())
    except ValueError:
        raise ConfigError(f'rtc base {base!r} is neither "host" nor an ISO date (e.g. 2026-01-01T00:00:00)') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if not 1970 <= when.astimezone(dt.UTC).year <= 2099:
        raise ConfigError(f"rtc base {base!r}: the CMOS clock holds 1970 to 2099")
    return when
