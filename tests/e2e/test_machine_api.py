"""The public face of a Machine (vmm/api.py) and its one run loop, as a script sees
them, on a small ROM: counters, the stage timeline, memory (physical and virtual),
what nothing answered (on both backends), observers, stop conditions, save and load."""

from __future__ import annotations

import pytest

from tests.conftest import require_kvm
from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.exits import Stops
from vmm.machine import Machine

UNCLAIMED_PORT = 0x99
# Reads and writes the physical byte just above the first MiB (FFFF:0010 with A20 on),
# where a 1 MiB machine has no RAM; probes an unclaimed port; says "ok" on COM1, exits
# with status 1 (QEMU's isa-debug-exit: value 0 -> (0 << 1) | 1).
PROBE = f"""
    mov ax, 0x1000
    mov ds, ax
    mov byte ptr [0x0234], 0x5A     # RAM at 0x10234, for the memory checks
    mov ax, 0xFFFF
    mov ds, ax
    mov byte ptr [0x0010], 1        # physical 0x100000: no RAM there
    mov al, [0x0020]                # physical 0x100010
    in al, {UNCLAIMED_PORT:#x}
    mov dx, COM1
    mov al, 'o'
    out dx, al
    jmp 1f                          # a block ends here: a stop asked during the OUT lands here
1:  mov al, 'k'
    out dx, al
    mov al, 0
    out 0xF4, al
"""


def machine_for(tmp_path, body: str = PROBE, cpu_factory=None, memory_mb: int = 1) -> Machine:
    rom = tmp_path / "probe.bin"
    rom.write_bytes(assemble_rom(body))
    config = MachineConfig(bios=rom, memory_mb=memory_mb, serial=SerialConfig("none"))
    return Machine(config, cpu_factory=cpu_factory)


def test_counters_timeline_memory_and_unclaimed_accesses(tmp_path):
    machine = machine_for(tmp_path)
    try:
        machine.log_unclaimed()
        exit_ = machine.run(max_instructions=10_000)
        assert (exit_.reason, exit_.status) == ("exit-port", 1)
        assert machine.serial_transcript == b"ok"
        assert machine.instructions > 10
        assert machine.time_ns == machine.clock.insns_to_ns(machine.instructions)
        assert [t.stage for t in machine.stage_timeline] == ["firmware"]
        assert machine.read_physical(0x10234, 1) == b"\x5a"
        machine.write_physical(0x10235, b"\x01\x02")
        assert machine.read_virtual(0x10234, 3) == b"\x5a\x01\x02"  # no paging: linear = physical
        assert machine.read_physical(0xFFFFFFF0, 1) == b"\xea"  # the ROM's far jump
        unclaimed = machine.unclaimed()
        assert ("in", UNCLAIMED_PORT, 1, None) in unclaimed.ports
        assert unclaimed.memory_count == 2
        assert (0x100000, "write") in unclaimed.memory and (0x100010, "read") in unclaimed.memory
    finally:
        machine.close()


def test_kvm_reports_unclaimed_memory_too(tmp_path):
    require_kvm()
    from vmm.cpu.select import cpu_factory_for

    machine = machine_for(tmp_path, cpu_factory=cpu_factory_for("kvm"))
    try:
        machine.log_unclaimed()
        # KVM's instruction count follows host time (a loaded host retires fewer guest
        # instructions per "million"): the guest's own exit ends this run; the wall-clock
        # bound is a safety net only.
        exit_ = machine.run(timeout=60)
        assert (exit_.reason, exit_.status) == ("exit-port", 1)
        unclaimed = machine.unclaimed()
        assert unclaimed.memory_count == 2
        assert (0x100000, "write") in unclaimed.memory and (0x100010, "read") in unclaimed.memory
        assert ("in", UNCLAIMED_PORT, 1, None) in unclaimed.ports
    finally:
        machine.close()


def test_an_observer_sees_every_port_access_and_a_port_stop_ends_the_run(tmp_path):
    machine = machine_for(tmp_path)
    seen = []
    try:
        remove = machine.observe_io(lambda *access: seen.append(access))
        exit_ = machine.run(max_instructions=10_000, stops=Stops(ports=frozenset({0x3F8})))
        assert exit_.reason == "port"
        assert exit_.port[:4] == ("out", 0x3F8, 1, ord("o"))
        assert seen == [("in", UNCLAIMED_PORT, 1, 0xFF), ("out", 0x3F8, 1, ord("o"))]
        remove()
        assert machine.run(max_instructions=10_000).reason == "exit-port"
        assert len(seen) == 2 and machine.serial_transcript == b"ok"
    finally:
        machine.close()


def test_save_and_load_continue_exactly(tmp_path):
    machine = machine_for(tmp_path, memory_mb=2)
    try:
        machine.run(max_instructions=3)
        at = machine.instructions
        machine.save(tmp_path / "state.vmsn")
        rest = machine.run(max_instructions=10_000)
    finally:
        machine.close()
    again = Machine.load(tmp_path / "state.vmsn")
    try:
        assert again.instructions == at
        assert again.run(max_instructions=10_000) == rest
        assert again.serial_transcript == b"ok"
    finally:
        again.close()


@pytest.mark.parametrize("count", [1, 2, 5])
def test_an_exact_count_under_the_debug_capability(tmp_path, count):
    machine = machine_for(tmp_path)
    try:
        debug = machine.cpu.debug()
        exit_ = machine.run(max_instructions=count, stops=Stops(debug=debug))
        assert exit_.reason == "limit"
        assert machine.instructions == count
        debug.close()
    finally:
        machine.close()
