"""``vmm create``: a new bundle folder ``NAME/`` with ``NAME.vmx``, ``NAME.nvram``, ``NAME.vmdk``.

The disk is a monolithicSparse VMDK made by :mod:`vmm.disk` (``create_disk``), or, with
``--from-image``, a copy of an existing raw or VMDK image converted by ``vmm.disk``'s
``convert`` (sparse: only the data is copied). The bundle is built in a temporary folder
beside the target and renamed into place at the end, so a failed or interrupted create
leaves nothing half made.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from vmm.bundle.nvram import Nvram
from vmm.bundle.vmx import VmxFile
from vmm.config import MAX_MEMORY_MB, MIN_MEMORY_MB
from vmm.errors import ConfigError, ImageError

SECTOR = 512
CONFIG_VERSION = "8"
VIRTUAL_HW_VERSION = "4"  # the oldest hardware VMware knows: a plain PC with IDE, as vmm is
GUEST_OS = "other-64"
DISK_TYPE = "monolithicSparse"


def bundle_paths(name_or_dir: str | Path) -> tuple[Path, str]:
    """(folder, NAME) for ``NAME``, ``path/to/NAME``, ``NAME.vmx`` or ``NAME/``."""
    path = Path(name_or_dir)
    if path.suffix.lower() == ".vmx":
        path = path.with_suffix("")
    name = path.name
    if not name or name in (".", "..") or name.startswith("."):
        raise ConfigError(f"{name_or_dir}: not a usable VM name")
    return path, name


def create_bundle(
    name_or_dir: str | Path,
    disk_size_bytes: int | None,
    from_image: str | Path | None = None,
    memsize_mb: int = 64,
) -> Path:
    """Create the bundle and return the path of its .vmx."""
    folder, name = bundle_paths(name_or_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{folder}: already exists (choose another name or remove it)")
    if not MIN_MEMORY_MB <= memsize_mb <= MAX_MEMORY_MB:
        raise ConfigError(f"memory size {memsize_mb} MB is out of range ({MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB)")
    if from_image is None:
        if disk_size_bytes is None or disk_size_bytes <= 0:
            raise ConfigError("create: a disk size is needed (e.g. --disk-size 64M), or --from-image IMG")
        if disk_size_bytes % SECTOR:
            disk_size_bytes += SECTOR - disk_size_bytes % SECTOR
    else:
        from_image = Path(from_image)
        if not from_image.is_file():
            raise ImageError(f"{from_image}: no such file")
        if disk_size_bytes is not None:
            raise ConfigError("create: --from-image takes the image's size; leave out the disk size")

    parent = folder.parent if str(folder.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{parent}: no such folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".creating", dir=parent))
    try:
        disk_name = f"{name}.vmdk"
        _make_disk(staging / disk_name, disk_size_bytes, from_image)
        Nvram().save(staging / f"{name}.nvram")
        _new_vmx(name, memsize_mb, disk_name).save(staging / f"{name}.vmx")
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, folder)  # atomic; replaces only an empty folder
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot create the bundle: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder / f"{name}.vmx"


def _new_vmx(name: str, memsize_mb: int, disk_name: str) -> VmxFile:
    vmx = VmxFile(f"{name}.vmx")
    for key, value in [
        ("config.version", CONFIG_VERSION),
        ("virtualHW.version", VIRTUAL_HW_VERSION),
        ("displayName", name),
        ("guestOS", GUEST_OS),
        ("memsize", str(memsize_mb)),
        ("numvcpus", "1"),
        ("nvram", f"{name}.nvram"),
        ("ide0:0.present", "TRUE"),
        ("ide0:0.fileName", disk_name),
        ("ide0:0.deviceType", "ata-hardDisk"),
        # No serial0 keys: COM1 goes to the terminal running vmm.
    ]:
        vmx.set(key, value)
    return vmx


def _make_disk(path: Path, size: int | None, image: Path | None) -> None:
    try:
        from vmm.disk.vmdk.convert import convert
        from vmm.disk.vmdk.create import create_disk
    except ImportError as exc:  # the disk package is part of vmm; this is a broken install
        raise ImageError(f"{path}: cannot make VMDK disks: {exc}") from None
    if image is None:
        assert size is not None
        create_disk(path, size // SECTOR, DISK_TYPE, adapter_type="ide")
    else:
        convert(image, path, DISK_TYPE, adapter_type="ide")
