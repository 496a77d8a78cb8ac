"""Going back lands on exactly the state the forward run had there, across a timer
interrupt (the realmode ROM halts until PIT IRQ0 wakes it)."""

from __future__ import annotations

from tests.cpu.rom import assemble_rom, rom_source
from vmm.config import MachineConfig, SerialConfig
from vmm.debug.engine import Debugger
from vmm.machine import Machine


def snapshot(dbg: Debugger) -> tuple:
    state = dbg.state()
    return dbg.instructions, state.pc, dict(state.gprs), state.rflags, dbg.ram_hash()


def test_back_returns_to_the_forward_state_across_irq0(tmp_path):
    rom = tmp_path / "realmode.bin"
    rom.write_bytes(assemble_rom(rom_source("realmode")))
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    dbg = Debugger(machine, checkpoint_every=400)
    try:
        seen = []
        for _ in range(60):  # through the HLT wake-ups by IRQ0
            seen.append(snapshot(dbg))
            dbg.step(13)
        irqs = machine.cpu.stats["irqs"]
        assert irqs >= 1, "the walk should cross a timer interrupt"
        end = snapshot(dbg)
        for back_to in (seen[45], seen[20], seen[3]):
            dbg.back(dbg.instructions - back_to[0])
            assert snapshot(dbg) == back_to
        dbg.goto(end[0])
        assert snapshot(dbg) == end
        assert dbg.cont().text == "guest exit status 33"
        assert "ticks=0003" in machine.serial_transcript.decode()
    finally:
        dbg.close()
        machine.close()
