"""The interface every CPU backend offers the machine (DESIGN.md principle 1).

A backend runs guest code until a deadline or an event the machine must handle, reads
and writes the whole x86 state as one :class:`~vmm.cpu.state.X86State`, and takes
interrupts from the machine's interrupt controller. It never knows a device: port and
MMIO accesses go to the :class:`Platform` it was given, which is the machine's buses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from vmm.cpu.state import X86State


@dataclass(frozen=True)
class PhysRegion:
    """One range of the guest-physical address space as the CPU sees it."""

    base: int
    size: int
    kind: str  # "ram" (offset into GuestMemory), "rom" (data), "device" (MMIO exit), "hole"
    ram_offset: int = 0
    data: bytes = b""


class Platform(Protocol):
    """What a backend calls back into. Implemented by vmm.machine.Machine."""

    def io_read(self, port: int, size: int) -> int: ...

    def io_write(self, port: int, size: int, value: int) -> None: ...

    def mmio_read(self, addr: int, size: int) -> int: ...

    def mmio_write(self, addr: int, size: int, value: int) -> None: ...

    def interrupt_acknowledge(self) -> int:
        """INTA cycle: the vector of the highest-priority pending IRQ (the PIC's answer)."""
        ...


# With the A20 gate off, real-mode code sees these 64 KiB above 1 MiB (FFFF:0010 and up)
# wrap to the first 64 KiB; both backends emulate the gate by re-mapping this window.
A20_WINDOW = 0x100000
A20_WINDOW_SIZE = 0x10000


class StopReason(enum.Enum):
    DEADLINE = "deadline"  # ran the instruction budget it was given
    HALT = "halt"  # HLT with no interrupt pending
    REQUESTED = "requested"  # request_stop() from a device or the user
    SHUTDOWN = "shutdown"  # triple fault
    BREAKPOINT = "breakpoint"  # a breakpoint set with set_breakpoint() was reached
    USER = "user"  # the first instruction at CPL 3 (watch_user_mode) is next
    ERROR = "error"  # the backend cannot continue (details in RunResult.detail)


@dataclass
class RunResult:
    reason: StopReason
    detail: str = ""
    # For SHUTDOWN: the chain of exceptions that led to the triple fault, oldest first,
    # each as (vector, error_code or None, linear pc).
    fault_chain: list[tuple[int, int | None, int]] = field(default_factory=list)


class CpuBackend(Protocol):
    name: str

    def run(self, max_instructions: int) -> RunResult:
        """Run up to about ``max_instructions`` more instructions (never much past them)."""
        ...

    @property
    def instructions(self) -> int:
        """Instructions retired since power-on (what virtual time is derived from)."""
        ...

    def request_stop(self) -> None:
        """Make the current ``run`` return soon with StopReason.REQUESTED."""
        ...

    def set_irq_line(self, level: bool) -> None:
        """The interrupt controller's INTR output: the CPU takes an interrupt when it can."""
        ...

    def get_state(self) -> X86State: ...

    def set_state(self, state: X86State) -> None: ...

    def reset(self) -> None:
        """Architectural reset (SDM vol. 3, 9.1.1): real mode at F000:FFF0."""
        ...

    def invalidate_code(self, addr: int, length: int) -> None:
        """Guest RAM was written from outside the CPU (DMA, loaders): drop stale translations."""
        ...

    def close(self) -> None: ...
