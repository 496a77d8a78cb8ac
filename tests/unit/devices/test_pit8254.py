"""8254 PIT: counts and IRQ0 edges derived from virtual time."""

from __future__ import annotations

from vmm.clock import VirtualClock
from vmm.devices.pit8254 import PIT_HZ, Pit8254, ns_of_tick, tick_at
from vmm.irq import IrqLine


class Rig:
    """A PIT on a clock whose instruction counter the test moves by hand (100 MHz: 10 ns each)."""

    def __init__(self) -> None:
        self.insns = [0]
        self.clock = VirtualClock(mhz=100)
        self.clock.attach(lambda: self.insns[0])
        self.edges: list[tuple[int, bool]] = []
        self.irq = IrqLine(0, lambda _n, level: self.edges.append((self.clock.now_ns(), level)))
        self.pit = Pit8254(self.clock, self.irq)

    def advance_to_ns(self, ns: int) -> None:
        """Run to ``ns`` firing each timer at its deadline, as the machine's loop does."""
        while True:
            deadline = self.clock.next_deadline_ns()
            if deadline is None or deadline > ns:
                break
            self.insns[0] = max(self.insns[0], self.clock.ns_to_insns(deadline))
            self.clock.run_due()
        self.insns[0] = max(self.insns[0], self.clock.ns_to_insns(ns))
        self.clock.run_due()

    def program(self, control: int, count: int) -> None:
        self.pit.io_write(0x43, 1, control)
        self.pit.io_write(0x40, 1, count & 0xFF)
        self.pit.io_write(0x40, 1, count >> 8)

    def rising_edges(self) -> list[int]:
        """The input-clock ticks at which IRQ0 went high (the clock moves in 10 ns steps)."""
        return [tick_at(ns) for ns, level in self.edges if level]


def read_latched(pit: Pit8254, channel: int = 0) -> int:
    pit.io_write(0x43, 1, channel << 6)  # counter latch command
    return pit.io_read(0x40 + channel, 1) | pit.io_read(0x40 + channel, 1) << 8


def test_tick_conversion_is_integer_and_monotonic() -> None:
    assert tick_at(NS := 1_000_000_000) == PIT_HZ
    for tick in (1, 2, 11931, 65536, PIT_HZ * 7 + 3):
        assert tick_at(ns_of_tick(tick)) == tick
        assert tick_at(ns_of_tick(tick) - 1) == tick - 1
    assert NS


def test_mode2_rate_generator_counts_and_irq0_period() -> None:
    rig = Rig()
    rig.program(0x34, 11932)  # counter 0, lo/hi, mode 2: ~100 Hz
    start_tick = tick_at(rig.clock.now_ns())
    assert read_latched(rig.pit) == 11932
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start_tick + 1000))
    assert read_latched(rig.pit) == 11932 - 1000
    rig.edges.clear()
    rig.advance_to_ns(ns_of_tick(start_tick + 5 * 11932) + 1)
    rising = rig.rising_edges()
    assert rising == [start_tick + k * 11932 for k in range(1, 6)]
    falls = [ns for ns, level in rig.edges if not level]
    assert tick_at(falls[0]) == start_tick + 11931  # OUT low for one tick at count 1


def test_mode3_square_wave_output_halves() -> None:
    rig = Rig()
    rig.program(0x36, 1000)
    start = tick_at(rig.clock.now_ns())
    assert rig.pit.output(0)
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start + 499))
    assert rig.pit.output(0)
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start + 500))
    assert not rig.pit.output(0)
    assert read_latched(rig.pit) == 1000  # counts down by two: 1000 - 2*500 wraps to 1000
    rig.edges.clear()
    rig.advance_to_ns(ns_of_tick(start + 3000))
    assert rig.rising_edges() == [start + 1000 * k for k in (1, 2, 3)]


def test_mode0_interrupt_on_terminal_count() -> None:
    rig = Rig()
    rig.pit.io_write(0x43, 1, 0x30)  # mode 0
    assert rig.irq.level is False
    rig.program(0x30, 500)
    start = tick_at(rig.clock.now_ns())
    rig.edges.clear()
    rig.advance_to_ns(ns_of_tick(start + 10_000))
    assert rig.rising_edges() == [start + 500] and len(rig.edges) == 1  # once, and stays high
    assert rig.clock.next_deadline_ns() is None


