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

import time
from dataclasses import dataclass, field

from vmm.cpu.paging import PhysicalReader, read_linear
from vmm.cpu.state import X86State
from vmm.errors import VmmError
from vmm.machine import Machine
from vmm.testing.session import GuestSession, TailRecorder


@dataclass
class Replay:
    pcs: list[int] = field(default_factory=list)
    matched: bool = False
    note: str = ""


def replay_tail(session: GuestSession, keep: int) -> Replay:
    """Repeat ``session``'s calls on a fresh machine; the PCs of its last ``keep`` instructions."""
    final = session.instructions
    final_pc = session.machine.cpu.get_state().pc
    # The replay shares the test's own wall-clock timeout: a test that failed on it is
    # not run a second time (it would take as long again).
    left = None if session.wall_deadline is None else session.wall_deadline - time.monotonic()
    if left is not None and left <= 0:
        return Replay(note="not replayed: the test used up its wall-clock timeout")
    tail = TailRecorder(final, keep)
    again = GuestSession(session.config, wall_timeout=left)
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
        out_of_time = again.wall_deadline is not None and time.monotonic() >= again.wall_deadline
        if out_of_time and not same:
            return Replay(note="the replay ran out of the test's wall-clock timeout")
        note = "" if same else (f"the replay diverged (ended at instruction {again.instructions:,}, "
                                f"pc {again.machine.cpu.get_state().pc:#x}; the failure was at {final:,})")  # fmt: skip
        if same and not tail.pcs:
            note = "this CPU backend cannot trace instructions"
        return Replay(list(tail.pcs) if same else [], same and bool(tail.pcs), note)
    finally:
        tail.detach()
        again.close()


def read_code(machine: Machine, state: X86State, linear: int, length: int = 16) -> bytes:
    """Up to ``length`` bytes at ``linear`` from RAM or the ROM, through the guest's page
    tables (vmm.cpu.paging); as many as are readable in a row ('' if none)."""
    reader = PhysicalReader(machine)
    code = bytearray()
    for offset in range(length):  # byte by byte: an instruction may straddle the end of RAM or a page
        try:
            code += read_linear(reader, state, linear + offset, 1)
        except VmmError:
            break
    return bytes(code)


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
