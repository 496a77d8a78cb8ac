"""``vmm --version``: vmm's version, unicorn's, and the BIOS's (read from the ROM itself)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_BIOS = ROOT / "firmware" / "build" / "bios.bin"
BANNER = re.compile(rb"vmm BIOS ([0-9][0-9A-Za-z.+-]*)")
DATE_OFFSET = 0xFFF5  # F000:FFF5, the BIOS date (mm/dd/yy) in the ROM's last 64 KiB


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def bios_version(path: Path = DEFAULT_BIOS) -> str:
    """``0.1 (11/22/25)`` from the ROM's banner and date, or why there is none."""
    try:
        rom = path.read_bytes()
    except OSError:
        return f"not built ({path} is missing: run make)"
    banner = BANNER.search(rom)
    date = rom[len(rom) - 0x10000 + DATE_OFFSET :][:8] if len(rom) >= 0x10000 else b""
    version = banner[1].decode() if banner else "unknown"
    if re.fullmatch(rb"\d\d/\d\d/\d\d", date):
        version += f" ({date.decode()})"
    return version


def version_text() -> str:
    from vmm import __version__

    return (f"vmm {__version__}\n"
            f"unicorn {_package_version('unicorn')}\n"
            f"BIOS {bios_version()}")  # fmt: skip
