"""Guest virtual → physical translation for the debugger, walked in Python from CR3.

Covers what the SDM vol. 3 ch. 4 calls 32-bit paging (with 4 MiB pages under CR4.PSE),
PAE paging and 4-level paging; no 5-level paging, no protection-key or permission
checks (the debugger looks, it does not access). Reads go to RAM (GuestMemory) or to
the ROM copies in the machine's physical map; anything else reads as absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmm.cpu.state import CR0_PG, CR4_PAE, EFER_LMA, X86State
from vmm.errors import VmmError

CR4_PSE = 1 << 4
PTE_P = 1 << 0
PTE_RW = 1 << 1
PTE_US = 1 << 2
PTE_A = 1 << 5
PTE_D = 1 << 6
PTE_PS = 1 << 7
PTE_NX = 1 << 63
ADDR_MASK = 0x000FFFFFFFFFF000
PAGE = 4096


class PageFault(VmmError):
    """The guest's page tables do not map a linear address (what #PF would report)."""


@dataclass(frozen=True)
class Level:
    name: str  # PML4E, PDPTE, PDE, PTE
    entry_address: int  # physical address of the entry
    value: int

    def describe(self) -> str:
        flags = [name for bit, name in ((PTE_P, "P"), (PTE_RW, "RW"), (PTE_US, "US"), (PTE_A, "A"),
                                        (PTE_D, "D"), (PTE_PS, "PS"), (PTE_NX, "NX")) if self.value & bit]  # fmt: skip
        return f"{self.name:<6} @ {self.entry_address:#014x} = {self.value:#018x}  {' '.join(flags)}"


class PhysicalReader:
    """Reads guest-physical memory: RAM, or the ROM images where the machine maps them."""

    def __init__(self, machine) -> None:
        self.memory = machine.memory
        self.roms = [(r.base, r.data) for r in machine.physical_map() if r.kind == "rom"]

    def read(self, addr: int, length: int) -> bytes:
        # ROM first: the low ROM copy hides the RAM under it (0xE0000-0xFFFFF).
        for base, data in self.roms:
            if base <= addr and addr + length <= base + len(data):
                return data[addr - base : addr - base + length]
        if self.memory.contains(addr, length):
            return self.memory.read(addr, length)
        raise PageFault(f"physical address {addr:#x} is not RAM or ROM")

    def u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")


def walk(reader: PhysicalReader, state: X86State, linear: int) -> tuple[int, list[Level]]:
    """The physical address of ``linear`` and the table entries on the way."""
    if not state.cr0 & CR0_PG:
        return linear & 0xFFFFFFFF if not state.efer & EFER_LMA else linear, []
    levels: list[Level] = []

    def entry(name: str, table: int, index: int, size: int) -> int:
        addr = table + index * size
        value = reader.u64(addr) if size == 8 else reader.u32(addr)
        levels.append(Level(name, addr, value))
        if not value & PTE_P:
            raise PageFault(f"linear {linear:#x} is not mapped ({name} {value:#x} not present)")
        return value

    if state.efer & EFER_LMA:
        table = state.cr3 & ADDR_MASK
        chain = (("PML4E", 39, None), ("PDPTE", 30, 1 << 30), ("PDE", 21, 1 << 21), ("PTE", 12, None))
        for name, shift, large in chain:
            value = entry(name, table, (linear >> shift) & 0x1FF, 8)
            if large and value & PTE_PS:
                return (value & ADDR_MASK & ~(large - 1)) | (linear & (large - 1)), levels
            table = value & ADDR_MASK
        return table | (linear & 0xFFF), levels
    linear &= 0xFFFFFFFF
    if state.cr4 & CR4_PAE:
        pdpte = entry("PDPTE", state.cr3 & 0xFFFFFFE0, (linear >> 30) & 3, 8)
        pde = entry("PDE", pdpte & ADDR_MASK, (linear >> 21) & 0x1FF, 8)
        if pde & PTE_PS:
            return (pde & ADDR_MASK & ~0x1FFFFF) | (linear & 0x1FFFFF), levels
        pte = entry("PTE", pde & ADDR_MASK, (linear >> 12) & 0x1FF, 8)
        return (pte & ADDR_MASK) | (linear & 0xFFF), levels
    pde = entry("PDE", state.cr3 & 0xFFFFF000, linear >> 22, 4)
    if pde & PTE_PS and state.cr4 & CR4_PSE:
        return (pde & 0xFFC00000) | (linear & 0x3FFFFF), levels
    pte = entry("PTE", pde & 0xFFFFF000, (linear >> 12) & 0x3FF, 4)
    return (pte & 0xFFFFF000) | (linear & 0xFFF), levels


def translate(reader: PhysicalReader, state: X86State, linear: int) -> int:
    return walk(reader, state, linear)[0]


def read_linear(reader: PhysicalReader, state: X86State, linear: int, length: int) -> bytes:
    """``length`` bytes at a linear (virtual) address, page by page."""
    out = bytearray()
    while length > 0:
        chunk = min(length, PAGE - (linear & (PAGE - 1)))
        out += reader.read(translate(reader, state, linear), chunk)
        linear += chunk
        length -= chunk
    return bytes(out)


def write_linear(reader: PhysicalReader, state: X86State, linear: int, data: bytes) -> None:
    """Write guest RAM at a linear address (ROM is not writable from the debugger)."""
    while data:
        chunk = min(len(data), PAGE - (linear & (PAGE - 1)))
        phys = translate(reader, state, linear)
        if not reader.memory.contains(phys, chunk):
            raise PageFault(f"physical address {phys:#x} is not RAM")
        reader.memory.write(phys, data[:chunk])
        linear += chunk
        data = data[chunk:]
