"""Symbols from an ELF file (pyelftools), for breakpoints by name and for disassembly."""

from __future__ import annotations

import bisect
from pathlib import Path

from vmm.errors import ImageError


class Symbols:
    def __init__(self, by_name: dict[str, int], entry: int | None = None) -> None:
        self.by_name = by_name
        self.entry = entry
        pairs = sorted((addr, name) for name, addr in by_name.items() if addr)
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]

    @classmethod
    def from_elf(cls, path: Path) -> Symbols:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection

        try:
            with open(path, "rb") as handle:
                elf = ELFFile(handle)
                names: dict[str, int] = {}
                for section in elf.iter_sections():
                    if not isinstance(section, SymbolTableSection):
                        continue
                    for sym in section.iter_symbols():
                        kind = sym["st_info"]["type"]
                        defined = sym["st_shndx"] not in ("SHN_UNDEF", "SHN_ABS")
                        if sym.name and defined and kind in ("STT_FUNC", "STT_NOTYPE", "STT_OBJECT"):
                            names.setdefault(sym.name, sym["st_value"])
                return cls(names, elf.header["e_entry"])
        except FileNotFoundError:
            raise ImageError(f"{path}: symbol file not found") from None
        except (ELFError, OSError) as exc:
            raise ImageError(f"{path}: not a readable ELF file ({exc})") from None

    def lookup(self, name: str) -> int | None:
        return self.by_name.get(name)

    def name_for(self, addr: int, exact: bool = False) -> str | None:
        """``name`` or ``name+0xoff`` for the nearest symbol at or below ``addr``."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        off = addr - self._addrs[i]
        if off == 0:
            return self._names[i]
        if exact or off > 0x10000:
            return None
        return f"{self._names[i]}+{off:#x}"
