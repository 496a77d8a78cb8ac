"""Any sequence of guest port accesses leaves every device standing (DESIGN.md principle 5)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmm.clock import VirtualClock
from vmm.devices.ata import AtaController
from vmm.devices.cmos import Mc146818Cmos
from vmm.devices.debugport import DebugConsole, ExitPort, PostCodePort
from vmm.devices.i8042 import I8042
from vmm.devices.pic8259 import Pic8259Pair
from vmm.devices.pit8254 import Pit8254
from vmm.devices.port92 import FastA20
from vmm.devices.uart16550 import Uart16550
from vmm.devices.vga import VgaText
from vmm.irq import IrqLine
from vmm.memory import GuestMemory

from .test_ata import MemoryDisk

MEMORY = GuestMemory(1024 * 1024)


def build() -> tuple[list, list[int]]:
    insns = [0]
    clock = VirtualClock()
    clock.attach(lambda: insns[0])
    pic = Pic8259Pair()
    irq = [IrqLine(n, pic.set_irq) for n in range(16)]
    devices = [
        pic,
        Pit8254(clock, irq[0]),
        Mc146818Cmos(clock, 64 << 20, irq[8]),
        I8042(set_a20=lambda _on: None, request_reset=lambda: None, irq1=irq[1]),
        FastA20(set_a20=lambda _on: None, request_reset=lambda: None),
        Uart16550(irq[4], output=lambda _b: None),
        VgaText(MEMORY),
        AtaController(irq[14], master=MemoryDisk(64), slave=MemoryDisk(8)),
        PostCodePort(),
        DebugConsole(lambda _b: None),
        ExitPort(lambda _s: None),
    ]
    return devices, insns


def ports_of(devices: list) -> list[int]:
    return sorted({first + i for d in devices for first, count in d.ports for i in range(count)})


DEVICES, _ = build()
PORTS = ports_of(DEVICES)

access = st.tuples(
    st.sampled_from(PORTS),
    st.sampled_from([1, 2, 4]),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
    st.integers(0, 5000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(access, max_size=200))
def test_random_port_traffic_never_raises(accesses: list[tuple[int, int, int, bool, int]]) -> None:
    devices, insns = build()
    owner = {port: d for d in devices for first, count in d.ports for port in range(first, first + count)}
    clock = devices[1].clock
    for port, size, value, is_write, step in accesses:
        device = owner[port]
        insns[0] += step
        clock.run_due()
        if is_write:
            device.io_write(port, size, value & ((1 << (8 * size)) - 1))
        else:
            result = device.io_read(port, size)
            assert 0 <= result < 1 << (8 * size)
    for device in devices:
        state = device.save()
        device.restore(state)
        device.reset()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5, 0x1F6, 0x1F7, 0x3F6]),
                          st.integers(0, 255)), max_size=60))  # fmt: skip
def test_ata_command_storm_keeps_buffers_bounded(writes: list[tuple[int, int]]) -> None:
    ata = AtaController(master=MemoryDisk(64), slave=MemoryDisk(8))
    for port, value in writes:
        ata.io_write(port, 1, value)
        for _ in range(8):
            ata.io_read(0x1F0, 4)
        assert len(ata.transfer.buffer) <= 16 * 512
