"""Virtual time and timers.

By default time is derived from guest progress (DESIGN.md principle 3): the CPU backend
counts instructions retired and the clock converts them to nanoseconds at a fixed
virtual rate (``mhz`` instructions per microsecond). Timer deadlines therefore land at
the same instruction on every run. ``realtime=True`` uses the host's monotonic clock
instead, for interactive use; runs are then no longer reproducible.

Devices hold :class:`Timer` objects created by :meth:`VirtualClock.timer`; the machine's
run loop asks :meth:`VirtualClock.next_deadline_ns` how far the CPU may run and calls
:meth:`VirtualClock.run_due` between slices.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

DEFAULT_MHZ = 100


class Timer:
    """A one-shot deadline in virtual nanoseconds; re-arm it from its callback to repeat."""

    def __init__(self, clock: VirtualClock, callback: Callable[[], None], name: str) -> None:
        self._clock = clock
        self.callback = callback
        self.name = name
        self.deadline_ns: int | None = None
        self._generation = 0

    @property
    def armed(self) -> bool:
        return self.deadline_ns is not None

    def arm(self, deadline_ns: int) -> None:
        self.deadline_ns = int(deadline_ns)
        self._generation += 1
        self._clock._push(self)

    def arm_after(self, delta_ns: int) -> None:
        self.arm(self._clock.now_ns() + max(0, int(delta_ns)))

    def cancel(self) -> None:
        self.deadline_ns = None
        self._generation += 1


class VirtualClock:
    """Nanoseconds since power-on, from instructions retired or from the host clock."""

    def __init__(self, mhz: int = DEFAULT_MHZ, realtime: bool = False) -> None:
        if mhz <= 0:
            raise ValueError("virtual clock rate must be positive")
        self.mhz = mhz
        self.realtime = realtime
        self._insns: Callable[[], int] = lambda: 0
        self._wall_start = time.monotonic_ns()
        self._heap: list[tuple[int, int, int, Timer]] = []
        self._seq = 0
        self._offset_ns = 0  # virtual time carried over from a restored snapshot
        # Called with the new deadline whenever a timer is armed (the machine shortens a
        # CPU run already under way, so the deadline holds wherever it was armed).
        self.on_arm: Callable[[int], None] | None = None

    def attach(self, instructions_retired: Callable[[], int]) -> None:
        """Use ``instructions_retired()`` as the source of guest progress."""
        self._insns = instructions_retired

    def insns_to_ns(self, insns: int) -> int:
        return insns * 1000 // self.mhz

    def ns_to_insns(self, ns: int) -> int:
        # Round up so that running this many instructions reaches the deadline.
        return -(-ns * self.mhz // 1000)

    def deadline_insns(self, deadline_ns: int) -> int:
        """The instruction count at which ``now_ns()`` reaches ``deadline_ns`` (virtual
        clock): the one place a deadline becomes an instruction, for every run slice."""
        return self.ns_to_insns(deadline_ns - self._offset_ns)

    def now_ns(self) -> int:
        if self.realtime:
            return self._offset_ns + time.monotonic_ns() - self._wall_start
        return self._offset_ns + self.insns_to_ns(self._insns())

    def timer(self, callback: Callable[[], None], name: str = "timer") -> Timer:
        return Timer(self, callback, name)

    def _push(self, timer: Timer) -> None:
        assert timer.deadline_ns is not None
        self._seq += 1
        heapq.heappush(self._heap, (timer.deadline_ns, self._seq, timer._generation, timer))
        if self.on_arm is not None and not self.realtime:
            self.on_arm(timer.deadline_ns)

    def _prune(self) -> None:
        heap = self._heap
        while heap and (heap[0][3].deadline_ns is None or heap[0][2] != heap[0][3]._generation):
            heapq.heappop(heap)

    def next_deadline_ns(self) -> int | None:
        self._prune()
        return self._heap[0][0] if self._heap else None

    def run_due(self) -> int:
        """Fire every timer whose deadline has passed; return how many fired."""
        fired = 0
        now = self.now_ns()
        while True:
            self._prune()
            if not self._heap or self._heap[0][0] > now:
                return fired
            _deadline, _seq, _gen, timer = heapq.heappop(self._heap)
            timer.deadline_ns = None
            timer.callback()
            fired += 1

    def idle(self, ns: int) -> None:
        """Let ``ns`` of virtual time pass with no instruction retired (the CPU is in HLT)."""
        self._offset_ns += max(0, int(ns))

    def save(self) -> dict:
        return {"mhz": self.mhz, "offset_ns": self._offset_ns}

    def restore(self, state: dict) -> None:
        """Virtual time as saved (with the instruction counter restored alongside).

        Timers are not saved here: each device re-arms or cancels its own in restore()."""
        if state["mhz"] != self.mhz:
            raise ValueError(f"saved state runs at {state['mhz']} MHz, this clock at {self.mhz} MHz")
        self._offset_ns = state["offset_ns"]
