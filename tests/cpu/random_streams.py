"""Random instruction streams on the whole machine (issue 23): ``python -m tests.cpu.random_streams
MODE INSTRUCTIONS SEED`` runs seeded random bytes as code in real, protected (32-bit, CPL 0,
flat) or long mode (64-bit, CPL 0, identity-mapped 1 GiB) until that many instructions have
retired, and prints one JSON line of what happened. Whatever the bytes do (fault, triple
fault, halt, write ports, reset the machine, rewrite their own page tables), vmm must stop or
go on cleanly: only VmmErrors are allowed out of the machine; any other exception, and any
crash of the process, is a failure.

Each stream is CHUNK random bytes at CODE, run for at most BUDGET instructions from a reset
machine put into the mode (RAM is not cleared: what earlier streams wrote stays). All opcodes
are in play, x87 included, on issue 15's patched libunicorn. With the plain 2.1.4 wheel these
streams crashed (SIGSEGV, depending on memory layout) in real and long mode even without
x87 opcodes; with the patched library no crash was seen.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from collections import Counter

from vmm.config import MachineConfig, SerialConfig
from vmm.cpu.state import ATTR_DB, ATTR_G, ATTR_L, ATTR_P, ATTR_S, Segment, Table, X86State
from vmm.errors import VmmError
from vmm.machine import Machine

CODE = 0x10000
CHUNK = 4096
BUDGET = 20_000
STACK = 0x9F000
PML4, PDPT, PD = 0x1000, 0x2000, 0x3000
GDT = 0x4000
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
CR0_PE, CR0_ET, CR0_NE, CR0_PG = 1, 1 << 4, 1 << 5, 1 << 31
CR4_PAE, CR4_OSFXSR = 1 << 5, 1 << 9


def random_code(rng: random.Random) -> bytes:
    return rng.randbytes(CHUNK)  # every opcode, x87 included (issue 15's libunicorn patch)


def fresh_state(machine: Machine, mode: str) -> X86State:
    memory = machine.memory
    state = X86State()
    state.rflags = 0x2
    if mode == "real":
        state.rip = 0
        for name, selector in (
            ("cs", CODE >> 4),
            ("ds", 0x3000),
            ("es", 0x4000),
            ("ss", 0x8000),
            ("fs", 0x5000),
            ("gs", 0x6000),
        ):
            state.segments[name] = Segment(selector, selector << 4, 0xFFFF, 0x93 if name != "cs" else 0x9B)
        state.gprs["rsp"] = 0xFFF0
        state.cr0 = CR0_ET
        return state
    gdt = struct.pack("<QQQQ", 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF, 0x00AF9A000000FFFF)
    memory.write(GDT, gdt)
    state.gdt = Table(GDT, len(gdt) - 1)
    state.idt = Table(0, 0)  # any exception: a triple fault, which ends the stream
    data = Segment(0x10, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3)
    state.rip = CODE
    state.gprs["rsp"] = STACK
    if mode == "protected":
        code = Segment(0x08, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0xB)
        state.cr0 = CR0_PE | CR0_ET | CR0_NE
    else:
        # Identity-map the first GiB with 2 MiB pages; the stream may rewrite these tables,
        # so they are written again for every stream.
        memory.write(PML4, struct.pack("<Q", PDPT | 3).ljust(4096, b"\0"))
        memory.write(PDPT, struct.pack("<Q", PD | 3).ljust(4096, b"\0"))
        memory.write(PD, b"".join(struct.pack("<Q", (i << 21) | 0x83) for i in range(512)))
        code = Segment(0x18, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_L | ATTR_G | 0xB)
        state.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG
        state.cr3 = PML4
        state.cr4 = CR4_PAE | CR4_OSFXSR
        state.efer = EFER_LME | EFER_LMA
    state.segments = {"cs": code, "ss": data, "ds": data, "es": data, "fs": data, "gs": data}
    return state


def run(mode: str, instructions: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    machine = Machine(MachineConfig(memory_mb=16, serial=SerialConfig("none")))
    outcomes: Counter[str] = Counter()
    streams = executed = 0
    while executed < instructions:
        machine.memory.write(CODE, random_code(rng))
        machine.reset()  # as a reset after a triple fault: the CPU leaves its shutdown state
        machine.cpu.set_state(fresh_state(machine, mode))
        start = machine.cpu.instructions
        try:
            result = machine.run(max_instructions=BUDGET)
            outcomes[result.reason] += 1
        except VmmError as exc:  # stopped cleanly with one line for the user
            outcomes[f"VmmError {type(exc).__name__}"] += 1
        executed += machine.cpu.instructions - start
        streams += 1
    return {"mode": mode, "instructions": executed, "streams": streams, "outcomes": dict(outcomes)}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
