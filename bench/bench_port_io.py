"""Host time per guest OUT to a device that raises an IRQ: COM1's THR with the transmit
interrupt enabled and IRQ 4 unmasked at the 8259A (interrupts off in the CPU, so the
line is raised and latched on every OUT but never taken). The path measured is the one
docs/design-notes.md writes out ("One port write, end to end").

``VMM_BENCH_BEFORE=DIR`` (a checkout of an earlier vmm with its native modules built)
measures that tree too, in a subprocess of the same run, and prints the ratio."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUTS = 200_000
ROUNDS = 3
LOOP = f"""
    cli
    mov al, 0x11                # ICW1: edge, cascade, ICW4
    out 0x20, al
    mov al, 0x08                # ICW2: vectors 08-0F
    out 0x21, al
    mov al, 0x04                # ICW3: slave on IR2
    out 0x21, al
    mov al, 0x01                # ICW4: 8086 mode
    out 0x21, al
    mov al, 0xEF                # OCW1: only IR4 (COM1) unmasked
    out 0x21, al
    mov dx, COM1 + 1
    mov al, 0x02                # IER: transmitter holding register empty
    out dx, al
    mov dx, COM1
    mov ecx, {OUTS}
1:  mov al, 0x2E
    out dx, al
    dec ecx
    jnz 1b
    mov al, 0
    out 0xF4, al
"""

MEASURE = """
import sys, time
from pathlib import Path
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine
machine = Machine(MachineConfig(bios=Path(sys.argv[1]), serial=SerialConfig("none")))
start = time.process_time()
result = machine.run(max_instructions=50_000_000)
elapsed = time.process_time() - start
assert result.reason == "exit-port", result
assert len(machine.serial_transcript) == int(sys.argv[2]), len(machine.serial_transcript)
print(elapsed / int(sys.argv[2]) * 1e9)
"""


def per_out_ns(tree: Path, rom: Path) -> float:
    """Nanoseconds of host CPU time per OUT in a fresh interpreter (process time: less
    disturbed than wall time by other work on a shared host)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(rom), str(OUTS)], cwd=tree, check=True,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tree)))  # fmt: skip
    return float(out.stdout.split()[-1])


def main() -> None:
    from tests.cpu.rom import assemble_rom

    here = Path(__file__).resolve().parent.parent
    before_tree = os.environ.get("VMM_BENCH_BEFORE")
    trees = [here] + ([Path(before_tree)] if before_tree else [])
    with tempfile.TemporaryDirectory() as tmp:
        rom = Path(tmp, "outs.bin")
        rom.write_bytes(assemble_rom(LOOP))
        best = {tree: float("inf") for tree in trees}
        for _ in range(ROUNDS):  # interleaved, the best of each: load on the host hits both alike
            for tree in trees:
                best[tree] = min(best[tree], per_out_ns(tree, rom))
        now = best[here]
        print(f"   OUT to COM1 raising IRQ 4: {now / 1000:.2f} us host time per OUT ({OUTS:,} OUTs)")
        if before_tree:
            before = best[Path(before_tree)]
            print(f"   the same in {before_tree}: {before / 1000:.2f} us per OUT; "
                  f"this tree takes {now / before:.2f}x the time")  # fmt: skip


if __name__ == "__main__":
    main()
