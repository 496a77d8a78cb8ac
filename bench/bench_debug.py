"""Debugging speed, measured side by side in one run on a CPU-bound ROM loop: a plain
run, the same run with a breakpoint armed (a code hook on one address never reached),
the same run with a write watchpoint armed on a page the loop does not touch,
`step N` in one batch, single steps, and the traced (per-instruction) path."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.debug.engine import Debugger
from vmm.debug.trace import write_trace
from vmm.machine import Machine

LOOP = """
    mov ecx, 0x7fffffff
    xor eax, eax
1:  add eax, ecx
    xor eax, 0x55
    rol eax, 3
    mov [0x600], eax
    dec ecx
    jnz 1b
    hlt
"""
RUN = 20_000_000


def _machine(rom: Path) -> Machine:
    return Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rom = Path(tmp, "loop.bin")
        rom.write_bytes(assemble_rom(LOOP))
        plain = _machine(rom)
        t = time.perf_counter()
        plain.run(max_instructions=RUN)
        plain_ips = _rate(plain.cpu.instructions, time.perf_counter() - t)
        plain.close()

        machine = _machine(rom)
        dbg = Debugger(machine, checkpoint_every=None)
        dbg.add("addr", 0x12345678, "never reached")
        t = time.perf_counter()
        dbg.cont(RUN)
        armed_ips = _rate(dbg.instructions, time.perf_counter() - t)

        watched_machine = _machine(rom)
        watched = Debugger(watched_machine, checkpoint_every=None)
        watched.add("watch", (0x9000, 4, "w"), "unrelated page")
        t = time.perf_counter()
        watched.cont(RUN)
        watch_ips = _rate(watched.instructions, time.perf_counter() - t)
        watched.close()
        watched_machine.close()

        start = dbg.instructions
        t = time.perf_counter()
        dbg.step(RUN)
        batch_ips = _rate(dbg.instructions - start, time.perf_counter() - t)

        start = dbg.instructions
        t = time.perf_counter()
        for _ in range(2000):
            dbg.step(1)
        single_ips = _rate(dbg.instructions - start, time.perf_counter() - t)

        t = time.perf_counter()
        traced = write_trace(dbg, 0xFFFFFFFF, io.StringIO(), limit=3000)
        trace_ips = _rate(traced, time.perf_counter() - t)
        dbg.close()
        machine.close()
    print(f"debug: plain run                 {plain_ips / 1e6:9.1f} M instructions/s")
    print(f"debug: breakpoint armed          {armed_ips / 1e6:9.1f} M instructions/s "
          f"(ratio to plain {armed_ips / plain_ips:.2f})")  # fmt: skip
    print(f"debug: write watchpoint armed    {watch_ips / 1e6:9.1f} M instructions/s "
          f"(ratio to plain {watch_ips / plain_ips:.2f})")  # fmt: skip
    print(f"debug: step {RUN:,} in one batch {batch_ips / 1e6:9.1f} M instructions/s "
          f"(ratio to plain {batch_ips / plain_ips:.2f})")  # fmt: skip
    print(f"debug: single steps              {single_ips / 1e3:9.1f} k steps/s")
    print(f"debug: trace on                  {trace_ips / 1e3:9.1f} k instructions/s")


if __name__ == "__main__":
    main()
