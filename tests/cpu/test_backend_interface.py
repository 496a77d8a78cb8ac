"""Both CPU backends offer the whole interface of vmm.cpu.base, and a backend without a
debug feature says so instead of failing in the middle of a command."""

from __future__ import annotations

import inspect

import pytest

from tests.conftest import require_kvm
from vmm.cpu.base import CpuBackend, CpuDebug, DebugUnsupported
from vmm.cpu.kvm import KvmCpu
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


def test_the_unicorn_debug_capability_has_every_member():
    for name in members(CpuDebug):
        if name in ("armed", "read_linear"):
            continue  # instance attributes
        assert hasattr(UnicornDebug, name), name


def test_a_kvm_machine_tells_the_debugger_what_it_cannot_do():
    require_kvm()
    from vmm.config import MachineConfig
    from vmm.cpu.select import cpu_factory_for
    from vmm.debug.engine import DebugError, Debugger
    from vmm.machine import Machine

    machine = Machine(MachineConfig(memory_mb=2), cpu_factory=cpu_factory_for("kvm"))
    try:
        with pytest.raises(DebugError, match="Unicorn"):
            Debugger(machine)
        with pytest.raises(DebugUnsupported):
            machine.cpu.debug()
    finally:
        machine.close()
