"""Timer deadlines are exact wherever they are armed: a guest that programs the PIT inside
a run gets its interrupts at the same instructions whether the host runs it in one slice
or in many small ones, and as many as the arithmetic of the virtual clock gives.

The ROM programs the 8254 at 1000 Hz (mode 2, divisor 1193) and counts IRQ0 in a busy
loop; the test reads the count from RAM after a fixed instruction budget."""

from __future__ import annotations

import random

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.devices.pit8254 import ns_of_tick
from vmm.machine import Machine

DIVISOR = 1193  # 1,193,182 Hz / 1193: one IRQ0 about every millisecond
BUDGET = 30_000_000  # instructions: 300 ms of virtual time at 100 MHz
TICKS = 0x500  # the ROM's IRQ0 counter
LOOPS = 0x504  # the busy loop's counter (its blocks are three instructions long)

PIT_1000HZ = f"""
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word ptr [{TICKS}], 0
    mov dword ptr [{LOOPS}], 0
    # 8259A: IRQ0-7 at vectors 8-15, only IRQ0 unmasked
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x08
    out 0x21, al
    mov al, 0x70
    out 0xA1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xA1, al
    mov al, 0x01
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al
    mov word ptr [8 * 4], offset timer
    mov word ptr [8 * 4 + 2], 0xF000
    # 8254 channel 0, mode 2 (rate generator), divisor {DIVISOR}
    mov al, 0x34
    out 0x43, al
    mov ax, {DIVISOR}
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
spin:
    add word ptr [{LOOPS}], 1
    adc word ptr [{LOOPS} + 2], 0
    jmp spin

timer:
    inc word ptr [{TICKS}]
    push ax
    mov al, 0x20                   # non-specific EOI
    out 0x20, al
    pop ax
    iret
"""


def machine(tmp_path) -> Machine:
    rom = tmp_path / "pit.bin"
    rom.write_bytes(assemble_rom(PIT_1000HZ))
    return Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))


def run_to(m: Machine, total: int, chunks: random.Random | None) -> None:
    """Run until ``total`` instructions retired: in one call, or in random slices."""
    while m.cpu.instructions < total:
        left = total - m.cpu.instructions
        m.run(max_instructions=left if chunks is None else min(left, chunks.randint(1, 40_000)))


def ticks_counted(m: Machine) -> int:
    return int.from_bytes(m.memory.read(TICKS, 2), "little")


def expected_ticks(m: Machine) -> int:
    """IRQ0's rising edges in mode 2 come every DIVISOR PIT ticks after the count was
    loaded; each becomes an instruction deadline on the virtual clock, and the handler
    (five instructions) runs at the first block boundary at or after it."""
    load_tick = m.pit.counters[0].load_tick
    deadlines = []
    k = 1
    while (at := m.clock.deadline_insns(ns_of_tick(load_tick + k * DIVISOR))) < BUDGET + 1000:
        deadlines.append(at)
        k += 1
    # The budget ends well clear of an interrupt (no boundary case to argue about).
    assert all(abs(at - BUDGET) > 100 for at in deadlines)
    return sum(at + 10 <= BUDGET for at in deadlines)


def test_pit_at_1000_hz_counts_the_same_ticks_in_one_slice_and_in_random_slices(tmp_path):
    counts, loops, final = [], [], []
    for chunks in (None, random.Random(13), random.Random(2026)):
        m = machine(tmp_path)
        try:
            run_to(m, BUDGET, chunks)
            counts.append(ticks_counted(m))
            loops.append(m.memory.read(LOOPS, 4))
            final.append((m.cpu.instructions, m.cpu.get_state().pc))
            expected = expected_ticks(m)
        finally:
            m.close()
    assert counts == [expected] * 3
    assert 295 <= expected <= 300  # 300 ms at 1000 Hz, less the start-up
    # Not only the count: every interrupt was taken at the same instruction, so the
    # busy loop's own counter and where the CPU stopped agree too.
    assert loops[0] == loops[1] == loops[2]
    assert final[0] == final[1] == final[2]


def test_a_timer_armed_inside_a_slice_shortens_it(tmp_path):
    """The first IRQ0 comes one period after the PIT is loaded, not when the slice under
    way (here the whole budget) happens to end."""
    m = machine(tmp_path)
    try:
        m.run(max_instructions=150_000)  # 1.5 ms: exactly one edge has passed
        assert ticks_counted(m) == 1
    finally:
        m.close()
