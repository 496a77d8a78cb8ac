"""The flags every command that builds a machine shares, and the MachineConfig they describe.

``vmm run``, ``screenshot``, ``step`` and ``trace`` all call :func:`add_machine_flags`; a
new machine flag goes here (and into :func:`config_from_args`), once for all of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.errors import ConfigError
from vmm.sizes import parse_memory_mb


def add_machine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", help="a raw or VMDK disk image, or a bundle (NAME.vmx or its folder)")
    p.add_argument("--bios", metavar="ROM", help="BIOS ROM image, 64-256 KiB (default: firmware/build/bios.bin)")
    p.add_argument("--disk", metavar="IMG", action="append", help="a disk image (repeat for the slave)")
    p.add_argument("--floppy", metavar="IMG", help="a floppy image in drive A: (INT 13h 00h; 360 KiB to 2.88 MiB), "
                   "as qemu -fda")  # fmt: skip
    p.add_argument("--boot", metavar="ORDER", help="boot order, e.g. floppy,hdd (devices: floppy, hdd, hdd1; "
                   "default: floppy first when there is one, then the hard disks)")  # fmt: skip
    p.add_argument("--mem", metavar="SIZE",
                   help="guest RAM, e.g. 64M or 1G (default 64M; 128M for a Linux --kernel)")  # fmt: skip
    p.add_argument("--accel", choices=["unicorn", "kvm", "auto"], help="CPU backend (default unicorn)")
    p.add_argument("--irqchip", choices=["user", "kernel"],
                   help="with --accel kvm: vmm's PIC and PIT (user, default) or KVM's in-kernel ones")  # fmt: skip
    p.add_argument("--kernel", metavar="FILE",
                   help="boot a kernel directly, as qemu -kernel: a Linux bzImage or a Multiboot kernel")  # fmt: skip
    p.add_argument("--append", metavar="CMDLINE", help="kernel command line (with --kernel)")
    p.add_argument("--initrd", metavar="'FILE [ARGS]'",
                   help="with --kernel: a Linux initrd, or a Multiboot module (the whole text is its string, "
                   "as with qemu)")  # fmt: skip
    p.add_argument("--rtc-base", metavar="WHEN", help="the RTC's time at power-on: an ISO date "
                   "(default 2026-01-01T00:00:00, UTC) or host (the host's clock, as --realtime)")  # fmt: skip
    p.add_argument("--rng-seed", metavar="N", help="seed of the generator RDRAND/RDSEED answer from (default 0)")
    from vmm.devices.pci import options as pci_options

    pci_options.add_flags(p)
    p.add_argument(
        "--allow-path",
        metavar="PATH",
        action="append",
        default=[],
        help="let a bundle or disk chain use this file or folder outside its own folder (repeatable)",
    )
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symlinks a bundle or a disk descriptor leads to (refused by default)",
    )


def scope_args(args: argparse.Namespace) -> tuple[list[str], bool]:
    """--allow-path and --follow-symlinks: what a bundle or disk chain may reach (vmm.confine)."""
    return list(getattr(args, "allow_path", None) or []), bool(getattr(args, "follow_symlinks", False))


def serial_config(text: str) -> SerialConfig:
    if text in ("stdio", "none"):
        return SerialConfig(text)
    kind, _, path = text.partition(":")
    if kind in ("file", "socket") and path:
        return SerialConfig(kind, path)
    raise ConfigError(f"--serial: expected stdio, none, file:PATH or socket:[HOST:]PORT, not {text!r}")


def parse_address(text: str, what: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not an address") from None
    if value < 0:
        raise ConfigError(f"{what}: {text} is negative")
    return value


def output_path(text: str, flag: str) -> Path:
    """A file the command will write (--out, --screenshot): its folder must exist and the
    path, if there, be a regular file; checked before the guest runs rather than after."""
    path = Path(text)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{flag}: {folder}: no such folder")
    if path.exists() and not path.is_file():
        # The file is replaced atomically (a temp file renamed over it): never over a device
        # or a folder.
        raise ConfigError(f"{flag}: {path} is not a regular file")
    return path


def write_output(path: Path, flag: str, write):
    """``write(path)``; a failure (a full device, a folder removed meanwhile) is one line."""
    from vmm.errors import VmmError

    try:
        return write(path)
    except OSError as exc:
        raise VmmError(f"{flag}: {path}: cannot write: {exc.strerror}") from None


def is_bundle(target: str | None) -> bool:
    return bool(target) and (target.endswith(".vmx") or Path(target).is_dir())


def config_from_args(args: argparse.Namespace, bundle=None) -> tuple[MachineConfig, list[str]]:
    """The MachineConfig a `vmm run`/`step`/`trace` command line describes."""
    ignored: list[str] = []
    target = getattr(args, "image", None)
    if bundle is not None or is_bundle(target):
        if bundle is None:
            from vmm.bundle.config import read_bundle

            bundle = read_bundle(Path(target), *scope_args(args))
        config, ignored = bundle.machine, bundle.ignored_keys
    else:
        config = MachineConfig()
        if target:
            config.disks.append(image_disk(Path(target)))
    for disk in args.disk or []:
        config.disks.append(DiskConfig(config.next_ide_slot(Path(disk)), Path(disk)))
    if getattr(args, "floppy", None):
        if config.floppy is not None:
            raise ConfigError(f"--floppy {args.floppy}: drive A: already holds {config.floppy.path}")
        config.disks.append(DiskConfig("floppy0", Path(args.floppy), kind="floppy"))
    if getattr(args, "boot", None):
        config.boot_order = boot_order(args.boot)
    elif bundle is None and config.floppy is not None:
        config.boot_order = ["floppy", "hdd"]  # a PC's "A: then C:"
    allowed, follow = scope_args(args)
    config.allowed_paths += [Path(p) for p in allowed]
    config.follow_symlinks = config.follow_symlinks or follow
    if args.bios:
        config.bios = Path(args.bios)
    if args.mem:
        config.memory_mb = parse_memory_mb(args.mem, "--mem")
    if args.accel:
        config.accel = args.accel
    if getattr(args, "irqchip", None):
        config.irqchip = args.irqchip
    if getattr(args, "serial", None):
        config.serial = serial_config(args.serial)
    if getattr(args, "no_bios_serial", False):
        config.bios_serial = False
    if getattr(args, "realtime", False):
        config.realtime = True
    if getattr(args, "rtc_base", None):
        config.rtc_base = args.rtc_base
    if getattr(args, "rng_seed", None):
        try:
            config.rng_seed = int(args.rng_seed.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(f"--rng-seed: {args.rng_seed!r} is not a number") from None
    if getattr(args, "kernel", None):
        config.kernel = Path(args.kernel)
    if getattr(args, "append", None) is not None:
        config.append = args.append
    if getattr(args, "initrd", None):
        config.initrd = Path(args.initrd)
    if config.kernel is not None and not args.mem and bundle is None and not is_bundle(target):
        from vmm.boot import default_memory_mb

        config.memory_mb = default_memory_mb(config.kernel, config.memory_mb)
    if getattr(args, "stage_kernel", None):
        config.stage_entries["kernel"] = kernel_entry(args.stage_kernel)
    from vmm.devices.pci import options as pci_options

    pci_options.apply_flags(config, args)
    module = Path(str(config.initrd).split(" ", 1)[0]) if config.initrd is not None else None
    for path in [config.bios, config.kernel, module]:
        if path is not None and not path.exists():
            raise ConfigError(f"{path}: no such file")
    return config.validate(), ignored


SMALL_IMAGE = 64 * 1024  # below this an image is a boot sector and a few more: a floppy
BOOT_DEVICES = ("floppy", "hdd", "hdd1")


def image_disk(path: Path) -> DiskConfig:
    """The drive `vmm run IMAGE` puts IMAGE in: drive A: for an image under 64 KiB (a boot
    sector from a tutorial, which expects drive 00h and floppy CHS geometry) or of an
    exact floppy size (360 KiB, 720 KiB, 1.2, 1.44 or 2.88 MiB); the primary IDE master
    (drive 80h) otherwise. --floppy and --disk choose explicitly."""
    from vmm.devices.fdc82077 import FORMATS

    try:
        size = path.stat().st_size
    except OSError:
        return DiskConfig("ide0:0", path)  # the machine reports the missing file
    if 0 < size < SMALL_IMAGE or size in {fmt.kib * 1024 for fmt in FORMATS}:
        return DiskConfig("floppy0", path, kind="floppy")
    return DiskConfig("ide0:0", path)


def boot_order(text: str) -> list[str]:
    devices = [part.strip() for part in text.split(",") if part.strip()]
    bad = [device for device in devices if device not in BOOT_DEVICES]
    if bad or not devices or len(devices) > 3:
        raise ConfigError(f"--boot: {text!r}: expected up to three of {', '.join(BOOT_DEVICES)}, comma-separated")
    return devices


def kernel_entry(text: str) -> int:
    """An address, or the entry point of an ELF file."""
    if Path(text).is_file():
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            with open(text, "rb") as f:
                return ELFFile(f)["e_entry"]
        except ELFError as exc:
            raise ConfigError(f"--stage-kernel: {text}: not an ELF file ({exc})") from None
    return parse_address(text, "--stage-kernel")


def make_machine(config: MachineConfig, serial_out=None):
    from vmm.cpu.select import cpu_factory_for
    from vmm.machine import Machine

    factory = cpu_factory_for(
        config.accel, report=lambda line: print(f"vmm: {line}", file=sys.stderr), irqchip=config.irqchip
    )
    machine = Machine(config, serial_out=serial_out, cpu_factory=factory)
    for backend in machine.pci.backends if machine.pci else []:  # e.g. the port a hostfwd got
        for note in getattr(getattr(backend, "inner", backend), "notes", []):
            print(f"vmm: {note}", file=sys.stderr, flush=True)
    return machine
