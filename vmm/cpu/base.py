"""The interface every CPU backend offers the machine (DESIGN.md principle 1).

A backend runs guest code until a deadline or an event the machine must handle, reads
and writes the whole x86 state as one :class:`~vmm.cpu.state.X86State`, and takes
interrupts from the machine's interrupt controller. It never knows a device: port and
MMIO accesses go to the :class:`Platform` it was given, which is the machine's buses.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from vmm.cpu.state import X86State
from vmm.errors import VmmError


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
    DEBUG = "debug"  # a stop of the debug capability's own (its breakpoint, a single step)


# The vector whose delivery failing ends in a triple fault (SDM vol. 3, 6.15, "Interrupt
# 8 -- Double Fault Exception": a fault while delivering #DF shuts the processor down).
VECTOR_DOUBLE_FAULT = 8


@dataclass
class RunResult:
    """Why a backend's run ended: each backend decodes its own stop into this, once."""

    reason: StopReason
    detail: str = ""
    # For SHUTDOWN: the chain of exceptions that led to the triple fault, oldest first,
    # each as (vector, error_code or None, linear pc).
    fault_chain: list[tuple[int, int | None, int, bool]] = field(default_factory=list)


@runtime_checkable
class CpuBackend(Protocol):
    """Everything the machine asks of a CPU backend (both backends implement all of it;
    tests/cpu/test_backend_interface.py checks that they do)."""

    name: str

    def run(self, max_instructions: int) -> RunResult:
        """Run up to about ``max_instructions`` more instructions (never much past them)."""
        ...

    @property
    def instructions(self) -> int:
        """Instructions retired since power-on (what virtual time is derived from)."""
        ...

    @instructions.setter
    def instructions(self, value: int) -> None: ...

    @property
    def tsc_offset(self) -> int:
        """Added to the virtual TSC (carried across resets and backend switches)."""
        ...

    @tsc_offset.setter
    def tsc_offset(self, value: int) -> None: ...

    def advance_tsc(self, ns: int) -> None:
        """Idle time passed (HLT): the TSC keeps counting though no instruction retired."""
        ...

    @property
    def entropy_state(self) -> int:
        """The state of RDRAND/RDSEED's seeded generator (where the backend answers them)."""
        ...

    @entropy_state.setter
    def entropy_state(self, value: int) -> None: ...

    def limit_run(self, instructions: int) -> None:
        """A timer was armed during run(): end that run where ``instructions`` (a total
        count) is reached, if sooner than its own deadline (no-op outside run())."""
        ...

    @property
    def stats(self) -> dict[str, int]:
        """Counters for reports and benchmarks (irqs, exceptions, exits...)."""
        ...

    def request_stop(self) -> None:
        """Make the current ``run`` return soon with StopReason.REQUESTED."""
        ...

    def set_irq_line(self, level: bool) -> None:
        """The interrupt controller's INTR output: the CPU takes an interrupt when it can."""
        ...

    def set_irq(self, line: int, level: bool) -> None:
        """An ISA IRQ line to an interrupt controller inside the backend (KVM's in-kernel
        irqchip); a backend without one raises CpuError."""
        ...

    def set_breakpoint(self, linear: int | None) -> None:
        """Stop (StopReason.BREAKPOINT) before the code at ``linear`` runs (one-shot)."""
        ...

    def watch_user_mode(self, enabled: bool) -> None:
        """Stop (StopReason.USER) when the CPU reaches CPL 3."""
        ...

    def set_a20(self, enabled: bool) -> None:
        """The A20 gate (the 8042's output port, port 0x92)."""
        ...

    def get_state(self) -> X86State: ...

    def set_state(self, state: X86State) -> None: ...

    def reset(self) -> None:
        """Architectural reset (SDM vol. 3, 9.1.1): real mode at F000:FFF0."""
        ...

    def invalidate_code(self, addr: int, length: int) -> None:
        """Guest RAM was written from outside the CPU (DMA, loaders): drop stale translations."""
        ...

    def fault_chain(self) -> list[tuple[int, int | None, int, bool]]:
        """The last exceptions entered (vector, error code or None, linear pc), oldest
        first; empty where the backend cannot see them."""
        ...

    def unclaimed_memory(self) -> tuple[int, list[tuple[int, str]]]:
        """Accesses to unbacked physical memory the backend answered itself (count, last
        few as (address, read|write)); accesses it sends to the MMIO bus are counted there."""
        ...

    def debug(self) -> CpuDebug:
        """The debugging capability of this backend (raises DebugUnsupported if none)."""
        ...

    def close(self) -> None: ...


# ---- the optional debug capability ----


class DebugUnsupported(VmmError):
    """The debugger asked a backend for something it cannot do (says what and why)."""


# What a CpuDebug can do; the debugger checks before arming a stop of that kind.
FEATURE_BREAKPOINTS = "breakpoints"  # stop before an address
FEATURE_STEP = "single-step"  # retire exactly n instructions
FEATURE_WATCHPOINTS = "watchpoints"  # stop on a read/write of a linear range
FEATURE_BLOCK_WATCH = "block-watch"  # a callback at each block start (mode/reg/vector breaks)
FEATURE_REVERSE = "reverse"  # runs are exact, so checkpoints replay to the same instruction
FEATURE_TRACE = "trace"  # a callback before every instruction (the slow path)


@dataclass(frozen=True)
class WatchRange:
    """A watched linear range and the physical pages protected for it."""

    start: int
    length: int
    access: str  # r | w | rw
    pages: tuple[int, ...]


@dataclass
class MemoryAccess:
    """A watched access, seen before the instruction ran (``old``) and after (``new``)."""

    kind: str  # read | write
    address: int  # linear
    size: int
    pc: int  # linear address of the accessing instruction
    old: bytes = b""
    new: bytes = b""


@dataclass
class DebugStop:
    """Why ``run_exact`` returned: ``done`` (all instructions retired), ``breakpoint``
    (before the instruction at ``address``), ``watch`` (a block watch said stop),
    ``watchpoint`` (a watched access, in ``access``) or ``machine`` (the CPU stopped for
    the machine: ``result`` says why)."""

    kind: str
    address: int | None = None
    result: RunResult | None = None
    access: MemoryAccess | None = None


@runtime_checkable
class CpuDebug(Protocol):
    """Breakpoints, exact runs and watches on one backend (from ``CpuBackend.debug()``)."""

    features: frozenset[str]
    armed: bool  # False: breakpoints and watches let everything run
    read_linear: Callable[[int, int], bytes] | None  # how watch hits read old/new values

    @property
    def breakpoints(self) -> set[int]: ...

    def add_breakpoint(self, linear: int) -> None: ...

    def remove_breakpoint(self, linear: int) -> None: ...

    def set_watchpoints(self, watches: list[WatchRange]) -> None: ...

    def set_block_watch(self, watch: Callable[[int], bool] | None) -> None: ...

    def trace_code(self, callback: Callable[[int], None] | None) -> None:
        """Call ``callback(linear_pc)`` before every instruction (None: stop tracing)."""
        ...

    def run_exact(self, count: int, armed: bool = True) -> DebugStop:
        """Retire ``count`` instructions unless something stops the CPU first."""
        ...

    def mode(self) -> str:
        """The CPU mode now: real | protected | long | compat | vm86."""
        ...

    def close(self) -> None: ...
