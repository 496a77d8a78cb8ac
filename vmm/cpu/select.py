"""Choosing the CPU backend: ``--accel unicorn|kvm|auto``.

``auto`` measures instead of assuming: it checks that /dev/kvm opens and creates a VM,
then runs the same calibration loop on both backends for a few milliseconds of wall time
each and picks the one that retired more guest instructions per second. The count comes
from the guest itself (a register incremented by the loop), not from the backends'
counters, because KVM has no retired-instruction counter. On a nested or software KVM
(as on vmm's development machines) Unicorn wins; on bare-metal KVM, KVM does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmm.cpu.base import PhysRegion
from vmm.errors import BackendUnavailable
from vmm.memory import GuestMemory

CALIBRATION_SECONDS = 0.05
CALIBRATION_RAM = 1 << 20

# F000:0000: `xor ecx, ecx; 1: inc ecx; jmp 1b` (two instructions per iteration); the
# reset vector at F000:FFF0 jumps there.
_LOOP = bytes.fromhex("6631c96641ebfc")
_RESET = bytes.fromhex("ea000000f0")


def calibration_rom() -> bytes:
    rom = bytearray(b"\xf4" * 0x10000)
    rom[0 : len(_LOOP)] = _LOOP
    rom[0xFFF0 : 0xFFF0 + len(_RESET)] = _RESET
    return bytes(rom)


class _SilentPlatform:
    def io_read(self, port: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def io_write(self, port: int, size: int, value: int) -> None:
        pass

    def mmio_read(self, addr: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        pass

    def interrupt_acknowledge(self) -> int:
        return 0x08


@dataclass(frozen=True)
class Calibration:
    unicorn_ips: float
    kvm_ips: float | None
    kvm_problem: str | None

    @property
    def choice(self) -> str:
        return "kvm" if self.kvm_ips is not None and self.kvm_ips > self.unicorn_ips else "unicorn"

    def explain(self) -> str:
        u = f"{self.unicorn_ips / 1e6:,.0f} M instructions/s on Unicorn"
        if self.kvm_ips is None:
            return f"--accel auto chose unicorn: KVM is not usable ({self.kvm_problem})"
        k = f"{self.kvm_ips / 1e6:,.1f} M on KVM"
        if self.choice == "kvm":
            return f"--accel auto chose kvm: {k} vs {u}"
        return f"--accel auto chose unicorn: {u} vs {k} (a nested or software-assisted KVM)"


def _measure(make_cpu: Callable[[GuestMemory, object, list], object]) -> float:
    rom = calibration_rom()
    memory = GuestMemory(CALIBRATION_RAM)
    regions = [
        PhysRegion(0, 0xF0000, "ram", 0),
        PhysRegion(0xF0000, 0x10000, "rom", data=rom),
        PhysRegion(0xFFFF0000, 0x10000, "rom", data=rom),
    ]
    cpu = make_cpu(memory, _SilentPlatform(), regions)
    try:
        cpu.run(1000)  # warm up: translation (Unicorn), first entry (KVM)
        start_iterations = cpu.get_state().gprs["rcx"] & 0xFFFFFFFF
        start = time.perf_counter()
        budget = 1_000_000
        while time.perf_counter() - start < CALIBRATION_SECONDS:
            cpu.run(budget)
        elapsed = time.perf_counter() - start
        iterations = (cpu.get_state().gprs["rcx"] - start_iterations) & 0xFFFFFFFF
        return 2 * iterations / elapsed
    finally:
        cpu.close()
        memory.close()


def calibrate() -> Calibration:
    from vmm.cpu.unicorn import UnicornCpu

    unicorn_ips = _measure(lambda m, p, r: UnicornCpu(m, p, r))
    try:
        from vmm.cpu.kvm import KvmCpu

        kvm_ips = _measure(lambda m, p, r: KvmCpu(m, p, r))
        return Calibration(unicorn_ips, kvm_ips, None)
    except BackendUnavailable as exc:
        return Calibration(unicorn_ips, None, str(exc))


def cpu_factory_for(accel: str, report: Callable[[str], None] | None = None, irqchip: str = "user") -> Callable | None:
    """The Machine's ``cpu_factory`` for an accelerator name (None: the default, Unicorn)."""
    if accel == "auto":
        calibration = calibrate()
        if report is not None:
            report(calibration.explain())
        accel = calibration.choice
    if accel == "unicorn":
        return None
    if accel == "kvm":
        from vmm.cpu.kvm import KvmCpu
        from vmm.cpu.kvm_probe import open_kvm

        os.close(open_kvm())  # fail now, with the reason, rather than half-way through set-up

        def make(machine):
            # Writable ROM copies, as on Unicorn: a GDT in ROM without accessed bits would
            # otherwise make the CPU retry its accessed-bit write forever.
            return KvmCpu(
                machine.memory,
                machine.platform,
                machine.physical_map(),
                machine.config.clock_mhz,
                writable_rom=True,
                irqchip=irqchip,
            )

        return make
    raise BackendUnavailable(f"unknown accelerator {accel!r} (choose unicorn, kvm or auto)")
