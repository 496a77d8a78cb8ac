"""What ``vmm create``, ``vmm show``, ``vmm set`` and ``vmm nvram`` do, as plain functions.

Every change to a bundle is checked before it is written: ``set_key`` builds the whole
MachineConfig from the edited settings and saves nothing if that fails. Edits take the
VM's lock, so a bundle is never changed under a running monitor.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmm.bundle.config import BundleConfig, build_config, resolve_bundle
from vmm.bundle.create import create_bundle
from vmm.bundle.lock import VmLock
from vmm.bundle.nvram import ForeignNvramError, Nvram
from vmm.bundle.vmx import VmxFile, check_key, escape_value
from vmm.confine import FileScope, ScopeRefusal, printable
from vmm.errors import ConfigError, VmmError
from vmm.sizes import parse_memory_mb

__all__ = ["create_bundle", "nvram_path", "nvram_set", "nvram_show", "resolve_bundle", "set_key", "show"]

VALUE_COLUMN = 44


def show(path: Path | str) -> str:
    """The settings, one per line, each with what vmm makes of it; then ignored keys and notes.

    A bundle vmm cannot run is still shown, with the reason on the last line.
    """
    vmx_path = Path(os.path.abspath(resolve_bundle(path)))
    vmx = VmxFile.load(vmx_path)
    bundle: BundleConfig | None = None
    problem = None
    try:
        bundle = build_config(vmx, vmx_path)
    except VmmError as exc:
        problem = str(exc)
    lines = [f"{vmx_path}"]
    meaning = bundle.meaning if bundle else {}
    for key, value in vmx.items():
        setting = f'{key} = "{escape_value(value)}"'
        what = meaning.get(key.lower())
        lines.append(f"  {setting:<{VALUE_COLUMN}}  # {what}" if what else f"  {setting}")
    if bundle is not None:
        if bundle.ignored_keys:
            lines.append("ignoring unsupported keys: " + ", ".join(bundle.ignored_keys))
        lines.extend(f"note: {note}" for note in bundle.notes)
        machine = bundle.machine
        disks = ", ".join(f"{d.slot} {d.kind} {d.path.name}" for d in machine.disks) or "none"
        lines.append(
            f"machine: {machine.name}, {machine.memory_mb} MB, disks: {disks}, "
            f"boot {','.join(machine.boot_order)}, serial {machine.serial.kind}, {machine.accel}, "
            f"machine type {machine.machine}"
        )
        from vmm.devices.pci.board import planned_devices

        lines.extend(f"pci: {description}" for _kind, description in planned_devices(machine))
        if machine.machine != "pc" and machine.nics:
            lines.append('note: the NICs are virtio-net on PCI: they need vmm.machine = "pc"')
    else:
        lines.append(f"error: {problem}")
    return "\n".join(lines)


# The keys vmm reads, spelled as VMware writes them: what `vmm set` suggests for a typo.
KNOWN_KEYS = [
    "displayName", "memsize", "numvcpus", "guestOS", "firmware", "nvram", "bios.bootOrder",
    *(f"{slot}.{p}" for slot in ("ide0:0", "ide0:1")
      for p in ("present", "fileName", "deviceType", "mode", "startConnected")),
    *(f"serial0.{p}" for p in ("present", "fileType", "fileName", "startConnected")),
    *(f"floppy0.{p}" for p in ("present", "fileType", "fileName", "startConnected", "readonly")),
    *(f"ethernet{n}.{p}" for n in range(4)
      for p in ("present", "connectionType", "virtualDev", "addressType", "generatedAddress", "address")),
    "vmm.accel", "vmm.clockMHz", "vmm.realtime", "vmm.kernel", "vmm.initrd", "vmm.append", "vmm.bios",
    "vmm.allowOutsidePaths", *(f"vmm.stage.{stage}" for stage in ("bootloader", "kernel", "init")),
]  # fmt: skip


def nearest_key(key: str) -> str | None:
    import difflib

    by_lower = {k.lower(): k for k in KNOWN_KEYS}
    close = difflib.get_close_matches(key.lower(), by_lower, n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def set_key(path: Path | str, key: str, value: str | None, force: bool = False) -> Path:
    """Set ``key`` (or remove it when ``value`` is None) and save, if the result is valid.

    The whole bundle as it would be is checked, not just the key. A key vmm does not read
    (a typo, most often) is refused unless ``force``, naming the nearest key vmm knows.
    Returns the .vmx path written.
    """
    vmx_path = Path(os.path.abspath(resolve_bundle(path)))
    check_key(key)
    with VmLock(vmx_path):
        vmx = VmxFile.load(vmx_path)
        if value is None:
            if not vmx.delete(key):
                raise ConfigError(f"{vmx_path}: no key {key!r} to remove")
        else:
            if key.lower() == ".encoding":
                raise ConfigError(f"{vmx_path}: .encoding is kept as the file was written")
            vmx.set(key, _as_vmware_writes(key, value))
        try:
            bundle = build_config(vmx, vmx_path)
        except VmmError as exc:
            raise type(exc)(f"{exc} (nothing saved)") from None
        unknown = value is not None and key.lower() in {k.lower() for k in bundle.ignored_keys}
        if unknown and not force:
            near = nearest_key(key)
            hint = f"did you mean {near}? " if near else ""
            raise ConfigError(f"{vmx_path}: {key}: not a key vmm reads ({hint}nothing saved; --force writes it anyway)")
        vmx.save(vmx_path)
    return vmx_path


def _as_vmware_writes(key: str, value: str) -> str:
    """``memsize = "128M"`` is saved as VMware reads it, ``"128"`` (MB); a bad size is left for
    the bundle check to report with its place in the file."""
    if key.lower() == "memsize":
        try:
            return str(parse_memory_mb(value, key))
        except ConfigError:
            pass
    return value


def nvram_path(path: Path | str) -> tuple[Path, Path | None]:
    """(the .nvram file, the bundle's .vmx or None) for a bundle, its .vmx, or an .nvram file."""
    path = Path(path)
    if path.suffix.lower() == ".nvram":
        return path, None
    vmx_path = Path(os.path.abspath(resolve_bundle(path)))
    vmx = VmxFile.load(vmx_path)
    name = vmx.get("nvram") or f"{vmx_path.stem}.nvram"
    path = Path(os.path.normpath(vmx_path.parent / name))
    try:
        FileScope.of(vmx_path.parent, kind="bundle folder").check(path, repr(printable(name)))
    except ScopeRefusal as exc:
        raise ConfigError(f"{vmx.where('nvram')}: nvram: {exc}") from None
    return path, vmx_path


def _load_nvram(path: Path) -> tuple[Nvram, bool]:
    if not path.exists():
        return Nvram(), False
    return Nvram.load(path), True


def nvram_show(path: Path | str) -> str:
    file, _ = nvram_path(path)
    nvram, exists = _load_nvram(file)
    head = str(file) if exists else f"{file} (not created yet: the defaults)"
    return head + "\n" + nvram.describe()


def boot_devices(machine) -> list[str]:
    """The boot devices (nvram ``boot.order`` names) this machine has."""
    names: list[str] = []
    hard_disks = [d for d in machine.disks if d.kind == "disk"]
    if hard_disks:
        names.append("hdd")
    if len(hard_disks) > 1:
        names.append("hdd1")
    if any(d.kind == "cdrom" for d in machine.disks):
        names.append("cdrom")
    if any(d.kind == "floppy" for d in machine.disks) or getattr(machine, "floppies", None):
        names.append("floppy")
    return names


def _check_boot_devices(vmx_path: Path, order: list[str]) -> None:
    machine = build_config(VmxFile.load(vmx_path), vmx_path).machine
    present = boot_devices(machine)
    missing = [name for name in order if name not in present]
    if missing:
        has = ", ".join(present) or "no boot device at all"
        raise ConfigError(f"{vmx_path}: boot.order {','.join(order)}: this machine has no {' or '.join(missing)} "
                          f"(it has {has}; nothing saved)")  # fmt: skip


def nvram_set(path: Path | str, key: str, value: str) -> Path:
    """Set one firmware setting (``boot.order``, ``bios.quiet``, ``bios.serialConsole``, ``cmos.0xNN``)."""
    file, vmx_path = nvram_path(path)
    lock = VmLock(vmx_path) if vmx_path is not None else None
    if lock is not None:
        lock.acquire()
    try:
        try:
            nvram, _ = _load_nvram(file)
        except ForeignNvramError as exc:
            raise ConfigError(f"{exc}: refusing to overwrite it") from None
        nvram.set(key, value)
        if vmx_path is not None and key.lower() == "boot.order":
            _check_boot_devices(vmx_path, nvram.boot_order)
        nvram.save(file)
    finally:
        if lock is not None:
            lock.release()
    return file
