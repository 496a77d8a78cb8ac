"""What scripts, tests, the CLI and the debugger use of a Machine (as PyBoy's ``api/``).

:class:`MachineApi` is mixed into :class:`vmm.machine.Machine`; everything here reads or
changes the machine only through its parts' public methods, so a script written against
it works the same on both CPU backends::

    machine = Machine(MachineConfig(disks=[DiskConfig("ide0:0", Path("toyos.img"))]))
    machine.run(max_instructions=50_000_000)
    print(machine.instructions, machine.time_ns, [t.stage for t in machine.stage_timeline])
    print(machine.serial_transcript.decode(), machine.screen_text())
    machine.read_virtual(0xC0100000, 16); machine.save("boot.vmsn")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.cpu.paging import PhysicalReader, read_linear, translate, write_linear
from vmm.errors import GuestError

RECENT = 8  # MMIO-bus accesses listed (as the Unicorn glue's ring of unbacked accesses)

if TYPE_CHECKING:
    from vmm.debug.stages import Transition
    from vmm.machine import Machine


@dataclass
class Unclaimed:
    """Accesses nothing answered: ports (reads as all ones, writes dropped) and physical
    memory outside RAM, ROM and device windows, on either backend."""

    port_count: int = 0
    ports: list[tuple[str, int, int, int | None]] = field(default_factory=list)  # (in|out, port, size, value)
    memory_count: int = 0
    memory: list[tuple[int, str]] = field(default_factory=list)  # (address, read|write), the last few


class MachineApi:
    """The public face of a Machine (see the module docstring)."""

    # ---- counters ----

    @property
    def instructions(self: Machine) -> int:
        """Instructions retired since power-on: what virtual time is derived from."""
        return self.cpu.instructions

    @property
    def time_ns(self: Machine) -> int:
        """Virtual time since power-on, in nanoseconds."""
        return self.clock.now_ns()

    @property
    def stage_timeline(self: Machine) -> list[Transition]:
        """Each boot stage entered (firmware, bootloader, kernel, init) with its
        instruction count, virtual time and pc, oldest first."""
        return list(self.stages.timeline)

    # ---- memory ----

    def read_physical(self: Machine, addr: int, length: int) -> bytes:
        """Guest-physical bytes from RAM or the ROM (VmmError if neither holds them all)."""
        return PhysicalReader(self).read(addr, length)

    def write_physical(self: Machine, addr: int, data: bytes) -> None:
        """Write guest RAM (stale translated code is dropped, as after DMA)."""
        if not self.memory.contains(addr, len(data)):
            raise GuestError(f"physical {addr:#x}+{len(data):#x} is not RAM")
        self.memory.write(addr, data)

    def translate(self: Machine, linear: int) -> int:
        """The physical address of ``linear`` through the guest's page tables now."""
        return translate(PhysicalReader(self), self.cpu.get_state(), linear)

    def read_virtual(self: Machine, linear: int, length: int) -> bytes:
        """Bytes at a linear (virtual) address, through the guest's page tables."""
        return read_linear(PhysicalReader(self), self.cpu.get_state(), linear, length)

    def write_virtual(self: Machine, linear: int, data: bytes) -> None:
        write_linear(PhysicalReader(self), self.cpu.get_state(), linear, data)

    # ---- what nothing answered ----

    def log_unclaimed(self: Machine, enabled: bool = True) -> None:
        """Keep the first accesses nothing answers (counts are kept always)."""
        self.io.unclaimed.enabled = enabled
        self.mmio.unclaimed.enabled = enabled

    def unclaimed(self: Machine) -> Unclaimed:
        """On Unicorn the backend answers unbacked memory itself; on KVM such an access
        is an MMIO exit that reaches the MMIO bus: both are counted here."""
        count, recent = self.cpu.unclaimed_memory()
        bus = self.mmio.unclaimed
        recent = recent + [(addr, kind) for kind, addr, _size, _value in bus.entries[-RECENT:]]
        return Unclaimed(self.io.unclaimed.count, list(self.io.unclaimed.entries), count + bus.count, recent)

    # ---- save and load ----

    def save(self: Machine, path: Path | str) -> tuple[Path, Path]:
        """Write the whole machine to ``path`` (.vmsn, JSON) and its RAM beside it (.vmem)."""
        from vmm.snapshot.statefile import save_machine_state

        return save_machine_state(self, path)

    @staticmethod
    def load(path: Path | str, serial_out=None, cpu_factory=None) -> Machine:
        """A Machine that continues exactly where ``save`` stopped."""
        from vmm.snapshot.statefile import load_machine_state

        return load_machine_state(path, serial_out=serial_out, cpu_factory=cpu_factory)

    # ---- snapshots (vmm/snapshot/live.py) ----

    def take_snapshot(self: Machine, path: Path | str, disks: str = "keep"):
        """Write a snapshot (``path`` .vmsn + sparse .vmem) and return its handle (LiveSnapshot)."""
        from vmm.snapshot.live import take

        return take(self, path, disks)

    def revert_snapshot(self: Machine, snapshot) -> None:
        """Back to ``snapshot`` (from take_snapshot): RAM by copy-on-write mmap, devices, CPU, scratch disks."""
        from vmm.snapshot.live import revert

        revert(self, snapshot)

    @staticmethod
    def from_snapshot(path: Path | str, serial_out=None, cpu_factory=None) -> Machine:
        """A new Machine continuing from a snapshot file (disk writes go to a throwaway delta)."""
        from vmm.snapshot.live import load

        return load(path, serial_out=serial_out, cpu_factory=cpu_factory)
