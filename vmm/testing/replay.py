"""The last instructions before a failure: replay the session, then disassemble.

Keeping a ring of recent PCs during every run would need a per-instruction hook, which
DESIGN.md principle 6 rules out on the fast path. Instead, when a step fails, a fresh
machine repeats the session's logged calls (same image, same input at the same
instructions: runs are deterministic) and attaches Unicorn's code hook only for the
last few thousand instructions before the failing instruction count. The replay is
trusted only if it ends at the same instruction count and PC as the original; otherwise
the report says it diverged and shows the instructions at the final PC alone.

Instruction bytes are read through the guest's own page tables (no paging, 32-bit,
PAE and 4-level long mode) from RAM or the BIOS ROM, and disassembled with capstone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmm.cpu.state import CR0_PG, CR4_PAE, EFER_LMA, X86State
from vmm.errors import VmmError
from vmm.machine import Machine
from vmm.testing.session import GuestSession, TailRecorder

CR4_PSE = 1 << 4
PAGE_PRESENT = 1
PAGE_SIZE_BIT = 1 << 7
ADDR_MASK = 0x000F_FFFF_FFFF_F000


@dataclass
class Replay:
    pcs: list[int] = field(default_factory=list)
    matched: bool = False
    note: str = ""


def replay_tail(session: GuestSession, keep: int) -> Replay:
    """Repeat ``session``'s calls on a fresh machine; the PCs of its last ``keep`` instructions."""
    final = session.instructions
    final_pc = session.machine.cpu.get_state().pc
    tail = TailRecorder(final, keep)
    again = GuestSession(session.config)
    again.tail = tail
    try:
        for name, args in session.log:
            if tail.finished(again.machine):
                break
            try:
                getattr(again, name)(*args)
            except VmmError:
                pass  # the original failed here too (or later); the instruction count decides
        tail.detach()
        same = again.instructions == final and again.machine.cpu.get_state().pc == final_pc
        note = "" if same else (f"the replay diverged (ended at instruction {again.instructions:,}, "
                                f"pc {again.machine.cpu.get_state().pc:#x}; the failure was at {final:,})")  # fmt: skip
        if same and not tail.pcs:
            note = "this CPU backend cannot trace instructions"
        return Replay(list(tail.pcs) if same else [], same and bool(tail.pcs), note)
    finally:
        tail.detach()
        again.close()


def linear_to_physical(machine: Machine, state: X86State, linear: int) -> int | None:
    """Walk the guest's page tables (SDM vol. 3, 4.3-4.5); None if the page is not present."""
    if not state.cr0 & CR0_PG:
        return linear & 0xFFFFFFFF

    def entry(table: int, index: int, size: int) -> int | None:
        try:
            data = machine.memory.read(table + index * size, size)
        except VmmError:
            return None
        value = int.from_bytes(data, "little")
        return value if value & PAGE_PRESENT else None

    if state.efer & EFER_LMA:
        table = state.cr3 & ADDR_MASK
        for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
            value = entry(table, (linear >> shift) & 0x1FF, 8)
            if value is None:
                return None
            if level in (3, 2) and value & PAGE_SIZE_BIT:
                return (value & ADDR_MASK & ~((1 << shift) - 1)) | (linear & ((1 << shift) - 1))
            table = value & ADDR_MASK
        return table | (linear & 0xFFF)
    linear &= 0xFFFFFFFF
    if state.cr4 & CR4_PAE:
        pdpte = entry(state.cr3 & 0xFFFFFFE0, linear >> 30, 8)
        pde = None if pdpte is None else entry(pdpte & ADDR_MASK, (linear >> 21) & 0x1FF, 8)
        if pde is None:
            return None
        if pde & PAGE_SIZE_BIT:
            return (pde & ADDR_MASK & ~0x1FFFFF) | (linear & 0x1FFFFF)
        pte = entry(pde & ADDR_MASK, (linear >> 12) & 0x1FF, 8)
        return None if pte is None else (pte & ADDR_MASK) | (linear & 0xFFF)
    pde = entry(state.cr3 & 0xFFFFF000, linear >> 22, 4)
    if pde is None:
        return None
    if pde & PAGE_SIZE_BIT and state.cr4 & CR4_PSE:
        return (pde & 0xFFC00000) | (linear & 0x3FFFFF)
    pte = entry(pde & 0xFFFFF000, (linear >> 12) & 0x3FF, 4)
    return None if pte is None else (pte & 0xFFFFF000) | (linear & 0xFFF)


def read_code(machine: Machine, state: X86State, linear: int, length: int = 16) -> bytes:
    """Up to ``length`` bytes at ``linear`` from RAM or the ROM ('' if unmapped)."""
    physical = linear_to_physical(machine, state, linear)
    if physical is None:
        return b""
    rom = machine.rom or b""
    if rom and physical >= (1 << 32) - len(rom):
        offset = physical - ((1 << 32) - len(rom))
        return rom[offset : offset + length]
    low_rom = min(len(rom), 128 * 1024)
    if rom and 0x100000 - low_rom <= physical < 0x100000:
        offset = len(rom) - (0x100000 - physical)
        return rom[offset : offset + min(length, 0x100000 - physical)]
    length = min(length, machine.memory.size - physical)
    if length <= 0:
        return b""
    return machine.memory.read(physical, length)


def disassemble(machine: Machine, state: X86State, pcs: list[int]) -> list[str]:
    """One line per PC: address, bytes and the instruction as capstone reads it."""
    import capstone

    bits = state.code_bits
    mode = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32, 64: capstone.CS_MODE_64}[bits]
    engine = capstone.Cs(capstone.CS_ARCH_X86, mode)
    lines = []
    for pc in pcs:
        code = read_code(machine, state, pc)
        insn = next(engine.disasm(code, pc, 1), None) if code else None
        if insn is None:
            lines.append(f"  {pc:#018x}  {'(not readable)' if not code else code[:8].hex(' ') + '  (?)'}")
        else:
            lines.append(f"  {pc:#018x}  {insn.bytes.hex(' '):<24} {insn.mnemonic} {insn.op_str}".rstrip())
    return lines
