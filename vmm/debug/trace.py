"""`vmm trace`: one line per instruction (count, address, bytes, disassembly, the
registers it changed), for diffing two runs. The opt-in slow path: one exact step per
instruction (DESIGN.md principle 6 keeps this off the normal run)."""

from __future__ import annotations

from typing import TextIO

from vmm.debug.engine import Debugger
from vmm.debug.stages import STAGES
from vmm.debug.views import Disassembler, register_values


def write_trace(dbg: Debugger, until: str | int, out: TextIO, from_stage: str | None = None,
                limit: int = 5_000_000) -> int:  # fmt: skip
    """Trace until the stage ``until`` starts or the pc reaches address ``until``."""
    disasm = Disassembler(dbg.reader, dbg.symbols)
    machine = dbg.machine
    if from_stage is not None:
        dbg.add("stage", from_stage, f"stage {from_stage}")
        if machine.stages.current != from_stage:
            dbg.cont(limit)
        dbg.delete(dbg.breakpoints[-1].number)
    count = 0
    state = dbg.state()
    before = register_values(state)
    while count < limit:
        if isinstance(until, str) and STAGES.index(machine.stages.current) >= STAGES.index(until):
            break
        if isinstance(until, int) and state.pc == until:
            break
        found = disasm.instructions(state, state.pc, 1)
        raw, text = (found[0][1], found[0][2]) if found else (b"", "(unreadable)")
        event = dbg.step(1)
        count += 1
        state = dbg.state()
        after = register_values(state)
        changed = " ".join(f"{k}={v:#x}" for k, v in after.items() if before.get(k) != v and k != "rip")
        before = after
        out.write(f"{dbg.instructions - 1:>10} {found[0][0] if found else 0:#018x} {raw.hex():<20} "
                  f"{text:<40} {changed}\n")  # fmt: skip
        if event.kind == "exit":
            out.write(f"# {event.text}\n")
            break
    return count
