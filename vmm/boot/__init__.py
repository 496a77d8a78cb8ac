"""Boot loaders that put a kernel into RAM without firmware: `--kernel` chooses by what
the file is (a Linux bzImage by its setup header, else a Multiboot v1 kernel)."""

from __future__ import annotations

import os
from pathlib import Path

from vmm.errors import ImageError, KernelError

LINUX_DEFAULT_MEMORY_MB = 128  # as QEMU's default: Debian's 6.1 kernel needs more than 80 MiB


def read_file_limited(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """The bytes of ``path``, or None if it holds more than ``limit``: a 4 GiB file named by
    mistake as a ROM, kernel or module is refused after ``limit + 1`` bytes, never read whole."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return None if len(data) > limit else data


def read_kernel(kernel: Path, limit: int) -> bytes:
    try:
        image = read_file_limited(kernel, limit)
    except OSError as exc:
        raise ImageError(f"{kernel}: cannot read kernel: {exc.strerror}") from None
    if image is None:
        raise ImageError(f"{kernel}: the kernel file is larger than guest RAM ({limit >> 20} MiB)")
    return image


def is_linux_kernel(kernel: Path) -> bool:
    """Whether ``kernel`` looks like a bzImage (unreadable files are left to the loader)."""
    from vmm.boot.linux import has_setup_header

    try:
        with kernel.open("rb") as f:
            return has_setup_header(f.read(0x210))
    except OSError:
        return False


def default_memory_mb(kernel: Path, default: int) -> int:
    """The RAM a `--kernel` run gets without --mem: more for Linux than the machine's default."""
    return max(default, LINUX_DEFAULT_MEMORY_MB) if is_linux_kernel(kernel) else default


def load_kernel(machine, kernel: Path, cmdline: str, initrd: Path | None) -> int:
    """Load ``kernel`` as what it is; return its entry address (the kernel stage)."""
    from vmm.boot.linux import has_setup_header, load_linux
    from vmm.boot.multiboot import NotMultiboot, load_multiboot

    image = read_kernel(kernel, machine.memory.size)
    if getattr(machine, "pci", None) is not None:
        # No firmware runs: set the PCI bus up as vmm's BIOS would have (BARs, IRQs, $PIR).
        from vmm.devices.pci.firmware import configure_like_bios

        configure_like_bios(machine.io, machine.memory)
    if has_setup_header(image):
        return load_linux(machine, kernel, image, cmdline, initrd)
    try:
        return load_multiboot(machine, kernel, cmdline, initrd, image)
    except NotMultiboot:
        raise KernelError(
            f"{kernel}: not a kernel vmm can boot: neither a Linux bzImage (no 'HdrS' setup header at 0x202) "
            f"nor a Multiboot kernel (no header in the first 8192 bytes)"
        ) from None
