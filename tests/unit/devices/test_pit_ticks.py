"""What a PIT tick costs and means: one timer event (one run-loop exit) a period when
IRQ0 is edge-triggered, the exact OUT0 waveform when it is level-triggered, and a HLT
that waits for the tick's interrupt."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_cpu import TIMER
from tests.cpu.rom import assemble_rom
from vmm.clock import VirtualClock
from vmm.config import MachineConfig, SerialConfig
from vmm.devices.pit8254 import Pit8254
from vmm.irq import IrqLine
from vmm.machine import Machine

PIT_MODE2, PIT_MODE3 = 0x34, 0x36  # counter 0, lobyte/hibyte, mode 2 or 3
DIVISOR = 1193  # ~1 kHz


def _machine(tmp_path: Path, body: str) -> Machine:
    rom = tmp_path / "timer.bin"
    rom.write_bytes(assemble_rom(body))
    return Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))


@pytest.mark.parametrize("mode", [PIT_MODE2, PIT_MODE3])
def test_a_timer_tick_costs_one_run_loop_exit(tmp_path, mode):
    body = TIMER.format(divisor=DIVISOR, sti="sti", n=2_000_000).replace("mov al, 0x34", f"mov al, {mode:#x}")
    machine = _machine(tmp_path, body)
    slices = 0
    run = machine.cpu.run

    def counted(budget: int):
        nonlocal slices
        slices += 1
        return run(budget)

    machine.cpu.run = counted
    try:
        machine.run(max_instructions=10**8)
        ticks = machine.memory.read_u32(0x500)
        assert ticks == 60  # 6 M instructions at 100 MHz virtual: 60 ms of a 1 kHz timer
        assert slices <= ticks + 2  # one exit a tick, plus the start and the exit port
    finally:
        machine.close()


@pytest.mark.parametrize("mode", [PIT_MODE2, PIT_MODE3])
def test_hlt_waits_for_the_timer_interrupt(tmp_path, mode):
    # 100 HLTs with the timer as the only interrupt: 100 ticks of virtual time, as on a
    # PC and in QEMU (a timer event that raises no interrupt does not end a HLT).
    loop = "    mov ecx, 100\n1:  hlt\n    dec ecx\n    jnz 1b\n"
    body = TIMER.format(divisor=DIVISOR, sti="sti", n=1).replace("mov al, 0x34", f"mov al, {mode:#x}")
    body = body.replace("    mov ecx, 1\n1:  add eax, ecx\n    dec ecx\n    jnz 1b\n", loop)
    machine = _machine(tmp_path, body)
    try:
        machine.run(max_instructions=10**8)
        assert machine.memory.read_u32(0x500) == 100
        assert 99_000_000 < machine.clock.now_ns() < 100_100_000
    finally:
        machine.close()


def test_level_triggered_irq0_sees_the_whole_square_wave():
    clock = VirtualClock()
    levels: list[bool] = []
    pit = Pit8254(clock, IrqLine(0, lambda _n, level: levels.append(level)))
    pit.irq0_edge_only = lambda: False
    pit.io_write(0x43, 1, PIT_MODE3)
    pit.io_write(0x40, 1, DIVISOR & 0xFF)
    pit.io_write(0x40, 1, DIVISOR >> 8)
    levels.clear()
    for _ in range(2000):
        clock.idle(10_000)  # 10 us steps over 20 ms: 20 periods
        clock.run_due()
    assert levels.count(True) in (20, 21) and levels.count(False) in (20, 21)
    # Edge-triggered, the same 20 periods give 20 rising edges from 20 timer events.
    clock2 = VirtualClock()
    levels2: list[bool] = []
    pit2 = Pit8254(clock2, IrqLine(0, lambda _n, level: levels2.append(level)))
    pit2.irq0_edge_only = lambda: True
    pit2.io_write(0x43, 1, PIT_MODE3)
    pit2.io_write(0x40, 1, DIVISOR & 0xFF)
    pit2.io_write(0x40, 1, DIVISOR >> 8)
    levels2.clear()
    fired = 0
    for _ in range(2000):
        clock2.idle(10_000)
        fired += clock2.run_due()
    assert levels2.count(True) in (20, 21)
    assert fired == levels2.count(True)
