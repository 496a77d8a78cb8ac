"""Symbols and source lines from ELF files (pyelftools), for breakpoints by name, the
disassembly, ``list`` and the source line of pc.

Several files load side by side (`vmm step --symbols boot.elf --symbols kernel.elf`), each
with a bias added to its addresses (``FILE@0x7c00`` for a file linked at 0 and loaded
there). A name two files define is kept from the first one and reported, never silently
replaced. An ELF's entry is only that file's: the ``kernel`` stage is named by
``--stage-kernel``, not inferred from a symbol file.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path

from vmm.errors import ImageError

MAX_SYMBOL_DISTANCE = 0x10000  # farther than this past a symbol, an address has no name


@dataclass
class Symbols:
    by_name: dict[str, int]
    entry: int | None = None
    lines: list[tuple[int, str | None, int]] = field(default_factory=list)  # (address, path, line)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        pairs = sorted((addr, name) for name, addr in self.by_name.items() if addr)
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]
        self.lines.sort(key=lambda entry: entry[0])
        self._line_addrs = [entry[0] for entry in self.lines]

    @classmethod
    def from_elf(cls, path: Path, bias: int = 0) -> Symbols:
        from elftools.common.exceptions import DWARFError, ELFError
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
                            names.setdefault(sym.name, sym["st_value"] + bias)
                try:
                    lines = _line_table(elf, bias) if elf.has_dwarf_info() else []
                except (DWARFError, ELFError, KeyError, IndexError, ValueError, AttributeError):
                    lines = []  # a damaged line table: symbols without source lines
                return cls(names, elf.header["e_entry"] + bias, lines, [str(path)])
        except FileNotFoundError:
            raise ImageError(f"{path}: symbol file not found") from None
        except (ELFError, OSError) as exc:
            raise ImageError(f"{path}: not a readable ELF file ({exc})") from None

    @classmethod
    def load(cls, specs: list[str]) -> Symbols | None:
        """``--symbols FILE[@BIAS]``, each one; None without any."""
        merged: Symbols | None = None
        for spec in specs:
            path, _, bias_text = spec.partition("@")
            try:
                bias = int(bias_text, 0) if bias_text else 0
            except ValueError:
                raise ImageError(f"--symbols {spec}: {bias_text!r} is not an address (FILE@0x7c00)") from None
            one = cls.from_elf(Path(path), bias)
            merged = one if merged is None else merged.merge(one)
        return merged

    def merge(self, other: Symbols) -> Symbols:
        names = dict(self.by_name)
        clashes = [name for name in other.by_name if name in names and names[name] != other.by_name[name]]
        for name, addr in other.by_name.items():
            names.setdefault(name, addr)
        notes = list(self.notes) + other.notes
        if clashes:
            shown = ", ".join(sorted(clashes)[:5]) + (" ..." if len(clashes) > 5 else "")
            notes.append(f"{other.files[0]}: {len(clashes)} names also in {', '.join(self.files)} "
                         f"kept from there ({shown})")  # fmt: skip
        return Symbols(names, self.entry, self.lines + other.lines, self.files + other.files, notes)

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
        if exact or off > MAX_SYMBOL_DISTANCE:
            return None
        return f"{self._names[i]}+{off:#x}"

    def start_of(self, addr: int) -> int | None:
        """The address of the symbol ``addr`` is in (for disassembling before pc)."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0 or addr - self._addrs[i] > MAX_SYMBOL_DISTANCE:
            return None
        return self._addrs[i]

    def line_for(self, addr: int) -> tuple[str, int] | None:
        """(source path, line) of the instruction at ``addr`` when a line table covers it."""
        i = bisect.bisect_right(self._line_addrs, addr) - 1
        if i < 0 or self.lines[i][1] is None:
            return None
        return self.lines[i][1], self.lines[i][2]

    def names(self) -> list[str]:
        return list(self.by_name)


def _line_table(elf, bias: int) -> list[tuple[int, str | None, int]]:
    """Every row of every line program: (address, source path or None at a sequence end, line)."""
    rows: list[tuple[int, str | None, int]] = []
    dwarf = elf.get_dwarf_info()
    for cu in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            continue
        top = cu.get_top_DIE()
        comp_dir = top.attributes["DW_AT_comp_dir"].value.decode(errors="replace") if "DW_AT_comp_dir" in \
            top.attributes else ""  # fmt: skip
        version = program.header["version"]
        files = program.header["file_entry"]
        dirs = program.header["include_directory"]
        base = 0 if version >= 5 else 1  # DWARF 5 numbers files and directories from 0

        paths = {}
        for index in range(base, base + len(files)):
            entry = files[index - base]
            dir_index = entry.dir_index - (0 if version >= 5 else 1)
            directory = dirs[dir_index].decode(errors="replace") if 0 <= dir_index < len(dirs) else ""
            paths[index] = os.path.normpath(os.path.join(comp_dir, directory, entry.name.decode(errors="replace")))

        for entry in program.get_entries():
            state = entry.state
            if state is None:
                continue
            rows.append((state.address + bias, None if state.end_sequence else paths.get(state.file), state.line))
    return rows
