"""Why ``Machine.run`` returns: the stop conditions a caller sets (:class:`Stops`) and
the exit it gets back (:class:`MachineExit`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vmm.cpu.base import CpuDebug, MemoryAccess

# The exits after which the guest cannot go on (the others are stops a caller asked for).
GUEST_ENDED = ("exit-port", "halted", "triple-fault", "error")


@dataclass
class MachineExit:
    """Why a run ended, and what `vmm run` reports."""

    # The guest ended: exit-port | halted | triple-fault | error. A stop condition was
    # met: limit | timeout | stopped (request_stop) | stage | port | breakpoint |
    # watchpoint | watch (a CpuDebug block watch said stop) | idle (Stops.idle).
    reason: str
    status: int = 0
    detail: str = ""
    fault_chain: list[tuple[int, int | None, int, bool]] = field(default_factory=list)
    address: int | None = None  # breakpoint, watch: the linear pc stopped before
    access: MemoryAccess | None = None  # watchpoint: the access seen
    port: tuple[str, int, int, int, int] | None = None  # port: (in|out, port, size, value, pc)

    @property
    def guest_ended(self) -> bool:
        return self.reason in GUEST_ENDED


@dataclass
class Stops:
    """What makes ``Machine.run`` return, besides the guest ending and ``max_instructions``
    / ``timeout``. With ``debug`` (the backend's CpuDebug) the run retires exactly the
    instructions asked for and stops at the debug capability's breakpoints, watchpoints
    and block watches (when ``armed``); without it, a count is reached at the first block
    boundary at or past it (the fast path)."""

    stages: frozenset[str] = frozenset()  # when one of these stages starts
    ports: frozenset[int] = frozenset()  # after an IN or OUT on one of these ports
    debug: CpuDebug | None = None
    armed: bool = True
    idle: bool = False  # when the guest idles: HLT with interrupts on (vmm screenshot)
    every: int | None = None  # also end a slice at each multiple of this count...
    after_slice: Callable[[], None] | None = None  # ...and call this after each slice
