"""Both CPU backends offer the whole interface of vmm.cpu.base, and a backend without a
debug feature says so instead of failing in the middle of a command."""

from __future__ import annotations

import inspect

import pytest

from tests.conftest import require_kvm
from vmm.cpu.base import CpuBackend, CpuDebug
from vmm.cpu.kvm import KvmCpu
from vmm.cpu.kvm_debug import KvmDebug
from vmm.cpu.unicorn import UnicornCpu
from vmm.cpu.unicorn_debug import UnicornDebug


def members(protocol) -> set[str]:
    return {name for name in protocol.__dict__ if not name.startswith("_")} | set(
        getattr(protocol, "__annotations__", {})
    )


@pytest.mark.parametrize("backend", [UnicornCpu, KvmCpu], ids=["unicorn", "kvm"])
def test_every_backend_has_every_member_of_the_interface(backend):
    for name in members(CpuBackend):
        assert hasattr(backend, name), f"{backend.__name__} lacks {name}"
        wanted = getattr(CpuBackend, name, None)
        if inspect.isfunction(wanted):
            got = getattr(backend, name)
            assert list(inspect.signature(got).parameters) == list(inspect.signature(wanted).parameters), name
        if isinstance(wanted, property) and wanted.fset is not None:
            got = inspect.getattr_static(backend, name)
            assert not isinstance(got, property) or got.fset is not None, f"{backend.__name__}.{name} is read-only"


@pytest.mark.parametrize("capability", [UnicornDebug, KvmDebug], ids=["unicorn", "kvm"])
def test_every_debug_capability_has_every_member(capability):
    for name in members(CpuDebug):
        if name in ("armed", "read_linear"):
            continue  # instance attributes
        assert hasattr(capability, name), name


# Three instructions, then code at F000:0100 (linear 0xF0100) that prints and exits.
STEPS = """
    mov ax, 1
    mov bx, 2
    jmp target
    .org 0x100
target:
    mov dx, COM1
    mov al, 'x'
    out dx, al
    mov al, 0
    out 0xF4, al
"""
TARGET = 0xF0100


def debugger_on(accel: str, tmp_path):
    from tests.cpu.rom import assemble_rom
    from vmm.config import MachineConfig, SerialConfig
    from vmm.cpu.select import cpu_factory_for
    from vmm.debug.engine import Debugger
    from vmm.machine import Machine

    rom = tmp_path / "steps.bin"
    rom.write_bytes(assemble_rom(STEPS))
    machine = Machine(MachineConfig(bios=rom, memory_mb=2, serial=SerialConfig("none")),
                      cpu_factory=cpu_factory_for(accel))  # fmt: skip
    return Debugger(machine)


@pytest.mark.kvm
def test_on_kvm_the_debugger_steps_and_breaks_like_on_unicorn(tmp_path):
    require_kvm()
    seen = {}
    for accel in ("unicorn", "kvm"):
        dbg = debugger_on(accel, tmp_path)
        try:
            start = dbg.instructions
            pcs = []
            for _ in range(3):
                assert dbg.step(1).kind == "done"
                pcs.append(dbg.state().pc)
            assert dbg.instructions == start + 3
            dbg.add("addr", TARGET, "target")
            event = dbg.cont()
            assert event.kind == "breakpoint"
            seen[accel] = (pcs, dbg.state().pc, bytes(dbg.machine.serial_transcript))
            assert dbg.cont().kind == "exit"
            assert dbg.machine.serial_transcript == b"x"
        finally:
            dbg.close()
            dbg.machine.close()
    assert seen["kvm"] == seen["unicorn"]
    assert seen["kvm"][1] == TARGET


@pytest.mark.kvm
def test_on_kvm_the_debugger_says_what_it_cannot_do(tmp_path):
    from vmm.debug.engine import DebugError

    require_kvm()
    dbg = debugger_on("kvm", tmp_path)
    try:
        assert dbg.machine.cpu.debug().features == {"breakpoints", "single-step"}
        with pytest.raises(DebugError, match="kvm backend cannot watch memory"):
            dbg.add("watch", (0x600, 4, "w"), "a word")
        with pytest.raises(DebugError, match="kvm backend cannot break on mode"):
            dbg.add("mode", "protected", "mode protected")
        dbg.step(2)
        with pytest.raises(DebugError, match="kvm backend cannot go back"):
            dbg.back(1)
        assert not dbg.breakpoints  # nothing half-added
    finally:
        dbg.close()
        dbg.machine.close()