def test_lsb_only_access_and_bcd() -> None:
    rig = Rig()
    rig.pit.io_write(0x43, 1, 0x91)  # counter 2, LSB only, mode 0, BCD
    rig.pit.io_write(0x61, 1, 0x01)  # gate 2 on
    rig.pit.io_write(0x42, 1, 0x99)
    assert rig.pit.io_read(0x42, 1) == 0x99
    start = tick_at(rig.clock.now_ns())
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start + 10))
    assert rig.pit.io_read(0x42, 1) == 0x89  # 99 - 10 = 89 in BCD


def test_read_back_status_and_count() -> None:
    rig = Rig()
    rig.pit.io_write(0x43, 1, 0x34)
    rig.pit.io_write(0x43, 1, 0xE2)  # read-back status of counter 0
    assert rig.pit.io_read(0x40, 1) == 0x80 | 0x40 | 0x30 | 0x04  # OUT high, NULL COUNT
    rig.pit.io_write(0x40, 1, 0x00)
    rig.pit.io_write(0x40, 1, 0x10)
    rig.pit.io_write(0x43, 1, 0xC2)  # latch status and count
    assert rig.pit.io_read(0x40, 1) == 0x80 | 0x30 | 0x04
    assert rig.pit.io_read(0x40, 1) == 0x00
    assert rig.pit.io_read(0x40, 1) == 0x10


def test_port61_gate_and_out2() -> None:
    rig = Rig()
    rig.pit.io_write(0x61, 1, 0x00)
    rig.pit.io_write(0x43, 1, 0xB0)  # counter 2, lo/hi, mode 0 (the BIOS's delay loop idiom)
    rig.pit.io_write(0x42, 1, 100)
    rig.pit.io_write(0x42, 1, 0)
    rig.insns[0] += 100_000
    assert rig.pit.io_read(0x61, 1) & 0x20 == 0  # gate low: not counting
    rig.pit.io_write(0x61, 1, 0x01)
    start = tick_at(rig.clock.now_ns())
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start + 99))
    assert rig.pit.io_read(0x61, 1) & 0x21 == 0x01
    rig.insns[0] = rig.clock.ns_to_insns(ns_of_tick(start + 100))
    assert rig.pit.io_read(0x61, 1) & 0x21 == 0x21


def test_refresh_bit_toggles() -> None:
    rig = Rig()
    seen = set()
    for _ in range(8):
        rig.insns[0] += 500  # 5 us
        seen.add(rig.pit.io_read(0x61, 1) & 0x10)
    assert seen == {0x00, 0x10}


def test_reset_state_runs_counter0_at_18_2_hz() -> None:
    rig = Rig()
    rig.edges.clear()
    rig.advance_to_ns(1_000_000_000)
    assert rig.rising_edges() == [65536 * k for k in range(1, PIT_HZ // 65536 + 1)]


def test_save_restore_continues_identically() -> None:
    rig = Rig()
    rig.program(0x34, 2000)
    rig.advance_to_ns(1_234_567)
    rig.pit.io_write(0x43, 1, 0x00)  # latch pending across the snapshot
    other = Rig()
    other.insns[0] = rig.insns[0]
    other.pit.restore(rig.pit.save())
    assert other.pit.save() == rig.pit.save()
    for r in (rig, other):
        r.edges.clear()
        r.advance_to_ns(5_000_000)
    assert rig.edges == other.edges
    assert read_latched(rig.pit) == read_latched(other.pit)


def test_mode2_count_1_keeps_raising_irq0_every_tick() -> None:
    """A count of 1 in mode 2 (illegal per the datasheet, used by hostile guests): the
    counter reloads every tick and IRQ0 keeps getting edges (it used to stop for good)."""
    rig = Rig()
    rig.program(0x34, 1)
    start = tick_at(rig.clock.now_ns())
    rig.edges.clear()
    rig.advance_to_ns(ns_of_tick(start + 50) + 1)
    assert rig.rising_edges() == [start + k for k in range(1, 51)]
