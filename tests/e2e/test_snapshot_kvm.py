"""A snapshot restore on the KVM backend: the .vmem is mapped over the RAM behind KVM's
memory slot (mmap MAP_FIXED | MAP_PRIVATE at the same host address), so the guest sees the
snapshot's memory, and runs on from the snapshot's CPU state."""

from __future__ import annotations

import struct

from tests.conftest import require_kvm
from vmm.config import MachineConfig, SerialConfig
from vmm.cpu.select import cpu_factory_for
from vmm.machine import Machine

LOAD = 0x100000
RUN = 60_000_000  # KVM counts host time: 0.6 s of guest time (nested KVM is slow at rep stosd)


def counting_kernel() -> bytes:
    """Multiboot (a.out kludge): fill 1 MiB at 16 MiB with 0x5a, then count in [16 MiB] forever."""
    flags, magic = 0x00010000, 0x1BADB002
    header = struct.pack("<8I", magic, flags, -(magic + flags) & 0xFFFFFFFF, LOAD, LOAD, 0, 0, LOAD + 32)
    code = bytes.fromhex(
        "bf00000001"  # mov edi, 0x1000000
        "b900000400"  # mov ecx, 0x40000 (dwords: 1 MiB)
        "b85a5a5a5a"  # mov eax, 0x5a5a5a5a
        "fc"  # cld
        "f3ab"  # rep stosd
        "ff0500000001"  # again: inc dword [0x1000000]
        "ebf8"  # jmp again
    )
    return (header + code).ljust(512, b"\0")


def test_revert_on_kvm_maps_the_vmem_under_the_memory_slot(tmp_path):
    require_kvm()
    kernel = tmp_path / "count.bin"
    kernel.write_bytes(counting_kernel())
    config = MachineConfig(memory_mb=32, kernel=kernel, serial=SerialConfig("none"), accel="kvm")
    machine = Machine(config, cpu_factory=cpu_factory_for("kvm"))
    try:
        machine.run(max_instructions=RUN)
        snap = machine.take_snapshot(tmp_path / "s.vmsn")
        counter = machine.read_physical(0x1000000, 4)
        rip = machine.cpu.get_state().rip
        assert machine.read_physical(0x1000004, 4) == b"ZZZZ"
        machine.run(max_instructions=RUN)
        assert machine.read_physical(0x1000000, 4) != counter  # the guest went on counting
        machine.write_physical(0x1000004, b"\0\0\0\0")
        machine.revert_snapshot(snap)
        assert machine.memory.backing == str(tmp_path / "s.vmem")
        assert machine.read_physical(0x1000000, 8) == counter + b"ZZZZ"
        assert machine.cpu.get_state().rip == rip
        result = machine.run(max_instructions=RUN)
        assert result.reason == "limit", result
        # The guest counts on from the snapshot's value in the restored memory.
        assert struct.unpack("<I", machine.read_physical(0x1000000, 4))[0] > struct.unpack("<I", counter)[0]
        assert machine.read_physical(0x1000004, 4) == b"ZZZZ"
    finally:
        machine.close()
