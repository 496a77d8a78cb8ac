"""The PC's guest-physical address map: RAM from 0, the BIOS ROM at the top of the first
MiB (its last 128 KiB, as QEMU) and of 4 GiB, device windows, and holes where nothing
answers; and the BIOS ROM image itself, checked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vmm.boot import read_file_limited
from vmm.bus import MmioWindow
from vmm.cpu.base import PhysRegion
from vmm.errors import ImageError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIOS = ROOT / "firmware" / "build" / "bios.bin"
FOUR_GIB = 1 << 32
LOW_ROM_MAX = 128 * 1024  # at most the top 128 KiB of the ROM appear below 1 MiB (as QEMU)


def load_rom(path: Path) -> bytes:
    try:
        data = read_file_limited(path, 256 * 1024)  # a 4 GiB file named by mistake is not read whole
    except FileNotFoundError:
        raise ImageError(f"{path}: BIOS ROM not found (run `make firmware`, or pass --bios ROM)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read BIOS ROM: {exc.strerror}") from None
    if data is None or not 64 * 1024 <= len(data) <= 256 * 1024 or len(data) % (64 * 1024):
        size = f"more than {256 * 1024}" if data is None else len(data)
        raise ImageError(f"{path}: a BIOS ROM must be 64, 128, 192 or 256 KiB, not {size} bytes")
    return data


def physical_map(ram: int, rom: bytes, windows: Iterable[MmioWindow]) -> list[PhysRegion]:
    """RAM, ROM copies, device windows and bus holes, in address order, as the CPU maps them."""
    windows = list(windows)
    low_rom = rom[-LOW_ROM_MAX:] if rom else b""
    low_base = 0x100000 - len(low_rom)
    regions = []
    cursor = 0
    # Device windows below 1 MiB (the VGA's at 0xA0000) cut holes in low RAM.
    for window in (w for w in windows if w.end <= low_base):
        if window.base > cursor:
            regions.append(PhysRegion(cursor, min(ram, window.base) - cursor, "ram", cursor))
        regions.append(PhysRegion(window.base, window.size, "device"))
        cursor = window.end
    regions.append(PhysRegion(cursor, min(ram, low_base) - cursor, "ram", cursor))
    if low_rom:
        regions.append(PhysRegion(low_base, len(low_rom), "rom", data=low_rom))
    if ram > 0x100000:
        regions.append(PhysRegion(0x100000, ram - 0x100000, "ram", 0x100000))
    top = FOUR_GIB - len(rom) if rom else FOUR_GIB
    cursor = max(ram, 0x100000)
    for window in (w for w in windows if w.base >= 0x100000):
        if window.base > cursor:
            regions.append(PhysRegion(cursor, window.base - cursor, "hole"))
        regions.append(PhysRegion(window.base, window.size, "device"))
        cursor = window.end
    if top > cursor:
        regions.append(PhysRegion(cursor, top - cursor, "hole"))
    if rom:
        regions.append(PhysRegion(top, len(rom), "rom", data=rom))
    return regions
