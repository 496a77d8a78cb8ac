"""Watchpoints (page protection), `break port`, on small ROMs: where the debugger stops,
what it reports, and that the guest's own output is unchanged by them."""

from __future__ import annotations

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.debug.commands import Commands
from vmm.debug.engine import Debugger
from vmm.machine import Machine

# Five rounds: 1009 instructions per round, a write of the round number to 0x7000,
# an unrelated write in the same page (0x7800), a byte to port 0xE9; then exit 33.
COUNTER = """
    xor ax, ax
    mov ds, ax
    mov ebx, 1
round:
    mov cx, 499
1:  dec cx
    jnz 1b
watched_write:
    mov dword ptr [0x7000], ebx
    mov dword ptr [0x7800], ebx
    mov al, bl
    add al, '0'
    out 0xE9, al
    mov dx, COM1
    out dx, al
    inc ebx
    cmp ebx, 6
    jne round
    mov eax, [0x7000]
    mov al, PASS
    out 0xF4, al
    hlt
"""


def open_rom(tmp_path) -> tuple[Machine, Debugger, Commands]:
    rom = tmp_path / "counter.bin"
    rom.write_bytes(assemble_rom(COUNTER))
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    dbg = Debugger(machine, checkpoint_every=None)
    return machine, dbg, Commands(dbg)


def plain_run(tmp_path) -> tuple[bytes, int]:
    machine, dbg, _ = open_rom(tmp_path)
    try:
        event = dbg.cont()
        assert event.text == "guest exit status 33"
        return bytes(machine.serial_transcript), dbg.instructions
    finally:
        dbg.close()
        machine.close()


def test_write_watchpoint_stops_after_each_write_with_old_and_new(tmp_path):
    expected_output, expected_total = plain_run(tmp_path)
    machine, dbg, commands = open_rom(tmp_path)
    try:
        assert commands.run("watch 0x7000") == "watchpoint #1 watch write 0x7000 len 4"
        assert commands.run("info breakpoints") == "#1 watch write 0x7000 len 4"
        seen = []
        for _ in range(5):
            event = dbg.cont()
            seen.append((event.text, dbg.instructions, machine.memory.read(0x7000, 4), machine.memory.read(0x7800, 4)))
        # Each stop is right after the watched `mov` (the unrelated write in the same
        # page has not run yet), 1009 instructions apart, with the values it changed.
        for n, (text, _insns, watched, unrelated) in enumerate(seen, start=1):
            assert text == f"watchpoint 1: write of 4 bytes at 0x7000 (old {n - 1:#x}, new {n:#x}) by f000:0010"
            assert int.from_bytes(watched, "little") == n
            assert int.from_bytes(unrelated, "little") == n - 1
        counts = [insns for _, insns, _, _ in seen]
        assert counts[0] == 1 + 3 + 1 + 2 * 499 + 1  # far jump, setup, mov cx, loop, the write
        assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [1009] * 4
        state = dbg.state()
        assert state.pc == 0xF0015  # the next instruction: the unrelated write
        assert dbg.cont().text == "guest exit status 33"
        assert bytes(machine.serial_transcript) == expected_output
        assert dbg.instructions == expected_total
    finally:
        dbg.close()
        machine.close()


def test_unrelated_writes_in_the_watched_page_do_not_stop(tmp_path):
    expected_output, expected_total = plain_run(tmp_path)
    machine, dbg, commands = open_rom(tmp_path)
    try:
        commands.run("watch 0x7100 16")  # same page as both writes, touched by neither
        assert dbg.cont().text == "guest exit status 33"
        assert bytes(machine.serial_transcript) == expected_output
        assert dbg.instructions == expected_total
        assert int.from_bytes(machine.memory.read(0x7800, 4), "little") == 5
    finally:
        dbg.close()
        machine.close()


def test_read_watchpoint_and_delete(tmp_path):
    machine, dbg, commands = open_rom(tmp_path)
    try:
        commands.run("watch 0x7002 1 r")
        event = dbg.cont()
        # Only the final `mov eax, [0x7000]` reads it (4 bytes overlapping the 1 watched).
        assert event.text.startswith("watchpoint 1: read of 4 bytes at 0x7000 (value 0x5) by f000:")
        assert dbg.state().gprs["rax"] & 0xFFFFFFFF == 5
        assert commands.run("delete 1") == "deleted #1 watch read 0x7002 len 1"
        assert commands.run("info breakpoints") == "no breakpoints"
        assert dbg.cont().text == "guest exit status 33"
    finally:
        dbg.close()
        machine.close()


def test_break_port_stops_after_the_out(tmp_path):
    machine, dbg, commands = open_rom(tmp_path)
    try:
        assert commands.run("break port 0xe9") == "breakpoint #1 port 0xe9"
        first = dbg.cont()
        assert first.text == "port 0xe9: out of 1 byte, value 0x31, by f000:001e (#1 port 0xe9)"
        second = dbg.cont()
        assert second.text.startswith("port 0xe9: out of 1 byte, value 0x32, by f000:001e")
        assert machine.serial_transcript.decode() in ("1", "12")  # the OUT ran, the stop came after it
        commands.run("delete 1")
        assert dbg.cont().text == "guest exit status 33"
        assert machine.serial_transcript.decode() == "12345"
    finally:
        dbg.close()
        machine.close()
