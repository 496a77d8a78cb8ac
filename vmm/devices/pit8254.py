"""The Intel 8254 programmable interval timer, and the PC's system control port B (0x61).

Source: Intel, "8254 Programmable Interval Timer" datasheet (order 231164-005): "Control
Word Format", "Read Operations" (counter latch, read-back), "Modes" 0-5; the PC/AT wiring
from the IBM PC/AT Technical Reference: 1.193182 MHz input on all three counters,
counter 0 OUT on IRQ0, counter 1 gate high (DRAM refresh), counter 2 gate and speaker
enable on port 0x61 bits 0 and 1, with OUT2 readable on bit 5 and the refresh toggle
on bit 4.

Emulated: modes 0-5 (6 and 7 alias 2 and 3), lobyte/hibyte/lo-hi access, BCD counting,
the counter latch and read-back commands (count and status, NULL COUNT), gate effects.
Time is never stepped tick by tick: a counter remembers the input-clock tick at which it
was loaded, its count and output are computed from ``clock.now_ns()`` with integer
arithmetic, and counter 0 arms one clock timer at its next output edge.
Not emulated: the reload of a new count at the end of the current period in modes 2
and 3 (a new count restarts the counter at once, as in QEMU); odd-count asymmetry in
mode 3 beyond the (N+1)/2 high half; speaker sound; port 0x61 parity/IOCHK bits (read 0).
Like QEMU, a reset leaves every counter in mode 3 with count 65536, so counter 0 ticks
IRQ0 at 18.2 Hz until the firmware programs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vmm.clock import VirtualClock
from vmm.devices.base import Device
from vmm.devices.ioport import from_bcd, read_split, to_bcd, write_split
from vmm.irq import IrqLine

PIT_HZ = 1_193_182
NS_PER_S = 1_000_000_000
REFRESH_NS = 15_085  # port 0x61 bit 4 toggles every 15.085 us (PC/AT refresh request)
CATCH_UP_TICKS = PIT_HZ  # behind by more than a second (host stall): skip to now

ACCESS_LATCH, ACCESS_LSB, ACCESS_MSB, ACCESS_WORD = 0, 1, 2, 3


def tick_at(ns: int) -> int:
    """The number of input-clock ticks since power-on at virtual time ``ns``."""
    return ns * PIT_HZ // NS_PER_S


def ns_of_tick(tick: int) -> int:
    """The first virtual nanosecond at which ``tick`` has happened."""
    return -(-tick * NS_PER_S // PIT_HZ)


@dataclass
class Counter:
    """One of the three counters: control word fields, count register, latches."""

    mode: int = 3
    access: int = ACCESS_WORD  # control word RW1 RW0
    bcd: bool = False
    count_register: int = 0  # CR as written (0 means the maximum count)
    load_tick: int = 0  # the tick at which the counting element was loaded
    counting: bool = False
    gate: bool = True
    frozen_elapsed: int | None = None  # ticks counted when the gate stopped counting
    null_count: bool = True
    armed: bool = False  # modes 1 and 5: a count is waiting for a gate trigger
    write_msb_next: bool = False
    pending_lsb: int = 0
    read_msb_next: bool = False
    latched: list[int] = field(default_factory=list)  # latched count bytes, next first
    status_latch: int | None = None

    @property
    def initial(self) -> int:
        """The count in binary, with 0 standing for 2^16 (or 10^4 in BCD)."""
        if self.bcd:
            return from_bcd(self.count_register & 0xFF) + 100 * from_bcd(self.count_register >> 8) or 10000
        return self.count_register or 0x10000

    def elapsed(self, tick: int) -> int:
        return self.frozen_elapsed if self.frozen_elapsed is not None else max(0, tick - self.load_tick)

    def value(self, tick: int) -> int:
        """The counting element (CE) at ``tick``, in binary."""
        if not self.counting or (self.mode in (2, 3) and not self.gate):
            return self.initial & 0xFFFF
        n, d = self.initial, self.elapsed(tick)
        if self.mode == 2:
            return n - d % n
        if self.mode == 3:
            return n - (2 * d) % n
        return (n - d) % (10000 if self.bcd else 0x10000)

    def output(self, tick: int) -> bool:
        """The OUT pin at ``tick``."""
        if self.mode in (2, 3) and not self.gate:
            return True  # a low gate forces OUT high in modes 2 and 3
        if not self.counting:
            return self.mode != 0
        n, d = self.initial, self.elapsed(tick)
        if self.mode in (0, 1):
            return d >= n
        if self.mode == 2:
            return n < 2 or d % n != n - 1
        if self.mode == 3:
            return d % n < (n + 1) // 2
        return d != n  # modes 4 and 5: a one-tick strobe at terminal count

    def next_change(self, tick: int) -> int | None:
        """The first tick after ``tick`` at which OUT changes, or None if it never does."""
        if not self.counting or self.frozen_elapsed is not None or (self.mode in (2, 3) and not self.gate):
            return None
        n, d = self.initial, tick - self.load_tick
        base = self.load_tick
        if d < 0:
            return base
        if self.mode in (0, 1):
            return base + n if d < n else None
        if self.mode in (4, 5):
            if d < n:
                return base + n
            return base + n + 1 if d == n else None
        if n < 2:
            # Mode 2 with a count of 1 (which the datasheet calls illegal): OUT is low for
            # no whole tick, yet the counter still reloads every tick, so IRQ0 gets an edge
            # each tick (pulsed by the PIT, below). Mode 3 with 1 stays high.
            return tick + 1 if self.mode == 2 else None
        period, offset = d // n * n, d % n
        low_from = n - 1 if self.mode == 2 else (n + 1) // 2
        return base + period + (low_from if offset < low_from else n)

    def next_rising(self, tick: int) -> int | None:
        """Modes 2 and 3: the first tick after ``tick`` at which OUT rises (a new period)."""
        edge = self.next_change(tick)
        if edge is None or tick < self.load_tick:
            return edge
        n = self.initial
        return self.load_tick + ((tick - self.load_tick) // n + 1) * n

    def status(self, tick: int) -> int:
        return (self.output(tick) << 7) | (self.null_count << 6) | (self.access << 4) | (self.mode << 1) | int(self.bcd)

    def encoded_value(self, tick: int) -> int:
        value = self.value(tick) & 0xFFFF
        if self.bcd:
            value %= 10000
            return to_bcd(value % 100) | (to_bcd(value // 100) << 8)
        return value

    def latch_count(self, tick: int) -> None:
        if self.latched:
            return  # a second latch before the first is read is ignored
        value = self.encoded_value(tick)
        if self.access == ACCESS_LSB:
            self.latched = [value & 0xFF]
        elif self.access == ACCESS_MSB:
            self.latched = [value >> 8]
        else:
            self.latched = [value & 0xFF, value >> 8]

    def set_gate(self, level: bool, tick: int) -> None:
        rising = level and not self.gate
        if self.mode in (0, 4) and self.counting:
            if not level and self.frozen_elapsed is None:
                self.frozen_elapsed = self.elapsed(tick)
            elif level and self.frozen_elapsed is not None:
                self.load_tick = tick - self.frozen_elapsed
                self.frozen_elapsed = None
        self.gate = level
        if rising and (self.armed or self.counting) and self.mode in (1, 2, 3, 5):
            self._start(tick)  # a trigger: (re)load the counting element

    def _start(self, tick: int) -> None:
        self.load_tick = tick
        self.counting = True
        self.null_count = False
        self.frozen_elapsed = 0 if self.mode in (0, 4) and not self.gate else None

    def write_control(self, value: int) -> None:
        self.access = (value >> 4) & 3
        mode = (value >> 1) & 7
        self.mode = mode - 4 if mode >= 6 else mode
        self.bcd = bool(value & 1)
        self.counting = False
        self.armed = False
        self.null_count = True
        self.frozen_elapsed = None
        self.write_msb_next = False
        self.read_msb_next = False
        self.latched = []
        self.status_latch = None

    def write_count_byte(self, value: int, tick: int) -> None:
        if self.access == ACCESS_LSB:
            self._load(value, tick)
        elif self.access == ACCESS_MSB:
            self._load(value << 8, tick)
        elif not self.write_msb_next:
            self.pending_lsb = value
            self.write_msb_next = True
            if self.mode == 0:
                self.counting = False  # mode 0: writing the first byte stops the count
        else:
            self.write_msb_next = False
            self._load(self.pending_lsb | (value << 8), tick)

    def _load(self, count: int, tick: int) -> None:
        self.count_register = count
        self.null_count = True
        if self.mode in (1, 5):
            self.armed = True  # waits for a rising edge on the gate
        elif self.mode in (2, 3) and not self.gate:
            self.armed = True
            self.counting = False
        else:
            self._start(tick)

    def read_byte(self, tick: int) -> int:
        if self.status_latch is not None:
            value, self.status_latch = self.status_latch, None
            return value
        if self.latched:
            return self.latched.pop(0)
        value = self.encoded_value(tick)
        if self.access == ACCESS_LSB:
            return value & 0xFF
        if self.access == ACCESS_MSB:
            return value >> 8
        if self.read_msb_next:
            self.read_msb_next = False
            return value >> 8
        self.read_msb_next = True
        return value & 0xFF


class Pit8254(Device):
    """The PC's 8254 (ports 0x40-0x43) and system control port B (0x61)."""

    name = "pit"
    ports = [(0x40, 4), (0x61, 1)]

    def __init__(self, clock: VirtualClock, irq0: IrqLine) -> None:
        self.clock = clock
        self.irq0 = irq0
        self.counters = [Counter(), Counter(), Counter()]
        self.port61 = 0  # bits written by the guest: 0 gate2, 1 speaker data, 2-3 check enables
        self._timer = clock.timer(self._on_edge, "pit counter 0")
        self._edge_tick: int | None = None
        # Set by the machine: True while IRQ0 is edge-triggered at the PIC. Then only
        # OUT0's rising edges are scheduled in the periodic modes (2 and 3), each taking
        # the line low and high again: one timer event, one run-loop exit, per period.
        self.irq0_edge_only: Callable[[], bool] | None = None
        self.reset()

    def _now(self) -> int:
        return tick_at(self.clock.now_ns())

    def reset(self) -> None:
        tick = self._now()
        self.counters = [Counter(gate=(i != 2)) for i in range(3)]
        for counter in self.counters:
            counter._start(tick)  # QEMU's reset: mode 3, count 65536, running
        self.port61 = 0
        self._drive_irq0(tick)

    # ---- counter 0 output on IRQ0 ----

    def _drive_irq0(self, tick: int) -> None:
        """Set IRQ0 to OUT0 at ``tick`` and arm the timer at its next change."""
        self.irq0.set(self.counters[0].output(tick))
        self._schedule(tick)

    def _rising_only(self) -> bool:
        counter = self.counters[0]
        return (counter.mode in (2, 3) and counter.initial >= 2 and self.irq0_edge_only is not None
                and self.irq0_edge_only())  # fmt: skip

    def _schedule(self, after: int) -> None:
        counter = self.counters[0]
        edge = counter.next_rising(after) if self._rising_only() else counter.next_change(after)
        self._edge_tick = edge
        if edge is None:
            self._timer.cancel()
        else:
            self._timer.arm(ns_of_tick(edge))

    def _on_edge(self) -> None:
        edge = self._edge_tick
        if edge is None:
            return
        now = self._now()
        if now - edge > CATCH_UP_TICKS:
            # Far behind (a host stall in real-time mode): one fresh edge, then carry on
            # from now instead of replaying every missed period.
            self.irq0.lower()
            edge = now
        # Edges are taken in order, one per callback, so none is lost when the timer
        # runs late; the PIC latches each low-to-high transition.
        counter = self.counters[0]
        if self._rising_only() or (counter.mode == 2 and counter.initial == 1):
            # The period's falling edge is not scheduled on its own; with a count of 1
            # (see Counter.next_change) it is a pulse every tick.
            self.irq0.lower()
        self.irq0.set(counter.output(edge))
        self._schedule(edge)

    # ---- ports ----

    def _read_byte(self, port: int) -> int:
        tick = self._now()
        if 0x40 <= port <= 0x42:
            return self.counters[port - 0x40].read_byte(tick)
        if port == 0x61:
            refresh = (self.clock.now_ns() // REFRESH_NS) & 1
            return (self.port61 & 0x0F) | (refresh << 4) | (self.counters[2].output(tick) << 5)
        return 0xFF  # 0x43: the control word register is write-only

    def _write_byte(self, port: int, value: int) -> None:
        tick = self._now()
        if 0x40 <= port <= 0x42:
            self.counters[port - 0x40].write_count_byte(value, tick)
            if port == 0x40:
                self._drive_irq0(tick)
        elif port == 0x43:
            self._write_control(value, tick)
        elif port == 0x61:
            self.port61 = value & 0x0F
            self.counters[2].set_gate(bool(value & 1), tick)

    def _write_control(self, value: int, tick: int) -> None:
        select = value >> 6
        if select == 3:  # read-back: COUNT# (bit 5) and STATUS# (bit 4) are active low
            for index in range(3):
                if value & (2 << index):
                    counter = self.counters[index]
                    if not value & 0x10 and counter.status_latch is None:
                        counter.status_latch = counter.status(tick)
                    if not value & 0x20:
                        counter.latch_count(tick)
            return
        counter = self.counters[select]
        if (value >> 4) & 3 == ACCESS_LATCH:
            counter.latch_count(tick)
            return
        counter.write_control(value)
        if select == 0:
            self._drive_irq0(tick)

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- what the machine and tests look at ----

    def output(self, index: int) -> bool:
        return self.counters[index].output(self._now())

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "counters": [asdict(c) for c in self.counters],
            "port61": self.port61,
            "edge_tick": self._edge_tick,
            "irq0": self.irq0.level,
        }

    def restore(self, state: dict[str, Any]) -> None:
        names = {f.name for f in fields(Counter)}
        self.counters = [Counter(**{k: v for k, v in c.items() if k in names}) for c in state["counters"]]
        for counter in self.counters:
            counter.latched = list(counter.latched)
        self.port61 = int(state["port61"])
        # The line's level is part of the PIC's restored state: set it without a sink call.
        self.irq0.level = bool(state["irq0"])
        self._edge_tick = state["edge_tick"]
        if self._edge_tick is None:
            self._timer.cancel()
        else:
            self._timer.arm(ns_of_tick(self._edge_tick))
